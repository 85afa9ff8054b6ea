//! Consumer groups over HTTP: CRUD, heartbeat assignment, checkpoints
//! (docs/sls-protocol.md §5.7–§5.10, §8).

use serde_json::json;

use crate::client::Client;
use crate::start;

const CG: &str = "/logstores/store/consumergroups";

async fn heartbeat(c: &Client, consumer: &str, held: &[u32]) -> Result<Vec<u32>, String> {
    let r = c
        .post_json(
            &format!("{CG}/cg"),
            &[("type", "heartbeat"), ("consumer", consumer)],
            json!(held),
        )
        .await;
    if r.status == 200 {
        Ok(serde_json::from_value(r.json()).unwrap())
    } else {
        Err(r.error_code())
    }
}

#[tokio::test]
async fn group_lifecycle_and_empty_states() {
    let (_emu, c) = start().await;
    assert_eq!(c.get(CG, &[]).await.ok().json(), json!([]));
    c.post_json(
        CG,
        &[],
        json!({"consumerGroup": "cg", "timeout": 4, "order": false}),
    )
    .await
    .ok();
    let r = c
        .post_json(
            CG,
            &[],
            json!({"consumerGroup": "cg", "timeout": 4, "order": false}),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "ConsumerGroupAlreadyExist")
    );
    assert_eq!(
        c.get(CG, &[]).await.ok().json(),
        json!([{"name": "cg", "timeout": 4, "order": false}])
    );
    c.send(
        "PUT",
        &format!("{CG}/cg"),
        &[],
        &[("content-type", "application/json")],
        br#"{"order": true, "timeout": 9}"#.to_vec(),
    )
    .await
    .ok();
    assert_eq!(c.get(CG, &[]).await.ok().json()[0]["timeout"], 9);
    // Never-committed shards are listed with an empty checkpoint.
    let all = c.get(&format!("{CG}/cg"), &[]).await.ok().json();
    assert_eq!(all.as_array().unwrap().len(), 4);
    assert_eq!(
        c.get(&format!("{CG}/cg"), &[("shard", "2")])
            .await
            .ok()
            .json(),
        json!([{"shard": 2, "checkpoint": "", "updateTime": 0, "consumer": ""}])
    );
    assert_eq!(
        c.get(&format!("{CG}/cg"), &[("shard", "9")])
            .await
            .ok()
            .json(),
        json!([])
    );
    c.send("DELETE", &format!("{CG}/cg"), &[], &[], Vec::new())
        .await
        .ok();
    let r = c.get(&format!("{CG}/cg"), &[]).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "ConsumerGroupNotExist")
    );
}

#[tokio::test]
async fn heartbeats_split_shards_and_checkpoints_check_owners() {
    let (emu, c) = start().await;
    c.post_json(
        CG,
        &[],
        json!({"consumerGroup": "cg", "timeout": 30, "order": false}),
    )
    .await
    .ok();
    assert_eq!(heartbeat(&c, "a", &[]).await.unwrap(), vec![0, 1, 2, 3]);
    assert_eq!(heartbeat(&c, "b", &[]).await.unwrap(), Vec::<u32>::new());
    let a = heartbeat(&c, "a", &[0, 1, 2, 3]).await.unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(heartbeat(&c, "a", &a).await.unwrap(), a);
    let b = heartbeat(&c, "b", &[]).await.unwrap();
    assert_eq!(b.len(), 2);
    assert!(a.iter().all(|s| !b.contains(s)));
    assert_eq!(
        heartbeat(&c, "ghost", &[1]).await.unwrap_err(),
        "NotExistConsumerWithBody"
    );

    let cursor = shipper_sls::cursor::Cursor(1).encode();
    let path = format!("{CG}/cg");
    let commit = |consumer: &'static str, shard: u32, force: &'static str| {
        let c = c.clone();
        let path = path.clone();
        let cursor = cursor.clone();
        async move {
            c.post_json(
                &path,
                &[
                    ("type", "checkpoint"),
                    ("consumer", consumer),
                    ("forceSuccess", force),
                ],
                json!({"shard": shard, "checkpoint": cursor}),
            )
            .await
        }
    };
    commit("a", a[0], "false").await.ok();
    let r = commit("b", a[0], "false").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "ConsumerNotMatch")
    );
    let r = commit("nobody", a[0], "false").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "ConsumerNotExist")
    );
    commit("b", a[0], "True").await.ok();
    let r = commit("a", 7, "True").await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "ShardNotExist"));
    let r = c
        .post_json(
            &path,
            &[
                ("type", "checkpoint"),
                ("consumer", "a"),
                ("forceSuccess", "true"),
            ],
            json!({"shard": 0, "checkpoint": "???"}),
        )
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "InvalidCursor"));
    let got = c
        .get(&path, &[("shard", &a[0].to_string())])
        .await
        .ok()
        .json();
    assert_eq!(got[0]["checkpoint"], cursor);
    assert_eq!(got[0]["consumer"], "b");
    assert!(got[0]["updateTime"].as_u64().unwrap() > 1_600_000_000_000_000);
    assert_eq!(
        emu.checkpoint("proj", "store", "cg", a[0]).unwrap(),
        Some(cursor)
    );
}

#[tokio::test]
async fn unknown_group_logstore_and_project() {
    let (_emu, c) = start().await;
    assert_eq!(
        heartbeat(&c, "a", &[]).await.unwrap_err(),
        "ConsumerGroupNotExist"
    );
    let r = c.get("/logstores/nope/consumergroups", &[]).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "LogStoreNotExist")
    );
    let mut other = c.clone();
    other.project = Some("nope".into());
    let r = other.get("/logstores/store/consumergroups", &[]).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "ProjectNotExist")
    );
}
