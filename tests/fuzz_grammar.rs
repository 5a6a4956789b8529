//! Grammar-aware fuzzing on the stable toolchain: random programs made from
//! the grammar (`grammar/looplab.ebnf`, `grammar/REFERENCE.md`) — functions
//! and async functions, closures, loops, `try`/`catch`/`finally`, lists,
//! maps, templates, destructuring, `await`/`spawn`/`sleep`/`set_timeout`,
//! promises and their reactions, asyncio's queue, event and lock — each run
//! by the `looplab` binary under both policies, twice, with small limits.
//! Every run must end with a documented exit status (0, 1, 2; never a
//! signal, a panic or "internal error") before a wall-time watchdog, give
//! the same bytes twice, and, the programs being valid, never a syntax
//! error (a generated program the parser refuses is a generator or parser
//! bug).
//!
//! `cargo test` runs a bounded campaign: the first 80 programs of a fixed
//! seed (deterministic, about 20 s in a debug build). A longer
//! one: `LOOPLAB_FUZZ_SECONDS=900 cargo test --release --test fuzz_grammar
//! -- --nocapture` (programs until the time is up; `LOOPLAB_FUZZ_SEED=N`
//! for another sequence). See `tests/FUZZING.md`. A failing program is
//! written to `target/fuzz-findings/` and printed, to become a regression
//! test in `tests/robustness*.rs`.

mod fuzz_common;
use fuzz_common::Rng;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Xorshift: a small deterministic generator (the same seed, the same programs).
/// Where the statement being generated sits.
#[derive(Clone, Copy, Default)]
struct Ctx {
    in_async: bool,
    in_fn: bool,
    in_loop: bool,
    /// How deep in statements and expressions: the generator stops nesting
    /// past a small bound.
    depth: usize,
}

struct Gen {
    rng: Rng,
    /// Names in scope (all plain values; functions are in `fns`).
    vars: Vec<String>,
    /// Declared functions: name, arity, async.
    fns: Vec<(String, usize, bool)>,
    fresh: usize,
}

const MAX_DEPTH: usize = 4;

