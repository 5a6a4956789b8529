//! The REPL (`looplab repl`, or `looplab` alone on a terminal): one program
//! that grows entry by entry under a live runtime policy.
//!
//! Each entry is compiled against the session's growing compiler globals
//! (`driver::compile_entry`) and handed to the live policy with
//! `Policy::load_entry` (same globals table, clock, queues and timers);
//! then the REPL steps the policy until it is idle (`Step::Idle`), printing
//! output as it comes and the entry's value when the entry is over. Views
//! (`:trace`, `:timeline`, `:step`) read the policy's event log and nothing
//! else; `:queues` reads `Policy::queues`.
//!
//! On a terminal, rustyline edits lines (`repl::editor`); piped input is
//! read the same way without prompts or line editing, so the REPL can be
//! scripted: only outputs, values and messages are printed.

mod editor;
mod views;

pub use editor::is_complete;

use crate::compiler::Globals;
use crate::diagnostic::SourceFile;
use crate::driver;
use crate::runtime::events::{Event, EventKind};
use crate::runtime::{self, Policy, PolicyKind, RunConfig, Step};
use crate::value::{Closure, Flavor, Value};
use crate::vm::{UnitId, Vm};
use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use views::ms;

/// How a session starts.
#[derive(Clone, Debug)]
pub struct Options {
    pub runtime: PolicyKind,
    /// Instructions one entry may run (0: no limit): the runaway guard.
    pub max_steps: u64,
    pub config: RunConfig,
}

impl Default for Options {
    /// No virtual time limit: the session's clock carries on across
    /// entries, and the step limit and Ctrl-C stop a runaway.
    fn default() -> Self {
        Options {
            runtime: PolicyKind::Js,
            max_steps: DEFAULT_MAX_STEPS,
            config: RunConfig {
                time_limit_ns: 0,
                ..RunConfig::default()
            },
        }
    }
}

/// Instructions an entry may run by default (a few seconds in a debug build).
pub const DEFAULT_MAX_STEPS: u64 = 100_000_000;

/// Runs the REPL on the terminal, or on piped standard input; returns the
/// exit status (piped: 1 if any entry failed).
pub fn main(options: Options) -> i32 {
    if std::io::stdin().is_terminal() {
        interactive(options)
    } else {
        let stdin = std::io::stdin();
        piped(options, stdin.lock())
    }
}

/// A REPL session: the live policy and VM, and what the views need.
pub struct Session {
    kind: PolicyKind,
    options: Options,
    vm: Vm,
    policy: Box<dyn Policy>,
    globals: Globals,
    entries: usize,
    trace: bool,
    /// Events of the log already shown or consumed (`:trace`, `:step`).
    cursor: usize,
    /// Unit names, from `Created` events (ids are reused: latest wins).
    names: HashMap<UnitId, Rc<str>>,
    /// Echo the current entry's value when it is over (typed entries).
    echo: Option<bool>,
    /// Ctrl-C while an entry runs (checked between scheduler steps).
    interrupt: Arc<AtomicBool>,
    /// Some entry failed (the exit status of a piped session).
    pub failed: bool,
    /// `:load` with no file: the lines of a program being typed, loaded
    /// (not run) when an empty line ends it.
    typing: Option<String>,
    /// A program loaded with `:load` has not run to its end yet.
    held: bool,
}

impl Session {
    pub fn new(options: Options) -> Session {
        let kind = options.runtime;
        let interrupt = Arc::new(AtomicBool::new(false));
        let (vm, policy) = fresh(kind, &options, &interrupt);
        let mut session = Session {
            kind,
            options,
            vm,
            policy,
            globals: Globals::default(),
            entries: 0,
            trace: false,
            cursor: 0,
            names: HashMap::new(),
            echo: None,
            interrupt,
            failed: false,
            typing: None,
            held: false,
        };
        session.load_empty();
        session
    }

    /// The prompt: the runtime's name (`... ` while a program is typed
    /// after `:load`).
    pub fn prompt(&self) -> String {
        match self.typing {
            Some(_) => "... ".to_string(),
            None => format!("{}> ", self.kind.name()),
        }
    }

    fn color(&self) -> bool {
        self.options.config.color
    }

    fn flavor(&self) -> Flavor {
        self.kind.dialect().style
    }

    /// Names the session defined (for completion).
    pub fn defined_names(&self) -> Vec<String> {
        self.globals
            .names
            .iter()
            .filter(|n| !runtime::is_predefined(n))
            .map(|n| n.to_string())
            .collect()
    }

