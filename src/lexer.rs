//! The lexer: source text to a flat list of spanned tokens, using `logos`.
//!
//! A character that starts no token becomes `Token::Error`, so the parser
//! still sees the rest of the file and can report several problems at once.
//! Number and duration literals are converted here; a literal that does not
//! fit (an integer over 64 bits) also becomes an error token with a reason.

use logos::Logos;
use std::fmt;

/// A byte range in the source.
pub type Span = chumsky::span::SimpleSpan<usize>;

#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip(r"//[^\n]*", allow_greedy = true))]
#[logos(skip r"/\*([^*]|\*+[^*/])*\*+/")]
pub enum Token {
    Error,

    #[token("let")]
    Let,
    #[token("fn")]
    Fn,
    #[token("async")]
    Async,
    #[token("await")]
    Await,
    #[token("spawn")]
    Spawn,
    #[token("return")]
    Return,
    #[token("if")]
    If,
    #[token("else")]
    Else,
    #[token("while")]
    While,
    #[token("for")]
    For,
    #[token("in")]
    In,
    #[token("break")]
    Break,
    #[token("continue")]
    Continue,
    #[token("try")]
    Try,
    #[token("catch")]
    Catch,
    #[token("finally")]
    Finally,
    #[token("throw")]
    Throw,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("nil")]
    Nil,

    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice().to_string(), priority = 1)]
    Ident(String),

    /// Integer literal (underscores allowed as separators).
    #[regex(r"[0-9][0-9_]*", |lex| parse_int(lex.slice()))]
    Int(i64),

    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*([eE][+-]?[0-9]+)?", |lex| parse_float(lex.slice()), priority = 10)]
    #[regex(r"[0-9][0-9_]*[eE][+-]?[0-9]+", |lex| parse_float(lex.slice()), priority = 10)]
    Float(FloatBits),

    /// A duration literal, already converted to milliseconds.
    #[regex(r"[0-9][0-9_]*(\.[0-9][0-9_]*)?(us|ms|s|m|h)", |lex| parse_duration(lex.slice()), priority = 10)]
    Duration(FloatBits),

    /// A number run into letters (`5min`, `0x10`): never valid.
    #[regex(r"[0-9][0-9_]*(\.[0-9][0-9_]*)?[A-Za-z_][A-Za-z0-9_]*", priority = 1)]
    BadNumber,

    #[regex(r#""([^"\\\n]|\\.)*""#, |lex| unescape(lex.slice()))]
    Str(String),

    /// `'text'`: not looplab (strings take double quotes), but lexed as one
    /// token so the error can say so once (see `habits`).
    #[regex(r"'([^'\\\n]|\\.)*'", |lex| unescape_single(lex.slice()))]
    SingleQuoted(String),

    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token(";")]
    Semi,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("..")]
    DotDot,
    #[token("=")]
    Assign,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    LtEq,
    #[token(">")]
    Gt,
    #[token(">=")]
    GtEq,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("!")]
    Bang,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
}

/// An `f64` compared by bits, so `Token` can be `Eq`-like for the parser.
#[derive(Clone, Copy, Debug)]
pub struct FloatBits(pub f64);

impl PartialEq for FloatBits {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

fn parse_int(text: &str) -> Option<i64> {
    text.replace('_', "").parse().ok()
}

fn parse_float(text: &str) -> Option<FloatBits> {
    text.replace('_', "").parse().ok().map(FloatBits)
}

fn parse_duration(text: &str) -> Option<FloatBits> {
    let digits_end = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let value: f64 = number.replace('_', "").parse().ok()?;
    let scale = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    Some(FloatBits(value * scale))
}

fn unescape(quoted: &str) -> Option<String> {
    unescape_inner(&quoted[1..quoted.len() - 1], '"')
}

fn unescape_single(quoted: &str) -> Option<String> {
    unescape_inner(&quoted[1..quoted.len() - 1], '\'')
}

/// The text of a string literal without its quotes; `quote` may be escaped.
fn unescape_inner(inner: &str, quote: char) -> Option<String> {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            q if q == quote => out.push(q),
            '\\' => out.push('\\'),
            _ => return None,
        }
    }
    Some(out)
}

