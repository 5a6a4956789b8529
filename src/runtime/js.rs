//! The js policy: Node.js's event loop, as `node file.js` runs a CommonJS
//! script.
//!
//! Invariants, in Node's order:
//! 1. The script is the first macrotask (an `async main` if it awaits).
//! 2. After every macrotask: run the nextTick queue, then the microtask
//!    queue, repeating until both are empty; then process unhandled
//!    rejections (one still unhandled is fatal: report it, exit 1, pending
//!    timers never run).
//! 3. Timers are Node's lists (`timers` below): one FIFO list per whole-ms
//!    duration (`max(1, trunc(delay))`), started at libuv's clock (whole
//!    ms); a timers phase runs every due list to its end before the next,
//!    draining (2) after each callback. An interval goes back to the end of
//!    its list after its callback, counted from just before it.
//!    The loop's phases are libuv's: timers, poll (sleep until the next
//!    timer unless immediates wait), check (the immediates queued before it
//!    began, draining (2) after each), then timers again. At the loop's
//!    start, a script's 0 ms timer runs before its immediates: Node's
//!    startup is taken to cross that millisecond
//!    (`ChoicePoint::StartupCrossesMillisecond` can say otherwise).
//! 4. Promises follow ECMAScript: reactions are microtasks; resolving with a
//!    promise takes a NewPromiseResolveThenableJob (two extra ticks), with
//!    any other thenable (a map with a callable `then`) a job that calls
//!    its `then`; `await v` takes one tick for a native promise or a plain
//!    value. An unhandled rejection is located where it was thrown, or
//!    where `Promise.reject` / `reject` was called.
//! 5. An uncaught exception in any callback ends the process with status 1.
//! 6. With no queued work, no timers and no immediates the process ends,
//!    even with promises still pending (Node exits silently; we add a note
//!    on stderr).
//!
//! How the loop is driven: `step` does one thing — runs one job (the
//! script, a tick, a microtask, a timer callback, an immediate) or moves
//! the clock to the next timer. A job runs a chain of units: an async function called from
//! a unit starts at once in a unit of its own while the caller waits (the
//! chain), until it awaits or ends; then the caller goes on with its
//! promise. Every unit runs with an unbounded slice: nothing preempts
//! JavaScript.

mod timers;

use super::chooser::{ChoicePoint, Chooser, FirstCandidate};
use super::clock::Clock;
use super::events::{EventKind, EventLog};
use super::promise::{Core, Reactions, State};
use super::{
    Policy, PolicyInfo, RunConfig, Step, duration_ns, handle_of, install_globals, report_uncaught,
    step_limit_error,
};
use crate::value::{Closure, Flavor, Handle, Hc, Map, Value};
use crate::vm::{
    Dialect, Globals, Halt, MAX_FRAMES, MissingField, ModuloSign, ResumeWith, RoundHalves, Thrown,
    UnitId, Vm, ZeroDivision,
};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use timers::{Cursor, Next, NodeTimers};

pub const INFO: PolicyInfo = PolicyInfo {
    name: "js",
    about: "Node.js's event loop: nextTick and microtask queues, whole-millisecond timers",
    dialect: &DIALECT,
    library: "",
    make: |config, _| Box::new(Js::new(config)),
};

/// JavaScript's answers: `[]` is true, `1 / 0` is `Infinity`, `-7 % 2` is
/// `-1`, `Math.round(2.5)` is 3, `[1, 2].length` is 2 and `"abc".size` is
/// `undefined`, values print as `console.log` shows them.
pub const DIALECT: Dialect = Dialect {
    style: Flavor::Js,
    empty_containers_truthy: true,
    zero_division: ZeroDivision::Ieee,
    modulo_sign: ModuloSign::Dividend,
    round_halves: RoundHalves::Up,
    missing_field: MissingField::Undefined,
};

const NS_PER_MS: u64 = 1_000_000;
/// Node's TIMEOUT_MAX: longer delays become 1 ms.
const TIMEOUT_MAX_MS: f64 = 2_147_483_647.0;

// ---- promises ----

/// A JavaScript promise: its state and reactions, nothing else (64 B).
///
/// Whether a handler was ever attached (`[[PromiseIsHandled]]`, so a
/// rejection is not "unhandled") needs no field of its own: a pending
/// promise was handled iff it has reactions (only `then` sets the flag,
/// and it adds one); a settled one keeps no reactions, so `then` on a
/// rejected one marks it (`Core::mark_attached`; a fulfilled one's flag
/// is never read). `sleeping_tasks`: an async
/// function's promise 96 → 80 B.
// PERF: `Core` is 64 B here: its borrow flag 8, `State` 32 (a `Thrown`),
// `Reactions` 24 (its `Many(Vec)`). With `Many(Box<Vec<R>>)` it would be
// 16 (a `Reaction` is 16), and with a 16-B `Value` the promise would fit
// a 64-B block with its `Rc` counts, not 80.
pub struct Promise {
    core: Core<Reaction>,
}

type P = Hc<Promise>;

impl Promise {
    fn new() -> P {
        Hc::new(Promise { core: Core::new() })
    }
    fn fulfilled(value: Value) -> P {
        Hc::new(Promise {
            core: Core::with_state(State::Fulfilled(value)),
        })
    }
    /// A handler was attached (`[[PromiseIsHandled]]`).
    fn handled(&self) -> bool {
        self.core.has_reactions()
    }
}

impl Handle for Promise {
    fn type_name(&self) -> &'static str {
        "promise"
    }
    fn describe(&self, out: &mut String, inner: &mut dyn FnMut(&mut String, &Value)) {
        out.push_str("Promise { ");
        match self.core.state() {
            State::Pending => out.push_str("<pending>"),
            State::Fulfilled(v) => inner(out, &v),
            State::Rejected(t) => {
                out.push_str("<rejected> ");
                inner(out, &t.value);
            }
        }
        out.push_str(" }");
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for Promise {
    /// A chain of `then`s (each promise's reaction holds the next) drops
    /// link by link, not by recursion.
    fn drop(&mut self) {
        let reactions = self.core.take_reactions();
        // The common case (every task's promise, every sleep's): no
        // reaction left and an outcome that holds nothing (`nil`, a
        // number), so nothing can chain on: dropped here, without the
        // work list's iterator (`sleeping_tasks`: ~160 instructions a
        // promise).
        if reactions.is_empty() {
            let value = self.core.take_value();
            if matches!(
                value,
                Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_)
            ) {
                return;
            }
            crate::value::drop_later([value]);
            return;
        }
        crate::value::drop_later(
            reactions
                .into_iter()
                .filter_map(|r| match r {
                    Reaction::Then(then) => then.derived.map(Value::from),
                    Reaction::Resume(_) | Reaction::Step { .. } => None,
                })
                .chain([self.core.take_value()]),
        );
    }
}

/// What a reaction does with the outcome of the promise it watches.
#[derive(Clone)]
enum Handler {
    /// Pass the outcome on to the derived promise unchanged.
    Pass,
    /// Call a function with the value; its result settles the derived promise.
    Call(Value),
    /// `.finally(f)`: call f, then pass the original outcome on.
    Finally(Value),
    /// Resume a unit suspended at `await`.
    Resume(UnitId),
    /// A combinator's (`Promise.all`, …) element `index` settled: a
    /// handler, not a function value per element (`sleeping_tasks`: −88 B a
    /// task), and one handler for both outcomes (`CombinatorState::target`
    /// says when it amounts to calling the resolve or reject function).
    Step {
        state: Rc<CombinatorState>,
        index: usize,
    },
    /// REPL entry number N, one with top-level `await`, is over: its
    /// value is echoed (as node's REPL does, in a reaction to the entry's
    /// promise) if it is still the last entry.
    EntryDone(u64),
}

/// A reaction waiting on a pending promise (kept inline in it when it is
/// the only one): 16 B. The common ones — a task's `await`, a combinator's
/// element — are inline; a `then` with its handlers and derived promise is
/// boxed (`sleeping_tasks`: an async function's promise 112 → 96 B).
enum Reaction {
    /// `await`: resume the unit with either outcome.
    Resume(UnitId),
    /// A combinator's element `index` settled, either way.
    Step {
        state: Rc<CombinatorState>,
        index: u32,
    },
    /// Any other reaction.
    Then(Box<ThenReaction>),
}

struct ThenReaction {
    on_fulfilled: Handler,
    /// The handler of a rejection, when it is not `on_fulfilled`.
    on_rejected: Option<Box<Handler>>,
    derived: Option<P>,
}

impl Handler {
    /// The same handler for sure (false when it cannot tell cheaply).
    fn same_as(&self, other: &Handler) -> bool {
        match (self, other) {
            (Handler::Pass, Handler::Pass) => true,
            (Handler::Resume(a), Handler::Resume(b)) => a == b,
            (Handler::EntryDone(a), Handler::EntryDone(b)) => a == b,
            (Handler::Step { state: a, index: i }, Handler::Step { state: b, index: j }) => {
                Rc::ptr_eq(a, b) && i == j
            }
            _ => false,
        }
    }
}

/// Work waiting in a queue (a microtask, a tick, a timer's action).
enum Job {
    /// A promise reaction with the outcome of the promise it watched.
    Reaction {
        handler: Handler,
        derived: Option<P>,
        outcome: Result<Value, Thrown>,
    },
    /// NewPromiseResolveThenableJob: resolve `promise` with `thenable`.
    ResolveThenable { promise: P, thenable: P },
    /// NewPromiseResolveThenableJob for a thenable that is not a promise
    /// (a map with a callable `then`): call `then(resolve, reject)`.
    CallThen { promise: P, then: Value },
    /// Call a function (timer callback, microtask, tick).
    Call { function: Value, args: Vec<Value> },
    /// Resolve a promise (a `sleep` timer firing).
    Settle { promise: P, value: Value },
    /// A `sleep` timer firing whose promise only its awaiting unit knew
    /// (see `Js::await_sleep`): queue that unit's resumption, the reaction
    /// resolving the promise would have queued.
    WakeSleeper(UnitId),
    /// `process.emitWarning`'s tick: print the warning (whole, as text).
    Warn(Rc<str>),
}

