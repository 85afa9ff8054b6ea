//! Fault injection (`EmulatorHandle::faults`): each fault answers the way SLS or a broken
//! connection would, only where and as often as the rule says, and an error fault has no
//! effect on the server's state. Checked with both the raw client (bytes on the wire) and
//! `shipper_sls::Client` (what a consumer sees).

use prost::Message as _;
use shipper_emulator::{Api, ApiError, EmulatorHandle, Fault, FaultRule};
use shipper_sls::codec::{self, Compression};
use shipper_sls::cursor::Cursor;
use shipper_sls::sign::Credentials;
use shipper_sls::{ClientConfig, CursorPosition, PullRequest, Route, SlsError};

use crate::client::{AK_ID, AK_SECRET, Client, Resp};
use crate::{logs_group, start};

const SHARD0: &str = "00000000000000000000000000000000";

fn sls(emu: &EmulatorHandle) -> shipper_sls::Client {
    let cfg = ClientConfig::new(emu.endpoint(), "proj", Credentials::new(AK_ID, AK_SECRET));
    shipper_sls::Client::new(cfg).unwrap()
}

/// Writes `n` one-log groups to shard 0; returns its begin cursor.
async fn fill_shard0(c: &shipper_sls::Client, n: usize) -> Cursor {
    for _ in 0..n {
        c.put_logs("store", &Route::HashKey(SHARD0.into()), &logs_group())
            .await
            .unwrap();
    }
    c.get_cursor("store", 0, CursorPosition::Begin)
        .await
        .unwrap()
}

async fn raw_pull(c: &Client, shard: u32, cursor: Cursor) -> Result<Resp, hyper::Error> {
    c.try_send(
        "GET",
        &format!("/logstores/store/shards/{shard}"),
        &[
            ("type", "log"),
            ("cursor", &cursor.encode()),
            ("count", "1000"),
        ],
        &[
            ("accept-encoding", "lz4"),
            ("accept", "application/x-protobuf"),
        ],
        Vec::new(),
    )
    .await
}

fn assert_sls_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.error_code(), code);
}

#[tokio::test]
async fn error_faults_answer_like_sls_then_stop() {
    let (emu, raw) = start().await;
    let c = sls(&emu);
    let begin = fill_shard0(&c, 3).await;

    let faults = emu.faults();
    faults.fail_next(Api::PullLogs, 1, Fault::InternalServerError);
    faults.fail_next(Api::PullLogs, 1, Fault::ServerBusy);
    faults.fail_next(Api::PullLogs, 1, Fault::ReadQuotaExceed);
    faults.fail_next(
        Api::PullLogs,
        1,
        Fault::Error(ApiError::new(429, "TooManyRequests", "slow down")),
    );
    assert_eq!(faults.pending(), 4);

    // Rules fire in the order they were added, once each.
    let r = raw_pull(&raw, 0, begin).await.unwrap();
    assert_sls_error(&r, 500, "InternalServerError");
    let r = raw_pull(&raw, 0, begin).await.unwrap();
    assert_sls_error(&r, 503, "ServerBusy");
    let r = raw_pull(&raw, 0, begin).await.unwrap();
    assert_sls_error(&r, 403, "ReadQuotaExceed");
    assert_eq!(r.json()["errorMessage"], "Read QPS Exceed");
    // What the client makes of them: retryable API errors with the code.
    let e = c
        .pull_logs("store", 0, &PullRequest::new(begin))
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_eq!((e.status(), e.code()), (Some(429), Some("TooManyRequests")));
    assert_eq!(faults.pending(), 0);

    // Exhausted: the same pull succeeds and reads everything.
    let resp = c
        .pull_logs("store", 0, &PullRequest::new(begin))
        .await
        .unwrap();
    assert_eq!(resp.groups.len(), 3);

    // The log names each injection's API, shard and cursor.
    let log = faults.injected();
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|i| i.api == Api::PullLogs
        && i.shard == Some(0)
        && i.cursor.as_deref() == Some(begin.encode().as_str())));
    assert_eq!(log[0].fault, Fault::InternalServerError);
    assert_eq!(log[2].fault, Fault::ReadQuotaExceed);
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
}

