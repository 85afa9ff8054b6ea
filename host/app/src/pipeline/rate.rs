//! Rate caps per sink (`max_events_per_sec`, `max_bytes_per_sec`): a token bucket shared
//! by every shard of the process, so a SIEM licence (QRadar's events per second, Splunk's
//! bytes per day) or a small collector is never flooded, even while a backlog drains.
//!
//! Where it acts: a send waits for its tokens *before* it reaches the sink, inside the
//! send future the shard keeps in flight. A throttled shard therefore fills its in-flight
//! slots and stops pulling, exactly as with a slow sink: no new buffer, memory stays flat,
//! the backlog waits in SLS and the lag gauges show it.
//!
//! The bucket is kept as a "theoretical arrival time" per cap (GCRA): each send reserves
//! its events and bytes at the moment it asks, in the order the shards ask, and sleeps
//! until its reservation starts. So shards are served in turn (a shard that waits is
//! ahead of one that asks after it, whichever just took), the long-run rate is exact, a
//! send larger than the bucket still goes (it borrows from the next second rather than
//! waiting forever), and an idle spell earns at most one burst (one second's worth unless
//! `burst_events` / `burst_bytes` say otherwise).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// The caps of one sink, as configured (`None`: no cap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateCaps {
    /// Events per second at most.
    pub events_per_sec: Option<u64>,
    /// Uncompressed event bytes per second at most.
    pub bytes_per_sec: Option<u64>,
    /// Events that may go at once after an idle spell (default: one second's worth).
    pub burst_events: Option<u64>,
    /// Bytes that may go at once after an idle spell (default: one second's worth).
    pub burst_bytes: Option<u64>,
}

impl RateCaps {
    /// True when no cap is set.
    pub fn is_unlimited(&self) -> bool {
        self.events_per_sec.is_none() && self.bytes_per_sec.is_none()
    }
}

/// One cap, as a schedule: `tat` is when every token reserved so far has been earned, and a
/// reservation may start once that is at most one burst ahead of it (GCRA's virtual
/// scheduling).
#[derive(Debug)]
struct Bucket {
    per_sec: f64,
    /// Time one burst's worth of tokens takes to earn.
    burst: Duration,
    /// When the tokens reserved so far are all earned; `None` before the first send.
    tat: Option<Instant>,
}

impl Bucket {
    fn new(per_sec: u64, burst: Option<u64>) -> Self {
        let per_sec = per_sec as f64;
        let burst = burst.map_or(1.0, |b| b as f64 / per_sec);
        Self {
            per_sec,
            burst: Duration::from_secs_f64(burst),
            tat: None,
        }
    }

    fn cost(&self, n: u64) -> Duration {
        Duration::from_secs_f64(n as f64 / self.per_sec)
    }

    /// The earliest moment (`now` or later) a reservation of `n` tokens may start: when
    /// the schedule would then run at most one burst ahead, or one send ahead for a send
    /// larger than the burst.
    fn earliest(&self, now: Instant, n: u64) -> Instant {
        let cost = self.cost(n);
        let due = self.tat.unwrap_or(now) + cost;
        match due.checked_sub(self.burst.max(cost)) {
            Some(start) if start > now => start,
            _ => now,
        }
    }

    /// Reserves `n` tokens starting at `start`: an idle spell before it is forgotten beyond
    /// the burst.
    fn reserve(&mut self, start: Instant, n: u64) {
        let from = self.tat.map_or(start, |t| t.max(start));
        self.tat = Some(from + self.cost(n));
    }
}

#[derive(Debug)]
struct State {
    events: Option<Bucket>,
    bytes: Option<Bucket>,
    /// Sends waiting for their reservation now.
    waiting: usize,
    /// Throttled time is counted up to here.
    counted_to: Instant,
}

