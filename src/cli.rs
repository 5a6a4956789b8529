//! The command line: `looplab run | check | disasm | repl`, parsed with clap.

use crate::compiler::Globals;
use crate::diagnostic::SourceFile;
use crate::driver::{self, RunOptions};
use crate::runtime::PolicyKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Read};
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
}

#[derive(Args, Clone)]
pub struct RunArgs {
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
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(ValueEnum, Clone, Copy)]
pub enum RuntimeChoice {
    Js,
    Asyncio,
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
        None => {
            eprintln!("looplab: give a command; try `looplab run FILE` or `looplab --help`");
            2
        }
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
    let mut options = RunOptions {
        runtime: args.runtime.map(|r| match r {
            RuntimeChoice::Js => PolicyKind::Js,
            RuntimeChoice::Asyncio => PolicyKind::Asyncio,
        }),
        max_steps: args.max_steps,
        instruction_cost_ns: args.instr_cost,
        ..RunOptions::default()
    };
    options.config.color = args.color.enabled();
    options.config.time_limit_ns = args.max_time;
    options.config.wake_latency_ns = args.wake_latency;
    options.config.real_time = args.real_time;
    let result = driver::run_source(&source, &options);
    use std::io::Write;
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
