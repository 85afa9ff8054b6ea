//! Entry points for the fuzz targets (`tests/fuzz`, docs/fuzzing.md): the HEC response
//! parser and classifier, reached as the sink reaches them, without a connection.
//! Compiled only with the `fuzzing` feature.

use crate::hec::response::{Outcome, classify};

/// The retry class of one HEC answer (docs/rendering.md §3.9 "HEC response classes").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HecClass {
    /// Accepted, with the indexer-ack id when the body had one.
    Accepted(Option<u64>),
    /// Retry after a backoff.
    Transient,
    /// Split the request.
    TooLarge,
    /// Reject one event (or bisect when no number came back).
    Data(Option<usize>),
    /// Misconfiguration; `true` when the token file is re-read.
    Config(bool),
}

/// Classifies an answer with `status` and `body` to a request for `url`; returns the class,
/// the reason the sink would log, and the HEC code it would count.
pub fn classify_hec_answer(status: u16, body: &[u8], url: &str) -> (HecClass, String, Option<i64>) {
    let (outcome, code) = classify(status, body, None, Some("https://elsewhere.invalid/"), url);
    let (class, reason) = match outcome {
        Outcome::Accepted { ack_id } => (HecClass::Accepted(ack_id), String::new()),
        Outcome::Transient { reason, .. } => (HecClass::Transient, reason),
        Outcome::TooLarge { reason } => (HecClass::TooLarge, reason),
        Outcome::Data {
            invalid_event,
            reason,
        } => (HecClass::Data(invalid_event), reason),
        Outcome::Config {
            reason,
            reread_token,
        } => (HecClass::Config(reread_token), reason),
    };
    (class, reason, code)
}
