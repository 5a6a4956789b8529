//! The REPL's line editing (rustyline): when an entry is complete (by the
//! lexer's tokens: brackets still open mean "go on on the next line"), how
//! the input is coloured (by token kind), and what Tab completes (keywords,
//! predefined names, REPL commands, names the session defined).

use crate::lexer::{self, Token};
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};
use std::borrow::Cow;

/// The REPL's commands, with a line of help each (`:help` prints them).
pub const COMMANDS: &[(&str, &str)] = &[
    (":help", "show this help"),
    (
        ":runtime NAME",
        "switch to a fresh `js` or `asyncio` runtime (functions and plain values carry over)",
    ),
    (
        ":load FILE",
        "load a program as the next entry without running it (then :step or :run)",
    ),
    (
        ":load",
        "the same for a program you type next (an empty line ends it)",
    ),
    (
        ":step",
        "advance the scheduler by one event and show what ran and why",
    ),
    (":run", "run until nothing is left to run"),
    (
        ":queues",
        "show what is queued right now, and the timers by due time",
    ),
    (
        ":trace on|off",
        "print each scheduler event of the following entries",
    ),
    (
        ":timeline",
        "chart the last entry's units over virtual time",
    ),
    (":gil on|off", "(threads policy: not available yet)"),
    (":cores N", "(threads policy: not available yet)"),
    (
        ":reset",
        "forget everything: a fresh runtime, no variables, the clock at 0",
    ),
    (":quit", "leave (so does Ctrl-D)"),
];

const KEYWORDS: &[&str] = &[
    "let", "fn", "async", "await", "spawn", "return", "if", "else", "while", "for", "in", "break",
    "continue", "try", "catch", "finally", "throw", "true", "false", "nil",
];

/// Is `text` a whole entry, or do open brackets ask for more lines?
/// Strings cannot span lines in looplab, so an open string is an error to
/// report now, as node and python do for a quote left open.
pub fn is_complete(text: &str) -> bool {
    let mut depth: i64 = 0;
    for (token, _) in lexer::lex(text) {
        match token {
            Token::LParen | Token::LBrace | Token::LBracket => depth += 1,
            Token::RParen | Token::RBrace | Token::RBracket => {
                depth -= 1;
                if depth < 0 {
                    return true; // a stray closer: let the parser report it
                }
            }
            _ => {}
        }
    }
    depth == 0 && !open_block_comment(text)
}

/// An unterminated `/* …` (the lexer does not skip it as a comment).
fn open_block_comment(text: &str) -> bool {
    let mut rest = text;
    while let Some(at) = rest.find("/*") {
        // Not inside a line comment or a string on its line.
        let line_start = rest[..at].rfind('\n').map_or(0, |i| i + 1);
        let before = &rest[line_start..at];
        if before.contains("//") || before.matches('"').count() % 2 == 1 {
            rest = &rest[at + 2..];
            continue;
        }
        match rest[at + 2..].find("*/") {
            Some(end) => rest = &rest[at + 2 + end + 2..],
            None => return true,
        }
    }
    false
}

/// The rustyline helper: completion, colouring, multi-line entries.
pub struct LineHelper {
    /// Names the session has defined (globals), for completion.
    pub names: Vec<String>,
    pub color: bool,
}

impl Helper for LineHelper {}

impl Hinter for LineHelper {
    type Hint = String;
}

impl Validator for LineHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        if input.trim_start().starts_with(':') || is_complete(input) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Completer for LineHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        if before.trim_start().starts_with(':') && !before.trim_start().contains(' ') {
            let start = before.len() - before.trim_start().len();
            let word = &before[start..];
            let pairs = COMMANDS
                .iter()
                .map(|(usage, _)| usage.split(' ').next().unwrap_or(usage))
                .filter(|c| c.starts_with(word))
                .map(|c| Pair {
                    display: c.to_string(),
                    replacement: c.to_string(),
                })
                .collect();
            return Ok((start, pairs));
        }
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        if word.is_empty() || word.starts_with(|c: char| c.is_ascii_digit()) {
            return Ok((pos, Vec::new()));
        }
        let mut names: Vec<String> = KEYWORDS
            .iter()
            .copied()
            .chain(crate::runtime::predefined_names())
            .map(str::to_string)
            .chain(self.names.iter().cloned())
            .filter(|n| n.starts_with(word))
            .collect();
        names.sort_unstable();
        names.dedup();
        let pairs = names
            .into_iter()
            .map(|n| Pair {
                display: n.clone(),
                replacement: n,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Highlighter for LineHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.color {
            return Cow::Borrowed(line);
        }
        Cow::Owned(highlight(line))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

/// The ANSI colour of a token's kind, if it has one.
fn colour_of(token: &Token, text: &str) -> Option<&'static str> {
    Some(match token {
        Token::Error | Token::BadNumber => "\x1b[31m",
        Token::True | Token::False | Token::Nil => "\x1b[33m",
        Token::Int(_) | Token::Float(_) | Token::Duration(_) => "\x1b[33m",
        Token::Str(_) => "\x1b[32m",
        Token::Ident(_) if crate::runtime::is_predefined(text) => "\x1b[36m",
        Token::Ident(_) => return None,
        t if KEYWORDS.contains(&text) && !matches!(t, Token::Ident(_)) => "\x1b[35m",
        _ => return None,
    })
}

/// The input with ANSI colours by token kind; comments dim; a REPL
/// command bold. The text itself is unchanged (same display width).
pub fn highlight(line: &str) -> String {
    if line.trim_start().starts_with(':') {
        return format!("\x1b[1m{line}\x1b[0m");
    }
    let mut out = String::with_capacity(line.len() * 2);
    let mut at = 0;
    for (token, span) in lexer::lex(line) {
        let gap = &line[at..span.start];
        push_gap(&mut out, gap);
        let text = &line[span.start..span.end];
        match colour_of(&token, text) {
            Some(colour) => {
                out.push_str(colour);
                out.push_str(text);
                out.push_str("\x1b[0m");
            }
            None => out.push_str(text),
        }
        at = span.end;
    }
    push_gap(&mut out, &line[at..]);
    out
}

/// Text between tokens: white space and comments (dimmed).
fn push_gap(out: &mut String, gap: &str) {
    match gap.find('/') {
        Some(i) => {
            out.push_str(&gap[..i]);
            out.push_str("\x1b[2m");
            out.push_str(&gap[i..]);
            out.push_str("\x1b[0m");
        }
        None => out.push_str(gap),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_brackets_ask_for_more() {
        assert!(!is_complete("fn f() {"));
        assert!(!is_complete("let xs = [1,"));
        assert!(!is_complete("print(1"));
        assert!(is_complete("fn f() { return 1; }"));
        assert!(is_complete("print(\"{\");"));
        assert!(is_complete("}"));
        assert!(!is_complete("/* a comment"));
        assert!(is_complete("/* a { comment */ 1;"));
        assert!(is_complete("// fn f() {"));
    }

    #[test]
    fn highlighting_keeps_the_text() {
        let line = "let x = print(\"hi\", 1.5, nil); // done";
        let shown = highlight(line);
        let plain: String = strip_ansi(&shown);
        assert_eq!(plain, line);
        assert!(shown.contains("\x1b[35mlet\x1b[0m"));
        assert!(shown.contains("\x1b[32m\"hi\"\x1b[0m"));
        assert!(shown.contains("\x1b[36mprint\x1b[0m"));
    }

    fn strip_ansi(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
