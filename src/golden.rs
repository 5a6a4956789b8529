//! Golden-output tests of `.lab` programs, shared by `looplab test` (see
//! `cli`) and the project's own suite (`tests/golden.rs`), so the two cannot
//! drift apart. This module owns: finding programs (`discover`), their
//! header comments (`Header`), which checks each program gets (`plan`),
//! expected-file naming and format (`expected_path`, `Outcome::expected_text`),
//! running one program under one policy with a step limit and a wall-clock
//! limit (`check`, `run_all`), twin checks against recorded `node` /
//! `python3` output, comparison with a line diff (`render_diff`), and
//! rewriting expected files (`bless`). The conventions are documented in
//! `programs/CONVENTIONS.md`.

use crate::diagnostic::SourceFile;
use crate::driver::{self, RunOptions};
use crate::lexer::{self, Token};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// The implemented policies, in the order tests run them.
pub const POLICIES: &[&str] = &["js", "asyncio"];
/// Instructions a test run may execute unless its `// flags:` say otherwise.
pub const DEFAULT_MAX_STEPS: u64 = 200_000_000;
/// Wall-clock time one test run may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Stack of the thread each run gets (as `looplab run` has; see `main.rs`).
const RUN_STACK: usize = 512 * 1024 * 1024;

/// Whether the environment says this is a CI run (`CI` set, and not to
/// `""`, `0` or `false`): expected files must then not be rewritten.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// A `.lab` file found by `discover`, or a directory it could not read.
pub struct Found {
    pub path: PathBuf,
    pub error: Option<String>,
}

/// Every `*.lab` file under `paths` (a path may be a single `.lab` file),
/// sorted. Hidden directories (`.git`, …) are not entered. A path that does
/// not exist, or a file that is not `.lab`, is an error; a directory that
/// cannot be read inside a tree is a `Found` with an error, so it fails.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<Found>, String> {
    let mut found = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("cannot test `{}`: {}", path.display(), io_reason(&e)))?;
        if meta.is_dir() {
            walk(path, &mut found);
        } else if is_lab(path) {
            found.push(Found {
                path: path.clone(),
                error: None,
            });
        } else {
            return Err(format!(
                "cannot test `{}`: not a `.lab` file or a directory",
                path.display()
            ));
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found.dedup_by(|a, b| a.path == b.path);
    Ok(found)
}

fn is_lab(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "lab")
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn walk(dir: &Path, out: &mut Vec<Found>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            out.push(Found {
                path: dir.to_path_buf(),
                error: Some(format!("cannot read directory: {}", io_reason(&e))),
            });
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                out.push(Found {
                    path: dir.to_path_buf(),
                    error: Some(format!("cannot list directory: {}", io_reason(&e))),
                });
                continue;
            }
        };
        let path = clean(&entry.path());
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // Symbolic links to directories are not followed (no cycles).
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            if !hidden {
                walk(&path, out);
            }
        } else if is_lab(&path) {
            out.push(Found { path, error: None });
        }
    }
}

/// `./a/b.lab` → `a/b.lab`, so names read as they were typed.
fn clean(path: &Path) -> PathBuf {
    path.strip_prefix(".").unwrap_or(path).to_path_buf()
}

/// A program's name in test names: its path without `.lab`.
pub fn display_name(program: &Path) -> String {
    clean(program)
        .with_extension("")
        .to_string_lossy()
        .replace('\\', "/")
}

/// The header comments a test reads: the `//` lines (and blank lines) that
/// open the file.
#[derive(Default, Debug, PartialEq)]
pub struct Header {
    /// `// policies: js asyncio`
    pub policies: Option<Vec<String>>,
    /// `// flags: --max-steps 100000` (split on whitespace)
    pub flags: Vec<String>,
    /// `// skip: REASON` — listed as skipped, never run.
    pub skip: Option<String>,
}

