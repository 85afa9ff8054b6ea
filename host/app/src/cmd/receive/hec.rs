//! The HEC half of `shipper receive`: Splunk's `/services/collector/event` (concatenated JSON
//! envelopes), `/services/collector/raw` (one event per line) and `/services/collector/health`,
//! with the answers and codes Splunk gives (docs/rendering.md §3.9, §3.13). Indexer
//! acknowledgement is not offered: `/ack` answers code 14, "ACK is disabled", as Splunk does
//! for a token without it.

use std::convert::Infallible;
use std::io::Read as _;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use super::{HecArgs, MAX_BODY_BYTES, Output, announce};
use crate::exit::{Failure, FailureExt as _};

/// Accepts connections until `shutdown`.
pub async fn serve(
    args: HecArgs,
    tls: Option<Arc<rustls::ServerConfig>>,
    out: Arc<Output>,
    shutdown: CancellationToken,
) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(args.common.listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} ({e}; --listen 127.0.0.1:0 picks a free port)",
                args.common.listen
            )
        })
        .config_error()?;
    let addr = listener.local_addr().runtime_error()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    announce(&format!("{scheme}://{addr}"))?;
    let token: Arc<Option<String>> = Arc::new(args.token);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let (out, token, acceptor) = (out.clone(), token.clone(), acceptor.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (out, token) = (out.clone(), token.clone());
                async move { Ok::<_, Infallible>(handle(req, &out, token.as_deref()).await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            match acceptor {
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = http.serve_connection(TokioIo::new(tls), service).await;
                    }
                }
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
            }
        });
    }
}

/// A Splunk-style JSON answer.
fn answer(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

fn coded(status: StatusCode, text: &str, code: u32) -> Response<Full<Bytes>> {
    answer(status, format!(r#"{{"text":"{text}","code":{code}}}"#))
}

async fn handle(
    req: Request<Incoming>,
    out: &Output,
    token: Option<&str>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let lane = match (req.method(), path.as_str()) {
        (
            &Method::GET | &Method::POST,
            "/services/collector/health" | "/services/collector/health/1.0",
        ) => {
            return coded(StatusCode::OK, "HEC is healthy", 17);
        }
        (&Method::POST, "/services/collector/ack") => {
            return coded(StatusCode::BAD_REQUEST, "ACK is disabled", 14);
        }
        (
            &Method::POST,
            "/services/collector" | "/services/collector/event" | "/services/collector/event/1.0",
        ) => Lane::Event,
        (&Method::POST, "/services/collector/raw" | "/services/collector/raw/1.0") => Lane::Raw,
        _ => {
            return coded(
                StatusCode::NOT_FOUND,
                "The requested URL was not found on this server.",
                404,
            );
        }
    };
    let gzip = req
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Splunk "))
        .map(|t| t.trim().to_owned());
    // The body is read before any answer, so the connection stays usable (keep-alive) after
    // a refusal too.
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return coded(StatusCode::PAYLOAD_TOO_LARGE, "Content too large", 413),
    };
    if let Some(expected) = token {
        match given.as_deref() {
            None => return coded(StatusCode::UNAUTHORIZED, "Token is required", 2),
            Some(t) if t != expected => {
                return coded(StatusCode::FORBIDDEN, "Invalid token", 4);
            }
            Some(_) => {}
        }
    }
    let body = if gzip {
        let mut decoded = Vec::with_capacity(body.len() * 4);
        let read = flate2::read::MultiGzDecoder::new(&body[..])
            .take(MAX_BODY_BYTES as u64 + 1)
            .read_to_end(&mut decoded);
        match read {
            Ok(n) if n > MAX_BODY_BYTES => {
                return coded(StatusCode::PAYLOAD_TOO_LARGE, "Content too large", 413);
            }
            Ok(_) => Bytes::from(decoded),
            Err(_) => return coded(StatusCode::BAD_REQUEST, "Invalid data format", 6),
        }
    } else {
        body
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return coded(StatusCode::BAD_REQUEST, "No data", 5);
    }
    match lane {
        Lane::Raw => {
            for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                out.event(line);
            }
        }
        Lane::Event => {
            // Concatenated envelopes, whitespace optional between them. Each is checked to
            // be JSON and to carry an `event`, as Splunk's parser does; the first bad one
            // fails the request with its number and nothing of it is counted.
            let events = match split_envelopes(&body) {
                Ok(events) => events,
                Err((n, why)) => {
                    return answer(
                        StatusCode::BAD_REQUEST,
                        format!(
                            r#"{{"text":"{why}","code":{},"invalid-event-number":{n}}}"#,
                            if why == "Event field is required" {
                                12
                            } else {
                                6
                            }
                        ),
                    );
                }
            };
            for event in events {
                out.event(event);
            }
        }
    }
    coded(StatusCode::OK, "Success", 0)
}

#[derive(Debug, Clone, Copy)]
enum Lane {
    Event,
    Raw,
}

/// The envelopes of an `/event` body, or the number of the first bad one and why.
fn split_envelopes(body: &[u8]) -> Result<Vec<&[u8]>, (usize, &'static str)> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        event: Option<serde::de::IgnoredAny>,
    }
    let mut events = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Envelope>();
    let mut start = 0;
    while let Some(next) = stream.next() {
        let n = events.len();
        match next {
            Ok(Envelope { event: Some(_) }) => {}
            Ok(Envelope { event: None }) => return Err((n, "Event field is required")),
            Err(_) => return Err((n, "Invalid data format")),
        }
        let end = stream.byte_offset();
        events.push(body[start..end].trim_ascii());
        start = end;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_split_and_the_first_bad_one_is_numbered() {
        let body = br#"{"event":"a","time":1}
{"event":{"k":[1,2]}}{"event":"c"}"#;
        let events = split_envelopes(body).unwrap();
        assert_eq!(
            events,
            [
                &br#"{"event":"a","time":1}"#[..],
                br#"{"event":{"k":[1,2]}}"#,
                br#"{"event":"c"}"#
            ]
        );
        assert_eq!(
            split_envelopes(br#"{"event":1}{"time":2}"#),
            Err((1, "Event field is required"))
        );
        assert_eq!(
            split_envelopes(br#"{"event":1} {"event":"#),
            Err((1, "Invalid data format"))
        );
    }
}
