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
}

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
    let name = source.name.as_str();
    let range = clamp(diagnostic.span, source.text.len());
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
    let cache = (name, ariadne::Source::from(source.text.as_str()));
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
