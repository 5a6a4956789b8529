//! The bytecode VM. Execution state is data: every unit of execution (the
//! script, a task, a callback, an async function started by a call) is a
//! `Fiber` with its own frame stack, operand stack and handler stack, kept in
//! an arena. `Vm::run` executes a fiber until it returns, throws uncaught,
//! suspends at an `await`, or hits the step limit, and says which: the
//! runtime policy (see `runtime`) decides everything else. A looplab call is
//! a pushed frame, never a Rust call, so deep recursion is a clean error.
//!
//! Every executed instruction increments `steps`; the virtual clock charges
//! `instruction_cost_ns` per step (see `Clock`).

use crate::builtins::{self, Builtin};
use crate::bytecode::{Function, Op, UpvalueSource};
use crate::diagnostic::SourceFile;
use crate::lexer::Span;
use crate::runtime::Policy;
use crate::runtime::promise::PromiseRef;
use crate::value::{Closure, Flavor, Map, Native, NativeData, Value};
use std::cell::RefCell;
use std::rc::Rc;

pub type FiberId = u32;

/// Frames deeper than this are a "stack overflow" error.
pub const MAX_FRAMES: usize = 10_000;

pub struct Frame {
    pub closure: Rc<Closure>,
    pub ip: usize,
    pub base: usize,
    pub completion: Completion,
}

/// What happens when a frame returns or throws past its caller.
#[derive(Clone)]
pub enum Completion {
    Normal,
    /// A promise executor: the call evaluates to the promise; a throw rejects it.
    Executor(PromiseRef),
    /// A spawned plain function under js: its result is wrapped in a promise.
    WrapInPromise,
}

#[derive(Clone, Copy)]
pub struct Handler {
    pub frames: usize,
    pub ip: usize,
    pub stack: usize,
}

/// Where an error was thrown: for the uncaught-error report.
pub struct Origin {
    pub span: Span,
    pub source: Rc<SourceFile>,
    pub stack: Vec<Rc<str>>,
    pub unit: Rc<str>,
}

/// A thrown value in flight, with where it came from.
#[derive(Clone)]
pub struct Thrown {
    pub value: Value,
    pub origin: Option<Rc<Origin>>,
}

impl Thrown {
    pub fn new(value: Value) -> Thrown {
        Thrown {
            value,
            origin: None,
        }
    }
    pub fn is_cancellation(&self) -> bool {
        builtins::is_cancellation(&self.value)
    }
}

#[derive(Default)]
pub struct Fiber {
    pub stack: Vec<Value>,
    pub frames: Vec<Frame>,
    pub handlers: Vec<Handler>,
    /// js: the fiber that called this async function and waits synchronously.
    pub parent: Option<FiberId>,
    /// The promise (or task future) this fiber settles when it finishes.
    pub promise: Option<PromiseRef>,
    /// Set by `resume`: what the fiber receives when it next runs.
    pub pending: Option<ResumeWith>,
    /// How many fibers wait synchronously beneath this one (js).
    pub depth: u32,
    pub alive: bool,
}

impl Fiber {
    /// The unit's name: its entry function's (`<main>` for the top level).
    pub fn unit_name(&self) -> Rc<str> {
        self.frames
            .first()
            .map_or_else(|| Rc::from("?"), |f| f.closure.function.name.clone())
    }
}

pub enum ResumeWith {
    Start,
    Value(Value),
    Throw(Thrown),
}

/// Why `Vm::run` stopped.
pub enum Halt {
    Done(Value),
    Threw(Thrown),
    /// The fiber threw, and its promise now holds the error.
    Settled,
    Suspended,
    StepLimit,
}

/// What one stretch of `execute` ended with.
enum Exec {
    Return(Value),
    Threw(Thrown),
    Suspend,
    StartFiber(FiberId),
    StepLimit,
}

/// What a built-in or policy primitive asks the VM to do next.
pub enum NativeOutcome {
    Value(Value),
    /// Call a function as a frame in this fiber (e.g. a promise executor).
    CallFrame {
        callee: Value,
        args: Vec<Value>,
        completion: Completion,
    },
    /// Switch to a freshly made fiber now (js: an async function starts
    /// running synchronously); its promise is pushed when it stops.
    StartFiber(FiberId),
    /// Suspend this fiber (blocking primitives).
    Suspend,
}

/// What `await` resolves to, decided by the policy.
pub enum AwaitOutcome {
    Ready(Value),
    Suspend,
    /// asyncio `await coro`: run it in this fiber, like a call.
    Inline(Rc<Closure>, Vec<Value>),
}

pub struct Vm {
    pub globals: Vec<Value>,
    pub global_names: Vec<Rc<str>>,
    fibers: Vec<Fiber>,
    free_fibers: Vec<FiberId>,
    pub steps: u64,
    pub step_limit: u64,
    pub flavor: Flavor,
    pub out: String,
    pub err: String,
    /// Virtual nanoseconds not accounted for by steps (sleeping, `work`).
    pub extra_ns: u64,
    pub instruction_cost_ns: u64,
    pub echo_output: bool,
    /// Where the step limit stopped the program.
    pub stopped_at: Option<Rc<Origin>>,
    /// The last error a handler caught: re-throwing the same value (from a
    /// `finally`, or `catch e { throw e; }`) keeps its original throw site.
    last_caught: Option<Thrown>,
}