impl Header {
    pub fn parse(text: &str) -> Header {
        let mut header = Header::default();
        let lines = text
            .lines()
            .take_while(|l| l.trim_start().starts_with("//") || l.trim().is_empty());
        for line in lines {
            let Some(comment) = line.trim_start().strip_prefix("//") else {
                continue;
            };
            let comment = comment.trim();
            if let Some(list) = comment.strip_prefix("policies:") {
                header.policies = Some(list.split_whitespace().map(String::from).collect());
            } else if let Some(flags) = comment.strip_prefix("flags:") {
                header.flags = flags.split_whitespace().map(String::from).collect();
            } else if let Some(reason) = comment.strip_prefix("skip:") {
                header.skip = Some(reason.trim().to_string());
            }
        }
        header
    }
}

/// The policies a program runs under: its `// policies:` header, else the
/// runtime its `runtime X;` directive names, else all of them.
pub fn policies_of(text: &str, header: &Header) -> Result<Vec<String>, String> {
    if let Some(list) = &header.policies {
        if list.is_empty() {
            return Err("`// policies:` names no policy".into());
        }
        for (i, name) in list.iter().enumerate() {
            if list[..i].contains(name) {
                return Err(format!("`// policies:` names `{name}` twice"));
            }
            if !POLICIES.contains(&name.as_str()) {
                return Err(format!(
                    "`// policies:` names `{name}`, which is not a policy (known: {})",
                    POLICIES.join(" ")
                ));
            }
        }
        return Ok(list.clone());
    }
    Ok(match directive_runtime(text) {
        Some(name) => vec![name],
        None => POLICIES.iter().map(|p| p.to_string()).collect(),
    })
}

/// The implemented runtime a `runtime X;` directive at the top names, read
/// from the tokens (directives come before any other statement).
fn directive_runtime(text: &str) -> Option<String> {
    let tokens = lexer::lex(text);
    let mut i = 0;
    while let Some((Token::Ident(word), _)) = tokens.get(i) {
        if !matches!(word.as_str(), "runtime" | "gil" | "cores") {
            return None;
        }
        let end = i + tokens[i..].iter().position(|(t, _)| *t == Token::Semi)?;
        if word == "runtime"
            && end == i + 2
            && let Some((Token::Ident(name), _)) = tokens.get(i + 1)
            && POLICIES.contains(&name.as_str())
        {
            return Some(name.clone());
        }
        i = end + 1;
    }
    None
}

/// A twin: a real-runtime program beside a `.lab` and its recorded output.
#[derive(Clone, Debug)]
pub struct Twin {
    pub source: PathBuf,
    pub recording: PathBuf,
    /// The looplab policy that must print the recording.
    pub policy: &'static str,
    /// The real runtime (`node`, `python3`).
    pub runtime: &'static str,
}

/// The twins a `.lab` may have: (source extension, recording extension,
/// policy, real runtime).
pub const TWINS: &[(&str, &str, &str, &str)] = &[
    ("js", "node.out", "js", "node"),
    ("py", "python.out", "asyncio", "python3"),
];

/// What one test checks.
#[derive(Clone, Debug)]
pub enum Check {
    /// looplab's output under `policy` against `NAME[.policy].out`.
    Golden { policy: String },
    /// looplab's stdout and exit status against a twin's recording.
    Twin(Twin),
    /// Not run, for the reason given (listed in the output).
    Skip(String),
    /// Cannot be run (unreadable file, bad header): fails with the reason.
    Broken(String),
}

/// One test: a program and a check.
#[derive(Clone)]
pub struct Case {
    /// `path/name::js`, `path/name::js-matches-node`, or `path/name`.
    pub name: String,
    pub program: PathBuf,
    pub check: Check,
    /// All the policies the program runs under (for `bless`).
    pub program_policies: Vec<String>,
    text: String,
    options: Option<RunOptions>,
    /// Whether the program's `// flags:` set `--max-steps` itself.
    own_max_steps: bool,
}

/// Which cases to keep: policies (empty: all) and path substrings (empty:
/// all; otherwise a program's path must contain one of them).
#[derive(Default, Clone)]
pub struct Selection {
    pub policies: Vec<String>,
    pub filters: Vec<String>,
}

impl Selection {
    fn policy(&self, policy: &str) -> bool {
        self.policies.is_empty() || self.policies.iter().any(|p| p == policy)
    }
}

/// The cases, and how many the selection left out.
pub struct Plan {
    pub cases: Vec<Case>,
    pub filtered_out: usize,
}

