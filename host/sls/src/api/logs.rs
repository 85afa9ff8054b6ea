//! GetCursor, PullLogs and PutLogs (docs/sls-protocol.md §5.4–§5.6).
//!
//! PullLogs returns the *decompressed* `LogGroupList` body as [`Bytes`] together with the
//! zero-copy split into groups ([`crate::proto::split_log_groups`]): the consumer hands those
//! slices to the plugin without decoding a single log.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::HeaderMap;

use super::logstore_path;
use crate::client::{ApiRequest, Client, header_str};
use crate::codec::{self, Compression};
use crate::cursor::Cursor;
use crate::error::SlsError;
use crate::proto::{self, LogGroup, LogGroupView};

/// Largest `count` SLS accepts on PullLogs, and the SDKs' default (docs/sls-protocol.md
/// §5.6 "PullLogs", §12).
pub const MAX_PULL_COUNT: u32 = 1000;

/// Where GetCursor should point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorPosition {
    /// The oldest retained LogGroup.
    Begin,
    /// One past the newest LogGroup (where the next write lands).
    End,
    /// The first LogGroup received at or after this unix time (seconds).
    At(i64),
}

impl CursorPosition {
    /// The `from` query value.
    pub fn as_param(&self) -> String {
        match self {
            Self::Begin => "begin".into(),
            Self::End => "end".into(),
            Self::At(t) => t.to_string(),
        }
    }
}

impl std::fmt::Display for CursorPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_param())
    }
}

/// Parameters of one PullLogs call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// Where to read from.
    pub cursor: Cursor,
    /// Maximum number of LogGroups (1–1000).
    pub count: u32,
    /// Exclusive upper bound; the reply never goes past it.
    pub end_cursor: Option<Cursor>,
    /// SPL query (server-side filter/transform), sent with `pullMode=scan_on_stream`.
    pub query: Option<String>,
    /// Body compression to ask for (`Accept-Encoding`).
    pub compression: Compression,
}

impl PullRequest {
    /// Up to 1000 groups from `cursor`, LZ4-compressed on the wire.
    pub fn new(cursor: Cursor) -> Self {
        Self {
            cursor,
            count: MAX_PULL_COUNT,
            end_cursor: None,
            query: None,
            compression: Compression::Lz4,
        }
    }
}

/// The answer to one PullLogs call.
#[derive(Debug, Clone)]
pub struct PullResponse {
    /// The cursor the request started from.
    pub cursor: Cursor,
    /// `x-log-cursor`: where the next pull must start. Equal to `cursor` when there was no
    /// data (caught up).
    pub next_cursor: Cursor,
    /// The decompressed `LogGroupList` body (empty when there was no data).
    pub body: Bytes,
    /// The groups of `body`, still encoded (cheap slices of it).
    pub groups: Vec<LogGroupView>,
    /// `x-log-count`: number of LogGroups the server says it returned.
    pub count: usize,
    /// `x-log-bodyrawsize`: uncompressed body size.
    pub raw_size: usize,
    /// `x-log-end-of-cursor: 1`: a read-only shard was read to its end.
    pub end_of_cursor: bool,
    /// `x-log-cursor-time`: server receive time (unix s) at the cursor position, if sent.
    pub cursor_time: Option<i64>,
    /// `x-log-read-last-cursor`: the decimal position of the last returned group, if sent.
    pub read_last_cursor: Option<i64>,
    /// `x-log-requestid`.
    pub request_id: Option<String>,
}

impl PullResponse {
    /// Total number of logs in all groups.
    pub fn log_count(&self) -> usize {
        self.groups.iter().map(|g| g.log_count).sum()
    }

    /// No data and the cursor did not move: the reader is at the end of the shard.
    pub fn is_caught_up(&self) -> bool {
        self.groups.is_empty() && self.next_cursor == self.cursor
    }
}

/// How PutLogs picks the shard (docs/sls-protocol.md §5.4 "PutLogs").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The server picks (`/shards/lb`).
    LoadBalance,
    /// The shard whose MD5 range contains this 32-hex-digit key (`/shards/route?key=`).
    HashKey(String),
    /// This shard id: resolved to its range's begin key with ListShards (one extra call),
    /// because SLS has no write-to-shard-id API.
    Shard(u32),
}

const PULL_LOGS: &str = "PullLogs";

fn shard_path(logstore: &str, shard: u32) -> String {
    format!("{}/shards/{shard}", logstore_path(logstore))
}

pub(crate) fn get_cursor_request(logstore: &str, shard: u32, at: CursorPosition) -> ApiRequest {
    let mut req = ApiRequest::new("GetCursor", Method::GET, shard_path(logstore, shard))
        .param("type", "cursor")
        .param("from", at.as_param());
    // Python signs a JSON content type on this bodiless GET (vector get_cursor_begin); sent
    // the same way so the request is byte-for-byte one the service has always accepted.
    req.content_type = Some("application/json");
    req
}

