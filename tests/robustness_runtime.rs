//! Runtime robustness: programs that used to crash, hang or exhaust the
//! machine, each run by the `looplab` binary with a wall-time bound (a hang
//! detector, not a benchmark), checking exit status and message.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A generous bound: a run past it is a hang.
const HANG: Duration = Duration::from_secs(20);

struct Ran {
    stdout: String,
    stderr: String,
    status: Option<i32>,
    took: Duration,
}

/// A scratch file holding `source`, unique to this test.
fn scratch(name: &str, source: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("looplab-robust-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(format!("{name}.lab"));
    std::fs::write(&path, source).expect("write scratch file");
    path
}

/// Runs `looplab run FLAGS FILE` on `source`; kills it past `HANG`.
fn run(name: &str, source: &str, flags: &[&str]) -> Ran {
    let path = scratch(name, source);
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_looplab"))
        .arg("run")
        .args(flags)
        .arg(&path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("looplab runs");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{name}` still running after {HANG:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = start.elapsed();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    Ran {
        stdout: text(reader.join().expect("stdout reader")),
        stderr: text(err_reader.join().expect("stderr reader")),
        status: status.code(),
        took,
    }
}

fn both(name: &str, source: &str, flags: &[&str]) -> [Ran; 2] {
    let js = [&["--runtime", "js"], flags].concat();
    let asyncio = [&["--runtime", "asyncio"], flags].concat();
    [
        run(&format!("{name}-js"), source, &js),
        run(&format!("{name}-asyncio"), source, &asyncio),
    ]
}

// ---- panics and aborts ----

#[test]
fn sort_of_a_list_holding_nan_puts_nan_last() {
    let source =
        "let nan = float(\"nan\");\nlet xs = [3, nan, 1, 2, nan, -1];\nxs.sort();\nprint(xs);\n";
    let [js, py] = both("sort-nan", source, &[]);
    assert_eq!(js.status, Some(0), "{}", js.stderr);
    assert_eq!(js.stdout, "[ -1, 1, 2, 3, NaN, NaN ]\n");
    assert_eq!(py.status, Some(0), "{}", py.stderr);
    assert_eq!(py.stdout, "[-1, 1, 2, 3, nan, nan]\n");
}

#[test]
fn sort_of_mixed_types_is_a_type_error_not_a_panic() {
    let source = "let xs = [2, \"a\", float(\"nan\"), 1];\ntry { xs.sort(); } catch e { print(e.kind); }\nprint(xs);\n";
    let [js, _] = both("sort-mixed", source, &[]);
    assert_eq!(js.status, Some(0), "{}", js.stderr);
    assert_eq!(js.stdout, "TypeError\n[ 2, 'a', NaN, 1 ]\n");
}

#[test]
fn a_cycle_through_a_promise_prints_as_a_cycle() {
    let source =
        "let m = {};\nm.p = Promise.resolve(m);\nprint(m);\nprint(str([m]).len() > 0);\nthrow m;\n";
    let js = run("promise-cycle", source, &["--runtime", "js"]);
    assert_eq!(js.status, Some(1), "{}", js.stderr);
    assert_eq!(
        js.stdout,
        "<ref *1> { p: Promise { [Circular *1] } }\ntrue\n"
    );
    assert!(js.stderr.contains("[Circular *1]"), "{}", js.stderr);
}

#[test]
fn a_future_resolved_with_itself_and_a_task_returning_itself_print() {
    let source = r#"
async fn main() {
  let r = nil;
  let p = promise(fn(resolve, reject) { r = resolve; });
  r(p);
  print(p);
  let t = nil;
  async fn me() { await sleep(0); return t; }
  t = spawn me();
  await t;
  print([t]);
  throw t;
}
await main();
"#;
    let py = run("future-self", source, &["--runtime", "asyncio"]);
    assert_eq!(py.status, Some(1), "{}", py.stderr);
    assert_eq!(
        py.stdout,
        "<Future finished result=...>\n[<Task finished name='Task-2' coro=<me() done> result=...>]\n"
    );
    assert!(py.stderr.contains("result=...>"), "{}", py.stderr);
    let js = run("promise-self", source, &["--runtime", "js"]);
    assert!(
        js.stdout
            .starts_with("Promise { <rejected> TypeError: Chaining cycle detected"),
        "{}",
        js.stdout
    );
}

#[test]
fn a_long_then_chain_drops_without_overflowing_the_stack() {
    let source = "let p = promise(fn(resolve, reject) {});\nlet q = p;\nfor i in 0..1000000 { q = q.then(fn(x) { return x; }); }\nprint(\"built\");\n";
    let js = run(
        "then-chain",
        source,
        &["--runtime", "js", "--max-steps", "0"],
    );
    assert_eq!(js.status, Some(0), "{}", js.stderr);
    assert_eq!(js.stdout, "built\n");
}

// ---- time: limits that bite ----

/// Asserts a run stopped at a limit: status 1, the message, a location.
fn assert_stopped(ran: &Ran, message: &str, line: &str) {
    assert_eq!(ran.status, Some(1), "stderr: {}", ran.stderr);
    assert!(ran.stderr.contains(message), "stderr: {}", ran.stderr);
    assert!(ran.stderr.contains(line), "stderr: {}", ran.stderr);
}

#[test]
fn an_async_loop_of_sleep_0_stops_at_the_event_limit() {
    let source = "async fn main() {\n  while true { await sleep(0); }\n}\nawait main();\n";
    for ran in both("sleep0-loop", source, &["--max-events", "20000"]) {
        assert_stopped(&ran, "stopped after 20000 scheduler events", "--max-events");
    }
}

#[test]
fn a_callback_that_requeues_itself_stops_at_the_event_limit() {
    let microtask = "fn again() { queue_microtask(again); }\nagain();\nawait sleep(1);\n";
    for ran in both("microtask-loop", microtask, &["--max-events", "20000"]) {
        assert_stopped(&ran, "scheduler events", "the event limit");
        // Located in the callback, even between events.
        assert!(ran.stderr.contains("microtask-loop"), "{}", ran.stderr);
        assert!(ran.stderr.contains("`again`"), "{}", ran.stderr);
    }
    let tick = "fn again() { next_tick(again); }\nagain();\n";
    let js = run(
        "tick-loop",
        tick,
        &["--runtime", "js", "--max-events", "20000"],
    );
    assert_stopped(&js, "scheduler events", "the event limit");
    let timer = "fn again() { set_timeout(again, 0); }\nagain();\nawait sleep(1);\n";
    for ran in both("timer-loop", timer, &["--max-events", "20000"]) {
        assert_stopped(&ran, "scheduler events", "the event limit");
    }
}

#[test]
fn a_throw_catch_loop_deep_in_recursion_pays_for_its_unwinding() {
    // Each throw records a call stack 3,000 frames deep: that walk counts,
    // so the step limit stops the loop after a few hundred throws, not
    // after 200,000 (five instructions each).
    let source = "let n = 0;\nfn deep(d) {\n  if d == 0 {\n    while true {\n      try { throw error(\"x\"); } catch e { n = n + 1; if n % 1000 == 0 { print(n); } }\n    }\n  }\n  return deep(d - 1);\n}\ndeep(3000);\n";
    for ran in both("throw-deep", source, &["--max-steps", "1000000"]) {
        assert_stopped(&ran, "stopped after 1000000 instructions", "the step limit");
        assert!(!ran.stdout.contains("2000"), "stdout: {}", ran.stdout);
    }
}

#[test]
fn work_past_the_time_limit_stops_there_with_a_location() {
    let source = "print(\"before\");\nwork(7200000);\nprint(\"after 2h\");\n";
    for ran in both("work-2h", source, &["--max-time", "1h"]) {
        assert_stopped(&ran, "past the time limit of 1h", "work-2h");
        assert!(ran.stderr.contains(":2:1"), "stderr: {}", ran.stderr);
        assert_eq!(ran.stdout, "before\n");
    }
    let source = "work(90000000);\nprint(\"after 25h\");\n";
    for ran in both("work-25h", source, &[]) {
        assert_stopped(&ran, "past the time limit of 24h", "--max-time");
        assert_eq!(ran.stdout, "");
    }
}

#[test]
fn a_loop_charging_time_stops_at_the_time_limit() {
    let source = "let i = 0;\nwhile true { i = i + 1; }\n";
    for ran in both(
        "time-loop",
        source,
        &[
            "--max-steps",
            "0",
            "--instr-cost",
            "1ms",
            "--max-time",
            "10s",
        ],
    ) {
        assert_stopped(&ran, "past the time limit of 10s", ":2:");
        assert!(ran.took < HANG);
    }
}

#[test]
fn rejected_promises_made_deep_in_the_stack_keep_compact_origins() {
    // Each error keeps where it was made: a bounded trace, not the whole
    // 1,000-frame stack (that was ~16 bytes a frame, 32 MB for these).
    let source = "fn deep(n) {\n  if n == 0 { let p = Promise.reject(error(\"x\")); p.catch(fn(e) {}); return p; }\n  return deep(n - 1);\n}\nlet keep = [];\nfor i in 0..2000 { keep.push(deep(1000)); }\nprint(\"kept\", len(keep));\n";
    let js = run(
        "reject-deep",
        source,
        &[
            "--runtime",
            "js",
            "--max-memory",
            "16MB",
            "--max-steps",
            "0",
        ],
    );
    assert_eq!(js.status, Some(0), "stderr: {}", js.stderr);
    assert_eq!(js.stdout, "kept 2000\n");
}

#[test]
fn repeat_names_the_limit_it_passes() {
    // `"x".repeat(100000000)` used to be refused with "up to a 100 MB
    // result" (a count limit of its own): 100 MB is under the string
    // limit and is made; past 256 MB the string limit is named.
    let source = "print(len(\"x\".repeat(100000000)));\ntry { \"xyz\".repeat(100000000); } catch e { print(e.kind, e.message); }\ntry { \"x\".repeat(-1); } catch e { print(e.kind, e.message); }\n";
    let js = run("repeat-limit", source, &["--runtime", "js"]);
    assert_eq!(js.status, Some(0), "stderr: {}", js.stderr);
    assert_eq!(
        js.stdout,
        "100000000\nMemoryError a string of 300000000 bytes is over looplab's limit of 268435456\nValueError repeat needs a whole count of 0 or more, not -1\n"
    );
}

#[test]
fn an_infinite_sleep_says_it_would_never_end() {
    // It used to say "needs a duration of zero or more, not inf".
    let source = "await sleep(1e309);\nprint(\"after\");\n";
    let py = run("sleep-inf", source, &["--runtime", "asyncio"]);
    assert_eq!(py.status, Some(1), "stderr: {}", py.stderr);
    assert!(
        py.stderr
            .contains("sleep(): an infinite duration would never end"),
        "stderr: {}",
        py.stderr
    );
    assert!(!py.stderr.contains("zero or more"), "stderr: {}", py.stderr);
}

#[test]
fn the_virtual_clock_does_not_saturate_silently() {
    let source = "for i in 0..19 { work(1000000000000); }\nawait sleep(0);\nprint(now());\n";
    for ran in both("clock-end", source, &["--max-time", "0"]) {
        assert_stopped(&ran, "end of looplab's clock", ":1:");
        assert_eq!(ran.stdout, "");
    }
}

// ---- memory ----

#[test]
fn copying_a_big_list_in_a_loop_is_a_memory_error() {
    let source = "let xs = [];\nfor i in 0..200000 { xs.push(i); }\nlet keep = [];\ntry {\n  while true { keep.push(xs.copy()); }\n} catch e { print(e.kind); }\nkeep = [];\nlet m = {};\nlet i = 0;\ntry { while true { m[str(i)] = i; i = i + 1; } } catch e { print(e.kind); }\nprint(\"still running\");\n";
    for ran in both(
        "memory-copies",
        source,
        &["--max-memory", "48MB", "--max-steps", "0"],
    ) {
        assert_eq!(ran.status, Some(0), "stderr: {}", ran.stderr);
        assert_eq!(ran.stdout, "MemoryError\nMemoryError\nstill running\n");
    }
}

#[test]
fn building_a_huge_string_is_refused_before_it_is_built() {
    let source = r#"let big = "xxxxxxxxxx".repeat(200000);
let parts = [big, big, big, big, big, big, big, big, big, big];
try { print(len(parts.join(""))); } catch e { print(e.kind); }
try { print(len(str(parts))); } catch e { print(e.kind); }
try { print(len(big.replace("x", "yyyyyyyyyy"))); } catch e { print(e.kind); }
try { print(len(big.replace("", "yyyyyyyyyy"))); } catch e { print(e.kind); }
try { print(len(big.split(""))); } catch e { print(e.kind); }
try { print(len(",".repeat(1000000).split(","))); } catch e { print(e.kind); }
"#;
    let js = run(
        "memory-strings",
        source,
        &["--runtime", "js", "--max-memory", "16MB"],
    );
    assert_eq!(js.status, Some(0), "stderr: {}", js.stderr);
    assert_eq!(js.stdout, "MemoryError\n".repeat(6));
}

#[test]
fn endless_timers_and_spawns_stop_before_the_machine_does() {
    let timers = "let i = 0;\nwhile true { set_timeout(fn() {}, 100000); i = i + 1; }\n";
    for ran in both(
        "memory-timers",
        timers,
        &["--max-memory", "64MB", "--max-steps", "0"],
    ) {
        assert_eq!(ran.status, Some(1), "stderr: {}", ran.stderr);
        assert!(ran.stderr.contains("MemoryError"), "stderr: {}", ran.stderr);
    }
}

// ---- work that is not an instruction ----

#[test]
fn a_growing_map_pays_for_its_growth_and_its_writes() {
    // 12 instructions a write: 20,000,000 steps would be 1,600,000 writes
    // if only instructions counted. Past 32 MB the heap's growth and each
    // write count too, so the step limit stops it near 400,000.
    let source = "let m = {};\nlet i = 0;\nwhile true {\n  m[str(i)] = i;\n  i = i + 1;\n  if i % 100000 == 0 { print(i); }\n}\n";
    for ran in both("map-growth", source, &["--max-steps", "20000000"]) {
        assert_stopped(&ran, "stopped after 20000000 instructions", "map-growth");
        assert!(ran.stdout.contains("200000\n"), "stdout: {}", ran.stdout);
        assert!(!ran.stdout.contains("800000"), "stdout: {}", ran.stdout);
    }
}

#[test]
fn an_endless_then_chain_pays_for_its_growth() {
    // A few instructions a `then`, and some 300 bytes each: the heap's
    // growth stops it at the step limit long before the instructions do.
    let source = "let p = promise(fn(resolve, reject) {});\nlet q = p;\nlet n = 0;\nwhile true {\n  q = q.then(fn(x) { return x; });\n  n = n + 1;\n  if n % 100000 == 0 { print(n); }\n}\n";
    for ran in both("then-growth", source, &["--max-steps", "20000000"]) {
        assert_stopped(&ran, "stopped after 20000000 instructions", "then-growth");
        assert!(!ran.stdout.contains("1000000"), "stdout: {}", ran.stdout);
    }
}

#[test]
fn a_js_spawn_loop_pays_for_each_unit() {
    // About 19 instructions a turn, and a unit and a promise each,
    // charged as 32 steps: 2,000,000 steps start about 39,000 tasks, not
    // 105,000.
    let source = "async fn f() { return 1; }\nlet n = 0;\nwhile true {\n  spawn f();\n  n = n + 1;\n  if n % 10000 == 0 { print(n); }\n}\n";
    let js = run(
        "spawn-units",
        source,
        &["--runtime", "js", "--max-steps", "2000000"],
    );
    assert_stopped(&js, "stopped after 2000000 instructions", "spawn-units");
    assert!(js.stdout.contains("30000\n"), "stdout: {}", js.stdout);
    assert!(!js.stdout.contains("60000"), "stdout: {}", js.stdout);
}

#[test]
fn a_loop_switching_units_is_still_checked_for_memory() {
    // Each spawned task fails at once with a MemoryError (its timer is
    // refused) while main never runs a whole slice of its own: the checks
    // come every slice of the whole run, so main gets the MemoryError too.
    let source = "async fn f() { await sleep(0); }\nasync fn main() { while true { spawn f(); } }\nawait main();\n";
    for ran in both(
        "spawn-memory",
        source,
        &["--max-memory", "48MB", "--max-steps", "0"],
    ) {
        assert_eq!(ran.status, Some(1), "stderr: {}", ran.stderr);
        assert!(ran.stderr.contains("MemoryError"), "stderr: {}", ran.stderr);
        assert!(ran.took < HANG);
    }
}

#[test]
fn a_loop_whose_halts_land_on_the_check_points_is_still_checked() {
    // Eight instructions a turn, each turn ending in a call the policy
    // handles: once the charged steps aligned the turns with the check
    // points, every check point fell on such a halt and no check came
    // again (the heap grew unchecked; 40,000,000 steps took minutes). A
    // limit of 20,000,000 keeps the check and the run short (smaller
    // timers are charged less heap growth, so more turns fit in a limit).
    let source = "while true { set_timeout(fn() {}, 100000); }\n";
    for ran in both("timer-alignment", source, &["--max-steps", "20000000"]) {
        assert_stopped(
            &ran,
            "stopped after 20000000 instructions",
            "timer-alignment",
        );
        assert!(ran.took < HANG);
    }
}

#[test]
fn built_in_methods_that_walk_a_long_list_or_string_pay_for_it() {
    // One instruction each, but `insert(0, …)` moves the whole list and
    // `contains` reads the whole string: charged by size as the call
    // returns, the work reaches the step limit at once, so these loops
    // stop there (the inserts after ~12,600 of them: the sum of i/4 steps
    // passes 20,000,000); counting instructions only, they went on for
    // hours, and charged only at the checks they still ran a whole slice.
    let insert = "let xs = [];\nlet i = 0;\nwhile true {\n  xs.insert(0, i);\n  i = i + 1;\n  if i % 10000 == 0 { print(i); }\n}\n";
    for ran in both("insert-front", insert, &["--max-steps", "20000000"]) {
        assert_stopped(&ran, "stopped after 20000000 instructions", "insert-front");
        assert!(ran.stdout.contains("10000\n"), "stdout: {}", ran.stdout);
        assert!(!ran.stdout.contains("20000"), "stdout: {}", ran.stdout);
    }
    let search = "let s = \"ab\".repeat(5000);\nlet n = 0;\nwhile true {\n  if s.contains(\"zz\") { print(\"found\"); }\n  n = n + 1;\n  if n % 10000 == 0 { print(n); }\n}\n";
    for ran in both("search-long", search, &["--max-steps", "20000000"]) {
        assert_stopped(&ran, "stopped after 20000000 instructions", "search-long");
        assert!(ran.stdout.contains("50000\n"), "stdout: {}", ran.stdout);
        assert!(!ran.stdout.contains("200000"), "stdout: {}", ran.stdout);
    }
}

#[test]
fn heavy_built_in_calls_within_one_slice_stop_at_the_step_limit() {
    // Each `contains` walks 2,000,000 items (500,000 steps of work) in one
    // instruction: after building the list (about half the budget), the
    // loop passes the 40,000,000-step limit within some 40 calls, inside
    // the first slice of 1,048,576 instructions — where work charged only
    // at the checks let it make ~150,000 calls (minutes).
    let source = "let xs = [];\nfor i in 0..2000000 { xs.push(i); }\nlet n = 0;\nwhile true {\n  xs.contains(-1);\n  n = n + 1;\n  if n % 10 == 0 { print(n); }\n}\n";
    for ran in both("contains-loop", source, &["--max-steps", "40000000"]) {
        assert_stopped(&ran, "stopped after 40000000 instructions", "contains-loop");
        assert!(ran.stdout.contains("10\n"), "stdout: {}", ran.stdout);
        assert!(!ran.stdout.contains("100\n"), "stdout: {}", ran.stdout);
    }
}

#[test]
fn asyncio_cancels_many_pending_tasks_at_shutdown_in_linear_time() {
    // 100,000 tasks still sleeping when main returns: each cancellation
    // used to scan the whole ready queue, which grows with each one
    // (quadratic: 40,000 took 7 s in a release build).
    let source = "async fn f() { await sleep(1); }\nasync fn main() { for i in 0..100000 { spawn f(); } print(\"spawned\"); }\nawait main();\n";
    let py = run(
        "cancel-many",
        source,
        &["--runtime", "asyncio", "--max-steps", "0"],
    );
    assert_eq!(py.status, Some(0), "stderr: {}", py.stderr);
    assert_eq!(py.stdout, "spawned\n");
    assert!(
        py.stderr.contains("cancelling 100000 task(s)"),
        "stderr: {}",
        py.stderr
    );
}

// ---- output as it happens ----

/// Runs with stdout and stderr into one pipe (as a terminal shows them).
fn run_merged(name: &str, source: &str, flags: &[&str]) -> (String, Option<i32>) {
    let path = scratch(name, source);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("\"$0\" run {} \"$1\" 2>&1", flags.join(" ")))
        .arg(env!("CARGO_BIN_EXE_looplab"))
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .expect("sh runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

#[test]
fn stdout_and_stderr_lines_come_in_the_order_they_were_made() {
    let source = "print(\"before\");\nset_timeout(fn() { throw error(\"boom\"); }, 0);\nawait sleep(5);\nprint(\"after\");\n";
    let (text, status) = run_merged("order-callback", source, &["--runtime", "asyncio"]);
    assert_eq!(status, Some(0), "{text}");
    let before = text.find("before").expect("before");
    let report = text.find("Exception in callback").expect("report");
    let after = text.find("after").expect("after");
    assert!(before < report && report < after, "{text}");
}

#[test]
fn a_never_awaited_warning_comes_where_the_coroutine_is_dropped() {
    let source = "async fn f() { return 1; }\nasync fn main() {\n  print(\"one\");\n  f();\n  print(\"two\");\n  await sleep(1);\n  print(\"three\");\n}\nawait main();\n";
    let (text, status) = run_merged("order-never-awaited", source, &["--runtime", "asyncio"]);
    assert_eq!(status, Some(0), "{text}");
    let warning = text.find("was never awaited").expect("warning");
    assert!(text.find("one").expect("one") < warning, "{text}");
    assert!(warning < text.find("three").expect("three"), "{text}");
}

// ---- Ctrl-C ----

/// Runs `source` with `flags`, sends it SIGINT after `after`, and returns
/// its status, stdout and stderr (it must stop at once).
fn interrupt(
    name: &str,
    source: &str,
    flags: &[&str],
    after: Duration,
) -> (Option<i32>, String, String) {
    let path = scratch(name, source);
    let child = Command::new(env!("CARGO_BIN_EXE_looplab"))
        .arg("run")
        .args(flags)
        .arg(&path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("looplab runs");
    std::thread::sleep(after);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let start = Instant::now();
    let out = child.wait_with_output().expect("wait");
    assert!(start.elapsed() < Duration::from_secs(5), "stopped at once");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn ctrl_c_stops_a_real_time_work_where_it_is() {
    let source = "print(\"a\");\nwork(20000);\nprint(\"b\");\n";
    for runtime in ["js", "asyncio"] {
        let flags = ["--runtime", runtime, "--real-time"];
        let (status, out, err) =
            interrupt("ctrl-c-work", source, &flags, Duration::from_millis(700));
        assert_eq!(status, Some(130), "{err}");
        assert_eq!(out, "a\n");
        assert!(err.contains("interrupted (Ctrl-C)"), "{err}");
        assert!(err.contains(":2:1"), "{err}");
    }
}

#[test]
fn ctrl_c_stops_a_tight_loop_with_status_130_and_a_note() {
    let source = "print(\"started\");\nlet i = 0;\nwhile true { i = i + 1; }\n";
    let (status, out, err) = interrupt(
        "ctrl-c",
        source,
        &["--max-steps", "0"],
        Duration::from_millis(700),
    );
    assert_eq!(status, Some(130), "{err}");
    assert_eq!(out, "started\n");
    assert!(
        err.contains("interrupted (Ctrl-C) at virtual time"),
        "{err}"
    );
    assert!(err.contains(":3:"), "{err}");
}

#[test]
fn with_real_time_lines_reach_a_pipe_when_printed() {
    use std::io::BufRead;
    let path = scratch(
        "real-time-lines",
        "print(\"a\");\nwork(1500);\nprint(\"b\");\n",
    );
    for runtime in ["js", "asyncio"] {
        let start = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_looplab"))
            .args(["run", "--runtime", runtime, "--real-time"])
            .arg(&path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("looplab runs");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().expect("a line").expect("text");
        let first_at = start.elapsed();
        let second = lines.next().expect("a line").expect("text");
        let second_at = start.elapsed();
        assert_eq!((first.as_str(), second.as_str()), ("a", "b"));
        assert!(first_at < Duration::from_millis(1200), "{first_at:?}");
        assert!(
            second_at >= Duration::from_millis(1500),
            "work(1500) took {second_at:?}"
        );
        assert_eq!(child.wait().expect("wait").code(), Some(0));
    }
}

#[test]
fn a_closed_stdout_pipe_stops_an_endless_printer() {
    let path = scratch(
        "closed-pipe",
        "let i = 0;\nwhile true { print(i); i = i + 1; }\n",
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg("\"$0\" run --max-steps 0 \"$1\" | head -2")
        .arg(env!("CARGO_BIN_EXE_looplab"))
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .expect("sh runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n1\n");
    // It stopped (the test returns), quietly: a closed pipe is no error
    // to report (the status, 141, is checked in tests/robustness.rs).
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err, "", "{err}");
}
