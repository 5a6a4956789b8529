//! The virtual clock a policy keeps. The VM reports how many instructions a
//! slice ran; the policy charges them here at a fixed cost each, adds what
//! `work(d)` burns, and moves the clock forward when its loop sleeps until
//! the next timer. The clock never goes backwards and never overflows
//! (it saturates).

#[derive(Clone, Debug)]
pub struct Clock {
    now_ns: u64,
    instruction_cost_ns: u64,
}

impl Clock {
    pub fn new(instruction_cost_ns: u64) -> Clock {
        Clock {
            now_ns: 0,
            instruction_cost_ns,
        }
    }

    /// Virtual nanoseconds since the program started.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Charges `steps` executed instructions.
    pub fn charge_steps(&mut self, steps: u64) {
        self.charge(steps.saturating_mul(self.instruction_cost_ns));
    }

    /// Charges `ns` of busy time (`work`).
    pub fn charge(&mut self, ns: u64) {
        self.now_ns = self.now_ns.saturating_add(ns);
    }

    /// Moves the clock forward to `t` (never backwards).
    pub fn advance_to(&mut self, t: u64) {
        self.now_ns = self.now_ns.max(t);
    }
}
