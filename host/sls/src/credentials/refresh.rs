//! [`RefreshingCredentials`]: the credentials every request is signed with, kept fresh by a
//! background task so the data path only ever reads them.
//!
//! When: at two thirds of the credentials' lifetime or ten minutes before they expire,
//! whichever comes first, but never before a third of the lifetime has passed. The floor
//! only matters for credentials shorter than 15 minutes (STS issues none; the tests use
//! 15-second tokens), where "ten minutes before" would mean "at once, forever".
//!
//! A failed refresh keeps the current credentials while they are valid and is retried with
//! `shipper_net::Backoff` (1 s → 60 s), with one WARN per failure streak. Credentials that
//! expire before a refresh succeeds are not sent any more: requests fail locally with a
//! retryable [`SlsError::Credentials`](crate::SlsError::Credentials) (SLS would answer 401
//! for each), the holder says so once at WARN, and everything resumes with the next
//! successful refresh. A request SLS refuses with a 401 that names the security token,
//! `Unauthorized` or `InvalidAccessKeyId` asks for an immediate refresh
//! ([`RefreshingCredentials::refresh_after_rejection`]); concurrent askers share one fetch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shipper_net::Backoff;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{CredentialsError, Fetched, Provider};
use crate::sign::Credentials;

/// Earliest refresh before expiry for long-lived credentials.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(600);
/// First retry delay after a failed refresh.
const RETRY_INITIAL: Duration = Duration::from_secs(1);
/// Longest retry delay: an outage of the metadata service or STS is noticed within a
/// minute of its end.
const RETRY_MAX: Duration = Duration::from_secs(60);
/// Credentials count as expired this long before their `Expiration` (at most; a fifth of
/// the lifetime for short ones), so a request signed just before does not arrive after.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// Attempts of the first fetch at start-up before giving up (1 s, 2 s apart).
const START_ATTEMPTS: u32 = 3;
/// How long a request refused with a 401 waits for a refresh (its own or another's).
const REJECTION_WAIT: Duration = Duration::from_secs(10);

/// Counters of the holder, read by the metrics exporter at scrape time.
#[derive(Debug, Default)]
pub struct CredentialStats {
    refreshes: AtomicU64,
    failures: AtomicU64,
    /// Unix seconds of the current credentials' `Expiration`; 0 = none.
    expiry: AtomicU64,
}

impl CredentialStats {
    /// Successful refreshes (not counting the first fetch).
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Failed fetches, at start-up or later.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Seconds until the current credentials expire (negative once they have); `None` for
    /// credentials without an expiry.
    pub fn seconds_until_expiry(&self) -> Option<f64> {
        match self.expiry.load(Ordering::Relaxed) {
            0 => None,
            at => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64();
                Some(at as f64 - now)
            }
        }
    }
}

/// The credentials in use, one generation of them.
#[derive(Debug)]
pub struct Current {
    /// The key pair and token to sign with.
    pub credentials: Credentials,
    /// When they expire, if they do.
    pub expiration: Option<SystemTime>,
    /// Bumped by every successful fetch.
    pub generation: u64,
    fetched_at: SystemTime,
}

impl Current {
    fn new(f: Fetched, generation: u64) -> Self {
        Self {
            credentials: f.credentials,
            expiration: f.expiration,
            generation,
            fetched_at: SystemTime::now(),
        }
    }

    fn lifetime(&self) -> Option<Duration> {
        self.expiration
            .map(|e| e.duration_since(self.fetched_at).unwrap_or_default())
    }

    /// From when they are no longer sent.
    fn usable_until(&self) -> Option<SystemTime> {
        let (at, life) = (self.expiration?, self.lifetime()?);
        Some(at - EXPIRY_MARGIN.min(life / 5))
    }

    /// Whether they are past [`usable_until`](Self::usable_until).
    pub fn is_expired(&self) -> bool {
        self.usable_until().is_some_and(|u| SystemTime::now() >= u)
    }

