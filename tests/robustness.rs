//! Front-end robustness: each test is named after what it attacks (huge,
//! deep or malformed input, hostile files, broken output streams) and checks
//! the exit status, the message and a generous wall-time bound (a hang
//! detector, not a benchmark: debug builds on a shared machine).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const HANG: Duration = Duration::from_secs(20);

fn looplab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_looplab"))
}

/// A scratch file under the target directory, unique per test.
fn scratch(name: &str, contents: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("robustness");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("scratch file");
    path
}

/// Runs looplab with `args`, failing the test if it takes longer than `HANG`.
fn timed(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let output = looplab()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run looplab");
    let took = start.elapsed();
    assert!(took < HANG, "looplab {args:?} took {took:?}");
    (output, took)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn else_if_chain(arms: usize) -> String {
    let mut s = String::from("let x = 5;\nif x == 0 { print(0); }\n");
    for i in 1..arms {
        s.push_str(&format!("else if x == {i} {{ print({i}); }}\n"));
    }
    s.push_str("else { print(-1); }\n");
    s
}

#[test]
fn else_if_chain_of_6000_arms_compiles_in_linear_time() {
    let path = scratch("else_if_6000.lab", else_if_chain(6000).as_bytes());
    let (out, _) = timed(&["run", path.to_str().unwrap()]);
    assert_eq!(text(&out.stdout), "5\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn did_you_mean_between_equally_close_names_is_the_same_every_run() {
    let mut source = String::new();
    for name in ["total_b", "total_d", "total_a", "total_c", "total_e"] {
        source.push_str(&format!("let {name} = 1;\n"));
    }
    source.push_str("print(total_);\n");
    let path = scratch("tie.lab", source.as_bytes());
    for _ in 0..8 {
        let (out, _) = timed(&["check", path.to_str().unwrap(), "--color", "never"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("did you mean `total_a`?"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn ten_thousand_bad_tokens_on_one_line_give_twenty_short_reports() {
    let source = format!("let x = {};\n", vec!["@"; 10_000].join(" "));
    let path = scratch("bad_tokens.lab", source.as_bytes());
    let (out, _) = timed(&["check", path.to_str().unwrap(), "--color", "never"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("Error: syntax error").count(), 20);
    assert!(stderr.contains("… and 9980 more errors"), "{stderr}");
    assert!(stderr.len() < 40_000, "{} bytes of stderr", stderr.len());
}

#[test]
fn an_error_deep_in_a_very_long_line_shows_a_window_of_it() {
    let source = format!("let x = 1{} + @;\n", " + 1".repeat(100_000));
    let path = scratch("long_line.lab", source.as_bytes());
    let (out, _) = timed(&["check", path.to_str().unwrap(), "--color", "never"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the problem is at column 400013"),
        "{stderr}"
    );
    assert!(stderr.len() < 2_000, "{stderr}");
}
