//! `looplab test`: the built binary run on fixture folders made in a
//! temporary directory (removed again by `Fixture`'s `Drop`, also when a
//! test fails), and on the project's own `programs/`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch folder of files, deleted when dropped.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str, files: &[(&str, &str)]) -> Fixture {
        let dir = std::env::temp_dir().join(format!("looplab-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create fixture dir");
        let fixture = Fixture { dir };
        for (path, text) in files {
            fixture.write(path, text);
        }
        fixture
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create fixture subdir");
        }
        std::fs::write(path, text).expect("write fixture file");
    }

    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(path)).ok()
    }

    fn run(&self, args: &[&str]) -> Run {
        run_in(&self.dir, args, &[])
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Run {
    stdout: String,
    stderr: String,
    status: Option<i32>,
}

/// Runs `looplab ARGS` in `dir` without colour and outside CI.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_looplab"));
    command
        .current_dir(dir)
        .args(args)
        .env_remove("CI")
        .env_remove("BLESS")
        .env("NO_COLOR", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run looplab");
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        status: output.status.code(),
    }
}

const ORDER: &str = "set_timeout(fn() { print(\"timeout\"); }, 0);\n\
                     Promise.resolve().then(fn() { print(\"promise\"); });\n\
                     print(\"sync\");\n";

#[test]
fn passing_programs_report_ok() {
    let f = Fixture::new(
        "pass",
        &[
            ("ex/order.lab", ORDER),
            ("ex/order.out", "sync\npromise\ntimeout\n"),
        ],
    );
    let run = f.run(&["test", "ex"]);
    assert_eq!(
        run.stdout,
        "running 2 tests\n\
         test ex/order::js ... ok\n\
         test ex/order::asyncio ... ok\n\
         \n\
         test result: ok. 2 passed; 0 failed\n"
    );
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    // With no path, the current directory is searched.
    let run = f.run(&["test"]);
    assert!(
        run.stdout.contains("test ex/order::js ... ok"),
        "{}",
        run.stdout
    );
    assert_eq!(run.status, Some(0));
    // A single file is a path too.
    let run = f.run(&["test", "ex/order.lab", "--runtime", "asyncio"]);
    assert_eq!(
        run.stdout,
        "running 1 test\n\
         test ex/order::asyncio ... ok\n\
         \n\
         test result: ok. 1 passed; 0 failed; 1 filtered out\n"
    );
}

