//! Rate caps (`max_events_per_sec`, `max_bytes_per_sec`) against a backlog in SLS, as after
//! an outage: the rate measured at the receiver over 30 s is the cap within ±5 %, the
//! process's memory stays flat while the backlog waits in SLS (throttling holds the shards
//! back like a slow sink, with no new buffer), the lag gauge grows while the backlog drains
//! at the capped rate and reads 0 once it is gone, and every log arrives exactly once.

use std::time::{Duration, Instant};

use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;

use crate::harness::dataset::{Tally, hec_seqs};
use crate::harness::shipper::ShipperProcess;
use crate::harness::sls::{SlsEnv, shipper_env, wait_for_events};

/// The receiver-side rate is measured over this window…
const WINDOW: Duration = Duration::from_secs(30);
/// …starting this long after the first event, past the first second's burst.
const SKIP: Duration = Duration::from_secs(2);
/// How much the resident memory may grow over the window (allocator noise, the first
/// few metric series): "flat" next to a backlog of tens of megabytes.
const RSS_SLACK: u64 = 16 << 20;

/// What the cap counts.
#[derive(Clone, Copy)]
enum Cap {
    Events(u64),
    Bytes(u64),
}

/// One sample taken while the backlog drains.
#[derive(Debug)]
struct Sample {
    at: Duration,
    rss: u64,
    lag_seconds: f64,
    /// Printed with the samples when an assertion fails.
    #[expect(dead_code, reason = "shown in the failure message only")]
    lag_groups: f64,
}

fn run_capped(test: &str, cap: Cap, logs: u64) {
    let group = format!("e2e-{test}");
    let (env, ds) = SlsEnv::start_loaded(test, 4, logs);
    let hec = env.hec_receiver();
    let (key, value) = match cap {
        Cap::Events(n) => ("sink.max_events_per_sec", n),
        Cap::Bytes(n) => ("sink.max_bytes_per_sec", n),
    };
    let config = env
        .run_config(&group, artifacts::PLUGIN_SPLUNK_HEC)
        .hec_sink(&hec.url())
        .set(key, i64::try_from(value).expect("a cap that fits TOML"));
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &config, &[], &shipper_env());

    let t0 = eventually("the first event", || {
        shipper.assert_running();
        hec.events()
            .first()
            .map(|e| e.received_at)
            .ok_or_else(|| "none yet".to_owned())
    });
    let mut samples = Vec::new();
    while t0.elapsed() < SKIP + WINDOW {
        std::thread::sleep(Duration::from_secs(5).min(SKIP + WINDOW - t0.elapsed()));
        shipper.assert_running();
        let m = shipper.scrape().expect("/metrics");
        samples.push(Sample {
            at: t0.elapsed(),
            rss: shipper.rss_bytes(),
            lag_seconds: m.sum("shipper_shard_lag_seconds"),
            lag_groups: m.sum("shipper_shard_lag_groups"),
        });
    }
    let (from, to) = (t0 + SKIP, t0 + SKIP + WINDOW);
    let within = |at: Instant| at >= from && at < to;
    let (measured, target) = match cap {
        Cap::Events(n) => {
            let events = hec
                .events()
                .iter()
                .filter(|e| within(e.received_at))
                .count();
            (events as f64 / WINDOW.as_secs_f64(), n as f64)
        }
        Cap::Bytes(n) => {
            let bytes: usize = hec
                .requests()
                .iter()
                .filter(|r| r.status == 200 && within(r.at))
                .map(|r| r.decoded_bytes)
                .sum();
            (bytes as f64 / WINDOW.as_secs_f64(), n as f64)
        }
    };
    let delivered_in_window = hec.event_count() as u64;
    assert!(
        delivered_in_window < logs,
        "the backlog must outlast the window ({delivered_in_window} of {logs} delivered)"
    );

    // Drain, then the lag reads 0.
    wait_for_events(&mut shipper, &hec, logs);
    env.wait_checkpoints_at_end(&group);
    let drained = eventually("the lag gauges at 0", || {
        let m = shipper.scrape().ok_or("no /metrics")?;
        let (s, g) = (
            m.sum("shipper_shard_lag_seconds"),
            m.sum("shipper_shard_lag_groups"),
        );
        if s == 0.0 && g == 0.0 {
            Ok(m)
        } else {
            Err(format!("lag {s} s, {g} groups"))
        }
    });
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "exit after SIGTERM");
    let throttled = drained.sum("shipper_sink_throttled_seconds_total");

    let deviation = measured / target - 1.0;
    assert!(
        deviation.abs() <= 0.05,
        "{test}: {measured:.0}/s at the receiver over {WINDOW:?}, cap {target:.0}/s ({:+.1} %)",
        deviation * 100.0
    );
    let first = &samples[0];
    let max_rss = samples.iter().map(|s| s.rss).max().expect("samples");
    assert!(
        max_rss <= first.rss + RSS_SLACK,
        "{test}: memory grew while throttled: {samples:#?}"
    );
    let last = samples.last().expect("samples");
    // The backlog was written at once: the data at the read position gets older about as
    // fast as the clock runs while the cap holds the shards back (the LogGroups behind may
    // already read 0 when a shard's last pulls are in hand, being sent at the cap).
    let aged = last.lag_seconds - first.lag_seconds;
    let waited = (last.at - first.at).as_secs_f64();
    assert!(
        aged >= waited * 0.5,
        "{test}: the lag grows while the capped backlog drains: {samples:#?}"
    );
    assert!(
        throttled >= WINDOW.as_secs_f64() * 0.9,
        "{test}: {throttled} s counted as throttled"
    );
    Tally::new(ds.len(), hec_seqs(&hec.events())).assert_exactly_once(&ds, test);
    eprintln!(
        "{test}: {measured:.0}/s measured over {WINDOW:?} for a cap of {target:.0}/s ({:+.2} %); RSS {} → max {} MiB; lag {:.0} s → {:.0} s then 0; {throttled:.1} s throttled",
        deviation * 100.0,
        first.rss >> 20,
        max_rss >> 20,
        first.lag_seconds,
        last.lag_seconds,
    );
}

#[test]
fn an_events_cap_holds_2000_per_second_through_a_100k_backlog() {
    run_capped("rate-events", Cap::Events(2_000), 100_000);
}

#[test]
fn a_bytes_cap_holds_its_rate_through_a_backlog() {
    // ≈ 550 rendered bytes a log: about 1,270 logs a second, 50k logs last ≈ 40 s.
    run_capped("rate-bytes", Cap::Bytes(700_000), 50_000);
}
