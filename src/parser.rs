//! The parser: tokens to a spanned AST, using `chumsky` 0.13.
//!
//! Naming: `*_parser` functions build combinators; `parse_program` is the
//! entry point. Errors are `Rich` errors over tokens; the parser recovers at
//! statement boundaries (skipping to the next `;` or to the end of the block,
//! keeping brackets balanced), so one file can report several syntax errors.
//!
//! Parse time is linear in the input, errors or not, because nothing is
//! parsed twice: the alternatives of a choice are told apart by their first
//! token or two (`{` begins a block statement; `let` takes a name or a
//! pattern in one parser); a construct never fails once its bracket is open
//! (a missing closer or `;` is reported and recovered where it is missing,
//! see `closing` and `semicolon`); and statement recovery steps over
//! everything the failed statement opened with a plain token loop
//! (`skip_tokens`). A failure deep in nested blocks is thus caught once,
//! at its own level, instead of making every level around it fail and
//! re-parse what it holds (which took time exponential in the depth).

use crate::ast::*;
use crate::lexer::{Span, Token};
use chumsky::input::ValueInput;
use chumsky::pratt::{infix, left, prefix};
use chumsky::prelude::*;
use std::rc::Rc;

pub type ParseError<'t> = Rich<'t, Token, Span>;
type Extra<'t, Er> = extra::Err<Er>;

/// What the grammar needs of its error type: `Rich` errors for messages, or
/// chumsky's `EmptyErr`, which records nothing and so parses much faster.
pub trait GrammarError<'t, I>:
    chumsky::error::Error<'t, I>
    + chumsky::label::LabelError<'t, I, &'static str>
    + chumsky::label::LabelError<'t, I, chumsky::DefaultExpected<'t, Token>>
    + 't
