//! The dispatch loop: executes one unit's instructions until it halts.
//! Integer arithmetic and comparisons have inline fast paths; everything
//! else goes to `ops` (operators), `builtins` (built-in functions and
//! methods), or halts for the policy (`await`, `spawn`, async calls, the
//! runtime's primitives and objects).

use super::builtins;
use super::halt::{Halt, Preempt, Slice};
use super::ops::check_string_size;
use super::{Fiber, Frame, Globals, MAX_FRAMES, Thrown, TryHandler, Vm, ops, stack_overflow};
use crate::bytecode::{Function, Op};
use crate::value::{Native, Value};
use std::cell::RefCell;
use std::rc::Rc;

impl Vm {
    /// The interpreter loop proper: runs `fiber` until it halts.
    pub(super) fn execute(
        &mut self,
        fiber: &mut Fiber,
        globals: &mut Globals,
        slice: Slice,
    ) -> Halt {
        macro_rules! frame {
            () => {
                fiber
                    .frames
                    .last_mut()
                    .expect("a running fiber has a frame")
            };
        }
        let mut function: Rc<Function> = frame!().closure.function.clone();
        // The running function's code is reached through two raw pointers
        // held in registers: `code`, its first instruction, and `pc`, the
        // next one to run. Fetching is one load, with no bounds check and no
        // length to keep in a register.
        // SAFETY (every `unsafe` below that makes, moves or reads `pc`):
        // `code` points into `function.code`; `function` is an `Rc` that
        // keeps its `Function` alive and unchanged (a `Function` is never
        // mutated once shared), and `function` is only ever reassigned
        // together with `code` (`set_function!`), after which `pc` is set
        // anew from `code`. Every function's code ends with a `Return` and
        // every jump target lies inside it (`bytecode::code_stays_inside`,
        // checked by the compiler for each function it makes), so: a frame's
        // saved ip (0, a jump or handler target, or the instruction after
        // one that is not the final `Return`) is inside the code; running
        // any instruction but a `Return` leaves `pc` on another instruction;
        // and a peek at `pc` after a fused operator reads the instruction
        // that follows it, which exists because the code ends with `Return`.
        // PERF: holding `function` as a plain `&Function` (no reference
        // counting on call and return) measured fib(25) -1.6% instructions
        // but the 1M loop +3.6% and string_build/list_map +1%: register
        // allocation in `execute` outweighs the saved counts. Revisit once
        // the loop's state stays in registers.
        macro_rules! code_of {
            ($function:expr) => {
                $function.code.as_ptr()
            };
        }
        let mut code: *const Op = code_of!(function);
        macro_rules! set_function {
            ($rc:expr) => {{
                function = $rc;
                code = code_of!(function);
            }};
        }
        // The instruction at index `i` of the running code.
        macro_rules! at {
            ($i:expr) => {
                unsafe { code.add($i as usize) }
            };
        }
        let mut pc: *const Op = at!(frame!().ip);
        // The index of the next instruction.
        macro_rules! ip {
            () => {
                unsafe { pc.offset_from(code) as usize }
            };
        }
        // The next instruction, without moving on.
        macro_rules! peek {
            () => {
                unsafe { *pc }
            };
        }
        let mut base = frame!().base as usize;
        // The step count is kept as `fuel`, the instructions left before
        // `stop_at` (one register, counted down; a fused instruction may take
        // it below zero): the count is `stop_at - fuel`, and `save!` writes
        // it back (with the ip) before anything outside the loop can look at
        // it. `stop_at` is the nearer of the runaway limit and the end of
        // the slice. When the slice ends and it preempts only at switch
        // points (CPython's eval breaker is set), the check runs at every
        // instruction until the unit stands at one, so loop back-edges and
        // calls pay nothing for switch points.
        let mut stop_at = if slice.budget == u64::MAX {
            self.step_limit
        } else {
            self.step_limit.min(self.steps.saturating_add(slice.budget))
        }
        .min(i64::MAX as u64);
        let mut fuel: i64 = (stop_at as i64).wrapping_sub(self.steps as i64);
        macro_rules! steps {
            () => {
                (stop_at as i64).wrapping_sub(fuel) as u64
            };
        }
        macro_rules! save {
            () => {{
                frame!().ip = ip!() as u32;
                self.steps = steps!();
            }};
        }

        macro_rules! reload {
            () => {{
                let f = frame!();
                set_function!(f.closure.function.clone());
                pc = at!(f.ip);
                base = f.base as usize;
            }};
        }
        // Throws at the current instruction (out of line: `slow::raise`).
        macro_rules! throw {
            ($thrown:expr) => {{
                save!();
                let thrown: Thrown = $thrown;
                match self.raise(fiber, thrown) {
                    None => {
                        reload!();
                        // Unwinding counted the frames it popped.
                        fuel = (stop_at as i64).wrapping_sub(self.steps as i64);
                        continue;
                    }
                    Some(halt) => return halt,
                }
            }};
        }
        macro_rules! error {
            ($kind:expr, $($fmt:tt)*) => {
                throw!(Thrown::error($kind, &format!($($fmt)*)))
            };
        }
        // halt for the policy, or throw.
        macro_rules! call_step {
            ($step:expr) => {
                match $step {
                    Ok(CallStep::Pushed) => {
                        reload!();
                    }
                    Ok(CallStep::Value(v)) => fiber.stack.push(v),
                    Ok(CallStep::Halt(halt)) => return halt,
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
                if let Err(thrown) = self.binary_slow(fiber, $op) {
                    throw!(thrown);
                }
            }};
        }

        // A fused `left OP right` (`LocalConst`, `LocalLocal`): integers
        // inline, a comparison feeding a `JumpIfFalse` jumps at once;
        // anything else takes the operator's slow path.
        macro_rules! fused {
            ($left:expr, $right:expr, $bop:expr) => {{
                let (left, right) = ($left, $right);
                if let (Value::Int(a), Value::Int(b)) = (left, right)
                    && let Some(result) = $bop.apply_int(*a, *b)
                {
                    if let (Value::Bool(truth), Op::JumpIfFalse(target)) = (&result, peek!()) {
                        fuel -= 1;
                        pc = if *truth {
                            unsafe { pc.add(1) }
                        } else {
                            at!(target)
                        };
                        continue;
                    }
                    fiber.stack.push(result);
                    continue;
                }
                let (left, right) = (left.clone(), right.clone());
                fiber.stack.push(left);
                fiber.stack.push(right);
                binary!($bop.op())
            }};
        }
        loop {
            if fuel <= 0 {
                save!();
                if self.steps >= self.step_limit {
                    let ip = ip!();
                    let span = function.spans[ip.min(function.spans.len() - 1)];
                    return Halt::StepLimit(self.origin(fiber, span, &function.source));
                }
                // The slice's budget is spent: stop now, or at the next
                // switch point — just before a loop's back-edge, or at a
                // function's first instruction.
                if slice.preempt == Preempt::Anywhere
                    || pc == code
                    || matches!(peek!(), Op::Loop(_))
                {
                    return Halt::Preempted;
                }
                stop_at = self.steps + 1;
                fuel = 1;
            }
            fuel -= 1;
            let here = pc;
            pc = unsafe { pc.add(1) };
            // Matched by reference: each arm loads only its own operands.
            let op = unsafe { &*here };
            match op {
                &Op::Const(i) => fiber
                    .stack
                    .push(fast_clone(&function.constants[i as usize])),
                &Op::Nil => fiber.stack.push(Value::Nil),
                &Op::True => fiber.stack.push(Value::Bool(true)),
                &Op::False => fiber.stack.push(Value::Bool(false)),
                &Op::Pop => {
                    if let Some(v) = fiber.stack.pop() {
                        discard(v);
                    }
                }
                &Op::GetLocal(slot) => {
                    let v = fast_clone(&fiber.stack[base + slot as usize]);
                    fiber.stack.push(v);
                }
                &Op::SetLocal(slot) => {
                    let v = pop!();
                    discard(std::mem::replace(&mut fiber.stack[base + slot as usize], v));
                }
                &Op::AppendLocal(slot) => {
                    let at = base + slot as usize;
                    // Two integers: add in place, no drop glue for either.
                    let top = fiber.stack.len() - 1;
                    if let (Value::Int(a), Value::Int(b)) = (&fiber.stack[at], &fiber.stack[top])
                        && let Some(sum) = a.checked_add(*b)
                    {
                        if let Value::Int(a) = &mut fiber.stack[at] {
                            *a = sum;
                        }
                        if let Some(v) = fiber.stack.pop() {
                            std::mem::forget(v);
                        }
                        continue;
                    }
                    let right = pop!();
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
                            if let Err(thrown) = check_string_size(s.len() + added) {
                                throw!(thrown);
                            }
                            if let Some(buffer) = Rc::get_mut(s) {
                                match r {
                                    Value::Str(t) => buffer.push_str(t),
                                    other => match ops::display(other, self.dialect.style) {
                                        Ok(text) => buffer.push_str(&text),
                                        Err(thrown) => throw!(thrown),
                                    },
                                }
                            }
                            discard(right);
                        }
                        _ => {
                            if let Err(thrown) = self.append_slow(fiber, at, right) {
                                throw!(thrown);
                            }
                        }
                    }
                }
                &Op::NewCell(slot) => {
                    let slot = &mut fiber.stack[base + slot as usize];
                    let v = std::mem::take(slot);
                    *slot = Value::Cell(Rc::new(RefCell::new(v)));
                }
                &Op::GetCell(slot) => {
                    let v = match &fiber.stack[base + slot as usize] {
                        Value::Cell(cell) => cell.borrow().clone(),
                        other => other.clone(),
                    };
                    fiber.stack.push(v);
                }
                &Op::SetCell(slot) => {
                    let v = pop!();
                    match &fiber.stack[base + slot as usize] {
                        Value::Cell(cell) => *cell.borrow_mut() = v,
                        _ => fiber.stack[base + slot as usize] = v,
                    }
                }
                &Op::GetUpvalue(i) => {
                    let v = frame!().closure.upvalues[i as usize].borrow().clone();
                    fiber.stack.push(v);
                }
                &Op::SetUpvalue(i) => {
                    let v = pop!();
                    *frame!().closure.upvalues[i as usize].borrow_mut() = v;
                }
                &Op::GetGlobal(i) => {
                    let v = &globals.values[i as usize];
                    if let Value::Uninit = v {
                        error!(
                            "ReferenceError",
                            "`{}` is used before it is defined", globals.names[i as usize]
                        );
                    }
                    fiber.stack.push(fast_clone(v));
                }
                &Op::SetGlobal(i) => {
                    if let Value::Uninit = globals.values[i as usize] {
                        error!(
                            "ReferenceError",
                            "`{}` is assigned before it is defined", globals.names[i as usize]
                        );
                    }
                    globals.values[i as usize] = pop!();
                }
                &Op::DefineGlobal(i) => globals.values[i as usize] = pop!(),
                &Op::Add
                | &Op::Sub
                | &Op::Mul
                | &Op::Lt
                | &Op::Le
                | &Op::Gt
                | &Op::Ge
                | &Op::Eq
                | &Op::Ne => {
                    let len = fiber.stack.len();
                    if let (Value::Int(a), Value::Int(b)) =
                        (&fiber.stack[len - 2], &fiber.stack[len - 1])
                        && let Some(result) = int_binary(*op, *a, *b)
                    {
                        // Both operands are integers: no drop glue needed.
                        if let Some(v) = fiber.stack.pop() {
                            std::mem::forget(v);
                        }
                        // A comparison feeding a conditional jump skips the push/pop.
                        if let (Value::Bool(truth), Op::JumpIfFalse(target)) = (&result, peek!()) {
                            if let Some(v) = fiber.stack.pop() {
                                std::mem::forget(v);
                            }
                            fuel -= 1;
                            pc = if *truth {
                                unsafe { pc.add(1) }
                            } else {
                                at!(target)
                            };
                            continue;
                        }
                        std::mem::forget(std::mem::replace(&mut fiber.stack[len - 2], result));
                        continue;
                    }
                    binary!(*op)
                }
                &Op::Div | &Op::Mod => binary!(*op),
                &Op::LocalConst(slot, constant, bop) => fused!(
                    &fiber.stack[base + slot as usize],
                    &function.constants[constant as usize],
                    bop
                ),
                &Op::LocalLocal(a, b, bop) => fused!(
                    &fiber.stack[base + a as usize],
                    &fiber.stack[base + b as usize],
                    bop
                ),
                &Op::Neg => {
                    let v = pop!();
                    match v {
                        Value::Int(n) => match n.checked_neg() {
                            Some(n) => fiber.stack.push(Value::Int(n)),
                            None => error!("OverflowError", "integer overflow in unary `-`"),
                        },
                        Value::Float(x) => fiber.stack.push(Value::Float(-x)),
                        other => error!("TypeError", "cannot negate {}", other.a_type()),
                    }
                }
                &Op::Not => {
                    let v = pop!();
                    fiber.stack.push(Value::Bool(!self.dialect.truthy(&v)));
                }
                &Op::Jump(target) => pc = at!(target),
                // A back-edge is a switch point: see `stop_at` above.
                &Op::Loop(target) => pc = at!(target),
                &Op::JumpIfFalse(target) => {
                    let condition = pop!();
                    if !self.dialect.truthy(&condition) {
                        pc = at!(target);
                    }
                    discard(condition);
                }
                &Op::AndJump(target) => {
                    if fiber.stack.last().is_some_and(|v| !self.dialect.truthy(v)) {
                        pc = at!(target);
                    } else {
                        fiber.stack.pop();
                    }
                }
                &Op::OrJump(target) => {
                    if fiber.stack.last().is_some_and(|v| self.dialect.truthy(v)) {
                        pc = at!(target);
                    } else {
                        fiber.stack.pop();
                    }
                }
                &Op::Call(argc) => {
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
                        set_function!(closure.function.clone());
                        pc = code;
                        fiber.frames.push(Frame {
                            closure,
                            ip: 0,
                            base: base as u32,
                            mark: 0,
                        });
                        continue;
                    }
                    let callee = fiber.stack[callee_at].clone();
                    call_step!(self.call_value(fiber, callee, argc as usize));
                }
                &Op::CallMethod(name, argc) | &Op::CallPrelude(name, argc) => {
                    save!();
                    call_step!(self.call_method_op(fiber, &function, *op, name, argc));
                }
                &Op::Return => {
                    let result = pop!();
                    let frame = fiber.frames.pop().expect("frame");
                    let depth = fiber.frames.len();
                    while fiber.handlers.last().is_some_and(|h| h.frames > depth) {
                        fiber.handlers.pop();
                    }
                    if depth > 0 && frame.mark == 0 {
                        pop_to(&mut fiber.stack, frame.base as usize - 1);
                        fiber.stack.push(result);
                        let caller = &fiber.frames[depth - 1];
                        set_function!(caller.closure.function.clone());
                        pc = at!(caller.ip);
                        base = caller.base as usize;
                        continue;
                    }
                    fiber.stack.truncate(frame.base as usize - 1);
                    self.steps = steps!();
                    if fiber.frames.is_empty() {
                        return Halt::Finished(result);
                    }
                    // A frame the policy pushed with a mark: it decides
                    // what the call evaluates to.
                    fiber.marked -= 1;
                    return Halt::Returned {
                        mark: frame.mark,
                        value: result,
                    };
                }
                &Op::Closure(i) => self.make_closure(fiber, &function, i, base),
                &Op::MakeList(n) => {
                    let items = fiber.stack.split_off(fiber.stack.len() - n as usize);
                    fiber.stack.push(Value::list(items));
                }
                &Op::MakeMap(n) => self.make_map(fiber, n),
                &Op::Index => {
                    let index = pop!();
                    let object = pop!();
                    match ops::index(&object, &index, self.dialect) {
                        Ok(v) => fiber.stack.push(v),
                        Err(thrown) => throw!(thrown),
                    }
                }
                &Op::SetIndex => {
                    let value = pop!();
                    let index = pop!();
                    let object = pop!();
                    if let Err(thrown) = ops::set_index(&object, &index, value) {
                        throw!(thrown);
                    }
                }
                &Op::GetField(name) => {
                    let Value::Str(name) = &function.constants[name as usize] else {
                        unreachable!()
                    };
                    let object = pop!();
                    match ops::get_field(&object, name, self.dialect) {
                        Ok(v) => fiber.stack.push(v),
                        Err(thrown) => throw!(thrown),
                    }
                }
                &Op::SetField(name) => {
                    if let Err(thrown) = self.set_field(fiber, &function, name) {
                        throw!(thrown);
                    }
                }
                &Op::IterPrepare(slot) => {
                    if let Err(thrown) = self.iter_prepare(fiber, base + slot as usize) {
                        throw!(thrown);
                    }
                }
                &Op::IterNext(slot, exit) => {
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
                        None => pc = at!(exit),
                    }
                }
                &Op::RangeNext(slot, exit) => {
                    match range_step(&mut fiber.stack, base + slot as usize) {
                        Ok(Some(i)) => fiber.stack.push(Value::Int(i)),
                        Ok(None) => pc = at!(exit),
                        Err(thrown) => throw!(thrown),
                    }
                }
                &Op::RangeStep(slot, exit) => {
                    let at = base + slot as usize;
                    match range_step(&mut fiber.stack, at) {
                        Ok(Some(i)) => {
                            discard(std::mem::replace(&mut fiber.stack[at + 2], Value::Int(i)));
                            // It stands for `RangeNext` and `SetLocal`.
                            fuel -= 1;
                        }
                        Ok(None) => pc = at!(exit),
                        Err(thrown) => throw!(thrown),
                    }
                }
                &Op::Await => {
                    // Settled, and the runtime does not yield here: go on.
                    if let Some(Value::Handle(h)) = fiber.stack.last()
                        && let Some(v) = h.settled()
                        && let Some(top) = fiber.stack.last_mut()
                    {
                        *top = v;
                        continue;
                    }
                    save!();
                    let awaited = pop!();
                    return Halt::Await(awaited);
                }
                &Op::Spawn(argc) => {
                    save!();
                    let callee_at = fiber.stack.len() - argc as usize - 1;
                    let args: Vec<Value> = fiber.stack.drain(callee_at + 1..).collect();
                    let callee = pop!();
                    return Halt::Spawn { callee, args };
                }
                &Op::Throw => {
                    let value = pop!();
                    throw!(self.rethrown(value))
                }
                &Op::TryPush(target) => fiber.handlers.push(TryHandler {
                    frames: fiber.frames.len(),
                    ip: target as usize,
                    stack: fiber.stack.len(),
                }),
                &Op::TryPop => {
                    fiber.handlers.pop();
                }
                &Op::CatchFilter(target) => {
                    if fiber.stack.last().is_some_and(Value::is_uncatchable) {
                        pc = at!(target);
                    }
                }
                &Op::CatchKinds(kinds, target) => {
                    if !self.catches_kind(fiber, &function, kinds) {
                        pc = at!(target);
                    }
                }
                &Op::Dup => {
                    let v = fiber.stack.last().cloned().unwrap_or_default();
                    fiber.stack.push(v);
                }
                &Op::Dup2 => self.dup2(fiber),
                &Op::TakeItem(i) => {
                    if let Err(thrown) = self.take_item(fiber, i) {
                        throw!(thrown);
                    }
                }
                &Op::TakeField(name) => {
                    if let Err(thrown) = self.take_field(fiber, &function, name) {
                        throw!(thrown);
                    }
                }
                &Op::Concat(n) => {
                    if let Err(thrown) = self.concat(fiber, n) {
                        throw!(thrown);
                    }
                }
            }
        }
    }

    /// Calls the value at `stack[len - argc - 1]` with the `argc` values above it.
    pub(super) fn call_value(
        &mut self,
        fiber: &mut Fiber,
        callee: Value,
        argc: usize,
    ) -> Result<CallStep, Thrown> {
        if let Value::Closure(closure) = &callee
            && !closure.function.is_async
        {
            if fiber.frames.len() >= MAX_FRAMES {
                return Err(stack_overflow());
            }
            let base = fiber.stack.len() - argc;
            fit_args(&mut fiber.stack, base, argc, &closure.function);
            fiber.frames.push(Frame {
                closure: closure.clone(),
                ip: 0,
                base: base as u32,
                mark: 0,
            });
            return Ok(CallStep::Pushed);
        }
        if !callee.is_callable() {
            return Err(Thrown::error(
                "TypeError",
                &format!(
                    "cannot call {} (`{}`)",
                    callee.a_type(),
                    callee.repr(self.dialect.style)
                ),
            ));
        }
        let callee_at = fiber.stack.len() - argc - 1;
        // Built-ins read their arguments where they lie on the stack.
        if let Value::Native(native) = &callee {
            let result = match &**native {
                Native::Builtin { id, .. } => Some(builtins::call_builtin(
                    self,
                    *id,
                    &fiber.stack[callee_at + 1..],
                )),
                Native::Method { receiver, name } => {
                    if let Some(closure) = self.prelude_method(receiver, name, argc) {
                        let args: Vec<Value> = fiber.stack.drain(callee_at + 1..).collect();
                        fiber.stack.pop();
                        return self.call_prelude(fiber, closure, receiver.clone(), args);
                    }
                    self.call_method_in_place(fiber, receiver, name, callee_at + 1)
                }
            };
            if let Some(result) = result {
                fiber.stack.truncate(callee_at);
                return result.map(CallStep::Value);
            }
        }
        let args: Vec<Value> = fiber.stack.drain(callee_at + 1..).collect();
        fiber.stack.pop();
        match callee {
            Value::Closure(closure) => Ok(CallStep::Halt(Halt::CallAsync { closure, args })),
            // A method on a runtime handle (built-ins and list methods were
            // called above): the policy's.
            Value::Native(native) => match &*native {
                Native::Method { receiver, name } => self.call_method(receiver.clone(), name, args),
                Native::Builtin { .. } => unreachable!("built-ins were called above"),
            },
            Value::Handle(primitive) => Ok(CallStep::Halt(Halt::Primitive { primitive, args })),
            _ => unreachable!("checked callable above"),
        }
    }

    /// A method call on a value: built-in methods run here; a runtime
    /// handle's methods are the policy's.
    pub(super) fn call_method(
        &mut self,
        receiver: Value,
        name: &str,
        args: Vec<Value>,
    ) -> Result<CallStep, Thrown> {
        if let Value::Handle(handle) = receiver {
            return Ok(CallStep::Halt(Halt::Method {
                receiver: handle,
                name: Rc::from(name),
                args,
            }));
        }
        match builtins::call_method(self, &receiver, name, &args) {
            Some(result) => result.map(CallStep::Value),
            None => Err(Thrown::error(
                "TypeError",
                &format!("{} has no method `{name}`", receiver.a_type()),
            )),
        }
    }

    /// A built-in method on a value that is not a runtime handle, its
    /// arguments read in place from `stack[args_at..]` (no `Vec` is made);
    /// `None` for a handle, whose methods are the policy's. The caller
    /// truncates the stack.
    #[inline]
    pub(super) fn call_method_in_place(
        &mut self,
        fiber: &Fiber,
        receiver: &Value,
        name: &str,
        args_at: usize,
    ) -> Option<Result<Value, Thrown>> {
        if let Value::Handle(_) = receiver {
            return None;
        }
        let args = &fiber.stack[args_at..];
        Some(
            builtins::call_method(self, receiver, name, args).unwrap_or_else(|| {
                Err(Thrown::error(
                    "TypeError",
                    &format!("{} has no method `{name}`", receiver.a_type()),
                ))
            }),
        )
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

/// Drops a value, skipping drop glue for scalars (they own nothing) and
/// dropping a closure's reference in line.
#[inline(always)]
fn discard(v: Value) {
    match v {
        Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Nil => std::mem::forget(v),
        Value::Closure(closure) => drop(closure),
        other => drop(other),
    }
}

/// One step of a range loop whose counter is at `stack[at]` and end at
/// `stack[at + 1]`: the counter's value before the step, or `None` when the
/// range is done.
#[inline(always)]
fn range_step(stack: &mut [Value], at: usize) -> Result<Option<i64>, Thrown> {
    match (&stack[at], &stack[at + 1]) {
        (Value::Int(i), Value::Int(end)) => {
            let i = *i;
            if i < *end {
                stack[at] = Value::Int(i + 1);
                Ok(Some(i))
            } else {
                Ok(None)
            }
        }
        (a, b) => Err(Thrown::error(
            "TypeError",
            &format!(
                "a range needs two integers, not {} and {}",
                a.type_name(),
                b.type_name()
            ),
        )),
    }
}

/// Pops the stack down to `len` values, each through `discard` (a returning
/// frame's callee and locals: `truncate` would call the drop glue on each).
#[inline(always)]
fn pop_to(stack: &mut Vec<Value>, len: usize) {
    while stack.len() > len {
        if let Some(v) = stack.pop() {
            discard(v);
        }
    }
}

/// Integer fast path of a binary operator; `None` means "take the slow path".
#[inline(always)]
fn int_binary(op: Op, a: i64, b: i64) -> Option<Value> {
    crate::bytecode::BinaryOp::of(op)?.apply_int(a, b)
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

/// What a call or method call comes to.
pub(super) enum CallStep {
    /// A frame was pushed: enter it.
    Pushed,
    /// Computed at once: push it.
    Value(Value),
    /// The policy must act.
    Halt(Halt),
}
