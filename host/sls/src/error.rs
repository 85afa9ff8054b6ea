//! `SlsError`: every way an SLS call can fail, with retryability decided when the error is
//! built (pingora's habit) so callers never re-derive it from strings.
//!
//! What is retryable (docs/sls-protocol.md §11.3 "Retry classification"): transport
//! failures (connect, timeout, I/O), any 5xx, `InternalServerError`, `RequestTimeout`,
//! `ServerBusy`, read/write quota errors (403 `…QuotaExceed`). Everything else — auth and
//! signature errors, unknown project/logstore/group/shard, invalid parameters, bodies we
//! cannot decode — is fatal for that request: retrying it unchanged cannot succeed.
//!
//! This module does not decide what to *do* about an error (re-create a group, reset a cursor,
//! drop a shard): the consumer does, through the predicates below.

use std::fmt;

/// Error codes that mean "this consumer does not own the shard (any more)" on
/// ConsumerGroupUpdateCheckPoint with `forceSuccess=false`. The server has been seen to use
/// both the correct and the misspelled forms (Go matches `…Exsit`, Java the correct ones), so
/// matching is case-insensitive over all of them (docs/sls-protocol.md §5.9).
const OWNERSHIP_CODES: &[&str] = &[
    "ConsumerNotExist",
    "ConsumerNotExsit",
    "ConsumerNotMatch",
    "ShardNotExsit",
];

/// Why an SLS operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SlsError {
    /// The client could not be built from its configuration (bad endpoint, unreadable CA file,
    /// invalid consumer settings). Fatal.
    #[error("invalid SLS client configuration: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },

    /// The request did not get an HTTP response: connection refused/reset, DNS, TLS, timeout.
    /// Always retryable.
    #[error("{op}: cannot reach SLS at {endpoint}: {detail}; {hint}")]
    Transport {
        /// The API operation, e.g. `PullLogs`.
        op: &'static str,
        /// The endpoint as configured.
        endpoint: String,
        /// Whether the request timed out (as opposed to failing to connect or breaking).
        timeout: bool,
        /// The transport error rendered with its cause chain.
        detail: String,
        /// What to check.
        hint: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },

    /// SLS answered with a non-200 status.
    #[error("{0}")]
    Api(Box<ApiError>),

    /// A response body or header could not be decoded (LZ4, protobuf, cursor, JSON). Not
    /// retryable: the same request would get the same bytes.
    #[error("{op}: cannot decode the SLS response: {what}")]
    Decode {
        /// The API operation.
        op: &'static str,
        /// What could not be decoded, with the decoder's message.
        what: String,
    },

    /// A 200 response that breaks the protocol (a required header is missing or malformed).
    #[error("{op}: unexpected SLS response: {message}")]
    Protocol {
        /// The API operation.
        op: &'static str,
        /// What was wrong.
        message: String,
    },

    /// The credentials expired and no refresh has succeeded since: the request was not sent
    /// (SLS would refuse it). Retryable: the background refresh may succeed any time.
    #[error("{op}: not sent: {message}")]
    Credentials {
        /// The API operation.
        op: &'static str,
        /// Why, with the provider's last error.
        message: String,
    },

    /// The consumer no longer owns the shard: the server reported an ownership error on a
    /// checkpoint, or the lease was revoked locally (reassigned, heartbeats lost, shut down).
    /// The holder must stop processing the shard; its data will be re-read by the new owner
    /// from the last committed checkpoint.
    #[error("shard {shard} is no longer held by this consumer ({detail}); stop processing it")]
    ShardLost {
        /// The shard id.
        shard: u32,
        /// Why ownership was lost.
        detail: String,
    },
}

/// A non-200 answer from SLS, with the fields of its JSON error body.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The API operation, e.g. `ConsumerGroupHeartBeat`.
    pub op: &'static str,
    /// HTTP status.
    pub status: u16,
    /// SLS `errorCode`, when the body was the usual JSON error.
    pub code: Option<String>,
    /// SLS `errorMessage`, or the start of a non-JSON body.
    pub message: String,
    /// `x-log-requestid` (quote it to Alibaba Cloud support).
    pub request_id: Option<String>,
    retryable: bool,
}

