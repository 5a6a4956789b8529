//! What the event-loop policies share about promises: a promise's
//! (future's) state and the reactions waiting on it. What a reaction *is*
//! and *when* it runs is each policy's own: js queues a microtask, asyncio a
//! `call_soon` callback; each defines its promise object around a `Core` and
//! its reaction type. Also here: a timer heap ordered by due time, then
//! creation (asyncio's `_scheduled`; js keeps Node's per-duration lists in
//! `js/timers.rs`), whose entries hold a job in 4 bytes when it packs.

use crate::value::Value;
use crate::vm::Thrown;
use std::cell::RefCell;
use std::collections::{BinaryHeap, HashSet, VecDeque};

#[derive(Clone)]
pub enum State {
    Pending,
    Fulfilled(Value),
    Rejected(Thrown),
}

/// A promise's state and its reactions `R`, in the order they were added.
pub struct Core<R> {
    /// The state and the reactions under one borrow flag (8 bytes a
    /// promise; every borrow is brief and never calls out).
    inner: RefCell<Inner<R>>,
}

/// A pending promise keeps its reactions, a settled one its outcome; never
/// both (reactions are added only while pending and handed out when it
/// settles), so they share their room: a pending promise does not carry an
/// empty outcome (`sleeping_tasks`: −32 B a task, under either policy).
/// A settled promise remembers whether a reaction came after it settled
/// (`mark_attached`: js's `[[PromiseIsHandled]]` for a rejected promise
/// whose `then` the policy schedules at once).
enum Inner<R> {
    Pending(Reactions<R>),
    Settled(State, bool),
}

/// A promise's reactions. Most promises get exactly one (the task awaiting
/// it, the next `then` in a chain, a `gather`): it is kept inline, so it
/// costs no allocation of its own (`sleeping_tasks`: a js task's two
/// promises save ~100 B).
pub enum Reactions<R> {
    None,
    One(R),
    Many(Vec<R>),
}

impl<R> Reactions<R> {
    pub fn is_empty(&self) -> bool {
        matches!(self, Reactions::None)
    }

    fn push(&mut self, reaction: R) {
        *self = match std::mem::replace(self, Reactions::None) {
            Reactions::None => Reactions::One(reaction),
            Reactions::One(first) => Reactions::Many(vec![first, reaction]),
            Reactions::Many(mut all) => {
                all.push(reaction);
                Reactions::Many(all)
            }
        };
    }
}

impl<R> IntoIterator for Reactions<R> {
    type Item = R;
    type IntoIter = ReactionsIter<R>;
    fn into_iter(self) -> ReactionsIter<R> {
        match self {
            Reactions::None => ReactionsIter::One(None),
            Reactions::One(r) => ReactionsIter::One(Some(r)),
            Reactions::Many(all) => ReactionsIter::Many(all.into_iter()),
        }
    }
}

/// The reactions of a settled promise, in order.
pub enum ReactionsIter<R> {
    One(Option<R>),
    Many(std::vec::IntoIter<R>),
}

impl<R> Iterator for ReactionsIter<R> {
    type Item = R;
    fn next(&mut self) -> Option<R> {
        match self {
            ReactionsIter::One(r) => r.take(),
            ReactionsIter::Many(all) => all.next(),
        }
    }
}

impl<R> Core<R> {
    pub fn new() -> Core<R> {
        Core::with_state(State::Pending)
    }

    pub fn with_state(state: State) -> Core<R> {
        Core {
            inner: RefCell::new(Inner::of(state)),
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(&*self.inner.borrow(), Inner::Pending(_))
    }

    pub fn state(&self) -> State {
        self.with(State::clone)
    }

    /// Runs `f` on the state without copying it.
    pub fn with<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        match &*self.inner.borrow() {
            Inner::Pending(_) => f(&State::Pending),
            Inner::Settled(state, _) => f(state),
        }
    }

    /// Whether a reaction was ever attached: a pending promise's are
    /// waiting; a settled one's were marked (`mark_attached`).
    pub fn has_reactions(&self) -> bool {
        match &*self.inner.borrow() {
            Inner::Pending(reactions) => !reactions.is_empty(),
            Inner::Settled(_, attached) => *attached,
        }
    }

    /// Records on a settled promise that a reaction was attached (the
    /// policy runs it itself: a settled promise keeps none).
    pub fn mark_attached(&self) {
        if let Inner::Settled(_, attached) = &mut *self.inner.borrow_mut() {
            *attached = true;
        }
    }

