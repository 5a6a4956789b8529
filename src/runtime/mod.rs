//! Runtime policies: what runs next, what a primitive means, when time moves.
//!
//! The VM executes fibers; a `Policy` owns every scheduling decision. Each
//! policy is a sibling module implementing the one trait below:
//! - `js`: Node's event loop (nextTick queue, microtasks, timers);
//! - `asyncio`: CPython 3.11's `BaseEventLoop._run_once`, tasks and futures.
//!
//! Shared here: the job type both loops queue, the timer heap, the warnings
//! sink (for reports made from `Drop`, as CPython makes them from GC), and
//! the uncaught-error report.

pub mod asyncio;
pub mod js;
pub mod promise;

use crate::builtins;
use crate::diagnostic::{Diagnostic, render};
use crate::value::{Closure, Native, Value};
use crate::vm::{AwaitOutcome, Fiber, FiberId, NativeOutcome, ResumeWith, Thrown, Vm};
use promise::{Handler, PromiseRef, State};
use std::cell::RefCell;
use std::collections::{BinaryHeap, HashSet};
use std::rc::Rc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    Js,
    Asyncio,
}

impl PolicyKind {
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Js => "js",
            PolicyKind::Asyncio => "asyncio",
        }
    }
}

/// Settings every policy reads.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub color: bool,
    /// asyncio: how late an idle loop wakes after its timer is due.
    pub wake_latency_ns: u64,
    /// Stop when virtual time passes this (0: never).
    pub time_limit_ns: u64,
    /// Pace the virtual clock against the wall clock.
    pub real_time: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            color: false,
            wake_latency_ns: 50_000,
            time_limit_ns: 24 * 3_600_000_000_000,
            real_time: false,
        }
    }
}

pub trait Policy {
    fn kind(&self) -> PolicyKind;
    /// Runs a compiled file's top level to the end; returns the exit status.
    fn run_program(&mut self, vm: &mut Vm, main: Rc<Closure>) -> i32;
    /// A call of an `async fn`.
    fn call_async(
        &mut self,
        vm: &mut Vm,
        caller: FiberId,
        closure: Rc<Closure>,
        args: Vec<Value>,
    ) -> Result<NativeOutcome, Thrown>;
    fn await_value(
        &mut self,
        vm: &mut Vm,
        id: FiberId,
        fiber: &mut Fiber,
        value: Value,
    ) -> Result<AwaitOutcome, Thrown>;
    fn spawn(
        &mut self,
        vm: &mut Vm,
        caller: FiberId,
        callee: Value,
        args: Vec<Value>,
    ) -> Result<NativeOutcome, Thrown>;
    /// A runtime primitive (`sleep`, `set_timeout`, `Promise.all`, …).
    fn builtin(
        &mut self,
        vm: &mut Vm,
        caller: FiberId,
        native: &Rc<Native>,
        args: Vec<Value>,
    ) -> Result<NativeOutcome, Thrown>;
    fn promise_method(
        &mut self,
        vm: &mut Vm,
        caller: FiberId,
        p: &PromiseRef,
        name: &str,
        args: Vec<Value>,
    ) -> Result<NativeOutcome, Thrown>;
    /// A fiber's promise gets its result (JS: resolve, adopting promises).
    fn settle(&mut self, vm: &mut Vm, p: &PromiseRef, result: Result<Value, Thrown>);
    fn reject(&mut self, vm: &mut Vm, p: &PromiseRef, thrown: Thrown) {
        self.settle(vm, p, Err(thrown))
    }
    /// Adds a reaction (JS `then`; asyncio `add_done_callback`).
    fn then(
        &mut self,
        vm: &mut Vm,
        p: &PromiseRef,
        on_fulfilled: Handler,
        on_rejected: Handler,
        derived: Option<PromiseRef>,
    );
    /// A promise already fulfilled with `value`.
    fn resolved_promise(&mut self, _vm: &mut Vm, value: Value) -> Value {
        Value::Promise(PromiseRef::with_state(State::Fulfilled(value)))
    }
}

