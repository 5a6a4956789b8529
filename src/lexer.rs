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

    /// A whole template literal `` `a ${x} b` `` as lexed by logos; `lex`
    /// expands it into the `Template*` tokens below before the parser sees it.
    /// (`None`: never closed; the token runs to the end of its line.)
    #[regex("`", template_literal)]
    RawTemplate(Option<String>),
    /// The opening backtick of a template literal.
    TemplateStart,
    /// The closing backtick of a template literal.
    TemplateEnd,
    /// `${` inside a template literal.
    InterpStart,
    /// The `}` closing an `${`.
    InterpEnd,
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
    #[token("+=")]
    PlusAssign,
    #[token("-=")]
    MinusAssign,
    #[token("*=")]
    StarAssign,
    #[token("/=")]
    SlashAssign,
    #[token("|")]
    Pipe,
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
    if text.starts_with('`') {
        if text.len() > 1 && text.ends_with('`') {
            "this template literal has an unknown escape (known: \\n \\t \\r \\0 \\\" \\\\ \\` \\$ \\{ \\})".into()
        } else {
            "this template literal is not closed (a closing backtick or the `}` of a `${` is missing)".into()
        }
    } else if text.starts_with('"') {
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

/// Does a value end at this token (a name, a literal, a closing `)` or
/// `]`), so that an operator after it is binary, not prefix?
pub fn ends_operand(token: &Token) -> bool {
    matches!(
        token,
        Token::Ident(_)
            | Token::Int(_)
            | Token::Float(_)
            | Token::Duration(_)
            | Token::Str(_)
            | Token::True
            | Token::False
            | Token::Nil
            | Token::RParen
            | Token::RBracket
    )
}

/// Lexes the whole source. Bad input becomes `Token::Error` tokens.
pub fn lex(source: &str) -> Vec<(Token, Span)> {
    let mut out = Vec::new();
    lex_into(source, 0, &mut out);
    out
}

/// Lexes `source` (which starts at byte `offset` of the file) onto `out`,
/// expanding each template literal into its pieces.
fn lex_into(source: &str, offset: usize, out: &mut Vec<(Token, Span)>) {
    for (token, range) in Token::lexer(source).spanned() {
        let span = Span::from(offset + range.start..offset + range.end);
        match token {
            Ok(Token::BadNumber) | Err(()) => out.push((Token::Error, span)),
            Ok(Token::RawTemplate(Some(text))) => {
                let before = out.len();
                if expand_template(&text, span.start, out).is_none() {
                    out.truncate(before);
                    out.push((Token::Error, span));
                }
            }
            Ok(Token::RawTemplate(None)) => out.push((Token::Error, span)),
            Ok(token) => out.push((token, span)),
        }
    }
}

// ---- template literals ----
//
// `` `total ${x}` `` is lexed in two steps: logos's callback finds where the
// literal ends (skipping nested `${…}`, with their strings, comments and
// templates), then `expand_template` turns it into `TemplateStart`, a `Str`
// per piece of text, `InterpStart` tokens… `InterpEnd` around each
// embedded expression's own tokens, and `TemplateEnd`.

/// The logos callback: consumes the rest of a template literal.
/// A literal never closed is one error token up to the end of its line.
fn template_literal(lex: &mut logos::Lexer<Token>) -> Option<String> {
    match template_end(lex.remainder()) {
        Some(len) => {
            lex.bump(len);
            Some(lex.slice().to_string())
        }
        None => {
            let rest = lex.remainder();
            lex.bump(rest.find('\n').unwrap_or(rest.len()));
            None
        }
    }
}

/// The length of a template literal's rest (after its opening backtick),
/// closing backtick included; `None` if it is never closed.
fn template_end(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'`' => return Some(i + 1),
            b'$' if bytes.get(i + 1) == Some(&b'{') => i += 2 + code_end(&rest[i + 2..])? + 1,
            _ => i += 1,
        }
    }
    None
}

