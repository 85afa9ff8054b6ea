//! PutLogs, GetCursor, GetCursorTime and PullLogs (docs/sls-protocol.md §5.4–§5.6, §6, §7).
//! Every malformed input (bad lz4, protobuf, sizes, cursors, counts, queries) becomes the SLS
//! error for it; nothing here panics on client data.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use serde_json::json;
use shipper_sls::codec::{self, CodecError, Compression};
use shipper_sls::cursor::Cursor;
use shipper_sls::proto::{LogGroup, LogTag};

use crate::error::ApiError;
use crate::pull::{self, CachedPull, PullKey};
use crate::request::{Reply, Request};
use crate::routes::logstore::parse_key;
use crate::server::State;
use crate::spl::Query;
use crate::store::{Logstore, Shard, lock, now_secs};

/// Largest PullLogs `count`: the protocol's, defined once in shipper-sls
/// (docs/sls-protocol.md §12 "Limits and quotas").
const MAX_PULL_COUNT: usize = shipper_sls::api::logs::MAX_PULL_COUNT as usize;

/// Where a PutLogs goes.
pub(crate) enum Route {
    /// `/shards/lb` or `/logstores/{ls}`: round robin.
    LoadBalance,
    /// `/shards/route?key=<hex>`: the shard whose range holds the key.
    Key,
    /// `/shards/{id}`: that shard.
    Shard(Arc<Shard>),
}

pub(crate) fn put(
    state: &State,
    req: &Request,
    ls: &Logstore,
    route: Route,
) -> Result<Reply, ApiError> {
    let compression = match req.header("x-log-compresstype") {
        None => Compression::None,
        Some(v) => Compression::from_header(v).ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidCompressType",
                format!("compress type {v:?} is not supported by the emulator (use lz4 or none)"),
            )
        })?,
    };
    let raw_size = match req.header("x-log-bodyrawsize") {
        Some(v) => v.trim().parse::<usize>().map_err(|_| {
            ApiError::new(
                400,
                "InvalidBodyRawSize",
                format!("x-log-bodyrawsize {v:?} is not a number"),
            )
        })?,
        None if compression == Compression::None => req.body.len(),
        None => {
            return Err(ApiError::new(
                400,
                "MissingBodyRawSize",
                "a compressed body needs x-log-bodyrawsize",
            ));
        }
    };
    if raw_size > state.max_body_bytes {
        return Err(ApiError::new(
            400,
            "PostBodyTooLarge",
            format!(
                "raw body of {raw_size} bytes exceeds {} bytes",
                state.max_body_bytes
            ),
        ));
    }
    let raw =
        codec::decompress(compression, &req.body, raw_size, state.max_body_bytes).map_err(|e| {
            match e {
                CodecError::SizeMismatch { .. } => {
                    ApiError::new(400, "InvalidBodyRawSize", e.to_string())
                }
                CodecError::TooLarge { .. } => {
                    ApiError::new(400, "PostBodyTooLarge", e.to_string())
                }
                CodecError::Lz4(_) => ApiError::new(400, "PostBodyUncompressError", e.to_string()),
            }
        })?;
    // Decoding validates the whole group (any invalid log fails the request,
    // docs/sls-protocol.md §5.4 "PutLogs"); the stored bytes stay as sent.
    let group = LogGroup::decode(raw.as_slice())
        .map_err(|e| ApiError::post_body_invalid(format!("body is not a LogGroup: {e}")))?;
    let mut raw = raw;
    let now = now_secs();
    if lock(&ls.meta).append_meta {
        for (key, value) in [
            ("__receive_time__", now.to_string()),
            ("__client_ip__", req.peer.to_string()),
        ] {
            // A `LogTags` entry (field 6, length-delimited) appended to the encoded group:
            // protobuf messages are concatenations of fields, so this adds a tag.
            raw.push(0x32);
            LogTag {
                key: key.into(),
                value,
            }
            .encode_length_delimited(&mut raw)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        }
    }
    let shard = match route {
        Route::LoadBalance => ls.pick_lb()?,
        Route::Key => {
            let key = req
                .param("key")
                .ok_or_else(|| ApiError::parameter_invalid("route needs key=<hex MD5 hash>"))?;
            ls.pick_by_key(parse_key(key)?)?
        }
        Route::Shard(shard) => {
            if shard.is_readonly() {
                return Err(ApiError::parameter_invalid(format!(
                    "shard {} is read-only; write through /shards/lb or a hash key",
                    shard.id
                )));
            }
            shard
        }
    };
    shard.append(vec![Bytes::from(raw)], now)?;
    tracing::trace!(logstore = %ls.name, shard = shard.id, logs = group.logs.len(), "PutLogs");
    Ok(Reply::empty())
}

fn parse_cursor(value: Option<&str>, what: &str) -> Result<Cursor, ApiError> {
    let value = value.ok_or_else(|| ApiError::invalid_cursor(format!("missing {what}")))?;
    Cursor::parse(value).map_err(|e| ApiError::invalid_cursor(e.to_string()))
}

