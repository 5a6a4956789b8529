//! Diagnostics: every error the user sees, from any phase, becomes a
//! `Diagnostic` (title, primary span and label, optional hint and notes) and
//! is rendered by `render`, the one place that talks to ariadne.

use crate::lexer::Span;
use ariadne::{Color, Config, IndexType, Label, Report, ReportKind};
use std::rc::Rc;

/// A named source text (a file, `<stdin>`, or a REPL entry).
pub struct SourceFile {
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Rc<SourceFile> {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Rc::new(SourceFile {
            name: name.into(),
            text,
            line_starts,
        })
    }

    /// 1-based line number of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// Byte range of a 1-based line, without its newline.
    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let line = self.line_of(offset);
        let start = self.line_range(line).start;
        let column = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(0, |s| s.chars().count());
        (line, column + 1)
    }

    fn line_range(&self, line: usize) -> std::ops::Range<usize> {
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        start..end.max(start)
    }
}

/// A source line longer than this (in bytes) is shown as a window of about
/// this size around the problem, not whole.
pub const MAX_LINE_SHOWN: usize = 200;

/// At most this many diagnostics are shown for one file; the rest are
/// counted ("… and N more errors").
pub const MAX_DIAGNOSTICS: usize = 20;

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub title: String,
    pub span: Span,
    pub label: String,
    pub hint: Option<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn new(title: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        Diagnostic {
            title: title.into(),
            span,
            label: label.into(),
            hint: None,
            notes: Vec::new(),
        }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// Renders a diagnostic as text (with ANSI colour when `color`).
pub fn render(diagnostic: &Diagnostic, source: &SourceFile, color: bool) -> String {
    let range = clamp(diagnostic.span, source.text.len());
    let line = source.line_of(range.start);
    let bounds = source.line_range(line);
    if bounds.len() > MAX_LINE_SHOWN {
        return render_window(diagnostic, source, color, line, bounds, range);
    }
    // Only the lines the span covers go to ariadne (which indexes all the
    // text it is given): rendering stays cheap in a very large file.
    let last = source.line_of(range.end.saturating_sub(1).max(range.start));
    let lines = bounds.start..source.line_range(last).end;
    let shifted = range.start - lines.start..range.end.min(lines.end) - lines.start;
    render_in(
        diagnostic,
        source.name.as_str(),
        (&source.text[lines], line - 1),
        shifted,
        color,
    )
}

/// Renders a diagnostic on a very long line: the text shown is the same
/// line number with only a window of the line around the span.
fn render_window(
    diagnostic: &Diagnostic,
    source: &SourceFile,
    color: bool,
    line: usize,
    bounds: std::ops::Range<usize>,
    range: std::ops::Range<usize>,
) -> String {
    let text = &source.text;
    let floor = |mut i: usize| {
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = floor(
        range
            .start
            .saturating_sub(MAX_LINE_SHOWN / 2)
            .max(bounds.start),
    );
    let end = floor((start + MAX_LINE_SHOWN).min(bounds.end));
    let mut shown = String::new();
    let ellipsis = if start > bounds.start { "…" } else { "" };
    shown.push_str(ellipsis);
    let offset = shown.len();
    shown.push_str(&text[start..end]);
    if end < bounds.end {
        shown.push('…');
    }
    let span_start = offset + (range.start - start);
    let span_end = offset + (range.end.min(end).max(range.start) - start);
    let column = text[bounds.start..range.start].chars().count() + 1;
    let mut diagnostic = diagnostic.clone();
    let first = text[bounds.start..start].chars().count() + 1;
    diagnostic.notes.push(format!(
        "line {line} is {} characters long: only columns {first}–{} are shown; the problem is at column {column}",
        text[bounds.clone()].chars().count(),
        first + text[start..end].chars().count() - 1,
    ));
    render_in(
        &diagnostic,
        source.name.as_str(),
        (&shown, line - 1),
        span_start..span_end,
        color,
    )
}

/// Renders with ariadne; `text` is (some whole lines of the source, the
/// number of lines before them) and `range` is relative to those lines.
/// The lines before are given to ariadne as empty lines (so it numbers the
/// lines right without indexing the text before them).
fn render_in(
    diagnostic: &Diagnostic,
    name: &str,
    (lines, lines_before): (&str, usize),
    range: std::ops::Range<usize>,
    color: bool,
) -> String {
    let mut text = "\n".repeat(lines_before);
    text.push_str(lines);
    let range = range.start + lines_before..range.end + lines_before;
    let mut report = Report::build(ReportKind::Error, (name, range.clone()))
        .with_config(
            Config::new()
                .with_color(color)
                .with_index_type(IndexType::Byte),
        )
        .with_message(&diagnostic.title)
        .with_label(
            Label::new((name, range))
                .with_message(&diagnostic.label)
                .with_color(Color::Red),
        );
    if let Some(hint) = &diagnostic.hint {
        report = report.with_help(hint);
    }
    for note in &diagnostic.notes {
        report = report.with_note(note);
    }
    let mut out = Vec::new();
    let cache = (name, ariadne::Source::from(text.as_str()));
    if report.finish().write(cache, &mut out).is_err() {
        return format!("error: {}\n", diagnostic.title);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn clamp(span: Span, len: usize) -> std::ops::Range<usize> {
    let start = span.start.min(len);
    let end = span.end.clamp(start, len);
    start..end
}

/// "Did you mean …?": the suggestions every stage makes the same way.
/// The candidate closest to `name` by edit distance, if close enough.
pub fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .filter(|c| !c.is_empty() && c.as_str() != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d < c.len().max(name.len()))
        // Ties go to the alphabetically first name: candidates come from
        // hash sets, and the same program must always get the same hint.
        .min_by(|(da, a), (db, b)| da.cmp(db).then_with(|| a.cmp(b)))
        .map(|(_, c)| c.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(prev + usize::from(ca != *cb));
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
