//! Authentication, projects, logstores, shards, transport quirks, persistence, generator.

use serde_json::json;
use shipper_emulator::{Emulator, EmulatorConfig, LogstoreSpec, PreloadSpec, SampleKind};
use shipper_sls::cursor::Cursor;

use crate::client::Client;
use crate::logs::{self, put};
use crate::{AK_ID, AK_SECRET, eventually, start};

#[tokio::test]
async fn signatures_are_checked() {
    let (_emu, c) = start().await;
    let mut bad = c.clone();
    bad.secret = "wrong".into();
    let r = bad.get("/logstores", &[]).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "SignatureNotMatch")
    );
    // An unknown AccessKeyId, alone on the request (an unsigned client adds no header of
    // its own).
    let mut unsigned = c.clone();
    unsigned.sign = false;
    let r = unsigned
        .send(
            "GET",
            "/logstores",
            &[],
            &[("authorization", "LOG other:abc=")],
            Vec::new(),
        )
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "Unauthorized"));
    let message = r.json()["errorMessage"].as_str().unwrap().to_owned();
    assert!(
        message.contains("AccessKeyId not found: other"),
        "{message}"
    );
}

/// The v1 signature covers the body only through `Content-MD5`: a body swapped after
/// signing (headers kept) is `401 SignatureNotMatch`, and nothing of it is stored.
#[tokio::test]
async fn a_body_swapped_after_signing_is_refused() {
    use prost::Message as _;
    let (emu, c) = start().await;
    let signed = logs::group(2, "aaaa");
    let mut mitm = c.clone();
    // Same length, so only the bytes differ from what was signed.
    mitm.swap_body = Some(logs::group(2, "bbbb").encode_to_vec());
    let r = put(&mitm, "/logstores/store/shards/lb", &[], &signed, false).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "SignatureNotMatch")
    );
    let stored = |emu: &shipper_emulator::EmulatorHandle| {
        emu.log_counts("proj", "store")
            .unwrap()
            .iter()
            .sum::<usize>()
    };
    assert_eq!(stored(&emu), 0);
    // The same request with the body it was signed for goes through.
    let r = put(&c, "/logstores/store/shards/lb", &[], &signed, false).await;
    assert_eq!(r.status, 200);
    assert_eq!(stored(&emu), 2);
}

/// No `Authorization` header, or one that is not `LOG <id>:<signature>`: `401 Unauthorized`
/// (docs/sls-protocol.md §11.2 "Error codes") with a message that says what is missing or
/// wrong.
#[tokio::test]
async fn missing_or_malformed_authorization_is_unauthorized() {
    let (_emu, c) = start().await;
    let mut unsigned = c.clone();
    unsigned.sign = false;
    let r = unsigned.get("/logstores", &[]).await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "Unauthorized"));
    let message = r.json()["errorMessage"].as_str().unwrap().to_owned();
    assert!(
        message.contains("missing Authorization header"),
        "{message}"
    );
    for malformed in [
        "LOG testAkId",
        "LOG testAkId:",
        "LOG :abc=",
        "LOGtestAkId:abc=",
        "Bearer abc",
        "",
    ] {
        let r = unsigned
            .send(
                "GET",
                "/logstores",
                &[],
                &[("authorization", malformed)],
                Vec::new(),
            )
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (401, "Unauthorized"),
            "{malformed:?}"
        );
        let message = r.json()["errorMessage"].as_str().unwrap().to_owned();
        assert!(
            message.contains("malformed Authorization header")
                && message.contains("LOG <AccessKeyId>:<Signature>"),
            "{malformed:?}: {message}"
        );
    }
    // A signed request on the same server still works: the rejections were about the header.
    c.get("/logstores", &[]).await.ok();
}

#[tokio::test]
async fn absolute_form_targets_work_as_behind_a_proxy() {
    let (_emu, mut c) = start().await;
    c.absolute_form = true;
    let r = c
        .get("/logstores", &[("offset", "0"), ("size", "100")])
        .await
        .ok();
    assert_eq!(r.json()["logstores"], json!(["store"]));
    assert_eq!(r.header("content-type"), "application/json");
}