    /// Handles one complete input: a command or an entry. Returns false
    /// when the session should end (`:quit`).
    pub fn handle(&mut self, input: &str) -> bool {
        let trimmed = input.trim();
        if let Some(program) = &mut self.typing {
            if !trimmed.is_empty() && !trimmed.starts_with(':') {
                program.push_str(input.trim_end_matches('\n'));
                program.push('\n');
                return true;
            }
            // An empty line (or a command) ends the program.
            let program = self.typing.take().unwrap_or_default();
            self.load_program("<typed program>", program);
        }
        if trimmed.is_empty() {
            return true;
        }
        if let Some(command) = trimmed.strip_prefix(':') {
            return self.command(command.trim());
        }
        // What node's and python's REPLs take for leaving or help.
        let word = trimmed.trim_start_matches('.').trim_end_matches("()");
        if matches!(word, "exit" | "quit" | "help") && self.globals.lookup(word).is_none() {
            println!("(commands start with `:` here: :help lists them; :quit or Ctrl-D leaves)");
            return true;
        }
        self.entry(input);
        true
    }

    // ---- entries ----

    fn entry(&mut self, text: &str) {
        self.entries += 1;
        let name = format!("<entry {}>", self.entries);
        let Some((compiled, source)) = self.compile(&name, text) else {
            self.failed = true;
            return;
        };
        if !self.follow_directive(&compiled, &source) {
            self.failed = true;
            return;
        }
        self.load(compiled.main, Some(compiled.returns_value));
        self.run_to_idle();
    }

    /// Compiles an entry; a lone expression needs no `;`. Errors are shown
    /// against the entry's text.
    fn compile(
        &mut self,
        name: &str,
        text: &str,
    ) -> Option<(crate::compiler::Compiled, Rc<SourceFile>)> {
        let trimmed = text.trim_end();
        let mut with_semi = None;
        if !trimmed.ends_with(';') && !trimmed.ends_with('}') {
            let source = SourceFile::new(name, format!("{trimmed};"));
            match driver::compile_entry(&source, &mut self.globals) {
                Ok(compiled) => return Some((compiled, source)),
                Err(diagnostics) => with_semi = Some((diagnostics, source)),
            }
        }
        let source = SourceFile::new(name, text.to_string());
        match driver::compile_entry(&source, &mut self.globals) {
            Ok(compiled) => Some((compiled, source)),
            Err(diagnostics) => {
                // Only a missing final `;`? Then the errors with it added
                // are the real ones.
                let (diagnostics, source) = match with_semi {
                    Some(other)
                        if diagnostics
                            .iter()
                            .any(|d| d.title == "missing `;`" && d.span.start >= trimmed.len()) =>
                    {
                        other
                    }
                    _ => (diagnostics, source),
                };
                self.vm.flush();
                eprint!(
                    "{}",
                    driver::render_all(&diagnostics, &source, self.color())
                );
                None
            }
        }
    }

    /// A `runtime NAME;` directive in an entry switches the runtime (as
    /// `:runtime NAME` does). False if it names one not implemented.
    fn follow_directive(
        &mut self,
        compiled: &crate::compiler::Compiled,
        source: &Rc<SourceFile>,
    ) -> bool {
        match driver::directive_runtime(compiled) {
            Ok(Some(kind)) if kind != self.kind => {
                println!(
                    "(the `runtime {}` directive switches the runtime)",
                    kind.name()
                );
                self.switch(kind);
                true
            }
            Ok(_) => true,
            Err(d) => {
                eprint!("{}", crate::diagnostic::render(&d, source, self.color()));
                false
            }
        }
    }

    /// Hands a compiled entry to the policy (runs nothing). `echo`: whether
    /// its value is shown, and whether it is an expression's.
    fn load(&mut self, main: Rc<crate::bytecode::Function>, echo: Option<bool>) {
        if self.held {
            println!("(first, the loaded program runs to its end)");
            self.run_to_idle();
        }
        let entry = Rc::new(Closure::new(main, Box::new([])));
        // A new entry: a fresh step budget, a fresh event log.
        self.vm.steps = 0;
        self.vm.step_limit = match self.options.max_steps {
            0 => u64::MAX,
            n => n,
        };
        self.policy.events_mut().clear();
        self.cursor = 0;
        self.echo = echo;
        self.policy
            .load_entry(&mut self.vm, &self.globals.names, entry);
    }

