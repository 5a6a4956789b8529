//! Habits from JavaScript and Python: spellings a newcomer brings along
//! (`console.log`, `const`, `def`, `None`, `'quotes'`, `=>`, …). Each one
//! gets a single error that names the looplab spelling ("did you mean …"),
//! never a cascade of unrelated syntax errors.
//!
//! Keywords are caught on the token list, before parsing (`rewrite_tokens`):
//! the habit is reported and the tokens are rewritten to their looplab
//! equivalent, so the parser sees a well-formed program and says nothing
//! more. Names (`console.log`, `setTimeout`, `null`) are caught by the
//! compiler when a name does not resolve (`name_habit`, `member_habit`).

use crate::diagnostic::Diagnostic;
use crate::lexer::{Span, Token};

/// A habit's report, before it becomes a `Diagnostic`.
pub struct Habit {
    /// What the user wrote, as shown in the title (`console.log`).
    pub written: String,
    /// Where the spelling comes from: "JavaScript", "Python", ….
    pub from: &'static str,
    /// The looplab spelling, shown as "did you mean …?".
    pub hint: String,
    pub note: Option<String>,
}

impl Habit {
    fn new(written: impl Into<String>, from: &'static str, hint: impl Into<String>) -> Habit {
        Habit {
            written: written.into(),
            from,
            hint: hint.into(),
            note: None,
        }
    }

    fn note(mut self, note: impl Into<String>) -> Habit {
        self.note = Some(note.into());
        self
    }

    pub fn diagnostic(self, span: Span) -> Diagnostic {
        let title = format!("`{}` is {}, not looplab", self.written, self.from);
        let d =
            Diagnostic::new(title, span, format!("{} spelling", self.from)).with_hint(self.hint);
        match self.note {
            Some(note) => d.with_note(note),
            None => d,
        }
    }
}

const SLEEP_UNITS: &str =
    "a bare number is milliseconds: `sleep(1)` waits 1 ms; write `sleep(1s)`, `sleep(500ms)`";

/// A name used on its own (not as `x.name`) that looplab spells otherwise.
pub fn name_habit(name: &str) -> Option<Habit> {
    let js = "JavaScript";
    let py = "Python";
    let habit = match name {
        "null" => Habit::new(name, js, "did you mean `nil`?"),
        "undefined" => Habit::new(name, js, "did you mean `nil`?")
            .note("looplab has one \"no value\": `nil` (printed `undefined` under js, `None` under asyncio)"),
        "None" => Habit::new(name, py, "did you mean `nil`?")
            .note("looplab has one \"no value\": `nil` (printed `undefined` under js, `None` under asyncio)"),
        "True" => Habit::new(name, py, "did you mean `true`?"),
        "False" => Habit::new(name, py, "did you mean `false`?"),
        "setTimeout" => Habit::new(name, js, "did you mean `set_timeout(f, delay)`?"),
        "clearTimeout" => Habit::new(name, js, "did you mean `clear_timeout(id)`?"),
        "setInterval" | "clearInterval" => {
            let looplab = if name == "setInterval" { "set_interval" } else { "clear_interval" };
            if crate::runtime::is_predefined(looplab) {
                Habit::new(name, js, format!("did you mean `{looplab}`?"))
            } else {
                Habit::new(
                    name,
                    js,
                    "intervals are not available in looplab yet: a function that calls `set_timeout` on itself again repeats",
                )
            }
        }
        "setImmediate" => Habit::new(name, js, "did you mean `set_timeout(f, 0)`?"),
        "queueMicrotask" => Habit::new(name, js, "did you mean `queue_microtask(f)`?"),
        "nextTick" => Habit::new(name, js, "did you mean `next_tick(f)`?"),
        "create_task" | "ensure_future" => Habit::new(name, py, "did you mean `spawn f()`?")
            .note("`spawn f(x)` starts the call as a task (a promise under js)"),
        _ => return None,
    };
    Some(habit)
}