/// Every found program yields its cases: one per policy, one per twin, or
/// one listed skip, or one failing `Broken` case when it cannot be run.
/// What a program's `// flags:` header means: the run options, and
/// whether it set `--runtime` (refused) or `--max-steps` itself.
pub struct RunFlags {
    pub options: RunOptions,
    pub sets_runtime: bool,
    pub sets_max_steps: bool,
}

/// Parses a `// flags:` header for a program, as `looplab run` would (the
/// command line passes its own parser, so the two never drift apart).
pub type FlagsParser = fn(&[String], &str) -> Result<RunFlags, String>;

pub fn plan(found: &[Found], selection: &Selection, parse_flags: FlagsParser) -> Plan {
    let mut plan = Plan {
        cases: Vec::new(),
        filtered_out: 0,
    };
    for item in found {
        let name = display_name(&item.path);
        let path_text = clean(&item.path).to_string_lossy().replace('\\', "/");
        if !selection.filters.is_empty() && !selection.filters.iter().any(|f| path_text.contains(f))
        {
            plan.filtered_out += 1;
            continue;
        }
        let broken = |reason: String| Case {
            name: name.clone(),
            program: item.path.clone(),
            check: Check::Broken(reason),
            program_policies: Vec::new(),
            text: String::new(),
            options: None,
            own_max_steps: false,
        };
        if let Some(error) = &item.error {
            plan.cases.push(broken(error.clone()));
            continue;
        }
        let text = match std::fs::read(&item.path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    plan.cases
                        .push(broken("cannot read it: not UTF-8 text".into()));
                    continue;
                }
            },
            Err(e) => {
                plan.cases
                    .push(broken(format!("cannot read it: {}", io_reason(&e))));
                continue;
            }
        };
        let header = Header::parse(&text);
        if header.skip.as_deref() == Some("") {
            plan.cases
                .push(broken("`// skip:` must give a reason".into()));
            continue;
        }
        if let Some(reason) = header.skip {
            plan.cases.push(Case {
                check: Check::Skip(reason),
                ..broken(String::new())
            });
            continue;
        }
        let policies = match policies_of(&text, &header) {
            Ok(p) => p,
            Err(e) => {
                plan.cases.push(broken(e));
                continue;
            }
        };
        let source_name = clean(&item.path).to_string_lossy().into_owned();
        let flags = match parse_flags(&header.flags, &source_name) {
            Ok(parsed) => parsed,
            Err(e) => {
                plan.cases
                    .push(broken(format!("bad `// flags:` header: {e}")));
                continue;
            }
        };
        if flags.sets_runtime {
            plan.cases.push(broken(
                "`// flags:` may not set --runtime; say `// policies: …` instead".into(),
            ));
            continue;
        }
        let case = |name: String, check: Check| Case {
            name,
            program: item.path.clone(),
            check,
            program_policies: policies.clone(),
            text: text.clone(),
            options: Some(flags.options.clone()),
            own_max_steps: flags.sets_max_steps,
        };
        for policy in &policies {
            if selection.policy(policy) {
                plan.cases.push(case(
                    format!("{name}::{policy}"),
                    Check::Golden {
                        policy: policy.clone(),
                    },
                ));
            } else {
                plan.filtered_out += 1;
            }
        }
        for &(source_ext, recording_ext, policy, runtime) in TWINS {
            let source = item.path.with_extension(source_ext);
            let recording = item.path.with_extension(recording_ext);
            if !source.exists() && !recording.exists() {
                continue;
            }
            let test = format!("{name}::{policy}-matches-{runtime}");
            if !selection.policy(policy) {
                plan.filtered_out += 1;
            } else if !recording.exists() {
                plan.cases.push(case(
                    test,
                    Check::Broken(format!(
                        "twin {} has no recorded output {}: record what `{runtime} {}` prints \
                         (stdout, then `--- exit N ---` if non-zero; for programs/, \
                         tests/twins/regen.sh does it)",
                        source.display(),
                        recording.display(),
                        source.file_name().unwrap_or_default().to_string_lossy()
                    )),
                ));
            } else if !source.exists() {
                plan.cases.push(case(
                    test,
                    Check::Broken(format!(
                        "recording {} has no twin source {} beside it",
                        recording.display(),
                        source.display()
                    )),
                ));
            } else {
                plan.cases.push(case(
                    test,
                    Check::Twin(Twin {
                        source,
                        recording,
                        policy,
                        runtime,
                    }),
                ));
            }
        }
    }
    plan
}

