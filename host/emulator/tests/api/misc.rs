//! Authentication, projects, logstores, shards, transport quirks, persistence, generator.

use serde_json::json;
use shipper_emulator::{Emulator, EmulatorConfig, PreloadSpec, SampleKind};

use crate::client::Client;
use crate::logs::put;
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
    let r = c
        .send(
            "GET",
            "/logstores",
            &[],
            &[("authorization", "LOG other:abc=")],
            Vec::new(),
        )
        .await;
    // The client adds its own Authorization after ours; either way the id is unknown or the
    // signature wrong.
    assert_eq!(r.status, 401);
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