/// `object.member` where `object` is a name looplab does not define (or is
/// a built-in used the way another language spells it).
pub fn member_habit(object: &str, member: &str) -> Option<Habit> {
    let written = format!("{object}.{member}");
    let js = "JavaScript";
    let py = "Python";
    let habit = match (object, member) {
        ("console", "log" | "info" | "debug") => Habit::new(written, js, "did you mean `print(…)`?")
            .note("`print` writes its arguments one space apart, as each runtime prints them"),
        ("console", "error" | "warn") => Habit::new(written, js, "did you mean `print(…)`?")
            .note("looplab programs print to standard output only"),
        ("console", _) => Habit::new(written, js, "did you mean `print(…)`?"),
        ("process", "nextTick") => Habit::new(written, js, "did you mean `next_tick(f)`?"),
        ("asyncio", "sleep") => {
            Habit::new(written, py, "did you mean `sleep(d)`?").note(SLEEP_UNITS)
        }
        ("asyncio", "create_task" | "ensure_future") => {
            Habit::new(written, py, "did you mean `spawn f()`?")
                .note("`spawn f(x)` starts the call as a task (a promise under js)")
        }
        ("asyncio", "gather") => Habit::new(written, py, "did you mean `gather(…)`?"),
        ("asyncio", "run") => Habit::new(written, py, "did you mean `await main();`?").note(
            "a looplab file is already the main coroutine `asyncio.run` would run: call your async main with `await` at the top level",
        ),
        ("asyncio", _) => Habit::new(
            written,
            py,
            "looplab has no `asyncio` module: its built-ins are `sleep`, `spawn f()`, `gather`, `set_timeout`, …",
        ),
        ("time", "sleep") => Habit::new(written, py, "did you mean `work(d)`?")
            .note("`work(d)` blocks the loop for `d` of virtual time, as `time.sleep` does; `await sleep(d)` yields to it"),
        ("promise", m) if PROMISE_STATICS.contains(&m) => {
            Habit::new(written, js, format!("did you mean `Promise.{m}`?"))
                .note("`promise(fn(resolve, reject) { … })` makes a promise; `Promise.resolve` and friends are fields of `Promise`")
        }
        _ => return None,
    };
    Some(habit)
}

/// The fields of the built-in `Promise`.
pub const PROMISE_STATICS: &[&str] = &["all", "allSettled", "any", "race", "reject", "resolve"];

