//! `shipper replay` and `shipper dead-letter replay` (docs/replay.md).
//!
//! - 3 hours of logs on 8 shards, with backdated receive times; a live `shipper run` ships
//!   them; `replay` of the middle 2 hours delivers exactly the logs SLS received in the
//!   window, each once, with the live events' content and event IDs plus the marker, while
//!   the live run keeps shipping new logs exactly once and its checkpoints follow only it.
//!   Then a replay with `--state` is killed with SIGKILL mid-way and rerun: every window
//!   log arrives, the rerun resumes rather than starting over.
//! - Poison logs dead-lettered by a trapping plugin are re-driven: with the same broken
//!   plugin they fail again into a new file at their original positions; with the fixed
//!   plugin they are all delivered; the input file is never changed.
//! - Bad input (reversed window, a window beyond retention, a garbage or foreign state
//!   file, a dead-letter file that is not JSON lines) exits 2, sends nothing, changes
//!   nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::Fault;

use crate::harness::dataset::{Dataset, Tally, hec_seq, hec_seqs};
use crate::harness::shipper::{RunConfig, ShipperProcess, describe_output};
use crate::harness::sls::{SlsEnv, shipper_env, wait_for_events};

const GROUP: &str = "e2e-replay-live";
/// Logs per LogGroup; one load puts one group on each of the 8 shards.
const PER_GROUP: u64 = 25;
const SHARDS: u32 = 8;
/// One load every 5 minutes over 3 hours.
const STEP: i64 = 300;
const LOADS: i64 = 36;
/// The window: loads 6..30 (from 30 min to 2 h 30 min after the first).
const FIRST_IN: i64 = 6;
const LAST_OUT: i64 = 30;
const PER_LOAD: u64 = PER_GROUP * SHARDS as u64;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `shipper --log-format json <args>` with the test environment, in `dir`.
fn shipper(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipper"));
    cmd.args(["--log-format", "json"])
        .args(args)
        .current_dir(dir)
        .env_remove("SHIPPER_CONFIG")
        .env_remove("RUST_LOG")
        .envs(shipper_env())
        .stdin(Stdio::null());
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    shipper(dir, args).output().expect("run shipper")
}