#[tokio::test]
async fn projects_and_logstores() {
    let (_emu, c) = start().await;
    let mut p = c.clone();
    p.project = Some("other".into());
    p.post_json(
        "/",
        &[],
        json!({"projectName": "other", "description": "d", "resourceGroupId": ""}),
    )
    .await
    .ok();
    let r = p
        .post_json(
            "/",
            &[],
            json!({"projectName": "other", "description": "d"}),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "ProjectAlreadyExist")
    );
    let got = p.get("/", &[]).await.ok().json();
    assert_eq!(
        (got["projectName"].as_str(), got["status"].as_str()),
        (Some("other"), Some("Normal"))
    );
    let mut bare = c.clone();
    bare.project = None;
    let list = bare
        .get("/", &[("offset", "0"), ("size", "100")])
        .await
        .ok()
        .json();
    assert_eq!(
        (list["count"].as_u64(), list["total"].as_u64()),
        (Some(2), Some(2))
    );

    p.post_json(
        "/logstores",
        &[],
        json!({"logstoreName": "ls", "ttl": 30, "shardCount": 3, "enable_tracking": false,
               "autoSplit": true, "maxSplitShard": 64, "appendMeta": true, "telemetryType": "",
               "unknownKey": {"x": 1}}),
    )
    .await
    .ok();
    let ls = p.get("/logstores/ls", &[]).await.ok().json();
    assert_eq!(
        (ls["shardCount"].as_u64(), ls["appendMeta"].as_bool()),
        (Some(3), Some(true))
    );
    let shards = p.get("/logstores/ls/shards", &[]).await.ok().json();
    let shards = shards.as_array().unwrap();
    assert_eq!(shards.len(), 3);
    assert!(shards.iter().all(|s| s["status"] == "readwrite"));
    assert_eq!(
        shards[0]["inclusiveBeginKey"],
        "00000000000000000000000000000000"
    );
    assert_eq!(
        shards[2]["exclusiveEndKey"],
        "ffffffffffffffffffffffffffffffff"
    );
    // appendMeta adds the receive time and client ip tags.
    put(
        &p,
        "/logstores/ls/shards/lb",
        &[],
        &shipper_sls::proto::LogGroup::default(),
        true,
    )
    .await
    .ok();
    let r = p.get("/logstores/ls", &[]).await.ok();
    assert_eq!(r.status, 200);
    p.send("DELETE", "/logstores/ls", &[], &[], Vec::new())
        .await
        .ok();
    let r = p.get("/logstores/ls", &[]).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "LogStoreNotExist")
    );
    p.send("DELETE", "/", &[], &[], Vec::new()).await.ok();
    let r = p.get("/", &[]).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "ProjectNotExist")
    );
}

#[tokio::test]
async fn split_turns_the_parent_readonly() {
    let (_emu, c) = start().await;
    let r = c
        .send(
            "POST",
            "/logstores/store/shards/0",
            &[
                ("action", "split"),
                ("key", "20000000000000000000000000000000"),
            ],
            &[],
            Vec::new(),
        )
        .await
        .ok();
    let got = r.json();
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(
        (got[0]["shardID"].as_u64(), got[0]["status"].as_str()),
        (Some(0), Some("readonly"))
    );
    assert_eq!(
        got[1]["exclusiveEndKey"],
        "20000000000000000000000000000000"
    );
    assert_eq!(
        got[2]["inclusiveBeginKey"],
        "20000000000000000000000000000000"
    );
    let shards = c.get("/logstores/store/shards", &[]).await.ok().json();
    assert_eq!(shards.as_array().unwrap().len(), 6);
    // A drained read-only shard reports the end of its cursor.
    let end = c
        .get(
            "/logstores/store/shards/0",
            &[("type", "cursor"), ("from", "end")],
        )
        .await
        .ok()
        .json();
    let r = c
        .get(
            "/logstores/store/shards/0",
            &[
                ("type", "log"),
                ("cursor", end["cursor"].as_str().unwrap()),
                ("count", "10"),
            ],
        )
        .await
        .ok();
    assert_eq!(r.header("x-log-end-of-cursor"), "1");
}

