//! [`MemoryBudget`]: one budget of bytes for the pulled and in-flight data of every shard of
//! the process, shared fairly (docs/architecture.md §6 "Bounded memory").
//!
//! Each shard holds a [`BudgetShare`] while it is read. Its *share* is the budget divided by
//! the shards holding one, and is guaranteed: a shard may always reserve up to it, whatever
//! the others do. Beyond it a shard may borrow free memory, but only as long as every other
//! shard can still reach its own share afterwards, so a hot shard uses what idle ones leave
//! and cannot take what they are owed; borrowed memory comes back as its batches settle.
//!
//! Two ways in:
//! - [`BudgetShare::reserve`] waits until the rule above lets `n` bytes in;
//!   [`BudgetShare::reserve_leaving`] is the reader's, before each pull: its pulls together
//!   are guaranteed the share less the room the pipeline keeps for what it makes of them;
//! - [`BudgetShare::charge`] never waits: for memory that exists already (an answer larger
//!   than reserved, events rendered from an admitted pull). Waiting there could deadlock a
//!   shard on its own data; its size is bounded by what was reserved before it.
//!
//! Every [`Charge`] gives its bytes back when dropped, so memory is accounted exactly as
//! long as the data lives (a pulled batch until its last send settles).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// The process's budget. See the module docs.
#[derive(Debug)]
pub struct MemoryBudget {
    total: usize,
    state: Mutex<State>,
    released: Notify,
}

#[derive(Debug, Default)]
struct State {
    used: usize,
    /// The most `used` has been.
    peak: usize,
    /// What each share costs besides its data ([`MemoryBudget::with_shard_state`]).
    shard_state: usize,
    /// Bytes held, per share.
    holders: HashMap<u64, Held>,
    next_id: u64,
}

/// What one share holds.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    /// Everything charged to it.
    all: usize,
    /// Of which pulled data (charges made by [`BudgetShare::reserve_leaving`]).
    pulled: usize,
}

impl State {
    /// What the shares divide: the budget less each holder's own state, of which half the
    /// budget at most, so that thousands of shards still have room for data.
    fn capacity(&self, total: usize) -> usize {
        let state = self.holders.len().saturating_mul(self.shard_state);
        total - state.min(total / 2)
    }

    fn share(&self, total: usize) -> usize {
        self.capacity(total) / self.holders.len().max(1)
    }

    /// Whether holder `id` may take `n` more bytes now. `room`: `None` for a plain
    /// reservation, whose whole share is guaranteed; `Some` for a pull, whose pulls together
    /// are guaranteed the share less that room.
    fn admits(&self, total: usize, id: u64, n: usize, room: Option<usize>) -> bool {
        if self.used + n > self.capacity(total) {
            // Reservations never go beyond the budget (only charges of existing data do).
            return false;
        }
        let share = self.share(total);
        let held = self.held(id);
        let guaranteed = room.map_or(share, |room| guaranteed_leaving(share, room));
        // All it holds stays within the share; a pull's data within its part of it too.
        if held.all + n <= share && (room.is_none() || held.pulled + n <= guaranteed) {
            return true;
        }
        // What borrowing must leave: the others' shares and the rest of this one's.
        let kept = share.saturating_sub(guaranteed);
        self.may_borrow(total, id, n + kept)
    }

    /// Holder `id` takes `n` bytes (`pulled`: of pulled data).
    fn take(&mut self, id: u64, n: usize, pulled: bool) {
        self.used += n;
        self.peak = self.peak.max(self.used);
        if let Some(held) = self.holders.get_mut(&id) {
            held.all += n;
            if pulled {
                held.pulled += n;
            }
        }
    }

    /// Holder `id` gives `n` bytes back.
    fn give(&mut self, id: u64, n: usize, pulled: bool) {
        self.used = self.used.saturating_sub(n);
        if let Some(held) = self.holders.get_mut(&id) {
            held.all = held.all.saturating_sub(n);
            if pulled {
                held.pulled = held.pulled.saturating_sub(n);
            }
        }
    }

