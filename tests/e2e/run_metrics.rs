//! `shipper run`'s Prometheus endpoint (`[metrics] listen`) reports what really
//! happened. Three scenarios against the emulator and the HEC receiver:
//!
//! - a clean run over two shards of day-old data: `/health` answers 200
//!   `{"status":"ok","shards":2,"sinks":[…]}` with the HEC endpoint healthy; `/metrics`
//!   has, per shard, exactly the logs loaded into it
//!   (`shipper_logs_in`) and the events the receiver stored (`shipper_events_out`), raw
//!   bytes, plugin time, checkpoints and the lag gauges: LogGroups behind the end appear
//!   within moments of a shard being held, and once caught up both that and the data age
//!   read 0 (not the day-old age of the last batch); the sink's request, byte and event
//!   counters equal what the receiver saw; the batch latency histogram is filled;
//! - a shard held behind (HEC unreachable from the start, a day-old backlog): its LogGroups
//!   behind appear within moments of the shard being held and are above 0, and the data age
//!   reads a day;
//! - back-pressure: with HEC gone (connection refused) and a backlog ten times what a
//!   shard may hold in flight, `shipper_logs_in` stops growing and stays far below the
//!   backlog, no event is counted out and no checkpoint moves past the last delivered log;
//!   when HEC is back every log arrives exactly once and the counters add up.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::{deadline, eventually};
use shipper_test_support::ports::reserve_port;

use crate::harness::dataset::{Dataset, Tally, hec_seqs};
use crate::harness::shipper::{RunConfig, ShipperProcess};
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env, wait_for_events};

const SHARDS: u32 = 2;
const LOGS_PER_GROUP: u64 = 100;
/// LogGroups per PullLogs in the back-pressure test: 1,000 logs per pulled batch, so the
/// logs one shard holds (one batch being formatted, `max_in_flight` sends) are a small,
/// known share of the backlog.
const FETCH_COUNT: u32 = 10;

fn config(env: &SlsEnv, group: &str, url: &str) -> RunConfig {
    env.run_config(group, artifacts::PLUGIN_SPLUNK_HEC)
        .hec_sink(url)
}

/// One sample of the text exposition format: `name{k="v",…} value`.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed `/metrics` answer (only what these tests read: samples, no type metadata).
#[derive(Debug, Clone)]
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    fn parse(text: String) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("not a sample line: {l:?}")))
            .collect();
        Self { text, samples }
    }

    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// Sum over every label set; 0 when absent (as Prometheus' `sum()` would be).
    fn sum(&self, name: &str) -> f64 {
        self.named(name).map(|s| s.value).sum()
    }

    /// The value of the one sample of `name` without labels.
    fn single(&self, name: &str) -> f64 {
        let found: Vec<&Sample> = self.named(name).collect();
        assert!(
            found.len() == 1 && found[0].labels.is_empty(),
            "one unlabelled {name} sample expected, got {found:?}\n{}",
            self.text
        );
        found[0].value
    }

    /// Per-shard values of `name`; every sample must carry this test's logstore label.
    fn by_shard(&self, name: &str) -> BTreeMap<u32, f64> {
        let logstore = format!("{PROJECT}/{LOGSTORE}");
        self.named(name)
            .map(|s| {
                assert_eq!(
                    s.labels.get("logstore"),
                    Some(&logstore),
                    "{name} sample without the logstore label: {s:?}"
                );
                let shard = s.labels["shard"].parse::<u32>().expect("shard label");
                (shard, s.value)
            })
            .collect()
    }

    fn shards_with(&self, name: &str) -> Vec<u32> {
        self.by_shard(name).into_keys().collect()
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse::<f64>().ok()?;
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"` with the format's escapes (`\\`, `\"`, `\n`).
fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        out.insert(key.to_owned(), value);
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    Some(out)
}

/// An HTTP answer: status, `content-type`, body.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