    /// When the next background refresh is due (see the module docs).
    fn refresh_at(&self, poll: Option<Duration>) -> Option<SystemTime> {
        let by_expiry = self.lifetime().map(|life| {
            let two_thirds = life * 2 / 3;
            let before = life.saturating_sub(REFRESH_BEFORE_EXPIRY);
            self.fetched_at + two_thirds.min(before).max(life / 3)
        });
        let by_poll = poll.map(|p| self.fetched_at + p);
        match (by_expiry, by_poll) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Shared credentials with background refresh. Cheap to clone; dropping the last clone
/// stops the refresh task.
#[derive(Debug, Clone)]
pub struct RefreshingCredentials {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    provider: Option<Arc<dyn Provider>>,
    current: RwLock<Arc<Current>>,
    /// One fetch at a time (background or after a rejection).
    fetching: tokio::sync::Mutex<()>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    stats: Arc<CredentialStats>,
    /// The last failure's message (for the local "expired" error).
    last_error: RwLock<Option<String>>,
    /// The "expired and cannot be refreshed" WARN was written for this outage.
    warned_expired: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl From<Credentials> for RefreshingCredentials {
    /// Fixed credentials: never refreshed.
    fn from(credentials: Credentials) -> Self {
        Self::build(
            None,
            Fetched {
                credentials,
                expiration: None,
            },
        )
    }
}

impl RefreshingCredentials {
    fn build(provider: Option<Arc<dyn Provider>>, first: Fetched) -> Self {
        let stats = Arc::new(CredentialStats::default());
        store_expiry(&stats, first.expiration);
        Self {
            inner: Arc::new(Inner {
                provider,
                current: RwLock::new(Arc::new(Current::new(first, 1))),
                fetching: tokio::sync::Mutex::new(()),
                wake: Arc::new(Notify::new()),
                stop: CancellationToken::new(),
                stats,
                last_error: RwLock::new(None),
                warned_expired: AtomicBool::new(false),
            }),
        }
    }

    /// Fetches the first credentials (a few attempts, then the provider's error) and starts
    /// the background refresh. Needs a tokio runtime.
    pub async fn start(provider: Arc<dyn Provider>) -> Result<Self, CredentialsError> {
        let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
        let stats_failures = AtomicU64::new(0);
        let first = loop {
            match provider.fetch().await {
                Ok(f) => break f,
                Err(e) if backoff.attempt() + 1 < START_ATTEMPTS => {
                    stats_failures.fetch_add(1, Ordering::Relaxed);
                    let delay = backoff.next_delay();
                    tracing::warn!(provider = provider.name(), error = %e, ?delay, "cannot fetch SLS credentials yet; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        };
        let this = Self::build(Some(provider.clone()), first);
        this.inner
            .stats
            .failures
            .fetch_add(stats_failures.into_inner(), Ordering::Relaxed);
        let cur = this.current();
        tracing::info!(
            provider = provider.name(),
            access_key_id = %cur.credentials.access_key_id,
            expires = ?cur.expiration.map(super::format_expiration),
            "SLS credentials fetched"
        );
        tokio::spawn(run(
            Arc::downgrade(&this.inner),
            this.inner.wake.clone(),
            this.inner.stop.clone(),
        ));
        Ok(this)
    }

    /// The credentials in use now (a read lock held for a pointer copy).
    pub fn current(&self) -> Arc<Current> {
        self.inner
            .current
            .read()
            .expect("credentials lock poisoned")
            .clone()
    }

    /// The provider's name (`static` for fixed credentials).
    pub fn provider_name(&self) -> &'static str {
        self.inner.provider.as_ref().map_or("static", |p| p.name())
    }

    /// Refresh counters and the expiry, for metrics.
    pub fn stats(&self) -> &Arc<CredentialStats> {
        &self.inner.stats
    }

    /// Whether these credentials can be refreshed at all.
    pub fn is_refreshable(&self) -> bool {
        self.inner.provider.is_some()
    }

    /// `Err` with the reason when `cur` must not be sent (expired, no refresh yet); wakes
    /// the refresh task. Never waits.
    pub(crate) fn check_usable(&self, cur: &Current) -> Result<(), String> {
        if !cur.is_expired() {
            return Ok(());
        }
        self.inner.wake.notify_one();
        let last = self
            .inner
            .last_error
            .read()
            .expect("credentials lock poisoned")
            .clone()
            .unwrap_or_else(|| "no refresh has succeeded yet".into());
        Err(format!(
            "the {} credentials expired at {} and could not be refreshed ({last}); requests \
             resume once a refresh succeeds",
            self.provider_name(),
            cur.expiration
                .map(super::format_expiration)
                .unwrap_or_default()
        ))
    }

    /// After SLS refused generation `seen` (401): refresh now, or wait for the refresh
    /// another request started. `true` when newer credentials are in place.
    pub async fn refresh_after_rejection(&self, seen: u64) -> bool {
        if self.inner.provider.is_none() {
            return false;
        }
        let Ok(_guard) = tokio::time::timeout(REJECTION_WAIT, self.inner.fetching.lock()).await
        else {
            return false;
        };
        if self.current().generation != seen {
            return true;
        }
        tracing::info!(
            provider = self.provider_name(),
            "SLS refused the credentials; refreshing them now"
        );
        match tokio::time::timeout(REJECTION_WAIT, self.fetch_and_store()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(provider = self.provider_name(), error = %e, "refreshing the refused SLS credentials failed");
                false
            }
            Err(_) => false,
        }
    }

    /// When the background task fetches next: the pending retry, else `cur`'s refresh time.
    fn next_refresh(&self, cur: &Current, retry_at: Option<SystemTime>) -> Option<SystemTime> {
        let poll = self.inner.provider.as_ref().and_then(|p| p.poll_interval());
        retry_at.or_else(|| cur.refresh_at(poll))
    }

    /// One fetch; on success the new generation is in place. The caller holds `fetching`.
    async fn fetch_and_store(&self) -> Result<(), CredentialsError> {
        let provider = self.inner.provider.as_ref().expect("refreshable");
        match provider.fetch().await {
            Ok(f) => {
                store_expiry(&self.inner.stats, f.expiration);
                let mut cur = self
                    .inner
                    .current
                    .write()
                    .expect("credentials lock poisoned");
                let generation = cur.generation + 1;
                *cur = Arc::new(Current::new(f, generation));
                drop(cur);
                self.inner.stats.refreshes.fetch_add(1, Ordering::Relaxed);
                *self
                    .inner
                    .last_error
                    .write()
                    .expect("credentials lock poisoned") = None;
                if self.inner.warned_expired.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        provider = provider.name(),
                        "SLS credentials refreshed again; SLS requests resume"
                    );
                }
                Ok(())
            }
            Err(e) => {
                self.inner.stats.failures.fetch_add(1, Ordering::Relaxed);
                *self
                    .inner
                    .last_error
                    .write()
                    .expect("credentials lock poisoned") = Some(e.message.clone());
                Err(e)
            }
        }
    }
}

fn store_expiry(stats: &CredentialStats, expiration: Option<SystemTime>) {
    let secs = expiration.map_or(0, |e| {
        e.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .max(1)
    });
    stats.expiry.store(secs, Ordering::Relaxed);
}

/// Time from now until `at` (zero when it passed).
fn until(at: SystemTime) -> Duration {
    at.duration_since(SystemTime::now()).unwrap_or_default()
}

/// The background refresh loop; ends when the holder is dropped.
async fn run(inner: std::sync::Weak<Inner>, wake: Arc<Notify>, stop: CancellationToken) {
    let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
    let mut retry_at: Option<SystemTime> = None;
    loop {
        let (wait, expire_wait) = {
            let Some(inner) = inner.upgrade() else { return };
            let holder = RefreshingCredentials { inner };
            let cur = holder.current();
            let next = holder.next_refresh(&cur, retry_at);
            let expire_wait = if holder.inner.warned_expired.load(Ordering::Relaxed) {
                None
            } else {
                cur.usable_until().map(until)
            };
            (next.map(until), expire_wait)
        };
        let sleep_for = match (wait, expire_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake.notified() => {}
            () = async {
                match sleep_for {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        let Some(inner) = inner.upgrade() else { return };
        let holder = RefreshingCredentials { inner };
        let cur = holder.current();
        let due = holder
            .next_refresh(&cur, retry_at)
            .is_some_and(|at| SystemTime::now() >= at)
            || cur.is_expired();
        if due {
            let guard = holder.inner.fetching.lock().await;
            // A refresh after a rejection may have happened meanwhile.
            if holder.current().generation == cur.generation {
                match holder.fetch_and_store().await {
                    Ok(()) => {
                        if backoff.attempt() > 0 {
                            tracing::info!(
                                provider = holder.provider_name(),
                                failures = backoff.attempt(),
                                "SLS credentials refreshed after failures"
                            );
                        }
                        backoff.reset();
                        retry_at = None;
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        retry_at = Some(SystemTime::now() + delay);
                        if backoff.attempt() == 1 && !cur.is_expired() {
                            tracing::warn!(
                                provider = holder.provider_name(),
                                error = %e,
                                valid_for = ?cur.usable_until().map(until),
                                retry_in = ?delay,
                                "refreshing the SLS credentials failed; the current ones stay in use while they are valid"
                            );
                        } else {
                            tracing::debug!(provider = holder.provider_name(), error = %e, retry_in = ?delay, "refreshing the SLS credentials failed again");
                        }
                    }
                }
            } else {
                backoff.reset();
                retry_at = None;
            }
            drop(guard);
        }
        let cur = holder.current();
        if cur.is_expired() && !holder.inner.warned_expired.swap(true, Ordering::Relaxed) {
            let last = holder
                .inner
                .last_error
                .read()
                .expect("credentials lock poisoned")
                .clone()
                .unwrap_or_default();
            tracing::warn!(
                provider = holder.provider_name(),
                expired_at = ?cur.expiration.map(super::format_expiration),
                error = %last,
                "the SLS credentials expired and cannot be refreshed: SLS requests pause (nothing is \
                 lost); the consumer gives its shards up after the group timeout and takes them back \
                 once a refresh succeeds"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::BoxFuture;
    use super::*;

    #[derive(Debug)]
    struct Scripted {
        lifetime: Duration,
        fail: Mutex<bool>,
        calls: AtomicU64,
    }

    impl Provider for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn fetch(&self) -> BoxFuture<'_, Result<Fetched, CredentialsError>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::Relaxed);
                if *self.fail.lock().unwrap() {
                    return Err(CredentialsError::new("scripted", "down"));
                }
                Ok(Fetched {
                    credentials: Credentials::new(format!("id-{n}"), "s"),
                    expiration: Some(SystemTime::now() + self.lifetime),
                })
            })
        }
    }

    #[test]
    fn refresh_time_is_two_thirds_or_ten_minutes_before_with_a_floor() {
        let cur = |life: Duration| Current {
            credentials: Credentials::new("a", "b"),
            expiration: Some(SystemTime::UNIX_EPOCH + life),
            generation: 1,
            fetched_at: SystemTime::UNIX_EPOCH,
        };
        let at = |life: u64| {
            cur(Duration::from_secs(life))
                .refresh_at(None)
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        assert_eq!(at(3600), 2400, "1 h: two thirds (40 min) < 50 min");
        assert_eq!(at(12 * 3600), 8 * 3600, "12 h: two thirds comes first");
        assert_eq!(at(1200), 600, "20 min: ten minutes before comes first");
        assert_eq!(at(900), 300, "15 min: the floor, a third");
        assert_eq!(at(15), 5, "15 s: a third");
        let f = Current {
            expiration: None,
            ..cur(Duration::ZERO)
        };
        assert!(f.refresh_at(None).is_none());
        assert!(f.refresh_at(Some(Duration::from_secs(10))).is_some());
    }

    #[tokio::test]
    async fn refreshes_in_the_background_and_keeps_valid_credentials_on_failure() {
        let p = Arc::new(Scripted {
            lifetime: Duration::from_secs(3),
            fail: Mutex::new(false),
            calls: AtomicU64::new(0),
        });
        let holder = RefreshingCredentials::start(p.clone()).await.unwrap();
        assert_eq!(holder.current().credentials.access_key_id, "id-0");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            holder.stats().refreshes() >= 1,
            "refreshed at a third of 3 s"
        );
        let before = holder.current();
        *p.fail.lock().unwrap() = true;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(holder.stats().failures() >= 1);
        assert_eq!(holder.current().generation, before.generation, "kept");
        // Past expiry without a refresh: refused locally.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let cur = holder.current();
        assert!(holder.check_usable(&cur).is_err());
        *p.fail.lock().unwrap() = false;
        assert!(holder.refresh_after_rejection(cur.generation).await);
        assert!(holder.check_usable(&holder.current()).is_ok());
        assert!(holder.stats().seconds_until_expiry().unwrap() > 0.0);
    }

    #[tokio::test]
    async fn fixed_credentials_never_refresh() {
        let holder = RefreshingCredentials::from(Credentials::new("a", "b"));
        assert!(!holder.refresh_after_rejection(1).await);
        assert!(holder.check_usable(&holder.current()).is_ok());
        assert_eq!(holder.stats().seconds_until_expiry(), None);
        assert_eq!(holder.provider_name(), "static");
    }
}
