//! Bytecode: the instruction set and compiled functions (a chunk per
//! function: `code`, `constants`, and a span per instruction), plus the
//! disassembler behind `looplab disasm`.

use crate::lexer::Span;
use crate::value::Value;
use std::fmt::Write;
use std::rc::Rc;

/// One instruction. Operands are indices into the function's constants,
/// local slots, upvalues or globals, or absolute jump targets. An `Op` is 8
/// bytes (a tag and at most 6 bytes of operands; `tests/vm_speed.rs` checks
/// it): two-operand instructions narrow one operand to `u16`, and the
/// compiler reports a program that does not fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Const(u32),
    Nil,
    True,
    False,
    Pop,
    GetLocal(u32),
    SetLocal(u32),
    /// Box the value in a local slot into a fresh cell (a captured variable).
    NewCell(u32),
    /// `x = x + e` (and `x += e`) on a plain local: pops e; appends in place when x is an
    /// unshared string (as CPython does), else adds as `+` does.
    AppendLocal(u32),
    GetCell(u32),
    SetCell(u32),
    GetUpvalue(u32),
    SetUpvalue(u32),
    GetGlobal(u32),
    /// `GetGlobal` of a call's callee whose next two instructions are its
    /// one argument (`GetLocal`, or a `LocalConst` adding or subtracting)
    /// and `Call(1)`: `f(n - 1)`. When the global is a plain function of
    /// one parameter and the argument is made at once (a local, or two
    /// integers), it runs all three and counts as three; else it runs as
    /// `GetGlobal` and the other two follow as they stand.
    GetGlobalCall(u32),
    SetGlobal(u32),
    DefineGlobal(u32),
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Neg,
    Not,
    /// `local OP constant` in one instruction (`n - 1`, `i < 10`): the
    /// local's slot, the constant's index, and the operator.
    LocalConst(u16, u16, BinaryOp),
    /// `local OP local` in one instruction (`i < n`, `s + i`): the two
    /// locals' slots and the operator.
    LocalLocal(u16, u16, BinaryOp),
    Jump(u32),
    /// A loop's back-edge (`while`, `for`, `continue`): a jump backwards,
    /// and a switch point where a preempting policy may stop the unit.
    Loop(u32),
    /// Pops the condition.
    JumpIfFalse(u32),
    /// Keeps the value when jumping (for `&&`), pops it otherwise.
    AndJump(u32),
    /// Keeps the value when jumping (for `||`), pops it otherwise.
    OrJump(u32),
    Call(u32),
    /// Method call: constant index of the name, argument count.
    CallMethod(u32, u16),
    /// A method call whose name is one of `PRELUDE_METHODS`: on a list it
    /// calls the prelude's function of that name (`sort` only with an
    /// argument); on anything else it is `CallMethod`. (A separate op so a
    /// plain method call never looks the name up.)
    CallPrelude(u32, u16),
    Return,
    /// `GetLocal` fused with `Return` (`return x;` outside any `try`).
    /// Counts as the two instructions it replaces.
    ReturnLocal(u32),
    /// `Add` fused with `Return` (`return a + b;` outside any `try`):
    /// returns the sum of the two values on top. Counts as the two
    /// instructions it replaces.
    AddReturn,
    Closure(u32),
    MakeList(u32),
    /// Pops `n` key/value pairs (keys are strings).
    MakeMap(u32),
    Index,
    SetIndex,
    GetField(u32),
    SetField(u32),
    /// Turn the value in a slot into something `IterNext` walks (map → keys).
    IterPrepare(u32),
    /// Slot holds the iterable, slot+1 the position: push next item or jump.
    IterNext(u16, u32),
    /// Slot holds the counter, slot+1 the end: push counter and step, or jump.
    RangeNext(u16, u32),
    /// `RangeNext` fused with the `SetLocal` of the loop variable, when
    /// that variable is the plain local at slot+2: store the counter there
    /// and step, or jump. Counts as the two instructions it replaces.
    RangeStep(u16, u32),
    Await,
    /// `await` of a plain local: `GetLocal` fused with `Await`, so a
    /// settled awaitable's value is pushed without copying the awaitable.
    /// Counts as the two instructions it replaces.
    AwaitLocal(u32),
    Spawn(u32),
    Throw,
    /// Push an exception handler that jumps to the target.
    TryPush(u32),
    TryPop,
    /// At a bare `catch`: an error flagged uncatchable (a cancellation,
    /// like Python's `BaseException`) is not caught; jump to the target
    /// with it (which rethrows after running `finally`).
    CatchFilter(u32),
    /// At `catch e: KindA | KindB`: unless the thrown value is an error
    /// whose kind is in the constant (a list of strings), jump to the
    /// target with it (the rethrow path). Catches cancellations too.
    CatchKinds(u16, u32),
    /// Pushes a copy of the top value (`m.k += e` evaluates `m` once).
    Dup,
    /// Pushes copies of the top two values (`xs[i] += e`).
    Dup2,
    /// Destructuring: pops a list, pushes its element at this position (nil
    /// when missing).
    TakeItem(u32),
    /// Destructuring: pops a map, pushes the field named by the constant
    /// (nil when missing).
    TakeField(u32),
    /// A template literal: pops `n` values, pushes the string of each as
    /// `str()` shows it, joined.
    Concat(u32),
}