/// The rate caps of one sink, shared by every shard. See the module docs.
#[derive(Debug)]
pub struct RateLimiter {
    sink: String,
    state: Mutex<State>,
    metrics: std::sync::Arc<Metrics>,
    /// The sink's shutdown: a send still waiting when it fires is cancelled (its logs stay
    /// uncommitted and are delivered after a restart).
    cancel: CancellationToken,
}

/// The limiter gave up because of shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl RateLimiter {
    /// The limiter of `sink`, or `None` when `caps` sets no cap.
    pub fn new(
        sink: &str,
        caps: RateCaps,
        metrics: std::sync::Arc<Metrics>,
        cancel: CancellationToken,
    ) -> Option<std::sync::Arc<Self>> {
        if caps.is_unlimited() {
            return None;
        }
        Some(std::sync::Arc::new(Self {
            sink: sink.to_owned(),
            state: Mutex::new(State {
                events: caps
                    .events_per_sec
                    .map(|r| Bucket::new(r, caps.burst_events)),
                bytes: caps.bytes_per_sec.map(|r| Bucket::new(r, caps.burst_bytes)),
                waiting: 0,
                counted_to: Instant::now(),
            }),
            metrics,
            cancel,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("rate limiter lock poisoned")
    }

    /// True while a send waits for its reservation (the sink is being throttled).
    pub fn is_throttling(&self) -> bool {
        self.lock().waiting > 0
    }

    /// Waits until a send of `events` events and `bytes` bytes may go.
    pub async fn acquire(&self, events: u64, bytes: u64) -> Result<(), Cancelled> {
        let start = {
            let mut st = self.lock();
            let now = Instant::now();
            let start = [(&st.events, events), (&st.bytes, bytes)]
                .into_iter()
                .filter_map(|(b, n)| Some(b.as_ref()?.earliest(now, n)))
                .fold(now, Instant::max);
            if let Some(b) = &mut st.events {
                b.reserve(start, events);
            }
            if let Some(b) = &mut st.bytes {
                b.reserve(start, bytes);
            }
            if start <= now {
                return Ok(());
            }
            self.waiting(&mut st, now, 1);
            start
        };
        let _done = Waiting(self);
        tokio::select! {
            () = tokio::time::sleep_until(start) => Ok(()),
            () = self.cancel.cancelled() => Err(Cancelled),
        }
    }

    /// Counts the time throttled so far (while anything waited) and changes the number of
    /// waiting sends by `delta`.
    fn waiting(&self, st: &mut State, now: Instant, delta: isize) {
        if st.waiting > 0 {
            self.metrics
                .throttled(&self.sink, now.saturating_duration_since(st.counted_to));
        }
        st.counted_to = now;
        st.waiting = st.waiting.saturating_add_signed(delta);
        self.metrics.throttle_waiting(&self.sink, st.waiting);
    }
}

/// Ends a wait (also when the send is dropped mid-wait).
struct Waiting<'a>(&'a RateLimiter);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        self.0.waiting(&mut st, Instant::now(), -1);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::pipeline::testing;

    fn limiter(caps: RateCaps) -> Arc<RateLimiter> {
        RateLimiter::new("s", caps, testing::metrics(), CancellationToken::new()).unwrap()
    }

    /// When each of `sends` (events, bytes) may go, from a fresh limiter, asked at once.
    async fn schedule(l: &Arc<RateLimiter>, sends: &[(u64, u64)]) -> Vec<Duration> {
        let start = Instant::now();
        let handles: Vec<_> = sends
            .iter()
            .map(|&(e, b)| {
                let l = l.clone();
                tokio::spawn(async move {
                    l.acquire(e, b).await.unwrap();
                    start.elapsed()
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }

    #[test]
    fn no_cap_no_limiter() {
        assert!(
            RateLimiter::new(
                "s",
                RateCaps::default(),
                testing::metrics(),
                CancellationToken::new()
            )
            .is_none()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_seconds_burst_then_the_rate() {
        let l = limiter(RateCaps {
            events_per_sec: Some(1_000),
            ..Default::default()
        });
        // 500 events a send: the first second's worth goes at once (two sends), then one
        // send every half second.
        let at = schedule(&l, &[(500, 0); 6]).await;
        let ms: Vec<u128> = at.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 0, 500, 1_000, 1_500, 2_000]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_larger_than_the_bucket_goes_and_the_next_one_pays() {
        let l = limiter(RateCaps {
            events_per_sec: Some(100),
            ..Default::default()
        });
        let at = schedule(&l, &[(1_000, 0), (10, 0)]).await;
        assert_eq!(at[0], Duration::ZERO);
        // 1000 events at 100/s: ten seconds' worth, one of them from the full bucket; the
        // next 10 events (0.1 s) may go once the bucket is one burst from even.
        assert_eq!(at[1].as_millis(), 9_100);
    }

    #[tokio::test(start_paused = true)]
    async fn the_tighter_of_two_caps_decides_and_a_burst_can_be_set() {
        let l = limiter(RateCaps {
            events_per_sec: Some(1_000),
            bytes_per_sec: Some(10_000),
            burst_bytes: Some(10_000),
            ..Default::default()
        });
        // 100 events of 100 bytes each per send: 10,000 bytes, a full second of the byte cap
        // (a tenth of a second of the event cap).
        let at = schedule(&l, &[(100, 10_000); 4]).await;
        let ms: Vec<u128> = at.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 1_000, 2_000, 3_000]);
        let l = limiter(RateCaps {
            events_per_sec: Some(10),
            burst_events: Some(50),
            ..Default::default()
        });
        let at = schedule(&l, &[(25, 0); 3]).await;
        let ms: Vec<u128> = at.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 0, 2_500], "a burst of 50: two sends of 25 at once");
    }

    #[tokio::test(start_paused = true)]
    async fn shards_are_served_in_the_order_they_ask() {
        let l = limiter(RateCaps {
            events_per_sec: Some(10),
            burst_events: Some(10),
            ..Default::default()
        });
        l.acquire(10, 0).await.unwrap(); // the bucket is empty now
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Shard A asks for three sends in a row, then B asks once: B is served after A's
        // first three only because it asked after them; once A asks again it queues
        // behind B.
        for (shard, n) in [("a", 3), ("b", 1)] {
            for _ in 0..n {
                let (l, order) = (l.clone(), order.clone());
                tasks.push(tokio::spawn(async move {
                    l.acquire(10, 0).await.unwrap();
                    order.lock().unwrap().push(shard);
                }));
                tokio::task::yield_now().await;
            }
        }
        let (l2, order2) = (l.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            l2.acquire(10, 0).await.unwrap();
            order2.lock().unwrap().push("a-again");
        }));
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["a", "a", "a", "b", "a-again"]);
    }

    #[tokio::test(start_paused = true)]
    async fn throttled_time_is_wall_time_and_a_shutdown_cancels_the_wait() {
        let metrics = testing::metrics();
        let cancel = CancellationToken::new();
        let l = RateLimiter::new(
            "capped",
            RateCaps {
                events_per_sec: Some(1),
                ..Default::default()
            },
            metrics.clone(),
            cancel.clone(),
        )
        .unwrap();
        // Two sends wait at the same time, 5 s and 10 s: throttled for 10 s of wall time.
        let at = schedule(&l, &[(5, 0), (5, 0), (5, 0)]).await;
        assert_eq!(at[2].as_secs(), 10);
        assert!(!l.is_throttling());
        let text = metrics.encode();
        assert!(
            text.contains("shipper_sink_throttled_seconds_total{sink=\"capped\"} 10.0"),
            "{text}"
        );
        let waiting = tokio::spawn({
            let l = l.clone();
            async move { l.acquire(1, 0).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(l.is_throttling());
        cancel.cancel();
        assert_eq!(waiting.await.unwrap(), Err(Cancelled));
        assert!(!l.is_throttling());
    }
}
