//! The VM/policy seam, exercised directly: a unit runs for a slice and
//! halts with a reason; a preempting slice stops a unit only at a switch
//! point (just before a loop back-edge, or at a function entry) or
//! anywhere, as asked, and resuming it gives the same result as running it
//! to the end.

use looplab::compiler::Globals as Names;
use looplab::diagnostic::SourceFile;
use looplab::driver::compile_source;
use looplab::runtime::PolicyKind;
use looplab::value::{Closure, Value};
use looplab::vm::{Globals, Halt, Preempt, Slice, UnitId, Vm};
use std::rc::Rc;

/// Compiles `program` and makes its top level a unit of a fresh VM.
fn unit_of(program: &str) -> (Vm, Globals, UnitId) {
    let source = SourceFile::new("seam.lab", program.to_string());
    let mut names = Names::default();
    let compiled = compile_source(&source, &mut names).unwrap_or_else(|_| panic!("compiles"));
    let mut vm = Vm::new(PolicyKind::Js.dialect());
    let mut globals = Globals::default();
    looplab::runtime::install_globals(&mut globals, &names.names, |_| None);
    let main = Rc::new(Closure::new(compiled.main, Box::new([])));
    let unit = vm.new_unit(main, Vec::new());
    (vm, globals, unit)
}

/// Runs a unit slice by slice; returns its result and how many slices it took.
fn run_in_slices(program: &str, slice: Slice) -> (String, usize) {
    let (mut vm, mut globals, unit) = unit_of(program);
    let mut slices = 0;
    loop {
        slices += 1;
        let stop = vm.run(unit, &mut globals, slice);
        assert!(
            stop.steps <= slice.budget.saturating_add(64),
            "a slice overran its budget"
        );
        match stop.halt {
            Halt::Preempted => continue,
            Halt::Finished(_) => return (vm.out.clone(), slices),
            _ => panic!("unexpected halt"),
        }
    }
}

const COUNTING: &str = "fn add(a, b) { return a + b; }
let total = 0;
for i in 0..1000 { total = add(total, i); }
print(total);";

#[test]
fn an_unbounded_slice_runs_to_the_end() {
    let (out, slices) = run_in_slices(COUNTING, Slice::UNBOUNDED);
    assert_eq!(out, "499500\n");
    assert_eq!(slices, 1);
}

#[test]
fn preempting_at_switch_points_gives_the_same_result() {
    let slice = Slice {
        budget: 50,
        preempt: Preempt::SwitchPoints,
    };
    let (out, slices) = run_in_slices(COUNTING, slice);
    assert_eq!(out, "499500\n");
    assert!(slices > 10, "the budget stopped the unit ({slices} slices)");
}

#[test]
fn preempting_anywhere_gives_the_same_result() {
    let slice = Slice {
        budget: 7,
        preempt: Preempt::Anywhere,
    };
    let (out, slices) = run_in_slices(COUNTING, slice);
    assert_eq!(out, "499500\n");
    assert!(
        slices > 100,
        "the budget stopped the unit ({slices} slices)"
    );
}

#[test]
fn a_switch_point_preemption_stops_at_a_back_edge_or_a_function_entry() {
    // A straight line of instructions has no switch point: a spent budget
    // does not stop it until the loop's back-edge.
    let program = "let x = 0; while x < 3 { x = x + 1; x = x + 1; x = x - 1; } print(x);";
    let (mut vm, mut globals, unit) = unit_of(program);
    let slice = Slice {
        budget: 1,
        preempt: Preempt::SwitchPoints,
    };
    let stop = vm.run(unit, &mut globals, slice);
    assert!(matches!(stop.halt, Halt::Preempted));
    let at = vm
        .fiber(unit)
        .frames
        .last()
        .map(|f| f.ip as usize)
        .unwrap_or(0);
    let fiber = vm.fiber(unit);
    let code = &fiber.closure_of(&fiber.frames[0]).function.code;
    // Stopped at a switch point: just before the loop's back-edge.
    assert!(
        matches!(code[at], looplab::bytecode::Op::Loop(_)),
        "stopped at {at}, not before a back-edge"
    );
    assert!(
        stop.steps > 1,
        "ran past the spent budget to the switch point"
    );
    loop {
        match vm.run(unit, &mut globals, slice).halt {
            Halt::Preempted => continue,
            Halt::Finished(v) => {
                assert!(matches!(v, Value::Nil));
                break;
            }
            _ => panic!("unexpected halt"),
        }
    }
    assert_eq!(vm.out, "3\n");
}

#[test]
fn a_switch_point_preemption_can_stop_at_a_function_entry() {
    // No loop: the only switch points are the entries of `f`.
    let program = "fn f(x) { return x + 1; }\nlet a = f(1);\nlet b = f(a);\nprint(b);";
    let (mut vm, mut globals, unit) = unit_of(program);
    let slice = Slice {
        budget: 1,
        preempt: Preempt::SwitchPoints,
    };
    let stop = vm.run(unit, &mut globals, slice);
    assert!(matches!(stop.halt, Halt::Preempted));
    let fiber = vm.fiber(unit);
    let top = fiber
        .frames
        .last()
        .map(|f| (f.ip, fiber.closure_of(f).function.name.to_string()));
    assert_eq!(top, Some((0, "f".to_string())), "stopped at f's entry");
    loop {
        match vm.run(unit, &mut globals, slice).halt {
            Halt::Preempted => continue,
            Halt::Finished(_) => break,
            _ => panic!("unexpected halt"),
        }
    }
    assert_eq!(vm.out, "3\n");
}