pub(crate) fn pull_logs_request(logstore: &str, shard: u32, pull: &PullRequest) -> ApiRequest {
    let mut req = ApiRequest::new(PULL_LOGS, Method::GET, shard_path(logstore, shard))
        .param("type", "log")
        .param("cursor", pull.cursor.encode())
        .param("count", pull.count.to_string());
    if let Some(query) = &pull.query {
        req = req
            .param("pullMode", "scan_on_stream")
            .param("query", query.clone());
    }
    if let Some(end) = pull.end_cursor {
        req = req.param("end_cursor", end.encode());
    }
    req.accept = Some(("application/x-protobuf", pull.compression.as_header()));
    req
}

pub(crate) fn put_logs_request(logstore: &str, route: &Route, raw: &[u8]) -> ApiRequest {
    let base = logstore_path(logstore);
    let mut req = match route {
        Route::HashKey(key) => {
            ApiRequest::new("PutLogs", Method::POST, format!("{base}/shards/route"))
                .param("key", key.clone())
        }
        Route::LoadBalance | Route::Shard(_) => {
            ApiRequest::new("PutLogs", Method::POST, format!("{base}/shards/lb"))
        }
    };
    req.body = Bytes::from(codec::compress_lz4(raw));
    req.content_type = Some("application/x-protobuf");
    req.raw_size = Some(raw.len());
    req.compression = Some(Compression::Lz4);
    req
}

fn parse_i64_header(headers: &HeaderMap, name: &str) -> Result<Option<i64>, SlsError> {
    header_str(headers, name)
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                SlsError::protocol(PULL_LOGS, format!("header {name} is not an integer: {v:?}"))
            })
        })
        .transpose()
}

/// Adds where an undecodable PullLogs answer came from to its error: the operator needs the
/// shard and cursor to report the bad bytes (or to move a checkpoint past them).
fn at_position(e: SlsError, logstore: &str, shard: u32, cursor: Cursor) -> SlsError {
    let place = format!("logstore {logstore} shard {shard} at cursor {cursor}");
    match e {
        SlsError::Decode { op, what } => SlsError::Decode {
            op,
            what: format!("{place}: {what}"),
        },
        SlsError::Protocol { op, message } => SlsError::Protocol {
            op,
            message: format!("{place}: {message}"),
        },
        other => other,
    }
}

/// Decodes a 200 PullLogs answer: required headers, decompression (capped), group split.
pub(crate) fn parse_pull_response(
    cursor: Cursor,
    headers: &HeaderMap,
    body: &[u8],
    max_raw_size: usize,
) -> Result<PullResponse, SlsError> {
    let required = |name: &str| {
        parse_i64_header(headers, name)?.ok_or_else(|| {
            SlsError::protocol(PULL_LOGS, format!("the 200 response has no {name} header"))
        })
    };
    let count = usize::try_from(required("x-log-count")?)
        .map_err(|_| SlsError::protocol(PULL_LOGS, "negative x-log-count"))?;
    let raw_size = usize::try_from(required("x-log-bodyrawsize")?)
        .map_err(|_| SlsError::protocol(PULL_LOGS, "negative x-log-bodyrawsize"))?;
    let next_cursor = match header_str(headers, "x-log-cursor").map(str::trim) {
        None => {
            return Err(SlsError::protocol(
                PULL_LOGS,
                "the 200 response has no x-log-cursor header",
            ));
        }
        // The SDKs keep the old cursor when the header is empty (docs/sls-protocol.md §5.6).
        Some("") => cursor,
        Some(v) => Cursor::parse(v).map_err(|e| SlsError::decode(PULL_LOGS, e))?,
    };
    let end_of_cursor = header_str(headers, "x-log-end-of-cursor").is_some_and(|v| v.trim() == "1");
    let cursor_time = parse_i64_header(headers, "x-log-cursor-time")?;
    let read_last_cursor = parse_i64_header(headers, "x-log-read-last-cursor")?;
    let request_id = header_str(headers, "x-log-requestid").map(str::to_owned);

    // `x-log-bodyrawsize: 0` means no data; the SDKs skip decoding (docs/sls-protocol.md §5.6).
    let (body, groups) = if raw_size == 0 {
        (Bytes::new(), Vec::new())
    } else {
        let compression = header_str(headers, "x-log-compresstype").unwrap_or("");
        let compression = Compression::from_header(compression).ok_or_else(|| {
            SlsError::decode(
                PULL_LOGS,
                format!("unsupported x-log-compresstype {compression:?} (lz4 was requested)"),
            )
        })?;
        let raw = codec::decompress_to_bytes(compression, body, raw_size, max_raw_size)
            .map_err(|e| SlsError::decode(PULL_LOGS, e))?;
        let groups = proto::split_log_groups(&raw).map_err(|e| SlsError::decode(PULL_LOGS, e))?;
        (raw, groups)
    };
    if groups.len() != count {
        tracing::debug!(
            header = count,
            decoded = groups.len(),
            "x-log-count differs from the number of LogGroups in the body"
        );
    }
    Ok(PullResponse {
        cursor,
        next_cursor,
        body,
        groups,
        count,
        raw_size,
        end_of_cursor,
        cursor_time,
        read_last_cursor,
        request_id,
    })
}

