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
//! 5. Remaining tasks are cancelled in creation order (CPython iterates a
//!    WeakSet, whose order is not defined; creation order is deterministic).

use super::promise::{GatherState, Handler, PromiseRef, Reaction, State};
use super::{
    Job, Policy, PolicyKind, RunConfig, Timers, chain, invoke, new_promise, reaction_job,
    report_uncaught, step_limit_error,
};
use crate::builtins::{self, Builtin, duration_ns};
use crate::value::{Closure, Coroutine, CoroutineBody, Native, NativeData, Value};
use crate::vm::{AwaitOutcome, Fiber, FiberId, Halt, NativeOutcome, ResumeWith, Thrown, Vm};
use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

pub struct Asyncio {
    config: RunConfig,
    ready: VecDeque<Job>,
    timers: Timers,
    tasks: Vec<PromiseRef>,
    task_count: u64,
    stopping: bool,
    fatal: Option<i32>,
    /// Live gathering futures, by address, for `_GatheringFuture.cancel`.
    gathers: HashMap<usize, Rc<GatherState>>,
}

fn gather_key(future: &PromiseRef) -> usize {
    Rc::as_ptr(&future.0) as usize
}

impl Asyncio {
    pub fn new(config: RunConfig) -> Asyncio {
        Asyncio {
            config,
            ready: VecDeque::new(),
            timers: Timers::default(),
            tasks: Vec::new(),
            task_count: 0,
            stopping: false,
            fatal: None,
            gathers: HashMap::new(),
        }
    }

    fn cancelled_error() -> Thrown {
        Thrown::new(builtins::cancelled_error())
    }

    /// `loop.create_task(coro)`.
    fn create_task(
        &mut self,
        vm: &mut Vm,
        coroutine: &Rc<Coroutine>,
    ) -> Result<PromiseRef, Thrown> {
        let body = coroutine.body.borrow_mut().take();
        let (closure, args) = match body {
            Some(CoroutineBody::Call(closure, args)) => (closure, args),
            Some(CoroutineBody::Sleep(ms)) => {
                // A task whose coroutine is `sleep(ms)`: run a tiny wrapper.
                *coroutine.body.borrow_mut() = Some(CoroutineBody::Sleep(ms));
                return Err(vm.type_error("spawn of sleep(...) directly is not supported; spawn an async fn that awaits sleep"));
            }
            None => {
                return Err(Thrown::new(builtins::error_value(
                    "RuntimeError",
                    "cannot reuse already awaited coroutine",
                )));
            }
        };
        self.task_count += 1;
        let name = closure.function.name.clone();
        let fiber = vm.new_fiber(closure, args);
        let task = PromiseRef::new_task(fiber, name, self.task_count);
        vm.fiber_mut(fiber).promise = Some(task.clone());
        self.tasks.push(task.clone());
        self.ready.push_back(Job::Resume {
            fiber,
            with: ResumeWith::Start,
        });
        Ok(task)
    }

    /// `fut.set_result` / `set_exception` / `cancel`: settle and schedule callbacks.
    fn complete(&mut self, p: &PromiseRef, state: State) {
        if !p.is_pending() {
            return;
        }
        p.0.loud.set(true);
        let outcome = match &state {
            State::Fulfilled(v) => Ok(v.clone()),
            State::Rejected(t) => Err(t.clone()),
            State::Cancelled => Err(Self::cancelled_error()),
            State::Pending => return,
        };
        for reaction in p.settle(state) {
            self.schedule_callback(reaction, outcome.clone());
        }
    }

    fn schedule_callback(&mut self, reaction: Reaction, outcome: Result<Value, Thrown>) {
        self.ready.push_back(reaction_job(reaction, outcome));
    }

    /// The outcome of awaiting a done future (marks its exception retrieved).
    fn result_of(p: &PromiseRef) -> Result<Value, Thrown> {
        p.0.handled.set(true);
        match p.state() {
            State::Fulfilled(v) => Ok(v),
            State::Rejected(t) => Err(t),
            State::Cancelled => Err(Self::cancelled_error()),
            State::Pending => Ok(Value::Nil),
        }
    }

    /// `fut.cancel()` for any future: a task, a gathering future (which
    /// cancels its children, as `_GatheringFuture.cancel` does), or a plain
    /// future. Returns whether anything was cancelled.
    fn cancel_future(&mut self, future: &PromiseRef) -> bool {
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
        self.complete(future, State::Cancelled);
        true
    }