/// The length of the code inside `${…}` up to (not including) its closing
/// `}`; `None` if it is never closed.
fn code_end(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if i >= bytes.len() || bytes[i] != b'"' {
                    return None;
                }
            }
            b'`' => i += template_end(&rest[i + 1..])?,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i += rest[i + 2..].find("*/")? + 3,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Expands a whole template literal (backticks included) found at byte
/// `start` into tokens; `None` if a piece of text has an unknown escape.
fn expand_template(text: &str, start: usize, out: &mut Vec<(Token, Span)>) -> Option<()> {
    let end = start + text.len();
    out.push((Token::TemplateStart, Span::from(start..start + 1)));
    let inner = &text[1..text.len() - 1];
    let mut piece = String::new();
    let mut piece_start = start + 1;
    let mut chars = inner.char_indices().peekable();
    let flush = |piece: &mut String, from: usize, to: usize, out: &mut Vec<(Token, Span)>| {
        if !piece.is_empty() {
            out.push((Token::Str(std::mem::take(piece)), Span::from(from..to)));
        }
    };
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, escaped) = chars.next()?;
                piece.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    '"' | '\\' | '`' | '$' | '{' | '}' => escaped,
                    _ => return None,
                });
            }
            '$' if chars.peek().is_some_and(|(_, c)| *c == '{') => {
                chars.next();
                let at = start + 1 + i;
                flush(&mut piece, piece_start, at, out);
                let code_from = i + 2;
                let code_len = code_end(&inner[code_from..])?;
                out.push((Token::InterpStart, Span::from(at..at + 2)));
                lex_into(
                    &inner[code_from..code_from + code_len],
                    start + 1 + code_from,
                    out,
                );
                let close = start + 1 + code_from + code_len;
                out.push((Token::InterpEnd, Span::from(close..close + 1)));
                while chars
                    .peek()
                    .is_some_and(|(j, _)| *j <= code_from + code_len)
                {
                    chars.next();
                }
                piece_start = close + 1;
            }
            c => piece.push(c),
        }
    }
    flush(&mut piece, piece_start, end - 1, out);
    out.push((Token::TemplateEnd, Span::from(end - 1..end)));
    Some(())
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
            Token::PlusAssign => "+=",
            Token::MinusAssign => "-=",
            Token::StarAssign => "*=",
            Token::SlashAssign => "/=",
            Token::Pipe => "|",
            Token::RawTemplate(_) | Token::TemplateStart | Token::TemplateEnd => "`",
            Token::InterpStart => "${",
            Token::InterpEnd => "}",
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
    fn templates_expand_into_pieces_with_nesting_and_escapes() {
        use Token::*;
        assert_eq!(
            tokens(r#"`a ${x + "}"} \${b} ${ `in ${y}` }`"#),
            [
                TemplateStart,
                Str("a ".into()),
                InterpStart,
                Ident("x".into()),
                Plus,
                Str("}".into()),
                InterpEnd,
                Str(" ${b} ".into()),
                InterpStart,
                TemplateStart,
                Str("in ".into()),
                InterpStart,
                Ident("y".into()),
                InterpEnd,
                TemplateEnd,
                InterpEnd,
                TemplateEnd,
            ]
        );
        assert_eq!(tokens("``"), [TemplateStart, TemplateEnd]);
        assert_eq!(tokens("`open ${x` 1\n2"), [Error, Int(2)]);
        assert_eq!(tokens(r"`\q`"), [Error]);
        let spans: Vec<_> = lex("`ab${c}`")
            .into_iter()
            .map(|(_, s)| s.into_range())
            .collect();
        assert_eq!(spans, [0..1, 1..3, 3..5, 5..6, 6..7, 7..8]);
    }

    #[test]
    fn strings_unescape() {
        assert_eq!(tokens(r#""a\n\"b\"""#), [Token::Str("a\n\"b\"".into())]);
        assert_eq!(tokens(r#""bad \q""#), [Token::Error]);
    }
}