/// A minimal HTTP/1.0 GET (the harness's `scrape` returns the body only; these tests check
/// status codes and content types too).
fn get(addr: SocketAddr, path: &str) -> Answer {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to the metrics listener {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("send request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read answer");
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {resp:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        body: body.to_owned(),
    }
}

fn scrape(addr: SocketAddr) -> Scrape {
    let a = get(addr, "/metrics");
    assert_eq!(a.status, 200, "/metrics: {}", a.body);
    Scrape::parse(a.body)
}

/// Logs loaded per shard.
fn logs_per_shard(ds: &Dataset) -> BTreeMap<u32, f64> {
    ds.groups_per_shard()
        .iter()
        .enumerate()
        .map(|(s, g)| (s as u32, f64::from(*g) * LOGS_PER_GROUP as f64))
        .collect()
}

/// How old the first scenario's data is by the server's clock (its receive time, which
/// `shipper_shard_lag_seconds` measures).
const DATA_AGE_SECS: u32 = 86_400;

fn unix_now() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    u32::try_from(secs).expect("unix time fits u32")
}

/// Waits until every shard is held and has a `shipper_shard_lag_groups` series, and checks
/// the series came within moments of the shards being held (a tenth of the test deadline,
/// 3 s by default): lag is measured as soon as a shard is taken (then every few seconds),
/// not at the next periodic tick. Returns the gauges.
fn lag_groups_once_held(
    shipper: &mut ShipperProcess,
    addr: SocketAddr,
    scenario: &str,
) -> BTreeMap<u32, f64> {
    let mut held_at = None;
    let (held_at, measured_at, behind) =
        eventually("the LogGroups-behind gauge of every held shard", || {
            shipper.assert_running();
            let m = scrape(addr);
            let now = Instant::now();
            if held_at.is_none() && m.single("shipper_shards_held") == f64::from(SHARDS) {
                held_at = Some(now);
            }
            let lag = m.by_shard("shipper_shard_lag_groups");
            match held_at {
                Some(held) if lag.len() == SHARDS as usize => Ok((held, now, lag)),
                _ => Err(format!(
                    "held since {held_at:?}; lag gauges so far: {lag:?}"
                )),
            }
        });
    let appeared = measured_at - held_at;
    assert!(
        appeared < deadline() / 10,
        "{scenario}: lag gauges appeared {appeared:?} after the shards were held: {behind:?}"
    );
    eprintln!(
        "run_metrics ({scenario}): shipper_shard_lag_groups of every shard {appeared:?} after \
         holding them"
    );
    behind
}