#[tokio::test]
async fn rules_match_only_their_api_and_shard() {
    let (emu, _raw) = start().await;
    let c = sls(&emu);
    let begin = fill_shard0(&c, 1).await;
    let faults = emu.faults();

    // A PullLogs rule leaves every other API alone.
    faults.fail_next(Api::PullLogs, 1, Fault::InternalServerError);
    c.get_cursor("store", 0, CursorPosition::End).await.unwrap();
    c.list_shards("store").await.unwrap();
    c.heartbeat("store", "cg", "a", &[]).await.unwrap_err(); // no such group: not a fault
    assert_eq!(faults.pending(), 1);
    assert!(faults.injected().is_empty());
    faults.clear();

    // A shard-scoped rule: shard 1 fails, shard 0 does not.
    faults.add(FaultRule::new(Api::PullLogs, Fault::ServerBusy).shard(1));
    let b1 = c
        .get_cursor("store", 1, CursorPosition::Begin)
        .await
        .unwrap();
    for _ in 0..3 {
        c.pull_logs("store", 0, &PullRequest::new(begin))
            .await
            .unwrap();
        let e = c
            .pull_logs("store", 1, &PullRequest::new(b1))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("ServerBusy"));
    }
    // No `times`: it stays until cleared.
    assert_eq!(faults.pending(), 1);
    assert_eq!(faults.injected_on(Api::PullLogs).len(), 3);
    assert!(faults.injected_on(Api::Heartbeat).is_empty());
    faults.clear();
    assert_eq!(faults.pending(), 0);
    c.pull_logs("store", 1, &PullRequest::new(b1))
        .await
        .unwrap();

    // `Api::Any` hits whatever comes next.
    faults.fail_next(Api::Any, 1, Fault::InternalServerError);
    let e = c.list_shards("store").await.unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(faults.injected().last().unwrap().api, Api::ListShards);
}

