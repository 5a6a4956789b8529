//! A unit of execution as data: its frames, operand stack and `try`
//! handlers. Any unit can stop at any instruction and be resumed later,
//! because nothing about it lives on the Rust stack. Invariant: every
//! frame's callee (a `Value::Closure`) sits in the stack slot just below
//! its locals for as long as the frame runs (`Fiber::closure_of`).
//!
//! Layout (a million sleeping tasks keep a fiber each): 48 bytes in the
//! VM's arena, and one allocation, the stack, for a unit that calls
//! nothing — the stack is a vector in 16 bytes (`Stack`); the running frame is kept in line and the frames below it in
//! a box made on the first nested call (`Frames`); the `try` handlers and a
//! pending error share a box made when first needed (`Rare`); a value the
//! unit is resumed with waits on top of its stack; the mark count and the
//! unit's two flags share one word, and a unit is alive while it has a
//! frame.

use super::{Stack, Thrown};
use crate::bytecode::Function;
use crate::value::{Closure, Value};
use std::rc::Rc;

/// A unit's number in the VM's arena (reused after the unit ends).
pub type UnitId = u32;

/// 12 bytes (`tests/vm_speed.rs` checks it): a sleeping task keeps one.
/// A frame holds no reference to its closure: the callee value sits on the
/// stack just below the frame's locals (`stack[base - 1]`, see
/// `Fiber::closure_of`), and that slot keeps it alive for as long as the
/// frame runs.
#[derive(Clone, Copy, Default)]
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

/// What few units need, kept out of line: 8 bytes in every fiber and no
/// allocation until a unit runs a `try` or is resumed with an error (a
/// million sleeping tasks keep one each; few of them are inside a `try`).
#[derive(Default)]
pub struct Rare(Option<Box<RareParts>>);

#[derive(Default)]
struct RareParts {
    /// The active `try` handlers, innermost last.
    handlers: Vec<TryHandler>,
    /// An error the unit receives when it next runs (`Vm::resume`).
    error: Option<ResumeWith>,
}

impl Rare {
    #[inline(always)]
    pub fn last_handler(&self) -> Option<&TryHandler> {
        self.0.as_ref().and_then(|rare| rare.handlers.last())
    }
    #[inline(always)]
    pub fn pop_handler(&mut self) -> Option<TryHandler> {
        self.0.as_mut().and_then(|rare| rare.handlers.pop())
    }
    pub fn push_handler(&mut self, handler: TryHandler) {
        self.0.get_or_insert_default().handlers.push(handler);
    }
    pub fn retain_handlers(&mut self, keep: impl FnMut(&TryHandler) -> bool) {
        if let Some(rare) = &mut self.0 {
            rare.handlers.retain(keep);
        }
    }
    /// Drops the handlers and any pending error (the box stays, for the
    /// next unit that lives in this slot).
    pub fn clear(&mut self) {
        if let Some(rare) = &mut self.0 {
            rare.handlers.clear();
            rare.error = None;
        }
    }
    #[inline(always)]
    fn has_error(&self) -> bool {
        self.0.as_ref().is_some_and(|rare| rare.error.is_some())
    }
    fn set_error(&mut self, error: Option<ResumeWith>) {
        match (&mut self.0, error) {
            (Some(rare), error) => rare.error = error,
            (None, None) => {}
            (None, Some(error)) => self.0.get_or_insert_default().error = Some(error),
        }
    }
    fn take_error(&mut self) -> Option<ResumeWith> {
        self.0.as_mut().and_then(|rare| rare.error.take())
    }
}

