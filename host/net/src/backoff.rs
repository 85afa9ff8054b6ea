//! Capped exponential backoff with **equal jitter**: the ceiling doubles from `initial` up to
//! `max`, and each delay is drawn uniformly from `[ceiling/2, ceiling]`.
//!
//! Why equal jitter (of the three policies AWS's "Exponential Backoff And Jitter" compares):
//! the delay is never near zero, so a failing peer cannot be hammered by an immediate retry
//! storm, and it is spread over half the ceiling, so many shards or requests failing together
//! (a quota, a SIEM restart) do not retry in lock-step. Full jitter (`[0, ceiling]`) spreads a
//! little more but allows instant retries; no jitter synchronises every caller.
//!
//! Pure apart from the random draw, which [`Backoff::delay_for`] takes as a parameter so the
//! schedule is unit-testable.

use std::time::Duration;

/// A retry schedule. See the module docs.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A schedule starting at `initial` and capped at `max` (raised to `initial` if lower).
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// Failures since the last [`reset`](Self::reset).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The ceiling of the next delay, without jitter.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay for the current attempt given a uniform draw `unit` in `[0, 1]`, then
    /// moves to the next attempt.
    pub fn delay_for(&mut self, unit: f64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The next delay, with a random draw.
    pub fn next_delay(&mut self) -> Duration {
        self.delay_for(rand::random::<f64>())
    }

    /// The next delay, but at least `at_least` when the peer asked for a wait (an HTTP
    /// `Retry-After`, already capped by the caller).
    pub fn next_delay_at_least(&mut self, at_least: Option<Duration>) -> Duration {
        let d = self.next_delay();
        at_least.map_or(d, |min| d.max(min))
    }

    /// Back to the first attempt (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        let ceilings: Vec<Duration> = (0..6).map(|_| b.delay_for(1.0)).collect();
        assert_eq!(
            ceilings,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(b.attempt(), 6);
        b.reset();
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.ceiling(), ms(100));
        assert_eq!(b.delay_for(0.0), ms(50));
        assert_eq!(b.delay_for(0.5), ms(150));
        for _ in 0..3 {
            b.next_delay();
        }
        // At the cap now: every draw lands in [max/2, max].
        for _ in 0..1000 {
            let d = b.next_delay();
            assert!(d >= ms(500) && d <= ms(1000), "{d:?}");
        }
    }

    #[test]
    fn a_requested_wait_is_a_floor() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(10), ms(20));
        assert_eq!(b.next_delay_at_least(Some(ms(5000))), ms(5000));
        let d = b.next_delay_at_least(None);
        assert!(d >= ms(10) && d <= ms(20), "{d:?}");
        let d = b.next_delay_at_least(Some(ms(1)));
        assert!(d >= ms(10), "{d:?}");
    }

    #[test]
    fn a_cap_below_the_start_is_raised_and_huge_attempts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_millis(1));
        assert_eq!(b.delay_for(1.0), Duration::from_secs(1));
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        for _ in 0..200 {
            b.delay_for(1.0);
        }
        assert_eq!(b.delay_for(1.0), Duration::from_secs(30));
    }
}
