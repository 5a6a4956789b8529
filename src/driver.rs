//! The pipeline, end to end: source text → tokens → AST → bytecode → a run
//! under a policy. Every error on the way becomes a `Diagnostic`.

use crate::compiler::{self, Compiled, Globals};
use crate::diagnostic::{Diagnostic, SourceFile, render};
use crate::lexer::{self, Span, Token};
use crate::parser;
use crate::runtime::{PolicyKind, RunConfig};
use crate::value::Closure;
use crate::vm::Vm;
use std::rc::Rc;

/// Brackets nested deeper than this are refused before parsing.
const MAX_NESTING: usize = 200;

/// Lexes, parses and compiles one source text.
pub fn compile_source(
    source: &Rc<SourceFile>,
    globals: &mut Globals,
) -> Result<Compiled, Vec<Diagnostic>> {
    let tokens = lexer::lex(&source.text);
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut bad_lines = Vec::new();
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
            bad_lines.push(source.line_of(span.start));
        }
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
    let unclosed = unclosed_bracket(&tokens);
    if let Some((token, span)) = &unclosed {
        diagnostics.push(
            Diagnostic::new(format!("unclosed {token}"), *span, "this is never closed")
                .with_hint("add the matching closing bracket"),
        );
    }
    let (program, errors) = parser::parse_program(&tokens, source.text.len());
    let end = source.text.len();
    for error in errors {
        let at = error.span().start;
        // One bad token is reported once: not again by the parser on its line.
        if bad_lines.contains(&source.line_of(at)) {
            continue;
        }
        // An unclosed bracket shows up as errors at the end of the file.
        if unclosed.is_some() && error.found().is_none() && at >= end {
            continue;
        }
        diagnostics.push(parse_diagnostic(&error, &tokens));
    }
    if !diagnostics.is_empty() {
        diagnostics.sort_by_key(|d| d.span.start);
        return Err(diagnostics);
    }
    compiler::compile(&program, source.clone(), globals)
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

/// The first opening bracket that is never closed, if any.
fn unclosed_bracket(tokens: &[(Token, Span)]) -> Option<(Token, Span)> {
    let mut open: Vec<(Token, Span)> = Vec::new();
    for (token, span) in tokens {
        match token {
            Token::LParen | Token::LBrace | Token::LBracket => open.push((token.clone(), *span)),
            Token::RParen | Token::RBrace | Token::RBracket => {
                let matches = matches!(
                    (open.last().map(|(t, _)| t), token),
                    (Some(Token::LParen), Token::RParen)
                        | (Some(Token::LBrace), Token::RBrace)
                        | (Some(Token::LBracket), Token::RBracket)
                );
                if matches {
                    open.pop();
                } else {
                    // A stray closer: the parser reports it; stop guessing.
                    return None;
                }
            }
            _ => {}
        }
    }
    open.into_iter().next()
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
        let before = tokens
            .iter()
            .rev()
            .find(|(_, s)| s.end <= error.span().start)
            .map(|(_, s)| *s);
        if let Some(prev) = before {
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
    diagnostics
        .iter()
        .map(|d| render(d, source, color))
        .collect()
}

/// The default of `--max-steps`: VM instructions a run may execute (about
/// two seconds of a tight loop in a release build; the benchmarks in
/// `programs/bench/` need at most half of it).
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
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            runtime: None,
            max_steps: DEFAULT_MAX_STEPS,
            instruction_cost_ns: 10,
            config: RunConfig::default(),
            stream: false,
        }
    }
}

/// What a run produced.
pub struct RunResult {
    pub stdout: String,
    pub stderr: String,
    pub status: i32,
}

/// The runtime named by a directive, if any (validated by the compiler).
pub fn directive_runtime(compiled: &Compiled) -> Result<Option<PolicyKind>, Diagnostic> {
    match &compiled.directives.runtime {
        None => Ok(None),
        Some((name, span)) => policy_kind(name).map(Some).ok_or_else(|| {
            Diagnostic::new(
                format!("the `{name}` runtime is not implemented yet"),
                *span,
                "not available",
            )
            .with_hint("looplab implements `js` and `asyncio` so far")
        }),
    }
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
    let status = run_compiled(&mut vm, kind, config, &globals.names, compiled.main);
    if options.stream {
        vm.flush();
    }
    RunResult {
        stdout: std::mem::take(&mut vm.out),
        stderr: std::mem::take(&mut vm.err),
        status,
    }
}

/// Runs a compiled main function under a fresh policy of the given kind.
pub fn run_compiled(
    vm: &mut Vm,
    kind: PolicyKind,
    config: RunConfig,
    global_names: &[Rc<str>],
    main: Rc<crate::bytecode::Function>,
) -> i32 {
    crate::runtime::start_clock();
    crate::memory::set_budget(config.memory_limit);
    let main = Rc::new(Closure {
        function: main,
        upvalues: Box::new([]),
    });
    let mut policy = kind.make(config);
    policy.load(vm, global_names, main);
    let status = policy.run_to_end(vm);
    drop(policy);
    vm.teardown();
    crate::runtime::flush_warnings(vm);
    status
}
