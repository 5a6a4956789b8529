//! The js policy: Node.js's event loop, as `node file.js` runs a CommonJS
//! script.
//!
//! Invariants, in Node's order:
//! 1. The script is the first macrotask (an `async main` if it awaits).
//! 2. After every macrotask: run the nextTick queue, then the microtask
//!    queue, repeating until both are empty; then process unhandled
//!    rejections (one still unhandled is fatal: report it, exit 1, pending
//!    timers never run).
//! 3. Timers fire by due time, ties in creation order. A timer's due time is
//!    `floor(now in ms) + max(1, ceil(delay))`, Node's whole-millisecond
//!    clock. The timers phase runs every timer due at its start, draining
//!    (2) after each callback.
//! 4. Promises follow ECMAScript: reactions are microtasks; resolving with a
//!    promise takes a NewPromiseResolveThenableJob (two extra ticks);
//!    `await v` takes one tick for a native promise or a plain value.
//! 5. An uncaught exception in any callback ends the process with status 1.
//! 6. With no queued work and no timers the process ends, even with
//!    promises still pending (Node exits silently; we add a note on stderr).
//!
//! How the loop is driven: `step` does one thing — runs one job (the
//! script, a tick, a microtask, a timer callback) or moves the clock to the
//! next timer. A job runs a chain of units: an async function called from
//! a unit starts at once in a unit of its own while the caller waits (the
//! chain), until it awaits or ends; then the caller goes on with its
//! promise. Every unit runs with an unbounded slice: nothing preempts
//! JavaScript.

use super::chooser::{Chooser, FirstCandidate};
use super::clock::Clock;
use super::events::{EventKind, EventLog};
use super::promise::{Core, State, Timers};
use super::{
    Policy, PolicyInfo, RunConfig, Step, duration_ns, handle_of, install_globals, report_uncaught,
    step_limit_error,
};
use crate::value::{Closure, Flavor, Handle, Map, Value};
use crate::vm::{
    Dialect, Globals, Halt, MAX_FRAMES, ModuloSign, ResumeWith, RoundHalves, Thrown, UnitId, Vm,
    ZeroDivision,
};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

pub const INFO: PolicyInfo = PolicyInfo {
    name: "js",
    about: "Node.js's event loop: nextTick and microtask queues, whole-millisecond timers",
    dialect: &DIALECT,
    make: |config| Box::new(Js::new(config)),
};

/// JavaScript's answers: `[]` is true, `1 / 0` is `Infinity`, `-7 % 2` is
/// `-1`, `Math.round(2.5)` is 3, values print as `console.log` shows them.
pub const DIALECT: Dialect = Dialect {
    style: Flavor::Js,
    empty_containers_truthy: true,
    zero_division: ZeroDivision::Ieee,
    modulo_sign: ModuloSign::Dividend,
    round_halves: RoundHalves::Up,
};

const NS_PER_MS: u64 = 1_000_000;
/// Node's TIMEOUT_MAX: longer delays become 1 ms.
const TIMEOUT_MAX_MS: f64 = 2_147_483_647.0;

// ---- promises ----

/// A JavaScript promise.
pub struct Promise {
    core: Core<Reaction>,
    /// A handler was attached (so a rejection is not "unhandled").
    handled: Cell<bool>,
}

type P = Rc<Promise>;

