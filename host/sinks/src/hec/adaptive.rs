//! Adaptive request concurrency for one HEC endpoint (`concurrency = "adaptive"`): how many
//! requests may be on the wire to it, found by additive increase and multiplicative decrease
//! (AIMD) from what the endpoint's answers say, the way Vector's adaptive request concurrency
//! does (docs/rendering.md §3.16). A SIEM far away needs many requests in flight to fill the
//! pipe; one that is busy needs fewer; neither distance nor capacity is known in advance.
//!
//! Time is cut into windows about one round trip long (the smoothed RTT, at least
//! [`MIN_WINDOW`]). At the end of a window:
//! - its mean RTT above the smoothed RTT by more than [`RTT_DEVIATION_SCALE`] deviations
//!   (and [`RTT_TOLERANCE`] of it): the endpoint is queueing, so the limit is multiplied by
//!   [`DECREASE`];
//! - else, if requests filled the limit at some point: one more (a limit nobody used says
//!   nothing about the endpoint).
//!
//! Back-pressure (429, 503 and the other transient failures) cuts the limit at once, at most
//! once per window: the first such answer in a window is the endpoint saying "fewer", and
//! [`Observed::Cut`] tells the caller the cut is the reaction (retry the request without a
//! backoff). More of them in the same window, or one at a limit of 1 ([`Observed::Failed`]),
//! mean the endpoint is failing, not just full: the caller backs off as with a fixed limit.
//!
//! Unlike Vector's, the level that failed (a refusal; rising latency lowers the limit without
//! marking a level) is remembered: the limit climbs back to just below
//! it at once but probes it again only after [`PROBE_HOLD_WINDOWS`] calm windows. A receiver
//! that serves N requests at a time and refuses the N+1st then sees one refusal per hold
//! (about 0.1 % of requests at N = 8) instead of one every few windows.
//!
//! A full window that cannot raise the limit (held below the level that failed, or at
//! [`MAX_LIMIT`]) is reported as [`Observed::Saturated`]: the endpoint takes no more
//! requests at once, so only larger requests can carry more per round trip (the sink then
//! grows its request size, `request_size.rs`).

use std::time::Duration;

use tokio::time::Instant;

/// The highest adaptive limit (the fixed `concurrency` range ends here too).
pub(crate) const MAX_LIMIT: usize = 64;
/// Multiplier of a cut.
pub(crate) const DECREASE: f64 = 0.9;
/// Weight of the newest window in the smoothed RTT and its deviation.
pub(crate) const EWMA_ALPHA: f64 = 0.4;
/// Deviations above the smoothed RTT that count as rising latency.
pub(crate) const RTT_DEVIATION_SCALE: f64 = 2.5;
/// Rising latency must also exceed the smoothed RTT by this fraction: with a very steady
/// endpoint the deviation is near zero and jitter alone would cut.
pub(crate) const RTT_TOLERANCE: f64 = 0.1;
/// Shortest window, so a loopback endpoint (sub-millisecond RTT) is not re-evaluated on
/// every answer.
pub(crate) const MIN_WINDOW: Duration = Duration::from_millis(10);
/// Calm windows at the level below the one that last failed before that level is tried
/// again (about 10 s at a 100 ms round trip).
pub(crate) const PROBE_HOLD_WINDOWS: u32 = 100;

/// What an answer did to the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// Nothing that needs the caller.
    Noted,
    /// Back-pressure, answered by a lower limit: retry without a backoff.
    Cut,
    /// Back-pressure again within the window of a cut: back off as with a fixed limit.
    Failed,
    /// A calm window ended with the limit filled and no higher limit to try: the endpoint's
    /// concurrency is what bounds the throughput now.
    Saturated,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    rtt_sum: f64,
    answers: u32,
    /// The limit was reached by requests in flight.
    full: bool,
    /// A cut happened in this window.
    cut: bool,
}

impl Window {
    fn new(start: Instant) -> Self {
        Self {
            start,
            rtt_sum: 0.0,
            answers: 0,
            full: false,
            cut: false,
        }
    }
}