where
    I: ValueInput<'t, Token = Token, Span = Span>,
{
    fn custom(span: Span, message: &'static str) -> Self;
}

impl<'t, I> GrammarError<'t, I> for ParseError<'t>
where
    I: ValueInput<'t, Token = Token, Span = Span>,
{
    fn custom(span: Span, message: &'static str) -> Self {
        Rich::custom(span, message)
    }
}

impl<'t, I> GrammarError<'t, I> for chumsky::error::EmptyErr
where
    I: ValueInput<'t, Token = Token, Span = Span>,
{
    fn custom(_: Span, _: &'static str) -> Self {
        chumsky::error::EmptyErr::default()
    }
}

/// Parses a token list into statements; returns what parsed plus every error.
///
/// Two passes: a first parse that records no error detail (chumsky merges
/// the expectations of every failed alternative as it goes, which is most
/// of the cost of parsing); only if it fails, a second parse with `Rich`
/// errors for the messages. Both use the same grammar and recovery: error
/// values never steer the parse, so when the first pass reports no error
/// (no recovery happened) the second would build the same statements.
pub fn parse_program(
    tokens: &[(Token, Span)],
    source_len: usize,
) -> (Vec<Stmt>, Vec<ParseError<'_>>) {
    let eoi = Span::from(source_len..source_len);
    let fast = program_parser::<_, chumsky::error::EmptyErr>().parse(tokens.split_token_span(eoi));
    if !fast.has_errors()
        && let Some(stmts) = fast.into_output()
    {
        return (stmts, Vec::new());
    }
    let (stmts, errors) = program_parser::<_, ParseError<'_>>()
        .parse(tokens.split_token_span(eoi))
        .into_output_errors();
    (stmts.unwrap_or_default(), errors)
}

fn program_parser<'t, I, Er>() -> impl Parser<'t, I, Vec<Stmt>, Extra<'t, Er>>
where
    I: ValueInput<'t, Token = Token, Span = Span>,
    Er: GrammarError<'t, I>,
{
    // A `}` that closes nothing is skipped (and reported): statements
    // recover only up to a `}`, which at the top level closes no block.
    let stray = just(Token::RBrace).validate(|_, e, emitter| {
        emitter.emit(Er::custom(e.span(), "this `}` closes no block"));
        Stmt {
            kind: StmtKind::Error,
            span: e.span(),
        }
    });
    stmt_parser()
        .or(stray)
        .repeated()
        .collect::<Vec<_>>()
        .then_ignore(end())
}

fn ident<'t, I, Er>() -> impl Parser<'t, I, String, Extra<'t, Er>> + Clone
where
    I: ValueInput<'t, Token = Token, Span = Span>,
    Er: GrammarError<'t, I>,
{
    select! { Token::Ident(name) => name }.labelled("a name")
}

/// A name after `.`: any identifier, and keywords too (`p.catch`, `p.finally`).
fn member_name<'t, I, Er>() -> impl Parser<'t, I, String, Extra<'t, Er>> + Clone
where
    I: ValueInput<'t, Token = Token, Span = Span>,
    Er: GrammarError<'t, I>,
{
    select! {
        Token::Ident(name) => name,
        Token::Catch => "catch".to_string(),
        Token::Finally => "finally".to_string(),
        Token::Try => "try".to_string(),
        Token::Throw => "throw".to_string(),
        Token::In => "in".to_string(),
        Token::For => "for".to_string(),
        Token::If => "if".to_string(),
        Token::Else => "else".to_string(),
        Token::Let => "let".to_string(),
        Token::Spawn => "spawn".to_string(),
        Token::Await => "await".to_string(),
        Token::Async => "async".to_string(),
        Token::Return => "return".to_string(),
        Token::Fn => "fn".to_string(),
        Token::While => "while".to_string(),
        Token::Break => "break".to_string(),
        Token::Continue => "continue".to_string(),
        Token::True => "true".to_string(),
        Token::False => "false".to_string(),
        Token::Nil => "nil".to_string(),
    }
    .labelled("a field name")
}

/// A closing bracket, recovered where it is missing without parsing again
/// what the brackets hold: before another closing bracket or the end of
/// input, the construct ends there (nothing consumed); before anything else,
/// the tokens up to this closer are skipped (brackets matched, see
/// [`skip_tokens`]), or up to a `;` or an outer closer if it never comes.
/// Either way the missing bracket is reported and the construct does not
/// fail, so no enclosing alternative parses its contents again. Gives
/// whether the bracket was where it belongs.
fn closing<'t, I, Er>(token: Token) -> impl Parser<'t, I, bool, Extra<'t, Er>> + Clone
where
    I: ValueInput<'t, Token = Token, Span = Span>,
    Er: GrammarError<'t, I>,
{
    let wanted = token.clone();
    just(token).to(true).recover_with(via_parser(
        one_of([Token::RParen, Token::RBracket, Token::RBrace])
            .ignored()
            .or(end())
            .rewind()
            .to(false)
            .or(custom(move |inp| {
                skip_tokens(inp, Some(&wanted));
                Ok(false)
            })),
    ))
}

/// A statement's `;`. Where it is missing, the rest of the statement is
/// skipped from there (see [`skip_statement`]); before a `}` or at the end
/// of input nothing is skipped. The statement does not fail, so what it
/// parsed is not parsed again.
fn semicolon<'t, I, Er>() -> impl Parser<'t, I, (), Extra<'t, Er>> + Clone
where
    I: ValueInput<'t, Token = Token, Span = Span>,
    Er: GrammarError<'t, I>,
{
    just(Token::Semi).ignored().recover_with(via_parser(
        skip_statement().or(just(Token::RBrace).ignored().or(end()).rewind()),
    ))
}

/// Skips tokens, matching brackets with a stack, and stops: after `closer`
/// when it comes outside any bracket opened here; before a `;` or another
/// closing bracket outside them (with `closer` `None`: after the `;`, and
/// skipping a stray `)` or `]`); or at the end of input. A closer that
/// matches a bracket opened here further out closes the ones inside it too
/// (their closers are missing), and one that matches none of them is
/// skipped as stray. Gives whether anything was skipped.
///
/// A plain loop, not combinators: it runs at a few nanoseconds a token.
fn skip_tokens<'t, I, Er>(
    inp: &mut chumsky::input::InputRef<'t, '_, I, Extra<'t, Er>>,
    closer: Option<&Token>,
) -> bool
where
    I: ValueInput<'t, Token = Token, Span = Span>,
    Er: GrammarError<'t, I>,
{
    let mut open: Vec<Token> = Vec::new();
    let mut skipped = false;
    while let Some(token) = inp.peek_maybe() {
        let token: &Token = &token;
        let mut last = false;
        match token {
            Token::LParen => open.push(Token::RParen),
            Token::LBracket => open.push(Token::RBracket),
            Token::LBrace => open.push(Token::RBrace),
            Token::RParen | Token::RBracket | Token::RBrace => {
                if let Some(at) = open.iter().rposition(|c| c == token) {
                    open.truncate(at);
                } else if !open.is_empty() {
                    // Stray inside the brackets opened here: skip it.
                } else if Some(token) == closer {
                    last = true;
                } else if closer.is_some() || *token == Token::RBrace {
                    // An outer construct's closer, or the end of the
                    // enclosing block.
                    break;
                }
            }
            Token::Semi if open.is_empty() => {
                if closer.is_some() {
                    break;
                }
                last = true;
            }
            _ => {}
        }
        let _ = inp.next_maybe();
        skipped = true;
        if last {
            break;
        }
    }
    skipped
}

