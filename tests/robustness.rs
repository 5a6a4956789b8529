//! Front-end robustness: each test is named after what it attacks (huge,
//! deep or malformed input, hostile files, broken output streams) and checks
//! the exit status, the message and a generous wall-time bound (a hang
//! detector, not a benchmark: debug builds on a shared machine).

use std::io::Read;
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
    let source = format!("let x = 1{} + @;\n", " + 1".repeat(50_000));
    let path = scratch("long_line.lab", source.as_bytes());
    let (out, _) = timed(&["check", path.to_str().unwrap(), "--color", "never"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the problem is at column 200013"),
        "{stderr}"
    );
    assert!(stderr.len() < 2_000, "{stderr}");
}

fn refused(path: &str, message: &str) {
    let (out, _) = timed(&["run", path]);
    assert_eq!(out.status.code(), Some(2), "{path}");
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    assert!(stderr.contains(message), "{path}: {stderr}");
}

#[test]
fn dev_zero_is_refused_at_once_not_read_until_memory_runs_out() {
    refused(
        "/dev/zero",
        "error: `/dev/zero` is not a UTF-8 text file (a NUL byte at byte offset 0)",
    );
}

#[test]
fn dev_urandom_is_refused_as_not_text() {
    refused(
        "/dev/urandom",
        "error: `/dev/urandom` is not a UTF-8 text file",
    );
}

#[test]
fn a_source_over_64_mib_is_refused() {
    let mut source = b"// ".to_vec();
    source.resize(64 * 1024 * 1024 + 1, b'x');
    let path = scratch("too_big.lab", &source);
    refused(
        path.to_str().unwrap(),
        "is larger than 64 MiB, the most looplab reads as a program",
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_latin1_file_is_refused_with_the_offset_of_the_bad_byte() {
    let path = scratch("latin1.lab", b"print(\"caf\xe9\");\n");
    refused(
        path.to_str().unwrap(),
        "is not a UTF-8 text file (invalid UTF-8 at byte offset 10)",
    );
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let path = scratch("bom.lab", "\u{feff}print(\"bom\");\n".as_bytes());
    let (out, _) = timed(&["run", path.to_str().unwrap()]);
    assert_eq!(text(&out.stdout), "bom\n");
    assert_eq!(out.status.code(), Some(0));
}

/// Runs looplab with stdout a pipe that is closed after the first line.
fn closed_after_one_line(args: &[&str]) -> Output {
    let start = Instant::now();
    let mut child = looplab()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn looplab");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 16];
    let _ = stdout.read(&mut first);
    drop(stdout);
    let output = child.wait_with_output().expect("wait");
    assert!(start.elapsed() < HANG);
    output
}

#[test]
fn disasm_into_a_pipe_closed_early_ends_quietly() {
    let path = scratch("else_if_2000.lab", else_if_chain(2000).as_bytes());
    let out = closed_after_one_line(&["disasm", path.to_str().unwrap()]);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(141));
}

#[test]
fn run_into_a_pipe_closed_early_ends_quietly() {
    let path = scratch("many_lines.lab", b"for i in 0..200000 { print(i); }\n");
    let out = closed_after_one_line(&["run", path.to_str().unwrap()]);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(141));
}

/// Runs looplab with stdout on `/dev/full` (every write fails: disk full).
fn into_full_disk(args: &[&str]) -> Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    looplab()
        .args(args)
        .stdin(Stdio::null())
        .stdout(full)
        .output()
        .expect("run looplab")
}

