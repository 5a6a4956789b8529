//! Runtime policies: what runs next, what a primitive means, when time moves.
//!
//! The VM runs one unit for a slice and returns why it stopped (`vm::Halt`);
//! a `Policy` acts on that and decides everything else: which unit runs
//! next, what `await`, `spawn`, an async call and each primitive mean, and
//! what time it is. Each policy is a sibling module implementing the one
//! trait below, listed once in `POLICIES`:
//! - `js`: Node's event loop (nextTick queue, microtasks, timers);
//! - `asyncio`: CPython 3.11's `BaseEventLoop._run_once`, tasks and futures.
//!
//! Shared here, for every policy: the registry, the run settings, the
//! names every policy must give a value (`PRIMITIVES`), duration arguments,
//! the warnings sink (for reports made from `Drop`, as CPython makes them
//! from GC), the uncaught-error report and wall-clock pacing. Shared in
//! sibling modules: the virtual `clock`, the `events` log, the `chooser`
//! that makes every open scheduling choice, and the `promise` core and
//! timer heap the event loops build on. A policy's jobs, reactions,
//! primitives and handles are private to its module.

pub mod asyncio;
pub mod chooser;
pub mod clock;
pub mod events;
pub mod js;
pub mod promise;
pub mod python;

use crate::diagnostic::{Diagnostic, render};
use crate::value::{Closure, Handle, HandleRef, Hc, Value};
use crate::vm::{Dialect, Globals, Origin, Preempt, Slice, Thrown, UnitId, Vm};
use std::any::Any;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One line per policy: its name, what it models, its dialect, and how to
/// make one. Adding a policy is a module and a line here.
pub struct PolicyInfo {
    pub name: &'static str,
    pub about: &'static str,
    pub dialect: &'static Dialect,
    /// Functions the policy writes in looplab (CPython's own coroutines for
    /// asyncio's library, say): source the driver compiles once and hands
    /// to `make` as a `Library`. Empty for none.
    pub library: &'static str,
    pub make: fn(RunConfig, Library) -> Box<dyn Policy>,
}

/// A policy's library: the top-level functions of its `library` source,
/// by name, compiled by the compiler the driver hands over the first time
/// the policy needs one (most programs never do: start-up stays fast).
#[derive(Clone)]
pub struct Library {
    source: &'static str,
    compile: fn(&str) -> Vec<Rc<Closure>>,
    functions: Rc<std::cell::OnceCell<std::collections::HashMap<Rc<str>, Rc<Closure>>>>,
}

impl Library {
    pub fn new(source: &'static str, compile: fn(&str) -> Vec<Rc<Closure>>) -> Library {
        Library {
            source,
            compile,
            functions: Rc::new(std::cell::OnceCell::new()),
        }
    }

    /// The library's function `name`.
    pub fn get(&self, name: &str) -> Option<Rc<Closure>> {
        self.functions
            .get_or_init(|| {
                (self.compile)(self.source)
                    .into_iter()
                    .map(|f| (f.function.name.clone(), f))
                    .collect()
            })
            .get(name)
            .cloned()
    }
}

pub const POLICIES: &[PolicyInfo] = &[js::INFO, asyncio::INFO];

/// A policy, by its place in `POLICIES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyKind(usize);

#[allow(non_upper_case_globals)]
impl PolicyKind {
    pub const Js: PolicyKind = PolicyKind(0);
    pub const Asyncio: PolicyKind = PolicyKind(1);

    pub fn from_name(name: &str) -> Option<PolicyKind> {
        POLICIES.iter().position(|p| p.name == name).map(PolicyKind)
    }
    pub fn info(self) -> &'static PolicyInfo {
        &POLICIES[self.0]
    }
    pub fn name(self) -> &'static str {
        self.info().name
    }
    pub fn dialect(self) -> &'static Dialect {
        self.info().dialect
    }
    /// A fresh policy (`driver::make_policy` compiles its library).
    pub fn make(self, config: RunConfig, library: Library) -> Box<dyn Policy> {
        (self.info().make)(config, library)
    }
}

