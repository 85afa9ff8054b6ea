//! The official Rust SDK (`aliyun-log-rust-sdk`, unmodified) against `shipper emulator`,
//! reached as it would reach SLS: endpoint `SLS_ENDPOINT` (a name), every request through
//! `HTTP_PROXY` (the emulator; reqwest honours it), key pair from `SLS_AK_ID`/`SLS_AK_KEY`.
//! Its API forms: CreateProject on the bare endpoint with the name in the body,
//! UpdateProject, GetProject, logstores, shards, PutLogs, GetCursor, PullLogs (with SPL),
//! consumer groups (create, heartbeat, checkpoint, read back). Exit 0 = conformant.

use aliyun_log_rust_sdk::get_cursor_models::CursorPos;
use aliyun_log_rust_sdk::{Client, Config, FromConfig};
use aliyun_log_sdk_protobuf::{Log, LogGroup};

const PROJECT: &str = "rust-sdk-conformance";
const LOGSTORE: &str = "events";
const GROUP: &str = "rust-sdk-cg";

fn check(what: &str, ok: bool) -> Result<(), String> {
    if ok {
        println!("ok: {what}");
        Ok(())
    } else {
        Err(format!("FAILED: {what}"))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
    let config = Config::builder()
        .endpoint(env("SLS_ENDPOINT")?)
        .access_key(env("SLS_AK_ID")?, env("SLS_AK_KEY")?)
        .build()?;
    let client = Client::from_config(config)?;

    client
        .create_project(PROJECT)
        .description("created by the Rust SDK")
        .send()
        .await?;
    client
        .update_project(PROJECT)
        .description("updated by the Rust SDK")
        .send()
        .await?;
    let project = client.get_project(PROJECT).send().await?;
    check(
        "UpdateProject changed the description",
        project.get_body().description() == "updated by the Rust SDK",
    )?;

    client
        .create_logstore(PROJECT, LOGSTORE)
        .shard_count(2)
        .ttl(7)
        .send()
        .await?;
    let shards = client.list_shards(PROJECT, LOGSTORE).send().await?;
    check("two shards", shards.get_body().shards().len() == 2)?;

    let mut group = LogGroup::new();
    for i in 0..5 {
        let mut log = Log::from_unixtime(1_700_000_000 + i);
        log.add_content_kv("level", if i % 2 == 0 { "INFO" } else { "ERROR" })
            .add_content_kv("message", "héllo from the Rust SDK");
        group.add_log(log);
    }
    client
        .put_logs(PROJECT, LOGSTORE)
        .log_group(group)
        .send()
        .await?;

    let (mut all, mut errors) = (0, 0);
    for shard in 0..2 {
        let begin = client
            .get_cursor(PROJECT, LOGSTORE, shard)
            .cursor_pos(CursorPos::Begin)
            .send()
            .await?;
        let cursor = begin.get_body().cursor().to_owned();
        let pulled = client
            .pull_logs(PROJECT, LOGSTORE, shard)
            .cursor(cursor.clone())
            .count(100)
            .send()
            .await?;
        all += pulled
            .get_body()
            .log_group_list()
            .iter()
            .map(|g| g.logs().len())
            .sum::<usize>();
        let filtered = client
            .pull_logs(PROJECT, LOGSTORE, shard)
            .cursor(cursor)
            .count(100)
            .query("* | where level = 'ERROR'")
            .send()
            .await?;
        errors += filtered
            .get_body()
            .log_group_list()
            .iter()
            .map(|g| g.logs().len())
            .sum::<usize>();
    }
    check("PullLogs returns the 5 logs", all == 5)?;
    check("PullLogs with SPL returns the 2 ERROR logs", errors == 2)?;

    client
        .create_consumer_group(PROJECT, LOGSTORE, GROUP)
        .timeout(10)
        .order(false)
        .send()
        .await?;
    let beat = client
        .consumer_group_heartbeat(PROJECT, LOGSTORE, GROUP)
        .consumer("c1")
        .shards(vec![])
        .send()
        .await?;
    check(
        "the first heartbeat assigns both shards",
        beat.get_body().shards().len() == 2,
    )?;
    let end = client
        .get_cursor(PROJECT, LOGSTORE, 0)
        .cursor_pos(CursorPos::End)
        .send()
        .await?;
    let end = end.get_body().cursor().to_owned();
    client
        .update_consumer_group_checkpoint(PROJECT, LOGSTORE, GROUP)
        .shard_id(0)
        .consumer_id("c1")
        .checkpoint(end.clone())
        .send()
        .await?;
    let cps = client
        .get_consumer_group_checkpoint(PROJECT, LOGSTORE, GROUP)
        .shard_id(0)
        .send()
        .await?;
    check(
        "the checkpoint reads back",
        cps.get_body()
            .checkpoints()
            .iter()
            .any(|c| c.checkpoint() == &end),
    )?;
    println!("rust sdk conformance ok");
    Ok(())
}
