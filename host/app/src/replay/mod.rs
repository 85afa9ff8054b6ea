//! `shipper replay`: sends a time window of a logstore again, through the same plugin and
//! sink path as `shipper run` (docs/replay.md).
//!
//! For every shard, GetCursor by receive time gives the window's cursor range
//! `[GetCursor(from), GetCursor(to))`; a [`reader::RangeRead`] pulls exactly that range
//! and the ordinary shard loop ([`crate::pipeline::shard::run`]) formats, sends and
//! acknowledges it in order. Its "checkpoints" go to the replay's [`state::Tracker`]
//! (memory, or `--state FILE`), never to a consumer group: a replay does not join the
//! group, so the live `shipper run` keeps its shards and checkpoints.
//!
//! - [`crate::window`]: `--from`/`--to` and the retention check (shared with `reconcile`).
//! - [`plan`]: the cursor range of every shard (or the ranges a state file resumes).
//! - [`reader`]: the bounded PullLogs stream of one shard.
//! - [`state`]: the acknowledged positions and the state file.
//! - [`progress`]: the progress line with its ETA.

pub mod plan;
pub mod progress;
pub mod reader;
pub mod state;
