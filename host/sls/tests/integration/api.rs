//! The API calls against the emulator: setup, write/read round trips, cursors, SPL,
//! consumer-group calls and error mapping.

use std::collections::BTreeMap;

use shipper_sls::codec::Compression;
use shipper_sls::proto::LogGroup;
use shipper_sls::{CursorPosition, PullRequest, Route, ShardStatus};

use crate::harness::{self, client, emulator, group, ids, setup};

/// Reads a shard from `from` until the cursor stops moving; returns the decoded groups.
async fn read_all(
    client: &shipper_sls::Client,
    logstore: &str,
    shard: u32,
    from: shipper_sls::Cursor,
    compression: Compression,
) -> (Vec<LogGroup>, shipper_sls::Cursor) {
    let mut cursor = from;
    let mut out = Vec::new();
    loop {
        let pull = PullRequest {
            count: 7,
            compression,
            ..PullRequest::new(cursor)
        };
        let resp = client.pull_logs(logstore, shard, &pull).await.unwrap();
        assert_eq!(resp.count, resp.groups.len());
        for g in &resp.groups {
            out.push(g.decode().unwrap());
        }
        if resp.next_cursor == cursor {
            assert!(resp.groups.is_empty());
            return (out, cursor);
        }
        cursor = resp.next_cursor;
    }
}

#[tokio::test]
async fn setup_write_and_read_back_exactly_what_was_written() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 4).await;
    assert!(
        c.list_logstores()
            .await
            .unwrap()
            .contains(&"logs".to_owned())
    );
    let shards = c.list_shards("logs").await.unwrap();
    assert_eq!(shards.len(), 4);
    assert!(shards.iter().all(|s| s.status == ShardStatus::ReadWrite));

    // Route by shard id (ListShards + hash key), by hash key and load-balanced.
    let mut expected: BTreeMap<u32, Vec<LogGroup>> = BTreeMap::new();
    for round in 0..5 {
        for shard in 0..4u32 {
            let g = group(&format!("r{round}-s{shard}"), 3 + shard as usize);
            c.put_logs("logs", &Route::Shard(shard), &g).await.unwrap();
            expected.entry(shard).or_default().push(g);
        }
    }
    let lb = group("lb", 5);
    c.put_logs("logs", &Route::LoadBalance, &lb).await.unwrap();

    let mut all_ids = Vec::new();
    for shard in 0..4u32 {
        let begin = c
            .get_cursor("logs", shard, CursorPosition::Begin)
            .await
            .unwrap();
        let end = c
            .get_cursor("logs", shard, CursorPosition::End)
            .await
            .unwrap();
        let (groups, last) = read_all(&c, "logs", shard, begin, Compression::Lz4).await;
        assert_eq!(last, end, "the cursor chain ends at the end cursor");
        // Same data uncompressed.
        let (plain, _) = read_all(&c, "logs", shard, begin, Compression::None).await;
        assert_eq!(plain, groups);
        let mine: Vec<&LogGroup> = groups.iter().filter(|g| g.topic != lb.topic).collect();
        let want: Vec<&LogGroup> = expected[&shard].iter().collect();
        assert_eq!(mine.len(), want.len(), "shard {shard}");
        for (got, want) in mine.iter().zip(&want) {
            assert_eq!(got.topic, want.topic);
            assert_eq!(got.source, want.source);
            assert_eq!(got.logs, want.logs);
            assert!(
                got.log_tags.iter().any(|t| want.log_tags.contains(t)),
                "tags kept: {:?}",
                got.log_tags
            );
        }
        all_ids.extend(groups.iter().flat_map(ids));

        // Time-based cursors: before everything = begin, far future = end.
        let at0 = c
            .get_cursor("logs", shard, CursorPosition::At(0))
            .await
            .unwrap();
        assert_eq!(at0, begin);
        let later = c
            .get_cursor("logs", shard, CursorPosition::At(4_000_000_000))
            .await
            .unwrap();
        assert_eq!(later, end);
    }
    let mut want_ids: Vec<String> = expected.values().flatten().flat_map(ids).collect();
    want_ids.extend(ids(&lb));
    all_ids.sort();
    want_ids.sort();
    assert_eq!(all_ids, want_ids, "every log exactly once over all shards");
}

#[tokio::test]
async fn end_cursor_and_spl_query() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    for i in 0..4 {
        c.put_logs("logs", &Route::Shard(0), &group(&format!("g{i}"), 6))
            .await
            .unwrap();
    }
    let begin = c
        .get_cursor("logs", 0, CursorPosition::Begin)
        .await
        .unwrap();

    // end_cursor two groups later: exactly two groups, the cursor stops there.
    let stop = c
        .pull_logs(
            "logs",
            0,
            &PullRequest {
                count: 2,
                ..PullRequest::new(begin)
            },
        )
        .await
        .unwrap()
        .next_cursor;
    let bounded = c
        .pull_logs(
            "logs",
            0,
            &PullRequest {
                end_cursor: Some(stop),
                ..PullRequest::new(begin)
            },
        )
        .await
        .unwrap();
    assert_eq!(bounded.groups.len(), 2);
    assert_eq!(bounded.next_cursor, stop);

    // SPL: only WARN logs (every third one) come back.
    let filtered = c
        .pull_logs(
            "logs",
            0,
            &PullRequest {
                query: Some("* | where level = 'WARN'".into()),
                ..PullRequest::new(begin)
            },
        )
        .await
        .unwrap();
    let levels: Vec<String> = filtered
        .groups
        .iter()
        .flat_map(|g| g.decode().unwrap().logs)
        .flat_map(|l| l.contents)
        .filter(|c| c.key == "level")
        .map(|c| String::from_utf8(c.value).unwrap())
        .collect();
    assert_eq!(levels.len(), 4 * 2, "ids 0 and 3 of each group of 6");
    assert!(levels.iter().all(|l| l == "WARN"), "{levels:?}");

    // A query the emulator does not support is an error, not silence.
    let err = c
        .pull_logs(
            "logs",
            0,
            &PullRequest {
                query: Some("* | stats count(*)".into()),
                ..PullRequest::new(begin)
            },
        )
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(err.status(), Some(400), "{err}");
}

