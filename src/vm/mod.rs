//! The bytecode VM. Execution state is data: every unit of execution (the
//! script, a task, a callback, an async function started by a call) is a
//! `Fiber` with its own frames, operand stack and `try` handlers, kept in an
//! arena. `Vm::run` executes one unit for a `Slice` against the globals
//! table it is given and returns a `Halt`: why it stopped (see `halt`). A
//! looplab call is a pushed frame, never a Rust call, so deep recursion is a
//! clean error.
//!
//! The VM knows nothing of any runtime: it does not keep time (a `Stop`
//! reports the instructions a slice ran, and the policy turns them into
//! virtual time), it does not schedule, and where JavaScript and Python
//! disagree it asks the `Dialect` it was given.
//!
//! The list methods that take a callback (`map`, `filter`, …) are looplab
//! functions (`prelude.lab`, compiled by the driver and handed over with
//! `set_prelude`): `Op::CallPrelude` on a list pushes a frame calling one,
//! so a callback is an ordinary bytecode call and may halt like any other.
//!
//! Invariants: a unit is either running (taken out of the arena by `run`)
//! or stopped with its state in the arena; `steps` counts every executed
//! instruction of every unit, and passing `step_limit` is a fatal halt
//! (the runaway guard), separate from the per-slice budget.

pub mod builtins;
mod dialect;
mod dispatch;
mod fiber;
mod halt;
pub mod ops;
mod slow;
mod stack;

pub use dialect::{Dialect, MissingField, ModuloSign, RoundHalves, ZeroDivision};
pub use fiber::{Fiber, Frame, Frames, Rare, ResumeWith, TryHandler, UnitId};
pub use halt::{Halt, Preempt, Slice, Stop};
pub use stack::Stack;

use crate::bytecode::{Function, Op};
use crate::diagnostic::SourceFile;
use crate::lexer::Span;
use crate::value::{Closure, Native, Value};
use std::rc::Rc;

/// Where a run's output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Kept in `Vm::out` / `Vm::err` for the caller (tests, `looplab test`).
    Capture,
    /// Written as the program runs: stdout line-buffered (on a terminal) or
    /// in blocks (into a pipe or file), flushed before anything goes to
    /// stderr and at exit; stderr at once.
    Stream { line_buffered: bool },
}

/// A streamed stdout is written out when this much is pending.
const STREAM_BUFFER: usize = 1 << 16;

