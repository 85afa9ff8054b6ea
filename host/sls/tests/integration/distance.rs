//! A shard far from SLS and at its read quota (docs/sls-protocol.md §9.4 "Reading a shard"):
//! - the reader issues the next PullLogs as soon as an answer arrives, without waiting for
//!   its caller, and stops once the answers waiting for the caller hold `prefetch_bytes`;
//!   each answer the caller takes lets exactly one more pull go. Under a memory budget the
//!   share is the limit instead, and the first pull asks for one group;
//! - against the emulator's per-shard read quota (403 `ReadQuotaExceed`), every log is still
//!   read exactly once and in order, and the refusals are counted as quota retries with the
//!   time waited for them.

use std::time::Duration;

use shipper_emulator::{Emulator, EmulatorConfig, EmulatorHandle, ReadQuota};
use shipper_sls::{
    ConsumerConfig, ConsumerStats, MemoryBudget, RetriedCall, RetryCause, ShardReader,
};

use crate::consumer::config;
use crate::harness::{
    AK_ID, AK_SECRET, PROJECT, batch_ids, client, eventually, fill, next_batch, setup, sole_lease,
};

/// One LogGroup per pull and no pause after small pulls: each pull is one countable step.
fn one_group_per_pull(mut cfg: ConsumerConfig) -> ConsumerConfig {
    cfg.fetch_count = 1;
    cfg.target_pull_bytes = 0;
    cfg.small_pull_wait = Duration::ZERO;
    cfg
}

async fn emulator_with(configure: impl FnOnce(&mut EmulatorConfig)) -> EmulatorHandle {
    crate::harness::init_tracing();
    let mut cfg = EmulatorConfig::new(AK_ID, AK_SECRET);
    configure(&mut cfg);
    Emulator::start(cfg).await.expect("start the emulator")
}

/// Reads the rest of the shard after `read`, then checks that every log `written` came
/// once and in order.
async fn read_rest(reader: &mut ShardReader, read: &mut Vec<String>, written: &[String]) {
    while read.len() < written.len() {
        let batch = next_batch(reader).await;
        read.extend(batch_ids(&batch));
    }
    assert_eq!(read, written, "every log once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_pulls_ahead_of_its_caller_up_to_its_prefetch_bytes() {
    let emu = emulator_with(|_| {}).await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    // Ten groups of the same size (their ids differ only in one digit).
    let written = fill(&c, "logs", "a", 10, 3).await;
    let group_bytes = emu.shard_stats(PROJECT, "logs").unwrap()[0].raw_bytes / 10;
    let mut cfg = one_group_per_pull(config("logs", "cg", "c1"));
    // An answer is a group plus a few bytes of framing: two answers stay under this, three
    // reach it.
    cfg.prefetch_bytes = 3 * group_bytes;
    let (consumer, lease) = sole_lease(&c, cfg).await;

    let before = emu.pulls_served();
    let mut reader = lease.reader();
    eventually("three pulls before the caller takes anything", || async {
        emu.pulls_served() - before >= 3
    })
    .await;
    // Given time, a reader that ignored its limit would pull the other seven.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        emu.pulls_served() - before,
        3,
        "the reader stops at its prefetch bytes"
    );

    let mut read = Vec::new();
    for taken in 1..=4u64 {
        let batch = next_batch(&mut reader).await;
        read.extend(batch_ids(&batch));
        eventually("one more pull per answer taken", || async {
            emu.pulls_served() - before >= 3 + taken
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(emu.pulls_served() - before, 7, "and never more");
    read_rest(&mut reader, &mut read, &written).await;
    drop(reader);
    drop(lease);
    consumer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_budget_the_reader_reads_ahead_as_far_as_its_share_not_its_prefetch_bytes() {
    let emu = emulator_with(|_| {}).await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    let written = fill(&c, "logs", "b", 10, 3).await;
    let group_bytes = emu.shard_stats(PROJECT, "logs").unwrap()[0].raw_bytes / 10;
    let mut cfg = one_group_per_pull(config("logs", "cg", "c1"));
    // Without the budget the reader would stop after one or two answers.
    cfg.prefetch_bytes = group_bytes;
    let budget = MemoryBudget::new(1 << 20);
    cfg.budget = Some(budget.clone());
    cfg.send_room_bytes = 0;
    let (consumer, lease) = sole_lease(&c, cfg).await;

    let before = emu.pulls_served();
    let mut reader = lease.reader();
    eventually(
        "all ten groups pulled before the caller takes anything",
        || async { emu.pulls_served() - before >= 10 },
    )
    .await;
    assert!(
        budget.used() >= 10 * group_bytes as usize,
        "held in the budget"
    );
    let mut read = Vec::new();
    read_rest(&mut reader, &mut read, &written).await;
    drop(reader);
    drop(lease);
    consumer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_budget_the_first_pull_asks_for_one_group_to_learn_their_size() {
    let emu = emulator_with(|_| {}).await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    let written = fill(&c, "logs", "f", 10, 3).await;
    let mut cfg = config("logs", "cg", "c1");
    cfg.budget = Some(MemoryBudget::new(1 << 20));
    let (consumer, lease) = sole_lease(&c, cfg).await;
    let mut reader = lease.reader();
    let first = next_batch(&mut reader).await;
    assert_eq!(first.groups.len(), 1, "one group first");
    let mut read = batch_ids(&first);
    let second = next_batch(&mut reader).await;
    assert_eq!(
        second.groups.len(),
        9,
        "then as many as the share's pull size holds"
    );
    read.extend(batch_ids(&second));
    read_rest(&mut reader, &mut read, &written).await;
    drop(reader);
    drop(lease);
    consumer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_over_its_read_quota_is_read_whole_after_quota_backoffs() {
    // Twelve groups of ~1 KB against 4 KB/s: the first second's worth goes at once, the rest
    // at the quota's pace, refused in between.
    let emu = emulator_with(|c| {
        c.read_quota = ReadQuota {
            bytes_per_sec: 4_000,
            reads_per_sec: 100,
        };
    })
    .await;
    let c = client(&emu);
    setup(&c, "logs", 1).await;
    let written = fill(&c, "logs", "q", 12, 10).await;
    let group_bytes = emu.shard_stats(PROJECT, "logs").unwrap()[0].raw_bytes / 12;
    assert!(
        (500..4_000).contains(&group_bytes),
        "groups of {group_bytes} bytes: several per second of quota"
    );
    let stats = std::sync::Arc::new(ConsumerStats::new());
    let mut cfg = one_group_per_pull(config("logs", "cg", "c1"));
    cfg.stats = Some(stats.clone());
    let (consumer, lease) = sole_lease(&c, cfg).await;
    let mut reader = lease.reader();
    let mut read = Vec::new();
    read_rest(&mut reader, &mut read, &written).await;
    let refused = stats.retries(RetriedCall::Pull, RetryCause::Quota);
    assert!(refused > 0, "the quota refused some pulls");
    assert!(
        stats.quota_wait() > Duration::ZERO,
        "the wait after {refused} refusals is counted"
    );
    drop(reader);
    drop(lease);
    consumer.shutdown().await;
}
