//! The dispatch loop: executes one unit's instructions until it halts.
//! Integer arithmetic and comparisons have inline fast paths; everything
//! else goes to `ops` (operators), `builtins` (built-in functions and
//! methods), or halts for the policy (`await`, `spawn`, async calls, the
//! runtime's primitives and objects).
//!
//! Invariants: while an instruction of the loop's own runs, the unit's
//! stack is *lent* to it (the `Vec`'s length 0, the values reached through
//! the `sp`/`bp`/`end` registers); anything out of line sees it given back
//! with its true length. The running function is the closure in the
//! callee slot below the frame's locals. A built-in's recorded work
//! (`memory::charge_work`) counts toward the step limit as its call
//! returns, and is left out of the run's own count.

use super::builtins;
use super::halt::{Halt, Preempt, Slice};
use super::{
    Fiber, Frame, Globals, MAX_FRAMES, Stack, Thrown, TryHandler, Vm, ops, stack_overflow,
};
use crate::bytecode::{BinaryOp, Function, Op};
use crate::value::{Closure, Native, Value};
use std::cell::RefCell;
use std::rc::Rc;

impl Vm {
    /// The interpreter loop proper: runs `fiber` until it halts.
    // `lend!` sets all three stack registers even where the path that
    // follows (a throw) gives the stack back before reading `end`.
    // `push!` evaluates its value inside the `unsafe` of the write, so a
    // value made by another macro's `unsafe` (a local's clone) nests.
    #[allow(unused_assignments, unused_unsafe)]
    pub(super) fn execute(
        &mut self,
        fiber: &mut Fiber,
        globals: &mut Globals,
        slice: Slice,
    ) -> Halt {
        macro_rules! frame {
            () => {
                fiber.frames.top_mut()
            };
        }
        // THE OPERAND STACK IN REGISTERS. While the loop runs an instruction
        // of its own, the fiber's `stack` is *lent* to it: the `Vec` keeps
        // its buffer but its length is 0 (it owns nothing, so a panic can
        // only leak values, never drop one twice), and the values live in
        // `[buffer, sp)`; `end` is the end of the buffer's capacity and `bp`
        // the running frame's first local (`buffer + base`). Code outside
        // the loop (`slow`, `builtins`, the unwinder, a halt's receiver)
        // sees the `Vec` given back with its true length (`give_back!`) and
        // the loop takes it again after (`lend!`), since that code may
        // grow, shrink or move the buffer.
        // SAFETY (every `unsafe` below that reads or writes through `sp`,
        // `bp` or `end`): `lend!` sets all three from the `Vec`'s buffer,
        // length and capacity, and every path that lets other code at the
        // `Vec` gives it back first and lends it again after; `push!` grows
        // the buffer (through the `Vec`) before writing at `end`; the
        // bytecode never pops below the running frame's locals nor names a
        // local slot past its `num_slots` (the compiler's stack discipline;
        // `debug_assert!`s check both in debug builds, where every test
        // runs), and every frame's locals are on the stack from the call
        // that made it (`fit_args`, `push_args`, the `Nil`s of the fast
        // call) until it returns.
        let mut sp: *mut Value;
        let mut end: *mut Value;
        let mut bp: *mut Value;
        // The running frame's `base` (the index `bp` stands for).
        macro_rules! base {
            () => {
                unsafe { bp.offset_from(fiber.stack.as_ptr()) as usize }
            };
        }
        macro_rules! lend {
            () => {{
                let len = fiber.stack.len();
                let capacity = fiber.stack.capacity();
                let buffer = fiber.stack.as_mut_ptr();
                unsafe {
                    sp = buffer.add(len);
                    end = buffer.add(capacity);
                    bp = buffer.add(frame!().base as usize);
                    fiber.stack.set_len(0);
                }
            }};
        }
        macro_rules! give_back {
            () => {{
                unsafe {
                    let len = sp.offset_from(fiber.stack.as_ptr()) as usize;
                    fiber.stack.set_len(len);
                }
            }};
        }
        // Runs `$e` with the stack given back, then lends it again.
        macro_rules! slow {
            ($e:expr) => {{
                give_back!();
                let result = $e;
                lend!();
                result
            }};
        }
        // Room for `$n` more values.
        macro_rules! reserve {
            ($n:expr) => {{
                let n: usize = $n;
                if (unsafe { end.offset_from(sp) } as usize) < n {
                    give_back!();
                    grow(&mut fiber.stack, n);
                    lend!();
                }
            }};
        }
        // Room for one more value.
        macro_rules! room_for_one {
            () => {{
                if sp == end {
                    give_back!();
                    grow(&mut fiber.stack, 1);
                    lend!();
                }
            }};
        }
        // Makes room first, then evaluates the value straight into its
        // slot (`$v` must not hold a reference into the stack: growing may
        // move it).
        macro_rules! push {
            ($v:expr) => {{
                room_for_one!();
                unsafe {
                    sp.write($v);
                    sp = sp.add(1);
                }
            }};
        }
        // Pushes a copy of the value `$v` refers to (evaluated after making
        // room: it may point into the stack), written straight into its
        // slot variant by variant: going through a temporary makes a
        // 16-byte copy of a value just stored as a tag and a word, which
        // waits for those stores (store-to-load forwarding fails).
        macro_rules! push_clone {
            ($v:expr) => {{
                room_for_one!();
                let v: &Value = $v;
                unsafe {
                    write_clone(sp, v);
                    sp = sp.add(1);
                }
            }};
        }
        macro_rules! pop {
            () => {{
                debug_assert!(sp > fiber.stack.as_mut_ptr(), "popped an empty stack");
                unsafe {
                    sp = sp.sub(1);
                    sp.read()
                }
            }};
        }
        // The value `$n` below the top (0: the top).
        macro_rules! top {
            ($n:expr) => {{
                debug_assert!(unsafe { sp.sub($n + 1) } >= fiber.stack.as_mut_ptr());
                unsafe { &mut *sp.sub($n + 1) }
            }};
        }
        macro_rules! local {
            ($slot:expr) => {{
                let at = unsafe { bp.add($slot as usize) };
                debug_assert!(at < sp, "a local slot past the stack");
                unsafe { &mut *at }
            }};
        }
        // The stack's length (its index of `sp`).
        macro_rules! depth {
            () => {
                unsafe { sp.offset_from(fiber.stack.as_ptr()) as usize }
            };
        }
        lend!();
        // The running function, reached through a raw pointer held in a
        // register: no reference counting on call and return.
        // SAFETY (every `function!()` below): `function` points to the
        // `Function` of the closure in the running frame's callee slot
        // (`bp - 1`, see `Fiber::closure_of`); that value holds it
        // (`Rc<Closure>` → `Rc<Function>`, on the heap, so moving the stack's
        // buffer does not move it) for as long as the frame runs, and a
        // `Function` is never mutated once shared. `function` is set
        // whenever the running frame changes (`set_function!`, or
        // `enter_function!` for a call, which also sets `pc`).
        let mut function: *const Function = unsafe { function_below(bp) };
        macro_rules! function {
            () => {
                unsafe { &*function }
            };
        }
        // The running function's code is reached through `pc`, a raw
        // pointer to the next instruction held in a register: fetching is
        // one load, with no bounds check and no length to keep in a
        // register. Its first instruction (`code!()`) is read from the
        // function where a jump or the index of `pc` needs it; it is not
        // kept in a register of its own (one register fewer in the loop:
        // fib −4 % in paired runs, both orders).
        // SAFETY (every `unsafe` below that makes, moves or reads `pc`):
        // `code!()` points into `function!().code`, alive and unchanged as
        // `function` is (above); whenever `function` changes, `pc` is set
        // anew inside the new function's code (a call: `Closure::code`,
        // that function's first instruction; a return: the caller's saved
        // ip, from `code!()`). Every
        // function's code ends with a `Return` and every jump target lies
        // inside it (`bytecode::code_stays_inside`, checked by the compiler
        // for each function it makes), so: a frame's saved ip (0, a jump or
        // handler target, or the instruction after one that is not the final
        // `Return`) is inside the code; running any instruction but a
        // `Return` leaves `pc` on another instruction; and a peek at `pc`
        // after a fused operator reads the instruction that follows it,
        // which exists because the code ends with `Return`.
        macro_rules! code {
            () => {
                function!().code.as_ptr()
            };
        }
        macro_rules! set_function {
            ($ptr:expr) => {{
                function = $ptr;
            }};
        }
        // Pushes global `$i`'s value (`GetGlobal`); one not yet defined
        // throws.
        macro_rules! push_global {
            ($i:expr) => {{
                let i: u32 = $i;
                let v = &globals.values[i as usize];
                if let Value::Uninit = v {
                    error!(
                        "ReferenceError",
                        "`{}` is used before it is defined", globals.names[i as usize]
                    );
                }
                push_clone!(v);
            }};
        }
        // The instruction at index `i` of the running code.
        macro_rules! at {
            ($i:expr) => {
                unsafe { code!().add($i as usize) }
            };
        }
        let mut pc: *const Op = at!(frame!().ip);
        // Makes `$closure`'s function the running one (a call), `pc` its
        // first instruction, read from the closure.
        macro_rules! enter_function {
            ($closure:expr) => {{
                let closure: &Closure = $closure;
                function = Rc::as_ptr(&closure.function);
                pc = closure.code();
            }};
        }
        // The index of the next instruction.
        macro_rules! ip {
            () => {
                unsafe { pc.offset_from(code!()) as usize }
            };
        }
        // The next instruction, without moving on.
        macro_rules! peek {
            () => {
                unsafe { *pc }
            };
        }
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
        // Halts with the stack given back.
        macro_rules! halt {
            ($halt:expr) => {{
                give_back!();
                return $halt;
            }};
        }
        // Enters the frame on top (with the stack given back: it lends it).
        macro_rules! reload {
            () => {{
                let ip = frame!().ip;
                lend!();
                set_function!(unsafe { function_below(bp) });
                pc = at!(ip);
            }};
        }
        // Throws at the current instruction (out of line: `slow::raise`).
        macro_rules! throw {
            ($thrown:expr) => {{
                let thrown: Thrown = $thrown;
                save!();
                give_back!();
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
        // Runs a call out of line (with the stack given back), then enters
        // the frame it pushed, pushes its value, halts for the policy, or
        // throws.
        // A built-in that walked a long list, map or string recorded its
        // work: it counts toward the step limit now, not at the next check
        // (the run's own count, which moves the clock, leaves it out).
        macro_rules! charge_work {
            () => {{
                let work = crate::memory::take_work();
                if work > 0 {
                    fuel = fuel.saturating_sub(work.min(i64::MAX as u64) as i64);
                    self.work_in_run += work;
                }
            }};
        }
        macro_rules! call_step {
            ($step:expr) => {{
                give_back!();
                match $step {
                    Ok(CallStep::Pushed) => reload!(),
                    Ok(CallStep::Value(v)) => {
                        lend!();
                        push!(v);
                        charge_work!();
                    }
                    Ok(CallStep::Halt(halt)) => return halt,
                    Err(thrown) => {
                        lend!();
                        throw!(thrown)
                    }
                }
            }};
        }
        // An out-of-line operation that may fail: throws its error.
        macro_rules! fallible {
            ($e:expr) => {{
                if let Err(thrown) = slow!($e) {
                    throw!(thrown);
                }
            }};
        }
        macro_rules! binary {
            ($op:expr) => {
                fallible!(self.binary_slow(fiber, $op))
            };
        }

        // A fused `left OP right` (`LocalConst`, `LocalLocal`): integers
        // inline, a comparison feeding a `JumpIfFalse` jumps at once;
        // anything else takes the operator's slow path.
        macro_rules! fused {
            ($left:expr, $right:expr, $bop:expr) => {{
                let (left, right): (&Value, &Value) = ($left, $right);
                // One arm per operator, each with its own integer path (no
                // second dispatch on the operator, no `Option<Value>`).
                match $bop {
                    BinaryOp::Add => fused_arith!(left, right, checked_add, $bop),
                    BinaryOp::Sub => fused_arith!(left, right, checked_sub, $bop),
                    BinaryOp::Mul => fused_arith!(left, right, checked_mul, $bop),
                    BinaryOp::Lt => fused_compare!(left, right, <, $bop),
                    BinaryOp::Le => fused_compare!(left, right, <=, $bop),
                    BinaryOp::Gt => fused_compare!(left, right, >, $bop),
                    BinaryOp::Ge => fused_compare!(left, right, >=, $bop),
                    BinaryOp::Eq => fused_compare!(left, right, ==, $bop),
                    BinaryOp::Ne => fused_compare!(left, right, !=, $bop),
                }
            }};
        }
        // Two integers: the checked result, else the operator's slow path.
        macro_rules! fused_arith {
            ($left:expr, $right:expr, $checked:ident, $bop:expr) => {{
                if let (Value::Int(a), Value::Int(b)) = ($left, $right)
                    && let Some(result) = a.$checked(*b)
                {
                    push!(Value::Int(result));
                    continue;
                }
                fused_slow!($left, $right, $bop)
            }};
        }
        // A comparison's outcome: feeding a `JumpIfFalse`, it jumps at once
        // (and counts the jump); else the boolean is pushed.
        macro_rules! branch_or_push {
            ($truth:expr) => {{
                let truth: bool = $truth;
                if let Op::JumpIfFalse(target) = peek!() {
                    fuel -= 1;
                    pc = if truth {
                        unsafe { pc.add(1) }
                    } else {
                        at!(target)
                    };
                    continue;
                }
                push!(Value::Bool(truth));
                continue;
            }};
        }
        // Two integers compared: feeding a `JumpIfFalse`, it jumps at once
        // (and counts the jump); else pushes the boolean.
        macro_rules! fused_compare {
            ($left:expr, $right:expr, $cmp:tt, $bop:expr) => {{
                if let (Value::Int(a), Value::Int(b)) = ($left, $right) {
                    let truth = *a $cmp *b;
                    branch_or_push!(truth)
                }
                fused_slow!($left, $right, $bop)
            }};
        }
        macro_rules! fused_slow {
            ($left:expr, $right:expr, $bop:expr) => {{
                let (left, right) = ($left.clone(), $right.clone());
                push!(left);
                push!(right);
                binary!($bop.op())
            }};
        }
        // The two values on top, both integers: the checked result replaces
        // them (no drop glue for either); else the operator's slow path.
        macro_rules! stack_arith {
            ($checked:ident, $op:expr) => {{
                if let (Value::Int(a), Value::Int(b)) = (&*top!(1), &*top!(0))
                    && let Some(result) = a.$checked(*b)
                {
                    // SAFETY: both were integers (nothing to drop).
                    unsafe {
                        sp = sp.sub(1);
                        sp.sub(1).write(Value::Int(result));
                    }
                    continue;
                }
                binary!($op)
            }};
        }
        // The two values on top compared, both integers: a comparison
        // feeding a conditional jump skips the push and the pop.
        macro_rules! stack_compare {
            ($cmp:tt, $op:expr) => {{
                if let (Value::Int(a), Value::Int(b)) = (&*top!(1), &*top!(0)) {
                    let truth = *a $cmp *b;
                    sp = unsafe { sp.sub(2) };
                    branch_or_push!(truth)
                }
                binary!($op)
            }};
        }
        // Calls the value `argc` below the top with the `argc` values above
        // it. Fast path: a plain closure called with exactly its arity.
        macro_rules! call {
            ($argc:expr) => {{
                let argc: u32 = $argc;
                if let Value::Closure(closure) = &*top!(argc as usize)
                    && closure.loop_arity() == argc
                    && fiber.frames.len() < MAX_FRAMES
                {
                    let return_to = ip!() as u32;
                    let caller = function;
                    enter_function!(closure);
                    let extra = (function!().num_slots - argc) as usize;
                    reserve!(extra);
                    bp = unsafe { sp.sub(argc as usize) };
                    for _ in 0..extra {
                        unsafe {
                            sp.write(Value::Nil);
                            sp = sp.add(1);
                        }
                    }
                    fiber.frames.enter(return_to, base!() as u32, caller);
                    continue;
                }
                // A built-in reads its arguments where they lie and cannot
                // reach the stack (it gets no fiber): no hand-back needed.
                if let Value::Native(native) = &*top!(argc as usize)
                    && let Native::Builtin { id, .. } = **native
                {
                    save!();
                    // SAFETY: `sp` is the top of the lent stack, with the
                    // callee and its `argc` arguments below it.
                    match unsafe { self.call_builtin_on_stack(id, sp, argc as usize) } {
                        Ok(()) => {
                            sp = unsafe { sp.sub(argc as usize) };
                            charge_work!();
                        }
                        Err(thrown) => throw!(thrown),
                    }
                    continue;
                }
                save!();
                let callee = top!(argc as usize).clone();
                call_step!(self.call_value(fiber, callee, argc as usize));
            }};
        }
        // PERF: fib(30) runs in 0.46-0.50x CPython's time (RESULTS.md,
        // "Sixth round"). What is left: the one shared indirect jump of the
        // `match` (a fifth of fib's samples) and `pc`, which LLVM keeps in a
        // stack slot across the loop in some builds. Any change to this
        // function moves its register allocation: reading a call's nil
        // slots from the closure instead of the function spilled `pc` and
        // made fib 7 % slower. Judge changes here by paired wall-clock runs
        // (`farm-bench`, both orders), not by instruction counts.
        // Enters `$closure` (a plain function of one parameter) as a
        // `GetGlobalCall` calls it: its argument is written where `$at`
        // points by `$write`, which may read the caller's locals (it runs
        // after the room is made). Counts as the argument and the `Call`
        // too.
        macro_rules! enter_one {
            ($closure:expr, |$at:ident| $write:expr) => {{
                let closure: &Rc<Closure> = $closure;
                fuel -= 2;
                let extra = (closure.function.num_slots - 1) as usize;
                let return_to = ip!() as u32 + 2;
                reserve!(2 + extra);
                // SAFETY: room for the callee, the argument and the other
                // locals was made just above.
                unsafe {
                    sp.write(Value::Closure(Rc::clone(closure)));
                    let $at = sp.add(1);
                    $write;
                    sp = sp.add(2);
                    bp = sp.sub(1);
                    for _ in 0..extra {
                        sp.write(Value::Nil);
                        sp = sp.add(1);
                    }
                }
                let caller = function;
                enter_function!(closure);
                fiber.frames.enter(return_to, base!() as u32, caller);
                continue;
            }};
        }
        // Returns `$result` from the running frame: to its caller in the
        // loop, or halts (the unit finished, or a marked frame returned).
        macro_rules! return_with {
            ($result:expr) => {{
                let mark = fiber.frames.top().mark;
                // The frames left once this one has returned.
                let depth = fiber.frames.len() - 1;
                while fiber.rare.last_handler().is_some_and(|h| h.frames > depth) {
                    fiber.rare.pop_handler();
                }
                // Pop the frame's locals and its callee.
                let callee_at = unsafe { bp.sub(1) };
                while sp > callee_at {
                    discard(pop!());
                }
                if depth > 0 && mark == 0 {
                    let (caller, saved) = fiber.frames.pop_to_caller();
                    let (ip, base) = (caller.ip, caller.base);
                    // The result, made only now (`$result` reads no popped
                    // slot: one built in registers is stored once), takes
                    // the callee's slot: no room to make.
                    // SAFETY: `sp` is the callee's slot, just popped.
                    unsafe {
                        sp.write($result);
                        sp = sp.add(1);
                    }
                    bp = unsafe { fiber.stack.as_mut_ptr().add(base as usize) };
                    // SAFETY: a saved function is the caller's (see
                    // `fiber::Saved`).
                    set_function!(if saved.is_null() {
                        unsafe { function_below(bp) }
                    } else {
                        saved
                    });
                    pc = at!(ip);
                    continue;
                }
                let result: Value = $result;
                fiber.frames.pop();
                self.steps = steps!();
                give_back!();
                if fiber.frames.is_empty() {
                    return Halt::Finished(result);
                }
                // A frame the policy pushed with a mark: it decides
                // what the call evaluates to.
                fiber.frames.drop_mark();
                return Halt::Returned {
                    mark,
                    value: result,
                };
            }};
        }
        loop {
            if fuel <= 0 {
                save!();
                if self.steps >= self.step_limit {
                    give_back!();
                    let ip = ip!();
                    let function = function!();
                    let span = function.spans[ip.min(function.spans.len() - 1)];
                    return Halt::StepLimit(self.origin(fiber, span, &function.source));
                }
                // The slice's budget is spent: stop now, or at the next
                // switch point — just before a loop's back-edge, or at a
                // function's first instruction.
                if slice.preempt == Preempt::Anywhere
                    || pc == code!()
                    || matches!(peek!(), Op::Loop(_))
                {
                    halt!(Halt::Preempted);
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
                &Op::Const(i) => push_clone!(&function!().constants[i as usize]),
                &Op::Nil => push!(Value::Nil),
                &Op::True => push!(Value::Bool(true)),
                &Op::False => push!(Value::Bool(false)),
                &Op::Pop => discard(pop!()),
                &Op::GetLocal(slot) => push_clone!(local!(slot)),
                &Op::SetLocal(slot) => {
                    let v = pop!();
                    discard(std::mem::replace(local!(slot), v));
                }
                &Op::AppendLocal(slot) => {
                    // Two integers: add in place, no drop glue for either.
                    if let (Value::Int(a), Value::Int(b)) = (&*local!(slot), &*top!(0))
                        && let Some(sum) = a.checked_add(*b)
                    {
                        if let Value::Int(a) = local!(slot) {
                            *a = sum;
                        }
                        std::mem::forget(pop!());
                        continue;
                    }
                    let right = pop!();
                    let at = base!() + slot as usize;
                    fallible!(self.append_slow(fiber, at, right))
                }
                &Op::NewCell(slot) => {
                    let slot = local!(slot);
                    let v = std::mem::take(slot);
                    *slot = Value::Cell(Rc::new(RefCell::new(v)));
                }
                &Op::GetCell(slot) => {
                    let v = match &*local!(slot) {
                        Value::Cell(cell) => cell.borrow().clone(),
                        other => other.clone(),
                    };
                    push!(v);
                }
                &Op::SetCell(slot) => {
                    let v = pop!();
                    match local!(slot) {
                        Value::Cell(cell) => *cell.borrow_mut() = v,
                        other => *other = v,
                    }
                }
                &Op::GetUpvalue(i) => {
                    let v = unsafe { closure_below(bp) }.upvalues[i as usize]
                        .borrow()
                        .clone();
                    push!(v);
                }
                &Op::SetUpvalue(i) => {
                    let v = pop!();
                    *unsafe { closure_below(bp) }.upvalues[i as usize].borrow_mut() = v;
                }
                &Op::GetGlobal(i) => push_global!(i),
                &Op::GetGlobalCall(i) => {
                    // `f(n - 1)`, `f(x)` (see `Op::GetGlobalCall`): a plain
                    // function of one parameter, its argument made at once,
                    // is entered here; else this is a `GetGlobal`.
                    // With fewer than its three steps left before the limit
                    // or the slice's end, the three run one by one: a run
                    // stops at the same instruction either way.
                    if fuel >= 2
                        && let Value::Closure(closure) = &globals.values[i as usize]
                        && closure.loop_arity() == 1
                        && fiber.frames.len() < MAX_FRAMES
                    {
                        match peek!() {
                            Op::GetLocal(slot) => {
                                enter_one!(closure, |at| write_clone(at, local!(slot)))
                            }
                            Op::LocalConst(slot, c, bop) => {
                                let (left, right) =
                                    (&*local!(slot), &function!().constants[c as usize]);
                                if let (&Value::Int(a), &Value::Int(b)) = (left, right)
                                    && let Some(n) = match bop {
                                        BinaryOp::Sub => a.checked_sub(b),
                                        BinaryOp::Add => a.checked_add(b),
                                        _ => None,
                                    }
                                {
                                    enter_one!(closure, |at| at.write(Value::Int(n)))
                                }
                            }
                            _ => {}
                        }
                    }
                    push_global!(i)
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
                // One arm per operator (see `stack_arith!`, `stack_compare!`).
                &Op::Add => stack_arith!(checked_add, Op::Add),
                &Op::Sub => stack_arith!(checked_sub, Op::Sub),
                &Op::Mul => stack_arith!(checked_mul, Op::Mul),
                &Op::Lt => stack_compare!(<, Op::Lt),
                &Op::Le => stack_compare!(<=, Op::Le),
                &Op::Gt => stack_compare!(>, Op::Gt),
                &Op::Ge => stack_compare!(>=, Op::Ge),
                &Op::Eq => stack_compare!(==, Op::Eq),
                &Op::Ne => stack_compare!(!=, Op::Ne),
                &Op::Mod => {
                    // Both integers, neither negative nor a zero divisor:
                    // the same remainder in every dialect.
                    if let (&Value::Int(a), &Value::Int(b)) = (&*top!(1), &*top!(0))
                        && a >= 0
                        && b > 0
                    {
                        // SAFETY: both were integers (nothing to drop).
                        unsafe {
                            sp = sp.sub(1);
                            sp.sub(1).write(Value::Int(a % b));
                        }
                        continue;
                    }
                    binary!(Op::Mod)
                }
                &Op::Div => binary!(Op::Div),
                &Op::LocalConst(slot, constant, bop) => {
                    fused!(local!(slot), &function!().constants[constant as usize], bop)
                }
                &Op::LocalLocal(a, b, bop) => fused!(local!(a), local!(b), bop),
                &Op::Neg => {
                    let v = pop!();
                    match v {
                        Value::Int(n) => match n.checked_neg() {
                            Some(n) => push!(Value::Int(n)),
                            None => error!("OverflowError", "integer overflow in unary `-`"),
                        },
                        Value::Float(x) => push!(Value::Float(-x)),
                        other => error!("TypeError", "cannot negate {}", other.a_type()),
                    }
                }
                &Op::Not => {
                    let v = pop!();
                    push!(Value::Bool(!self.dialect.truthy(&v)));
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
                    if !self.dialect.truthy(top!(0)) {
                        pc = at!(target);
                    } else {
                        drop(pop!());
                    }
                }
                &Op::OrJump(target) => {
                    if self.dialect.truthy(top!(0)) {
                        pc = at!(target);
                    } else {
                        drop(pop!());
                    }
                }
                &Op::Call(argc) => call!(argc),
                &Op::CallMethod(name, argc) | &Op::CallPrelude(name, argc) => {
                    // `xs.push(v)` on a list with room: in line (the
                    // commonest call in list-building loops).
                    if argc == 1
                        && let Value::List(xs) = &*top!(1)
                        && let Value::Str(method) = &function!().constants[name as usize]
                        && method.as_str() == "push"
                        && let Ok(mut list) = xs.try_borrow_mut()
                        && list.len() < list.capacity().min(ops::MAX_LIST_LENGTH)
                    {
                        // SAFETY: the top slot holds the argument, moved into
                        // the list; below it the receiver, replaced by the
                        // length (both slots stay on the stack).
                        unsafe {
                            sp = sp.sub(1);
                            list.push(move_out(sp));
                            let length = list.len() as i64;
                            drop(list);
                            let slot = sp.sub(1);
                            let receiver = slot.read();
                            slot.write(Value::Int(length));
                            drop(receiver);
                        }
                        continue;
                    }
                    save!();
                    call_step!(self.call_method_op(fiber, function!(), *op, name, argc));
                }
                &Op::Return => {
                    let result = pop!();
                    return_with!(result)
                }
                &Op::AddReturn => {
                    // Counts as the `Add` and the `Return` it replaces (the
                    // `Return` once the sum is made: an `Add` that throws
                    // counts alone).
                    if let (&Value::Int(a), &Value::Int(b)) = (&*top!(1), &*top!(0))
                        && let Some(sum) = a.checked_add(b)
                    {
                        fuel -= 1;
                        sp = unsafe { sp.sub(2) };
                        return_with!(Value::Int(sum))
                    }
                    binary!(Op::Add);
                    fuel -= 1;
                    let result = pop!();
                    return_with!(result)
                }
                &Op::ReturnLocal(slot) => {
                    // Counts as the `GetLocal` and the `Return` it replaces.
                    fuel -= 1;
                    if let &Value::Int(n) = &*local!(slot) {
                        return_with!(Value::Int(n))
                    }
                    let result = fast_clone(local!(slot));
                    return_with!(result)
                }
                &Op::Closure(i) => {
                    let base = base!();
                    slow!(self.make_closure(fiber, function!(), i, base))
                }
                &Op::MakeList(n) => slow!({
                    let items = fiber.stack.split_off(fiber.stack.len() - n as usize);
                    fiber.stack.push(Value::list(items));
                }),
                &Op::MakeMap(n) => slow!(self.make_map(fiber, n)),
                &Op::Index => {
                    // A list's item at an integer index in range: in line,
                    // copied straight into the list's slot.
                    let item: Option<*const Value> = match (&*top!(1), &*top!(0)) {
                        (Value::List(xs), &Value::Int(i)) if i >= 0 => {
                            xs.borrow().get(i as usize).map(|v| v as *const Value)
                        }
                        _ => None,
                    };
                    if let Some(item) = item {
                        // SAFETY: the index is an integer (no drop glue); the
                        // list, moved out of its slot, stays alive in `list`
                        // (and with it `item`, which nothing can change in
                        // between) until the copy is made.
                        unsafe {
                            sp = sp.sub(1);
                            let slot = sp.sub(1);
                            let list = slot.read();
                            write_clone(slot, &*item);
                            discard(list);
                        }
                        continue;
                    }
                    let index = pop!();
                    let object = pop!();
                    match ops::index(&object, &index, self.dialect) {
                        Ok(v) => push!(v),
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
                    let Value::Str(name) = &function!().constants[name as usize] else {
                        unreachable!()
                    };
                    let object = pop!();
                    match ops::get_field(&object, name, self.dialect) {
                        Ok(v) => push!(v),
                        Err(thrown) => throw!(thrown),
                    }
                }
                &Op::SetField(name) => fallible!(self.set_field(fiber, function!(), name)),
                &Op::IterPrepare(slot) => {
                    let at = base!() + slot as usize;
                    fallible!(self.iter_prepare(fiber, at))
                }
                &Op::IterNext(slot, exit) => {
                    let Value::Int(position) = *local!(slot + 1) else {
                        unreachable!()
                    };
                    let item = match &*local!(slot) {
                        Value::List(items) => items.borrow().get(position as usize).cloned(),
                        _ => None,
                    };
                    match item {
                        Some(item) => {
                            *local!(slot + 1) = Value::Int(position + 1);
                            push!(item);
                        }
                        None => pc = at!(exit),
                    }
                }
                &Op::RangeNext(slot, exit) => match range_step(local!(slot), local!(slot + 1)) {
                    Ok(Some(i)) => push!(Value::Int(i)),
                    Ok(None) => pc = at!(exit),
                    Err(thrown) => throw!(thrown),
                },
                &Op::RangeStep(slot, exit) => {
                    match range_step(local!(slot), local!(slot + 1)) {
                        Ok(Some(i)) => {
                            discard(std::mem::replace(local!(slot + 2), Value::Int(i)));
                            // It stands for `RangeNext` and `SetLocal`.
                            fuel -= 1;
                        }
                        Ok(None) => pc = at!(exit),
                        Err(thrown) => throw!(thrown),
                    }
                }
                &Op::Await => {
                    // Settled, and the runtime does not yield here: go on.
                    if let Value::Handle(h) = &*top!(0)
                        && let Some(v) = h.settled()
                    {
                        *top!(0) = v;
                        continue;
                    }
                    save!();
                    let awaited = pop!();
                    halt!(Halt::Await(awaited));
                }
                &Op::AwaitLocal(slot) => {
                    // It stands for `GetLocal` and `Await`.
                    fuel -= 1;
                    if let Value::Handle(h) = &*local!(slot)
                        && let Some(v) = h.settled()
                    {
                        push!(v);
                        continue;
                    }
                    save!();
                    let awaited = fast_clone(local!(slot));
                    halt!(Halt::Await(awaited));
                }
                &Op::Spawn(argc) => {
                    save!();
                    give_back!();
                    let callee_at = fiber.stack.len() - argc as usize - 1;
                    let args: Vec<Value> = fiber.stack.split_off(callee_at + 1);
                    let callee = fiber.stack.pop().unwrap_or_default();
                    return Halt::Spawn { callee, args };
                }
                &Op::Throw => {
                    let value = pop!();
                    throw!(self.rethrown(value))
                }
                &Op::TryPush(target) => fiber.rare.push_handler(TryHandler {
                    frames: fiber.frames.len(),
                    ip: target as usize,
                    stack: depth!(),
                }),
                &Op::TryPop => {
                    fiber.rare.pop_handler();
                }
                &Op::CatchFilter(target) => {
                    if top!(0).is_uncatchable() {
                        pc = at!(target);
                    }
                }
                &Op::CatchKinds(kinds, target) => {
                    if !slow!(self.catches_kind(fiber, function!(), kinds)) {
                        pc = at!(target);
                    }
                }
                &Op::Dup => {
                    let v = top!(0).clone();
                    push!(v);
                }
                &Op::Dup2 => slow!(self.dup2(fiber)),
                &Op::TakeItem(i) => fallible!(self.take_item(fiber, i)),
                &Op::TakeField(name) => fallible!(self.take_field(fiber, function!(), name)),
                &Op::Concat(n) => fallible!(self.concat(fiber, n)),
            }
        }
    }

    /// Calls built-in `id` on the `argc` values below `sp` and puts its
    /// result in the callee's slot below them, dropping the arguments (on
    /// an error everything stays for the unwinder).
    ///
    /// # Safety
    /// `sp` is the top of the running unit's lent stack, holding the callee
    /// and `argc` arguments below it.
    #[inline(never)]
    unsafe fn call_builtin_on_stack(
        &mut self,
        id: u8,
        sp: *mut Value,
        argc: usize,
    ) -> Result<(), Thrown> {
        // SAFETY: the `argc` values below `sp` are live stack slots (the
        // callee sits under them), and nothing moves or frees them while
        // the built-in reads them: it gets the VM but not the fiber.
        let args = unsafe { std::slice::from_raw_parts_mut(sp.sub(argc), argc) };
        let result = std::mem::ManuallyDrop::new(builtins::call_builtin(self, id, args)?);
        // SAFETY: the arguments are dropped once and the stack's top then
        // moves below them (the caller's `sp`); the callee's slot holds a
        // live value that the result, moved out of `result` (which is not
        // dropped), replaces.
        unsafe {
            std::ptr::drop_in_place(args);
            let slot = sp.sub(argc + 1);
            let callee = slot.read();
            slot.write(move_out(&*result));
            drop(callee);
        }
        Ok(())
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
                        let args: Vec<Value> = fiber.stack.split_off(callee_at + 1);
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
        let args: Vec<Value> = fiber.stack.split_off(callee_at + 1);
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

/// Writes a copy of `v` into `slot`, variant by variant (see `push_clone!`:
/// a copy through a temporary waits for the stores that made it).
///
/// # Safety
/// `slot` is valid for writes and holds nothing that needs dropping.
#[inline(always)]
unsafe fn write_clone(slot: *mut Value, v: &Value) {
    // SAFETY: the caller's.
    unsafe {
        match v {
            Value::Int(n) => slot.write(Value::Int(*n)),
            Value::Float(x) => slot.write(Value::Float(*x)),
            Value::Bool(b) => slot.write(Value::Bool(*b)),
            Value::Nil => slot.write(Value::Nil),
            Value::Closure(c) => slot.write(Value::Closure(Rc::clone(c))),
            Value::Str(s) => slot.write(Value::Str(Rc::clone(s))),
            Value::List(xs) => slot.write(Value::List(Rc::clone(xs))),
            Value::Map(m) => slot.write(Value::Map(Rc::clone(m))),
            Value::Native(n) => slot.write(Value::Native(Rc::clone(n))),
            other => slot.write(other.clone()),
        }
    }
}

/// Moves the value out of `slot` field by field (a value just written as
/// a tag and a word — pushed, or returned through memory — read with one
/// 16-byte load would wait for both stores).
///
/// # Safety
/// `slot` holds a value, which the caller owns from now on (the slot is
/// left as moved-from: not to be dropped).
#[inline(always)]
unsafe fn move_out(slot: *const Value) -> Value {
    // SAFETY: the caller's; each arm reads the variant's one field once
    // (a reference count moves, it is not taken again).
    unsafe {
        match &*slot {
            Value::Int(n) => Value::Int(*n),
            Value::Float(x) => Value::Float(*x),
            Value::Bool(b) => Value::Bool(*b),
            Value::Nil => Value::Nil,
            Value::Str(s) => Value::Str(std::ptr::read(s)),
            Value::List(xs) => Value::List(std::ptr::read(xs)),
            Value::Map(m) => Value::Map(std::ptr::read(m)),
            Value::Closure(c) => Value::Closure(std::ptr::read(c)),
            _ => slot.read(),
        }
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
        Value::Str(s) => Value::Str(Rc::clone(s)),
        Value::List(xs) => Value::List(Rc::clone(xs)),
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

/// One step of a range loop whose counter is `counter` and end `end`: the
/// counter's value before the step, or `None` when the range is done.
#[inline(always)]
fn range_step(counter: &mut Value, end: &Value) -> Result<Option<i64>, Thrown> {
    match (&*counter, end) {
        (Value::Int(i), Value::Int(end)) => {
            let i = *i;
            if i < *end {
                *counter = Value::Int(i + 1);
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

/// Makes room for at least `n` more values on a stack (out of line: the
/// dispatch loop's stack rarely grows).
#[cold]
#[inline(never)]
fn grow(stack: &mut Stack, n: usize) {
    stack.reserve(n);
}

/// The function of the closure in the callee slot of a frame whose locals
/// start at `bp` (see `Fiber::closure_of`).
///
/// # Safety
/// `bp - 1` is a live value of the operand stack.
#[inline(always)]
unsafe fn function_below(bp: *const Value) -> *const Function {
    Rc::as_ptr(&unsafe { closure_below(bp) }.function)
}

/// The closure in the callee slot of a frame whose locals start at `bp`.
///
/// # Safety
/// `bp - 1` is a live value of the operand stack, which outlives the
/// reference.
#[inline(always)]
unsafe fn closure_below<'a>(bp: *const Value) -> &'a Closure {
    // SAFETY: by the caller's contract.
    match unsafe { &*bp.sub(1) } {
        Value::Closure(closure) => closure,
        _ => unreachable!("a frame's callee slot holds its closure"),
    }
}

/// Same as `push_args` for arguments already on the stack at `base`.
fn fit_args(stack: &mut Stack, base: usize, argc: usize, function: &Function) {
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
