//! The command line itself: help that teaches, and the same message for a
//! runtime that is not implemented yet whether it is asked for by flag or
//! by directive.

use std::process::{Command, Output, Stdio};

fn looplab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_looplab"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run looplab")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const NOT_IMPLEMENTED: &str =
    "the `threads` runtime is not implemented yet (looplab implements js and asyncio so far)";

fn assert_teaches(help: &str) {
    for needle in [
        // FILE and stdin
        "FILE is a looplab program",
        "`-` to read the program from standard input",
        // durations and units
        "10us, 1ms, 1.5s, 2m, 1h",
        "a bare number is milliseconds",
        // runtimes, one line each
        "  js        Node.js's event loop",
        "  asyncio   CPython's asyncio.run",
        "  threads   not implemented yet",
        "  process   not implemented yet",
        // colour
        "--color auto|always|never",
        // exit statuses
        "  0    success",
        "  1    runtime error, uncaught exception",
        "  2    usage error or compile error",
        "  130  interrupted",
        // examples
        "Examples:\n  looplab run programs/seeds/timeout_vs_promise_cba.lab --runtime asyncio\n  echo",
    ] {
        assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
    }
}

#[test]
fn top_level_help_teaches_file_durations_runtimes_color_exit_status_and_examples() {
    let out = looplab(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert_teaches(&text(&out.stdout));
}

#[test]
fn run_help_teaches_the_same() {
    let out = looplab(&["run", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert_teaches(&help);
    assert!(help.contains("--max-time <MAX_TIME>"), "{help}");
}

#[test]
fn runtime_threads_flag_says_not_implemented_yet() {
    let out = looplab(&["run", "-", "--runtime", "threads"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), format!("error: {NOT_IMPLEMENTED}\n"));
}

#[test]
fn runtime_threads_directive_says_the_same() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("cli_threads_directive.lab");
    std::fs::write(&path, "runtime threads;\nprint(1);\n").expect("write");
    for command in ["run", "check"] {
        let out = looplab(&[command, path.to_str().unwrap(), "--color", "never"]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with(&format!("Error: {NOT_IMPLEMENTED}\n")),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn an_unknown_runtime_is_a_usage_error() {
    let out = looplab(&["run", "-", "--runtime", "tokio"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("invalid value 'tokio'"), "{stderr}");
}

#[test]
fn a_bad_duration_says_which_units_exist() {
    let out = looplab(&["run", "-", "--max-time", "5min"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unknown unit `min`"), "{stderr}");
}

#[test]
fn help_onto_a_full_disk_reports_the_write_error() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = Command::new(env!("CARGO_BIN_EXE_looplab"))
        .arg("--help")
        .stdout(full)
        .output()
        .expect("run looplab");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: cannot write output: no space left on the device\n"
    );
}

#[test]
fn a_usage_error_exits_2() {
    let out = looplab(&["run", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unexpected argument '--bogus'"));
}

/// `looplab run` leaves a run's objects to the operating system when the
/// process ends, unless collecting them could print something: asyncio's
/// reports made on collection ("never retrieved", "never awaited",
/// "destroyed but it is pending") still come out, as they do in process.
/// Every program whose expected asyncio output has one is run through the
/// command line and must print exactly that.
#[test]
fn reports_made_on_collection_come_out_of_looplab_run() {
    let reports = [
        "was never retrieved",
        "was never awaited",
        "destroyed but it is pending",
    ];
    let mut checked = Vec::new();
    let mut folders = vec![std::path::PathBuf::from("programs")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("programs/ is readable") {
            let path = entry.expect("an entry of programs/").path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "lab") {
                continue;
            }
            let own = path.with_extension("asyncio.out");
            let expected_file = if own.exists() {
                own
            } else {
                path.with_extension("out")
            };
            let Ok(expected) = std::fs::read_to_string(&expected_file) else {
                continue;
            };
            if !reports.iter().any(|r| expected.contains(r)) {
                continue;
            }
            let source = std::fs::read_to_string(&path).expect("a readable program");
            let flags: Vec<&str> = source
                .lines()
                .filter_map(|l| l.strip_prefix("// flags:"))
                .flat_map(str::split_whitespace)
                .collect();
            let file = path.to_str().expect("a UTF-8 path");
            let mut args = vec!["run", "--runtime", "asyncio"];
            args.extend(&flags);
            args.push(file);
            let out = looplab(&args);
            let mut shown = text(&out.stdout);
            if !out.stderr.is_empty() {
                shown.push_str("--- stderr ---\n");
                shown.push_str(&text(&out.stderr));
            }
            let status = out.status.code().expect("an exit status");
            if status != 0 {
                shown.push_str(&format!("--- exit {status} ---\n"));
            }
            assert_eq!(shown, expected, "looplab run {file}");
            checked.push(file.to_string());
        }
    }
    assert!(checked.len() >= 8, "only {checked:?} print a report");
}
