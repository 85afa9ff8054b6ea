//! Ordered acknowledgement: sends go out in position order, their acknowledgements come back
//! in any order, and [`OrderedAcks`] hands them out in the order they were sent, each with the
//! position range it acknowledges. A shard's checkpoint may only move past a position once
//! every earlier send is settled; this type is where that order is kept (the idea of Vector's
//! `OrderedFinalizer`, docs/architecture.md "Delivery guarantee").
//!
//! It owns no I/O and knows nothing of sinks or checkpoints: an entry is whatever the caller
//! needs back when its acknowledgement arrives (the send's origins, for dead-lettering
//! rejected events), the acknowledgement is any future, and positions are any ordered `Copy`
//! type (an SLS cursor in production).

use std::ops::Range;
use std::task::{Context, Poll, ready};

use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;

/// One settled send, in send order.
#[derive(Debug)]
pub struct Acked<E, A, P> {
    /// What was pushed with the send.
    pub entry: E,
    /// What its acknowledgement future resolved to.
    pub ack: A,
    /// The positions this send completes: from the end of the previous range (or the start)
    /// to the position pushed with it. `None` when it was pushed without a position (its
    /// events' batch is not fully sent yet; a later send carries the position).
    pub range: Option<Range<P>>,
}

/// Acknowledgements in send order. See the module docs.
pub struct OrderedAcks<E, A, P> {
    pending: FuturesOrdered<BoxFuture<'static, (E, A, Option<P>)>>,
    /// Everything before this position is acknowledged (and was handed out).
    acked_to: P,
}

impl<E, A, P> OrderedAcks<E, A, P>
where
    E: Send + 'static,
    A: Send + 'static,
    P: Copy + Send + 'static,
{
    /// Nothing in flight; positions start at `start` (where reading started).
    pub fn new(start: P) -> Self {
        Self {
            pending: FuturesOrdered::new(),
            acked_to: start,
        }
    }

    /// Adds a send whose acknowledgement is `ack`. `position`, when given, is where the
    /// positions it completes end (exclusive).
    pub fn push(
        &mut self,
        entry: E,
        position: Option<P>,
        ack: impl Future<Output = A> + Send + 'static,
    ) {
        self.pending
            .push_back(Box::pin(async move { (entry, ack.await, position) }));
    }

    /// Sends not handed out yet.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The oldest send once it is acknowledged (waiting for it even when later ones are
    /// already done); `None` when nothing is in flight. Cancel-safe: a send is handed out
    /// exactly once.
    pub async fn next(&mut self) -> Option<Acked<E, A, P>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// [`Self::next`] as a poll, for waiting on several queues at once.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Acked<E, A, P>>> {
        let Some((entry, ack, position)) = ready!(self.pending.poll_next_unpin(cx)) else {
            return Poll::Ready(None);
        };
        let range = position.map(|end| {
            let start = std::mem::replace(&mut self.acked_to, end);
            start..end
        });
        Poll::Ready(Some(Acked { entry, ack, range }))
    }

    /// Everything before this position is acknowledged.
    pub fn acked_to(&self) -> P {
        self.acked_to
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;

    /// Pushes `n` sends whose acknowledgements the test resolves by hand.
    fn sends(
        acks: &mut OrderedAcks<usize, u32, i64>,
        positions: &[Option<i64>],
    ) -> Vec<oneshot::Sender<u32>> {
        positions
            .iter()
            .enumerate()
            .map(|(i, &position)| {
                let (tx, rx) = oneshot::channel();
                acks.push(i, position, async move { rx.await.unwrap_or(0) });
                tx
            })
            .collect()
    }

    #[tokio::test]
    async fn acknowledgements_out_of_order_come_out_in_send_order_with_their_ranges() {
        let mut acks = OrderedAcks::new(10i64);
        let mut tx = sends(&mut acks, &[Some(12), None, Some(15), Some(16)]);
        // The last three are acknowledged first; nothing may come out before the first.
        for (i, t) in tx
            .drain(1..)
            .enumerate()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            t.send(100 + i as u32).unwrap();
        }
        let blocked = tokio::time::timeout(std::time::Duration::from_millis(50), acks.next()).await;
        assert!(
            blocked.is_err(),
            "handed out a send before the one sent earlier"
        );
        tx.remove(0).send(7).unwrap();
        let mut out = Vec::new();
        while let Some(a) = acks.next().await {
            out.push((a.entry, a.ack, a.range));
        }
        assert_eq!(
            out,
            [
                (0, 7, Some(10..12)),
                (1, 100, None),
                (2, 101, Some(12..15)),
                (3, 102, Some(15..16)),
            ]
        );
        assert_eq!(acks.acked_to(), 16);
        assert!(acks.is_empty());
    }

    #[tokio::test]
    async fn a_shutdown_drains_every_send_in_order() {
        let mut acks = OrderedAcks::new(0i64);
        let tx = sends(&mut acks, &[Some(1), Some(2), Some(3)]);
        assert_eq!(acks.len(), 3);
        // Shutdown: the acknowledgements arrive in reverse while the caller drains.
        let resolver = tokio::spawn(async move {
            for t in tx.into_iter().rev() {
                tokio::task::yield_now().await;
                t.send(1).unwrap();
            }
        });
        let mut ranges = Vec::new();
        while let Some(a) = acks.next().await {
            ranges.push(a.range.unwrap());
        }
        resolver.await.unwrap();
        assert_eq!(ranges, [0..1, 1..2, 2..3]);
        assert_eq!(acks.len(), 0);
    }
}
