//! Node's timer lists (`lib/internal/timers.js` of Node v20), privately for
//! the js policy: one FIFO list per duration (`timerListMap`), the lists in
//! a priority queue by expiry, then list id (`timerListQueue`), and the one
//! libuv timer handle that wakes the loop (`Environment::RunTimers`).
//!
//! What this models, function by function:
//! - `insert`: a timer joins the list of its whole-millisecond duration
//!   (`MathTrunc`), with `_idleStart` = libuv's clock at the call
//!   (`getLibuvNow()`, which updates the clock). A new list's expiry is
//!   `start + msecs`; if it is the earliest, the handle is re-armed.
//! - `next_due` (`processTimers` + `listOnTimeout`): with `now` fixed at the
//!   start of the timers phase, take the first list while its expiry is
//!   `<= now`, and run its timers in order while `now - start >= msecs`; the
//!   first one not yet due moves the list to `max(start + msecs, now + 1)`
//!   with a fresh id (so it goes behind lists of the same expiry); an empty
//!   list is deleted.
//! - `unenroll` (`clearTimeout`): remove the timer; its list is deleted when
//!   empty — looked up by `_idleTimeout`, so a fractional delay leaves the
//!   empty list in the queue, as in Node.
//! - `finish_phase` (`RunTimers` after `processTimers`): re-arm the handle
//!   for the next expiry, at least 1 ms after libuv's clock.
//!
//! Due times are whole milliseconds. What a timer does when it fires, and
//! the loop's phases around this, are the js policy's (`super`).
//!
//! Compact for a million sleepers: a list holds only each timer's action
//! (16 B for a `sleep`'s) and, shared by the timers inserted in the same
//! millisecond, their start (`Fifo`). A timer a program can clear (its action
//! says so, `Action::clearable_id`) also has an entry in `ids`, by which
//! `unenroll` finds its list; the rest (a `sleep`'s timer, whose id no
//! program sees) cost no hash entry.

use crate::value::FastHash;
use std::collections::btree_map::BTreeMap;
use std::collections::hash_map::{Entry, HashMap};
use std::collections::{HashSet, VecDeque};

/// What the lists need to know of a timer's action.
pub trait Action {
    /// The id a program can clear the timer by (`None`: none can, and no
    /// id is kept for it).
    fn clearable_id(&self) -> Option<u64>;
}

/// A list's timers (Node's `Timeout`s), first in first out: each one's
/// action, and its `_idleStart` (libuv's clock, ms, when it was inserted)
/// run-length encoded — the timers inserted in the same millisecond share
/// one entry (`sleeping_tasks`: a sleeper's timer 24 → 16 B). What else
/// Node keeps on a timer (its id, `_idleTimeout`, `_repeat`) is the
/// action's to carry when it matters.
struct Fifo<A> {
    actions: VecDeque<A>,
    /// (start, how many timers in a row have it), in the actions' order.
    starts: VecDeque<(u64, usize)>,
}

impl<A> Fifo<A> {
    fn new() -> Fifo<A> {
        Fifo {
            actions: VecDeque::new(),
            starts: VecDeque::new(),
        }
    }

    fn push_back(&mut self, start: u64, action: A) {
        match self.starts.back_mut() {
            Some((last, n)) if *last == start => *n += 1,
            _ => self.starts.push_back((start, 1)),
        }
        self.actions.push_back(action);
    }

    /// The first timer: its start and action.
    fn front(&self) -> Option<(u64, &A)> {
        Some((self.starts.front()?.0, self.actions.front()?))
    }

    fn pop_front(&mut self) -> Option<A> {
        let (_, n) = self.starts.front_mut()?;
        *n -= 1;
        if *n == 0 {
            self.starts.pop_front();
        }
        self.actions.pop_front()
    }

    fn back_mut(&mut self) -> Option<&mut A> {
        self.actions.back_mut()
    }

    /// Every timer in order: its start and action.
    fn iter(&self) -> impl Iterator<Item = (u64, &A)> {
        self.starts
            .iter()
            .flat_map(|&(start, n)| std::iter::repeat_n(start, n))
            .zip(self.actions.iter())
    }
}

struct TimerList<A> {
    expiry: u64,
    id: u64,
    timers: Fifo<A>,
    /// Timers in `timers` not cleared (the rest are tombstones).
    live: usize,
}

