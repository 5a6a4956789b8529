//! The command line: `looplab run | check | disasm | test`, parsed with clap.

use crate::compiler::Globals;
use crate::diagnostic::SourceFile;
use crate::driver::{self, RunOptions};
use crate::golden;
use crate::runtime::PolicyKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Read, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::rc::Rc;

/// A source file (or standard input) larger than this is refused.
pub const MAX_SOURCE_BYTES: u64 = 64 * 1024 * 1024;

/// The exit status when standard output is closed early (`looplab … | head`):
/// looplab stops quietly, with the status of a program killed by SIGPIPE.
pub const CLOSED_PIPE_STATUS: i32 = 141;

const FILE_HELP: &str = "\
FILE is a looplab program (NAME.lab), or `-` to read the program from standard input.
Source files must be UTF-8 text (a byte-order mark is skipped) of at most 64 MiB.";

const DURATION_HELP: &str = "\
Durations (D) take a unit: 10us, 1ms, 1.5s, 2m, 1h (and ns); a bare number is milliseconds.";

const RUNTIME_HELP: &str = "\
Runtimes (--runtime NAME, else a `runtime NAME;` directive at the top of the file, else js):
  js        Node.js's event loop: nextTick queue, microtasks, timers, promises
  asyncio   CPython's asyncio.run: one ready queue, a timer heap, tasks, gather
  threads   not implemented yet
  process   not implemented yet";

const COLOR_HELP: &str = "\
--color auto|always|never colours error reports (auto: when standard error is a terminal
and NO_COLOR is not set).";

const EXIT_HELP: &str = "\
Exit status:
  0    success
  1    runtime error, uncaught exception, unhandled rejection, deadlock or a limit
       reached; also output that could not be written (e.g. a full disk)
  2    usage error or compile error (nothing ran)
  130  interrupted (Ctrl-C)
  141  standard output closed early (as by `| head`): looplab stops quietly";

const EXAMPLES_HELP: &str = "\
Examples:
  looplab run programs/seeds/timeout_vs_promise_cba.lab --runtime asyncio
  echo 'print(\"hi\");' | looplab run - --max-time 1s";

fn long_help() -> String {
    [
        FILE_HELP,
        DURATION_HELP,
        RUNTIME_HELP,
        COLOR_HELP,
        EXIT_HELP,
        EXAMPLES_HELP,
    ]
    .join("\n\n")
}

#[derive(Parser)]
#[command(
    name = "looplab",
    version,
    about = "Run one program under the JavaScript event loop or Python's asyncio, and see what each prints.",
    after_help = long_help()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a program (FILE may be `-` for standard input).
    #[command(after_help = long_help())]
    Run(RunArgs),
    /// Parse and compile only: report errors, run nothing.
    Check {
        file: String,
        #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
        color: ColorChoice,
    },
    /// Show the bytecode a program compiles to.
    Disasm { file: String },
    /// Check programs against their expected output (golden tests).
    Test(TestArgs),
    /// Explore interactively, entry by entry (also `looplab` alone on a terminal).
    Repl(ReplArgs),
}