impl Client {
    /// GetCursor: the cursor at `at` in `shard`.
    pub async fn get_cursor(
        &self,
        logstore: &str,
        shard: u32,
        at: CursorPosition,
    ) -> Result<Cursor, SlsError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            cursor: String,
        }
        let resp = self.send(get_cursor_request(logstore, shard, at)).await?;
        let answer: Answer = super::parse_json("GetCursor", &resp.body)?;
        Cursor::parse(&answer.cursor).map_err(|e| SlsError::decode("GetCursor", e))
    }

    /// PullLogs: up to `pull.count` LogGroups from `pull.cursor`.
    pub async fn pull_logs(
        &self,
        logstore: &str,
        shard: u32,
        pull: &PullRequest,
    ) -> Result<PullResponse, SlsError> {
        if pull.count == 0 || pull.count > MAX_PULL_COUNT {
            return Err(SlsError::config(format!(
                "PullLogs count {} is out of range 1..={MAX_PULL_COUNT}",
                pull.count
            )));
        }
        let resp = self.send(pull_logs_request(logstore, shard, pull)).await?;
        parse_pull_response(pull.cursor, &resp.headers, &resp.body, self.max_raw_size())
            .map_err(|e| at_position(e, logstore, shard, pull.cursor))
    }

    /// PutLogs: writes one LogGroup (LZ4-compressed) to the shard chosen by `route`.
    pub async fn put_logs(
        &self,
        logstore: &str,
        route: &Route,
        group: &LogGroup,
    ) -> Result<(), SlsError> {
        self.put_log_group_bytes(logstore, route, &prost::Message::encode_to_vec(group))
            .await
    }

    /// PutLogs with an already encoded `LogGroup` (benchmarks, generators).
    pub async fn put_log_group_bytes(
        &self,
        logstore: &str,
        route: &Route,
        encoded_group: &[u8],
    ) -> Result<(), SlsError> {
        let resolved;
        let route = match route {
            Route::Shard(id) => {
                let shards = self.list_shards(logstore).await?;
                let shard = shards.iter().find(|s| s.shard_id == *id).ok_or_else(|| {
                    SlsError::config(format!("logstore {logstore} has no shard {id}"))
                })?;
                resolved = Route::HashKey(shard.inclusive_begin_key.clone());
                &resolved
            }
            other => other,
        };
        self.send(put_logs_request(logstore, route, encoded_group))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::vectors::{assert_same_request, client};
    use crate::fixtures::read as fixture;

    fn cursor(s: &str) -> Cursor {
        Cursor::parse(s).unwrap()
    }

    #[test]
    fn get_cursor_requests_match_the_sdk() {
        let c = client(false);
        let req = get_cursor_request("test-logstore", 0, CursorPosition::Begin);
        assert_same_request("get_cursor_begin", &c, &req, &[]);
        let req = get_cursor_request("test-logstore", 0, CursorPosition::At(1_700_000_000));
        assert_same_request("get_cursor_time", &c, &req, &[]);
    }

    #[test]
    fn pull_logs_requests_match_the_sdk() {
        let c = client(false);
        let req = pull_logs_request(
            "test-logstore",
            0,
            &PullRequest::new(cursor("MTcwMDAwMDAwMDAwMDAwMDAwMA==")),
        );
        assert_same_request("pull_logs", &c, &req, &[]);
        let pull = PullRequest {
            count: 100,
            end_cursor: Some(cursor("MTcwMDAwMDAwMDAwMDAwMDAxMA==")),
            query: Some("* | where level = 'WARN'".into()),
            ..PullRequest::new(cursor("MTcwMDAwMDAwMDAwMDAwMDAwMA=="))
        };
        assert_same_request(
            "pull_logs_spl",
            &c,
            &pull_logs_request("test-logstore", 0, &pull),
            &[],
        );
    }

    #[test]
    fn put_logs_request_matches_the_sdk() {
        let raw = fixture("putlogs_body.loggroup.pb");
        let req = put_logs_request("test-logstore", &Route::LoadBalance, &raw);
        // Our LZ4 encoder may pick different matches than the SDK's; what must hold is that
        // the body expands to the same LogGroup. Then compare the rest with the SDK's body.
        let expanded = codec::decompress(Compression::Lz4, &req.body, raw.len(), 1 << 20).unwrap();
        assert_eq!(expanded, raw);
        let mut same_body = req.clone();
        same_body.body = Bytes::from(fixture("putlogs_body.lz4"));
        assert_same_request("put_logs_lz4", &client(false), &same_body, &[]);

        let routed = put_logs_request("ls", &Route::HashKey("7f".repeat(16)), &raw);
        assert_eq!(routed.path, "/logstores/ls/shards/route");
        assert_eq!(routed.query, [("key", "7f".repeat(16))]);
    }

    fn pull_headers() -> (HeaderMap, Vec<u8>) {
        let doc: serde_json::Value =
            serde_json::from_slice(&fixture("pulllogs_response.json")).unwrap();
        let mut headers = HeaderMap::new();
        for (k, v) in doc["headers"].as_object().unwrap() {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(),
                v.as_str().unwrap().parse().unwrap(),
            );
        }
        (headers, fixture(doc["body_file"].as_str().unwrap()))
    }

    #[test]
    fn pull_response_from_the_fixture() {
        let (headers, body) = pull_headers();
        let start = cursor("MTcwMDAwMDAwMDAwMDAwMDAwMA==");
        let resp = parse_pull_response(start, &headers, &body, 1 << 20).unwrap();
        assert_eq!(resp.next_cursor, Cursor(1_700_000_000_000_000_002));
        assert_eq!(resp.count, 2);
        assert_eq!(resp.groups.len(), 2);
        assert_eq!(resp.raw_size, 280);
        assert_eq!(resp.body.as_ref(), fixture("loggrouplist.pb").as_slice());
        assert_eq!(resp.log_count(), 4);
        assert_eq!(resp.request_id.as_deref(), Some("65A1B2C3D4E5F6A7B8C9D0E1"));
        assert!(!resp.end_of_cursor && !resp.is_caught_up());
        assert_eq!(resp.cursor_time, None);
    }

    #[test]
    fn pull_response_edge_cases() {
        let start = Cursor(5);
        let mut empty = HeaderMap::new();
        empty.insert("x-log-cursor", start.encode().parse().unwrap());
        empty.insert("x-log-count", "0".parse().unwrap());
        empty.insert("x-log-bodyrawsize", "0".parse().unwrap());
        empty.insert("x-log-end-of-cursor", "1".parse().unwrap());
        empty.insert("x-log-cursor-time", "1700000000".parse().unwrap());
        let resp = parse_pull_response(start, &empty, b"", 1 << 20).unwrap();
        assert!(resp.is_caught_up() && resp.end_of_cursor);
        assert_eq!(resp.cursor_time, Some(1_700_000_000));

        // An empty x-log-cursor keeps the request cursor.
        let mut blank = empty.clone();
        blank.insert("x-log-cursor", "".parse().unwrap());
        assert_eq!(
            parse_pull_response(start, &blank, b"", 1 << 20)
                .unwrap()
                .next_cursor,
            start
        );

        for missing in ["x-log-cursor", "x-log-count", "x-log-bodyrawsize"] {
            let mut h = empty.clone();
            h.remove(missing);
            let err = parse_pull_response(start, &h, b"", 1 << 20).unwrap_err();
            assert!(
                matches!(err, SlsError::Protocol { .. }) && err.to_string().contains(missing),
                "{err}"
            );
        }

        let (mut headers, body) = pull_headers();
        let err = parse_pull_response(start, &headers, &body, 100).unwrap_err();
        assert!(matches!(err, SlsError::Decode { .. }), "{err}");
        headers.insert("x-log-compresstype", "zstd".parse().unwrap());
        let err = parse_pull_response(start, &headers, &body, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("zstd"), "{err}");
        headers.insert("x-log-compresstype", "lz4".parse().unwrap());
        headers.insert("x-log-cursor", "garbage!".parse().unwrap());
        assert!(parse_pull_response(start, &headers, &body, 1 << 20).is_err());
    }

    #[test]
    fn uncompressed_pull_body() {
        let raw = fixture("loggrouplist.pb");
        let mut h = HeaderMap::new();
        h.insert("x-log-cursor", Cursor(7).encode().parse().unwrap());
        h.insert("x-log-count", "2".parse().unwrap());
        h.insert("x-log-bodyrawsize", raw.len().to_string().parse().unwrap());
        let resp = parse_pull_response(Cursor(5), &h, &raw, 1 << 20).unwrap();
        assert_eq!(resp.groups.len(), 2);
    }
}
