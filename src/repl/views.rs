//! What the REPL's views print, as text from data: a scheduler event as one
//! line (`:trace`, `:step`), the queues (`:queues`), and the last entry's
//! units over virtual time (`:timeline`). They read the event log and
//! `runtime::Queues`, nothing else.

use crate::runtime::Queues;
use crate::runtime::events::{Event, EventKind};
use crate::vm::UnitId;
use std::collections::HashMap;
use std::fmt::Write;
use std::rc::Rc;

/// Virtual nanoseconds as milliseconds, to the nanosecond: `1.000ms`,
/// `12.00014ms`.
pub fn ms(ns: u64) -> String {
    let fraction = format!("{:06}", ns % 1_000_000);
    let fraction = fraction.trim_end_matches('0');
    format!("{}.{:0<3}ms", ns / 1_000_000, fraction)
}

/// A unit as `name#id` (ids are reused: the name is the latest one).
fn unit_label(id: UnitId, names: &HashMap<UnitId, Rc<str>>) -> String {
    match names.get(&id) {
        Some(name) => format!("{name}#{id}"),
        None => format!("unit#{id}"),
    }
}

/// One line: virtual time, unit, what happened.
pub fn describe_event(event: &Event, names: &HashMap<UnitId, Rc<str>>) -> String {
    let unit = match event.unit {
        Some(id) => unit_label(id, names),
        None => "-".to_string(),
    };
    let what = match &event.kind {
        EventKind::Created { .. } => "created".to_string(),
        EventKind::Ran { steps } => format!("ran {steps} instruction(s)"),
        EventKind::Suspended => "suspended at an await".to_string(),
        EventKind::Resumed => "resumed".to_string(),
        EventKind::Finished => "finished".to_string(),
        EventKind::Dequeued { queue } => format!("took the next job from the {queue} queue"),
        EventKind::TimerDue => "a timer is due".to_string(),
        EventKind::Idle { to_ns } => format!("idle: the clock moves on to {}", ms(*to_ns)),
    };
    format!("[{:>10}] {unit:<18} {what}", ms(event.at_ns))
}

/// What is queued, per queue (front first), and the next timers.
pub fn queues(runtime: &str, now_ns: u64, queues: &Queues) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{runtime} at {} (virtual time)", ms(now_ns));
    for (name, jobs) in &queues.queues {
        if jobs.is_empty() {
            let _ = writeln!(out, "{name}: empty");
            continue;
        }
        let _ = writeln!(out, "{name}: {}", jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            let _ = writeln!(out, "  {}. {job}", i + 1);
        }
    }
    if queues.timers.is_empty() {
        let _ = writeln!(out, "timers: none");
    } else {
        let _ = writeln!(out, "timers: {}", queues.timers.len());
        for (due, job) in queues.timers.iter().take(10) {
            let _ = writeln!(out, "  at {}: {job}", ms(*due));
        }
        if queues.timers.len() > 10 {
            let _ = writeln!(out, "  … and {} more", queues.timers.len() - 10);
        }
    }
    out
}

/// Columns of the timeline chart.
const WIDTH: u64 = 60;