/// `looplab repl`: see the README's REPL section.
#[derive(Args, Clone)]
pub struct ReplArgs {
    /// The runtime policy to start with (`:runtime` switches).
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeChoice>,
    /// Instructions one entry may run (0: no limit): the runaway guard.
    #[arg(long, default_value_t = crate::repl::DEFAULT_MAX_STEPS)]
    pub max_steps: u64,
    /// Virtual time charged per executed instruction.
    #[arg(long, default_value = "10ns", value_parser = parse_duration_ns)]
    pub instr_cost: u64,
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Args, Clone)]
pub struct RunArgs {
    /// The program: a `.lab` file, or `-` for standard input.
    pub file: String,
    /// The runtime policy (overrides a `runtime` directive; default js).
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeChoice>,
    /// Stop after this many VM instructions (0: no limit).
    #[arg(long, default_value_t = driver::DEFAULT_MAX_STEPS)]
    pub max_steps: u64,
    /// Stop after this many scheduler events: jobs, callbacks, task steps,
    /// timers firing (0: no limit).
    #[arg(long, default_value_t = crate::runtime::DEFAULT_MAX_EVENTS)]
    pub max_events: u64,
    /// The heap budget: past it, a MemoryError (e.g. 512MB, 4GB; 0: none).
    #[arg(long, default_value = "2GB", value_parser = parse_bytes)]
    pub max_memory: u64,
    /// Stop when virtual time passes this duration (0: no limit).
    #[arg(long, default_value = "24h", value_parser = parse_duration_ns)]
    pub max_time: u64,
    /// Virtual time charged per executed instruction.
    #[arg(long, default_value = "10ns", value_parser = parse_duration_ns)]
    pub instr_cost: u64,
    /// asyncio: how late an idle loop wakes after its next timer is due.
    #[arg(long, default_value = "50us", value_parser = parse_duration_ns)]
    pub wake_latency: u64,
    /// Pace the virtual clock against the wall clock (sleeps really wait).
    #[arg(long)]
    pub real_time: bool,
    /// Colour in error reports.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// `looplab test`: see the README and `programs/CONVENTIONS.md`.
#[derive(Args)]
pub struct TestArgs {
    /// `.lab` files or directories to test (default: the current directory).
    pub paths: Vec<PathBuf>,
    /// Only programs whose path contains TEXT (repeatable: any may match).
    #[arg(long, value_name = "TEXT")]
    pub filter: Vec<String>,
    /// Only this policy.
    #[arg(long, value_enum, conflicts_with = "policies")]
    pub runtime: Option<RuntimeChoice>,
    /// Only these policies (comma-separated, e.g. `js,asyncio`).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub policies: Vec<RuntimeChoice>,
    /// Write or rewrite the expected files from what the programs print.
    #[arg(long)]
    pub bless: bool,
    /// Instructions per run, for programs whose `// flags:` do not set
    /// `--max-steps` (0: no limit).
    #[arg(long, default_value_t = golden::DEFAULT_MAX_STEPS)]
    pub max_steps: u64,
    /// Wall-clock time one run may take before it fails as timed out.
    #[arg(long, default_value = "60s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
    /// Programs run at once (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<NonZeroUsize>,
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(ValueEnum, Clone, Copy)]
pub enum RuntimeChoice {
    /// Node.js's event loop
    Js,
    /// CPython's asyncio.run
    Asyncio,
    /// not implemented yet
    Threads,
    /// not implemented yet
    Process,
}

impl RuntimeChoice {
    /// The policy, or `None` for one not implemented yet.
    pub fn kind(self) -> Option<PolicyKind> {
        PolicyKind::from_name(self.name())
    }

    pub fn name(self) -> &'static str {
        match self {
            RuntimeChoice::Js => "js",
            RuntimeChoice::Asyncio => "asyncio",
            RuntimeChoice::Threads => "threads",
            RuntimeChoice::Process => "process",
        }
    }
}

#[derive(ValueEnum, Clone, Copy, PartialEq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// For output on stderr (diagnostics).
    fn enabled(self) -> bool {
        self.enabled_for(std::io::stderr().is_terminal())
    }

    fn enabled_for(self, terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    match parse_duration_ns(text)? {
        0 => Err("the timeout must be more than 0".into()),
        ns => Ok(std::time::Duration::from_nanos(ns)),
    }
}

/// Parses `10us`, `1ms`, `1.5s`, `2m`, `1h`, `10ns` or a bare number of milliseconds.
pub fn parse_duration_ns(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 10us, 1ms, 1.5s)"))?;
    let scale = match unit {
        "ns" => 1.0,
        "us" => 1e3,
        "" | "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return Err(format!("unknown unit `{unit}` (use ns, us, ms, s, m or h)")),
    };
    let ns = value * scale;
    if !ns.is_finite() || !(0.0..=1e18).contains(&ns) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(ns.round() as u64)
}

/// Parses a size: `512MB`, `2GB`, `1.5G`, `100K`, or a bare number of bytes
/// (binary units: 1 MB is 2^20 bytes).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (try 512MB or 2GB)"))?;
    let scale = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("unknown unit `{unit}` (use KB, MB or GB)")),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || !(0.0..=1e18).contains(&bytes) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(bytes.round() as u64)
}

fn read_source(file: &str) -> Result<Rc<SourceFile>, String> {
    if file == "-" {
        let bytes = read_bounded(std::io::stdin().lock())
            .map_err(|e| format!("error: cannot read standard input: {}", describe_io(&e)))?;
        return decode_source("<stdin>", "standard input", bytes);
    }
    let bytes = std::fs::File::open(file)
        .and_then(read_bounded)
        .map_err(|e| format!("error: cannot read `{file}`: {}", describe_io(&e)))?;
    decode_source(file, &format!("`{file}`"), bytes)
}