/// `Promise.member` with a member `Promise` does not have.
pub fn promise_static_habit(member: &str, span: Span) -> Option<Diagnostic> {
    if PROMISE_STATICS.contains(&member) {
        return None;
    }
    let candidates: Vec<String> = PROMISE_STATICS.iter().map(|s| s.to_string()).collect();
    let lower = member.to_ascii_lowercase();
    let best = PROMISE_STATICS
        .iter()
        .find(|s| s.to_ascii_lowercase() == lower)
        .copied()
        .or_else(|| crate::diagnostic::closest(member, &candidates));
    let hint = match best {
        Some(best) => format!("did you mean `Promise.{best}`?"),
        None => format!(
            "`Promise` has {}",
            PROMISE_STATICS
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Some(
        Diagnostic::new(
            format!("`Promise.{member}` does not exist"),
            span,
            "not a field of `Promise`",
        )
        .with_hint(hint),
    )
}

/// A keyword habit found on the token list: its report and where.
struct Found {
    key: &'static str,
    habit: Habit,
    span: Span,
}

/// Finds keyword habits in `tokens` and rewrites them into looplab (so the
/// parser reports nothing more about them). Returns one diagnostic per kind
/// of habit (later uses of the same habit are counted in a note), and the
/// spans of every use (the caller silences parse errors on those lines).
pub fn rewrite_tokens(
    tokens: &mut Vec<(Token, Span)>,
    source: &str,
) -> (Vec<Diagnostic>, Vec<Span>) {
    if !tokens.iter().any(might_be_habit) && !tokens.windows(2).any(is_glued_habit) {
        return (Vec::new(), Vec::new());
    }
    let mut input = std::mem::take(tokens);
    let mut out: Vec<(Token, Span)> = Vec::with_capacity(input.len());
    let mut found: Vec<Found> = Vec::new();
    // Expression-bodied arrows waiting for their end: the bracket depth at
    // which `{ return` was opened.
    let mut arrow_ends: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < input.len() {
        // Only lookahead reads `input` after this: take the token, no clone.
        let span = input[i].1;
        let token = std::mem::replace(&mut input[i].0, Token::Comma);
        let after_dot = matches!(out.last(), Some((Token::Dot, _)));
        // Close an expression-bodied arrow at its end.
        if matches!(
            token,
            Token::Comma | Token::Semi | Token::RParen | Token::RBracket | Token::RBrace
        ) {
            while arrow_ends.last() == Some(&depth) {
                arrow_ends.pop();
                depth -= 1;
                out.push((Token::Semi, span));
                out.push((Token::RBrace, span));
            }
        }
        match &token {
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            _ => {}
        }
        let word = match &token {
            Token::Ident(w) if !after_dot => Some(w.as_str()),
            _ => None,
        };
        let next_is_name = matches!(input.get(i + 1), Some((Token::Ident(_), _)));
        match (word, &token) {
            (Some("function"), _) if next_is_name || starts_a_function(&input, i + 1) => {
                found.push(Found {
                    key: "function",
                    habit: Habit::new("function", "JavaScript", "did you mean `fn`?").note(
                        "looplab declares functions with `fn name(a, b) { … }` (and `async fn`)",
                    ),
                    span,
                });
                out.push((Token::Fn, span));
            }
            (Some("def"), _) if next_is_name => {
                found.push(Found {
                    key: "def",
                    habit: Habit::new("def", "Python", "did you mean `fn`?")
                        .note("looplab declares functions with `fn name(a, b) { … }`: braces, not a colon"),
                    span,
                });
                out.push((Token::Fn, span));
            }
            (Some(w @ ("const" | "var")), _) if next_is_name => {
                found.push(Found {
                    key: if w == "const" { "const" } else { "var" },
                    habit: Habit::new(w, "JavaScript", "did you mean `let`?")
                        .note("looplab declares every variable with `let x = …;`"),
                    span,
                });
                out.push((Token::Let, span));
            }
            (Some("elif"), _) if matches!(out.last(), Some((Token::RBrace, _))) => {
                found.push(Found {
                    key: "elif",
                    habit: Habit::new("elif", "Python", "did you mean `else if`?"),
                    span,
                });
                out.push((Token::Else, span));
                out.push((Token::If, span));
            }
            (Some("except"), _) if matches!(out.last(), Some((Token::RBrace, _))) => {
                found.push(Found {
                    key: "except",
                    habit: Habit::new("except", "Python", "did you mean `catch e`?").note(
                        "write `try { … } catch e { … }`: `catch` takes a name, no exception class",
                    ),
                    span,
                });
                out.push((Token::Catch, span));
            }
            (Some("new"), _) if next_is_name => {
                // Take the class name (skipped over below).
                let class_span = input[i + 1].1;
                let Token::Ident(class) = std::mem::replace(&mut input[i + 1].0, Token::Comma)
                else {
                    i += 1; // cannot happen: `next_is_name`
                    continue;
                };
                let whole = Span::from(span.start..class_span.end);
                if class == "Promise" {
                    found.push(Found {
                        key: "new Promise",
                        habit: Habit::new(
                            "new Promise",
                            "JavaScript",
                            "did you mean `promise(fn(resolve, reject) { … })`?",
                        ),
                        span: whole,
                    });
                    out.push((Token::Ident("promise".into()), whole));
                } else {
                    found.push(Found {
                        key: "new",
                        habit: Habit::new(
                            format!("new {class}"),
                            "JavaScript",
                            format!("did you mean `{class}(…)`? looplab has no `new`"),
                        ),
                        span: whole,
                    });
                    out.push((Token::Ident(class), class_span));
                }
                i += 2;
                continue;
            }
            (_, Token::Assign) if matches!(input.get(i + 1), Some((Token::Gt, gt)) if gt.start == span.end) =>
            {
                let arrow = Span::from(span.start..span.end + 1);
                found.push(Found {
                    key: "=>",
                    habit: Habit::new("=>", "JavaScript", "did you mean `fn(x) { … }`?").note(
                        "looplab's function expressions are `fn(a, b) { return …; }` (and `async fn() { … }`)",
                    ),
                    span: arrow,
                });
                rewrite_arrow_params(&mut out, arrow);
                if matches!(input.get(i + 2), Some((Token::LBrace, _))) {
                    // `=> { … }`: the block is the body.
                } else {
                    out.push((Token::LBrace, arrow));
                    out.push((Token::Return, arrow));
                    depth += 1;
                    arrow_ends.push(depth);
                }
                i += 2;
                continue;
            }
            // `===` / `!==`: `==` / `!=` run into `=`.
            (_, Token::EqEq | Token::NotEq) if matches!(input.get(i + 1), Some((Token::Assign, eq)) if eq.start == span.end) =>
            {
                let strict = if token == Token::EqEq { "===" } else { "!==" };
                let looplab = if token == Token::EqEq { "==" } else { "!=" };
                found.push(Found {
                    key: strict,
                    habit: Habit::new(strict, "JavaScript", format!("did you mean `{looplab}`?"))
                        .note(format!(
                            "looplab's `{looplab}` never converts types: `1 {looplab} \"1\"` is {}",
                            token == Token::NotEq
                        )),
                    span: Span::from(span.start..span.end + 1),
                });
                out.push((token, span));
                i += 2;
                continue;
            }
            // `x %= 1`, `x++`: not looplab (it has `+=`, `-=`, `*=`, `/=`,
            // which the lexer reads as one token each). Reported, not
            // rewritten (the target would have to be repeated).
            (_, Token::Plus | Token::Minus | Token::Star | Token::Slash | Token::Percent)
                if compound_assignment(&token, out.last(), &input, i).is_some() =>
            {
                let (written, hint) =
                    compound_assignment(&token, out.last(), &input, i).unwrap_or_default();
                let end = input.get(i + 1).map_or(span.end, |(_, s)| s.end);
                found.push(Found {
                    key: written,
                    habit: Habit::new(
                        written,
                        if matches!(written, "++" | "--") {
                            "JavaScript"
                        } else {
                            "JavaScript or Python"
                        },
                        hint,
                    ),
                    span: Span::from(span.start..end),
                });
                out.push((token, span));
            }
            (Some(w @ ("and" | "or")), _) if ends_operand(out.last()) => {
                let (looplab, key) = if w == "and" {
                    (Token::AndAnd, "and")
                } else {
                    (Token::OrOr, "or")
                };
                found.push(Found {
                    key,
                    habit: Habit::new(
                        w,
                        "Python",
                        format!("did you mean `{}`?", if w == "and" { "&&" } else { "||" }),
                    ),
                    span,
                });
                out.push((looplab, span));
            }
            (Some("not"), _)
                if matches!(
                    input.get(i + 1),
                    Some((
                        Token::Ident(_)
                            | Token::Int(_)
                            | Token::Float(_)
                            | Token::Str(_)
                            | Token::True
                            | Token::False
                            | Token::Nil,
                        _
                    ))
                ) && !ends_operand(out.last()) =>
            {
                found.push(Found {
                    key: "not",
                    habit: Habit::new("not", "Python", "did you mean `!`?"),
                    span,
                });
                out.push((Token::Bang, span));
            }
            (_, Token::SingleQuoted(text)) => {
                found.push(Found {
                    key: "'",
                    habit: Habit {
                        written: source
                            .get(span.start..span.end)
                            .map(shorten)
                            .unwrap_or_else(|| "'…'".into()),
                        from: "Python or JavaScript",
                        hint: format!(
                            "did you mean {}? looplab strings take double quotes only",
                            shorten(&double_quoted(text))
                        ),
                        note: None,
                    },
                    span,
                });
                out.push((Token::Str(text.clone()), span));
            }
            _ => out.push((token, span)),
        }
        i += 1;
    }
    let end = input
        .last()
        .map_or(Span::from(0..0), |(_, s)| Span::from(s.end..s.end));
    for _ in arrow_ends.drain(..) {
        out.push((Token::Semi, end));
        out.push((Token::RBrace, end));
    }
    *tokens = out;
    let spans = found.iter().map(|f| f.span).collect();
    (summarise(found), spans)
}

/// Is `input[at]` a `(` whose matching `)` is followed by `{` (a function's
/// parameters and body)?
fn starts_a_function(input: &[(Token, Span)], at: usize) -> bool {
    if !matches!(input.get(at), Some((Token::LParen, _))) {
        return false;
    }
    let mut depth = 0usize;
    for (j, (token, _)) in input.iter().enumerate().skip(at) {
        match token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return matches!(input.get(j + 1), Some((Token::LBrace, _)));
                }
            }
            _ => {}
        }
    }
    false
}