/// The expected-output file for a program under a policy:
/// `NAME.<policy>.out` if it exists, else `NAME.out`.
pub fn expected_path(program: &Path, policy: &str) -> PathBuf {
    let specific = program.with_extension(format!("{policy}.out"));
    if specific.exists() {
        specific
    } else {
        program.with_extension("out")
    }
}

/// What a run printed and its exit status.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub status: i32,
}

impl Outcome {
    /// The expected-file format: stdout verbatim, then `--- stderr ---` and
    /// stderr if any (when `with_stderr`), then `--- exit N ---` if non-zero.
    pub fn expected_text(&self, with_stderr: bool) -> String {
        let mut text = self.stdout.clone();
        if with_stderr && !self.stderr.is_empty() {
            text.push_str("--- stderr ---\n");
            text.push_str(&self.stderr);
        }
        if self.status != 0 {
            text.push_str(&format!("--- exit {} ---\n", self.status));
        }
        text
    }
}

/// The limits every test run has.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Instructions (0: none), unless the program's `// flags:` set `--max-steps`.
    pub max_steps: u64,
    /// Wall-clock time of one run.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: DEFAULT_MAX_STEPS,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// How a test came out.
#[derive(Clone, Debug)]
pub enum Verdict {
    Pass,
    /// No expected file yet (`expected` is where it would go).
    New {
        expected: PathBuf,
    },
    /// Failed: why, and the expected and actual text when they differ.
    Fail {
        reason: String,
        diff: Option<(String, String)>,
    },
    Skip(String),
}

/// A case's verdict, with the output in expected-file format when the run
/// finished normally (what `bless` would write).
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub verdict: Verdict,
    pub actual: Option<String>,
}

impl CaseResult {
    fn fail(reason: String) -> CaseResult {
        CaseResult {
            verdict: Verdict::Fail { reason, diff: None },
            actual: None,
        }
    }
}

/// Runs one case (on its own big-stack thread, within the limits).
pub fn check(case: &Case, limits: &Limits) -> CaseResult {
    let policy = match &case.check {
        Check::Skip(reason) => {
            return CaseResult {
                verdict: Verdict::Skip(reason.clone()),
                actual: None,
            };
        }
        Check::Broken(reason) => return CaseResult::fail(reason.clone()),
        Check::Golden { policy } => policy.as_str(),
        Check::Twin(twin) => twin.policy,
    };
    let outcome = match run(case, policy, limits) {
        Ok(outcome) => outcome,
        Err(reason) => return CaseResult::fail(reason),
    };
    if !case.own_max_steps && limits.max_steps != 0 && hit_step_limit(&outcome, limits.max_steps) {
        return CaseResult::fail(format!(
            "stopped by the step limit: {} instructions (looplab test's --max-steps; \
             a program that needs more can say `// flags: --max-steps N`)\n{}",
            limits.max_steps,
            indent(&outcome.stderr)
        ));
    }
    match &case.check {
        Check::Twin(twin) => {
            let actual = outcome.expected_text(false);
            let result = match std::fs::read_to_string(&twin.recording) {
                Ok(expected) => compare(&expected, &actual, &twin.recording),
                Err(e) => Verdict::Fail {
                    reason: format!(
                        "cannot read {}: {}",
                        twin.recording.display(),
                        io_reason(&e)
                    ),
                    diff: None,
                },
            };
            CaseResult {
                verdict: result,
                actual: None,
            }
        }
        _ => {
            let actual = outcome.expected_text(true);
            let path = expected_path(&case.program, policy);
            let verdict = match std::fs::read_to_string(&path) {
                Ok(expected) => compare(&expected, &actual, &path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Verdict::New { expected: path }
                }
                Err(e) => Verdict::Fail {
                    reason: format!("cannot read {}: {}", path.display(), io_reason(&e)),
                    diff: None,
                },
            };
            CaseResult {
                verdict,
                actual: Some(actual),
            }
        }
    }
}

