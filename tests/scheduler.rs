//! Tests of the schedulers themselves, through the library API: timer
//! ordering, queue draining, the virtual clock, shutdown cancellation,
//! deadlock and never-settled detection, limits and determinism.

use looplab::diagnostic::SourceFile;
use looplab::driver::{RunOptions, RunResult, run_source};
use looplab::runtime::PolicyKind;

fn run_with(policy: PolicyKind, program: &str, tweak: impl FnOnce(&mut RunOptions)) -> RunResult {
    let mut options = RunOptions {
        runtime: Some(policy),
        ..RunOptions::default()
    };
    tweak(&mut options);
    run_source(&SourceFile::new("test.lab", program), &options)
}

fn js(program: &str) -> RunResult {
    run_with(PolicyKind::Js, program, |_| {})
}

fn asyncio(program: &str) -> RunResult {
    run_with(PolicyKind::Asyncio, program, |_| {})
}

fn lines(result: &RunResult) -> Vec<&str> {
    result.stdout.lines().collect()
}

#[test]
fn js_timers_fire_by_due_time_then_creation_order() {
    let r = js(r#"
        set_timeout(fn() { print("c 20"); }, 20);
        set_timeout(fn() { print("a 10"); }, 10);
        set_timeout(fn() { print("b 10"); }, 10);
        set_timeout(fn() { print("zero"); }, 0);
        set_timeout(fn() { print("one"); }, 1);
    "#);
    assert_eq!(lines(&r), ["zero", "one", "a 10", "b 10", "c 20"]);
}

#[test]
fn js_zero_delay_is_one_millisecond() {
    let r = js(r#"set_timeout(fn() { print("at", now()); }, 0);"#);
    assert_eq!(lines(&r), ["at 1"]);
}

#[test]
fn js_next_ticks_run_before_microtasks_and_both_drain_after_each_timer() {
    let r = js(r#"
        set_timeout(fn() {
            print("timer 1");
            Promise.resolve().then(fn() { print("micro from timer 1"); });
            next_tick(fn() { print("tick from timer 1"); });
        }, 5);
        set_timeout(fn() { print("timer 2"); }, 5);
        Promise.resolve().then(fn() { print("micro"); });
        next_tick(fn() { print("tick"); });
        print("sync");
    "#);
    assert_eq!(
        lines(&r),
        [
            "sync",
            "tick",
            "micro",
            "timer 1",
            "tick from timer 1",
            "micro from timer 1",
            "timer 2"
        ]
    );
}

#[test]
fn asyncio_runs_only_the_callbacks_ready_at_the_start_of_an_iteration() {
    // The first iteration's snapshot is [a, timer 0] (a due timer joins the
    // back of the ready queue); b, queued while a runs, waits for the next.
    let r = asyncio(
        r#"
        queue_microtask(fn() { print("a"); queue_microtask(fn() { print("b"); }); });
        set_timeout(fn() { print("timer 0"); }, 0);
        await sleep(1);
    "#,
    );
    assert_eq!(lines(&r), ["a", "timer 0", "b"]);
}

#[test]
fn asyncio_equal_sleeps_started_together_wake_together() {
    let r = asyncio(
        r#"
        async fn nap(name) { await sleep(10); print(name, now()); }
        await gather(nap("x"), nap("y"), nap("z"));
    "#,
    );
    assert_eq!(lines(&r), ["x 10", "y 10", "z 10"]);
}

#[test]
fn virtual_clock_does_not_wait_and_charges_work() {
    let started = std::time::Instant::now();
    let r = js(r#"
        await sleep(1h);
        print(now());
        work(250ms);
        print(now());
    "#);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(lines(&r), ["3600000", "3600250"]);
}

#[test]
fn cpu_work_delays_due_timers_under_both_policies() {
    let program = r#"
        set_timeout(fn() { print("timer at", now()); }, 10);
        work(50ms);
        print("work done at", now());
    "#;
    for r in [js(program), asyncio(program)] {
        assert_eq!(
            lines(&r),
            ["work done at 50", "timer at 50"],
            "{}",
            r.stderr
        );
    }
}

#[test]
fn asyncio_shutdown_cancels_pending_tasks_and_runs_their_finally() {
    let r = asyncio(
        r#"
        async fn slow() {
            try { await sleep(1h); print("never"); }
            catch e { print("catch does not see a cancellation"); }
            finally { print("finally runs"); }
        }
        spawn slow();
        await sleep(1);
        print("main ends");
    "#,
    );
    assert_eq!(lines(&r), ["main ends", "finally runs"]);
    assert!(r.stderr.contains("cancelling 1 task"), "{}", r.stderr);
    assert_eq!(r.status, 0);
}

#[test]
fn asyncio_deadlock_names_the_waiting_task() {
    let r = asyncio(
        r#"
        async fn waiter() { await promise(fn(resolve) {}); }
        await spawn waiter();
    "#,
    );
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("deadlock"), "{}", r.stderr);
    assert!(r.stderr.contains("task `waiter`"), "{}", r.stderr);
}

#[test]
fn js_never_settled_promise_ends_quietly_with_a_note() {
    let r = js(r#"
        async fn waiter() { await promise(fn(resolve) {}); print("never"); }
        waiter();
        print("script done");
    "#);
    assert_eq!(lines(&r), ["script done"]);
    assert_eq!(r.status, 0);
    assert!(r.stderr.contains("never settled"), "{}", r.stderr);
}

#[test]
fn js_unhandled_rejection_exits_1_and_drops_timers() {
    let r = js(r#"
        set_timeout(fn() { print("never"); }, 1);
        Promise.reject("boom");
        print("sync");
    "#);
    assert_eq!(lines(&r), ["sync"]);
    assert_eq!(r.status, 1);
    assert!(
        r.stderr.contains("unhandled promise rejection: boom"),
        "{}",
        r.stderr
    );
}

#[test]
fn step_limit_stops_a_runaway_loop_under_both_policies() {
    for policy in [PolicyKind::Js, PolicyKind::Asyncio] {
        let r = run_with(policy, "while true {}", |o| o.max_steps = 10_000);
        assert_eq!(r.status, 1);
        assert!(r.stderr.contains("step limit"), "{}", r.stderr);
    }
}

#[test]
fn time_limit_stops_an_endless_sleeping_loop() {
    let r = run_with(PolicyKind::Js, "while true { await sleep(1s); }", |o| {
        o.config.time_limit_ns = 10 * 1_000_000_000
    });
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("time limit"), "{}", r.stderr);
}

#[test]
fn wake_latency_is_configurable() {
    let program = "await sleep(10); print(now());";
    let r = run_with(PolicyKind::Asyncio, program, |o| {
        o.config.wake_latency_ns = 5_000_000
    });
    assert_eq!(lines(&r), ["15"]);
}

#[test]
fn runs_are_deterministic() {
    let program = r#"
        async fn worker(i) { await sleep(i % 3); print("worker", i, now()); return i; }
        let ts = [];
        for i in 0..20 { ts.push(spawn worker(i)); }
        print(await Promise.all(ts));
    "#;
    for policy in [PolicyKind::Js, PolicyKind::Asyncio] {
        let first = run_with(policy, program, |_| {});
        for _ in 0..3 {
            let again = run_with(policy, program, |_| {});
            assert_eq!(first.stdout, again.stdout);
            assert_eq!(first.stderr, again.stderr);
        }
    }
}

#[test]
fn real_time_paces_the_virtual_clock() {
    let started = std::time::Instant::now();
    // Output is streamed as it happens in real time, so it is not collected.
    let r = run_with(PolicyKind::Js, "await sleep(60ms);", |o| {
        o.config.real_time = true
    });
    assert_eq!(r.status, 0);
    assert!(started.elapsed() >= std::time::Duration::from_millis(60));
}

/// `await sleep(d)` right after the call (the js policy lets the timer wake
/// the unit and drops the promise at once) and a sleep whose promise is
/// stored first (kept and resolved) keep node's order among timers and
/// microtasks (recorded with node 20: the same lines from the twin with
/// `const sleep = (ms) => new Promise((r) => setTimeout(r, ms))`).
#[test]
fn js_an_awaited_sleep_keeps_its_place_among_timers_whether_or_not_its_promise_is_kept() {
    let r = js(r#"
        async fn a() { await sleep(50ms); print("a woke"); Promise.resolve(1).then(fn(v) { print("a micro"); }); }
        async fn b() { let p = sleep(50ms); await p; print("b woke"); }
        async fn c() { let p = sleep(50ms); let q = p; await p; print("c woke", q == p); }
        set_timeout(fn() { print("timer"); Promise.resolve(1).then(fn(v) { print("timer micro"); }); }, 50);
        a(); b(); c();
        set_timeout(fn() { print("timer 2"); }, 50);
    "#);
    assert_eq!(
        lines(&r),
        [
            "timer",
            "timer micro",
            "a woke",
            "a micro",
            "b woke",
            "c woke true",
            "timer 2"
        ]
    );
}