#[test]
fn metrics_and_health_report_what_was_shipped() {
    const GROUP: &str = "e2e-metrics";
    const LOGS: u64 = 6_000;
    let env = SlsEnv::start("metrics-values", SHARDS);
    let mut ds = Dataset::new(SHARDS, LOGS_PER_GROUP);
    env.load_received_at(&mut ds, LOGS, unix_now() - DATA_AGE_SECS);
    let hec = env.hec_receiver();
    let mut shipper = ShipperProcess::start(
        env.dir(),
        "shipper",
        &config(&env, GROUP, &hec.url()),
        &[],
        &shipper_env(),
    );
    let addr = shipper.metrics_addr();

    lag_groups_once_held(&mut shipper, addr, "caught up quickly");

    wait_for_events(&mut shipper, &hec, LOGS);
    env.wait_checkpoints_at_end(GROUP);
    // The server has the checkpoint a moment before the committer counts it.
    let m = eventually("a counted checkpoint on every shard", || {
        let m = scrape(addr);
        let cps = m.by_shard("shipper_checkpoints_total");
        if cps.len() == SHARDS as usize && cps.values().all(|v| *v >= 1.0) {
            Ok(m)
        } else {
            Err(format!("checkpoints counted: {cps:?}"))
        }
    });

    let health = get(addr, "/health");
    assert_eq!(health.status, 200, "/health: {}", health.body);
    assert_eq!(health.content_type, "application/json");
    let body: serde_json::Value = serde_json::from_str(&health.body).expect("/health is JSON");
    assert_eq!(
        body,
        serde_json::json!({
            "status": "ok",
            "shards": SHARDS,
            "sinks": [{
                "name": "default",
                "endpoints": [{ "endpoint": hec.url(), "state": "healthy", "in_flight": 0 }],
            }],
        })
    );
    let metrics = get(addr, "/metrics");
    assert!(
        metrics
            .content_type
            .starts_with("application/openmetrics-text"),
        "{}",
        metrics.content_type
    );
    assert!(
        metrics.body.ends_with("# EOF\n"),
        "OpenMetrics ends with # EOF"
    );
    assert_eq!(get(addr, "/nope").status, 404);

    let stored = hec.event_count() as f64;
    let shards: Vec<u32> = (0..SHARDS).collect();
    let want_in = logs_per_shard(&ds);
    let ctx = &m.text;
    // Logs in: exactly what was loaded into each shard (each pulled once).
    assert_eq!(m.by_shard("shipper_logs_in_total"), want_in, "{ctx}");
    // Events out: per shard, what that shard's logs became; in total, what HEC stored.
    assert_eq!(m.by_shard("shipper_events_out_total"), want_in, "{ctx}");
    assert_eq!(m.sum("shipper_events_out_total"), stored);
    assert_eq!(m.sum("shipper_sink_events_accepted_total"), stored);
    assert_eq!(m.sum("shipper_sink_events_rejected_total"), 0.0);
    assert_eq!(m.sum("shipper_logs_dropped_total"), 0.0);
    assert_eq!(m.sum("shipper_dead_lettered_total"), 0.0);
    assert_eq!(m.sum("shipper_plugin_failures_total"), 0.0);
    assert_eq!(m.single("shipper_shards_held"), f64::from(SHARDS));

    // Bytes: raw LogGroup bytes in per shard (at least the logs' text), and the sink's
    // request/wire bytes equal to what the receiver decoded/read, request by request.
    for (shard, bytes) in m.by_shard("shipper_raw_in_bytes_total") {
        assert!(
            bytes > want_in[&shard] * 100.0,
            "shard {shard}: {bytes} raw bytes for {} logs",
            want_in[&shard]
        );
    }
    assert_eq!(m.shards_with("shipper_raw_in_bytes_total"), shards);
    // Not counted by the sink: the start-up check's `/health` GET and empty token probe.
    let posts: Vec<_> = hec
        .requests()
        .into_iter()
        .filter(|r| !r.path.ends_with("/health") && r.wire_bytes > 0)
        .collect();
    assert!(
        posts.iter().all(|r| r.status == 200),
        "no fault injected: {:?}",
        posts
            .iter()
            .filter(|r| r.status != 200)
            .take(3)
            .collect::<Vec<_>>()
    );
    assert_eq!(m.sum("shipper_sink_requests_total"), posts.len() as f64);
    let wire: usize = posts.iter().map(|r| r.wire_bytes).sum();
    let decoded: usize = posts.iter().map(|r| r.decoded_bytes).sum();
    assert_eq!(m.sum("shipper_sink_wire_bytes_total"), wire as f64, "{ctx}");
    assert_eq!(m.sum("shipper_sink_request_bytes_total"), decoded as f64);
    assert!(
        0.0 < wire as f64 && wire < decoded,
        "gzip: {wire} wire bytes for {decoded} bytes"
    );
    assert_eq!(m.sum("shipper_sink_retries_total"), 0.0);

    // Plugin time per shard, batch latency per settled send.
    let plugin = m.by_shard("shipper_plugin_seconds_total");
    assert_eq!(plugin.keys().copied().collect::<Vec<_>>(), shards);
    assert!(plugin.values().all(|s| *s > 0.0), "plugin time: {plugin:?}");
    let sends = m.single("shipper_batch_latency_seconds_count");
    assert!(
        sends >= 1.0 && sends <= posts.len() as f64,
        "one latency per settled send: {sends} for {} requests",
        posts.len()
    );
    assert!(m.single("shipper_batch_latency_seconds_sum") > 0.0);
    let inf = m
        .named("shipper_batch_latency_seconds_bucket")
        .find(|s| s.labels.get("le").is_some_and(|l| l == "+Inf"))
        .expect("+Inf bucket");
    assert_eq!(inf.value, sends);
    let generation: Vec<&Sample> = m.named("shipper_plugin_generation").collect();
    assert!(
        generation.len() == 1 && generation[0].value == 1.0,
        "{generation:?}"
    );
    assert_eq!(m.sum("shipper_plugin_breaker_open"), 0.0);

    // Lag once caught up: nothing behind, and no age, although every batch read was a day
    // old by the server's clock (a gauge left at the last batch's age would read ~86,400 s
    // for as long as the shard stays idle). The reader reports the catch-up right after its
    // last batch, so this holds by now; polled only to tolerate scheduling.
    eventually("both lag gauges at 0 on every shard", || {
        shipper.assert_running();
        let m = scrape(addr);
        let behind = m.by_shard("shipper_shard_lag_groups");
        let age = m.by_shard("shipper_shard_lag_seconds");
        let zero = |g: &BTreeMap<u32, f64>| {
            g.keys().copied().eq(shards.iter().copied()) && g.values().all(|v| *v == 0.0)
        };
        if zero(&behind) && zero(&age) {
            Ok(())
        } else {
            Err(format!(
                "LogGroups behind {behind:?}, seconds behind {age:?}"
            ))
        }
    });

    shipper.signal("TERM");
    assert!(shipper.wait_exit().success());
    let seqs = hec_seqs(&hec.events());
    Tally::new(ds.len(), seqs).assert_exactly_once(&ds, "metrics run");
}