    /// `Task.cancel()`: cancel what the task waits on; if that cannot be
    /// cancelled, the task's next step raises CancelledError.
    fn cancel_task(&mut self, task: &PromiseRef) -> bool {
        if !task.is_pending() {
            return false;
        }
        let Some(info) = task.task() else {
            return self.cancel_future(task);
        };
        if let Some(timer) = info.sleep_timer.take() {
            // Cancelling the sleep's future schedules the wake-up, which
            // raises CancelledError at the task's `await`.
            self.timers.cancel(timer);
            self.ready.push_back(Job::Resume {
                fiber: info.fiber,
                with: ResumeWith::Throw(Self::cancelled_error()),
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

    fn run_job(&mut self, vm: &mut Vm, job: Job) {
        let uncaught = match job {
            Job::Reaction {
                handler,
                derived,
                outcome,
            } => self.run_callback(vm, handler, derived, outcome),
            Job::Call { function, args } => invoke(vm, self, &function, args, None),
            Job::Resume { fiber, with } => self.step(vm, fiber, with),
            Job::Settle { promise, value } => {
                self.complete(&promise, State::Fulfilled(value));
                None
            }
            Job::WakeTask { fiber } => {
                if let Some(task) = vm
                    .is_alive(fiber)
                    .then(|| vm.fiber(fiber).promise.clone())
                    .flatten()
                    && let Some(info) = task.task()
                {
                    info.sleep_timer.set(None);
                }
                self.ready.push_back(Job::Resume {
                    fiber,
                    with: ResumeWith::Value(Value::Nil),
                });
                None
            }
            Job::ResolveThenable { .. } => None,
        };
        if let Some(thrown) = uncaught {
            if let Value::Error(e) = &thrown.value
                && &*e.kind == "StepLimit"
            {
                report_uncaught(vm, &thrown, "stopped", self.config.color);
                self.fatal = Some(1);
                return;
            }
            report_uncaught(vm, &thrown, "Exception in callback", self.config.color);
        }
    }

    /// `Task.__step`: run the task's fiber with what it receives.
    fn step(&mut self, vm: &mut Vm, fiber: FiberId, mut with: ResumeWith) -> Option<Thrown> {
        if !vm.is_alive(fiber) {
            return None;
        }
        if let Some(task) = vm.fiber(fiber).promise.clone()
            && let Some(info) = task.task()
        {
            info.waiting_on.borrow_mut().take();
            if info.must_cancel.replace(false) {
                with = ResumeWith::Throw(Self::cancelled_error());
            }
        }
        vm.resume(fiber, with);
        match vm.run(self, fiber) {
            Halt::Threw(t) => Some(t),
            Halt::StepLimit => Some(step_limit_error(vm)),
            _ => None,
        }
    }

    fn run_callback(
        &mut self,
        vm: &mut Vm,
        handler: Handler,
        derived: Option<PromiseRef>,
        outcome: Result<Value, Thrown>,
    ) -> Option<Thrown> {
        match handler {
            Handler::Pass => {
                if let Some(d) = derived {
                    self.settle(vm, &d, outcome);
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
            Handler::Finally(function) => {
                // Futures do not adopt: run the handler, then pass the
                // original outcome on at once (or the handler's error).
                let outcome = match function
                    .is_callable()
                    .then(|| invoke(vm, self, &function, Vec::new(), None))
                    .flatten()
                {
                    Some(thrown) => Err(thrown),
                    None => outcome,
                };
                if let Some(d) = derived {
                    self.settle(vm, &d, outcome);
                }
                None
            }
            Handler::Resume(fiber) => {
                let with = match outcome {
                    Ok(v) => ResumeWith::Value(v),
                    Err(t) => ResumeWith::Throw(t),
                };
                self.step(vm, fiber, with)
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
            child.0.handled.set(true);
            return;
        }
        let outcome = if !state.return_exceptions && matches!(child.state(), State::Cancelled) {
            Some(State::Rejected(Self::cancelled_error()))
        } else if let (false, State::Rejected(t)) = (state.return_exceptions, child.state()) {
            child.0.handled.set(true);
            Some(State::Rejected(t))
        } else if state.finished.get() == state.children.len() && state.cancel_requested.get() {
            Some(State::Rejected(Self::cancelled_error()))
        } else if state.finished.get() == state.children.len() {
            let results = state
                .children
                .iter()
                .map(|c| {
                    c.0.handled.set(true);
                    match c.state() {
                        State::Fulfilled(v) => v,
                        State::Rejected(t) => t.value,
                        _ => Self::cancelled_error().value,
                    }
                })
                .collect();
            Some(State::Fulfilled(Value::list(results)))
        } else {
            None
        };
        if let Some(outcome) = outcome {
            self.gathers.remove(&gather_key(&state.outer));
            self.complete(&state.outer, outcome);
        }
    }

    fn gather(
        &mut self,
        vm: &mut Vm,
        items: Vec<Value>,
        return_exceptions: bool,
    ) -> Result<PromiseRef, Thrown> {
        let mut children = Vec::with_capacity(items.len());
        for item in items {
            let child = match item {
                Value::Coroutine(c) => self.create_task(vm, &c)?,
                Value::Promise(p) => p,
                other => {
                    return Err(vm.type_error(&format!(
                        "An asyncio.Future, a coroutine or an awaitable is required (gather got a {})",
                        other.type_name()
                    )));
                }
            };
            children.push(child);
        }
        let outer = PromiseRef::new();
        if children.is_empty() {
            self.complete(&outer, State::Fulfilled(Value::list(Vec::new())));
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
            self.then(vm, child, handler.clone(), handler, None);
        }
        Ok(outer)
    }

    /// One `_run_once` iteration. Returns false when nothing can ever run.
    fn run_once(&mut self, vm: &mut Vm) -> bool {
        if self.ready.is_empty() {
            let Some(when) = self.timers.next_due() else {
                return false;
            };
            if when > vm.now_ns() {
                let wake = when + self.config.wake_latency_ns;
                if self.config.time_limit_ns > 0 && wake > self.config.time_limit_ns {
                    vm.eprint("error: stopped: virtual time passed the time limit (raise it with --max-time, or 0 for none)\n");
                    self.fatal = Some(1);
                    return true;
                }
                super::pace(vm, &self.config, wake);
                vm.advance_to(wake);
            }
        }
        let now = vm.now_ns();
        while let Some(job) = self.timers.pop_due(now) {
            self.ready.push_back(job);
        }
        let ntodo = self.ready.len();
        for _ in 0..ntodo {
            let Some(job) = self.ready.pop_front() else {
                break;
            };
            self.run_job(vm, job);
            if self.fatal.is_some() {
                break;
            }
        }
        true
    }

    /// `loop.run_until_complete(fut)`: iterate until `fut` is done.
    fn run_until_complete(&mut self, vm: &mut Vm, fut: &PromiseRef) -> bool {
        self.then(vm, fut, Handler::StopLoop, Handler::StopLoop, None);
        self.stopping = false;
        while !self.stopping {
            if !self.run_once(vm) {
                self.report_deadlock(vm);
                return false;
            }
            if self.fatal.is_some() {
                return false;
            }
        }
        self.stopping = false;
        true
    }

    fn report_deadlock(&mut self, vm: &mut Vm) {
        let mut lines = String::from(
            "error: deadlock: nothing is ready, no timer is pending, and the main coroutine has not finished\n",
        );
        for task in &self.tasks {
            if let Some(info) = task.task()
                && task.is_pending()
            {
                let waits = match &*info.waiting_on.borrow() {
                    Some(w) if w.is_task() => format!(
                        "task `{}`",
                        w.task().map_or("?".into(), |t| t.name.to_string())
                    ),
                    Some(_) => "a future that nothing will complete".to_string(),
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
    fn pending_tasks(&self) -> Vec<PromiseRef> {
        self.tasks
            .iter()
            .filter(|t| t.is_pending())
            .cloned()
            .collect()
    }

    /// `asyncio.runners._cancel_all_tasks` and the rest of `Runner.close`.
    fn shutdown(&mut self, vm: &mut Vm) {
        let to_cancel = self.pending_tasks();
        if !to_cancel.is_empty() {
            vm.eprint(&format!(
                "note: asyncio.run() is cancelling {} task(s) still pending when main returned\n",
                to_cancel.len()
            ));
            for task in &to_cancel {
                self.cancel_task(task);
            }
            let Ok(all) = self.gather(
                vm,
                to_cancel
                    .iter()
                    .map(|t| Value::Promise(t.clone()))
                    .collect(),
                true,
            ) else {
                return;
            };
            if !self.run_until_complete(vm, &all) {
                return;
            }
            for task in &to_cancel {
                if let State::Rejected(t) = task.state() {
                    task.0.handled.set(true);
                    report_uncaught(
                        vm,
                        &t,
                        "unhandled exception during asyncio.run() shutdown",
                        self.config.color,
                    );
                }
            }
        }
        // shutdown_asyncgens() and shutdown_default_executor(): each is a
        // coroutine that returns at once, run to completion: two iterations.
        for _ in 0..2 {
            let trivial = PromiseRef::new();
            self.ready.push_back(Job::Settle {
                promise: trivial.clone(),
                value: Value::Nil,
            });
            if !self.run_until_complete(vm, &trivial) {
                return;
            }
        }
        let (callbacks, timers) = (self.ready.len(), self.timers.len());
        if callbacks + timers > 0 {
            vm.eprint(&format!(
                "note: the event loop closed with {callbacks} callback(s) queued and {timers} timer(s) pending; they never run\n"
            ));
        }
        self.ready.clear();
        self.timers.clear();
        self.destroy_pending_tasks(vm);
    }

    /// Tasks still pending when the loop closes (created during shutdown)
    /// are collected: CPython logs "Task was destroyed but it is pending!"
    /// and closing the coroutine raises GeneratorExit at its `await`, so its
    /// `finally` blocks run (and print) then. In creation order.
    fn destroy_pending_tasks(&mut self, vm: &mut Vm) {
        let pending = self.pending_tasks();
        for task in pending {
            let Some(info) = task.task() else { continue };
            vm.eprint(&format!(
                "Task was destroyed but it is pending!\ntask: <Task pending name='Task-{}' coro=<{}()>>\n",
                info.number, info.name
            ));
            if !vm.is_alive(info.fiber) {
                continue;
            }
            vm.resume(
                info.fiber,
                ResumeWith::Throw(Thrown::new(builtins::generator_exit())),
            );
            // A `finally` that awaits again is abandoned, as CPython does
            // ("coroutine ignored GeneratorExit").
            let _ = vm.run(self, info.fiber);
        }
        self.ready.clear();
        self.timers.clear();
    }
}

impl Policy for Asyncio {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Asyncio
    }

    fn run_program(&mut self, vm: &mut Vm, main: Rc<Closure>) -> i32 {
        let coroutine = Rc::new(Coroutine {
            name: Rc::from("main"),
            body: std::cell::RefCell::new(Some(CoroutineBody::Call(main, Vec::new()))),
        });
        let main_task = match self.create_task(vm, &coroutine) {
            Ok(t) => t,
            Err(_) => return 1,
        };
        let finished = self.run_until_complete(vm, &main_task);
        if let Some(status) = self.fatal {
            return status;
        }
        if !finished {
            return 1;
        }
        self.shutdown(vm);
        if let Some(status) = self.fatal {
            return status;
        }
        main_task.0.handled.set(true);
        match main_task.state() {
            State::Rejected(t) => {
                report_uncaught(vm, &t, "uncaught exception in main", self.config.color);
                1
            }
            State::Cancelled => {
                vm.eprint(
                    "error: the main task was cancelled (asyncio.exceptions.CancelledError)\n",
                );
                1
            }
            _ => 0,
        }
    }

    fn call_async(
        &mut self,
        _vm: &mut Vm,
        _caller: FiberId,
        closure: Rc<Closure>,
        args: Vec<Value>,
    ) -> Result<NativeOutcome, Thrown> {
        let name = closure.function.name.clone();
        let body = std::cell::RefCell::new(Some(CoroutineBody::Call(closure, args)));
        Ok(NativeOutcome::Value(Value::Coroutine(Rc::new(Coroutine {
            name,
            body,
        }))))
    }

    fn await_value(
        &mut self,
        vm: &mut Vm,
        id: FiberId,
        fiber: &mut Fiber,
        value: Value,
    ) -> Result<AwaitOutcome, Thrown> {
        let task = fiber.promise.clone();
        match value {
            Value::Coroutine(c) => match c.body.borrow_mut().take() {
                Some(CoroutineBody::Call(closure, args)) => Ok(AwaitOutcome::Inline(closure, args)),
                Some(CoroutineBody::Sleep(ms)) if ms <= 0.0 => {
                    // `yield` once: the task's next step is a plain call_soon.
                    self.ready.push_back(Job::Resume {
                        fiber: id,
                        with: ResumeWith::Value(Value::Nil),
                    });
                    Ok(AwaitOutcome::Suspend)
                }
                Some(CoroutineBody::Sleep(ms)) => {
                    let Some(info) = task.as_ref().and_then(|t| t.task()) else {
                        return Err(vm.type_error("await of sleep() outside a task"));
                    };
                    let due = vm.now_ns() + duration_ns(&Value::Float(ms), "sleep()")?;
                    let timer = self.timers.add(due, Job::WakeTask { fiber: id });
                    info.sleep_timer.set(Some(timer));
                    Ok(AwaitOutcome::Suspend)
                }
                None => Err(Thrown::new(builtins::error_value(
                    "RuntimeError",
                    "cannot reuse already awaited coroutine",
                ))),
            },
            Value::Promise(p) => {
                if let Some(t) = &task
                    && t.ptr_eq(&p)
                {
                    return Err(Thrown::new(builtins::error_value(
                        "RuntimeError",
                        "Task cannot await on itself",
                    )));
                }
                if p.is_pending() {
                    self.wait_on(vm, id, task.as_ref(), &p)
                } else {
                    Self::result_of(&p).map(AwaitOutcome::Ready)
                }
            }
            other => Err(vm.type_error(&format!(
                "object {} can't be used in 'await' expression",
                match other {
                    Value::Int(_) => "int".to_string(),
                    Value::Float(_) => "float".to_string(),
                    Value::Str(_) => "str".to_string(),
                    Value::Nil => "NoneType".to_string(),
                    Value::Bool(_) => "bool".to_string(),
                    Value::List(_) => "list".to_string(),
                    Value::Map(_) => "dict".to_string(),
                    ref v => v.type_name().to_string(),
                }
            ))),
        }
    }

    fn spawn(
        &mut self,
        vm: &mut Vm,
        caller: FiberId,
        callee: Value,
        args: Vec<Value>,
    ) -> Result<NativeOutcome, Thrown> {
        match callee {
            Value::Closure(c) if c.function.is_async => {
                let NativeOutcome::Value(Value::Coroutine(coroutine)) = self.call_async(vm, caller, c, args)? else { unreachable!() };
                Ok(NativeOutcome::Value(Value::Promise(self.create_task(vm, &coroutine)?)))
            }
            other => Err(vm.type_error(&format!(
                "a coroutine was expected, got a {}: under asyncio, spawn (create_task) needs an async fn",
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
                let ns = duration_ns(&arg(0), "sleep()")?;
                let body =
                    std::cell::RefCell::new(Some(CoroutineBody::Sleep(ns as f64 / 1_000_000.0)));
                Value::Coroutine(Rc::new(Coroutine {
                    name: Rc::from("sleep"),
                    body,
                }))
            }
            Builtin::SetTimeout => {
                let function = arg(0);
                if !function.is_callable() {
                    return Err(vm.type_error("set_timeout (call_later) needs a function to call"));
                }
                let due = vm.now_ns() + duration_ns(&arg(1), "set_timeout()")?;
                let extra = args.get(2..).map(|a| a.to_vec()).unwrap_or_default();
                Value::Int(self.timers.add(
                    due,
                    Job::Call {
                        function,
                        args: extra,
                    },
                ) as i64)
            }
            Builtin::ClearTimeout => {
                if let Value::Int(id) = arg(0) {
                    self.timers.cancel(id as u64);
                }
                Value::Nil
            }
            Builtin::QueueMicrotask => {
                let function = arg(0);
                if !function.is_callable() {
                    return Err(vm.type_error("queue_microtask (call_soon) needs a function"));
                }
                self.ready.push_back(Job::Call {
                    function,
                    args: args.get(1..).map(|a| a.to_vec()).unwrap_or_default(),
                });
                Value::Nil
            }
            Builtin::NextTick => {
                return Err(vm.type_error(
                    "next_tick is Node's process.nextTick; asyncio has no nextTick queue (use queue_microtask, which is call_soon here)",
                ));
            }
            Builtin::NewPromise => return new_promise(vm, arg(0)),
            Builtin::PromiseResolve => match arg(0) {
                Value::Promise(p) => Value::Promise(p),
                v => Value::Promise(PromiseRef::with_state(State::Fulfilled(v))),
            },
            Builtin::PromiseReject => {
                let future = PromiseRef::new();
                self.complete(&future, State::Rejected(Thrown::new(arg(0))));
                Value::Promise(future)
            }
            Builtin::PromiseAll => match arg(0) {
                Value::List(items) => {
                    let items = items.borrow().clone();
                    Value::Promise(self.gather(vm, items, false)?)
                }
                other => {
                    return Err(vm.type_error(&format!(
                        "Promise.all needs a list, not a {}",
                        other.type_name()
                    )));
                }
            },
            Builtin::Gather => Value::Promise(self.gather(vm, args, false)?),
            Builtin::PromiseRace | Builtin::PromiseAllSettled | Builtin::PromiseAny => {
                return Err(vm.type_error(&format!(
                    "Promise.{} has no asyncio counterpart in looplab (asyncio offers gather, wait and as_completed)",
                    native.builtin.name()
                )));
            }
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
                    let state = if *reject {
                        State::Rejected(Thrown::new(arg(0)))
                    } else {
                        State::Fulfilled(arg(0))
                    };
                    self.complete(promise, state);
                }
                Value::Nil
            }
            other => {
                return Err(vm.type_error(&format!(
                    "`{}` is not available under asyncio",
                    other.name()
                )));
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
        if let Some(derived) = chain(self, vm, p, name, &args) {
            return Ok(NativeOutcome::Value(derived));
        }
        let value = match name {
            "cancel" => Value::Bool(self.cancel_future(p)),
            "done" => Value::Bool(!p.is_pending()),
            "cancelled" => Value::Bool(matches!(p.state(), State::Cancelled)),
            "result" => match p.state() {
                State::Pending => {
                    return Err(Thrown::new(builtins::error_value(
                        "InvalidStateError",
                        "Result is not set.",
                    )));
                }
                _ => Self::result_of(p)?,
            },
            _ => {
                return Err(vm.type_error(&format!(
                    "a future has no method `{name}` (it has then, catch, finally, cancel, done, cancelled, result)"
                )));
            }
        };
        Ok(NativeOutcome::Value(value))
    }

    fn settle(&mut self, _vm: &mut Vm, p: &PromiseRef, result: Result<Value, Thrown>) {
        let state = match result {
            Ok(v) => State::Fulfilled(v),
            Err(t) if t.is_cancellation() => State::Cancelled,
            Err(t) => State::Rejected(t),
        };
        self.complete(p, state);
    }

    fn then(
        &mut self,
        _vm: &mut Vm,
        p: &PromiseRef,
        on_fulfilled: Handler,
        on_rejected: Handler,
        derived: Option<PromiseRef>,
    ) {
        // A real rejection handler retrieves the exception when it runs.
        if matches!(
            on_rejected,
            Handler::Call(_) | Handler::Finally(_) | Handler::Resume(_) | Handler::GatherChild(..)
        ) {
            p.0.handled.set(true);
        }
        let reaction = Reaction {
            on_fulfilled,
            on_rejected,
            derived,
        };
        match p.state() {
            State::Pending => p.add_reaction(reaction),
            State::Fulfilled(v) => self.schedule_callback(reaction, Ok(v)),
            State::Rejected(t) => {
                p.0.handled.set(true);
                self.schedule_callback(reaction, Err(t))
            }
            State::Cancelled => self.schedule_callback(reaction, Err(Self::cancelled_error())),
        }
    }
}

impl Asyncio {
    fn wait_on(
        &mut self,
        vm: &mut Vm,
        id: FiberId,
        task: Option<&PromiseRef>,
        future: &PromiseRef,
    ) -> Result<AwaitOutcome, Thrown> {
        let Some(task) = task.filter(|t| t.is_task()) else {
            return Err(vm.type_error("await of a pending future outside a task"));
        };
        if let Some(info) = task.task() {
            *info.waiting_on.borrow_mut() = Some(future.clone());
        }
        self.then(vm, future, Handler::Resume(id), Handler::Resume(id), None);
        // Awaiting marks the exception as retrieved once it is delivered.
        future.0.handled.set(true);
        Ok(AwaitOutcome::Suspend)
    }
}