impl Gen {
    fn name(&mut self, prefix: &str) -> String {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh)
    }

    fn program(&mut self) -> String {
        let mut out = String::new();
        // A few functions first (hoisted anyway), some async.
        for _ in 0..1 + self.rng.below(3) {
            out.push_str(&self.fn_decl(Ctx::default()));
        }
        let ctx = Ctx {
            // Top-level `await` makes the program its async main.
            in_async: self.rng.chance(60),
            ..Ctx::default()
        };
        for _ in 0..3 + self.rng.below(8) {
            // Half the statements guarded: an error ends one, not the run.
            let guarded = self.rng.chance(50);
            let (saved, saved_fns) = (self.vars.len(), self.fns.len());
            let stmt = self.stmt(ctx);
            if guarded {
                // Names it declares are not visible after the `try`.
                self.vars.truncate(saved);
                self.fns.truncate(saved_fns);
                out.push_str(&format!(
                    "try {{\n{stmt}}} catch e {{ print(\"caught\", e); }}\n"
                ));
            } else {
                out.push_str(&stmt);
            }
        }
        out
    }

    fn fn_decl(&mut self, ctx: Ctx) -> String {
        let is_async = self.rng.chance(50);
        let arity = self.rng.below(3);
        let name = self.name("f");
        let params: Vec<String> = (0..arity).map(|i| format!("p{i}")).collect();
        let saved = self.vars.clone();
        self.vars.extend(params.iter().cloned());
        let inner = Ctx {
            in_async: is_async,
            in_fn: true,
            in_loop: false,
            depth: ctx.depth + 1,
        };
        let body = self.block(inner);
        self.vars = saved;
        // Declared after its body: no recursion (calls to it from itself
        // would only feed the step limit).
        self.fns.push((name.clone(), arity, is_async));
        format!(
            "{}fn {name}({}) {body}\n",
            if is_async { "async " } else { "" },
            params.join(", ")
        )
    }

    fn block(&mut self, ctx: Ctx) -> String {
        let saved = self.vars.len();
        let saved_fns = self.fns.len();
        let mut out = String::from("{\n");
        let n = if ctx.depth >= MAX_DEPTH {
            1
        } else {
            1 + self.rng.below(3)
        };
        for _ in 0..n {
            out.push_str(&self.stmt(ctx));
        }
        if ctx.in_fn && self.rng.chance(50) {
            let value = self.expr(ctx);
            out.push_str(&format!("return {value};\n"));
        }
        out.push('}');
        self.vars.truncate(saved);
        self.fns.truncate(saved_fns);
        out
    }

    fn stmt(&mut self, ctx: Ctx) -> String {
        let deeper = Ctx {
            depth: ctx.depth + 1,
            ..ctx
        };
        let nest = ctx.depth < MAX_DEPTH;
        match self.rng.below(if nest { 24 } else { 8 }) {
            0 | 1 => {
                let value = self.expr(ctx);
                let name = self.name("v");
                self.vars.push(name.clone());
                format!("let {name} = {value};\n")
            }
            2 if self.vars.iter().any(|v| !v.starts_with('i')) => {
                // Not a loop counter (`i…`): the loops stay bounded.
                let names: Vec<&String> =
                    self.vars.iter().filter(|v| !v.starts_with('i')).collect();
                let name = names[self.rng.below(names.len())].clone();
                let op = self.rng.pick(&["=", "+=", "-=", "*="]);
                let value = self.expr(ctx);
                format!("{name} {op} {value};\n")
            }
            3 | 4 => {
                let a = self.expr(ctx);
                let b = self.expr(ctx);
                format!("print({a}, {b});\n")
            }
            5 if ctx.in_async => {
                let d = self.duration();
                format!("await sleep({d});\n")
            }
            6 if ctx.in_loop => self.rng.pick(&["break;\n", "continue;\n"]).to_string(),
            7 => {
                let (a, b) = (self.name("d"), self.name("d"));
                let x = self.expr(ctx);
                let stmt = if self.rng.chance(50) {
                    format!("let [{a}, {b}] = [{x}, 2];\n")
                } else {
                    format!("let {{{a}, k: {b}}} = {{{a}: {x}, k: [1]}};\n")
                };
                self.vars.push(a);
                self.vars.push(b);
                stmt
            }
            8 | 9 => {
                let cond = self.expr(ctx);
                let then = self.block(deeper);
                let mut s = format!("if {cond} {then}");
                if self.rng.chance(40) {
                    let c2 = self.expr(ctx);
                    let b2 = self.block(deeper);
                    s.push_str(&format!(" else if {c2} {b2}"));
                }
                if self.rng.chance(50) {
                    let b3 = self.block(deeper);
                    s.push_str(&format!(" else {b3}"));
                }
                s.push('\n');
                s
            }
            10 => {
                // A bounded while: its counter goes up before anything
                // that could `continue`.
                let i = self.name("i");
                let k = self.rng.below(6);
                self.vars.push(i.clone());
                let body = self.block(Ctx {
                    in_loop: true,
                    ..deeper
                });
                format!("let {i} = 0;\nwhile {i} < {k} {{\n{i} += 1;\n{body}\n}}\n")
            }
            11 | 12 => {
                let v = self.name("x");
                let iter = if self.rng.chance(50) {
                    format!("0..{}", self.rng.below(5))
                } else {
                    self.list(ctx)
                };
                self.vars.push(v.clone());
                let body = self.block(Ctx {
                    in_loop: true,
                    ..deeper
                });
                self.vars.pop();
                format!("for {v} in {iter} {body}\n")
            }
            13 | 14 => {
                let body = self.block(deeper);
                let e = self.name("e");
                self.vars.push(e.clone());
                let handler = self.block(deeper);
                self.vars.pop();
                let mut s = format!("try {body} catch {e} {handler}");
                if self.rng.chance(40) {
                    let fin = self.block(deeper);
                    s.push_str(&format!(" finally {fin}"));
                }
                s.push('\n');
                s
            }
            15 => {
                let value = self.expr(ctx);
                if self.rng.chance(50) {
                    format!("throw error({value}, \"ValueError\");\n")
                } else {
                    format!("throw {value};\n")
                }
            }
            16 => {
                let body = self.block(Ctx {
                    in_async: false,
                    in_fn: true,
                    in_loop: false,
                    ..deeper
                });
                let d = self.duration();
                format!("set_timeout(fn() {body}, {d});\n")
            }
            17 => {
                let body = self.block(Ctx {
                    in_async: false,
                    in_fn: true,
                    in_loop: false,
                    ..deeper
                });
                format!("queue_microtask(fn() {body});\n")
            }
            18 => self.fn_decl(ctx),
            19 => {
                let call = self.call(ctx, true);
                format!("spawn {call};\n")
            }
            20 if ctx.in_async => {
                let e = self.async_expr(ctx);
                format!("print(await {e});\n")
            }
            21 => {
                let v = self.expr(ctx);
                let body = self.block(Ctx {
                    in_async: false,
                    in_fn: true,
                    in_loop: false,
                    ..deeper
                });
                let then = self.rng.pick(&["then", "catch", "finally"]);
                format!("Promise.resolve({v}).{then}(fn(r) {body});\n")
            }
            22 if ctx.in_async => self.asyncio_snippet(ctx),
            23 => {
                let call = self.call(ctx, false);
                format!("{call};\n")
            }
            _ => {
                let e = self.expr(ctx);
                format!("print({e});\n")
            }
        }
    }

    /// A few uses of asyncio's library (under js each is a `TypeError`
    /// naming what Node offers: a clean error all the same).
    fn asyncio_snippet(&mut self, ctx: Ctx) -> String {
        let n = self.name("q");
        let v = self.expr(ctx);
        match self.rng.below(4) {
            0 => format!(
                "let {n} = queue();\nspawn (async fn() {{ await {n}.put({v}); }})();\nprint(await {n}.get());\n"
            ),
            1 => format!(
                "let {n} = event();\nspawn (async fn() {{ await sleep(1ms); {n}.set(); }})();\nawait {n}.wait();\nprint({n}.is_set());\n"
            ),
            2 => format!("let {n} = lock();\nawait {n}.acquire();\nprint({v});\n{n}.release();\n"),
            _ => format!("print(await wait_for(sleep(2ms, {v}), 5ms));\n"),
        }
    }

    fn duration(&mut self) -> String {
        match self.rng.below(5) {
            0 => "0".to_string(),
            1 => format!("{}ms", self.rng.below(20)),
            2 => format!("{}", self.rng.below(50)),
            3 => "1s".to_string(),
            _ => format!("{}us", self.rng.below(900)),
        }
    }

    fn list(&mut self, ctx: Ctx) -> String {
        let n = self.rng.below(4);
        let items: Vec<String> = (0..n).map(|_| self.expr(ctx)).collect();
        format!("[{}]", items.join(", "))
    }

    /// A call of a declared function (or a lambda) with the right arity.
    fn call(&mut self, ctx: Ctx, want_async: bool) -> String {
        let candidates: Vec<(String, usize, bool)> = self
            .fns
            .iter()
            .filter(|(_, _, a)| !want_async || *a)
            .cloned()
            .collect();
        if candidates.is_empty() {
            return if want_async {
                "(async fn() { return 1; })()".to_string()
            } else {
                "len([1, 2])".to_string()
            };
        }
        let (name, arity, _) = candidates[self.rng.below(candidates.len())].clone();
        let args: Vec<String> = (0..arity).map(|_| self.expr(ctx)).collect();
        format!("{name}({})", args.join(", "))
    }

    /// Something to `await`.
    fn async_expr(&mut self, ctx: Ctx) -> String {
        match self.rng.below(5) {
            0 => {
                let d = self.duration();
                let v = self.expr(ctx);
                format!("sleep({d}, {v})")
            }
            1 => self.call(ctx, true),
            2 => {
                let (a, b) = (self.call(ctx, true), self.call(ctx, true));
                format!("gather({a}, {b})")
            }
            3 => {
                let v = self.expr(ctx);
                format!("Promise.resolve({v})")
            }
            _ => {
                let d = self.duration();
                // Inside the plain `fn`s of the executor and the timer.
                let v = self.expr(Ctx {
                    in_async: false,
                    ..ctx
                });
                format!(
                    "promise(fn(resolve, reject) {{ set_timeout(fn() {{ resolve({v}); }}, {d}); }})"
                )
            }
        }
    }

    fn expr(&mut self, ctx: Ctx) -> String {
        let deeper = Ctx {
            depth: ctx.depth + 1,
            ..ctx
        };
        if ctx.depth >= MAX_DEPTH + 2 {
            return self.atom();
        }
        match self.rng.below(20) {
            0..=4 => self.atom(),
            5 | 6 if !self.vars.is_empty() => self.vars[self.rng.below(self.vars.len())].clone(),
            7 => {
                let op = self.rng.pick(&["==", "!=", "&&", "||"]);
                let (a, b) = (self.expr(deeper), self.expr(deeper));
                format!("({a} {op} {b})")
            }
            8 => self.number(deeper),
            9 => {
                let op = self.rng.pick(&["-", "!"]);
                let a = self.expr(deeper);
                format!("{op}{a}")
            }
            10 => self.list(deeper),
            11 => {
                let (a, b) = (self.expr(deeper), self.expr(deeper));
                format!("{{a: {a}, \"b c\": {b}}}")
            }
            12 => {
                let a = self.expr(deeper);
                format!("`t${{{a}}}!`")
            }
            13 => {
                let l = self.list(deeper);
                let m = self.rng.pick(&[
                    ".map(fn(x) { return x; })",
                    ".filter(fn(x) { return x; })",
                    ".join(\"-\")",
                    ".len()",
                    ".reverse()",
                    ".slice(1)",
                    ".contains(1)",
                    ".index_of(nil)",
                    "[0]",
                    "[-1]",
                    ".reduce(fn(a, b) { return a; }, 0)",
                ]);
                format!("{l}{m}")
            }
            14 => {
                let a = self.expr(deeper);
                let f = self
                    .rng
                    .pick(&["str", "len", "int", "float", "abs", "type_of", "round"]);
                format!("{f}({a})")
            }
            15 => self.call(deeper, false),
            16 => {
                let saved = self.vars.len();
                self.vars.push("p".to_string());
                let body = self.block(Ctx {
                    in_async: false,
                    in_fn: true,
                    in_loop: false,
                    ..deeper
                });
                self.vars.truncate(saved);
                format!("(fn(p) {body})({})", self.rng.below(9))
            }
            17 => {
                let a = self.expr(deeper);
                let m = self.rng.pick(&[
                    ".upper()",
                    ".split(\"\")",
                    ".repeat(3)",
                    ".trim()",
                    ".starts_with(\"1\")",
                ]);
                format!("str({a}){m}")
            }
            18 if ctx.in_async => {
                let e = self.async_expr(deeper);
                format!("(await {e})")
            }
            _ => {
                let m = self
                    .rng
                    .pick(&["{k: 1}.k", "{k: [1, 2]}.k[1]", "now()", "min(3, 1, 2)"]);
                m.to_string()
            }
        }
    }

    /// An expression that is a number (mostly): arithmetic on numbers
    /// runs on instead of stopping at a `TypeError`.
    fn number(&mut self, ctx: Ctx) -> String {
        if ctx.depth >= MAX_DEPTH + 2 || self.rng.chance(40) {
            return match self.rng.below(6) {
                0 => "0".to_string(),
                1 => format!("{}.25", self.rng.below(10)),
                2 => "9223372036854775807".to_string(),
                3 => "len([1, 2])".to_string(),
                _ => format!("{}", self.rng.below(100)),
            };
        }
        let deeper = Ctx {
            depth: ctx.depth + 1,
            ..ctx
        };
        let op = self
            .rng
            .pick(&["+", "-", "*", "/", "%", "<", "<=", ">", ">="]);
        let (a, b) = (self.number(deeper), self.number(deeper));
        format!("({a} {op} {b})")
    }

    fn atom(&mut self) -> String {
        match self.rng.below(12) {
            0 => "nil".to_string(),
            1 => "true".to_string(),
            2 => "false".to_string(),
            3 => format!("{}", self.rng.below(100)),
            4 => format!("{}.5", self.rng.below(10)),
            5 => "\"s\"".to_string(),
            6 => "\"\"".to_string(),
            7 => format!("{}ms", self.rng.below(10)),
            8 => "9223372036854775807".to_string(),
            9 => "0.1".to_string(),
            10 => "[]".to_string(),
            _ => format!("-{}", self.rng.below(5)),
        }
    }
}

