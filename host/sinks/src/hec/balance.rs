//! Which HEC endpoint a request goes to, and what each endpoint's failures do to it: the
//! balancer and the per-endpoint circuit breaker. It owns no I/O: the sink reports every
//! outcome here and runs the health probes this module asks for (`mod.rs`).
//!
//! Selection: among the endpoints that may take a request and have a free slot (fewer than
//! `concurrency` requests on the wire, or than the endpoint's adaptive limit with
//! `concurrency = "adaptive"`, `adaptive.rs`), the one with the fewest requests in flight per unit
//! of weight; ties go to the one picked least recently, so idle endpoints share evenly
//! whichever others are busy or down. A slow endpoint holds its slots longer and so gets
//! fewer requests.
//!
//! An endpoint's phases (docs/rendering.md §3.13 "Several endpoints"):
//! - **healthy**: takes requests;
//! - **cooling** after a transient failure (connect error, timeout, 408/429/5xx): no new
//!   request before its backoff ends (shipper-net's [`Backoff`], at least `Retry-After`),
//!   so a request that failed there goes to another endpoint at once;
//! - **open** after [`BREAKER_FAILURES`] transient failures in a row: no request at all
//!   until a health probe (`GET /services/collector/health`) gets an answer; probes back
//!   off up to [`MAX_PROBE_INTERVAL`]. The first request after a good probe decides: a
//!   success closes the breaker, a failure opens it again at once;
//! - **misconfigured** after a configuration error (bad token, not HEC): retried after the
//!   `config_error_backoff_ms` period, like a single endpoint always was.
//!
//! When no endpoint can take a request, requests wait (nothing is dropped) until one can:
//! a slot frees up, a backoff ends, or a probe succeeds.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use shipper_net::Backoff;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::adaptive::{AdaptiveLimit, Observed};
use super::config::Concurrency;
use crate::metrics::EndpointState;
use crate::util::retry::{Cancelled, RetrySettings};

/// Transient failures in a row that open an endpoint's breaker. Three: one failure is a
/// blip (a reset connection), three in a row with backoff between them is an endpoint
/// that is down or overloaded.
pub(crate) const BREAKER_FAILURES: u32 = 3;
/// Longest wait between two health probes of an open endpoint. A probe is a small GET, so
/// a recovered indexer is back in rotation within seconds even while request retries back
/// off to `retry.max_backoff_ms`.
pub(crate) const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Healthy,
    Cooling { until: Instant },
    Open,
    Misconfigured { until: Instant },
}

#[derive(Debug)]
struct Slot {
    weight: u32,
    in_flight: usize,
    phase: Phase,
    /// Transient failures since the last success.
    failures: u32,
    backoff: Backoff,
    /// When it was last picked (a pick counter): breaks ties.
    last_pick: u64,
    /// Its limit when adaptive; `None`: the fixed `concurrency`.
    adaptive: Option<AdaptiveLimit>,
}

impl Slot {
    fn limit(&self, fixed: usize) -> usize {
        self.adaptive.as_ref().map_or(fixed, AdaptiveLimit::limit)
    }
}

#[derive(Debug)]
struct State {
    slots: Vec<Slot>,
    /// Picks so far.
    picks: u64,
}

/// The endpoints' load and health. See the module docs.
#[derive(Debug)]
pub(crate) struct Balancer {
    state: Mutex<State>,
    changed: Notify,
    concurrency: usize,
}

/// A request slot on one endpoint; freed on drop.
#[derive(Debug)]
pub(crate) struct Lease {
    balancer: Arc<Balancer>,
    index: usize,
}

impl Lease {
    /// The endpoint's index.
    pub(crate) fn index(&self) -> usize {
        self.index
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.balancer.lock().slots[self.index].in_flight -= 1;
        self.balancer.changed.notify_waiters();
    }
}