fn might_be_habit(entry: &(Token, Span)) -> bool {
    match &entry.0 {
        Token::Ident(w) => matches!(
            w.as_str(),
            "function" | "def" | "const" | "var" | "elif" | "except" | "new" | "and" | "or" | "not"
        ),
        Token::SingleQuoted(_) => true,
        _ => false,
    }
}

/// Two tokens glued together that make a habit: `=>`, `===`, `!==`, `+=`
/// (and `-=`, `*=`, `/=`, `%=`), `++`, `--`.
fn is_glued_habit(pair: &[(Token, Span)]) -> bool {
    let [(a, sa), (b, sb)] = pair else {
        return false;
    };
    sa.end == sb.start
        && matches!(
            (a, b),
            (Token::Assign, Token::Gt)
                | (
                    Token::EqEq
                        | Token::NotEq
                        | Token::Plus
                        | Token::Minus
                        | Token::Star
                        | Token::Slash
                        | Token::Percent,
                    Token::Assign
                )
                | (Token::Plus, Token::Plus)
                | (Token::Minus, Token::Minus)
        )
}

/// Does this token end an operand (so a name right after it is not one)?
fn ends_operand(entry: Option<&(Token, Span)>) -> bool {
    entry.is_some_and(|(token, _)| crate::lexer::ends_operand(token))
}

