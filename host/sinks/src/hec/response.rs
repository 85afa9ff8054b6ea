//! Classifies every HEC answer into a retry class
//! (docs/rendering.md §3.9 "HEC response classes"): transient (retry with backoff, honour
//! `Retry-After`), too large (split), data (reject the offending event, resend the rest) and
//! configuration (never drop: log an ERROR that names the URL and the fix, retry slowly).
//! Messages never contain the token.

use std::time::Duration;

use serde::Deserialize;

/// What to do with one HEC answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Accepted; with indexer ack on, `ack_id` must still turn true.
    Accepted { ack_id: Option<u64> },
    /// Retry the same request after a backoff (at least `retry_after`).
    Transient {
        retry_after: Option<Duration>,
        reason: String,
    },
    /// 413: split the request in halves; a single event → rejected.
    TooLarge { reason: String },
    /// The data is bad: reject event `invalid_event` (0-based in the request) and resend the
    /// rest; without a number, bisect.
    Data {
        invalid_event: Option<usize>,
        reason: String,
    },
    /// Misconfiguration: keep the data, log an ERROR, retry slowly (re-reading the token
    /// file when `reread_token`).
    Config { reason: String, reread_token: bool },
}

/// The JSON body Splunk answers with.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct HecAnswer {
    pub text: Option<String>,
    pub code: Option<i64>,
    #[serde(rename = "invalid-event-number")]
    pub invalid_event_number: Option<u64>,
    #[serde(rename = "ackId")]
    pub ack_id: Option<u64>,
}

impl HecAnswer {
    /// The body as Splunk's `{"text", "code"}` answer; `None` for anything else, including
    /// other JSON (an SLS endpoint's `{"errorCode", …}`, a proxy's error object), so a URL
    /// that is not HEC is reported as such rather than as, say, a refused token.
    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(body)
            .ok()
            .filter(|a| a.text.is_some() || a.code.is_some())
    }
}

/// HEC codes that mean "this data is bad" (docs/rendering.md §3.9: 5, 6, 12, 13, 15; 7 per
/// event).
const DATA_CODES: [i64; 6] = [5, 6, 7, 12, 13, 15];

/// Classifies an answer. `url` is the request URL (no secrets in it), `location` the
/// `Location` header of a redirect. Also returns the HEC code, for metrics.
pub(crate) fn classify(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    location: Option<&str>,
    url: &str,
) -> (Outcome, Option<i64>) {
    let answer = HecAnswer::parse(body);
    let code = answer.as_ref().and_then(|a| a.code);
    let what = describe(status, answer.as_ref(), body);
    let outcome = match status {
        413 => Outcome::TooLarge {
            reason: format!("{what}: request body too large for {url}"),
        },
        408 | 429 | 500..=599 => Outcome::Transient {
            retry_after,
            reason: format!("{what} from {url}"),
        },
        300..=399 => Outcome::Config {
            reason: format!(
                "{url} redirected ({status}) to {}: this is not an HEC endpoint (Splunk Web on port 8000?); point `endpoint` at the HEC port (8088 by default)",
                location.unwrap_or("?")
            ),
            reread_token: false,
        },
        401 | 403 => Outcome::Config {
            reason: format!(
                "{url} refused the token ({what}): check `token` / `token_file` / SHIPPER_HEC_TOKEN and that the token is enabled in Splunk"
            ),
            reread_token: true,
        },
        407 => Outcome::Config {
            reason: format!(
                "{url}: the HTTP proxy answered 407 (authentication required): put the user in the proxy URL (http://user:password@host:port) or set `proxy_credentials_file`"
            ),
            reread_token: false,
        },
        404 => Outcome::Config {
            reason: format!(
                "{url} answered {what}: check that `endpoint` is the HEC base URL (e.g. https://splunk:8088) and that HEC is enabled"
            ),
            reread_token: false,
        },
        _ if answer.is_none() => Outcome::Config {
            reason: format!("{url} answered {what}: this is not an HEC endpoint; check `endpoint`"),
            reread_token: false,
        },
        200..=299 => Outcome::Accepted {
            ack_id: answer.as_ref().and_then(|a| a.ack_id),
        },
        400 if code.is_some_and(|c| DATA_CODES.contains(&c)) => Outcome::Data {
            invalid_event: answer
                .as_ref()
                .and_then(|a| a.invalid_event_number)
                .and_then(|n| usize::try_from(n).ok()),
            reason: what,
        },
        400 => Outcome::Config {
            reason: format!("{url} answered {what}: {}", config_hint(code)),
            reread_token: code == Some(16),
        },
        _ => Outcome::Config {
            reason: format!(
                "{url} answered {what}: unexpected for HEC; check `endpoint` and any proxy in between"
            ),
            reread_token: false,
        },
    };
    (outcome, code)
}