/// Work waiting in a queue (a microtask, a ready callback, a timer's action).
pub enum Job {
    /// A promise reaction with the outcome of the promise it watched.
    Reaction {
        handler: Handler,
        derived: Option<PromiseRef>,
        outcome: Result<Value, Thrown>,
    },
    /// JS: NewPromiseResolveThenableJob (resolve `promise` with `thenable`).
    ResolveThenable {
        promise: PromiseRef,
        thenable: PromiseRef,
    },
    /// Call a function (timer callback, microtask, `call_soon`).
    Call { function: Value, args: Vec<Value> },
    /// Run a fiber (a task step) with what it receives.
    Resume { fiber: FiberId, with: ResumeWith },
    /// Settle a promise (a `sleep` timer firing).
    Settle { promise: PromiseRef, value: Value },
    /// asyncio: a sleeping task's timer fired; like `sleep`'s
    /// `_set_result_unless_cancelled`, it schedules the task's wake-up.
    WakeTask { fiber: FiberId },
}

/// The job that runs a reaction once its promise settled with `outcome`.
pub fn reaction_job(reaction: promise::Reaction, outcome: Result<Value, Thrown>) -> Job {
    let handler = if outcome.is_ok() {
        reaction.on_fulfilled
    } else {
        reaction.on_rejected
    };
    Job::Reaction {
        handler,
        derived: reaction.derived,
        outcome,
    }
}

/// A promise's resolve and reject functions, sharing "already resolved".
pub fn resolving_functions(p: &PromiseRef) -> (Value, Value) {
    let done = Rc::new(std::cell::Cell::new(false));
    let make = |reject| {
        Vm::native(
            builtins::Builtin::Resolver,
            crate::value::NativeData::Resolver {
                promise: p.clone(),
                reject,
                done: done.clone(),
            },
        )
    };
    (make(false), make(true))
}

/// `promise(executor)`: the executor runs at once, as a call in this fiber.
pub fn new_promise(vm: &Vm, executor: Value) -> Result<NativeOutcome, Thrown> {
    if !executor.is_callable() {
        return Err(vm.type_error(
            "promise() needs an executor function: promise(fn(resolve, reject) { … })",
        ));
    }
    let p = PromiseRef::new();
    let (resolve, reject) = resolving_functions(&p);
    Ok(NativeOutcome::CallFrame {
        callee: executor,
        args: vec![resolve, reject],
        completion: crate::vm::Completion::Executor(p),
    })
}

/// `p.then(f, g)`, `p.catch(g)`, `p.finally(f)`: the derived promise, or
/// `None` when `name` is none of them.
pub fn chain(
    policy: &mut dyn Policy,
    vm: &mut Vm,
    p: &PromiseRef,
    name: &str,
    args: &[Value],
) -> Option<Value> {
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
        _ => return None,
    };
    let derived = PromiseRef::new();
    policy.then(vm, p, on_fulfilled, on_rejected, Some(derived.clone()));
    Some(Value::Promise(derived))
}

/// Timers ordered by due time, then creation order: a binary heap (compact
/// for a million sleepers). Cancelling leaves a tombstone that is skipped
/// when it reaches the top (cancellation is rare; timers are many).
#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<TimerEntry>,
    cancelled: HashSet<u64>,
    next_id: u64,
}

struct TimerEntry {
    due: u64,
    id: u64,
    job: Job,
}

impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.id) == (other.due, other.id)
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
        (other.due, other.id).cmp(&(self.due, self.id))
    }
}

impl Timers {
    pub fn add(&mut self, due: u64, job: Job) -> u64 {
        self.next_id += 1;
        self.heap.push(TimerEntry {
            due,
            id: self.next_id,
            job,
        });
        self.next_id
    }
    pub fn cancel(&mut self, id: u64) {
        if id <= self.next_id {
            self.cancelled.insert(id);
        }
    }
    fn drop_cancelled_head(&mut self) {
        while let Some(top) = self.heap.peek() {
            if !self.cancelled.remove(&top.id) {
                break;
            }
            self.heap.pop();
        }
    }
    pub fn next_due(&mut self) -> Option<u64> {
        self.drop_cancelled_head();
        self.heap.peek().map(|t| t.due)
    }
    /// Removes and returns the first timer if it is due by `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<Job> {
        self.drop_cancelled_head();
        if self.heap.peek()?.due > now {
            return None;
        }
        self.heap.pop().map(|t| t.job)
    }
    /// Timers still pending (not cancelled).
    pub fn len(&self) -> usize {
        self.heap
            .iter()
            .filter(|t| !self.cancelled.contains(&t.id))
            .count()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn clear(&mut self) {
        self.heap.clear();
        self.cancelled.clear();
    }
}

