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
use crate::value::{Closure, Flavor, Handle, Map, Value};
use crate::vm::{Globals, Halt, ResumeWith, Thrown, UnitId, Vm};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

pub const INFO: PolicyInfo = PolicyInfo {
    name: "asyncio",
    about: "CPython 3.11's asyncio: one ready queue, tasks and futures, asyncio.run()",
    dialect: &super::python::DIALECT,
    make: |config| Box::new(Asyncio::new(config)),
};

// ---- futures, tasks, coroutines ----

/// An asyncio future; a task is a future with `TaskInfo`. A cancelled
/// future holds a CancelledError as its exception and is marked `cancelled`.
pub struct Future {
    core: Core<Callback>,
    cancelled: Cell<bool>,
    /// The exception was retrieved (so it is not reported when collected).
    handled: Cell<bool>,
    /// Report an exception nobody retrieved when collected.
    loud: Cell<bool>,
    task: Option<Box<TaskInfo>>,
}

type F = Rc<Future>;

struct TaskInfo {
    unit: UnitId,
    name: Rc<str>,
    number: u64,
    must_cancel: Cell<bool>,
    waiting_on: RefCell<Option<F>>,
    /// The timer of the `sleep` the task waits in, if it sleeps.
    sleep_timer: Cell<Option<u64>>,
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
    fn with(state: State, task: Option<Box<TaskInfo>>) -> F {
        Rc::new(Future {
            core: Core::with_state(state),
            cancelled: Cell::new(false),
            handled: Cell::new(false),
            loud: Cell::new(false),
            task,
        })
    }
    fn new_task(unit: UnitId, name: Rc<str>, number: u64) -> F {
        Future::with(
            State::Pending,
            Some(Box::new(TaskInfo {
                unit,
                name,
                number,
                must_cancel: Cell::new(false),
                waiting_on: RefCell::new(None),
                sleep_timer: Cell::new(None),
            })),
        )
    }
    fn is_pending(&self) -> bool {
        self.core.is_pending()
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
                    task.number, task.name
                ));
            }
            None => out.push_str(&format!("<Future {status}")),
        }
        match &state {
            FState::Finished(v) => {
                out.push_str(" result=");
                inner(out, v);
            }
            FState::Failed(t) if self.task.is_some() => {
                out.push_str(" exception=");
                write_exception(out, &t.value, inner);
            }
            FState::Failed(t) => {
                out.push_str(" exception=");
                inner(out, &t.value);
            }
            _ => {}
        }
        out.push('>');
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Rc<Self>) -> Rc<dyn Any> {
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
        self.report_unretrieved();
        // A chain of futures (callbacks' derived futures, a result that is
        // a future) drops link by link, not by recursion.
        let callbacks = self.core.take_reactions();
        crate::value::drop_later(
            callbacks
                .into_iter()
                .filter_map(|c| c.derived.map(|d| Value::Handle(d)))
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
                task.number, task.name
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
}

enum Body {
    Call(Rc<Closure>, Vec<Value>),
    /// `asyncio.sleep(ms)`
    Sleep(f64),
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
    fn into_any(self: Rc<Self>) -> Rc<dyn Any> {
        self
    }
}

impl Drop for Coroutine {
    fn drop(&mut self) {
        if self.body.borrow().is_some() {
            super::warn(format!(
                "RuntimeWarning: coroutine '{}' was never awaited\n",
                self.name
            ));
        }
    }
}

fn coroutine(name: Rc<str>, body: Body) -> Rc<Coroutine> {
    Rc::new(Coroutine {
        name,
        body: RefCell::new(Some(body)),
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
}

struct Callback {
    on_fulfilled: Handler,
    on_rejected: Handler,
    derived: Option<F>,
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
    /// Call a function (`call_soon`, `call_later`).
    Call { function: Value, args: Vec<Value> },
    /// A task step (`Task.__step`) with what the task receives.
    Resume { unit: UnitId, with: ResumeWith },
    /// `fut.set_result(value)`.
    Settle { future: F, value: Value },
    /// A sleeping task's timer fired; like `sleep`'s
    /// `_set_result_unless_cancelled`, it schedules the task's wake-up.
    WakeTask { unit: UnitId },
}

// ---- primitives ----

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
    PromiseAll,
    /// `Promise.race` / `allSettled` / `any`: no asyncio counterpart.
    NoCounterpart,
    Resolver {
        future: F,
        reject: bool,
        done: Rc<Cell<bool>>,
    },
}

impl Handle for Primitive {
    fn type_name(&self) -> &'static str {
        "function"
    }
    fn describe(&self, out: &mut String, _: &mut dyn FnMut(&mut String, &Value)) {
        out.push_str(&format!("<built-in function {}>", self.name));
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
    ready: VecDeque<Job>,
    timers: Timers<Job>,
    tasks: Vec<F>,
    task_count: u64,
    /// Callbacks of the current `_run_once` iteration still to run.
    iteration_left: usize,
    stopping: bool,
    stage: Stage,
    main_task: Option<F>,
    fatal: Option<i32>,
    /// Live gathering futures, by address, for `_GatheringFuture.cancel`.
    gathers: HashMap<usize, Rc<GatherState>>,
    /// The future each unit completes when it ends (its task's, or a
    /// callback's derived future).
    unit_futures: Vec<Option<F>>,
    /// Executor calls pushed into units (mark = index + 1).
    executors: Vec<Option<F>>,
    free_marks: Vec<u32>,
    events: EventLog,
    chooser: Box<dyn Chooser>,
    /// Last, so it is dropped after the queues: the program's globals.
    globals: Globals,
}

fn gather_key(future: &F) -> usize {
    Rc::as_ptr(future) as usize
}

fn cancelled_error() -> Thrown {
    Thrown::new(Value::uncatchable_error("CancelledError"))
}

impl Asyncio {
    pub fn new(config: RunConfig) -> Asyncio {
        Asyncio {
            clock: Clock::new(config.instruction_cost_ns),
            events: EventLog::new(config.record_events),
            config,
            ready: VecDeque::new(),
            timers: Timers::default(),
            tasks: Vec::new(),
            task_count: 0,
            iteration_left: 0,
            stopping: false,
            stage: Stage::Main,
            main_task: None,
            fatal: None,
            gathers: HashMap::new(),
            unit_futures: Vec::new(),
            executors: Vec::new(),
            free_marks: Vec::new(),
            chooser: Box::new(FirstCandidate),
            globals: Globals::default(),
        }
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
        self.unit_futures.get_mut(unit as usize)?.take()
    }

    /// `loop.create_task(coro)`.
    fn create_task(&mut self, vm: &mut Vm, coroutine: &Coroutine) -> Result<F, Thrown> {
        super::memory_check()?;
        let body = coroutine.body.borrow_mut().take();
        let (closure, args) = match body {
            Some(Body::Call(closure, args)) => (closure, args),
            Some(Body::Sleep(ms)) => {
                *coroutine.body.borrow_mut() = Some(Body::Sleep(ms));
                return Err(Thrown::error(
                    "TypeError",
                    "spawn of sleep(...) directly is not supported; spawn an async fn that awaits sleep",
                ));
            }
            None => {
                return Err(Thrown::error(
                    "RuntimeError",
                    "cannot reuse already awaited coroutine",
                ));
            }
        };
        self.task_count += 1;
        let name = closure.function.name.clone();
        let unit = vm.new_unit(closure, args);
        let task = Future::new_task(unit, name.clone(), self.task_count);
        self.set_future(unit, Some(task.clone()));
        // Done tasks leave the list now and then (CPython keeps a WeakSet):
        // endless spawns do not keep every task ever made.
        if self.tasks.len() >= 1024 && self.tasks.len().is_power_of_two() {
            self.tasks.retain(|t| t.is_pending());
        }
        self.tasks.push(task.clone());
        self.record(Some(unit), || EventKind::Created { name });
        self.ready.push_back(Job::Resume {
            unit,
            with: ResumeWith::Start,
        });
        Ok(task)
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
                (State::Rejected(cancelled_error()), Err(cancelled_error()))
            }
        };
        for callback in p.core.settle(state) {
            self.schedule_callback(callback, outcome.clone());
        }
    }

    /// Completes a future with a unit's result (a cancellation cancels it).
    fn settle(&mut self, p: &F, result: Result<Value, Thrown>) {
        match result {
            Err(t) if t.is_uncatchable() => self.complete(p, None),
            other => self.complete(p, Some(other)),
        }
    }

    fn schedule_callback(&mut self, callback: Callback, outcome: Result<Value, Thrown>) {
        let handler = if outcome.is_ok() {
            callback.on_fulfilled
        } else {
            callback.on_rejected
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
            FState::Cancelled => Err(cancelled_error()),
            FState::Pending => Ok(Value::Nil),
        }
    }

    /// `add_done_callback` (and `.then`).
    fn then(&mut self, p: &F, on_fulfilled: Handler, on_rejected: Handler, derived: Option<F>) {
        // A real rejection handler retrieves the exception when it runs.
        if matches!(
            on_rejected,
            Handler::Call(_) | Handler::Finally(_) | Handler::Resume(_) | Handler::GatherChild(..)
        ) {
            p.handled.set(true);
        }
        let callback = Callback {
            on_fulfilled,
            on_rejected,
            derived,
        };
        match p.state() {
            FState::Pending => p.core.add_reaction(callback),
            FState::Finished(v) => self.schedule_callback(callback, Ok(v)),
            FState::Failed(t) => {
                p.handled.set(true);
                self.schedule_callback(callback, Err(t))
            }
            FState::Cancelled => self.schedule_callback(callback, Err(cancelled_error())),
        }
    }

    /// `fut.cancel()` for any future: a task, a gathering future (which
    /// cancels its children, as `_GatheringFuture.cancel` does), or a plain
    /// future. Returns whether anything was cancelled.
    fn cancel_future(&mut self, future: &F) -> bool {
        if !future.is_pending() {
            return false;
        }
        if future.is_task() {
            return self.cancel_task(future);
        }
        if let Some(state) = self.gathers.get(&gather_key(future)).cloned() {
            let mut cancelled_any = false;
            for child in &state.children {
                cancelled_any |= self.cancel_future(child);
            }
            if cancelled_any {
                state.cancel_requested.set(true);
            }
            return cancelled_any;
        }
        self.complete(future, None);
        true
    }

    /// `Task.cancel()`: cancel what the task waits on; if that cannot be
    /// cancelled, the task's next step raises CancelledError.
    fn cancel_task(&mut self, task: &F) -> bool {
        if !task.is_pending() {
            return false;
        }
        let Some(info) = task.task.as_deref() else {
            return self.cancel_future(task);
        };
        if let Some(timer) = info.sleep_timer.take() {
            // Cancelling the sleep's future schedules the wake-up, which
            // raises CancelledError at the task's `await`.
            self.timers.cancel(timer);
            self.ready.push_back(Job::Resume {
                unit: info.unit,
                with: ResumeWith::Throw(cancelled_error()),
            });
            return true;
        }
        // The waiter stays recorded: a task that ignores the cancellation
        // may have to be cancelled again.
        let waiter = info.waiting_on.borrow().clone();
        if let Some(waiter) = waiter
            && self.cancel_future(&waiter)
        {
            return true;
        }
        info.must_cancel.set(true);
        true
    }

    // ---- running ----

    fn run_job(&mut self, vm: &mut Vm, job: Job) {
        let uncaught = match job {
            Job::Callback {
                handler,
                derived,
                outcome,
            } => self.run_callback(vm, handler, derived, outcome),
            Job::Call { function, args } => self.invoke(vm, &function, args, None),
            Job::Resume { unit, with } => self.task_step(vm, unit, with),
            Job::Settle { future, value } => {
                self.complete(&future, Some(Ok(value)));
                None
            }
            Job::WakeTask { unit } => {
                if let Some(task) = vm.is_alive(unit).then(|| self.future_of(unit)).flatten()
                    && let Some(info) = &task.task
                {
                    info.sleep_timer.set(None);
                }
                self.ready.push_back(Job::Resume {
                    unit,
                    with: ResumeWith::Value(Value::Nil),
                });
                None
            }
        };
        if let Some(thrown) = uncaught {
            if super::is_stop(&thrown) {
                report_uncaught(vm, &thrown, "stopped", self.config.color);
                self.fatal = Some(super::stop_status(&thrown));
                return;
            }
            report_uncaught(vm, &thrown, "Exception in callback", self.config.color);
        }
    }

    /// `Task.__step`: run the task's unit with what it receives.
    fn task_step(&mut self, vm: &mut Vm, unit: UnitId, mut with: ResumeWith) -> Option<Thrown> {
        if !vm.is_alive(unit) {
            return None;
        }
        if let Some(task) = self.future_of(unit)
            && let Some(info) = &task.task
        {
            info.waiting_on.borrow_mut().take();
            if info.must_cancel.replace(false) {
                with = ResumeWith::Throw(cancelled_error());
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
            let stop = vm.run(unit, &mut self.globals, super::SLICE);
            self.clock.charge_steps(stop.steps);
            self.record(Some(unit), || EventKind::Ran { steps: stop.steps });
            let with = match stop.halt {
                Halt::Finished(value) => {
                    self.record(Some(unit), || EventKind::Finished);
                    if let Some(p) = self.take_future(unit) {
                        self.settle(&p, Ok(value));
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
                Halt::Await(value) => match self.await_value(unit, value) {
                    Ok(Awaited::Ready(v)) => ResumeWith::Value(v),
                    Ok(Awaited::Suspend) => {
                        self.record(Some(unit), || EventKind::Suspended);
                        return Ended::Parked;
                    }
                    Ok(Awaited::Inline(closure, args)) => {
                        match vm.push_call(unit, closure, args, 0) {
                            Ok(()) => continue,
                            Err(thrown) => ResumeWith::Raise(thrown),
                        }
                    }
                    Err(thrown) => ResumeWith::Raise(thrown),
                },
                Halt::CallAsync { closure, args } => {
                    let name = closure.function.name.clone();
                    ResumeWith::Value(Value::Handle(coroutine(name, Body::Call(closure, args))))
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
                } => match self.method(&receiver, &name, &args) {
                    Ok(v) => ResumeWith::Value(v),
                    Err(thrown) => ResumeWith::Raise(thrown),
                },
                Halt::Returned { mark, value } => match self.take_mark(mark) {
                    Some(future) => ResumeWith::Value(Value::Handle(future)),
                    None => ResumeWith::Value(value),
                },
                Halt::Unwound { mark, thrown } => match self.take_mark(mark) {
                    Some(future) => {
                        self.settle(&future, Err(thrown));
                        ResumeWith::Value(Value::Handle(future))
                    }
                    None => ResumeWith::Throw(thrown),
                },
                Halt::Preempted => {
                    match super::check(vm, Some(unit), &self.config, self.clock.now_ns()) {
                        super::Check::Go => continue,
                        super::Check::Raise(thrown) => ResumeWith::Raise(thrown),
                        super::Check::Stop(thrown) => return Ended::Limit(thrown),
                    }
                }
                Halt::StepLimit(at) => return Ended::Limit(step_limit_error(vm, at)),
            };
            vm.resume(unit, with);
        }
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
                Some(ResumeWith::Value(Value::Handle(coroutine(
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

    /// What `await value` means in `unit`.
    fn await_value(&mut self, unit: UnitId, value: Value) -> Result<Awaited, Thrown> {
        let task = self.future_of(unit);
        if let Some(c) = handle_of::<Coroutine>(&value) {
            return match c.body.borrow_mut().take() {
                Some(Body::Call(closure, args)) => Ok(Awaited::Inline(closure, args)),
                Some(Body::Sleep(ms)) if ms <= 0.0 => {
                    // `yield` once: the task's next step is a plain call_soon.
                    self.ready.push_back(Job::Resume {
                        unit,
                        with: ResumeWith::Value(Value::Nil),
                    });
                    Ok(Awaited::Suspend)
                }
                Some(Body::Sleep(ms)) => {
                    let Some(info) = task.as_ref().and_then(|t| t.task.as_deref()) else {
                        return Err(Thrown::error(
                            "TypeError",
                            "await of sleep() outside a task",
                        ));
                    };
                    super::memory_check()?;
                    let due = self
                        .clock
                        .now_ns()
                        .saturating_add(duration_ns(&Value::Float(ms), "sleep()")?);
                    let timer = self.timers.add(due, Job::WakeTask { unit });
                    info.sleep_timer.set(Some(timer));
                    Ok(Awaited::Suspend)
                }
                None => Err(Thrown::error(
                    "RuntimeError",
                    "cannot reuse already awaited coroutine",
                )),
            };
        }
        if let Some(p) = handle_of::<Future>(&value) {
            if let Some(t) = &task
                && Rc::ptr_eq(t, &p)
            {
                return Err(Thrown::error("RuntimeError", "Task cannot await on itself"));
            }
            if !p.is_pending() {
                return Self::result_of(&p).map(Awaited::Ready);
            }
            let Some(task) = task.filter(|t| t.is_task()) else {
                return Err(Thrown::error(
                    "TypeError",
                    "await of a pending future outside a task",
                ));
            };
            if let Some(info) = &task.task {
                *info.waiting_on.borrow_mut() = Some(p.clone());
            }
            self.then(&p, Handler::Resume(unit), Handler::Resume(unit), None);
            // Awaiting marks the exception as retrieved once it is delivered.
            p.handled.set(true);
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
        match callee {
            Value::Closure(c) if c.function.is_async => {
                let name = c.function.name.clone();
                let coroutine = coroutine(name, Body::Call(c, args));
                Ok(Value::Handle(self.create_task(vm, &coroutine)?))
            }
            other => Err(Thrown::error(
                "TypeError",
                &format!(
                    "a coroutine was expected, got a {}: under asyncio, spawn (create_task) needs an async fn",
                    other.type_name()
                ),
            )),
        }
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
            Value::Native(native) => vm.call_native(native, args).map(Some),
            Value::Handle(h) => match self.call_handle(vm, h, args)? {
                Outcome::Value(v) => Ok(Some(v)),
                Outcome::Executor { .. } => Ok(None),
            },
            other => Err(Thrown::error(
                "TypeError",
                &format!("cannot call a {} as a callback", other.type_name()),
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
                Ok(Some(Value::Handle(coroutine(
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
        let outcome = match child.state() {
            FState::Cancelled if !state.return_exceptions => Some(Err(cancelled_error())),
            FState::Failed(t) if !state.return_exceptions => {
                child.handled.set(true);
                Some(Err(t))
            }
            _ if all_done && state.cancel_requested.get() => Some(Err(cancelled_error())),
            _ if all_done => {
                let results = state
                    .children
                    .iter()
                    .map(|c| {
                        c.handled.set(true);
                        match c.state() {
                            FState::Finished(v) => v,
                            FState::Failed(t) => t.value,
                            _ => cancelled_error().value,
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
                        "An asyncio.Future, a coroutine or an awaitable is required (gather got a {})",
                        item.type_name()
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
            children: children.clone(),
            outer: outer.clone(),
            finished: Cell::new(0),
            return_exceptions,
            cancel_requested: Cell::new(false),
        });
        self.gathers.insert(gather_key(&outer), state.clone());
        for (index, child) in children.iter().enumerate() {
            let handler = Handler::GatherChild(state.clone(), index);
            self.then(child, handler.clone(), handler, None);
        }
        Ok(outer)
    }

    /// A future's methods: `then`, `catch`, `finally`, `cancel`, `done`,
    /// `cancelled`, `result`.
    fn method(
        &mut self,
        receiver: &Rc<dyn Handle>,
        name: &str,
        args: &[Value],
    ) -> Result<Value, Thrown> {
        let Some(p) = downcast::<Future>(receiver) else {
            return Err(Thrown::error(
                "TypeError",
                &format!("a {} has no method `{name}`", receiver.type_name()),
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
            return Ok(Value::Handle(derived));
        }
        Ok(match name {
            "cancel" => Value::Bool(self.cancel_future(&p)),
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
                        "a future has no method `{name}` (it has then, catch, finally, cancel, done, cancelled, result)"
                    ),
                ));
            }
        })
    }

    /// Calls one of this policy's primitives.
    fn call_handle(
        &mut self,
        vm: &mut Vm,
        callee: &Rc<dyn Handle>,
        args: Vec<Value>,
    ) -> Result<Outcome, Thrown> {
        let Some(prim) = downcast::<Primitive>(callee) else {
            return Err(Thrown::error(
                "TypeError",
                &format!("cannot call a {}", callee.type_name()),
            ));
        };
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
        let value = match &prim.op {
            Op::Sleep => {
                let ns = duration_ns(&arg(0), "sleep()")?;
                Value::Handle(coroutine(
                    Rc::from("sleep"),
                    Body::Sleep(ns as f64 / 1_000_000.0),
                ))
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
                let due = self
                    .clock
                    .now_ns()
                    .saturating_add(duration_ns(&arg(1), "set_timeout()")?);
                let extra = args.get(2..).map(|a| a.to_vec()).unwrap_or_default();
                Value::Int(self.timers.add(
                    due,
                    Job::Call {
                        function,
                        args: extra,
                    },
                ) as i64)
            }
            Op::ClearTimeout => {
                if let Value::Int(id) = arg(0) {
                    self.timers.cancel(id as u64);
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
                Some(p) => Value::Handle(p),
                None => Value::Handle(Future::with(State::Fulfilled(arg(0)), None)),
            },
            Op::PromiseReject => {
                let future = Future::new();
                self.complete(&future, Some(Err(Thrown::new(arg(0)))));
                Value::Handle(future)
            }
            Op::PromiseAll => match arg(0) {
                Value::List(items) => {
                    let items = items.borrow().clone();
                    Value::Handle(self.gather(vm, items, false)?)
                }
                other => {
                    return Err(Thrown::error(
                        "TypeError",
                        &format!("Promise.all needs a list, not a {}", other.type_name()),
                    ));
                }
            },
            Op::Gather => Value::Handle(self.gather(vm, args, false)?),
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
        while let Some(job) = self.timers.pop_due(now) {
            self.record(None, || EventKind::TimerDue);
            self.ready.push_back(job);
        }
        self.iteration_left = self.ready.len();
        true
    }

    fn report_deadlock(&mut self, vm: &mut Vm) {
        let mut lines = String::from(
            "error: deadlock: nothing is ready, no timer is pending, and the main coroutine has not finished\n",
        );
        for task in &self.tasks {
            if let Some(info) = &task.task
                && task.is_pending()
            {
                let waits = match &*info.waiting_on.borrow() {
                    Some(w) => match &w.task {
                        Some(t) => format!("task `{}`", t.name),
                        None => "a future that nothing will complete".to_string(),
                    },
                    None => "nothing (suspended)".to_string(),
                };
                lines.push_str(&format!(
                    "  task `{}` (Task-{}) waits for {waits}\n",
                    info.name, info.number
                ));
            }
        }
        vm.eprint(&lines);
        self.fatal = Some(1);
    }

    /// Tasks not done yet, in creation order.
    fn pending_tasks(&self) -> Vec<F> {
        self.tasks
            .iter()
            .filter(|t| t.is_pending())
            .cloned()
            .collect()
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
        let mut pending = self.pending_tasks();
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
            to_cancel.push(pending.remove(pick));
        }
        for task in &to_cancel {
            self.cancel_task(task);
        }
        let items = to_cancel.iter().map(|t| Value::Handle(t.clone())).collect();
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
        for task in self.pending_tasks() {
            let Some(info) = &task.task else { continue };
            vm.eprint(&format!(
                "Task was destroyed but it is pending!\ntask: <Task pending name='Task-{}' coro=<{}()>>\n",
                info.number, info.name
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
        }
        self.ready.clear();
        self.timers.clear();
    }
}

impl Policy for Asyncio {
    fn name(&self) -> &'static str {
        INFO.name
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
            if let Some(job) = self.ready.pop_front() {
                self.record(None, || EventKind::Dequeued { queue: "ready" });
                self.run_job(vm, job);
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
}
