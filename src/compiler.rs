//! The compiler: AST to bytecode, one `Function` per function body.
//!
//! Scoping: a file's top-level `let`/`fn` declarations are globals (a table
//! shared by REPL entries); everything else is a local slot in its function's
//! frame. A local that some nested function mentions is boxed in a cell when
//! declared, so closures capture variables by reference (and each loop
//! iteration gets a fresh cell). `finally` blocks are inlined on every exit
//! path (normal end, `break`, `continue`, `return`) and on the re-throw path.

use crate::ast::*;
use crate::bytecode::{BinaryOp as FusedOp, Function, Op, UpvalueSource};
use crate::diagnostic::{Diagnostic, SourceFile, closest};
use crate::lexer::Span;
use crate::value::{Closure, Value};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Global names, shared across REPL entries; slot `i` of the VM's globals.
#[derive(Default)]
pub struct Globals {
    pub names: Vec<Rc<str>>,
    index: HashMap<Rc<str>, u32>,
}

impl Globals {
    pub fn slot(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        let name: Rc<str> = Rc::from(name);
        self.names.push(name.clone());
        self.index.insert(name, i);
        i
    }
    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }
}

/// The directives found at the top of a file.
#[derive(Default, Debug, Clone)]
pub struct Directives {
    pub runtime: Option<(String, Span)>,
}

pub struct Compiled {
    pub main: Rc<Function>,
    pub directives: Directives,
    /// A REPL entry (`compile_entry`) ending in an expression statement:
    /// the top level returns that expression's value.
    pub returns_value: bool,
}

struct Local {
    name: String,
    slot: u32,
    is_cell: bool,
    depth: u32,
}

struct LoopContext {
    breaks: Vec<usize>,
    continues: Vec<usize>,
    try_depth: usize,
}

struct TryContext {
    handler_pushed: bool,
    finally: Option<Rc<Block>>,
}

struct FnState {
    name: Rc<str>,
    arity: u32,
    is_async: bool,
    is_main: bool,
    code: Vec<Op>,
    spans: Vec<Span>,
    constants: Vec<Value>,
    locals: Vec<Local>,
    depth: u32,
    next_slot: u32,
    max_slots: u32,
    upvalues: Vec<(String, UpvalueSource, bool)>,
    captured: HashSet<String>,
    loops: Vec<LoopContext>,
    tries: Vec<TryContext>,
}

pub struct Compiler<'g> {
    globals: &'g mut Globals,
    /// Names the program declares at top level (so functions may use them
    /// before the declaration runs) plus the built-ins.
    known_globals: HashSet<String>,
    states: Vec<FnState>,
    source: Rc<SourceFile>,
    errors: Vec<Diagnostic>,
    /// A REPL entry: a name no entry has declared yet, used inside a
    /// function, is a global looked up when the function runs (a later
    /// entry may define it), as in node's and python's REPLs.
    late_globals: bool,
    /// Names whose `let` initialiser is being compiled (for the message
    /// when the initialiser mentions its own name).
    initialising: Vec<String>,
    /// Habits already reported (by what was written): later uses are
    /// counted, not reported again.
    habits_seen: Vec<(String, usize, usize)>,
    /// The names this program declares at its top level.
    program_globals: HashSet<String>,
}

/// Compiles a parsed program. `globals` persists between REPL entries.
pub fn compile(
    program: &[Stmt],
    source: Rc<SourceFile>,
    globals: &mut Globals,
) -> Result<Compiled, Vec<Diagnostic>> {
    compile_top(program, source, globals, false)
}

/// Compiles a REPL entry: like `compile`, but when the entry ends in an
/// expression statement the top level returns its value (which the REPL
/// echoes); a function may use a global a later entry defines; and on an
/// error `globals` is left as it was.
pub fn compile_entry(
    program: &[Stmt],
    source: Rc<SourceFile>,
    globals: &mut Globals,
) -> Result<Compiled, Vec<Diagnostic>> {
    let before = globals.names.len();
    let result = compile_top(program, source, globals, true);
    if result.is_err() {
        for name in globals.names.drain(before..) {
            globals.index.remove(&name);
        }
    }
    result
}

fn compile_top(
    program: &[Stmt],
    source: Rc<SourceFile>,
    globals: &mut Globals,
    keep_last_value: bool,
) -> Result<Compiled, Vec<Diagnostic>> {
    let mut directives = Directives::default();
    let mut errors = Vec::new();
    let mut at_top = true;
    for stmt in program {
        match &stmt.kind {
            StmtKind::Directive { name, args } if at_top => read_directive(name, args, stmt.span, &mut directives, &mut errors),
            StmtKind::Directive { name, .. } => errors.push(
                Diagnostic::new(format!("the `{name}` directive must come first"), stmt.span, "directive after other statements")
                    .with_hint("move directives (`runtime`, `gil`, `cores`) to the top of the file, before any other statement"),
            ),
            StmtKind::Error => {}
            _ => at_top = false,
        }
    }
    let mut known_globals: HashSet<String> = globals.names.iter().map(|n| n.to_string()).collect();
    let mut program_globals = HashSet::new();
    for stmt in program {
        match &stmt.kind {
            StmtKind::Let { name, .. } => {
                program_globals.insert(name.clone());
            }
            StmtKind::Destructure { pattern, .. } => pattern_names(pattern, &mut |name, _| {
                known_globals.insert(name.to_string());
            }),
            StmtKind::Fn(decl) => {
                program_globals.insert(decl.name.clone().unwrap_or_default());
            }
            _ => {}
        }
    }
    known_globals.extend(program_globals.iter().cloned());
    let uses_await = program.iter().any(stmt_awaits_at_this_level);
    let mut compiler = Compiler {
        globals,
        known_globals,
        states: Vec::new(),
        source: source.clone(),
        errors,
        late_globals: keep_last_value,
        initialising: Vec::new(),
        habits_seen: Vec::new(),
        program_globals,
    };
    let mut captured = HashSet::new();
    for stmt in program {
        collect_captured_stmt(stmt, false, &mut captured);
    }
    compiler.states.push(FnState::new(
        Rc::from("<main>"),
        0,
        uses_await,
        true,
        captured,
    ));
    let last_expr = program
        .iter()
        .rposition(|s| !matches!(s.kind, StmtKind::Directive { .. } | StmtKind::Error))
        .filter(|&i| keep_last_value && matches!(program[i].kind, StmtKind::Expr(_)));
    for (i, stmt) in program.iter().enumerate() {
        match &stmt.kind {
            StmtKind::Expr(expr) if Some(i) == last_expr => {
                compiler.expr(expr);
                compiler.emit(Op::Return, stmt.span);
            }
            _ => compiler.stmt(stmt),
        }
    }
    let end = Span::from(source.text.len()..source.text.len());
    compiler.emit(Op::Nil, end);
    compiler.emit(Op::Return, end);
    let state = compiler.states.pop().expect("main state");
    compiler.count_habits();
    if !compiler.errors.is_empty() {
        return Err(compiler.errors);
    }
    Ok(Compiled {
        main: Rc::new(state.finish(source)),
        directives,
        returns_value: last_expr.is_some(),
    })
}