    fn held(&self, id: u64) -> Held {
        self.holders.get(&id).copied().unwrap_or_default()
    }

    fn own(&self, id: u64) -> usize {
        self.held(id).all
    }

    /// Borrowing: only what leaves every other holder room to reach its share.
    fn may_borrow(&self, total: usize, id: u64, n: usize) -> bool {
        let share = self.share(total);
        let owed: usize = self
            .holders
            .iter()
            .filter(|(h, _)| **h != id)
            .map(|(_, held)| share.saturating_sub(held.all))
            .sum();
        self.used + n + owed <= self.capacity(total)
    }
}

impl MemoryBudget {
    /// A budget of `total` bytes for data.
    pub fn new(total: usize) -> Arc<Self> {
        Self::with_shard_state(total, 0)
    }

    /// A budget of `total` bytes of which each share first gives up `shard_state` bytes
    /// for what its shard holds besides data (its task, reader, buffers, connection; half
    /// the budget at most goes that way): memory that grows with the shard count is then
    /// inside the budget too, so the process's memory does not (docs/architecture.md §6).
    pub fn with_shard_state(total: usize, shard_state: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            state: Mutex::new(State {
                shard_state,
                ..State::default()
            }),
            released: Notify::new(),
        })
    }

    /// The budget in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes held now, all shards together.
    pub fn used(&self) -> usize {
        self.lock().used
    }

    /// The most bytes held at once since the budget was made (for sizing it: a peak well
    /// under the budget means the sink, not the budget, bounded the data held).
    pub fn peak(&self) -> usize {
        self.lock().peak
    }

    /// Shares held now.
    pub fn holders(&self) -> usize {
        self.lock().holders.len()
    }

    /// A share for one more shard (the others' shares shrink accordingly).
    pub fn share(self: &Arc<Self>) -> BudgetShare {
        let mut st = self.lock();
        let id = st.next_id;
        st.next_id += 1;
        st.holders.insert(id, Held::default());
        BudgetShare {
            budget: self.clone(),
            id,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, id: u64, n: usize, pulled: bool) {
        self.lock().take(id, n, pulled);
    }

    fn sub(&self, id: u64, n: usize, pulled: bool) {
        self.lock().give(id, n, pulled);
        if n > 0 {
            self.released.notify_waiters();
        }
    }
}

/// What of a share of `share` bytes is guaranteed when `room` of it is left to other uses:
/// the rest, and never less than half the share.
fn guaranteed_leaving(share: usize, room: usize) -> usize {
    share - room.min(share / 2)
}

/// One shard's part of a [`MemoryBudget`]; leaving (drop) gives its share back to the
/// others. Bytes still charged to it are released by their [`Charge`]s as usual.
#[derive(Debug)]
pub struct BudgetShare {
    budget: Arc<MemoryBudget>,
    id: u64,
}

impl BudgetShare {
    /// The guaranteed part now: the budget over the shards holding a share.
    pub fn share(&self) -> usize {
        self.budget.lock().share(self.budget.total)
    }

    /// Bytes this shard holds now.
    pub fn used(&self) -> usize {
        self.budget.lock().own(self.id)
    }

    /// Reserves `n` bytes, waiting until the fairness rule lets them in. Ask for at most
    /// [`share`](Self::share): more is only let in while the other shards are not owed
    /// theirs. Cancel-safe: nothing is held until it returns.
    pub async fn reserve(&self, n: usize) -> Charge {
        self.reserve_as(n, None).await
    }

    /// The part of the share [`reserve_leaving`](Self::reserve_leaving)`(_, room)`
    /// guarantees the pulls now.
    pub fn guaranteed_leaving(&self, room: usize) -> usize {
        guaranteed_leaving(self.share(), room)
    }

    /// [`reserve`](Self::reserve) for pulled data, leaving `room` bytes of the share (half
    /// of it at most) to what the caller makes of it: the pulled data this share holds
    /// (these reservations, resized to what came) is guaranteed the rest, and all it holds
    /// stays within the share; beyond that `n` must be borrowed (docs/architecture.md §6
    /// "Bounded memory"). Reserves `n`, or the guaranteed part if that is smaller when it
    /// is let in: shards that join meanwhile shrink the share, and a reservation larger
    /// than its guaranteed part could wait forever (the answer is charged in full anyway).
    pub async fn reserve_leaving(&self, n: usize, room: usize) -> Charge {
        self.reserve_as(n, Some(room)).await
    }

