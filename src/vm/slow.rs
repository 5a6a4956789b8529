//! The dispatch loop's out-of-line arms: instructions that are rare in hot
//! loops (closures, map literals, destructuring, templates, `throw`,
//! `catch` filters, loop preparation), the operators' slow paths, method
//! calls, and raising an error. Kept out of `Vm::execute` so that its hot
//! arms get the registers (`ip`, the step counter, the limit stay in
//! registers when the loop body is small); each is `#[inline(never)]`, and
//! `#[cold]` where it is off the hot path of every benchmark.
//!
//! Each helper works on the fiber's operand stack exactly as its arm did
//! in place; an `Err` is thrown by the caller at the current instruction.

use super::builtins;
use super::dispatch::CallStep;
use super::halt::Halt;
use super::ops::{self, check_string_size};
use super::{Fiber, Thrown, Vm};
use crate::bytecode::{Function, Op, UpvalueSource};
use crate::value::{Closure, Map, Value};
use std::cell::RefCell;
use std::rc::Rc;

impl Vm {
    /// Throws `thrown` at the instruction the top frame stopped at (its
    /// `ip` is saved): locates it if it has no place yet, then unwinds.
    /// `None` means a handler caught it (reload the top frame and go on).
    #[cold]
    #[inline(never)]
    pub(super) fn raise(&mut self, fiber: &mut Fiber, mut thrown: Thrown) -> Option<Halt> {
        if thrown.origin.is_none() {
            thrown.origin = Some(self.origin_here(fiber));
            // Recording the call stack walks every frame: work too.
            self.steps += (fiber.frames.len() / 4) as u64;
        }
        self.unwind(fiber, thrown)
    }

    /// A binary operator on the two values on top of the stack, when the
    /// inline integer fast path does not apply (floats, strings, overflow).
    #[inline(never)]
    pub(super) fn binary_slow(&mut self, fiber: &mut Fiber, op: Op) -> Result<(), Thrown> {
        let right = fiber.stack.pop().unwrap_or_default();
        let left = fiber.stack.pop().unwrap_or_default();
        let v = match (op, left, right) {
            (Op::Add, Value::Str(a), Value::Str(b)) => ops::add_texts(a, b)?,
            (op, left, right) => ops::binary(op, &left, &right, self.dialect)?,
        };
        fiber.stack.push(v);
        Ok(())
    }

    /// `x += e` on a local (`Op::AppendLocal`) when the dispatch loop's
    /// all-integer path does not apply: a text nobody else holds grows in
    /// place (so a loop building a string is linear); anything else adds
    /// as `+` does (an integer overflow included).
    #[inline(never)]
    pub(super) fn append_slow(
        &mut self,
        fiber: &mut Fiber,
        at: usize,
        right: Value,
    ) -> Result<(), Thrown> {
        // A text nobody else holds grows in place.
        if let Value::Str(s) = &mut fiber.stack[at]
            && Rc::weak_count(s) == 0
            && let Some(buffer) = Rc::get_mut(s)
        {
            let added = match &right {
                Value::Str(t) => t.len(),
                _ => 32,
            };
            ops::check_growth(buffer, buffer.len() + added)?;
            match &right {
                Value::Str(t) => buffer.push_str(t),
                other => buffer.push_str(&ops::display(other, self.dialect.style)?),
            }
            return Ok(());
        }
        let v = ops::binary(Op::Add, &fiber.stack[at], &right, self.dialect)?;
        fiber.stack[at] = v;
        Ok(())
    }