/// The units of `events` over virtual time, one row per unit (a reused id
/// starts a new row): `█` where it ran (a slice of N instructions ran for
/// N × `cost_ns` before its `Ran` event), `·` while it existed without
/// running. A unit that ran for less than a column still shows one mark.
pub fn timeline(events: &[Event], names: &HashMap<UnitId, Rc<str>>, cost_ns: u64) -> String {
    if events.is_empty() {
        return "(no events: the last entry ran nothing)\n".to_string();
    }
    let began = |e: &Event| match e.kind {
        EventKind::Ran { steps } => e.at_ns.saturating_sub(steps.saturating_mul(cost_ns)),
        _ => e.at_ns,
    };
    let start = events.iter().map(began).min().unwrap_or(0);
    let end = events.iter().map(|e| e.at_ns).max().unwrap_or(start);
    let span = end.saturating_sub(start).max(1);
    let column = |t: u64| {
        (u128::from(t.saturating_sub(start)) * u128::from(WIDTH - 1) / u128::from(span)) as usize
    };
    let mut rows: Vec<(String, Vec<char>, Option<usize>)> = Vec::new();
    let mut row_of: HashMap<UnitId, usize> = HashMap::new();
    let mut names = names.clone();
    for event in events {
        let Some(unit) = event.unit else { continue };
        if let EventKind::Created { name } = &event.kind {
            names.insert(unit, name.clone());
            row_of.remove(&unit);
        }
        let row = *row_of.entry(unit).or_insert_with(|| {
            rows.push((unit_label(unit, &names), vec![' '; WIDTH as usize], None));
            rows.len() - 1
        });
        let (_, cells, seen_at) = &mut rows[row];
        let at = column(event.at_ns);
        let from = seen_at.unwrap_or(at);
        for cell in cells.iter_mut().take(at + 1).skip(from) {
            if *cell == ' ' {
                *cell = '·';
            }
        }
        *seen_at = Some(at);
        if matches!(event.kind, EventKind::Ran { .. }) {
            for cell in cells.iter_mut().take(at + 1).skip(column(began(event))) {
                *cell = '█';
            }
        }
        if matches!(event.kind, EventKind::Finished) {
            row_of.remove(&unit);
        }
    }
    let label_width = rows.iter().map(|(l, _, _)| l.len()).max().unwrap_or(4);
    let mut out = format!(
        "{:label_width$}  {} … {}  ({} per column; █ running, · alive)\n",
        "",
        ms(start),
        ms(end),
        ms(span.div_ceil(WIDTH - 1))
    );
    for (label, cells, _) in &rows {
        let line: String = cells.iter().collect();
        let _ = writeln!(out, "{label:label_width$} |{}|", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at_ns: u64, unit: Option<UnitId>, kind: EventKind) -> Event {
        Event { at_ns, unit, kind }
    }

    #[test]
    fn times_show_to_the_nanosecond() {
        assert_eq!(ms(0), "0.000ms");
        assert_eq!(ms(1_000_000), "1.000ms");
        assert_eq!(ms(12_000_140), "12.00014ms");
        assert_eq!(ms(1_500_000), "1.500ms");
    }

    #[test]
    fn a_timeline_row_per_unit_incarnation() {
        // `main` runs 0–10 µs and waits; a callback (unit 1) runs 1 ms
        // later; then unit 1's id is reused by another callback.
        let created = |name: &str| EventKind::Created {
            name: Rc::from(name),
        };
        let events = vec![
            event(0, Some(0), created("main")),
            event(10_000, Some(0), EventKind::Ran { steps: 1000 }),
            event(10_000, Some(0), EventKind::Suspended),
            event(1_000_000, None, EventKind::TimerDue),
            event(1_000_000, Some(1), created("cb")),
            event(1_010_000, Some(1), EventKind::Ran { steps: 1000 }),
            event(1_010_000, Some(1), EventKind::Finished),
            event(2_000_000, Some(1), created("other")),
            event(2_010_000, Some(1), EventKind::Ran { steps: 1000 }),
            event(2_010_000, Some(1), EventKind::Finished),
        ];
        let chart = timeline(&events, &HashMap::new(), 10);
        let lines: Vec<&str> = chart.lines().collect();
        assert_eq!(lines.len(), 4, "{chart}");
        assert!(lines[0].contains("0.000ms … 2.010ms"), "{chart}");
        assert!(lines[1].starts_with("main#0  |█"), "{chart}");
        assert!(lines[2].starts_with("cb#1    |"), "{chart}");
        assert!(lines[3].starts_with("other#1 |"), "{chart}");
        // The callback ran around the middle; the other one at the end.
        let cb = lines[2].find('█').unwrap_or(0);
        assert!(cb > 20 && cb < 45, "{chart}");
        assert!(lines[3].trim_end().ends_with("█|"), "{chart}");
    }

    #[test]
    fn queues_list_jobs_and_timers() {
        let q = Queues {
            queues: vec![
                ("microtask", vec!["call `f`".to_string()]),
                ("nextTick", vec![]),
            ],
            timers: vec![(1_000_000, "call `g`".to_string())],
        };
        assert_eq!(
            queues("js", 20, &q),
            "js at 0.00002ms (virtual time)\nmicrotask: 1\n  1. call `f`\nnextTick: empty\ntimers: 1\n  at 1.000ms: call `g`\n"
        );
    }
}
