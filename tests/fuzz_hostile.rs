//! Hostile-input fuzzing on the stable toolchain: programs made by mutating
//! the project's own programs (`programs/**/*.lab`) at the token level —
//! tokens deleted, duplicated, swapped, replaced by other tokens, runs of
//! tokens spliced in from another program, brackets left open, numbers made
//! huge — then compiled and run under each policy with small limits. Every
//! input must end (no hang past the limits), without a Rust panic, and give
//! the same bytes and status when run twice (no nondeterminism).
//!
//! A bounded campaign runs in `cargo test`: the first 300 inputs of a fixed
//! seed, so CI is deterministic. A longer one runs with
//! `LOOPLAB_FUZZ_SECONDS=600 cargo test --release --test fuzz_hostile --
//! --nocapture` (inputs until the time is up), and `LOOPLAB_FUZZ_SEED=N`
//! picks another sequence. A failing input is written to
//! `target/fuzz-findings/` and printed, to be turned into a regression test
//! in `tests/robustness*.rs`; the input being tried is always in
//! `target/fuzz-findings/current.lab` (for a run that hangs the process).
//!
//! Found by it and fixed: a syntax error inside blocks nested 15 or more
//! deep (`try { { try { { … ) … }`) made the parser's error recovery take
//! time exponential in the depth (12 levels: 0.3 s; 20: minutes); see
//! `tests/robustness.rs`, `a_syntax_error_under_deep_nesting_…`.

mod fuzz_common;
use fuzz_common::Rng;
use looplab::diagnostic::SourceFile;
use looplab::driver::{RunOptions, run_source};
use looplab::lexer::lex;
use looplab::runtime::PolicyKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Xorshift: a small deterministic generator (the same seed, the same inputs).
fn seeds() -> Vec<String> {
    let mut files = Vec::new();
    collect(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("programs"),
        &mut files,
    );
    files.sort();
    files
        .iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "bench"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "lab") {
            out.push(path);
        }
    }
}

/// The source text of each token of `text`.
fn pieces(text: &str) -> Vec<String> {
    lex(text)
        .into_iter()
        .map(|(_, span)| text[span.start..span.end].to_string())
        .collect()
}

const EXTRA: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ";",
    ",",
    "await",
    "spawn",
    "async fn",
    "fn",
    "return",
    "throw",
    "while true",
    "for i in 0..",
    "9223372036854775807",
    "1e308",
    "-",
    "/",
    "%",
    "0",
    "nil",
    "\"\"",
    "\"x\"",
    "sleep(0)",
    "work(1h)",
    "set_timeout",
    "promise",
    "gather",
    "try",
    "catch e",
    "finally",
    "`${",
    "}`",
    "let",
    "=",
    "==",
    ".",
    "..",
    "&&",
    "!",
    "1000000000000",
];

/// One mutated program.
fn mutate(rng: &mut Rng, seeds: &[Vec<String>]) -> String {
    let mut tokens = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let len = tokens.len().max(1);
        let at = rng.below(len);
        match rng.below(7) {
            0 if !tokens.is_empty() => {
                tokens.remove(at.min(tokens.len() - 1));
            }
            1 if !tokens.is_empty() => {
                let t = tokens[at.min(tokens.len() - 1)].clone();
                tokens.insert(at, t);
            }
            2 if tokens.len() > 1 => {
                let other = rng.below(tokens.len());
                let at = at.min(tokens.len() - 1);
                tokens.swap(at, other);
            }
            3 => {
                let at = at.min(tokens.len());
                tokens.insert(at, EXTRA[rng.below(EXTRA.len())].to_string());
            }
            4 => {
                let donor = &seeds[rng.below(seeds.len())];
                if !donor.is_empty() {
                    let from = rng.below(donor.len());
                    let to = (from + 1 + rng.below(12)).min(donor.len());
                    for (k, t) in donor[from..to].iter().enumerate() {
                        let at = (at + k).min(tokens.len());
                        tokens.insert(at, t.clone());
                    }
                }
            }
            5 => {
                let t = EXTRA[rng.below(EXTRA.len())].to_string();
                if at < tokens.len() {
                    tokens[at] = t;
                } else {
                    tokens.push(t);
                }
            }
            _ => {
                // Repeat a run (deep nesting, long chains).
                if !tokens.is_empty() {
                    let from = at.min(tokens.len() - 1);
                    let run: Vec<String> = tokens[from..(from + 3).min(tokens.len())].to_vec();
                    for _ in 0..rng.below(40) {
                        for t in run.iter().rev() {
                            tokens.insert(from, t.clone());
                        }
                    }
                }
            }
        }
    }
    tokens.join(" ")
}

/// Runs `text` under `policy` on a big-stack thread, with small limits.
fn run(text: &str, policy: PolicyKind) -> Result<(String, String, i32), String> {
    let text = text.to_string();
    let handle = std::thread::Builder::new()
        .stack_size(512 * 1024 * 1024)
        .spawn(move || {
            let mut options = RunOptions {
                runtime: Some(policy),
                max_steps: 300_000,
                ..RunOptions::default()
            };
            options.config.time_limit_ns = 60_000_000_000;
            options.config.event_limit = 50_000;
            options.config.memory_limit = 512 << 20;
            let source = SourceFile::new("fuzz.lab", text);
            let result = run_source(&source, &options);
            (result.stdout, result.stderr, result.status)
        })
        .map_err(|e| e.to_string())?;
    handle.join().map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    })
}

#[test]
fn mutated_programs_end_cleanly_and_deterministically() {
    let (deadline, seed) = fuzz_common::settings(0x5eed_1ab5);
    let seeds: Vec<Vec<String>> = seeds().iter().map(|s| pieces(s)).collect();
    assert!(seeds.len() > 50, "the seed programs are there");
    let mut rng = Rng(seed | 1);
    let mut tried = 0;
    while deadline.map_or(tried < 300, |d| Instant::now() < d) {
        let input = mutate(&mut rng, &seeds);
        // The input being tried, for when a run hangs the process.
        let _ = std::fs::create_dir_all(fuzz_common::findings_dir());
        let _ = std::fs::write(fuzz_common::findings_dir().join("current.lab"), &input);
        for policy in [PolicyKind::Js, PolicyKind::Asyncio] {
            let started = Instant::now();
            let first = run(&input, policy)
                .unwrap_or_else(|p| panic!("{}", fuzz_common::record("finding", &input, &p)));
            // A hang detector, not a benchmark: the limits stop any run far
            // sooner on any machine.
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{}",
                fuzz_common::record("finding", &input, "took over 30 s")
            );
            let second = run(&input, policy)
                .unwrap_or_else(|p| panic!("{}", fuzz_common::record("finding", &input, &p)));
            assert!(
                first == second,
                "{}",
                fuzz_common::record("finding", &input, "two runs differ")
            );
            assert!(
                matches!(first.2, 0..=2 | 130),
                "{}",
                fuzz_common::record("finding", &input, &format!("exit status {}", first.2))
            );
        }
        tried += 1;
    }
    assert!(tried > 0);
    eprintln!("fuzz_hostile: {tried} mutated programs, each run twice under js and asyncio");
}