thread_local! {
    static WARNINGS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    /// `WARNINGS` may hold something: checked after every scheduler event,
    /// a `Cell<bool>` (no destructor, so no lazy registration to check) is
    /// one load (`sleep0_steps`: ~50 instructions a step less).
    static WARNED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Records a warning for stderr, made where no `Vm` is at hand (a `Drop`,
/// as CPython reports from its GC): it goes out before the next thing the
/// program prints, so it lands where it was made.
pub fn warn(message: String) {
    if WARNINGS.try_with(|w| w.borrow_mut().push(message)).is_ok() {
        let _ = WARNED.try_with(|w| w.set(true));
    }
}

/// Frames deeper than this are a "stack overflow" error.
pub const MAX_FRAMES: usize = 10_000;

/// Where an error was thrown: for the uncaught-error report.
pub struct Origin {
    pub span: Span,
    pub source: Rc<SourceFile>,
    /// The call stack, innermost first, as runs of one function (recursion
    /// is one entry with its count), bounded: at most `ORIGIN_RUNS` runs
    /// are kept (the innermost and the outermost), so an error made deep
    /// in the stack stays small (every rejected promise keeps one).
    pub stack: Vec<(Rc<str>, u32)>,
    /// Frames left out between the innermost and the outermost runs.
    pub omitted: u32,
    pub unit: Rc<str>,
}

/// At most this many runs of an error's call stack are kept.
pub const ORIGIN_RUNS: usize = 50;
/// Of which this many are the outermost.
pub const ORIGIN_OUTER_RUNS: usize = 10;

/// The compact call stack of an origin: runs of one function, innermost
/// first, bounded (see `Origin`).
fn compact_stack<'a>(names: impl Iterator<Item = &'a Rc<str>>) -> (Vec<(Rc<str>, u32)>, u32) {
    let mut runs: Vec<(Rc<str>, u32)> = Vec::new();
    let mut omitted = 0u32;
    for name in names {
        match runs.last_mut() {
            Some((last, n)) if Rc::ptr_eq(last, name) || **last == **name => *n += 1,
            _ => {
                runs.push((name.clone(), 1));
                // Keep the innermost runs and a window of the latest
                // (outermost so far); drop from the middle.
                if runs.len() > ORIGIN_RUNS {
                    let (_, n) = runs.remove(ORIGIN_RUNS - ORIGIN_OUTER_RUNS);
                    omitted += n;
                }
            }
        }
    }
    (runs, omitted)
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
    /// An error of `kind` with a message, not yet located.
    pub fn error(kind: &str, message: &str) -> Thrown {
        Thrown::new(Value::error(kind, message))
    }
    /// True for an error a bare `catch` does not catch (a cancellation).
    pub fn is_uncatchable(&self) -> bool {
        self.value.is_uncatchable()
    }
}

/// The globals table a unit runs against: one per program (or, later, per
/// process). The policy holds it and hands it to every `Vm::run`.
#[derive(Default)]
pub struct Globals {
    pub values: Vec<Value>,
    pub names: Vec<Rc<str>>,
}

impl Globals {
    /// Grows the table to the compiler's names, giving each new slot the
    /// value `initial` names for it (a built-in, a primitive) or leaving it
    /// undefined.
    pub fn sync(&mut self, names: &[Rc<str>], mut initial: impl FnMut(&str) -> Option<Value>) {
        while self.values.len() < names.len() {
            let name = &names[self.values.len()];
            self.values.push(initial(name).unwrap_or(Value::Uninit));
            self.names.push(name.clone());
        }
    }

    /// Drops every global value (as interpreter shutdown does).
    pub fn clear(&mut self) {
        for g in self.values.iter_mut() {
            *g = Value::Uninit;
        }
    }
}

pub struct Vm {
    // PERF: the arena doubles as it grows, but its untouched capacity is
    // never resident and the system moves a large block by remapping it:
    // reserving two million slots up front left the peak RSS of a million
    // sleeping tasks unchanged (within 0.3 MB), so it is not chunked.
    fibers: Vec<Fiber>,
    free_fibers: Vec<UnitId>,
    /// The units were left to the operating system at the end of a run the
    /// process ends with (`leave_units_behind`): the VM is not to be
    /// dropped either.
    pub units_left_behind: bool,
    /// Instructions executed by every unit so far.
    pub steps: u64,
    /// The runaway guard: a run stops for good after this many instructions.
    pub step_limit: u64,
    /// Where `steps` next has the policy check the run (interrupt, time,
    /// memory): the policies keep it (`runtime::slice`); 0 before the
    /// first check.
    pub next_check: u64,
    /// Work the built-ins recorded (`memory::charge_work`) during the
    /// current run, which the dispatch loop folded into `steps` at once (so
    /// the step limit stops a loop of heavy built-in calls within its
    /// slice); left out of the run's own count (`Stop::steps`), which
    /// moves the virtual clock.
    work_in_run: u64,
    pub dialect: &'static Dialect,
    /// Captured output (`Output::Capture`), or stdout not yet written.
    pub out: String,
    pub err: String,
    /// Where output goes (see `Output`).
    pub output: Output,
    /// Write every line out at once (`--real-time`: lines at their time).
    pub echo_output: bool,
    /// Writing to stdout failed (a closed pipe): output is dropped, and the
    /// policy stops the run at its next check.
    pub output_closed: bool,
    /// Why it failed (a closed pipe, a full disk): the command line reports
    /// it once the run has stopped.
    pub output_error: Option<std::io::Error>,
    /// The unit run last (where a report made between runs points), and
    /// its entry function (for when that unit is over).
    pub last_unit: Option<UnitId>,
    last_entry: Option<Rc<Function>>,
    /// The last error a handler caught: re-throwing the same value (from a
    /// `finally`, or `catch e { throw e; }`) keeps its original throw site.
    last_caught: Option<Thrown>,
    /// The list methods written in looplab (`prelude.lab`: `map`,
    /// `filter`, …): compiled by the loader the driver hands over, the
    /// first time a program calls one (most never do: start-up stays fast).
    prelude: Vec<Rc<Closure>>,
    prelude_loader: Option<fn() -> Vec<Rc<Closure>>>,
}

/// The source of the list methods written in looplab, for the driver to
/// compile (the VM cannot import the compiler).
pub const PRELUDE_SOURCE: &str = include_str!("prelude.lab");

impl Vm {
    pub fn new(dialect: &'static Dialect) -> Vm {
        Vm {
            fibers: Vec::new(),
            free_fibers: Vec::new(),
            units_left_behind: false,
            steps: 0,
            step_limit: u64::MAX,
            next_check: 0,
            work_in_run: 0,
            dialect,
            out: String::new(),
            err: String::new(),
            output: Output::Capture,
            echo_output: false,
            output_closed: false,
            output_error: None,
            last_unit: None,
            last_entry: None,
            last_caught: None,
            prelude: Vec::new(),
            prelude_loader: None,
        }
    }

    /// Sets how to get the compiled prelude's functions (see
    /// `PRELUDE_SOURCE`); called the first time a program needs one.
    pub fn set_prelude(&mut self, loader: fn() -> Vec<Rc<Closure>>) {
        self.prelude_loader = Some(loader);
    }

    /// The prelude function behind `receiver.name(…)` with `argc`
    /// arguments, if that is one (a list's callback-taking methods; `sort`
    /// only with a comparator).
    fn prelude_method(&mut self, receiver: &Value, name: &str, argc: usize) -> Option<Rc<Closure>> {
        if !matches!(receiver, Value::List(_)) || (name == "sort" && argc == 0) {
            return None;
        }
        if self.prelude.is_empty()
            && let Some(load) = self.prelude_loader.take()
        {
            self.prelude = load();
        }
        self.prelude
            .iter()
            .find(|c| &*c.function.name == name)
            .cloned()
    }

    /// Pushes a frame calling prelude function `closure` for
    /// `receiver.name(args)`: `(xs, f)`, and for `reduce` `(xs, f, acc,
    /// start)`.
    fn call_prelude(
        &mut self,
        fiber: &mut Fiber,
        closure: Rc<Closure>,
        receiver: Value,
        args: Vec<Value>,
    ) -> Result<dispatch::CallStep, Thrown> {
        let name = closure.function.name.clone();
        let callback = args.first().cloned().unwrap_or(Value::Nil);
        if !callback.is_callable() {
            return Err(Thrown::error(
                "TypeError",
                &format!(
                    "`{name}` needs a function, not {} (`{}`)",
                    callback.a_type(),
                    callback.repr(self.dialect.style)
                ),
            ));
        }
        let mut call = vec![receiver.clone(), callback];
        if &*name == "reduce" {
            match args.get(1) {
                Some(initial) => call.extend([initial.clone(), Value::Int(0)]),
                None => {
                    let first = match &receiver {
                        Value::List(xs) => xs.borrow().first().cloned(),
                        _ => None,
                    };
                    let Some(first) = first else {
                        return Err(Thrown::error(
                            "TypeError",
                            "reduce() of an empty list with no initial value",
                        ));
                    };
                    call.extend([first, Value::Int(1)]);
                }
            }
        }
        let argc = call.len();
        fiber.stack.push(Value::Closure(closure.clone()));
        fiber.stack.extend(call);
        self.call_value(fiber, Value::Closure(closure), argc)
    }

    /// Drops every unit, as interpreter shutdown does, so reports made on
    /// collection (never-awaited coroutines, unretrieved task exceptions)
    /// are made now.
    /// Leaves every unit to the operating system (the process exits next
    /// and collecting them could print nothing): a million tasks are not
    /// freed one by one.
    pub fn leave_units_behind(&mut self) {
        std::mem::forget(std::mem::take(&mut self.fibers));
        std::mem::forget(std::mem::take(&mut self.free_fibers));
        self.units_left_behind = true;
    }

    pub fn teardown(&mut self) {
        self.fibers.clear();
        self.free_fibers.clear();
    }

    pub fn print(&mut self, text: &str) {
        self.take_warnings();
        self.out.push_str(text);
        match self.output {
            Output::Capture if self.echo_output => self.flush(),
            Output::Capture => {}
            Output::Stream { line_buffered } => {
                let line_done = line_buffered && text.contains('\n');
                if line_done || self.echo_output || self.out.len() >= STREAM_BUFFER {
                    self.flush();
                }
            }
        }
    }

    pub fn eprint(&mut self, text: &str) {
        self.take_warnings();
        self.err.push_str(text);
        if self.echo_output || matches!(self.output, Output::Stream { .. }) {
            self.flush();
        }
    }

    /// Moves warnings recorded by drops (see `warn`) to stderr, in order
    /// with what is printed.
    #[inline(always)]
    fn take_warnings(&mut self) {
        // Checked in line (twice per scheduler event: `sleep0_steps`); the
        // moving is out of line, so the check needs no stack frame.
        if WARNED.with(|w| w.replace(false)) {
            self.move_warnings();
        }
    }

    #[cold]
    #[inline(never)]
    fn move_warnings(&mut self) {
        let warnings = WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()));
        for w in warnings {
            self.err.push_str(&w);
        }
    }

    /// Writes pending warnings out now (after a scheduler event).
    pub fn flush_warnings(&mut self) {
        self.take_warnings();
        if !self.err.is_empty() && matches!(self.output, Output::Stream { .. }) {
            self.flush();
        }
    }

    /// Writes what is pending: stdout first, then stderr (the order the
    /// program made them in, as each `eprint` flushes what came before).
    pub fn flush(&mut self) {
        use std::io::Write;
        if !self.out.is_empty() {
            if !self.output_closed {
                let mut stdout = std::io::stdout().lock();
                let written = stdout
                    .write_all(self.out.as_bytes())
                    .and_then(|_| stdout.flush());
                // A closed pipe (`| head`), a full disk: the run is told
                // (`output_closed`) and stops; the command line reports why.
                if let Err(e) = written {
                    self.output_closed = true;
                    self.output_error.get_or_insert(e);
                }
            }
            self.out.clear();
        }
        if !self.err.is_empty() {
            let _ = std::io::stderr().write_all(self.err.as_bytes());
            self.err.clear();
        }
    }

    // ---- units ----

    /// Makes a unit that will call `callee(args)` when first run.
    pub fn new_unit(&mut self, callee: Rc<Closure>, args: Vec<Value>) -> UnitId {
        let id = match self.free_fibers.pop() {
            Some(id) => id,
            None => {
                self.fibers.push(Fiber::default());
                (self.fibers.len() - 1) as UnitId
            }
        };
        let fiber = &mut self.fibers[id as usize];
        if fiber.stack.capacity() == 0 {
            fiber
                .stack
                .reserve_exact(callee.function.num_slots as usize + 3); // callee, locals, two temporaries
        }
        push_frame(fiber, callee, args, 0);
        id
    }

    /// Pushes a call of `callee(args)` onto a stopped unit: when it runs
    /// again it executes the call first. With a non-zero `mark`, the VM
    /// halts with `Returned`/`Unwound` when the call ends; with 0, the
    /// result is the value of the expression the unit stopped in.
    pub fn push_call(
        &mut self,
        unit: UnitId,
        callee: Rc<Closure>,
        args: Vec<Value>,
        mark: u32,
    ) -> Result<(), Thrown> {
        let fiber = &mut self.fibers[unit as usize];
        if fiber.frames.len() >= MAX_FRAMES {
            return Err(stack_overflow());
        }
        // The call's result is what the unit receives.
        fiber.clear_resume();
        push_frame(fiber, callee, args, mark);
        if mark != 0 {
            fiber.frames.add_mark();
        }
        Ok(())
    }

    pub fn fiber(&self, id: UnitId) -> &Fiber {
        &self.fibers[id as usize]
    }

    pub fn is_alive(&self, id: UnitId) -> bool {
        self.fibers.get(id as usize).is_some_and(Fiber::alive)
    }

    /// The name of a unit (its entry function's).
    pub fn unit_name(&self, id: UnitId) -> Rc<str> {
        self.fibers
            .get(id as usize)
            .map_or_else(|| Rc::from("?"), Fiber::unit_name)
    }

    /// How many units are live: every slot of the arena holds a live unit
    /// unless it is free (a unit has a frame from `new_unit` until it is
    /// released), so this counts without a scan of the arena (a million
    /// finished tasks: `sleeping_tasks`'s end-of-run check).
    pub fn live_unit_count(&self) -> usize {
        let count = self.fibers.len().saturating_sub(self.free_fibers.len());
        debug_assert_eq!(count, self.live_units().count(), "live units miscounted");
        count
    }

    /// Live units (for deadlock and end-of-run reports).
    pub fn live_units(&self) -> impl Iterator<Item = (UnitId, &Fiber)> {
        self.fibers
            .iter()
            .enumerate()
            .filter(|(_, f)| f.alive())
            .map(|(i, f)| (i as UnitId, f))
    }

    /// After a halt for a call (`Halt::Primitive`, `Halt::CallAsync`):
    /// when the stopped unit's next instruction awaits the call's result
    /// (`await sleep(0)`, `await f()`), moves the unit past that `await`
    /// and counts it as executed, so the policy can make the call and
    /// await its result in one stop; the unit then resumes with what the
    /// `await` gives, or is resumed later. The policy charges the one
    /// instruction to its clock. False, with nothing done, when the next
    /// instruction is no `await`, or when the runaway limit leaves no room
    /// for it (the unit's next run stops there, as it would have).
    pub fn skip_await(&mut self, unit: UnitId) -> bool {
        if !self.awaits_next(unit) {
            return false;
        }
        if let Some(frame) = self.fibers[unit as usize].frames.last_mut() {
            frame.ip += 1;
        }
        self.steps += 1;
        true
    }

    /// Whether `skip_await` would move the stopped unit past an `await`
    /// (its next instruction is one, and the runaway limit leaves room
    /// for it), without moving it: a policy that makes the awaited call
    /// differently when its result is awaited at once asks first.
    pub fn awaits_next(&self, unit: UnitId) -> bool {
        if self.steps >= self.step_limit {
            return false;
        }
        let Some(fiber) = self.fibers.get(unit as usize) else {
            return false;
        };
        let Some(frame) = fiber.frames.last() else {
            return false;
        };
        matches!(
            fiber.closure_of(frame).function.code.get(frame.ip as usize),
            Some(Op::Await)
        )
    }

    /// Sets what a stopped unit receives when it next runs.
    pub fn resume(&mut self, id: UnitId, with: ResumeWith) {
        self.fibers[id as usize].set_resume(with);
    }

    /// Runs one unit for a slice, against `globals`, until it halts.
    pub fn run(&mut self, id: UnitId, globals: &mut Globals, slice: Slice) -> Stop {
        let before = self.steps;
        self.work_in_run = 0;
        self.last_unit = Some(id);
        // The unit runs in its slot: the arena is taken out of the VM for
        // the run (three words moved each way, where moving the unit out
        // and back moved a fiber, 48 bytes, twice: `sleeping_tasks`), as
        // nothing in a run reaches another unit (`execute` never looks at
        // the arena). A run that panics leaves the VM without its units.
        let mut fibers = std::mem::take(&mut self.fibers);
        let fiber = &mut fibers[id as usize];
        // The entry frame's callee is the stack's first value (`new_unit`
        // pushes it on the empty stack, and nothing writes below a running
        // frame's base).
        debug_assert!(fiber.frames.first().is_none_or(|entry| entry.base == 1));
        // PERF: when units alternate (a spawning loop and its tasks) this
        // clones one entry function and drops another every run (~15
        // instructions); taking the resumption out of line and building
        // the `Stop` in place cost more than they saved (st100k +3.4 M).
        if let Some(Value::Closure(entry)) = fiber.stack.first()
            && !matches!(&self.last_entry, Some(f) if Rc::ptr_eq(f, &entry.function))
        {
            self.last_entry = Some(entry.function.clone());
        }
        let halt = match fiber.take_resume() {
            // A value is on the stack already (`Fiber::set_resume`).
            None => None,
            Some(ResumeWith::Throw(thrown)) => self.unwind(fiber, thrown),
            Some(ResumeWith::Raise(mut thrown)) => {
                if thrown.origin.is_none() {
                    thrown.origin = Some(self.origin_here(fiber));
                }
                self.unwind(fiber, thrown)
            }
            Some(ResumeWith::Value(_) | ResumeWith::Start) => None,
        };
        let halt = match halt {
            Some(halt) => halt,
            None => self.execute(fiber, globals, slice),
        };
        match halt {
            Halt::Finished(_) | Halt::Threw(_) => {
                // Over: the slot keeps its buffers for the next unit.
                fiber.stack.clear();
                fiber.frames.clear();
                fiber.rare.clear();
                self.free_fibers.push(id);
            }
            Halt::Preempted => fiber.set_preempted(true),
            _ => fiber.set_preempted(false),
        }
        let placeholder = std::mem::replace(&mut self.fibers, fibers);
        debug_assert!(
            placeholder.capacity() == 0,
            "the arena was written while a unit ran"
        );
        std::mem::forget(placeholder);
        Stop {
            halt,
            steps: self.steps - before - self.work_in_run,
        }
    }

    /// Calls a built-in function outside any unit (a policy calling a
    /// callback that happens to be a built-in, such as `print`).
    pub fn call_native(&mut self, native: &Native, args: Vec<Value>) -> Result<Value, Thrown> {
        match native {
            Native::Builtin { id, .. } => builtins::call_builtin(self, *id, &args),
            Native::Method { receiver, name } => builtins::call_method(self, receiver, name, &args)
                .unwrap_or_else(|| {
                    Err(Thrown::error(
                        "TypeError",
                        &format!(
                            "`{name}` of {} cannot be called from here",
                            receiver.a_type()
                        ),
                    ))
                }),
        }
    }

    /// Unwinds a resumed unit; `None` if a handler caught the error.
    fn unwind(&mut self, fiber: &mut Fiber, thrown: Thrown) -> Option<Halt> {
        match self.throw_into(fiber, thrown) {
            Unwind::Caught => None,
            Unwind::PastMark(mark, thrown) => Some(Halt::Unwound { mark, thrown }),
            Unwind::Uncaught(thrown) => Some(Halt::Threw(thrown)),
        }
    }

    /// Where the unit stands now: the instruction it stopped at.
    fn origin_here(&self, fiber: &Fiber) -> Rc<Origin> {
        match fiber.frames.last() {
            Some(frame) => {
                let function = &fiber.closure_of(frame).function;
                // Halted at an instruction: that one (ip - 1); preempted:
                // the next one (ip).
                let at = if fiber.preempted() {
                    frame.ip as usize
                } else {
                    (frame.ip as usize).saturating_sub(1)
                };
                let span = function.spans[at.min(function.spans.len() - 1)];
                self.origin(fiber, span, &function.source)
            }
            None => Rc::new(Origin {
                span: Span::from(0..0),
                source: SourceFile::new("<unknown>", String::new()),
                stack: Vec::new(),
                omitted: 0,
                unit: fiber.unit_name(),
            }),
        }
    }

    /// Builds the origin record of an error thrown at `span` in `fiber`.
    fn origin(&self, fiber: &Fiber, span: Span, source: &Rc<SourceFile>) -> Rc<Origin> {
        let (stack, omitted) = compact_stack(
            fiber
                .frames
                .iter()
                .rev()
                .map(|f| &fiber.closure_of(f).function.name),
        );
        Rc::new(Origin {
            span,
            source: source.clone(),
            stack,
            omitted,
            unit: fiber.unit_name(),
        })
    }

    /// Unwinds to the nearest handler, or to a marked frame, whichever is
    /// nearer.
    fn throw_into(&mut self, fiber: &mut Fiber, thrown: Thrown) -> Unwind {
        // `marked` only spares the search below; it must count the frames
        // that have a mark.
        debug_assert_eq!(
            fiber.frames.marked(),
            fiber.frames.iter().filter(|f| f.mark != 0).count(),
            "the count of marked frames drifted"
        );
        let marked_at = if fiber.frames.marked() > 0 {
            (0..fiber.frames.len())
                .rev()
                .find(|&i| fiber.frames[i].mark != 0)
        } else {
            None
        };
        let handler = fiber.rare.last_handler().copied();
        match (handler, marked_at) {
            (Some(h), m) if m.is_none_or(|m| h.frames > m) => {
                fiber.rare.pop_handler();
                // Unwinding is work: each frame popped counts as a step.
                self.steps += fiber.frames.len().saturating_sub(h.frames) as u64;
                fiber.frames.truncate(h.frames);
                fiber.stack.truncate(h.stack);
                fiber.stack.push(thrown.value.clone());
                self.last_caught = Some(thrown);
                if let Some(frame) = fiber.frames.last_mut() {
                    frame.ip = h.ip as u32;
                }
                Unwind::Caught
            }
            (_, Some(m)) => {
                let frame = &fiber.frames[m];
                let mark = frame.mark;
                let callee_at = frame.base as usize - 1;
                self.steps += (fiber.frames.len() - m) as u64;
                fiber.frames.truncate(m);
                fiber.stack.truncate(callee_at);
                fiber.rare.retain_handlers(|h| h.frames <= m);
                fiber.frames.drop_mark();
                Unwind::PastMark(mark, thrown)
            }
            _ => {
                self.steps += fiber.frames.len() as u64;
                Unwind::Uncaught(thrown)
            }
        }
    }

    /// Where a stopped unit stands (for a report made from outside it:
    /// a limit reached between its slices, an interrupt). `None` once the
    /// unit is over.
    pub fn origin_of(&self, unit: UnitId) -> Option<Rc<Origin>> {
        let fiber = self.fibers.get(unit as usize)?;
        fiber.alive().then(|| self.origin_here(fiber))
    }

    /// Where the program was last: the unit run last, where it stands, or
    /// (if it is over) its function.
    pub fn last_place(&self) -> Option<Rc<Origin>> {
        if let Some(origin) = self.last_unit.and_then(|u| self.origin_of(u)) {
            return Some(origin);
        }
        let function = self.last_entry.as_ref()?;
        Some(Rc::new(Origin {
            span: *function.spans.first()?,
            source: function.source.clone(),
            stack: vec![(function.name.clone(), 1)],
            omitted: 0,
            unit: function.name.clone(),
        }))
    }
}