    /// An empty entry, run silently: installs the policy's globals.
    fn load_empty(&mut self) {
        let source = SourceFile::new("<start>", String::new());
        if let Ok(compiled) = driver::compile_entry(&source, &mut self.globals) {
            self.load(compiled.main, None);
            self.run_to_idle();
        }
    }

    /// Steps the policy until nothing is left to run (or Ctrl-C, or the
    /// step limit), showing output, trace lines and the entry's value.
    pub fn run_to_idle(&mut self) {
        self.interrupt.store(false, Ordering::SeqCst);
        loop {
            if self.interrupt.swap(false, Ordering::SeqCst) {
                self.vm.flush();
                self.failed = true;
                self.drop_queued("interrupted");
                return;
            }
            let step = self.policy.step(&mut self.vm);
            self.after_step(self.trace);
            match step {
                Step::Ran => {}
                Step::Idle => {
                    self.held = false;
                    break;
                }
                Step::Finished(status) => {
                    println!(
                        "(the {} runtime stopped for good, status {status}: starting a fresh one; functions and plain values carry over)",
                        self.kind.name()
                    );
                    self.failed = true;
                    self.switch(self.kind);
                    return;
                }
            }
            if self.vm.steps >= self.vm.step_limit {
                self.failed = true;
                let why = format!(
                    "stopped after {} instructions: the step limit of an entry, --max-steps",
                    self.vm.steps
                );
                self.drop_queued(&why);
                return;
            }
        }
        if self.echo.is_some() {
            // Idle, and the entry is not over: it waits on something that
            // nothing left to run will settle.
            self.echo = None;
            println!("(the entry is still waiting: nothing left to run can settle what it awaits)");
        }
    }

    /// After an interrupted or runaway entry: drops what is still queued,
    /// so that it does not start again with the next entry.
    fn drop_queued(&mut self, why: &str) {
        let queues = self.policy.queues(&self.vm);
        let jobs: usize = queues.queues.iter().map(|(_, jobs)| jobs.len()).sum();
        let timers = queues.timers.len();
        self.policy.clear_queues();
        self.held = false;
        self.echo = None;
        if jobs + timers == 0 {
            println!("({why})");
        } else {
            println!(
                "({why}; dropped {jobs} queued job(s) and {timers} timer(s), so none of it runs again; variables and functions stay)"
            );
        }
    }

    /// After a step: output, new events (shown with `show`), the value of
    /// an entry that just ended.
    fn after_step(&mut self, show: bool) {
        let events: Vec<Event> = self.policy.events().events()[self.cursor..].to_vec();
        self.cursor += events.len();
        let mut i = 0;
        while i < events.len() {
            let event = &events[i];
            if let EventKind::Created { name } = &event.kind
                && let Some(unit) = event.unit
            {
                self.names.insert(unit, name.clone());
            }
            // Consecutive slices of one unit show as one line.
            let mut slices = 1;
            let mut last = event;
            if let EventKind::Ran { steps } = event.kind {
                let mut total = steps;
                while let Some(next) = events.get(i + slices)
                    && let EventKind::Ran { steps } = next.kind
                    && next.unit == event.unit
                {
                    total += steps;
                    last = next;
                    slices += 1;
                }
                if show {
                    let merged = Event {
                        at_ns: last.at_ns,
                        unit: event.unit,
                        kind: EventKind::Ran { steps: total },
                    };
                    let line = self.describe_event(&merged);
                    if slices > 1 {
                        println!("{line} in {slices} slices");
                    } else {
                        println!("{line}");
                    }
                }
            } else if show {
                println!("{}", self.describe_event(event));
            }
            i += slices;
        }
        runtime::flush_warnings(&mut self.vm);
        self.vm.flush();
        if let Some(outcome) = self.policy.take_entry_outcome() {
            let echo = self.echo.take();
            match outcome {
                Ok(value) => self.echo_value(&value, echo),
                Err(thrown) if self.interrupt.load(Ordering::SeqCst) && thrown.is_uncatchable() => {
                    self.failed = true;
                    self.report_interrupt(&thrown);
                }
                Err(thrown) => {
                    self.failed = true;
                    let color = self.color();
                    runtime::report_uncaught(&mut self.vm, &thrown, "uncaught exception", color);
                    self.vm.flush();
                }
            }
        }
    }

