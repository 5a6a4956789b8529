//! The asyncio policy: CPython 3.11's event loop, as `asyncio.run(main())`
//! runs the file's top level as the main coroutine.
//!
//! Invariants, following `BaseEventLoop._run_once`:
//! 1. One FIFO ready queue and one timer heap. Each iteration: if nothing is
//!    ready, sleep until the first timer (waking `wake_latency` late, as a
//!    real `select` does); move every timer due by now to the back of the
//!    ready queue; run exactly the callbacks that were ready at that point.
//!    Callbacks queued meanwhile wait for the next iteration.
//! 2. There is no microtask queue: future done-callbacks (`.then`), task
//!    wake-ups and `call_soon` all go through the ready queue.
//! 3. Calling an async fn makes a coroutine and runs nothing. `await coro`
//!    runs it inline; awaiting a done future does not yield; awaiting a
//!    pending one adds the task's wake-up as a done-callback; awaiting a
//!    plain value is a TypeError. `spawn` is `create_task`: the first step
//!    joins the back of the ready queue. `sleep(0)` yields exactly once.
//! 4. Shutdown as `asyncio.run` does: the main task's done-callback stops
//!    the loop; remaining tasks are cancelled (CancelledError raised at
//!    their `await`, so `finally` runs) and gathered; then the loop runs the
//!    two trivial shutdown coroutines (async generators, default executor),
//!    two iterations each, and closes: queued callbacks and timers still
//!    pending are dropped, which is reported on stderr.
//! 5. Remaining tasks are cancelled in the order the chooser picks (CPython
//!    iterates a WeakSet, whose order is not defined; the default is
//!    creation order, which is deterministic).
//! 6. Cancelled handles stay where they are and are skipped: a timer
//!    cleared after it moved to the ready queue never runs. Delays may be
//!    negative (due in the past). A task's cancellation follows
//!    `Task.cancel` / `__step` (`_must_cancel`, the waiter cancelled,
//!    a self-cancelled task that returns ends cancelled).
//! 7. asyncio's library (`Queue`, `Event`, `Lock`, `Semaphore`, `wait_for`,
//!    `wait`, `as_completed`, `shield`, …): the objects are this module's
//!    handles, and the coroutines are CPython's own, transcribed into
//!    looplab (the `PRELUDE`, compiled once), so they take CPython's
//!    iterations; they reach the loop through `rt`, a `Loop` handle.
//!
//! How the loop is driven: `step` does one thing — runs one callback of the
//! current iteration, starts the next iteration (moving the clock to the
//! next timer if nothing is ready), or moves to the next stage of
//! `asyncio.run` once the future it runs until is complete. A task step
//! runs one unit with an unbounded slice until it awaits or ends.

use super::chooser::{ChoicePoint, Chooser, FirstCandidate};
use super::clock::Clock;
use super::events::{EventKind, EventLog};
use super::promise::{Core, State, Timers};
use super::{
    Policy, PolicyInfo, RunConfig, Step, downcast, duration_ns, handle_of, install_globals,
    report_uncaught, step_limit_error,
};
use crate::value::{Closure, ErrorValue, Flavor, Handle, HandleRef, Hc, Map, Native, Value};
use crate::vm::{Globals, Halt, ResumeWith, Thrown, UnitId, Vm};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

pub const INFO: PolicyInfo = PolicyInfo {
    name: "asyncio",
    about: "CPython 3.11's asyncio: one ready queue, tasks and futures, asyncio.run()",
    dialect: &super::python::DIALECT,
    library: PRELUDE,
    make: |config, library| Box::new(Asyncio::new(config, library)),
};

// ---- futures, tasks, coroutines ----

/// An asyncio future; a task is a future with `TaskInfo`. A cancelled
/// future holds a CancelledError as its exception and is marked `cancelled`.
/// A task is one allocation (112 bytes with its header and the `Rc`'s counts): its
/// `TaskInfo` is inline, a plain future leaves that room empty.
pub struct Future {
    core: Core<Callback>,
    cancelled: Cell<bool>,
    /// The exception was retrieved (so it is not reported when collected).
    handled: Cell<bool>,
    /// Report an exception nobody retrieved when collected.
    loud: Cell<bool>,
    /// What few futures use (done-callbacks, a cancellation's error and
    /// message), allocated on first use: a million sleeping tasks' futures
    /// stay small (`sleeping_tasks`: −80 B a task).
    rare: std::cell::OnceCell<Box<RefCell<Rare>>>,
    task: Option<TaskInfo>,
}

type F = Hc<Future>;

/// A future's seldom-used fields (see `Future::rare`).
#[derive(Default)]
struct Rare {
    /// `add_done_callback(f)`'s callbacks, for `remove_done_callback(f)`.
    done_callbacks: Vec<(Value, Rc<Cell<bool>>)>,
    /// What a cancelled future raises: the CancelledError its task raised,
    /// or one made with `cancel(msg)`'s message (`_make_cancelled_error`).
    cancel_error: Option<Thrown>,
    /// `_cancel_message`: `Future.cancel(msg)`'s msg (a task cancelled by
    /// its coroutine's CancelledError has none); `gather_settled` shows it.
    cancel_message: Option<Rc<str>>,
    /// A task's `cancel(msg)`'s message, for a cancellation delivered
    /// later (`_must_cancel`'s).
    task_cancel_msg: Option<Rc<str>>,
    /// The number of a task numbered `u32::MAX` or above (`TaskInfo::number`).
    number: u64,
}

/// What makes a future a task (inline in its `Future`).
struct TaskInfo {
    unit: UnitId,
    /// `cancelling()` (cancellations requested and not `uncancel()`ed) in
    /// the low 30 bits, saturating; `_must_cancel` and `guarded` (the task
    /// waits in a policy-internal `await` that takes a cancellation as a
    /// value: the `except CancelledError:` of `wait_for`, queues and
    /// locks) in the top two. One word, so a task's future fits a 112-B
    /// block with its header and counts (`sleeping_tasks`: −16 B a task).
    cancel_state: Cell<u32>,
    /// Its coroutine's name, interned (`names`): 4 bytes, not an `Rc<str>`'s
    /// 16, so a task's future fits a 112-B block with its header and counts
    /// (`sleeping_tasks`: −16 B a task).
    name: std::num::NonZeroU32,
    /// `Task-N`'s N; `u32::MAX`: the number is in `Rare::number`.
    number: u32,
    waiting_on: Cell<Option<F>>,
    /// The timer of the `sleep` the task waits in, if it sleeps.
    sleep_timer: Cell<Option<std::num::NonZeroU64>>,
}

const MUST_CANCEL: u32 = 1 << 31;
const GUARDED: u32 = 1 << 30;
const CANCELS: u32 = GUARDED - 1;

/// The coroutine names tasks have, interned: the same few names (a
/// program's async functions) for a million tasks. Per thread, as the
/// values are: a `Future` being dropped reports with its task's name.
mod names {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::num::NonZeroU32;
    use std::rc::Rc;

    #[derive(Default)]
    struct Names {
        all: Vec<Rc<str>>,
        index: HashMap<Rc<str>, NonZeroU32, crate::value::FastHash>,
        /// The last name interned (spawning in a loop: one pointer compare).
        last: Option<(Rc<str>, NonZeroU32)>,
    }

    thread_local! {
        static NAMES: RefCell<Names> = RefCell::default();
    }

    /// The index of `name` (equal names share one).
    pub fn intern(name: &Rc<str>) -> NonZeroU32 {
        NAMES.with(|names| {
            let mut names = names.borrow_mut();
            if let Some((last, i)) = &names.last
                && Rc::ptr_eq(last, name)
            {
                return *i;
            }
            let i = match names.index.get(&**name) {
                Some(&i) => i,
                None => {
                    names.all.push(name.clone());
                    let n = u32::try_from(names.all.len()).unwrap_or(u32::MAX);
                    let i = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
                    names.index.insert(name.clone(), i);
                    i
                }
            };
            names.last = Some((name.clone(), i));
            i
        })
    }

    /// The name `intern` gave `i` for.
    pub fn name(i: NonZeroU32) -> Rc<str> {
        NAMES.with(|names| {
            let names = names.borrow();
            names
                .all
                .get(i.get() as usize - 1)
                .cloned()
                .unwrap_or_else(|| Rc::from("?"))
        })
    }
}

impl TaskInfo {
    /// Its coroutine's name.
    fn name(&self) -> Rc<str> {
        names::name(self.name)
    }
    /// `cancelling()`.
    fn cancels(&self) -> u32 {
        self.cancel_state.get() & CANCELS
    }
    /// Sets `cancelling()` (at most 2^30 − 1: a count past it stays there).
    fn set_cancels(&self, n: u32) {
        let flags = self.cancel_state.get() & !CANCELS;
        self.cancel_state.set(flags | n.min(CANCELS));
    }
    fn flag(&self, flag: u32) -> bool {
        self.cancel_state.get() & flag != 0
    }
    fn set_flag(&self, flag: u32, on: bool) {
        let state = self.cancel_state.get() & !flag;
        self.cancel_state.set(if on { state | flag } else { state });
    }
    /// The flag's value, cleared.
    fn take_flag(&self, flag: u32) -> bool {
        let was = self.flag(flag);
        self.set_flag(flag, false);
        was
    }
    /// The future the task waits on, if any.
    fn waiting_on(&self) -> Option<F> {
        let future = self.waiting_on.take();
        self.waiting_on.set(future.clone());
        future
    }
}

/// A future's state, as CPython has it.
enum FState {
    Pending,
    Finished(Value),
    Failed(Thrown),
    Cancelled,
}

impl Future {
    fn new() -> F {
        Future::with(State::Pending, None)
    }
    fn with(state: State, task: Option<TaskInfo>) -> F {
        Hc::new(Future {
            core: Core::with_state(state),
            cancelled: Cell::new(false),
            handled: Cell::new(false),
            loud: Cell::new(false),
            rare: std::cell::OnceCell::new(),
            task,
        })
    }
    fn new_task(unit: UnitId, name: &Rc<str>, number: u64) -> F {
        let task = Future::with(
            State::Pending,
            Some(TaskInfo {
                unit,
                cancel_state: Cell::new(0),
                name: names::intern(name),
                number: u32::try_from(number).unwrap_or(u32::MAX),
                waiting_on: Cell::new(None),
                sleep_timer: Cell::new(None),
            }),
        );
        if number >= u64::from(u32::MAX) {
            task.rare().number = number;
        }
        task
    }
    /// A task's number (`Task-N`); 0 for a plain future.
    fn number(&self) -> u64 {
        match &self.task {
            Some(info) if info.number == u32::MAX => {
                self.rare.get().map_or(0, |r| r.borrow().number)
            }
            Some(info) => u64::from(info.number),
            None => 0,
        }
    }
    fn is_pending(&self) -> bool {
        self.core.is_pending()
    }
    /// The seldom-used fields, made on first use.
    fn rare(&self) -> std::cell::RefMut<'_, Rare> {
        self.rare.get_or_init(Box::default).borrow_mut()
    }
    fn cancel_error(&self) -> Option<Thrown> {
        self.rare.get()?.borrow().cancel_error.clone()
    }
    fn cancel_message(&self) -> Option<Rc<str>> {
        self.rare.get()?.borrow().cancel_message.clone()
    }
    /// A task's `cancel(msg)`'s message, kept for a cancellation delivered
    /// later.
    fn task_cancel_msg(&self) -> Option<Rc<str>> {
        self.rare.get()?.borrow().task_cancel_msg.clone()
    }
    fn set_task_cancel_msg(&self, msg: Option<Rc<str>>) {
        if msg.is_some() || self.rare.get().is_some() {
            self.rare().task_cancel_msg = msg;
        }
    }
    fn is_task(&self) -> bool {
        self.task.is_some()
    }
    fn state(&self) -> FState {
        if self.cancelled.get() {
            return FState::Cancelled;
        }
        match self.core.state() {
            State::Pending => FState::Pending,
            State::Fulfilled(v) => FState::Finished(v),
            State::Rejected(t) => FState::Failed(t),
        }
    }
}