/// Reads at most `MAX_SOURCE_BYTES` and one byte more (to tell "too
/// big"); stops after the first 64 KiB if they are plainly not text, so
/// `/dev/urandom` or `/dev/zero` are refused at once.
fn read_bounded(mut reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    (&mut reader).take(64 * 1024).read_to_end(&mut bytes)?;
    if not_text_at(&bytes).is_some() {
        return Ok(bytes);
    }
    reader
        .take(MAX_SOURCE_BYTES + 1 - bytes.len() as u64)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Where `bytes` stop being text (invalid UTF-8 or a NUL byte), if they do;
/// a character cut off at the very end does not count.
fn not_text_at(bytes: &[u8]) -> Option<(usize, &'static str)> {
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) if e.error_len().is_some() => {
            let at = e.valid_up_to();
            return match bytes[..at].iter().position(|&b| b == 0) {
                Some(nul) => Some((nul, "a NUL byte")),
                None => Some((at, "invalid UTF-8")),
            };
        }
        Err(e) => e.valid_up_to(),
    };
    bytes[..valid]
        .iter()
        .position(|&b| b == 0)
        .map(|nul| (nul, "a NUL byte"))
}

/// Source bytes to text: UTF-8 without NUL bytes, at most
/// `MAX_SOURCE_BYTES`; a leading byte-order mark is skipped.
fn decode_source(name: &str, what: &str, bytes: Vec<u8>) -> Result<Rc<SourceFile>, String> {
    if let Some((at, why)) = not_text_at(&bytes) {
        return Err(format!(
            "error: {what} is not a UTF-8 text file ({why} at byte offset {at})"
        ));
    }
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(format!(
            "error: {what} is larger than {} MiB, the most looplab reads as a program",
            MAX_SOURCE_BYTES / (1024 * 1024)
        ));
    }
    let mut text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "error: {what} is not a UTF-8 text file (invalid UTF-8 at byte offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(SourceFile::new(name, text))
}

/// Writes `bytes` to standard output and flushes; the error, if any.
fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Writes to standard error; nothing can be done if that fails.
fn write_stderr(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// The exit status once output was written: a closed pipe ends quietly
/// (`CLOSED_PIPE_STATUS`); any other write error is reported (status 1).
fn after_output(written: std::io::Result<()>, status: i32) -> i32 {
    match written {
        Ok(()) => status,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => CLOSED_PIPE_STATUS,
        Err(e) => {
            write_stderr(&format!(
                "error: cannot write output: {}\n",
                describe_io(&e)
            ));
            if status == 0 { 1 } else { status }
        }
    }
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::StorageFull => "no space left on the device".into(),
        _ if e.raw_os_error() == Some(21) => "it is a directory".into(),
        _ => e.to_string(),
    }
}

/// Prints what clap has to say (help, version, usage error) with the same
/// output-error handling as every command; returns the exit status.
pub fn report_clap(e: &clap::Error) -> i32 {
    let styled = e.render();
    if e.use_stderr() {
        let text = if std::io::stderr().is_terminal() {
            styled.ansi().to_string()
        } else {
            styled.to_string()
        };
        write_stderr(&text);
        e.exit_code()
    } else {
        let text = if std::io::stdout().is_terminal() {
            styled.ansi().to_string()
        } else {
            styled.to_string()
        };
        after_output(write_stdout(text.as_bytes()), e.exit_code())
    }
}

/// Runs the command line; returns the process exit status.
pub fn main_with(cli: Cli) -> i32 {
    match cli.command {
        Some(Command::Run(args)) => run(&args),
        Some(Command::Check { file, color }) => check(&file, color.enabled()),
        Some(Command::Disasm { file }) => disasm(&file),
        Some(Command::Test(args)) => test(&args),
        Some(Command::Repl(args)) => repl(&args),
        None if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() => {
            repl(&ReplArgs {
                runtime: None,
                max_steps: crate::repl::DEFAULT_MAX_STEPS,
                instr_cost: 10,
                color: ColorChoice::Auto,
            })
        }
        None => {
            write_stderr("looplab: give a command; try `looplab run FILE` or `looplab --help`\n");
            2
        }
    }
}

/// The run options `looplab run`'s flags mean (`color`: colour diagnostics).
pub fn run_options(args: &RunArgs, color: bool) -> RunOptions {
    let mut options = RunOptions {
        runtime: args.runtime.and_then(RuntimeChoice::kind),
        max_steps: args.max_steps,
        instruction_cost_ns: args.instr_cost,
        ..RunOptions::default()
    };
    options.config.color = color;
    options.config.time_limit_ns = args.max_time;
    options.config.event_limit = args.max_events;
    options.config.memory_limit = args.max_memory;
    options.config.wake_latency_ns = args.wake_latency;
    options.config.real_time = args.real_time;
    options
}