impl Vm {
    pub fn new(flavor: Flavor) -> Vm {
        Vm {
            globals: Vec::new(),
            global_names: Vec::new(),
            fibers: Vec::new(),
            free_fibers: Vec::new(),
            steps: 0,
            step_limit: u64::MAX,
            flavor,
            out: String::new(),
            err: String::new(),
            extra_ns: 0,
            instruction_cost_ns: 10,
            echo_output: false,
            stopped_at: None,
            last_caught: None,
        }
    }

    /// The virtual clock, in nanoseconds since the program started.
    pub fn now_ns(&self) -> u64 {
        self.extra_ns
            .saturating_add(self.steps.saturating_mul(self.instruction_cost_ns))
    }

    /// Moves the virtual clock forward to `t` (never backwards).
    pub fn advance_to(&mut self, t: u64) {
        let now = self.now_ns();
        if t > now {
            self.extra_ns += t - now;
        }
    }

    pub fn charge_ns(&mut self, ns: u64) {
        self.extra_ns = self.extra_ns.saturating_add(ns);
    }

    /// Makes the globals table as long as the compiler's, installing built-ins.
    pub fn sync_globals(&mut self, names: &[Rc<str>]) {
        while self.globals.len() < names.len() {
            let name = &names[self.globals.len()];
            self.globals
                .push(builtins::global_value(name).unwrap_or(Value::Uninit));
            self.global_names.push(name.clone());
        }
    }

    /// Drops every global and fiber, as interpreter shutdown does, so
    /// reports made on collection (never-awaited coroutines, unretrieved
    /// task exceptions) are made now.
    pub fn teardown(&mut self) {
        for g in self.globals.iter_mut() {
            *g = Value::Uninit;
        }
        self.fibers.clear();
        self.free_fibers.clear();
    }

    pub fn print(&mut self, text: &str) {
        self.out.push_str(text);
        if self.echo_output {
            self.flush();
        }
    }