impl Promise {
    fn new() -> P {
        Rc::new(Promise {
            core: Core::new(),
            handled: Cell::new(false),
        })
    }
    fn fulfilled(value: Value) -> P {
        Rc::new(Promise {
            core: Core::with_state(State::Fulfilled(value)),
            handled: Cell::new(false),
        })
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
    fn into_any(self: Rc<Self>) -> Rc<dyn Any> {
        self
    }
}

impl Drop for Promise {
    /// A chain of `then`s (each promise's reaction holds the next) drops
    /// link by link, not by recursion.
    fn drop(&mut self) {
        let reactions = self.core.take_reactions();
        crate::value::drop_later(
            reactions
                .into_iter()
                .filter_map(|r| r.derived.map(|d| Value::Handle(d)))
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
}

struct Reaction {
    on_fulfilled: Handler,
    on_rejected: Handler,
    derived: Option<P>,
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
    /// Call a function (timer callback, microtask, tick).
    Call { function: Value, args: Vec<Value> },
    /// Resolve a promise (a `sleep` timer firing).
    Settle { promise: P, value: Value },
}

// ---- primitives ----

/// One of the policy's primitives, as a callable value.
struct Primitive {
    name: &'static str,
    op: Op,
}

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
    Combinator(Combinator),
    /// A promise's resolve or reject function (sharing "already resolved").
    Resolver {
        promise: P,
        reject: bool,
        done: Rc<Cell<bool>>,
    },
    /// A combinator's per-element reaction.
    CombinatorStep {
        state: Rc<CombinatorState>,
        index: usize,
        rejected: bool,
    },
    /// `.finally` helpers: return / throw a saved value.
    ReturnValue(Value),
    ThrowValue(Value),
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
    remaining: Cell<usize>,
    values: RefCell<Vec<Value>>,
    called: RefCell<Vec<bool>>,
}

impl Handle for Primitive {
    fn type_name(&self) -> &'static str {
        "function"
    }
    fn describe(&self, out: &mut String, _: &mut dyn FnMut(&mut String, &Value)) {
        out.push_str(&format!("[Function: {}]", self.name));
    }
    fn is_callable(&self) -> bool {
        true
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Rc<Self>) -> Rc<dyn Any> {
        self
    }
}

fn primitive(name: &'static str, op: Op) -> Value {
    Value::Handle(Rc::new(Primitive { name, op }))
}

/// The value of a predefined global under js.
fn global(name: &str) -> Option<Value> {
    let op = match name {
        "sleep" => Op::Sleep,
        "work" => Op::Work,
        "now" => Op::Now,
        "set_timeout" => Op::SetTimeout,
        "clear_timeout" => Op::ClearTimeout,
        "queue_microtask" => Op::QueueMicrotask,
        "next_tick" => Op::NextTick,
        "promise" => Op::NewPromise,
        "gather" => Op::Gather,
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
    /// `promise(executor)`: evaluates to the promise; a throw rejects it.
    Executor(P),
    /// `spawn f()` of a plain function: its result, wrapped in a promise.
    WrapInPromise,
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
    timers: Timers<Job>,
    /// The timers phase in progress: the time it started at (ms).
    timers_phase: Option<u64>,
    pending_rejections: Vec<P>,
    fatal: Option<i32>,
    /// The script, until its first step runs it.
    script: Option<Rc<Closure>>,
    /// The promise each unit settles when it ends (an async function's).
    unit_promises: Vec<Option<P>>,
    /// Calls pushed into units with a mark (mark = index + 1).
    marked: Vec<Option<Marked>>,
    free_marks: Vec<u32>,
    events: EventLog,
    #[allow(dead_code)]
    chooser: Box<dyn Chooser>,
    /// Last, so it is dropped after the queues (as CPython and Node tear
    /// down): the program's globals.
    globals: Globals,
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
            timers: Timers::default(),
            timers_phase: None,
            pending_rejections: Vec::new(),
            fatal: None,
            script: None,
            unit_promises: Vec::new(),
            marked: Vec::new(),
            free_marks: Vec::new(),
            chooser: Box::new(FirstCandidate),
            globals: Globals::default(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ns() / NS_PER_MS
    }

    fn record(&mut self, unit: Option<UnitId>, kind: impl FnOnce() -> EventKind) {
        self.events.record(self.clock.now_ns(), unit, kind);
    }

    fn add_timer(&mut self, delay: &Value, job: Job) -> Result<u64, Thrown> {
        let ms = duration_ns(delay, "a timer")? as f64 / NS_PER_MS as f64;
        let ms = if (1.0..=TIMEOUT_MAX_MS).contains(&ms) {
            ms.ceil() as u64
        } else {
            1
        };
        super::memory_check()?;
        let due = self.now_ms().saturating_add(ms);
        Ok(self.timers.add(due, job))
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
        if rejected && reactions.is_empty() && !p.handled.get() {
            self.pending_rejections.push(p.clone());
        }
        for reaction in reactions {
            self.queue_reaction(reaction, outcome.clone());
        }
    }

    fn queue_reaction(&mut self, reaction: Reaction, outcome: Result<Value, Thrown>) {
        let handler = if outcome.is_ok() {
            reaction.on_fulfilled
        } else {
            reaction.on_rejected
        };
        self.microtasks.push_back(Job::Reaction {
            handler,
            derived: reaction.derived,
            outcome,
        });
    }

    /// ECMAScript's promise resolve function.
    fn resolve(&mut self, p: &P, value: Value) {
        if !p.core.is_pending() {
            return;
        }
        match handle_of::<Promise>(&value) {
            Some(thenable) if Rc::ptr_eq(&thenable, p) => {
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
            None => self.settle_state(p, State::Fulfilled(value)),
        }
    }

    fn settle(&mut self, p: &P, result: Result<Value, Thrown>) {
        match result {
            Ok(v) => self.resolve(p, v),
            Err(t) => self.settle_state(p, State::Rejected(t)),
        }
    }

    /// PromiseResolve(v): a promise is itself, anything else a fulfilled promise.
    fn promise_resolve(value: Value) -> P {
        handle_of::<Promise>(&value).unwrap_or_else(|| Promise::fulfilled(value))
    }

    /// Adds a reaction (`then`).
    fn then(&mut self, p: &P, on_fulfilled: Handler, on_rejected: Handler, derived: Option<P>) {
        p.handled.set(true);
        let reaction = Reaction {
            on_fulfilled,
            on_rejected,
            derived,
        };
        match p.core.state() {
            State::Pending => p.core.add_reaction(reaction),
            State::Fulfilled(v) => self.queue_reaction(reaction, Ok(v)),
            State::Rejected(t) => self.queue_reaction(reaction, Err(t)),
        }
    }

    /// A promise's resolve and reject functions, sharing "already resolved".
    fn resolving_functions(p: &P) -> (Value, Value) {
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
        (make(false, "resolver"), make(true, "resolver"))
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
        Ok(Value::Handle(derived))
    }

    // ---- running units ----

    /// Runs `unit` and every unit it starts synchronously, until the chain
    /// is back to nothing: the policy's own loop over the VM's halts.
    fn run_chain(&mut self, vm: &mut Vm, unit: UnitId) -> Ended {
        let mut chain: Vec<UnitId> = vec![unit];
        while let Some(&top) = chain.last() {
            let stop = vm.run(top, &mut self.globals, super::SLICE);
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
                            vm.resume(caller, ResumeWith::Value(Value::Handle(p)))
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
                            vm.resume(caller, ResumeWith::Value(Value::Handle(p)));
                        }
                        (None, Some(p)) => {
                            self.settle_state(&p, State::Rejected(thrown));
                            return Ended::Settled;
                        }
                        (_, None) => return Ended::Threw(thrown),
                    }
                }
                Halt::Await(value) => {
                    self.record(Some(top), || EventKind::Suspended);
                    let p = Self::promise_resolve(value);
                    self.then(&p, Handler::Resume(top), Handler::Resume(top), None);
                    chain.pop();
                    match chain.last() {
                        Some(&caller) => {
                            let p = self
                                .promise_of(top)
                                .map_or(Value::Nil, |p| Value::Handle(p));
                            vm.resume(caller, ResumeWith::Value(p));
                        }
                        None => return Ended::Parked,
                    }
                }
                Halt::CallAsync { closure, args } => {
                    self.start_async(vm, &mut chain, closure, args)
                }
                Halt::Spawn { callee, args } => match callee {
                    Value::Closure(c) if c.function.is_async => {
                        self.start_async(vm, &mut chain, c, args)
                    }
                    callee if callee.is_callable() => {
                        self.call_in_unit(vm, &mut chain, callee, args, Marked::WrapInPromise)
                    }
                    other => vm.resume(
                        top,
                        ResumeWith::Raise(Thrown::error(
                            "TypeError",
                            &format!("spawn needs a function, not a {}", other.type_name()),
                        )),
                    ),
                },
                Halt::Primitive { primitive, args } => {
                    let result = match super::downcast::<Primitive>(&primitive) {
                        Some(p) => self.call_primitive(&p, args),
                        None => Err(Thrown::error(
                            "TypeError",
                            &format!("cannot call a {}", primitive.type_name()),
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
                        Ok(Outcome::Value(v)) => vm.resume(top, ResumeWith::Value(v)),
                        Ok(Outcome::Call { callee, args, then }) => {
                            self.call_in_unit(vm, &mut chain, callee, args, then)
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
                            &format!("a {} has no method `{name}`", receiver.type_name()),
                        )),
                    };
                    match result {
                        Ok(v) => vm.resume(top, ResumeWith::Value(v)),
                        Err(thrown) => vm.resume(top, ResumeWith::Raise(thrown)),
                    }
                }
                Halt::Returned { mark, value } => {
                    let v = match self.take_mark(mark) {
                        Some(Marked::Executor(p)) => Value::Handle(p),
                        Some(Marked::WrapInPromise) => Value::Handle(Promise::fulfilled(value)),
                        None => value,
                    };
                    vm.resume(top, ResumeWith::Value(v));
                }
                Halt::Unwound { mark, thrown } => match self.take_mark(mark) {
                    Some(Marked::Executor(p)) => {
                        self.settle_state(&p, State::Rejected(thrown));
                        vm.resume(top, ResumeWith::Value(Value::Handle(p)));
                    }
                    _ => vm.resume(top, ResumeWith::Throw(thrown)),
                },
                Halt::Preempted => {
                    match super::check(vm, Some(top), &self.config, self.clock.now_ns()) {
                        super::Check::Go => {}
                        super::Check::Raise(thrown) => vm.resume(top, ResumeWith::Raise(thrown)),
                        super::Check::Stop(thrown) => return Ended::Limit(thrown),
                    }
                }
                Halt::StepLimit(at) => return Ended::Limit(step_limit_error(vm, at)),
            }
        }
        Ended::Parked
    }