/// The text the VM's step-limit error starts with (see `runtime`).
fn hit_step_limit(outcome: &Outcome, max_steps: u64) -> bool {
    outcome.status != 0
        && outcome.stderr.contains(&format!(
            "stopped after {max_steps} instructions: the step limit"
        ))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

fn compare(expected: &str, actual: &str, path: &Path) -> Verdict {
    if expected == actual {
        Verdict::Pass
    } else {
        Verdict::Fail {
            reason: format!("output differs from {}", path.display()),
            diff: Some((expected.to_string(), actual.to_string())),
        }
    }
}

/// Runs a case's program under `policy` on a fresh thread with a big stack
/// (fresh per-thread runtime state, too), waiting at most `limits.timeout`.
/// A run that times out is abandoned: its thread cannot be stopped, so the
/// caller should end the process with `std::process::exit` when done.
fn run(case: &Case, policy: &str, limits: &Limits) -> Result<Outcome, String> {
    let Some(options) = &case.options else {
        return Err("internal error: no run options".into());
    };
    let mut options = options.clone();
    options.runtime = driver::policy_kind(policy);
    if !case.own_max_steps {
        options.max_steps = limits.max_steps;
    }
    let name = clean(&case.program).to_string_lossy().into_owned();
    let text = case.text.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("looplab test {name}"))
        .stack_size(RUN_STACK)
        .spawn(move || {
            let source = SourceFile::new(name, text);
            let result = driver::run_source(&source, &options);
            let _ = tx.send(Outcome {
                stdout: result.stdout,
                stderr: result.stderr,
                status: result.status,
            });
            crate::memory::release_cached();
        })
        .map_err(|e| format!("cannot start a thread to run it: {e}"))?;
    match rx.recv_timeout(limits.timeout) {
        Ok(outcome) => Ok(outcome),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "timed out: still running after {} of wall-clock time (looplab test's --timeout limit)",
            show_duration(limits.timeout)
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err("looplab crashed while running it (a looplab bug: please report it)".into())
        }
    }
}

fn show_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Runs every case on `jobs` worker threads; calls `report` for each result
/// in case order (as soon as it and all before it are done).
pub fn run_all(
    cases: &[Case],
    limits: &Limits,
    jobs: usize,
    mut report: impl FnMut(&Case, &CaseResult),
) -> Vec<CaseResult> {
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, CaseResult)>();
    let mut results: Vec<Option<CaseResult>> = vec![None; cases.len()];
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(cases.len()) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    if tx.send((i, check(case, limits))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut printed = 0;
        for (i, result) in rx {
            results[i] = Some(result);
            while let Some(Some(done)) = results.get(printed) {
                report(&cases[printed], done);
                printed += 1;
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| CaseResult::fail("internal error: not run".into())))
        .collect()
}

/// A file `bless` wrote or removed.
#[derive(Debug, PartialEq)]
pub enum Change {
    Created(PathBuf),
    Updated(PathBuf),
    Removed(PathBuf),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Created(p) => write!(f, "created {}", p.display()),
            Change::Updated(p) => write!(f, "updated {}", p.display()),
            Change::Removed(p) => write!(f, "removed {}", p.display()),
        }
    }
}

/// Whether `bless` writes this case's output: a golden case whose run
/// finished (also when it already passes).
pub fn blessable(case: &Case, result: &CaseResult) -> bool {
    matches!(case.check, Check::Golden { .. }) && result.actual.is_some()
}

