//! The `looplab run` process seen from outside, as a child process: what
//! reaches its output pipe when, and Ctrl-C on a run that cannot answer
//! it. (The ordinary Ctrl-C paths are in `tests/robustness_runtime.rs`.)

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sigint(pid: u32) {
    let sent = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

/// The first SIGINT only asks the run to stop (it is noticed between
/// slices and events), so a run stuck where it never checks — here,
/// writing to a pipe nobody reads — goes on; a second SIGINT ends the
/// process at once with status 130.
#[test]
fn a_second_ctrl_c_ends_a_run_blocked_on_its_output() {
    let dir = std::env::temp_dir().join(format!("looplab-interrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("blocked.lab");
    let mut file = std::fs::File::create(&path).expect("program file");
    // About 10 MB of output: far more than a pipe holds.
    file.write_all(
        b"for i in 0..100000 { print(\"line\", i, \"x\".repeat(100)); }\nprint(\"done\");\n",
    )
    .expect("write program");
    drop(file);
    let mut child = Command::new(env!("CARGO_BIN_EXE_looplab"))
        .arg("run")
        .arg(&path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("looplab runs");
    // Nobody reads `child.stdout`: once the pipe is full, the run blocks
    // in a write.
    std::thread::sleep(Duration::from_millis(1000));
    sigint(child.id());
    std::thread::sleep(Duration::from_millis(500));
    let after_first = child.try_wait().expect("try_wait");
    let mut after_second = None;
    if after_first.is_none() {
        sigint(child.id());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(status) = child.try_wait().expect("try_wait") {
                after_second = Some(status);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        after_first.is_none(),
        "a run blocked on its output cannot heed the first Ctrl-C (it ended: {after_first:?})"
    );
    let status = after_second.expect("the second Ctrl-C ends the process at once");
    assert_eq!(status.code(), Some(130));
}

/// With `--real-time`, a line printed before two seconds of work reaches
/// the pipe when printed, not when the run ends.
#[test]
fn a_real_time_run_hands_each_line_to_the_pipe_when_printed() {
    let dir = std::env::temp_dir().join(format!("looplab-lines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("lines.lab");
    std::fs::write(
        &path,
        "print(\"before\");\nwork(2000);\nprint(\"after\");\n",
    )
    .expect("write program");
    let mut child = Command::new(env!("CARGO_BIN_EXE_looplab"))
        .args(["run", "--real-time"])
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("looplab runs");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("text");
    let first_at = Instant::now();
    let second = lines.next().expect("a line").expect("text");
    let gap = first_at.elapsed();
    let status = child.wait().expect("wait");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!((first.as_str(), second.as_str()), ("before", "after"));
    assert!(
        gap >= Duration::from_millis(1000),
        "the first line came only {gap:?} before the second: it waited for the work"
    );
    assert_eq!(status.code(), Some(0));
}

/// On a terminal, each line shows when printed: a line printed before a
/// long computation does not wait for it.
#[test]
fn on_a_terminal_each_line_shows_when_printed() {
    let dir = std::env::temp_dir().join(format!("looplab-tty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("tty.lab");
    // About a second of computation in a debug build, several on a busy
    // machine.
    std::fs::write(
        &path,
        "print(\"first\");\nlet i = 0;\nwhile i < 5000000 { i += 1; }\nprint(\"second\");\n",
    )
    .expect("write program");
    let mut command = Command::new(env!("CARGO_BIN_EXE_looplab"));
    command.args(["run", "--max-steps", "0"]).arg(&path);
    let mut session =
        rexpect::session::spawn_command(command, Some(120_000)).expect("spawn looplab");
    session.exp_string("first").expect("the first line");
    let first_at = Instant::now();
    session.exp_string("second").expect("the second line");
    let gap = first_at.elapsed();
    session.exp_eof().expect("the run ends");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        gap >= Duration::from_millis(300),
        "the first line showed only {gap:?} before the second: it waited for the loop"
    );
}