/// The list methods written in looplab (`src/vm/prelude.lab`): a call of
/// a method with one of these names compiles to `Op::CallPrelude`.
pub const PRELUDE_METHODS: [&str; 7] = ["map", "filter", "find", "some", "every", "reduce", "sort"];

/// The operator of a `LocalConst` instruction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl BinaryOp {
    /// The plain instruction with the same meaning.
    pub fn op(self) -> Op {
        match self {
            BinaryOp::Add => Op::Add,
            BinaryOp::Sub => Op::Sub,
            BinaryOp::Mul => Op::Mul,
            BinaryOp::Lt => Op::Lt,
            BinaryOp::Le => Op::Le,
            BinaryOp::Gt => Op::Gt,
            BinaryOp::Ge => Op::Ge,
            BinaryOp::Eq => Op::Eq,
            BinaryOp::Ne => Op::Ne,
        }
    }
}

pub struct Function {
    pub name: Rc<str>,
    pub arity: u32,
    pub is_async: bool,
    pub code: Vec<Op>,
    pub spans: Vec<Span>,
    pub constants: Vec<Value>,
    pub num_slots: u32,
    /// Where each upvalue comes from in the enclosing function.
    pub upvalues: Vec<UpvalueSource>,
    pub source: Rc<crate::diagnostic::SourceFile>,
    /// True for a file's top level (the script / main coroutine).
    pub is_main: bool,
}

impl Op {
    /// Where this instruction may jump to, if it jumps.
    pub fn jump_target(self) -> Option<u32> {
        match self {
            Op::Jump(t)
            | Op::Loop(t)
            | Op::JumpIfFalse(t)
            | Op::AndJump(t)
            | Op::OrJump(t)
            | Op::TryPush(t)
            | Op::CatchFilter(t)
            | Op::CatchKinds(_, t)
            | Op::IterNext(_, t)
            | Op::RangeNext(_, t)
            | Op::RangeStep(_, t) => Some(t),
            _ => None,
        }
    }
}

/// The shape the dispatch loop relies on to fetch without bounds checks:
/// the code ends with a `Return` (so falling through never runs off the
/// end) and every jump lands inside it. The compiler checks every function
/// it makes (`compiler::finish`); a failure is a compiler bug.
pub fn code_stays_inside(code: &[Op]) -> bool {
    matches!(code.last(), Some(Op::Return))
        && code
            .iter()
            .filter_map(|op| op.jump_target())
            .all(|target| (target as usize) < code.len())
}

#[derive(Clone, Copy, Debug)]
pub enum UpvalueSource {
    /// A cell held in the enclosing function's local slot.
    Local(u32),
    /// One of the enclosing function's own upvalues.
    Upvalue(u32),
}

/// Renders a function and every function nested in it as a listing.
pub fn disassemble(function: &Function, globals: &[Rc<str>]) -> String {
    let mut out = String::new();
    let mut queue = vec![function];
    while let Some(f) = queue.pop() {
        let kind = if f.is_async { "async fn" } else { "fn" };
        let _ = writeln!(
            out,
            "== {kind} {} (arity {}, slots {}, upvalues {}) ==",
            f.name,
            f.arity,
            f.num_slots,
            f.upvalues.len()
        );
        for (ip, op) in f.code.iter().enumerate() {
            let line = f.source.line_of(f.spans[ip].start);
            let _ = write!(out, "{ip:04} {line:4}  {op:?}");
            let note = match *op {
                Op::Const(i)
                | Op::GetField(i)
                | Op::SetField(i)
                | Op::CallMethod(i, _)
                | Op::CallPrelude(i, _)
                | Op::TakeField(i) => Some(f.constants[i as usize].repr(crate::value::Flavor::Js)),
                Op::CatchKinds(i, _) => {
                    Some(f.constants[i as usize].repr(crate::value::Flavor::Js))
                }
                Op::GetGlobal(i)
                | Op::GetGlobalCall(i)
                | Op::SetGlobal(i)
                | Op::DefineGlobal(i) => globals.get(i as usize).map(|n| n.to_string()),
                Op::Closure(i) => match &f.constants[i as usize] {
                    Value::Closure(c) => Some(format!("fn {}", c.function.name)),
                    _ => None,
                },
                _ => None,
            };
            if let Some(note) = note {
                let _ = write!(out, "    ; {note}");
            }
            out.push('\n');
        }
        out.push('\n');
        for constant in f.constants.iter().rev() {
            if let Value::Closure(c) = constant {
                queue.push(&c.function);
            }
        }
    }
    out
}