#[test]
fn a_shard_held_behind_reports_its_lag_at_once() {
    const GROUP: &str = "e2e-metrics-behind";
    const BACKLOG: u64 = 40_000;
    let env = SlsEnv::start("metrics-behind", SHARDS);
    let mut ds = Dataset::new(SHARDS, LOGS_PER_GROUP);
    env.load_received_at(&mut ds, BACKLOG, unix_now() - DATA_AGE_SECS);
    // Nothing listens there: every send fails and is retried, so each shard stops pulling
    // after a couple of batches of FETCH_COUNT groups and stays behind.
    let port = reserve_port();
    let cfg = config(&env, GROUP, &format!("http://127.0.0.1:{}", port.port()))
        .set("source.fetch_count", i64::from(FETCH_COUNT));
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &cfg, &[], &shipper_env());
    let addr = shipper.metrics_addr();

    let behind = lag_groups_once_held(&mut shipper, addr, "held behind");
    let groups = ds.groups_per_shard();
    for (shard, lag) in &behind {
        let total = f64::from(groups[*shard as usize]);
        assert!(
            0.0 < *lag && *lag <= total,
            "shard {shard}: {lag} LogGroups behind of {total}: {behind:?}"
        );
    }
    // The read position is a day into the past by the server's clock, and the age says so.
    let age = eventually("the data age of every shard", || {
        shipper.assert_running();
        let age = scrape(addr).by_shard("shipper_shard_lag_seconds");
        if age.len() == SHARDS as usize {
            Ok(age)
        } else {
            Err(format!("age gauges so far: {age:?}"))
        }
    });
    let day = f64::from(DATA_AGE_SECS);
    assert!(
        age.values().all(|s| (day..day + 600.0).contains(s)),
        "a day behind: {age:?}"
    );
    // Shutting down would wait for the dead sink; nothing here depends on a clean stop.
    shipper.kill();
    drop(port);
}