/// Rewrites the expected files of every program whose golden cases all
/// finished: one `NAME.out` when all its policies print the same, else one
/// `NAME.<policy>.out` per policy; stale files go. A policy left out of the
/// selection keeps its current expectation. Twin recordings are never
/// written. Returns what changed.
pub fn bless(cases: &[Case], results: &[CaseResult]) -> Result<Vec<Change>, String> {
    let mut programs: BTreeMap<&Path, Vec<(&Case, &CaseResult)>> = BTreeMap::new();
    for (case, result) in cases.iter().zip(results) {
        if matches!(case.check, Check::Golden { .. }) {
            programs
                .entry(case.program.as_path())
                .or_default()
                .push((case, result));
        }
    }
    let mut changes = Vec::new();
    for (program, runs) in programs {
        if runs.iter().any(|(c, r)| !blessable(c, r)) {
            continue;
        }
        let mut outputs: Vec<(String, String)> = Vec::new();
        for policy in &runs[0].0.program_policies {
            let run = runs
                .iter()
                .find(|(c, _)| matches!(&c.check, Check::Golden { policy: p } if p == policy));
            let text = match run {
                Some((_, result)) => result.actual.clone(),
                None => std::fs::read_to_string(expected_path(program, policy)).ok(),
            };
            if let Some(text) = text {
                outputs.push((policy.clone(), text));
            }
        }
        let all_same = outputs.windows(2).all(|w| w[0].1 == w[1].1);
        let all_known = outputs.len() == runs[0].0.program_policies.len();
        let mut wanted: Vec<(PathBuf, String)> = Vec::new();
        if all_same && all_known && !outputs.is_empty() {
            wanted.push((program.with_extension("out"), outputs[0].1.clone()));
        } else {
            for (policy, text) in outputs {
                wanted.push((program.with_extension(format!("{policy}.out")), text));
            }
        }
        let candidates = std::iter::once(program.with_extension("out")).chain(
            POLICIES
                .iter()
                .map(|p| program.with_extension(format!("{p}.out"))),
        );
        for path in candidates {
            let old = std::fs::read_to_string(&path).ok();
            match wanted.iter().find(|(p, _)| *p == path) {
                Some((_, text)) if old.as_deref() == Some(text.as_str()) => {}
                Some((_, text)) => {
                    std::fs::write(&path, text)
                        .map_err(|e| format!("cannot write {}: {}", path.display(), e))?;
                    changes.push(if old.is_some() {
                        Change::Updated(path)
                    } else {
                        Change::Created(path)
                    });
                }
                None if path.exists() => {
                    std::fs::remove_file(&path)
                        .map_err(|e| format!("cannot remove {}: {}", path.display(), e))?;
                    changes.push(Change::Removed(path));
                }
                None => {}
            }
        }
    }
    Ok(changes)
}

/// Why a case did not pass, for a report: the reason and, where outputs
/// differ, a line diff. `bless_hint` names the command that records
/// expected output (`looplab test --bless`, `BLESS=1 cargo test`).
pub fn describe(result: &CaseResult, color: bool, bless_hint: &str) -> String {
    match &result.verdict {
        Verdict::Pass => String::new(),
        Verdict::Skip(reason) => format!("skipped: {reason}\n"),
        Verdict::New { expected } => {
            let mut text = format!(
                "no expected output {} yet; it printed:\n",
                expected.display()
            );
            text.push_str(&indent(result.actual.as_deref().unwrap_or("")));
            text.push_str(&format!(
                "(if that is right, record it with `{bless_hint}`)\n"
            ));
            text
        }
        Verdict::Fail { reason, diff } => {
            let mut text = reason.clone();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            if let Some((expected, actual)) = diff {
                text.push_str(&render_diff(expected, actual, color));
                text.push_str(&format!(
                    "(if the new output is right, record it with `{bless_hint}`)\n"
                ));
            }
            text
        }
    }
}

