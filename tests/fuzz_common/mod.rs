//! What the two fuzzers (`fuzz_hostile`: token mutation, `fuzz_grammar`:
//! generated programs) share: their random numbers, their settings from the
//! environment, and how a finding is kept (`target/fuzz-findings/`).

#![allow(dead_code)] // each fuzzer uses its own part of this

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A small xorshift generator: the same seed gives the same inputs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// `LOOPLAB_FUZZ_SECONDS` (a campaign's length: its deadline) and
/// `LOOPLAB_FUZZ_SEED` (else `default_seed`).
pub fn settings(default_seed: u64) -> (Option<Instant>, u64) {
    let seconds: Option<u64> = std::env::var("LOOPLAB_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let seed: u64 = std::env::var("LOOPLAB_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_seed);
    (
        seconds.map(|s| Instant::now() + Duration::from_secs(s)),
        seed,
    )
}

/// Where findings are kept (and the input being tried, as `current.lab`).
pub fn findings_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-findings")
}

/// Keeps `input` as `target/fuzz-findings/PREFIX-HASH.lab` and returns the
/// failure message naming it.
pub fn record(prefix: &str, input: &str, why: &str) -> String {
    let dir = findings_dir();
    let _ = std::fs::create_dir_all(&dir);
    let name = format!("{prefix}-{:016x}.lab", fxhash(input));
    let _ = std::fs::write(dir.join(&name), input);
    format!("{why}: target/fuzz-findings/{name}\n{input}")
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
