//! Consumer-group APIs (docs/sls-protocol.md §5.7–§5.10): CRUD, heartbeat and checkpoints.
//! The state machine is in [`crate::groups`]; this file parses, looks up and persists.

use serde::Deserialize;
use serde_json::json;
use shipper_sls::cursor::Cursor;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::request::{Reply, Request};
use crate::routes::{bool_param, json_body};
use crate::server::State;
use crate::store::{Logstore, lock, now_micros};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    consumer_group: String,
    timeout: i64,
    #[serde(default)]
    order: bool,
}

fn check_timeout(timeout: i64) -> Result<u32, ApiError> {
    u32::try_from(timeout)
        .ok()
        .filter(|t| *t > 0)
        .ok_or_else(|| {
            ApiError::parameter_invalid(format!(
                "timeout must be a positive number of seconds, got {timeout}"
            ))
        })
}

pub(crate) fn create(state: &State, ls: &Logstore, req: &Request) -> Result<Reply, ApiError> {
    let body: CreateBody = json_body(req)?;
    // Lenient on purpose (letters of either case, digits, `_`, `-`): rejecting a name the real
    // service accepts would break a client for no gain.
    let name = &body.consumer_group;
    let valid = (2..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(ApiError::parameter_invalid(format!(
            "invalid consumer group name {name:?}: use 2-128 characters of letters, digits, '_' and '-'"
        )));
    }
    ls.create_group(
        &body.consumer_group,
        check_timeout(body.timeout)?,
        body.order,
    )?;
    tracing::info!(logstore = %ls.name, group = %body.consumer_group, timeout = body.timeout, "consumer group created");
    state.store.save()?;
    Ok(Reply::json(&json!({})))
}

pub(crate) fn list(ls: &Logstore) -> Result<Reply, ApiError> {
    let groups = lock(&ls.groups);
    let list: Vec<serde_json::Value> = groups
        .values()
        .map(|g| json!({"name": g.name, "timeout": g.timeout, "order": g.order}))
        .collect();
    Ok(Reply::json(&list))
}

pub(crate) fn update(
    state: &State,
    ls: &Logstore,
    group: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    #[derive(Deserialize)]
    struct UpdateBody {
        timeout: Option<i64>,
        order: Option<bool>,
    }
    let body: UpdateBody = json_body(req)?;
    {
        let mut groups = lock(&ls.groups);
        let g = groups
            .get_mut(group)
            .ok_or_else(|| ApiError::group_not_exist(group))?;
        if let Some(t) = body.timeout {
            g.timeout = check_timeout(t)?;
        }
        if let Some(o) = body.order {
            g.order = o;
        }
    }
    state.store.save()?;
    Ok(Reply::empty())
}

pub(crate) fn delete(state: &State, ls: &Logstore, group: &str) -> Result<Reply, ApiError> {
    lock(&ls.groups)
        .remove(group)
        .ok_or_else(|| ApiError::group_not_exist(group))?;
    tracing::info!(logstore = %ls.name, group, "consumer group deleted");
    state.store.save()?;
    Ok(Reply::empty())
}

fn consumer_param(req: &Request) -> Result<&str, ApiError> {
    req.param("consumer")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::parameter_invalid("missing consumer=<name>"))
}

pub(crate) fn heartbeat(ls: &Logstore, group: &str, req: &Request) -> Result<Reply, ApiError> {
    let consumer = consumer_param(req)?;
    let held: Vec<u32> = if req.body.iter().all(u8::is_ascii_whitespace) {
        Vec::new()
    } else {
        json_body(req)?
    };
    let shards = ls.shard_infos();
    let mut groups = lock(&ls.groups);
    let g = groups
        .get_mut(group)
        .ok_or_else(|| ApiError::group_not_exist(group))?;
    let assigned = g.heartbeat(consumer, &held, &shards, Instant::now())?;
    if held != assigned {
        tracing::debug!(logstore = %ls.name, group, consumer, ?held, ?assigned, "heartbeat changed the assignment");
    }
    Ok(Reply::json(&assigned))
}

#[derive(Deserialize)]
struct CheckpointBody {
    shard: u32,
    checkpoint: String,
}

pub(crate) fn update_checkpoint(
    state: &State,
    ls: &Logstore,
    group: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    let body: CheckpointBody = json_body(req)?;
    let force = bool_param(req, "forceSuccess")?.unwrap_or(false);
    let consumer = req.param("consumer").filter(|c| !c.is_empty());
    if !lock(&ls.groups).contains_key(group) {
        return Err(ApiError::group_not_exist(group));
    }
    ls.shard_by_id(body.shard)
        .ok_or_else(|| ApiError::shard_not_exist(&body.shard.to_string()))?;
    Cursor::parse(&body.checkpoint).map_err(|e| ApiError::invalid_cursor(e.to_string()))?;
    {
        let mut groups = lock(&ls.groups);
        let g = groups
            .get_mut(group)
            .ok_or_else(|| ApiError::group_not_exist(group))?;
        g.update_checkpoint(
            body.shard,
            consumer,
            force,
            body.checkpoint,
            now_micros(),
            Instant::now(),
        )?;
    }
    state.store.save()?;
    Ok(Reply::empty())
}

pub(crate) fn get_checkpoints(
    ls: &Logstore,
    group: &str,
    req: &Request,
) -> Result<Reply, ApiError> {
    let only: Option<u32> = match req.param("shard") {
        None | Some("") => None,
        Some(s) => Some(s.parse().map_err(|_| {
            ApiError::parameter_invalid(format!("shard must be a number, got {s:?}"))
        })?),
    };
    let shards = ls.shards();
    let groups = lock(&ls.groups);
    let g = groups
        .get(group)
        .ok_or_else(|| ApiError::group_not_exist(group))?;
    // Every shard appears, also never-committed ones (with "checkpoint": ""): the Python and
    // Java consumers wait forever on an empty list (docs/sls-protocol.md §5.10).
    let list: Vec<serde_json::Value> = shards
        .iter()
        .filter(|s| only.is_none_or(|o| o == s.id))
        .map(|s| match g.checkpoints.get(&s.id) {
            Some(c) => json!({
                "shard": s.id,
                "checkpoint": c.cursor,
                "updateTime": c.update_time_us,
                "consumer": c.consumer,
            }),
            None => json!({"shard": s.id, "checkpoint": "", "updateTime": 0, "consumer": ""}),
        })
        .collect();
    Ok(Reply::json(&list))
}