    /// An entry stopped by Ctrl-C (a `KeyboardInterrupt` raised where it
    /// ran, or, under asyncio, its task cancelled by it): where it was.
    fn report_interrupt(&mut self, thrown: &crate::vm::Thrown) {
        self.vm.flush();
        match &thrown.origin {
            Some(origin) => {
                let diagnostic = crate::diagnostic::Diagnostic::new(
                    "KeyboardInterrupt: the entry was interrupted by Ctrl-C",
                    origin.span,
                    "running here",
                );
                eprint!(
                    "{}",
                    crate::diagnostic::render(&diagnostic, &origin.source, self.color())
                );
            }
            None => eprintln!("KeyboardInterrupt: the entry was interrupted by Ctrl-C"),
        }
    }

    /// Shows an entry's value as the runtime's own REPL does: node echoes
    /// every entry (`undefined` for a statement), python only an
    /// expression's value that is not None.
    fn echo_value(&mut self, value: &Value, echo: Option<bool>) {
        let Some(is_expression) = echo else { return };
        let shown = match self.flavor() {
            Flavor::Js if is_expression => value.repr(Flavor::Js),
            Flavor::Js => "undefined".to_string(),
            Flavor::Python if is_expression && !matches!(value, Value::Nil) => {
                value.repr(Flavor::Python)
            }
            Flavor::Python => return,
        };
        if self.color() {
            println!("\x1b[2m{shown}\x1b[0m");
        } else {
            println!("{shown}");
        }
    }

    // ---- commands ----

    fn command(&mut self, command: &str) -> bool {
        let (name, arg) = match command.split_once(char::is_whitespace) {
            Some((n, a)) => (n, a.trim()),
            None => (command, ""),
        };
        match (name, arg) {
            ("quit" | "exit" | "q", _) => return false,
            ("help" | "h" | "?", _) => self.help(),
            ("runtime", "") => println!(
                "the runtime is {} ({}); :runtime js|asyncio switches",
                self.kind.name(),
                self.kind.info().about
            ),
            ("runtime", name) => match PolicyKind::from_name(name) {
                Some(kind) => self.switch(kind),
                None if matches!(name, "threads" | "process") => {
                    self.failed = true;
                    println!(
                        "the `{name}` runtime is not implemented yet: looplab has js and asyncio"
                    )
                }
                None => {
                    self.failed = true;
                    println!("no runtime `{name}`: looplab has js and asyncio")
                }
            },
            ("gil" | "cores", _) => {
                self.failed = true;
                println!(
                    ":{name} is not available yet: it belongs to the threads policy, which is not implemented"
                )
            }
            ("trace", "on") => {
                self.trace = true;
                println!("tracing on: each scheduler event of the following entries is shown");
            }
            ("trace", "off") => {
                self.trace = false;
                println!("tracing off");
            }
            ("trace", _) => println!("write :trace on or :trace off"),
            ("timeline", _) => self.timeline(),
            ("queues", _) => self.queues(),
            ("step", _) => self.step(),
            ("run", _) => self.run_to_idle(),
            ("load", "") => {
                self.typing = Some(String::new());
                println!(
                    "type a program over several lines; an empty line ends it, and it is loaded, not run (then :step or :run)"
                );
            }
            ("load", file) => self.load_file(file),
            ("reset", _) => {
                let options = self.options.clone();
                let interrupt = self.interrupt.clone();
                let failed = self.failed;
                *self = Session::new(options);
                self.policy.set_interrupt(interrupt.clone());
                self.interrupt = interrupt;
                self.failed = failed;
                println!(
                    "reset: a fresh {} runtime, no variables, the clock at 0",
                    self.kind.name()
                );
            }
            _ => {
                self.failed = true;
                println!("unknown command `:{name}`; :help lists the commands");
            }
        }
        true
    }

    fn help(&self) {
        println!(
            "Type statements and expressions; they run at once under the {} runtime, and the session keeps their variables and functions.",
            self.kind.name()
        );
        println!(
            "An entry goes on over several lines while brackets are open. Ctrl-C cancels the input or a running entry; Ctrl-D leaves."
        );
        for (usage, about) in editor::COMMANDS {
            println!("  {usage:<15} {about}");
        }
    }

