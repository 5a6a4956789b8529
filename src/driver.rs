//! The pipeline, end to end: source text → tokens → AST → bytecode → a run
//! under a policy. Every error on the way becomes a `Diagnostic`. It also
//! compiles the prelude (`src/vm/prelude.lab`, the list methods written in
//! looplab) and hands its functions to the VM.

use crate::compiler::{self, Compiled, Globals};
use crate::diagnostic::{Diagnostic, MAX_DIAGNOSTICS, SourceFile, render};
use crate::habits;
use crate::lexer::{self, Span, Token};
use crate::parser;
use crate::runtime::{Library, PolicyKind, RunConfig};
use crate::value::Closure;
use crate::vm::Vm;
use std::collections::HashSet;
use std::rc::Rc;

/// Brackets nested deeper than this are refused before parsing; so are
/// longer runs of prefix operators (`- - - x`, `!!!x`, `await await x`).
pub const MAX_NESTING: usize = 200;

/// Statements and expressions nested deeper than this are refused: an
/// `else if` chain of more arms, or one expression with more operators or
/// calls in a chain (`a + b + …`, `f()()…`). The parser and compiler
/// recurse on nesting; this keeps them far from the end of the stack.
pub const MAX_SYNTAX_DEPTH: usize = 50_000;

/// Lexes, parses and compiles one source text.
pub fn compile_source(
    source: &Rc<SourceFile>,
    globals: &mut Globals,
) -> Result<Compiled, Vec<Diagnostic>> {
    compile_text(source, globals, false)
}

/// Compiles one REPL entry against the session's growing globals (see
/// `compiler::compile_entry`).
pub fn compile_entry(
    source: &Rc<SourceFile>,
    globals: &mut Globals,
) -> Result<Compiled, Vec<Diagnostic>> {
    compile_text(source, globals, true)
}

fn compile_text(
    source: &Rc<SourceFile>,
    globals: &mut Globals,
    entry: bool,
) -> Result<Compiled, Vec<Diagnostic>> {
    let mut tokens = lexer::lex(&source.text);
    let (mut diagnostics, habit_spans) = habits::rewrite_tokens(&mut tokens, &source.text);
    // Lines already reported (a bad token, a habit): the parser's errors
    // there would only repeat the same problem.
    let mut bad_lines: HashSet<usize> = habit_spans
        .iter()
        .map(|span| source.line_of(span.start))
        .collect();
    for (token, span) in &tokens {
        if *token == Token::Error {
            let text = &source.text[span.start..span.end];
            let span = bad_escape_span(text).map_or(*span, |r| {
                Span::from(span.start + r.start..span.start + r.end)
            });
            diagnostics.push(Diagnostic::new(
                "syntax error",
                span,
                lexer::describe_bad_token(text),
            ));
            bad_lines.insert(source.line_of(span.start));
        }
    }
    if let Some((span, what)) = too_long_chain(&tokens) {
        diagnostics.push(
            Diagnostic::new("nesting too deep", span, what)
                .with_hint("split it into smaller pieces (functions, `let`s, a lookup map)"),
        );
        return Err(diagnostics);
    }
    if let Some(span) = too_deep(&tokens) {
        diagnostics.push(
            Diagnostic::new(
                "nesting too deep",
                span,
                format!("more than {MAX_NESTING} brackets open here"),
            )
            .with_hint("split the expression into smaller pieces with `let`"),
        );
        return Err(diagnostics);
    }
    // Past a bracket problem, errors at the end of the file (and, for a
    // mismatch, on its line) are the parser's guesses around it.
    let brackets = bracket_problem(&tokens);
    match &brackets {
        Some(Brackets::Unclosed(token, span)) => diagnostics.push(
            Diagnostic::new(format!("unclosed {token}"), *span, "this is never closed")
                .with_hint("add the matching closing bracket"),
        ),
        Some(Brackets::Mismatched { closer, open }) => {
            let (line, column) = source.line_column(open.1.start);
            diagnostics.push(
                Diagnostic::new(
                    format!("mismatched {}", closer.0),
                    closer.1,
                    format!(
                        "the innermost open bracket here is the {} at {line}:{column}",
                        open.0
                    ),
                )
                .with_hint(format!(
                    "close the {} with {} before this {}, or remove this {} if it is one too many",
                    open.0,
                    closer_of(&open.0),
                    closer.0,
                    closer.0
                )),
            );
            bad_lines.insert(source.line_of(closer.1.start));
        }
        Some(Brackets::Stray(token, span)) => {
            diagnostics.push(
                Diagnostic::new(
                    format!("unmatched {token}"),
                    *span,
                    "no bracket is open here",
                )
                .with_hint(format!("remove this {token}, or add the bracket it closes")),
            );
            bad_lines.insert(source.line_of(span.start));
        }
        None => {}
    }
    let (program, errors) = parser::parse_program(&tokens, source.text.len());
    let end = source.text.len();
    for error in errors {
        let at = error.span().start;
        // One bad token is reported once: not again by the parser on its line.
        if bad_lines.contains(&source.line_of(at)) {
            continue;
        }
        if brackets.is_some() && error.found().is_none() && at >= end {
            continue;
        }
        diagnostics.push(parse_diagnostic(&error, &tokens));
    }
    if !diagnostics.is_empty() {
        diagnostics.sort_by_key(|d| d.span.start);
        return Err(diagnostics);
    }
    // The tokens are done with: free them before compiling a big file.
    drop(tokens);
    if let Some(span) = deeper_than(&program, MAX_SYNTAX_DEPTH) {
        // Dropping so deep a tree recurses as deep: leave it to the end
        // of the process (an error ends it) rather than risk the stack.
        std::mem::forget(program);
        return Err(vec![
            Diagnostic::new(
                "nesting too deep",
                span,
                format!("more than {MAX_SYNTAX_DEPTH} levels of nesting here"),
            )
            .with_hint("split it into smaller pieces with `let`s or functions")
            .with_note("each operator or call of a chain (`a + b + …`, `f()()…`) nests one level"),
        ]);
    }
    if entry {
        compiler::compile_entry(&program, source.clone(), globals)
    } else {
        compiler::compile(&program, source.clone(), globals)
    }
}