#[tokio::test]
async fn an_error_fault_has_no_effect_on_the_server() {
    let (emu, _raw) = start().await;
    let c = sls(&emu);
    let begin = fill_shard0(&c, 2).await;
    c.create_consumer_group("store", "cg", 30, false)
        .await
        .unwrap();
    let faults = emu.faults();

    // A failed heartbeat did not join the consumer: a second one gets every shard.
    faults.fail_next(Api::Heartbeat, 1, Fault::InternalServerError);
    c.heartbeat("store", "cg", "a", &[]).await.unwrap_err();
    assert_eq!(
        c.heartbeat("store", "cg", "b", &[]).await.unwrap(),
        vec![0, 1, 2, 3]
    );

    // A failed checkpoint was not stored; its retry is. The log carries shard and cursor.
    let at = begin.advance(1);
    faults.fail_next(Api::UpdateCheckpoint, 1, Fault::ServerBusy);
    let e = c
        .update_checkpoint("store", "cg", "b", 0, at, false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ServerBusy"));
    assert_eq!(emu.checkpoint("proj", "store", "cg", 0).unwrap(), None);
    let injected = faults.injected_on(Api::UpdateCheckpoint);
    assert_eq!(injected[0].shard, Some(0));
    assert_eq!(injected[0].cursor, Some(at.encode()));
    c.update_checkpoint("store", "cg", "b", 0, at, false)
        .await
        .unwrap();
    assert_eq!(
        emu.checkpoint("proj", "store", "cg", 0).unwrap(),
        Some(at.encode())
    );

    // GetCheckPoint faults are scoped by its `shard` parameter.
    faults.add(FaultRule::new(Api::GetCheckpoint, Fault::ReadQuotaExceed).shard(0));
    c.get_checkpoints("store", "cg", Some(1)).await.unwrap();
    let e = c.get_checkpoints("store", "cg", Some(0)).await.unwrap_err();
    assert_eq!(e.status(), Some(403));
}

#[tokio::test]
async fn a_dropped_connection_gets_no_answer() {
    let (emu, raw) = start().await;
    let c = sls(&emu);
    let begin = fill_shard0(&c, 1).await;
    let faults = emu.faults();

    faults.fail_next(Api::PullLogs, 1, Fault::DropConnection);
    let err = raw_pull(&raw, 0, begin).await.unwrap_err();
    assert!(err.is_incomplete_message() || err.is_closed(), "{err:?}");
    raw_pull(&raw, 0, begin).await.unwrap().ok();

    // The SLS client sees a retryable transport error, then recovers on a new connection.
    faults.fail_next(Api::PullLogs, 1, Fault::DropConnection);
    let e = c
        .pull_logs("store", 0, &PullRequest::new(begin))
        .await
        .unwrap_err();
    assert!(
        matches!(e, SlsError::Transport { .. }) && e.is_retryable(),
        "{e}"
    );
    let resp = c
        .pull_logs("store", 0, &PullRequest::new(begin))
        .await
        .unwrap();
    assert_eq!(resp.groups.len(), 1);
    assert_eq!(faults.injected().len(), 2);
}

fn header(r: &Resp, name: &str) -> String {
    r.header(name).to_owned()
}

/// A clean pull and the same pull with a body fault: the headers match except for what the
/// fault documents, so nothing but the body tells the client that something is wrong.
#[tokio::test]
async fn body_faults_damage_the_body_behind_plausible_headers() {
    let (emu, raw) = start().await;
    let c = sls(&emu);
    let begin = fill_shard0(&c, 4).await;
    let faults = emu.faults();
    let clean = raw_pull(&raw, 0, begin).await.unwrap().ok();
    let clean_raw: usize = header(&clean, "x-log-bodyrawsize").parse().unwrap();

    // Corrupt lz4: every header as in the clean reply, a body that does not expand.
    faults.fail_next(Api::PullLogs, 1, Fault::CorruptLz4);
    let bad = raw_pull(&raw, 0, begin).await.unwrap().ok();
    for h in [
        "x-log-cursor",
        "x-log-count",
        "x-log-bodyrawsize",
        "x-log-compresstype",
        "content-type",
    ] {
        assert_eq!(header(&bad, h), header(&clean, h), "{h}");
    }
    assert!(bad.body.len() < clean.body.len());
    let e = codec::decompress(Compression::Lz4, &bad.body, clean_raw, 1 << 20).unwrap_err();
    assert!(matches!(e, codec::CodecError::Lz4(_)), "{e}");

    // Truncated protobuf: valid lz4 of a LogGroupList missing its last byte.
    faults.fail_next(Api::PullLogs, 1, Fault::TruncatedProtobuf);
    let bad = raw_pull(&raw, 0, begin).await.unwrap().ok();
    assert_eq!(header(&bad, "x-log-count"), header(&clean, "x-log-count"));
    assert_eq!(header(&bad, "x-log-cursor"), header(&clean, "x-log-cursor"));
    let bad_raw: usize = header(&bad, "x-log-bodyrawsize").parse().unwrap();
    assert_eq!(bad_raw, clean_raw - 1);
    let body = codec::decompress(Compression::Lz4, &bad.body, bad_raw, 1 << 20).unwrap();
    assert!(shipper_sls::proto::LogGroupList::decode(body.as_slice()).is_err());
    assert!(shipper_sls::proto::split_log_groups(&bytes::Bytes::from(body)).is_err());

    // Through the SLS client: a decode error naming the layer that failed.
    faults.fail_next(Api::PullLogs, 1, Fault::CorruptLz4);
    faults.fail_next(Api::PullLogs, 1, Fault::TruncatedProtobuf);
    for layer in ["lz4", "protobuf"] {
        let e = c
            .pull_logs("store", 0, &PullRequest::new(begin))
            .await
            .unwrap_err();
        assert!(matches!(e, SlsError::Decode { .. }), "{e}");
        assert!(e.to_string().to_lowercase().contains(layer), "{e}");
    }
    // Then the data is intact.
    let resp = c
        .pull_logs("store", 0, &PullRequest::new(begin))
        .await
        .unwrap();
    assert_eq!(resp.groups.len(), 4);
}

#[tokio::test]
async fn body_faults_wait_for_a_reply_with_data() {
    let (emu, _raw) = start().await;
    let c = sls(&emu);
    let faults = emu.faults();
    faults.fail_next(Api::PullLogs, 1, Fault::CorruptLz4);
    // An empty shard: nothing to damage, the rule stays armed.
    let end = c.get_cursor("store", 0, CursorPosition::End).await.unwrap();
    let resp = c
        .pull_logs("store", 0, &PullRequest::new(end))
        .await
        .unwrap();
    assert!(resp.is_caught_up());
    assert_eq!(faults.pending(), 1);
    // The first pull with data gets it.
    fill_shard0(&c, 1).await;
    let e = c
        .pull_logs("store", 0, &PullRequest::new(end))
        .await
        .unwrap_err();
    assert!(matches!(e, SlsError::Decode { .. }), "{e}");
    assert_eq!(faults.pending(), 0);
}

#[tokio::test]
async fn random_faults_follow_their_probability() {
    let (emu, _raw) = start().await;
    let c = sls(&emu);
    let faults = emu.faults();
    faults.seed(7);

    faults.fail_randomly(Api::ListShards, 0.0, Fault::InternalServerError);
    for _ in 0..20 {
        c.list_shards("store").await.unwrap();
    }
    faults.clear();

    faults.fail_randomly(Api::ListShards, 0.3, Fault::InternalServerError);
    let mut failed = 0;
    for _ in 0..200 {
        failed += usize::from(c.list_shards("store").await.is_err());
    }
    // 60 expected; the bounds are > 4 standard deviations away.
    assert!((30..=90).contains(&failed), "{failed} of 200 failed");
    assert_eq!(faults.injected().len(), failed);

    // `times` caps a random rule.
    faults.clear();
    faults.add(
        FaultRule::new(Api::ListShards, Fault::InternalServerError)
            .probability(0.5)
            .times(3),
    );
    let mut failed = 0;
    for _ in 0..100 {
        failed += usize::from(c.list_shards("store").await.is_err());
    }
    assert_eq!(failed, 3);
    assert_eq!(faults.pending(), 0);
}