    /// Adds a reaction to a pending promise (most have exactly one). A
    /// settled promise takes none (both policies schedule a reaction to a
    /// settled promise at once): it is dropped.
    pub fn add_reaction(&self, reaction: R) {
        let mut inner = self.inner.borrow_mut();
        match &mut *inner {
            Inner::Pending(reactions) => reactions.push(reaction),
            Inner::Settled(..) => {
                drop(inner);
                debug_assert!(false, "a reaction added to a settled promise");
                drop(reaction);
            }
        }
    }

    /// The reactions still waiting, taken out (for a drop that must not
    /// recurse).
    pub fn take_reactions(&self) -> Reactions<R> {
        match &mut *self.inner.borrow_mut() {
            Inner::Pending(reactions) => std::mem::replace(reactions, Reactions::None),
            Inner::Settled(..) => Reactions::None,
        }
    }

    /// The value a settled promise holds, taken out (for a drop that must
    /// not recurse: a future whose result is a future whose result is …).
    /// The promise is left pending, without reactions.
    pub fn take_value(&self) -> Value {
        let mut inner = self.inner.borrow_mut();
        if let Inner::Pending(_) = &*inner {
            return Value::Nil;
        }
        let state = std::mem::replace(&mut *inner, Inner::Pending(Reactions::None));
        drop(inner);
        match state {
            Inner::Settled(State::Fulfilled(v), _) => v,
            Inner::Settled(State::Rejected(t), _) => t.value,
            _ => Value::Nil,
        }
    }

    /// Settles the promise and returns the reactions to schedule, in order.
    pub fn settle(&self, state: State) -> Reactions<R> {
        let old = std::mem::replace(&mut *self.inner.borrow_mut(), Inner::of(state));
        match old {
            Inner::Pending(reactions) => reactions,
            // Dropped outside the borrow (a value's drop may reach here).
            Inner::Settled(old, _) => {
                drop(old);
                Reactions::None
            }
        }
    }
}

impl<R> Inner<R> {
    fn of(state: State) -> Inner<R> {
        match state {
            State::Pending => Inner::Pending(Reactions::None),
            settled => Inner::Settled(settled, false),
        }
    }
}

impl<R> Default for Core<R> {
    fn default() -> Self {
        Core::new()
    }
}

/// A timer's job as a heap entry holds it: most jobs (asyncio: a sleeping
/// task's wake-up, a million in `sleeping_tasks`) pack into 31 bits; any
/// other is kept beside the heap.
pub trait PackedJob: Sized {
    /// The job in 31 bits (below `1 << 31`), or the job back if it does not
    /// pack.
    fn pack(self) -> Result<u32, Self>;
    /// The job `pack` gave `bits` for, as timer `id`'s.
    fn unpack(bits: u32, id: u64) -> Self;
}

/// Timers ordered by due time, then creation order: 20-byte entries
/// (compact for a million sleepers). Cancelling leaves a tombstone that is
/// skipped when it reaches the front (cancellation is rare; timers are
/// many).
///
/// Most timers are added in the order they fall due (the clock only moves
/// forward, and a program's timers mostly share a delay: a million
/// `sleep(1000ms)`s come due one after another): such a timer joins `run`,
/// a FIFO of entries in (due, id) order, in O(1); only a timer due before
/// the run's last goes into the binary heap. The first timer is the earlier
/// of the run's front and the heap's top, so the order is exactly the one
/// heap's, without a sift-down through a million cold entries per timer
/// fired (`BinaryHeap::pop` was a tenth of `sleeping_tasks`' time).
///
/// A run entry is 12 bytes: its due time and id as 32-bit offsets from the
/// run's first (`run_base`), set when the run starts empty; a timer whose
/// offsets do not fit goes to the heap.
// PERF: a run that never empties keeps its base: once its timers fall due
// 4.3 s (of virtual time) past it, every new timer goes to the heap until
// it drains (the order stays exact; only the O(1) path is lost).
pub struct Timers<J> {
    run: VecDeque<RunEntry>,
    run_base: (u64, u64),
    heap: BinaryHeap<TimerEntry>,
    /// The jobs that do not pack, by slot (an entry's `job` with the top
    /// bit set), and the free slots.
    jobs: Vec<Option<J>>,
    free: Vec<u32>,
    cancelled: HashSet<u64, crate::value::FastHash>,
    next_id: u64,
}