impl ApiError {
    /// Builds an API error and classifies it.
    pub fn new(
        op: &'static str,
        status: u16,
        code: Option<String>,
        message: String,
        request_id: Option<String>,
    ) -> Self {
        let retryable = classify_retryable(status, code.as_deref());
        Self {
            op,
            status,
            code,
            message,
            request_id,
            retryable,
        }
    }

    /// What the operator should do about this code; `None` when the message says it all.
    fn hint(&self) -> Option<&'static str> {
        let code = self.code.as_deref().unwrap_or("");
        let hint = match code {
            "SignatureNotMatch" => {
                "check the AccessKey secret (SLS_AK_KEY) and that the system clock is correct"
            }
            "Unauthorized" | "InvalidAccessKeyId" | "InvalidAccessKeyId.NotFound" => {
                "check the AccessKey ID (SLS_AK_ID) and its RAM permissions on this project"
            }
            "RequestTimeExpired" | "RequestTimeTooSkewed" | "InvalidRequestTime" => {
                "the system clock is more than 15 minutes off; synchronise it (NTP)"
            }
            "ProjectNotExist" => "check the project name (SLS_PROJECT) and the endpoint's region",
            "LogStoreNotExist" => "check the logstore name (SLS_LOGSTORE)",
            "ConsumerGroupNotExist" => {
                "the consumer group does not exist (deleted?); the consumer re-creates it on join"
            }
            "ConsumerGroupQuotaExceed" => {
                "the logstore has too many consumer groups (30); delete unused ones"
            }
            "InvalidCursor" => {
                "the cursor is out of range (expired data or another shard's cursor); \
                 read again from a cursor given by GetCursor"
            }
            "NotExistConsumerWithBody" => {
                "the server expired this consumer (heartbeats missed for the group timeout); \
                 it re-joins with no shards"
            }
            c if c.contains("SecurityToken") => {
                "the STS token expired or is invalid: with a refreshing provider                  ([source.credentials]) shipper refreshes it; a fixed SLS_STS_TOKEN must be                  replaced"
            }
            c if c.contains("QuotaExceed") => {
                "SLS throttled the request; it is retried with backoff"
            }
            c if is_ownership_code(c) => "another consumer owns the shard now; stop processing it",
            _ if self.status == 407 => {
                "the HTTP proxy requires authentication: put the user in the proxy URL                  (http://user:password@host:port) or set `proxy_credentials_file`"
            }
            _ if self.status >= 500 => "server-side failure; the request is retried",
            _ => return None,
        };
        Some(hint)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: HTTP {}", self.op, self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        if let Some(hint) = self.hint() {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// The retry classification of docs/sls-protocol.md §11.3.
fn classify_retryable(status: u16, code: Option<&str>) -> bool {
    if status >= 500 {
        return true;
    }
    match code {
        Some("InternalServerError" | "RequestTimeout" | "ServerBusy") => true,
        Some(c) if c.contains("QuotaExceed") || c.contains("QpsExceed") => true,
        // A 403 without a known code is a quota answer ("Read QPS Exceed") in practice; auth
        // failures come as 401 with their own codes (docs/sls-protocol.md §11.2).
        None => status == 403 || status == 429,
        Some(_) => status == 429,
    }
}

/// A rustls error, possibly wrapped in (nested) `io::Error`s, whose `source()` skips them.
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.is::<rustls::Error>() {
        return true;
    }
    e.downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        .is_some_and(|inner| is_tls(inner))
}

fn is_ownership_code(code: &str) -> bool {
    OWNERSHIP_CODES.iter().any(|c| c.eq_ignore_ascii_case(code))
}

impl SlsError {
    /// Builds an [`SlsError::Api`].
    pub fn api(
        op: &'static str,
        status: u16,
        code: Option<String>,
        message: String,
        request_id: Option<String>,
    ) -> Self {
        Self::Api(Box::new(ApiError::new(
            op, status, code, message, request_id,
        )))
    }