impl Handle for Future {
    fn type_name(&self) -> &'static str {
        if self.is_task() { "task" } else { "future" }
    }
    fn describe(&self, out: &mut String, inner: &mut dyn FnMut(&mut String, &Value)) {
        let state = self.state();
        let status = match (&state, &self.task) {
            (FState::Pending, _) => "pending",
            (FState::Cancelled, _) => "cancelled",
            _ => "finished",
        };
        match &self.task {
            Some(task) => {
                let done = if matches!(state, FState::Pending) {
                    ""
                } else {
                    " done"
                };
                out.push_str(&format!(
                    "<Task {status} name='Task-{}' coro=<{}(){done}>",
                    self.number(),
                    task.name()
                ));
            }
            None => out.push_str(&format!("<Future {status}")),
        }
        match &state {
            FState::Finished(v) => {
                out.push_str(" result=");
                inner(out, v);
            }
            // As CPython shows it, for a future as for a task: a thrown
            // value that is no error shows as `Exception(…)`, as in the
            // "never retrieved" report.
            FState::Failed(t) => {
                out.push_str(" exception=");
                write_exception(out, &t.value, inner);
            }
            _ => {}
        }
        out.push('>');
    }
    /// `await fut` of a future done with a result does not yield
    /// (`Future.__await__` returns at once): the VM goes on with the result,
    /// without a halt (`await_chain`). What `await_value` does for it,
    /// minus the round trip: a failed or cancelled future still halts.
    fn settled(&self) -> Option<Value> {
        if self.cancelled.get() {
            return None;
        }
        let value = self.core.with(|state| match state {
            State::Fulfilled(Value::Int(n)) => Some(Value::Int(*n)),
            State::Fulfilled(v) => Some(v.clone()),
            _ => None,
        })?;
        self.handled.set(true);
        Some(value)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// How CPython shows an exception object: `Exception('boom')`.
fn exception_repr(value: &Value) -> String {
    let mut out = String::new();
    write_exception(&mut out, value, &mut |o, v| {
        o.push_str(&v.repr(Flavor::Python))
    });
    out
}

/// `exception_repr`, writing held values with `inner` (a printer's).
fn write_exception(out: &mut String, value: &Value, inner: &mut dyn FnMut(&mut String, &Value)) {
    match value {
        Value::Error(e) => {
            out.push_str(&format!("{}(", e.kind));
            inner(out, &Value::str(&e.message));
        }
        other => {
            out.push_str("Exception(");
            inner(out, other);
        }
    }
    out.push(')');
}

impl Drop for Future {
    /// CPython logs a task's or future's exception nobody retrieved when the
    /// object is collected; so do we (futures become `loud` once completed).
    fn drop(&mut self) {
        if self.loud.get() && self.core.with(|state| matches!(state, State::Rejected(_))) {
            count_reporters(-1);
        }
        self.report_unretrieved();
        // A chain of futures (callbacks' derived futures, a result that is
        // a future) drops link by link, not by recursion.
        let callbacks = self.core.take_reactions();
        crate::value::drop_later(
            callbacks
                .into_iter()
                .filter_map(|c| c.into_full().derived.map(Value::from))
                .chain([self.core.take_value()]),
        );
    }
}

impl Future {
    fn report_unretrieved(&self) {
        if self.cancelled.get() || self.handled.get() {
            return;
        }
        let exception = match self.core.state() {
            State::Rejected(thrown) => exception_repr(&thrown.value),
            _ => return,
        };
        if let Some(task) = &self.task {
            super::warn(format!(
                "Task exception was never retrieved\nfuture: <Task finished name='Task-{}' coro=<{}() done> exception={exception}>\n",
                self.number(),
                task.name()
            ));
        } else if self.loud.get() {
            super::warn(format!(
                "Future exception was never retrieved\nfuture: <Future finished exception={exception}>\n"
            ));
        }
    }
}

/// A coroutine object: an async function called but not started.
pub struct Coroutine {
    name: Rc<str>,
    body: RefCell<Option<Body>>,
    /// Inside a task made for a coroutine of the policy's own (`spawn
    /// sleep(d)`): if the task is cancelled before it starts, CPython's
    /// coroutine was thrown into, not left unawaited.
    quiet: bool,
}

enum Body {
    Call(Rc<Closure>, Vec<Value>),
    /// `asyncio.sleep(ms, result)`
    Sleep(f64, Value),
}

impl Handle for Coroutine {
    fn type_name(&self) -> &'static str {
        "coroutine"
    }
    fn describe(&self, out: &mut String, _: &mut dyn FnMut(&mut String, &Value)) {
        out.push_str(&format!("<coroutine object {}>", self.name));
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Coroutine {
    /// Starts the coroutine: takes its body (`None`: it was started).
    fn take_body(&self) -> Option<Body> {
        let body = self.body.borrow_mut().take();
        if body.is_some() && !self.quiet {
            count_reporters(-1);
        }
        body
    }
}

thread_local! {
    /// How many objects alive would print a report if collected now:
    /// coroutines never started (not `quiet`) and futures completed with
    /// an exception or cancelled (`Future::loud` and rejected, whether
    /// retrieved or not: counting more is safe). While it is 0, dropping
    /// everything prints nothing (`Policy::collection_is_silent`).
    static REPORTERS: Cell<isize> = const { Cell::new(0) };
}

fn count_reporters(delta: isize) {
    REPORTERS.with(|n| n.set(n.get() + delta));
}

impl Drop for Coroutine {
    fn drop(&mut self) {
        if self.body.borrow().is_some() && !self.quiet {
            count_reporters(-1);
            super::warn(format!(
                "RuntimeWarning: coroutine '{}' was never awaited\n",
                self.name
            ));
        }
    }
}

fn coroutine(name: Rc<str>, body: Body) -> Hc<Coroutine> {
    count_reporters(1);
    Hc::new(Coroutine {
        name,
        body: RefCell::new(Some(body)),
        quiet: false,
    })
}

/// What a done-callback does with the outcome of the future it watches.
#[derive(Clone)]
enum Handler {
    Pass,
    Call(Value),
    Finally(Value),
    /// Wake a task suspended at `await`.
    Resume(UnitId),
    /// `gather`: child `index` of the gathering state is done.
    GatherChild(Rc<GatherState>, usize),
    /// The future `run_until_complete` waits for is done: stop the loop.
    StopLoop,
    /// `_release_waiter(waiter)`: set the waiter's result unless done.
    Release(F),
    /// `shield`'s `_inner_done_callback`: pass the outcome to `outer`.
    ShieldInner(F),
    /// `shield`'s `_outer_done_callback`: forget the inner callback.
    ShieldOuter(F, Rc<Cell<bool>>),
    /// `fut.add_done_callback(f)`: call `f(fut)`.
    DoneCallback(Value, F),
    /// `wait`'s `_on_completion` for one of its futures.
    Wait(Hc<WaitState>, F),
    /// `TaskGroup._on_task_done`.
    GroupTaskDone(Hc<TaskGroup>, F),
    /// `as_completed`'s `_on_completion`: put the future in the queue.
    AsCompleted(Rc<AsCompletedState>, F),
}

/// A done-callback as a pending future keeps it: waking a task and a
/// `gather`'s child callback (the callbacks a million tasks' futures get)
/// are 16 bytes inline, any other is boxed.
enum Callback {
    /// `Handler::Resume` either way, nothing else.
    Resume(UnitId),
    /// `Handler::GatherChild` either way, nothing else.
    Gather(Rc<GatherState>, u32),
    Other(Box<FullCallback>),
}

impl Callback {
    fn new(full: FullCallback) -> Callback {
        match full {
            FullCallback {
                on_fulfilled: Handler::Resume(unit),
                on_rejected: None,
                derived: None,
                live: None,
            } => Callback::Resume(unit),
            FullCallback {
                on_fulfilled: Handler::GatherChild(state, index),
                on_rejected: None,
                derived: None,
                live: None,
            } if u32::try_from(index).is_ok() => Callback::Gather(state, index as u32),
            full => Callback::Other(Box::new(full)),
        }
    }

    fn into_full(self) -> FullCallback {
        let plain = |handler| FullCallback {
            on_fulfilled: handler,
            on_rejected: None,
            derived: None,
            live: None,
        };
        match self {
            Callback::Resume(unit) => plain(Handler::Resume(unit)),
            Callback::Gather(state, index) => plain(Handler::GatherChild(state, index as usize)),
            Callback::Other(full) => *full,
        }
    }
}

struct FullCallback {
    on_fulfilled: Handler,
    /// The handler of a failure, when it is not `on_fulfilled` (boxed: most
    /// callbacks wake a task or a `gather` either way, and a pending
    /// future keeps its first callback inline, so it stays small).
    on_rejected: Option<Box<Handler>>,
    derived: Option<F>,
    /// Cleared by `remove_done_callback`: the callback is not scheduled.
    live: Option<Rc<Cell<bool>>>,
}

impl Handler {
    /// The same handler for sure (false when it cannot tell cheaply).
    fn same_as(&self, other: &Handler) -> bool {
        match (self, other) {
            (Handler::Pass, Handler::Pass) | (Handler::StopLoop, Handler::StopLoop) => true,
            (Handler::Resume(a), Handler::Resume(b)) => a == b,
            (Handler::GatherChild(a, i), Handler::GatherChild(b, j)) => Rc::ptr_eq(a, b) && i == j,
            (Handler::Release(a), Handler::Release(b))
            | (Handler::ShieldInner(a), Handler::ShieldInner(b)) => Hc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// `as_completed`'s closure: the queue of done futures, the ones still
/// to come (`todo`, with their callbacks' flags) and the timeout handle.
struct AsCompletedState {
    done: Hc<AsyncQueue>,
    todo: RefCell<Vec<(F, Rc<Cell<bool>>)>>,
    timer: Cell<Option<u64>>,
}

/// `asyncio.wait`'s bookkeeping for one call.
struct WaitState {
    waiter: F,
    counter: Cell<usize>,
    mode: WaitMode,
    timer: Cell<Option<u64>>,
    /// The `_on_completion` callbacks, removed when the wait ends.
    live: Vec<Rc<Cell<bool>>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WaitMode {
    FirstCompleted,
    FirstException,
    AllCompleted,
}

struct GatherState {
    children: Vec<F>,
    outer: F,
    finished: Cell<usize>,
    return_exceptions: bool,
    /// `_GatheringFuture.cancel()` was called: the outer future fails with
    /// CancelledError once its children are done.
    cancel_requested: Cell<bool>,
}

/// A callback in the ready queue or a timer's action.
enum Job {
    Callback {
        handler: Handler,
        derived: Option<F>,
        outcome: Result<Value, Thrown>,
    },
    /// Call a function (`call_soon`, `call_later`: then `timer` is its id).
    Call {
        function: Value,
        args: Vec<Value>,
        timer: Option<u64>,
    },
    /// A task step (`Task.__step`) with what the task receives.
    Resume { unit: UnitId, with: ResumeWith },
    /// `fut.set_result(value)`.
    Settle { future: F, value: Value },
    /// A sleeping task's timer fired; like `sleep`'s
    /// `_set_result_unless_cancelled`, it schedules the task's wake-up.
    WakeTask {
        unit: UnitId,
        timer: u64,
        value: Value,
    },
    /// `_release_waiter(waiter)` from a timer (`wait_for`, `wait`).
    Release { waiter: F, timer: Option<u64> },
    /// `Timeout._on_timeout` (from `call_soon`, or a timer: `timer`).
    OnTimeout {
        state: Hc<TimeoutState>,
        timer: Option<u64>,
    },
    /// `as_completed`'s `_on_timeout`.
    AsCompletedTimeout {
        state: Rc<AsCompletedState>,
        timer: u64,
    },
    /// A cancelled handle: `_run_once` skips it.
    Skip,
}

/// The ready queue (`_ready`) as it is kept: a task's step that sends
/// nothing (its start, a `sleep(0)`'s wake-up) and a sleeping task's
/// wake-up are 16-byte entries; any other job is boxed. The starts of tasks
/// whose units follow one another, queued one after another, are one entry:
/// a million tasks spawned in a loop queue one (`sleeping_tasks`: −16 B a
/// task at the peak).
#[derive(Default)]
struct ReadyQueue {
    entries: VecDeque<Ready>,
    /// Jobs queued (a run of starts counts each).
    len: usize,
}

enum Ready {
    /// `Job::Resume` with `ResumeWith::Start` for `count` (≥ 1) units from
    /// `first` on, in that order.
    Starts {
        first: UnitId,
        count: u32,
    },
    /// `Job::Resume` with a nil value.
    Step(UnitId),
    /// `Job::WakeTask` with a nil value: the unit and its timer.
    Wake(UnitId, u64),
    /// `Job::Callback` of `Handler::GatherChild` (no derived future; the
    /// handler reads the child's outcome from the child): one per gathered
    /// child (`spawn_gather`: an allocation a task less).
    Gather(Rc<GatherState>, u32),
    Skip,
    Other(Box<Job>),
}

impl Ready {
    fn new(job: Job) -> Ready {
        match job {
            Job::Resume {
                unit,
                with: ResumeWith::Start,
            } => Ready::Starts {
                first: unit,
                count: 1,
            },
            Job::Resume {
                unit,
                with: ResumeWith::Value(Value::Nil),
            } => Ready::Step(unit),
            Job::WakeTask {
                unit,
                timer,
                value: Value::Nil,
            } => Ready::Wake(unit, timer),
            Job::Callback {
                handler: Handler::GatherChild(state, index),
                derived: None,
                ..
            } if u32::try_from(index).is_ok() => Ready::Gather(state, index as u32),
            Job::Skip => Ready::Skip,
            job => Ready::Other(Box::new(job)),
        }
    }

    /// The job of an entry that stands for one job (not a run of starts).
    fn into_job(self) -> Job {
        match self {
            Ready::Starts { first, count } => {
                debug_assert_eq!(count, 1, "a run of starts is one job a time");
                Job::Resume {
                    unit: first,
                    with: ResumeWith::Start,
                }
            }
            Ready::Step(unit) => Job::Resume {
                unit,
                with: ResumeWith::Value(Value::Nil),
            },
            Ready::Wake(unit, timer) => Job::WakeTask {
                unit,
                timer,
                value: Value::Nil,
            },
            Ready::Gather(state, index) => Job::Callback {
                handler: Handler::GatherChild(state, index as usize),
                derived: None,
                outcome: Ok(Value::Nil),
            },
            Ready::Skip => Job::Skip,
            Ready::Other(job) => *job,
        }
    }

    /// Runs `f` on the job this entry stands for (the first of a run of
    /// starts).
    fn with<T>(&self, f: impl FnOnce(&Job) -> T) -> T {
        match self {
            Ready::Other(job) => f(job),
            Ready::Starts { first, .. } => f(&Job::Resume {
                unit: *first,
                with: ResumeWith::Start,
            }),
            Ready::Step(unit) => f(&Job::Resume {
                unit: *unit,
                with: ResumeWith::Value(Value::Nil),
            }),
            Ready::Wake(unit, timer) => f(&Job::WakeTask {
                unit: *unit,
                timer: *timer,
                value: Value::Nil,
            }),
            Ready::Gather(state, index) => f(&Job::Callback {
                handler: Handler::GatherChild(state.clone(), *index as usize),
                derived: None,
                outcome: Ok(Value::Nil),
            }),
            Ready::Skip => f(&Job::Skip),
        }
    }
}

impl ReadyQueue {
    fn push_back(&mut self, job: Job) {
        match Ready::new(job) {
            Ready::Starts { first: unit, .. } => self.push_start(unit),
            entry => self.push(entry),
        }
    }
    fn push(&mut self, entry: Ready) {
        self.len += 1;
        self.entries.push_back(entry);
    }
    /// `push_back(Job::Resume { unit, with: ResumeWith::Start })`: the
    /// next unit's start after a run of starts makes the run longer.
    fn push_start(&mut self, unit: UnitId) {
        if let Some(Ready::Starts { first, count }) = self.entries.back_mut()
            && first.checked_add(*count) == Some(unit)
            && let Some(more) = count.checked_add(1)
        {
            *count = more;
            self.len += 1;
            return;
        }
        self.push(Ready::Starts {
            first: unit,
            count: 1,
        });
    }
    /// `push_back(Job::Resume { unit, with: ResumeWith::Value(value) })`,
    /// without making the `Job` first (a `sleep(0)`'s wake-up).
    fn push_resume(&mut self, unit: UnitId, value: Value) {
        self.push(match value {
            Value::Nil => Ready::Step(unit),
            value => Ready::Other(Box::new(Job::Resume {
                unit,
                with: ResumeWith::Value(value),
            })),
        });
    }
    #[cfg(test)]
    fn pop_front(&mut self) -> Option<Job> {
        self.pop_entry().map(Ready::into_job)
    }
    /// The first job as its entry (a run of starts gives its first start).
    fn pop_entry(&mut self) -> Option<Ready> {
        let entry = self.entries.pop_front()?;
        self.len -= 1;
        if let Ready::Starts { first, count } = entry
            && count > 1
        {
            // The rest of the run goes back where it was.
            self.entries.push_front(Ready::Starts {
                first: first + 1,
                count: count - 1,
            });
            return Some(Ready::Starts { first, count: 1 });
        }
        Some(entry)
    }
    fn len(&self) -> usize {
        self.len
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn clear(&mut self) {
        self.entries.clear();
        self.len = 0;
    }
    /// Runs `f` on every queued job, in order.
    fn for_each(&self, mut f: impl FnMut(&Job)) {
        for entry in &self.entries {
            match entry {
                Ready::Starts { first, count } => {
                    for unit in (0..*count).map(|i| first + i) {
                        f(&Job::Resume {
                            unit,
                            with: ResumeWith::Start,
                        });
                    }
                }
                entry => entry.with(&mut f),
            }
        }
    }
    /// Turns every queued job `hit` picks into `Job::Skip` (a cancelled
    /// handle stays in the queue, as in CPython's `_ready`).
    fn skip_where(&mut self, hit: impl Fn(&Job) -> bool) {
        self.skip_first_where(usize::MAX, hit);
    }
    /// `skip_where` among the first `first` jobs only.
    fn skip_first_where(&mut self, first: usize, hit: impl Fn(&Job) -> bool) {
        let mut seen = 0;
        let mut split = false;
        for entry in self.entries.iter_mut() {
            if seen >= first {
                break;
            }
            match entry {
                Ready::Starts { first: unit, count } => {
                    let n = (*count as usize).min(first - seen);
                    seen += *count as usize;
                    split |= (0..n as u32).any(|i| {
                        hit(&Job::Resume {
                            unit: *unit + i,
                            with: ResumeWith::Start,
                        })
                    });
                }
                entry => {
                    seen += 1;
                    if entry.with(&hit) {
                        *entry = Ready::Skip;
                    }
                }
            }
        }
        if split {
            self.split_starts(first, &hit);
        }
    }
    /// `skip_first_where` where a run of starts has jobs to skip (no caller
    /// skips a task's start today): the queue again, one entry a job.
    fn split_starts(&mut self, first: usize, hit: &impl Fn(&Job) -> bool) {
        let mut entries = VecDeque::with_capacity(self.len);
        for entry in std::mem::take(&mut self.entries) {
            match entry {
                Ready::Starts { first: unit, count } => {
                    for unit in (0..count).map(|k| unit + k) {
                        let job = Job::Resume {
                            unit,
                            with: ResumeWith::Start,
                        };
                        let skip = entries.len() < first && hit(&job);
                        entries.push_back(if skip { Ready::Skip } else { Ready::new(job) });
                    }
                }
                entry => entries.push_back(entry),
            }
        }
        self.entries = entries;
    }
    /// Gives back the room of a queue mostly drained.
    fn shrink(&mut self) {
        let cap = self.entries.capacity();
        if cap > 1024 && self.entries.len() <= cap / 4 {
            self.entries.shrink_to(self.entries.len() * 2);
        }
    }
}

/// A timer's job as the heap keeps it: a sleeping task's wake-up (most
/// timers, a million in `sleeping_tasks`) is its unit, in the entry; any
/// other job is kept beside the heap.
impl super::promise::PackedJob for Job {
    fn pack(self) -> Result<u32, Job> {
        match self {
            Job::WakeTask {
                unit,
                value: Value::Nil,
                ..
            } if unit < 1 << 31 => Ok(unit),
            job => Err(job),
        }
    }

    fn unpack(unit: u32, timer: u64) -> Job {
        Job::WakeTask {
            unit,
            timer,
            value: Value::Nil,
        }
    }
}

// ---- queues, events, locks, semaphores (asyncio.queues, asyncio.locks) ----

/// Implements `Handle` for a policy object shown by `describe`.
macro_rules! handle {
    ($type:ty, $name:literal, |$this:ident, $out:ident| $describe:expr) => {
        impl Handle for $type {
            fn type_name(&self) -> &'static str {
                $name
            }
            fn describe(&self, $out: &mut String, _inner: &mut dyn FnMut(&mut String, &Value)) {
                let $this = self;
                $describe
            }
            fn as_any(&self) -> &dyn Any {
                self
            }
        }
    };
}

/// `asyncio.Queue(maxsize)`.
struct AsyncQueue {
    items: RefCell<VecDeque<Value>>,
    maxsize: i64,
    getters: RefCell<VecDeque<F>>,
    putters: RefCell<VecDeque<F>>,
    unfinished: Cell<i64>,
    finished: Hc<AsyncEvent>,
}

handle!(AsyncQueue, "queue", |q, out| {
    out.push_str(&format!("<Queue maxsize={}", q.maxsize));
    let items = q.items.borrow();
    if !items.is_empty() {
        let shown: Vec<String> = items.iter().map(|v| v.repr(Flavor::Python)).collect();
        out.push_str(&format!(" _queue=[{}]", shown.join(", ")));
    }
    let (getters, putters) = (q.getters.borrow().len(), q.putters.borrow().len());
    if getters > 0 {
        out.push_str(&format!(" _getters[{getters}]"));
    }
    if putters > 0 {
        out.push_str(&format!(" _putters[{putters}]"));
    }
    if q.unfinished.get() > 0 {
        out.push_str(&format!(" tasks={}", q.unfinished.get()));
    }
    out.push('>');
});

impl AsyncQueue {
    fn full(&self) -> bool {
        self.maxsize > 0 && self.items.borrow().len() as i64 >= self.maxsize
    }
}

/// `asyncio.Event()`.
struct AsyncEvent {
    value: Cell<bool>,
    waiters: RefCell<Vec<F>>,
}

handle!(AsyncEvent, "event", |e, out| {
    let state = if e.value.get() { "set" } else { "unset" };
    out.push_str(&format!(
        "<asyncio.locks.Event object [{state}{}]>",
        waiters(e.waiters.borrow().len())
    ));
});

/// `asyncio.Lock()`.
struct AsyncLock {
    locked: Cell<bool>,
    waiters: RefCell<VecDeque<F>>,
}

handle!(AsyncLock, "lock", |l, out| {
    let state = if l.locked.get() { "locked" } else { "unlocked" };
    out.push_str(&format!(
        "<asyncio.locks.Lock object [{state}{}]>",
        waiters(l.waiters.borrow().len())
    ));
});

/// `asyncio.Semaphore(value)`.
struct AsyncSemaphore {
    value: Cell<i64>,
    waiters: RefCell<VecDeque<F>>,
}

handle!(AsyncSemaphore, "semaphore", |s, out| {
    let state = if s.locked() {
        "locked".to_string()
    } else {
        format!("unlocked, value:{}", s.value.get())
    };
    out.push_str(&format!(
        "<asyncio.locks.Semaphore object [{state}{}]>",
        waiters(s.waiters.borrow().len())
    ));
});

impl AsyncSemaphore {
    fn locked(&self) -> bool {
        self.value.get() == 0 || self.waiters.borrow().iter().any(|w| !w.cancelled.get())
    }
}

fn waiters(n: usize) -> String {
    if n > 0 {
        format!(", waiters:{n}")
    } else {
        String::new()
    }
}

/// The loop as the prelude sees it (`rt`): loop operations as methods.
struct Loop;

handle!(Loop, "loop", |_l, out| out.push_str("<asyncio event loop>"));

handle!(WaitState, "wait", |_w, out| out.push_str("<wait>"));

/// `asyncio.TaskGroup()`.
struct TaskGroup {
    parent: F,
    exiting: Cell<bool>,
    aborting: Cell<bool>,
    parent_cancel_requested: Cell<bool>,
    /// Its tasks not done yet, in creation order (CPython's is a set).
    tasks: RefCell<Vec<F>>,
    errors: RefCell<Vec<Value>>,
    on_completed: RefCell<Option<F>>,
    /// `propagate_cancellation_error`.
    propagate: RefCell<Option<Thrown>>,
}

handle!(TaskGroup, "task_group", |g, out| {
    out.push_str("<TaskGroup");
    let (tasks, errors) = (g.tasks.borrow().len(), g.errors.borrow().len());
    if tasks > 0 {
        out.push_str(&format!(" tasks={tasks}"));
    }
    if errors > 0 {
        out.push_str(&format!(" errors={errors}"));
    }
    out.push_str(if g.aborting.get() {
        " cancelling>"
    } else {
        " entered>"
    });
});

/// `asyncio.timeout(d)`'s `Timeout` object.
struct TimeoutState {
    task: F,
    /// `task.cancelling()` on entry.
    cancelling: u32,
    state: Cell<TimeoutStage>,
    /// The `_on_timeout` handle is still scheduled.
    scheduled: Cell<bool>,
    timer: Cell<Option<u64>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TimeoutStage {
    Entered,
    Expiring,
    Expired,
    Exited,
}

handle!(TimeoutState, "timeout", |t, out| {
    let stage = match t.state.get() {
        TimeoutStage::Entered => "active",
        TimeoutStage::Expiring => "expiring",
        TimeoutStage::Expired => "expired",
        TimeoutStage::Exited => "finished",
    };
    out.push_str(&format!("<Timeout [{stage}]>"));
});

/// `await rt.guard(f)`: awaits `f`, a cancellation comes back as a value.
struct Guard(F);

impl Handle for Guard {
    fn type_name(&self) -> &'static str {
        "future"
    }
    fn describe(&self, out: &mut String, inner: &mut dyn FnMut(&mut String, &Value)) {
        self.0.describe(out, inner)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A done-callback `rt.release_when_done` added (for its removal).
struct CallbackToken(Rc<Cell<bool>>);

handle!(CallbackToken, "callback", |_t, out| out
    .push_str("<callback>"));

// ---- the prelude: CPython's own coroutines, in looplab ----

/// `asyncio`'s library coroutines (queues' `get`/`put`, locks' `acquire`,
/// `wait_for`, …) written in looplab after CPython 3.11's Lib/asyncio, so
/// they take exactly CPython's iterations. They use no globals: the policy
/// hands them their objects, and `rt` (the `Loop` handle) for loop
/// operations. `await rt.guard(f)` is `try: await f / except
/// CancelledError` (the cancellation comes back as a value).
const PRELUDE: &str = r#"
async fn run(c) { return await c; }
async fn get(q) {
    while q._empty() {
        let getter = q._getter();
        let ok = false;
        try { await getter; ok = true; } finally { if !ok { q._getter_failed(getter); } }
    }
    return q.get_nowait();
}
async fn put(q, item) {
    while q._full() {
        let putter = q._putter();
        let ok = false;
        try { await putter; ok = true; } finally { if !ok { q._putter_failed(putter); } }
    }
    return q.put_nowait(item);
}
async fn join(q) {
    if q._unfinished() > 0 { await q._finished().wait(); }
}
async fn wait(e) {
    if e.is_set() { return true; }
    let fut = e._waiter();
    try { await fut; return true; } finally { e._remove(fut); }
}
async fn acquire(l) {
    if l._free() { return l._take(); }
    let fut = l._waiter();
    let ok = false;
    try { await fut; ok = true; } finally { l._remove(fut); if !ok { l._cancelled(fut); } }
    return l._take();
}
async fn acquire_semaphore(s) {
    if !s.locked() { return s._take(); }
    let fut = s._waiter();
    let ok = false;
    try { await fut; ok = true; } finally { s._remove(fut); if !ok { s._cancelled(fut); } }
    return s._acquired();
}
async fn cancel_and_wait(rt, fut) {
    let waiter = rt.future();
    let cb = rt.release_when_done(fut, waiter);
    try { fut.cancel(); await waiter; } finally { rt.remove_done_callback(fut, cb); }
}
async fn wait_for(rt, fut, timeout) {
    if timeout == nil { return await fut; }
    if timeout <= 0 {
        fut = rt.ensure_future(fut);
        if fut.done() { return fut.result(); }
        await rt.cancel_and_wait(fut);
        return rt.result_or_timeout(fut);
    }
    let waiter = rt.future();
    let handle = rt.release_later(timeout, waiter);
    fut = rt.ensure_future(fut);
    let cb = rt.release_when_done(fut, waiter);
    try {
        let r = await rt.guard(waiter);
        if rt.is_cancel(r) {
            if fut.done() { return fut.result(); }
            rt.remove_done_callback(fut, cb);
            await rt.cancel_and_wait(fut);
            throw r;
        }
        if fut.done() { return fut.result(); }
        rt.remove_done_callback(fut, cb);
        await rt.cancel_and_wait(fut);
        return rt.result_or_timeout(fut);
    } finally { rt.cancel_timer(handle); }
}
async fn wait_futures(rt, fs, mode, timeout) {
    let waiter = rt.future();
    let state = rt.wait_start(fs, waiter, mode, timeout);
    try { await waiter; } finally { rt.wait_end(state); }
    return rt.wait_split(fs);
}
async fn with_timeout(rt, delay, body) {
    let tm = rt.timeout_enter(delay);
    let how = "cancelled";
    let result = nil;
    let err = nil;
    try {
        try { result = await body(); how = "ok"; } catch e { how = "error"; err = e; }
    } finally {
        if how == "cancelled" { rt.timeout_exit(tm, true); }
    }
    rt.timeout_exit(tm, false);
    if how == "error" { throw err; }
    return result;
}
async fn task_group(rt, body) {
    let g = rt.group_enter();
    let how = "cancelled";
    let err = nil;
    let result = nil;
    try {
        try { result = await body(g); how = "ok"; } catch e { how = "error"; err = e; }
    } finally {
        if how == "cancelled" {
            await rt.group_exit(g, how, nil);
            return result;
        }
    }
    await rt.group_exit(g, how, err);
    return result;
}
async fn group_exit(g, how, err) {
    g._exiting(how);
    while g._has_tasks() {
        let r = await g._completed();
        if g._is_cancel(r) { g._cancelled_while_waiting(r); }
        g._clear_completed();
    }
    g._finish(how, err);
}
async fn wait_for_one(rt, done) {
    let f = await done.get();
    if f == nil { rt.raise_timeout(); }
    return f.result();
}
"#;

/// The prelude's functions, compiled once.
struct Prelude {
    library: super::Library,
}

impl Prelude {
    fn closure(&self, name: &str) -> Rc<Closure> {
        self.library
            .get(name)
            .unwrap_or_else(|| panic!("the asyncio prelude has no `{name}`"))
    }

    /// A coroutine of the prelude's function `function`, named as CPython
    /// names it (`Queue.get`).
    fn coroutine(&self, name: &str, function: &str, args: Vec<Value>) -> Value {
        Value::from(coroutine(
            Rc::from(name),
            Body::Call(self.closure(function), args),
        ))
    }
}

// ---- primitives ----

/// This policy's primitives: `super::Primitive` with its own operations.
type Primitive = super::Primitive<Op>;

enum Op {
    Sleep,
    Work,
    Now,
    SetTimeout,
    ClearTimeout,
    QueueMicrotask,
    NextTick,
    NewPromise,
    Gather,
    PromiseResolve,
    PromiseReject,
    PromiseAll,
    /// `Promise.race` / `allSettled` / `any`: no asyncio counterpart.
    NoCounterpart,
    /// A Node-only primitive (`set_interval`, `set_immediate`, …): an error
    /// naming what asyncio offers instead.
    NodeOnly(&'static str),
    WaitFor,
    Wait,
    AsCompleted,
    GatherSettled,
    Shield,
    TaskGroup,
    WithTimeout,
    CurrentTask,
    NewQueue,
    NewEvent,
    NewLock,
    NewSemaphore,
    Resolver {
        future: F,
        reject: bool,
        done: Rc<Cell<bool>>,
    },
}

fn primitive(name: &'static str, op: Op) -> Value {
    Value::from(Hc::new(Primitive::new(name, op, |name, out| {
        out.push_str(&format!("<built-in function {name}>"))
    })))
}

fn global(name: &str) -> Option<Value> {
    let op = match name {
        "sleep" => Op::Sleep,
        "work" => Op::Work,
        "now" => Op::Now,
        "set_timeout" => Op::SetTimeout,
        "clear_timeout" => Op::ClearTimeout,
        "queue_microtask" => Op::QueueMicrotask,
        "next_tick" => Op::NextTick,
        "set_interval" => Op::NodeOnly(
            "set_interval is Node's setInterval; asyncio has no repeating timer (loop over `await sleep(d)` in a task, or set_timeout (call_later) again from the callback)",
        ),
        "clear_interval" => Op::NodeOnly(
            "clear_interval is Node's clearInterval; asyncio has no repeating timer (cancel the looping task, or clear_timeout the call_later)",
        ),
        "set_immediate" => Op::NodeOnly(
            "set_immediate is Node's setImmediate; asyncio has no check phase (use queue_microtask, which is call_soon here)",
        ),
        "clear_immediate" => Op::NodeOnly(
            "clear_immediate is Node's clearImmediate; asyncio has no check phase (a call_soon callback cannot be cleared by id; clear_timeout cancels a call_later)",
        ),
        "promise" => Op::NewPromise,
        "gather" => Op::Gather,
        "wait_for" => Op::WaitFor,
        "wait" => Op::Wait,
        "as_completed" => Op::AsCompleted,
        "gather_settled" => Op::GatherSettled,
        "shield" => Op::Shield,
        "task_group" => Op::TaskGroup,
        "with_timeout" => Op::WithTimeout,
        "current_task" => Op::CurrentTask,
        "queue" => Op::NewQueue,
        "event" => Op::NewEvent,
        "lock" => Op::NewLock,
        "semaphore" => Op::NewSemaphore,
        "Promise" => {
            let mut statics = Map::default();
            for (key, op) in [
                ("resolve", Op::PromiseResolve),
                ("reject", Op::PromiseReject),
                ("all", Op::PromiseAll),
                ("race", Op::NoCounterpart),
                ("allSettled", Op::NoCounterpart),
                ("any", Op::NoCounterpart),
            ] {
                statics.insert(Rc::from(key), primitive(key, op));
            }
            return Some(Value::map(statics));
        }
        _ => return None,
    };
    let name = super::PRIMITIVES.iter().find(|n| **n == name)?;
    Some(primitive(name, op))
}

fn new_event(set: bool) -> Hc<AsyncEvent> {
    Hc::new(AsyncEvent {
        value: Cell::new(set),
        waiters: RefCell::new(Vec::new()),
    })
}

/// Refuses what cannot be awaited, as `ensure_future` does.
fn awaitable(value: &Value, what: &str) -> Result<(), Thrown> {
    if handle_of::<Coroutine>(value).is_some() || handle_of::<Future>(value).is_some() {
        return Ok(());
    }
    Err(Thrown::error(
        "TypeError",
        &format!(
            "An asyncio.Future, a coroutine or an awaitable is required ({what} got {})",
            value.a_type()
        ),
    ))
}

/// The same function (identity, as `remove_done_callback` compares).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Closure(x), Value::Closure(y)) => Rc::ptr_eq(x, y),
        (Value::Native(x), Value::Native(y)) => Rc::ptr_eq(x, y),
        (Value::Handle(x), Value::Handle(y)) => HandleRef::ptr_eq(x, y),
        _ => false,
    }
}

/// A method bound to one of the policy's objects (`q.put_nowait`).
fn handle_method(native: &Native) -> Option<(HandleRef, Rc<str>)> {
    match native {
        Native::Method {
            receiver: Value::Handle(h),
            name,
        } => Some((h.clone(), name.clone())),
        _ => None,
    }
}

/// What awaiting a value comes to.
enum Awaited {
    Ready(Value),
    Suspend,
    /// `await coro`: run it in this task, like a call.
    Inline(Rc<Closure>, Vec<Value>),
}

/// What a primitive comes to.
enum Outcome {
    Value(Value),
    /// `promise(executor)`: call the executor in the calling task; the call
    /// evaluates to the future, and a throw fails it.
    Executor {
        executor: Value,
        future: F,
        args: Vec<Value>,
    },
}

/// What `run_unit` does after an `await`.
enum Next {
    /// Resume the unit with this.
    Resume(ResumeWith),
    /// Run it again (a call was pushed into it).
    Run,
    /// It waits: its run is over.
    Park,
}

/// How a unit's run ended.
enum Ended {
    Done,
    Threw(Thrown),
    Settled,
    Parked,
    Limit(Thrown),
}

/// Where `asyncio.run` is.
enum Stage {
    /// `run_until_complete(main)`.
    Main,
    /// Shutdown: `run_until_complete(gather(*to_cancel))`.
    CancelAll { to_cancel: Vec<F> },
    /// The two trivial shutdown coroutines; `left` still to run after this.
    Trivial { left: u8 },
}

pub struct Asyncio {
    config: RunConfig,
    clock: Clock,
    ready: ReadyQueue,
    timers: Timers<Job>,
    /// Timers added so far (the next timer's id is one more).
    timers_added: u64,
    task_count: u64,
    /// Callbacks of the current `_run_once` iteration still to run.
    iteration_left: usize,
    stopping: bool,
    stage: Stage,
    main_task: Option<F>,
    fatal: Option<i32>,
    /// Live gathering futures, by address, for `_GatheringFuture.cancel`.
    gathers: HashMap<usize, Rc<GatherState>, crate::value::FastHash>,
    /// The future each unit completes when it ends (its task's, or a
    /// callback's derived future). Also the list of pending tasks: a task
    /// is pending exactly while its unit has not ended, and its unit's
    /// entry is taken when it ends (CPython keeps a WeakSet of all tasks;
    /// a list of every task beside this table cost 8 B a task and kept
    /// done ones alive).
    unit_futures: Vec<Option<F>>,
    /// Executor calls pushed into units (mark = index + 1).
    executors: Vec<Option<F>>,
    free_marks: Vec<u32>,
    events: EventLog,
    chooser: Box<dyn Chooser>,
    /// A session (the REPL): entries keep coming, so running out of work
    /// is idleness, and a runaway is reported without ending the program.
    session: bool,
    /// The last REPL entry's future (its task's, or its callback's result).
    entry: Option<F>,
    /// Ctrl-C in a session (none in a program run).
    interrupt: super::Interrupt,
    prelude: Prelude,
    /// The unit running now (for `current_task()`).
    current: Option<UnitId>,
    /// The loop is closed: tasks are being destroyed.
    closed: bool,
    /// Last, so it is dropped after the queues: the program's globals.
    globals: Globals,
}

fn gather_key(future: &F) -> usize {
    Hc::as_ptr(future) as usize
}

/// A CancelledError; `cancel(msg)`'s message is its `message`.
fn cancelled_error(msg: Option<Rc<str>>) -> Thrown {
    match msg {
        None => Thrown::new(Value::uncatchable_error("CancelledError")),
        Some(message) => Thrown::new(Value::Error(Rc::new(ErrorValue {
            kind: Rc::from("CancelledError"),
            message,
            errors: Value::Nil,
            cancellation: true,
        }))),
    }
}

/// What a cancelled future raises when awaited or asked for its result.
fn cancel_error_of(p: &Future) -> Thrown {
    p.cancel_error().unwrap_or_else(|| cancelled_error(None))
}

/// Delays may be negative under asyncio (`call_later(-5, f)` is due 5 ms
/// ago, before a 0 ms timer set earlier); timers are kept this far above
/// the clock so a due time in the past is still a plain number.
const TIMER_BASE: u64 = 1 << 50;

/// A delay in ns, negative allowed (clamped far in the past).
fn delay_ns(value: &Value, what: &str) -> Result<i64, Thrown> {
    let negative = match value {
        Value::Int(n) => *n < 0,
        Value::Float(x) => x.is_finite() && *x < 0.0,
        _ => false,
    };
    if negative {
        let ms = match value {
            Value::Int(n) => *n as f64,
            Value::Float(x) => *x,
            _ => 0.0,
        };
        return Ok(((ms * 1_000_000.0).round() as i64).max(-(TIMER_BASE as i64) / 2));
    }
    Ok(duration_ns(value, what)? as i64)
}

impl Asyncio {
    pub fn new(config: RunConfig, library: super::Library) -> Asyncio {
        Asyncio {
            clock: Clock::new(config.instruction_cost_ns),
            events: EventLog::new(config.record_events),
            config,
            ready: ReadyQueue::default(),
            timers: Timers::default(),
            timers_added: 0,
            task_count: 0,
            iteration_left: 0,
            stopping: false,
            stage: Stage::Main,
            main_task: None,
            fatal: None,
            gathers: HashMap::default(),
            unit_futures: Vec::new(),
            executors: Vec::new(),
            free_marks: Vec::new(),
            chooser: Box::new(FirstCandidate),
            session: false,
            entry: None,
            interrupt: super::Interrupt::default(),
            prelude: Prelude { library },
            current: None,
            closed: false,
            globals: Globals::default(),
        }
    }

    /// Adds a timer whose job knows its own id (to find it in the ready
    /// queue when it is cancelled there). Ids are the heap's, in sequence.
    fn add_timer(&mut self, due: u64, make: impl FnOnce(u64) -> Job) -> u64 {
        let id = self.timers_added + 1;
        let got = self.timers.add(due, make(id));
        debug_assert_eq!(got, id, "timer ids are sequential");
        self.timers_added = got;
        got
    }

    /// The heap time of a timer `delay` ns from now (may be in the past).
    fn due(&self, delay: i64) -> u64 {
        (TIMER_BASE + self.clock.now_ns()).saturating_add_signed(delay)
    }

    fn record(&mut self, unit: Option<UnitId>, kind: impl FnOnce() -> EventKind) {
        self.events.record(self.clock.now_ns(), unit, kind);
    }

    fn set_future(&mut self, unit: UnitId, future: Option<F>) {
        let i = unit as usize;
        if self.unit_futures.len() <= i {
            self.unit_futures.resize(i + 1, None);
        }
        self.unit_futures[i] = future;
    }

    fn future_of(&self, unit: UnitId) -> Option<F> {
        self.unit_futures.get(unit as usize)?.clone()
    }

    fn take_future(&mut self, unit: UnitId) -> Option<F> {
        let future = self.unit_futures.get_mut(unit as usize)?.take();
        // The last unit's entry: the empty ones before it go too, and the
        // table's room once it holds a quarter of it or less (a million
        // tasks ended: 8 MB less when `gather` builds its list of results).
        if unit as usize + 1 == self.unit_futures.len() {
            while self.unit_futures.last().is_some_and(Option::is_none) {
                self.unit_futures.pop();
            }
            let (len, cap) = (self.unit_futures.len(), self.unit_futures.capacity());
            if cap > 1024 && len <= cap / 4 {
                self.unit_futures.shrink_to(len * 2);
            }
        }
        future
    }

    /// `loop.create_task(coro)`.
    fn create_task(&mut self, vm: &mut Vm, coroutine: &Coroutine) -> Result<F, Thrown> {
        super::memory_check()?;
        let body = coroutine.take_body();
        let (closure, args) = match body {
            Some(Body::Call(closure, args)) => (closure, args),
            Some(body @ Body::Sleep(..)) => {
                // A coroutine of the policy's own (`sleep`): the task runs
                // a one-line coroutine that awaits it.
                let inner = Hc::new(Coroutine {
                    name: coroutine.name.clone(),
                    body: RefCell::new(Some(body)),
                    quiet: true,
                });
                (self.prelude.closure("run"), vec![Value::from(inner)])
            }
            None => {
                return Err(Thrown::error(
                    "RuntimeError",
                    "cannot reuse already awaited coroutine",
                ));
            }
        };
        Ok(self.start_task(vm, coroutine.name.clone(), closure, args))
    }

    /// The task of `create_task(closure(args))`, queued to start.
    // PERF: a task costs ~5,600 x86 instructions in all (`sleeping_tasks`
    // with 100,000 tasks: 562 M), much of the time in cache misses on its
    // future and unit, touched at its start, its sleep, its wake-up, its
    // end and by `gather`, each time cold (a million of them between). A
    // fiber with its first frame inline, and fewer trips through each task,
    // are what would bring 1M spawns under 0.5 s.
    fn start_task(
        &mut self,
        vm: &mut Vm,
        name: Rc<str>,
        closure: Rc<Closure>,
        args: Vec<Value>,
    ) -> F {
        self.task_count += 1;
        let unit = vm.new_unit(closure, args);
        let task = Future::new_task(unit, &name, self.task_count);
        self.set_future(unit, Some(task.clone()));
        self.record(Some(unit), || EventKind::Created { name });
        self.ready.push_start(unit);
        task
    }

    /// `fut.set_result` / `set_exception` / `cancel`: settle and schedule
    /// callbacks. `None` cancels.
    fn complete(&mut self, p: &F, outcome: Option<Result<Value, Thrown>>) {
        if !p.is_pending() {
            return;
        }
        p.loud.set(true);
        let (state, outcome) = match outcome {
            Some(Ok(v)) => (State::Fulfilled(v.clone()), Ok(v)),
            Some(Err(t)) => (State::Rejected(t.clone()), Err(t)),
            None => {
                p.cancelled.set(true);
                let error = cancel_error_of(p);
                (State::Rejected(error.clone()), Err(error))
            }
        };
        if matches!(state, State::Rejected(_)) {
            // Paired in `Future::drop` (`loud` and rejected).
            count_reporters(1);
        }
        for callback in p.core.settle(state) {
            self.schedule_callback(callback, outcome.clone());
        }
    }

    /// Completes a future with a unit's result (a cancellation cancels it).
    fn settle(&mut self, p: &F, result: Result<Value, Thrown>) {
        match result {
            Err(t) if t.is_uncatchable() => {
                p.rare().cancel_error = Some(t);
                self.complete(p, None)
            }
            other => self.complete(p, Some(other)),
        }
    }

    fn schedule_callback(&mut self, callback: Callback, outcome: Result<Value, Thrown>) {
        // A gather's child callback reads the child's outcome when it runs.
        let callback = match callback {
            Callback::Gather(state, index) => return self.ready.push(Ready::Gather(state, index)),
            callback => callback.into_full(),
        };
        if let Some(live) = &callback.live
            && !live.get()
        {
            return;
        }
        let handler = match callback.on_rejected {
            Some(on_rejected) if outcome.is_err() => *on_rejected,
            _ => callback.on_fulfilled,
        };
        self.ready.push_back(Job::Callback {
            handler,
            derived: callback.derived,
            outcome,
        });
    }

    /// The outcome of awaiting a done future (marks its exception retrieved).
    fn result_of(p: &F) -> Result<Value, Thrown> {
        p.handled.set(true);
        match p.state() {
            FState::Finished(v) => Ok(v),
            FState::Failed(t) => Err(t),
            FState::Cancelled => Err(cancel_error_of(p)),
            FState::Pending => Ok(Value::Nil),
        }
    }

    /// `add_done_callback(handler)`, removable: clearing the flag it
    /// returns is `remove_done_callback`.
    fn add_removable(&mut self, p: &F, handler: Handler) -> Rc<Cell<bool>> {
        let live = Rc::new(Cell::new(true));
        self.add_callback(p, handler.clone(), handler, None, Some(live.clone()));
        live
    }

    /// `add_done_callback` (and `.then`).
    fn then(&mut self, p: &F, on_fulfilled: Handler, on_rejected: Handler, derived: Option<F>) {
        self.add_callback(p, on_fulfilled, on_rejected, derived, None);
    }

    fn add_callback(
        &mut self,
        p: &F,
        on_fulfilled: Handler,
        on_rejected: Handler,
        derived: Option<F>,
        live: Option<Rc<Cell<bool>>>,
    ) {
        // A real rejection handler retrieves the exception when it runs.
        if matches!(
            on_rejected,
            Handler::Call(_)
                | Handler::Finally(_)
                | Handler::Resume(_)
                | Handler::GatherChild(..)
                | Handler::ShieldInner(_)
        ) {
            p.handled.set(true);
        }
        let on_rejected = (!on_rejected.same_as(&on_fulfilled)).then(|| Box::new(on_rejected));
        let callback = Callback::new(FullCallback {
            on_fulfilled,
            on_rejected,
            derived,
            live,
        });
        // Pending, the common case: no copy of the state to look at it.
        if !p.cancelled.get() && p.is_pending() {
            p.core.add_reaction(callback);
            return;
        }
        match p.state() {
            FState::Pending => p.core.add_reaction(callback),
            FState::Finished(v) => self.schedule_callback(callback, Ok(v)),
            FState::Failed(t) => {
                p.handled.set(true);
                self.schedule_callback(callback, Err(t))
            }
            FState::Cancelled => self.schedule_callback(callback, Err(cancel_error_of(p))),
        }
    }

    /// `fut.cancel(msg)` for any future: a task, a gathering future (which
    /// cancels its children, as `_GatheringFuture.cancel` does), or a plain
    /// future. Returns whether anything was cancelled.
    fn cancel_future(&mut self, future: &F, msg: Option<Rc<str>>) -> bool {
        if !future.is_pending() {
            return false;
        }
        if future.is_task() {
            return self.cancel_task(future, msg);
        }
        if let Some(state) = self.gathers.get(&gather_key(future)).cloned() {
            let mut cancelled_any = false;
            for child in &state.children {
                cancelled_any |= self.cancel_future(child, msg.clone());
            }
            if cancelled_any {
                state.cancel_requested.set(true);
            }
            return cancelled_any;
        }
        let mut rare = future.rare();
        rare.cancel_error = Some(cancelled_error(msg.clone()));
        rare.cancel_message = msg;
        drop(rare);
        self.complete(future, None);
        true
    }

    /// `Task.cancel(msg)`: cancel what the task waits on; if that cannot be
    /// cancelled, the task's next step raises CancelledError.
    fn cancel_task(&mut self, task: &F, msg: Option<Rc<str>>) -> bool {
        if !task.is_pending() {
            return false;
        }
        let Some(info) = task.task.as_ref() else {
            return self.cancel_future(task, msg);
        };
        info.set_cancels(info.cancels().saturating_add(1));
        if let Some(timer) = info.sleep_timer.take().map(std::num::NonZeroU64::get) {
            // Cancelling the sleep's future schedules the wake-up, which
            // raises CancelledError at the task's `await`; its timer does
            // nothing any more, even if already moved to the ready queue.
            self.cancel_timer(timer);
            self.ready.push_back(Job::Resume {
                unit: info.unit,
                with: ResumeWith::Throw(cancelled_error(msg)),
            });
            return true;
        }
        // The waiter stays recorded: a task that ignores the cancellation
        // may have to be cancelled again.
        let waiter = info.waiting_on();
        if let Some(waiter) = waiter
            && self.cancel_future(&waiter, msg.clone())
        {
            return true;
        }
        info.set_flag(MUST_CANCEL, true);
        task.set_task_cancel_msg(msg);
        true
    }

    /// `TimerHandle.cancel()`: the timer never runs, also when it is already
    /// in the ready queue (`_run_once` skips a cancelled handle).
    fn cancel_timer(&mut self, id: u64) {
        self.timers.cancel(id);
        // A fired timer's job is queued at the start of an iteration, so it
        // is among the jobs that iteration has left; the jobs queued since
        // carry no timer (scanning them all made cancelling many sleeping
        // tasks quadratic).
        let left = self.iteration_left;
        self.ready.skip_first_where(left, |job| match job {
            Job::Call { timer, .. } => *timer == Some(id),
            Job::WakeTask { timer, .. } => *timer == id,
            Job::Release { timer, .. } => *timer == Some(id),
            Job::OnTimeout { timer, .. } => *timer == Some(id),
            Job::AsCompletedTimeout { timer, .. } => *timer == id,
            _ => false,
        });
    }

    // ---- running ----

    /// Runs a ready queue entry: a task's start, step or wake-up (nearly
    /// every job of a program with many tasks) at once, any other through
    /// `run_job` (the 64-byte `Job` a step's entry would be rebuilt into
    /// and matched again cost a `sleep(0)` step ~5 % of its instructions).
    fn run_entry(&mut self, vm: &mut Vm, entry: Ready) {
        let uncaught = match entry {
            Ready::Starts { first, .. } => {
                self.current = None;
                self.task_step(vm, first, ResumeWith::Start)
            }
            Ready::Step(unit) => {
                self.current = None;
                self.task_step(vm, unit, ResumeWith::Value(Value::Nil))
            }
            Ready::Wake(unit, _) => {
                self.current = None;
                self.wake_task(vm, unit, Value::Nil);
                None
            }
            entry => return self.run_job(vm, entry.into_job()),
        };
        if let Some(thrown) = uncaught {
            self.report_job_error(vm, thrown);
        }
    }

    /// A sleeping task's timer fired: schedule its wake-up.
    fn wake_task(&mut self, vm: &Vm, unit: UnitId, value: Value) {
        if vm.is_alive(unit)
            && let Some(Some(task)) = self.unit_futures.get(unit as usize)
            && let Some(info) = &task.task
        {
            info.sleep_timer.set(None);
        }
        self.ready.push_resume(unit, value);
    }

    fn run_job(&mut self, vm: &mut Vm, job: Job) {
        // No task runs until a unit does (`current_task()` from a callback).
        self.current = None;
        let uncaught = match job {
            Job::Callback {
                handler,
                derived,
                outcome,
            } => self.run_callback(vm, handler, derived, outcome),
            Job::Call { function, args, .. } => self.invoke(vm, &function, args, None),
            Job::Release { waiter, .. } => {
                self.complete(&waiter, Some(Ok(Value::Nil)));
                None
            }
            Job::Skip => None,
            Job::AsCompletedTimeout { state, .. } => {
                state.timer.set(None);
                let todo = std::mem::take(&mut *state.todo.borrow_mut());
                for (_, live) in todo {
                    live.set(false);
                    let _ = self.queue_put_nowait(&state.done, Value::Nil);
                }
                None
            }
            Job::OnTimeout { state, .. } => {
                // `Timeout._on_timeout`: cancel the task, mark it expiring.
                state.scheduled.set(false);
                state.timer.set(None);
                self.cancel_task(&state.task, None);
                state.state.set(TimeoutStage::Expiring);
                None
            }
            Job::Resume { unit, with } => self.task_step(vm, unit, with),
            Job::Settle { future, value } => {
                self.complete(&future, Some(Ok(value)));
                None
            }
            Job::WakeTask { unit, value, .. } => {
                self.wake_task(vm, unit, value);
                None
            }
        };
        if let Some(thrown) = uncaught {
            self.report_job_error(vm, thrown);
        }
    }

    /// A job ended with an error nothing caught.
    fn report_job_error(&mut self, vm: &mut Vm, thrown: Thrown) {
        if super::is_stop(&thrown) {
            report_uncaught(vm, &thrown, "stopped", self.config.color);
            if !self.session {
                self.fatal = Some(super::stop_status(&thrown));
            }
            return;
        }
        report_uncaught(vm, &thrown, "Exception in callback", self.config.color);
    }

    /// `Task.__step`: run the task's unit with what it receives.
    fn task_step(&mut self, vm: &mut Vm, unit: UnitId, mut with: ResumeWith) -> Option<Thrown> {
        if !vm.is_alive(unit) {
            return None;
        }
        if let Some(task) = self
            .unit_futures
            .get(unit as usize)
            .and_then(Option::as_ref)
            && let Some(info) = &task.task
        {
            info.waiting_on.take();
            if info.take_flag(MUST_CANCEL) {
                let is_cancellation = matches!(&with, ResumeWith::Throw(t) if t.is_uncatchable());
                if !is_cancellation {
                    let msg = task.task_cancel_msg();
                    with = ResumeWith::Throw(cancelled_error(msg));
                }
            }
            // An internal `except CancelledError:` gets the error as a value.
            if info.take_flag(GUARDED)
                && let ResumeWith::Throw(t) = &with
                && t.is_uncatchable()
            {
                with = ResumeWith::Value(t.value.clone());
            }
        }
        self.record(Some(unit), || EventKind::Resumed);
        vm.resume(unit, with);
        match self.run_unit(vm, unit) {
            Ended::Threw(t) | Ended::Limit(t) => Some(t),
            _ => None,
        }
    }

    /// Runs one unit until it awaits something pending or ends: the
    /// policy's own loop over the VM's halts.
    fn run_unit(&mut self, vm: &mut Vm, unit: UnitId) -> Ended {
        loop {
            self.current = Some(unit);
            let stop = vm.run(unit, &mut self.globals, super::slice(vm));
            self.clock.charge_steps(stop.steps);
            self.record(Some(unit), || EventKind::Ran { steps: stop.steps });
            let with = match stop.halt {
                Halt::Finished(value) => {
                    self.record(Some(unit), || EventKind::Finished);
                    if let Some(p) = self.take_future(unit) {
                        // A task that cancelled itself and returned ends
                        // cancelled (`super().cancel(msg=...)`).
                        if let Some(info) = &p.task
                            && info.take_flag(MUST_CANCEL)
                        {
                            let msg = p.task_cancel_msg();
                            let mut rare = p.rare();
                            rare.cancel_error = Some(cancelled_error(msg.clone()));
                            rare.cancel_message = msg;
                            drop(rare);
                            self.complete(&p, None);
                        } else {
                            self.settle(&p, Ok(value));
                        }
                    }
                    return Ended::Done;
                }
                Halt::Threw(thrown) => {
                    self.record(Some(unit), || EventKind::Finished);
                    return match self.take_future(unit) {
                        Some(p) => {
                            self.settle(&p, Err(thrown));
                            Ended::Settled
                        }
                        None => Ended::Threw(thrown),
                    };
                }
                Halt::Await(value) => {
                    let awaited = self.await_value(unit, value);
                    match self.after_await(vm, unit, awaited) {
                        Next::Resume(with) => with,
                        Next::Run => continue,
                        Next::Park => return Ended::Parked,
                    }
                }
                // `await f()`: the coroutine is awaited as soon as it is
                // made, so it is run inline at once (one stop, not two).
                Halt::CallAsync { closure, args } if vm.skip_await(unit) => {
                    self.clock.charge_steps(1);
                    match self.after_await(vm, unit, Ok(Awaited::Inline(closure, args))) {
                        Next::Resume(with) => with,
                        Next::Run => continue,
                        Next::Park => return Ended::Parked,
                    }
                }
                Halt::CallAsync { closure, args } => {
                    let name = closure.function.name.clone();
                    ResumeWith::Value(Value::from(coroutine(name, Body::Call(closure, args))))
                }
                // `await sleep(d)`: the sleep is awaited as soon as it is
                // made, so no coroutine object is made (one stop, not two).
                // PERF: a `sleep(0)` step is now ~1,325 x86 instructions
                // (`sleep0_steps`), more than half of them in `Vm::run` (the
                // halt, the argument vector the VM collects, the fiber moved
                // out and back). `run_unit`'s prologue is ~35 of them (LLVM
                // hoists the loop's address arithmetic out of it): handling
                // the other halts out of line saved them for `sleep(0)` but
                // cost `sleeping_tasks` and `spawn_gather` ~1 % each (tried,
                // not kept).
                Halt::Primitive { primitive, args }
                    if matches!(
                        primitive.downcast_ref::<Primitive>(),
                        Some(Primitive { op: Op::Sleep, .. })
                    ) =>
                {
                    // `await sleep(0)`, the commonest (`sleep0_steps`): one
                    // yield, as `await_sleep` makes it, without converting
                    // the delay to ms and back.
                    if let [Value::Int(0)] = args[..]
                        && vm.skip_await(unit)
                    {
                        self.clock.charge_steps(1);
                        self.ready.push_resume(unit, Value::Nil);
                        self.record(Some(unit), || EventKind::Suspended);
                        return Ended::Parked;
                    }
                    let slept = match Self::sleep_args(&args) {
                        Ok((ms, result)) if vm.skip_await(unit) => {
                            self.clock.charge_steps(1);
                            let awaited = self.await_sleep(unit, ms, result);
                            match self.after_await(vm, unit, awaited) {
                                Next::Resume(with) => Ok(with),
                                Next::Run => continue,
                                Next::Park => return Ended::Parked,
                            }
                        }
                        Ok((ms, result)) => Err(Value::from(coroutine(
                            Rc::from("sleep"),
                            Body::Sleep(ms, result),
                        ))),
                        Err(thrown) => Ok(ResumeWith::Raise(thrown)),
                    };
                    match slept {
                        Ok(with) => with,
                        Err(coroutine) => ResumeWith::Value(coroutine),
                    }
                }
                Halt::Spawn { callee, args } => match self.spawn(vm, callee, args) {
                    Ok(v) => ResumeWith::Value(v),
                    Err(thrown) => ResumeWith::Raise(thrown),
                },
                Halt::Primitive { primitive, args } => match self.call_handle(vm, &primitive, args)
                {
                    Err(thrown) if super::is_stop(&thrown) => {
                        return Ended::Limit(super::locate(vm, Some(unit), thrown));
                    }
                    Ok(Outcome::Value(v)) => ResumeWith::Value(v),
                    Ok(Outcome::Executor {
                        executor,
                        future,
                        args,
                    }) => match self.call_executor(vm, unit, executor, future, args) {
                        Some(with) => with,
                        None => continue,
                    },
                    Err(thrown) => ResumeWith::Raise(thrown),
                },
                Halt::Method {
                    receiver,
                    name,
                    args,
                } => match self.method(vm, &receiver, &name, &args) {
                    Ok(v) => ResumeWith::Value(v),
                    Err(thrown) => ResumeWith::Raise(thrown),
                },
                Halt::Returned { mark, value } => match self.take_mark(mark) {
                    Some(future) => ResumeWith::Value(Value::from(future)),
                    None => ResumeWith::Value(value),
                },
                Halt::Unwound { mark, thrown } => match self.take_mark(mark) {
                    Some(future) => {
                        self.settle(&future, Err(thrown));
                        ResumeWith::Value(Value::from(future))
                    }
                    None => ResumeWith::Throw(thrown),
                },
                Halt::Preempted => match self.interrupt.raised() {
                    Some(thrown) => ResumeWith::Raise(thrown),
                    None => match super::check(vm, Some(unit), &self.config, self.clock.now_ns()) {
                        super::Check::Go => continue,
                        super::Check::Raise(thrown) => ResumeWith::Raise(thrown),
                        super::Check::Stop(thrown) => return Ended::Limit(thrown),
                    },
                },
                Halt::StepLimit(at) => return Ended::Limit(step_limit_error(vm, at)),
            };
            let with = self.check_closed(with);
            vm.resume(unit, with);
        }
    }

    /// After the loop closed (a destroyed task's `finally` runs), whatever
    /// tried to schedule something (`call_soon` by `set_result`, a timer, a
    /// task) raised CPython's "Event loop is closed"; the state it changed
    /// stays changed, as in CPython.
    fn check_closed(&mut self, with: ResumeWith) -> ResumeWith {
        if !self.closed || (self.ready.is_empty() && self.timers.is_empty()) {
            return with;
        }
        self.ready.clear();
        self.timers.clear();
        ResumeWith::Raise(Thrown::error("RuntimeError", "Event loop is closed"))
    }

    fn take_mark(&mut self, mark: u32) -> Option<F> {
        let future = self.executors.get_mut(mark as usize - 1)?.take();
        self.free_marks.push(mark);
        future
    }

    /// Runs a promise executor in `unit`; `None` when it was pushed as a
    /// frame (the unit runs it next), else what the unit receives now.
    fn call_executor(
        &mut self,
        vm: &mut Vm,
        unit: UnitId,
        executor: Value,
        future: F,
        args: Vec<Value>,
    ) -> Option<ResumeWith> {
        match executor {
            Value::Closure(c) if c.function.is_async => {
                let name = c.function.name.clone();
                Some(ResumeWith::Value(Value::from(coroutine(
                    name,
                    Body::Call(c, args),
                ))))
            }
            Value::Closure(c) => {
                let mark = match self.free_marks.pop() {
                    Some(mark) => {
                        self.executors[mark as usize - 1] = Some(future);
                        mark
                    }
                    None => {
                        self.executors.push(Some(future));
                        self.executors.len() as u32
                    }
                };
                match vm.push_call(unit, c, args, mark) {
                    Ok(()) => None,
                    Err(thrown) => {
                        self.take_mark(mark);
                        Some(ResumeWith::Raise(thrown))
                    }
                }
            }
            other => Some(match self.call_now(vm, &other, args) {
                Ok(v) => ResumeWith::Value(v.unwrap_or(Value::Nil)),
                Err(thrown) => ResumeWith::Raise(thrown),
            }),
        }
    }

    /// What `run_unit` does once it knows what an `await` comes to.
    fn after_await(&mut self, vm: &mut Vm, unit: UnitId, awaited: Result<Awaited, Thrown>) -> Next {
        match awaited {
            Ok(Awaited::Ready(v)) => Next::Resume(ResumeWith::Value(v)),
            Ok(Awaited::Suspend) => {
                self.record(Some(unit), || EventKind::Suspended);
                Next::Park
            }
            Ok(Awaited::Inline(closure, args)) => match vm.push_call(unit, closure, args, 0) {
                Ok(()) => Next::Run,
                Err(thrown) => Next::Resume(ResumeWith::Raise(thrown)),
            },
            Err(thrown) => Next::Resume(ResumeWith::Raise(thrown)),
        }
    }

    /// `sleep(delay, result)`'s arguments: the delay in ms (as the
    /// coroutine keeps it) and the result.
    fn sleep_args(args: &[Value]) -> Result<(f64, Value), Thrown> {
        let ns = match args.first() {
            // `sleep(0)`, the commonest (`sleep0_steps`).
            Some(Value::Int(0)) => 0,
            Some(delay) => delay_ns(delay, "sleep()")?,
            None => delay_ns(&Value::Nil, "sleep()")?,
        };
        let result = match args.get(1) {
            Some(v) => v.clone(),
            None => Value::Nil,
        };
        Ok((ns as f64 / 1_000_000.0, result))
    }

    /// `await sleep(ms, result)` in `unit`.
    fn await_sleep(&mut self, unit: UnitId, ms: f64, result: Value) -> Result<Awaited, Thrown> {
        if ms <= 0.0 {
            // `yield` once: the task's next step is a plain call_soon.
            self.ready.push_resume(unit, result);
            return Ok(Awaited::Suspend);
        }
        let task = self
            .unit_futures
            .get(unit as usize)
            .and_then(Option::as_ref);
        let Some((task, info)) = task.and_then(|t| Some((t, t.task.as_ref()?))) else {
            return Err(Thrown::error(
                "TypeError",
                "await of sleep() outside a task",
            ));
        };
        if info.take_flag(MUST_CANCEL) {
            // The sleep's future is cancelled as soon as it is
            // awaited: the task wakes with CancelledError.
            let msg = task.task_cancel_msg();
            self.ready.push_back(Job::Resume {
                unit,
                with: ResumeWith::Throw(cancelled_error(msg)),
            });
            return Ok(Awaited::Suspend);
        }
        super::memory_check()?;
        let due = self.due(duration_ns(&Value::Float(ms), "sleep()")? as i64);
        let timer = self.add_timer(due, |timer| Job::WakeTask {
            unit,
            timer,
            value: result,
        });
        if let Some(info) = self.unit_futures[unit as usize]
            .as_ref()
            .and_then(|t| t.task.as_ref())
        {
            info.sleep_timer.set(std::num::NonZeroU64::new(timer));
        }
        Ok(Awaited::Suspend)
    }

    /// What `await value` means in `unit`.
    fn await_value(&mut self, unit: UnitId, value: Value) -> Result<Awaited, Thrown> {
        let task = self.future_of(unit).filter(|t| t.is_task());
        let info = task.as_ref().and_then(|t| t.task.as_ref());
        if let Some(c) = handle_of::<Coroutine>(&value) {
            return match c.take_body() {
                Some(Body::Call(closure, args)) => Ok(Awaited::Inline(closure, args)),
                Some(Body::Sleep(ms, result)) => self.await_sleep(unit, ms, result),
                None => Err(Thrown::error(
                    "RuntimeError",
                    "cannot reuse already awaited coroutine",
                )),
            };
        }
        let guarded = handle_of::<Guard>(&value);
        let future = match &guarded {
            Some(guard) => Some(guard.0.clone()),
            None => handle_of::<Future>(&value),
        };
        if let Some(p) = future {
            if let Some(t) = &task
                && Hc::ptr_eq(t, &p)
            {
                // `Task.__step` throws this in at the next step.
                let mut repr = String::new();
                t.describe(&mut repr, &mut |out, v| {
                    out.push_str(&v.repr(Flavor::Python))
                });
                self.ready.push_back(Job::Resume {
                    unit,
                    with: ResumeWith::Throw(Thrown::error(
                        "RuntimeError",
                        &format!("Task cannot await on itself: {repr}"),
                    )),
                });
                return Ok(Awaited::Suspend);
            }
            if !p.is_pending() {
                return match Self::result_of(&p) {
                    Err(t) if guarded.is_some() && t.is_uncatchable() => {
                        Ok(Awaited::Ready(t.value))
                    }
                    other => other.map(Awaited::Ready),
                };
            }
            let Some(info) = info else {
                return Err(Thrown::error(
                    "TypeError",
                    "await of a pending future outside a task",
                ));
            };
            info.waiting_on.set(Some(p.clone()));
            info.set_flag(GUARDED, guarded.is_some());
            self.then(&p, Handler::Resume(unit), Handler::Resume(unit), None);
            // Awaiting marks the exception as retrieved once it is delivered.
            p.handled.set(true);
            if info.flag(MUST_CANCEL) {
                let msg = task.as_ref().and_then(|t| t.task_cancel_msg());
                if self.cancel_future(&p, msg) {
                    info.set_flag(MUST_CANCEL, false);
                }
            }
            return Ok(Awaited::Suspend);
        }
        let type_name = match &value {
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Nil => "NoneType",
            Value::Bool(_) => "bool",
            Value::List(_) => "list",
            Value::Map(_) => "dict",
            v => v.type_name(),
        };
        Err(Thrown::error(
            "TypeError",
            &format!("object {type_name} can't be used in 'await' expression"),
        ))
    }

    /// `spawn f(args)`: `create_task(f(args))`.
    fn spawn(&mut self, vm: &mut Vm, callee: Value, args: Vec<Value>) -> Result<Value, Thrown> {
        // `spawn q.get()`: the method makes a coroutine.
        if let Value::Native(n) = &callee
            && let Some((h, name)) = handle_method(n)
        {
            let v = self.method(vm, &h, &name, &args)?;
            return self.spawn_coroutine(vm, v);
        }
        match callee {
            Value::Closure(c) if c.function.is_async => {
                // `create_task(f(args))` without making the coroutine object
                // only to take its body at once (`spawn_gather`).
                super::memory_check()?;
                let name = c.function.name.clone();
                Ok(Value::from(self.start_task(vm, name, c, args)))
            }
            // `spawn sleep(d)`: the primitive makes a coroutine.
            Value::Handle(h) if downcast::<Primitive>(&h).is_some() => {
                match self.call_handle(vm, &h, args)? {
                    Outcome::Value(v) => self.spawn_coroutine(vm, v),
                    Outcome::Executor { future, .. } => {
                        self.spawn_coroutine(vm, Value::from(future))
                    }
                }
            }
            other => Err(Thrown::error(
                "TypeError",
                &format!(
                    "a coroutine was expected, got {}: under asyncio, spawn (create_task) needs an async fn",
                    other.a_type()
                ),
            )),
        }
    }

    fn spawn_coroutine(&mut self, vm: &mut Vm, v: Value) -> Result<Value, Thrown> {
        if handle_of::<Coroutine>(&v).is_some() {
            return Ok(Value::from(self.ensure_future(vm, &v, "spawn")?));
        }
        Err(Thrown::error(
            "TypeError",
            &format!(
                "a coroutine was expected, got {}: under asyncio, spawn (create_task) needs a coroutine",
                v.a_type()
            ),
        ))
    }

    /// Calls a built-in or primitive outside any task (from the ready
    /// queue). `None` when the call needs a task (a promise executor).
    fn call_now(
        &mut self,
        vm: &mut Vm,
        function: &Value,
        args: Vec<Value>,
    ) -> Result<Option<Value>, Thrown> {
        match function {
            // A policy object's method (`set_timeout(q.put_nowait, 0, x)`).
            Value::Native(native) => match handle_method(native) {
                Some((h, name)) => self.method(vm, &h, &name, &args).map(Some),
                None => vm.call_native(native, args).map(Some),
            },
            Value::Handle(h) => match self.call_handle(vm, h, args)? {
                Outcome::Value(v) => Ok(Some(v)),
                Outcome::Executor { .. } => Ok(None),
            },
            other => Err(Thrown::error(
                "TypeError",
                &format!("cannot call {} as a callback", other.a_type()),
            )),
        }
    }

    /// Calls `function(args)` from the ready queue; its result completes
    /// `derived` (if any). Returns an uncaught error, if any.
    fn invoke(
        &mut self,
        vm: &mut Vm,
        function: &Value,
        args: Vec<Value>,
        derived: Option<F>,
    ) -> Option<Thrown> {
        let result = match function {
            Value::Closure(closure) if !closure.function.is_async => {
                let unit = vm.new_unit(closure.clone(), args);
                let name = closure.function.name.clone();
                self.record(Some(unit), || EventKind::Created { name });
                let has_future = derived.is_some();
                self.set_future(unit, derived);
                return match self.run_unit(vm, unit) {
                    Ended::Threw(t) if !has_future => Some(t),
                    Ended::Limit(t) => Some(t),
                    _ => None,
                };
            }
            Value::Closure(closure) => {
                let name = closure.function.name.clone();
                Ok(Some(Value::from(coroutine(
                    name,
                    Body::Call(closure.clone(), args),
                ))))
            }
            other => self.call_now(vm, other, args),
        };
        match (result, derived) {
            (Ok(Some(v)), Some(d)) => {
                self.settle(&d, Ok(v));
                None
            }
            (Ok(_), _) => None,
            (Err(t), Some(d)) => {
                self.settle(&d, Err(t));
                None
            }
            (Err(t), None) => Some(t),
        }
    }

    fn run_callback(
        &mut self,
        vm: &mut Vm,
        handler: Handler,
        derived: Option<F>,
        outcome: Result<Value, Thrown>,
    ) -> Option<Thrown> {
        match handler {
            Handler::Pass => {
                if let Some(d) = derived {
                    self.settle(&d, outcome);
                }
                None
            }
            Handler::Call(function) => {
                let arg = match outcome {
                    Ok(v) => v,
                    Err(t) => t.value,
                };
                self.invoke(vm, &function, vec![arg], derived)
            }
            Handler::Finally(function) => {
                // Futures do not adopt: run the handler, then pass the
                // original outcome on at once (or the handler's error).
                let outcome = match function
                    .is_callable()
                    .then(|| self.invoke(vm, &function, Vec::new(), None))
                    .flatten()
                {
                    Some(thrown) => Err(thrown),
                    None => outcome,
                };
                if let Some(d) = derived {
                    self.settle(&d, outcome);
                }
                None
            }
            Handler::Resume(unit) => {
                let with = match outcome {
                    Ok(v) => ResumeWith::Value(v),
                    Err(t) => ResumeWith::Throw(t),
                };
                self.task_step(vm, unit, with)
            }
            Handler::GatherChild(state, index) => {
                self.gather_child_done(&state, index);
                None
            }
            Handler::StopLoop => {
                self.stopping = true;
                None
            }
            Handler::Release(waiter) => {
                self.complete(&waiter, Some(Ok(Value::Nil)));
                None
            }
            Handler::ShieldInner(outer) => {
                if outer.cancelled.get() {
                    return None;
                }
                match outcome {
                    Err(t) if t.is_uncatchable() => self.complete(&outer, None),
                    other => self.complete(&outer, Some(other)),
                }
                None
            }
            Handler::ShieldOuter(inner, live) => {
                if inner.is_pending() {
                    live.set(false);
                }
                None
            }
            Handler::DoneCallback(function, future) => {
                self.invoke(vm, &function, vec![Value::from(future)], None)
            }
            Handler::Wait(state, future) => {
                let left = state.counter.get().saturating_sub(1);
                state.counter.set(left);
                let failed = matches!(&outcome, Err(t) if !t.is_uncatchable());
                // `f.exception()` is asked (so retrieved) only here.
                if left > 0 && state.mode == WaitMode::FirstException && !future.cancelled.get() {
                    future.handled.set(true);
                }
                if left == 0
                    || state.mode == WaitMode::FirstCompleted
                    || (state.mode == WaitMode::FirstException && failed)
                {
                    if let Some(timer) = state.timer.take() {
                        self.cancel_timer(timer);
                    }
                    self.complete(&state.waiter, Some(Ok(Value::Nil)));
                }
                None
            }
            Handler::GroupTaskDone(group, task) => {
                self.group_task_done(vm, &group, &task);
                None
            }
            Handler::AsCompleted(state, future) => {
                // `_on_completion`.
                if state.todo.borrow().is_empty() {
                    return None;
                }
                state
                    .todo
                    .borrow_mut()
                    .retain(|(f, _)| !Hc::ptr_eq(f, &future));
                let _ = self.queue_put_nowait(&state.done, Value::from(future));
                if state.todo.borrow().is_empty()
                    && let Some(timer) = state.timer.take()
                {
                    self.cancel_timer(timer);
                }
                None
            }
        }
    }

    /// `gather`'s `_done_callback`.
    fn gather_child_done(&mut self, state: &GatherState, index: usize) {
        let child = &state.children[index];
        state.finished.set(state.finished.get() + 1);
        if !state.outer.is_pending() {
            child.handled.set(true);
            return;
        }
        let all_done = state.finished.get() == state.children.len();
        // A child that failed or was cancelled ends the gather (unless
        // `return_exceptions`); its result is not copied to find that out.
        let failed = if state.return_exceptions {
            None
        } else if child.cancelled.get() {
            Some(Err(cancel_error_of(child)))
        } else {
            child
                .core
                .with(|s| match s {
                    State::Rejected(t) => Some(t.clone()),
                    _ => None,
                })
                .map(|t| {
                    child.handled.set(true);
                    Err(t)
                })
        };
        let outcome = match failed {
            Some(failed) => Some(failed),
            _ if all_done && state.cancel_requested.get() => Some(Err(cancel_error_of(child))),
            _ if all_done => {
                let results = state
                    .children
                    .iter()
                    .map(|c| {
                        c.handled.set(true);
                        match c.state() {
                            FState::Finished(v) => v,
                            FState::Failed(t) => t.value,
                            _ => cancelled_error(c.cancel_message()).value,
                        }
                    })
                    .collect();
                Some(Ok(Value::list(results)))
            }
            _ => None,
        };
        if let Some(outcome) = outcome {
            self.gathers.remove(&gather_key(&state.outer));
            self.complete(&state.outer, Some(outcome));
        }
    }

    fn gather(
        &mut self,
        vm: &mut Vm,
        items: Vec<Value>,
        return_exceptions: bool,
    ) -> Result<F, Thrown> {
        let mut children = Vec::with_capacity(items.len());
        for item in items {
            let child = if let Some(c) = handle_of::<Coroutine>(&item) {
                self.create_task(vm, &c)?
            } else if let Some(f) = handle_of::<Future>(&item) {
                f
            } else {
                return Err(Thrown::error(
                    "TypeError",
                    &format!(
                        "An asyncio.Future, a coroutine or an awaitable is required (gather got {})",
                        item.a_type()
                    ),
                ));
            };
            children.push(child);
        }
        let outer = Future::new();
        if children.is_empty() {
            self.complete(&outer, Some(Ok(Value::list(Vec::new()))));
            return Ok(outer);
        }
        let state = Rc::new(GatherState {
            children,
            outer: outer.clone(),
            finished: Cell::new(0),
            return_exceptions,
            cancel_requested: Cell::new(false),
        });
        self.gathers.insert(gather_key(&outer), state.clone());
        for (index, child) in state.children.iter().enumerate() {
            let handler = Handler::GatherChild(state.clone(), index);
            self.then(child, handler.clone(), handler, None);
        }
        Ok(outer)
    }

    /// A future's methods: `then`, `catch`, `finally`, `cancel`, `done`,
    /// `cancelled`, `result`.
    fn method(
        &mut self,
        vm: &mut Vm,
        receiver: &HandleRef,
        name: &str,
        args: &[Value],
    ) -> Result<Value, Thrown> {
        let this = Value::Handle(receiver.clone());
        if let Some(q) = downcast::<AsyncQueue>(receiver) {
            return self.queue_method(&q, this, name, args);
        }
        if let Some(e) = downcast::<AsyncEvent>(receiver) {
            return self.event_method(&e, this, name, args);
        }
        if let Some(l) = downcast::<AsyncLock>(receiver) {
            return self.lock_method(&l, this, name, args);
        }
        if let Some(s) = downcast::<AsyncSemaphore>(receiver) {
            return self.semaphore_method(&s, this, name, args);
        }
        if let Some(g) = downcast::<TaskGroup>(receiver) {
            return self.group_method(vm, &g, name, args);
        }
        if downcast::<Loop>(receiver).is_some() {
            return self.loop_method(vm, name, args);
        }
        let Some(p) = downcast::<Future>(receiver) else {
            return Err(Thrown::error(
                "TypeError",
                &format!("{} has no method `{name}`", receiver.a_type()),
            ));
        };
        let handler = |v: Option<&Value>| match v {
            Some(f) if f.is_callable() => Handler::Call(f.clone()),
            _ => Handler::Pass,
        };
        let chained = match name {
            "then" => Some((handler(args.first()), handler(args.get(1)))),
            "catch" => Some((Handler::Pass, handler(args.first()))),
            "finally" => {
                let f = args.first().cloned().unwrap_or(Value::Nil);
                Some((Handler::Finally(f.clone()), Handler::Finally(f)))
            }
            _ => None,
        };
        if let Some((on_fulfilled, on_rejected)) = chained {
            super::memory_check()?;
            let derived = Future::new();
            self.then(&p, on_fulfilled, on_rejected, Some(derived.clone()));
            return Ok(Value::from(derived));
        }
        Ok(match name {
            "cancel" => {
                let msg = match args.first() {
                    None | Some(Value::Nil) => None,
                    Some(Value::Str(s)) => Some(Rc::from(s.as_str())),
                    Some(other) => Some(Rc::from(other.display(Flavor::Python).as_str())),
                };
                Value::Bool(self.cancel_future(&p, msg))
            }
            "cancelling" | "uncancel" => {
                let Some(info) = &p.task else {
                    return Err(Thrown::error(
                        "TypeError",
                        &format!("a future has no method `{name}` (a task has)"),
                    ));
                };
                let n = info.cancels();
                if name == "uncancel" && n > 0 {
                    info.set_cancels(n - 1);
                }
                Value::Int(info.cancels() as i64)
            }
            "add_done_callback" => {
                let f = args.first().cloned().unwrap_or(Value::Nil);
                if !f.is_callable() {
                    return Err(Thrown::error(
                        "TypeError",
                        "add_done_callback needs a function to call",
                    ));
                }
                let live = self.add_removable(&p, Handler::DoneCallback(f.clone(), p.clone()));
                p.rare().done_callbacks.push((f, live));
                Value::Nil
            }
            "remove_done_callback" => {
                let f = args.first().cloned().unwrap_or(Value::Nil);
                let mut removed = 0;
                if let Some(rare) = p.rare.get() {
                    rare.borrow_mut().done_callbacks.retain(|(g, live)| {
                        if same(g, &f) {
                            removed += i64::from(live.replace(false));
                            false
                        } else {
                            true
                        }
                    });
                }
                Value::Int(removed)
            }
            "done" => Value::Bool(!p.is_pending()),
            "cancelled" => Value::Bool(matches!(p.state(), FState::Cancelled)),
            "result" => match p.state() {
                FState::Pending => {
                    return Err(Thrown::error("InvalidStateError", "Result is not set."));
                }
                _ => Self::result_of(&p)?,
            },
            _ => {
                return Err(Thrown::error(
                    "TypeError",
                    &format!(
                        "{} has no method `{name}` (it has then, catch, finally, cancel, done, cancelled, result, add_done_callback, remove_done_callback{})",
                        receiver.a_type(),
                        if p.is_task() {
                            ", cancelling, uncancel"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        })
    }

    /// Calls one of this policy's primitives.
    fn call_handle(
        &mut self,
        vm: &mut Vm,
        callee: &HandleRef,
        args: Vec<Value>,
    ) -> Result<Outcome, Thrown> {
        let Some(prim) = downcast::<Primitive>(callee) else {
            return Err(Thrown::error(
                "TypeError",
                &format!("cannot call {}", callee.a_type()),
            ));
        };
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
        let value = match &prim.op {
            Op::Sleep => {
                let (ms, result) = Self::sleep_args(&args)?;
                Value::from(coroutine(Rc::from("sleep"), Body::Sleep(ms, result)))
            }
            Op::Work => {
                let ns = duration_ns(&arg(0), "work()")?;
                self.clock.charge(ns);
                let now = self.clock.now_ns();
                if super::past_time_limit(&self.config, now) {
                    return Err(super::time_limit_error(&self.config, now));
                }
                // `--real-time`: `work(d)` takes d of wall time, and
                // Ctrl-C meanwhile stops the run there.
                super::pace(vm, &self.config, now);
                if let Some(stop) = super::interrupt_check(vm, None, now) {
                    return Err(stop);
                }
                Value::Nil
            }
            Op::Now => Value::Int((self.clock.now_ns() / 1_000_000) as i64),
            Op::SetTimeout => {
                let function = arg(0);
                if !function.is_callable() {
                    return Err(Thrown::error(
                        "TypeError",
                        "set_timeout (call_later) needs a function to call",
                    ));
                }
                super::memory_check()?;
                let due = self.due(delay_ns(&arg(1), "set_timeout()")?);
                let extra = args.get(2..).map(|a| a.to_vec()).unwrap_or_default();
                Value::Int(self.add_timer(due, |id| Job::Call {
                    function,
                    args: extra,
                    timer: Some(id),
                }) as i64)
            }
            Op::ClearTimeout => {
                if let Value::Int(id) = arg(0)
                    && id > 0
                {
                    self.cancel_timer(id as u64);
                }
                Value::Nil
            }
            Op::QueueMicrotask => {
                let function = arg(0);
                if !function.is_callable() {
                    return Err(Thrown::error(
                        "TypeError",
                        "queue_microtask (call_soon) needs a function",
                    ));
                }
                super::memory_check()?;
                self.ready.push_back(Job::Call {
                    function,
                    args: args.get(1..).map(|a| a.to_vec()).unwrap_or_default(),
                    timer: None,
                });
                Value::Nil
            }
            Op::NextTick => {
                return Err(Thrown::error(
                    "TypeError",
                    "next_tick is Node's process.nextTick; asyncio has no nextTick queue (use queue_microtask, which is call_soon here)",
                ));
            }
            Op::NewPromise => {
                let executor = arg(0);
                if !executor.is_callable() {
                    return Err(Thrown::error(
                        "TypeError",
                        "promise() needs an executor function: promise(fn(resolve, reject) { … })",
                    ));
                }
                let future = Future::new();
                let done = Rc::new(Cell::new(false));
                let make = |reject| {
                    primitive(
                        "resolver",
                        Op::Resolver {
                            future: future.clone(),
                            reject,
                            done: done.clone(),
                        },
                    )
                };
                let args = vec![make(false), make(true)];
                return Ok(Outcome::Executor {
                    executor,
                    future,
                    args,
                });
            }
            Op::PromiseResolve => match handle_of::<Future>(&arg(0)) {
                Some(p) => Value::from(p),
                None => Value::from(Future::with(State::Fulfilled(arg(0)), None)),
            },
            Op::PromiseReject => {
                let future = Future::new();
                self.complete(&future, Some(Err(Thrown::new(arg(0)))));
                Value::from(future)
            }
            Op::PromiseAll => match arg(0) {
                Value::List(items) => {
                    let items = items.borrow().clone();
                    Value::from(self.gather(vm, items, false)?)
                }
                other => {
                    return Err(Thrown::error(
                        "TypeError",
                        &format!("Promise.all needs a list, not {}", other.a_type()),
                    ));
                }
            },
            Op::Gather => Value::from(self.gather(vm, args, false)?),
            Op::NodeOnly(message) => return Err(Thrown::error("TypeError", message)),
            Op::GatherSettled => Value::from(self.gather(vm, args, true)?),
            Op::WaitFor => {
                awaitable(&arg(0), "wait_for")?;
                let timeout = match arg(1) {
                    Value::Nil => Value::Nil,
                    d => Value::Float(delay_ns(&d, "wait_for()")? as f64 / 1_000_000.0),
                };
                self.prelude.coroutine(
                    "wait_for",
                    "wait_for",
                    vec![Value::from(Hc::new(Loop)), arg(0), timeout],
                )
            }
            Op::Wait => self.wait_primitive(&args)?,
            Op::TaskGroup => {
                if !arg(0).is_callable() {
                    return Err(Thrown::error(
                        "TypeError",
                        "task_group(body) needs a function to run: task_group(async fn(g) { g.create_task(…); })",
                    ));
                }
                let rt = Value::from(Hc::new(Loop));
                self.prelude
                    .coroutine("task_group", "task_group", vec![rt, arg(0)])
            }
            Op::WithTimeout => {
                if !arg(1).is_callable() {
                    return Err(Thrown::error(
                        "TypeError",
                        "with_timeout(d, body) needs a function to run: with_timeout(d, async fn() { … })",
                    ));
                }
                if !matches!(arg(0), Value::Nil) {
                    delay_ns(&arg(0), "with_timeout()")?;
                }
                let rt = Value::from(Hc::new(Loop));
                self.prelude
                    .coroutine("with_timeout", "with_timeout", vec![rt, arg(0), arg(1)])
            }
            Op::AsCompleted => self.as_completed(vm, &arg(0), &arg(1))?,
            Op::Shield => Value::from(self.shield(vm, &arg(0))?),
            Op::CurrentTask if self.closed => {
                return Err(Thrown::error("RuntimeError", "no running event loop"));
            }
            Op::CurrentTask => match self.current.and_then(|u| self.future_of(u)) {
                Some(task) if task.is_task() => Value::from(task),
                _ => Value::Nil,
            },
            Op::NewQueue => {
                let maxsize = match arg(0) {
                    Value::Nil => 0,
                    Value::Int(n) => n,
                    other => {
                        return Err(Thrown::error(
                            "TypeError",
                            &format!("queue(maxsize) needs an int, not {}", other.a_type()),
                        ));
                    }
                };
                Value::from(Hc::new(AsyncQueue {
                    items: RefCell::new(VecDeque::new()),
                    maxsize,
                    getters: RefCell::new(VecDeque::new()),
                    putters: RefCell::new(VecDeque::new()),
                    unfinished: Cell::new(0),
                    finished: new_event(true),
                }))
            }
            Op::NewEvent => Value::from(new_event(false)),
            Op::NewLock => Value::from(Hc::new(AsyncLock {
                locked: Cell::new(false),
                waiters: RefCell::new(VecDeque::new()),
            })),
            Op::NewSemaphore => {
                let value = match arg(0) {
                    Value::Nil => 1,
                    Value::Int(n) if n >= 0 => n,
                    Value::Int(_) => {
                        return Err(Thrown::error(
                            "ValueError",
                            "Semaphore initial value must be >= 0",
                        ));
                    }
                    other => {
                        return Err(Thrown::error(
                            "TypeError",
                            &format!("semaphore(value) needs an int, not {}", other.a_type()),
                        ));
                    }
                };
                Value::from(Hc::new(AsyncSemaphore {
                    value: Cell::new(value),
                    waiters: RefCell::new(VecDeque::new()),
                }))
            }
            Op::NoCounterpart => {
                return Err(Thrown::error(
                    "TypeError",
                    &format!(
                        "Promise.{} has no asyncio counterpart in looplab (asyncio offers gather, wait and as_completed)",
                        prim.name
                    ),
                ));
            }
            Op::Resolver {
                future,
                reject,
                done,
            } => {
                if !done.replace(true) {
                    let outcome = if *reject {
                        Err(Thrown::new(arg(0)))
                    } else {
                        Ok(arg(0))
                    };
                    self.complete(future, Some(outcome));
                }
                Value::Nil
            }
        };
        Ok(Outcome::Value(value))
    }

    // ---- the loop ----

    /// `loop.run_until_complete(fut)` begins: stop when `fut` is done.
    fn run_until(&mut self, fut: &F) {
        self.then(fut, Handler::StopLoop, Handler::StopLoop, None);
        self.stopping = false;
    }

    /// Starts a `_run_once` iteration: sleep until the first timer if
    /// nothing is ready, then move every due timer to the ready queue.
    /// Returns false when nothing can ever run.
    fn start_iteration(&mut self, vm: &mut Vm) -> bool {
        if self.ready.is_empty() {
            let Some(when) = self.timers.next_due() else {
                return false;
            };
            let when = when.saturating_sub(TIMER_BASE);
            if when > self.clock.now_ns() {
                let wake = when.saturating_add(self.config.wake_latency_ns);
                if super::past_time_limit(&self.config, wake) {
                    let thrown =
                        super::locate(vm, None, super::time_limit_error(&self.config, wake));
                    report_uncaught(vm, &thrown, "stopped", self.config.color);
                    self.fatal = Some(1);
                    return true;
                }
                super::pace(vm, &self.config, wake);
                self.clock.advance_to(wake);
                self.record(None, || EventKind::Idle { to_ns: wake });
            }
        }
        let now = self.clock.now_ns();
        while let Some((_, job)) = self.timers.pop_due(now + TIMER_BASE) {
            self.record(None, || EventKind::TimerDue);
            self.ready.push_back(job);
        }
        self.iteration_left = self.ready.len();
        // The queue gives back its room once mostly empty (a million tasks
        // started, now asleep: `sleeping_tasks` peaked with it held).
        self.ready.shrink();
        true
    }

    fn report_deadlock(&mut self, vm: &mut Vm) {
        let mut lines = String::from(
            "error: deadlock: nothing is ready, no timer is pending, and the main coroutine has not finished\n",
        );
        for task in self.pending_tasks() {
            if let Some(info) = &task.task {
                let waits = match &info.waiting_on() {
                    Some(w) => match &w.task {
                        Some(t) => format!("task `{}`", t.name()),
                        None => "a future that nothing will complete".to_string(),
                    },
                    None => "nothing (suspended)".to_string(),
                };
                lines.push_str(&format!(
                    "  task `{}` (Task-{}) waits for {waits}\n",
                    info.name(),
                    task.number()
                ));
            }
        }
        vm.eprint(&lines);
        self.fatal = Some(1);
    }

    /// Tasks not done yet, in creation order: the tasks of the units that
    /// have not ended (units are reused, so their order is not creation's).
    fn pending_tasks(&self) -> Vec<F> {
        let mut tasks: Vec<F> = self
            .unit_futures
            .iter()
            .flatten()
            .filter(|t| t.is_task() && t.is_pending())
            .cloned()
            .collect();
        tasks.sort_by_key(|t| t.number());
        tasks
    }

    /// The future `run_until_complete` waited for is done: go on to the
    /// next stage of `asyncio.run` (`Runner.close` and friends).
    fn next_stage(&mut self, vm: &mut Vm) -> Step {
        let stage = std::mem::replace(&mut self.stage, Stage::Main);
        match stage {
            Stage::Main => self.cancel_remaining(vm),
            Stage::CancelAll { to_cancel } => {
                for task in &to_cancel {
                    if let FState::Failed(t) = task.state() {
                        task.handled.set(true);
                        report_uncaught(
                            vm,
                            &t,
                            "unhandled exception during asyncio.run() shutdown",
                            self.config.color,
                        );
                    }
                }
                self.trivial_coroutine(2)
            }
            Stage::Trivial { left: 0 } => Step::Finished(self.close(vm)),
            Stage::Trivial { left } => self.trivial_coroutine(left),
        }
    }

    /// `asyncio.runners._cancel_all_tasks`.
    fn cancel_remaining(&mut self, vm: &mut Vm) -> Step {
        // (A deque: the chooser's usual pick, the first, is taken at once.)
        let mut pending = std::collections::VecDeque::from(self.pending_tasks());
        if pending.is_empty() {
            return self.trivial_coroutine(2);
        }
        vm.eprint(&format!(
            "note: asyncio.run() is cancelling {} task(s) still pending when main returned\n",
            pending.len()
        ));
        let mut to_cancel = Vec::with_capacity(pending.len());
        while !pending.is_empty() {
            let pick = self
                .chooser
                .choose(ChoicePoint::CancelAtShutdown, pending.len())
                .min(pending.len() - 1);
            to_cancel.extend(pending.remove(pick));
        }
        for task in &to_cancel {
            self.cancel_task(task, None);
        }
        let items = to_cancel.iter().map(|t| Value::from(t.clone())).collect();
        match self.gather(vm, items, true) {
            Ok(all) => {
                self.run_until(&all);
                self.stage = Stage::CancelAll { to_cancel };
                Step::Ran
            }
            Err(_) => Step::Finished(self.close(vm)),
        }
    }

    /// `shutdown_asyncgens()` / `shutdown_default_executor()`: a coroutine
    /// that returns at once, run to completion (two iterations).
    fn trivial_coroutine(&mut self, left: u8) -> Step {
        let trivial = Future::new();
        self.ready.push_back(Job::Settle {
            future: trivial.clone(),
            value: Value::Nil,
        });
        self.run_until(&trivial);
        self.stage = Stage::Trivial { left: left - 1 };
        Step::Ran
    }

    /// The loop closes; the exit status is the main task's.
    fn close(&mut self, vm: &mut Vm) -> i32 {
        let (callbacks, timers) = (self.ready.len(), self.timers.len());
        if callbacks + timers > 0 {
            vm.eprint(&format!(
                "note: the event loop closed with {callbacks} callback(s) queued and {timers} timer(s) pending; they never run\n"
            ));
        }
        self.ready.clear();
        self.timers.clear();
        self.destroy_pending_tasks(vm);
        let status = match self.fatal {
            Some(status) => status,
            None => self.main_status(vm),
        };
        self.fatal = Some(status);
        status
    }

    fn main_status(&mut self, vm: &mut Vm) -> i32 {
        let Some(main) = self.main_task.clone() else {
            return 1;
        };
        main.handled.set(true);
        match main.state() {
            FState::Failed(t) => {
                report_uncaught(vm, &t, "uncaught exception in main", self.config.color);
                1
            }
            FState::Cancelled => {
                vm.eprint(
                    "error: the main task was cancelled (asyncio.exceptions.CancelledError)\n",
                );
                1
            }
            _ => 0,
        }
    }

    /// Tasks still pending when the loop closes (created during shutdown)
    /// are collected: CPython logs "Task was destroyed but it is pending!"
    /// and closing the coroutine raises GeneratorExit at its `await`, so its
    /// `finally` blocks run (and print) then. In creation order.
    fn destroy_pending_tasks(&mut self, vm: &mut Vm) {
        self.closed = true;
        for task in self.pending_tasks() {
            let Some(info) = &task.task else { continue };
            vm.eprint(&format!(
                "Task was destroyed but it is pending!\ntask: <Task pending name='Task-{}' coro=<{}()>>\n",
                task.number(),
                info.name()
            ));
            if !vm.is_alive(info.unit) {
                continue;
            }
            vm.resume(
                info.unit,
                ResumeWith::Throw(Thrown::new(Value::uncatchable_error("GeneratorExit"))),
            );
            // A `finally` that awaits again is abandoned, as CPython does
            // ("coroutine ignored GeneratorExit").
            let _ = self.run_unit(vm, info.unit);
            // Closing a coroutine leaves its task pending: whatever its end
            // scheduled never happens.
            self.ready.clear();
            self.timers.clear();
        }
    }
}

/// An argument that must be a future (the prelude's own calls).
fn future_arg(args: &[Value], i: usize, what: &str) -> Result<F, Thrown> {
    args.get(i)
        .and_then(handle_of::<Future>)
        .ok_or_else(|| Thrown::error("TypeError", &format!("{what} needs a future")))
}

fn no_method(kind: &str, name: &str, has: &str) -> Thrown {
    Thrown::error(
        "TypeError",
        &format!(
            "{} {kind} has no method `{name}` (it has {has})",
            if kind.starts_with('e') { "an" } else { "a" }
        ),
    )
}

/// Wakes the first waiter not done yet (`Queue._wakeup_next`).
impl Asyncio {
    fn wakeup_next(&mut self, waiters: &RefCell<VecDeque<F>>) {
        loop {
            let Some(waiter) = waiters.borrow_mut().pop_front() else {
                return;
            };
            if waiter.is_pending() {
                self.complete(&waiter, Some(Ok(Value::Nil)));
                return;
            }
        }
    }

    fn queue_put_nowait(&mut self, q: &AsyncQueue, item: Value) -> Result<Value, Thrown> {
        if q.full() {
            return Err(Thrown::error("QueueFull", ""));
        }
        q.items.borrow_mut().push_back(item);
        q.unfinished.set(q.unfinished.get() + 1);
        q.finished.value.set(false);
        self.wakeup_next(&q.getters);
        Ok(Value::Nil)
    }

    fn queue_method(
        &mut self,
        q: &Hc<AsyncQueue>,
        this: Value,
        name: &str,
        args: &[Value],
    ) -> Result<Value, Thrown> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
        Ok(match name {
            "put" => self
                .prelude
                .coroutine("Queue.put", "put", vec![this, arg(0)]),
            "get" => self.prelude.coroutine("Queue.get", "get", vec![this]),
            "join" => self.prelude.coroutine("Queue.join", "join", vec![this]),
            "put_nowait" => self.queue_put_nowait(q, arg(0))?,
            "get_nowait" => {
                let Some(item) = q.items.borrow_mut().pop_front() else {
                    return Err(Thrown::error("QueueEmpty", ""));
                };
                self.wakeup_next(&q.putters);
                item
            }
            "qsize" => Value::Int(q.items.borrow().len() as i64),
            "empty" | "_empty" => Value::Bool(q.items.borrow().is_empty()),
            "full" | "_full" => Value::Bool(q.full()),
            "maxsize" => Value::Int(q.maxsize),
            "task_done" => {
                if q.unfinished.get() <= 0 {
                    return Err(Thrown::error(
                        "ValueError",
                        "task_done() called too many times",
                    ));
                }
                q.unfinished.set(q.unfinished.get() - 1);
                if q.unfinished.get() == 0 {
                    self.event_set(&q.finished);
                }
                Value::Nil
            }
            "_getter" | "_putter" => {
                let waiter = Future::new();
                let list = if name == "_getter" {
                    &q.getters
                } else {
                    &q.putters
                };
                list.borrow_mut().push_back(waiter.clone());
                Value::from(waiter)
            }
            "_getter_failed" | "_putter_failed" => {
                let waiter = future_arg(args, 0, name)?;
                self.cancel_future(&waiter, None);
                let getter = name == "_getter_failed";
                let list = if getter { &q.getters } else { &q.putters };
                list.borrow_mut().retain(|w| !Hc::ptr_eq(w, &waiter));
                let room = if getter {
                    !q.items.borrow().is_empty()
                } else {
                    !q.full()
                };
                if room && !waiter.cancelled.get() {
                    self.wakeup_next(list);
                }
                Value::Nil
            }
            "_unfinished" => Value::Int(q.unfinished.get()),
            "_finished" => Value::from(q.finished.clone()),
            _ => {
                return Err(no_method(
                    "queue",
                    name,
                    "put, get, put_nowait, get_nowait, qsize, empty, full, maxsize, task_done, join",
                ));
            }
        })
    }

    fn event_set(&mut self, e: &AsyncEvent) {
        if !e.value.replace(true) {
            let waiters = e.waiters.borrow().clone();
            for waiter in waiters {
                self.complete(&waiter, Some(Ok(Value::Bool(true))));
            }
        }
    }

    fn event_method(
        &mut self,
        e: &Hc<AsyncEvent>,
        this: Value,
        name: &str,
        args: &[Value],
    ) -> Result<Value, Thrown> {
        Ok(match name {
            "set" => {
                self.event_set(e);
                Value::Nil
            }
            "clear" => {
                e.value.set(false);
                Value::Nil
            }
            "is_set" => Value::Bool(e.value.get()),
            "wait" => self.prelude.coroutine("Event.wait", "wait", vec![this]),
            "_waiter" => {
                let waiter = Future::new();
                e.waiters.borrow_mut().push(waiter.clone());
                Value::from(waiter)
            }
            "_remove" => {
                let waiter = future_arg(args, 0, name)?;
                e.waiters.borrow_mut().retain(|w| !Hc::ptr_eq(w, &waiter));
                Value::Nil
            }
            _ => return Err(no_method("event", name, "set, clear, is_set, wait")),
        })
    }

    fn lock_method(
        &mut self,
        l: &Hc<AsyncLock>,
        this: Value,
        name: &str,
        args: &[Value],
    ) -> Result<Value, Thrown> {
        Ok(match name {
            "acquire" => self
                .prelude
                .coroutine("Lock.acquire", "acquire", vec![this]),
            "release" => {
                if !l.locked.replace(false) {
                    return Err(Thrown::error("RuntimeError", "Lock is not acquired."));
                }
                self.wake_up_first(l);
                Value::Nil
            }
            "locked" => Value::Bool(l.locked.get()),
            "_free" => {
                Value::Bool(!l.locked.get() && l.waiters.borrow().iter().all(|w| w.cancelled.get()))
            }
            "_take" => {
                l.locked.set(true);
                Value::Bool(true)
            }
            "_waiter" => {
                let waiter = Future::new();
                l.waiters.borrow_mut().push_back(waiter.clone());
                Value::from(waiter)
            }
            "_remove" => {
                let waiter = future_arg(args, 0, name)?;
                l.waiters.borrow_mut().retain(|w| !Hc::ptr_eq(w, &waiter));
                Value::Nil
            }
            "_cancelled" => {
                if !l.locked.get() {
                    self.wake_up_first(l);
                }
                Value::Nil
            }
            _ => return Err(no_method("lock", name, "acquire, release, locked")),
        })
    }

    fn wake_up_first(&mut self, l: &AsyncLock) {
        let first = l.waiters.borrow().front().cloned();
        if let Some(fut) = first
            && fut.is_pending()
        {
            self.complete(&fut, Some(Ok(Value::Bool(true))));
        }
    }

    fn wake_up_next(&mut self, s: &AsyncSemaphore) {
        let next = s.waiters.borrow().iter().find(|w| w.is_pending()).cloned();
        if let Some(fut) = next {
            s.value.set(s.value.get() - 1);
            self.complete(&fut, Some(Ok(Value::Bool(true))));
        }
    }

    fn semaphore_method(
        &mut self,
        s: &Hc<AsyncSemaphore>,
        this: Value,
        name: &str,
        args: &[Value],
    ) -> Result<Value, Thrown> {
        Ok(match name {
            "acquire" => {
                self.prelude
                    .coroutine("Semaphore.acquire", "acquire_semaphore", vec![this])
            }
            "release" => {
                s.value.set(s.value.get() + 1);
                self.wake_up_next(s);
                Value::Nil
            }
            "locked" => Value::Bool(s.locked()),
            "_take" => {
                s.value.set(s.value.get() - 1);
                Value::Bool(true)
            }
            "_waiter" => {
                let waiter = Future::new();
                s.waiters.borrow_mut().push_back(waiter.clone());
                Value::from(waiter)
            }
            "_remove" => {
                let waiter = future_arg(args, 0, name)?;
                s.waiters.borrow_mut().retain(|w| !Hc::ptr_eq(w, &waiter));
                Value::Nil
            }
            "_cancelled" => {
                let waiter = future_arg(args, 0, name)?;
                if !waiter.cancelled.get() {
                    s.value.set(s.value.get() + 1);
                    self.wake_up_next(s);
                }
                Value::Nil
            }
            "_acquired" => {
                if s.value.get() > 0 {
                    self.wake_up_next(s);
                }
                Value::Bool(true)
            }
            _ => return Err(no_method("semaphore", name, "acquire, release, locked")),
        })
    }

    /// `ensure_future(aw)`: a coroutine becomes a task; a future is itself.
    fn ensure_future(&mut self, vm: &mut Vm, value: &Value, what: &str) -> Result<F, Thrown> {
        if let Some(c) = handle_of::<Coroutine>(value) {
            return self.create_task(vm, &c);
        }
        if let Some(f) = handle_of::<Future>(value) {
            return Ok(f);
        }
        awaitable(value, what).map(|()| Future::new())
    }

    /// The loop operations the prelude uses (`rt.…`).
    fn loop_method(&mut self, vm: &mut Vm, name: &str, args: &[Value]) -> Result<Value, Thrown> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
        Ok(match name {
            "future" => Value::from(Future::new()),
            "ensure_future" => Value::from(self.ensure_future(vm, &arg(0), "wait_for")?),
            "guard" => Value::from(Hc::new(Guard(future_arg(args, 0, name)?))),
            "is_cancel" => Value::Bool(arg(0).is_uncatchable()),
            "release_later" => {
                let waiter = future_arg(args, 1, name)?;
                let due = self.due(delay_ns(&arg(0), "wait_for()")?);
                let id = self.add_timer(due, |id| Job::Release {
                    waiter,
                    timer: Some(id),
                });
                Value::Int(id as i64)
            }
            "cancel_timer" => {
                if let Value::Int(id) = arg(0) {
                    self.cancel_timer(id as u64);
                }
                Value::Nil
            }
            "release_when_done" => {
                let fut = future_arg(args, 0, name)?;
                let waiter = future_arg(args, 1, name)?;
                let live = self.add_removable(&fut, Handler::Release(waiter));
                Value::from(Hc::new(CallbackToken(live)))
            }
            "remove_done_callback" => {
                if let Some(token) = handle_of::<CallbackToken>(&arg(1)) {
                    token.0.set(false);
                }
                Value::Nil
            }
            "cancel_and_wait" => {
                let rt = Value::from(Hc::new(Loop));
                self.prelude
                    .coroutine("_cancel_and_wait", "cancel_and_wait", vec![rt, arg(0)])
            }
            "result_or_timeout" => {
                let fut = future_arg(args, 0, name)?;
                match Self::result_of(&fut) {
                    Err(t) if t.is_uncatchable() => {
                        return Err(Thrown::error("TimeoutError", ""));
                    }
                    other => other?,
                }
            }
            "wait_start" => self.wait_start(args)?,
            "raise_timeout" => return Err(Thrown::error("TimeoutError", "")),
            "timeout_enter" => self.timeout_enter(&arg(0))?,
            "group_enter" => {
                let Some(parent) = self
                    .current
                    .and_then(|u| self.future_of(u))
                    .filter(|t| t.is_task())
                else {
                    return Err(Thrown::error(
                        "RuntimeError",
                        "TaskGroup <TaskGroup> cannot determine the parent task",
                    ));
                };
                Value::from(Hc::new(TaskGroup {
                    parent,
                    exiting: Cell::new(false),
                    aborting: Cell::new(false),
                    parent_cancel_requested: Cell::new(false),
                    tasks: RefCell::new(Vec::new()),
                    errors: RefCell::new(Vec::new()),
                    on_completed: RefCell::new(None),
                    propagate: RefCell::new(None),
                }))
            }
            "group_exit" => {
                self.prelude
                    .coroutine("TaskGroup.__aexit__", "group_exit", args.to_vec())
            }
            "timeout_exit" => {
                let Some(tm) = handle_of::<TimeoutState>(&arg(0)) else {
                    return Ok(Value::Nil);
                };
                self.cancel_timeout_handler(&tm);
                match tm.state.get() {
                    TimeoutStage::Expiring => {
                        tm.state.set(TimeoutStage::Expired);
                        let mut n = 0;
                        if let Some(info) = &tm.task.task {
                            n = info.cancels().saturating_sub(1);
                            info.set_cancels(n);
                        }
                        if n <= tm.cancelling && matches!(arg(1), Value::Bool(true)) {
                            return Err(Thrown::error("TimeoutError", ""));
                        }
                    }
                    TimeoutStage::Entered => tm.state.set(TimeoutStage::Exited),
                    _ => {}
                }
                Value::Nil
            }
            "wait_end" => {
                if let Some(state) = handle_of::<WaitState>(&arg(0)) {
                    if let Some(timer) = state.timer.take() {
                        self.cancel_timer(timer);
                    }
                    for live in &state.live {
                        live.set(false);
                    }
                }
                Value::Nil
            }
            "wait_split" => {
                let (mut done, mut pending) = (Vec::new(), Vec::new());
                if let Value::List(fs) = arg(0) {
                    for f in fs.borrow().iter() {
                        let is_done = handle_of::<Future>(f).is_some_and(|f| !f.is_pending());
                        if is_done {
                            done.push(f.clone())
                        } else {
                            pending.push(f.clone())
                        }
                    }
                }
                Value::list(vec![Value::list(done), Value::list(pending)])
            }
            _ => return Err(no_method("loop", name, "nothing a program calls")),
        })
    }
}

impl Asyncio {
    /// `asyncio.wait(fs, return_when=mode, timeout=t)`, checked as CPython
    /// checks it; the waiting is the prelude's `wait_futures`.
    fn wait_primitive(&mut self, args: &[Value]) -> Result<Value, Thrown> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
        let items = match arg(0) {
            Value::List(items) => items.borrow().clone(),
            other => {
                return Err(Thrown::error(
                    "TypeError",
                    &format!("expect a list of futures, not {}", other.type_name()),
                ));
            }
        };
        if items.is_empty() {
            return Err(Thrown::error(
                "ValueError",
                "Set of Tasks/Futures is empty.",
            ));
        }
        let mode = match arg(1) {
            Value::Nil => "ALL_COMPLETED".to_string(),
            Value::Str(m)
                if ["FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"]
                    .contains(&m.as_str()) =>
            {
                m.to_string()
            }
            other => {
                return Err(Thrown::error(
                    "ValueError",
                    &format!(
                        "Invalid return_when value: {}",
                        other.display(Flavor::Python)
                    ),
                ));
            }
        };
        let mut fs: Vec<Value> = Vec::new();
        for item in items {
            if handle_of::<Coroutine>(&item).is_some() {
                return Err(Thrown::error(
                    "TypeError",
                    "Passing coroutines is forbidden, use tasks explicitly.",
                ));
            }
            let Some(f) = handle_of::<Future>(&item) else {
                return Err(Thrown::error(
                    "TypeError",
                    &format!("wait() needs tasks or futures, not {}", item.a_type()),
                ));
            };
            // `set(fs)`: each future once.
            if !fs
                .iter()
                .any(|g| handle_of::<Future>(g).is_some_and(|g| Hc::ptr_eq(&g, &f)))
            {
                fs.push(item);
            }
        }
        let timeout = match arg(2) {
            Value::Nil => Value::Nil,
            d => Value::Float(delay_ns(&d, "wait()")? as f64 / 1_000_000.0),
        };
        let rt = Value::from(Hc::new(Loop));
        Ok(self.prelude.coroutine(
            "wait",
            "wait_futures",
            vec![rt, Value::list(fs), Value::str(&mode), timeout],
        ))
    }

    /// `_wait`'s set-up: the timeout and an `_on_completion` per future.
    fn wait_start(&mut self, args: &[Value]) -> Result<Value, Thrown> {
        let fs: Vec<F> = match args.first() {
            Some(Value::List(items)) => items
                .borrow()
                .iter()
                .filter_map(handle_of::<Future>)
                .collect(),
            _ => Vec::new(),
        };
        let waiter = future_arg(args, 1, "wait")?;
        let mode = match args.get(2) {
            Some(Value::Str(m)) if m.as_str() == "FIRST_COMPLETED" => WaitMode::FirstCompleted,
            Some(Value::Str(m)) if m.as_str() == "FIRST_EXCEPTION" => WaitMode::FirstException,
            _ => WaitMode::AllCompleted,
        };
        let live: Vec<Rc<Cell<bool>>> = fs.iter().map(|_| Rc::new(Cell::new(true))).collect();
        let state = Hc::new(WaitState {
            waiter: waiter.clone(),
            counter: Cell::new(fs.len()),
            mode,
            timer: Cell::new(None),
            live: live.clone(),
        });
        if let Some(d) = args.get(3).filter(|d| !matches!(d, Value::Nil)) {
            let due = self.due(delay_ns(d, "wait()")?);
            let timer = self.add_timer(due, |id| Job::Release {
                waiter,
                timer: Some(id),
            });
            state.timer.set(Some(timer));
        }
        for (f, live) in fs.iter().zip(live) {
            let handler = Handler::Wait(state.clone(), f.clone());
            self.add_callback(f, handler.clone(), handler, None, Some(live));
        }
        Ok(Value::from(state))
    }

    /// `as_completed(fs)`: a list of coroutines; the k-th awaited gives the
    /// k-th result to come (CPython yields them one by one).
    fn as_completed(
        &mut self,
        vm: &mut Vm,
        list: &Value,
        timeout: &Value,
    ) -> Result<Value, Thrown> {
        let Value::List(items) = list else {
            return Err(Thrown::error(
                "TypeError",
                &format!("expect an iterable of futures, not {}", list.type_name()),
            ));
        };
        let items = items.borrow().clone();
        let done = Hc::new(AsyncQueue {
            items: RefCell::new(VecDeque::new()),
            maxsize: 0,
            getters: RefCell::new(VecDeque::new()),
            putters: RefCell::new(VecDeque::new()),
            unfinished: Cell::new(0),
            finished: new_event(true),
        });
        let mut todo: Vec<F> = Vec::new();
        for item in &items {
            let f = self.ensure_future(vm, item, "as_completed")?;
            if !todo.iter().any(|g| Hc::ptr_eq(g, &f)) {
                todo.push(f);
            }
        }
        let delay = match timeout {
            Value::Nil => None,
            d => Some(delay_ns(d, "as_completed()")?),
        };
        let state = Rc::new(AsCompletedState {
            done: done.clone(),
            todo: RefCell::new(Vec::new()),
            timer: Cell::new(None),
        });
        for f in &todo {
            let live = Rc::new(Cell::new(true));
            let handler = Handler::AsCompleted(state.clone(), f.clone());
            self.add_callback(f, handler.clone(), handler, None, Some(live.clone()));
            state.todo.borrow_mut().push((f.clone(), live));
        }
        if let Some(delay) = delay
            && !todo.is_empty()
        {
            let due = self.due(delay);
            let handle = state.clone();
            let timer = self.add_timer(due, |timer| Job::AsCompletedTimeout {
                state: handle,
                timer,
            });
            state.timer.set(Some(timer));
        }
        let rt = Value::from(Hc::new(Loop));
        let queue = Value::from(done);
        // CPython's generator makes each `_wait_for_one()` only when the
        // loop asks for it: ones never reached are not "never awaited".
        let coroutines = todo
            .iter()
            .map(|_| {
                Value::from(Hc::new(Coroutine {
                    name: Rc::from("_wait_for_one"),
                    body: RefCell::new(Some(Body::Call(
                        self.prelude.closure("wait_for_one"),
                        vec![rt.clone(), queue.clone()],
                    ))),
                    quiet: true,
                }))
            })
            .collect();
        Ok(Value::list(coroutines))
    }

    /// `shield(aw)`.
    fn shield(&mut self, vm: &mut Vm, aw: &Value) -> Result<F, Thrown> {
        let inner = self.ensure_future(vm, aw, "shield")?;
        if !inner.is_pending() {
            return Ok(inner);
        }
        let outer = Future::new();
        let live = self.add_removable(&inner, Handler::ShieldInner(outer.clone()));
        let on_outer = Handler::ShieldOuter(inner, live);
        self.then(&outer, on_outer.clone(), on_outer, None);
        Ok(outer)
    }
}

impl Asyncio {
    /// `Timeout.__aenter__` and `reschedule(when)`.
    fn timeout_enter(&mut self, delay: &Value) -> Result<Value, Thrown> {
        let Some(task) = self
            .current
            .and_then(|u| self.future_of(u))
            .filter(|t| t.is_task())
        else {
            return Err(Thrown::error(
                "RuntimeError",
                "Timeout should be used inside a task",
            ));
        };
        let cancelling = task.task.as_ref().map_or(0, |i| i.cancels());
        let state = Hc::new(TimeoutState {
            task,
            cancelling,
            state: Cell::new(TimeoutStage::Entered),
            scheduled: Cell::new(false),
            timer: Cell::new(None),
        });
        if !matches!(delay, Value::Nil) {
            let delay = delay_ns(delay, "with_timeout()")?;
            state.scheduled.set(true);
            if delay <= 0 {
                self.ready.push_back(Job::OnTimeout {
                    state: state.clone(),
                    timer: None,
                });
            } else {
                let due = self.due(delay);
                let handle = state.clone();
                let id = self.add_timer(due, |id| Job::OnTimeout {
                    state: handle,
                    timer: Some(id),
                });
                state.timer.set(Some(id));
            }
        }
        Ok(Value::from(state))
    }

    /// `self._timeout_handler.cancel()`.
    fn cancel_timeout_handler(&mut self, tm: &Hc<TimeoutState>) {
        if !tm.scheduled.replace(false) {
            return;
        }
        if let Some(id) = tm.timer.take() {
            self.cancel_timer(id);
            return;
        }
        self.ready
            .skip_where(|job| matches!(job, Job::OnTimeout { state, .. } if Hc::ptr_eq(state, tm)));
    }
}

impl Asyncio {
    /// `TaskGroup._abort`.
    fn group_abort(&mut self, g: &TaskGroup) {
        g.aborting.set(true);
        let tasks = g.tasks.borrow().clone();
        for t in tasks {
            if t.is_pending() {
                self.cancel_task(&t, None);
            }
        }
    }

    /// `TaskGroup._on_task_done`.
    fn group_task_done(&mut self, vm: &mut Vm, g: &TaskGroup, task: &F) {
        g.tasks.borrow_mut().retain(|t| !Hc::ptr_eq(t, task));
        let completed = g.on_completed.borrow().clone();
        if let Some(fut) = completed
            && g.tasks.borrow().is_empty()
        {
            self.complete(&fut, Some(Ok(Value::Bool(true))));
        }
        let FState::Failed(thrown) = task.state() else {
            return;
        };
        task.handled.set(true);
        g.errors.borrow_mut().push(thrown.value.clone());
        if !g.parent.is_pending() {
            report_uncaught(
                vm,
                &thrown,
                "a TaskGroup task has errored out but its parent task is already completed",
                self.config.color,
            );
            return;
        }
        if !g.aborting.get() && !g.parent_cancel_requested.get() {
            self.group_abort(g);
            g.parent_cancel_requested.set(true);
            let parent = g.parent.clone();
            self.cancel_task(&parent, None);
        }
    }

    fn group_method(
        &mut self,
        vm: &mut Vm,
        g: &Hc<TaskGroup>,
        name: &str,
        args: &[Value],
    ) -> Result<Value, Thrown> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
        Ok(match name {
            "create_task" => {
                let mut shown = String::new();
                g.describe(&mut shown, &mut |out, v| {
                    out.push_str(&v.repr(Flavor::Python))
                });
                if g.exiting.get() && g.tasks.borrow().is_empty() {
                    return Err(Thrown::error(
                        "RuntimeError",
                        &format!("TaskGroup {shown} is finished"),
                    ));
                }
                if g.aborting.get() {
                    return Err(Thrown::error(
                        "RuntimeError",
                        &format!("TaskGroup {shown} is shutting down"),
                    ));
                }
                let Some(c) = handle_of::<Coroutine>(&arg(0)) else {
                    return Err(Thrown::error(
                        "TypeError",
                        &format!("a coroutine was expected, got {}", arg(0).a_type()),
                    ));
                };
                let task = self.create_task(vm, &c)?;
                let handler = Handler::GroupTaskDone(g.clone(), task.clone());
                self.then(&task, handler.clone(), handler, None);
                g.tasks.borrow_mut().push(task.clone());
                Value::from(task)
            }
            "_exiting" => {
                g.exiting.set(true);
                let how = arg(0).display(Flavor::Python);
                if how == "cancelled" {
                    *g.propagate.borrow_mut() = Some(cancelled_error(None));
                }
                if g.parent_cancel_requested.get()
                    && let Some(info) = &g.parent.task
                {
                    let n = info.cancels().saturating_sub(1);
                    info.set_cancels(n);
                    if n == 0 {
                        g.propagate.borrow_mut().take();
                    }
                }
                if how != "ok" && !g.aborting.get() {
                    self.group_abort(g);
                }
                Value::Nil
            }
            "_has_tasks" => Value::Bool(!g.tasks.borrow().is_empty()),
            "_completed" => {
                let existing = g.on_completed.borrow().clone();
                let fut = existing.unwrap_or_else(|| {
                    let fut = Future::new();
                    *g.on_completed.borrow_mut() = Some(fut.clone());
                    fut
                });
                Value::from(Hc::new(Guard(fut)))
            }
            "_is_cancel" => Value::Bool(arg(0).is_uncatchable()),
            "_cancelled_while_waiting" => {
                if !g.aborting.get() {
                    *g.propagate.borrow_mut() = Some(Thrown::new(arg(0)));
                    self.group_abort(g);
                }
                Value::Nil
            }
            "_clear_completed" => {
                g.on_completed.borrow_mut().take();
                Value::Nil
            }
            "_finish" => {
                let propagate = g.propagate.borrow_mut().take();
                if let Some(cancel) = propagate
                    && g.errors.borrow().is_empty()
                {
                    return Err(cancel);
                }
                if arg(0).display(Flavor::Python) == "error" {
                    g.errors.borrow_mut().push(arg(1));
                }
                let errors = std::mem::take(&mut *g.errors.borrow_mut());
                if !errors.is_empty() {
                    let n = errors.len();
                    let plural = if n == 1 { "" } else { "s" };
                    return Err(Thrown::new(Value::Error(Rc::new(ErrorValue {
                        kind: Rc::from("ExceptionGroup"),
                        message: Rc::from(format!(
                            "unhandled errors in a TaskGroup ({n} sub-exception{plural})"
                        )),
                        errors: Value::list(errors),
                        cancellation: false,
                    }))));
                }
                Value::Nil
            }
            _ => return Err(no_method("task group", name, "create_task")),
        })
    }
}

impl Policy for Asyncio {
    fn collection_is_silent(&self) -> bool {
        REPORTERS.with(Cell::get) == 0
    }

    fn load(&mut self, vm: &mut Vm, global_names: &[Rc<str>], main: Rc<Closure>) {
        install_globals(&mut self.globals, global_names, global);
        let main = coroutine(Rc::from("main"), Body::Call(main, Vec::new()));
        match self.create_task(vm, &main) {
            Ok(task) => {
                self.run_until(&task);
                self.main_task = Some(task);
            }
            Err(_) => self.fatal = Some(1),
        }
    }

    fn step(&mut self, vm: &mut Vm) -> Step {
        if let Some(status) = self.fatal {
            return Step::Finished(status);
        }
        if self.iteration_left > 0 {
            self.iteration_left -= 1;
            if let Some(entry) = self.ready.pop_entry() {
                self.record(None, || EventKind::Dequeued { queue: "ready" });
                self.run_entry(vm, entry);
            }
            if self.fatal.is_some() {
                self.iteration_left = 0;
            }
            return Step::Ran;
        }
        if self.stopping {
            self.stopping = false;
            return self.next_stage(vm);
        }
        if !self.start_iteration(vm) {
            if self.session {
                return Step::Idle;
            }
            self.report_deadlock(vm);
        }
        Step::Ran
    }

    fn events(&self) -> &EventLog {
        &self.events
    }

    fn config(&self) -> &RunConfig {
        &self.config
    }

    fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    fn clear_globals(&mut self) {
        self.globals.clear();
    }

    // ---- sessions (the REPL) ----

    /// As `python -m asyncio` runs an entry: one with top-level `await`
    /// becomes a task; any other is a callback on the ready queue.
    fn load_entry(&mut self, vm: &mut Vm, global_names: &[Rc<str>], entry: Rc<Closure>) {
        self.session = true;
        install_globals(&mut self.globals, global_names, global);
        let future = if entry.function.is_async {
            let name = entry.function.name.clone();
            match self.create_task(vm, &coroutine(name, Body::Call(entry, Vec::new()))) {
                Ok(task) => task,
                Err(_) => return,
            }
        } else {
            let future = Future::new();
            self.ready.push_back(Job::Callback {
                handler: Handler::Call(Value::Closure(entry)),
                derived: Some(future.clone()),
                outcome: Ok(Value::Nil),
            });
            future
        };
        // Its outcome goes to the REPL, which reports an error itself.
        future.handled.set(true);
        self.entry = Some(future);
    }

    fn take_entry_outcome(&mut self) -> Option<Result<Value, Thrown>> {
        let outcome = match self.entry.as_ref()?.state() {
            FState::Pending => return None,
            FState::Finished(v) => Ok(v),
            FState::Failed(t) => Err(t),
            FState::Cancelled => Err(cancelled_error(None)),
        };
        self.entry = None;
        Some(outcome)
    }

    fn queues(&self, vm: &Vm) -> super::Queues {
        let describe = |job: &Job| describe_job(job, vm);
        let mut ready = Vec::with_capacity(self.ready.len());
        self.ready.for_each(|job| {
            let when = if ready.len() < self.iteration_left {
                "this iteration"
            } else {
                "next iteration"
            };
            ready.push(format!("{} ({when})", describe(job)));
        });
        let mut timers = Vec::new();
        self.timers
            .pending(|due, job| timers.push((due.saturating_sub(TIMER_BASE), describe(job))));
        super::Queues {
            queues: vec![("ready", ready)],
            timers,
        }
    }

    fn globals_mut(&mut self) -> &mut Globals {
        &mut self.globals
    }

    fn events_mut(&mut self) -> &mut EventLog {
        &mut self.events
    }

    fn set_interrupt(&mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        self.interrupt = super::Interrupt::new(flag);
    }

    fn clear_queues(&mut self) {
        self.ready.clear();
        self.timers.clear();
        self.iteration_left = 0;
    }
}

/// One line on what a queued callback will do (the REPL's `:queues`).
fn describe_job(job: &Job, vm: &Vm) -> String {
    let callee = super::describe_callee;
    match job {
        Job::Callback { handler, .. } => match handler {
            Handler::Pass => "done-callback: pass the outcome on".into(),
            Handler::Call(f) => format!("call {}", callee(f)),
            Handler::Finally(f) => format!("call {} (finally)", callee(f)),
            Handler::Resume(unit) => format!("wake task `{}`", vm.unit_name(*unit)),
            Handler::GatherChild(..) => "gather: a child is done".into(),
            Handler::StopLoop => "stop the loop (run_until_complete is done)".into(),
            Handler::Release(_) => "release a waiter (wait_for, wait)".into(),
            Handler::ShieldInner(_) | Handler::ShieldOuter(..) => {
                "shield: pass the outcome on".into()
            }
            Handler::DoneCallback(f, _) => format!("done-callback {}", callee(f)),
            Handler::Wait(..) => "wait: a future is done".into(),
            Handler::GroupTaskDone(..) => "task group: a task is done".into(),
            Handler::AsCompleted(..) => "as_completed: a future is done".into(),
        },
        Job::Call { function, .. } => format!("call {}", callee(function)),
        Job::Resume { unit, .. } => format!("step task `{}`", vm.unit_name(*unit)),
        Job::Settle { .. } => "complete a future".into(),
        Job::WakeTask { unit, .. } => format!("wake `{}` from sleep", vm.unit_name(*unit)),
        Job::Release { .. } => "release a waiter at its deadline (wait_for, wait)".into(),
        Job::OnTimeout { .. } => "a timeout's deadline (with_timeout)".into(),
        Job::AsCompletedTimeout { .. } => "as_completed's deadline".into(),
        Job::Skip => "a cancelled handle (skipped)".into(),
    }
}

#[cfg(test)]
mod sizes {
    use super::*;

    fn start(unit: UnitId) -> Job {
        Job::Resume {
            unit,
            with: ResumeWith::Start,
        }
    }

    /// What a queued job is, as a test compares it.
    fn key(job: &Job) -> String {
        match job {
            Job::Resume {
                unit,
                with: ResumeWith::Start,
            } => format!("start {unit}"),
            Job::Resume { unit, .. } => format!("step {unit}"),
            Job::Skip => "skip".into(),
            _ => "other".into(),
        }
    }

    /// Consecutive units' starts share an entry, and the queue still gives
    /// every job in order, counts each, and skips any one of them.
    #[test]
    fn a_run_of_starts_is_one_entry_and_still_every_job() {
        let mut q = ReadyQueue::default();
        for unit in [3, 4, 5] {
            q.push_back(start(unit));
        }
        q.push_resume(9, Value::Nil);
        for unit in [6, 7, 9] {
            q.push_back(start(unit));
        }
        assert_eq!(q.entries.len(), 4, "3-5, step 9, 6-7, 9");
        assert_eq!(q.len(), 7);
        let mut seen = vec![];
        q.for_each(|job| seen.push(key(job)));
        assert_eq!(
            seen,
            [
                "start 3", "start 4", "start 5", "step 9", "start 6", "start 7", "start 9"
            ]
        );
        // Only among the first five jobs: start 4 is skipped, start 9 is not.
        q.skip_first_where(5, |job| {
            matches!(
                job,
                Job::Resume {
                    unit: 4 | 9,
                    with: ResumeWith::Start
                }
            )
        });
        let mut popped = vec![];
        while let Some(job) = q.pop_front() {
            popped.push(key(&job));
        }
        assert_eq!(
            popped,
            [
                "start 3", "skip", "start 5", "step 9", "start 6", "start 7", "start 9"
            ]
        );
        assert!(q.is_empty());
    }

    /// A task's cancellation count and its two flags share a word without
    /// touching each other; the count saturates.
    #[test]
    fn a_tasks_cancel_state_packs_a_count_and_two_flags() {
        let info = TaskInfo {
            unit: 0,
            cancel_state: Cell::new(0),
            name: names::intern(&Rc::from("t")),
            number: 1,
            waiting_on: Cell::new(None),
            sleep_timer: Cell::new(None),
        };
        info.set_cancels(3);
        info.set_flag(MUST_CANCEL, true);
        assert_eq!(
            (info.cancels(), info.flag(MUST_CANCEL), info.flag(GUARDED)),
            (3, true, false)
        );
        info.set_flag(GUARDED, true);
        assert!(info.take_flag(MUST_CANCEL));
        assert!(!info.take_flag(MUST_CANCEL));
        assert_eq!((info.cancels(), info.flag(GUARDED)), (3, true));
        info.set_cancels(u32::MAX);
        assert_eq!(info.cancels(), CANCELS);
        assert!(info.flag(GUARDED) && !info.flag(MUST_CANCEL));
        info.set_cancels(info.cancels().saturating_add(1));
        assert_eq!(info.cancels(), CANCELS);
        info.set_cancels(0);
        assert_eq!((info.cancels(), info.take_flag(GUARDED)), (0, true));
        assert_eq!(info.cancel_state.get(), 0);
    }

    /// A task keeps its name as an index and its number in 32 bits; equal
    /// names share an index, and a number past 32 bits is kept whole.
    #[test]
    fn a_tasks_name_and_number_come_back_whole() {
        let (a, b): (Rc<str>, Rc<str>) = (Rc::from("worker"), Rc::from("worker"));
        let other: Rc<str> = Rc::from("other");
        assert_eq!(names::intern(&a), names::intern(&b));
        assert_ne!(names::intern(&a), names::intern(&other));
        assert_eq!(&*names::name(names::intern(&other)), "other");
        for number in [1, u64::from(u32::MAX) - 1, u64::from(u32::MAX), 1 << 40] {
            let task = Future::new_task(3, &a, number);
            assert_eq!(task.number(), number);
            let mut text = String::new();
            task.describe(&mut text, &mut |_, _| {});
            assert_eq!(
                text,
                format!("<Task pending name='Task-{number}' coro=<worker()>>")
            );
        }
        assert_eq!(Future::new().number(), 0);
    }

    /// What a sleeping task costs (`programs/bench/sleeping_tasks.lab`):
    /// these records are kept per task, a million at a time.
    #[test]
    fn per_task_records_stay_small() {
        use std::mem::size_of;
        eprintln!(
            "Fiber {} Future {} TaskInfo {} Job {} Ready {} Callback {} Handler {} ResumeWith {}",
            size_of::<crate::vm::Fiber>(),
            size_of::<Future>(),
            size_of::<TaskInfo>(),
            size_of::<Job>(),
            size_of::<Ready>(),
            size_of::<Callback>(),
            size_of::<Handler>(),
            size_of::<ResumeWith>()
        );
        // With its handle header and `Rc` counts: a 112-byte block.
        assert!(size_of::<Future>() <= 88);
        assert!(size_of::<TaskInfo>() <= 32);
        assert!(size_of::<Callback>() <= 16);
        assert!(size_of::<crate::vm::Fiber>() <= 104);
        assert!(size_of::<Ready>() <= 16);
    }
}