/// `timerListQueue`: (expiry, list id) → duration, soonest first. The
/// soonest entry is kept outside the tree: a program with one list at a
/// time (every timer of one duration, `await sleep(0)` in a loop, whose
/// list is made and deleted each turn) makes no tree operation at all
/// (`sleep0_steps`: ~185 instructions a turn).
#[derive(Default)]
struct ListQueue {
    first: Option<((u64, u64), u64)>,
    rest: BTreeMap<(u64, u64), u64>,
}

impl ListQueue {
    fn first(&self) -> Option<((u64, u64), u64)> {
        self.first
    }

    fn insert(&mut self, key: (u64, u64), msecs: u64) {
        match self.first {
            None => self.first = Some((key, msecs)),
            Some((first, first_msecs)) if key < first => {
                self.rest.insert(first, first_msecs);
                self.first = Some((key, msecs));
            }
            Some(_) => {
                self.rest.insert(key, msecs);
            }
        }
    }

    fn remove(&mut self, key: &(u64, u64)) {
        match self.first {
            Some((first, _)) if first == *key => self.first = self.rest.pop_first(),
            _ => {
                self.rest.remove(key);
            }
        }
    }

    fn clear(&mut self) {
        self.first = None;
        self.rest.clear();
    }
}

/// A deleted list whose buffers hold at most this many timers keeps them
/// for the next list made.
const SPARE_TIMERS: usize = 64;

/// In `NodeTimers::ids`: the timer's `_idleTimeout` has a fraction.
const FRACTIONAL: u64 = 1 << 63;

/// Where the timers phase stands: the list being run (by duration and id).
pub type Cursor = Option<(u64, u64)>;

pub enum Next<A> {
    /// Run this timer's action (it has left its list).
    Run(A),
    /// The phase is over.
    Done,
}

pub struct NodeTimers<A> {
    /// `timerListMap`: duration (ms) → its list.
    lists: HashMap<u64, TimerList<A>, FastHash>,
    /// `timerListQueue`: (expiry, list id, duration).
    queue: ListQueue,
    next_list_id: u64,
    /// Timers waiting in a list (Node's `refCount`).
    count: usize,
    /// Clearable timers waiting in a list: id → duration of the list, with
    /// `FRACTIONAL` set when `_idleTimeout` is not a whole number.
    ids: HashMap<u64, u64, FastHash>,
    /// Cleared timers still sitting in their list (by id).
    cleared: HashSet<u64, FastHash>,
    /// The emptied buffers of the last small list deleted, for the next
    /// list made.
    spare: Option<Fifo<A>>,
    /// `nextExpiry` (`u64::MAX`: Infinity).
    next_expiry: u64,
    /// libuv's clock (`uv_now`), ms: updated by `getLibuvNow()` and by the
    /// loop at its update points.
    pub loop_time: u64,
    /// When the timer handle is due (libuv's clock, ms); `None`: stopped.
    pub handle_due: Option<u64>,
}

impl<A> Default for NodeTimers<A> {
    fn default() -> Self {
        NodeTimers {
            lists: HashMap::default(),
            queue: ListQueue::default(),
            next_list_id: 0,
            count: 0,
            ids: HashMap::default(),
            cleared: HashSet::default(),
            spare: None,
            next_expiry: u64::MAX,
            loop_time: 0,
            handle_due: None,
        }
    }
}

impl<A: Action> NodeTimers<A> {
    /// Timers waiting to fire (Node's `refCount`; a running interval is
    /// counted again once it is re-inserted).
    pub fn pending(&self) -> usize {
        self.count
    }

    /// Whether the timer doing `action` was cleared and is only a
    /// tombstone in its list.
    fn is_cleared(&self, action: &A) -> bool {
        !self.cleared.is_empty()
            && action
                .clearable_id()
                .is_some_and(|id| self.cleared.contains(&id))
    }

    /// Every waiting timer with its due time (ms), soonest first (what the
    /// REPL's `:queues` shows).
    pub fn waiting(&self) -> Vec<(u64, &A)> {
        let mut out: Vec<(u64, &A)> = self
            .lists
            .iter()
            .flat_map(|(&msecs, list)| {
                list.timers
                    .iter()
                    .filter(|(_, action)| !self.is_cleared(action))
                    .map(move |(start, action)| (start + msecs, action))
            })
            .collect();
        out.sort_by_key(|(due, _)| *due);
        out
    }

    /// Drops every timer (the REPL dropping an interrupted entry's work).
    pub fn clear(&mut self) {
        self.lists.clear();
        self.queue.clear();
        self.count = 0;
        self.ids.clear();
        self.cleared.clear();
        self.next_expiry = u64::MAX;
        self.handle_due = None;
    }

