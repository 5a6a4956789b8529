//! The REPL, driven as a person drives it: through a pseudo-terminal
//! (rexpect), and scripted through piped standard input.

use rexpect::session::PtySession;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_looplab");
/// Generous: the debug build shares the machine's cores.
const TIMEOUT_MS: u64 = 30_000;

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("looplab-repl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// Starts the REPL under a pseudo-terminal (`args` after the binary).
fn spawn(args: &[&str], history: &str) -> PtySession {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env("LOOPLAB_HISTORY", temp_path(history));
    let mut session =
        rexpect::session::spawn_command(command, Some(TIMEOUT_MS)).expect("spawn looplab");
    session.exp_string("Ctrl-D to leave").expect("banner");
    session
}

/// Ctrl-D at the next prompt (typed ahead while an entry runs, the
/// terminal's EOF character is lost, as in any REPL).
fn quit(mut session: PtySession, prompt: &str) {
    session.exp_string(prompt).expect("a prompt");
    session.send_control('d').expect("Ctrl-D");
    session.exp_eof().expect("the REPL ends on Ctrl-D");
}

/// Types a line at the next prompt (waiting for it, as a person does:
/// input sent while an entry still runs may reach the editor mid-setup).
fn enter(p: &mut PtySession, prompt: &str, line: &str) {
    p.exp_string(prompt).expect("a prompt");
    p.send_line(line).expect("send");
}

#[test]
fn no_arguments_on_a_terminal_start_the_repl_and_a_multi_line_entry_waits_for_its_brace() {
    let mut p = spawn(&[], "h1");
    enter(&mut p, "js> ", "fn add(a, b) {");
    p.send_line("  return a + b;").unwrap();
    p.send_line("}").unwrap();
    p.exp_string("undefined")
        .expect("a declaration echoes undefined, as node does");
    enter(&mut p, "js> ", "add(2, 3) * 10");
    p.exp_string("50").expect("the function persists");
    quit(p, "js> ");
    let history = std::fs::read_to_string(temp_path("h1")).expect("history file written");
    assert!(history.contains("add(2, 3) * 10"), "history: {history}");
    assert!(history.contains("return a + b;"), "history: {history}");
}

#[test]
fn an_error_is_shown_and_the_session_goes_on_with_its_state() {
    let mut p = spawn(&["repl"], "h2");
    enter(&mut p, "js> ", "let x = 41;");
    p.exp_string("undefined").unwrap();
    enter(&mut p, "js> ", "x + undefined_thing");
    p.exp_string("undefined variable `undefined_thing`")
        .expect("compile error");
    enter(&mut p, "js> ", "throw \"boom\";");
    p.exp_string("uncaught exception: boom")
        .expect("runtime error");
    enter(&mut p, "js> ", "x + 1");
    p.exp_string("42").expect("x survived both errors");
    quit(p, "js> ");
}

#[test]
fn switching_the_runtime_changes_an_ordering_and_keeps_functions() {
    let mut p = spawn(&["repl"], "h3");
    enter(&mut p, "js> ", "async fn t() { print(\"task\"); }");
    // js: an async function runs at once, until its first await.
    enter(&mut p, "js> ", "spawn t(); print(\"main\");");
    p.exp_regex("task\\s+main").expect("js order");
    enter(&mut p, "js> ", ":runtime asyncio");
    p.exp_string("1 value(s) and function(s) carried over")
        .unwrap();
    // asyncio: create_task only schedules.
    enter(&mut p, "asyncio> ", "spawn t(); print(\"main\");");
    p.exp_regex("main\\s+task").expect("asyncio order");
    quit(p, "asyncio> ");
}

#[test]
fn top_level_await_works_under_both_runtimes() {
    for runtime in ["js", "asyncio"] {
        let prompt = format!("{runtime}> ");
        let mut p = spawn(&["repl", "--runtime", runtime], &format!("h4{runtime}"));
        enter(
            &mut p,
            &prompt,
            "async fn seven() { await sleep(10); return 7; }",
        );
        enter(&mut p, &prompt, "let v = await seven();");
        enter(&mut p, &prompt, "v * 6");
        p.exp_string("42").expect(runtime);
        enter(&mut p, &prompt, "now() >= 10");
        p.exp_string(if runtime == "js" { "true" } else { "True" })
            .expect("the virtual clock carried on");
        quit(p, &prompt);
    }
}

#[test]
fn load_then_step_through_c_b_a() {
    let file = temp_path("cba.lab");
    std::fs::write(
        &file,
        "set_timeout(fn() { print(\"A\"); }, 0);\nPromise.resolve().then(fn() { print(\"B\"); });\nprint(\"C\");\n",
    )
    .unwrap();
    let mut p = spawn(&["repl"], "h5");
    enter(&mut p, "js> ", &format!(":load {}", file.display()));
    p.exp_string("loaded").unwrap();
    enter(&mut p, "js> ", ":step");
    p.exp_string("<main>#0").unwrap();
    p.exp_string("\nC\r").unwrap();
    p.exp_string("next: microtask 1, timers 1").unwrap();
    enter(&mut p, "js> ", ":step");
    p.exp_string("took the next job from the microtask queue")
        .unwrap();
    p.exp_string("\nB\r").unwrap();
    enter(&mut p, "js> ", ":step");
    p.exp_string("idle: the clock moves on to 1.000ms").unwrap();
    enter(&mut p, "js> ", ":step");
    p.exp_string("a timer is due").unwrap();
    p.exp_string("\nA\r").unwrap();
    p.exp_string("next: nothing queued").unwrap();
    // The same program under asyncio, run to the end.
    enter(&mut p, "js> ", ":runtime asyncio");
    enter(&mut p, "asyncio> ", &format!(":load {}", file.display()));
    p.exp_string("loaded").unwrap();
    enter(&mut p, "asyncio> ", ":run");
    p.exp_regex("C\\s+B\\s+A").unwrap();
    quit(p, "asyncio> ");
}

#[test]
fn ctrl_c_cancels_the_input_and_interrupts_a_runaway() {
    let mut p = spawn(&["repl", "--max-steps", "0"], "h6");
    p.exp_string("js> ").unwrap();
    p.send("let half = ").unwrap();
    p.send_control('c').unwrap();
    enter(&mut p, "js> ", "1 + 1");
    p.exp_string("2").expect("the cancelled input is gone");
    // A timer that re-arms itself forever: only Ctrl-C stops it.
    enter(
        &mut p,
        "js> ",
        "fn tick() { set_timeout(tick, 0); } tick();",
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    p.send_control('c').unwrap();
    p.exp_string("(interrupted;")
        .expect("Ctrl-C stops the entry");
    // A loop that never leaves its unit: stopped where it runs.
    enter(&mut p, "js> ", "let n = 0;");
    enter(&mut p, "js> ", "while true { n = n + 1; }");
    std::thread::sleep(std::time::Duration::from_millis(500));
    p.send_control('c').unwrap();
    p.exp_string("KeyboardInterrupt: the entry was interrupted by Ctrl-C")
        .unwrap();
    p.exp_string("running here").unwrap();
    enter(&mut p, "js> ", "n > 0");
    p.exp_string("true")
        .expect("the loop ran, and its variable stays");
    // Under asyncio, the loop's `finally` runs.
    enter(&mut p, "js> ", ":runtime asyncio");
    enter(
        &mut p,
        "asyncio> ",
        "try { while true {} } finally { print(\"finally ran\"); }",
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    p.send_control('c').unwrap();
    p.exp_string("finally ran").unwrap();
    p.exp_string("KeyboardInterrupt").unwrap();
    enter(&mut p, "asyncio> ", ":runtime js");
    enter(&mut p, "js> ", ":reset");
    p.exp_string("reset").unwrap();
    enter(&mut p, "js> ", "2 + 2");
    p.exp_string("4").expect("the session goes on");
    quit(p, "js> ");
}

#[test]
fn tab_completes_names_the_session_defined_and_commands() {
    let mut p = spawn(&["repl"], "h8");
    enter(&mut p, "js> ", "let the_answer = 42;");
    p.exp_string("js> ").unwrap();
    p.send("the_an\t").unwrap();
    p.flush().unwrap();
    p.exp_string("the_answer").expect("completed");
    p.send_line("").unwrap();
    p.exp_string("42").unwrap();
    p.exp_string("js> ").unwrap();
    p.send(":time\t").unwrap();
    p.flush().unwrap();
    p.exp_string(":timeline").expect("a command completed");
    p.send_line("").unwrap();
    p.exp_string("<main>#0 |")
        .expect("the timeline of the last entry");
    quit(p, "js> ");
}

#[test]
fn a_runaway_loop_stops_at_the_step_limit_and_the_session_goes_on() {
    let mut p = spawn(&["repl", "--max-steps", "100000"], "h7");
    enter(&mut p, "js> ", "while true {}");
    p.exp_string("stopped after 100000 instructions").unwrap();
    enter(&mut p, "js> ", "3 * 3");
    p.exp_string("9").unwrap();
    quit(p, "js> ");
}

// ---- piped input ----

fn piped(args: &[&str], input: &str) -> (String, String, i32) {
    let mut child = Command::new(BIN)
        .arg("repl")
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn looplab repl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn piped_entries_print_outputs_and_values_only() {
    let input = "let xs = [1, 2];\nfn total(list) {\n  let t = 0;\n  for x in list { t = t + x; }\n  return t;\n}\ntotal(xs)\n\"str\"\nprint(\"hi\");\n";
    let (out, err, status) = piped(&[], input);
    assert_eq!(out, "undefined\nundefined\n3\n'str'\nhi\nundefined\n");
    assert_eq!(err, "");
    assert_eq!(status, 0);
    let (out, _, status) = piped(&["--runtime", "asyncio"], input);
    assert_eq!(
        out, "3\n'str'\nhi\n",
        "python echoes only values that are not None"
    );
    assert_eq!(status, 0);
}

#[test]
fn piped_errors_are_reported_and_the_exit_status_says_so() {
    let (out, err, status) = piped(&[], "let a = 1;\na +* 2\na + 1\n");
    assert_eq!(out, "undefined\n2\n");
    assert!(err.contains("<entry 2>"), "{err}");
    assert!(err.contains("syntax error"), "{err}");
    assert_eq!(status, 1);
}

#[test]
fn piped_runtime_switch_carries_values_and_drops_handles() {
    let input = "let n = 5;\nlet p = Promise.resolve(1);\nset_timeout(fn() { print(\"late\"); }, 10);\n:runtime asyncio\nn * 2\np\n";
    let (out, err, status) = piped(&[], input);
    assert!(out.contains("late"), "{out}");
    assert!(
        out.contains("1 value(s) and function(s) carried over"),
        "{out}"
    );
    assert!(out.contains("not carried over"), "{out}");
    assert!(out.contains("`p`"), "{out}");
    assert!(out.contains("\n10\n"), "{out}");
    // `p` was dropped: using it is an error that names it.
    assert!(err.contains("`p`"), "{err}");
    assert_eq!(status, 1);
}

#[test]
fn piped_commands_queues_trace_timeline_and_threads_settings() {
    let input = ":gil on\n:cores 4\n:trace on\nPromise.resolve().then(fn() { print(\"B\"); }); print(\"C\");\n:trace off\n:timeline\n:load /nonexistent/file.lab\n:queues\n:nonsense\nexit\n";
    let (out, _, status) = piped(&[], input);
    assert!(
        out.contains(
            ":gil is not available yet: it belongs to the threads policy, which is not implemented"
        ),
        "{out}"
    );
    assert!(out.contains(":cores is not available yet"), "{out}");
    assert!(out.contains("<main>#0"), "{out}");
    assert!(
        out.contains("took the next job from the microtask queue"),
        "{out}"
    );
    let c = out.find("\nC\n").expect("C printed");
    let b = out.find("\nB\n").expect("B printed");
    assert!(c < b, "{out}");
    assert!(out.contains("█ running"), "{out}");
    assert!(out.contains("cannot read `/nonexistent/file.lab`"), "{out}");
    assert!(out.contains("microtask: empty"), "{out}");
    assert!(out.contains("unknown command `:nonsense`"), "{out}");
    assert!(out.contains("(commands start with `:` here"), "{out}");
    assert_eq!(status, 1);
}

#[test]
fn piped_a_runaway_stopped_at_the_step_limit_leaves_nothing_queued() {
    // A self-re-arming timer, stopped by the step limit: nothing of it is
    // left to start again with the next entry, and its variable stays.
    let input = "let count = 0;\nfn tick() { count = count + 1; set_timeout(tick, 5); } tick();\n:queues\nset_timeout(fn() { print(\"later\"); }, 1);\ncount > 10\n";
    let (out, err, status) = piped(&["--max-steps", "2000"], input);
    assert!(
        out.contains("(stopped after 2000 instructions: the step limit of an entry"),
        "{out}"
    );
    assert!(
        err.contains("running here when the limit was reached"),
        "{err}"
    );
    assert!(out.contains("timers: none"), "{out}");
    assert!(out.ends_with("later\ntrue\n"), "{out}");
    assert_eq!(status, 1);
}

#[test]
fn piped_functions_may_use_names_a_later_entry_defines() {
    let input =
        "fn g() { return h() + 1; }\ng()\nfn h() { return 41; }\ng()\nlet bad = nope;\nbad\n";
    let (out, err, status) = piped(&[], input);
    assert_eq!(out, "undefined\nundefined\n42\n");
    assert!(
        err.contains("ReferenceError: `h` is used before it is defined"),
        "{err}"
    );
    // At the top level an unknown name is still a compile error, and a
    // failed entry leaves no half-declared name behind.
    assert!(err.contains("undefined variable `nope`"), "{err}");
    assert!(err.contains("undefined variable `bad`"), "{err}");
    assert_eq!(status, 1);
}

#[test]
fn piped_typed_program_is_loaded_then_stepped() {
    let input = ":load\nset_timeout(fn() { print(\"A\"); }, 0);\nPromise.resolve().then(fn() { print(\"B\"); });\nprint(\"C\");\n\n:step\n:step\n:run\n";
    let (out, err, status) = piped(&["--runtime", "asyncio"], input);
    assert_eq!(err, "");
    assert_eq!(status, 0);
    let lines: Vec<&str> = out.lines().collect();
    let at = |text: &str| {
        lines
            .iter()
            .position(|l| *l == text)
            .unwrap_or_else(|| panic!("no line {text:?} in:\n{out}"))
    };
    assert!(
        out.contains("loaded <typed program> under asyncio"),
        "{out}"
    );
    assert!(
        out.contains("(the event loop starts an iteration: 1 callback(s) ready to run)"),
        "{out}"
    );
    // The second step runs the program's top level: C, and B waits.
    let next = lines
        .iter()
        .position(|l| l.starts_with("next: ready 1, timers 1 (next at "))
        .expect("what is queued after the top level");
    assert!(at("C") < next && next < at("B"), "{out}");
    assert!(at("C") < at("B") && at("B") < at("A"), "{out}");
}

#[test]
fn piped_a_runtime_directive_switches_and_await_entries_echo_after_earlier_microtasks() {
    // node's REPL echoes an entry with `await` when its promise settles:
    // after a microtask the entry queued before it ended.
    let input = "await sleep(1); Promise.resolve().then(fn() { print(\"B2\"); }); 7\nruntime asyncio;\nawait sleep(1); 8\n";
    let (out, err, status) = piped(&[], input);
    assert_eq!(err, "");
    assert_eq!(status, 0);
    let expected_start =
        "B2\n7\n(the `runtime asyncio` directive switches the runtime)\nruntime: asyncio";
    assert!(out.starts_with(expected_start), "{out}");
    assert!(out.ends_with("the clock restarts at 0\n8\n"), "{out}");
}

/// The README's REPL transcript is real: its inputs (after the prompts,
/// with the lines of an entry whose brackets are still open), replayed as
/// a piped session, print exactly its other lines.
#[test]
fn the_readme_transcript_is_real() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = &readme[readme.find("## The REPL").expect("a REPL section")..];
    let block = section
        .split("```text\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a transcript block");
    let mut lines = block.lines();
    assert_eq!(lines.next(), Some("$ looplab"));
    assert!(
        lines
            .next()
            .is_some_and(|banner| banner.starts_with("looplab "))
    );
    let (mut input, mut expected) = (String::new(), String::new());
    let mut open = String::new();
    for line in lines {
        if !open.is_empty() {
            open.push_str(line);
            open.push('\n');
            input.push_str(line);
            input.push('\n');
            if looplab::repl::is_complete(&open) {
                open.clear();
            }
            continue;
        }
        let typed = ["js> ", "asyncio> ", "... "]
            .iter()
            .find_map(|prompt| line.strip_prefix(prompt))
            .or((line == "...").then_some(""));
        match typed {
            Some("^D") => break,
            Some(text) => {
                input.push_str(text);
                input.push('\n');
                if !text.starts_with(':') && !looplab::repl::is_complete(text) {
                    open = format!("{text}\n");
                }
            }
            None => {
                expected.push_str(line);
                expected.push('\n');
            }
        }
    }
    let (out, err, status) = piped(&[], &input);
    assert_eq!(err, "");
    assert_eq!(out, expected);
    assert_eq!(status, 0);
}

#[test]
fn piped_entries_can_use_the_list_methods_written_in_looplab() {
    let input = "let xs = [1, 2, 3];\nxs.map(fn(x) { return x * 2; })\nxs.filter(fn(x) { return x > 1; })\n";
    let (out, err, status) = piped(&[], input);
    assert_eq!(out, "undefined\n[ 2, 4, 6 ]\n[ 2, 3 ]\n");
    assert_eq!(err, "");
    assert_eq!(status, 0);
}

#[test]
fn piped_queues_tell_this_iteration_from_the_next_under_asyncio() {
    // Before an iteration starts, every ready callback waits for it; inside
    // one, a callback queued by the one running waits for the next.
    let input = ":load\nfn three() { print(\"three\"); }\nfn one() { print(\"one\"); queue_microtask(three); }\nfn two() { print(\"two\"); }\nqueue_microtask(one);\nqueue_microtask(two);\n\n:step\n:step\n:queues\n:step\n:step\n:queues\n:run\n";
    let (out, err, status) = piped(&["--runtime", "asyncio"], input);
    assert_eq!(err, "");
    assert_eq!(status, 0);
    let before = "ready: 2\n  1. call `one` (next iteration)\n  2. call `two` (next iteration)\n";
    let during = "ready: 2\n  1. call `two` (this iteration)\n  2. call `three` (next iteration)\n";
    let (at_before, at_during) = (out.find(before), out.find(during));
    assert!(at_before.is_some() && at_during.is_some(), "{out}");
    assert!(at_before < at_during, "{out}");
    assert!(out.ends_with("two\nthree\n"), "{out}");
}

#[test]
fn piped_queues_say_what_each_js_job_will_do() {
    let input = ":load\nfn show(v) { print(\"shown\", v); }\nPromise.resolve(1).then(show);\nqueue_microtask(fn() { print(\"two\"); });\nset_timeout(show, 5, 9);\n\n:step\n:queues\n:run\n";
    let (out, err, status) = piped(&[], input);
    assert_eq!(err, "");
    assert_eq!(status, 0);
    let queues = "microtask: 2\n  1. promise reaction: call `show`\n  2. call `<anonymous>`\nimmediate: empty\ntimers: 1\n  at 5.000ms: call `show`\n";
    assert!(out.contains(queues), "{out}");
    assert!(out.ends_with("shown 1\ntwo\nshown 9\n"), "{out}");
}

#[test]
fn piped_queues_header_shows_the_virtual_clock_under_each_policy() {
    // The header's time is the policy's clock: 20 ms of sleep (and the few
    // instructions around it) have passed, under either runtime.
    for (runtime, header) in [("asyncio", "asyncio at 20."), ("js", "js at 20.")] {
        let (out, err, status) = piped(&["--runtime", runtime], "await sleep(20);\n:queues\n");
        assert_eq!(err, "", "{runtime}");
        assert!(out.contains(header), "{runtime}: {out}");
        assert!(out.contains("ms (virtual time)"), "{runtime}: {out}");
        assert_eq!(status, 0, "{runtime}");
    }
}
