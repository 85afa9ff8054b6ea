//! Project and logstore setup (docs/sls-protocol.md §5.2 "Projects and logstores"): what
//! tests, the benchmark and a newcomer's demo need to create their data. `shipper run` never
//! calls these; `shipper replay` reads a logstore's retention (GetLogStore).

use reqwest::Method;

use super::json_str;
use crate::client::{ApiRequest, Client};
use crate::error::SlsError;

/// Data retention (days) of logstores created by [`Client::create_logstore`].
pub const DEFAULT_LOGSTORE_TTL_DAYS: u32 = 30;

impl Client {
    /// CreateProject: creates this client's project.
    pub async fn create_project(&self, description: &str) -> Result<(), SlsError> {
        let body = format!(
            "{{\"projectName\": {}, \"description\": {}}}",
            json_str(self.project()),
            json_str(description)
        );
        let len = body.len();
        let req = ApiRequest::new("CreateProject", Method::POST, "/".into()).json(body, Some(len));
        self.send(req).await?;
        Ok(())
    }

    /// CreateLogstore with `shard_count` read-write shards, no auto-split, 30-day TTL.
    pub async fn create_logstore(&self, logstore: &str, shard_count: u32) -> Result<(), SlsError> {
        let body = format!(
            "{{\"logstoreName\": {}, \"ttl\": {DEFAULT_LOGSTORE_TTL_DAYS}, \"shardCount\": \
             {shard_count}, \"enable_tracking\": false, \"autoSplit\": false, \
             \"maxSplitShard\": 64, \"appendMeta\": false}}",
            json_str(logstore)
        );
        let req = ApiRequest::new("CreateLogstore", Method::POST, "/logstores".into())
            .json(body, Some(0));
        self.send(req).await?;
        Ok(())
    }

    /// GetLogStore's retention: the logstore's `ttl` in days. SLS deletes data older than
    /// this, so a time before `now - ttl` has nothing left to read (`shipper replay` refuses
    /// such a window rather than replay part of it).
    pub async fn get_logstore_ttl_days(&self, logstore: &str) -> Result<u32, SlsError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            ttl: u32,
        }
        let req = ApiRequest::new("GetLogStore", Method::GET, super::logstore_path(logstore));
        let resp = self.send(req).await?;
        Ok(super::parse_json::<Answer>("GetLogStore", &resp.body)?.ttl)
    }

    /// ListLogstores: the names of the project's logstores (first 500).
    pub async fn list_logstores(&self) -> Result<Vec<String>, SlsError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            logstores: Vec<String>,
        }
        let req = ApiRequest::new("ListLogstores", Method::GET, "/logstores".into())
            .param("offset", "0")
            .param("size", "500");
        let resp = self.send(req).await?;
        Ok(super::parse_json::<Answer>("ListLogstores", &resp.body)?.logstores)
    }
}