/// Inside a bad string literal, the span of its first unknown escape.
fn bad_escape_span(text: &str) -> Option<std::ops::Range<usize>> {
    if !text.starts_with('"') {
        return None;
    }
    let mut chars = text.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some((_, 'n' | 't' | 'r' | '0' | '"' | '\\')) => {}
                Some((j, other)) => return Some(i..j + other.len_utf8()),
                None => return None,
            }
        }
    }
    None
}

/// What is wrong with the brackets of a file, found before parsing (the
/// parser's errors there would only be guesses around it).
enum Brackets {
    /// An opening bracket that is never closed (the first one).
    Unclosed(Token, Span),
    /// A closing bracket that does not close the innermost open one.
    Mismatched {
        closer: (Token, Span),
        open: (Token, Span),
    },
    /// A closing bracket with no bracket open.
    Stray(Token, Span),
}

fn bracket_problem(tokens: &[(Token, Span)]) -> Option<Brackets> {
    let mut open: Vec<(Token, Span)> = Vec::new();
    for (token, span) in tokens {
        match token {
            Token::LParen | Token::LBrace | Token::LBracket => open.push((token.clone(), *span)),
            Token::RParen | Token::RBrace | Token::RBracket => match open.last() {
                Some((opener, _)) if matches_closer(opener, token) => {
                    open.pop();
                }
                Some(innermost) => {
                    return Some(Brackets::Mismatched {
                        closer: (token.clone(), *span),
                        open: innermost.clone(),
                    });
                }
                None => return Some(Brackets::Stray(token.clone(), *span)),
            },
            _ => {}
        }
    }
    open.into_iter()
        .next()
        .map(|(token, span)| Brackets::Unclosed(token, span))
}

fn matches_closer(open: &Token, close: &Token) -> bool {
    matches!(
        (open, close),
        (Token::LParen, Token::RParen)
            | (Token::LBrace, Token::RBrace)
            | (Token::LBracket, Token::RBracket)
    )
}

/// The closing bracket of an opening one.
fn closer_of(open: &Token) -> &'static str {
    match open {
        Token::LParen => "`)`",
        Token::LBracket => "`]`",
        _ => "`}`",
    }
}

