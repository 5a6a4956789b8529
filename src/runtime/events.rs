//! The event log: one place where policies record what the scheduler did,
//! as data (virtual time, unit, kind). Every view (`--trace`, the timeline,
//! Perfetto export, `compare`, `explore`, the REPL's `:step`) reads this log
//! and nothing else. When no view is on the log is disabled and recording
//! costs one branch.

use crate::vm::UnitId;
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Virtual nanoseconds since the program started.
    pub at_ns: u64,
    /// The unit concerned, if any.
    pub unit: Option<UnitId>,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// A unit was created (the script, a task, an async call, a callback).
    Created { name: Rc<str> },
    /// A unit ran a slice of instructions.
    Ran { steps: u64 },
    /// A unit stopped to wait (at an `await`).
    Suspended,
    /// A unit's wait is over: it is ready to run again.
    Resumed,
    /// A unit ended (returned or threw).
    Finished,
    /// A job was taken from a queue (`queue` names it: `nextTick`,
    /// `microtask`, `ready`, …).
    Dequeued { queue: &'static str },
    /// A timer became due.
    TimerDue,
    /// The loop was idle and the clock moved to `to_ns`.
    Idle { to_ns: u64 },
}

#[derive(Default)]
pub struct EventLog {
    enabled: bool,
    events: Vec<Event>,
}

impl EventLog {
    pub fn new(enabled: bool) -> EventLog {
        EventLog {
            enabled,
            events: Vec::new(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Records an event (nothing when the log is off).
    #[inline]
    pub fn record(&mut self, at_ns: u64, unit: Option<UnitId>, kind: impl FnOnce() -> EventKind) {
        if self.enabled {
            self.events.push(Event {
                at_ns,
                unit,
                kind: kind(),
            });
        }
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Forgets the events recorded so far.
    pub fn clear(&mut self) {
        self.events.clear();
    }
}
