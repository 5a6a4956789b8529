//! Keeps `grammar/looplab.ebnf` true to the parser, both ways.
//!
//! - Every `(* example: SRC *)` comment must parse with no error and every
//!   `(* reject: SRC *)` must give at least one error (lexer + parser only).
//! - Every rule has an example under it; every rule named is defined, and
//!   every rule is reachable from `program` or `token_stream`.
//! - Every `ast::StmtKind` / `ast::ExprKind` variant but `Error` (read from
//!   src/ast.rs at test time) is named by an `(* ast: Variant *)` comment,
//!   and an example under that rule really builds it; no comment names a
//!   variant that no longer exists.
//! - The `keyword` rule lists exactly the lexer's keyword tokens, the
//!   `punctuator` rule exactly its other `#[token]`s; every multi-letter word
//!   the grammar quotes occurs as a string in src/lexer.rs or src/parser.rs.
//! - Claims the grammar's structure makes are checked on generated input:
//!   operator precedence and associativity (read from the rule chain under
//!   `expression`), and where keywords may stand in for names.

use looplab::ast::{Expr, ExprKind, Stmt, StmtKind};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

// ---------------------------------------------------------------- reading

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A token of the EBNF notation itself.
#[derive(Clone, Debug, PartialEq)]
enum Ebnf {
    /// A rule name (meta-identifier).
    Name(String),
    /// A terminal, `"..."` or `'...'`.
    Terminal(String),
    /// A special sequence, `? ... ?`.
    Special(String),
    /// One of `= , | ; - ( ) [ ] { }`.
    Symbol(char),
}

#[derive(Debug)]
struct Rule {
    name: String,
    /// 1-based line of the definition.
    line: usize,
    body: Vec<Ebnf>,
    /// (line, source) of the `example:` / `reject:` comments under the rule.
    examples: Vec<(usize, String)>,
    rejects: Vec<(usize, String)>,
    /// (line, variant) of the `ast:` comments under the rule.
    asts: Vec<(usize, String)>,
}

