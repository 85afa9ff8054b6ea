//! Shared test plumbing. Every test starts its own emulator (its own port, its own state).

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use shipper_emulator::{Emulator, EmulatorConfig, EmulatorHandle};
use shipper_sls::proto::{Content, Log, LogGroup, LogTag};
use shipper_sls::sign::Credentials;
use shipper_sls::{
    Client, ClientConfig, Consumer, ConsumerConfig, PulledBatch, Route, ShardLease, ShardReader,
};
use tokio::time::Instant;

pub const AK_ID: &str = "test-ak-id";
pub const AK_SECRET: &str = "test-ak-secret";
pub const PROJECT: &str = "shipper-test";

/// Logs test output when `RUST_LOG` is set (e.g. `RUST_LOG=shipper_sls=debug`).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
}

pub async fn emulator() -> EmulatorHandle {
    init_tracing();
    Emulator::start(EmulatorConfig::new(AK_ID, AK_SECRET))
        .await
        .expect("start the emulator")
}

pub fn client_with(emu: &EmulatorHandle, secret: &str) -> Client {
    client_at(&emu.endpoint(), secret)
}

/// A client for `endpoint` (e.g. a proxy in front of the emulator).
pub fn client_at(endpoint: &str, secret: &str) -> Client {
    let mut cfg = ClientConfig::new(endpoint, PROJECT, Credentials::new(AK_ID, secret));
    cfg.timeout = Duration::from_secs(10);
    Client::new(cfg).expect("build client")
}

pub fn client(emu: &EmulatorHandle) -> Client {
    client_with(emu, AK_SECRET)
}

/// Creates the project and a logstore with `shards` shards through the API.
pub async fn setup(client: &Client, logstore: &str, shards: u32) {
    match client.create_project("shipper tests").await {
        Ok(()) => {}
        Err(e) if e.code() == Some("ProjectAlreadyExist") => {}
        Err(e) => panic!("create project: {e}"),
    }
    client
        .create_logstore(logstore, shards)
        .await
        .expect("create logstore");
}

/// Hash keys routing to each shard (the begin key of its range), by shard id.
pub async fn shard_routes(client: &Client, logstore: &str) -> Vec<Route> {
    let mut shards = client.list_shards(logstore).await.expect("list shards");
    shards.sort_by_key(|s| s.shard_id);
    shards
        .into_iter()
        .map(|s| Route::HashKey(s.inclusive_begin_key))
        .collect()
}

/// A log group of `n` logs whose `id` fields are `{prefix}-{i}`, with topic, source, tags
/// and non-ASCII values.
pub fn group(prefix: &str, n: usize) -> LogGroup {
    let logs = (0..n)
        .map(|i| Log {
            time: 1_700_000_000 + u32::try_from(i).unwrap(),
            contents: vec![
                Content {
                    key: "id".into(),
                    value: format!("{prefix}-{i}").into_bytes(),
                },
                Content {
                    key: "level".into(),
                    value: if i % 3 == 0 { "WARN" } else { "INFO" }.into(),
                },
                Content {
                    key: "msg".into(),
                    value: "héllo wörld ✓ 日志".as_bytes().to_vec(),
                },
            ],
            time_ns: (i % 2 == 0).then_some(123_456_789),
        })
        .collect();
    LogGroup {
        logs,
        reserved: None,
        topic: Some(format!("topic-{prefix}")),
        source: Some("10.0.0.1".into()),
        machine_uuid: None,
        log_tags: vec![LogTag {
            key: "host".into(),
            value: "web-1 ✓".into(),
        }],
    }
}

/// The `id` values of a group's logs.
pub fn ids(group: &LogGroup) -> Vec<String> {
    group
        .logs
        .iter()
        .filter_map(|log| {
            log.contents
                .iter()
                .find(|c| c.key == "id")
                .map(|c| String::from_utf8(c.value.clone()).unwrap())
        })
        .collect()
}

/// Writes `groups_per_shard` groups of `logs_per_group` logs to every shard; ids are
/// `{tag}-s{shard}-g{g}-{i}`. Returns every id written.
pub async fn fill(
    client: &Client,
    logstore: &str,
    tag: &str,
    groups_per_shard: usize,
    logs_per_group: usize,
) -> Vec<String> {
    let routes = shard_routes(client, logstore).await;
    let mut written = Vec::new();
    for g in 0..groups_per_shard {
        for (shard, route) in routes.iter().enumerate() {
            let group = group(&format!("{tag}-s{shard}-g{g}"), logs_per_group);
            written.extend(ids(&group));
            client
                .put_logs(logstore, route, &group)
                .await
                .expect("put logs");
        }
    }
    written
}

/// How long `eventually` waits; raise with `SHIPPER_TEST_DEADLINE_SECS` on slow machines.
pub fn deadline() -> Duration {
    let secs = std::env::var("SHIPPER_TEST_DEADLINE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// Polls `check` until it returns true; panics with `what`, the elapsed time and the number
/// of attempts after the deadline.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    let limit = deadline();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        if check().await {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: still false after {:?} ({attempts} attempts)",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Python interpreter of the test venv (`SHIPPER_TEST_PYTHON`, default
/// `<workspace>/target/test-venv/bin/python`); panics with the install command if missing.
pub fn python() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = std::env::var_os("SHIPPER_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target/test-venv/bin/python"));
    let ok = std::process::Command::new(&path)
        .args(["-c", "import aliyun.log.consumer"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "no Python with the official SLS SDK at {}: run `python3 -m venv target/test-venv && \
         target/test-venv/bin/pip install -r tests/requirements.txt` in the workspace (or set \
         SHIPPER_TEST_PYTHON)",
        path.display()
    );
    path
}

/// Joins `cfg`'s group and takes the lease of its only shard.
pub async fn sole_lease(c: &Client, cfg: ConsumerConfig) -> (Consumer, ShardLease) {
    let mut consumer = Consumer::join(c.clone(), cfg).await.expect("join");
    let lease = tokio::time::timeout(deadline(), consumer.next_lease())
        .await
        .expect("a lease before the deadline")
        .expect("consumer running");
    (consumer, lease)
}

/// The reader's next batch; panics on a read error, an ended reader or the deadline.
pub async fn next_batch(reader: &mut ShardReader) -> PulledBatch {
    tokio::time::timeout(deadline(), reader.next())
        .await
        .expect("a batch before the deadline")
        .expect("reader open")
        .expect("no read error")
}

/// The `id` values of every log of `batch`, in order.
pub fn batch_ids(batch: &PulledBatch) -> Vec<String> {
    batch
        .groups
        .iter()
        .flat_map(|g| ids(&g.decode().unwrap()))
        .collect()
}