/// A unit's call frames, innermost last. The running frame is kept in
/// line (`top`), the ones below it in a vector made on the first nested
/// call: a unit that calls nothing (a sleeping task in its entry
/// function) owns no frame allocation, and the dispatch loop reaches the
/// running frame with one load and no bounds check. 24 bytes.
// The box is the point: 8 bytes in every fiber instead of a `Vec`'s 24.
// PERF: a call and its return cost ~6 instructions more than with one
// plain `Vec<Frame>` (the box's check, the in-line top's moves): fib(25)
// +1.8 % instructions (+2.2 % with the 16-byte `Stack`). An unboxed `below` would win part of it back for 16
// bytes more in every fiber.
#[allow(clippy::box_collection)]
#[derive(Default)]
pub struct Frames {
    /// The frames below the running one, outermost first.
    below: Option<Box<Vec<Saved>>>,
    /// The running frame (meaningless when `depth` is 0).
    top: Frame,
    /// How many frames there are (at most `MAX_FRAMES`, checked at every
    /// push, so it fits).
    depth: u16,
    /// How many frames carry a mark (so unwinding scans only when some
    /// do), in the low bits (`MARKS`), and two flags of the unit
    /// (`PREEMPTED`, `VALUE_PENDING`: see `Fiber`), packed in the word
    /// beside the depth so that a fiber is 48 bytes.
    state: u16,
}

/// A frame below the running one, with the function it runs when the
/// dispatch loop's call saved it (else null): its return goes on without
/// reading the callee slot, its closure and its function one after the
/// other. The pointer is valid while the frame is, as its callee slot
/// holds the closure that holds the function.
#[derive(Clone, Copy)]
struct Saved {
    frame: Frame,
    function: *const Function,
}

/// The bits of `Frames::state` that count marked frames.
const MARKS: u16 = (1 << 14) - 1;
/// `Fiber::preempted`.
const PREEMPTED: u16 = 1 << 14;
/// `Fiber::value_pending`.
const VALUE_PENDING: u16 = 1 << 15;

// `Frames::depth` and the count of marked frames reach `MAX_FRAMES`.
const _: () = assert!(super::MAX_FRAMES < MARKS as usize);