impl<J> Default for Timers<J> {
    fn default() -> Self {
        Timers {
            run: VecDeque::new(),
            run_base: (0, 0),
            heap: BinaryHeap::new(),
            jobs: Vec::new(),
            free: Vec::new(),
            cancelled: HashSet::default(),
            next_id: 0,
        }
    }
}

/// The top bit of an entry's `job`: the rest is a slot in `Timers::jobs`.
const SLOT: u32 = 1 << 31;

/// Packed to 4-byte alignment: 20 bytes, not 24 (its fields are only ever
/// read by value).
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
struct TimerEntry {
    due: u64,
    id: u64,
    job: u32,
}

impl TimerEntry {
    fn key(&self) -> (u64, u64) {
        (self.due, self.id)
    }
}

/// A timer in the run: its due time and id past the run's base, and its job.
#[derive(Clone, Copy)]
struct RunEntry {
    due: u32,
    id: u32,
    job: u32,
}

impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for TimerEntry {}
impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TimerEntry {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest timer goes first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.key().cmp(&self.key())
    }
}

impl<J: PackedJob> Timers<J> {
    pub fn add(&mut self, due: u64, job: J) -> u64 {
        self.next_id += 1;
        let job = match job.pack() {
            Ok(bits) if bits < SLOT => bits,
            Ok(_) => unreachable!("a packed job is below 1 << 31"),
            Err(job) => self.keep(job),
        };
        let entry = TimerEntry {
            due,
            id: self.next_id,
            job,
        };
        // Ids only grow: a timer due no earlier than the run's last comes
        // after it in (due, id) order.
        let (base_due, base_id) = self.run_base;
        let offsets = (
            due.checked_sub(base_due)
                .and_then(|d| u32::try_from(d).ok()),
            u32::try_from(entry.id - base_id).ok(),
        );
        match (self.run.back(), offsets) {
            (None, _) => {
                self.run_base = (due, entry.id);
                self.run.push_back(RunEntry { due: 0, id: 0, job });
            }
            (Some(last), (Some(due), Some(id))) if last.due <= due => {
                self.run.push_back(RunEntry { due, id, job })
            }
            _ => self.heap.push(entry),
        }
        self.next_id
    }
    /// Keeps a job that does not pack: its slot, tagged.
    fn keep(&mut self, job: J) -> u32 {
        if let Some(slot) = self.free.pop() {
            self.jobs[slot as usize] = Some(job);
            return slot | SLOT;
        }
        // A slot number needs 31 bits: two billion timers pending at once
        // would have run out of memory long before.
        let slot = u32::try_from(self.jobs.len()).unwrap_or(u32::MAX) & !SLOT;
        self.jobs.push(Some(job));
        slot | SLOT
    }
    /// The job of a popped entry (its slot, if kept, is free again).
    fn take(&mut self, entry: TimerEntry) -> J {
        let (bits, id) = (entry.job, entry.id);
        if bits & SLOT == 0 {
            return J::unpack(bits, id);
        }
        let slot = bits & !SLOT;
        let job = self.jobs[slot as usize].take();
        self.free.push(slot);
        // All free: the slots' room goes back (a burst of a million
        // `call_later`s does not keep it).
        if self.free.len() == self.jobs.len() {
            self.jobs = Vec::new();
            self.free = Vec::new();
        }
        job.unwrap_or_else(|| unreachable!("a timer's kept job is taken once"))
    }
    pub fn cancel(&mut self, id: u64) {
        if id <= self.next_id {
            self.cancelled.insert(id);
        }
    }
    /// A run entry as a timer.
    fn widen(&self, entry: &RunEntry) -> TimerEntry {
        TimerEntry {
            due: self.run_base.0 + u64::from(entry.due),
            id: self.run_base.1 + u64::from(entry.id),
            job: entry.job,
        }
    }
    /// The first timer (tombstones included), and whether it is the run's.
    fn first(&self) -> Option<(TimerEntry, bool)> {
        let run = self.run.front().map(|r| self.widen(r));
        match (run, self.heap.peek()) {
            (Some(r), Some(h)) if h.key() < r.key() => Some((*h, false)),
            (Some(r), _) => Some((r, true)),
            (None, h) => h.map(|h| (*h, false)),
        }
    }
    /// Removes the first timer (`first` said where it is).
    fn remove_first(&mut self, in_run: bool) -> Option<TimerEntry> {
        if in_run {
            let entry = self.run.pop_front()?;
            Some(self.widen(&entry))
        } else {
            self.heap.pop()
        }
    }
    fn drop_cancelled_head(&mut self) {
        // No tombstone, the common case: no lookup (a hash per timer fired).
        if self.cancelled.is_empty() {
            return;
        }
        while let Some((top, in_run)) = self.first() {
            if !self.cancelled.remove(&{ top.id }) {
                break;
            }
            if let Some(entry) = self.remove_first(in_run) {
                drop(self.take(entry));
            }
        }
    }
    pub fn next_due(&mut self) -> Option<u64> {
        self.drop_cancelled_head();
        self.first().map(|(t, _)| t.due)
    }
    /// Removes and returns the first timer (its id and job) if it is due
    /// by `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, J)> {
        self.drop_cancelled_head();
        let (top, in_run) = self.first()?;
        if { top.due } > now {
            return None;
        }
        let entry = self.remove_first(in_run)?;
        self.shrink();
        Some((entry.id, self.take(entry)))
    }
    /// Every entry, tombstones included, in no order.
    fn entries(&self) -> impl Iterator<Item = TimerEntry> + '_ {
        let run = self.run.iter().map(|r| self.widen(r));
        run.chain(self.heap.iter().copied())
    }
    /// Timers still pending (not cancelled).
    pub fn len(&self) -> usize {
        self.entries()
            .filter(|t| !self.cancelled.contains(&{ t.id }))
            .count()
    }
    pub fn is_empty(&self) -> bool {
        if self.cancelled.is_empty() {
            return self.run.is_empty() && self.heap.is_empty();
        }
        self.len() == 0
    }
    pub fn clear(&mut self) {
        self.run.clear();
        self.heap.clear();
        self.jobs.clear();
        self.free.clear();
        self.cancelled.clear();
    }
    /// Gives back spare capacity once a queue holds a quarter of it or less
    /// (a million sleepers woke: the timers do not keep their room).
    fn shrink(&mut self) {
        let (len, cap) = (self.run.len(), self.run.capacity());
        if cap > 1024 && len <= cap / 4 {
            self.run.shrink_to(len * 2);
        }
        let (len, cap) = (self.heap.len(), self.heap.capacity());
        if cap > 1024 && len <= cap / 4 {
            self.heap.shrink_to(len * 2);
        }
    }
    /// Runs `f` on each pending timer, earliest first: its due time and job
    /// (for views).
    pub fn pending(&self, mut f: impl FnMut(u64, &J)) {
        let mut pending: Vec<TimerEntry> = self
            .entries()
            .filter(|t| !self.cancelled.contains(&{ t.id }))
            .collect();
        pending.sort_by_key(TimerEntry::key);
        for entry in pending {
            let (due, bits, id) = (entry.due, entry.job, entry.id);
            if bits & SLOT == 0 {
                f(due, &J::unpack(bits, id));
            } else if let Some(Some(job)) = self.jobs.get((bits & !SLOT) as usize) {
                f(due, job);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job that packs when it is small.
    #[derive(Debug, PartialEq)]
    struct Job(u64);

    impl PackedJob for Job {
        fn pack(self) -> Result<u32, Job> {
            u32::try_from(self.0).ok().filter(|&n| n < SLOT).ok_or(self)
        }
        fn unpack(bits: u32, _: u64) -> Job {
            Job(bits.into())
        }
    }

    /// Entries stay 20 bytes; jobs that pack and jobs kept beside the heap
    /// come out by due time, then creation, and a cancelled one never does.
    #[test]
    fn timers_fire_in_order_whatever_their_jobs() {
        assert_eq!(std::mem::size_of::<TimerEntry>(), 20);
        let mut timers = Timers::default();
        let big = 1 << 40;
        let a = timers.add(30, Job(1));
        let b = timers.add(10, Job(big));
        let c = timers.add(10, Job(2));
        let d = timers.add(20, Job(big + 1));
        let e = timers.add(5, Job(big + 2));
        timers.cancel(e);
        let mut seen = vec![];
        timers.pending(|due, job| seen.push((due, job.0)));
        assert_eq!(seen, [(10, big), (10, 2), (20, big + 1), (30, 1)]);
        assert_eq!(timers.len(), 4);
        assert_eq!(timers.pop_due(9), None);
        assert_eq!(timers.pop_due(10), Some((b, Job(big))));
        assert_eq!(timers.pop_due(10), Some((c, Job(2))));
        // A freed slot is used again.
        let f = timers.add(25, Job(big + 3));
        assert_eq!(timers.jobs.len(), 3);
        assert_eq!(timers.pop_due(100), Some((d, Job(big + 1))));
        assert_eq!(timers.pop_due(100), Some((f, Job(big + 3))));
        assert_eq!(timers.pop_due(100), Some((a, Job(1))));
        assert!(timers.is_empty() && timers.jobs.is_empty());
    }

    /// Timers added in due order go to the run, others to the heap; what
    /// comes out is still exactly (due, id) order, with tombstones skipped
    /// in either, whatever the mix (checked against a sorted list).
    #[test]
    fn the_run_and_the_heap_give_one_order() {
        let mut timers = Timers::default();
        let mut expected: Vec<(u64, u64, u64)> = vec![];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut now, mut in_heap) = (0u64, 0);
        for round in 0..2000u64 {
            // Mostly nondecreasing due times (one delay, a moving clock),
            // now and then an earlier or equal one.
            now += next() % 3;
            let due = match next() % 8 {
                0 => now + next() % 50,
                1 => now,
                _ => now + 100,
            };
            if timers
                .run
                .back()
                .is_some_and(|last| { timers.widen(last).due } > due)
            {
                in_heap += 1;
            }
            let job = if round % 5 == 0 {
                1 << 40 | round
            } else {
                round
            };
            let id = timers.add(due, Job(job));
            expected.push((due, id, job));
            if next() % 10 == 0 {
                let victim = expected.remove((next() % expected.len() as u64) as usize);
                timers.cancel(victim.1);
            }
            if next() % 4 == 0 {
                expected.sort();
                let limit = now + next() % 60;
                while expected.first().is_some_and(|e| e.0 <= limit) {
                    let (due, id, job) = expected.remove(0);
                    assert_eq!(timers.next_due(), Some(due));
                    assert_eq!(timers.pop_due(limit), Some((id, Job(job))));
                }
                assert_eq!(timers.pop_due(limit), None);
            }
        }
        assert!(
            in_heap > 100 && timers.heap.len() < timers.len(),
            "both used"
        );
        expected.sort();
        assert_eq!(timers.len(), expected.len());
        let mut seen = vec![];
        timers.pending(|due, job| seen.push((due, job.0)));
        let want: Vec<(u64, u64)> = expected.iter().map(|e| (e.0, e.2)).collect();
        assert_eq!(seen, want);
        for (due, id, job) in expected {
            assert_eq!(timers.pop_due(u64::MAX), Some((id, Job(job))), "due {due}");
        }
        assert!(timers.is_empty() && timers.next_due().is_none());
    }

    /// A run entry keeps 32-bit offsets from the run's base: a timer due
    /// too far past it goes to the heap, and the order stays exact; once
    /// the run empties, the next timer is its new base.
    #[test]
    fn a_timer_past_the_runs_reach_goes_to_the_heap() {
        assert_eq!(std::mem::size_of::<RunEntry>(), 12);
        let mut timers = Timers::default();
        let base = 1 << 50;
        let far = base + (1 << 32);
        let a = timers.add(base, Job(1));
        let b = timers.add(far - 1, Job(2));
        let c = timers.add(far + 5, Job(3));
        let d = timers.add(far, Job(4));
        let e = timers.add(far + 5, Job(5));
        assert_eq!((timers.run.len(), timers.heap.len()), (2, 3));
        let mut order = vec![];
        while let Some((id, Job(job))) = timers.pop_due(u64::MAX) {
            order.push((id, job));
        }
        assert_eq!(order, [(a, 1), (b, 2), (d, 4), (c, 3), (e, 5)]);
        // Empty again: a new base, however far on.
        let f = timers.add(far * 4, Job(6));
        let g = timers.add(far * 4 + 1, Job(7));
        assert_eq!((timers.run.len(), timers.heap.len()), (2, 0));
        assert_eq!(timers.next_due(), Some(far * 4));
        assert_eq!(timers.pop_due(far * 4), Some((f, Job(6))));
        assert_eq!(timers.pop_due(far * 4), None);
        assert_eq!(timers.pop_due(far * 4 + 1), Some((g, Job(7))));
    }
}
