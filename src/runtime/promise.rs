//! Promises and futures: one data structure for both policies.
//!
//! A promise is pending, fulfilled, rejected or (asyncio only) cancelled,
//! and holds its reactions (JS) / done-callbacks (asyncio) in order. What a
//! reaction does is a `Handler`; *when* it runs is the policy's business:
//! js queues a microtask, asyncio a `call_soon` callback. An asyncio task is
//! a promise with `TaskInfo`.

use crate::value::{Flavor, Value};
use crate::vm::{FiberId, Thrown};
use std::cell::{Cell, RefCell};
use std::fmt::Write;
use std::rc::Rc;

#[derive(Clone)]
pub struct PromiseRef(pub Rc<PromiseObj>);

pub struct PromiseObj {
    pub state: RefCell<State>,
    pub reactions: RefCell<Vec<Reaction>>,
    /// JS: a handler was attached. asyncio: the exception was retrieved.
    pub handled: Cell<bool>,
    pub task: Option<Box<TaskInfo>>,
    /// asyncio: report an exception nobody retrieved when dropped.
    pub loud: Cell<bool>,
}

pub struct TaskInfo {
    pub fiber: FiberId,
    pub name: Rc<str>,
    pub number: u64,
    pub must_cancel: Cell<bool>,
    pub waiting_on: RefCell<Option<PromiseRef>>,
    /// The timer of the `sleep` the task waits in, if it sleeps.
    pub sleep_timer: Cell<Option<u64>>,
}

#[derive(Clone)]
pub enum State {
    Pending,
    Fulfilled(Value),
    Rejected(Thrown),
    Cancelled,
}

#[derive(Clone)]
pub struct Reaction {
    pub on_fulfilled: Handler,
    pub on_rejected: Handler,
    pub derived: Option<PromiseRef>,
}

#[derive(Clone)]
pub enum Handler {
    /// Pass the outcome on to the derived promise unchanged.
    Pass,
    /// Call a function with the value; its result settles the derived promise.
    Call(Value),
    /// `.finally(f)`: call f, then pass the original outcome on.
    Finally(Value),
    /// Resume a fiber suspended at `await` (asyncio: a task's wake-up).
    Resume(FiberId),
    /// asyncio `gather`: child `index` of the gathering state is done.
    GatherChild(Rc<GatherState>, usize),
    /// asyncio: the awaited main task is done: stop the loop.
    StopLoop,
}

pub struct GatherState {
    pub children: Vec<PromiseRef>,
    pub outer: PromiseRef,
    pub finished: Cell<usize>,
    pub return_exceptions: bool,
    /// `_GatheringFuture.cancel()` was called: the outer future fails with
    /// CancelledError once its children are done.
    pub cancel_requested: Cell<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CombinatorKind {
    All,
    AllSettled,
    Any,
}

/// The shared state of a `Promise.all` / `allSettled` / `any` call.
pub struct CombinatorState {
    pub kind: CombinatorKind,
    pub result: PromiseRef,
    pub remaining: Cell<usize>,
    pub values: RefCell<Vec<Value>>,
    pub called: RefCell<Vec<bool>>,
}

impl PromiseRef {
    pub fn new() -> PromiseRef {
        PromiseRef(Rc::new(PromiseObj {
            state: RefCell::new(State::Pending),
            reactions: RefCell::new(Vec::new()),
            handled: Cell::new(false),
            task: None,
            loud: Cell::new(false),
        }))
    }

    pub fn new_task(fiber: FiberId, name: Rc<str>, number: u64) -> PromiseRef {
        PromiseRef(Rc::new(PromiseObj {
            state: RefCell::new(State::Pending),
            reactions: RefCell::new(Vec::new()),
            handled: Cell::new(false),
            loud: Cell::new(false),
            task: Some(Box::new(TaskInfo {
                fiber,
                name,
                number,
                must_cancel: Cell::new(false),
                waiting_on: RefCell::new(None),
                sleep_timer: Cell::new(None),
            })),
        }))
    }