/// Statement recovery: skips the rest of a bad statement — tokens and whole
/// bracket groups up to and including the next `;`, or up to the `}` that
/// closes the enclosing block (a lone `;` is skipped too) — and fails only
/// when there is nothing to skip (at that `}` or at the end of input).
/// Everything the failed statement opened is stepped over, so nothing it
/// parsed is parsed again; a stray `)` or `]` is skipped too: no statement
/// sits directly inside brackets that `)` or `]` close.
fn skip_statement<'t, I, Er>() -> impl Parser<'t, I, (), Extra<'t, Er>> + Clone
where
    I: ValueInput<'t, Token = Token, Span = Span>,
    Er: GrammarError<'t, I>,
{
    custom(|inp| {
        let start = inp.cursor();
        if skip_tokens(inp, None) {
            Ok(())
        } else {
            Err(Er::custom(inp.span_since(&start), "nothing to skip"))
        }
    })
}

fn stmt_parser<'t, I, Er>() -> impl Parser<'t, I, Stmt, Extra<'t, Er>> + Clone
where
    I: ValueInput<'t, Token = Token, Span = Span>,
    Er: GrammarError<'t, I>,
{
    recursive(|stmt| {
        // A block, and whether its `}` was there (not missing at the end).
        let block_closed = just(Token::LBrace)
            .ignore_then(stmt.clone().repeated().collect::<Vec<_>>())
            .then(closing(Token::RBrace))
            .labelled("a block")
            .boxed();
        let block = block_closed.clone().map(|(block, _)| block).boxed();
        let expr = expr_parser(block.clone()).boxed();

        let directive = select! { Token::Ident(name) if matches!(name.as_str(), "runtime" | "gil" | "cores") => name }
            .then(
                choice((
                    ident().map(DirectiveArg::Word),
                    select! { Token::Int(n) => DirectiveArg::Number(n as f64), Token::Float(x) => DirectiveArg::Number(x.0), Token::Duration(x) => DirectiveArg::Number(x.0) },
                ))
                .repeated()
                .at_least(1)
                .collect::<Vec<_>>(),
            )
            .then_ignore(just(Token::Semi))
            .map(|(name, args)| StmtKind::Directive { name, args });

        // One parser for both forms of `let`: a plain name is a `Let`, any
        // other pattern a `Destructure` (two alternatives would parse the
        // value twice whenever it fails).
        let let_stmt = just(Token::Let)
            .ignore_then(pattern_parser())
            .then_ignore(just(Token::Assign))
            .then(expr.clone())
            .then_ignore(semicolon())
            .map(|(pattern, value)| match pattern {
                Pattern::Name(name, name_span) => StmtKind::Let {
                    name,
                    name_span,
                    value,
                },
                pattern => StmtKind::Destructure { pattern, value },
            });

        let fn_stmt = just(Token::Async)
            .or_not()
            .then_ignore(just(Token::Fn))
            .then(ident())
            .then(params_parser())
            .then(block.clone())
            .map_with(|(((is_async, name), params), body), e| {
                StmtKind::Fn(Rc::new(FnDecl {
                    name: Some(name),
                    params,
                    body,
                    is_async: is_async.is_some(),
                    span: e.span(),
                }))
            });

        let if_stmt = recursive(|if_stmt| {
            just(Token::If)
                .ignore_then(expr.clone())
                .then(block.clone())
                .then(
                    just(Token::Else)
                        .ignore_then(block.clone().or(if_stmt.map_with(|kind, e| {
                            vec![Stmt {
                                kind,
                                span: e.span(),
                            }]
                        })))
                        .or_not(),
                )
                .map(|((cond, then), otherwise)| StmtKind::If {
                    cond,
                    then,
                    otherwise,
                })
        });

        let while_stmt = just(Token::While)
            .ignore_then(expr.clone())
            .then(block.clone())
            .map(|(cond, body)| StmtKind::While { cond, body });

        let for_stmt = just(Token::For)
            .ignore_then(ident().map_with(|name, e| (name, e.span())))
            .then_ignore(just(Token::In))
            .then(expr.clone())
            .then(just(Token::DotDot).ignore_then(expr.clone()).or_not())
            .then(block.clone())
            .map(|((((var, var_span), first), end), body)| {
                let iter = match end {
                    Some(end) => ForIter::Range(first, end),
                    None => ForIter::Each(first),
                };
                StmtKind::For {
                    var,
                    var_span,
                    iter,
                    body,
                }
            });

        let simple = choice((
            just(Token::Break).to(StmtKind::Break),
            just(Token::Continue).to(StmtKind::Continue),
            just(Token::Return)
                .ignore_then(expr.clone().or_not())
                .map(StmtKind::Return),
            just(Token::Throw)
                .ignore_then(expr.clone())
                .map(StmtKind::Throw),
        ))
        .then_ignore(semicolon());

        let try_stmt = just(Token::Try)
            .map_with(|_, e| e.span())
            .then(block_closed)
            .then(
                just(Token::Catch)
                    .ignore_then(
                        ident().or(ident()
                            .delimited_by(just(Token::LParen), just(Token::RParen))
                            .validate(|name, e, emitter| {
                                emitter.emit(Er::custom(
                                    e.span(),
                                    "write `catch e { … }`, without parentheses",
                                ));
                                name
                            })),
                    )
                    .then(
                        just(Token::Colon)
                            .ignore_then(
                                ident()
                                    .separated_by(just(Token::Pipe))
                                    .at_least(1)
                                    .collect::<Vec<_>>(),
                            )
                            .or_not(),
                    )
                    .then(block.clone())
                    .or_not(),
            )
            .then(just(Token::Finally).ignore_then(block.clone()).or_not())
            .validate(
                |(((try_span, (body, closed)), catch), finally), _, emitter| {
                    let (catch, catch_kinds) = match catch {
                        Some(((name, kinds), block)) => {
                            (Some((name, block)), kinds.unwrap_or_default())
                        }
                        None => (None, Vec::new()),
                    };
                    // Reported, not failed: failing here would let the statement's
                    // other alternatives parse the body again. (A body whose `}`
                    // is missing has the unclosed bracket to report.)
                    if catch.is_none() && finally.is_none() && closed {
                        emitter.emit(Er::custom(
                            try_span,
                            "a `try` needs a `catch` or a `finally` block",
                        ));
                    }
                    StmtKind::Try {
                        body,
                        catch,
                        catch_kinds,
                        finally,
                    }
                },
            );

        let compound_op = select! {
            Token::PlusAssign => BinaryOp::Add,
            Token::MinusAssign => BinaryOp::Sub,
            Token::StarAssign => BinaryOp::Mul,
            Token::SlashAssign => BinaryOp::Div,
        };
        let expr_stmt = expr
            .clone()
            .then(
                just(Token::Assign)
                    .to(None)
                    .or(compound_op.map(Some))
                    .then(expr.clone())
                    .or_not(),
            )
            .then_ignore(semicolon())
            .map(|(target, value)| match value {
                Some((None, value)) => StmtKind::Assign { target, value },
                Some((Some(op), value)) => StmtKind::CompoundAssign { target, op, value },
                None => StmtKind::Expr(target),
            });

        let recovery = skip_statement().to(StmtKind::Error);

        let statement = choice((
            directive,
            let_stmt,
            fn_stmt,
            if_stmt,
            while_stmt,
            for_stmt,
            simple,
            try_stmt,
            block.clone().map(StmtKind::Block),
            expr_stmt,
        ));
        // Recovery in both passes: without it, a statement the recovery
        // would take (`{a: 1};` as a bad block) can parse as something else.
        statement
            .recover_with(via_parser(recovery))
            .map_with(|kind, e| Stmt {
                kind,
                span: e.span(),
            })
            .boxed()
    })
}