enum Op<'a> {
    Same(&'a str),
    Del(&'a str),
    Add(&'a str),
}

/// A line diff of expected (`-`) and actual (`+`) with line numbers and two
/// lines of context, headed by the line of the first difference.
pub fn render_diff(expected: &str, actual: &str, color: bool) -> String {
    let e: Vec<&str> = expected.split_inclusive('\n').collect();
    let a: Vec<&str> = actual.split_inclusive('\n').collect();
    let ops = diff_lines(&e, &a);
    let changed: Vec<bool> = ops.iter().map(|op| !matches!(op, Op::Same(_))).collect();
    let first = ops
        .iter()
        .take_while(|op| matches!(op, Op::Same(_)))
        .count()
        + 1;
    let mut out = format!("first difference at line {first} (- expected, + actual):\n");
    let (mut line_e, mut line_a) = (0usize, 0usize);
    let mut skipped = false;
    for (i, op) in ops.iter().enumerate() {
        let near = (i.saturating_sub(2)..=(i + 2).min(ops.len() - 1)).any(|j| changed[j]);
        let (mark, number, text, paint) = match op {
            Op::Same(t) => {
                line_e += 1;
                line_a += 1;
                (' ', line_e, *t, "")
            }
            Op::Del(t) => {
                line_e += 1;
                ('-', line_e, *t, "\x1b[31m")
            }
            Op::Add(t) => {
                line_a += 1;
                ('+', line_a, *t, "\x1b[32m")
            }
        };
        if !near {
            if !skipped {
                out.push_str("   ...\n");
                skipped = true;
            }
            continue;
        }
        skipped = false;
        let shown = match text.strip_suffix('\n') {
            Some(t) => t
                .strip_suffix('\r')
                .map_or(t.to_string(), |t| format!("{t}\\r")),
            None => format!("{text} (no newline at end)"),
        };
        let line = format!("{mark}{number:>5} | {shown}");
        if color && !paint.is_empty() {
            out.push_str(&format!("{paint}{line}\x1b[0m\n"));
        } else {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// Longest-common-subsequence line diff (after trimming the common prefix
/// and suffix); a very large middle is shown as all removed, all added.
fn diff_lines<'a>(e: &[&'a str], a: &[&'a str]) -> Vec<Op<'a>> {
    let prefix = e.iter().zip(a).take_while(|(x, y)| x == y).count();
    let suffix = e[prefix..]
        .iter()
        .rev()
        .zip(a[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (em, am) = (&e[prefix..e.len() - suffix], &a[prefix..a.len() - suffix]);
    let mut ops: Vec<Op<'a>> = e[..prefix].iter().map(|l| Op::Same(l)).collect();
    if em.len().saturating_mul(am.len()) > 4_000_000 {
        ops.extend(em.iter().map(|l| Op::Del(l)));
        ops.extend(am.iter().map(|l| Op::Add(l)));
    } else {
        // lcs[i][j]: common lines of em[i..] and am[j..].
        let width = am.len() + 1;
        let mut lcs = vec![0u32; (em.len() + 1) * width];
        for i in (0..em.len()).rev() {
            for j in (0..am.len()).rev() {
                lcs[i * width + j] = if em[i] == am[j] {
                    lcs[(i + 1) * width + j + 1] + 1
                } else {
                    lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < em.len() || j < am.len() {
            if i < em.len() && j < am.len() && em[i] == am[j] {
                ops.push(Op::Same(em[i]));
                i += 1;
                j += 1;
            } else if i < em.len()
                && (j == am.len() || lcs[(i + 1) * width + j] >= lcs[i * width + j + 1])
            {
                ops.push(Op::Del(em[i]));
                i += 1;
            } else {
                ops.push(Op::Add(am[j]));
                j += 1;
            }
        }
    }
    ops.extend(e[e.len() - suffix..].iter().map(|l| Op::Same(l)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_reads_leading_comments_only() {
        let h = Header::parse(
            "// a program\n// policies: js\n\n// flags: --max-steps 5\nprint(1);\n// skip: no\n",
        );
        assert_eq!(h.policies, Some(vec!["js".to_string()]));
        assert_eq!(h.flags, vec!["--max-steps", "5"]);
        assert_eq!(h.skip, None);
    }

    #[test]
    fn runtime_directive_selects_one_policy() {
        let h = Header::default();
        assert_eq!(
            policies_of("// x\nruntime asyncio;\nprint(1);", &h),
            Ok(vec!["asyncio".to_string()])
        );
        assert_eq!(
            policies_of("gil on;\nruntime js;\n", &h),
            Ok(vec!["js".to_string()])
        );
        assert_eq!(
            policies_of("print(\"runtime js;\");", &h).map(|p| p.len()),
            Ok(2)
        );
        assert!(policies_of("", &Header::parse("// policies: js threads")).is_err());
        assert!(policies_of("", &Header::parse("// policies: js js")).is_err());
    }

    #[test]
    fn diff_marks_the_first_difference() {
        let d = render_diff("a\nb\nc\n", "a\nx\nc\n", false);
        assert_eq!(
            d,
            "first difference at line 2 (- expected, + actual):\n     1 | a\n-    2 | b\n+    2 | x\n     3 | c\n"
        );
        let d = render_diff("a\n", "a", false);
        assert!(d.contains("+    1 | a (no newline at end)"), "{d}");
    }
}
