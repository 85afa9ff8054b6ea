//! Entry points for the fuzz targets (`tests/fuzz`, docs/fuzzing.md): the emulator's request
//! parsing and signature check, reached exactly as `server` reaches them, without a socket.
//! Compiled only with the `fuzzing` feature.

use std::net::{IpAddr, Ipv4Addr};
use std::time::SystemTime;

use bytes::Bytes;
use shipper_sls::sign::Credentials;

use crate::auth;
use crate::error::ApiError;
use crate::request::Request;

/// What the emulator made of one request before routing it.
#[derive(Debug)]
pub struct Checked {
    /// The project named by `Host` (or the absolute-form target).
    pub project: Option<String>,
    /// The decoded query, in wire order.
    pub query: Vec<(String, String)>,
    /// The authentication verdict: `Ok` lets the request reach the routes.
    pub verdict: Result<(), ApiError>,
}

/// Parses `parts` and `body` into the routes' request and authenticates it against the
/// long-term key `credentials` at server time `now`.
pub fn check(
    parts: http::request::Parts,
    body: Bytes,
    credentials: &Credentials,
    now: SystemTime,
) -> Checked {
    let req = Request::from_parts(parts, body, IpAddr::V4(Ipv4Addr::LOCALHOST));
    let verdict = auth::verify(
        &req,
        &auth::Keys {
            long_term: credentials,
            issuer: None,
            now,
        },
    );
    Checked {
        project: req.project,
        query: req.query,
        verdict,
    }
}