thread_local! {
    static WALL_START: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    static WARNINGS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Records a warning to print on stderr (callable from `Drop`).
pub fn warn(message: String) {
    WARNINGS.with(|w| w.borrow_mut().push(message));
}

pub fn warn_never_awaited(name: &str) {
    warn(format!(
        "RuntimeWarning: coroutine '{name}' was never awaited\n"
    ));
}

/// Moves recorded warnings to the VM's stderr.
pub fn flush_warnings(vm: &mut Vm) {
    let warnings = WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()));
    for w in warnings {
        vm.eprint(&w);
    }
}

/// Writes the report of an uncaught error to stderr.
pub fn report_uncaught(vm: &mut Vm, thrown: &Thrown, headline: &str, color: bool) {
    let shown = thrown.value.repr(vm.flavor);
    let shown = match &thrown.value {
        Value::Str(s) => s.to_string(),
        Value::Error(e) => format!("{}: {}", e.kind, e.message),
        _ => shown,
    };
    let stopped = matches!(&thrown.value, Value::Error(e) if &*e.kind == "StepLimit");
    match &thrown.origin {
        Some(origin) => {
            let mut diagnostic = if stopped {
                Diagnostic::new(
                    shown.trim_start_matches("StepLimit: "),
                    origin.span,
                    "running here when the limit was reached",
                )
            } else {
                Diagnostic::new(format!("{headline}: {shown}"), origin.span, "thrown here")
            };
            let stack = collapse_stack(&origin.stack);
            let unit = if &*origin.unit == "<main>" {
                "the main program".to_string()
            } else {
                format!("`{}`", origin.unit)
            };
            diagnostic = diagnostic.with_note(format!("in {unit}; call stack: {stack}"));
            let text = render(&diagnostic, &origin.source, color);
            vm.eprint(&text);
        }
        None => vm.eprint(&format!("error: {headline}: {shown}\n")),
    }
}

/// Joins a call stack innermost first, folding runs of one name:
/// `forever ×9999 ← <main>`.
fn collapse_stack(stack: &[Rc<str>]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < stack.len() {
        let run = stack[i..].iter().take_while(|s| **s == stack[i]).count();
        parts.push(if run > 2 {
            format!("{} ×{run}", stack[i])
        } else {
            stack[i].to_string()
        });
        if run <= 2 && run == 2 {
            parts.push(stack[i].to_string());
        }
        i += run;
    }
    parts.join(" ← ")
}

/// Calls `function(args)` outside any running fiber (from a queue). Its
/// result settles `derived` (if any). Returns an uncaught error, if any.
pub fn invoke(
    vm: &mut Vm,
    policy: &mut dyn Policy,
    function: &Value,
    args: Vec<Value>,
    derived: Option<PromiseRef>,
) -> Option<Thrown> {
    match function {
        Value::Closure(closure) if !closure.function.is_async => {
            let fiber = vm.new_fiber(closure.clone(), args);
            let has_promise = derived.is_some();
            vm.fiber_mut(fiber).promise = derived;
            match vm.run(policy, fiber) {
                crate::vm::Halt::Threw(t) if !has_promise => Some(t),
                crate::vm::Halt::StepLimit => Some(step_limit_error(vm)),
                _ => None,
            }
        }
        Value::Closure(closure) => match policy.call_async(vm, u32::MAX, closure.clone(), args) {
            Ok(NativeOutcome::StartFiber(fiber)) => {
                let promise = vm.fiber(fiber).promise.clone();
                let halt = vm.run(policy, fiber);
                if let crate::vm::Halt::StepLimit = halt {
                    return Some(step_limit_error(vm));
                }
                if let (Some(d), Some(p)) = (derived, promise) {
                    policy.settle(vm, &d, Ok(Value::Promise(p)));
                }
                None
            }
            Ok(NativeOutcome::Value(v)) => {
                if let Some(d) = derived {
                    policy.settle(vm, &d, Ok(v));
                }
                None
            }
            Ok(_) => None,
            Err(t) => settle_or_return(vm, policy, derived, t),
        },
        Value::Native(native) => match builtins::call_native(vm, policy, u32::MAX, native, args) {
            Ok(NativeOutcome::Value(v)) => {
                if let Some(d) = derived {
                    policy.settle(vm, &d, Ok(v));
                }
                None
            }
            Ok(_) => None,
            Err(t) => settle_or_return(vm, policy, derived, t),
        },
        other => {
            let t = vm.type_error(&format!(
                "cannot call a {} as a callback",
                other.type_name()
            ));
            settle_or_return(vm, policy, derived, t)
        }
    }
}