/// `op=` (`+=`, `-=`, …) or `++` / `--` at `input[at]`: what was written and
/// the looplab spelling.
/// `previous` is the token before (already moved out of `input`).
fn compound_assignment(
    op: &Token,
    previous: Option<&(Token, Span)>,
    input: &[(Token, Span)],
    at: usize,
) -> Option<(&'static str, String)> {
    let (symbol, compound, twice) = match op {
        Token::Plus => ("+", "+=", "++"),
        Token::Minus => ("-", "-=", "--"),
        Token::Star => ("*", "*=", ""),
        Token::Slash => ("/", "/=", ""),
        _ => ("%", "%=", ""),
    };
    let span = input.get(at)?.1;
    let (next, next_span) = input.get(at + 1)?;
    if next_span.start != span.end || !ends_operand(previous) {
        return None;
    }
    let x = match previous {
        Some((Token::Ident(name), _)) => name.as_str(),
        _ => "x",
    };
    match next {
        Token::Assign => Some((
            compound,
            format!(
                "did you mean `{x} = {x} {symbol} …;`? looplab has `+=`, `-=`, `*=` and `/=` but no `{compound}`"
            ),
        )),
        Token::Plus | Token::Minus
            if next == op
                && matches!(input.get(at + 2), Some((Token::Semi | Token::RParen, _))) =>
        {
            Some((
                twice,
                format!("did you mean `{x} = {x} {symbol} 1;`? looplab has no `{twice}`"),
            ))
        }
        _ => None,
    }
}