    /// Whether a waiting timer is due exactly at `t` (ms).
    pub fn has_timer_due_at(&self, t: u64) -> bool {
        self.lists.iter().any(|(&msecs, list)| {
            list.timers
                .iter()
                .any(|(start, action)| start + msecs == t && !self.is_cleared(action))
        })
    }

    /// `insert(item, msecs, start)`: appends a timer doing `action` after
    /// `delay` (its `_idleTimeout`) to its duration's list, making the
    /// list (and re-arming the handle) if needed.
    pub fn insert(&mut self, action: A, delay: f64, start: u64) {
        // `as` truncates toward zero as `trunc` does (and saturates the
        // same way), without a call to `trunc` per timer.
        let msecs = delay as u64;
        if let Some(id) = action.clearable_id() {
            let fractional = if delay.fract() != 0.0 { FRACTIONAL } else { 0 };
            self.ids.insert(id, msecs | fractional);
        }
        self.count += 1;
        let list = match self.lists.entry(msecs) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let expiry = start + msecs;
                let id = self.next_list_id;
                self.next_list_id += 1;
                self.queue.insert((expiry, id), msecs);
                if self.next_expiry > expiry {
                    // scheduleTimer(msecs): due `msecs` after libuv's clock.
                    self.handle_due = Some(self.loop_time + msecs);
                    self.next_expiry = expiry;
                }
                e.insert(TimerList {
                    expiry,
                    id,
                    timers: self.spare.take().unwrap_or_else(Fifo::new),
                    live: 0,
                })
            }
        };
        list.timers.push_back(start, action);
        list.live += 1;
    }

    /// The action of the timer last inserted into the `msecs` list (if it
    /// still waits there), to change what it will do.
    pub fn last_action_mut(&mut self, msecs: u64) -> Option<&mut A> {
        let list = self.lists.get_mut(&msecs)?;
        let last = list.timers.back_mut()?;
        let cleared = !self.cleared.is_empty()
            && last
                .clearable_id()
                .is_some_and(|id| self.cleared.contains(&id));
        (!cleared).then_some(last)
    }

    /// `unenroll`: clears a waiting timer (false if `id` is not waiting).
    pub fn unenroll(&mut self, id: u64) -> bool {
        let Some(entry) = self.ids.remove(&id) else {
            return false;
        };
        let msecs = entry & !FRACTIONAL;
        self.count -= 1;
        self.cleared.insert(id);
        if let Some(list) = self.lists.get_mut(&msecs) {
            list.live -= 1;
        }
        if entry & FRACTIONAL == 0 {
            self.drop_list_if_empty(msecs as f64);
        }
        true
    }

    /// Node's `timerListMap[item._idleTimeout]` lookup after removing a
    /// timer: an empty list found there leaves the queue (a fractional
    /// delay finds nothing, and its empty list stays until it comes due).
    pub fn drop_list_if_empty(&mut self, idle_timeout: f64) {
        if idle_timeout.fract() != 0.0 || idle_timeout < 0.0 {
            return;
        }
        let key = idle_timeout as u64;
        if self.lists.get(&key).is_some_and(|l| l.live == 0) {
            self.remove_list(key);
        }
    }

    fn remove_list(&mut self, msecs: u64) {
        if let Some(list) = self.lists.remove(&msecs) {
            self.queue.remove(&(list.expiry, list.id));
            let mut timers = list.timers;
            if !self.cleared.is_empty() {
                for action in timers.actions.drain(..) {
                    if let Some(id) = action.clearable_id() {
                        self.cleared.remove(&id);
                    }
                }
            }
            // A small list's buffers wait for the next list made (a list
            // of one duration made and deleted each turn: `await
            // sleep(0)` in a loop, two allocations and two frees a turn
            // less); a big one's go back to the allocator.
            if timers.actions.capacity() <= SPARE_TIMERS {
                timers.actions.clear();
                timers.starts.clear();
                self.spare = Some(timers);
            }
        }
    }

    /// Starts a timers phase (`processTimers`: `nextExpiry = Infinity`).
    pub fn start_phase(&mut self) {
        self.handle_due = None;
        self.next_expiry = u64::MAX;
    }

    /// `processTimers(now)` / `listOnTimeout(list, now)`, one timer at a
    /// time: the next timer to run, or `Done`.
    pub fn next_due(&mut self, now: u64, cursor: &mut Cursor) -> Next<A> {
        loop {
            let (msecs, list_id) = match *cursor {
                Some(c) => c,
                None => match self.queue.first() {
                    None => return Next::Done,
                    Some(((expiry, _), _)) if expiry > now => {
                        self.next_expiry = expiry;
                        return Next::Done;
                    }
                    Some(((_, id), msecs)) => {
                        *cursor = Some((msecs, id));
                        (msecs, id)
                    }
                },
            };
            let Some(list) = self.lists.get_mut(&msecs).filter(|l| l.id == list_id) else {
                // The list was deleted (and maybe made anew) meanwhile.
                *cursor = None;
                continue;
            };
            while let Some((_, action)) = list.timers.front() {
                if self.cleared.is_empty() {
                    break;
                }
                match action.clearable_id() {
                    Some(id) if self.cleared.remove(&id) => list.timers.pop_front(),
                    _ => break,
                };
            }
            match list.timers.front() {
                None => {
                    self.remove_list(msecs);
                    *cursor = None;
                }
                Some((start, _)) if now.saturating_sub(start) < msecs => {
                    // Too early for this one: the list waits.
                    let expiry = (start + msecs).max(now + 1);
                    self.queue.remove(&(list.expiry, list.id));
                    list.expiry = expiry;
                    list.id = self.next_list_id;
                    self.next_list_id += 1;
                    self.queue.insert((expiry, list.id), msecs);
                    *cursor = None;
                }
                Some(_) => {
                    let Some(action) = list.timers.pop_front() else {
                        continue;
                    };
                    list.live -= 1;
                    self.count -= 1;
                    if let Some(id) = action.clearable_id() {
                        self.ids.remove(&id);
                    }
                    return Next::Run(action);
                }
            }
        }
    }

    /// `RunTimers` after `processTimers`: re-arms the handle for the next
    /// list, at least 1 ms after libuv's clock; stops it with no lists.
    pub fn finish_phase(&mut self) {
        self.handle_due = self.queue.first().map(|_| {
            let expiry = self.next_expiry;
            self.loop_time
                .saturating_add(expiry.saturating_sub(self.loop_time).max(1))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A named timer; id 0 is one no program can clear (a `sleep`'s).
    struct Named(u64, &'static str);

    impl Action for Named {
        fn clearable_id(&self) -> Option<u64> {
            (self.0 != 0).then_some(self.0)
        }
    }

    fn run_phase(timers: &mut NodeTimers<Named>, now: u64) -> Vec<&'static str> {
        timers.start_phase();
        let mut cursor = None;
        let mut ran = Vec::new();
        while let Next::Run(t) = timers.next_due(now, &mut cursor) {
            ran.push(t.1);
        }
        timers.finish_phase();
        ran
    }

    fn add(timers: &mut NodeTimers<Named>, id: u64, delay: f64, start: u64, name: &'static str) {
        timers.loop_time = start;
        timers.insert(Named(id, name), delay, start);
    }

    /// The list queue (its soonest entry kept outside the tree) gives the
    /// same soonest entry as the ordered map it stands for, through
    /// random inserts (unique keys, as list ids are) and removals of
    /// present and absent keys.
    #[test]
    fn the_list_queue_orders_as_a_map() {
        let mut queue = ListQueue::default();
        let mut model: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for id in 0..5000u64 {
            match next() % 3 {
                0 | 1 => {
                    let key = (next() % 50, id);
                    queue.insert(key, id);
                    model.insert(key, id);
                }
                _ => {
                    let key = match model.keys().nth((next() % 4) as usize) {
                        Some(&key) if next() % 2 == 0 => key,
                        _ => (next() % 50, next() % 5000),
                    };
                    queue.remove(&key);
                    model.remove(&key);
                }
            }
            assert_eq!(
                queue.first(),
                model.first_key_value().map(|(&k, &v)| (k, v))
            );
            if id % 1000 == 999 {
                queue.clear();
                model.clear();
                assert_eq!(queue.first(), None);
            }
        }
    }

    #[test]
    fn a_due_list_runs_to_its_end_before_the_next() {
        let mut timers = NodeTimers::default();
        add(&mut timers, 1, 30.0, 0, "A");
        add(&mut timers, 2, 10.0, 0, "B");
        add(&mut timers, 3, 10.0, 50, "C");
        assert_eq!(run_phase(&mut timers, 70), ["B", "C", "A"]);
        assert_eq!(timers.pending(), 0);
        assert_eq!(timers.handle_due, None);
    }

    #[test]
    fn a_timer_not_yet_due_sends_its_list_back_with_the_handle_rearmed() {
        let mut timers = NodeTimers::default();
        add(&mut timers, 1, 10.0, 0, "early");
        add(&mut timers, 2, 10.0, 5, "late");
        assert_eq!(timers.handle_due, Some(10));
        assert_eq!(run_phase(&mut timers, 10), ["early"]);
        // The list waits until 5 + 10; the handle is due then.
        assert_eq!(timers.handle_due, Some(15));
        assert_eq!(run_phase(&mut timers, 15), ["late"]);
    }

    #[test]
    fn clearing_the_last_timer_of_a_list_drops_it_unless_the_delay_has_a_fraction() {
        let mut timers = NodeTimers::default();
        add(&mut timers, 1, 20.0, 0, "whole");
        assert!(timers.unenroll(1));
        assert!(timers.lists.is_empty());
        add(&mut timers, 2, 20.5, 0, "fraction");
        assert!(timers.unenroll(2));
        // Node looks the list up by `_idleTimeout` (20.5): the empty 20 ms
        // list stays in the queue until it comes due.
        assert_eq!(timers.lists.len(), 1);
        assert_eq!(timers.pending(), 0);
        assert!(!timers.unenroll(2));
        assert_eq!(run_phase(&mut timers, 20), Vec::<&str>::new());
        assert!(timers.lists.is_empty());
    }

    #[test]
    fn the_last_timer_of_a_list_can_be_changed_until_it_runs() {
        let mut timers = NodeTimers::default();
        add(&mut timers, 0, 10.0, 0, "a");
        add(&mut timers, 0, 10.0, 0, "b");
        add(&mut timers, 3, 20.0, 0, "c");
        timers.last_action_mut(10).expect("b waits").1 = "B";
        timers.last_action_mut(20).expect("c waits").1 = "C";
        assert!(timers.last_action_mut(30).is_none());
        add(&mut timers, 4, 30.0, 0, "d");
        assert!(timers.unenroll(4));
        // A cleared timer is a tombstone: not one to change.
        assert!(timers.last_action_mut(30).is_none());
        assert_eq!(run_phase(&mut timers, 20), ["a", "B", "C"]);
        assert!(timers.last_action_mut(10).is_none());
    }

    #[test]
    fn timers_nobody_can_clear_are_counted_but_not_looked_up() {
        let mut timers = NodeTimers::default();
        add(&mut timers, 0, 10.0, 0, "sleep");
        add(&mut timers, 2, 10.0, 0, "timeout");
        assert_eq!(timers.pending(), 2);
        assert_eq!(timers.ids.len(), 1);
        // Id 0 is not a clearable timer's: nothing is cleared.
        assert!(!timers.unenroll(0));
        assert!(timers.unenroll(2));
        assert_eq!(timers.pending(), 1);
        let waiting: Vec<&str> = timers.waiting().iter().map(|(_, t)| t.1).collect();
        assert_eq!(waiting, ["sleep"]);
        assert_eq!(run_phase(&mut timers, 10), ["sleep"]);
        assert_eq!(timers.pending(), 0);
        assert!(timers.cleared.is_empty());
    }

    #[test]
    fn timers_inserted_in_the_same_millisecond_share_their_start() {
        let mut timers = NodeTimers::default();
        for (id, start, name) in [(1, 0, "a"), (2, 0, "b"), (3, 4, "c"), (4, 2, "d")] {
            add(&mut timers, id, 10.0, start, name);
        }
        let list = &timers.lists[&10];
        assert_eq!(list.timers.starts, [(0, 2), (4, 1), (2, 1)]);
        let starts: Vec<(u64, &str)> = list.timers.iter().map(|(s, t)| (s, t.1)).collect();
        assert_eq!(starts, [(0, "a"), (0, "b"), (4, "c"), (2, "d")]);
        assert_eq!(run_phase(&mut timers, 10), ["a", "b"]);
        assert_eq!(timers.lists[&10].timers.starts, [(4, 1), (2, 1)]);
        assert_eq!(run_phase(&mut timers, 14), ["c", "d"]);
        assert!(timers.lists.is_empty());
    }

    #[test]
    fn delays_are_truncated_to_whole_milliseconds() {
        let mut timers = NodeTimers::default();
        add(&mut timers, 1, 20.9, 0, "20.9");
        add(&mut timers, 2, 20.0, 0, "20");
        assert_eq!(run_phase(&mut timers, 20), ["20.9", "20"]);
    }
}