#[test]
fn check_onto_a_full_disk_reports_the_write_error() {
    let path = scratch("ok.lab", b"print(1);\n");
    for command in ["check", "disasm", "run"] {
        let out = into_full_disk(&[command, path.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains("error: cannot write output: no space left on the device"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn a_flat_file_of_20000_statements_compiles_in_linear_time() {
    let mut source = String::new();
    for i in 0..20_000 {
        source.push_str(&format!("let v{i} = {i} + {i} * 2;\n"));
    }
    source.push_str("print(v19999);\n");
    let path = scratch("flat_20000.lab", source.as_bytes());
    let (out, _) = timed(&["run", path.to_str().unwrap()]);
    assert_eq!(text(&out.stdout), "59997\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_directive_inside_a_block_or_function_is_an_error_not_ignored() {
    for (name, source) in [
        ("directive_block.lab", "{ runtime asyncio; }\nprint(1);\n"),
        ("directive_fn.lab", "fn f() { runtime bogus; }\nf();\n"),
    ] {
        let path = scratch(name, source.as_bytes());
        let (out, _) = timed(&["run", path.to_str().unwrap(), "--color", "never"]);
        assert_eq!(out.status.code(), Some(2), "{source}");
        assert_eq!(text(&out.stdout), "");
        assert!(
            text(&out.stderr).contains("directive is inside a block or function"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_local_let_fn_calling_itself_says_why_and_suggests_fn() {
    let source = "fn outer() {\n    let f = fn(n) { if n < 1 { return 0; } return f(n - 1); };\n    return f(3);\n}\nprint(outer());\n";
    let path = scratch("let_recursion.lab", source.as_bytes());
    let (out, _) = timed(&["run", path.to_str().unwrap(), "--color", "never"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`f` is used in its own initialiser"),
        "{stderr}"
    );
    assert!(stderr.contains("write `fn f(…) { … }`"), "{stderr}");
    assert!(!stderr.contains("declare it first"), "{stderr}");
}

#[test]
fn an_unclosed_template_literal_ends_at_its_line_and_later_errors_are_reported() {
    // As node and python3 report an unterminated string: the literal ends
    // at the end of its line, and the file goes on being checked.
    for (name, literal) in [
        ("template_unclosed", "`total ${n} items"),
        ("template_unclosed_interp", "`total ${n + "),
        ("template_unclosed_nested", "`a ${`b ${fn() { `c"),
    ] {
        let source =
            format!("let n = 1;\nprint({literal});\nprint(n);\nlet x = 3 +;\nprint(n @ 2);\n");
        let path = scratch(&format!("{name}.lab"), source.as_bytes());
        let (out, _) = timed(&["check", path.to_str().unwrap(), "--color", "never"]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("this template literal is not closed"),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(":2:7 ]"), "{name}: {stderr}");
        // The errors on lines 4 and 5 are found.
        assert!(stderr.contains(":4:12 ]"), "{name}: {stderr}");
        assert!(
            stderr.contains("unexpected character `@`"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn a_file_with_one_habit_gives_one_error() {
    for (name, source, title) in [
        (
            "habit_const.lab",
            "const x = 1;\nprint(x);\n",
            "`const` is JavaScript",
        ),
        (
            "habit_def.lab",
            "def f(a) {\n    return a;\n}\nprint(f(1));\n",
            "`def` is Python",
        ),
        (
            "habit_arrow.lab",
            "let f = (a) => a + 1;\nprint(f(1));\n",
            "`=>` is JavaScript",
        ),
        (
            "habit_log.lab",
            "console.log(1);\nconsole.log(2);\n",
            "`console.log` is JavaScript",
        ),
    ] {
        let path = scratch(name, source.as_bytes());
        let (out, _) = timed(&["run", path.to_str().unwrap(), "--color", "never"]);
        assert_eq!(out.status.code(), Some(2), "{source}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.matches("Error:").count(), 1, "{stderr}");
        assert!(stderr.contains(title), "{stderr}");
        assert!(stderr.contains("did you mean"), "{stderr}");
        assert!(!stderr.contains("missing `;`"), "{stderr}");
    }
}

#[test]
fn an_else_if_chain_of_60000_arms_is_refused_not_a_stack_overflow() {
    let path = scratch("else_if_60000.lab", else_if_chain(60_000).as_bytes());
    let (out, _) = timed(&["check", path.to_str().unwrap(), "--color", "never"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("more than 50000 `else if` arms in one chain"),
        "{stderr}"
    );
}

#[test]
fn a_million_prefix_minuses_are_refused_not_a_stack_overflow() {
    let source = format!("let x = {}1;\n", "-".repeat(1_000_000));
    let path = scratch("minuses.lab", source.as_bytes());
    let (out, _) = timed(&["check", path.to_str().unwrap(), "--color", "never"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("more than 200 prefix operators in a row"),
        "{stderr}"
    );
}

#[test]
fn a_chain_of_60000_additions_is_refused_not_a_stack_overflow() {
    let source = format!("let x = 1{};\nprint(x);\n", " + 1".repeat(60_000));
    let path = scratch("additions.lab", source.as_bytes());
    let (out, _) = timed(&["check", path.to_str().unwrap(), "--color", "never"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("more than 50000 levels of nesting here"),
        "{stderr}"
    );
}

/// A hang detector for the parser's error recovery: generous for a debug
/// build on a loaded machine, where each of these takes milliseconds (the
/// exponential recovery this guards against took minutes at depth 20).
const NESTED_PARSE: Duration = Duration::from_secs(5);

/// Checks `source` and returns stderr, failing past `NESTED_PARSE`.
fn check_nested(name: &str, source: &str) -> String {
    let path = scratch(&format!("{name}.lab"), source.as_bytes());
    let (out, took) = timed(&["check", path.to_str().unwrap(), "--color", "never"]);
    assert!(took < NESTED_PARSE, "{name}: took {took:?}");
    assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
    text(&out.stderr)
}

#[test]
fn a_syntax_error_under_deep_nesting_is_found_in_linear_time() {
    // Statement wrappers (open, close): each nests the next statement.
    let shapes = [
        ("block", "{ ", " }"),
        ("try", "try { ", " } catch e { }"),
        ("try_block", "try { { ", " } } catch e { }"),
        ("if_else", "if x { } else if y { ", " }"),
        ("while", "while x { ", " }"),
        ("fn", "fn f() { ", " }"),
        ("lambda_arg", "f(fn() { ", " });"),
        ("lambda_let", "let f = fn() { ", " };"),
        ("lambda_in_list", "let f = [fn() { ", " }];"),
        ("lambda_in_map", "let f = {a: fn() { ", " }};"),
        ("lambda_in_template", "let f = `${fn() { ", " }}`;"),
        ("spawned", "spawn (async fn() { ", " })();"),
    ];
    for (name, open, close) in shapes {
        // At depths within the bracket limit (200) for every shape.
        for depth in [30, 95] {
            // Closed at every level, and unclosed at every level (the
            // shape that was exponential).
            for closed in [true, false] {
                // The bad statement on a line of its own: an unclosed
                // template is the lexer's to report, on its line.
                let mut source = open.repeat(depth);
                source.push_str("\nlet = 1;\n");
                if closed {
                    source.push_str(&close.repeat(depth));
                }
                let stderr = check_nested(&format!("nested_{name}_{depth}_{closed}"), &source);
                // The error at the bottom is reported, not lost in the
                // recovery of the levels around it (an unclosed template
                // literal swallows the rest of the file in the lexer).
                assert!(
                    stderr.contains("unexpected `=`") || (!closed && name == "lambda_in_template"),
                    "{name} {depth} {closed}: {stderr}"
                );
                if !closed {
                    assert!(
                        stderr.contains("this is never closed")
                            || stderr.contains("this template literal is not closed"),
                        "{name} {depth}: {stderr}"
                    );
                }
            }
        }
    }
}

#[test]
fn an_error_inside_deeply_nested_brackets_is_found_in_linear_time() {
    // Expression wrappers: each nests the next expression.
    let shapes = [
        ("parens", "(", ")"),
        ("lists", "[", "]"),
        ("maps", "{a: ", "}"),
        ("calls", "f(", ")"),
        ("indexes", "x[", "]"),
        ("templates", "`${", "}`"),
        ("sums", "1 + (", ")"),
        ("awaits", "await (", ")"),
    ];
    for (name, open, close) in shapes {
        for depth in [30, 100, 190] {
            for (bad, closed) in [("1 +", true), ("1 2", true), ("1", false)] {
                let mut source = format!("let v = {}{bad}", open.repeat(depth));
                if closed {
                    source.push_str(&close.repeat(depth));
                    source.push(';');
                }
                check_nested(&format!("brackets_{name}_{depth}_{closed}"), &source);
            }
        }
    }
}

#[test]
fn a_statement_failing_at_every_level_of_a_long_nest_is_reported_in_linear_time() {
    // Each level's statement fails after its whole nested body (a lambda
    // argument followed by a stray operand): recovering at each level must
    // not parse or skip the body again, level after level.
    let body = "let y = 1;\n".repeat(2_000);
    let source = format!("{}{body}{}", "f(fn() {\n".repeat(95), "} 2);\n".repeat(95));
    let stderr = check_nested("fail_every_level", &source);
    assert!(stderr.contains("… and 75 more errors"), "{stderr}");
}

#[test]
fn a_mismatched_bracket_is_named_with_the_bracket_it_does_not_close() {
    let stderr = check_nested(
        "mismatched",
        "let xs = [1, 2, 3];\nf(fn() {\n  print(xs[0);\n});\n",
    );
    assert!(stderr.contains("Error: mismatched `)`"), "{stderr}");
    assert!(
        stderr.contains("the innermost open bracket here is the `[` at 3:11"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("Error:").count(), 1, "{stderr}");
    let stderr = check_nested("stray_closer", "print(1);\n}\nprint(2);\n");
    assert!(stderr.contains("Error: unmatched `}`"), "{stderr}");
    assert_eq!(stderr.matches("Error:").count(), 1, "{stderr}");
}

#[test]
fn thousands_of_undefined_names_among_thousands_of_globals_are_reported_in_linear_time() {
    // Each line declares a global and uses two undefined names: a "did you
    // mean" search over every global for every error took minutes.
    let source: String = (0..3_000)
        .map(|i| format!("let v{i} = f({i}) + g({i});\n"))
        .collect();
    let stderr = check_nested("undefined_names", &source);
    assert!(stderr.contains("undefined variable `f`"), "{stderr}");
    assert!(stderr.contains("… and 5980 more errors"), "{stderr}");
}
