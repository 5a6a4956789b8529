//! A unit of execution as data: its frames, operand stack and `try`
//! handlers. Any unit can stop at any instruction and be resumed later,
//! because nothing about it lives on the Rust stack. Invariant: every
//! frame's callee (a `Value::Closure`) sits in the stack slot just below
//! its locals for as long as the frame runs (`Fiber::closure_of`).

use super::Thrown;
use crate::value::{Closure, Value};
use std::rc::Rc;

/// A unit's number in the VM's arena (reused after the unit ends).
pub type UnitId = u32;

/// 12 bytes (`tests/vm_speed.rs` checks it): a sleeping task keeps one.
/// A frame holds no reference to its closure: the callee value sits on the
/// stack just below the frame's locals (`stack[base - 1]`, see
/// `Fiber::closure_of`), and that slot keeps it alive for as long as the
/// frame runs.
pub struct Frame {
    pub ip: u32,
    /// Stack index of the frame's first local (the callee, a
    /// `Value::Closure`, sits just below, at `base - 1`).
    pub base: u32,
    /// Non-zero for a frame the policy pushed with `Vm::push_call`: when it
    /// returns or an error unwinds past it, the VM halts with this mark.
    pub mark: u32,
}

/// An active `try`: where to jump, and the frame and stack depth to unwind to.
#[derive(Clone, Copy)]
pub struct TryHandler {
    pub frames: usize,
    pub ip: usize,
    pub stack: usize,
}

/// A unit's active `try` handlers, innermost last: 8 bytes in the fiber,
/// and no allocation until a `try` runs (a million sleeping tasks keep one
/// each; few of them are inside a `try`).
// The box is the point: 8 bytes in every fiber instead of a `Vec`'s 24.
#[allow(clippy::box_collection)]
#[derive(Default)]
pub struct Handlers(Option<Box<Vec<TryHandler>>>);

impl Handlers {
    #[inline(always)]
    pub fn last(&self) -> Option<&TryHandler> {
        self.0.as_ref().and_then(|handlers| handlers.last())
    }
    #[inline(always)]
    pub fn pop(&mut self) -> Option<TryHandler> {
        self.0.as_mut().and_then(|handlers| handlers.pop())
    }
    pub fn push(&mut self, handler: TryHandler) {
        self.0.get_or_insert_default().push(handler);
    }
    pub fn clear(&mut self) {
        if let Some(handlers) = &mut self.0 {
            handlers.clear();
        }
    }
    pub fn retain(&mut self, keep: impl FnMut(&TryHandler) -> bool) {
        if let Some(handlers) = &mut self.0 {
            handlers.retain(keep);
        }
    }
}

#[derive(Default)]
pub struct Fiber {
    pub stack: Vec<Value>,
    pub frames: Vec<Frame>,
    pub handlers: Handlers,
    /// What the unit receives when it next runs (set by `Vm::resume`).
    pub pending: Pending,
    /// How many frames carry a mark (so unwinding scans only when some do).
    pub marked: u32,
    /// It stopped because its slice ran out: it stands *before* its next
    /// instruction (a report made now points there, not at the last one,
    /// which a jump may have left far away).
    pub preempted: bool,
    pub alive: bool,
}

impl Fiber {
    /// The unit's name: its entry function's (`<main>` for the top level).
    pub fn unit_name(&self) -> Rc<str> {
        self.frames.first().map_or_else(
            || Rc::from("?"),
            |f| self.closure_of(f).function.name.clone(),
        )
    }

    /// The closure `frame` runs: the callee slot just below its locals.
    /// Every frame is pushed over a `Value::Closure` (the fast call path,
    /// `call_value`, `push_frame`), and nothing writes below a running
    /// frame's base, so the slot holds it until the frame returns.
    pub fn closure_of(&self, frame: &Frame) -> &Rc<Closure> {
        match &self.stack[frame.base as usize - 1] {
            Value::Closure(closure) => closure,
            _ => unreachable!("a frame's callee slot holds its closure"),
        }
    }
}

/// A `ResumeWith` as a stopped unit keeps it: a value inline, an error
/// boxed (rare), so it is 16 bytes, as a `Value` is, not 32 (a million
/// sleeping tasks keep one each).
#[derive(Default)]
pub enum Pending {
    #[default]
    Nothing,
    Start,
    Value(Value),
    Error(Box<ResumeWith>),
}

impl Pending {
    pub fn take(&mut self) -> Option<ResumeWith> {
        match std::mem::take(self) {
            Pending::Nothing => None,
            Pending::Start => Some(ResumeWith::Start),
            Pending::Value(v) => Some(ResumeWith::Value(v)),
            Pending::Error(with) => Some(*with),
        }
    }
}

impl From<ResumeWith> for Pending {
    fn from(with: ResumeWith) -> Pending {
        match with {
            ResumeWith::Start => Pending::Start,
            ResumeWith::Value(v) => Pending::Value(v),
            error => Pending::Error(Box::new(error)),
        }
    }
}

/// What a stopped unit receives when it runs again.
pub enum ResumeWith {
    /// Nothing: it starts (or goes on at a frame the policy pushed).
    Start,
    /// The value of the expression it stopped in (`await`, a primitive call).
    Value(Value),
    /// An error arriving from elsewhere (a rejected promise it awaited):
    /// unwound from here, keeping the place it was first thrown.
    Throw(Thrown),
    /// An error raised by the operation the unit stopped in (a primitive
    /// that failed): located at this instruction unless it has a place.
    Raise(Thrown),
}
