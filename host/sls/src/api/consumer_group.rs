//! Consumer-group calls (docs/sls-protocol.md §5.7–§5.10): CRUD, ConsumerGroupHeartBeat,
//! ConsumerGroupUpdateCheckPoint and GetCheckPoint.
//!
//! JSON bodies are formatted exactly as the Python SDK formats them (`json.dumps` with its
//! `", "` / `": "` separators, the same key order and the same `x-log-bodyrawsize` quirks), so
//! the unit tests can check our requests against the SDK's recorded ones byte for byte.
//! The one deliberate difference: `forceSuccess` is sent as `true`/`false` (the Go and Java
//! spelling) instead of Python's `True`.

use reqwest::Method;

use super::{json_str, logstore_path};
use crate::client::{ApiRequest, Client};
use crate::cursor::{Cursor, CursorError};
use crate::error::SlsError;

/// One element of ListConsumerGroup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ConsumerGroupInfo {
    /// Group name.
    pub name: String,
    /// Seconds without a heartbeat after which a consumer is dropped.
    pub timeout: u32,
    /// Ordered consumption across splits/merges.
    #[serde(default)]
    pub order: bool,
}

/// One element of GetCheckPoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ShardCheckpoint {
    /// Shard id.
    pub shard: u32,
    /// The stored cursor; empty when the shard was never committed.
    #[serde(default)]
    pub checkpoint: String,
    /// Last update, microseconds since the epoch (0 when never committed).
    #[serde(rename = "updateTime", default)]
    pub update_time: i64,
    /// Consumer that wrote it ("" when never committed).
    #[serde(default)]
    pub consumer: String,
}

impl ShardCheckpoint {
    /// The checkpoint as a cursor; `None` when the shard has none yet.
    pub fn cursor(&self) -> Result<Option<Cursor>, CursorError> {
        let s = self.checkpoint.trim();
        if s.is_empty() {
            Ok(None)
        } else {
            Cursor::parse(s).map(Some)
        }
    }
}

fn groups_path(logstore: &str) -> String {
    format!("{}/consumergroups", logstore_path(logstore))
}

fn group_path(logstore: &str, group: &str) -> String {
    format!("{}/{group}", groups_path(logstore))
}

pub(crate) fn create_request(logstore: &str, group: &str, timeout: u32, order: bool) -> ApiRequest {
    let body = format!(
        "{{\"consumerGroup\": {}, \"timeout\": {timeout}, \"order\": {order}}}",
        json_str(group)
    );
    // Python sends x-log-bodyrawsize 0 on this JSON body (vector create_consumer_group).
    ApiRequest::new("CreateConsumerGroup", Method::POST, groups_path(logstore)).json(body, Some(0))
}

pub(crate) fn heartbeat_request(
    logstore: &str,
    group: &str,
    consumer: &str,
    held: &[u32],
) -> ApiRequest {
    let list: Vec<String> = held.iter().map(u32::to_string).collect();
    let body = format!("[{}]", list.join(", "));
    ApiRequest::new(
        "ConsumerGroupHeartBeat",
        Method::POST,
        group_path(logstore, group),
    )
    .param("type", "heartbeat")
    .param("consumer", consumer)
    .json(body, None)
}

pub(crate) fn update_checkpoint_request(
    logstore: &str,
    group: &str,
    consumer: &str,
    shard: u32,
    cursor: Cursor,
    force: bool,
) -> ApiRequest {
    let body = format!(
        "{{\"shard\": {shard}, \"checkpoint\": {}}}",
        json_str(&cursor.encode())
    );
    ApiRequest::new(
        "ConsumerGroupUpdateCheckPoint",
        Method::POST,
        group_path(logstore, group),
    )
    .param("type", "checkpoint")
    .param("consumer", consumer)
    .param("forceSuccess", if force { "true" } else { "false" })
    .json(body, None)
}

pub(crate) fn get_checkpoints_request(
    logstore: &str,
    group: &str,
    shard: Option<u32>,
) -> ApiRequest {
    let mut req = ApiRequest::new("GetCheckPoint", Method::GET, group_path(logstore, group));
    if let Some(shard) = shard {
        req = req.param("shard", shard.to_string());
    }
    req
}

impl Client {
    /// CreateConsumerGroup. `timeout`: seconds without heartbeat before a consumer is
    /// dropped; `order`: in-order consumption after splits/merges.
    pub async fn create_consumer_group(
        &self,
        logstore: &str,
        group: &str,
        timeout: u32,
        order: bool,
    ) -> Result<(), SlsError> {
        self.send(create_request(logstore, group, timeout, order))
            .await?;
        Ok(())
    }

    /// ListConsumerGroup.
    pub async fn list_consumer_groups(
        &self,
        logstore: &str,
    ) -> Result<Vec<ConsumerGroupInfo>, SlsError> {
        let req = ApiRequest::new("ListConsumerGroup", Method::GET, groups_path(logstore));
        let resp = self.send(req).await?;
        super::parse_json("ListConsumerGroup", &resp.body)
    }