    async fn reserve_as(&self, n: usize, room: Option<usize>) -> Charge {
        loop {
            let released = self.budget.released.notified();
            tokio::pin!(released);
            // Registered before looking, so a release between the look and the wait wakes us.
            released.as_mut().enable();
            {
                let mut st = self.budget.lock();
                let n = match room {
                    None => n,
                    Some(room) => {
                        n.min(guaranteed_leaving(st.share(self.budget.total), room).max(1))
                    }
                };
                if st.admits(self.budget.total, self.id, n, room) {
                    st.take(self.id, n, room.is_some());
                    return self.charge_of(n, room.is_some());
                }
            }
            released.await;
        }
    }

    /// Whether this shard holds more than the fairness rule lets it hold now: beyond its
    /// share, and more than it could borrow. Charges (which never wait) can take a shard
    /// there; it should then let memory settle before making more.
    pub fn is_over(&self) -> bool {
        self.is_over_by(0)
    }

    /// [`is_over`](Self::is_over) once `n` more bytes are charged (data about to be made,
    /// such as the events of the next plugin call).
    pub fn is_over_by(&self, n: usize) -> bool {
        let st = self.budget.lock();
        let total = self.budget.total;
        st.own(self.id) + n > st.share(total) && !st.may_borrow(total, self.id, n)
    }

    /// Charges `n` bytes at once, whatever the budget (memory that exists already).
    pub fn charge(&self, n: usize) -> Charge {
        self.budget.add(self.id, n, false);
        self.charge_of(n, false)
    }

    fn charge_of(&self, bytes: usize, pulled: bool) -> Charge {
        Charge {
            budget: self.budget.clone(),
            holder: self.id,
            bytes,
            pulled,
        }
    }
}

impl Drop for BudgetShare {
    fn drop(&mut self) {
        self.budget.lock().holders.remove(&self.id);
        // The others' shares grew.
        self.budget.released.notify_waiters();
    }
}

/// Bytes held against a [`MemoryBudget`]; given back on drop.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<MemoryBudget>,
    holder: u64,
    bytes: usize,
    /// Made by [`BudgetShare::reserve_leaving`]: counted as pulled data.
    pulled: bool,
}