fn read_directive(
    name: &str,
    args: &[DirectiveArg],
    span: Span,
    out: &mut Directives,
    errors: &mut Vec<Diagnostic>,
) {
    let word = |i: usize| match args.get(i) {
        Some(DirectiveArg::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    match (name, args.len()) {
        ("runtime", 1) if matches!(word(0), Some("js" | "asyncio" | "threads" | "process")) => {
            out.runtime = word(0).map(|w| (w.to_string(), span));
        }
        ("gil" | "cores", _) if valid_gil_or_cores(name, args) => errors.push(
            Diagnostic::new(format!("the `{name}` directive is not implemented yet"), span, "not available")
                .with_hint("`gil` and `cores` configure the threads and process runtimes, which looplab does not have yet"),
        ),
        _ => {
            let hint = match name {
                "runtime" => {
                    "write `runtime js;`, `runtime asyncio;`, `runtime threads;` or `runtime process;`"
                }
                "gil" => "write `gil on;`, `gil off;` or `gil switch 5ms;`",
                _ => "write `cores N;` with N a whole number from 1 to 1024",
            };
            errors.push(
                Diagnostic::new(
                    format!("bad `{name}` directive"),
                    span,
                    "not a valid setting",
                )
                .with_hint(hint),
            );
        }
    }
}

/// Is this a well-formed `gil on|off`, `gil switch D` or `cores N` directive?
fn valid_gil_or_cores(name: &str, args: &[DirectiveArg]) -> bool {
    match (name, args) {
        ("gil", [DirectiveArg::Word(w)]) => w == "on" || w == "off",
        ("gil", [DirectiveArg::Word(w), DirectiveArg::Number(_)]) => w == "switch",
        ("cores", [DirectiveArg::Number(n)]) => (1.0..=1024.0).contains(n) && n.fract() == 0.0,
        _ => false,
    }
}

/// Does this statement (not counting nested functions) contain `await`?
fn stmt_awaits_at_this_level(stmt: &Stmt) -> bool {
    let mut found = false;
    visit_stmt(stmt, &mut |e| {
        if matches!(e.kind, ExprKind::Await(_)) {
            found = true;
        }
    });
    found
}

/// Calls `f` on every name a destructuring pattern declares, in order.
fn pattern_names(pattern: &Pattern, f: &mut dyn FnMut(&str, Span)) {
    match pattern {
        Pattern::Name(name, span) => f(name, *span),
        Pattern::List(items) => items.iter().for_each(|p| pattern_names(p, f)),
        Pattern::Map(fields) => fields.iter().for_each(|(_, p)| pattern_names(p, f)),
    }
}

/// Calls `f` on every expression in `stmt`, not descending into nested functions.
fn visit_stmt(stmt: &Stmt, f: &mut dyn FnMut(&Expr)) {
    let block = |b: &Block, f: &mut dyn FnMut(&Expr)| b.iter().for_each(|s| visit_stmt(s, f));
    match &stmt.kind {
        StmtKind::Let { value, .. } | StmtKind::Expr(value) | StmtKind::Throw(value) => {
            visit_expr(value, f)
        }
        StmtKind::Assign { target, value } | StmtKind::CompoundAssign { target, value, .. } => {
            visit_expr(target, f);
            visit_expr(value, f)
        }
        StmtKind::Destructure { value, .. } => visit_expr(value, f),
        StmtKind::Return(value) => value.iter().for_each(|v| visit_expr(v, f)),
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => {
            visit_expr(cond, f);
            block(then, f);
            otherwise.iter().for_each(|b| block(b, f));
        }
        StmtKind::While { cond, body } => {
            visit_expr(cond, f);
            block(body, f)
        }
        StmtKind::For { iter, body, .. } => {
            match iter {
                ForIter::Range(a, b) => {
                    visit_expr(a, f);
                    visit_expr(b, f)
                }
                ForIter::Each(e) => visit_expr(e, f),
            }
            block(body, f)
        }
        StmtKind::Try {
            body,
            catch,
            finally,
            ..
        } => {
            block(body, f);
            catch.iter().for_each(|(_, b)| block(b, f));
            finally.iter().for_each(|b| block(b, f));
        }
        StmtKind::Block(b) => block(b, f),
        StmtKind::Fn(_)
        | StmtKind::Directive { .. }
        | StmtKind::Break
        | StmtKind::Continue
        | StmtKind::Error => {}
    }
}

fn visit_expr(expr: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(expr);
    match &expr.kind {
        ExprKind::List(items) => items.iter().for_each(|e| visit_expr(e, f)),
        ExprKind::Map(entries) => entries.iter().for_each(|(_, e)| visit_expr(e, f)),
        ExprKind::Unary(_, e) | ExprKind::Field(e, _) | ExprKind::Await(e) | ExprKind::Spawn(e) => {
            visit_expr(e, f)
        }
        ExprKind::Binary(_, a, b)
        | ExprKind::And(a, b)
        | ExprKind::Or(a, b)
        | ExprKind::Index(a, b) => {
            visit_expr(a, f);
            visit_expr(b, f)
        }
        ExprKind::Call(callee, args) => {
            visit_expr(callee, f);
            args.iter().for_each(|e| visit_expr(e, f))
        }
        ExprKind::Template(parts) => parts.iter().for_each(|p| {
            if let TemplatePart::Expr(e) = p {
                visit_expr(e, f)
            }
        }),
        _ => {}
    }
}

/// Collects every name mentioned inside functions nested in this code: the
/// locals of the enclosing function with these names are boxed in cells.
fn collect_captured_stmt(stmt: &Stmt, inside_nested: bool, out: &mut HashSet<String>) {
    if let StmtKind::Fn(decl) = &stmt.kind {
        if inside_nested {
            out.insert(decl.name.clone().unwrap_or_default());
        }
        decl.body
            .iter()
            .for_each(|s| collect_captured_stmt(s, true, out));
        return;
    }
    if inside_nested {
        match &stmt.kind {
            StmtKind::Let { name, .. } | StmtKind::For { var: name, .. } => {
                out.insert(name.clone());
            }
            StmtKind::Destructure { pattern, .. } => {
                pattern_names(pattern, &mut |name, _| {
                    out.insert(name.to_string());
                });
            }
            _ => {}
        }
    }
    let mut nested = Vec::new();
    visit_stmt(stmt, &mut |e| match &e.kind {
        ExprKind::Ident(name) if inside_nested => {
            out.insert(name.clone());
        }
        ExprKind::Fn(decl) => nested.push(decl.clone()),
        _ => {}
    });
    for body_stmt in each_block_stmt(stmt) {
        if let StmtKind::Fn(decl) = &body_stmt.kind {
            nested.push(decl.clone());
        }
    }
    for decl in nested {
        decl.body
            .iter()
            .for_each(|s| collect_captured_stmt(s, true, out));
    }
}

/// Nested statements of a compound statement (to find inner `fn`
/// declarations), borrowed and gathered into one list: cloning them, or
/// concatenating per-level lists, made deep `else if` chains quadratic.
fn each_block_stmt(stmt: &Stmt) -> Vec<&Stmt> {
    let mut out = Vec::new();
    push_block_stmts(stmt, &mut out);
    out
}

fn push_block_stmts<'a>(stmt: &'a Stmt, out: &mut Vec<&'a Stmt>) {
    let add = |b: &'a Block, out: &mut Vec<&'a Stmt>| {
        for s in b {
            out.push(s);
            push_block_stmts(s, out);
        }
    };
    match &stmt.kind {
        StmtKind::If {
            then, otherwise, ..
        } => {
            add(then, out);
            if let Some(b) = otherwise {
                add(b, out);
            }
        }
        StmtKind::While { body, .. } | StmtKind::For { body, .. } | StmtKind::Block(body) => {
            add(body, out)
        }
        StmtKind::Try {
            body,
            catch,
            finally,
            ..
        } => {
            add(body, out);
            if let Some((_, b)) = catch {
                add(b, out);
            }
            if let Some(b) = finally {
                add(b, out);
            }
        }
        _ => {}
    }
}

impl FnState {
    fn new(
        name: Rc<str>,
        arity: u32,
        is_async: bool,
        is_main: bool,
        captured: HashSet<String>,
    ) -> Self {
        FnState {
            name,
            arity,
            is_async,
            is_main,
            code: Vec::new(),
            spans: Vec::new(),
            constants: Vec::new(),
            locals: Vec::new(),
            depth: 0,
            next_slot: 0,
            max_slots: 0,
            upvalues: Vec::new(),
            captured,
            loops: Vec::new(),
            tries: Vec::new(),
        }
    }

    fn finish(self, source: Rc<SourceFile>) -> Function {
        // The VM fetches instructions without bounds checks on the strength
        // of this (see `dispatch.rs`): never hand it code that breaks it.
        assert!(
            crate::bytecode::code_stays_inside(&self.code),
            "internal error: the compiler made code that runs outside `{}`",
            self.name
        );
        Function {
            name: self.name,
            arity: self.arity,
            is_async: self.is_async,
            code: self.code,
            spans: self.spans,
            constants: self.constants,
            num_slots: self.max_slots,
            upvalues: self
                .upvalues
                .into_iter()
                .map(|(_, source, _)| source)
                .collect(),
            source,
            is_main: self.is_main,
        }
    }
}

enum Resolved {
    Local(u32, bool),
    Upvalue(u32),
    Global(u32),
}

impl Compiler<'_> {
    fn state(&mut self) -> &mut FnState {
        self.states
            .last_mut()
            .expect("a function is being compiled")
    }

    fn emit(&mut self, op: Op, span: Span) -> usize {
        let state = self.state();
        state.code.push(op);
        state.spans.push(span);
        state.code.len() - 1
    }

    /// An operand that an 8-byte `Op` holds in 16 bits; a program that
    /// needs more gets an error (`what` says what overflowed).
    fn narrow(&mut self, n: u32, what: &str, span: Span) -> u16 {
        u16::try_from(n).unwrap_or_else(|_| {
            self.error(Diagnostic::new(
                format!("too many {what} (at most {})", u16::MAX),
                span,
                "too large",
            ));
            0
        })
    }

    fn here(&mut self) -> u32 {
        self.state().code.len() as u32
    }

    fn patch(&mut self, at: usize) {
        let target = self.here();
        let op = &mut self.state().code[at];
        *op = match *op {
            Op::Jump(_) => Op::Jump(target),
            Op::JumpIfFalse(_) => Op::JumpIfFalse(target),
            Op::AndJump(_) => Op::AndJump(target),
            Op::OrJump(_) => Op::OrJump(target),
            Op::TryPush(_) => Op::TryPush(target),
            Op::CatchFilter(_) => Op::CatchFilter(target),
            Op::CatchKinds(kinds, _) => Op::CatchKinds(kinds, target),
            Op::IterNext(slot, _) => Op::IterNext(slot, target),
            Op::RangeNext(slot, _) => Op::RangeNext(slot, target),
            Op::RangeStep(slot, _) => Op::RangeStep(slot, target),
            other => other,
        };
    }

    fn constant(&mut self, value: Value) -> u32 {
        let state = self.state();
        if let Value::Str(s) = &value
            && let Some(i) = state
                .constants
                .iter()
                .position(|c| matches!(c, Value::Str(t) if t == s))
        {
            return i as u32;
        }
        state.constants.push(value);
        (state.constants.len() - 1) as u32
    }

    fn error(&mut self, diagnostic: Diagnostic) {
        self.errors.push(diagnostic);
    }

    /// Reports a habit once (by what was written); later uses are counted.
    fn habit(&mut self, diagnostic: Diagnostic, written: &str) {
        if let Some(seen) = self.habits_seen.iter_mut().find(|(w, _, _)| w == written) {
            seen.2 += 1;
            return;
        }
        self.habits_seen
            .push((written.to_string(), self.errors.len(), 0));
        self.error(diagnostic);
    }

    fn count_habits(&mut self) {
        for (_, index, more) in std::mem::take(&mut self.habits_seen) {
            let note = match more {
                0 => continue,
                1 => "the same spelling is used once more below".to_string(),
                n => format!("the same spelling is used {n} more times below"),
            };
            if let Some(d) = self.errors.get_mut(index) {
                d.notes.push(note);
            }
        }
    }

    /// `object.member` that another language spells so (`console.log`,
    /// `asyncio.sleep`, `Promise.resolved`): reports it and returns true.
    /// Built-ins (`promise.resolve`, `Promise.resolved`) only when called:
    /// reading a missing field is not an error.
    fn member_habit(&mut self, object: &Expr, member: &str, span: Span, called: bool) -> bool {
        let ExprKind::Ident(name) = &object.kind else {
            return false;
        };
        let resolved = self.resolve(name);
        let builtin = called
            && matches!(resolved, Some(Resolved::Global(_)))
            && crate::runtime::is_predefined(name)
            && !self.program_globals.contains(name.as_str());
        let span = Span::from(object.span.start..span.end.max(object.span.end));
        let written = format!("{name}.{member}");
        let diagnostic = if resolved.is_none() || (builtin && name == "promise") {
            crate::habits::member_habit(name, member).map(|habit| habit.diagnostic(span))
        } else if builtin && name == "Promise" {
            crate::habits::promise_static_habit(member, span)
        } else {
            None
        };
        match diagnostic {
            Some(d) => {
                self.habit(d, &written);
                true
            }
            None => false,
        }
    }

    fn is_global_scope(&mut self) -> bool {
        let state = self.state();
        state.is_main && state.depth == 0
    }

    fn begin_scope(&mut self) {
        self.state().depth += 1;
    }

    fn end_scope(&mut self) {
        let state = self.state();
        state.depth -= 1;
        let depth = state.depth;
        while state.locals.last().is_some_and(|l| l.depth > depth) {
            state.locals.pop();
        }
        // Hidden slots (loop state, saved exceptions) are locals named "",
        // so they too are freed with their scope.
        state.next_slot = state.locals.last().map_or(0, |l| l.slot + 1);
    }

    /// Reserves a slot no name refers to (loop state, saved exceptions).
    fn hidden_slot(&mut self) -> u32 {
        let state = self.state();
        let slot = state.next_slot;
        state.next_slot += 1;
        state.max_slots = state.max_slots.max(state.next_slot);
        state.locals.push(Local {
            name: String::new(),
            slot,
            is_cell: false,
            depth: state.depth,
        });
        slot
    }

    /// Declares a local; returns its slot and whether it lives in a cell.
    fn declare_local(&mut self, name: &str) -> (u32, bool) {
        let state = self.state();
        let slot = state.next_slot;
        state.next_slot += 1;
        state.max_slots = state.max_slots.max(state.next_slot);
        let is_cell = state.captured.contains(name);
        state.locals.push(Local {
            name: name.to_string(),
            slot,
            is_cell,
            depth: state.depth,
        });
        (slot, is_cell)
    }

    /// Stores the value on top of the stack into a freshly declared variable.
    fn define_variable(&mut self, name: &str, span: Span) {
        if self.is_global_scope() {
            let slot = self.globals.slot(name);
            self.emit(Op::DefineGlobal(slot), span);
            return;
        }
        let (slot, is_cell) = self.declare_local(name);
        self.emit(Op::SetLocal(slot), span);
        if is_cell {
            self.emit(Op::NewCell(slot), span);
        }
    }

    fn resolve(&mut self, name: &str) -> Option<Resolved> {
        let top = self.states.len() - 1;
        if let Some((slot, is_cell)) = find_local(&self.states[top], name) {
            return Some(Resolved::Local(slot, is_cell));
        }
        if let Some(index) = self.resolve_upvalue(top, name) {
            return Some(Resolved::Upvalue(index));
        }
        if self.known_globals.contains(name)
            || crate::runtime::is_predefined(name)
            || (self.late_globals && top > 0)
        {
            return Some(Resolved::Global(self.globals.slot(name)));
        }
        None
    }

    fn resolve_upvalue(&mut self, level: usize, name: &str) -> Option<u32> {
        if level == 0 {
            return None;
        }
        if let Some(i) = self.states[level]
            .upvalues
            .iter()
            .position(|(n, _, _)| n == name)
        {
            return Some(i as u32);
        }
        let source = if let Some((slot, is_cell)) = find_local(&self.states[level - 1], name) {
            if !is_cell {
                return None; // cannot happen: captured names are always cells
            }
            UpvalueSource::Local(slot)
        } else {
            UpvalueSource::Upvalue(self.resolve_upvalue(level - 1, name)?)
        };
        let upvalues = &mut self.states[level].upvalues;
        upvalues.push((name.to_string(), source, true));
        Some((upvalues.len() - 1) as u32)
    }

    fn undefined_name(&mut self, name: &str, span: Span) {
        if let Some(habit) = crate::habits::name_habit(name) {
            self.habit(habit.diagnostic(span), name);
            return;
        }
        if self.initialising.iter().any(|n| n == name) {
            self.error(
                Diagnostic::new(
                    format!("`{name}` is used in its own initialiser"),
                    span,
                    format!("`{name}` is not visible yet here"),
                )
                .with_hint(format!(
                    "to define a function that calls itself, write `fn {name}(…) {{ … }}`"
                ))
                .with_note(format!(
                    "a `let` name exists only once its value is computed: inside `let {name} = …;` the `{name}` being declared is not visible"
                )),
            );
            return;
        }
        if self.errors.len() >= crate::diagnostic::MAX_DIAGNOSTICS {
            // Not shown, only counted: no search for a suggestion (over
            // every name in scope, for each of thousands of errors).
            self.error(Diagnostic::new(
                format!("undefined variable `{name}`"),
                span,
                "not defined here",
            ));
            return;
        }
        let mut candidates: Vec<String> = self.known_globals.iter().cloned().collect();
        candidates.extend(crate::runtime::predefined_names().map(|s| s.to_string()));
        for state in &self.states {
            candidates.extend(state.locals.iter().map(|l| l.name.clone()));
        }
        let mut diagnostic = Diagnostic::new(
            format!("undefined variable `{name}`"),
            span,
            "not defined here",
        );
        if let Some(best) = closest(name, &candidates) {
            diagnostic = diagnostic.with_hint(format!("did you mean `{best}`?"));
        } else {
            diagnostic = diagnostic.with_hint(format!("declare it first: `let {name} = …;`"));
        }
        self.error(diagnostic);
    }

    // ---- statements ----

    fn block(&mut self, block: &Block) {
        self.begin_scope();
        self.hoist_functions(block);
        for stmt in block {
            self.stmt(stmt);
        }
        self.end_scope();
    }

    /// Declares the names of a block's `fn` declarations up front (nil until
    /// each declaration runs), so local functions can call each other.
    fn hoist_functions(&mut self, block: &Block) {
        if self.is_global_scope() {
            return;
        }
        for stmt in block {
            if let StmtKind::Fn(decl) = &stmt.kind {
                let name = decl.name.clone().unwrap_or_default();
                let (slot, is_cell) = self.declare_local(&name);
                if is_cell {
                    self.emit(Op::Nil, stmt.span);
                    self.emit(Op::SetLocal(slot), stmt.span);
                    self.emit(Op::NewCell(slot), stmt.span);
                }
            }
        }
    }

    fn stmt(&mut self, stmt: &Stmt) {
        let span = stmt.span;
        match &stmt.kind {
            StmtKind::Directive { name, .. } if !self.is_global_scope() => self.error(
                Diagnostic::new(
                    format!("the `{name}` directive is inside a block or function"),
                    span,
                    "directive inside a block or function",
                )
                .with_hint("directives (`runtime`, `gil`, `cores`) belong at the top of the file, before any other statement"),
            ),
            StmtKind::Directive { .. } | StmtKind::Error => {}
            StmtKind::Let {
                name,
                value,
                name_span,
            } => {
                self.initialising.push(name.clone());
                self.expr_named(value, Some(name));
                self.initialising.pop();
                self.define_variable(name, *name_span);
            }
            StmtKind::Assign { target, value } => self.assign(target, value, span),
            StmtKind::CompoundAssign { target, op, value } => {
                self.compound_assign(target, *op, value, span)
            }
            StmtKind::Destructure { pattern, value } => {
                self.expr(value);
                self.destructure(pattern, span);
            }
            StmtKind::Expr(expr) => {
                self.expr(expr);
                self.emit(Op::Pop, span);
            }
            StmtKind::Fn(decl) => {
                let name = decl.name.clone().unwrap_or_default();
                if self.is_global_scope() {
                    self.function(decl, Some(&name));
                    let slot = self.globals.slot(&name);
                    self.emit(Op::DefineGlobal(slot), span);
                } else {
                    // Declared (and boxed if captured) at the start of its
                    // block by `hoist_functions`, so siblings can call it.
                    let (slot, is_cell) = find_local(self.state(), &name)
                        .unwrap_or_else(|| self.declare_local(&name));
                    self.function(decl, Some(&name));
                    self.emit(
                        if is_cell {
                            Op::SetCell(slot)
                        } else {
                            Op::SetLocal(slot)
                        },
                        span,
                    );
                }
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond);
                let to_else = self.emit(Op::JumpIfFalse(0), cond.span);
                self.block(then);
                match otherwise {
                    Some(other) => {
                        let to_end = self.emit(Op::Jump(0), span);
                        self.patch(to_else);
                        self.block(other);
                        self.patch(to_end);
                    }
                    None => self.patch(to_else),
                }
            }
            StmtKind::While { cond, body } => {
                let start = self.here();
                self.expr(cond);
                let exit = self.emit(Op::JumpIfFalse(0), cond.span);
                self.loop_body(body, start);
                self.emit(Op::Loop(start), span);
                self.patch(exit);
                self.end_loop();
            }
            StmtKind::For {
                var,
                var_span,
                iter,
                body,
            } => self.for_loop(var, *var_span, iter, body, span),
            StmtKind::Break | StmtKind::Continue => {
                self.break_or_continue(matches!(stmt.kind, StmtKind::Break), span)
            }
            StmtKind::Return(value) => {
                if self.state().is_main {
                    self.error(
                        Diagnostic::new(
                            "`return` outside a function",
                            span,
                            "not inside a function",
                        )
                        .with_hint("the top level of a file ends when its last statement runs"),
                    );
                    return;
                }
                if let Some(Expr { kind: ExprKind::Ident(name), .. }) = value
                    && self.state().tries.is_empty()
                    && let Some((slot, false)) = find_local(self.state(), name)
                {
                    self.emit(Op::ReturnLocal(slot), span);
                    return;
                }
                match value {
                    Some(v) => self.expr(v),
                    None => {
                        self.emit(Op::Nil, span);
                    }
                }
                // `return a + b;` outside any `try`: the `Add` just emitted
                // (not fused into `LocalConst`/`LocalLocal`) returns too. It
                // stays where it was, so a jump to it still adds first.
                if let Some(Expr {
                    kind: ExprKind::Binary(BinaryOp::Add, ..),
                    ..
                }) = value
                    && self.state().tries.is_empty()
                    && let Some(last @ Op::Add) = self.state().code.last_mut()
                {
                    *last = Op::AddReturn;
                    return;
                }
                self.unwind_tries(0, span);
                self.emit(Op::Return, span);
            }
            StmtKind::Throw(value) => {
                self.expr(value);
                self.emit(Op::Throw, span);
            }
            StmtKind::Try {
                body,
                catch,
                catch_kinds,
                finally,
            } => self.try_stmt(body, catch.as_ref(), catch_kinds, finally.as_ref(), span),
            StmtKind::Block(block) => self.block(block),
        }
    }

    fn assign(&mut self, target: &Expr, value: &Expr, span: Span) {
        match &target.kind {
            ExprKind::Ident(name) => {
                if let ExprKind::Binary(BinaryOp::Add, left, right) = &value.kind
                    && matches!(&left.kind, ExprKind::Ident(l) if l == name)
                    && let Some(Resolved::Local(slot, false)) = self.resolve(name)
                {
                    self.expr(right);
                    self.emit(Op::AppendLocal(slot), span);
                    return;
                }
                self.expr(value);
                match self.resolve(name) {
                    Some(Resolved::Local(slot, false)) => self.emit(Op::SetLocal(slot), span),
                    Some(Resolved::Local(slot, true)) => self.emit(Op::SetCell(slot), span),
                    Some(Resolved::Upvalue(i)) => self.emit(Op::SetUpvalue(i), span),
                    Some(Resolved::Global(i)) => self.emit(Op::SetGlobal(i), span),
                    None => {
                        self.undefined_name(name, target.span);
                        0
                    }
                };
            }
            ExprKind::Field(object, name) => {
                self.expr(object);
                self.expr(value);
                let name = self.constant(Value::str(name));
                self.emit(Op::SetField(name), span);
            }
            ExprKind::Index(object, index) => {
                self.expr(object);
                self.expr(index);
                self.expr(value);
                self.emit(Op::SetIndex, span);
            }
            ExprKind::Error => {}
            _ => self.error(
                Diagnostic::new(
                    "cannot assign to this",
                    target.span,
                    "not a variable, field or index",
                )
                .with_hint(
                    "assign to a name (`x = …`), a field (`m.key = …`) or an element (`xs[i] = …`)",
                ),
            ),
        }
    }

    /// `target OP= value`: a name becomes `x = x OP value` (so `x += e` on
    /// a local keeps `AppendLocal`); a field or an index evaluates its
    /// object (and index) once and keeps it on the stack (`Dup`, `Dup2`).
    fn compound_assign(&mut self, target: &Expr, op: BinaryOp, value: &Expr, span: Span) {
        let combined = |left: Expr| Expr {
            kind: ExprKind::Binary(op, Box::new(left), Box::new(value.clone())),
            span,
        };
        let op_code = match op {
            BinaryOp::Add => Op::Add,
            BinaryOp::Sub => Op::Sub,
            BinaryOp::Mul => Op::Mul,
            _ => Op::Div,
        };
        match &target.kind {
            ExprKind::Ident(_) => self.assign(target, &combined(target.clone()), span),
            ExprKind::Field(object, name) => {
                self.expr(object);
                self.emit(Op::Dup, span);
                let name = self.constant(Value::str(name));
                self.emit(Op::GetField(name), target.span);
                self.expr(value);
                self.emit(op_code, span);
                self.emit(Op::SetField(name), span);
            }
            ExprKind::Index(object, index) => {
                self.expr(object);
                self.expr(index);
                self.emit(Op::Dup2, span);
                self.emit(Op::Index, target.span);
                self.expr(value);
                self.emit(op_code, span);
                self.emit(Op::SetIndex, span);
            }
            // Reported the same way as a plain assignment to it.
            _ => self.assign(target, value, span),
        }
    }

    /// Destructures the value on top of the stack (popping it) into the
    /// pattern's names: `Dup` it for every part but the last.
    fn destructure(&mut self, pattern: &Pattern, span: Span) {
        match pattern {
            Pattern::Name(name, name_span) => self.define_variable(name, *name_span),
            Pattern::List(items) => {
                if items.is_empty() {
                    self.emit(Op::TakeItem(0), span);
                    self.emit(Op::Pop, span);
                }
                for (i, item) in items.iter().enumerate() {
                    if i + 1 < items.len() {
                        self.emit(Op::Dup, span);
                    }
                    self.emit(Op::TakeItem(i as u32), span);
                    self.destructure(item, span);
                }
            }
            Pattern::Map(fields) => {
                if fields.is_empty() {
                    self.emit(Op::Pop, span);
                }
                for (i, (key, inner)) in fields.iter().enumerate() {
                    if i + 1 < fields.len() {
                        self.emit(Op::Dup, span);
                    }
                    let key = self.constant(Value::str(key));
                    self.emit(Op::TakeField(key), span);
                    self.destructure(inner, span);
                }
            }
        }
    }

    fn loop_body(&mut self, body: &Block, continue_target: u32) {
        let try_depth = self.state().tries.len();
        self.state().loops.push(LoopContext {
            breaks: Vec::new(),
            continues: Vec::new(),
            try_depth,
        });
        self.block(body);
        let state = self.state();
        let continues = std::mem::take(&mut state.loops.last_mut().expect("loop").continues);
        for at in continues {
            state.code[at] = Op::Loop(continue_target);
        }
    }

    fn end_loop(&mut self) {
        let breaks = self.state().loops.pop().expect("loop").breaks;
        for at in breaks {
            self.patch(at);
        }
    }

    fn for_loop(&mut self, var: &str, var_span: Span, iter: &ForIter, body: &Block, span: Span) {
        self.begin_scope();
        let next = match iter {
            ForIter::Range(from, to) => {
                self.expr(from);
                let counter = self.hidden_slot();
                self.emit(Op::SetLocal(counter), from.span);
                self.expr(to);
                let end = self.hidden_slot();
                self.emit(Op::SetLocal(end), to.span);
                Op::RangeNext(
                    self.narrow(counter, "local variables in one function", from.span),
                    0,
                )
            }
            ForIter::Each(iterable) => {
                self.expr(iterable);
                let items = self.hidden_slot();
                self.emit(Op::SetLocal(items), iterable.span);
                // IterNext keeps the position in the slot after the items.
                self.hidden_slot();
                self.emit(Op::IterPrepare(items), iterable.span);
                Op::IterNext(
                    self.narrow(items, "local variables in one function", iterable.span),
                    0,
                )
            }
        };
        let start = self.here();
        let exit = self.emit(next, span);
        self.begin_scope();
        let (slot, is_cell) = self.declare_local(var);
        match next {
            // The loop variable right after the counter and the end, not
            // captured: the range step stores it itself.
            Op::RangeNext(counter, _) if !is_cell && slot == u32::from(counter) + 2 => {
                self.state().code[exit] = Op::RangeStep(counter, 0);
            }
            _ => {
                self.emit(Op::SetLocal(slot), var_span);
                if is_cell {
                    self.emit(Op::NewCell(slot), var_span);
                }
            }
        }
        self.loop_body(body, start);
        self.end_scope();
        self.emit(Op::Loop(start), span);
        self.patch(exit);
        self.end_loop();
        self.end_scope();
    }

    /// Like `define_variable`, but always a local (loop variables).
    fn define_variable_local(&mut self, name: &str, span: Span) {
        let (slot, is_cell) = self.declare_local(name);
        self.emit(Op::SetLocal(slot), span);
        if is_cell {
            self.emit(Op::NewCell(slot), span);
        }
    }

    fn break_or_continue(&mut self, is_break: bool, span: Span) {
        let word = if is_break { "break" } else { "continue" };
        let Some(try_depth) = self.state().loops.last().map(|l| l.try_depth) else {
            self.error(Diagnostic::new(
                format!("`{word}` outside a loop"),
                span,
                "not inside `while` or `for`",
            ));
            return;
        };
        self.unwind_tries(try_depth, span);
        let at = self.emit(Op::Jump(0), span);
        let current = self.state().loops.last_mut().expect("loop");
        if is_break {
            current.breaks.push(at);
        } else {
            current.continues.push(at);
        }
    }

    /// Leaves every `try` region above `depth`: pops its handler and runs
    /// its `finally` block inline (with the regions outside it active).
    fn unwind_tries(&mut self, depth: usize, span: Span) {
        let mut level = self.state().tries.len();
        while level > depth {
            level -= 1;
            let (handler_pushed, finally) = {
                let t = &self.state().tries[level];
                (t.handler_pushed, t.finally.clone())
            };
            if handler_pushed {
                self.emit(Op::TryPop, span);
            }
            if let Some(finally) = finally {
                let saved = self.state().tries.split_off(level);
                self.block(&finally);
                self.state().tries.extend(saved);
            }
        }
    }

    fn try_stmt(
        &mut self,
        body: &Block,
        catch: Option<&(String, Block)>,
        catch_kinds: &[String],
        finally: Option<&Block>,
        span: Span,
    ) {
        let finally: Option<Rc<Block>> = finally.map(|b| Rc::new(b.clone()));
        let to_handler = self.emit(Op::TryPush(0), span);
        self.state().tries.push(TryContext {
            handler_pushed: true,
            finally: finally.clone(),
        });
        self.block(body);
        self.state().tries.pop();
        self.emit(Op::TryPop, span);
        if let Some(f) = &finally {
            self.block(f);
        }
        let mut to_end = vec![self.emit(Op::Jump(0), span)];
        self.patch(to_handler);
        // The thrown value is on the stack here.
        if let Some((name, catch_body)) = catch {
            let filter = if catch_kinds.is_empty() {
                self.emit(Op::CatchFilter(0), span)
            } else {
                let kinds = catch_kinds.iter().map(|k| Value::str(k)).collect();
                let kinds = self.constant(Value::list(kinds));
                let kinds = self.narrow(kinds, "constants in one function", span);
                self.emit(Op::CatchKinds(kinds, 0), span)
            };
            let to_rethrow_path = if finally.is_some() {
                Some(self.emit(Op::TryPush(0), span))
            } else {
                None
            };
            self.state().tries.push(TryContext {
                handler_pushed: finally.is_some(),
                finally: finally.clone(),
            });
            self.begin_scope();
            self.define_variable_local(name, span);
            for stmt in catch_body {
                self.stmt(stmt);
            }
            self.end_scope();
            self.state().tries.pop();
            if let Some(f) = &finally {
                self.emit(Op::TryPop, span);
                self.block(f);
            }
            to_end.push(self.emit(Op::Jump(0), span));
            // Cancellations (and, with `finally`, errors in the catch) land here.
            self.patch(filter);
            if let Some(at) = to_rethrow_path {
                self.patch(at);
            }
        }
        match &finally {
            Some(f) => {
                self.begin_scope();
                let saved = self.hidden_slot();
                self.emit(Op::SetLocal(saved), span);
                self.block(f);
                self.emit(Op::GetLocal(saved), span);
                self.emit(Op::Throw, span);
                self.end_scope();
            }
            None => {
                self.emit(Op::Throw, span);
            }
        }
        for at in to_end {
            self.patch(at);
        }
    }

    // ---- expressions ----

    fn expr(&mut self, expr: &Expr) {
        self.expr_named(expr, None)
    }

    /// Compiles an expression; an anonymous function takes `name`.
    fn expr_named(&mut self, expr: &Expr, name: Option<&str>) {
        let span = expr.span;
        match &expr.kind {
            ExprKind::Nil => {
                self.emit(Op::Nil, span);
            }
            ExprKind::Bool(true) => {
                self.emit(Op::True, span);
            }
            ExprKind::Bool(false) => {
                self.emit(Op::False, span);
            }
            ExprKind::Int(n) => {
                let c = self.constant(Value::Int(*n));
                self.emit(Op::Const(c), span);
            }
            ExprKind::Float(x) => {
                let c = self.constant(Value::Float(*x));
                self.emit(Op::Const(c), span);
            }
            ExprKind::Duration(ms) => {
                let value = if ms.fract() == 0.0 && ms.abs() < 9.0e15 { Value::Int(*ms as i64) } else { Value::Float(*ms) };
                let c = self.constant(value);
                self.emit(Op::Const(c), span);
            }
            ExprKind::Str(s) => {
                let c = self.constant(Value::str(s));
                self.emit(Op::Const(c), span);
            }
            ExprKind::Template(parts) => {
                for part in parts {
                    match part {
                        TemplatePart::Text(text) => {
                            let c = self.constant(Value::str(text));
                            self.emit(Op::Const(c), span);
                        }
                        TemplatePart::Expr(e) => self.expr(e),
                    }
                }
                self.emit(Op::Concat(parts.len() as u32), span);
            }
            ExprKind::Ident(name) => match self.resolve(name) {
                Some(Resolved::Local(slot, false)) => {
                    self.emit(Op::GetLocal(slot), span);
                }
                Some(Resolved::Local(slot, true)) => {
                    self.emit(Op::GetCell(slot), span);
                }
                Some(Resolved::Upvalue(i)) => {
                    self.emit(Op::GetUpvalue(i), span);
                }
                Some(Resolved::Global(i)) => {
                    self.emit(Op::GetGlobal(i), span);
                }
                None => self.undefined_name(name, span),
            },
            ExprKind::List(items) => {
                for item in items {
                    self.expr(item);
                }
                self.emit(Op::MakeList(items.len() as u32), span);
            }
            ExprKind::Map(entries) => {
                for (key, value) in entries {
                    let c = self.constant(Value::str(key));
                    self.emit(Op::Const(c), span);
                    self.expr(value);
                }
                self.emit(Op::MakeMap(entries.len() as u32), span);
            }
            ExprKind::Unary(op, operand) => {
                self.expr(operand);
                self.emit(if *op == UnaryOp::Neg { Op::Neg } else { Op::Not }, span);
            }
            ExprKind::Binary(op, left, right) => {
                if let Some((slot, constant, fused)) = self.local_const(*op, left, right) {
                    self.emit(Op::LocalConst(slot, constant, fused), span);
                    return;
                }
                if let Some((a, b, fused)) = self.local_local(*op, left, right) {
                    self.emit(Op::LocalLocal(a, b, fused), span);
                    return;
                }
                self.expr(left);
                self.expr(right);
                let op = match op {
                    BinaryOp::Add => Op::Add,
                    BinaryOp::Sub => Op::Sub,
                    BinaryOp::Mul => Op::Mul,
                    BinaryOp::Div => Op::Div,
                    BinaryOp::Mod => Op::Mod,
                    BinaryOp::Eq => Op::Eq,
                    BinaryOp::Ne => Op::Ne,
                    BinaryOp::Lt => Op::Lt,
                    BinaryOp::Le => Op::Le,
                    BinaryOp::Gt => Op::Gt,
                    BinaryOp::Ge => Op::Ge,
                };
                self.emit(op, span);
            }
            ExprKind::And(left, right) | ExprKind::Or(left, right) => {
                self.expr(left);
                let jump = if matches!(expr.kind, ExprKind::And(..)) { Op::AndJump(0) } else { Op::OrJump(0) };
                let at = self.emit(jump, span);
                self.expr(right);
                self.patch(at);
            }
            ExprKind::Call(callee, args) => {
                if let ExprKind::Field(object, method) = &callee.kind {
                    if self.member_habit(object, method, callee.span, true) {
                        self.emit(Op::Nil, span);
                    } else {
                        self.expr(object);
                    }
                    for arg in args {
                        self.expr(arg);
                    }
                    let name = self.constant(Value::str(method));
                    let argc = u32::try_from(args.len()).unwrap_or(u32::MAX);
                    let argc = self.narrow(argc, "arguments in one method call", span);
                    if crate::bytecode::PRELUDE_METHODS.contains(&method.as_str()) {
                        self.emit(Op::CallPrelude(name, argc), span);
                    } else {
                        self.emit(Op::CallMethod(name, argc), span);
                    }
                } else {
                    let start = self.state().code.len();
                    self.expr(callee);
                    for arg in args {
                        self.expr(arg);
                    }
                    // `f(x)`, `f(n - 1)` of a global `f`: the callee's
                    // `GetGlobal` may run all three (see `GetGlobalCall`).
                    // Nothing jumps between them: the callee and the
                    // argument are one instruction each.
                    let code = &mut self.state().code;
                    if args.len() == 1
                        && code.len() == start + 2
                        && matches!(
                            code[start + 1],
                            Op::GetLocal(_)
                                | Op::LocalConst(_, _, FusedOp::Add | FusedOp::Sub)
                        )
                        && let Op::GetGlobal(global) = code[start]
                    {
                        code[start] = Op::GetGlobalCall(global);
                    }
                    self.emit(Op::Call(args.len() as u32), span);
                }
            }
            ExprKind::Index(object, index) => {
                self.expr(object);
                self.expr(index);
                self.emit(Op::Index, span);
            }
            ExprKind::Field(object, name) => {
                if self.member_habit(object, name, span, false) {
                    self.emit(Op::Nil, span);
                } else {
                    self.expr(object);
                }
                let c = self.constant(Value::str(name));
                self.emit(Op::GetField(c), span);
            }
            ExprKind::Fn(decl) => self.function(decl, name),
            ExprKind::Await(inner) => {
                if !self.state().is_async {
                    self.error(
                        Diagnostic::new("`await` outside an async function", span, "this `await` is in a plain `fn`")
                            .with_hint("mark the enclosing function `async fn`, or await at the top level of the file")
                            .with_note("Node says \"SyntaxError: await is only valid in async functions\"; Python says \"SyntaxError: 'await' outside async function\""),
                    );
                }
                if let ExprKind::Ident(name) = &inner.kind
                    && let Some((slot, false)) = find_local(self.state(), name)
                {
                    self.emit(Op::AwaitLocal(slot), span);
                    return;
                }
                self.expr(inner);
                self.emit(Op::Await, span);
            }
            ExprKind::Spawn(inner) => match &inner.kind {
                ExprKind::Call(callee, args) => {
                    self.expr(callee);
                    for arg in args {
                        self.expr(arg);
                    }
                    self.emit(Op::Spawn(args.len() as u32), span);
                }
                _ => self.error(
                    Diagnostic::new("`spawn` needs a call", inner.span, "not a function call")
                        .with_hint("write `spawn f(args)`: the call is what becomes a task, thread or process"),
                ),
            },
            ExprKind::Error => {
                self.emit(Op::Nil, span);
            }
        }
    }

    /// `local OP local` (both plain locals, not captured) that fits a
    /// `LocalLocal` instruction, if it is one.
    fn local_local(
        &mut self,
        op: BinaryOp,
        left: &Expr,
        right: &Expr,
    ) -> Option<(u16, u16, crate::bytecode::BinaryOp)> {
        let fused = fusable(op)?;
        let (ExprKind::Ident(a), ExprKind::Ident(b)) = (&left.kind, &right.kind) else {
            return None;
        };
        let Some((a, false)) = find_local(self.state(), a) else {
            return None;
        };
        let Some((b, false)) = find_local(self.state(), b) else {
            return None;
        };
        Some((u16::try_from(a).ok()?, u16::try_from(b).ok()?, fused))
    }

    /// `local OP integer` that fits a `LocalConst` instruction, if it is one.
    fn local_const(
        &mut self,
        op: BinaryOp,
        left: &Expr,
        right: &Expr,
    ) -> Option<(u16, u16, crate::bytecode::BinaryOp)> {
        let fused = fusable(op)?;
        let (ExprKind::Ident(name), ExprKind::Int(n)) = (&left.kind, &right.kind) else {
            return None;
        };
        let Some((slot, false)) = find_local(self.state(), name) else {
            return None;
        };
        let constant = self.constant(Value::Int(*n));
        Some((
            u16::try_from(slot).ok()?,
            u16::try_from(constant).ok()?,
            fused,
        ))
    }

    fn function(&mut self, decl: &FnDecl, name: Option<&str>) {
        let name: Rc<str> = Rc::from(decl.name.as_deref().or(name).unwrap_or("<anonymous>"));
        let mut captured = HashSet::new();
        for stmt in &decl.body {
            collect_captured_stmt(stmt, false, &mut captured);
        }
        let mut seen = HashSet::new();
        for param in &decl.params {
            if !seen.insert(param) {
                self.error(Diagnostic::new(
                    format!("parameter `{param}` appears twice"),
                    decl.span,
                    "duplicate parameter",
                ));
            }
        }
        self.states.push(FnState::new(
            name,
            decl.params.len() as u32,
            decl.is_async,
            false,
            captured,
        ));
        for param in &decl.params {
            let (slot, is_cell) = self.declare_local(param);
            if is_cell {
                self.emit(Op::NewCell(slot), decl.span);
            }
        }
        self.hoist_functions(&decl.body);
        for stmt in &decl.body {
            self.stmt(stmt);
        }
        let end = Span::from(decl.span.end.saturating_sub(1)..decl.span.end);
        self.emit(Op::Nil, end);
        self.emit(Op::Return, end);
        let state = self.states.pop().expect("function state");
        let function = Rc::new(state.finish(self.source.clone()));
        let prototype = Value::Closure(Rc::new(Closure::new(function, Box::new([]))));
        let c = self.constant(prototype);
        self.emit(Op::Closure(c), decl.span);
    }
}

fn find_local(state: &FnState, name: &str) -> Option<(u32, bool)> {
    state
        .locals
        .iter()
        .rev()
        .find(|l| l.name == name)
        .map(|l| (l.slot, l.is_cell))
}

/// The operator of a fused `LocalConst` / `LocalLocal` instruction, if it has one.
fn fusable(op: BinaryOp) -> Option<crate::bytecode::BinaryOp> {
    use crate::bytecode::BinaryOp as B;
    Some(match op {
        BinaryOp::Add => B::Add,
        BinaryOp::Sub => B::Sub,
        BinaryOp::Mul => B::Mul,
        BinaryOp::Lt => B::Lt,
        BinaryOp::Le => B::Le,
        BinaryOp::Gt => B::Gt,
        BinaryOp::Ge => B::Ge,
        BinaryOp::Eq => B::Eq,
        BinaryOp::Ne => B::Ne,
        _ => return None,
    })
}