impl Frames {
    /// How many frames carry a mark.
    #[inline(always)]
    pub fn marked(&self) -> usize {
        (self.state & MARKS) as usize
    }
    pub fn add_mark(&mut self) {
        debug_assert!(self.marked() < MARKS as usize);
        self.state += 1;
    }
    pub fn drop_mark(&mut self) {
        debug_assert!(self.marked() > 0, "a marked frame was counted");
        self.state -= 1;
    }
    #[inline(always)]
    fn flag(&self, bit: u16) -> bool {
        self.state & bit != 0
    }
    #[inline(always)]
    fn set_flag(&mut self, bit: u16, on: bool) {
        if on {
            self.state |= bit;
        } else {
            self.state &= !bit;
        }
    }
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.depth as usize
    }
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.depth == 0
    }
    /// The running frame (there must be one).
    #[inline(always)]
    pub fn top(&self) -> &Frame {
        debug_assert!(self.depth > 0, "a running fiber has a frame");
        &self.top
    }
    /// The running frame (there must be one).
    #[inline(always)]
    pub fn top_mut(&mut self) -> &mut Frame {
        debug_assert!(self.depth > 0, "a running fiber has a frame");
        &mut self.top
    }
    pub fn last(&self) -> Option<&Frame> {
        (self.depth > 0).then_some(&self.top)
    }
    pub fn last_mut(&mut self) -> Option<&mut Frame> {
        (self.depth > 0).then_some(&mut self.top)
    }
    pub fn first(&self) -> Option<&Frame> {
        match self.depth {
            0 => None,
            1 => Some(&self.top),
            _ => self
                .below
                .as_ref()
                .and_then(|below| below.first())
                .map(|saved| &saved.frame),
        }
    }
    pub fn get(&self, i: usize) -> Option<&Frame> {
        let depth = self.depth as usize;
        if i + 1 == depth {
            Some(&self.top)
        } else if i < depth {
            self.below
                .as_ref()
                .and_then(|below| below.get(i))
                .map(|saved| &saved.frame)
        } else {
            None
        }
    }
    /// The frames, outermost first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Frame> {
        let below: &[Saved] = match &self.below {
            Some(below) if self.depth > 1 => below,
            _ => &[],
        };
        below.iter().map(|saved| &saved.frame).chain(self.last())
    }
    #[inline(always)]
    pub fn push(&mut self, frame: Frame) {
        if self.depth > 0 {
            self.push_nested(frame);
        } else {
            self.top = frame;
            self.depth = 1;
        }
    }
    /// Pushes a frame over the running one (there must be one).
    #[inline(always)]
    pub fn push_nested(&mut self, frame: Frame) {
        debug_assert!(self.depth > 0, "a nested call has a caller");
        let caller = std::mem::replace(&mut self.top, frame);
        self.below.get_or_insert_default().push(Saved {
            frame: caller,
            function: std::ptr::null(),
        });
        self.depth += 1;
    }
    /// Enters a call from the running frame (there must be one): saves
    /// where the caller goes on (`return_to`) and the function it runs,
    /// and pushes an unmarked frame whose locals start at `base` (the
    /// dispatch loop's call).
    #[inline(always)]
    pub fn enter(&mut self, return_to: u32, base: u32, function: *const Function) {
        debug_assert!(self.depth > 0, "a nested call has a caller");
        // Field by field: a copy of `top` through a temporary would wait
        // for the stores that made it.
        let (base_of_caller, mark) = (self.top.base, self.top.mark);
        self.below.get_or_insert_default().push(Saved {
            frame: Frame {
                ip: return_to,
                base: base_of_caller,
                mark,
            },
            function,
        });
        self.top = Frame {
            ip: 0,
            base,
            mark: 0,
        };
        self.depth += 1;
    }
    /// Pops the running frame, which has a caller, and gives the caller
    /// and the function it runs, if `enter` saved it (else null): the
    /// dispatch loop's return.
    #[inline(always)]
    pub fn pop_to_caller(&mut self) -> (&Frame, *const Function) {
        debug_assert!(self.depth > 1, "a return to a caller has one");
        self.depth -= 1;
        let saved = self
            .below
            .as_mut()
            .and_then(|below| below.pop())
            .expect("the frames below the top are kept");
        self.top = saved.frame;
        (&self.top, saved.function)
    }
    #[inline(always)]
    pub fn pop(&mut self) -> Option<Frame> {
        if self.depth == 0 {
            return None;
        }
        self.depth -= 1;
        let frame = if self.depth > 0 {
            let caller = self
                .below
                .as_mut()
                .and_then(|below| below.pop())
                .expect("the frames below the top are kept");
            std::mem::replace(&mut self.top, caller.frame)
        } else {
            std::mem::take(&mut self.top)
        };
        Some(frame)
    }
    /// Keeps the outermost `n` frames.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.depth as usize {
            return;
        }
        if let Some(below) = &mut self.below {
            if n > 0 {
                self.top = below[n - 1].frame;
            }
            below.truncate(n.saturating_sub(1));
        }
        self.depth = n as u16;
    }
    /// Drops every frame and the unit's flags (the vector stays, for the
    /// next unit in the slot).
    pub fn clear(&mut self) {
        self.truncate(0);
        self.state = 0;
    }
    /// True if it owns no memory (a slot's placeholder while its unit runs).
    pub fn owns_nothing(&self) -> bool {
        self.below.is_none()
    }
}

impl std::ops::Index<usize> for Frames {
    type Output = Frame;
    fn index(&self, i: usize) -> &Frame {
        self.get(i).expect("a frame index within the depth")
    }
}

/// 48 bytes (`tests/vm_speed.rs` checks it): a sleeping task keeps one. A
/// unit that calls nothing, has no `try` running and is not being resumed
/// with an error owns one allocation, its stack. Its two flags are kept
/// in `frames` (see `Frames::state`); it is alive while it has a frame.
#[derive(Default)]
pub struct Fiber {
    pub stack: Stack,
    pub frames: Frames,
    /// The `try` handlers, and an error the unit receives when it next
    /// runs.
    pub rare: Rare,
}