/// Generates the `index`th program of the sequence `seed`.
fn generate(seed: u64, index: u64) -> String {
    let mut generator = Gen {
        rng: Rng((seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1),
        vars: Vec::new(),
        fns: Vec::new(),
        fresh: 0,
    };
    // Warm the generator up: nearby seeds would start alike.
    for _ in 0..8 {
        generator.rng.next();
    }
    generator.program()
}

const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `path` under `policy` with small limits; a run past the watchdog is
/// killed and reported.
/// A run's stdout, stderr and exit status (`None`: ended by a signal).
type Outcome = (Vec<u8>, Vec<u8>, Option<i32>);

fn run(path: &Path, policy: &str) -> Result<Outcome, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_looplab"))
        .args([
            "run",
            path.to_str().unwrap_or_default(),
            "--runtime",
            policy,
            "--max-steps",
            "300000",
            "--max-events",
            "20000",
            "--max-memory",
            "256MB",
            "--max-time",
            "1h",
            "--color",
            "never",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {WATCHDOG:?} ({policy})"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    Ok((out, err, status.code()))
}

#[test]
fn generated_programs_run_cleanly_and_deterministically() {
    let (deadline, seed) = fuzz_common::settings(0x6a7a_11ab);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz_grammar");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(format!("current-{}.lab", std::process::id()));
    let mut tried = 0u64;
    let mut statuses = [0u64; 3];
    while deadline.map_or(tried < 80, |d| Instant::now() < d) {
        let program = generate(seed, tried);
        std::fs::write(&path, &program).expect("write the program");
        for policy in ["js", "asyncio"] {
            let first = run(&path, policy)
                .unwrap_or_else(|e| panic!("{}", fuzz_common::record("grammar", &program, &e)));
            let second = run(&path, policy)
                .unwrap_or_else(|e| panic!("{}", fuzz_common::record("grammar", &program, &e)));
            let stderr = String::from_utf8_lossy(&first.1);
            assert!(
                matches!(first.2, Some(0..=2)),
                "{}",
                fuzz_common::record(
                    "grammar",
                    &program,
                    &format!("{policy}: exit status {:?}\n{stderr}", first.2)
                )
            );
            assert!(
                !stderr.contains("internal error") && !stderr.contains("panicked"),
                "{}",
                fuzz_common::record("grammar", &program, &format!("{policy}: {stderr}"))
            );
            assert!(
                !stderr.contains("syntax error") && first.2 != Some(2),
                "{}",
                fuzz_common::record(
                    "grammar",
                    &program,
                    &format!("{policy}: a generated program is refused\n{stderr}")
                )
            );
            assert!(
                first == second,
                "{}",
                fuzz_common::record("grammar", &program, &format!("{policy}: two runs differ"))
            );
            if let Some(code @ 0..=2) = first.2 {
                statuses[code as usize] += 1;
            }
        }
        tried += 1;
    }
    let _ = std::fs::remove_file(&path);
    // The generator must make programs that run to the end, not only
    // programs that stop on an error.
    assert!(statuses[0] > 0, "no generated program ran cleanly");
    eprintln!(
        "fuzz_grammar: {tried} programs, each run twice under js and asyncio; runs ending 0: {}, 1: {}",
        statuses[0], statuses[1]
    );
}