#[test]
fn a_wrong_expectation_fails_with_a_diff() {
    let f = Fixture::new(
        "diff",
        &[
            ("order.lab", ORDER),
            ("order.out", "sync\ntimeout\npromise\n"),
        ],
    );
    let run = f.run(&["test", "--runtime", "js"]);
    assert_eq!(run.status, Some(1));
    assert_eq!(
        run.stdout,
        "running 1 test\n\
         test order::js ... FAILED\n\
         \n\
         failures:\n\
         \n\
         ---- order::js ----\n\
         output differs from order.out\n\
         first difference at line 2 (- expected, + actual):\n\
         \x20    1 | sync\n\
         -    2 | timeout\n\
         \x20    3 | promise\n\
         +    3 | timeout\n\
         (if the new output is right, record it with `looplab test --bless`)\n\
         \n\
         failures:\n\
         \x20   order::js\n\
         \n\
         test result: FAILED. 0 passed; 1 failed; 1 filtered out\n"
    );
    // Colour only when asked (or on a terminal).
    let run = f.run(&["test", "--color", "always"]);
    assert!(
        run.stdout.contains("\x1b[31m-    2 | timeout\x1b[0m"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_program_without_expected_output_is_new_and_fails() {
    let f = Fixture::new("new", &[("fresh.lab", "print(1 + 1);\n")]);
    let run = f.run(&["test", "--policies", "js,asyncio"]);
    assert_eq!(run.status, Some(1));
    assert!(
        run.stdout.contains("test fresh::js ... new\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("test fresh::asyncio ... new\n"));
    assert!(
        run.stdout
            .contains("no expected output fresh.out yet; it printed:\n    2\n")
    );
    assert!(
        run.stdout
            .ends_with("test result: FAILED. 0 passed; 2 failed\n")
    );
    assert_eq!(f.read("fresh.out"), None, "testing writes nothing");
}

#[test]
fn per_policy_files_are_used_where_policies_differ() {
    let f = Fixture::new(
        "policy",
        &[
            ("nil.lab", "print(nil);\n"),
            ("nil.js.out", "undefined\n"),
            ("nil.asyncio.out", "None\n"),
            // NAME.out covers the policies without their own file.
            ("mixed.lab", "print(nil);\n"),
            ("mixed.out", "None\n"),
            ("mixed.js.out", "undefined\n"),
            // `runtime X;` means only X; `// policies:` lists them.
            ("only.lab", "runtime asyncio;\nprint(nil);\n"),
            ("only.out", "None\n"),
            ("listed.lab", "// policies: js\nprint(nil);\n"),
            ("listed.out", "undefined\n"),
        ],
    );
    let run = f.run(&["test"]);
    assert_eq!(
        run.stdout,
        "running 6 tests\n\
         test listed::js ... ok\n\
         test mixed::js ... ok\n\
         test mixed::asyncio ... ok\n\
         test nil::js ... ok\n\
         test nil::asyncio ... ok\n\
         test only::asyncio ... ok\n\
         \n\
         test result: ok. 6 passed; 0 failed\n"
    );
    assert_eq!(run.status, Some(0));
}

#[test]
fn bless_creates_then_updates_expected_files() {
    let f = Fixture::new("bless", &[("p.lab", "print(\"same\");\n")]);
    let run = f.run(&["test", "--bless"]);
    assert_eq!(
        run.stdout,
        "running 2 tests\n\
         test p::js ... blessed\n\
         test p::asyncio ... blessed\n\
         \n\
         blessed:\n\
         \x20   created p.out\n\
         \n\
         test result: ok. 0 passed; 0 failed; 2 blessed\n"
    );
    assert_eq!(run.status, Some(0));
    assert_eq!(f.read("p.out").as_deref(), Some("same\n"));
    // Now the policies disagree: one file each, and the shared one goes.
    f.write("p.lab", "print(nil);\n");
    let run = f.run(&["test", "--bless"]);
    assert!(
        run.stdout.contains(
            "blessed:\n    removed p.out\n    created p.js.out\n    created p.asyncio.out\n"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(f.read("p.js.out").as_deref(), Some("undefined\n"));
    assert_eq!(f.read("p.asyncio.out").as_deref(), Some("None\n"));
    assert_eq!(f.read("p.out"), None);
    // Blessing one policy keeps the other's expectation.
    f.write("p.lab", "print(nil); print(1 / 0);\n");
    let run = f.run(&["test", "--bless", "--runtime", "js"]);
    assert!(
        run.stdout.contains("blessed:\n    updated p.js.out\n"),
        "{}",
        run.stdout
    );
    assert_eq!(f.read("p.js.out").as_deref(), Some("undefined\nInfinity\n"));
    assert_eq!(f.read("p.asyncio.out").as_deref(), Some("None\n"));
    // Unchanged files are not rewritten, and an up-to-date program passes.
    f.write("p.lab", "print(nil);\n");
    f.run(&["test", "--bless"]);
    let run = f.run(&["test", "--bless"]);
    assert!(!run.stdout.contains("blessed:"), "{}", run.stdout);
    assert!(
        run.stdout
            .ends_with("test result: ok. 2 passed; 0 failed\n")
    );
    assert_eq!(f.run(&["test"]).status, Some(0));
}

#[test]
fn bless_refuses_in_ci() {
    let f = Fixture::new("ci", &[("p.lab", "print(1);\n")]);
    let run = run_in(&f.dir, &["test", "--bless"], &[("CI", "true")]);
    assert_eq!(run.status, Some(2));
    assert!(run.stderr.contains("refusing to --bless because CI is set"));
    assert_eq!(f.read("p.out"), None);
}

#[test]
fn a_runaway_program_fails_naming_the_limit() {
    let f = Fixture::new(
        "runaway",
        &[
            ("spin.lab", "while true {}\n"),
            ("spin.out", ""),
            ("fine.lab", "print(\"fine\");\n"),
            ("fine.out", "fine\n"),
        ],
    );
    let run = f.run(&["test", "--runtime", "js", "--max-steps", "100000"]);
    assert_eq!(run.status, Some(1));
    assert!(
        run.stdout.contains("test fine::js ... ok\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("test spin::js ... FAILED\n"));
    assert!(
        run.stdout.contains(
            "stopped by the step limit: 100000 instructions (looplab test's --max-steps; \
             a program that needs more can say `// flags: --max-steps N`)"
        ),
        "{}",
        run.stdout
    );
    // Without a step limit, the wall-clock limit stops it.
    let run = f.run(&[
        "test",
        "--runtime",
        "js",
        "--max-steps",
        "0",
        "--timeout",
        "300ms",
    ]);
    assert_eq!(run.status, Some(1));
    assert!(
        run.stdout.contains("test fine::js ... ok\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "timed out: still running after 300ms of wall-clock time (looplab test's --timeout limit)"
        ),
        "{}",
        run.stdout
    );
    // A program's own `// flags:` limit is part of its expected output.
    f.write("spin.lab", "// flags: --max-steps 1000\nwhile true {}\n");
    f.run(&["test", "--bless", "--runtime", "js"]);
    let expected = f.read("spin.js.out").unwrap_or_default();
    assert!(
        expected.contains("stopped after 1000 instructions"),
        "{expected}"
    );
    assert!(expected.ends_with("--- exit 1 ---\n"));
    assert_eq!(f.run(&["test", "--runtime", "js"]).status, Some(0));
}

#[test]
fn broken_programs_fail_without_stopping_the_others() {
    let f = Fixture::new(
        "broken",
        &[
            ("a_syntax.lab", "print(\"unclosed\";\n"),
            ("a_syntax.out", "unclosed\n"),
            ("b_flags.lab", "// flags: --no-such-flag\nprint(1);\n"),
            ("c_policy.lab", "// policies: js threads\nprint(1);\n"),
            ("d_good.lab", "print(\"good\");\n"),
            ("d_good.out", "good\n"),
            ("e_runtime_flag.lab", "// flags: --runtime js\nprint(1);\n"),
            ("g_skip.lab", "// skip:\nprint(1);\n"),
        ],
    );
    std::fs::write(f.dir.join("f_binary.lab"), [0xff, 0xfe, 0x00]).expect("write");
    let run = f.run(&["test", "--runtime", "js"]);
    assert_eq!(run.status, Some(1));
    for line in [
        "test a_syntax::js ... FAILED\n",
        "test b_flags ... FAILED\n",
        "test c_policy ... FAILED\n",
        "test d_good::js ... ok\n",
        "test e_runtime_flag ... FAILED\n",
        "test f_binary ... FAILED\n",
        "test g_skip ... FAILED\n",
    ] {
        assert!(
            run.stdout.contains(line),
            "missing {line:?} in\n{}",
            run.stdout
        );
    }
    for reason in [
        "+    2 | Error: unclosed `(`",
        "bad `// flags:` header: unexpected argument '--no-such-flag' found",
        "`// policies:` names `threads`, which is not a policy (known: js asyncio)",
        "`// flags:` may not set --runtime",
        "cannot read it: not UTF-8 text",
        "`// skip:` must give a reason",
    ] {
        assert!(
            run.stdout.contains(reason),
            "missing {reason:?} in\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout
            .ends_with("test result: FAILED. 1 passed; 6 failed; 2 filtered out\n")
    );
}

#[test]
fn twins_are_checked_against_their_recordings() {
    let f = Fixture::new(
        "twins",
        &[
            ("t.lab", ORDER),
            ("t.out", "sync\npromise\ntimeout\n"),
            ("t.js", "// the node twin\n"),
            ("t.node.out", "sync\npromise\ntimeout\n"),
            // A Python twin nobody recorded fails rather than vanishing.
            ("t.py", "# the python twin\n"),
        ],
    );
    let run = f.run(&["test"]);
    assert_eq!(run.status, Some(1));
    assert!(
        run.stdout.contains("test t::js-matches-node ... ok\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("test t::asyncio-matches-python3 ... FAILED\n")
    );
    assert!(
        run.stdout
            .contains("twin t.py has no recorded output t.python.out")
    );
    f.write("t.python.out", "sync\ntimeout\npromise\n");
    let run = f.run(&["test", "--filter", "t"]);
    assert!(
        run.stdout.contains("output differs from t.python.out\n"),
        "{}",
        run.stdout
    );
    f.write("t.python.out", "sync\npromise\ntimeout\n");
    assert_eq!(f.run(&["test"]).status, Some(0));
    // --bless never writes recordings.
    f.write("t.node.out", "wrong\n");
    let run = f.run(&["test", "--bless"]);
    assert_eq!(run.status, Some(1));
    assert_eq!(f.read("t.node.out").as_deref(), Some("wrong\n"));
}

#[test]
fn skips_filters_and_usage_errors() {
    let f = Fixture::new(
        "skips",
        &[
            ("slow.lab", "// skip: too slow for a test\nwhile true {}\n"),
            ("one.lab", "print(1);\n"),
            ("one.out", "1\n"),
            ("two.lab", "print(2);\n"),
            ("two.out", "2\n"),
            ("notes.txt", "not a program\n"),
        ],
    );
    let run = f.run(&["test", "--filter", "o"]);
    assert_eq!(
        run.stdout,
        "running 5 tests\n\
         test one::js ... ok\n\
         test one::asyncio ... ok\n\
         test slow ... skipped (too slow for a test)\n\
         test two::js ... ok\n\
         test two::asyncio ... ok\n\
         \n\
         test result: ok. 4 passed; 0 failed; 1 skipped\n"
    );
    let run = f.run(&["test", "--filter", "one", "--filter", "nothing"]);
    assert!(
        run.stdout
            .ends_with("test result: ok. 2 passed; 0 failed; 2 filtered out\n")
    );
    for args in [
        &["test", "missing"][..],
        &["test", "notes.txt"],
        &["test", "--no-such-flag"],
        &["test", "--runtime", "threads"],
        &["test", "--timeout", "0"],
    ] {
        let run = f.run(args);
        assert_eq!(run.status, Some(2), "{args:?}: {}", run.stderr);
    }
    assert!(
        f.run(&["test", "missing"])
            .stderr
            .contains("cannot test `missing`: no such file or directory")
    );
}

#[test]
fn the_projects_own_programs_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = run_in(root, &["test", "programs/"], &[]);
    assert_eq!(run.status, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(
        "test programs/bench/fib ... skipped (benchmark, slow on purpose and without expected output; tests/bench/run.sh runs it)\n"
    ));
    assert!(
        run.stdout
            .contains("test programs/twins/clear_timeout_cancels_timer::js-matches-node ... ok\n")
    );
    assert!(
        run.stdout.contains("; 0 failed; 11 skipped\n"),
        "{}",
        run.stdout
    );
}