/// Parses `looplab run`'s flags for `file` with the command line's own
/// parser (a `// flags:` header). Also says whether `--max-steps` was given.
pub fn parse_run_flags(flags: &[String], file: &str) -> Result<(RunArgs, bool), String> {
    let argv = ["looplab", "run"]
        .into_iter()
        .map(String::from)
        .chain(flags.iter().cloned())
        .chain(["--".to_string(), file.to_string()]);
    let matches = Cli::command().try_get_matches_from(argv).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("invalid flags");
        first.strip_prefix("error: ").unwrap_or(first).to_string()
    })?;
    let given = matches
        .subcommand_matches("run")
        .is_some_and(|run| run.value_source("max_steps") == Some(ValueSource::CommandLine));
    match Cli::from_arg_matches(&matches).map_err(|e| e.to_string())? {
        Cli {
            command: Some(Command::Run(args)),
        } => Ok((args, given)),
        _ => Err("not flags of `looplab run`".into()),
    }
}

/// A golden program's `// flags:` header, parsed as `looplab run`'s flags.
pub fn header_flags(flags: &[String], file: &str) -> Result<golden::RunFlags, String> {
    let (args, sets_max_steps) = parse_run_flags(flags, file)?;
    Ok(golden::RunFlags {
        options: run_options(&args, false),
        sets_runtime: args.runtime.is_some(),
        sets_max_steps,
    })
}

fn run(args: &RunArgs) -> i32 {
    if let Some(runtime) = args.runtime.filter(|r| r.kind().is_none()) {
        return not_implemented(runtime.name());
    }
    let source = match read_source(&args.file) {
        Ok(s) => s,
        Err(message) => {
            write_stderr(&format!("{message}\n"));
            return 2;
        }
    };
    let mut options = run_options(args, args.color.enabled());
    options.stream = true;
    options.exits_after = true;
    let result = driver::run_source(&source, &options);
    // Streamed output failed during the run (it stopped there), or what is
    // left of it fails now.
    let written = match result.output_error {
        Some(e) => Err(e),
        None => write_stdout(result.stdout.as_bytes()),
    };
    write_stderr(&result.stderr);
    after_output(written, result.status)
}

fn not_implemented(runtime: &str) -> i32 {
    write_stderr(&format!(
        "error: {}\n",
        driver::runtime_not_implemented(runtime)
    ));
    2
}

fn repl(args: &ReplArgs) -> i32 {
    let runtime = match args.runtime.map(|r| (r, r.kind())) {
        None => PolicyKind::Js,
        Some((_, Some(kind))) => kind,
        Some((r, None)) => return not_implemented(r.name()),
    };
    let mut options = crate::repl::Options {
        runtime,
        max_steps: args.max_steps,
        ..crate::repl::Options::default()
    };
    options.config.instruction_cost_ns = args.instr_cost;
    options.config.color = args.color.enabled_for(std::io::stdout().is_terminal());
    crate::repl::main(options)
}

fn check(file: &str, color: bool) -> i32 {
    let source = match read_source(file) {
        Ok(s) => s,
        Err(message) => {
            write_stderr(&format!("{message}\n"));
            return 2;
        }
    };
    match driver::compile_source(&source, &mut Globals::default()) {
        Ok(compiled) => match driver::directive_runtime(&compiled) {
            Ok(_) => after_output(write_stdout(format!("{file}: ok\n").as_bytes()), 0),
            Err(d) => {
                write_stderr(&crate::diagnostic::render(&d, &source, color));
                2
            }
        },
        Err(diagnostics) => {
            write_stderr(&driver::render_all(&diagnostics, &source, color));
            2
        }
    }
}

fn disasm(file: &str) -> i32 {
    let source = match read_source(file) {
        Ok(s) => s,
        Err(message) => {
            write_stderr(&format!("{message}\n"));
            return 2;
        }
    };
    let mut globals = Globals::default();
    match driver::compile_source(&source, &mut globals) {
        Ok(compiled) => {
            let text = crate::bytecode::disassemble(&compiled.main, &globals.names);
            after_output(write_stdout(text.as_bytes()), 0)
        }
        Err(diagnostics) => {
            write_stderr(&driver::render_all(&diagnostics, &source, false));
            2
        }
    }
}

/// Prints to stdout, ignoring errors (a closed pipe must not panic).
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

