//! Poll a condition until it holds or a deadline passes (linkerd's `assert_eventually!`).
//! Used instead of sleeps: the poll interval only bounds latency, never correctness. The
//! deadline (default 30 s) can be raised with `SHIPPER_TEST_DEADLINE_SECS` on slow
//! machines. On failure the panic says what was awaited, how long, how many attempts, and
//! the last reason the closure gave.

use std::time::{Duration, Instant};

/// Environment variable overriding the deadline, in seconds.
pub const DEADLINE_ENV: &str = "SHIPPER_TEST_DEADLINE_SECS";
const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// The deadline in force.
pub fn deadline() -> Duration {
    std::env::var(DEADLINE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_DEADLINE)
}

fn interval(attempt: u32) -> Duration {
    Duration::from_millis((10 * u64::from(attempt + 1)).min(200))
}

fn fail(what: &str, start: Instant, attempts: u32, last: &str) -> ! {
    panic!(
        "eventually: {what} did not happen within {:?} ({attempts} attempts, {:.1?} elapsed; raise with {DEADLINE_ENV}). Last: {last}",
        deadline(),
        start.elapsed()
    )
}

/// Calls `f` until it returns `Ok`, blocking the thread between attempts.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    let limit = deadline();
    let mut attempts = 0;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) => {
                attempts += 1;
                if start.elapsed() >= limit {
                    fail(what, start, attempts, &last);
                }
            }
        }
        std::thread::sleep(interval(attempts));
    }
}

/// Async form: awaits `f()` until it returns `Ok`, with `tokio::time::sleep` between attempts.
pub async fn eventually_async<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    let limit = deadline();
    let mut attempts = 0;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(last) => {
                attempts += 1;
                if start.elapsed() >= limit {
                    fail(what, start, attempts, &last);
                }
            }
        }
        tokio::time::sleep(interval(attempts)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_ok() {
        let mut n = 0;
        let v = eventually("n reaches 3", || {
            n += 1;
            if n >= 3 {
                Ok(n)
            } else {
                Err(format!("n = {n}"))
            }
        });
        assert_eq!(v, 3);
    }

    #[test]
    fn failure_reports_attempts_and_last_reason() {
        let r = std::panic::catch_unwind(|| {
            // A condition that cannot hold; deadline shortened through a local copy of the logic.
            let start = Instant::now();
            fail("the impossible", start, 7, "still no")
        });
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(
            msg.contains("the impossible")
                && msg.contains("7 attempts")
                && msg.contains("still no"),
            "{msg}"
        );
    }
}
