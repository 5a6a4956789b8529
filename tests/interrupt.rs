//! Ctrl-C on a `looplab run` that cannot answer it: the first SIGINT only
//! asks the run to stop (it is noticed between slices and events), so a run
//! stuck where it never checks — here, writing to a pipe nobody reads —
//! goes on; a second SIGINT ends the process at once with status 130.
//! (The first one's normal path is in `tests/robustness_runtime.rs`.)

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sigint(pid: u32) {
    let sent = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

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