    /// Builds an [`SlsError::Config`].
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }

    /// Builds an [`SlsError::Decode`].
    pub fn decode(op: &'static str, what: impl fmt::Display) -> Self {
        Self::Decode {
            op,
            what: what.to_string(),
        }
    }

    /// Builds an [`SlsError::Protocol`].
    pub fn protocol(op: &'static str, message: impl Into<String>) -> Self {
        Self::Protocol {
            op,
            message: message.into(),
        }
    }

    /// Builds an [`SlsError::Transport`] from a reqwest failure.
    pub(crate) fn transport(
        op: &'static str,
        endpoint: &str,
        proxy: Option<&shipper_net::proxy::Proxy>,
        source: reqwest::Error,
    ) -> Self {
        let mut detail = source.to_string();
        let mut tls = false;
        let mut cause = std::error::Error::source(&source);
        while let Some(c) = cause {
            detail.push_str(": ");
            detail.push_str(&c.to_string());
            tls |= is_tls(c);
            cause = c.source();
        }
        let hint = if let Some(why) = proxy.and_then(|p| shipper_net::proxy::explain(p, &detail)) {
            why
        } else if tls {
            "the TLS handshake failed: check that the endpoint is right, or trust the \
             server's CA with ca_file"
                .to_owned()
        } else if source.is_timeout() {
            "SLS did not answer in time: check the network path to the endpoint".to_owned()
        } else {
            "check the endpoint and the network".to_owned()
        };
        Self::Transport {
            op,
            endpoint: endpoint.to_owned(),
            timeout: source.is_timeout(),
            detail,
            hint,
            source,
        }
    }

    /// Whether repeating the same request later can succeed (decided when the error was
    /// built; see the module docs for the table).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Credentials { .. } => true,
            Self::Api(api) => api.retryable,
            Self::Config { .. }
            | Self::Decode { .. }
            | Self::Protocol { .. }
            | Self::ShardLost { .. } => false,
        }
    }

    /// The SLS `errorCode` of an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api(api) => api.code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(api) => Some(api.status),
            _ => None,
        }
    }

    /// The `x-log-requestid` of an API error.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(api) => api.request_id.as_deref(),
            _ => None,
        }
    }

    fn code_is(&self, code: &str) -> bool {
        self.code().is_some_and(|c| c.eq_ignore_ascii_case(code))
    }

    /// `InvalidCursor`: the cursor is malformed or out of the shard's range.
    pub fn is_invalid_cursor(&self) -> bool {
        self.code_is("InvalidCursor")
    }

    /// `ConsumerGroupNotExist`: the group must be (re-)created.
    pub fn is_consumer_group_not_exist(&self) -> bool {
        self.code_is("ConsumerGroupNotExist")
    }

    /// `ConsumerGroupAlreadyExist`: a create raced with (or followed) another one; fine.
    pub fn is_consumer_group_already_exist(&self) -> bool {
        self.code_is("ConsumerGroupAlreadyExist")
    }

    /// `NotExistConsumerWithBody`: the server forgot this consumer (expired); drop every
    /// shard and re-join with an empty heartbeat (docs/sls-protocol.md §5.8).
    pub fn is_not_exist_consumer_with_body(&self) -> bool {
        self.code_is("NotExistConsumerWithBody")
    }

    /// A checkpoint ownership error (`ConsumerNotExist`/`ConsumerNotExsit`/
    /// `ConsumerNotMatch`/`ShardNotExsit`, any case) or a local [`SlsError::ShardLost`]:
    /// stop processing the shard.
    pub fn is_shard_lost(&self) -> bool {
        match self {
            Self::ShardLost { .. } => true,
            _ => self.code().is_some_and(is_ownership_code),
        }
    }

    /// `ShardNotExist` (correct spelling): the shard was deleted or never existed.
    pub fn is_shard_not_exist(&self) -> bool {
        self.code_is("ShardNotExist")
    }

    /// A configuration problem found before any request (a malformed endpoint, a bad name):
    /// fixing the settings is the remedy, not waiting for the server.
    pub fn is_config(&self) -> bool {
        matches!(self, SlsError::Config { .. })
    }

    /// A 401 that fresh credentials may cure: its code names the security token,
    /// `Unauthorized` or `InvalidAccessKeyId` (what the official Python SDK refreshes on).
    pub fn is_refreshable_auth(&self) -> bool {
        self.status() == Some(401)
            && self.code().is_some_and(|c| {
                c.contains("SecurityToken")
                    || c.contains("Unauthorized")
                    || c.contains("InvalidAccessKeyId")
            })
    }

    /// Expired credentials that could not be refreshed ([`SlsError::Credentials`]).
    pub fn is_credentials(&self) -> bool {
        matches!(self, Self::Credentials { .. })
    }

    /// Authentication or authorisation failure (bad key, signature, STS token, clock).
    pub fn is_auth(&self) -> bool {
        self.status() == Some(401)
            || self.code().is_some_and(|c| {
                c == "SignatureNotMatch"
                    || c.contains("Unauthorized")
                    || c.contains("InvalidAccessKeyId")
                    || c.contains("SecurityToken")
                    || c == "RequestTimeExpired"
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> SlsError {
        SlsError::api(
            "Test",
            status,
            Some(code.to_owned()),
            "msg".into(),
            Some("5B0A6B60BB6EE39764D458B5".into()),
        )
    }

    #[test]
    fn retry_classification_follows_the_protocol_table() {
        for (status, code) in [
            (500, "InternalServerError"),
            (500, "RequestTimeout"),
            (503, "ServerBusy"),
            (502, "Whatever"),
            (403, "ReadQuotaExceed"),
            (403, "ShardReadQuotaExceed"),
            (403, "WriteQuotaExceed"),
            (400, "RequestTimeout"),
        ] {
            assert!(api(status, code).is_retryable(), "{status} {code}");
        }
        for (status, code) in [
            (401, "SignatureNotMatch"),
            (401, "Unauthorized"),
            (401, "InvalidAccessKeyId"),
            (404, "ProjectNotExist"),
            (404, "LogStoreNotExist"),
            (404, "ConsumerGroupNotExist"),
            (400, "ShardNotExist"),
            (400, "InvalidCursor"),
            (400, "ParameterInvalid"),
            (400, "NotExistConsumerWithBody"),
            (400, "ConsumerNotMatch"),
            (400, "RequestTimeExpired"),
        ] {
            assert!(!api(status, code).is_retryable(), "{status} {code}");
        }
        let no_code = |status| SlsError::api("Test", status, None, "x".into(), None);
        assert!(no_code(403).is_retryable());
        assert!(no_code(504).is_retryable());
        assert!(!no_code(400).is_retryable());
        assert!(!SlsError::protocol("PullLogs", "x").is_retryable());
        assert!(!SlsError::decode("PullLogs", "x").is_retryable());
    }

    #[test]
    fn ownership_codes_match_both_spellings_in_any_case() {
        for code in [
            "ConsumerNotExist",
            "ConsumerNotExsit",
            "consumernotexist",
            "CONSUMERNOTMATCH",
            "ShardNotExsit",
        ] {
            assert!(api(400, code).is_shard_lost(), "{code}");
        }
        assert!(!api(400, "ShardNotExist").is_shard_lost());
        assert!(api(400, "ShardNotExist").is_shard_not_exist());
        assert!(
            SlsError::ShardLost {
                shard: 1,
                detail: "x".into()
            }
            .is_shard_lost()
        );
    }

    #[test]
    fn messages_say_what_failed_and_what_to_do() {
        let e = api(401, "SignatureNotMatch");
        let text = e.to_string();
        assert!(
            text.contains("Test failed: HTTP 401 SignatureNotMatch"),
            "{text}"
        );
        assert!(text.contains("5B0A6B60BB6EE39764D458B5"), "{text}");
        assert!(text.contains("SLS_AK_KEY"), "{text}");
        assert!(e.is_auth());
        assert_eq!(e.code(), Some("SignatureNotMatch"));
        assert_eq!(e.status(), Some(401));
        assert!(
            api(404, "LogStoreNotExist")
                .to_string()
                .contains("SLS_LOGSTORE")
        );
        assert!(api(403, "ReadQuotaExceed").to_string().contains("retried"));
    }

    #[test]
    fn predicates() {
        assert!(api(400, "InvalidCursor").is_invalid_cursor());
        assert!(api(404, "ConsumerGroupNotExist").is_consumer_group_not_exist());
        assert!(api(400, "ConsumerGroupAlreadyExist").is_consumer_group_already_exist());
        assert!(api(400, "NotExistConsumerWithBody").is_not_exist_consumer_with_body());
        assert!(api(401, "SecurityTokenExpired").is_auth());
    }
}