impl Fiber {
    /// The unit has not ended: a unit has a frame from its making
    /// (`Vm::new_unit`) until its last one returns or an error unwinds
    /// past it, when it is released.
    #[inline(always)]
    pub fn alive(&self) -> bool {
        !self.frames.is_empty()
    }

    /// It stopped because its slice ran out: it stands *before* its next
    /// instruction (a report made now points there, not at the last one,
    /// which a jump may have left far away).
    #[inline(always)]
    pub fn preempted(&self) -> bool {
        self.frames.flag(PREEMPTED)
    }
    #[inline(always)]
    pub fn set_preempted(&mut self, preempted: bool) {
        self.frames.set_flag(PREEMPTED, preempted);
    }

    /// The unit receives a value when it next runs (`Vm::resume`), and it
    /// is on top of its stack already (a `Pending` in the fiber would be a
    /// `Value`'s bytes more in every one).
    #[inline(always)]
    fn value_pending(&self) -> bool {
        self.frames.flag(VALUE_PENDING)
    }

    /// Sets what the unit receives when it next runs (replacing what was
    /// set before): a value goes on top of its stack at once.
    #[inline]
    pub fn set_resume(&mut self, with: ResumeWith) {
        match with {
            // The common case (once per `await`): nothing was set before.
            ResumeWith::Value(v) if !self.value_pending() && !self.rare.has_error() => {
                self.stack.push(v);
                self.frames.set_flag(VALUE_PENDING, true);
            }
            with => self.replace_resume(with),
        }
    }

    #[inline(never)]
    fn replace_resume(&mut self, with: ResumeWith) {
        self.clear_resume();
        match with {
            ResumeWith::Start => {}
            ResumeWith::Value(v) => {
                self.stack.push(v);
                self.frames.set_flag(VALUE_PENDING, true);
            }
            error => self.rare.set_error(Some(error)),
        }
    }

    /// Forgets what the unit was to receive (a call pushed over it gives
    /// the value instead).
    pub fn clear_resume(&mut self) {
        if self.value_pending() {
            self.frames.set_flag(VALUE_PENDING, false);
            self.stack.pop();
        }
        self.rare.set_error(None);
    }

    /// What the unit receives now that it runs: an error to unwind, or
    /// nothing (a value is already on its stack).
    #[inline(always)]
    pub fn take_resume(&mut self) -> Option<ResumeWith> {
        self.frames.set_flag(VALUE_PENDING, false);
        self.rare.take_error()
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u32) -> Frame {
        Frame {
            ip: n,
            base: n + 1,
            mark: n % 3,
        }
    }

    fn as_vec(frames: &Frames) -> Vec<(u32, u32, u32)> {
        frames.iter().map(|f| (f.ip, f.base, f.mark)).collect()
    }

    /// `Frames` (the top in line, the rest boxed) behaves as the vector of
    /// frames it stands for, through every operation the VM uses.
    #[test]
    fn frames_behave_as_a_vector() {
        let mut frames = Frames::default();
        let mut model: Vec<Frame> = Vec::new();
        let check = |frames: &Frames, model: &Vec<Frame>| {
            let expected: Vec<_> = model.iter().map(|f| (f.ip, f.base, f.mark)).collect();
            assert_eq!(as_vec(frames), expected);
            assert_eq!(frames.len(), model.len());
            assert_eq!(frames.is_empty(), model.is_empty());
            assert_eq!(frames.last().map(|f| f.ip), model.last().map(|f| f.ip));
            assert_eq!(frames.first().map(|f| f.ip), model.first().map(|f| f.ip));
            for i in 0..model.len() + 1 {
                assert_eq!(frames.get(i).map(|f| f.ip), model.get(i).map(|f| f.ip));
            }
            let reversed: Vec<u32> = frames.iter().rev().map(|f| f.ip).collect();
            let expected: Vec<u32> = model.iter().rev().map(|f| f.ip).collect();
            assert_eq!(reversed, expected);
        };
        check(&frames, &model);
        for n in 0..6 {
            frames.push(frame(n));
            model.push(frame(n));
            check(&frames, &model);
        }
        // A call from the running frame saves its return point.
        frames.enter(77, 40, std::ptr::null());
        model.last_mut().unwrap().ip = 77;
        model.push(Frame {
            ip: 0,
            base: 40,
            mark: 0,
        });
        check(&frames, &model);
        // A return to the caller.
        assert_eq!(frames.pop_to_caller().0.ip, 77);
        model.pop();
        check(&frames, &model);
        assert_eq!(frames.pop().map(|f| f.ip), model.pop().map(|f| f.ip));
        check(&frames, &model);
        frames.truncate(2);
        model.truncate(2);
        check(&frames, &model);
        frames.truncate(5);
        check(&frames, &model);
        frames.truncate(1);
        model.truncate(1);
        check(&frames, &model);
        frames.push(frame(9));
        model.push(frame(9));
        check(&frames, &model);
        while let Some(f) = model.pop() {
            assert_eq!(frames.pop().map(|f| f.ip), Some(f.ip));
            check(&frames, &model);
        }
        assert!(frames.pop().is_none());
        frames.push(frame(4));
        frames.clear();
        check(&frames, &model);
    }