impl Balancer {
    /// Endpoints of these weights, each taking up to `concurrency` requests at once.
    pub(crate) fn new(
        weights: &[u32],
        concurrency: Concurrency,
        retry: RetrySettings,
    ) -> Arc<Self> {
        let now = Instant::now();
        let slots = weights
            .iter()
            .map(|&weight| Slot {
                weight: weight.max(1),
                in_flight: 0,
                phase: Phase::Healthy,
                failures: 0,
                backoff: retry.backoff(),
                last_pick: 0,
                adaptive: (concurrency == Concurrency::Adaptive).then(|| AdaptiveLimit::new(now)),
            })
            .collect();
        Arc::new(Self {
            state: Mutex::new(State { slots, picks: 0 }),
            changed: Notify::new(),
            concurrency: concurrency.max().max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("balancer lock poisoned")
    }

    /// Waits until an endpoint may take a request and has a free slot, and takes it.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        shutdown: &CancellationToken,
    ) -> Result<Lease, Cancelled> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a change between the look and the wait wakes us.
            changed.as_mut().enable();
            let wake_at = match self.try_take(Instant::now()) {
                Ok(index) => {
                    return Ok(Lease {
                        balancer: self.clone(),
                        index,
                    });
                }
                Err(wake_at) => wake_at,
            };
            tokio::select! {
                () = changed => {}
                () = sleep_until(wake_at) => {}
                () = shutdown.cancelled() => return Err(Cancelled),
            }
        }
    }

    /// Takes a slot on the best endpoint, or says when to look again (`None`: when
    /// something changes).
    fn try_take(&self, now: Instant) -> Result<usize, Option<Instant>> {
        let mut st = self.lock();
        let mut best: Option<usize> = None;
        let mut wake_at: Option<Instant> = None;
        for (i, s) in st.slots.iter().enumerate() {
            match s.phase {
                Phase::Healthy => {}
                Phase::Cooling { until } | Phase::Misconfigured { until } if until <= now => {}
                Phase::Cooling { until } | Phase::Misconfigured { until } => {
                    wake_at = Some(wake_at.map_or(until, |w| w.min(until)));
                    continue;
                }
                Phase::Open => continue,
            }
            if s.in_flight >= s.limit(self.concurrency) {
                continue;
            }
            // Fewer in flight per unit of weight wins; of equals, the one picked least
            // recently.
            let better = best.is_none_or(|b| {
                let b = &st.slots[b];
                let (mine, theirs) = (
                    (s.in_flight as u64) * u64::from(b.weight),
                    (b.in_flight as u64) * u64::from(s.weight),
                );
                mine < theirs || mine == theirs && s.last_pick < b.last_pick
            });
            if better {
                best = Some(i);
            }
        }
        let i = best.ok_or(wake_at)?;
        st.picks += 1;
        let pick = st.picks;
        let s = &mut st.slots[i];
        s.in_flight += 1;
        s.last_pick = pick;
        if let Some(a) = &mut s.adaptive {
            a.taken(s.in_flight);
        }
        Ok(i)
    }

    /// A request to endpoint `i` was answered as HEC answers a good request (accepted, or a
    /// data error or 413, which are about the request): the endpoint is healthy.
    pub(crate) fn succeeded(&self, i: usize) {
        let mut st = self.lock();
        let s = &mut st.slots[i];
        let was = s.phase;
        s.phase = Phase::Healthy;
        s.failures = 0;
        s.backoff.reset();
        drop(st);
        if was != Phase::Healthy {
            self.changed.notify_waiters();
        }
    }

    /// What a request to endpoint `i` that took `rtt` on the wire says about its adaptive
    /// limit; `back_pressure` for a transient failure. With a fixed limit: nothing
    /// ([`Observed::Noted`]), and a failure is handled by [`failed`](Self::failed).
    pub(crate) fn observe(&self, i: usize, rtt: Duration, back_pressure: bool) -> Observed {
        let mut st = self.lock();
        let Some(a) = &mut st.slots[i].adaptive else {
            return if back_pressure {
                Observed::Failed
            } else {
                Observed::Noted
            };
        };
        let before = a.limit();
        let observed = a.observe(Instant::now(), rtt, back_pressure);
        let raised = a.limit() > before;
        drop(st);
        if raised {
            // Requests waiting for a slot may take the new one.
            self.changed.notify_waiters();
        }
        observed
    }

    /// A transient failure on endpoint `i`; `retry_after` is the server's requested wait.
    /// Returns the delay before the first health probe when this failure opened the
    /// breaker (the caller starts the probe), else `None`.
    pub(crate) fn failed(&self, i: usize, retry_after: Option<Duration>) -> Option<Duration> {
        let mut st = self.lock();
        let s = &mut st.slots[i];
        s.failures += 1;
        if s.phase == Phase::Open {
            return None;
        }
        let delay = s.backoff.next_delay_at_least(retry_after);
        if s.failures >= BREAKER_FAILURES {
            s.phase = Phase::Open;
            return Some(probe_delay(delay, retry_after));
        }
        let until = Instant::now() + delay;
        s.phase = match s.phase {
            Phase::Cooling { until: old } => Phase::Cooling {
                until: old.max(until),
            },
            _ => Phase::Cooling { until },
        };
        None
    }

    /// Endpoint `i` answered with a configuration error: try it again after `period`.
    pub(crate) fn misconfigured(&self, i: usize, period: Duration) {
        let mut st = self.lock();
        let s = &mut st.slots[i];
        if s.phase != Phase::Open {
            s.phase = Phase::Misconfigured {
                until: Instant::now() + period,
            };
        }
    }

    /// True while endpoint `i`'s breaker is open (its probe keeps going).
    pub(crate) fn is_open(&self, i: usize) -> bool {
        self.lock().slots[i].phase == Phase::Open
    }

    /// A health probe of endpoint `i` failed: the delay before the next one.
    pub(crate) fn probe_failed(&self, i: usize) -> Duration {
        let mut st = self.lock();
        let delay = st.slots[i].backoff.next_delay();
        probe_delay(delay, None)
    }

    /// A health probe of endpoint `i` got an answer: requests may go there again (the
    /// failure count stays, so one more failure opens the breaker at once).
    pub(crate) fn probe_succeeded(&self, i: usize) {
        let mut st = self.lock();
        let s = &mut st.slots[i];
        if s.phase == Phase::Open {
            s.phase = Phase::Healthy;
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// Endpoint `i`'s requests-in-flight limit now.
    pub(crate) fn limit(&self, i: usize) -> usize {
        self.lock().slots[i].limit(self.concurrency)
    }

    /// Endpoint `i`'s state and requests in flight.
    pub(crate) fn status(&self, i: usize) -> (EndpointState, usize) {
        let st = self.lock();
        let s = &st.slots[i];
        let now = Instant::now();
        let state = match s.phase {
            Phase::Healthy => EndpointState::Healthy,
            Phase::Cooling { until } if until <= now => EndpointState::Healthy,
            Phase::Cooling { .. } => EndpointState::BackingOff,
            Phase::Open => EndpointState::Down,
            Phase::Misconfigured { .. } => EndpointState::Misconfigured,
        };
        (state, s.in_flight)
    }
}

/// A probe waits the backoff delay, capped at [`MAX_PROBE_INTERVAL`], but never less than a
/// `Retry-After` the server asked for.
fn probe_delay(delay: Duration, retry_after: Option<Duration>) -> Duration {
    let d = delay.min(MAX_PROBE_INTERVAL);
    retry_after.map_or(d, |r| d.max(r))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry() -> RetrySettings {
        RetrySettings {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            config_error: Duration::from_secs(60),
        }
    }

    /// Takes `n` leases at once and returns the endpoint of each.
    fn take(b: &Arc<Balancer>, n: usize) -> (Vec<usize>, Vec<Lease>) {
        let leases: Vec<Lease> = (0..n)
            .map(|_| {
                let i = b.try_take(Instant::now()).expect("a free endpoint");
                Lease {
                    balancer: b.clone(),
                    index: i,
                }
            })
            .collect();
        (leases.iter().map(Lease::index).collect(), leases)
    }

    #[test]
    fn idle_endpoints_take_turns_and_weights_bias_the_choice() {
        let b = Balancer::new(&[1, 1, 1], Concurrency::Fixed(4), retry());
        let mut turns = Vec::new();
        for _ in 0..6 {
            let (i, _lease) = take(&b, 1);
            turns.extend(i);
        }
        assert_eq!(turns, [0, 1, 2, 0, 1, 2], "one at a time: round-robin");
        // One endpoint busy: the other two still alternate (no extra share for the one
        // after it in the list).
        let busy = Lease {
            balancer: b.clone(),
            index: 1,
        };
        b.lock().slots[1].in_flight += 1;
        let mut turns = Vec::new();
        for _ in 0..6 {
            let (i, _lease) = take(&b, 1);
            turns.extend(i);
        }
        assert_eq!(
            turns,
            [0, 2, 0, 2, 0, 2],
            "the two free endpoints alternate"
        );
        drop(busy);
        // Held at once: the least loaded each time, then full endpoints are skipped.
        let (got, _held) = take(&b, 12);
        let mut per = [0; 3];
        for i in got {
            per[i] += 1;
        }
        assert_eq!(per, [4, 4, 4]);
        assert_eq!(b.try_take(Instant::now()), Err(None), "every slot taken");

        let w = Balancer::new(&[1, 3], Concurrency::Fixed(8), retry());
        let (got, _held) = take(&w, 8);
        let heavy = got.iter().filter(|&&i| i == 1).count();
        assert_eq!(heavy, 6, "weight 3 carries three times the load: {got:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_cools_the_endpoint_and_requests_go_elsewhere() {
        let b = Balancer::new(&[1, 1], Concurrency::Fixed(4), retry());
        assert_eq!(b.failed(0, None), None);
        assert_eq!(b.status(0).0, EndpointState::BackingOff);
        let (got, held) = take(&b, 3);
        assert_eq!(got, [1, 1, 1], "the cooling endpoint gets nothing");
        drop(held);
        tokio::time::advance(Duration::from_millis(101)).await;
        assert_eq!(b.status(0).0, EndpointState::Healthy, "the backoff ended");
        let (got, _held) = take(&b, 2);
        assert_eq!(got.iter().filter(|&&i| i == 0).count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_a_floor_of_the_cooling() {
        let b = Balancer::new(&[1], Concurrency::Fixed(4), retry());
        b.failed(0, Some(Duration::from_secs(5)));
        assert_eq!(
            b.try_take(Instant::now()).map(|_| ()),
            Err(Some(Instant::now() + Duration::from_secs(5)))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn three_failures_open_the_breaker_until_a_probe_answers() {
        let b = Balancer::new(&[1, 1], Concurrency::Fixed(4), retry());
        assert_eq!(b.failed(1, None), None);
        assert_eq!(b.failed(1, None), None);
        let probe_in = b
            .failed(1, None)
            .expect("the third failure opens the breaker");
        assert!(probe_in <= MAX_PROBE_INTERVAL);
        assert!(b.is_open(1));
        assert_eq!(b.status(1).0, EndpointState::Down);
        assert_eq!(b.failed(1, None), None, "already open: no second probe");
        tokio::time::advance(Duration::from_secs(3_600)).await;
        let (got, _held) = take(&b, 4);
        assert_eq!(
            got,
            [0, 0, 0, 0],
            "an open endpoint waits for its probe, however long"
        );
        for _ in 0..20 {
            assert!(b.probe_failed(1) <= MAX_PROBE_INTERVAL);
        }
        b.probe_succeeded(1);
        assert_eq!(b.status(1).0, EndpointState::Healthy);
        // Still on probation: the next failure opens it again at once.
        assert!(b.failed(1, None).is_some());
        b.probe_succeeded(1);
        b.succeeded(1);
        assert_eq!(b.failed(1, None), None, "a success resets the count");
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_for_a_free_slot_or_the_end_of_a_backoff() {
        let b = Balancer::new(&[1], Concurrency::Fixed(1), retry());
        let stop = CancellationToken::new();
        let first = b.acquire(&stop).await.unwrap();
        let waiter = tokio::spawn({
            let b = b.clone();
            let stop = stop.clone();
            async move { b.acquire(&stop).await.map(|l| l.index()) }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished(), "the only slot is taken");
        drop(first);
        assert_eq!(
            waiter.await.unwrap(),
            Ok(0),
            "a freed slot wakes the waiter"
        );

        b.failed(0, Some(Duration::from_secs(2)));
        let start = Instant::now();
        let lease = b.acquire(&stop).await.unwrap();
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(2),
            "woken when the backoff ends"
        );
        drop(lease);

        b.misconfigured(0, Duration::from_secs(60));
        assert_eq!(b.status(0).0, EndpointState::Misconfigured);
        stop.cancel();
        assert!(matches!(b.acquire(&stop).await, Err(Cancelled)));
    }
}