/// Settings every policy reads.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub color: bool,
    /// Virtual time charged per executed instruction.
    pub instruction_cost_ns: u64,
    /// asyncio: how late an idle loop wakes after its timer is due.
    pub wake_latency_ns: u64,
    /// Stop when virtual time passes this (0: never; the clock's own end,
    /// about 584 years, is a limit all the same).
    pub time_limit_ns: u64,
    /// Stop after this many scheduler events (0: no limit): `--max-events`.
    pub event_limit: u64,
    /// The heap budget in bytes (0: none): `--max-memory`.
    pub memory_limit: u64,
    /// Pace the virtual clock against the wall clock.
    pub real_time: bool,
    /// Record scheduler events (for the views).
    pub record_events: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            color: false,
            instruction_cost_ns: 10,
            wake_latency_ns: 50_000,
            time_limit_ns: 24 * 3_600_000_000_000,
            event_limit: DEFAULT_MAX_EVENTS,
            memory_limit: crate::memory::DEFAULT_BUDGET,
            real_time: false,
            record_events: false,
        }
    }
}

/// The default of `--max-events`: scheduler events (a job, a callback, a
/// task step, a timer firing, the clock moving) a run may take. A million
/// sleeping tasks take about 5 million; a runaway of `sleep(0)` or of a
/// callback re-queueing itself reaches this within seconds.
pub const DEFAULT_MAX_EVENTS: u64 = 10_000_000;

/// The slice every unit runs with: it lets a long-running unit be checked
/// (interrupt, time, memory) every million instructions, and it does
/// not change what runs (the policy resumes the same unit at once).
pub const SLICE: Slice = Slice {
    budget: 1 << 20,
    preempt: Preempt::Anywhere,
};

/// The slice a unit runs with now: it ends where the run's instruction
/// count reaches its next check point (`Vm::next_check`, moved on by
/// `check`), so the checks come every `SLICE.budget` instructions of the
/// whole run however often units switch (a loop spawning a task per turn
/// never runs a full slice of its own). A unit that halted for another
/// reason at or past the check point gets an empty slice: it is preempted
/// at once, and checked.
pub fn slice(vm: &Vm) -> Slice {
    let next_check = if vm.next_check == 0 {
        SLICE.budget
    } else {
        vm.next_check
    };
    Slice {
        budget: next_check.saturating_sub(vm.steps).min(SLICE.budget),
        preempt: SLICE.preempt,
    }
}

/// Heap growth past `memory::UNCHARGED_GROWTH` is charged one step per this
/// many bytes: growing a big heap (a map or a promise chain to a gigabyte)
/// costs about one instruction's time per few bytes, so it counts as work.
/// Eight, not fewer: a million sleeping tasks (~470 MB under js) must fit
/// the default step limit with room to spare (they need ~125 M steps).
pub const BYTES_PER_STEP: usize = 8;

/// What a map write costs, in steps, on a heap past
/// `memory::UNCHARGED_GROWTH` (its probes miss the caches: a few hundred
/// nanoseconds, where an instruction takes a few).
pub const MAP_WRITE_STEPS: u64 = 32;

/// What starting a task or an async function's unit costs, in steps (a
/// unit, its promise or future and their bookkeeping: about 30
/// instructions' time).
pub const UNIT_STEPS: u64 = 32;

/// Charges `steps` of work that no instruction counted to the step limit
/// (between runs, so the virtual clock, which counts executed
/// instructions, does not move).
pub fn charge(vm: &mut Vm, steps: u64) {
    vm.steps = vm.steps.saturating_add(steps);
}

/// Charges the heap's growth since the last charge (see `BYTES_PER_STEP`),
/// the map writes on a big heap and the built-ins' work
/// (`memory::charge_work`), and tells whether that took the run to its
/// step limit (a run
/// the VM stopped there is reported by the policy already).
fn charge_growth(vm: &mut Vm) -> bool {
    let grown = crate::memory::take_growth();
    let writes = crate::memory::take_map_writes();
    let work = crate::memory::take_work();
    if (grown < BYTES_PER_STEP && writes == 0 && work == 0) || vm.steps >= vm.step_limit {
        return false;
    }
    charge(vm, (grown / BYTES_PER_STEP) as u64);
    charge(vm, writes.saturating_mul(MAP_WRITE_STEPS));
    charge(vm, work);
    vm.steps >= vm.step_limit
}

/// The stop at the step limit reached by charged work, located where
/// `unit` (or the unit run last) stands.
fn charged_step_limit_error(vm: &Vm, unit: Option<UnitId>) -> Thrown {
    match unit
        .and_then(|u| vm.origin_of(u))
        .or_else(|| vm.last_place())
    {
        Some(at) => step_limit_error(vm, at),
        None => stop_error(vm, None, "StepLimit", &step_limit_message(vm)),
    }
}