    pub fn eprint(&mut self, text: &str) {
        self.err.push_str(text);
        if self.echo_output {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        use std::io::Write;
        if !self.out.is_empty() {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(self.out.as_bytes());
            let _ = stdout.flush();
            self.out.clear();
        }
        if !self.err.is_empty() {
            let _ = std::io::stderr().write_all(self.err.as_bytes());
            self.err.clear();
        }
    }

    // ---- fibers ----

    /// Makes a fiber that will call `callee(args)` when first run.
    pub fn new_fiber(&mut self, callee: Rc<Closure>, args: Vec<Value>) -> FiberId {
        let id = match self.free_fibers.pop() {
            Some(id) => id,
            None => {
                self.fibers.push(Fiber::default());
                (self.fibers.len() - 1) as FiberId
            }
        };
        let fiber = &mut self.fibers[id as usize];
        fiber.alive = true;
        fiber.pending = Some(ResumeWith::Start);
        if fiber.frames.capacity() == 0 {
            fiber.frames.reserve_exact(1);
            fiber
                .stack
                .reserve_exact(callee.function.num_slots as usize + 3); // callee, locals, two temporaries
        }
        fiber.stack.push(Value::Closure(callee.clone()));
        let base = fiber.stack.len();
        push_args(&mut fiber.stack, &callee.function, args);
        fiber.frames.push(Frame {
            closure: callee,
            ip: 0,
            base,
            completion: Completion::Normal,
        });
        id
    }

    pub fn fiber(&self, id: FiberId) -> &Fiber {
        &self.fibers[id as usize]
    }

    pub fn fiber_mut(&mut self, id: FiberId) -> &mut Fiber {
        &mut self.fibers[id as usize]
    }

    pub fn is_alive(&self, id: FiberId) -> bool {
        self.fibers.get(id as usize).is_some_and(|f| f.alive)
    }

    /// Live fibers that are not running (for deadlock reports).
    pub fn live_fibers(&self) -> impl Iterator<Item = (FiberId, &Fiber)> {
        self.fibers
            .iter()
            .enumerate()
            .filter(|(_, f)| f.alive)
            .map(|(i, f)| (i as FiberId, f))
    }

    /// Sets what a suspended fiber receives when it next runs.
    pub fn resume(&mut self, id: FiberId, with: ResumeWith) {
        self.fibers[id as usize].pending = Some(with);
    }

    fn release_fiber(&mut self, id: FiberId, mut fiber: Fiber) {
        fiber.stack.clear();
        fiber.frames.clear();
        fiber.handlers.clear();
        fiber.parent = None;
        fiber.promise = None;
        fiber.pending = None;
        fiber.depth = 0;
        fiber.alive = false;
        self.fibers[id as usize] = fiber;
        self.free_fibers.push(id);
    }

    /// Runs a fiber (and any fibers it starts synchronously) until it stops.
    pub fn run(&mut self, policy: &mut dyn Policy, start: FiberId) -> Halt {
        let mut id = start;
        let mut fiber = std::mem::take(&mut self.fibers[id as usize]);
        loop {
            let exec = match fiber.pending.take() {
                Some(ResumeWith::Throw(thrown)) => {
                    match self.throw_into(policy, &mut fiber, thrown) {
                        Ok(()) => self.execute(policy, id, &mut fiber),
                        Err(thrown) => Exec::Threw(thrown),
                    }
                }
                Some(ResumeWith::Value(v)) => {
                    fiber.stack.push(v);
                    self.execute(policy, id, &mut fiber)
                }
                _ => self.execute(policy, id, &mut fiber),
            };
            match exec {
                Exec::Return(value) => {
                    let promise = fiber.promise.take();
                    let parent = fiber.parent.take();
                    self.release_fiber(id, fiber);
                    if let Some(p) = &promise {
                        policy.settle(self, p, Ok(value.clone()));
                    }
                    match (parent, promise) {
                        (Some(pid), Some(p)) => {
                            id = pid;
                            fiber = std::mem::take(&mut self.fibers[id as usize]);
                            fiber.stack.push(Value::Promise(p));
                        }
                        _ => return Halt::Done(value),
                    }
                }
                Exec::Threw(thrown) => {
                    let promise = fiber.promise.take();
                    let parent = fiber.parent.take();
                    self.release_fiber(id, fiber);
                    match (parent, promise) {
                        (Some(pid), Some(p)) => {
                            policy.settle(self, &p, Err(thrown));
                            id = pid;
                            fiber = std::mem::take(&mut self.fibers[id as usize]);
                            fiber.stack.push(Value::Promise(p));
                        }
                        (None, Some(p)) => {
                            policy.settle(self, &p, Err(thrown));
                            return Halt::Settled;
                        }
                        _ => return Halt::Threw(thrown),
                    }
                }
                Exec::Suspend => {
                    let parent = fiber.parent.take();
                    let promise = fiber.promise.clone();
                    self.fibers[id as usize] = fiber;
                    match (parent, promise) {
                        (Some(pid), Some(p)) => {
                            id = pid;
                            fiber = std::mem::take(&mut self.fibers[id as usize]);
                            fiber.stack.push(Value::Promise(p));
                        }
                        _ => return Halt::Suspended,
                    }
                }
                Exec::StartFiber(child) => {
                    let depth = fiber.depth + 1;
                    self.fibers[id as usize] = fiber;
                    let child_fiber = &mut self.fibers[child as usize];
                    child_fiber.parent = Some(id);
                    child_fiber.depth = depth;
                    id = child;
                    fiber = std::mem::take(&mut self.fibers[id as usize]);
                    if depth as usize > MAX_FRAMES {
                        fiber.pending =
                            Some(ResumeWith::Throw(Thrown::new(builtins::error_value(
                                "RangeError",
                                "stack overflow: async calls nested too deeply",
                            ))));
                    }
                }
                Exec::StepLimit => {
                    self.fibers[id as usize] = fiber;
                    return Halt::StepLimit;
                }
            }
        }
    }

    /// Builds the origin record of an error thrown at `span` in `fiber`.
    fn origin(&self, fiber: &Fiber, span: Span, source: &Rc<SourceFile>) -> Rc<Origin> {
        Rc::new(Origin {
            span,
            source: source.clone(),
            stack: fiber
                .frames
                .iter()
                .rev()
                .map(|f| f.closure.function.name.clone())
                .collect(),
            unit: fiber.unit_name(),
        })
    }

    /// Unwinds to the nearest handler (or executor frame). Err if uncaught.
    fn throw_into(
        &mut self,
        policy: &mut dyn Policy,
        fiber: &mut Fiber,
        thrown: Thrown,
    ) -> Result<(), Thrown> {
        let executor_at = fiber
            .frames
            .iter()
            .rposition(|f| matches!(f.completion, Completion::Executor(_)));
        let handler = fiber.handlers.last().copied();
        match (handler, executor_at) {
            (Some(h), e) if e.is_none_or(|e| h.frames > e) => {
                fiber.handlers.pop();
                fiber.frames.truncate(h.frames);
                fiber.stack.truncate(h.stack);
                fiber.stack.push(thrown.value.clone());
                self.last_caught = Some(thrown);
                if let Some(frame) = fiber.frames.last_mut() {
                    frame.ip = h.ip;
                }
                Ok(())
            }
            (_, Some(e)) => {
                let frame = &fiber.frames[e];
                let Completion::Executor(promise) = frame.completion.clone() else {
                    unreachable!()
                };
                let callee_at = frame.base - 1;
                fiber.frames.truncate(e);
                fiber.stack.truncate(callee_at);
                fiber.handlers.retain(|h| h.frames <= e);
                policy.reject(self, &promise, thrown);
                fiber.stack.push(Value::Promise(promise));
                Ok(())
            }
            _ => Err(thrown),
        }
    }

    /// The interpreter loop proper.
    fn execute(&mut self, policy: &mut dyn Policy, id: FiberId, fiber: &mut Fiber) -> Exec {
        macro_rules! frame {
            () => {
                fiber
                    .frames
                    .last_mut()
                    .expect("a running fiber has a frame")
            };
        }
        let mut function: Rc<Function> = frame!().closure.function.clone();
        let mut ip = frame!().ip;
        let mut base = frame!().base;
        // The step counter lives in a register; `save!` writes it back (with
        // the ip) before anything outside the loop can look at it.
        let mut steps = self.steps;
        let limit = self.step_limit;
        macro_rules! save {
            () => {{
                frame!().ip = ip;
                self.steps = steps;
            }};
        }

        macro_rules! reload {
            () => {{
                let f = frame!();
                function = f.closure.function.clone();
                ip = f.ip;
                base = f.base;
            }};
        }
        macro_rules! throw {
            ($thrown:expr) => {{
                save!();
                let mut thrown: Thrown = $thrown;
                if thrown.origin.is_none() {
                    let span = function.spans[ip.saturating_sub(1)];
                    thrown.origin = Some(self.origin(fiber, span, &function.source));
                }
                match self.throw_into(policy, fiber, thrown) {
                    Ok(()) => {
                        if fiber.frames.is_empty() {
                            unreachable!("a handler always has a frame");
                        }
                        reload!();
                        continue;
                    }
                    Err(thrown) => return Exec::Threw(thrown),
                }
            }};
        }
        macro_rules! error {
            ($kind:expr, $($fmt:tt)*) => {
                throw!(Thrown::new(builtins::error_value($kind, &format!($($fmt)*))))
            };
        }
        // What to do after a call or primitive: go on, enter the pushed
        // frame, switch fibers, suspend, or throw.
        macro_rules! call_step {
            ($step:expr) => {
                match $step {
                    Ok(CallStep::Pushed) => reload!(),
                    Ok(CallStep::Continue) => {}
                    Ok(CallStep::Start(child)) => return Exec::StartFiber(child),
                    Ok(CallStep::Suspend) => return Exec::Suspend,
                    Err(thrown) => throw!(thrown),
                }
            };
        }
        macro_rules! pop {
            () => {
                fiber.stack.pop().unwrap_or_default()
            };
        }
        macro_rules! binary {
            ($op:expr) => {{
                let right = pop!();
                let left = pop!();
                match builtins::binary($op, &left, &right, self.flavor) {
                    Ok(v) => fiber.stack.push(v),
                    Err(e) => throw!(Thrown::new(e)),
                }
            }};
        }

        loop {
            if steps >= limit {
                save!();
                let span = function.spans[ip.min(function.spans.len() - 1)];
                self.stopped_at = Some(self.origin(fiber, span, &function.source));
                return Exec::StepLimit;
            }
            steps += 1;
            let op = function.code[ip];
            ip += 1;
            match op {
                Op::Const(i) => fiber
                    .stack
                    .push(fast_clone(&function.constants[i as usize])),
                Op::Nil => fiber.stack.push(Value::Nil),
                Op::True => fiber.stack.push(Value::Bool(true)),
                Op::False => fiber.stack.push(Value::Bool(false)),
                Op::Pop => {
                    if let Some(v) = fiber.stack.pop() {
                        discard(v);
                    }
                }
                Op::GetLocal(slot) => {
                    let v = fast_clone(&fiber.stack[base + slot as usize]);
                    fiber.stack.push(v);
                }
                Op::SetLocal(slot) => {
                    let v = pop!();
                    discard(std::mem::replace(&mut fiber.stack[base + slot as usize], v));
                }
                Op::AppendLocal(slot) => {
                    let right = pop!();
                    let at = base + slot as usize;
                    match (&mut fiber.stack[at], &right) {
                        (Value::Int(a), Value::Int(b)) => match a.checked_add(*b) {
                            Some(sum) => *a = sum,
                            None => error!("OverflowError", "integer overflow in `+`"),
                        },
                        (Value::Str(s), r)
                            if Rc::strong_count(s) == 1 && Rc::weak_count(s) == 0 =>
                        {
                            let added = match r {
                                Value::Str(t) => t.len(),
                                _ => 32,
                            };
                            if let Err(thrown) = builtins::check_string_size(s.len() + added) {
                                throw!(thrown);
                            }
                            if let Some(buffer) = Rc::get_mut(s) {
                                match r {
                                    Value::Str(t) => buffer.push_str(t),
                                    other => buffer.push_str(&other.display(self.flavor)),
                                }
                            }
                            discard(right);
                        }
                        (left, _) => match builtins::binary(Op::Add, left, &right, self.flavor) {
                            Ok(v) => *left = v,
                            Err(e) => throw!(Thrown::new(e)),
                        },
                    }
                }
                Op::NewCell(slot) => {
                    let slot = &mut fiber.stack[base + slot as usize];
                    let v = std::mem::take(slot);
                    *slot = Value::Cell(Rc::new(RefCell::new(v)));
                }
                Op::GetCell(slot) => {
                    let v = match &fiber.stack[base + slot as usize] {
                        Value::Cell(cell) => cell.borrow().clone(),
                        other => other.clone(),
                    };
                    fiber.stack.push(v);
                }
                Op::SetCell(slot) => {
                    let v = pop!();
                    match &fiber.stack[base + slot as usize] {
                        Value::Cell(cell) => *cell.borrow_mut() = v,
                        _ => fiber.stack[base + slot as usize] = v,
                    }
                }
                Op::GetUpvalue(i) => {
                    let v = frame!().closure.upvalues[i as usize].borrow().clone();
                    fiber.stack.push(v);
                }
                Op::SetUpvalue(i) => {
                    let v = pop!();
                    *frame!().closure.upvalues[i as usize].borrow_mut() = v;
                }
                Op::GetGlobal(i) => {
                    let v = &self.globals[i as usize];
                    if let Value::Uninit = v {
                        error!(
                            "ReferenceError",
                            "`{}` is used before it is defined", self.global_names[i as usize]
                        );
                    }
                    fiber.stack.push(fast_clone(v));
                }
                Op::SetGlobal(i) => {
                    if let Value::Uninit = self.globals[i as usize] {
                        error!(
                            "ReferenceError",
                            "`{}` is assigned before it is defined", self.global_names[i as usize]
                        );
                    }
                    self.globals[i as usize] = pop!();
                }
                Op::DefineGlobal(i) => self.globals[i as usize] = pop!(),
                Op::Add
                | Op::Sub
                | Op::Mul
                | Op::Lt
                | Op::Le
                | Op::Gt
                | Op::Ge
                | Op::Eq
                | Op::Ne => {
                    let len = fiber.stack.len();
                    if let (Value::Int(a), Value::Int(b)) =
                        (&fiber.stack[len - 2], &fiber.stack[len - 1])
                        && let Some(result) = int_binary(op, *a, *b)
                    {
                        // Both operands are integers: no drop glue needed.
                        if let Some(v) = fiber.stack.pop() {
                            std::mem::forget(v);
                        }
                        // A comparison feeding a conditional jump skips the push/pop.
                        if let (Value::Bool(truth), Op::JumpIfFalse(target)) =
                            (&result, function.code[ip])
                        {
                            if let Some(v) = fiber.stack.pop() {
                                std::mem::forget(v);
                            }
                            steps += 1;
                            ip = if *truth { ip + 1 } else { target as usize };
                            continue;
                        }
                        std::mem::forget(std::mem::replace(&mut fiber.stack[len - 2], result));
                        continue;
                    }
                    binary!(op)
                }
                Op::Div | Op::Mod => binary!(op),
                Op::LocalConst(slot, constant, bop) => {
                    let left = &fiber.stack[base + slot as usize];
                    let right = &function.constants[constant as usize];
                    if let (Value::Int(a), Value::Int(b)) = (left, right)
                        && let Some(result) = bop.apply_int(*a, *b)
                    {
                        if let (Value::Bool(truth), Op::JumpIfFalse(target)) =
                            (&result, function.code[ip])
                        {
                            steps += 1;
                            ip = if *truth { ip + 1 } else { target as usize };
                            continue;
                        }
                        fiber.stack.push(result);
                        continue;
                    }
                    let (left, right) = (left.clone(), right.clone());
                    fiber.stack.push(left);
                    fiber.stack.push(right);
                    binary!(bop.op())
                }
                Op::Neg => {
                    let v = pop!();
                    match v {
                        Value::Int(n) => match n.checked_neg() {
                            Some(n) => fiber.stack.push(Value::Int(n)),
                            None => error!("OverflowError", "integer overflow in unary `-`"),
                        },
                        Value::Float(x) => fiber.stack.push(Value::Float(-x)),
                        other => error!("TypeError", "cannot negate a {}", other.type_name()),
                    }
                }
                Op::Not => {
                    let v = pop!();
                    fiber.stack.push(Value::Bool(!v.truthy(self.flavor)));
                }
                Op::Jump(target) => ip = target as usize,
                Op::JumpIfFalse(target) => {
                    let condition = pop!();
                    if !condition.truthy(self.flavor) {
                        ip = target as usize;
                    }
                    discard(condition);
                }
                Op::AndJump(target) => {
                    if fiber.stack.last().is_some_and(|v| !v.truthy(self.flavor)) {
                        ip = target as usize;
                    } else {
                        fiber.stack.pop();
                    }
                }
                Op::OrJump(target) => {
                    if fiber.stack.last().is_some_and(|v| v.truthy(self.flavor)) {
                        ip = target as usize;
                    } else {
                        fiber.stack.pop();
                    }
                }
                Op::Call(argc) => {
                    save!();
                    let callee_at = fiber.stack.len() - argc as usize - 1;
                    // Fast path: a plain closure called with exactly its arity.
                    if let Value::Closure(closure) = &fiber.stack[callee_at]
                        && !closure.function.is_async
                        && closure.function.arity == argc
                        && fiber.frames.len() < MAX_FRAMES
                    {
                        let closure = closure.clone();
                        let extra = closure.function.num_slots - argc;
                        for _ in 0..extra {
                            fiber.stack.push(Value::Nil);
                        }
                        base = callee_at + 1;
                        function = closure.function.clone();
                        ip = 0;
                        fiber.frames.push(Frame {
                            closure,
                            ip: 0,
                            base,
                            completion: Completion::Normal,
                        });
                        continue;
                    }
                    let callee = fiber.stack[callee_at].clone();
                    call_step!(self.call_value(
                        policy,
                        id,
                        fiber,
                        callee,
                        argc as usize,
                        Completion::Normal,
                    ));
                }
                Op::CallMethod(name, argc) => {
                    save!();
                    let Value::Str(name) = function.constants[name as usize].clone() else {
                        unreachable!()
                    };
                    let receiver_at = fiber.stack.len() - argc as usize - 1;
                    let receiver = fiber.stack[receiver_at].clone();
                    // A map field holding a function is called like a function.
                    if let Value::Map(m) = &receiver {
                        let field = m.borrow().get(&name).cloned();
                        if let Some(value) = field.as_ref().filter(|f| !f.is_callable()) {
                            error!(
                                "TypeError",
                                "`.{name}` of this map is a {} ({}), not a function",
                                value.type_name(),
                                value.repr(self.flavor)
                            );
                        }
                        if let Some(callee) = field.filter(|f| f.is_callable()) {
                            fiber.stack[receiver_at] = callee.clone();
                            call_step!(self.call_value(
                                policy,
                                id,
                                fiber,
                                callee,
                                argc as usize,
                                Completion::Normal,
                            ));
                            continue;
                        }
                    }
                    let args: Vec<Value> = fiber.stack.drain(receiver_at + 1..).collect();
                    fiber.stack.pop();
                    let outcome = builtins::call_method(self, policy, id, &receiver, &name, args);
                    call_step!(self.apply_outcome(policy, id, fiber, outcome));
                }
                Op::Return => {
                    let result = pop!();
                    let frame = fiber.frames.pop().expect("frame");
                    let depth = fiber.frames.len();
                    while fiber.handlers.last().is_some_and(|h| h.frames > depth) {
                        fiber.handlers.pop();
                    }
                    if depth > 0 && matches!(frame.completion, Completion::Normal) {
                        fiber.stack.truncate(frame.base - 1);
                        fiber.stack.push(result);
                        let caller = &fiber.frames[depth - 1];
                        function = caller.closure.function.clone();
                        ip = caller.ip;
                        base = caller.base;
                        continue;
                    }
                    fiber.stack.truncate(frame.base - 1);
                    if fiber.frames.is_empty() {
                        self.steps = steps;
                        return Exec::Return(result);
                    }
                    match frame.completion {
                        Completion::Normal => fiber.stack.push(result),
                        Completion::Executor(p) => fiber.stack.push(Value::Promise(p)),
                        Completion::WrapInPromise => {
                            let p = policy.resolved_promise(self, result);
                            fiber.stack.push(p)
                        }
                    }
                    reload!();
                }
                Op::Closure(i) => {
                    let Value::Closure(proto) = &function.constants[i as usize] else {
                        unreachable!()
                    };
                    let upvalues = proto
                        .function
                        .upvalues
                        .iter()
                        .map(|source| match *source {
                            UpvalueSource::Local(slot) => {
                                match &fiber.stack[base + slot as usize] {
                                    Value::Cell(cell) => cell.clone(),
                                    other => Rc::new(RefCell::new(other.clone())),
                                }
                            }
                            UpvalueSource::Upvalue(i) => {
                                frame!().closure.upvalues[i as usize].clone()
                            }
                        })
                        .collect();
                    fiber.stack.push(Value::Closure(Rc::new(Closure {
                        function: proto.function.clone(),
                        upvalues,
                    })));
                }
                Op::MakeList(n) => {
                    let items = fiber.stack.split_off(fiber.stack.len() - n as usize);
                    fiber.stack.push(Value::list(items));
                }
                Op::MakeMap(n) => {
                    let items = fiber.stack.split_off(fiber.stack.len() - 2 * n as usize);
                    let mut map = Map::default();
                    let mut it = items.into_iter();
                    while let (Some(Value::Str(k)), Some(v)) = (it.next(), it.next()) {
                        map.set(&k, v);
                    }
                    fiber.stack.push(Value::map(map));
                }
                Op::Index => {
                    let index = pop!();
                    let object = pop!();
                    match builtins::index(&object, &index, self.flavor) {
                        Ok(v) => fiber.stack.push(v),
                        Err(e) => throw!(Thrown::new(e)),
                    }
                }
                Op::SetIndex => {
                    let value = pop!();
                    let index = pop!();
                    let object = pop!();
                    if let Err(e) = builtins::set_index(&object, &index, value) {
                        throw!(Thrown::new(e));
                    }
                }
                Op::GetField(name) => {
                    let Value::Str(name) = &function.constants[name as usize] else {
                        unreachable!()
                    };
                    let object = pop!();
                    match builtins::get_field(&object, name) {
                        Ok(v) => fiber.stack.push(v),
                        Err(e) => throw!(Thrown::new(e)),
                    }
                }
                Op::SetField(name) => {
                    let Value::Str(name) = &function.constants[name as usize] else {
                        unreachable!()
                    };
                    let value = pop!();
                    let object = pop!();
                    match &object {
                        Value::Map(m) => m.borrow_mut().set(name, value),
                        other => error!(
                            "TypeError",
                            "cannot set field `{name}` on a {}",
                            other.type_name()
                        ),
                    }
                }
                Op::IterPrepare(slot) => {
                    let at = base + slot as usize;
                    let prepared = match &fiber.stack[at] {
                        Value::List(_) => None,
                        Value::Map(m) => Some(Value::list(
                            m.borrow().keys().iter().map(|k| Value::str(k)).collect(),
                        )),
                        Value::Str(s) => Some(Value::list(
                            s.chars().map(|c| Value::str(&c.to_string())).collect(),
                        )),
                        other => error!(
                            "TypeError",
                            "cannot loop over a {} (use a list, a map, a string or a range)",
                            other.type_name()
                        ),
                    };
                    if let Some(p) = prepared {
                        fiber.stack[at] = p;
                    }
                    fiber.stack[at + 1] = Value::Int(0);
                }
                Op::IterNext(slot, exit) => {
                    let at = base + slot as usize;
                    let Value::Int(position) = fiber.stack[at + 1] else {
                        unreachable!()
                    };
                    let item = match &fiber.stack[at] {
                        Value::List(items) => items.borrow().get(position as usize).cloned(),
                        _ => None,
                    };
                    match item {
                        Some(item) => {
                            fiber.stack[at + 1] = Value::Int(position + 1);
                            fiber.stack.push(item);
                        }
                        None => ip = exit as usize,
                    }
                }
                Op::RangeNext(slot, exit) => {
                    let at = base + slot as usize;
                    match (&fiber.stack[at], &fiber.stack[at + 1]) {
                        (Value::Int(i), Value::Int(end)) => {
                            let i = *i;
                            if i < *end {
                                fiber.stack[at] = Value::Int(i + 1);
                                fiber.stack.push(Value::Int(i));
                            } else {
                                ip = exit as usize;
                            }
                        }
                        (a, b) => error!(
                            "TypeError",
                            "a range needs two integers, not {} and {}",
                            a.type_name(),
                            b.type_name()
                        ),
                    }
                }
                Op::Await => {
                    save!();
                    let awaited = pop!();
                    match policy.await_value(self, id, fiber, awaited) {
                        Ok(AwaitOutcome::Ready(v)) => fiber.stack.push(v),
                        Ok(AwaitOutcome::Suspend) => return Exec::Suspend,
                        Ok(AwaitOutcome::Inline(closure, args)) => {
                            if fiber.frames.len() >= MAX_FRAMES {
                                error!(
                                    "RangeError",
                                    "stack overflow: more than {MAX_FRAMES} nested calls"
                                );
                            }
                            fiber.stack.push(Value::Closure(closure.clone()));
                            let base = fiber.stack.len();
                            push_args(&mut fiber.stack, &closure.function, args);
                            fiber.frames.push(Frame {
                                closure,
                                ip: 0,
                                base,
                                completion: Completion::Normal,
                            });
                            reload!();
                        }
                        Err(thrown) => throw!(thrown),
                    }
                }
                Op::Spawn(argc) => {
                    save!();
                    let callee_at = fiber.stack.len() - argc as usize - 1;
                    let args: Vec<Value> = fiber.stack.drain(callee_at + 1..).collect();
                    let callee = pop!();
                    let outcome = policy.spawn(self, id, callee, args);
                    call_step!(self.apply_outcome(policy, id, fiber, outcome));
                }
                Op::Throw => {
                    let value = pop!();
                    let origin = self
                        .last_caught
                        .take()
                        .filter(|t| t.value.equals(&value))
                        .and_then(|t| t.origin);
                    throw!(Thrown { value, origin })
                }
                Op::TryPush(target) => fiber.handlers.push(Handler {
                    frames: fiber.frames.len(),
                    ip: target as usize,
                    stack: fiber.stack.len(),
                }),
                Op::TryPop => {
                    fiber.handlers.pop();
                }
                Op::CatchFilter(target) => {
                    if fiber.stack.last().is_some_and(builtins::is_cancellation) {
                        ip = target as usize;
                    }
                }
            }
        }
    }

    /// Calls the value at `stack[len - argc - 1]` with the `argc` values above it.
    fn call_value(
        &mut self,
        policy: &mut dyn Policy,
        id: FiberId,
        fiber: &mut Fiber,
        callee: Value,
        argc: usize,
        completion: Completion,
    ) -> Result<CallStep, Thrown> {
        match callee {
            Value::Closure(closure) if !closure.function.is_async => {
                if fiber.frames.len() >= MAX_FRAMES {
                    return Err(Thrown::new(builtins::error_value(
                        "RangeError",
                        &format!("stack overflow: more than {MAX_FRAMES} nested calls"),
                    )));
                }
                let base = fiber.stack.len() - argc;
                fit_args(&mut fiber.stack, base, argc, &closure.function);
                fiber.frames.push(Frame {
                    closure,
                    ip: 0,
                    base,
                    completion,
                });
                Ok(CallStep::Pushed)
            }
            Value::Closure(closure) => {
                let callee_at = fiber.stack.len() - argc - 1;
                let args: Vec<Value> = fiber.stack.drain(callee_at + 1..).collect();
                fiber.stack.pop();
                let outcome = policy.call_async(self, id, closure, args);
                self.apply_outcome(policy, id, fiber, outcome)
            }
            Value::Native(native) => {
                let callee_at = fiber.stack.len() - argc - 1;
                let args: Vec<Value> = fiber.stack.drain(callee_at + 1..).collect();
                fiber.stack.pop();
                let outcome = builtins::call_native(self, policy, id, &native, args);
                self.apply_outcome(policy, id, fiber, outcome)
            }
            other => Err(Thrown::new(builtins::error_value(
                "TypeError",
                &format!(
                    "cannot call a {} (`{}`)",
                    other.type_name(),
                    other.repr(self.flavor)
                ),
            ))),
        }
    }

    fn apply_outcome(
        &mut self,
        policy: &mut dyn Policy,
        id: FiberId,
        fiber: &mut Fiber,
        outcome: Result<NativeOutcome, Thrown>,
    ) -> Result<CallStep, Thrown> {
        match outcome? {
            NativeOutcome::Value(v) => {
                fiber.stack.push(v);
                Ok(CallStep::Continue)
            }
            NativeOutcome::CallFrame {
                callee,
                args,
                completion,
            } => {
                let argc = args.len();
                fiber.stack.push(callee.clone());
                fiber.stack.extend(args);
                self.call_value(policy, id, fiber, callee, argc, completion)
            }
            NativeOutcome::StartFiber(child) => Ok(CallStep::Start(child)),
            NativeOutcome::Suspend => Ok(CallStep::Suspend),
        }
    }

    /// A Rust-side error with a message, as a thrown value.
    pub fn type_error(&self, message: &str) -> Thrown {
        Thrown::new(builtins::error_value("TypeError", message))
    }

    /// Makes a native bound to data.
    pub fn native(builtin: Builtin, data: NativeData) -> Value {
        Value::Native(Rc::new(Native { builtin, data }))
    }
}

/// Clones a value, copying scalars inline (the common case in hot loops).
#[inline(always)]
fn fast_clone(v: &Value) -> Value {
    match v {
        Value::Int(n) => Value::Int(*n),
        Value::Float(x) => Value::Float(*x),
        Value::Bool(b) => Value::Bool(*b),
        Value::Nil => Value::Nil,
        Value::Closure(c) => Value::Closure(Rc::clone(c)),
        other => other.clone(),
    }
}

/// Drops a value, skipping drop glue for scalars (they own nothing).
#[inline(always)]
fn discard(v: Value) {
    match v {
        Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Nil => std::mem::forget(v),
        other => drop(other),
    }
}

/// Integer fast path of a binary operator; `None` means "take the slow path".
#[inline(always)]
fn int_binary(op: Op, a: i64, b: i64) -> Option<Value> {
    crate::bytecode::BinaryOp::of(op)?.apply_int(a, b)
}

enum CallStep {
    Pushed,
    Continue,
    Start(FiberId),
    Suspend,
}

/// Lays out arguments for a call: missing ones are nil, extra ones dropped,
/// then the function's other local slots.
fn push_args(stack: &mut Vec<Value>, function: &Function, args: Vec<Value>) {
    let arity = function.arity as usize;
    let given = args.len();
    stack.extend(args.into_iter().take(arity));
    for _ in given.min(arity)..function.num_slots as usize {
        stack.push(Value::Nil);
    }
}

/// Same as `push_args` for arguments already on the stack at `base`.
fn fit_args(stack: &mut Vec<Value>, base: usize, argc: usize, function: &Function) {
    let arity = function.arity as usize;
    if argc > arity {
        stack.truncate(base + arity);
    }
    stack.resize(
        base + function.num_slots.max(function.arity) as usize,
        Value::Nil,
    );
}
