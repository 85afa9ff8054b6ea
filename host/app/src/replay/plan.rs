//! The cursor range of every shard of a logstore for a window, or the ranges a state file
//! resumes.

use std::collections::BTreeMap;

use shipper_sls::SlsError;
use shipper_sls::api::logs::CursorPosition;
use shipper_sls::client::Client;
use shipper_sls::cursor::Cursor;

use super::state::ShardState;
use crate::window::Window;

/// Each shard's range `[GetCursor(from), GetCursor(to))` by server receive time, with
/// nothing acknowledged yet. Read-only shards (split or merged since) are included: the
/// window may lie in them.
pub async fn shards(
    client: &Client,
    logstore: &str,
    window: Window,
) -> Result<BTreeMap<u32, ShardState>, SlsError> {
    let mut out = BTreeMap::new();
    for shard in client.list_shards(logstore).await? {
        let id = shard.shard_id;
        let start = client
            .get_cursor(logstore, id, CursorPosition::At(window.from))
            .await?;
        let end = client
            .get_cursor(logstore, id, CursorPosition::At(window.to))
            .await?;
        out.insert(
            id,
            ShardState {
                start: start.encode(),
                end: end.encode(),
                acked: start.encode(),
            },
        );
    }
    Ok(out)
}

/// A shard's range as cursors: `(acked, end)`.
pub fn range(s: &ShardState) -> (Cursor, Cursor) {
    // Checked when the state was made or loaded.
    let parse = |c: &str| Cursor::parse(c).expect("state cursors are checked on load");
    (parse(&s.acked), parse(&s.end))
}