/// What a check made between slices or events found.
pub enum Check {
    Go,
    /// Raise this (catchable) error in the unit: a `MemoryError`.
    Raise(Thrown),
    /// Stop the run with this report (a limit, an interrupt).
    Stop(Thrown),
}

/// Error kinds that stop a run (reported as "stopped", never caught).
const STOPS: &[&str] = &[
    "StepLimit",
    "EventLimit",
    "TimeLimit",
    "Interrupted",
    "OutputClosed",
];

/// The stop when stdout is closed (`looplab run f.lab | head -1`).
fn output_closed_error(vm: &Vm, unit: Option<UnitId>) -> Thrown {
    stop_error(
        vm,
        unit,
        "OutputClosed",
        "stopped: standard output was closed (broken pipe)",
    )
}

/// True for an error that stops the run (a limit, an interrupt).
pub fn is_stop(thrown: &Thrown) -> bool {
    matches!(&thrown.value, Value::Error(e) if STOPS.contains(&&*e.kind))
}

/// A stop of `kind`, located where `unit` (or the unit run last) stands.
pub fn stop_error(vm: &Vm, unit: Option<UnitId>, kind: &str, message: &str) -> Thrown {
    Thrown {
        value: Value::error(kind, message),
        origin: unit
            .and_then(|u| vm.origin_of(u))
            .or_else(|| vm.last_place()),
    }
}

/// The stop at the time limit (or the clock's end), not yet located.
pub fn time_limit_error(config: &RunConfig, now_ns: u64) -> Thrown {
    let message = if config.time_limit_ns == 0 {
        "stopped: virtual time reached the end of looplab's clock (about 584 years)".to_string()
    } else {
        format!(
            "stopped at virtual time {}: past the time limit of {} (raise it with --max-time, or 0 for none)",
            format_ns(now_ns),
            format_ns(config.time_limit_ns)
        )
    };
    Thrown::error("TimeLimit", &message)
}

/// Locates an error where `unit` (or the unit run last) stands, unless it
/// has a place already.
pub fn locate(vm: &Vm, unit: Option<UnitId>, mut thrown: Thrown) -> Thrown {
    if thrown.origin.is_none() {
        thrown.origin = unit
            .and_then(|u| vm.origin_of(u))
            .or_else(|| vm.last_place());
    }
    thrown
}

/// True when virtual time `now_ns` is past the run's time limit (or the
/// clock saturated: time arithmetic never wraps, and its end is a limit).
pub fn past_time_limit(config: &RunConfig, now_ns: u64) -> bool {
    now_ns == u64::MAX || (config.time_limit_ns > 0 && now_ns > config.time_limit_ns)
}

