//! `looplab check` and `looplab disasm`: exit status 0 and their output on a
//! good file; status 2 and a report naming the error (on stderr, nothing on
//! stdout) on a file that does not compile or cannot be read. `run` is
//! covered by the golden tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn looplab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_looplab"))
        .current_dir(root())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("looplab runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch file holding `source`, unique to this test.
fn scratch(name: &str, source: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("looplab-subcommands-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(name);
    std::fs::write(&path, source).expect("write scratch file");
    path
}

const GOOD: &str = "programs/twins/sleep0_ping_pong.lab";
const SYNTAX_ERROR: &str = "programs/errors/syntax_missing_semicolon.lab";
const UNDEFINED_NAME: &str = "programs/errors/undefined_variable.lab";

#[test]
fn check_accepts_a_good_file() {
    let out = looplab(&["check", GOOD, "--color", "never"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{GOOD}: ok\n"));
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn check_rejects_a_syntax_error_with_status_2() {
    let out = looplab(&["check", SYNTAX_ERROR, "--color", "never"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "", "nothing on stdout, no `ok`");
    let err = text(&out.stderr);
    assert!(err.contains("missing `;`"), "stderr: {err}");
    assert!(
        err.contains(&format!("{SYNTAX_ERROR}:3:10")),
        "stderr: {err}"
    );
}

#[test]
fn check_rejects_an_undefined_name_with_status_2() {
    let out = looplab(&["check", UNDEFINED_NAME, "--color", "never"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    let err = text(&out.stderr);
    assert!(err.contains("undefined variable `countr`"), "stderr: {err}");
}

#[test]
fn check_rejects_an_unimplemented_runtime_directive() {
    let path = scratch("threads.lab", "runtime threads;\nprint(1);\n");
    let out = looplab(&[
        "check",
        path.to_str().expect("utf-8 path"),
        "--color",
        "never",
    ]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2), "stdout: {}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "");
    let err = text(&out.stderr);
    assert!(
        err.contains("the `threads` runtime is not implemented yet"),
        "stderr: {err}"
    );
}

#[test]
fn check_reports_a_missing_file_with_status_2() {
    let out = looplab(&["check", "programs/no_such_program.lab"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot read `programs/no_such_program.lab`: no such file"),
        "stderr: {err}"
    );
}

#[test]
fn disasm_lists_the_bytecode_of_a_good_file() {
    let out = looplab(&["disasm", GOOD]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let listing = text(&out.stdout);
    // One section per function, main first, then the instructions with
    // their source lines and the names they refer to.
    assert!(
        listing.starts_with("== async fn <main> (arity 0"),
        "listing: {listing}"
    );
    assert!(
        listing.contains("== async fn player (arity 1"),
        "listing: {listing}"
    );
    assert!(
        listing.contains("DefineGlobal(2)    ; player"),
        "listing: {listing}"
    );
    assert!(listing.contains("Await"), "listing: {listing}");
    assert!(listing.contains("Return"), "listing: {listing}");
}

#[test]
fn disasm_rejects_a_syntax_error_with_status_2() {
    let out = looplab(&["disasm", SYNTAX_ERROR]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "", "no listing for a broken file");
    let err = text(&out.stderr);
    assert!(err.contains("missing `;`"), "stderr: {err}");
}

#[test]
fn disasm_rejects_an_undefined_name_with_status_2() {
    let out = looplab(&["disasm", UNDEFINED_NAME]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    let err = text(&out.stderr);
    assert!(err.contains("undefined variable `countr`"), "stderr: {err}");
}

#[test]
fn disasm_reports_a_missing_file_with_status_2() {
    let out = looplab(&["disasm", "programs/no_such_program.lab"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no such file"));
}