    /// UpdateConsumerGroup: changes `timeout` and/or `order` (at least one must be given).
    pub async fn update_consumer_group(
        &self,
        logstore: &str,
        group: &str,
        timeout: Option<u32>,
        order: Option<bool>,
    ) -> Result<(), SlsError> {
        let mut fields = Vec::new();
        if let Some(order) = order {
            fields.push(format!("\"order\": {order}"));
        }
        if let Some(timeout) = timeout {
            fields.push(format!("\"timeout\": {timeout}"));
        }
        if fields.is_empty() {
            return Err(SlsError::config(
                "UpdateConsumerGroup needs a timeout or an order to change",
            ));
        }
        let body = format!("{{{}}}", fields.join(", "));
        let len = body.len();
        let req = ApiRequest::new(
            "UpdateConsumerGroup",
            Method::PUT,
            group_path(logstore, group),
        )
        .json(body, Some(len));
        self.send(req).await?;
        Ok(())
    }

    /// DeleteConsumerGroup (its checkpoints go with it).
    pub async fn delete_consumer_group(&self, logstore: &str, group: &str) -> Result<(), SlsError> {
        let req = ApiRequest::new(
            "DeleteConsumerGroup",
            Method::DELETE,
            group_path(logstore, group),
        );
        self.send(req).await?;
        Ok(())
    }

    /// ConsumerGroupHeartBeat: `held` = every shard this consumer still holds, including
    /// ones it is releasing; returns the shards the server assigns to it now.
    pub async fn heartbeat(
        &self,
        logstore: &str,
        group: &str,
        consumer: &str,
        held: &[u32],
    ) -> Result<Vec<u32>, SlsError> {
        self.heartbeat_with_timeout(logstore, group, consumer, held, None)
            .await
    }

    pub(crate) async fn heartbeat_with_timeout(
        &self,
        logstore: &str,
        group: &str,
        consumer: &str,
        held: &[u32],
        timeout: Option<std::time::Duration>,
    ) -> Result<Vec<u32>, SlsError> {
        let mut req = heartbeat_request(logstore, group, consumer, held);
        req.timeout = timeout;
        let resp = self.send(req).await?;
        let assigned: Option<Vec<u32>> = super::parse_json("ConsumerGroupHeartBeat", &resp.body)?;
        Ok(assigned.unwrap_or_default())
    }

    /// ConsumerGroupUpdateCheckPoint. With `force = false` the server accepts it only from
    /// the shard's current holder (ownership errors otherwise, see
    /// [`SlsError::is_shard_lost`]); with `true` always.
    pub async fn update_checkpoint(
        &self,
        logstore: &str,
        group: &str,
        consumer: &str,
        shard: u32,
        cursor: Cursor,
        force: bool,
    ) -> Result<(), SlsError> {
        self.send(update_checkpoint_request(
            logstore, group, consumer, shard, cursor, force,
        ))
        .await?;
        Ok(())
    }

    /// GetCheckPoint for one shard or (with `None`) every shard. Never-committed shards are
    /// listed with an empty checkpoint.
    pub async fn get_checkpoints(
        &self,
        logstore: &str,
        group: &str,
        shard: Option<u32>,
    ) -> Result<Vec<ShardCheckpoint>, SlsError> {
        let resp = self
            .send(get_checkpoints_request(logstore, group, shard))
            .await?;
        super::parse_json("GetCheckPoint", &resp.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::vectors::{assert_same_request, client};

    #[test]
    fn heartbeat_requests_match_the_sdk() {
        let req = heartbeat_request("test-logstore", "test-cg", "consumer-1", &[0, 1]);
        assert_same_request("heartbeat", &client(false), &req, &[]);
        let req = heartbeat_request("test-logstore", "test-cg", "consumer-1", &[]);
        assert_same_request("heartbeat_sts", &client(true), &req, &[]);
    }

    #[test]
    fn checkpoint_requests_match_the_sdk() {
        let cursor = Cursor::parse("MTcwMDAwMDAwMDAwMDAwMDAwMg==").unwrap();
        let req =
            update_checkpoint_request("test-logstore", "test-cg", "consumer-1", 0, cursor, true);
        // Python spells the boolean `True`; we send Go's/Java's `true` (both accepted).
        assert_same_request(
            "update_check_point",
            &client(false),
            &req,
            &[("forceSuccess=True", "forceSuccess=true")],
        );
        let req = get_checkpoints_request("test-logstore", "test-cg", Some(0));
        assert_same_request("get_check_point", &client(false), &req, &[]);
    }

    #[test]
    fn create_request_matches_the_sdk() {
        let req = create_request("test-logstore", "test-cg", 40, false);
        assert_same_request("create_consumer_group", &client(false), &req, &[]);
    }

    #[test]
    fn checkpoint_answers() {
        let body = br#"[{"shard":0,"checkpoint":"MTcwMDAwMDAwMDAwMDAwMDAxMA==","updateTime":1700000123456789,"consumer":"consumer-1"},
                       {"shard":1,"checkpoint":"","updateTime":0,"consumer":""}]"#;
        let cps: Vec<ShardCheckpoint> = crate::api::parse_json("GetCheckPoint", body).unwrap();
        assert_eq!(
            cps[0].cursor().unwrap(),
            Some(Cursor(1_700_000_000_000_000_010))
        );
        assert_eq!(cps[1].cursor().unwrap(), None);
        let groups: Vec<ConsumerGroupInfo> = crate::api::parse_json(
            "ListConsumerGroup",
            br#"[{"name":"cg1","timeout":40,"order":false}]"#,
        )
        .unwrap();
        assert_eq!(groups[0].timeout, 40);
    }
}