/// A duration for a report: `1.5s`, `2h`, `250ms`.
pub fn format_ns(ns: u64) -> String {
    let units = [
        (3_600_000_000_000u64, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
    ];
    for (scale, unit) in units {
        if ns >= scale {
            let value = ns as f64 / scale as f64;
            let text = format!("{value:.3}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            return format!("{text}{unit}");
        }
    }
    format!("{ns}ns")
}

/// The check a policy makes when a unit's slice ends (`Halt::Preempted`)
/// and between scheduler events: Ctrl-C, the time limit, the heap budget.
pub fn check(vm: &mut Vm, unit: Option<UnitId>, config: &RunConfig, now_ns: u64) -> Check {
    let charged = charge_growth(vm);
    vm.next_check = vm.steps.saturating_add(SLICE.budget);
    if charged {
        return Check::Stop(charged_step_limit_error(vm, unit));
    }
    if take_interrupt() {
        return Check::Stop(interrupted_error(vm, unit, now_ns));
    }
    if vm.output_closed {
        return Check::Stop(output_closed_error(vm, unit));
    }
    if past_time_limit(config, now_ns) {
        return Check::Stop(locate(vm, unit, time_limit_error(config, now_ns)));
    }
    match crate::memory::check(0) {
        Ok(()) => Check::Go,
        Err(message) => Check::Raise(Thrown::error("MemoryError", &message)),
    }
}

/// A `MemoryError` if the heap is over its budget (for the policies'
/// allocation points: a timer, a reaction, a task made).
pub fn memory_check() -> Result<(), Thrown> {
    crate::memory::check(0).map_err(|m| Thrown::error("MemoryError", &m))
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static INTERRUPTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Records an interrupt (Ctrl-C): the run stops at its next check.
/// Async-signal-safe (atomics only). Returns true if an earlier interrupt
/// was not taken yet (the run does not answer: the caller may give up).
pub fn interrupt() -> bool {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
    INTERRUPTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0
        && INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// True (once) when the run was interrupted: the one who takes it reports.
fn take_interrupt() -> bool {
    let taken = INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed)
        && INTERRUPTED.swap(false, std::sync::atomic::Ordering::Relaxed);
    if taken {
        INTERRUPTS.store(0, std::sync::atomic::Ordering::Relaxed);
    }
    taken
}

/// The stop Ctrl-C makes, if Ctrl-C was pressed (after a wait, e.g. a
/// `work(d)` paced against the wall clock), located at `unit`.
pub fn interrupt_check(vm: &Vm, unit: Option<UnitId>, now_ns: u64) -> Option<Thrown> {
    take_interrupt().then(|| interrupted_error(vm, unit, now_ns))
}

/// The stop Ctrl-C makes, located where `unit` (or the last unit) stands.
fn interrupted_error(vm: &Vm, unit: Option<UnitId>, now_ns: u64) -> Thrown {
    let message = format!("interrupted (Ctrl-C) at virtual time {}", format_ns(now_ns));
    stop_error(vm, unit, "Interrupted", &message)
}

/// The exit status of a run stopped by `thrown` (130 for Ctrl-C, as a
/// shell reports SIGINT; 1 for a limit).
pub fn stop_status(thrown: &Thrown) -> i32 {
    match &thrown.value {
        Value::Error(e) if &*e.kind == "Interrupted" => 130,
        _ => 1,
    }
}

/// What one scheduler step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// One event happened (a job ran, a unit ran a slice, time moved);
    /// the event log says which.
    Ran,
    /// The program is over, with this exit status.
    Finished(i32),
    /// Nothing is left to run now (no queued job, no timer) in a session
    /// that goes on: only after `load_entry`, where running out of work
    /// means "wait for the next entry", not the end. The step did nothing.
    Idle,
}

pub trait Policy {
    /// Loads a compiled program: its globals (named by the compiler) and
    /// its top level, which becomes the first unit. Runs nothing.
    fn load(&mut self, vm: &mut Vm, global_names: &[Rc<str>], main: Rc<Closure>);
    /// Advances the program by one scheduler event.
    fn step(&mut self, vm: &mut Vm) -> Step;
    /// Whether collecting every object the run has left could print
    /// nothing (asyncio reports unretrieved exceptions and never-awaited
    /// coroutines as they are collected). A run the process ends with
    /// then leaves its objects to the operating system instead of freeing
    /// them one by one (`RunOptions::exits_after`).
    fn collection_is_silent(&self) -> bool {
        false
    }
    /// Runs the program to the end; returns the exit status. Between
    /// events it holds the run to its limits (`--max-events`, the time
    /// limit, the heap budget, Ctrl-C) and passes warnings on.
    fn run_to_end(&mut self, vm: &mut Vm) -> i32 {
        let mut events = 0u64;
        loop {
            if let Step::Finished(status) = self.step(vm) {
                return status;
            }
            flush_warnings(vm);
            events += 1;
            let config = self.config();
            let stop = if charge_growth(vm) {
                Some(charged_step_limit_error(vm, None))
            } else if config.event_limit > 0 && events >= config.event_limit {
                let message = format!(
                    "stopped after {events} scheduler events: the event limit (raise it with --max-events N, or 0 for no limit)"
                );
                Some(stop_error(vm, None, "EventLimit", &message))
            } else {
                // (The policies check the time limit where time moves, and
                // the heap budget where memory grows.)
                if vm.output_closed {
                    Some(output_closed_error(vm, None))
                } else {
                    take_interrupt().then(|| interrupted_error(vm, None, self.now_ns()))
                }
            };
            if let Some(thrown) = stop {
                let color = config.color;
                report_uncaught(vm, &thrown, "stopped", color);
                return stop_status(&thrown);
            }
        }
    }
    /// The settings the run was made with.
    fn config(&self) -> &RunConfig;
    /// The virtual time now.
    fn now_ns(&self) -> u64;
    /// The scheduler events recorded so far.
    fn events(&self) -> &events::EventLog;
    /// Drops the program's globals (at shutdown, before the units go).
    fn clear_globals(&mut self);

    // ---- sessions (the REPL, `src/repl.rs`): one program, entry after entry ----

    /// Loads one more top-level chunk (a REPL entry) into the program
    /// running under this policy: the same globals table (new names get
    /// their values, existing ones keep theirs), the same clock, queues and
    /// timers. The entry is queued as the next unit of work (js: the next
    /// macrotask; asyncio: `run_until_complete` of it, without the shutdown
    /// stage, as `python -m asyncio` runs each entry). From the first entry
    /// on the policy is in session mode: running out of work is
    /// `Step::Idle`, and an uncaught error is reported without ending the
    /// program. Runs nothing.
    fn load_entry(&mut self, vm: &mut Vm, global_names: &[Rc<str>], entry: Rc<Closure>);
    /// The last entry's outcome, once it is over (its value, or the error
    /// it ended with, which the policy has not reported); `None` while it
    /// runs or waits, and after it was taken.
    fn take_entry_outcome(&mut self) -> Option<Result<Value, Thrown>>;
    /// What is queued right now, per queue, and the timers by due time.
    fn queues(&self, vm: &Vm) -> Queues;
    /// The program's globals table (the REPL copies plain values to a new
    /// policy on `:runtime`).
    fn globals_mut(&mut self) -> &mut Globals;
    /// The event log, to clear it (the REPL keeps one entry's events).
    fn events_mut(&mut self) -> &mut events::EventLog;
    /// Ctrl-C for a session (see `Interrupt`).
    fn set_interrupt(&mut self, flag: Arc<AtomicBool>);
    /// Drops every queued job and pending timer (after an interrupted or
    /// runaway entry, so it does not start again with the next one). Units
    /// waiting on them stay suspended for good.
    fn clear_queues(&mut self);
}

/// Ctrl-C in a session: while the flag is set, a running unit is stopped
/// where it stands by an uncatchable `KeyboardInterrupt` (its `finally`
/// blocks run). To notice the flag, units then run in slices of
/// `Interrupt::SLICE` instructions: a preemption nothing can observe, since
/// the policy resumes the same unit at once. Without a flag (a program
/// run), units run with an unbounded slice.
#[derive(Default)]
pub struct Interrupt(Option<Arc<AtomicBool>>);

impl Interrupt {
    pub const SLICE: u64 = 1 << 20;

    pub fn new(flag: Arc<AtomicBool>) -> Interrupt {
        Interrupt(Some(flag))
    }

    /// The slice a unit runs with.
    pub fn slice(&self) -> Slice {
        match self.0 {
            Some(_) => Slice {
                budget: Self::SLICE,
                preempt: Preempt::Anywhere,
            },
            None => Slice::UNBOUNDED,
        }
    }

    /// The error to raise in a unit preempted while Ctrl-C is pending.
    pub fn raised(&self) -> Option<Thrown> {
        let flag = self.0.as_ref()?;
        flag.load(Ordering::SeqCst).then(|| {
            Thrown::new(Value::Error(Rc::new(crate::value::ErrorValue {
                kind: Rc::from("KeyboardInterrupt"),
                message: Rc::from("interrupted by Ctrl-C"),
                errors: Value::Nil,
                cancellation: true,
            })))
        })
    }
}

/// What a policy has queued at one moment (the REPL's `:queues`).
#[derive(Clone, Debug, Default)]
pub struct Queues {
    /// Each queue in the order the policy serves them, with a line per job
    /// (front first).
    pub queues: Vec<(&'static str, Vec<String>)>,
    /// Pending timers, earliest first: due time (virtual ns) and what fires.
    pub timers: Vec<(u64, String)>,
}

/// How a queued job names a function it will call.
pub fn describe_callee(value: &Value) -> String {
    match value {
        Value::Closure(c) => format!("`{}`", c.function.name),
        Value::Native(n) => format!("`{}`", n.name()),
        other => other.repr(crate::value::Flavor::Js),
    }
}

/// Names every policy gives a value to (as a primitive of its own, or as a
/// function that explains it is not available under that policy).
pub const PRIMITIVES: &[&str] = &[
    "sleep",
    "work",
    "now",
    "set_timeout",
    "clear_timeout",
    "set_interval",
    "clear_interval",
    "set_immediate",
    "clear_immediate",
    "queue_microtask",
    "next_tick",
    "promise",
    "gather",
    "Promise",
    // asyncio's (js gives each a function saying what Node offers instead)
    "wait_for",
    "wait",
    "as_completed",
    "gather_settled",
    "shield",
    "task_group",
    "with_timeout",
    "current_task",
    "queue",
    "event",
    "lock",
    "semaphore",
];

/// True for a name every program can use without defining it.
pub fn is_predefined(name: &str) -> bool {
    PRIMITIVES.contains(&name) || crate::vm::builtins::names().any(|n| n == name)
}

/// Every predefined name (built-ins, then primitives).
pub fn predefined_names() -> impl Iterator<Item = &'static str> {
    crate::vm::builtins::names().chain(PRIMITIVES.iter().copied())
}

/// Fills a globals table: built-ins from the VM, primitives from the policy.
pub fn install_globals(
    globals: &mut Globals,
    names: &[Rc<str>],
    primitive: impl Fn(&str) -> Option<Value>,
) {
    globals.sync(names, |name| {
        crate::vm::builtins::global_value(name).or_else(|| primitive(name))
    });
}

/// One of a policy's primitives as a callable value (`sleep`, a promise's
/// resolve function): the name it prints as, and the policy's own
/// operation `O` (an enum private to the policy). `describe` is how the
/// policy's language shows a built-in function.
pub struct Primitive<O> {
    pub name: &'static str,
    pub op: O,
    describe: fn(&str, &mut String),
}

impl<O> Primitive<O> {
    pub fn new(name: &'static str, op: O, describe: fn(&str, &mut String)) -> Primitive<O> {
        Primitive { name, op, describe }
    }
}

impl<O: 'static> Handle for Primitive<O> {
    fn type_name(&self) -> &'static str {
        "function"
    }
    fn describe(&self, out: &mut String, _: &mut dyn FnMut(&mut String, &Value)) {
        (self.describe)(self.name, out)
    }
    fn is_callable(&self) -> bool {
        true
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The policy's own object behind a handle, if it is a `T`.
pub fn downcast<T: Handle>(handle: &HandleRef) -> Option<Hc<T>> {
    handle.downcast()
}

/// The policy's own object inside a value, if it is a `T`.
pub fn handle_of<T: Handle>(value: &Value) -> Option<Hc<T>> {
    match value {
        Value::Handle(h) => downcast(h),
        _ => None,
    }
}

/// Whole milliseconds whose count of nanoseconds is below 2^53 (exact as
/// an `f64`).
const EXACT_MS: i64 = 9_000_000_000;

/// Converts a duration argument (a number of milliseconds) to nanoseconds.
pub fn duration_ns(value: &Value, what: &str) -> Result<u64, Thrown> {
    // Whole milliseconds, the common case, need no floating point: below
    // 2^53 ns the float computation below is exact, so this is the same.
    if let Value::Int(n) = value
        && (0..=EXACT_MS).contains(n)
    {
        return Ok(*n as u64 * 1_000_000);
    }
    let ms = match value {
        Value::Int(n) => *n as f64,
        Value::Float(x) => *x,
        Value::Nil => 0.0,
        other => {
            return Err(Thrown::error(
                "TypeError",
                &format!("{what} needs a duration, not {}", other.a_type()),
            ));
        }
    };
    if ms.is_nan() || ms < 0.0 {
        return Err(Thrown::error(
            "ValueError",
            &format!("{what} needs a duration of zero or more, not {ms}"),
        ));
    }
    if ms == f64::INFINITY {
        return Err(Thrown::error(
            "ValueError",
            &format!(
                "{what}: an infinite duration would never end (the limit is 10^12 ms; to wait for good, await a future nothing completes)"
            ),
        ));
    }
    if ms > 1.0e12 {
        return Err(Thrown::error(
            "ValueError",
            &format!("{what}: a duration of {ms} ms is too long (the limit is 10^12 ms)"),
        ));
    }
    Ok((ms * 1_000_000.0).round() as u64)
}

thread_local! {
    static WALL_START: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

/// Records a warning to print on stderr (callable from `Drop`): it goes
/// out before the next line the program prints (see `vm::warn`).
pub fn warn(message: String) {
    crate::vm::warn(message);
}

/// Moves recorded warnings to the VM's stderr.
pub fn flush_warnings(vm: &mut Vm) {
    vm.flush_warnings();
}

/// Writes the report of an uncaught error to stderr.
pub fn report_uncaught(vm: &mut Vm, thrown: &Thrown, headline: &str, color: bool) {
    // Output that could not be written is the command line's to report
    // (quietly for a closed pipe); a note on stderr would only add noise.
    if matches!(&thrown.value, Value::Error(e) if &*e.kind == "OutputClosed") {
        return;
    }
    let shown = thrown.value.repr(vm.dialect.style);
    let shown = match &thrown.value {
        Value::Str(s) => s.to_string(),
        Value::Error(e) => format!("{}: {}", e.kind, e.message),
        _ => shown,
    };
    let stopped = is_stop(thrown);
    match &thrown.origin {
        Some(origin) => {
            let mut diagnostic = if stopped {
                let label = match &thrown.value {
                    Value::Error(e) if &*e.kind == "Interrupted" => "running here when interrupted",
                    Value::Error(e) if &*e.kind == "OutputClosed" => {
                        "running here when its output was closed"
                    }
                    _ => "running here when the limit was reached",
                };
                let message = match &thrown.value {
                    Value::Error(e) => e.message.to_string(),
                    _ => shown.clone(),
                };
                Diagnostic::new(message, origin.span, label)
            } else {
                Diagnostic::new(format!("{headline}: {shown}"), origin.span, "thrown here")
            };
            let stack = collapse_stack(&origin.stack, origin.omitted);
            let unit = if &*origin.unit == "<main>" {
                "the main program".to_string()
            } else {
                format!("`{}`", origin.unit)
            };
            diagnostic = diagnostic.with_note(format!("in {unit}; call stack: {stack}"));
            let text = render(&diagnostic, &origin.source, color);
            vm.eprint(&text);
        }
        None if stopped => {
            let message = match &thrown.value {
                Value::Error(e) => e.message.to_string(),
                _ => shown,
            };
            vm.eprint(&format!("error: {message}\n"))
        }
        None => vm.eprint(&format!("error: {headline}: {shown}\n")),
    }
}

/// Joins a call stack innermost first, folding runs of one name:
/// `forever ×9999 ← <main>`.
fn collapse_stack(stack: &[(Rc<str>, u32)], omitted: u32) -> String {
    let mut parts: Vec<String> = Vec::new();
    let outer = if omitted > 0 {
        crate::vm::ORIGIN_OUTER_RUNS
    } else {
        0
    };
    let inner = stack.len().saturating_sub(outer);
    for (i, (name, run)) in stack.iter().enumerate() {
        if i == inner && omitted > 0 {
            parts.push(format!("… {omitted} more frames …"));
        }
        match run {
            1 => parts.push(name.to_string()),
            2 => {
                parts.push(name.to_string());
                parts.push(name.to_string());
            }
            n => parts.push(format!("{name} ×{n}")),
        }
    }
    parts.join(" ← ")
}

/// The error a run stops with at the step limit, located where it stopped.
pub fn step_limit_error(vm: &Vm, at: Rc<Origin>) -> Thrown {
    Thrown {
        value: Value::error("StepLimit", &step_limit_message(vm)),
        origin: Some(at),
    }
}

fn step_limit_message(vm: &Vm) -> String {
    format!(
        "stopped after {} instructions: the step limit (raise it with --max-steps N, or 0 for no limit)",
        vm.step_limit
    )
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
        // In steps, so that Ctrl-C is heeded while waiting.
        loop {
            let now = std::time::Instant::now();
            if due <= now || INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            std::thread::sleep((due - now).min(std::time::Duration::from_millis(20)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_is_found_by_its_name() {
        for info in POLICIES {
            let kind = PolicyKind::from_name(info.name).expect("registered");
            assert_eq!(kind.name(), info.name);
            assert_eq!(kind.info().about, info.about);
        }
        assert_eq!(PolicyKind::from_name("threads"), None);
        assert_eq!(PolicyKind::Js.name(), "js");
        assert_eq!(PolicyKind::Asyncio.name(), "asyncio");
    }

    #[test]
    fn every_primitive_and_builtin_is_predefined() {
        let names: Vec<&str> = predefined_names().collect();
        for name in PRIMITIVES.iter().chain(["print", "len"].iter()) {
            assert!(names.contains(name), "{name}");
            assert!(is_predefined(name), "{name}");
        }
        assert!(!is_predefined("set_timout"));
    }
}