macro_rules! outln {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `looplab test`: runs the programs' golden checks and prints a report
/// like `cargo test`'s. 0: all passed; 1: some failed; 2: usage error.
fn test(args: &TestArgs) -> i32 {
    if args.bless && golden::in_ci() {
        eprintln!(
            "looplab test: refusing to --bless because CI is set: expected files are \
             reviewed and committed, never rewritten by CI"
        );
        return 2;
    }
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let found = match golden::discover(&paths) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("looplab test: {e}");
            return 2;
        }
    };
    let policies = match args.runtime {
        Some(runtime) => vec![runtime],
        None => args.policies.clone(),
    };
    if let Some(runtime) = policies.iter().find(|r| r.kind().is_none()) {
        return not_implemented(runtime.name());
    }
    let selection = golden::Selection {
        policies: policies.iter().map(|p| p.name().to_string()).collect(),
        filters: args.filter.clone(),
    };
    let plan = golden::plan(&found, &selection, header_flags);
    let limits = golden::Limits {
        max_steps: args.max_steps,
        timeout: args.timeout,
    };
    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
        NonZeroUsize::get,
    );
    let color = args.color.enabled_for(std::io::stdout().is_terminal());
    let cases = &plan.cases;
    let count = cases.len();
    outln!("running {count} test{}", if count == 1 { "" } else { "s" });
    let line = |case: &golden::Case, label: &Label| {
        let text = match label {
            Label::Ok => "ok".to_string(),
            Label::Failed => paint("FAILED", "\x1b[31m", color),
            Label::New => paint("new", "\x1b[33m", color),
            Label::Blessed => paint("blessed", "\x1b[32m", color),
            Label::Skipped(reason) => format!("{} ({reason})", paint("skipped", "\x1b[33m", color)),
        };
        outln!("test {} ... {text}", case.name);
        let _ = std::io::stdout().flush();
    };
    // Without --bless, lines appear as results come in (in case order).
    let results = golden::run_all(cases, &limits, jobs, |case, result| {
        if !args.bless {
            line(case, &label(result, false));
        }
    });
    let mut changes = Vec::new();
    let mut labels: Vec<Label> = results.iter().map(|r| label(r, false)).collect();
    if args.bless {
        changes = match golden::bless(cases, &results) {
            Ok(changes) => changes,
            Err(e) => {
                eprintln!("looplab test: {e}");
                return 1;
            }
        };
        for (i, (case, result)) in cases.iter().zip(&results).enumerate() {
            let whole_program_blessable = cases
                .iter()
                .zip(&results)
                .filter(|(c, _)| c.program == case.program)
                .all(|(c, r)| {
                    !matches!(c.check, golden::Check::Golden { .. }) || golden::blessable(c, r)
                });
            let blessed = whole_program_blessable && golden::blessable(case, result);
            labels[i] = label(result, blessed);
            line(case, &labels[i]);
        }
    }
    let failed: Vec<usize> = (0..count)
        .filter(|&i| matches!(labels[i], Label::Failed | Label::New))
        .collect();
    if !failed.is_empty() {
        outln!("\nfailures:\n");
        for &i in &failed {
            outln!("---- {} ----", cases[i].name);
            out!(
                "{}",
                golden::describe(&results[i], color, "looplab test --bless")
            );
            outln!();
        }
        outln!("failures:");
        for &i in &failed {
            outln!("    {}", cases[i].name);
        }
    }
    if !changes.is_empty() {
        outln!("\nblessed:");
        for change in &changes {
            outln!("    {change}");
        }
    }
    let passed = labels.iter().filter(|l| matches!(l, Label::Ok)).count();
    let blessed = labels
        .iter()
        .filter(|l| matches!(l, Label::Blessed))
        .count();
    let skipped = labels
        .iter()
        .filter(|l| matches!(l, Label::Skipped(_)))
        .count();
    let mut summary = format!(
        "test result: {}. {passed} passed; {} failed",
        if failed.is_empty() {
            paint("ok", "\x1b[32m", color)
        } else {
            paint("FAILED", "\x1b[31m", color)
        },
        failed.len()
    );
    for (n, what) in [
        (blessed, "blessed"),
        (skipped, "skipped"),
        (plan.filtered_out, "filtered out"),
    ] {
        if n > 0 {
            summary.push_str(&format!("; {n} {what}"));
        }
    }
    outln!("\n{summary}");
    i32::from(!failed.is_empty())
}

/// How one test line ends.
enum Label {
    Ok,
    Failed,
    New,
    Blessed,
    Skipped(String),
}

fn label(result: &golden::CaseResult, blessed: bool) -> Label {
    match &result.verdict {
        golden::Verdict::Pass => Label::Ok,
        golden::Verdict::Skip(reason) => Label::Skipped(reason.clone()),
        _ if blessed => Label::Blessed,
        golden::Verdict::New { .. } => Label::New,
        golden::Verdict::Fail { .. } => Label::Failed,
    }
}

fn paint(text: &str, colour: &str, enabled: bool) -> String {
    if enabled {
        format!("{colour}{text}\x1b[0m")
    } else {
        text.to_string()
    }
}