    /// `Op::CallMethod` / `Op::CallPrelude`: `receiver.name(args)` with the
    /// receiver and `argc` arguments on top of the stack.
    #[inline(never)]
    pub(super) fn call_method_op(
        &mut self,
        fiber: &mut Fiber,
        function: &Function,
        op: Op,
        name: u32,
        argc: u16,
    ) -> Result<CallStep, Thrown> {
        let Value::Str(name) = &function.constants[name as usize] else {
            unreachable!()
        };
        let receiver_at = fiber.stack.len() - argc as usize - 1;
        // `xs.push(v)`, the commonest call in list-building loops: straight
        // onto the list, with no arguments gathered.
        if argc == 1
            && name.as_str() == "push"
            && matches!(fiber.stack[receiver_at], Value::List(_))
        {
            let item = fiber.stack.pop().unwrap_or_default();
            let Value::List(xs) = &fiber.stack[receiver_at] else {
                unreachable!("checked above")
            };
            let length = builtins::push_onto(xs, std::iter::once(item))?;
            fiber.stack.truncate(receiver_at);
            return Ok(CallStep::Value(Value::Int(length as i64)));
        }
        let receiver = fiber.stack[receiver_at].clone();
        // A map field holding a function is called like a function.
        if let Value::Map(m) = &receiver {
            let field = m.borrow().get(name).cloned();
            if let Some(value) = field.as_ref().filter(|f| !f.is_callable()) {
                return Err(Thrown::error(
                    "TypeError",
                    &format!(
                        "`.{name}` of this map is {} ({}), not a function",
                        value.a_type(),
                        value.repr(self.dialect.style)
                    ),
                ));
            }
            if let Some(callee) = field.filter(|f| f.is_callable()) {
                fiber.stack[receiver_at] = callee.clone();
                return self.call_value(fiber, callee, argc as usize);
            }
        }
        let prelude = match op {
            Op::CallPrelude(..) => self.prelude_method(&receiver, name, argc as usize),
            _ => None,
        };
        if let Some(closure) = prelude {
            let args: Vec<Value> = fiber.stack.split_off(receiver_at + 1);
            fiber.stack.pop();
            return self.call_prelude(fiber, closure, receiver, args);
        }
        if let Some(result) = self.call_method_in_place(fiber, &receiver, name, receiver_at + 1) {
            fiber.stack.truncate(receiver_at);
            return result.map(CallStep::Value);
        }
        let args: Vec<Value> = fiber.stack.split_off(receiver_at + 1);
        fiber.stack.pop();
        self.call_method(receiver, name, args)
    }

    /// `Op::Closure`: a closure of the prototype in constant `i`, capturing
    /// from the frame whose locals start at `base` and whose closure is `outer`.
    #[cold]
    #[inline(never)]
    pub(super) fn make_closure(
        &mut self,
        fiber: &mut Fiber,
        function: &Function,
        i: u32,
        base: usize,
    ) {
        let Value::Closure(proto) = &function.constants[i as usize] else {
            unreachable!()
        };
        let outer = fiber
            .closure_of(fiber.frames.last().expect("a running fiber has a frame"))
            .clone();
        let upvalues = proto
            .function
            .upvalues
            .iter()
            .map(|source| match *source {
                UpvalueSource::Local(slot) => match &fiber.stack[base + slot as usize] {
                    Value::Cell(cell) => cell.clone(),
                    other => Rc::new(RefCell::new(other.clone())),
                },
                UpvalueSource::Upvalue(i) => outer.upvalues[i as usize].clone(),
            })
            .collect();
        fiber.stack.push(Value::Closure(Rc::new(Closure::new(
            proto.function.clone(),
            upvalues,
        ))));
    }

    /// `Op::MakeMap`: pops `n` key/value pairs.
    #[cold]
    #[inline(never)]
    pub(super) fn make_map(&mut self, fiber: &mut Fiber, n: u32) {
        let items = fiber.stack.split_off(fiber.stack.len() - 2 * n as usize);
        let mut map = Map::default();
        let mut it = items.into_iter();
        while let (Some(Value::Str(k)), Some(v)) = (it.next(), it.next()) {
            map.set(&k, v);
        }
        fiber.stack.push(Value::map(map));
    }

    /// `Op::SetField`: pops the value and the object.
    #[inline(never)]
    pub(super) fn set_field(
        &mut self,
        fiber: &mut Fiber,
        function: &Function,
        name: u32,
    ) -> Result<(), Thrown> {
        let Value::Str(name) = &function.constants[name as usize] else {
            unreachable!()
        };
        let value = fiber.stack.pop().unwrap_or_default();
        let object = fiber.stack.pop().unwrap_or_default();
        match &object {
            Value::Map(m) => {
                m.borrow_mut().set(name, value);
                Ok(())
            }
            other => Err(Thrown::error(
                "TypeError",
                &format!("cannot set field `{name}` on {}", other.a_type()),
            )),
        }
    }