enum Unwind {
    Caught,
    PastMark(u32, Thrown),
    Uncaught(Thrown),
}

fn stack_overflow() -> Thrown {
    Thrown::error(
        "RangeError",
        &format!("stack overflow: more than {MAX_FRAMES} nested calls"),
    )
}

/// Pushes the callee, its arguments and locals, and its frame.
fn push_frame(fiber: &mut Fiber, callee: Rc<Closure>, args: Vec<Value>, mark: u32) {
    let (arity, num_slots) = (callee.function.arity, callee.function.num_slots);
    // Room for the callee and the frame's slots at once (a new unit's
    // stack was made that big already).
    fiber
        .stack
        .reserve(1 + (num_slots as usize).max(args.len()));
    fiber.stack.push(Value::Closure(callee));
    let base = fiber.stack.len();
    push_args(&mut fiber.stack, arity as usize, num_slots as usize, args);
    fiber.frames.push(Frame {
        ip: 0,
        base: base as u32,
        mark,
    });
}

/// Lays out arguments for a call of a function of `arity` with `num_slots`
/// locals: missing ones are nil, extra ones dropped, then its other local
/// slots (nil). The arguments are moved one by one: a call the policy
/// makes (a spawn, a callback) passes a few, where a copy routine's call
/// cost more than the moves (`spawn_gather`, `sleeping_tasks`).
fn push_args(stack: &mut Stack, arity: usize, num_slots: usize, args: Vec<Value>) {
    stack.reserve(num_slots.max(args.len().min(arity)));
    let mut given = 0;
    for v in args.into_iter().take(arity) {
        stack.push(v);
        given += 1;
    }
    for _ in given..num_slots {
        stack.push(Value::Nil);
    }
}