#[test]
fn a_down_sink_stops_the_pulls_and_the_counters_say_so() {
    const GROUP: &str = "e2e-metrics-bp";
    const BEFORE: u64 = 2_000;
    const BACKLOG: u64 = 40_000;
    /// How long the pulled count must stay flat.
    const FLAT: Duration = Duration::from_secs(3);
    let env = SlsEnv::start("metrics-backpressure", SHARDS);
    let mut ds = Dataset::new(SHARDS, LOGS_PER_GROUP);
    env.load(&mut ds, BEFORE);
    // The receiver goes away and comes back on the same address.
    let port = reserve_port();
    let hec_addr = format!("127.0.0.1:{}", port.port());
    let hec = env.hec_receiver_on(&hec_addr);
    let cfg = config(&env, GROUP, &format!("http://{hec_addr}"))
        .set("source.fetch_count", i64::from(FETCH_COUNT));
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &cfg, &[], &shipper_env());
    let addr = shipper.metrics_addr();
    wait_for_events(&mut shipper, &hec, BEFORE);
    let delivered_ends = env.wait_checkpoints_at_end(GROUP);
    let first = hec.events();
    drop(hec);

    // HEC is gone: every send fails to connect and is retried.
    env.load(&mut ds, BACKLOG);
    let mut last = (0.0, Instant::now());
    let stalled = eventually("the pulled count to settle while HEC is down", || {
        shipper.assert_running();
        let m = scrape(addr);
        let pulled = m.sum("shipper_logs_in_total");
        let failures =
            m.sum("shipper_sink_connect_failures_total") + m.sum("shipper_sink_retries_total");
        if pulled != last.0 {
            last = (pulled, Instant::now());
        }
        if pulled > BEFORE as f64 && failures >= 2.0 && last.1.elapsed() >= Duration::from_secs(1) {
            Ok(m)
        } else {
            Err(format!("{pulled} pulled, {failures} failed sends"))
        }
    });
    let pulled = stalled.sum("shipper_logs_in_total");
    let start = Instant::now();
    while start.elapsed() < FLAT {
        let m = scrape(addr);
        assert_eq!(
            m.sum("shipper_logs_in_total"),
            pulled,
            "shipper kept pulling with the sink down ({:?} after it settled)",
            start.elapsed()
        );
        assert_eq!(m.sum("shipper_events_out_total"), BEFORE as f64);
        assert_eq!(m.sum("shipper_sink_events_accepted_total"), BEFORE as f64);
        std::thread::sleep(Duration::from_millis(250));
    }
    // Per shard at most what fills the in-flight sends and the open one (9 × 64 KB of
    // ~600-byte events, under 1,000 logs) plus the rest of the batch being formatted (under
    // 1,000): below 2,000 of the 20,000 it was given. What the reader read ahead waits in
    // the reader and is not counted (it is bounded by the shard's share of the budget).
    let pulled_in_outage = pulled - BEFORE as f64;
    assert!(
        pulled_in_outage <= f64::from(SHARDS) * 2_000.0,
        "{pulled_in_outage} of the {BACKLOG} backlog logs pulled with the sink down\n{}",
        stalled.text
    );
    let checkpoints: Vec<Option<u32>> = env.checkpoints(GROUP).into_values().collect();
    let delivered: Vec<Option<u32>> = delivered_ends.iter().copied().map(Some).collect();
    assert_eq!(
        checkpoints, delivered,
        "checkpoints stay at the last delivered log while HEC is down"
    );

    // HEC is back: the backlog drains, each log once.
    let hec = env.hec_receiver_on(&hec_addr);
    eventually("the backlog to reach the receiver", || {
        shipper.assert_running();
        let n = (first.len() + hec.event_count()) as u64;
        if n >= ds.len() {
            Ok(())
        } else {
            Err(format!("{n} of {} events", ds.len()))
        }
    });
    env.wait_checkpoints_at_end(GROUP);
    let m = scrape(addr);
    let total = ds.len() as f64;
    assert_eq!(m.by_shard("shipper_logs_in_total"), logs_per_shard(&ds));
    assert_eq!(m.sum("shipper_events_out_total"), total);
    assert_eq!(m.sum("shipper_sink_events_accepted_total"), total);
    assert!(m.sum("shipper_sink_errors_total") >= 1.0, "{}", m.text);
    assert_eq!(m.sum("shipper_dead_lettered_total"), 0.0);
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success());
    drop(port);

    let seqs = hec_seqs(first.iter().chain(hec.events().iter()));
    Tally::new(ds.len(), seqs).assert_exactly_once(&ds, "after the outage");
    eprintln!(
        "run_metrics back-pressure: {pulled_in_outage} of {BACKLOG} backlog logs pulled while HEC was down"
    );
}