#[tokio::test]
async fn data_dir_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = EmulatorConfig::new(AK_ID, AK_SECRET);
        c.data_dir = Some(dir.path().to_owned());
        c
    };
    let emu = Emulator::start(config()).await.unwrap();
    let c = Client::new(emu.addr(), "proj");
    c.post_json("/", &[], json!({"projectName": "proj", "description": ""}))
        .await
        .ok();
    c.post_json(
        "/logstores",
        &[],
        json!({"logstoreName": "store", "shardCount": 2}),
    )
    .await
    .ok();
    for _ in 0..3 {
        put(
            &c,
            "/logstores/store/shards/lb",
            &[],
            &crate::logs_group(),
            true,
        )
        .await
        .ok();
    }
    c.post_json(
        "/logstores/store/consumergroups",
        &[],
        json!({"consumerGroup": "cg", "timeout": 5}),
    )
    .await
    .ok();
    let cp = shipper_sls::cursor::Cursor(42).encode();
    c.post_json(
        "/logstores/store/consumergroups/cg",
        &[("type", "checkpoint"), ("forceSuccess", "true")],
        json!({"shard": 1, "checkpoint": cp}),
    )
    .await
    .ok();
    let before = emu.shard_stats("proj", "store").unwrap();
    emu.shutdown().await.unwrap();

    let emu = Emulator::start(config()).await.unwrap();
    assert_eq!(emu.shard_stats("proj", "store").unwrap(), before);
    assert_eq!(emu.checkpoint("proj", "store", "cg", 1).unwrap(), Some(cp));
    let c = Client::new(emu.addr(), "proj");
    let begin = c
        .get(
            "/logstores/store/shards/0",
            &[("type", "cursor"), ("from", "begin")],
        )
        .await
        .ok()
        .json();
    let r = c
        .get(
            "/logstores/store/shards/0",
            &[
                ("type", "log"),
                ("cursor", begin["cursor"].as_str().unwrap()),
                ("count", "10"),
            ],
        )
        .await
        .ok();
    assert_eq!(r.header("x-log-count"), "2");
}

/// Start offsets of the records of a shard file (persist.rs layout: `[u32 LE receive
/// time][u32 LE length][LogGroup protobuf]` per record); panics on a torn file.
fn record_starts(data: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        starts.push(pos);
        let len = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap()) as usize;
        pos += 8 + len;
    }
    assert_eq!(pos, data.len(), "the file ends with a whole record");
    starts
}

/// Every LogGroup of shard 0, pulled from its begin two at a time (lz4), and the cursors
/// at begin and end.
async fn read_shard0(c: &Client) -> (Vec<shipper_sls::proto::LogGroup>, String, String) {
    let begin = logs::cursor(c, 0, "begin").await;
    let end = logs::cursor(c, 0, "end").await;
    let mut groups = Vec::new();
    let mut at = begin.clone();
    while at != end {
        let r = logs::pull(c, 0, &at, "2", &[], true).await.ok();
        let next = r.header("x-log-cursor").to_owned();
        assert_ne!(next, at, "a pull before the end moves the cursor");
        groups.extend(logs::decode(&r).log_groups);
        at = next;
    }
    (groups, begin, end)
}