fn write(dir: &Path, name: &str, config: &RunConfig) -> String {
    let path = dir.join(name);
    std::fs::write(&path, config.render()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Seqs by load: load `i` holds seqs `[i * PER_LOAD, (i + 1) * PER_LOAD)`.
fn window_seqs() -> Vec<u64> {
    (FIRST_IN as u64 * PER_LOAD..LAST_OUT as u64 * PER_LOAD).collect()
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

#[test]
fn replay_sends_exactly_the_window_and_leaves_the_live_group_alone_then_resumes_after_kill_9() {
    let env = SlsEnv::start("replay", SHARDS);
    let mut ds = Dataset::new(SHARDS, PER_GROUP);
    let base = now() - LOADS * STEP;
    for i in 0..LOADS {
        env.load_received_at(&mut ds, PER_LOAD, (base + i * STEP) as u32);
    }
    let from = base + FIRST_IN * STEP;
    let to = base + LAST_OUT * STEP;

    // The live run ships everything and checkpoints it.
    let live = env.hec_receiver();
    let config = env
        .run_config(GROUP, artifacts::PLUGIN_SPLUNK_HEC)
        .hec_sink(&live.url())
        .set("sink.event_id", true);
    let mut running = ShipperProcess::start(env.dir(), "live", &config, &[], &shipper_env());
    wait_for_events(&mut running, &live, ds.len());
    env.wait_checkpoints_at_end(GROUP);

    // The replay, into its own receiver, while new logs arrive for the live run.
    let replayed = env.hec_receiver();
    let replay_config = write(
        env.dir(),
        "replay.toml",
        &config.clone().set("sink.endpoint", replayed.url()),
    );
    let (from_s, to_s) = (from.to_string(), jiff_rfc3339(to));
    let started = std::time::Instant::now();
    let mut child = shipper(
        env.dir(),
        &[
            "replay",
            "-c",
            &replay_config,
            "--from",
            &from_s,
            "--to",
            &to_s,
        ],
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(env.dir().join("replay.stderr")).unwrap())
    .spawn()
    .unwrap();
    env.load(&mut ds, 2 * PER_LOAD);
    let out = wait_output(&mut child, &env.dir().join("replay.stderr"));
    assert!(out.status.success(), "replay: {}", describe_output(&out));
    eprintln!(
        "replay of {} logs took {:?}",
        window_seqs().len(),
        started.elapsed()
    );

    // Exactly the window, each once, as the live run sent it plus the marker.
    let events = replayed.events();
    assert_eq!(
        sorted(hec_seqs(&events)),
        window_seqs(),
        "exactly the window's logs"
    );
    let originals: BTreeMap<u64, Value> = live
        .events()
        .into_iter()
        .map(|e| (hec_seq(&e.envelope).unwrap(), e.envelope))
        .collect();
    let marker = format!("{}/{}", jiff_rfc3339(from), jiff_rfc3339(to));
    for e in &events {
        let seq = hec_seq(&e.envelope).unwrap();
        let mut got = e.envelope.clone();
        let fields = got["fields"].as_object_mut().expect("fields");
        assert_eq!(
            fields.remove("shipper_replay"),
            Some(Value::from(marker.clone())),
            "seq {seq}"
        );
        assert_eq!(
            got, originals[&seq],
            "seq {seq}: content and event ID of the original"
        );
    }

    // The live run shipped the new logs once, and its checkpoints are its own.
    wait_for_events(&mut running, &live, ds.len());
    let ends = env.wait_checkpoints_at_end(GROUP);
    Tally::new(ds.len(), hec_seqs(&live.events()))
        .assert_exactly_once(&ds, "live run beside a replay");
    assert!(
        running.releases().is_empty(),
        "the live run lost no shard to the replay: {:?}",
        running.releases()
    );

    // --state: a slow receiver, SIGKILL once a progress line and some acknowledgements are
    // in, then a rerun resumes.
    let resumed = env.hec_receiver();
    resumed.push_fault(Fault::Delay(Duration::from_millis(100)), 200);
    let slow_config = write(
        env.dir(),
        "slow.toml",
        &config
            .clone()
            .set("sink.endpoint", resumed.url())
            .set("source.fetch_count", 1)
            .set("sink.batch_max_bytes", 8 * 1024),
    );
    let state = env.dir().join("replay-state.json");
    let state_s = state.to_str().unwrap();
    let args = [
        "replay",
        "-c",
        &slow_config,
        "--from",
        &from_s,
        "--to",
        &to_s,
        "--state",
        state_s,
        "--progress-interval",
        "1",
        "--parallel",
        "8",
    ];
    let stderr_path = env.dir().join("killed.stderr");
    let mut killed = shipper(env.dir(), &args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    eventually(
        "a progress line and acknowledged positions in the state file",
        || {
            let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            let acked = acked_groups(&state);
            if err.contains("replay: ") && err.contains("ETA") && acked >= 16 {
                Ok(())
            } else {
                Err(format!("{acked} groups acknowledged; stderr: {err}"))
            }
        },
    );
    killed.kill().unwrap();
    killed.wait().unwrap();
    let first_run = resumed.event_count();
    let acked = acked_groups(&state);
    assert!(
        acked < (LAST_OUT - FIRST_IN) as u64 * SHARDS as u64,
        "killed before the end"
    );
    let out = run(env.dir(), &args);
    assert!(
        out.status.success(),
        "resumed replay: {}",
        describe_output(&out)
    );
    let all = hec_seqs(&resumed.events());
    let mut once = all.clone();
    once.sort_unstable();
    once.dedup();
    assert_eq!(
        once,
        window_seqs(),
        "after kill -9 and resume: every window log, nothing else"
    );
    let rerun = all.len() - first_run;
    assert!(
        rerun as u64 <= window_seqs().len() as u64 - acked * PER_GROUP,
        "the rerun resumed from the state ({acked} groups acknowledged) instead of starting over: {rerun} events"
    );
    eprintln!(
        "replay --state: {first_run} events before kill -9, {rerun} after ({} duplicates)",
        all.len() - once.len()
    );
    assert_eq!(
        env.checkpoints(GROUP).values().copied().collect::<Vec<_>>(),
        ends.into_iter().map(Some).collect::<Vec<_>>(),
        "the group's checkpoints did not move"
    );
    running.signal("TERM");
    assert!(running.wait_exit().success());
}

/// LogGroups acknowledged in a state file (0 when absent or between writes).
fn acked_groups(state: &Path) -> u64 {
    let Ok(text) = std::fs::read(state) else {
        return 0;
    };
    let Ok(v) = serde_json::from_slice::<Value>(&text) else {
        return 0;
    };
    let pos = |c: &Value| {
        let s = shipper_sls::cursor::Cursor::parse(c.as_str().unwrap()).unwrap();
        s.0
    };
    v["logstores"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|m| m.as_object().unwrap().values())
        .map(|s| (pos(&s["acked"]) - pos(&s["start"])) as u64)
        .sum()
}

fn jiff_rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t).unwrap().to_string()
}

fn wait_output(child: &mut Child, stderr: &Path) -> Output {
    let deadline = std::time::Instant::now() + shipper_test_support::eventually::deadline();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replay still running at the deadline"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: Vec::new(),
        stderr: std::fs::read(stderr).unwrap_or_default(),
    }
}

#[test]
fn dead_letters_of_a_trapping_plugin_are_redriven_by_the_fixed_one() {
    let env = SlsEnv::start("redrive", 2);
    let mut ds = Dataset::new(env.shards(), 50);
    let poison = [123_u64, 777, 1_501];
    for seq in poison {
        ds.mark(seq, "poison", "yes");
    }
    env.load(&mut ds, 2_000);
    let hec = env.hec_receiver();
    let config = env
        .run_config("e2e-redrive", artifacts::GUEST_POISON_JSON)
        .hec_sink(&hec.url())
        .set("sink.event_id", true);
    let mut running = ShipperProcess::start(env.dir(), "live", &config, &[], &shipper_env());
    wait_for_events(&mut running, &hec, ds.len() - poison.len() as u64);
    env.wait_checkpoints_at_end("e2e-redrive");
    running.signal("TERM");
    assert!(running.wait_exit().success());
    let input = env.dir().join("dead-letter.jsonl");
    let original = std::fs::read(&input).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&original).lines().count(),
        poison.len()
    );
    let config_path = write(env.dir(), "redrive.toml", &config);
    let input_s = input.to_str().unwrap();

    // Still broken: every entry fails again, into a new file, at its original position.
    let out = run(
        env.dir(),
        &["dead-letter", "replay", input_s, "-c", &config_path],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    let again = env.dir().join("dead-letter.redrive.jsonl");
    let strip = |text: &str| -> Vec<Value> {
        text.lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("time");
                v
            })
            .collect()
    };
    assert_eq!(
        strip(&std::fs::read_to_string(&again).unwrap()),
        strip(&String::from_utf8_lossy(&original)),
        "the same entries, positions and reasons"
    );
    assert_eq!(
        hec.event_count() as u64,
        ds.len() - poison.len() as u64,
        "nothing sent"
    );

    // Fixed: all delivered, with the marker and the IDs the originals would have had.
    let before = hec.event_count();
    let out = run(
        env.dir(),
        &[
            "dead-letter",
            "replay",
            input_s,
            "-c",
            &config_path,
            "--plugin",
            artifacts::PLUGIN_SPLUNK_HEC,
        ],
    );
    assert!(out.status.success(), "{}", describe_output(&out));
    let redriven: Vec<_> = hec.events().into_iter().skip(before).collect();
    assert_eq!(sorted(hec_seqs(&redriven)), poison.to_vec());
    let ids: std::collections::BTreeSet<String> = hec
        .events()
        .iter()
        .take(before)
        .map(|e| {
            e.envelope["fields"]["shipper_event_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for e in &redriven {
        assert_eq!(
            e.envelope["fields"]["shipper_replay"],
            "dead-letter:dead-letter.jsonl"
        );
        let id = e.envelope["fields"]["shipper_event_id"].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(
            !ids.contains(id),
            "a re-driven log has its own ID, not a neighbour's"
        );
    }
    assert!(
        !env.dir().join("dead-letter.redrive-2.jsonl").exists(),
        "nothing failed: no new file"
    );
    assert_eq!(
        std::fs::read(&input).unwrap(),
        original,
        "the input is unchanged"
    );
}

#[test]
fn bad_input_exits_2_sends_nothing_and_changes_nothing() {
    let env = SlsEnv::start("replay-errors", 2);
    let mut ds = Dataset::new(env.shards(), 10);
    env.load(&mut ds, 100);
    let hec = env.hec_receiver();
    let config = env
        .run_config("e2e-replay-errors", artifacts::PLUGIN_SPLUNK_HEC)
        .hec_sink(&hec.url());
    let config_path = write(env.dir(), "c.toml", &config);
    let n = now();
    // The end a minute ahead: the logs were received in this very second, and the window's
    // end is excluded.
    let (hour_ago, now_s) = ((n - 3600).to_string(), (n + 60).to_string());
    let refused = |args: &[&str], says: &str| {
        let out = run(env.dir(), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            describe_output(&out)
        );
        assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
    };
    refused(
        &[
            "replay",
            "-c",
            &config_path,
            "--from",
            &now_s,
            "--to",
            &hour_ago,
        ],
        "must be after --from",
    );
    let (old, older) = ((n - 40 * 86_400).to_string(), (n - 39 * 86_400).to_string());
    refused(
        &["replay", "-c", &config_path, "--from", &old, "--to", &older],
        "keeps logs for 30 days",
    );
    let state = env.dir().join("state.json");
    let state_s = state.to_str().unwrap();
    std::fs::write(&state, "garbage").unwrap();
    refused(
        &[
            "replay",
            "-c",
            &config_path,
            "--from",
            &hour_ago,
            "--to",
            &now_s,
            "--state",
            state_s,
        ],
        "is not a shipper replay state file",
    );
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "garbage");
    // A state file of another window.
    let out = run(
        env.dir(),
        &[
            "replay",
            "-c",
            &config_path,
            "--from",
            &hour_ago,
            "--to",
            &now_s,
            "--state",
            "other.json",
        ],
    );
    assert!(out.status.success(), "{}", describe_output(&out));
    let other = std::fs::read(env.dir().join("other.json")).unwrap();
    let sent = hec.event_count();
    assert_eq!(sent as u64, ds.len(), "the good replay sent the last hour");
    let earlier = (n - 7200).to_string();
    refused(
        &[
            "replay",
            "-c",
            &config_path,
            "--from",
            &earlier,
            "--to",
            &now_s,
            "--state",
            "other.json",
        ],
        "is for window",
    );
    assert_eq!(std::fs::read(env.dir().join("other.json")).unwrap(), other);
    let not_jsonl = env.dir().join("notes.txt");
    std::fs::write(&not_jsonl, "{\"project\":\"p\"}\nhello\n").unwrap();
    refused(
        &[
            "dead-letter",
            "replay",
            not_jsonl.to_str().unwrap(),
            "-c",
            &config_path,
        ],
        "notes.txt line 1 is not a shipper dead-letter entry",
    );
    assert_eq!(
        hec.event_count(),
        sent,
        "nothing sent by the refused commands"
    );
    assert!(!env.dir().join("notes.redrive.jsonl").exists());
}