    /// The mark count and the two flags share a word without disturbing
    /// each other; clearing the frames clears them.
    #[test]
    fn marks_and_flags_share_a_word() {
        let mut fiber = Fiber::default();
        fiber.frames.push(frame(1));
        fiber.frames.add_mark();
        fiber.frames.add_mark();
        fiber.set_preempted(true);
        fiber.set_resume(ResumeWith::Value(Value::Int(5)));
        assert_eq!(fiber.frames.marked(), 2);
        assert!(fiber.preempted() && fiber.value_pending());
        fiber.frames.drop_mark();
        fiber.set_preempted(false);
        assert_eq!(fiber.frames.marked(), 1);
        assert!(!fiber.preempted() && fiber.value_pending());
        fiber.frames.clear();
        assert_eq!(fiber.frames.marked(), 0);
        assert!(!fiber.preempted() && !fiber.value_pending() && !fiber.alive());
    }

    /// A resumed value goes on the stack at once; a later resumption or a
    /// pushed call replaces it, as the `Pending` the fiber kept did.
    #[test]
    fn a_resumed_value_waits_on_the_stack_until_replaced() {
        let mut fiber = Fiber::default();
        fiber.stack.push(Value::Int(1));
        fiber.set_resume(ResumeWith::Value(Value::Int(2)));
        assert_eq!(fiber.stack.len(), 2);
        // Replaced by another value: still one on the stack.
        fiber.set_resume(ResumeWith::Value(Value::Int(3)));
        assert_eq!(fiber.stack.len(), 2);
        assert!(matches!(fiber.stack.last(), Some(Value::Int(3))));
        // Replaced by an error: the value leaves the stack.
        fiber.set_resume(ResumeWith::Throw(Thrown::new(Value::Int(4))));
        assert_eq!(fiber.stack.len(), 1);
        assert!(fiber.rare.has_error());
        // Replaced by a value again: the error is gone.
        fiber.set_resume(ResumeWith::Value(Value::Int(6)));
        assert!(!fiber.rare.has_error());
        assert_eq!(fiber.stack.len(), 2);
        // Taking it leaves the value where it is, to be the result.
        assert!(fiber.take_resume().is_none());
        assert!(!fiber.value_pending());
        assert_eq!(fiber.stack.len(), 2);
        // A cleared resumption takes a waiting value off again.
        fiber.set_resume(ResumeWith::Value(Value::Int(7)));
        fiber.clear_resume();
        assert_eq!(fiber.stack.len(), 2);
        assert!(matches!(fiber.stack.last(), Some(Value::Int(6))));
        fiber.set_resume(ResumeWith::Raise(Thrown::new(Value::Int(8))));
        assert!(matches!(fiber.take_resume(), Some(ResumeWith::Raise(_))));
        assert!(fiber.take_resume().is_none());
    }
}