    /// `Op::IterPrepare`: turns the value in a slot into a list to walk.
    #[cold]
    #[inline(never)]
    pub(super) fn iter_prepare(&mut self, fiber: &mut Fiber, at: usize) -> Result<(), Thrown> {
        let prepared = match &fiber.stack[at] {
            Value::List(_) => None,
            Value::Map(m) => Some(Value::list(
                m.borrow().keys().map(crate::value::Key::to_value).collect(),
            )),
            Value::Str(s) => Some(Value::list(
                s.chars().map(|c| Value::str(&c.to_string())).collect(),
            )),
            other => {
                return Err(Thrown::error(
                    "TypeError",
                    &format!(
                        "cannot loop over {} (use a list, a map, a string or a range)",
                        other.a_type()
                    ),
                ));
            }
        };
        if let Some(p) = prepared {
            fiber.stack[at] = p;
        }
        fiber.stack[at + 1] = Value::Int(0);
        Ok(())
    }

    /// `Op::Throw`'s value with its original place when it is the error a
    /// handler last caught (a rethrow).
    #[cold]
    #[inline(never)]
    pub(super) fn rethrown(&mut self, value: Value) -> Thrown {
        let origin = self
            .last_caught
            .take()
            .filter(|t| t.value.equals(&value))
            .and_then(|t| t.origin);
        Thrown { value, origin }
    }

    /// `Op::CatchKinds`: true when the error on top of the stack is of one
    /// of the kinds in the constant.
    #[cold]
    #[inline(never)]
    pub(super) fn catches_kind(&self, fiber: &Fiber, function: &Function, kinds: u16) -> bool {
        let Value::List(kinds) = &function.constants[kinds as usize] else {
            unreachable!()
        };
        match fiber.stack.last() {
            Some(Value::Error(e)) => kinds
                .borrow()
                .iter()
                .any(|k| matches!(k, Value::Str(k) if **k == *e.kind)),
            _ => false,
        }
    }

    /// `Op::Dup2`: pushes copies of the top two values.
    #[cold]
    #[inline(never)]
    pub(super) fn dup2(&mut self, fiber: &mut Fiber) {
        let at = fiber.stack.len().saturating_sub(2);
        let pair: Vec<Value> = fiber.stack[at..].to_vec();
        fiber.stack.extend(pair);
    }

    /// `Op::TakeItem`: pops a list, pushes its item `i` (nil when missing).
    #[cold]
    #[inline(never)]
    pub(super) fn take_item(&mut self, fiber: &mut Fiber, i: u32) -> Result<(), Thrown> {
        match fiber.stack.pop().unwrap_or_default() {
            Value::List(xs) => {
                let item = xs.borrow().get(i as usize).cloned().unwrap_or(Value::Nil);
                fiber.stack.push(item);
                Ok(())
            }
            other => Err(Thrown::error(
                "TypeError",
                &format!(
                    "cannot destructure {} with a list pattern `[…]`",
                    other.a_type()
                ),
            )),
        }
    }

    /// `Op::TakeField`: pops a map, pushes the field named by the constant.
    #[cold]
    #[inline(never)]
    pub(super) fn take_field(
        &mut self,
        fiber: &mut Fiber,
        function: &Function,
        name: u32,
    ) -> Result<(), Thrown> {
        let Value::Str(name) = &function.constants[name as usize] else {
            unreachable!()
        };
        match fiber.stack.pop().unwrap_or_default() {
            object @ (Value::Map(_) | Value::Error(_)) => {
                let v = ops::get_field(&object, name, self.dialect)?;
                fiber.stack.push(v);
                Ok(())
            }
            other => Err(Thrown::error(
                "TypeError",
                &format!(
                    "cannot destructure {} with a map pattern `{{…}}`",
                    other.a_type()
                ),
            )),
        }
    }

    /// `Op::Concat`: a template literal of the top `n` values.
    #[inline(never)]
    pub(super) fn concat(&mut self, fiber: &mut Fiber, n: u32) -> Result<(), Thrown> {
        let parts = fiber.stack.split_off(fiber.stack.len() - n as usize);
        let mut text = String::new();
        for part in &parts {
            match part {
                Value::Str(s) => text.push_str(s),
                other => text.push_str(&other.display(self.dialect.style)),
            }
            check_string_size(text.len())?;
        }
        fiber.stack.push(Value::str(&text));
        Ok(())
    }
}
