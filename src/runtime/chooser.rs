//! Every scheduling choice the real runtime leaves open goes through one
//! `Chooser`: which of several equally ready units goes first, where a
//! switch falls. The default keeps the order looplab documents (creation
//! order: the first candidate), so a run is deterministic; `explore` will
//! vary the choices from a seed to show every outcome a race can have.

/// Where a choice is being made (for the views and for seeded exploration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChoicePoint {
    /// asyncio shutdown: which pending task to cancel next (CPython iterates
    /// a WeakSet, whose order is not defined).
    CancelAtShutdown,
    /// js, at the event loop's start with immediates queued: has real time
    /// crossed into the millisecond a script's `set_timeout(f, 0)` is due
    /// (then it runs before the immediates)? 0: yes (Node's startup work
    /// usually takes that long); 1: no, as looplab's clock alone says.
    StartupCrossesMillisecond,
}

pub trait Chooser {
    /// Picks one of `count` candidates (`count >= 1`), by index.
    fn choose(&mut self, point: ChoicePoint, count: usize) -> usize;
}

/// The documented default: always the first candidate.
#[derive(Default)]
pub struct FirstCandidate;

impl Chooser for FirstCandidate {
    fn choose(&mut self, _point: ChoicePoint, _count: usize) -> usize {
        0
    }
}
