//! Capped exponential backoff with jitter, for retryable SLS errors (pulls, cursor
//! resolution, checkpoint commits). Pure: the random draw is a parameter of
//! [`Backoff::delay_for`] so the schedule is unit-testable.

use std::time::Duration;

/// Exponential backoff: the ceiling doubles from `initial` up to `max`; each delay is drawn
/// uniformly from `[ceiling/2, ceiling]` ("equal jitter": never zero, so a retry storm
/// cannot form, and spread out so many shards hitting a quota do not retry in lock-step).
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// Failures since the last [`reset`](Self::reset).
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The ceiling for the current attempt.
    fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay for the current attempt given a uniform draw `unit` in `[0, 1]`, then
    /// moves to the next attempt.
    pub(crate) fn delay_for(&mut self, unit: f64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The next delay, with a random draw.
    pub(crate) fn next_delay(&mut self) -> Duration {
        self.delay_for(rand::random::<f64>())
    }

    /// Back to the first attempt (after a success).
    pub(crate) fn reset(&mut self) {
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
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        for _ in 0..200 {
            b.delay_for(1.0);
        }
        assert_eq!(b.delay_for(1.0), Duration::from_secs(30));
    }
}