/// Why a span became an error token: used for the diagnostic's label.
pub fn describe_bad_token(text: &str) -> String {
    if text.starts_with('"') {
        if text.len() > 1 && text.ends_with('"') {
            "this string has an unknown escape (known: \\n \\t \\r \\0 \\\" \\\\)".into()
        } else {
            "this string is not closed".into()
        }
    } else if text.starts_with(|c: char| c.is_ascii_digit())
        && text.contains(|c: char| c.is_ascii_alphabetic())
    {
        format!("`{text}` is not a number or a duration (duration units: us, ms, s, m, h)")
    } else if text.starts_with(|c: char| c.is_ascii_digit()) {
        "this number does not fit in a 64-bit integer".into()
    } else if text.starts_with('\'') {
        "`'` does not start a string in looplab: strings take double quotes (\"text\")".into()
    } else {
        format!("unexpected character `{}`", text.escape_default())
    }
}

/// Lexes the whole source. Bad input becomes `Token::Error` tokens.
pub fn lex(source: &str) -> Vec<(Token, Span)> {
    Token::lexer(source)
        .spanned()
        .map(|(token, range)| {
            let token = match token {
                Ok(Token::BadNumber) | Err(()) => Token::Error,
                Ok(token) => token,
            };
            (token, Span::from(range))
        })
        .collect()
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let text = match self {
            Token::Error | Token::BadNumber => "an invalid token",
            Token::Ident(name) => return write!(f, "`{name}`"),
            Token::Int(n) => return write!(f, "`{n}`"),
            Token::Float(x) | Token::Duration(x) => return write!(f, "`{}`", x.0),
            Token::Str(s) => return write!(f, "{s:?}"),
            Token::SingleQuoted(s) => return write!(f, "'{s}'"),
            Token::Let => "let",
            Token::Fn => "fn",
            Token::Async => "async",
            Token::Await => "await",
            Token::Spawn => "spawn",
            Token::Return => "return",
            Token::If => "if",
            Token::Else => "else",
            Token::While => "while",
            Token::For => "for",
            Token::In => "in",
            Token::Break => "break",
            Token::Continue => "continue",
            Token::Try => "try",
            Token::Catch => "catch",
            Token::Finally => "finally",
            Token::Throw => "throw",
            Token::True => "true",
            Token::False => "false",
            Token::Nil => "nil",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::Comma => ",",
            Token::Semi => ";",
            Token::Colon => ":",
            Token::Dot => ".",
            Token::DotDot => "..",
            Token::Assign => "=",
            Token::EqEq => "==",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::LtEq => "<=",
            Token::Gt => ">",
            Token::GtEq => ">=",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::Percent => "%",
            Token::Bang => "!",
            Token::AndAnd => "&&",
            Token::OrOr => "||",
        };
        write!(f, "`{text}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(source: &str) -> Vec<Token> {
        lex(source).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn durations_become_milliseconds() {
        assert_eq!(
            tokens("1500ms 1.5s 250us 2m 1h"),
            [1500.0, 1500.0, 0.25, 120_000.0, 3_600_000.0].map(|ms| Token::Duration(FloatBits(ms)))
        );
    }

    #[test]
    fn numbers_take_underscores_and_reject_overflow_and_letters() {
        assert_eq!(tokens("1_000_000"), [Token::Int(1_000_000)]);
        assert_eq!(tokens("99999999999999999999"), [Token::Error]);
        assert_eq!(tokens("5min 0x10"), [Token::Error, Token::Error]);
    }

    #[test]
    fn a_bad_character_does_not_stop_lexing() {
        assert_eq!(
            tokens("a @ b"),
            [
                Token::Ident("a".into()),
                Token::Error,
                Token::Ident("b".into())
            ]
        );
    }

    #[test]
    fn strings_unescape() {
        assert_eq!(tokens(r#""a\n\"b\"""#), [Token::Str("a\n\"b\"".into())]);
        assert_eq!(tokens(r#""bad \q""#), [Token::Error]);
    }
}