    pub fn with_state(state: State) -> PromiseRef {
        let p = PromiseRef::new();
        *p.0.state.borrow_mut() = state;
        p
    }

    pub fn ptr_eq(&self, other: &PromiseRef) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    pub fn is_task(&self) -> bool {
        self.0.task.is_some()
    }

    pub fn task(&self) -> Option<&TaskInfo> {
        self.0.task.as_deref()
    }

    /// Adds a reaction to a pending promise (most have exactly one).
    pub fn add_reaction(&self, reaction: Reaction) {
        let mut reactions = self.0.reactions.borrow_mut();
        if reactions.capacity() == 0 {
            reactions.reserve_exact(1);
        }
        reactions.push(reaction);
    }

    pub fn is_pending(&self) -> bool {
        matches!(*self.0.state.borrow(), State::Pending)
    }

    pub fn state(&self) -> State {
        self.0.state.borrow().clone()
    }

    /// Settles the promise and returns the reactions to schedule (in order).
    pub fn settle(&self, state: State) -> Vec<Reaction> {
        *self.0.state.borrow_mut() = state;
        std::mem::take(&mut *self.0.reactions.borrow_mut())
    }

    pub fn describe(&self, out: &mut String, flavor: Flavor) {
        let state = self.0.state.borrow();
        match (flavor, &self.0.task) {
            (Flavor::Js, _) => {
                let inner = match &*state {
                    State::Pending => "<pending>".to_string(),
                    State::Fulfilled(v) => v.repr(flavor),
                    State::Rejected(t) => format!("<rejected> {}", t.value.repr(flavor)),
                    State::Cancelled => "<cancelled>".to_string(),
                };
                let _ = write!(out, "Promise {{ {inner} }}");
            }
            (Flavor::Python, Some(task)) => {
                let (status, done, tail) = match &*state {
                    State::Pending => ("pending", "", String::new()),
                    State::Fulfilled(v) => {
                        ("finished", " done", format!(" result={}", v.repr(flavor)))
                    }
                    State::Rejected(t) => (
                        "finished",
                        " done",
                        format!(" exception={}", exception_repr(&t.value)),
                    ),
                    State::Cancelled => ("cancelled", " done", String::new()),
                };
                let _ = write!(
                    out,
                    "<Task {status} name='Task-{}' coro=<{}(){done}>{tail}>",
                    task.number, task.name
                );
            }
            (Flavor::Python, None) => {
                let status = match &*state {
                    State::Pending => "pending".to_string(),
                    State::Fulfilled(v) => format!("finished result={}", v.repr(flavor)),
                    State::Rejected(t) => format!("finished exception={}", t.value.repr(flavor)),
                    State::Cancelled => "cancelled".to_string(),
                };
                let _ = write!(out, "<Future {status}>");
            }
        }
    }
}

impl Default for PromiseRef {
    fn default() -> Self {
        PromiseRef::new()
    }
}

/// How CPython shows an exception object: `Exception('boom')`.
fn exception_repr(value: &Value) -> String {
    match value {
        Value::Error(e) => format!(
            "{}({})",
            e.kind,
            Value::str(&e.message).repr(Flavor::Python)
        ),
        other => format!("Exception({})", other.repr(Flavor::Python)),
    }
}

impl Drop for PromiseObj {
    /// CPython logs a task's or future's exception nobody retrieved when the
    /// object is collected; so do we (asyncio futures are marked `loud`).
    fn drop(&mut self) {
        let State::Rejected(thrown) = &*self.state.borrow() else {
            return;
        };
        if self.handled.get() {
            return;
        }
        let exception = exception_repr(&thrown.value);
        if let Some(task) = &self.task {
            crate::runtime::warn(format!(
                "Task exception was never retrieved\nfuture: <Task finished name='Task-{}' coro=<{}() done> exception={exception}>\n",
                task.number, task.name
            ));
        } else if self.loud.get() {
            crate::runtime::warn(format!(
                "Future exception was never retrieved\nfuture: <Future finished exception={exception}>\n"
            ));
        }
    }
}