/// The left side of a destructuring `let`: `[a, b]`, `{id, name: n}`,
/// nested.
fn pattern_parser<'t, I, Er>() -> impl Parser<'t, I, Pattern, Extra<'t, Er>> + Clone
where
    I: ValueInput<'t, Token = Token, Span = Span>,
    Er: GrammarError<'t, I>,
{
    recursive(|pattern| {
        let name = ident().map_with(|name, e| Pattern::Name(name, e.span()));
        let list = pattern
            .clone()
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBracket), just(Token::RBracket))
            .map(Pattern::List);
        let field = ident()
            .map_with(|key, e| (key, e.span()))
            .then(just(Token::Colon).ignore_then(pattern).or_not())
            .map(|((key, span), inner)| {
                let inner = inner.unwrap_or_else(|| Pattern::Name(key.clone(), span));
                (key, inner)
            });
        let map = field
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBrace), just(Token::RBrace))
            .map(Pattern::Map);
        choice((name, list, map)).labelled("a name or a pattern")
    })
}

fn params_parser<'t, I, Er>() -> impl Parser<'t, I, Vec<String>, Extra<'t, Er>> + Clone
where
    I: ValueInput<'t, Token = Token, Span = Span>,
    Er: GrammarError<'t, I>,
{
    ident()
        .separated_by(just(Token::Comma))
        .allow_trailing()
        .collect::<Vec<_>>()
        .delimited_by(just(Token::LParen), just(Token::RParen))
}