    /// `:runtime NAME`: a fresh policy of that kind. Functions and plain
    /// values carry over (copied); runtime objects (promises, tasks) and
    /// anything still queued do not; the clock restarts at 0.
    fn switch(&mut self, kind: PolicyKind) {
        let queues = self.policy.queues(&self.vm);
        let queued: usize = queues.queues.iter().map(|(_, jobs)| jobs.len()).sum();
        let timers = queues.timers.len();
        // The user's values, copied together so shared parts stay shared.
        let names = self.globals.names.clone();
        let values = self.policy.globals_mut().values.clone();
        let mut keep = Vec::new();
        let mut dropped = Vec::new();
        for (slot, name) in names.iter().enumerate() {
            if runtime::is_predefined(name) {
                continue;
            }
            match values.get(slot) {
                None | Some(Value::Uninit) => {}
                Some(value) => match value.deep_copy() {
                    Ok(_) => keep.push((slot, value.clone())),
                    Err(why) => dropped.push(format!("`{name}` ({why})")),
                },
            }
        }
        let copied = Value::list(keep.iter().map(|(_, v)| v.clone()).collect()).deep_copy();
        self.policy.clear_globals();
        let (vm, policy) = fresh(kind, &self.options, &self.interrupt);
        drop(std::mem::replace(&mut self.policy, policy));
        self.vm.teardown();
        runtime::flush_warnings(&mut self.vm);
        self.vm.flush();
        self.vm = vm;
        self.kind = kind;
        self.held = false;
        self.names.clear();
        self.load_empty();
        if let Ok(Value::List(list)) = copied {
            let globals = self.policy.globals_mut();
            for ((slot, _), value) in keep.iter().zip(list.borrow().iter()) {
                if let Some(place) = globals.values.get_mut(*slot) {
                    *place = value.clone();
                }
            }
        }
        println!(
            "runtime: {} ({}); {} value(s) and function(s) carried over; the clock restarts at 0",
            kind.name(),
            kind.info().about,
            keep.len()
        );
        if !dropped.is_empty() {
            println!(
                "note: not carried over (runtime objects belong to the old runtime): {}",
                dropped.join(", ")
            );
        }
        if queued + timers > 0 {
            println!(
                "note: {queued} queued job(s) and {timers} timer(s) of the old runtime were dropped"
            );
        }
    }

    /// `:load FILE`: the file becomes the next entry, loaded, not run.
    fn load_file(&mut self, file: &str) {
        match std::fs::read_to_string(file) {
            Ok(text) => self.load_program(file, text),
            Err(e) => {
                self.failed = true;
                println!("cannot read `{file}`: {e}");
            }
        }
    }

    /// A whole program (a file, or lines typed after `:load`) becomes the
    /// next entry, loaded, not run.
    fn load_program(&mut self, file: &str, text: String) {
        if text.trim().is_empty() {
            println!("(nothing to load)");
            return;
        }
        let source = SourceFile::new(file, text);
        let compiled = match driver::compile_entry(&source, &mut self.globals) {
            Ok(compiled) => compiled,
            Err(diagnostics) => {
                self.failed = true;
                eprint!(
                    "{}",
                    driver::render_all(&diagnostics, &source, self.color())
                );
                return;
            }
        };
        if !self.follow_directive(&compiled, &source) {
            self.failed = true;
            return;
        }
        self.load(compiled.main, None);
        self.held = true;
        println!(
            "loaded {file} under {}: :step runs one scheduler event, :run runs to the end",
            self.kind.name()
        );
    }

    /// `:step`: one scheduler event, and what ran and why.
    fn step(&mut self) {
        let step = self.policy.step(&mut self.vm);
        let before = self.cursor;
        self.after_step(true);
        match step {
            Step::Idle => {
                self.held = false;
                println!("(idle: nothing is queued and no timer is pending)")
            }
            Step::Ran if self.cursor == before => {
                let ready: usize = self
                    .policy
                    .queues(&self.vm)
                    .queues
                    .iter()
                    .map(|(_, jobs)| jobs.len())
                    .sum();
                println!("(the event loop starts an iteration: {ready} callback(s) ready to run)")
            }
            Step::Ran => {}
            Step::Finished(status) => {
                println!("(the runtime stopped for good, status {status}: starting a fresh one)");
                self.switch(self.kind);
                return;
            }
        }
        let queues = self.policy.queues(&self.vm);
        let mut parts: Vec<String> = queues
            .queues
            .iter()
            .filter(|(_, jobs)| !jobs.is_empty())
            .map(|(name, jobs)| format!("{name} {}", jobs.len()))
            .collect();
        if let Some((due, _)) = queues.timers.first() {
            parts.push(format!(
                "timers {} (next at {})",
                queues.timers.len(),
                ms(*due)
            ));
        }
        if parts.is_empty() {
            println!("next: nothing queued");
        } else {
            println!("next: {}", parts.join(", "));
        }
    }

    /// One line per event: virtual time, unit, what happened.
    fn describe_event(&self, event: &Event) -> String {
        views::describe_event(event, &self.names)
    }