#[tokio::test]
async fn consumer_group_calls() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 2).await;
    assert!(c.list_consumer_groups("logs").await.unwrap().is_empty());
    c.create_consumer_group("logs", "cg", 40, false)
        .await
        .unwrap();
    let again = c
        .create_consumer_group("logs", "cg", 40, false)
        .await
        .unwrap_err();
    assert!(again.is_consumer_group_already_exist(), "{again}");
    c.update_consumer_group("logs", "cg", Some(20), Some(true))
        .await
        .unwrap();
    let groups = c.list_consumer_groups("logs").await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!((groups[0].timeout, groups[0].order), (20, true));

    // Never-committed shards are listed with an empty checkpoint.
    let cps = c.get_checkpoints("logs", "cg", None).await.unwrap();
    assert_eq!(cps.len(), 2);
    assert!(cps.iter().all(|cp| cp.cursor().unwrap().is_none()));

    let assigned = c.heartbeat("logs", "cg", "c1", &[]).await.unwrap();
    assert_eq!(assigned, [0, 1]);
    let cursor = c.get_cursor("logs", 1, CursorPosition::End).await.unwrap();
    c.update_checkpoint("logs", "cg", "c1", 1, cursor, false)
        .await
        .unwrap();
    let cps = c.get_checkpoints("logs", "cg", Some(1)).await.unwrap();
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].cursor().unwrap(), Some(cursor));
    assert_eq!(cps[0].consumer, "c1");

    // Not the holder: an ownership error, seen as "shard lost".
    let err = c
        .update_checkpoint("logs", "cg", "intruder", 1, cursor, false)
        .await
        .unwrap_err();
    assert!(err.is_shard_lost(), "{err}");
    // An unknown consumer listing shards: NotExistConsumerWithBody.
    let err = c.heartbeat("logs", "cg", "ghost", &[0]).await.unwrap_err();
    assert!(err.is_not_exist_consumer_with_body(), "{err}");

    c.delete_consumer_group("logs", "cg").await.unwrap();
    let err = c.heartbeat("logs", "cg", "c1", &[]).await.unwrap_err();
    assert!(err.is_consumer_group_not_exist(), "{err}");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn errors_are_typed_and_say_what_to_do() {
    let emu = emulator().await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;

    let wrong = harness::client_with(&emu, "not-the-secret");
    let err = wrong.list_shards("logs").await.unwrap_err();
    assert_eq!(err.code(), Some("SignatureNotMatch"), "{err}");
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable() && err.is_auth());
    let text = err.to_string();
    assert!(text.contains("ListShards"), "{text}");
    assert!(text.contains("SLS_AK_KEY"), "{text}");

    let err = c.list_shards("nope").await.unwrap_err();
    assert_eq!(err.code(), Some("LogStoreNotExist"));
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_retryable());
    assert!(err.request_id().is_some(), "x-log-requestid is kept");

    let err = c
        .pull_logs("logs", 0, &PullRequest::new(shipper_sls::Cursor(-5)))
        .await
        .unwrap_err();
    assert!(err.is_invalid_cursor(), "{err}");

    let err = c
        .get_cursor("logs", 9, CursorPosition::Begin)
        .await
        .unwrap_err();
    assert!(err.is_shard_not_exist(), "{err}");

    // Nothing listens here any more: a retryable transport error naming the endpoint.
    let endpoint = emu.endpoint();
    emu.shutdown().await.unwrap();
    let err = c.list_shards("logs").await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains(&endpoint), "{err}");
}

#[tokio::test]
async fn https_endpoints_with_a_private_ca() {
    let emu = emulator().await;
    let dir = tempfile::Builder::new()
        .prefix("https_endpoints_")
        .tempdir()
        .unwrap();
    crate::proxy::test_pki(dir.path());
    let front = crate::proxy::TlsFront::start(emu.addr(), dir.path()).await;

    let https = |endpoint: String, ca: bool| {
        let mut cfg = shipper_sls::ClientConfig::new(
            endpoint,
            harness::PROJECT,
            shipper_sls::sign::Credentials::new(harness::AK_ID, harness::AK_SECRET),
        );
        if ca {
            cfg.ca_file = Some(dir.path().join("ca.pem"));
        }
        shipper_sls::Client::new(cfg).unwrap()
    };
    let c = https(format!("https://127.0.0.1:{}", front.port()), true);
    setup(&c, "logs", 2).await;
    c.put_logs("logs", &Route::Shard(1), &group("tls", 3))
        .await
        .unwrap();
    let by_name = https(format!("https://localhost:{}", front.port()), true);
    let begin = by_name
        .get_cursor("logs", 1, CursorPosition::Begin)
        .await
        .unwrap();
    let resp = by_name
        .pull_logs("logs", 1, &PullRequest::new(begin))
        .await
        .unwrap();
    assert_eq!(resp.log_count(), 3);

    // The system roots do not know our CA: the handshake fails, and the error says so.
    let untrusted = https(format!("https://127.0.0.1:{}", front.port()), false);
    let err = untrusted.list_shards("logs").await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, shipper_sls::SlsError::Transport { .. }),
        "{text}"
    );
    assert!(text.contains("invalid peer certificate"), "{text}");
    assert!(text.contains("ca_file"), "{text}");
}