/// An `else if` chain of more than `MAX_SYNTAX_DEPTH` arms, or a run of
/// more than `MAX_NESTING` prefix operators (the parser recurses on both).
fn too_long_chain(tokens: &[(Token, Span)]) -> Option<(Span, String)> {
    // Per open bracket: the `else if` arms of the chain going on at that depth.
    let mut arms: Vec<usize> = vec![0];
    let mut prefix_run = 0usize;
    for (i, (token, span)) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1).map(|(t, _)| t);
        let prefix = matches!(token, Token::Bang | Token::Await | Token::Spawn)
            || (*token == Token::Minus && (i == 0 || starts_operand_after(&tokens[i - 1].0)));
        prefix_run = if prefix { prefix_run + 1 } else { 0 };
        if prefix_run > MAX_NESTING {
            return Some((
                *span,
                format!("more than {MAX_NESTING} prefix operators in a row"),
            ));
        }
        match token {
            Token::LParen | Token::LBrace | Token::LBracket => arms.push(0),
            Token::RParen | Token::RBrace | Token::RBracket => {
                arms.pop();
                if arms.is_empty() {
                    arms.push(0);
                }
                if next != Some(&Token::Else)
                    && let Some(count) = arms.last_mut()
                {
                    *count = 0;
                }
            }
            Token::Else if next == Some(&Token::If) => {
                if let Some(count) = arms.last_mut() {
                    *count += 1;
                    if *count > MAX_SYNTAX_DEPTH {
                        return Some((
                            *span,
                            format!("more than {MAX_SYNTAX_DEPTH} `else if` arms in one chain"),
                        ));
                    }
                }
            }
            Token::Semi => {
                if let Some(count) = arms.last_mut() {
                    *count = 0;
                }
            }
            _ => {}
        }
    }
    None
}

/// After this token, is a `-` a prefix operator (not a subtraction)?
fn starts_operand_after(token: &Token) -> bool {
    !(lexer::ends_operand(token) || *token == Token::RBrace)
}