fn settle_or_return(
    vm: &mut Vm,
    policy: &mut dyn Policy,
    derived: Option<PromiseRef>,
    t: Thrown,
) -> Option<Thrown> {
    match derived {
        Some(d) => {
            policy.settle(vm, &d, Err(t));
            None
        }
        None => Some(t),
    }
}

/// The error a run stops with at the step limit, located where it stopped.
pub fn step_limit_error(vm: &Vm) -> Thrown {
    let message = format!(
        "stopped after {} instructions: the step limit (raise it with --max-steps N, or 0 for no limit)",
        vm.step_limit
    );
    Thrown {
        value: builtins::error_value("StepLimit", &message),
        origin: vm.stopped_at.clone(),
    }
}

/// ECMAScript's `.finally`: run the handler, then pass the original outcome
/// on through a promise chained on the handler's result (two extra ticks).
pub fn run_finally(
    vm: &mut Vm,
    policy: &mut dyn Policy,
    on_finally: &Value,
    derived: Option<PromiseRef>,
    outcome: Result<Value, Thrown>,
) -> Option<Thrown> {
    let result = match on_finally {
        Value::Closure(c) if !c.function.is_async => {
            let fiber = vm.new_fiber(c.clone(), Vec::new());
            match vm.run(policy, fiber) {
                crate::vm::Halt::Done(v) => Ok(v),
                crate::vm::Halt::Threw(t) => Err(t),
                crate::vm::Halt::StepLimit => return Some(step_limit_error(vm)),
                crate::vm::Halt::Suspended | crate::vm::Halt::Settled => Ok(Value::Nil),
            }
        }
        f if f.is_callable() => {
            let tmp = PromiseRef::new();
            if let Some(t) = invoke(vm, policy, f, Vec::new(), Some(tmp.clone())) {
                return Some(t);
            }
            Ok(Value::Promise(tmp))
        }
        _ => {
            // Not a function: `.finally(x)` behaves as `.then(x, x)`: pass through.
            if let Some(d) = derived {
                policy.settle(vm, &d, outcome);
            }
            return None;
        }
    };
    let derived = derived?;
    match result {
        Err(t) => policy.settle(vm, &derived, Err(t)),
        Ok(r) => {
            let p2 = match r {
                Value::Promise(p) => p,
                other => PromiseRef::with_state(State::Fulfilled(other)),
            };
            let thunk = match outcome {
                Ok(v) => Vm::native(
                    builtins::Builtin::ReturnValue,
                    crate::value::NativeData::Value(v),
                ),
                Err(t) => Vm::native(
                    builtins::Builtin::ThrowValue,
                    crate::value::NativeData::Value(t.value),
                ),
            };
            let q = PromiseRef::new();
            policy.then(
                vm,
                &p2,
                Handler::Call(thunk.clone()),
                Handler::Call(thunk),
                Some(q.clone()),
            );
            policy.settle(vm, &derived, Ok(Value::Promise(q)));
        }
    }
    None
}

/// Marks the wall-clock start of a run (for `--real-time`).
pub fn start_clock() {
    WALL_START.with(|s| s.set(Some(std::time::Instant::now())));
}

/// With `--real-time`, waits until the wall clock catches up with `target_ns`.
pub fn pace(vm: &mut Vm, config: &RunConfig, target_ns: u64) {
    if !config.real_time {
        return;
    }
    vm.flush();
    if let Some(start) = WALL_START.with(|s| s.get()) {
        let due = start + std::time::Duration::from_nanos(target_ns);
        let now = std::time::Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}
