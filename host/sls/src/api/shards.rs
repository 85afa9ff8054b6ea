//! ListShards and SplitShard (docs/sls-protocol.md §5.3 "ListShards, split and merge"). The
//! consumer does not need it for assignment (heartbeats do that); it uses it to learn whether
//! a caught-up shard is read-only, and PutLogs uses it to route to a shard id.

use reqwest::Method;

use super::logstore_path;
use crate::client::{ApiRequest, Client};
use crate::error::SlsError;

/// A shard's state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(from = "String")]
pub enum ShardStatus {
    /// Accepts writes.
    ReadWrite,
    /// Closed by a split or merge: readable until its data expires, never written again.
    ReadOnly,
    /// A status this client does not know.
    Other(String),
}

impl From<String> for ShardStatus {
    fn from(s: String) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "readwrite" => Self::ReadWrite,
            "readonly" => Self::ReadOnly,
            _ => Self::Other(s),
        }
    }
}

/// One element of the ListShards answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ShardInfo {
    /// Shard id.
    #[serde(rename = "shardID")]
    pub shard_id: u32,
    /// `readwrite` or `readonly`.
    pub status: ShardStatus,
    /// First MD5 key of the shard's range (32 lower-case hex digits).
    #[serde(rename = "inclusiveBeginKey", default)]
    pub inclusive_begin_key: String,
    /// End of the range, exclusive.
    #[serde(rename = "exclusiveEndKey", default)]
    pub exclusive_end_key: String,
    /// Creation time, unix seconds.
    #[serde(rename = "createTime", default)]
    pub create_time: i64,
}

impl Client {
    /// ListShards: every shard of `logstore`, read-only ones included.
    pub async fn list_shards(&self, logstore: &str) -> Result<Vec<ShardInfo>, SlsError> {
        let resp = self.send(list_shards_request(logstore)).await?;
        super::parse_json("ListShards", &resp.body)
    }
}

impl Client {
    /// SplitShard: closes `shard` (it turns read-only) and creates two read-write shards
    /// covering its range, split at `key` (32 hex digits of the MD5 space). Returns the shards
    /// involved. For tests and tooling; a consumer only sees the effect.
    pub async fn split_shard(
        &self,
        logstore: &str,
        shard: u32,
        key: &str,
    ) -> Result<Vec<ShardInfo>, SlsError> {
        let req = ApiRequest::new(
            "SplitShard",
            Method::POST,
            format!("{}/shards/{shard}", logstore_path(logstore)),
        )
        .param("action", "split")
        .param("key", key);
        let resp = self.send(req).await?;
        super::parse_json("SplitShard", &resp.body)
    }
}

pub(crate) fn list_shards_request(logstore: &str) -> ApiRequest {
    ApiRequest::new(
        "ListShards",
        Method::GET,
        format!("{}/shards", logstore_path(logstore)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::vectors::{assert_same_request, client};

    #[test]
    fn request_matches_the_sdk() {
        assert_same_request(
            "list_shards",
            &client(false),
            &list_shards_request("test-logstore"),
            &[],
        );
    }

    #[test]
    fn parses_the_documented_answer() {
        let body = br#"[{"shardID":0,"status":"readwrite","inclusiveBeginKey":"00000000000000000000000000000000",
          "exclusiveEndKey":"80000000000000000000000000000000","createTime":1700000000},
         {"shardID":1,"status":"readonly","inclusiveBeginKey":"80000000000000000000000000000000",
          "exclusiveEndKey":"ffffffffffffffffffffffffffffffff","createTime":1700000000,"serverIp":"x"}]"#;
        let shards: Vec<ShardInfo> = crate::api::parse_json("ListShards", body).unwrap();
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[0].status, ShardStatus::ReadWrite);
        assert_eq!(shards[1].status, ShardStatus::ReadOnly);
        assert_eq!(
            shards[1].inclusive_begin_key,
            "8".to_owned() + &"0".repeat(31)
        );
    }
}