impl Charge {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `n` bytes instead (the data turned out larger or smaller than reserved); never
    /// waits.
    pub fn resize(&mut self, n: usize) {
        if n > self.bytes {
            self.budget.add(self.holder, n - self.bytes, self.pulled);
        } else {
            self.budget.sub(self.holder, self.bytes - n, self.pulled);
        }
        self.bytes = n;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.sub(self.holder, self.bytes, self.pulled);
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Polls `f` once: `Some` if it completed without waiting.
    fn now<F: Future>(f: F) -> Option<F::Output> {
        let mut f = pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_shard_gets_its_share_whatever_the_others_hold() {
        let b = MemoryBudget::new(100);
        let (hot, cold) = (b.share(), b.share());
        assert_eq!(hot.share(), 50);
        let _h = now(hot.reserve(50)).expect("its share");
        // The hot shard may borrow nothing: the cold one is owed 50.
        assert!(now(hot.reserve(1)).is_none());
        let _c = now(cold.reserve(50)).expect("the cold shard's share is there");
        assert_eq!(b.used(), 100);
    }

    #[test]
    fn a_hot_shard_borrows_what_idle_ones_do_not_need_but_not_what_they_are_owed() {
        let b = MemoryBudget::new(100);
        let (hot, a, c) = (b.share(), b.share(), b.share());
        assert_eq!(hot.share(), 33);
        let _a = now(a.reserve(30)).unwrap();
        let _c = now(c.reserve(30)).unwrap();
        // a and c are owed 3 each: the hot shard may hold up to 100 - 60 - 6 = 34.
        let _h = now(hot.reserve(34)).expect("within its share plus what is free");
        assert!(
            now(hot.reserve(1)).is_none(),
            "not what the others are owed"
        );
        // They can still reach their shares.
        let _a2 = now(a.reserve(3)).unwrap();
        let _c2 = now(c.reserve(3)).unwrap();
        assert_eq!(b.used(), 100);
    }

    #[test]
    fn a_waiting_shard_gets_in_once_memory_is_released() {
        let b = MemoryBudget::new(100);
        let (x, y) = (b.share(), b.share());
        let held = now(x.reserve(50)).unwrap();
        let mut xs = vec![held];
        let _y = now(y.reserve(50)).unwrap();
        let mut waiting = pin!(x.reserve(20));
        let cx = &mut Context::from_waker(Waker::noop());
        assert!(waiting.as_mut().poll(cx).is_pending());
        xs.clear();
        let got = match waiting.as_mut().poll(cx) {
            Poll::Ready(c) => c,
            Poll::Pending => panic!("released memory lets the waiter in"),
        };
        assert_eq!(got.bytes(), 20);
        assert_eq!(b.used(), 70);
    }

    #[test]
    fn a_pull_is_guaranteed_the_share_less_the_room_it_leaves() {
        let b = MemoryBudget::new(100);
        let (reader, busy) = (b.share(), b.share());
        let _held = now(busy.reserve(50)).expect("the busy shard's share");
        // 10 of the 50 are left; more would be borrowed, and borrowing must leave the busy
        // shard its share and the reader the room it keeps.
        assert_eq!(reader.guaranteed_leaving(10), 40);
        let _pulled = now(reader.reserve_leaving(40, 10)).expect("its part");
        assert!(now(reader.reserve_leaving(1, 10)).is_none());
        // The room is left to what is rendered from the pulls.
        let _rendered = now(reader.reserve(10)).expect("the rest of its share");
    }

    #[test]
    fn what_the_pipeline_holds_counts_against_the_share_not_against_the_pulls_part() {
        let b = MemoryBudget::new(100);
        let (reader, _busy) = (b.share(), b.share());
        // Rendered events within the room leave the pulls their whole part...
        let rendered = reader.charge(10);
        let pulled = now(reader.reserve_leaving(40, 10)).expect("the pulls' part");
        assert_eq!(reader.used(), 50);
        drop((rendered, pulled));
        // ...and beyond it they take from the pulls: all of it stays within the share.
        let _rendered = reader.charge(20);
        assert!(now(reader.reserve_leaving(40, 10)).is_none());
        let _pulled = now(reader.reserve_leaving(30, 10)).expect("what the share has left");
    }

    #[test]
    fn a_waiting_pull_is_let_in_when_shards_join_and_its_size_outgrows_the_share() {
        let b = MemoryBudget::new(100);
        let reader = b.share();
        let held = now(reader.reserve_leaving(60, 0)).unwrap();
        let mut waiting = pin!(reader.reserve_leaving(50, 0));
        let cx = &mut Context::from_waker(Waker::noop());
        assert!(waiting.as_mut().poll(cx).is_pending());
        // Three shards join: the share is 25, less than the 50 the pull waits for.
        let _others: Vec<BudgetShare> = (0..3).map(|_| b.share()).collect();
        drop(held);
        let got = match waiting.as_mut().poll(cx) {
            Poll::Ready(c) => c,
            Poll::Pending => panic!("the pull waits forever for more than its share"),
        };
        assert_eq!(got.bytes(), 25, "sized to the guaranteed part");
    }

    #[test]
    fn the_room_left_is_half_the_share_at_most() {
        let b = MemoryBudget::new(100);
        let (reader, _busy) = (b.share(), b.share());
        assert_eq!(reader.guaranteed_leaving(usize::MAX), 25);
        let _pulled = now(reader.reserve_leaving(25, usize::MAX)).expect("half the share");
        assert!(now(reader.reserve_leaving(1, usize::MAX)).is_none());
    }

    #[test]
    fn a_shard_is_over_beyond_its_share_only_when_it_cannot_borrow() {
        let b = MemoryBudget::new(100);
        let (hot, idle, gone) = (b.share(), b.share(), b.share());
        drop(gone);
        let _base = hot.charge(40);
        assert!(!hot.is_over(), "within its share of 50");
        let extra = hot.charge(20);
        assert!(
            hot.is_over(),
            "60: the idle shard is owed 50 and only 40 are free"
        );
        let _i = idle.charge(50);
        assert!(
            !idle.is_over(),
            "within its share, even with the budget overdrawn"
        );
        drop(extra);
        assert!(!hot.is_over());
        assert!(!hot.is_over_by(10), "50: within its share");
        assert!(hot.is_over_by(11), "what is about to be made counts");
    }

    #[test]
    fn each_share_gives_up_its_state_but_half_the_budget_stays_for_data() {
        let b = MemoryBudget::with_shard_state(1000, 100);
        let shares: Vec<BudgetShare> = (0..2).map(|_| b.share()).collect();
        assert_eq!(shares[0].share(), 400, "(1000 - 2 × 100) / 2");
        let _full = now(shares[0].reserve(400)).unwrap();
        let _other = now(shares[1].reserve(400)).unwrap();
        assert!(
            now(shares[0].reserve(1)).is_none(),
            "the shards' state is not lent"
        );
        drop(shares);
        let many: Vec<BudgetShare> = (0..10).map(|_| b.share()).collect();
        assert_eq!(
            many[0].share(),
            50,
            "half the budget for data, whatever the count"
        );
    }

    #[test]
    fn shares_follow_the_number_of_shards() {
        let b = MemoryBudget::new(256);
        let shares: Vec<BudgetShare> = (0..64).map(|_| b.share()).collect();
        assert_eq!(shares[0].share(), 4);
        drop(shares);
        let one = b.share();
        assert_eq!(one.share(), 256);
        assert_eq!(b.holders(), 1);
    }

    #[test]
    fn charges_never_wait_and_are_given_back_on_drop_and_resize() {
        let b = MemoryBudget::new(10);
        let s = b.share();
        let mut c = s.charge(25);
        assert_eq!((b.used(), s.used()), (25, 25));
        assert!(
            now(s.reserve(1)).is_none(),
            "over the budget: reservations wait"
        );
        c.resize(5);
        assert_eq!(b.used(), 5);
        assert_eq!(b.peak(), 25, "the peak stays");
        let _r = now(s.reserve(5)).expect("room again");
        drop(c);
        assert_eq!(b.used(), 5);
    }

    #[test]
    fn more_than_a_share_comes_only_from_what_no_one_is_owed() {
        let b = MemoryBudget::new(100);
        let (x, _y) = (b.share(), b.share());
        assert!(now(x.reserve(60)).is_none(), "60 > 50 while y is owed 50");
        let b = MemoryBudget::new(100);
        let x = b.share();
        let _c = now(x.reserve(100)).expect("alone, the whole budget is its share");
    }

    /// 64 shards that each want more than their share, round after round, one of them (the
    /// hot one) asking twice as often, each finishing one batch per round: after every round
    /// each holds exactly its share. A first-come budget would let the hot shard and the
    /// shards asked first take it all.
    #[test]
    fn under_contention_every_shard_keeps_its_share() {
        let b = MemoryBudget::new(64 * 10);
        let shares: Vec<BudgetShare> = (0..64).map(|_| b.share()).collect();
        let mut held: Vec<Vec<Charge>> = (0..64).map(|_| Vec::new()).collect();
        for _round in 0..50 {
            for (i, s) in shares.iter().enumerate() {
                let asks = if i == 0 { 4 } else { 2 };
                for _ in 0..asks {
                    if let Some(c) = now(s.reserve(5)) {
                        held[i].push(c);
                    }
                }
            }
            for (i, s) in shares.iter().enumerate() {
                assert_eq!(s.used(), 10, "shard {i} holds its share, no more, no less");
            }
            assert_eq!(b.used(), b.total());
            for h in &mut held {
                h.remove(0);
            }
        }
    }
}
