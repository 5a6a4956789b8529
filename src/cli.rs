//! The command line: `looplab run | check | disasm | repl`, parsed with clap.

use crate::compiler::Globals;
use crate::diagnostic::SourceFile;
use crate::driver::{self, RunOptions};
use crate::runtime::PolicyKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Read, Write};
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
}

#[derive(Args, Clone)]
pub struct RunArgs {
    /// The program: a `.lab` file, or `-` for standard input.
    pub file: String,
    /// The runtime policy (overrides a `runtime` directive; default js).
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeChoice>,
    /// Stop after this many VM instructions (0: no limit).
    #[arg(long, default_value_t = 1_000_000_000)]
    pub max_steps: u64,
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

#[derive(ValueEnum, Clone, Copy, PartialEq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        }
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
        None => {
            write_stderr("looplab: give a command; try `looplab run FILE` or `looplab --help`\n");
            2
        }
    }
}

fn run(args: &RunArgs) -> i32 {
    let runtime = match args.runtime {
        None => None,
        Some(RuntimeChoice::Js) => Some(PolicyKind::Js),
        Some(RuntimeChoice::Asyncio) => Some(PolicyKind::Asyncio),
        Some(RuntimeChoice::Threads) => return not_implemented("threads"),
        Some(RuntimeChoice::Process) => return not_implemented("process"),
    };
    let source = match read_source(&args.file) {
        Ok(s) => s,
        Err(message) => {
            write_stderr(&format!("{message}\n"));
            return 2;
        }
    };
    let mut options = RunOptions {
        runtime,
        max_steps: args.max_steps,
        instruction_cost_ns: args.instr_cost,
        ..RunOptions::default()
    };
    options.config.color = args.color.enabled();
    options.config.time_limit_ns = args.max_time;
    options.config.wake_latency_ns = args.wake_latency;
    options.config.real_time = args.real_time;
    let result = driver::run_source(&source, &options);
    let written = write_stdout(result.stdout.as_bytes());
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
