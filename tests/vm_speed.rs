//! The dispatch loop's data layout and fast paths: an `Op` is 8 bytes; the
//! code slice the loop caches follows every change of running function
//! (calls, returns, caught errors unwinding frames, preemption and resume);
//! operands narrowed to 16 bits are reported, not truncated.

use looplab::bytecode::Op;
use looplab::compiler::Globals as Names;
use looplab::diagnostic::SourceFile;
use looplab::driver::compile_source;
use looplab::runtime::PolicyKind;
use looplab::value::Closure;
use looplab::vm::{Globals, Halt, Preempt, Slice, Vm};
use std::rc::Rc;

#[test]
fn an_op_is_eight_bytes() {
    assert_eq!(std::mem::size_of::<Op>(), 8);
}

/// Runs `program` in slices of `budget` instructions (preempting anywhere)
/// and returns what it printed.
fn run(program: &str, budget: u64) -> String {
    let source = SourceFile::new("vm_speed.lab", program.to_string());
    let mut names = Names::default();
    let compiled = compile_source(&source, &mut names).unwrap_or_else(|_| panic!("compiles"));
    let mut vm = Vm::new(PolicyKind::Js.dialect());
    let mut globals = Globals::default();
    looplab::runtime::install_globals(&mut globals, &names.names, |_| None);
    let main = Rc::new(Closure::new(compiled.main, Box::new([])));
    let unit = vm.new_unit(main, Vec::new());
    let slice = Slice {
        budget,
        preempt: Preempt::Anywhere,
    };
    loop {
        match vm.run(unit, &mut globals, slice).halt {
            Halt::Preempted => continue,
            Halt::Finished(_) => return vm.out.clone(),
            Halt::Threw(t) => panic!("threw {}", t.value.repr(looplab::value::Flavor::Js)),
            _ => panic!("unexpected halt"),
        }
    }
}

/// Calls and returns between functions of different code, recursion, and
/// errors thrown deep and caught frames above: each switches the code the
/// loop fetches from.
const SWITCHING: &str = r#"
fn is_even(n) { if n == 0 { return true; } return is_odd(n - 1); }
fn is_odd(n) { if n == 0 { return false; } return is_even(n - 1); }
fn fib(n) { if n < 2 { return n; } return fib(n - 1) + fib(n - 2); }
fn deep(n) { if n == 0 { throw "bottom"; } return deep(n - 1) + 1; }
fn catcher(n) {
    try { return deep(n); } catch e { return "caught " + e + " after " + str(n); }
}
fn adder(k) { return fn(x) { return x + k; }; }
let add5 = adder(5);
let parts = [];
for i in 0..6 {
    parts.push(str(is_even(i)) + ":" + str(fib(i + 5)) + ":" + str(add5(i)));
}
print(parts.join(" "));
print(catcher(25));
let m = {"f": fn(a, b) { return a * b; }};
let fs = [];
for x in [3, 1, 2] { fs.push(fib(x + 10)); }
print(m.f(6, 7), fs);
"#;

const SWITCHING_OUT: &str = "true:5:5 false:8:6 true:13:7 false:21:8 true:34:9 false:55:10\n\
caught bottom after 25\n42 [ 233, 89, 144 ]\n";

#[test]
fn the_code_slice_follows_calls_returns_and_throws() {
    assert_eq!(run(SWITCHING, u64::MAX), SWITCHING_OUT);
}

#[test]
fn the_code_slice_is_reloaded_after_every_preemption() {
    for budget in [1, 2, 3, 7, 50] {
        assert_eq!(run(SWITCHING, budget), SWITCHING_OUT, "budget {budget}");
    }
}

fn compile_errors(program: &str) -> Vec<String> {
    let source = SourceFile::new("vm_speed.lab", program.to_string());
    let mut names = Names::default();
    match compile_source(&source, &mut names) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics.iter().map(|d| d.title.clone()).collect(),
    }
}

#[test]
fn a_method_call_with_too_many_arguments_is_an_error() {
    let args = vec!["0"; 70_000].join(", ");
    let errors = compile_errors(&format!("let xs = [];\nxs.push({args});\n"));
    assert_eq!(
        errors,
        vec!["too many arguments in one method call (at most 65535)".to_string()]
    );
    let fits = vec!["0"; 65_535].join(", ");
    assert!(compile_errors(&format!("let xs = [];\nxs.push({fits});\n")).is_empty());
}

#[test]
fn a_frame_is_twenty_four_bytes() {
    assert_eq!(std::mem::size_of::<looplab::vm::Frame>(), 12);
}

/// `local OP local` is one instruction with an integer fast path; anything
/// else (floats, strings, overflow, a type error) takes the general path.
#[test]
fn local_op_local_falls_back_to_the_general_operators() {
    let program = r#"
fn f(a, b) {
    let sum = a + b;
    if a < b { return [sum, a <= b, "lt"]; }
    return [sum, a == b, "ge"];
}
print(f(2, 3), f(1.5, 2), f("x", "y"), f(4, 4));
fn g(a, b) { return a * b; }
try { print(g(9223372036854775807, 2)); } catch e { print(e.kind); }
try { print(g("x", "y")); } catch e { print(e.kind); }
"#;
    const EXPECTED: &str = "[ 5, true, 'lt' ] [ 3.5, true, 'lt' ] [ 'xy', true, 'lt' ] [ 8, true, 'ge' ]\n\
                            OverflowError\nTypeError\n";
    assert_eq!(run(program, u64::MAX), EXPECTED);
}

#[test]
fn a_sleeping_units_vm_state_stays_small() {
    use looplab::vm::{Fiber, Frames};
    use std::mem::size_of;
    // A million sleeping tasks keep a million fibers in the arena: 48 bytes
    // each (the stack, a vector in 16 bytes; the running frame in line with the boxed
    // frames below it, the depth, the mark count and two flags; the boxed
    // handlers and pending error), and no frame allocation.
    assert_eq!(size_of::<Frames>(), 24);
    assert!(
        size_of::<Fiber>() <= 48,
        "Fiber is {} bytes",
        size_of::<Fiber>()
    );
}