/// `(a, b)` or `a` just before `=>` becomes `fn(a, b)` / `fn(a)`.
fn rewrite_arrow_params(out: &mut Vec<(Token, Span)>, arrow: Span) {
    match out.last() {
        Some((Token::RParen, _)) => {
            let mut depth = 0usize;
            for j in (0..out.len()).rev() {
                match out[j].0 {
                    Token::RParen => depth += 1,
                    Token::LParen => {
                        depth -= 1;
                        if depth == 0 {
                            out.insert(j, (Token::Fn, arrow));
                            return;
                        }
                    }
                    _ => {}
                }
            }
        }
        Some((Token::Ident(_), _)) => {
            let Some(param) = out.pop() else { return };
            out.push((Token::Fn, arrow));
            out.push((Token::LParen, arrow));
            out.push(param);
            out.push((Token::RParen, arrow));
        }
        _ => {}
    }
}

/// `text` as a looplab string literal.
fn double_quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A literal for a title: at most 30 characters.
fn shorten(text: &str) -> String {
    if text.chars().count() <= 30 {
        text.to_string()
    } else {
        let head: String = text.chars().take(27).collect();
        format!("{head}…")
    }
}

/// One diagnostic per kind of habit, in source order; later uses counted.
fn summarise(found: Vec<Found>) -> Vec<Diagnostic> {
    let mut firsts: Vec<(Found, usize)> = Vec::new();
    for f in found {
        match firsts.iter_mut().find(|(first, _)| first.key == f.key) {
            Some((_, count)) => *count += 1,
            None => firsts.push((f, 0)),
        }
    }
    firsts
        .into_iter()
        .map(|(f, more)| {
            let d = f.habit.diagnostic(f.span);
            match more {
                0 => d,
                1 => d.with_note("the same spelling is used once more below"),
                n => d.with_note(format!("the same spelling is used {n} more times below")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rewrites `source` and parses it: (habit titles, parse error count).
    fn check(source: &str) -> (Vec<String>, usize) {
        let mut tokens = crate::lexer::lex(source);
        let (diagnostics, _) = rewrite_tokens(&mut tokens, source);
        let (_, errors) = crate::parser::parse_program(&tokens, source.len());
        (
            diagnostics.into_iter().map(|d| d.title).collect(),
            errors.len(),
        )
    }

    #[test]
    fn rewritten_habits_parse_cleanly() {
        for source in [
            "function f(a) { return a; }",
            "let f = function(a) { return a; };",
            "async function f() { await sleep(1); }",
            "def f(a) { return a; }",
            "const x = 1;",
            "var y = 2;",
            "if x { } elif y { } else { }",
            "try { } except e { }",
            "let p = new Promise(fn(res, rej) { res(1); });",
            "let f = (a, b) => a + b;",
            "let g = x => x * 2;",
            "let h = async () => { await sleep(1); };",
            "xs.map((x) => [x, (y) => y + x]);",
            "f(x => x, 2);",
            "print('it\\'s');",
            "if a === b { }",
            "if a !== b { }",
            "let ok = a and b;",
            "let ok = a or b;",
            "let ok = not a;",
        ] {
            let (titles, errors) = check(source);
            assert_eq!(titles.len(), 1, "{source}: {titles:?}");
            assert_eq!(errors, 0, "{source}");
        }
    }

    #[test]
    fn looplab_spellings_are_left_alone() {
        for source in [
            "let function_name = 1; m.def = 2; m.new = 3;",
            "let function = 1; print(function); function(2);",
            "let and = 1; let or = and; let not = or; print(not(1), and - -1, [or]);",
            "let b = a - -1; let c = a >= b; let d = a == -1;",
            "let elif = 1; if elif { } let except = elif;",
            "let x = a >= b; let y = a == b;",
            "print(\"it's\");",
        ] {
            assert_eq!(check(source), (vec![], 0), "{source}");
        }
    }
}
