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

#[derive(Parser)]
#[command(
    name = "looplab",
    version,
    about = "Run one program under the JavaScript event loop or Python's asyncio, and see what each prints."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a program (FILE may be `-` for standard input).
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
}

#[derive(Args, Clone)]
pub struct RunArgs {
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
    Js,
    Asyncio,
}

impl RuntimeChoice {
    pub fn kind(self) -> PolicyKind {
        match self {
            RuntimeChoice::Js => PolicyKind::Js,
            RuntimeChoice::Asyncio => PolicyKind::Asyncio,
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
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("error: cannot read standard input: {e}"))?;
        return Ok(SourceFile::new("<stdin>", text));
    }
    match std::fs::read(file) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok(SourceFile::new(file, text)),
            Err(_) => Err(format!("error: `{file}` is not UTF-8 text")),
        },
        Err(e) => Err(format!("error: cannot read `{file}`: {}", describe_io(&e))),
    }
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ if e.raw_os_error() == Some(21) => "it is a directory".into(),
        _ => e.to_string(),
    }
}

/// Runs the command line; returns the process exit status.
pub fn main_with(cli: Cli) -> i32 {
    match cli.command {
        Some(Command::Run(args)) => run(&args),
        Some(Command::Check { file, color }) => check(&file, color.enabled()),
        Some(Command::Disasm { file }) => disasm(&file),
        Some(Command::Test(args)) => test(&args),
        None => {
            eprintln!("looplab: give a command; try `looplab run FILE` or `looplab --help`");
            2
        }
    }
}

/// The run options `looplab run`'s flags mean (`color`: colour diagnostics).
pub fn run_options(args: &RunArgs, color: bool) -> RunOptions {
    let mut options = RunOptions {
        runtime: args.runtime.map(RuntimeChoice::kind),
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

fn run(args: &RunArgs) -> i32 {
    let source = match read_source(&args.file) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("{message}");
            return 2;
        }
    };
    let mut options = run_options(args, args.color.enabled());
    options.stream = true;
    let result = driver::run_source(&source, &options);
    let _ = std::io::stdout().write_all(result.stdout.as_bytes());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(result.stderr.as_bytes());
    result.status
}

fn check(file: &str, color: bool) -> i32 {
    let source = match read_source(file) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("{message}");
            return 2;
        }
    };
    match driver::compile_source(&source, &mut Globals::default()) {
        Ok(compiled) => match driver::directive_runtime(&compiled) {
            Ok(_) => {
                println!("{file}: ok");
                0
            }
            Err(d) => {
                eprint!("{}", crate::diagnostic::render(&d, &source, color));
                2
            }
        },
        Err(diagnostics) => {
            eprint!("{}", driver::render_all(&diagnostics, &source, color));
            2
        }
    }
}

fn disasm(file: &str) -> i32 {
    let source = match read_source(file) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("{message}");
            return 2;
        }
    };
    let mut globals = Globals::default();
    match driver::compile_source(&source, &mut globals) {
        Ok(compiled) => {
            print!(
                "{}",
                crate::bytecode::disassemble(&compiled.main, &globals.names)
            );
            0
        }
        Err(diagnostics) => {
            eprint!("{}", driver::render_all(&diagnostics, &source, false));
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
    let selection = golden::Selection {
        policies: policies
            .iter()
            .map(|p| p.kind().name().to_string())
            .collect(),
        filters: args.filter.clone(),
    };
    let plan = golden::plan(&found, &selection);
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
