//! The heap budget (`--max-memory`). A counting global allocator wraps the
//! system's and keeps the bytes in use in one atomic counter; the places
//! where a program's memory grows — building a list, a map, a string, a
//! timer, a promise reaction, a task, a unit — check the count against the
//! budget *before* growing and raise a catchable `MemoryError` instead (the
//! VM's size checks call `check`, the policies at their allocation points,
//! and every unit's slice end). The machine never reaches the allocator's
//! failure, which would abort the process.
//!
//! Why an allocator and not estimates: the cost of a value (a list of
//! lists of strings, closures, promises and their reactions) is what the
//! allocator hands out; counting there is exact and cheap and needs no
//! bookkeeping in the values. The count is per thread (a plain add to a
//! thread-local, no atomic read-modify-write on every allocation): a run
//! lives on one thread, so each run — and each of the programs `looplab
//! test` runs side by side — has the budget to itself.

use std::alloc::{GlobalAlloc, Layout, System};

/// The default budget: 2 GiB.
pub const DEFAULT_BUDGET: u64 = 2 << 30;

thread_local! {
    /// Bytes this thread allocated and has not freed (a block freed on
    /// another thread makes it drift down; it never wraps).
    static USED: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
}

/// Adds `delta` bytes to this thread's count (nothing during thread
/// teardown, when the thread-local is gone).
#[inline(always)]
fn count(delta: isize) {
    let _ = USED.try_with(|used| used.set(used.get().wrapping_add(delta)));
}

thread_local! {
    /// This thread's budget in bytes (per thread like the count: programs
    /// run side by side by `looplab test` each have their own).
    static BUDGET: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

struct Counting;

// SAFETY: every call is forwarded to `System` unchanged; the counter is
// only arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as given.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as given.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as given.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as given.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes of heap this thread has in use now.
pub fn used() -> usize {
    USED.try_with(|used| used.get().max(0) as usize)
        .unwrap_or(0)
}

/// Sets the budget in bytes (0: none).
pub fn set_budget(bytes: u64) {
    let bytes = if bytes == 0 {
        usize::MAX
    } else {
        usize::try_from(bytes).unwrap_or(usize::MAX)
    };
    let _ = BUDGET.try_with(|budget| budget.set(bytes));
}

/// `Err(message)` if growing the heap by `extra` bytes would pass the budget.
pub fn check(extra: usize) -> Result<(), String> {
    let budget = BUDGET.try_with(|budget| budget.get()).unwrap_or(usize::MAX);
    let used = used();
    if used.saturating_add(extra) <= budget {
        return Ok(());
    }
    let mib = |b: usize| b / (1 << 20);
    Err(if extra > 0 {
        format!(
            "out of memory: {} MiB more on top of {} MiB in use would pass the budget of {} MiB (raise it with --max-memory)",
            mib(extra).max(1),
            mib(used),
            mib(budget)
        )
    } else {
        format!(
            "out of memory: {} MiB in use, past the budget of {} MiB (raise it with --max-memory)",
            mib(used),
            mib(budget)
        )
    })
}