pub(crate) fn get_cursor(req: &Request, shard: &Shard) -> Result<Reply, ApiError> {
    let from = req.param("from").ok_or_else(|| {
        ApiError::parameter_invalid("GetCursor needs from=begin|end|<unix seconds>")
    })?;
    let index = match from {
        "begin" => 0,
        "end" => shard.len(),
        t => {
            let secs: i64 = t.trim().parse().map_err(|_| {
                ApiError::parameter_invalid(format!(
                    "from must be begin, end or unix seconds, got {t:?}"
                ))
            })?;
            shard.index_at_time(u32::try_from(secs.max(0)).unwrap_or(u32::MAX))
        }
    };
    Ok(Reply::json(
        &json!({"cursor": Cursor(shard.cursor_at(index)).encode()}),
    ))
}

pub(crate) fn get_cursor_time(req: &Request, shard: &Shard) -> Result<Reply, ApiError> {
    let cursor = parse_cursor(req.param("cursor"), "cursor")?;
    let index = shard.index_of(cursor.0)?;
    Ok(Reply::json(&json!({"cursor_time": shard.time_at(index)})))
}

pub(crate) fn pull(state: &State, req: &Request, shard: &Shard) -> Result<Reply, ApiError> {
    let cursor = parse_cursor(req.param("cursor"), "cursor")?;
    let count: usize = match req.param("count") {
        None => MAX_PULL_COUNT,
        Some(c) => c
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=MAX_PULL_COUNT).contains(n))
            .ok_or_else(|| {
                ApiError::parameter_invalid(format!(
                    "count must be 1..={MAX_PULL_COUNT}, got {c:?}"
                ))
            })?,
    };
    if let Some(p) = req.param("processor").filter(|p| !p.is_empty()) {
        return Err(ApiError::parameter_invalid(format!(
            "consume processor {p:?} does not exist (the emulator supports SPL via query=)"
        )));
    }
    let query = match req.param("query").map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => Some(Query::parse(q)?),
        None => None,
    };
    let start = shard.index_of(cursor.0)?;
    let arrived = std::time::Instant::now();
    state.read_quota.admit(shard.uid, shard.id, arrived)?;
    state
        .pulls_served
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let end = match req.param("end_cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            let end = parse_cursor(Some(c), "end_cursor")?;
            if end.0 < shard.base {
                return Err(ApiError::invalid_cursor(format!(
                    "end_cursor {} is before shard {}'s first cursor",
                    end.0, shard.id
                )));
            }
            // Past the current end: bounded by the data anyway.
            Some(usize::try_from(end.0 - shard.base).unwrap_or(usize::MAX))
        }
    };
    let accepts_lz4 = req
        .header("accept-encoding")
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("lz4")));
    let cache_key =
        (query.is_none() && accepts_lz4 && state.pull_cache.enabled()).then_some(PullKey {
            shard: shard.uid,
            start,
            count,
            end,
            max_bytes: state.max_pull_bytes,
        });
    let hit = cache_key.and_then(|k| state.pull_cache.get(&k));
    let mut spl_headers = Vec::new();
    let (read, groups_out, raw_len, payload) = match hit {
        Some(hit) => (hit.groups, hit.groups, hit.raw_len, hit.body),
        None => {
            let groups = if end.is_some_and(|e| e <= start) {
                Vec::new()
            } else {
                shard.read_range(start, end, count, state.max_pull_bytes)
            };
            let body = pull::build(&groups, query.as_ref())
                .map_err(|e| ApiError::internal(format!("stored LogGroup is malformed: {e}")))?;
            if query.is_some() {
                spl_headers = vec![
                    ("x-log-rawdatasize", body.scanned_bytes.to_string()),
                    ("x-log-rawdatacount", groups.len().to_string()),
                    ("x-log-rawdatalines", body.lines_in.to_string()),
                    ("x-log-resultlines", body.lines_out.to_string()),
                    ("x-log-failedlines", "0".to_owned()),
                ];
            }
            let raw_len = body.raw.len();
            let payload = if raw_len == 0 {
                Bytes::new()
            } else if accepts_lz4 {
                Bytes::from(pull::compress(&body.raw))
            } else {
                Bytes::from(body.raw)
            };
            // Stopped by count, size or end_cursor rather than by the end of the data: the
            // same request will always get this reply (the data is append-only).
            let next = start + groups.len();
            let stable = next < shard.len() || end.is_some_and(|e| next >= e);
            if let Some(key) = cache_key.filter(|_| stable && raw_len > 0) {
                state.pull_cache.insert(
                    key,
                    CachedPull {
                        body: payload.clone(),
                        raw_len,
                        groups: groups.len(),
                    },
                );
            }
            (groups.len(), body.groups, raw_len, payload)
        }
    };
    state.read_quota.charge(shard.uid, raw_len, arrived);
    let next = start + read;
    let next_cursor = shard.cursor_at(next);

    let mut headers: Vec<(&'static str, String)> = vec![
        ("x-log-cursor", Cursor(next_cursor).encode()),
        ("x-log-count", groups_out.to_string()),
        ("x-log-bodyrawsize", raw_len.to_string()),
        ("x-log-cursor-time", shard.time_at(start).to_string()),
        (
            "x-log-end-of-cursor",
            if shard.is_readonly() && next_cursor >= shard.end() {
                "1"
            } else {
                "0"
            }
            .to_owned(),
        ),
    ];
    if read > 0 {
        headers.push(("x-log-read-last-cursor", (next_cursor - 1).to_string()));
    }
    headers.extend(spl_headers);
    if !payload.is_empty() && accepts_lz4 {
        headers.push(("x-log-compresstype", "lz4".to_owned()));
    }
    Ok(Reply {
        content_type: "application/x-protobuf",
        headers,
        body: payload,
    })
}
