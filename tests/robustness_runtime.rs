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
    #[allow(dead_code)]
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
