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

use super::promise::{CombinatorKind, CombinatorState, Handler, PromiseRef, Reaction, State};
use super::{
    Job, Policy, PolicyKind, RunConfig, Timers, chain, invoke, new_promise, reaction_job,
    report_uncaught, resolving_functions, run_finally, step_limit_error,
};
use crate::builtins::{self, Builtin, duration_ns};
use crate::value::{Closure, Map, Native, NativeData, Value};
use crate::vm::{
    AwaitOutcome, Completion, Fiber, FiberId, Halt, NativeOutcome, ResumeWith, Thrown, Vm,
};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

pub struct Js {
    config: RunConfig,
    next_ticks: VecDeque<Job>,
    microtasks: VecDeque<Job>,
    timers: Timers,
    pending_rejections: Vec<PromiseRef>,
    fatal: Option<i32>,
}

const NS_PER_MS: u64 = 1_000_000;
/// Node's TIMEOUT_MAX: longer delays become 1 ms.
const TIMEOUT_MAX_MS: f64 = 2_147_483_647.0;

impl Js {
    pub fn new(config: RunConfig) -> Js {
        Js {
            config,
            next_ticks: VecDeque::new(),
            microtasks: VecDeque::new(),
            timers: Timers::default(),
            pending_rejections: Vec::new(),
            fatal: None,
        }
    }

    fn now_ms(vm: &Vm) -> u64 {
        vm.now_ns() / NS_PER_MS
    }

    fn add_timer(&mut self, vm: &mut Vm, delay: &Value, job: Job) -> Result<u64, Thrown> {
        let ms = duration_ns(delay, "a timer")? as f64 / NS_PER_MS as f64;
        let ms = if (1.0..=TIMEOUT_MAX_MS).contains(&ms) {
            ms.ceil() as u64
        } else {
            1
        };
        let due = Self::now_ms(vm) + ms;
        Ok(self.timers.add(due, job))
    }

    /// Fulfils or rejects `p` and queues its reactions as microtasks.
    fn settle_state(&mut self, p: &PromiseRef, state: State) {
        if !p.is_pending() {
            return;
        }
        let rejected = matches!(state, State::Rejected(_));
        let outcome = match &state {
            State::Fulfilled(v) => Ok(v.clone()),
            State::Rejected(t) => Err(t.clone()),
            State::Cancelled | State::Pending => Ok(Value::Nil),
        };
        let reactions = p.settle(state);
        if rejected && reactions.is_empty() && !p.0.handled.get() {
            self.pending_rejections.push(p.clone());
        }
        for reaction in reactions {
            self.queue_reaction(reaction, outcome.clone());
        }
    }

    fn queue_reaction(&mut self, reaction: Reaction, outcome: Result<Value, Thrown>) {
        self.microtasks.push_back(reaction_job(reaction, outcome));
    }

    /// ECMAScript's promise resolve function.
    fn resolve(&mut self, p: &PromiseRef, value: Value) {
        if !p.is_pending() {
            return;
        }
        match value {
            Value::Promise(thenable) if thenable.ptr_eq(p) => {
                let error = builtins::error_value(
                    "TypeError",
                    "Chaining cycle detected for promise #<Promise>",
                );
                self.settle_state(p, State::Rejected(Thrown::new(error)));
            }
            Value::Promise(thenable) => self.microtasks.push_back(Job::ResolveThenable {
                promise: p.clone(),
                thenable,
            }),
            other => self.settle_state(p, State::Fulfilled(other)),
        }
    }

    /// PromiseResolve(v): a promise is itself, anything else a fulfilled promise.
    fn promise_resolve(value: Value) -> PromiseRef {
        match value {
            Value::Promise(p) => p,
            other => PromiseRef::with_state(State::Fulfilled(other)),
        }
    }

    fn run_job(&mut self, vm: &mut Vm, job: Job) {
        let uncaught = match job {
            Job::Reaction {
                handler,
                derived,
                outcome,
            } => self.run_reaction(vm, handler, derived, outcome),
            Job::ResolveThenable { promise, thenable } => {
                let (resolve, reject) = resolving_functions(&promise);
                self.then(
                    vm,
                    &thenable,
                    Handler::Call(resolve),
                    Handler::Call(reject),
                    None,
                );
                None
            }
            Job::Call { function, args } => invoke(vm, self, &function, args, None),
            Job::Resume { fiber, with } => {
                vm.resume(fiber, with);
                self.run_fiber(vm, fiber)
            }
            Job::Settle { promise, value } => {
                self.resolve(&promise, value);
                None
            }
            Job::WakeTask { .. } => None,
        };
        if let Some(thrown) = uncaught {
            self.die(vm, &thrown, "uncaught exception");
        }
    }