/// What a timer does when it fires (kept to fire again for an interval).
/// 16 B: a `sleep`'s timer, the common one, waits in its list in 16 B and
/// a share of its millisecond's start (`sleeping_tasks`: 85 → ~16 B a
/// task, with no hash entry, as no program can clear it).
enum TimerAction {
    /// `set_timeout(f, d, args…)` / `set_interval` (boxed, with what only
    /// such a timer needs).
    Call(Box<CallTimer>),
    /// `sleep(d)`: resolve its promise.
    Settle(P),
    /// `await sleep(d)` with the promise seen by nobody else: wake the unit.
    WakeSleeper(UnitId),
}

/// A timer a program made with `set_timeout` / `set_interval` (and can
/// clear by its id): 64 B, as the list's entry and the callback were before.
struct CallTimer {
    id: u64,
    /// `_idleTimeout`: the delay after the constructor's coercion.
    idle_timeout: f64,
    /// `_repeat`: an interval (its delay is `idle_timeout`, which Node
    /// sets back to `_repeat` before re-inserting it).
    repeat: bool,
    function: Value,
    args: Box<[Value]>,
}

impl timers::Action for TimerAction {
    fn clearable_id(&self) -> Option<u64> {
        match self {
            TimerAction::Call(call) => Some(call.id),
            TimerAction::Settle(_) | TimerAction::WakeSleeper(_) => None,
        }
    }
}

impl TimerAction {
    fn job(&self) -> Job {
        match self {
            TimerAction::Call(call) => Job::Call {
                function: call.function.clone(),
                args: call.args.to_vec(),
            },
            TimerAction::WakeSleeper(unit) => Job::WakeSleeper(*unit),
            TimerAction::Settle(p) => Job::Settle {
                promise: p.clone(),
                value: Value::Nil,
            },
        }
    }
}

/// A `set_immediate` callback waiting for the check phase.
struct Immediate {
    id: u64,
    function: Value,
    args: Vec<Value>,
}

/// The timer whose callback is running (its clear must stop an interval).
struct Running {
    id: u64,
    idle_timeout: f64,
    cleared: bool,
}

/// Where the event loop stands (libuv's `uv_run`, as Node drives it).
#[derive(Clone, Copy)]
enum Stage {
    /// The script is running (or about to): the first macrotask.
    Script,
    /// `uv_run` begins: update the clock and run the timers phase once
    /// before the loop.
    LoopStart,
    /// The timers phase (`RunTimers` → `processTimers(now)`).
    Timers { now: u64, cursor: Cursor },
    /// The poll phase: wait for the timer handle unless immediates wait.
    Poll,
    /// The check phase: the immediates queued before it began.
    Check,
}

// ---- primitives ----

/// One of the policy's primitives, as a callable value.
/// This policy's primitives: `super::Primitive` with its own operations.
type Primitive = super::Primitive<Op>;