fn config_hint(code: Option<i64>) -> &'static str {
    match code {
        Some(10) => {
            "the token has indexer acknowledgement (useACK) on and no channel arrived; check proxies that strip headers"
        }
        Some(11) => "the channel is not a GUID (a proxy rewriting X-Splunk-Request-Channel?)",
        Some(14) => "indexer acknowledgement is off for this token: set `ack = false`",
        Some(16) => {
            "query-string authorization is not enabled for this token (a proxy adding ?token=?)"
        }
        _ => {
            "unexpected HEC answer; check `endpoint`, the token's settings and any proxy in between"
        }
    }
}

/// `HEC 400 code 6 "Invalid data format" (invalid-event-number 3)` or, for non-JSON
/// bodies, the status and the start of the body.
fn describe(status: u16, answer: Option<&HecAnswer>, body: &[u8]) -> String {
    match answer {
        Some(a) => {
            let mut s = format!("HEC {status}");
            if let Some(c) = a.code {
                s.push_str(&format!(" code {c}"));
            }
            if let Some(t) = &a.text {
                s.push_str(&format!(" {t:?}"));
            }
            if let Some(n) = a.invalid_event_number {
                s.push_str(&format!(" (invalid-event-number {n})"));
            }
            s
        }
        None => {
            let snippet: String = String::from_utf8_lossy(&body[..body.len().min(80)])
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            if snippet.trim().is_empty() {
                format!("HTTP {status} with an empty body")
            } else {
                format!(
                    "HTTP {status} with a body that is not HEC's {{text, code}} answer ({:?})",
                    snippet.trim()
                )
            }
        }
    }
}

/// Classifies a failure below HTTP (connect, TLS, timeout, reset). TLS certificate
/// problems need an operator (configuration); everything else is transient.
pub(crate) fn classify_transport(
    err: &reqwest::Error,
    url: &str,
    proxy: Option<&shipper_net::proxy::Proxy>,
) -> Outcome {
    let chain = error_chain(err);
    // Through a proxy, name it: a 407 or a refused tunnel needs an operator (config), an
    // unreachable proxy is transient like an unreachable receiver.
    if let Some(why) = proxy.and_then(|p| shipper_net::proxy::explain(p, &chain)) {
        let reason = format!("{url}: {chain}; {why}");
        let lower = chain.to_ascii_lowercase();
        return if lower.contains("authorization required")
            || lower.contains("407")
            || lower.contains("tunnel")
        {
            Outcome::Config {
                reason,
                reread_token: false,
            }
        } else {
            Outcome::Transient {
                retry_after: None,
                reason,
            }
        };
    }
    let tls = causes(err).any(|e| e.downcast_ref::<rustls::Error>().is_some());
    // hyper-util wraps the rustls error in an io::Error whose `source()` skips it, so the
    // text is checked too (rustls' Display forms).
    let refused_by_server = chain.contains("received fatal alert");
    // Alerts about our certificate: none sent, or one the server does not accept
    // (`DecryptError`: its chain does not verify against the server's client CA).
    let about_client_cert = [
        "CertificateRequired",
        "BadCertificate",
        "UnknownCA",
        "DecryptError",
        "AccessDenied",
    ]
    .iter()
    .any(|a| chain.contains(&format!("received fatal alert: {a}")));
    if tls || chain.contains("invalid peer certificate") || refused_by_server {
        let fix = if about_client_cert {
            "the HEC endpoint refused our client certificate; if it requires client certificates (`requireClientCert`), set `tls.cert_file` and `tls.key_file` to a certificate signed by a CA it trusts"
        } else if refused_by_server {
            "the HEC endpoint refused the TLS session (protocol version or cipher suites?); check that `endpoint` is an HTTPS HEC port and the server's TLS settings"
        } else {
            "set `tls.ca_file` to the CA that signed the HEC certificate (Splunk's default is SplunkCommonCA), or fix `tls.server_name`"
        };
        return Outcome::Config {
            reason: format!("TLS handshake with {url} failed ({chain}): {fix}"),
            reread_token: false,
        };
    }
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connect failed"
    } else {
        "request failed"
    };
    Outcome::Transient {
        retry_after: None,
        reason: format!("{url}: {kind}: {chain}"),
    }
}

/// True when the request never reached the wire: hyper cancels a request whose connection
/// closed before the write (often "connection was not ready", between the pool's readiness
/// check and the write). hyper-util resends those only on a reused connection.
pub(crate) fn never_sent(err: &reqwest::Error) -> bool {
    causes(err)
        .find_map(|e| e.downcast_ref::<hyper::Error>())
        .is_some_and(hyper::Error::is_canceled)
}

/// `err` and its sources, outermost first.
fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
}