    fn run_fiber(&mut self, vm: &mut Vm, fiber: FiberId) -> Option<Thrown> {
        match vm.run(self, fiber) {
            Halt::Threw(t) => Some(t),
            Halt::StepLimit => Some(step_limit_error(vm)),
            _ => None,
        }
    }

    fn run_reaction(
        &mut self,
        vm: &mut Vm,
        handler: Handler,
        derived: Option<PromiseRef>,
        outcome: Result<Value, Thrown>,
    ) -> Option<Thrown> {
        match handler {
            Handler::Pass => {
                if let Some(d) = derived {
                    match outcome {
                        Ok(v) => self.resolve(&d, v),
                        Err(t) => self.settle_state(&d, State::Rejected(t)),
                    }
                }
                None
            }
            Handler::Call(function) => {
                let arg = match outcome {
                    Ok(v) => v,
                    Err(t) => t.value,
                };
                invoke(vm, self, &function, vec![arg], derived)
            }
            Handler::Finally(function) => run_finally(vm, self, &function, derived, outcome),
            Handler::Resume(fiber) => {
                let with = match outcome {
                    Ok(v) => ResumeWith::Value(v),
                    Err(t) => ResumeWith::Throw(t),
                };
                vm.resume(fiber, with);
                self.run_fiber(vm, fiber)
            }
            Handler::GatherChild(..) | Handler::StopLoop => None,
        }
    }

    fn die(&mut self, vm: &mut Vm, thrown: &Thrown, headline: &str) {
        if self.fatal.is_some() {
            return;
        }
        report_uncaught(vm, thrown, headline, self.config.color);
        self.fatal = Some(1);
    }

    /// Node's processTicksAndRejections: ticks, then microtasks, until empty.
    fn drain(&mut self, vm: &mut Vm) {
        loop {
            while let Some(job) = self.next_ticks.pop_front() {
                self.run_job(vm, job);
                if self.fatal.is_some() {
                    return;
                }
            }
            while let Some(job) = self.microtasks.pop_front() {
                self.run_job(vm, job);
                if self.fatal.is_some() {
                    return;
                }
                if !self.next_ticks.is_empty() && self.microtasks.is_empty() {
                    break;
                }
            }
            if self.next_ticks.is_empty() && self.microtasks.is_empty() {
                self.process_rejections(vm);
                if self.next_ticks.is_empty() && self.microtasks.is_empty() {
                    return;
                }
            }
        }
    }

    fn process_rejections(&mut self, vm: &mut Vm) {
        for p in std::mem::take(&mut self.pending_rejections) {
            if p.0.handled.get() {
                continue;
            }
            if let State::Rejected(thrown) = p.state() {
                self.die(vm, &thrown, "unhandled promise rejection");
                vm.eprint("note: Node ends the process on an unhandled rejection (exit status 1); pending timers never run\n");
                return;
            }
        }
    }

