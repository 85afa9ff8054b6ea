//! `shipper emulator --data-dir` through the real CLI: logs and a consumer-group checkpoint
//! written to one process are served by the next one started on the same directory after a
//! SIGTERM, byte for byte, at the same cursors.

use shipper_sls::api::consumer_group::ShardCheckpoint;
use shipper_sls::api::logs::{CursorPosition, PullRequest, Route};
use shipper_sls::client::{Client, ClientConfig};
use shipper_sls::cursor::Cursor;
use shipper_sls::proto::{Content, Log, LogGroup, LogTag};
use shipper_sls::sign::Credentials;

use crate::harness::emulator::{EmulatorOptions, EmulatorProcess};

const AK_ID: &str = "data-dir-id";
const AK_SECRET: &str = "data-dir-secret";
const PROJECT: &str = "data-dir-project";
const LOGSTORE: &str = "audit";
const SHARDS: u32 = 2;
const GROUP: &str = "data-dir-cg";

/// `shipper emulator --data-dir DIR`, key pair and logstore given as flags.
fn start(data_dir: &std::path::Path) -> EmulatorProcess {
    let options = EmulatorOptions::new(AK_ID, AK_SECRET)
        .arg("--data-dir")
        .arg(data_dir.display().to_string())
        .arg("--access-key-id")
        .arg(AK_ID)
        .arg("--access-key-secret")
        .arg(AK_SECRET)
        .logstore(&format!("{PROJECT}/{LOGSTORE}:{SHARDS}"));
    EmulatorProcess::start(options)
}

fn client(emu: &EmulatorProcess) -> Client {
    Client::new(ClientConfig::new(
        emu.addr().to_string(),
        PROJECT,
        Credentials::new(AK_ID, AK_SECRET),
    ))
    .expect("SLS client")
}

/// Group `i` of `shard`: every log carries values that are not UTF-8, unicode, an empty value
/// and nanoseconds, so a re-encoding or a lossy copy would show.
fn group(shard: u32, i: u32) -> LogGroup {
    LogGroup {
        logs: (0..=i)
            .map(|j| Log {
                time: 1_700_000_000 + i * 10 + j,
                contents: vec![
                    Content {
                        key: "id".into(),
                        value: format!("shard{shard}-group{i}-log{j}").into_bytes(),
                    },
                    Content {
                        key: "bytes".into(),
                        value: vec![0, 0xff, 0xfe, b'\n', shard as u8, i as u8, j as u8],
                    },
                    Content {
                        key: "msg".into(),
                        value: format!("héllo ✓ {}", "x".repeat((i * 37 + j) as usize))
                            .into_bytes(),
                    },
                    Content {
                        key: "empty".into(),
                        value: Vec::new(),
                    },
                ],
                time_ns: Some(i * 1000 + j),
            })
            .collect(),
        topic: Some(format!("topic-{shard}")),
        source: Some("10.1.2.3".into()),
        log_tags: vec![LogTag {
            key: "__tag__:host".into(),
            value: format!("host-{shard}-{i}"),
        }],
        ..Default::default()
    }
}

/// What a restart must keep, as read over the wire.
#[derive(Debug, PartialEq)]
struct Seen {
    /// Per shard: begin and end cursors.
    cursors: Vec<(Cursor, Cursor)>,
    /// Per shard: each pull from begin as (cursor, next cursor, decompressed body).
    pulls: Vec<Vec<(Cursor, Cursor, bytes::Bytes)>>,
    /// Per shard: the LogGroups as served (encoded), in order.
    groups: Vec<Vec<bytes::Bytes>>,
    /// The same, decoded.
    decoded: Vec<Vec<LogGroup>>,
    checkpoints: Vec<ShardCheckpoint>,
}

