//! `shipper reconcile` against the ledger of a real `shipper run` (docs/ledger.md): after
//! a run that shipped a logstore, every shard's window is OK (exit 0); when the test-only
//! fault hook drops one acknowledged range's ledger record, reconcile names exactly that
//! shard and range (exit 1) while the receiver still got every log once. The watermark
//! events the runs send (`[ledger] watermark_interval`) join up per shard, except across
//! the dropped range. A window whose end is before its start, or whose start SLS no
//! longer keeps, is refused (exit 2).

use std::process::{Command, Output};

use std::collections::BTreeMap;

use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::ReceivedEvent;

use crate::harness::dataset::{Dataset, Tally, hec_seqs};
use crate::harness::shipper::{ShipperProcess, describe_output as text};
use crate::harness::sls::{SlsEnv, shipper_env};

const LOGS: u64 = 4_000;

/// Runs `shipper reconcile --config CONFIG ARGS` with the test credentials.
fn reconcile(env: &SlsEnv, config: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shipper"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(shipper_env())
        .current_dir(env.dir())
        .args(["reconcile", "--config", config])
        .args(args)
        .output()
        .expect("run shipper reconcile")
}

/// Ships the whole logstore with consumer group `group` and its ledger `ledger`, `extra`
/// added to the environment; returns the config path and the stopped process.
fn ship(
    env: &SlsEnv,
    ds: &Dataset,
    group: &str,
    ledger: &str,
    extra: &[(&str, &str)],
) -> (String, ShipperProcess) {
    let hec = env.hec_receiver();
    // Small pulls: each shard acknowledges many ranges, so one can be dropped mid-way.
    let config = env
        .run_config(group, artifacts::PLUGIN_SPLUNK_HEC)
        .hec_sink(&hec.url())
        .set("source.fetch_count", 2)
        .set("ledger.path", ledger)
        .set("ledger.watermark_interval", "1s");
    let mut vars = shipper_env();
    vars.extend_from_slice(extra);
    let mut shipper = ShipperProcess::start(env.dir(), group, &config, &[], &vars);
    let ends = env.wait_checkpoints_at_end(group);
    // Watermark events: per shard, contiguous ranges adding up to what the shard holds
    // (with the hook, the dropped range is missing from them too).
    let hooked = !extra.is_empty();
    eventually("watermark events to cover every shard", || {
        let marks = watermarks(&hec.events());
        let held: Vec<i64> = (0..4)
            .map(|s| {
                marks
                    .get(&s)
                    .map_or(0, |r| r.iter().map(|(f, t)| t - f).sum())
            })
            .collect();
        let contiguous = marks
            .values()
            .all(|r| r.windows(2).all(|w| w[0].1 == w[1].0));
        let want: Vec<i64> = ends.iter().map(|&e| i64::from(e)).collect();
        let done = if hooked {
            !contiguous && held.iter().zip(&want).filter(|(h, w)| h < w).count() == 1
        } else {
            contiguous && held == want
        };
        if done {
            Ok(())
        } else {
            Err(format!("{held:?} of {want:?}: {marks:?}"))
        }
    });
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "{}", shipper.stderr_tail(20));
    // The hook touches the ledger only: every log arrived, once.
    let events: Vec<_> = hec
        .events()
        .into_iter()
        .filter(|e| e.envelope["sourcetype"] != "shipper:watermark")
        .collect();
    Tally::new(ds.len(), hec_seqs(&events)).assert_exactly_once(ds, group);
    let path = env.dir().join(format!("{group}.toml"));
    (path.to_str().expect("UTF-8").to_owned(), shipper)
}

/// The watermark events received: per shard, their (from, to) sorted.
fn watermarks(events: &[ReceivedEvent]) -> BTreeMap<u64, Vec<(i64, i64)>> {
    let mut out: BTreeMap<u64, Vec<(i64, i64)>> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.envelope["sourcetype"] == "shipper:watermark")
    {
        let w = &e.envelope["event"];
        let range = (
            w["from"].as_i64().expect("from"),
            w["to"].as_i64().expect("to"),
        );
        out.entry(w["shard"].as_u64().expect("shard"))
            .or_default()
            .push(range);
    }
    for r in out.values_mut() {
        r.sort_unstable();
    }
    out
}

#[test]
fn reconcile_proves_a_full_run_and_names_the_one_range_the_ledger_lost() {
    let (env, ds) = SlsEnv::start_loaded("reconcile", 4, LOGS);
    let now = jiff::Timestamp::now().as_second();
    let window = [
        "--from",
        &(now - 3_600).to_string(),
        "--to",
        &(now + 3_600).to_string(),
    ]
    .map(str::to_owned);
    let window: Vec<&str> = window.iter().map(String::as_str).collect();

    // A complete run: every shard OK.
    let (config, _) = ship(&env, &ds, "reconcile-ok", "ledger-ok.jsonl", &[]);
    let o = reconcile(&env, &config, &window);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for shard in 0..4 {
        assert!(
            out.contains(&format!("shard {shard} sink default: OK")),
            "{}",
            text(&o)
        );
    }
    let written_groups: u32 = env.end_positions().iter().sum();
    let covered: u32 = out
        .lines()
        .filter_map(|l| l.split(") ").nth(1)?.split(' ').next()?.parse::<u32>().ok())
        .sum();
    assert_eq!(covered, written_groups, "{out}");

    // The fault hook drops shard 2's second acknowledged range from the ledger.
    let (config, shipper) = ship(
        &env,
        &ds,
        "reconcile-gap",
        "ledger-gap.jsonl",
        &[("SHIPPER_TEST_LEDGER_DROP", "2:2")],
    );
    let dropped = shipper.logs_with("test fault hook: ledger record dropped");
    assert_eq!(dropped.len(), 1, "{}", shipper.stderr_tail(20));
    let (from, to) = (
        dropped[0]["from"].as_i64().expect("from"),
        dropped[0]["to"].as_i64().expect("to"),
    );
    assert!(from < to, "{}", dropped[0]);
    let o = reconcile(&env, &config, &window);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let gaps: Vec<&str> = out.lines().filter(|l| l.contains(": GAP")).collect();
    assert_eq!(gaps.len(), 1, "{}", text(&o));
    assert!(
        gaps[0].starts_with("shard 2 sink default: GAP")
            && gaps[0].contains(&format!(
                "missing [{from}, {to}) ({} LogGroups);",
                to - from
            )),
        "expected exactly [{from}, {to}) of shard 2: {}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("1 shard window(s) not covered"),
        "{}",
        text(&o)
    );
    // Both ledgers together: the complete one covers the lost range.
    let both = [
        window.clone(),
        vec![
            "--ledger",
            "ledger-ok.jsonl",
            "--ledger",
            "ledger-gap.jsonl",
        ],
    ]
    .concat();
    let o = reconcile(&env, &config, &both);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Bad input: the end before the start, refused before SLS or the ledger is read.
    let o = reconcile(
        &env,
        &config,
        &[
            "--from",
            "2026-03-03T12:00:00Z",
            "--to",
            "2026-03-03T10:00:00Z",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("must be after --from"),
        "{}",
        text(&o)
    );
    // A window SLS has deleted (before now minus the logstore's ttl, 30 days here) cannot be
    // proven: refused, naming the oldest start that can be.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (from, to) = (now - 40 * 86_400, now - 39 * 86_400);
    let o = reconcile(
        &env,
        &config,
        &["--from", &from.to_string(), "--to", &to.to_string()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("keeps logs for 30 days"),
        "{}",
        text(&o)
    );
}