fn expr_parser<'t, I, Er, B>(block: B) -> impl Parser<'t, I, Expr, Extra<'t, Er>> + Clone
where
    I: ValueInput<'t, Token = Token, Span = Span>,
    Er: GrammarError<'t, I>,
    B: Parser<'t, I, Block, Extra<'t, Er>> + Clone + 't,
{
    recursive(move |expr| {
        let literal = select! {
            Token::Nil => ExprKind::Nil,
            Token::True => ExprKind::Bool(true),
            Token::False => ExprKind::Bool(false),
            Token::Int(n) => ExprKind::Int(n),
            Token::Float(x) => ExprKind::Float(x.0),
            Token::Duration(x) => ExprKind::Duration(x.0),
            Token::Str(s) => ExprKind::Str(s),
            Token::Ident(name) => ExprKind::Ident(name),
            // Already reported by the lexer: parse on as a placeholder.
            Token::Error => ExprKind::Error,
        };

        let items = expr
            .clone()
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>();

        let list = items
            .clone()
            .delimited_by(just(Token::LBracket), closing(Token::RBracket))
            .map(ExprKind::List);

        let map_key =
            select! { Token::Ident(name) => name, Token::Str(s) => s }.labelled("a map key");
        let map = map_key
            .then_ignore(just(Token::Colon))
            .then(expr.clone())
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBrace), closing(Token::RBrace))
            .map(ExprKind::Map);

        let lambda = just(Token::Async)
            .or_not()
            .then_ignore(just(Token::Fn))
            .then(params_parser())
            .then(block)
            .map_with(|((is_async, params), body), e| {
                ExprKind::Fn(Rc::new(FnDecl {
                    name: None,
                    params,
                    body,
                    is_async: is_async.is_some(),
                    span: e.span(),
                }))
            });

        let template = choice((
            select! { Token::Str(s) => TemplatePart::Text(s) },
            expr.clone()
                .delimited_by(just(Token::InterpStart), just(Token::InterpEnd))
                .map(TemplatePart::Expr),
        ))
        .repeated()
        .collect::<Vec<_>>()
        .delimited_by(just(Token::TemplateStart), just(Token::TemplateEnd))
        .map(ExprKind::Template);

        let atom = choice((literal, list, map, lambda, template))
            .map_with(|kind, e| Expr {
                kind,
                span: e.span(),
            })
            .or(expr
                .clone()
                .delimited_by(just(Token::LParen), closing(Token::RParen)))
            .labelled("an expression")
            .boxed();

        enum Postfix {
            Call(Vec<Expr>),
            Index(Expr),
            Field(String),
        }
        let postfix = choice((
            items
                .delimited_by(just(Token::LParen), closing(Token::RParen))
                .map(Postfix::Call),
            expr.clone()
                .delimited_by(just(Token::LBracket), closing(Token::RBracket))
                .map(Postfix::Index),
            just(Token::Dot)
                .ignore_then(member_name())
                .map(Postfix::Field),
        ));
        let chained = atom.foldl_with(postfix.repeated(), |target, op, e| {
            let kind = match op {
                Postfix::Call(args) => ExprKind::Call(Box::new(target), args),
                Postfix::Index(index) => ExprKind::Index(Box::new(target), Box::new(index)),
                Postfix::Field(name) => ExprKind::Field(Box::new(target), name),
            };
            Expr {
                kind,
                span: e.span(),
            }
        });

        let binary = |op: BinaryOp| {
            move |l: Expr,
                  _,
                  r: Expr,
                  e: &mut chumsky::input::MapExtra<'t, '_, I, Extra<'t, Er>>| {
                Expr {
                    kind: ExprKind::Binary(op, Box::new(l), Box::new(r)),
                    span: e.span(),
                }
            }
        };
        // `&&` and `||` short-circuit, so they are their own node kinds.
        let logical = |make: fn(Box<Expr>, Box<Expr>) -> ExprKind| {
            move |l: Expr,
                  _,
                  r: Expr,
                  e: &mut chumsky::input::MapExtra<'t, '_, I, Extra<'t, Er>>| {
                Expr {
                    kind: make(Box::new(l), Box::new(r)),
                    span: e.span(),
                }
            }
        };
        let unary = |make: fn(Box<Expr>) -> ExprKind| {
            move |_, operand: Expr, e: &mut chumsky::input::MapExtra<'t, '_, I, Extra<'t, Er>>| {
                Expr {
                    kind: make(Box::new(operand)),
                    span: e.span(),
                }
            }
        };
        chained
            .pratt((
                prefix(
                    9,
                    just(Token::Minus),
                    unary(|x| ExprKind::Unary(UnaryOp::Neg, x)),
                ),
                prefix(
                    9,
                    just(Token::Bang),
                    unary(|x| ExprKind::Unary(UnaryOp::Not, x)),
                ),
                prefix(9, just(Token::Await), unary(ExprKind::Await)),
                prefix(9, just(Token::Spawn), unary(ExprKind::Spawn)),
                infix(left(7), just(Token::Star), binary(BinaryOp::Mul)),
                infix(left(7), just(Token::Slash), binary(BinaryOp::Div)),
                infix(left(7), just(Token::Percent), binary(BinaryOp::Mod)),
                infix(left(6), just(Token::Plus), binary(BinaryOp::Add)),
                infix(left(6), just(Token::Minus), binary(BinaryOp::Sub)),
                infix(left(5), just(Token::Lt), binary(BinaryOp::Lt)),
                infix(left(5), just(Token::LtEq), binary(BinaryOp::Le)),
                infix(left(5), just(Token::Gt), binary(BinaryOp::Gt)),
                infix(left(5), just(Token::GtEq), binary(BinaryOp::Ge)),
                infix(left(4), just(Token::EqEq), binary(BinaryOp::Eq)),
                infix(left(4), just(Token::NotEq), binary(BinaryOp::Ne)),
                infix(left(3), just(Token::AndAnd), logical(ExprKind::And)),
                infix(left(2), just(Token::OrOr), logical(ExprKind::Or)),
            ))
            .labelled("an expression")
    })
}
