//! Logstore and shard APIs (docs/sls-protocol.md §5.2–§5.3): Create/Get/Update/List/Delete
//! logstore, ListShards, SplitShard, MergeShards, DeleteShard. Unknown keys in the create and
//! update bodies are ignored (the Python SDK sends more keys than it needs and retries with
//! fewer only on `LogStoreInfoInvalid`).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::request::{Reply, Request};
use crate::routes::{json_body, paging};
use crate::server::State;
use crate::store::{Logstore, LogstoreMeta, Project, Shard, ShardStatus, lock, now_secs};

/// The settable keys of CreateLogstore/UpdateLogstore; unknown keys are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    ttl: Option<u32>,
    #[serde(rename = "enable_tracking")]
    enable_tracking: Option<bool>,
    auto_split: Option<bool>,
    max_split_shard: Option<u32>,
    append_meta: Option<bool>,
    telemetry_type: Option<String>,
}

impl Settings {
    fn apply(self, meta: &mut LogstoreMeta) {
        if let Some(v) = self.ttl {
            meta.ttl = v;
        }
        if let Some(v) = self.enable_tracking {
            meta.enable_tracking = v;
        }
        if let Some(v) = self.auto_split {
            meta.auto_split = v;
        }
        if let Some(v) = self.max_split_shard {
            meta.max_split_shard = v;
        }
        if let Some(v) = self.append_meta {
            meta.append_meta = v;
        }
        if let Some(v) = self.telemetry_type {
            meta.telemetry_type = v;
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    logstore_name: String,
    shard_count: Option<u32>,
    #[serde(flatten)]
    settings: Settings,
}

/// Shards of a logstore created without `shardCount` (the SLS console default).
const DEFAULT_SHARD_COUNT: u32 = 2;

pub(crate) fn create(state: &State, project: &Project, req: &Request) -> Result<Reply, ApiError> {
    let body: CreateBody = json_body(req)?;
    let mut meta = LogstoreMeta::default();
    body.settings.apply(&mut meta);
    state.store.create_logstore(
        project,
        &body.logstore_name,
        body.shard_count.unwrap_or(DEFAULT_SHARD_COUNT),
        meta,
    )?;
    Ok(Reply::empty())
}

pub(crate) fn update(state: &State, ls: &Logstore, req: &Request) -> Result<Reply, ApiError> {
    let body: Settings = json_body(req)?;
    {
        let mut meta = lock(&ls.meta);
        body.apply(&mut meta);
        meta.last_modify_time = now_secs();
    }
    state.store.save()?;
    Ok(Reply::empty())
}

pub(crate) fn get(ls: &Logstore) -> Result<Reply, ApiError> {
    let meta = lock(&ls.meta).clone();
    let writable = ls.shards().iter().filter(|s| !s.is_readonly()).count();
    Ok(Reply::json(&json!({
        "logstoreName": ls.name,
        "ttl": meta.ttl,
        "shardCount": writable,
        "enable_tracking": meta.enable_tracking,
        "autoSplit": meta.auto_split,
        "maxSplitShard": meta.max_split_shard,
        "appendMeta": meta.append_meta,
        "telemetryType": meta.telemetry_type,
        "createTime": meta.create_time,
        "lastModifyTime": meta.last_modify_time,
        "mode": "standard",
    })))
}

pub(crate) fn list(project: &Project, req: &Request) -> Result<Reply, ApiError> {
    let (offset, size) = paging(req)?;
    let pattern = req.param("logstoreName").unwrap_or("");
    let names: Vec<String> = project
        .logstores()
        .iter()
        .map(|l| l.name.clone())
        .filter(|n| n.contains(pattern))
        .collect();
    let page: Vec<&String> = names.iter().skip(offset).take(size).collect();
    Ok(Reply::json(&json!({
        "count": page.len(),
        "total": names.len(),
        "logstores": page,
    })))
}

pub(crate) fn delete(state: &State, project: &Project, name: &str) -> Result<Reply, ApiError> {
    state.store.delete_logstore(project, name)?;
    tracing::info!(project = %project.name, logstore = %name, "logstore deleted");
    Ok(Reply::empty())
}

fn describe_shard(s: &Shard) -> serde_json::Value {
    json!({
        "shardID": s.id,
        "status": match s.status() {
            ShardStatus::ReadWrite => "readwrite",
            ShardStatus::ReadOnly => "readonly",
        },
        "inclusiveBeginKey": format!("{:032x}", s.begin_key),
        "exclusiveEndKey": format!("{:032x}", s.end_key),
        "createTime": s.create_time,
    })
}

fn describe_shards(shards: &[Arc<Shard>]) -> Reply {
    let list: Vec<serde_json::Value> = shards.iter().map(|s| describe_shard(s)).collect();
    Reply::json(&list)
}

pub(crate) fn list_shards(ls: &Logstore) -> Result<Reply, ApiError> {
    Ok(describe_shards(&ls.shards()))
}

/// Parses a 1–32 hex digit MD5-space key; shorter keys are padded on the right, since
/// SLS compares keys as 32-digit strings.
pub(crate) fn parse_key(key: &str) -> Result<u128, ApiError> {
    let ok = (1..=32).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(ApiError::parameter_invalid(format!(
            "key {key:?} is not a hex MD5 hash key of at most 32 digits"
        )));
    }
    let padded = format!("{key:0<32}");
    u128::from_str_radix(&padded, 16)
        .map_err(|_| ApiError::parameter_invalid(format!("bad hash key {key:?}")))
}

pub(crate) fn split(
    state: &State,
    ls: &Logstore,
    id: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    if req.param("shardCount").is_some_and(|n| n != "2") {
        return Err(ApiError::parameter_invalid(
            "the emulator splits a shard into exactly 2 (shardCount=2)",
        ));
    }
    let key = req
        .param("key")
        .ok_or_else(|| ApiError::parameter_invalid("split needs key=<hex MD5 split point>"))?;
    let shards = ls.split(id, parse_key(key)?)?;
    state.store.save()?;
    Ok(describe_shards(&shards))
}

pub(crate) fn merge(state: &State, ls: &Logstore, id: &str) -> Result<Reply, ApiError> {
    let shards = ls.merge(id)?;
    state.store.save()?;
    Ok(describe_shards(&shards))
}

pub(crate) fn delete_shard(state: &State, ls: &Logstore, id: &str) -> Result<Reply, ApiError> {
    ls.delete_shard(id)?;
    state.store.save()?;
    Ok(Reply::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(parse_key("8").unwrap(), 1 << 127);
        assert_eq!(
            parse_key("ffffffffffffffffffffffffffffffff").unwrap(),
            u128::MAX
        );
        assert!(parse_key("").is_err());
        assert!(parse_key("xyz").is_err());
        assert!(parse_key(&"0".repeat(33)).is_err());
    }
}
