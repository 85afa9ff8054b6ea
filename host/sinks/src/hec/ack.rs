//! Indexer acknowledgement (docs/rendering.md §3.11 "Indexer acknowledgement"). With
//! `ack = true` every accepted POST carries an `ackId`; the request task registers it with
//! the endpoint that took it and waits. Ack ids belong to one indexer's channel, so each
//! endpoint has its own channel, tracker and poller: it asks
//! `/services/collector/ack?channel=<GUID>` every `ack_poll_interval_ms` for all its pending
//! ids and wakes the tasks whose id turned `true`. A task that waits longer than
//! `ack_timeout_ms` forgets its id and resends, on whichever endpoint is healthy then
//! (at-least-once); a poll that cannot reach its endpoint counts as that endpoint's failure.
//! An answer of 400 code 14 ("ACK is disabled") switches that endpoint to "200 = delivered",
//! as Vector does.
//!
//! Not done: load-balancer cookie stickiness (docs/rendering.md §3.11); behind an LB that
//! spreads requests over indexers, ids can collide and acks never turn true (→ resends).
//! List the indexers as `endpoints` instead.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use tokio::sync::{Notify, oneshot};

use super::Inner;
use super::response::error_chain;

/// Pending ack ids of one channel.
#[derive(Debug, Default)]
pub(crate) struct AckTracker {
    pending: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    wake: Notify,
    disabled: AtomicBool,
}

impl AckTracker {
    /// Waits for `id`: the receiver fires once the id is acknowledged (or acks turned out
    /// to be disabled for the token, which means the 200 already counted).
    pub(crate) fn register(&self, id: u64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("ack lock poisoned")
            .insert(id, tx);
        self.wake.notify_one();
        rx
    }

    /// Gives up on `id` (timeout or cancellation).
    pub(crate) fn forget(&self, id: u64) {
        self.pending.lock().expect("ack lock poisoned").remove(&id);
    }

    /// True after the ack endpoint said 400 code 14.
    pub(crate) fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .pending
            .lock()
            .expect("ack lock poisoned")
            .keys()
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }

    fn resolve(&self, ids: impl IntoIterator<Item = u64>) {
        let mut pending = self.pending.lock().expect("ack lock poisoned");
        for id in ids {
            if let Some(tx) = pending.remove(&id) {
                let _ = tx.send(());
            }
        }
    }

    fn disable(&self) {
        self.disabled.store(true, Ordering::Relaxed);
        let drained: Vec<_> = self
            .pending
            .lock()
            .expect("ack lock poisoned")
            .drain()
            .collect();
        for (_, tx) in drained {
            let _ = tx.send(());
        }
    }
}

#[derive(Deserialize)]
struct AckAnswer {
    acks: HashMap<String, bool>,
}

/// The poll loop of endpoint `i`; ends when the sink's shutdown token fires.
pub(crate) async fn run_poller(inner: Arc<Inner>, i: usize) {
    let ep = &inner.endpoints[i];
    let Some(acks) = ep.acks.as_ref() else {
        return;
    };
    let Some(settings) = inner.settings.ack else {
        return;
    };
    let cancel = &inner.shutdown;
    loop {
        while acks.snapshot().is_empty() {
            tokio::select! {
                () = acks.wake.notified() => {}
                () = cancel.cancelled() => return,
            }
        }
        tokio::select! {
            () = tokio::time::sleep(settings.poll_interval) => {}
            () = cancel.cancelled() => return,
        }
        let ids = acks.snapshot();
        if ids.is_empty() {
            continue;
        }
        let body = serde_json::json!({ "acks": ids }).to_string();
        let auth = inner.auth_header();
        let request = ep
            .transport
            .client
            .post(ep.ack_url.clone())
            .header(AUTHORIZATION, auth)
            .header(super::CHANNEL_HEADER, &ep.channel)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let answer = tokio::select! {
            r = super::send(request) => r,
            () = cancel.cancelled() => return,
        };
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(sink = %inner.name, url = %ep.ack_url, error = %error_chain(&e), "indexer ack poll failed; will poll again");
                inner.endpoint_failed(i, None);
                continue;
            }
        };
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        if status == 200 {
            match serde_json::from_slice::<AckAnswer>(&bytes) {
                Ok(a) => acks.resolve(
                    a.acks
                        .into_iter()
                        .filter(|(_, done)| *done)
                        .filter_map(|(id, _)| id.parse().ok()),
                ),
                Err(e) => {
                    tracing::warn!(sink = %inner.name, url = %ep.ack_url, error = %e, "unreadable indexer ack answer; will poll again")
                }
            }
            continue;
        }
        let code = serde_json::from_slice::<super::response::HecAnswer>(&bytes)
            .ok()
            .and_then(|a| a.code);
        if status == 400 && code == Some(14) {
            tracing::warn!(
                sink = %inner.name,
                url = %ep.ack_url,
                "indexer acknowledgement is disabled for this token (400 code 14): counting HTTP 200 as delivered; set `ack = false` to silence this"
            );
            acks.disable();
            return;
        }
        if matches!(status, 401 | 403) {
            inner.reload_token().await;
        }
        tracing::warn!(sink = %inner.name, url = %ep.ack_url, status, ?code, "indexer ack poll refused; will poll again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_and_disable_wake_waiters() {
        let t = AckTracker::default();
        let mut a = t.register(0);
        let mut b = t.register(1);
        t.resolve([0, 5]);
        assert!(a.try_recv().is_ok());
        assert!(b.try_recv().is_err());
        assert_eq!(t.snapshot(), vec![1]);
        t.disable();
        assert!(b.try_recv().is_ok());
        assert!(t.is_disabled());
        let _c = t.register(2);
        t.forget(2);
        assert!(t.snapshot().is_empty());
    }
}
