//! The retry settings shared by the sinks, their backoff (shipper-net's [`Backoff`], equal
//! jitter), and `Retry-After` parsing. Classification of answers is not here:
//! `hec/response.rs` decides which class an HEC answer is in; this module decides how long
//! to wait.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
pub use shipper_net::Backoff;
use tokio_util::sync::CancellationToken;

use crate::error::ConfigError;

/// First retry delay. One second is what Vector and the OTel exporter start with: long
/// enough not to hammer a struggling indexer, short enough to ride out a blip.
pub const DEFAULT_INITIAL_BACKOFF_MS: u64 = 1_000;
/// Cap of the transient retry delay (docs/rendering.md §3.10 "Retry timing").
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 30_000;
/// Delay between attempts while the sink is misconfigured (bad token, wrong URL). Slow,
/// because an operator has to act; not infinite, so the sink resumes by itself once fixed.
pub const DEFAULT_CONFIG_ERROR_BACKOFF_MS: u64 = 60_000;
/// Longest `Retry-After` honoured; a larger value is cut to this so one odd proxy header
/// cannot park the sink for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Retry timing (config table `retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// First delay after a transient failure, in milliseconds (doubles per attempt).
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub initial_backoff_ms: u64,
    /// Cap of the transient delay, in milliseconds. The actual delay is uniformly random
    /// between half the capped exponential value and that value ("equal jitter").
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub max_backoff_ms: u64,
    /// Delay between attempts while a configuration error persists (bad token, wrong URL,
    /// not an HEC endpoint), in milliseconds. Data is kept; nothing is dropped.
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub config_error_backoff_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff_ms: DEFAULT_INITIAL_BACKOFF_MS,
            max_backoff_ms: DEFAULT_MAX_BACKOFF_MS,
            config_error_backoff_ms: DEFAULT_CONFIG_ERROR_BACKOFF_MS,
        }
    }
}

impl RetryConfig {
    /// Checks the values (pure).
    pub fn validate(&self) -> Result<RetrySettings, ConfigError> {
        if self.initial_backoff_ms == 0 {
            return Err(ConfigError::new("retry.initial_backoff_ms", "must be > 0"));
        }
        if self.max_backoff_ms < self.initial_backoff_ms {
            return Err(ConfigError::new(
                "retry.max_backoff_ms",
                format!(
                    "must be >= retry.initial_backoff_ms ({})",
                    self.initial_backoff_ms
                ),
            ));
        }
        if self.config_error_backoff_ms == 0 {
            return Err(ConfigError::new(
                "retry.config_error_backoff_ms",
                "must be > 0",
            ));
        }
        Ok(RetrySettings {
            initial: Duration::from_millis(self.initial_backoff_ms),
            max: Duration::from_millis(self.max_backoff_ms),
            config_error: Duration::from_millis(self.config_error_backoff_ms),
        })
    }
}

/// Validated retry timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// First transient delay.
    pub initial: Duration,
    /// Transient delay cap.
    pub max: Duration,
    /// Delay while misconfigured.
    pub config_error: Duration,
}

impl RetrySettings {
    /// A fresh backoff sequence.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.initial, self.max)
    }
}

/// A server-requested wait (`Retry-After`), capped at [`MAX_RETRY_AFTER`] so one odd proxy
/// header cannot park a sink for hours.
pub fn capped_retry_after(retry_after: Option<Duration>) -> Option<Duration> {
    retry_after.map(|r| r.min(MAX_RETRY_AFTER))
}

/// Shutdown fired while waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// Sleeps `d` unless `cancel` fires first.
pub async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> Result<(), Cancelled> {
    tokio::select! {
        () = tokio::time::sleep(d) => Ok(()),
        () = cancel.cancelled() => Err(Cancelled),
    }
}

/// Parses an HTTP `Retry-After` value: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_and_jitters_below_it() {
        let s = RetryConfig {
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            ..Default::default()
        }
        .validate()
        .unwrap();
        let mut b = s.backoff();
        let ceilings: Vec<u64> = (0..6)
            .map(|_| {
                let c = b.ceiling();
                let d = b.next_delay();
                assert!(d <= c && d >= c / 2, "{d:?} outside [{c:?}/2, {c:?}]");
                c.as_millis() as u64
            })
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(
            b.ceiling(),
            Duration::from_secs(1),
            "no overflow after many attempts"
        );
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn retry_after_is_a_floor_and_capped() {
        let s = RetryConfig {
            initial_backoff_ms: 1,
            max_backoff_ms: 2,
            ..Default::default()
        }
        .validate()
        .unwrap();
        let mut b = s.backoff();
        assert_eq!(
            b.next_delay_at_least(capped_retry_after(Some(Duration::from_secs(3)))),
            Duration::from_secs(3)
        );
        assert_eq!(
            b.next_delay_at_least(capped_retry_after(Some(Duration::from_secs(9_999)))),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn validation_names_the_field() {
        let e = RetryConfig {
            initial_backoff_ms: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "retry.initial_backoff_ms");
        let e = RetryConfig {
            initial_backoff_ms: 10,
            max_backoff_ms: 5,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "retry.max_backoff_ms");
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_or_cancel_sleeps_or_stops_early() {
        let cancel = CancellationToken::new();
        let start = tokio::time::Instant::now();
        assert_eq!(
            sleep_or_cancel(Duration::from_secs(60), &cancel).await,
            Ok(())
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(60),
            "paused clock: exactly the delay"
        );
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            c.cancel();
        });
        let start = tokio::time::Instant::now();
        assert_eq!(
            sleep_or_cancel(Duration::from_secs(3_600), &cancel).await,
            Err(Cancelled)
        );
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Tue, 24 Nov 2026 12:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