/// One endpoint's adaptive limit. Pure: every method takes the time, so tests drive it.
#[derive(Debug, Clone)]
pub(crate) struct AdaptiveLimit {
    limit: usize,
    /// Smoothed RTT and its mean deviation, in seconds (`None` before the first window).
    rtt: Option<(f64, f64)>,
    window: Window,
    /// The limit at which the endpoint last pushed back, while the limit is below it.
    ceiling: Option<usize>,
    /// Calm windows spent just below `ceiling`.
    held: u32,
}

impl AdaptiveLimit {
    /// Starts at one request in flight, as Vector does: a far endpoint is reached within a
    /// few round trips, a struggling one is not flooded.
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            limit: 1,
            rtt: None,
            window: Window::new(now),
            ceiling: None,
            held: 0,
        }
    }

    /// Requests that may be in flight now.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// A request was taken; `in_flight` counts it.
    pub(crate) fn taken(&mut self, in_flight: usize) {
        if in_flight >= self.limit {
            self.window.full = true;
        }
    }

    /// An answer (or a failure) after `rtt` on the wire; `back_pressure` for a 429, a 503 or
    /// another transient failure.
    pub(crate) fn observe(&mut self, now: Instant, rtt: Duration, back_pressure: bool) -> Observed {
        if back_pressure {
            if self.window.cut || self.limit == 1 {
                // Failing, not full, or nothing left to cut.
                return Observed::Failed;
            }
            self.cut(now);
            return Observed::Cut;
        }
        self.window.rtt_sum += rtt.as_secs_f64();
        self.window.answers += 1;
        let length = self
            .rtt
            .map_or(MIN_WINDOW, |(mean, _)| Duration::from_secs_f64(mean))
            .max(MIN_WINDOW);
        if now.saturating_duration_since(self.window.start) >= length && self.end_window(now) {
            return Observed::Saturated;
        }
        Observed::Noted
    }

    /// Back-pressure: the endpoint refused this level, so it becomes the ceiling.
    fn cut(&mut self, now: Instant) {
        self.ceiling = Some(self.limit);
        self.held = 0;
        self.lower();
        self.window = Window::new(now);
        self.window.cut = true;
    }

    /// Multiplies the limit by [`DECREASE`] (at least 1). Alone, for rising latency: that is
    /// a guess about queueing, not a refusal, so it leaves the ceiling where refusals put it.
    /// Were a latency cut a ceiling too, every spell of jitter (a busy sender's own CPU
    /// delays its reading of answers) would lower the ceiling a step and hold the limit
    /// below it for [`PROBE_HOLD_WINDOWS`]: a few such spells ratchet a limit of 8 down to 4.
    fn lower(&mut self) {
        self.limit = ((self.limit as f64 * DECREASE) as usize).max(1);
    }

    /// Ends the window; true when it was full and the limit could not be raised.
    fn end_window(&mut self, now: Instant) -> bool {
        let w = self.window;
        let mean = w.rtt_sum / f64::from(w.answers.max(1));
        let rising = self.rtt.is_some_and(|(smoothed, deviation)| {
            mean > smoothed * (1.0 + RTT_TOLERANCE) + RTT_DEVIATION_SCALE * deviation
        });
        self.rtt = Some(match self.rtt {
            None => (mean, 0.0),
            Some((smoothed, deviation)) => (
                smoothed + EWMA_ALPHA * (mean - smoothed),
                deviation + EWMA_ALPHA * ((mean - smoothed).abs() - deviation),
            ),
        });
        if rising {
            self.lower();
            // A new window, but latency is not refusal: a refusal right after may still be
            // answered by a cut.
            self.window = Window::new(now);
            return false;
        }
        self.window = Window::new(now);
        if !w.full {
            return false;
        }
        if self.limit >= MAX_LIMIT {
            return true;
        }
        match self.ceiling {
            Some(ceiling) if self.limit + 1 >= ceiling && self.held < PROBE_HOLD_WINDOWS => {
                self.held += 1;
                true
            }
            _ => {
                self.limit += 1;
                self.held = 0;
                if self.ceiling.is_some_and(|c| self.limit >= c) {
                    // Trying the level that failed: a refusal there sets it again, calm
                    // windows open the way up.
                    self.ceiling = None;
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(100);

    /// Runs `windows` windows of one RTT each, with the limit filled in every one.
    fn full_windows(a: &mut AdaptiveLimit, now: &mut Instant, windows: usize) {
        for _ in 0..windows {
            let limit = a.limit();
            a.taken(limit);
            *now += RTT;
            let o = a.observe(*now, RTT, false);
            assert!(matches!(o, Observed::Noted | Observed::Saturated), "{o:?}");
        }
    }

    #[test]
    fn grows_by_one_per_full_window_while_latency_holds() {
        let mut now = Instant::now();
        let mut a = AdaptiveLimit::new(now);
        assert_eq!(a.limit(), 1);
        full_windows(&mut a, &mut now, 7);
        assert_eq!(a.limit(), 8);
        full_windows(&mut a, &mut now, 100);
        assert_eq!(a.limit(), MAX_LIMIT, "and no further");
    }

    #[test]
    fn a_limit_nobody_fills_does_not_grow() {
        let mut now = Instant::now();
        let mut a = AdaptiveLimit::new(now);
        full_windows(&mut a, &mut now, 3);
        for _ in 0..10 {
            a.taken(a.limit() - 1);
            now += RTT;
            a.observe(now, RTT, false);
        }
        assert_eq!(a.limit(), 4);
    }

    #[test]
    fn back_pressure_cuts_at_once_and_once_per_window() {
        let mut now = Instant::now();
        let mut a = AdaptiveLimit::new(now);
        full_windows(&mut a, &mut now, 19);
        assert_eq!(a.limit(), 20);
        assert_eq!(a.observe(now, RTT, true), Observed::Cut);
        assert_eq!(a.limit(), 18);
        // More refusals before the window ends: failing, not full; the limit stays.
        assert_eq!(a.observe(now, RTT, true), Observed::Failed);
        assert_eq!(a.limit(), 18);
        // The next window may cut again.
        now += RTT;
        a.observe(now, RTT, false);
        assert_eq!(a.observe(now, RTT, true), Observed::Cut);
        assert_eq!(a.limit(), 16);
    }

    #[test]
    fn cuts_never_go_below_one_and_a_failure_at_one_backs_off() {
        let mut now = Instant::now();
        let mut a = AdaptiveLimit::new(now);
        full_windows(&mut a, &mut now, 2);
        assert_eq!(a.limit(), 3);
        for want in [2, 1, 1] {
            now += RTT;
            a.observe(now, RTT, false);
            a.observe(now, RTT, true);
            assert_eq!(a.limit(), want);
        }
        assert_eq!(a.observe(now + RTT, RTT, true), Observed::Failed);
        assert_eq!(a.limit(), 1);
    }

    #[test]
    fn rising_latency_cuts() {
        let mut now = Instant::now();
        let mut a = AdaptiveLimit::new(now);
        full_windows(&mut a, &mut now, 9);
        assert_eq!(a.limit(), 10);
        // Within tolerance: still growing.
        a.taken(a.limit());
        now += RTT.mul_f64(1.05);
        a.observe(now, RTT.mul_f64(1.05), false);
        assert_eq!(a.limit(), 11);
        // Twice the round trip: queueing at the endpoint.
        a.taken(a.limit());
        now += RTT * 2;
        a.observe(now, RTT * 2, false);
        assert_eq!(a.limit(), 9);
    }

    /// A receiver 100 ms away that serves 8 requests at a time and refuses the 9th (503),
    /// fed by a sender that always has requests waiting: over a few minutes the limit sits
    /// at 8 almost all the time and fewer than 1 % of the requests are refused.
    #[test]
    fn a_receiver_of_eight_gets_eight_with_few_refusals() {
        const CAPACITY: usize = 8;
        let mut now = Instant::now();
        let mut a = AdaptiveLimit::new(now);
        let (mut sent, mut refused, mut windows_at_capacity) = (0u32, 0u32, 0u32);
        let windows = 3000; // 5 minutes of 100 ms round trips
        for _ in 0..windows {
            // Each round trip the sender fills the limit; the receiver answers the first
            // CAPACITY and refuses the rest at once.
            let limit = a.limit();
            a.taken(limit);
            for i in 0..limit {
                sent += 1;
                if i >= CAPACITY {
                    refused += 1;
                    a.observe(now, Duration::from_millis(1), true);
                }
            }
            now += RTT;
            for _ in 0..limit.min(CAPACITY) {
                a.observe(now, RTT, false);
            }
            windows_at_capacity += u32::from(a.limit() == CAPACITY);
        }
        let refused_share = f64::from(refused) / f64::from(sent);
        assert!(refused_share < 0.01, "{refused} of {sent} refused");
        assert!(
            windows_at_capacity * 10 >= windows * 9,
            "at 8 in {windows_at_capacity} of {windows} windows"
        );
    }

    #[test]
    fn saturated_only_when_a_full_window_cannot_raise_the_limit() {
        let mut now = Instant::now();
        let mut a = AdaptiveLimit::new(now);
        // Climbing: every full window raises the limit, none is saturated.
        for _ in 0..8 {
            a.taken(a.limit());
            now += RTT;
            assert_eq!(a.observe(now, RTT, false), Observed::Noted);
        }
        assert_eq!(a.limit(), 9);
        // The 9th request is refused: held at 8, and each full window there is saturated.
        assert_eq!(a.observe(now, RTT, true), Observed::Cut);
        assert_eq!(a.limit(), 8);
        a.taken(8);
        now += RTT;
        assert_eq!(a.observe(now, RTT, false), Observed::Saturated);
        // A window that did not fill the limit says nothing about the endpoint.
        a.taken(7);
        now += RTT;
        assert_eq!(a.observe(now, RTT, false), Observed::Noted);
        // Nor does one whose latency rose (it cuts instead).
        a.taken(a.limit());
        now += RTT * 3;
        assert_eq!(a.observe(now, RTT * 3, false), Observed::Noted);
        assert_eq!(a.limit(), 7);
    }

    /// A latency cut below the level that was refused climbs straight back: latency is not
    /// a refusal, so it sets no ceiling of its own and starts no hold.
    #[test]
    fn rising_latency_below_a_refused_level_is_recovered_in_one_window() {
        let mut now = Instant::now();
        let mut a = AdaptiveLimit::new(now);
        full_windows(&mut a, &mut now, 8);
        assert_eq!(a.observe(now, RTT, true), Observed::Cut);
        assert_eq!(a.limit(), 8, "held below the refused 9");
        full_windows(&mut a, &mut now, 3);
        for spell in 0..3 {
            a.taken(a.limit());
            now += RTT * 3;
            assert_eq!(a.observe(now, RTT * 3, false), Observed::Noted);
            assert_eq!(a.limit(), 7, "spell {spell}: one step down");
            // Let the smoothed RTT settle back before the next spell.
            full_windows(&mut a, &mut now, 20);
            assert_eq!(a.limit(), 8, "spell {spell}: back at 8, not held at 7");
        }
        // A window as long as the smoothed RTT, which the spells left a little above RTT.
        a.taken(8);
        now += RTT * 2;
        assert_eq!(
            a.observe(now, RTT, false),
            Observed::Saturated,
            "and held below the refused level, which is still 9"
        );
    }

    #[test]
    fn full_windows_at_the_highest_limit_are_saturated() {
        let mut now = Instant::now();
        let mut a = AdaptiveLimit::new(now);
        full_windows(&mut a, &mut now, MAX_LIMIT - 1);
        assert_eq!(a.limit(), MAX_LIMIT);
        a.taken(MAX_LIMIT);
        now += RTT;
        assert_eq!(a.observe(now, RTT, false), Observed::Saturated);
    }

    #[test]
    fn a_level_that_failed_is_tried_again_after_the_hold() {
        let mut now = Instant::now();
        let mut a = AdaptiveLimit::new(now);
        full_windows(&mut a, &mut now, 9);
        assert_eq!(a.observe(now, RTT, true), Observed::Cut);
        assert_eq!(a.limit(), 9);
        full_windows(&mut a, &mut now, PROBE_HOLD_WINDOWS as usize);
        assert_eq!(a.limit(), 9, "held below the level that failed");
        full_windows(&mut a, &mut now, 1);
        assert_eq!(a.limit(), 10, "then tried again");
        full_windows(&mut a, &mut now, 1);
        assert_eq!(a.limit(), 11, "and, as it held, the way up is open");
    }
}