/// A crash mid-write leaves a torn last record in a shard file (persist.rs): at start-up it
/// is cut off, every whole record before it is served, and PutLogs appends after the cut,
/// so the next restart reads a clean file. Cut both inside the payload and inside the
/// 8-byte header.
#[tokio::test]
async fn torn_last_record_is_cut_off_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = EmulatorConfig::new(AK_ID, AK_SECRET)
            .with_logstore(LogstoreSpec::try_new("proj", "store", 1).unwrap());
        c.data_dir = Some(dir.path().to_owned());
        c
    };
    let file = dir.path().join("projects/proj/store/shard-0.log");
    let put_groups = async |c: &Client, tags: std::ops::Range<usize>| {
        let mut written = Vec::new();
        for i in tags {
            let g = logs::group(2 + i % 3, &format!("torn-{i}"));
            put(c, "/logstores/store/shards/lb", &[], &g, i % 2 == 0)
                .await
                .ok();
            written.push(g);
        }
        written
    };

    let emu = Emulator::start(config()).await.unwrap();
    let c = Client::new(emu.addr(), "proj");
    let mut written = put_groups(&c, 0..4).await;
    let (got, begin, _) = read_shard0(&c).await;
    assert_eq!(got, written);
    emu.shutdown().await.unwrap();

    // Round 1 cuts the last record inside its payload, round 2 inside its header.
    for round in 1..=2 {
        let data = std::fs::read(&file).unwrap();
        let starts = record_starts(&data);
        assert_eq!(starts.len(), written.len(), "round {round}");
        let last = *starts.last().unwrap();
        let last_len = data.len() - last - 8;
        let torn_len = last + if round == 1 { 8 + last_len / 2 } else { 3 };
        assert!(last < torn_len && torn_len < data.len());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(torn_len as u64)
            .unwrap();
        let torn = written.pop().unwrap();

        let emu = Emulator::start(config()).await.unwrap();
        // The torn bytes are gone from disk, not only from memory.
        assert_eq!(std::fs::metadata(&file).unwrap().len(), last as u64);
        let c = Client::new(emu.addr(), "proj");
        let (got, begin_now, end) = read_shard0(&c).await;
        assert_eq!(
            got, written,
            "round {round}: every whole record, nothing else"
        );
        assert!(!got.contains(&torn));
        assert_eq!(begin_now, begin);
        assert_eq!(
            Cursor::parse(&end).unwrap().0 - Cursor::parse(&begin).unwrap().0,
            written.len() as i64
        );
        let logs: usize = written.iter().map(|g| g.logs.len()).sum();
        assert_eq!(emu.log_counts("proj", "store").unwrap(), vec![logs]);

        // Writing after the recovery: the new groups follow at the old end cursor.
        let new = put_groups(&c, 10 * round..10 * round + 2).await;
        let r = logs::pull(&c, 0, &end, "1000", &[], false).await.ok();
        assert_eq!(logs::decode(&r).log_groups, new);
        written.extend(new);
        let (got, _, _) = read_shard0(&c).await;
        assert_eq!(got, written);
        emu.shutdown().await.unwrap();
    }

    // A last clean restart: the appends after the cut are whole records on disk.
    let data = std::fs::read(&file).unwrap();
    assert_eq!(record_starts(&data).len(), written.len());
    let emu = Emulator::start(config()).await.unwrap();
    let c = Client::new(emu.addr(), "proj");
    let (got, _, _) = read_shard0(&c).await;
    assert_eq!(got, written);
    emu.shutdown().await.unwrap();
}

#[tokio::test]
async fn generator_and_preload_write_samples() {
    let mut config = EmulatorConfig::new(AK_ID, AK_SECRET);
    config.generate = Some(shipper_emulator::GenerateConfig {
        rate: 500.0,
        project: "demo".into(),
        logstore: "logs".into(),
        kind: SampleKind::Mixed,
        seed: 1,
    });
    let emu = Emulator::start(config).await.unwrap();
    eventually("generated logs appear", async || {
        let n: usize = emu.log_counts("demo", "logs").unwrap().iter().sum();
        (n >= 100).then_some(())
    })
    .await;
    emu.create_logstore("bench", "preload", 4).unwrap();
    let stats = emu
        .preload(
            "bench",
            "preload",
            PreloadSpec {
                logs: 10_000,
                logs_per_group: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((stats.logs, stats.groups), (10_000, 100));
    let per_shard = emu.log_counts("bench", "preload").unwrap();
    assert_eq!(per_shard, vec![2_500; 4]);
    let stats = emu
        .preload(
            "bench",
            "preload",
            PreloadSpec {
                bytes: 4 << 20,
                kind: SampleKind::Audit,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!((4 << 20..5 << 20).contains(&stats.raw_bytes), "{stats:?}");
    let raw: usize = emu
        .shard_stats("bench", "preload")
        .unwrap()
        .iter()
        .map(|s| s.raw_bytes)
        .sum();
    assert!(raw as u64 >= stats.raw_bytes);
    emu.shutdown().await.unwrap();
}

/// The official Rust SDK's project calls: CreateProject on the bare endpoint with
/// `projectName` in the body, UpdateProject as `PUT /` on the project's host (its
/// description then reads back through GetProject).
#[tokio::test]
async fn rust_sdk_project_forms_create_on_the_bare_endpoint_and_update() {
    let (_emu, c) = start().await;
    let mut bare = c.clone();
    bare.project = None;
    bare.post_json(
        "/",
        &[],
        json!({"projectName": "rust-sdk-proj", "description": "created bare"}),
    )
    .await
    .ok();
    let p = Client::new(c.addr, "rust-sdk-proj");
    assert_eq!(
        p.get("/", &[]).await.ok().json()["description"],
        "created bare"
    );
    p.send(
        "PUT",
        "/",
        &[],
        &[("content-type", "application/json")],
        br#"{"description":"updated","recycleBinEnabled":false}"#.to_vec(),
    )
    .await
    .ok();
    assert_eq!(p.get("/", &[]).await.ok().json()["description"], "updated");
}