impl Rule {
    fn names(&self) -> BTreeSet<&str> {
        self.body
            .iter()
            .filter_map(|t| match t {
                Ebnf::Name(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Terminals in order of first appearance, without repeats.
    fn terminals(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for t in &self.body {
            if let Ebnf::Terminal(s) = t
                && !out.contains(&s.as_str())
            {
                out.push(s);
            }
        }
        out
    }

    fn mentions(&self, name: &str) -> bool {
        self.names().contains(name)
    }

    /// Does the body subtract `name` (`... - name`)?
    fn excludes(&self, name: &str) -> bool {
        self.body
            .windows(2)
            .any(|w| w[0] == Ebnf::Symbol('-') && w[1] == Ebnf::Name(name.to_string()))
    }
}

struct Grammar {
    rules: Vec<Rule>,
}

impl Grammar {
    fn load() -> Grammar {
        parse_grammar(&read("grammar/looplab.ebnf"))
    }

    fn rule(&self, name: &str) -> &Rule {
        self.rules
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("grammar/looplab.ebnf defines no rule `{name}`"))
    }

    fn terminals(&self) -> BTreeSet<&str> {
        self.rules.iter().flat_map(|r| r.terminals()).collect()
    }
}

fn parse_grammar(text: &str) -> Grammar {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens: Vec<(usize, Ebnf)> = Vec::new();
    // (line, inner text, rest of the line after the comment is blank and
    // nothing but blanks precede it on its line)
    let mut comments: Vec<(usize, String, bool)> = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let line_start_blank = |chars: &[char], i: usize| {
        chars[..i]
            .iter()
            .rev()
            .take_while(|&&c| c != '\n')
            .all(|c| c.is_whitespace())
    };
    let take_until = |chars: &[char], from: usize, close: &str, what: &str, line: usize| -> usize {
        let close: Vec<char> = close.chars().collect();
        (from..chars.len())
            .find(|&j| chars[j..].starts_with(&close))
            .unwrap_or_else(|| panic!("looplab.ebnf line {line}: unclosed {what}"))
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if chars[i..].starts_with(&['(', '*']) {
            let end = take_until(&chars, i + 2, "*)", "comment", line);
            let inner: String = chars[i + 2..end].iter().collect();
            assert!(
                !inner.contains("(*"),
                "looplab.ebnf line {line}: a comment contains `(*` (comments do not nest here)"
            );
            let whole_line = line_start_blank(&chars, i)
                && chars[end + 2..]
                    .iter()
                    .take_while(|&&c| c != '\n')
                    .all(|c| c.is_whitespace());
            comments.push((line, inner.clone(), whole_line));
            line += inner.matches('\n').count();
            i = end + 2;
        } else if c == '"' || c == '\'' || c == '?' {
            let end = take_until(&chars, i + 1, &c.to_string(), "terminal", line);
            let inner: String = chars[i + 1..end].iter().collect();
            assert!(
                !inner.contains('\n'),
                "looplab.ebnf line {line}: terminal spans lines"
            );
            tokens.push((
                line,
                if c == '?' {
                    Ebnf::Special(inner.trim().to_string())
                } else {
                    Ebnf::Terminal(inner)
                },
            ));
            i = end + 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((line, Ebnf::Name(chars[start..i].iter().collect())));
        } else if "=,|;-()[]{}".contains(c) {
            tokens.push((line, Ebnf::Symbol(c)));
            i += 1;
        } else {
            panic!("looplab.ebnf line {line}: unexpected character {c:?}");
        }
    }

    let mut rules: Vec<Rule> = Vec::new();
    let mut toks = tokens.into_iter().peekable();
    while let Some((line, tok)) = toks.next() {
        let Ebnf::Name(name) = tok else {
            panic!("looplab.ebnf line {line}: expected a rule name, found {tok:?}");
        };
        match toks.next() {
            Some((_, Ebnf::Symbol('='))) => {}
            other => {
                panic!("looplab.ebnf line {line}: expected `=` after `{name}`, found {other:?}")
            }
        }
        let mut body = Vec::new();
        loop {
            match toks.next() {
                Some((_, Ebnf::Symbol(';'))) => break,
                Some((_, t)) => body.push(t),
                None => panic!("looplab.ebnf: rule `{name}` (line {line}) has no closing `;`"),
            }
        }
        rules.push(Rule {
            name,
            line,
            body,
            examples: Vec::new(),
            rejects: Vec::new(),
            asts: Vec::new(),
        });
    }

    for (line, inner, whole_line) in comments {
        let trimmed = inner.trim();
        let (kind, rest) = match trimmed.split_once(':') {
            Some((k @ ("example" | "reject" | "ast"), rest)) => (k, rest.trim().to_string()),
            _ => continue,
        };
        assert!(
            whole_line && !inner.contains('\n'),
            "looplab.ebnf line {line}: an `{kind}:` comment must be a whole line of its own \
             (does its source contain `*)`?)"
        );
        let rule = rules
            .iter_mut()
            .rev()
            .find(|r| r.line <= line)
            .unwrap_or_else(|| {
                panic!("looplab.ebnf line {line}: `{kind}:` comment before any rule")
            });
        match kind {
            "example" => rule.examples.push((line, rest)),
            "reject" => rule.rejects.push((line, rest)),
            _ => rule.asts.push((line, rest)),
        }
    }
    Grammar { rules }
}

/// Variant names of `pub enum NAME {` in src/ast.rs: the capitalized
/// identifiers starting lines inside the enum's body (at bracket depth 0,
/// so the fields of a variant written over several lines do not count).
fn enum_variants(ast_source: &str, name: &str) -> Vec<String> {
    let header = format!("pub enum {name} {{");
    let mut lines = ast_source.lines().skip_while(|l| l.trim() != header);
    assert!(lines.next().is_some(), "src/ast.rs has no `{header}`");
    let mut variants = Vec::new();
    let mut depth = 0i32;
    for line in lines.map(str::trim) {
        if line.starts_with("//") || line.starts_with("#[") {
            continue;
        }
        if depth == 0 && line.starts_with('}') {
            break;
        }
        if depth == 0 && line.starts_with(|c: char| c.is_ascii_uppercase()) {
            variants.push(
                line.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
        for c in line.chars() {
            match c {
                '{' | '(' | '[' => depth += 1,
                '}' | ')' | ']' => depth -= 1,
                _ => {}
            }
        }
    }
    assert!(!variants.is_empty(), "found no variants in `{header}`");
    variants
}

/// The strings of the `#[token("...")]` attributes in src/lexer.rs.
fn lexer_tokens() -> Vec<String> {
    read("src/lexer.rs")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("#[token(\""))
        .map(|rest| rest[..rest.find('"').expect("token string closes")].to_string())
        .collect()
}

// ---------------------------------------------------------------- parsing

/// Lexes and parses `src`: the statements, or every error as text. A bad
/// token is the lexer's error (the parser then takes it as a placeholder).
fn parse(src: &str) -> Result<Vec<Stmt>, Vec<String>> {
    let tokens = looplab::lexer::lex(src);
    let mut problems: Vec<String> = tokens
        .iter()
        .filter(|(t, _)| *t == looplab::lexer::Token::Error)
        .map(|(_, span)| format!("{span:?}: bad token"))
        .collect();
    let (stmts, errors) = looplab::parser::parse_program(&tokens, src.len());
    problems.extend(errors.iter().map(|e| format!("{:?}: {e}", e.span())));
    if problems.is_empty() {
        Ok(stmts)
    } else {
        Err(problems)
    }
}

/// Every `StmtKind` and `ExprKind` variant in parsed statements, read off
/// their `Debug` text (`Stmt { kind: Let ...`, `Expr { kind: Int(...`).
fn kinds_built(stmts: &[Stmt]) -> (BTreeSet<String>, BTreeSet<String>) {
    let text = format!("{stmts:?}");
    let collect = |marker: &str| {
        text.match_indices(marker)
            .map(|(at, _)| {
                text[at + marker.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .collect::<BTreeSet<_>>()
    };
    (collect("Stmt { kind: "), collect("Expr { kind: "))
}

/// The expression of a one-statement program `EXPR;`.
fn single_expression(src: &str) -> Expr {
    let stmts = parse(src).unwrap_or_else(|e| panic!("`{src}` does not parse: {e:?}"));
    match <[Stmt; 1]>::try_from(stmts) {
        Ok(
            [
                Stmt {
                    kind: StmtKind::Expr(e),
                    ..
                },
            ],
        ) => e,
        other => panic!("`{src}` is not one expression statement: {other:?}"),
    }
}

/// The operator at the root of an expression, as the grammar spells it.
fn root_operator(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Binary(op, ..) => format!("binary {}", op.symbol()),
        ExprKind::And(..) => "binary &&".into(),
        ExprKind::Or(..) => "binary ||".into(),
        ExprKind::Unary(op, _) => match format!("{op:?}").as_str() {
            "Neg" => "prefix -".into(),
            "Not" => "prefix !".into(),
            other => format!("prefix {other}"),
        },
        ExprKind::Await(_) => "prefix await".into(),
        ExprKind::Spawn(_) => "prefix spawn".into(),
        ExprKind::Call(..) => "postfix call".into(),
        ExprKind::Index(..) => "postfix index".into(),
        ExprKind::Field(..) => "postfix field".into(),
        other => format!("{other:?}"),
    }
}

fn fail_if_any(problems: Vec<String>, what: &str) {
    if !problems.is_empty() {
        let mut message = format!("{} {what}:\n", problems.len());
        for p in &problems {
            let _ = writeln!(message, "  - {p}");
        }
        panic!("{message}");
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn enum_reader_handles_both_layouts() {
    let source = "pub enum StmtKind {\n    /// doc `{`\n    A { x: Y, z: W },\n    B {\n        name: String,\n    },\n    C(\n        Box<Expr>,\n        Vec<Expr>,\n    ),\n    D(Box<Expr>),\n    E,\n}\npub enum Other {\n    F,\n}\n";
    assert_eq!(enum_variants(source, "StmtKind"), ["A", "B", "C", "D", "E"]);
}

#[test]
fn examples_parse_and_rejects_fail() {
    let grammar = Grammar::load();
    let mut problems = Vec::new();
    let mut count = 0;
    for rule in &grammar.rules {
        for (line, src) in &rule.examples {
            count += 1;
            if let Err(errors) = parse(src) {
                problems.push(format!(
                    "line {line} ({}): example `{src}` fails: {errors:?}",
                    rule.name
                ));
            }
        }
        for (line, src) in &rule.rejects {
            count += 1;
            if let Ok(stmts) = parse(src) {
                let (s, e) = kinds_built(&stmts);
                problems.push(format!(
                    "line {line} ({}): reject `{src}` parses (statements {s:?}, expressions {e:?})",
                    rule.name
                ));
            }
        }
    }
    assert!(count > 0, "no example or reject comments found");
    fail_if_any(problems, "grammar snippets disagree with the parser");
}

#[test]
fn every_rule_has_an_example() {
    let grammar = Grammar::load();
    let problems = grammar
        .rules
        .iter()
        .filter(|r| r.examples.is_empty())
        .map(|r| {
            format!(
                "rule `{}` (line {}) has no `(* example: ... *)` under it",
                r.name, r.line
            )
        })
        .collect();
    fail_if_any(problems, "rules without examples");
}

#[test]
fn rules_are_defined_once_used_and_reachable() {
    let grammar = Grammar::load();
    let mut problems = Vec::new();
    let mut defined: BTreeMap<&str, usize> = BTreeMap::new();
    for rule in &grammar.rules {
        if let Some(first) = defined.insert(&rule.name, rule.line) {
            problems.push(format!(
                "`{}` defined twice (lines {first} and {})",
                rule.name, rule.line
            ));
        }
    }
    for rule in &grammar.rules {
        for name in rule.names() {
            if !defined.contains_key(name) {
                problems.push(format!("rule `{}` uses undefined `{name}`", rule.name));
            }
        }
    }
    let roots = ["program", "token_stream"];
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> = roots.to_vec();
    while let Some(name) = todo.pop() {
        if seen.insert(name)
            && let Some(rule) = grammar.rules.iter().find(|r| r.name == name)
        {
            todo.extend(rule.names());
        }
    }
    for rule in &grammar.rules {
        if !seen.contains(rule.name.as_str()) {
            problems.push(format!(
                "rule `{}` is unreachable from {roots:?}",
                rule.name
            ));
        }
    }
    fail_if_any(problems, "problems with rule definitions");
}

#[test]
fn every_ast_variant_is_in_the_grammar() {
    let grammar = Grammar::load();
    let ast = read("src/ast.rs");
    let stmt_variants = enum_variants(&ast, "StmtKind");
    let expr_variants = enum_variants(&ast, "ExprKind");
    let mut problems = Vec::new();

    // What the examples under each annotated rule build.
    let mut built_by: Vec<(&Rule, &str, bool, bool)> = Vec::new(); // rule, variant, as stmt, as expr
    for rule in &grammar.rules {
        let mut stmts_built = BTreeSet::new();
        let mut exprs_built = BTreeSet::new();
        for (_, src) in &rule.examples {
            if let Ok(stmts) = parse(src) {
                let (s, e) = kinds_built(&stmts);
                stmts_built.extend(s);
                exprs_built.extend(e);
            }
        }
        for (line, variant) in &rule.asts {
            let known = stmt_variants.contains(variant) || expr_variants.contains(variant);
            if !known || variant == "Error" {
                problems.push(format!(
                    "line {line} ({}): `ast: {variant}` is not a StmtKind or ExprKind variant to document",
                    rule.name
                ));
                continue;
            }
            let as_stmt = stmt_variants.contains(variant) && stmts_built.contains(variant);
            let as_expr = expr_variants.contains(variant) && exprs_built.contains(variant);
            if !as_stmt && !as_expr {
                problems.push(format!(
                    "line {line} ({}): no example under the rule builds `{variant}`",
                    rule.name
                ));
            }
            built_by.push((rule, variant, as_stmt, as_expr));
        }
    }

    for (enum_name, variants, is_stmt) in [
        ("StmtKind", &stmt_variants, true),
        ("ExprKind", &expr_variants, false),
    ] {
        for variant in variants.iter().filter(|v| *v != "Error") {
            let named = built_by.iter().any(|(_, v, ..)| v == variant);
            let shown = built_by
                .iter()
                .any(|(_, v, s, e)| v == variant && if is_stmt { *s } else { *e });
            if !named {
                problems.push(format!(
                    "{enum_name}::{variant} has no `(* ast: {variant} *)` in grammar/looplab.ebnf"
                ));
            } else if !shown {
                problems.push(format!(
                    "{enum_name}::{variant}: no rule marked `ast: {variant}` has an example building it"
                ));
            }
        }
    }
    fail_if_any(problems, "AST / grammar mismatches");
}

#[test]
fn lexer_tokens_are_in_the_grammar() {
    let grammar = Grammar::load();
    let tokens = lexer_tokens();
    assert!(
        tokens.len() > 20,
        "found only {} #[token] attributes in src/lexer.rs",
        tokens.len()
    );
    let is_word = |s: &str| s.chars().all(|c| c.is_ascii_alphabetic());
    let lexer_keywords: BTreeSet<&str> = tokens
        .iter()
        .map(String::as_str)
        .filter(|s| is_word(s))
        .collect();
    let lexer_symbols: BTreeSet<&str> = tokens
        .iter()
        .map(String::as_str)
        .filter(|s| !is_word(s))
        .collect();
    let grammar_keywords: BTreeSet<&str> =
        grammar.rule("keyword").terminals().into_iter().collect();
    let grammar_symbols: BTreeSet<&str> =
        grammar.rule("punctuator").terminals().into_iter().collect();

    let mut problems = Vec::new();
    for k in lexer_keywords.difference(&grammar_keywords) {
        problems.push(format!(
            "lexer keyword \"{k}\" is missing from rule `keyword`"
        ));
    }
    for k in grammar_keywords.difference(&lexer_keywords) {
        problems.push(format!(
            "rule `keyword` lists \"{k}\", which is no #[token] of the lexer"
        ));
    }
    for s in lexer_symbols.difference(&grammar_symbols) {
        problems.push(format!(
            "lexer token \"{s}\" is missing from rule `punctuator`"
        ));
    }
    for s in grammar_symbols.difference(&lexer_symbols) {
        problems.push(format!(
            "rule `punctuator` lists \"{s}\", which is no #[token] of the lexer"
        ));
    }
    // Contextual words (directive names, duration units) are not tokens of
    // their own, but the lexer or parser must still spell them.
    let sources = read("src/lexer.rs") + &read("src/parser.rs");
    for word in grammar
        .terminals()
        .into_iter()
        .filter(|s| s.len() > 1 && is_word(s))
    {
        if !sources.contains(&format!("\"{word}\"")) {
            problems.push(format!(
                "the grammar quotes \"{word}\", which src/lexer.rs and src/parser.rs never spell"
            ));
        }
    }
    fail_if_any(problems, "token mismatches");
}

/// The grammar says where a keyword can stand for a name: checked for
/// every keyword in a field name, a `let` name and a map key.
#[test]
fn keywords_as_names_follow_the_grammar() {
    let grammar = Grammar::load();
    let keywords = grammar.rule("keyword").terminals();
    let field_takes_keywords = grammar.rule("field_name").mentions("keyword");
    let identifier_excludes_keywords = grammar.rule("identifier").excludes("keyword");
    assert!(grammar.rule("let_statement").mentions("identifier"));
    let map_key = grammar.rule("map_key");
    let map_key_takes_keywords = map_key.mentions("keyword") || map_key.mentions("field_name");

    let mut problems = Vec::new();
    for kw in keywords {
        let cases = [
            (format!("x.{kw};"), field_takes_keywords),
            (format!("let {kw} = 1;"), !identifier_excludes_keywords),
            (format!("let m = {{{kw}: 1}};"), map_key_takes_keywords),
        ];
        for (src, should_parse) in cases {
            match (parse(&src), should_parse) {
                (Ok(_), false) => {
                    problems.push(format!("`{src}` parses, but the grammar forbids it"))
                }
                (Err(e), true) => {
                    problems.push(format!("`{src}` fails, but the grammar allows it: {e:?}"))
                }
                _ => {}
            }
        }
    }
    fail_if_any(problems, "keyword placements disagree with the grammar");
}

/// Precedence and associativity, read from the chain of rules under
/// `expression` (loosest level first), checked on every operator pair.
#[test]
fn operator_precedence_follows_the_grammar() {
    let grammar = Grammar::load();
    let mut levels: Vec<Vec<String>> = Vec::new();
    let mut current = grammar.rule("expression");
    let (prefix_ops, postfix_rule) = loop {
        let names = current.names();
        let terminals: Vec<String> = current.terminals().iter().map(|s| s.to_string()).collect();
        if names.contains(current.name.as_str()) {
            // `unary = ( ops ), unary | postfix`: the prefix level.
            let next: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| *n != current.name)
                .collect();
            assert_eq!(
                next.len(),
                1,
                "rule `{}`: expected one operand rule",
                current.name
            );
            break (terminals, grammar.rule(next[0]));
        }
        assert_eq!(
            names.len(),
            1,
            "rule `{}` is not an operator level",
            current.name
        );
        if !terminals.is_empty() {
            levels.push(terminals);
        }
        current = grammar.rule(names.iter().next().unwrap());
    };
    assert!(
        levels.len() >= 5,
        "found only {} binary levels",
        levels.len()
    );
    assert!(!prefix_ops.is_empty(), "found no prefix operators");
    assert!(
        postfix_rule.mentions("primary"),
        "the prefix level's operand is not the postfix level"
    );

    let mut problems = Vec::new();
    let mut check = |src: String, expected: String| {
        let got = root_operator(&single_expression(&src));
        if got != expected {
            problems.push(format!(
                "`{src}`: root is `{got}`, the grammar says `{expected}`"
            ));
        }
    };
    let binary: Vec<(usize, &String)> = levels
        .iter()
        .enumerate()
        .flat_map(|(i, ops)| ops.iter().map(move |op| (i, op)))
        .collect();
    for &(i, a) in &binary {
        for &(j, b) in &binary {
            // Looser level at the root; on one level, left-associative.
            let root = if i < j { a } else { b };
            check(format!("x {a} y {b} z;"), format!("binary {root}"));
        }
    }
    for p in &prefix_ops {
        for &(_, b) in &binary {
            check(format!("{p} x {b} y;"), format!("binary {b}"));
            check(format!("x {b} {p} y;"), format!("binary {b}"));
        }
        for postfix in ["x(y)", "x[y]", "x.y"] {
            check(format!("{p} {postfix};"), format!("prefix {p}"));
        }
        check(format!("{p} {p} x;"), format!("prefix {p}"));
    }
    fail_if_any(problems, "precedence disagreements");
}
