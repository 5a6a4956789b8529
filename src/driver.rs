//! The pipeline, end to end: source text → tokens → AST → bytecode → a run
//! under a policy. Every error on the way becomes a `Diagnostic`.

use crate::compiler::{self, Compiled, Globals};
use crate::diagnostic::{Diagnostic, SourceFile, render};
use crate::lexer::{self, Span, Token};
use crate::parser;
use crate::runtime::{Policy, PolicyKind, RunConfig, asyncio::Asyncio, js::Js};
use crate::value::{Closure, Flavor};
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
    let mut bad_spans = Vec::new();
    for (token, span) in &tokens {
        if *token == Token::Error {
            let text = &source.text[span.start..span.end];
            diagnostics.push(Diagnostic::new(
                "syntax error",
                *span,
                lexer::describe_bad_token(text),
            ));
            bad_spans.push(span.start);
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
    let tokens: Vec<(Token, Span)> = tokens
        .into_iter()
        .filter(|(t, _)| *t != Token::Error)
        .collect();
    let (program, errors) = parser::parse_program(&tokens, source.text.len());
    for error in errors {
        if bad_spans.contains(&error.span().start) {
            continue;
        }
        diagnostics.push(parse_diagnostic(&error));
    }
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    compiler::compile(&program, source.clone(), globals)
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

fn parse_diagnostic(error: &parser::ParseError<'_>) -> Diagnostic {
    let found = match error.found() {
        Some(token) => token.to_string(),
        None => "the end of the file".to_string(),
    };
    let mut expected: Vec<String> = error.expected().map(|e| e.to_string()).collect();
    expected.sort();
    expected.dedup();
    let custom = match error.reason() {
        chumsky::error::RichReason::Custom(message) => Some(message.to_string()),
        _ => None,
    };
    match custom {
        Some(message) => Diagnostic::new("syntax error", *error.span(), message),
        None => {
            let mut d = Diagnostic::new(
                format!("syntax error: unexpected {found}"),
                *error.span(),
                format!("unexpected {found}"),
            );
            if !expected.is_empty() {
                let list = if expected.len() > 6 {
                    format!("{}, …", expected[..6].join(", "))
                } else {
                    expected.join(", ")
                };
                d = d.with_hint(format!("expected {list}"));
            }
            if found == "`=`" {
                d = d.with_note("`let x = …;` declares; `x = …;` assigns; `==` compares");
            }
            d
        }
    }
}

pub fn render_all(diagnostics: &[Diagnostic], source: &SourceFile, color: bool) -> String {
    diagnostics
        .iter()
        .map(|d| render(d, source, color))
        .collect()
}

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub runtime: Option<PolicyKind>,
    pub max_steps: u64,
    pub instruction_cost_ns: u64,
    pub config: RunConfig,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            runtime: None,
            max_steps: 2_000_000_000,
            instruction_cost_ns: 10,
            config: RunConfig::default(),
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
    match name {
        "js" => Some(PolicyKind::Js),
        "asyncio" => Some(PolicyKind::Asyncio),
        _ => None,
    }
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
    let mut vm = Vm::new(if kind == PolicyKind::Js {
        Flavor::Js
    } else {
        Flavor::Python
    });
    vm.step_limit = if options.max_steps == 0 {
        u64::MAX
    } else {
        options.max_steps
    };
    vm.instruction_cost_ns = options.instruction_cost_ns;
    vm.echo_output = options.config.real_time;
    vm.sync_globals(&globals.names);
    let status = run_compiled(&mut vm, kind, &options.config, compiled.main);
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
    config: &RunConfig,
    main: Rc<crate::bytecode::Function>,
) -> i32 {
    crate::runtime::start_clock();
    let main = Rc::new(Closure {
        function: main,
        upvalues: Box::new([]),
    });
    let mut policy: Box<dyn Policy> = match kind {
        PolicyKind::Js => Box::new(Js::new(config.clone())),
        PolicyKind::Asyncio => Box::new(Asyncio::new(config.clone())),
    };
    let status = policy.run_program(vm, main);
    drop(policy);
    vm.teardown();
    crate::runtime::flush_warnings(vm);
    status
}