enum Op {
    Sleep,
    Work,
    Now,
    SetTimeout,
    SetInterval,
    /// `clear_timeout` and `clear_interval` (Node's are interchangeable).
    ClearTimeout,
    SetImmediate,
    ClearImmediate,
    QueueMicrotask,
    NextTick,
    NewPromise,
    Gather,
    PromiseResolve,
    PromiseReject,
    Combinator(Combinator),
    /// A promise's resolve or reject function (sharing "already resolved").
    Resolver {
        promise: P,
        reject: bool,
        done: Rc<Cell<bool>>,
    },
    /// `.finally` helpers: return / throw a saved value.
    ReturnValue(Value),
    ThrowValue(Value),
    /// A name of asyncio's: a TypeError saying what Node offers instead.
    AsyncioOnly(&'static str),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Combinator {
    All,
    Race,
    AllSettled,
    Any,
}

/// The shared state of a `Promise.all` / `allSettled` / `any` call.
struct CombinatorState {
    kind: Combinator,
    result: P,
    /// The result's resolve and reject functions.
    resolve: Value,
    reject: Value,
    remaining: Cell<usize>,
    /// The elements' outcomes, taken as the result's list when the last
    /// one is in. No "already called" flags: an element's step is a
    /// reaction to a native promise (`promise_resolve` made every element
    /// one), which runs once.
    values: RefCell<Vec<Value>>,
}

impl CombinatorState {
    /// The function an element's outcome is handed to, when it is not a
    /// step of the combinator's own: `all`'s first rejection goes to the
    /// reject function, `any`'s first fulfilment to the resolve function.
    fn target(&self, rejected: bool) -> Option<&Value> {
        match (self.kind, rejected) {
            (Combinator::All, true) => Some(&self.reject),
            (Combinator::Any, false) => Some(&self.resolve),
            _ => None,
        }
    }
}

fn primitive(name: &'static str, op: Op) -> Value {
    Value::from(Hc::new(Primitive::new(name, op, |name, out| {
        out.push_str(&format!("[Function: {name}]"))
    })))
}

/// The value of a predefined global under js.
fn global(name: &str) -> Option<Value> {
    let op = match name {
        "sleep" => Op::Sleep,
        "work" => Op::Work,
        "now" => Op::Now,
        "set_timeout" => Op::SetTimeout,
        "set_interval" => Op::SetInterval,
        "clear_timeout" | "clear_interval" => Op::ClearTimeout,
        "set_immediate" => Op::SetImmediate,
        "clear_immediate" => Op::ClearImmediate,
        "queue_microtask" => Op::QueueMicrotask,
        "next_tick" => Op::NextTick,
        "promise" => Op::NewPromise,
        "gather" => Op::Gather,
        "wait_for" => Op::AsyncioOnly("Node offers Promise.race with a timer promise"),
        "wait" => Op::AsyncioOnly("Node offers Promise.race and Promise.allSettled"),
        "as_completed" => Op::AsyncioOnly("Node offers a .then on each promise, or Promise.race"),
        "gather_settled" => Op::AsyncioOnly("Node offers Promise.allSettled"),
        "shield" => Op::AsyncioOnly("Node needs none: a promise cannot be cancelled"),
        "task_group" => Op::AsyncioOnly("Node offers Promise.all, or Promise.allSettled"),
        "with_timeout" => Op::AsyncioOnly("Node offers Promise.race with a timer promise"),
        "current_task" => Op::AsyncioOnly("Node has no task objects"),
        "queue" | "event" | "lock" | "semaphore" => {
            Op::AsyncioOnly("Node has no such class: build one from promises")
        }
        "Promise" => {
            let mut statics = Map::default();
            for (key, op) in [
                ("resolve", Op::PromiseResolve),
                ("reject", Op::PromiseReject),
                ("all", Op::Combinator(Combinator::All)),
                ("race", Op::Combinator(Combinator::Race)),
                ("allSettled", Op::Combinator(Combinator::AllSettled)),
                ("any", Op::Combinator(Combinator::Any)),
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

/// What a primitive comes to.
enum Outcome {
    Value(Value),
    /// Call `callee(args)` in the calling unit; `then` says what the call
    /// evaluates to (a promise executor evaluates to its promise).
    Call {
        callee: Value,
        args: Vec<Value>,
        then: Marked,
    },
}

/// A call the policy pushed into a unit, waiting for it to end.
enum Marked {
    /// `promise(executor)`: evaluates to the promise; a throw rejects it
    /// unless it is already resolved (`done`, shared with its resolving
    /// functions).
    Executor { promise: P, done: Rc<Cell<bool>> },
    /// `spawn f()` of a plain function: its result, wrapped in a promise.
    WrapInPromise,
}

/// What calling a function from a queue came to.
enum Called {
    Value(Value),
    Threw(Thrown),
    /// The step limit stopped the run.
    Limit(Thrown),
}

/// How a job's chain of units ended.
enum Ended {
    Done(Value),
    /// The bottom unit threw and had no promise to take the error.
    Threw(Thrown),
    /// The bottom unit threw into its promise.
    Settled,
    /// The bottom unit waits at an `await`.
    Parked,
    /// The step limit stopped the run.
    Limit(Thrown),
}

pub struct Js {
    config: RunConfig,
    clock: Clock,
    next_ticks: VecDeque<Job>,
    microtasks: VecDeque<Job>,
    /// The microtask queue is being drained (ticks queued meanwhile wait).
    in_microtasks: bool,
    /// Node's timer lists and the loop's timer handle.
    timers: NodeTimers<TimerAction>,
    running: Option<Running>,
    /// The last `sleep`'s timer list (its duration, ms) and promise (by
    /// address), for an `await` right after it (`await_sleep`).
    last_sleep: Option<(u64, usize)>,
    /// `set_immediate` callbacks for the next check phase.
    immediates: VecDeque<Immediate>,
    /// The check phase in progress: the immediates it took at its start.
    check_batch: VecDeque<Immediate>,
    /// The last id given to a timer or an immediate.
    last_id: u64,
    /// A warning was printed (the first comes with Node's hint about
    /// `--trace-warnings`).
    warned: bool,
    stage: Stage,
    pending_rejections: Vec<P>,
    fatal: Option<i32>,
    /// The script, until its first step runs it.
    script: Option<Rc<Closure>>,
    /// The promise each unit settles when it ends (an async function's).
    // PERF: 8 B a task plus the Vec's doubling slack (~10 B at 100k
    // tasks); a policy word kept on the VM's unit would need no table.
    unit_promises: Vec<Option<P>>,
    /// Calls pushed into units with a mark (mark = index + 1).
    marked: Vec<Option<Marked>>,
    /// The vector `run_chain` keeps its chain of units in, between runs.
    chain: Vec<UnitId>,
    /// Async promise executors still running: their unit, and the promise
    /// `promise(…)` evaluates to.
    executor_units: Vec<(UnitId, P)>,
    free_marks: Vec<u32>,
    events: EventLog,
    chooser: Box<dyn Chooser>,
    /// A session (the REPL): entries keep coming, so running out of work
    /// is idleness, and uncaught errors are reported without ending.
    session: bool,
    /// The last REPL entry's progress.
    entry: Option<Entry>,
    /// How many entries were loaded.
    entries: u64,
    /// Ctrl-C in a session (none in a program run).
    interrupt: super::Interrupt,
    /// Last, so it is dropped after the queues (as CPython and Node tear
    /// down): the program's globals.
    globals: Globals,
}

/// A REPL entry's progress.
enum Entry {
    Running,
    Over(Result<Value, Thrown>),
}

impl Js {
    pub fn new(config: RunConfig) -> Js {
        Js {
            clock: Clock::new(config.instruction_cost_ns),
            events: EventLog::new(config.record_events),
            config,
            next_ticks: VecDeque::new(),
            microtasks: VecDeque::new(),
            in_microtasks: false,
            timers: NodeTimers::default(),
            running: None,
            last_sleep: None,
            immediates: VecDeque::new(),
            check_batch: VecDeque::new(),
            last_id: 0,
            warned: false,
            stage: Stage::Script,
            pending_rejections: Vec::new(),
            fatal: None,
            script: None,
            unit_promises: Vec::new(),
            marked: Vec::new(),
            chain: Vec::new(),
            executor_units: Vec::new(),
            free_marks: Vec::new(),
            chooser: Box::new(FirstCandidate),
            session: false,
            entry: None,
            entries: 0,
            interrupt: super::Interrupt::default(),
            globals: Globals::default(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ns() / NS_PER_MS
    }

    fn record(&mut self, unit: Option<UnitId>, kind: impl FnOnce() -> EventKind) {
        self.events.record(self.clock.now_ns(), unit, kind);
    }

    fn new_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// `new Timeout(…)` + `insert`: a timer whose list is its delay's,
    /// doing `make(id, delay)`. Returns its id and delay.
    fn add_timer(
        &mut self,
        delay: &Value,
        what: &str,
        make: impl FnOnce(u64, f64) -> TimerAction,
    ) -> Result<(u64, f64), Thrown> {
        let (delay, overflow) = node_delay(delay, what)?;
        if let Some(asked) = overflow {
            self.emit_warning(
                "TimeoutOverflowWarning",
                &format!(
                    "{} does not fit into a 32-bit signed integer.\nTimeout duration was set to 1.",
                    crate::value::format_float(asked, Flavor::Js)
                ),
            );
        }
        super::memory_check()?;
        // A `sleep` takes an id too, though no program sees it: the ids
        // `set_timeout` returns stay Node's `async_id` order.
        let id = self.new_id();
        // getLibuvNow() updates libuv's clock.
        let start = self.now_ms();
        self.timers.loop_time = start;
        self.timers.insert(make(id, delay), delay, start);
        Ok((id, delay))
    }

    /// Node's `process.emitWarning`: the warning is printed on stderr by a
    /// tick queued now. Node puts its process id after `node:`; it is left
    /// out, so a run prints the same every time.
    fn emit_warning(&mut self, kind: &str, message: &str) {
        let mut text = format!("(node) {kind}: {message}\n");
        if !std::mem::replace(&mut self.warned, true) {
            text.push_str(
                "(Use `node --trace-warnings ...` to show where the warning was created)\n",
            );
        }
        self.next_ticks.push_back(Job::Warn(Rc::from(text)));
    }

    fn clear_timer(&mut self, id: u64) {
        if self.timers.unenroll(id) {
            return;
        }
        if let Some(running) = self.running.as_mut().filter(|r| r.id == id && !r.cleared) {
            running.cleared = true;
            let idle_timeout = running.idle_timeout;
            self.timers.drop_list_if_empty(idle_timeout);
        }
    }

    /// Runs a due timer's callback; an interval goes back into its list,
    /// starting from the clock read just before the callback.
    fn fire(&mut self, vm: &mut Vm, action: TimerAction) {
        self.record(None, || EventKind::TimerDue);
        // A `sleep`'s: no callback runs, and nothing can clear it.
        let call = match action {
            TimerAction::Call(call) => call,
            TimerAction::WakeSleeper(unit) => return self.wake_sleeper(unit),
            TimerAction::Settle(promise) => {
                return self.run_job(
                    vm,
                    Job::Settle {
                        promise,
                        value: Value::Nil,
                    },
                );
            }
        };
        if !call.repeat {
            self.running = Some(Running {
                id: call.id,
                idle_timeout: call.idle_timeout,
                cleared: false,
            });
            let CallTimer { function, args, .. } = *call;
            let args = args.into_vec();
            self.run_job(vm, Job::Call { function, args });
            self.running = None;
            return;
        }
        let start = self.now_ms();
        self.timers.loop_time = start;
        self.running = Some(Running {
            id: call.id,
            idle_timeout: call.idle_timeout,
            cleared: false,
        });
        let delay = call.idle_timeout;
        let action = TimerAction::Call(call);
        self.run_job(vm, action.job());
        let cleared = self.running.take().is_some_and(|r| r.cleared);
        if !cleared && self.fatal.is_none() {
            self.timers.insert(action, delay, start);
        }
    }

    /// Node's classic race at the loop's start: a timer due in the next
    /// millisecond (`set_timeout(f, 0)` at the script's end) runs before the
    /// script's immediates only if real time crossed that millisecond before
    /// `uv_run` first read its clock. Node's own work between the script and
    /// that read (the first `console.log` sets up stdout, the microtask
    /// drain, loop setup) often takes that long — node v20 here ran the
    /// timeout first 20 times out of 20 for a script that prints, and 21
    /// out of 40 a week later on a busier machine (REFERENCE §9) — so the
    /// default (candidate 0) is yes: the clock moves to that millisecond
    /// and the timer goes first. Candidate 1 keeps looplab's clock, which
    /// charges the script far less than a millisecond: immediates first
    /// (what node does for a script that prints nothing, most of the time).
    fn first_timers_choice(&mut self) {
        let now = self.now_ms();
        if self.immediates.is_empty() || !self.timers.has_timer_due_at(now + 1) {
            return;
        }
        let crossed = self
            .chooser
            .choose(ChoicePoint::StartupCrossesMillisecond, 2)
            == 0;
        if crossed {
            let target = (now + 1) * NS_PER_MS;
            self.clock.advance_to(target);
            self.record(None, || EventKind::Idle { to_ns: target });
        }
    }

    /// Is the loop alive (`uv__loop_alive`): a timer or an immediate waits.
    fn alive(&self) -> bool {
        self.timers.pending() > 0 || !self.immediates.is_empty()
    }

    /// `uv__update_time` + `uv__run_timers`: a timers phase if the handle
    /// is due, else on to poll.
    fn enter_timers(&mut self) {
        let now = self.now_ms();
        self.timers.loop_time = now;
        self.stage = match self.timers.handle_due {
            Some(due) if due <= now => {
                self.timers.start_phase();
                Stage::Timers { now, cursor: None }
            }
            _ => Stage::Poll,
        };
    }

    // ---- units' promises and marked calls ----

    fn set_promise(&mut self, unit: UnitId, promise: Option<P>) {
        let i = unit as usize;
        if self.unit_promises.len() <= i {
            self.unit_promises.resize(i + 1, None);
        }
        self.unit_promises[i] = promise;
    }

    fn take_promise(&mut self, unit: UnitId) -> Option<P> {
        self.unit_promises.get_mut(unit as usize)?.take()
    }

    fn promise_of(&self, unit: UnitId) -> Option<P> {
        self.unit_promises.get(unit as usize)?.clone()
    }

    fn add_mark(&mut self, call: Marked) -> u32 {
        match self.free_marks.pop() {
            Some(mark) => {
                self.marked[mark as usize - 1] = Some(call);
                mark
            }
            None => {
                self.marked.push(Some(call));
                self.marked.len() as u32
            }
        }
    }

    fn take_mark(&mut self, mark: u32) -> Option<Marked> {
        let call = self.marked.get_mut(mark as usize - 1)?.take();
        self.free_marks.push(mark);
        call
    }

    // ---- promises ----

    /// Fulfils or rejects `p` and queues its reactions as microtasks.
    fn settle_state(&mut self, p: &P, state: State) {
        if !p.core.is_pending() {
            return;
        }
        let rejected = matches!(state, State::Rejected(_));
        let outcome = match &state {
            State::Fulfilled(v) => Ok(v.clone()),
            State::Rejected(t) => Err(t.clone()),
            State::Pending => Ok(Value::Nil),
        };
        let reactions = p.core.settle(state);
        // Pending, it was handled iff it had reactions.
        if rejected && reactions.is_empty() {
            self.pending_rejections.push(p.clone());
        }
        match reactions {
            Reactions::None => {}
            // The common case (a task's promise awaited once, an element
            // of a combinator): the outcome is moved, not copied.
            Reactions::One(reaction) => self.queue_reaction(reaction, outcome),
            Reactions::Many(reactions) => {
                for reaction in reactions {
                    self.queue_reaction(reaction, outcome.clone());
                }
            }
        }
    }

    fn queue_reaction(&mut self, reaction: Reaction, outcome: Result<Value, Thrown>) {
        let (handler, derived) = match reaction {
            Reaction::Resume(unit) => (Handler::Resume(unit), None),
            Reaction::Step { state, index } => (
                Handler::Step {
                    state,
                    index: index as usize,
                },
                None,
            ),
            Reaction::Then(then) => {
                let ThenReaction {
                    on_fulfilled,
                    on_rejected,
                    derived,
                } = *then;
                match on_rejected {
                    Some(on_rejected) if outcome.is_err() => (*on_rejected, derived),
                    _ => (on_fulfilled, derived),
                }
            }
        };
        self.microtasks.push_back(Job::Reaction {
            handler,
            derived,
            outcome,
        });
    }

    /// ECMAScript's promise resolve function.
    fn resolve(&mut self, p: &P, value: Value) {
        if !p.core.is_pending() {
            return;
        }
        match handle_of::<Promise>(&value) {
            Some(thenable) if Hc::ptr_eq(&thenable, p) => {
                let error = Value::error(
                    "TypeError",
                    "Chaining cycle detected for promise #<Promise>",
                );
                self.settle_state(p, State::Rejected(Thrown::new(error)));
            }
            Some(thenable) => self.microtasks.push_back(Job::ResolveThenable {
                promise: p.clone(),
                thenable,
            }),
            None => match thenable_then(&value) {
                Some(then) => self.microtasks.push_back(Job::CallThen {
                    promise: p.clone(),
                    then,
                }),
                None => self.settle_state(p, State::Fulfilled(value)),
            },
        }
    }

    fn settle(&mut self, p: &P, result: Result<Value, Thrown>) {
        match result {
            Ok(v) => self.resolve(p, v),
            Err(t) => self.settle_state(p, State::Rejected(t)),
        }
    }

    /// PromiseResolve(v): a promise is itself, anything else a fulfilled promise.
    fn promise_resolve(&mut self, value: Value) -> P {
        if let Some(p) = handle_of::<Promise>(&value) {
            return p;
        }
        if thenable_then(&value).is_none() {
            return Promise::fulfilled(value);
        }
        let p = Promise::new();
        self.resolve(&p, value);
        p
    }

    /// Adds a reaction (`then`).
    fn then(&mut self, p: &P, on_fulfilled: Handler, on_rejected: Handler, derived: Option<P>) {
        let same = on_rejected.same_as(&on_fulfilled);
        let reaction = match (on_fulfilled, derived) {
            (Handler::Resume(unit), None) if same => Reaction::Resume(unit),
            (Handler::Step { state, index }, None) if same && u32::try_from(index).is_ok() => {
                Reaction::Step {
                    state,
                    index: index as u32,
                }
            }
            (on_fulfilled, derived) => Reaction::Then(Box::new(ThenReaction {
                on_fulfilled,
                on_rejected: (!same).then(|| Box::new(on_rejected)),
                derived,
            })),
        };
        self.react(p, reaction);
    }

    /// Adds `reaction` to a pending `p`, or queues it with a settled one's
    /// outcome.
    fn react(&mut self, p: &Promise, reaction: Reaction) {
        let outcome = match p.core.state() {
            State::Pending => return p.core.add_reaction(reaction),
            State::Fulfilled(v) => Ok(v),
            State::Rejected(t) => {
                // Only a rejected promise's flag is ever read.
                p.core.mark_attached();
                Err(t)
            }
        };
        self.queue_reaction(reaction, outcome);
    }

    /// `await sleep(d)` where nothing but the timer and this `await` ever
    /// held the promise (it was not stored, and the await comes right after
    /// the call): the timer wakes the unit itself and the promise is
    /// dropped now, not kept for the whole sleep (`sleeping_tasks`: −128 B
    /// a task). What runs, and when, is unchanged: the timer's job queues
    /// the same microtask (`Handler::Resume`) resolving the promise would
    /// have. False (nothing done) in any other case.
    fn await_sleep(&mut self, value: &Value, unit: UnitId) -> bool {
        let Some((timer, address)) = self.last_sleep.take() else {
            return false;
        };
        let Some(p) = handle_of::<Promise>(value) else {
            return false;
        };
        // Held by the awaited value, the timer's action and `p`: no one else.
        if Hc::as_ptr(&p) as usize != address
            || Hc::strong_count(&p) != 3
            || !p.core.is_pending()
            || p.core.has_reactions()
        {
            return false;
        }
        let Some(action) = self.timers.last_action_mut(timer) else {
            return false;
        };
        if !matches!(&*action, TimerAction::Settle(q) if Hc::ptr_eq(q, &p)) {
            return false;
        }
        *action = TimerAction::WakeSleeper(unit);
        true
    }

    /// A promise's resolve and reject functions, sharing "already resolved".
    fn resolving_functions(p: &P) -> (Value, Value, Rc<Cell<bool>>) {
        let done = Rc::new(Cell::new(false));
        let make = |reject, name| {
            primitive(
                name,
                Op::Resolver {
                    promise: p.clone(),
                    reject,
                    done: done.clone(),
                },
            )
        };
        (
            make(false, "resolver"),
            make(true, "resolver"),
            done.clone(),
        )
    }

    /// The promise and "already resolved" flag of a reject function.
    fn reject_function(&self, function: &Value) -> Option<(P, Rc<Cell<bool>>)> {
        let primitive = handle_of::<Primitive>(function)?;
        match &primitive.op {
            Op::Resolver {
                promise,
                reject: true,
                done,
            } => Some((promise.clone(), done.clone())),
            _ => None,
        }
    }

    /// `p.then(f, g)`, `p.catch(g)`, `p.finally(f)`.
    fn promise_method(&mut self, p: &P, name: &str, args: &[Value]) -> Result<Value, Thrown> {
        let handler = |v: Option<&Value>| match v {
            Some(f) if f.is_callable() => Handler::Call(f.clone()),
            _ => Handler::Pass,
        };
        let (on_fulfilled, on_rejected) = match name {
            "then" => (handler(args.first()), handler(args.get(1))),
            "catch" => (Handler::Pass, handler(args.first())),
            "finally" => {
                let f = args.first().cloned().unwrap_or(Value::Nil);
                (Handler::Finally(f.clone()), Handler::Finally(f))
            }
            _ => {
                return Err(Thrown::error(
                    "TypeError",
                    &format!("a promise has no method `{name}` (it has then, catch, finally)"),
                ));
            }
        };
        super::memory_check()?;
        let derived = Promise::new();
        self.then(p, on_fulfilled, on_rejected, Some(derived.clone()));
        Ok(Value::from(derived))
    }

    // ---- running units ----

    /// Runs `unit` and every unit it starts synchronously, until the chain
    /// is back to nothing: the policy's own loop over the VM's halts.
    fn run_chain(&mut self, vm: &mut Vm, unit: UnitId) -> Ended {
        // The chain's vector is kept between jobs (one allocation less a
        // job; a chain that starts another, if any, makes its own).
        let mut chain = std::mem::take(&mut self.chain);
        chain.push(unit);
        let ended = self.drive_chain(vm, &mut chain);
        chain.clear();
        self.chain = chain;
        ended
    }

    fn drive_chain(&mut self, vm: &mut Vm, chain: &mut Vec<UnitId>) -> Ended {
        while let Some(&top) = chain.last() {
            let stop = vm.run(top, &mut self.globals, super::slice(vm));
            self.clock.charge_steps(stop.steps);
            self.record(Some(top), || EventKind::Ran { steps: stop.steps });
            match stop.halt {
                Halt::Finished(value) => {
                    self.record(Some(top), || EventKind::Finished);
                    let promise = self.take_promise(top);
                    if let Some(p) = &promise {
                        self.resolve(p, value.clone());
                    }
                    chain.pop();
                    match (chain.last(), promise) {
                        (Some(&caller), Some(p)) => {
                            let p = self.caller_gets(top, p);
                            vm.resume(caller, ResumeWith::Value(p))
                        }
                        _ => return Ended::Done(value),
                    }
                }
                Halt::Threw(thrown) => {
                    self.record(Some(top), || EventKind::Finished);
                    let promise = self.take_promise(top);
                    chain.pop();
                    match (chain.last(), promise) {
                        (Some(&caller), Some(p)) => {
                            self.settle_state(&p, State::Rejected(thrown));
                            let p = self.caller_gets(top, p);
                            vm.resume(caller, ResumeWith::Value(p));
                        }
                        (None, Some(p)) => {
                            self.settle_state(&p, State::Rejected(thrown));
                            return Ended::Settled;
                        }
                        (_, None) => return Ended::Threw(thrown),
                    }
                }
                Halt::Await(value) => {
                    if let Some(ended) = self.suspend(vm, chain, top, value) {
                        return ended;
                    }
                }
                Halt::CallAsync { closure, args } => {
                    self.start_async(vm, chain, closure, args);
                }
                Halt::Spawn { callee, args } => match callee {
                    Value::Closure(c) if c.function.is_async => {
                        self.start_async(vm, chain, c, args);
                    }
                    callee if callee.is_callable() => {
                        self.call_in_unit(vm, chain, callee, args, Marked::WrapInPromise)
                    }
                    other => vm.resume(
                        top,
                        ResumeWith::Raise(Thrown::error(
                            "TypeError",
                            &format!("spawn needs a function, not {}", other.a_type()),
                        )),
                    ),
                },
                Halt::Primitive { primitive, args } => {
                    // Borrowed from the halt's handle (no count taken).
                    let p = primitive.get().as_any().downcast_ref::<Primitive>();
                    // `await sleep(d)`: the timer wakes the unit itself and
                    // no promise is made (what `call_primitive`, the
                    // `await` and `await_sleep` would come to, with the
                    // same charge and events: `sleeping_tasks`).
                    if let Some(p) = p
                        && matches!(p.op, Op::Sleep)
                        && !self.config.real_time
                        && super::slice(vm).budget > 0
                        && vm.awaits_next(top)
                    {
                        // PERF: the halt's argument vector is made for
                        // the call and freed here (~70 instructions a
                        // sleep, in `dispatch`'s hands).
                        let delay = args.into_iter().next().unwrap_or(Value::Nil);
                        match self.add_timer(&delay, "sleep", |_, _| TimerAction::WakeSleeper(top))
                        {
                            Ok(_) => {
                                let skipped = vm.skip_await(top);
                                debug_assert!(skipped, "the unit awaits next");
                                self.clock.charge_steps(1);
                                self.record(Some(top), || EventKind::Ran { steps: 1 });
                                self.record(Some(top), || EventKind::Suspended);
                                self.last_sleep = None;
                                if let Some(ended) = self.park(vm, chain, top) {
                                    return ended;
                                }
                            }
                            Err(thrown) if super::is_stop(&thrown) => {
                                return Ended::Limit(super::locate(vm, Some(top), thrown));
                            }
                            Err(thrown) => vm.resume(top, ResumeWith::Raise(thrown)),
                        }
                        continue;
                    }
                    let result = match p {
                        Some(p) => self.call_primitive(p, args, Some((&*vm, top))),
                        None => Err(Thrown::error(
                            "TypeError",
                            &format!("cannot call {}", primitive.a_type()),
                        )),
                    };
                    // `--real-time`: `work(d)` takes d of wall time, and
                    // Ctrl-C meanwhile stops the run there.
                    if self.config.real_time {
                        super::pace(vm, &self.config, self.clock.now_ns());
                        let now = self.clock.now_ns();
                        if let Some(stop) = super::interrupt_check(vm, Some(top), now) {
                            return Ended::Limit(stop);
                        }
                    }
                    match result {
                        Err(thrown) if super::is_stop(&thrown) => {
                            return Ended::Limit(super::locate(vm, Some(top), thrown));
                        }
                        // `await sleep(d)` (any `await` of a primitive's
                        // value): the unit's next run would only execute
                        // that `await` (one step, no js value is settled
                        // for `Handle::settled`) and halt with the value;
                        // done here, with the same charge and events,
                        // without running the unit again. Not when the
                        // slice has no step left: that run would stop
                        // before the `await`, for the policy's checks.
                        Ok(Outcome::Value(v))
                            if super::slice(vm).budget > 0 && vm.skip_await(top) =>
                        {
                            self.clock.charge_steps(1);
                            self.record(Some(top), || EventKind::Ran { steps: 1 });
                            if let Some(ended) = self.suspend(vm, chain, top, v) {
                                return ended;
                            }
                        }
                        Ok(Outcome::Value(v)) => vm.resume(top, ResumeWith::Value(v)),
                        Ok(Outcome::Call { callee, args, then }) => {
                            self.call_in_unit(vm, chain, callee, args, then)
                        }
                        Err(thrown) => vm.resume(top, ResumeWith::Raise(thrown)),
                    }
                }
                Halt::Method {
                    receiver,
                    name,
                    args,
                } => {
                    let result = match super::downcast::<Promise>(&receiver) {
                        Some(p) => self.promise_method(&p, &name, &args),
                        None => Err(Thrown::error(
                            "TypeError",
                            &format!("{} has no method `{name}`", receiver.a_type()),
                        )),
                    };
                    match result {
                        Ok(v) => vm.resume(top, ResumeWith::Value(v)),
                        Err(thrown) => vm.resume(top, ResumeWith::Raise(thrown)),
                    }
                }
                Halt::Returned { mark, value } => {
                    let v = match self.take_mark(mark) {
                        Some(Marked::Executor { promise, .. }) => Value::from(promise),
                        Some(Marked::WrapInPromise) => Value::from(Promise::fulfilled(value)),
                        None => value,
                    };
                    vm.resume(top, ResumeWith::Value(v));
                }
                Halt::Unwound { mark, thrown } => match self.take_mark(mark) {
                    Some(Marked::Executor { promise, done }) => {
                        // The executor's throw calls its reject function:
                        // nothing once `resolve(x)` was called (even with a
                        // promise still pending).
                        if !done.replace(true) {
                            self.settle_state(&promise, State::Rejected(thrown));
                        }
                        vm.resume(top, ResumeWith::Value(Value::from(promise)));
                    }
                    _ => vm.resume(top, ResumeWith::Throw(thrown)),
                },
                Halt::Preempted => {
                    if let Some(thrown) = self.interrupt.raised() {
                        vm.resume(top, ResumeWith::Raise(thrown));
                    } else {
                        match super::check(vm, Some(top), &self.config, self.clock.now_ns()) {
                            super::Check::Go => {}
                            super::Check::Raise(thrown) => {
                                vm.resume(top, ResumeWith::Raise(thrown))
                            }
                            super::Check::Stop(thrown) => return Ended::Limit(thrown),
                        }
                    }
                }
                Halt::StepLimit(at) => return Ended::Limit(step_limit_error(vm, at)),
            }
        }
        Ended::Parked
    }

    /// `chain`'s top unit awaits `value`: it waits for a microtask, and
    /// its caller (if any) goes on with its promise. `Some` when the chain
    /// is over.
    fn suspend(
        &mut self,
        vm: &mut Vm,
        chain: &mut Vec<UnitId>,
        top: UnitId,
        value: Value,
    ) -> Option<Ended> {
        self.record(Some(top), || EventKind::Suspended);
        if !self.await_sleep(&value, top) {
            let p = self.promise_resolve(value);
            self.then(&p, Handler::Resume(top), Handler::Resume(top), None);
        }
        self.park(vm, chain, top)
    }

    /// `chain`'s top unit waits: its caller (if any) goes on with its
    /// promise. `Some` when the chain is over.
    fn park(&mut self, vm: &mut Vm, chain: &mut Vec<UnitId>, top: UnitId) -> Option<Ended> {
        chain.pop();
        match chain.last() {
            Some(&caller) => {
                let p = match self.promise_of(top) {
                    Some(p) => self.caller_gets(top, p),
                    None => Value::Nil,
                };
                vm.resume(caller, ResumeWith::Value(p));
                None
            }
            None => Some(Ended::Parked),
        }
    }

    /// An async function called from `chain`'s top unit starts now, in a
    /// unit of its own; the caller waits for it to await or end.
    fn start_async(
        &mut self,
        vm: &mut Vm,
        chain: &mut Vec<UnitId>,
        closure: Rc<Closure>,
        args: Vec<Value>,
    ) -> UnitId {
        super::charge(vm, super::UNIT_STEPS);
        let unit = vm.new_unit(closure, args);
        self.set_promise(unit, Some(Promise::new()));
        self.record(Some(unit), || EventKind::Created {
            name: vm.unit_name(unit),
        });
        if chain.len() > MAX_FRAMES {
            vm.resume(
                unit,
                ResumeWith::Throw(Thrown::error(
                    "RangeError",
                    "stack overflow: async calls nested too deeply",
                )),
            );
        }
        chain.push(unit);
        unit
    }

    /// What the caller of an async unit gets when the unit first stops: its
    /// promise, or, for an async promise executor, the executor's promise.
    fn caller_gets(&mut self, unit: UnitId, promise: P) -> Value {
        match self.executor_units.iter().position(|(u, _)| *u == unit) {
            Some(i) => Value::from(self.executor_units.swap_remove(i).1),
            None => Value::from(promise),
        }
    }

    /// Calls `callee(args)` inside `chain`'s top unit, as a frame the VM
    /// reports back when it ends.
    fn call_in_unit(
        &mut self,
        vm: &mut Vm,
        chain: &mut Vec<UnitId>,
        callee: Value,
        args: Vec<Value>,
        then: Marked,
    ) {
        let Some(&top) = chain.last() else { return };
        match callee {
            Value::Closure(c) if c.function.is_async => {
                let unit = self.start_async(vm, chain, c, args);
                if let Marked::Executor { promise, .. } = then {
                    // `promise(async fn(resolve) {…})`: a throw rejects the
                    // async function's own promise, as in JavaScript.
                    self.executor_units.push((unit, promise));
                }
            }
            Value::Closure(c) => {
                let mark = self.add_mark(then);
                if let Err(thrown) = vm.push_call(top, c, args, mark) {
                    self.take_mark(mark);
                    vm.resume(top, ResumeWith::Raise(thrown));
                }
            }
            other => {
                let result = match (self.call_now(vm, &other, args), then) {
                    (Ok(Some(v)), Marked::WrapInPromise) => Ok(Value::from(Promise::fulfilled(v))),
                    (Ok(_), Marked::Executor { promise, .. }) => Ok(Value::from(promise)),
                    (Err(thrown), Marked::Executor { promise, done }) => {
                        if !done.replace(true) {
                            self.settle_state(&promise, State::Rejected(thrown));
                        }
                        Ok(Value::from(promise))
                    }
                    (result, _) => result.map(|v| v.unwrap_or(Value::Nil)),
                };
                match result {
                    Ok(v) => vm.resume(top, ResumeWith::Value(v)),
                    Err(thrown) => vm.resume(top, ResumeWith::Raise(thrown)),
                }
            }
        }
    }

    /// Calls a built-in or a primitive outside any unit (from a queue).
    /// `None` when it is a call that needs a unit (a promise executor).
    fn call_now(
        &mut self,
        vm: &mut Vm,
        function: &Value,
        args: Vec<Value>,
    ) -> Result<Option<Value>, Thrown> {
        match function {
            Value::Native(native) => vm.call_native(native, args).map(Some),
            Value::Handle(h) => match super::downcast::<Primitive>(h) {
                Some(p) => match self.call_primitive(&p, args, None)? {
                    Outcome::Value(v) => Ok(Some(v)),
                    Outcome::Call { .. } => Ok(None),
                },
                None => Err(Thrown::error(
                    "TypeError",
                    &format!("cannot call {}", h.a_type()),
                )),
            },
            other => Err(Thrown::error(
                "TypeError",
                &format!("cannot call {} as a callback", other.a_type()),
            )),
        }
    }

    /// Calls `function(args)` from a queue. Its result settles `derived`
    /// (if any). Returns an uncaught error, if any.
    fn invoke(
        &mut self,
        vm: &mut Vm,
        function: &Value,
        args: Vec<Value>,
        derived: Option<P>,
    ) -> Option<Thrown> {
        match function {
            Value::Closure(closure) if !closure.function.is_async => {
                let unit = vm.new_unit(closure.clone(), args);
                let name = closure.function.name.clone();
                self.record(Some(unit), || EventKind::Created { name });
                let has_promise = derived.is_some();
                self.set_promise(unit, derived);
                match self.run_chain(vm, unit) {
                    Ended::Threw(t) if !has_promise => Some(t),
                    Ended::Limit(t) => Some(t),
                    _ => None,
                }
            }
            Value::Closure(closure) => {
                let unit = vm.new_unit(closure.clone(), args);
                let name = closure.function.name.clone();
                self.record(Some(unit), || EventKind::Created { name });
                let promise = Promise::new();
                self.set_promise(unit, Some(promise.clone()));
                if let Ended::Limit(t) = self.run_chain(vm, unit) {
                    return Some(t);
                }
                if let Some(d) = derived {
                    self.resolve(&d, Value::from(promise));
                }
                None
            }
            other => match self.call_now(vm, other, args) {
                Ok(Some(v)) => {
                    if let Some(d) = derived {
                        self.resolve(&d, v);
                    }
                    None
                }
                Ok(None) => None,
                Err(t) => match derived {
                    Some(d) => {
                        self.settle_state(&d, State::Rejected(t));
                        None
                    }
                    None => Some(t),
                },
            },
        }
    }

    /// Calls `function(args)` from a queue for its result: a plain
    /// function's return value or throw, an async function's promise.
    fn call_value(&mut self, vm: &mut Vm, function: &Value, args: Vec<Value>) -> Called {
        match function {
            Value::Closure(c) if !c.function.is_async => {
                let unit = vm.new_unit(c.clone(), args);
                match self.run_chain(vm, unit) {
                    Ended::Done(v) => Called::Value(v),
                    Ended::Threw(t) => Called::Threw(t),
                    Ended::Limit(t) => Called::Limit(t),
                    Ended::Parked | Ended::Settled => Called::Value(Value::Nil),
                }
            }
            Value::Closure(c) => {
                let unit = vm.new_unit(c.clone(), args);
                let promise = Promise::new();
                self.set_promise(unit, Some(promise.clone()));
                match self.run_chain(vm, unit) {
                    Ended::Limit(t) => Called::Limit(t),
                    _ => Called::Value(Value::from(promise)),
                }
            }
            other => match self.call_now(vm, other, args) {
                Ok(v) => Called::Value(v.unwrap_or(Value::Nil)),
                Err(t) => Called::Threw(t),
            },
        }
    }

    /// ECMAScript's `.finally`: run the handler, then pass the original
    /// outcome on through a promise chained on the handler's result (two
    /// extra ticks).
    fn run_finally(
        &mut self,
        vm: &mut Vm,
        on_finally: &Value,
        derived: Option<P>,
        outcome: Result<Value, Thrown>,
    ) -> Option<Thrown> {
        let result = match on_finally {
            f if f.is_callable() => match self.call_value(vm, f, Vec::new()) {
                Called::Value(v) => Ok(v),
                Called::Threw(t) => Err(t),
                Called::Limit(t) => return Some(t),
            },
            _ => {
                // Not a function: `.finally(x)` behaves as `.then(x, x)`: pass through.
                if let Some(d) = derived {
                    self.settle(&d, outcome);
                }
                return None;
            }
        };
        let derived = derived?;
        match result {
            Err(t) => self.settle_state(&derived, State::Rejected(t)),
            Ok(r) => {
                let p2 = self.promise_resolve(r);
                let thunk = match outcome {
                    Ok(v) => primitive("returnvalue", Op::ReturnValue(v)),
                    Err(t) => primitive("throwvalue", Op::ThrowValue(t.value)),
                };
                // thenFinally: `promise.then(valueThunk)`; a rejection of
                // the callback's promise passes on, replacing the outcome.
                let q = Promise::new();
                self.then(&p2, Handler::Call(thunk), Handler::Pass, Some(q.clone()));
                self.resolve(&derived, Value::from(q));
            }
        }
        None
    }

    /// A sleep's timer whose promise only its awaiting unit knew fired:
    /// the unit's resumption is queued, the reaction resolving the
    /// promise would have queued.
    fn wake_sleeper(&mut self, unit: UnitId) {
        self.microtasks.push_back(Job::Reaction {
            handler: Handler::Resume(unit),
            derived: None,
            outcome: Ok(Value::Nil),
        });
    }

    fn run_job(&mut self, vm: &mut Vm, job: Job) {
        let uncaught = match job {
            Job::Reaction {
                handler,
                derived,
                outcome,
            } => self.run_reaction(vm, handler, derived, outcome),
            Job::ResolveThenable { promise, thenable } => {
                let (resolve, reject, _) = Self::resolving_functions(&promise);
                self.then(
                    &thenable,
                    Handler::Call(resolve),
                    Handler::Call(reject),
                    None,
                );
                None
            }
            Job::CallThen { promise, then } => {
                let (resolve, reject, done) = Self::resolving_functions(&promise);
                match self.call_value(vm, &then, vec![resolve, reject]) {
                    Called::Value(_) => None,
                    // A throwing `then` rejects, unless it resolved first.
                    Called::Threw(t) => {
                        if !done.replace(true) {
                            self.settle_state(&promise, State::Rejected(t));
                        }
                        None
                    }
                    Called::Limit(t) => Some(t),
                }
            }
            Job::Call { function, args } => self.invoke(vm, &function, args, None),
            Job::Settle { promise, value } => {
                self.resolve(&promise, value);
                None
            }
            Job::WakeSleeper(unit) => {
                self.wake_sleeper(unit);
                None
            }
            Job::Warn(text) => {
                vm.eprint(&text);
                None
            }
        };
        if let Some(thrown) = uncaught {
            self.die(vm, &thrown, "uncaught exception");
        }
    }

    fn run_reaction(
        &mut self,
        vm: &mut Vm,
        handler: Handler,
        derived: Option<P>,
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
                    Err(t) => match self.reject_function(&function) {
                        // A reject function passed as a handler (the
                        // combinators'): the rejection keeps its origin.
                        Some((promise, done)) => {
                            if !done.replace(true) {
                                self.settle_state(&promise, State::Rejected(t));
                            }
                            if let Some(d) = derived {
                                self.resolve(&d, Value::Nil);
                            }
                            return None;
                        }
                        None => t.value,
                    },
                };
                self.invoke(vm, &function, vec![arg], derived)
            }
            Handler::Finally(function) => self.run_finally(vm, &function, derived, outcome),
            Handler::Resume(unit) => {
                self.record(Some(unit), || EventKind::Resumed);
                let with = match outcome {
                    Ok(v) => ResumeWith::Value(v),
                    Err(t) => ResumeWith::Throw(t),
                };
                vm.resume(unit, with);
                match self.run_chain(vm, unit) {
                    Ended::Threw(t) | Ended::Limit(t) => Some(t),
                    _ => None,
                }
            }
            Handler::Step { state, index } => {
                if let Some(function) = state.target(outcome.is_err()) {
                    return self.run_reaction(
                        vm,
                        Handler::Call(function.clone()),
                        derived,
                        outcome,
                    );
                }
                match outcome {
                    Ok(v) => self.combinator_step(&state, index, false, v),
                    Err(t) => self.combinator_step(&state, index, true, t.value),
                }
                if let Some(d) = derived {
                    self.resolve(&d, Value::Nil);
                }
                None
            }
            Handler::EntryDone(n) => {
                if n == self.entries {
                    self.entry = Some(Entry::Over(outcome));
                }
                None
            }
        }
    }

    fn die(&mut self, vm: &mut Vm, thrown: &Thrown, headline: &str) {
        if self.fatal.is_some() {
            return;
        }
        report_uncaught(vm, thrown, headline, self.config.color);
        if !self.session {
            self.fatal = Some(super::stop_status(thrown));
        }
    }

    /// Node's processPromiseRejections: the first rejection still
    /// unhandled is fatal. Returns whether there was anything to process.
    fn process_rejections(&mut self, vm: &mut Vm) -> bool {
        if self.pending_rejections.is_empty() {
            return false;
        }
        for p in std::mem::take(&mut self.pending_rejections) {
            if p.handled() {
                continue;
            }
            if let State::Rejected(thrown) = p.core.state() {
                self.die(vm, &thrown, "unhandled promise rejection");
                if self.session {
                    continue;
                }
                vm.eprint("note: Node ends the process on an unhandled rejection (exit status 1); pending timers never run\n");
                break;
            }
        }
        true
    }

    /// Node's processTicksAndRejections, one job at a time: ticks, then the
    /// whole microtask queue, until both are empty; then rejections.
    /// Returns whether it did anything.
    fn checkpoint_step(&mut self, vm: &mut Vm) -> bool {
        if self.in_microtasks {
            if let Some(job) = self.microtasks.pop_front() {
                self.record(None, || EventKind::Dequeued { queue: "microtask" });
                self.run_job(vm, job);
                return true;
            }
            self.in_microtasks = false;
        }
        if let Some(job) = self.next_ticks.pop_front() {
            self.record(None, || EventKind::Dequeued { queue: "nextTick" });
            self.run_job(vm, job);
            return true;
        }
        if let Some(job) = self.microtasks.pop_front() {
            self.record(None, || EventKind::Dequeued { queue: "microtask" });
            self.in_microtasks = true;
            self.run_job(vm, job);
            return true;
        }
        self.process_rejections(vm)
    }

    /// Nothing is left to run: the program ends — or, in a session, the
    /// loop waits for the next entry.
    fn out_of_work(&mut self, vm: &mut Vm) -> Step {
        if self.session {
            Step::Idle
        } else {
            Step::Finished(self.finish(vm))
        }
    }

    /// The end of the program: nothing queued, no timers.
    fn finish(&mut self, vm: &mut Vm) -> i32 {
        let waiting = vm.live_unit_count();
        if waiting > 0 {
            vm.eprint(&format!(
                "note: the program ended with {waiting} async function(s) still waiting on promises that never settled (Node exits here without a message)\n"
            ));
        }
        self.fatal = Some(0);
        0
    }

    // ---- primitives ----

    /// Calls one of the policy's primitives; `at` is the unit that called
    /// it, if any (a rejection made here is located at that call).
    fn call_primitive(
        &mut self,
        primitive: &Primitive,
        args: Vec<Value>,
        at: Option<(&Vm, UnitId)>,
    ) -> Result<Outcome, Thrown> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
        let rejection = |value: Value| Thrown {
            value,
            origin: at.and_then(|(vm, unit)| vm.origin_of(unit)),
        };
        let value = match &primitive.op {
            Op::Sleep => {
                let p = Promise::new();
                let (_, delay) =
                    self.add_timer(&arg(0), "sleep", |_, _| TimerAction::Settle(p.clone()))?;
                // `as` truncates (as `trunc`, without its call: a delay is >= 1).
                self.last_sleep = Some((delay as u64, Hc::as_ptr(&p) as usize));
                Value::from(p)
            }
            Op::Work => {
                let ns = duration_ns(&arg(0), "work()")?;
                self.clock.charge(ns);
                let now = self.clock.now_ns();
                if super::past_time_limit(&self.config, now) {
                    // Located by the caller (`run_chain`), which stops the run.
                    return Err(super::time_limit_error(&self.config, now));
                }
                Value::Nil
            }
            Op::Now => Value::Int((self.clock.now_ns() / NS_PER_MS) as i64),
            Op::SetTimeout | Op::SetInterval => {
                let function = arg(0);
                if !function.is_callable() {
                    return Err(Thrown::error(
                        "TypeError",
                        &format!("{} needs a function to call", primitive.name),
                    ));
                }
                let extra = args.get(2..).map(|a| a.to_vec()).unwrap_or_default();
                let repeat = matches!(primitive.op, Op::SetInterval);
                let (id, _) = self.add_timer(&arg(1), primitive.name, |id, delay| {
                    TimerAction::Call(Box::new(CallTimer {
                        id,
                        idle_timeout: delay,
                        repeat,
                        function,
                        args: extra.into_boxed_slice(),
                    }))
                })?;
                Value::Int(id as i64)
            }
            Op::ClearTimeout => {
                if let Value::Int(id) = arg(0) {
                    self.clear_timer(id as u64);
                }
                Value::Nil
            }
            Op::SetImmediate => {
                let function = arg(0);
                if !function.is_callable() {
                    return Err(Thrown::error(
                        "TypeError",
                        "set_immediate needs a function to call",
                    ));
                }
                let id = self.new_id();
                self.immediates.push_back(Immediate {
                    id,
                    function,
                    args: args.get(1..).map(|a| a.to_vec()).unwrap_or_default(),
                });
                Value::Int(id as i64)
            }
            Op::ClearImmediate => {
                if let Value::Int(id) = arg(0) {
                    let id = id as u64;
                    self.immediates.retain(|i| i.id != id);
                    self.check_batch.retain(|i| i.id != id);
                }
                Value::Nil
            }
            Op::AsyncioOnly(instead) => {
                return Err(Thrown::error(
                    "TypeError",
                    &format!(
                        "{}() is asyncio's (CPython), not available under js: {instead}",
                        primitive.name
                    ),
                ));
            }
            Op::QueueMicrotask | Op::NextTick => {
                let tick = matches!(primitive.op, Op::NextTick);
                let function = arg(0);
                if !function.is_callable() {
                    return Err(Thrown::error(
                        "TypeError",
                        &format!("{} needs a function", primitive.name),
                    ));
                }
                let extra = if tick {
                    args.get(1..).map(|a| a.to_vec()).unwrap_or_default()
                } else {
                    Vec::new()
                };
                let job = Job::Call {
                    function,
                    args: extra,
                };
                super::memory_check()?;
                if tick {
                    self.next_ticks.push_back(job);
                } else {
                    self.microtasks.push_back(job);
                }
                Value::Nil
            }
            Op::NewPromise => {
                let executor = arg(0);
                if !executor.is_callable() {
                    return Err(Thrown::error(
                        "TypeError",
                        "promise() needs an executor function: promise(fn(resolve, reject) { … })",
                    ));
                }
                let p = Promise::new();
                let (resolve, reject, done) = Self::resolving_functions(&p);
                return Ok(Outcome::Call {
                    callee: executor,
                    args: vec![resolve, reject],
                    then: Marked::Executor { promise: p, done },
                });
            }
            Op::PromiseResolve => Value::from(self.promise_resolve(arg(0))),
            Op::PromiseReject => {
                let p = Promise::new();
                self.settle_state(&p, State::Rejected(rejection(arg(0))));
                Value::from(p)
            }
            Op::Combinator(kind) => self.combinator(*kind, primitive.name, arg(0))?,
            Op::Gather => self.combinator(Combinator::All, "all", Value::list(args))?,
            Op::Resolver {
                promise,
                reject,
                done,
            } => {
                if !done.replace(true) {
                    if *reject {
                        self.settle_state(promise, State::Rejected(rejection(arg(0))));
                    } else {
                        self.resolve(promise, arg(0));
                    }
                }
                Value::Nil
            }
            Op::ReturnValue(v) => v.clone(),
            Op::ThrowValue(v) => return Err(Thrown::new(v.clone())),
        };
        Ok(Outcome::Value(value))
    }

    fn combinator(&mut self, kind: Combinator, name: &str, items: Value) -> Result<Value, Thrown> {
        let Value::List(items) = items else {
            return Err(Thrown::error("TypeError", &format!("{name} needs a list")));
        };
        // Read one at a time, not copied: no program code runs meanwhile
        // (`promise_resolve` only queues a thenable's job), so the list
        // cannot change.
        let len = items.borrow().len();
        let item = |i: usize| items.borrow().get(i).cloned().unwrap_or(Value::Nil);
        let result = Promise::new();
        let (resolve, reject, _) = Self::resolving_functions(&result);
        if kind == Combinator::Race {
            for index in 0..len {
                let p = self.promise_resolve(item(index));
                self.then(
                    &p,
                    Handler::Call(resolve.clone()),
                    Handler::Call(reject.clone()),
                    None,
                );
            }
            return Ok(Value::from(result));
        }
        let state = Rc::new(CombinatorState {
            kind,
            result: result.clone(),
            resolve,
            reject,
            remaining: Cell::new(1),
            values: RefCell::new(vec![Value::Nil; len]),
        });
        for index in 0..len {
            state.remaining.set(state.remaining.get() + 1);
            // The reaction `then(step, step)` makes, made directly (a
            // million elements: `sleeping_tasks`); an element that is a
            // promise (PromiseResolve gives it back) is reacted to where
            // it is, without a copy of the element.
            if let Ok(index) = u32::try_from(index) {
                let reaction = Reaction::Step {
                    state: state.clone(),
                    index,
                };
                let reaction = {
                    let items = items.borrow();
                    match items.get(index as usize) {
                        Some(Value::Handle(h)) => {
                            match h.get().as_any().downcast_ref::<Promise>() {
                                Some(p) => {
                                    self.react(p, reaction);
                                    None
                                }
                                None => Some(reaction),
                            }
                        }
                        _ => Some(reaction),
                    }
                };
                if let Some(reaction) = reaction {
                    let p = self.promise_resolve(item(index as usize));
                    self.react(&p, reaction);
                }
                continue;
            }
            let p = self.promise_resolve(item(index));
            let step = || Handler::Step {
                state: state.clone(),
                index,
            };
            self.then(&p, step(), step(), None);
        }
        self.finish_combinator_step(&state);
        Ok(Value::from(result))
    }

    fn finish_combinator_step(&mut self, state: &CombinatorState) {
        let left = state.remaining.get() - 1;
        state.remaining.set(left);
        if left == 0 {
            let values = Value::list(std::mem::take(&mut *state.values.borrow_mut()));
            match state.kind {
                Combinator::Any => {
                    let error = aggregate_error("All promises were rejected", values);
                    self.settle_state(&state.result, State::Rejected(Thrown::new(error)));
                }
                _ => self.resolve(&state.result, values),
            }
        }
    }

    fn combinator_step(
        &mut self,
        state: &Rc<CombinatorState>,
        index: usize,
        rejected: bool,
        value: Value,
    ) {
        let entry = match (state.kind, rejected) {
            (Combinator::AllSettled, false) => settled_record("fulfilled", "value", value),
            (Combinator::AllSettled, true) => settled_record("rejected", "reason", value),
            _ => value,
        };
        if let Some(slot) = state.values.borrow_mut().get_mut(index) {
            *slot = entry;
        }
        self.finish_combinator_step(state);
    }
}

/// The `then` of a thenable that is not a promise: a map whose `then`
/// field is callable (ECMAScript: an object with a callable `then`).
fn thenable_then(value: &Value) -> Option<Value> {
    match value {
        Value::Map(map) => map
            .borrow()
            .get("then")
            .filter(|f| f.is_callable())
            .cloned(),
        _ => None,
    }
}

/// A timer's delay as Node's `Timeout` constructor takes it: `after *= 1;
/// if (!(after >= 1 && after <= TIMEOUT_MAX)) after = 1;` — so 0, a
/// negative delay, `nil` and one past TIMEOUT_MAX are all 1 ms. Fractions
/// stay (the list is the truncated duration). Also gives a delay past
/// TIMEOUT_MAX, which Node warns of (`TimeoutOverflowWarning`).
fn node_delay(value: &Value, what: &str) -> Result<(f64, Option<f64>), Thrown> {
    let ms = match value {
        Value::Int(n) => *n as f64,
        Value::Float(x) => *x,
        Value::Nil => f64::NAN,
        other => {
            return Err(Thrown::error(
                "TypeError",
                &format!("{what} needs a delay in ms, not {}", other.a_type()),
            ));
        }
    };
    Ok(if (1.0..=TIMEOUT_MAX_MS).contains(&ms) {
        (ms, None)
    } else if ms > TIMEOUT_MAX_MS {
        (1.0, Some(ms))
    } else {
        (1.0, None)
    })
}

fn settled_record(status: &str, key: &str, value: Value) -> Value {
    let mut map = Map::default();
    map.insert(Rc::from("status"), Value::str(status));
    map.insert(Rc::from(key), value);
    Value::map(map)
}

/// `AggregateError` with its `errors` list.
fn aggregate_error(message: &str, errors: Value) -> Value {
    Value::Error(Rc::new(crate::value::ErrorValue {
        kind: Rc::from("AggregateError"),
        message: Rc::from(message),
        errors,
        cancellation: false,
    }))
}

impl Policy for Js {
    /// Nothing of node's reports on collection (an unhandled rejection is
    /// reported when the microtasks drain).
    fn collection_is_silent(&self) -> bool {
        true
    }

    fn load(&mut self, _vm: &mut Vm, global_names: &[Rc<str>], main: Rc<Closure>) {
        install_globals(&mut self.globals, global_names, global);
        self.script = Some(main);
    }

    fn step(&mut self, vm: &mut Vm) -> Step {
        if let Some(status) = self.fatal {
            return Step::Finished(status);
        }
        // 1. The script: the first macrotask.
        if let Some(main) = self.script.take() {
            let is_async = main.function.is_async;
            let name = main.function.name.clone();
            let unit = vm.new_unit(main, Vec::new());
            self.record(Some(unit), || EventKind::Created { name });
            let promise = is_async.then(Promise::new);
            if let Some(p) = &promise {
                self.set_promise(unit, Some(p.clone()));
            }
            match (self.run_chain(vm, unit), promise) {
                (Ended::Limit(t), _) => self.die(vm, &t, "uncaught exception"),
                (_, Some(p)) if self.session => {
                    let done = Handler::EntryDone(self.entries);
                    self.then(&p, done.clone(), done, None)
                }
                (Ended::Threw(t), _) if self.session => self.entry = Some(Entry::Over(Err(t))),
                (Ended::Done(v), _) if self.session => self.entry = Some(Entry::Over(Ok(v))),
                (Ended::Threw(t), _) => self.die(vm, &t, "uncaught exception"),
                _ => {}
            }
            self.stage = Stage::LoopStart;
            return Step::Ran;
        }
        // 2. The microtask checkpoint after every macrotask.
        if self.checkpoint_step(vm) {
            return Step::Ran;
        }
        // 3. The event loop's phases (libuv's uv_run, as Node drives it).
        loop {
            match self.stage {
                Stage::Script => self.stage = Stage::LoopStart,
                Stage::LoopStart => {
                    if !self.alive() {
                        return self.out_of_work(vm);
                    }
                    self.first_timers_choice();
                    self.enter_timers();
                }
                Stage::Timers { now, mut cursor } => match self.timers.next_due(now, &mut cursor) {
                    Next::Run(timer) => {
                        self.stage = Stage::Timers { now, cursor };
                        self.fire(vm, timer);
                        return Step::Ran;
                    }
                    Next::Done => {
                        self.timers.finish_phase();
                        self.stage = Stage::Poll;
                    }
                },
                Stage::Poll => {
                    if !self.alive() {
                        return self.out_of_work(vm);
                    }
                    self.stage = Stage::Check;
                    // The batch is the immediates queued so far; the
                    // last batch, run to its end, lends its buffer to the
                    // next (no empty queue dropped and made each turn).
                    if self.check_batch.is_empty() {
                        std::mem::swap(&mut self.check_batch, &mut self.immediates);
                    } else {
                        self.check_batch = std::mem::take(&mut self.immediates);
                    }
                    if self.check_batch.is_empty() {
                        // Nothing else to do: sleep until the timer handle.
                        let Some(due) = self.timers.handle_due else {
                            return self.out_of_work(vm);
                        };
                        let target = due * NS_PER_MS;
                        if target > self.clock.now_ns() {
                            if super::past_time_limit(&self.config, target) {
                                let thrown = super::locate(
                                    vm,
                                    None,
                                    super::time_limit_error(&self.config, target),
                                );
                                report_uncaught(vm, &thrown, "stopped", self.config.color);
                                self.fatal = Some(1);
                                return Step::Finished(1);
                            }
                            // (`--real-time` only: a call less a turn.)
                            if self.config.real_time {
                                super::pace(vm, &self.config, target);
                            }
                            self.clock.advance_to(target);
                            self.record(None, || EventKind::Idle { to_ns: target });
                            return Step::Ran;
                        }
                    }
                }
                Stage::Check => match self.check_batch.pop_front() {
                    Some(immediate) => {
                        self.record(None, || EventKind::Dequeued { queue: "immediate" });
                        self.run_job(
                            vm,
                            Job::Call {
                                function: immediate.function,
                                args: immediate.args,
                            },
                        );
                        return Step::Ran;
                    }
                    None => self.enter_timers(),
                },
            }
        }
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

    fn load_entry(&mut self, _vm: &mut Vm, global_names: &[Rc<str>], entry: Rc<Closure>) {
        self.session = true;
        install_globals(&mut self.globals, global_names, global);
        self.script = Some(entry);
        self.entry = Some(Entry::Running);
        self.entries += 1;
    }

    fn take_entry_outcome(&mut self) -> Option<Result<Value, Thrown>> {
        match self.entry.take()? {
            Entry::Over(outcome) => Some(outcome),
            Entry::Running => {
                self.entry = Some(Entry::Running);
                None
            }
        }
    }

    fn queues(&self, vm: &Vm) -> super::Queues {
        let describe = |job: &Job| describe_job(job, vm);
        let mut queues = Vec::new();
        if let Some(script) = &self.script {
            queues.push((
                "script",
                vec![format!("run `{}` (the entry)", script.function.name)],
            ));
        }
        queues.push(("nextTick", self.next_ticks.iter().map(describe).collect()));
        queues.push(("microtask", self.microtasks.iter().map(describe).collect()));
        queues.push((
            "immediate",
            self.check_batch
                .iter()
                .chain(self.immediates.iter())
                .map(|i| format!("call {}", super::describe_callee(&i.function)))
                .collect(),
        ));
        let timers = self
            .timers
            .waiting()
            .into_iter()
            .map(|(due_ms, action)| (due_ms * NS_PER_MS, describe(&action.job())))
            .collect();
        super::Queues { queues, timers }
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
        self.script = None;
        self.next_ticks.clear();
        self.microtasks.clear();
        self.in_microtasks = false;
        self.timers.clear();
        self.immediates.clear();
        self.check_batch.clear();
        self.stage = Stage::LoopStart;
    }
}

/// One line on what a queued job will do (the REPL's `:queues`).
fn describe_job(job: &Job, vm: &Vm) -> String {
    let handler = |h: &Handler| match h {
        Handler::Pass => "pass the outcome on to the next promise".to_string(),
        Handler::Call(f) => format!("call {}", super::describe_callee(f)),
        Handler::Finally(f) => format!("call {} (finally)", super::describe_callee(f)),
        Handler::Resume(unit) => format!("resume `{}` after its await", vm.unit_name(*unit)),
        Handler::Step { .. } => "call [Function: combinatorstep]".to_string(),
        Handler::EntryDone(_) => "show the entry's value (the REPL)".to_string(),
    };
    match job {
        Job::Reaction {
            handler: Handler::Step { state, .. },
            outcome,
            ..
        } if state.target(outcome.is_err()).is_some() => {
            let function = state
                .target(outcome.is_err())
                .cloned()
                .unwrap_or(Value::Nil);
            format!("promise reaction: {}", handler(&Handler::Call(function)))
        }
        Job::Reaction { handler: h, .. } => format!("promise reaction: {}", handler(h)),
        Job::ResolveThenable { .. } => "resolve a promise with a promise (adopt its state)".into(),
        Job::CallThen { then, .. } => {
            format!("adopt a thenable: call {}", super::describe_callee(then))
        }
        Job::Call { function, .. } => format!("call {}", super::describe_callee(function)),
        Job::Settle { .. } | Job::WakeSleeper(_) => "settle a sleep's promise".into(),
        Job::Warn(_) => "print a warning (process.emitWarning)".into(),
    }
}

#[cfg(test)]
mod sizes {
    use super::*;

    /// What a task costs (`programs/bench/sleeping_tasks.lab`): an async
    /// function's promise with its one reaction inline, a timer per sleep.
    #[test]
    fn per_task_records_stay_small() {
        use std::mem::size_of;
        eprintln!(
            "Promise {} Reaction {} Handler {} TimerAction (a waiting sleep's timer) {}",
            size_of::<Promise>(),
            size_of::<Reaction>(),
            size_of::<Handler>(),
            size_of::<TimerAction>(),
        );
        assert!(size_of::<TimerAction>() <= 16);
        assert!(size_of::<CallTimer>() <= 64);
        assert!(size_of::<Reaction>() <= 16);
        assert!(size_of::<Promise>() <= 64);
    }
}
