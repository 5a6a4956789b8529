//! Golden tests: every `programs/**/NAME.lab` (except `programs/bench`) runs
//! under each policy it is meant for, and its stdout, stderr and exit status
//! must match `NAME.<policy>.out` or, when all policies agree, `NAME.out`.
//! Where a JavaScript or Python twin was recorded (`NAME.node.out`,
//! `NAME.python.out`), looplab's js / asyncio stdout and exit status must
//! match the real runtime's too. `BLESS=1 cargo test` rewrites the looplab
//! expectations (never the recorded twin outputs). Conventions:
//! `programs/CONVENTIONS.md`.

use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};
use std::process::Command;

const POLICIES: &[&str] = &["js", "asyncio"];

fn main() {
    let args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut programs = Vec::new();
    collect(&root.join("programs"), &mut programs);
    programs.sort();
    if std::env::var_os("BLESS").is_some() {
        for program in &programs {
            bless(program);
        }
    }
    let mut trials = Vec::new();
    for program in programs {
        let name = program
            .strip_prefix(root)
            .unwrap_or(&program)
            .with_extension("")
            .display()
            .to_string();
        for policy in policies_of(&program) {
            let (p, n) = (program.clone(), name.clone());
            trials.push(Trial::test(format!("{n}::{policy}"), move || {
                check_golden(&p, &policy)
            }));
        }
        for (twin, recorded, policy) in [("js", "node.out", "js"), ("py", "python.out", "asyncio")]
        {
            let recorded = program.with_extension(recorded);
            if program.with_extension(twin).exists() && recorded.exists() {
                let p = program.clone();
                trials.push(Trial::test(
                    format!(
                        "{name}::{policy}-matches-{}",
                        if twin == "js" { "node" } else { "python3" }
                    ),
                    move || check_twin(&p, &recorded, policy),
                ));
            }
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "bench") {
                collect(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "lab") {
            out.push(path);
        }
    }
}

/// Header lines: `// policies: js asyncio`, `// flags: --max-steps 100`.
fn header(program: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(program).ok()?;
    text.lines()
        .take_while(|l| l.starts_with("//") || l.trim().is_empty())
        .find_map(|l| {
            l.strip_prefix("//")
                .map(str::trim)
                .and_then(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
        })
}

fn policies_of(program: &Path) -> Vec<String> {
    if let Some(list) = header(program, "policies:") {
        return list.split_whitespace().map(String::from).collect();
    }
    let text = std::fs::read_to_string(program).unwrap_or_default();
    for line in text.lines() {
        if let Some(rest) = line.trim().strip_prefix("runtime ") {
            let name = rest.trim_end_matches(';').trim();
            if POLICIES.contains(&name) {
                return vec![name.to_string()];
            }
        }
    }
    POLICIES.iter().map(|s| s.to_string()).collect()
}

struct Outcome {
    stdout: String,
    stderr: String,
    status: i32,
}

fn run(program: &Path, policy: &str) -> Result<Outcome, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let relative = program.strip_prefix(root).unwrap_or(program);
    let mut command = Command::new(env!("CARGO_BIN_EXE_looplab"));
    command.current_dir(root).arg("run").arg(relative).args([
        "--runtime",
        policy,
        "--color",
        "never",
    ]);
    if let Some(flags) = header(program, "flags:") {
        command.args(flags.split_whitespace());
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run looplab: {e}"))?;
    Ok(Outcome {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        status: output.status.code().unwrap_or(-1),
    })
}

fn format_expected(outcome: &Outcome, with_stderr: bool) -> String {
    let mut text = outcome.stdout.clone();
    if with_stderr && !outcome.stderr.is_empty() {
        text.push_str("--- stderr ---\n");
        text.push_str(&outcome.stderr);
    }
    if outcome.status != 0 {
        text.push_str(&format!("--- exit {} ---\n", outcome.status));
    }
    text
}

fn expected_path(program: &Path, policy: &str) -> PathBuf {
    let specific = program.with_extension(format!("{policy}.out"));
    if specific.exists() {
        specific
    } else {
        program.with_extension("out")
    }
}

fn check_golden(program: &Path, policy: &str) -> Result<(), Failed> {
    let actual = format_expected(&run(program, policy)?, true);
    let path = expected_path(program, policy);
    let expected = std::fs::read_to_string(&path).map_err(|_| {
        format!(
            "no expected output at {} (run `BLESS=1 cargo test` and review it)",
            path.display()
        )
    })?;
    compare(&expected, &actual, &path)
}

fn check_twin(program: &Path, recorded: &Path, policy: &str) -> Result<(), Failed> {
    let actual = format_expected(&run(program, policy)?, false);
    let expected = std::fs::read_to_string(recorded)
        .map_err(|e| format!("cannot read {}: {e}", recorded.display()))?;
    compare(&expected, &actual, recorded)
}

fn compare(expected: &str, actual: &str, path: &Path) -> Result<(), Failed> {
    if expected == actual {
        return Ok(());
    }
    let mut report = format!("output differs from {}\n", path.display());
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i).copied(), a.get(i).copied());
        if x != y {
            report.push_str(&format!(
                "  line {}: expected {:?}\n           actual   {:?}\n",
                i + 1,
                x.unwrap_or("<none>"),
                y.unwrap_or("<none>")
            ));
        }
    }
    Err(report.into())
}

/// Rewrites a program's expected outputs: one shared file when every policy
/// agrees, one file per policy otherwise.
fn bless(program: &Path) {
    let policies = policies_of(program);
    let outputs: Vec<(String, String)> = policies
        .iter()
        .filter_map(|p| {
            run(program, p)
                .ok()
                .map(|o| (p.clone(), format_expected(&o, true)))
        })
        .collect();
    let all_same = outputs.windows(2).all(|w| w[0].1 == w[1].1);
    for policy in POLICIES {
        let _ = std::fs::remove_file(program.with_extension(format!("{policy}.out")));
    }
    let _ = std::fs::remove_file(program.with_extension("out"));
    if all_same && let Some((_, text)) = outputs.first() {
        let _ = std::fs::write(program.with_extension("out"), text);
        return;
    }
    for (policy, text) in outputs {
        let _ = std::fs::write(program.with_extension(format!("{policy}.out")), text);
    }
}