/// `err: cause: cause` on one line.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    for e in causes(err).skip(1) {
        let m = e.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://h:8088/services/collector/event";

    fn c(status: u16, body: &str) -> Outcome {
        classify(status, body.as_bytes(), None, None, URL).0
    }

    #[test]
    fn success_and_ack_id() {
        assert_eq!(
            c(200, r#"{"text":"Success","code":0}"#),
            Outcome::Accepted { ack_id: None }
        );
        assert_eq!(
            c(200, r#"{"text":"Success","code":0,"ackId":7}"#),
            Outcome::Accepted { ack_id: Some(7) }
        );
        assert_eq!(
            c(
                200,
                r#"{"text":"HEC queue is approaching its capacity limit","code":24}"#
            ),
            Outcome::Accepted { ack_id: None }
        );
    }

    #[test]
    fn transient_codes() {
        for (status, body) in [
            (503, r#"{"text":"Server is busy","code":9}"#),
            (500, r#"{"text":"Internal server error","code":8}"#),
            (503, r#"{"text":"Server is shutting down","code":23}"#),
            (429, r#"{"text":"HEC queue is at capacity","code":26}"#),
            (502, "<html>Bad gateway</html>"),
            (504, ""),
            (408, ""),
        ] {
            assert!(
                matches!(c(status, body), Outcome::Transient { .. }),
                "{status} {body}"
            );
        }
        let (o, _) = classify(503, b"{}", Some(Duration::from_secs(4)), None, URL);
        assert!(
            matches!(o, Outcome::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(4))
        );
    }

    #[test]
    fn data_errors_carry_the_event_number() {
        let o = c(
            400,
            r#"{"text":"Invalid data format","code":6,"invalid-event-number":3}"#,
        );
        assert_eq!(
            o,
            Outcome::Data {
                invalid_event: Some(3),
                reason: r#"HEC 400 code 6 "Invalid data format" (invalid-event-number 3)"#.into()
            }
        );
        for code in [5, 7, 12, 13, 15] {
            assert!(
                matches!(
                    c(400, &format!(r#"{{"text":"x","code":{code}}}"#)),
                    Outcome::Data {
                        invalid_event: None,
                        ..
                    }
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn configuration_errors_are_not_data_errors() {
        for (status, body, reread) in [
            (403, r#"{"text":"Invalid token","code":4}"#, true),
            (403, r#"{"text":"Token disabled","code":1}"#, true),
            (401, r#"{"text":"Token is required","code":2}"#, true),
            (401, r#"{"text":"Invalid authorization","code":3}"#, true),
            (
                400,
                r#"{"text":"Data channel is missing","code":10}"#,
                false,
            ),
            (400, r#"{"text":"Invalid data channel","code":11}"#, false),
            (400, r#"{"text":"ACK is disabled","code":14}"#, false),
            (
                400,
                r#"{"text":"Query string authorization is not enabled","code":16}"#,
                true,
            ),
            (
                404,
                r#"{"text":"The requested URL was not found on this server.","code":404}"#,
                false,
            ),
            (405, "", false),
        ] {
            match c(status, body) {
                Outcome::Config {
                    reason,
                    reread_token,
                } => {
                    assert_eq!(reread_token, reread, "{status} {body}");
                    assert!(reason.contains(URL), "{reason}");
                }
                o => panic!("{status} {body}: {o:?}"),
            }
        }
        let Outcome::Config { reason, .. } = c(403, r#"{"text":"Invalid token","code":4}"#) else {
            panic!()
        };
        assert!(reason.contains("token_file"), "names the fix: {reason}");
    }

    #[test]
    fn html_and_redirects_are_not_hec() {
        let Outcome::Config { reason, .. } = c(200, "<!doctype html><html>Splunk Web</html>")
        else {
            panic!()
        };
        assert!(reason.contains("not an HEC endpoint"), "{reason}");
        let (o, _) = classify(303, b"", None, Some("http://h:8000/en-US/"), URL);
        let Outcome::Config { reason, .. } = o else {
            panic!()
        };
        assert!(
            reason.contains("not an HEC endpoint") && reason.contains("8000/en-US"),
            "{reason}"
        );
        assert!(matches!(
            c(413, "<html>too big</html>"),
            Outcome::TooLarge { .. }
        ));
        // JSON that is not Splunk's answer (an SLS endpoint's error object) is not HEC either.
        let Outcome::Config { reason, .. } = c(
            200,
            r#"{"errorCode":"Unauthorized","errorMessage":"no signature"}"#,
        ) else {
            panic!()
        };
        assert!(reason.contains("not an HEC endpoint"), "{reason}");
        assert!(HecAnswer::parse(br#"{"text":"Success","code":0}"#).is_some());
        assert!(HecAnswer::parse(br#"{"acks":{"0":true}}"#).is_none());
    }
}
