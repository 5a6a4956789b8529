//! Why a unit stopped, and how long it may run: the seam between the VM
//! and the runtime policies. The VM runs one unit for a `Slice` and returns
//! a `Halt`; the policy acts on it and resumes the unit (or not). The VM
//! never calls the policy and never runs another unit from inside a run.

use super::{Origin, Thrown};
use crate::value::{Closure, HandleRef, Value};
use std::rc::Rc;

pub enum Halt {
    /// The unit's entry function returned: the unit is over.
    Finished(Value),
    /// An error escaped the unit's entry function: the unit is over.
    Threw(Thrown),
    /// The slice's budget is spent (at a switch point, when the slice
    /// preempts only there). Resumable: run the unit again.
    Preempted,
    /// The runaway limit (`--max-steps`) was reached here. Fatal.
    StepLimit(Rc<Origin>),
    /// `await value`: the policy decides what it means.
    Await(Value),
    /// `spawn callee(args)`.
    Spawn { callee: Value, args: Vec<Value> },
    /// A call of an `async fn` (JavaScript starts it now; Python makes a
    /// coroutine).
    CallAsync {
        closure: Rc<Closure>,
        args: Vec<Value>,
    },
    /// A call of one of the policy's primitives (`sleep`, `set_timeout`, …).
    Primitive {
        primitive: HandleRef,
        args: Vec<Value>,
    },
    /// A method call on one of the policy's objects (`p.then(f)`, `t.cancel()`).
    Method {
        receiver: HandleRef,
        name: Rc<str>,
        args: Vec<Value>,
    },
    /// A frame the policy pushed with a mark returned `value` (which is not
    /// pushed: the policy resumes the unit with what the call evaluates to).
    Returned { mark: u32, value: Value },
    /// An error unwound past a frame the policy pushed with a mark; the
    /// frame is gone. Resuming with `ResumeWith::Throw` unwinds on.
    Unwound { mark: u32, thrown: Thrown },
}

/// How long a unit may run before the VM stops it with `Halt::Preempted`.
#[derive(Clone, Copy, Debug)]
pub struct Slice {
    /// Instructions the unit may execute in this slice.
    pub budget: u64,
    pub preempt: Preempt,
}

/// Where a spent budget stops a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preempt {
    /// At the next instruction (a free-threaded core, an OS time slice).
    Anywhere,
    /// At the next switch point: a loop back-edge or a function entry,
    /// where CPython 3.11 checks its eval breaker.
    SwitchPoints,
}

impl Slice {
    /// No preemption: the unit runs until it halts for another reason.
    pub const UNBOUNDED: Slice = Slice {
        budget: u64::MAX,
        preempt: Preempt::Anywhere,
    };
}

/// A slice's result: why the unit stopped and how many instructions it ran.
pub struct Stop {
    pub halt: Halt,
    pub steps: u64,
}