    /// An async function called from `chain`'s top unit starts now, in a
    /// unit of its own; the caller waits for it to await or end.
    fn start_async(
        &mut self,
        vm: &mut Vm,
        chain: &mut Vec<UnitId>,
        closure: Rc<Closure>,
        args: Vec<Value>,
    ) {
        let name = closure.function.name.clone();
        let unit = vm.new_unit(closure, args);
        self.set_promise(unit, Some(Promise::new()));
        self.record(Some(unit), || EventKind::Created { name });
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
            Value::Closure(c) if c.function.is_async => self.start_async(vm, chain, c, args),
            Value::Closure(c) => {
                let mark = self.add_mark(then);
                if let Err(thrown) = vm.push_call(top, c, args, mark) {
                    self.take_mark(mark);
                    vm.resume(top, ResumeWith::Raise(thrown));
                }
            }
            other => {
                let result = self.call_now(vm, &other, args).map(|v| match (then, v) {
                    (Marked::WrapInPromise, Some(v)) => Value::Handle(Promise::fulfilled(v)),
                    (Marked::Executor(p), _) => Value::Handle(p),
                    (_, v) => v.unwrap_or(Value::Nil),
                });
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
                Some(p) => match self.call_primitive(&p, args)? {
                    Outcome::Value(v) => Ok(Some(v)),
                    Outcome::Call { .. } => Ok(None),
                },
                None => Err(Thrown::error(
                    "TypeError",
                    &format!("cannot call a {}", h.type_name()),
                )),
            },
            other => Err(Thrown::error(
                "TypeError",
                &format!("cannot call a {} as a callback", other.type_name()),
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
                let promise = Promise::new();
                self.set_promise(unit, Some(promise.clone()));
                if let Ended::Limit(t) = self.run_chain(vm, unit) {
                    return Some(t);
                }
                if let Some(d) = derived {
                    self.resolve(&d, Value::Handle(promise));
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
            Value::Closure(c) if !c.function.is_async => {
                let unit = vm.new_unit(c.clone(), Vec::new());
                match self.run_chain(vm, unit) {
                    Ended::Done(v) => Ok(v),
                    Ended::Threw(t) => Err(t),
                    Ended::Limit(t) => return Some(t),
                    Ended::Parked | Ended::Settled => Ok(Value::Nil),
                }
            }
            f if f.is_callable() => {
                let tmp = Promise::new();
                if let Some(t) = self.invoke(vm, f, Vec::new(), Some(tmp.clone())) {
                    return Some(t);
                }
                Ok(Value::Handle(tmp))
            }
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
                let p2 = Self::promise_resolve(r);
                let thunk = match outcome {
                    Ok(v) => primitive("returnvalue", Op::ReturnValue(v)),
                    Err(t) => primitive("throwvalue", Op::ThrowValue(t.value)),
                };
                let q = Promise::new();
                self.then(
                    &p2,
                    Handler::Call(thunk.clone()),
                    Handler::Call(thunk),
                    Some(q.clone()),
                );
                self.resolve(&derived, Value::Handle(q));
            }
        }
        None
    }

    fn run_job(&mut self, vm: &mut Vm, job: Job) {
        let uncaught = match job {
            Job::Reaction {
                handler,
                derived,
                outcome,
            } => self.run_reaction(vm, handler, derived, outcome),
            Job::ResolveThenable { promise, thenable } => {
                let (resolve, reject) = Self::resolving_functions(&promise);
                self.then(
                    &thenable,
                    Handler::Call(resolve),
                    Handler::Call(reject),
                    None,
                );
                None
            }
            Job::Call { function, args } => self.invoke(vm, &function, args, None),
            Job::Settle { promise, value } => {
                self.resolve(&promise, value);
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
                    Err(t) => t.value,
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
        }
    }

    fn die(&mut self, vm: &mut Vm, thrown: &Thrown, headline: &str) {
        if self.fatal.is_some() {
            return;
        }
        report_uncaught(vm, thrown, headline, self.config.color);
        self.fatal = Some(super::stop_status(thrown));
    }

    /// Node's processPromiseRejections: the first rejection still
    /// unhandled is fatal. Returns whether there was anything to process.
    fn process_rejections(&mut self, vm: &mut Vm) -> bool {
        if self.pending_rejections.is_empty() {
            return false;
        }
        for p in std::mem::take(&mut self.pending_rejections) {
            if p.handled.get() {
                continue;
            }
            if let State::Rejected(thrown) = p.core.state() {
                self.die(vm, &thrown, "unhandled promise rejection");
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

    /// The end of the program: nothing queued, no timers.
    fn finish(&mut self, vm: &mut Vm) -> i32 {
        let waiting = vm
            .live_units()
            .filter(|(_, f)| !f.frames.is_empty())
            .count();
        if waiting > 0 {
            vm.eprint(&format!(
                "note: the program ended with {waiting} async function(s) still waiting on promises that never settled (Node exits here without a message)\n"
            ));
        }
        self.fatal = Some(0);
        0
    }

    // ---- primitives ----

    fn call_primitive(
        &mut self,
        primitive: &Primitive,
        args: Vec<Value>,
    ) -> Result<Outcome, Thrown> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
        let value = match &primitive.op {
            Op::Sleep => {
                let p = Promise::new();
                self.add_timer(
                    &arg(0),
                    Job::Settle {
                        promise: p.clone(),
                        value: Value::Nil,
                    },
                )?;
                Value::Handle(p)
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
            Op::SetTimeout => {
                let function = arg(0);
                if !function.is_callable() {
                    return Err(Thrown::error(
                        "TypeError",
                        "set_timeout needs a function to call",
                    ));
                }
                let extra = args.get(2..).map(|a| a.to_vec()).unwrap_or_default();
                let job = Job::Call {
                    function,
                    args: extra,
                };
                Value::Int(self.add_timer(&arg(1), job)? as i64)
            }
            Op::ClearTimeout => {
                if let Value::Int(id) = arg(0) {
                    self.timers.cancel(id as u64);
                }
                Value::Nil
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
                let (resolve, reject) = Self::resolving_functions(&p);
                return Ok(Outcome::Call {
                    callee: executor,
                    args: vec![resolve, reject],
                    then: Marked::Executor(p),
                });
            }
            Op::PromiseResolve => Value::Handle(Self::promise_resolve(arg(0))),
            Op::PromiseReject => {
                let p = Promise::new();
                self.settle_state(&p, State::Rejected(Thrown::new(arg(0))));
                Value::Handle(p)
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
                        self.settle_state(promise, State::Rejected(Thrown::new(arg(0))));
                    } else {
                        self.resolve(promise, arg(0));
                    }
                }
                Value::Nil
            }
            Op::CombinatorStep {
                state,
                index,
                rejected,
            } => {
                self.combinator_step(state, *index, *rejected, arg(0));
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
        let items = items.borrow().clone();
        let result = Promise::new();
        let (resolve, reject) = Self::resolving_functions(&result);
        if kind == Combinator::Race {
            for item in items {
                let p = Self::promise_resolve(item);
                self.then(
                    &p,
                    Handler::Call(resolve.clone()),
                    Handler::Call(reject.clone()),
                    None,
                );
            }
            return Ok(Value::Handle(result));
        }
        let state = Rc::new(CombinatorState {
            kind,
            result: result.clone(),
            remaining: Cell::new(1),
            values: RefCell::new(vec![Value::Nil; items.len()]),
            called: RefCell::new(vec![false; items.len()]),
        });
        for (index, item) in items.into_iter().enumerate() {
            state.remaining.set(state.remaining.get() + 1);
            let p = Self::promise_resolve(item);
            let step = |rejected| {
                Handler::Call(primitive(
                    "combinatorstep",
                    Op::CombinatorStep {
                        state: state.clone(),
                        index,
                        rejected,
                    },
                ))
            };
            let (on_ok, on_err) = match kind {
                Combinator::All => (step(false), Handler::Call(reject.clone())),
                Combinator::AllSettled => (step(false), step(true)),
                _ => (Handler::Call(resolve.clone()), step(true)),
            };
            self.then(&p, on_ok, on_err, None);
        }
        self.finish_combinator_step(&state);
        Ok(Value::Handle(result))
    }

    fn finish_combinator_step(&mut self, state: &CombinatorState) {
        let left = state.remaining.get() - 1;
        state.remaining.set(left);
        if left == 0 {
            let values = Value::list(state.values.borrow().clone());
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
        if std::mem::replace(&mut state.called.borrow_mut()[index], true) {
            return;
        }
        let entry = match (state.kind, rejected) {
            (Combinator::AllSettled, false) => settled_record("fulfilled", "value", value),
            (Combinator::AllSettled, true) => settled_record("rejected", "reason", value),
            _ => value,
        };
        state.values.borrow_mut()[index] = entry;
        self.finish_combinator_step(state);
    }
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
    fn name(&self) -> &'static str {
        INFO.name
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
            if is_async {
                self.set_promise(unit, Some(Promise::new()));
            }
            match self.run_chain(vm, unit) {
                Ended::Threw(t) | Ended::Limit(t) => self.die(vm, &t, "uncaught exception"),
                _ => {}
            }
            return Step::Ran;
        }
        // 2. The microtask checkpoint after every macrotask.
        if self.checkpoint_step(vm) {
            return Step::Ran;
        }
        // 3. The timers phase: every timer due at its start.
        if let Some(now) = self.timers_phase {
            if let Some(job) = self.timers.pop_due(now) {
                self.record(None, || EventKind::TimerDue);
                self.run_job(vm, job);
                return Step::Ran;
            }
            self.timers_phase = None;
        }
        let now = self.now_ms();
        if let Some(job) = self.timers.pop_due(now) {
            self.timers_phase = Some(now);
            self.record(None, || EventKind::TimerDue);
            self.run_job(vm, job);
            return Step::Ran;
        }
        // 4. Idle: sleep until the next timer, or end.
        match self.timers.next_due() {
            Some(due) => {
                let target = due.saturating_mul(NS_PER_MS);
                if super::past_time_limit(&self.config, target) {
                    let thrown =
                        super::locate(vm, None, super::time_limit_error(&self.config, target));
                    report_uncaught(vm, &thrown, "stopped", self.config.color);
                    self.fatal = Some(1);
                    return Step::Finished(1);
                }
                super::pace(vm, &self.config, target);
                self.clock.advance_to(target);
                self.record(None, || EventKind::Idle { to_ns: target });
                Step::Ran
            }
            None => Step::Finished(self.finish(vm)),
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
}
