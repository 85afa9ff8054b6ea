//! The request as the routes see it ([`Request`]: decoded query, project from `Host`) and
//! what they answer ([`Reply`]). Owns the parsing quirks of docs/sls-protocol.md §2.2–§2.3
//! and §3.2: absolute-form targets from HTTP_PROXY clients, `Host` with or without a port,
//! IP-literal hosts that carry no project, and form-encoded query strings (`+` is a space)
//! that must be decoded before the signature is checked.

use std::net::IpAddr;

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde::Serialize;

/// A received request, parsed.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: Method,
    /// Path as sent (origin form), e.g. `/logstores/ls/shards/0`.
    pub path: String,
    /// Decoded query parameters in wire order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The project named by the `Host` header's first label, if any.
    pub project: Option<String>,
    /// The peer's IP (for the `__client_ip__` tag).
    pub peer: IpAddr,
}

impl Request {
    /// The request as hyper hands it over. Proxy clients send absolute-form targets
    /// (`GET http://proj.host:80/path?q`); the URI accessors return the origin-form pieces
    /// either way, and the Host header names the project (docs/sls-protocol.md §2.3
    /// "Reaching a local emulator").
    pub fn from_parts(parts: http::request::Parts, body: Bytes, peer: IpAddr) -> Self {
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()));
        Self {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parse_query(parts.uri.query()),
            project: host.as_deref().and_then(project_from_host),
            headers: parts.headers,
            body,
            peer,
        }
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A successful answer (status 200; SLS clients treat anything else as an error,
/// docs/sls-protocol.md §2.5 "Response headers and status").
#[derive(Debug)]
pub(crate) struct Reply {
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    /// An empty JSON reply (what SLS sends for create/update/delete calls).
    pub fn empty() -> Self {
        Self {
            content_type: "application/json",
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn json(value: &impl Serialize) -> Self {
        // Serialising our own plain structs/`Value`s cannot fail.
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Self {
            content_type: "application/json",
            headers: Vec::new(),
            body: Bytes::from(body),
        }
    }
}

/// Splits a query string into decoded pairs: `+` → space, then `%XX` (what `requests`'
/// `quote_plus` and Go's `url.Values.Encode` produce). Keys without `=` get "".
pub(crate) fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw.filter(|q| !q.is_empty()) else {
        return Vec::new();
    };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// The project a `Host` value addresses: its first DNS label, unless the host is an IP
/// literal, `localhost` or a single label (then it is a bare endpoint). The port, if any, is
/// ignored (Python sends none, Go sends it).
pub(crate) fn project_from_host(host: &str) -> Option<String> {
    let host = host.trim();
    if host.starts_with('[') {
        return None; // [v6]:port
    }
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    if host.parse::<IpAddr>().is_ok() || host.eq_ignore_ascii_case("localhost") {
        return None;
    }
    let (first, _) = host.split_once('.')?;
    (!first.is_empty()).then(|| first.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_form_decoded() {
        let q = parse_query(Some(
            "type=log&cursor=MTc%3D&query=%2A+%7C+where+a+%3D+%27x%27&flag&e=",
        ));
        assert_eq!(
            q,
            vec![
                ("type".into(), "log".into()),
                ("cursor".into(), "MTc=".into()),
                ("query".into(), "* | where a = 'x'".into()),
                ("flag".into(), String::new()),
                ("e".into(), String::new()),
            ]
        );
        assert!(parse_query(None).is_empty());
    }

    #[test]
    fn project_comes_from_the_first_label() {
        assert_eq!(project_from_host("proj.127.0.0.1").as_deref(), Some("proj"));
        assert_eq!(
            project_from_host("proj.cn-hangzhou.log.aliyuncs.com:80").as_deref(),
            Some("proj")
        );
        assert_eq!(project_from_host("proj.localhost").as_deref(), Some("proj"));
        for bare in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost",
            "localhost:1",
            "[::1]:80",
            "sls",
        ] {
            assert_eq!(project_from_host(bare), None, "{bare}");
        }
    }
}
