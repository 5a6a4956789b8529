//! The parser: tokens to a spanned AST, using `chumsky` 0.13.
//!
//! Naming: `*_parser` functions build combinators; `parse_program` is the
//! entry point. Errors are `Rich` errors over tokens; the parser recovers at
//! statement boundaries (skipping to the next `;` or to the end of the block,
//! keeping brackets balanced), so one file can report several syntax errors.

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
    stmt_parser()
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

/// Any run of tokens with brackets balanced: what recovery skips over.
fn balanced_tokens<'t, I, Er>() -> impl Parser<'t, I, (), Extra<'t, Er>> + Clone
where
    I: ValueInput<'t, Token = Token, Span = Span>,
    Er: GrammarError<'t, I>,
{
    recursive(|group| {
        let inner = group.clone().repeated();
        choice((
            inner
                .clone()
                .delimited_by(just(Token::LParen), just(Token::RParen)),
            inner
                .clone()
                .delimited_by(just(Token::LBracket), just(Token::RBracket)),
            inner.delimited_by(just(Token::LBrace), just(Token::RBrace)),
            none_of([
                Token::LParen,
                Token::RParen,
                Token::LBracket,
                Token::RBracket,
                Token::LBrace,
                Token::RBrace,
            ])
            .ignored(),
        ))
    })
}

fn stmt_parser<'t, I, Er>() -> impl Parser<'t, I, Stmt, Extra<'t, Er>> + Clone
where
    I: ValueInput<'t, Token = Token, Span = Span>,
    Er: GrammarError<'t, I>,
{
    recursive(|stmt| {
        let block = stmt
            .clone()
            .repeated()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBrace), just(Token::RBrace))
            .labelled("a block")
            .boxed();
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

        let let_stmt = just(Token::Let)
            .ignore_then(ident().map_with(|name, e| (name, e.span())))
            .then_ignore(just(Token::Assign))
            .then(expr.clone())
            .then_ignore(just(Token::Semi))
            .map(|((name, name_span), value)| StmtKind::Let {
                name,
                name_span,
                value,
            });

        let destructure_stmt = just(Token::Let)
            .ignore_then(pattern_parser())
            .then_ignore(just(Token::Assign))
            .then(expr.clone())
            .then_ignore(just(Token::Semi))
            .map(|(pattern, value)| StmtKind::Destructure { pattern, value });

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
        .then_ignore(just(Token::Semi));

        let try_stmt = just(Token::Try)
            .ignore_then(block.clone())
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
            .try_map(|((body, catch), finally), span| {
                let (catch, catch_kinds) = match catch {
                    Some(((name, kinds), block)) => {
                        (Some((name, block)), kinds.unwrap_or_default())
                    }
                    None => (None, Vec::new()),
                };
                if catch.is_none() && finally.is_none() {
                    Err(Er::custom(
                        span,
                        "a `try` needs a `catch` or a `finally` block",
                    ))
                } else {
                    Ok(StmtKind::Try {
                        body,
                        catch,
                        catch_kinds,
                        finally,
                    })
                }
            });

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
            .then_ignore(just(Token::Semi))
            .map(|(target, value)| match value {
                Some((None, value)) => StmtKind::Assign { target, value },
                Some((Some(op), value)) => StmtKind::CompoundAssign { target, op, value },
                None => StmtKind::Expr(target),
            });

        // Recovery: skip balanced tokens up to and including the next `;`
        // (or up to the `}` closing the enclosing block) and go on.
        let recovery = balanced_tokens()
            .and_is(just(Token::Semi).not())
            .repeated()
            .at_least(1)
            .then(just(Token::Semi).or_not())
            .to(StmtKind::Error);

        let statement = choice((
            directive,
            let_stmt,
            destructure_stmt,
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
            .delimited_by(just(Token::LBracket), just(Token::RBracket))
            .map(ExprKind::List);

        let map_key =
            select! { Token::Ident(name) => name, Token::Str(s) => s }.labelled("a map key");
        let map = map_key
            .then_ignore(just(Token::Colon))
            .then(expr.clone())
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBrace), just(Token::RBrace))
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
                .delimited_by(just(Token::LParen), just(Token::RParen)))
            .labelled("an expression")
            .boxed();

        enum Postfix {
            Call(Vec<Expr>),
            Index(Expr),
            Field(String),
        }
        let postfix = choice((
            items
                .delimited_by(just(Token::LParen), just(Token::RParen))
                .map(Postfix::Call),
            expr.clone()
                .delimited_by(just(Token::LBracket), just(Token::RBracket))
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