    fn combinator(
        &mut self,
        vm: &mut Vm,
        builtin: Builtin,
        items: Value,
    ) -> Result<NativeOutcome, Thrown> {
        let Value::List(items) = items else {
            return Err(vm.type_error(&format!("{} needs a list", builtin.name())));
        };
        let items = items.borrow().clone();
        let result = PromiseRef::new();
        let (resolve, reject) = resolving_functions(&result);
        if builtin == Builtin::PromiseRace {
            for item in items {
                let p = Self::promise_resolve(item);
                self.then(
                    vm,
                    &p,
                    Handler::Call(resolve.clone()),
                    Handler::Call(reject.clone()),
                    None,
                );
            }
            return Ok(NativeOutcome::Value(Value::Promise(result)));
        }
        let kind = match builtin {
            Builtin::PromiseAll => CombinatorKind::All,
            Builtin::PromiseAllSettled => CombinatorKind::AllSettled,
            _ => CombinatorKind::Any,
        };
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
                Handler::Call(Vm::native(
                    Builtin::CombinatorStep,
                    NativeData::Combinator {
                        state: state.clone(),
                        index,
                        rejected,
                    },
                ))
            };
            let (on_ok, on_err) = match kind {
                CombinatorKind::All => (step(false), Handler::Call(reject.clone())),
                CombinatorKind::AllSettled => (step(false), step(true)),
                CombinatorKind::Any => (Handler::Call(resolve.clone()), step(true)),
            };
            self.then(vm, &p, on_ok, on_err, None);
        }
        self.finish_combinator_step(&state);
        Ok(NativeOutcome::Value(Value::Promise(result)))
    }

    fn finish_combinator_step(&mut self, state: &CombinatorState) {
        let left = state.remaining.get() - 1;
        state.remaining.set(left);
        if left == 0 {
            let values = Value::list(state.values.borrow().clone());
            match state.kind {
                CombinatorKind::Any => {
                    let error = builtins::aggregate_error("All promises were rejected", values);
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
            (CombinatorKind::AllSettled, false) => settled_record("fulfilled", "value", value),
            (CombinatorKind::AllSettled, true) => settled_record("rejected", "reason", value),
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

impl Policy for Js {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Js
    }

    fn run_program(&mut self, vm: &mut Vm, main: Rc<Closure>) -> i32 {
        let is_async = main.function.is_async;
        let fiber = vm.new_fiber(main, Vec::new());
        if is_async {
            vm.fiber_mut(fiber).promise = Some(PromiseRef::new());
        }
        if let Some(t) = self.run_fiber(vm, fiber) {
            self.die(vm, &t, "uncaught exception");
        }
        loop {
            if self.fatal.is_none() {
                self.drain(vm);
            }
            if let Some(status) = self.fatal {
                return status;
            }
            // Timers phase: every timer due at its start, draining after each.
            let now = Self::now_ms(vm);
            let mut ran = false;
            while let Some(job) = self.timers.pop_due(now) {
                ran = true;
                self.run_job(vm, job);
                if self.fatal.is_none() {
                    self.drain(vm);
                }
                if let Some(status) = self.fatal {
                    return status;
                }
            }
            if ran {
                continue;
            }
            match self.timers.next_due() {
                Some(due) => {
                    let target = due * NS_PER_MS;
                    if self.config.time_limit_ns > 0 && target > self.config.time_limit_ns {
                        vm.eprint("error: stopped: virtual time passed the time limit (raise it with --max-time, or 0 for none)\n");
                        return 1;
                    }
                    super::pace(vm, &self.config, target);
                    vm.advance_to(target);
                }
                None => break,
            }
        }
        let waiting = vm
            .live_fibers()
            .filter(|(_, f)| !f.frames.is_empty())
            .count();
        if waiting > 0 {
            vm.eprint(&format!(
                "note: the program ended with {waiting} async function(s) still waiting on promises that never settled (Node exits here without a message)\n"
            ));
        }
        0
    }

    fn call_async(
        &mut self,
        vm: &mut Vm,
        _caller: FiberId,
        closure: Rc<Closure>,
        args: Vec<Value>,
    ) -> Result<NativeOutcome, Thrown> {
        let fiber = vm.new_fiber(closure, args);
        vm.fiber_mut(fiber).promise = Some(PromiseRef::new());
        Ok(NativeOutcome::StartFiber(fiber))
    }

    fn await_value(
        &mut self,
        vm: &mut Vm,
        id: FiberId,
        _fiber: &mut Fiber,
        value: Value,
    ) -> Result<AwaitOutcome, Thrown> {
        let p = Self::promise_resolve(value);
        self.then(vm, &p, Handler::Resume(id), Handler::Resume(id), None);
        Ok(AwaitOutcome::Suspend)
    }

    fn spawn(
        &mut self,
        vm: &mut Vm,
        caller: FiberId,
        callee: Value,
        args: Vec<Value>,
    ) -> Result<NativeOutcome, Thrown> {
        match callee {
            Value::Closure(c) if c.function.is_async => self.call_async(vm, caller, c, args),
            callee if callee.is_callable() => Ok(NativeOutcome::CallFrame {
                callee,
                args,
                completion: Completion::WrapInPromise,
            }),
            other => Err(vm.type_error(&format!(
                "spawn needs a function, not a {}",
                other.type_name()
            ))),
        }
    }

    fn builtin(
        &mut self,
        vm: &mut Vm,
        _caller: FiberId,
        native: &Rc<Native>,
        args: Vec<Value>,
    ) -> Result<NativeOutcome, Thrown> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
        let value = match native.builtin {
            Builtin::Sleep => {
                let p = PromiseRef::new();
                self.add_timer(
                    vm,
                    &arg(0),
                    Job::Settle {
                        promise: p.clone(),
                        value: Value::Nil,
                    },
                )?;
                Value::Promise(p)
            }
            Builtin::SetTimeout => {
                let function = arg(0);
                if !function.is_callable() {
                    return Err(vm.type_error("set_timeout needs a function to call"));
                }
                let extra = args.get(2..).map(|a| a.to_vec()).unwrap_or_default();
                Value::Int(self.add_timer(
                    vm,
                    &arg(1),
                    Job::Call {
                        function,
                        args: extra,
                    },
                )? as i64)
            }
            Builtin::ClearTimeout => {
                if let Value::Int(id) = arg(0) {
                    self.timers.cancel(id as u64);
                }
                Value::Nil
            }
            Builtin::QueueMicrotask | Builtin::NextTick => {
                let function = arg(0);
                if !function.is_callable() {
                    return Err(
                        vm.type_error(&format!("{} needs a function", native.builtin.name()))
                    );
                }
                let extra = args.get(1..).map(|a| a.to_vec()).unwrap_or_default();
                let job = Job::Call {
                    function,
                    args: if native.builtin == Builtin::NextTick {
                        extra
                    } else {
                        Vec::new()
                    },
                };
                if native.builtin == Builtin::NextTick {
                    self.next_ticks.push_back(job);
                } else {
                    self.microtasks.push_back(job);
                }
                Value::Nil
            }
            Builtin::NewPromise => return new_promise(vm, arg(0)),
            Builtin::PromiseResolve => Value::Promise(Self::promise_resolve(arg(0))),
            Builtin::PromiseReject => {
                let p = PromiseRef::new();
                self.settle_state(&p, State::Rejected(Thrown::new(arg(0))));
                Value::Promise(p)
            }
            Builtin::PromiseAll
            | Builtin::PromiseRace
            | Builtin::PromiseAllSettled
            | Builtin::PromiseAny => {
                return self.combinator(vm, native.builtin, arg(0));
            }
            Builtin::Gather => return self.combinator(vm, Builtin::PromiseAll, Value::list(args)),
            Builtin::Resolver => {
                let NativeData::Resolver {
                    promise,
                    reject,
                    done,
                } = &native.data
                else {
                    unreachable!()
                };
                if !done.replace(true) {
                    if *reject {
                        self.settle_state(promise, State::Rejected(Thrown::new(arg(0))));
                    } else {
                        self.resolve(promise, arg(0));
                    }
                }
                Value::Nil
            }
            Builtin::CombinatorStep => {
                let NativeData::Combinator {
                    state,
                    index,
                    rejected,
                } = &native.data
                else {
                    unreachable!()
                };
                self.combinator_step(state, *index, *rejected, arg(0));
                Value::Nil
            }
            other => {
                return Err(vm.type_error(&format!("`{}` is not available here", other.name())));
            }
        };
        Ok(NativeOutcome::Value(value))
    }

    fn promise_method(
        &mut self,
        vm: &mut Vm,
        _caller: FiberId,
        p: &PromiseRef,
        name: &str,
        args: Vec<Value>,
    ) -> Result<NativeOutcome, Thrown> {
        match chain(self, vm, p, name, &args) {
            Some(derived) => Ok(NativeOutcome::Value(derived)),
            None => Err(vm.type_error(&format!(
                "a promise has no method `{name}` (it has then, catch, finally)"
            ))),
        }
    }

    fn settle(&mut self, _vm: &mut Vm, p: &PromiseRef, result: Result<Value, Thrown>) {
        match result {
            Ok(v) => self.resolve(p, v),
            Err(t) => self.settle_state(p, State::Rejected(t)),
        }
    }

    fn then(
        &mut self,
        _vm: &mut Vm,
        p: &PromiseRef,
        on_fulfilled: Handler,
        on_rejected: Handler,
        derived: Option<PromiseRef>,
    ) {
        p.0.handled.set(true);
        let reaction = Reaction {
            on_fulfilled,
            on_rejected,
            derived,
        };
        match p.state() {
            State::Pending => p.add_reaction(reaction),
            State::Fulfilled(v) => self.queue_reaction(reaction, Ok(v)),
            State::Rejected(t) => self.queue_reaction(reaction, Err(t)),
            State::Cancelled => self.queue_reaction(reaction, Ok(Value::Nil)),
        }
    }
}