    /// `:queues`: what is queued now, per queue, and the timers.
    fn queues(&self) {
        let queues = self.policy.queues(&self.vm);
        print!(
            "{}",
            views::queues(self.kind.name(), self.policy.now_ns(), &queues)
        );
    }

    /// `:timeline`: the last entry's units over virtual time.
    fn timeline(&self) {
        print!(
            "{}",
            views::timeline(
                self.policy.events().events(),
                &self.names,
                self.options.config.instruction_cost_ns
            )
        );
    }
}

/// A fresh VM and policy of `kind`, recording events for the views, and
/// stopping a running unit on Ctrl-C.
fn fresh(
    kind: PolicyKind,
    options: &Options,
    interrupt: &Arc<AtomicBool>,
) -> (Vm, Box<dyn Policy>) {
    let mut vm = Vm::new(kind.dialect());
    vm.set_prelude(crate::driver::prelude);
    let config = RunConfig {
        record_events: true,
        ..options.config.clone()
    };
    let mut policy = crate::driver::make_policy(kind, config);
    policy.set_interrupt(interrupt.clone());
    (vm, policy)
}

// ---- piped input ----

/// Reads entries from `input` (multi-line aware) without prompts or line
/// editing: prints only outputs, values and messages.
pub fn piped(options: Options, input: impl BufRead) -> i32 {
    let mut session = Session::new(options);
    let mut buffer = String::new();
    for line in input.lines() {
        let Ok(line) = line else { break };
        if buffer.is_empty() && line.trim_start().starts_with(':') {
            if !session.handle(&line) {
                return i32::from(session.failed);
            }
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if is_complete(&buffer) {
            session.handle(&std::mem::take(&mut buffer));
        }
    }
    if !buffer.trim().is_empty() {
        session.handle(&buffer);
    }
    // The end of the input ends a program typed after `:load`.
    session.handle("");
    let _ = std::io::stdout().flush();
    i32::from(session.failed)
}

// ---- the terminal ----

/// The history file: `$LOOPLAB_HISTORY` (empty: no history), else
/// `$XDG_DATA_HOME/looplab/history`, else `~/.local/share/looplab/history`.
pub fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LOOPLAB_HISTORY") {
        return (!path.is_empty()).then(|| PathBuf::from(path));
    }
    let data = match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".local/share"),
    };
    Some(data.join("looplab").join("history"))
}

fn interactive(options: Options) -> i32 {
    use rustyline::error::ReadlineError;
    let color = options.config.color;
    let mut session = Session::new(options);
    // Ctrl-C while an entry runs (the terminal is not in raw mode then)
    // sets a flag instead of ending the process.
    if let Err(e) =
        signal_hook::flag::register(signal_hook::consts::SIGINT, session.interrupt.clone())
    {
        eprintln!("note: Ctrl-C cannot interrupt entries ({e})");
    }
    let config = rustyline::Config::builder()
        .auto_add_history(false)
        .max_history_size(10_000)
        .and_then(|b| b.history_ignore_dups(true))
        .map(|b| b.build());
    let editor = config.and_then(rustyline::Editor::with_config);
    let mut editor: rustyline::Editor<editor::LineHelper, rustyline::history::DefaultHistory> =
        match editor {
            Ok(editor) => editor,
            Err(e) => {
                eprintln!(
                    "looplab repl: cannot use the terminal ({e}); reading without line editing"
                );
                return piped(session.options.clone(), std::io::stdin().lock());
            }
        };
    editor.set_helper(Some(editor::LineHelper {
        names: Vec::new(),
        color,
    }));
    let history = history_path();
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.load_history(path);
    }
    println!(
        "looplab {} — the {} runtime. :help for commands, Ctrl-D to leave.",
        env!("CARGO_PKG_VERSION"),
        session.kind.name()
    );
    let mut history_warned = false;
    loop {
        if let Some(helper) = editor.helper_mut() {
            helper.names = session.defined_names();
        }
        match editor.readline(&session.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Some(path) = &history
                        && let Err(e) = editor.save_history(path)
                        && !history_warned
                    {
                        history_warned = true;
                        eprintln!(
                            "note: cannot save the history to {} ({e}); set LOOPLAB_HISTORY to another file, or to nothing for none",
                            path.display()
                        );
                    }
                }
                if !session.handle(&line) {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => {
                if session.typing.take().is_some() {
                    println!("(the program being typed is dropped)");
                }
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("looplab repl: {e}");
                break;
            }
        }
    }
    0
}