async fn read(c: &Client) -> Seen {
    let mut seen = Seen {
        cursors: Vec::new(),
        pulls: Vec::new(),
        groups: Vec::new(),
        decoded: Vec::new(),
        checkpoints: Vec::new(),
    };
    for shard in 0..SHARDS {
        let begin = c
            .get_cursor(LOGSTORE, shard, CursorPosition::Begin)
            .await
            .expect("GetCursor begin");
        let end = c
            .get_cursor(LOGSTORE, shard, CursorPosition::End)
            .await
            .expect("GetCursor end");
        seen.cursors.push((begin, end));
        let (mut pulls, mut groups, mut decoded) = (Vec::new(), Vec::new(), Vec::new());
        let mut at = begin;
        // Two groups per pull, so the cursor chain has several links.
        while at != end {
            let mut pull = PullRequest::new(at);
            pull.count = 2;
            let r = c.pull_logs(LOGSTORE, shard, &pull).await.expect("PullLogs");
            assert_ne!(
                r.next_cursor, at,
                "shard {shard}: a pull before the end moves"
            );
            for g in &r.groups {
                decoded.push(g.decode().expect("a LogGroup"));
                groups.push(g.bytes.clone());
            }
            pulls.push((r.cursor, r.next_cursor, r.body));
            at = r.next_cursor;
        }
        seen.pulls.push(pulls);
        seen.groups.push(groups);
        seen.decoded.push(decoded);
    }
    seen.checkpoints = c
        .get_checkpoints(LOGSTORE, GROUP, None)
        .await
        .expect("GetCheckPoint");
    seen
}

#[test]
fn data_dir_keeps_logs_cursors_and_checkpoints_across_a_sigterm_restart() {
    let data_dir = tempfile::Builder::new()
        .prefix("shipper-e2e-emulator-data-dir-")
        .tempdir()
        .expect("temp dir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let emu = start(data_dir.path());
    let c = client(&emu);
    let (written, before) = rt.block_on(async {
        let mut written: Vec<Vec<LogGroup>> = vec![Vec::new(); SHARDS as usize];
        for i in 0..5 {
            for shard in 0..SHARDS {
                let g = group(shard, i);
                c.put_logs(LOGSTORE, &Route::Shard(shard), &g)
                    .await
                    .expect("PutLogs");
                written[shard as usize].push(g);
            }
        }
        c.create_consumer_group(LOGSTORE, GROUP, 30, false)
            .await
            .expect("CreateConsumerGroup");
        let begin = c
            .get_cursor(LOGSTORE, 1, CursorPosition::Begin)
            .await
            .expect("GetCursor");
        c.update_checkpoint(LOGSTORE, GROUP, "consumer-1", 1, Cursor(begin.0 + 3), true)
            .await
            .expect("UpdateCheckPoint");
        (written, read(&c).await)
    });
    // The logs read back are what PutLogs sent, every content value byte for byte.
    assert_eq!(before.decoded, written);
    let cp: Vec<(u32, String, String)> = before
        .checkpoints
        .iter()
        .map(|cp| (cp.shard, cp.checkpoint.clone(), cp.consumer.clone()))
        .collect();
    let begin1 = before.cursors[1].0;
    assert_eq!(
        cp,
        vec![
            (0, String::new(), String::new()),
            (1, Cursor(begin1.0 + 3).encode(), "consumer-1".to_owned()),
        ]
    );
    let stderr = emu.stderr();
    let status = emu.terminate();
    assert!(
        status.success(),
        "emulator after SIGTERM: {status}\n{stderr}"
    );

    let emu = start(data_dir.path());
    let c = client(&emu);
    let after = rt.block_on(read(&c));
    assert_eq!(
        after,
        before,
        "after the restart\n--- emulator stderr ---\n{}",
        emu.stderr()
    );
    // The restarted emulator keeps writing where the first one stopped.
    rt.block_on(async {
        let g = group(0, 9);
        c.put_logs(LOGSTORE, &Route::Shard(0), &g)
            .await
            .expect("PutLogs after the restart");
        let end = before.cursors[0].1;
        let r = c
            .pull_logs(LOGSTORE, 0, &PullRequest::new(end))
            .await
            .expect("PullLogs after the restart");
        assert_eq!(r.next_cursor, Cursor(end.0 + 1));
        let decoded: Vec<LogGroup> = r
            .groups
            .iter()
            .map(|g| g.decode().expect("a LogGroup"))
            .collect();
        assert_eq!(decoded, vec![g]);
    });
    let status = emu.terminate();
    assert!(status.success(), "second emulator after SIGTERM: {status}");
}