/// The span of a statement or expression nested deeper than `limit`, if
/// any. Walks the tree with an explicit stack: it may be too deep for
/// recursion.
fn deeper_than(program: &[crate::ast::Stmt], limit: usize) -> Option<Span> {
    use crate::ast::{Expr, ExprKind, ForIter, Stmt, StmtKind, TemplatePart};
    enum Node<'a> {
        Stmt(&'a Stmt),
        Expr(&'a Expr),
    }
    let mut stack: Vec<(Node, usize)> = program.iter().map(|s| (Node::Stmt(s), 1)).collect();
    // One buffer for every node's children (no allocation per node).
    let mut c: Vec<Node> = Vec::new();
    while let Some((node, depth)) = stack.pop() {
        let span = match node {
            Node::Stmt(stmt) => {
                match &stmt.kind {
                    StmtKind::Let { value, .. }
                    | StmtKind::Destructure { value, .. }
                    | StmtKind::Expr(value)
                    | StmtKind::Throw(value) => c.push(Node::Expr(value)),
                    StmtKind::Assign { target, value }
                    | StmtKind::CompoundAssign { target, value, .. } => {
                        c.push(Node::Expr(target));
                        c.push(Node::Expr(value));
                    }
                    StmtKind::Return(value) => c.extend(value.iter().map(Node::Expr)),
                    StmtKind::Fn(decl) => c.extend(decl.body.iter().map(Node::Stmt)),
                    StmtKind::If {
                        cond,
                        then,
                        otherwise,
                    } => {
                        c.push(Node::Expr(cond));
                        c.extend(then.iter().map(Node::Stmt));
                        c.extend(otherwise.iter().flatten().map(Node::Stmt));
                    }
                    StmtKind::While { cond, body } => {
                        c.push(Node::Expr(cond));
                        c.extend(body.iter().map(Node::Stmt));
                    }
                    StmtKind::For { iter, body, .. } => {
                        match iter {
                            ForIter::Range(a, b) => {
                                c.push(Node::Expr(a));
                                c.push(Node::Expr(b));
                            }
                            ForIter::Each(e) => c.push(Node::Expr(e)),
                        }
                        c.extend(body.iter().map(Node::Stmt));
                    }
                    StmtKind::Try {
                        body,
                        catch,
                        finally,
                        ..
                    } => {
                        c.extend(body.iter().map(Node::Stmt));
                        c.extend(catch.iter().flat_map(|(_, b)| b.iter()).map(Node::Stmt));
                        c.extend(finally.iter().flatten().map(Node::Stmt));
                    }
                    StmtKind::Block(body) => c.extend(body.iter().map(Node::Stmt)),
                    StmtKind::Directive { .. }
                    | StmtKind::Break
                    | StmtKind::Continue
                    | StmtKind::Error => {}
                }
                stmt.span
            }
            Node::Expr(expr) => {
                match &expr.kind {
                    ExprKind::List(items) => c.extend(items.iter().map(Node::Expr)),
                    ExprKind::Map(entries) => c.extend(entries.iter().map(|(_, e)| Node::Expr(e))),
                    ExprKind::Unary(_, e)
                    | ExprKind::Field(e, _)
                    | ExprKind::Await(e)
                    | ExprKind::Spawn(e) => c.push(Node::Expr(e)),
                    ExprKind::Binary(_, a, b)
                    | ExprKind::And(a, b)
                    | ExprKind::Or(a, b)
                    | ExprKind::Index(a, b) => {
                        c.push(Node::Expr(a));
                        c.push(Node::Expr(b));
                    }
                    ExprKind::Call(callee, args) => {
                        c.push(Node::Expr(callee));
                        c.extend(args.iter().map(Node::Expr));
                    }
                    ExprKind::Fn(decl) => c.extend(decl.body.iter().map(Node::Stmt)),
                    ExprKind::Template(parts) => c.extend(parts.iter().filter_map(|p| match p {
                        TemplatePart::Expr(e) => Some(Node::Expr(e)),
                        TemplatePart::Text(_) => None,
                    })),
                    ExprKind::Nil
                    | ExprKind::Bool(_)
                    | ExprKind::Int(_)
                    | ExprKind::Float(_)
                    | ExprKind::Duration(_)
                    | ExprKind::Str(_)
                    | ExprKind::Ident(_)
                    | ExprKind::Error => {}
                }
                expr.span
            }
        };
        if depth > limit {
            return Some(span);
        }
        stack.extend(c.drain(..).map(|n| (n, depth + 1)));
    }
    None
}

fn too_deep(tokens: &[(Token, Span)]) -> Option<Span> {
    let mut depth = 0usize;
    for (token, span) in tokens {
        match token {
            Token::LParen | Token::LBrace | Token::LBracket => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(*span);
                }
            }
            Token::RParen | Token::RBrace | Token::RBracket => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn parse_diagnostic(error: &parser::ParseError<'_>, tokens: &[(Token, Span)]) -> Diagnostic {
    use chumsky::error::{RichPattern, RichReason};
    let found = match error.found() {
        Some(token) => token.to_string(),
        None => "end of file".to_string(),
    };
    if let RichReason::Custom(message) = error.reason() {
        return Diagnostic::new("syntax error", *error.span(), message.to_string());
    }
    // The last token before the error (tokens are in source order).
    let before = tokens
        .partition_point(|(_, s)| s.end <= error.span().start)
        .checked_sub(1)
        .and_then(|i| tokens.get(i));
    let previous = before.map(|(t, _)| t);
    if found == "`;`" && previous == Some(&Token::RBrace) {
        return Diagnostic::new(
            "stray `;` after a block",
            *error.span(),
            "this `;` ends nothing",
        )
        .with_hint(
            "remove it: a block `{ … }` (of `if`, `while`, `for`, `fn`, `try`) needs no `;`",
        );
    }
    let mut expected: Vec<String> = error
        .expected()
        .filter_map(|pattern| match pattern {
            RichPattern::Token(token) => Some(token.to_string()),
            RichPattern::Label(label) => Some(label.to_string()),
            RichPattern::EndOfInput => Some("end of file".to_string()),
            _ => None,
        })
        .collect();
    expected.sort();
    expected.dedup();
    if expected.iter().any(|e| e == "`;`") {
        // Point just after the token the `;` should follow.
        if let Some(&(_, prev)) = before {
            return Diagnostic::new(
                "missing `;`",
                Span::from(prev.end..prev.end),
                format!("expected `;` here, before {found}"),
            )
            .with_hint("end each statement with `;`");
        }
    }
    let mut d = Diagnostic::new(
        format!("syntax error: unexpected {found}"),
        *error.span(),
        format!("unexpected {found}"),
    );
    if !expected.is_empty() {
        let list = if expected.len() > 8 {
            format!("{}, …", expected[..8].join(", "))
        } else {
            expected.join(", ")
        };
        d = d.with_hint(format!("expected {list}"));
    }
    if found == "`;`" && expected == ["`=`"] {
        d = d.with_note(
            "`let` needs a value: write `let x = nil;` to declare a variable with no value yet",
        );
    } else if found == "`;`" && expected.iter().any(|e| e == "an expression") {
        d = d.with_note(
            "a value is missing here: `let x = nil;` declares a variable with no value yet",
        );
    } else if found == "`=`" {
        d = d.with_note("`let x = …;` declares; `x = …;` assigns; `==` compares");
    }
    d
}

pub fn render_all(diagnostics: &[Diagnostic], source: &SourceFile, color: bool) -> String {
    let mut out: String = diagnostics
        .iter()
        .take(MAX_DIAGNOSTICS)
        .map(|d| render(d, source, color))
        .collect();
    if diagnostics.len() > MAX_DIAGNOSTICS {
        let more = diagnostics.len() - MAX_DIAGNOSTICS;
        out.push_str(&format!(
            "… and {more} more error{} (only the first {MAX_DIAGNOSTICS} are shown)\n",
            if more == 1 { "" } else { "s" }
        ));
    }
    out
}

/// The list methods written in looplab (`src/vm/prelude.lab`), compiled
/// once per thread: its top-level functions, which capture nothing.
pub fn prelude() -> Vec<Rc<Closure>> {
    thread_local! {
        static PRELUDE: Vec<Rc<Closure>> = compile_prelude();
    }
    PRELUDE.with(Clone::clone)
}

fn compile_prelude() -> Vec<Rc<Closure>> {
    compile_library("<prelude>", crate::vm::PRELUDE_SOURCE)
}

/// Compiles a library written in looplab (the VM's prelude, a policy's
/// library): its top-level functions, which use no globals and capture
/// nothing. A library that does not compile is a bug in looplab.
fn compile_library(name: &str, text: &str) -> Vec<Rc<Closure>> {
    let source = SourceFile::new(name, text.to_string());
    let compiled = compile_source(&source, &mut Globals::default()).unwrap_or_else(|d| {
        panic!(
            "{name} does not compile: {}",
            render_all(&d, &source, false)
        )
    });
    compiled
        .main
        .constants
        .iter()
        .filter_map(|c| match c {
            crate::value::Value::Closure(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// A fresh policy of `kind`, with its library (written in looplab)
/// compiled once per thread and handed to it.
pub fn make_policy(kind: PolicyKind, config: RunConfig) -> Box<dyn crate::runtime::Policy> {
    thread_local! {
        static LIBRARIES: std::cell::RefCell<Vec<(&'static str, Library)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let name = kind.name();
    let library = LIBRARIES.with(|libraries| {
        let mut libraries = libraries.borrow_mut();
        if let Some((_, library)) = libraries.iter().find(|(n, _)| *n == name) {
            return library.clone();
        }
        let library = Library::new(kind.info().library, |source| {
            compile_library("<policy library>", source)
        });
        libraries.push((name, library.clone()));
        library
    });
    kind.make(config, library)
}

/// The default of `--max-steps`: VM instructions a run may execute, plus
/// the work no instruction counts, charged as steps by the policies (heap
/// growth, map writes on a big heap, units started: `runtime::charge`).
/// About a second of a tight loop in a release build; the benchmarks in
/// `programs/bench/` need at most half of it, except `sleeping_tasks`
/// (a million tasks, 550 MB), which needs about 180,000,000.
pub const DEFAULT_MAX_STEPS: u64 = 200_000_000;

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub runtime: Option<PolicyKind>,
    pub max_steps: u64,
    pub instruction_cost_ns: u64,
    pub config: RunConfig,
    /// Write output as the program makes it (the CLI) instead of
    /// collecting it into the `RunResult` (tests, `looplab test`).
    pub stream: bool,
    /// The process ends when this run does (`looplab run`): when dropping
    /// what the run left could print nothing, it is left to the operating
    /// system, as node leaves its heap (a million tasks took 0.1 s to
    /// free one by one).
    pub exits_after: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            runtime: None,
            max_steps: DEFAULT_MAX_STEPS,
            instruction_cost_ns: 10,
            config: RunConfig::default(),
            stream: false,
            exits_after: false,
        }
    }
}

/// What a run produced.
pub struct RunResult {
    pub stdout: String,
    pub stderr: String,
    pub status: i32,
    /// Streamed output could not be written (why the run stopped early).
    pub output_error: Option<std::io::Error>,
}

/// The runtime named by a directive, if any (validated by the compiler).
pub fn directive_runtime(compiled: &Compiled) -> Result<Option<PolicyKind>, Diagnostic> {
    match &compiled.directives.runtime {
        None => Ok(None),
        Some((name, span)) => policy_kind(name)
            .map(Some)
            .ok_or_else(|| Diagnostic::new(runtime_not_implemented(name), *span, "not available")),
    }
}

/// What `--runtime NAME` and `runtime NAME;` both say of a runtime looplab
/// does not have yet.
pub fn runtime_not_implemented(name: &str) -> String {
    format!(
        "the `{name}` runtime is not implemented yet (looplab implements js and asyncio so far)"
    )
}

pub fn policy_kind(name: &str) -> Option<PolicyKind> {
    PolicyKind::from_name(name)
}

/// Compiles and runs a source text; output is collected, not printed.
pub fn run_source(source: &Rc<SourceFile>, options: &RunOptions) -> RunResult {
    let color = options.config.color;
    let mut globals = Globals::default();
    let compiled = match compile_source(source, &mut globals) {
        Ok(c) => c,
        Err(diagnostics) => {
            return RunResult {
                stdout: String::new(),
                stderr: render_all(&diagnostics, source, color),
                status: 2,
                output_error: None,
            };
        }
    };
    let kind = match (options.runtime, directive_runtime(&compiled)) {
        (Some(kind), _) => kind,
        (None, Ok(kind)) => kind.unwrap_or(PolicyKind::Js),
        (None, Err(d)) => {
            return RunResult {
                stdout: String::new(),
                stderr: render(&d, source, color),
                status: 2,
                output_error: None,
            };
        }
    };
    let mut vm = Vm::new(kind.dialect());
    vm.step_limit = if options.max_steps == 0 {
        u64::MAX
    } else {
        options.max_steps
    };
    vm.echo_output = options.config.real_time;
    if options.stream {
        use std::io::IsTerminal;
        vm.output = crate::vm::Output::Stream {
            line_buffered: std::io::stdout().is_terminal(),
        };
    }
    let config = RunConfig {
        instruction_cost_ns: options.instruction_cost_ns,
        ..options.config.clone()
    };
    let ending = if options.exits_after {
        Ending::ProcessExits
    } else {
        Ending::Free
    };
    let status = run_compiled(&mut vm, kind, config, &globals.names, compiled.main, ending);
    if options.stream {
        vm.flush();
    }
    let result = RunResult {
        stdout: std::mem::take(&mut vm.out),
        stderr: std::mem::take(&mut vm.err),
        status,
        output_error: vm.output_error.take(),
    };
    if vm.units_left_behind {
        // Its globals and code go with the process too.
        std::mem::forget(vm);
    }
    result
}

/// What becomes of a run's objects when it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Freed (and reported on, as they are collected).
    Free,
    /// The process exits next: left to the operating system when freeing
    /// them could print nothing (`Policy::collection_is_silent`).
    ProcessExits,
}

/// Runs a compiled main function under a fresh policy of the given kind.
pub fn run_compiled(
    vm: &mut Vm,
    kind: PolicyKind,
    config: RunConfig,
    global_names: &[Rc<str>],
    main: Rc<crate::bytecode::Function>,
    ending: Ending,
) -> i32 {
    crate::runtime::start_clock();
    vm.set_prelude(prelude);

    crate::memory::set_budget(config.memory_limit);
    crate::memory::start_charging();
    let main = Rc::new(Closure::new(main, Box::new([])));
    let mut policy = make_policy(kind, config);
    policy.load(vm, global_names, main);
    let status = policy.run_to_end(vm);
    if ending == Ending::ProcessExits && policy.collection_is_silent() {
        std::mem::forget(policy);
        vm.leave_units_behind();
    } else {
        drop(policy);
        vm.teardown();
    }
    crate::runtime::flush_warnings(vm);
    status
}

#[cfg(test)]
mod prelude_tests {
    use crate::bytecode::Op;

    #[test]
    fn prelude_functions_use_no_globals_and_capture_nothing() {
        let functions = super::prelude();
        let names: Vec<&str> = functions.iter().map(|c| &*c.function.name).collect();
        assert_eq!(names, crate::bytecode::PRELUDE_METHODS);
        for c in &functions {
            let f = &c.function;
            assert!(f.upvalues.is_empty(), "{} captures a variable", f.name);
            for op in &f.code {
                assert!(
                    !matches!(
                        op,
                        Op::GetGlobal(_) | Op::SetGlobal(_) | Op::DefineGlobal(_) | Op::Closure(_)
                    ),
                    "prelude function {} uses {op:?}: it would see the program's globals",
                    f.name
                );
            }
        }
    }
}
