//! The heap budget (`--max-memory`). A counting global allocator wraps the
//! system's and keeps the bytes in use in a per-thread counter; the places
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
//! bookkeeping in the values. Small blocks (up to 64 bytes) freed by a
//! thread wait on its per-size free lists for reuse, as CPython's pymalloc
//! keeps its small objects (see `CACHED_PER_CLASS`). The count is per thread (a plain add to a
//! thread-local, no atomic read-modify-write on every allocation): a run
//! lives on one thread, so each run — and each of the programs `looplab
//! test` runs side by side — has the budget to itself.
//!
//! It also keeps the work no instruction counts, for the policies to
//! charge to the step limit at their checks (`runtime::check`): the heap's
//! growth past a run's first `UNCHARGED_GROWTH` bytes (`take_growth`), map
//! writes on such a heap (`take_map_writes`) and what built-ins record
//! (`charge_work`, `take_work`).

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

// Small blocks: the VM makes and frees small blocks all the time (a
// string's text and its `Rc`, a closure, a promise, a frame vector), and the
// system allocator spends ~100 instructions on each malloc/free pair. Blocks
// of up to `SMALL_MAX` bytes (alignment up to 16) are rounded up to a size
// class of 16, 32, 48 or 64 bytes and, when freed, kept on a per-thread
// free list of their class (up to `CACHED_PER_CLASS` blocks) for the next
// allocation of that class — CPython's pymalloc does the same for its small
// objects. Every small block is obtained from the system with its class's
// size, so any block on a class's list fits any request of that class.
// `release_cached` gives a thread's cached blocks back (a thread that runs
// programs calls it when done).
const CLASS_BYTES: usize = 16;
const CLASSES: usize = 4;
const SMALL_MAX: usize = CLASS_BYTES * CLASSES;
const CACHED_PER_CLASS: u32 = 2048;

/// One size class's free list: freed blocks chained through their first
/// word.
struct FreeList {
    head: std::cell::Cell<*mut u8>,
    len: std::cell::Cell<u32>,
}

impl FreeList {
    const fn empty() -> FreeList {
        FreeList {
            head: std::cell::Cell::new(std::ptr::null_mut()),
            len: std::cell::Cell::new(0),
        }
    }
}

thread_local! {
    // No destructor (a `Cell` of a pointer), so no registration that could
    // allocate; a thread's leftover blocks are given back by `release_cached`.
    static FREE: [FreeList; CLASSES] = const { [const { FreeList::empty() }; CLASSES] };
}

/// The size class of a request, if it is small.
#[inline(always)]
fn class_of(size: usize, align: usize) -> Option<usize> {
    (size != 0 && size <= SMALL_MAX && align <= CLASS_BYTES).then(|| (size - 1) / CLASS_BYTES)
}

/// The layout a block of `class` is obtained from the system with.
#[inline(always)]
fn class_layout(class: usize) -> Layout {
    // SAFETY: a non-zero multiple of 16 with alignment 16 is a valid layout.
    unsafe { Layout::from_size_align_unchecked((class + 1) * CLASS_BYTES, CLASS_BYTES) }
}

/// The layout the system sees for a request: its class's, if small.
#[inline(always)]
fn system_layout(layout: Layout) -> Layout {
    match class_of(layout.size(), layout.align()) {
        Some(class) => class_layout(class),
        None => layout,
    }
}

/// A cached block of `class`, if there is one.
#[inline(always)]
fn take_cached(class: usize) -> *mut u8 {
    FREE.try_with(|lists| {
        let list = &lists[class];
        let block = list.head.get();
        if !block.is_null() {
            // SAFETY: `block` is a block of this class on the list; its first
            // word holds the next block's address (written by `keep_cached`).
            list.head.set(unsafe { block.cast::<*mut u8>().read() });
            list.len.set(list.len.get() - 1);
        }
        block
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Keeps a freed block of `class` for reuse; false when the list is full
/// (or the thread is ending), and the caller frees it.
#[inline(always)]
fn keep_cached(block: *mut u8, class: usize) -> bool {
    FREE.try_with(|lists| {
        let list = &lists[class];
        if list.len.get() >= CACHED_PER_CLASS {
            return false;
        }
        // SAFETY: the block is at least 16 bytes, 16-aligned, and no longer
        // in use: its first word may hold the list's link.
        unsafe { block.cast::<*mut u8>().write(list.head.get()) };
        list.head.set(block);
        list.len.set(list.len.get() + 1);
        true
    })
    .unwrap_or(false)
}

/// Gives this thread's cached small blocks back to the system.
pub fn release_cached() {
    for class in 0..CLASSES {
        loop {
            let block = take_cached(class);
            if block.is_null() {
                break;
            }
            // SAFETY: a cached block was obtained with `class_layout(class)`.
            unsafe { std::alloc::System.dealloc(block, class_layout(class)) };
        }
    }
}

// SAFETY: every block comes from the system allocator with
// `system_layout(layout)` and goes back to it with the same layout (or
// waits on a free list of its class, which only hands it out for a request
// of that class, which it fits); the counter is only arithmetic on the
// sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut p = std::ptr::null_mut();
        if let Some(class) = class_of(layout.size(), layout.align()) {
            p = take_cached(class);
        }
        if p.is_null() {
            // SAFETY: a valid, non-zero-sized layout.
            p = unsafe { System.alloc(system_layout(layout)) };
        }
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if let Some(class) = class_of(layout.size(), layout.align()) {
            let p = take_cached(class);
            if !p.is_null() {
                // SAFETY: the block has `class_layout(class).size()` bytes.
                unsafe { p.write_bytes(0, class_layout(class).size()) };
                count(layout.size() as isize);
                return p;
            }
        }
        // SAFETY: a valid, non-zero-sized layout.
        let p = unsafe { System.alloc_zeroed(system_layout(layout)) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        if let Some(class) = class_of(layout.size(), layout.align())
            && keep_cached(ptr, class)
        {
            return;
        }
        // SAFETY: `ptr` was obtained with `system_layout(layout)`.
        unsafe { System.dealloc(ptr, system_layout(layout)) };
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = system_layout(layout);
        // SAFETY: `layout.align()` is a valid alignment and `new_size`,
        // rounded up to it, does not overflow (the caller's contract).
        let new =
            system_layout(unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) });
        if old.size() == new.size() {
            // The same class (or the same large size): the block fits as is.
            count(new_size as isize - layout.size() as isize);
            return ptr;
        }
        // SAFETY: `ptr` was obtained with `old`; `new.size()` is non-zero.
        let p = unsafe { System.realloc(ptr, old, new.size()) };
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

thread_local! {
    /// The heap size up to which growth has been charged as work (see
    /// `take_growth`).
    static CHARGED_UP_TO: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

/// Heap growth is work that no instruction counts (a map rehashing as it
/// grows, pages touched for the first time, cache misses on a heap far
/// larger than the caches): the policies charge it to the step limit. Only
/// growth past the heap a run started with plus this much counts, so
/// programs of ordinary size are charged nothing.
pub const UNCHARGED_GROWTH: usize = 32 << 20;

/// Starts charging heap growth for a run: growth past the heap in use now
/// plus `UNCHARGED_GROWTH` will be charged.
pub fn start_charging() {
    let _ = CHARGED_UP_TO.try_with(|mark| mark.set(used().saturating_add(UNCHARGED_GROWTH)));
    take_work();
    take_map_writes();
}

/// The bytes the heap grew past its highest size charged so far (none
/// before `start_charging`), which become charged: a heap that shrinks
/// and grows again to the same size is charged once.
pub fn take_growth() -> usize {
    let used = used();
    CHARGED_UP_TO
        .try_with(|mark| {
            let up_to = mark.get();
            if used > up_to {
                mark.set(used);
                used - up_to
            } else {
                0
            }
        })
        .unwrap_or(0)
}

thread_local! {
    /// Map writes made while the heap was past its uncharged size (see
    /// `take_map_writes`).
    static MAP_WRITES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The map writes (`m[k] = v`, `m.set(k, v)`: each checks the budget with
/// `check(0)`) made since the last call while the heap was past the size
/// growth is charged from: on a heap that large each write's probes miss
/// the caches, work no instruction counts.
pub fn take_map_writes() -> u64 {
    MAP_WRITES.try_with(|n| n.replace(0)).unwrap_or(0)
}

thread_local! {
    /// Work done inside one instruction that no instruction counts (a
    /// built-in method walking a long list or string), in steps, until a
    /// policy takes it (`take_work`).
    static WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Records `steps` of work done inside one instruction (the VM's
/// built-ins call it; the policies charge it to the step limit between
/// runs, so the virtual clock does not move).
#[inline]
pub fn charge_work(steps: u64) {
    if steps > 0 {
        let _ = WORK.try_with(|w| w.set(w.get().saturating_add(steps)));
    }
}

/// The work recorded by `charge_work` since the last call.
pub fn take_work() -> u64 {
    WORK.try_with(|w| w.replace(0)).unwrap_or(0)
}

/// `Err(message)` if the heap is past the budget already (no counting: for
/// the policies' checks).
pub fn over_budget() -> Result<(), String> {
    check_budget(0)
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

/// `Err(message)` if growing the heap by `extra` bytes would pass the
/// budget. `check(0)` is the VM's check before a map write, counted for
/// `take_map_writes` when the heap is large.
pub fn check(extra: usize) -> Result<(), String> {
    if extra == 0 {
        let past = CHARGED_UP_TO
            .try_with(|mark| used() > mark.get())
            .unwrap_or(false);
        if past {
            let _ = MAP_WRITES.try_with(|n| n.set(n.get() + 1));
        }
    }
    check_budget(extra)
}

fn check_budget(extra: usize) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Small blocks of every class, freed and taken again many times, then
    /// grown and shrunk across the classes by `realloc`: each keeps its
    /// contents, and no two live blocks overlap (their patterns would mix).
    #[test]
    fn small_blocks_are_reused_without_mixing() {
        for round in 0..4u8 {
            let mut blocks: Vec<Vec<u8>> = (1..=200usize)
                .map(|n| vec![round.wrapping_add(n as u8); n % 70 + 1])
                .collect();
            for (n, block) in blocks.iter().enumerate() {
                let n = n + 1;
                assert!(block.iter().all(|&b| b == round.wrapping_add(n as u8)));
            }
            for (n, block) in blocks.iter_mut().enumerate() {
                let n = n + 1;
                let fill = round.wrapping_add(n as u8);
                // Grow across classes (and out of the small range), then shrink.
                block.resize(n % 130 + 1, fill);
                block.shrink_to_fit();
                assert!(block.iter().all(|&b| b == fill));
                block.truncate(n % 9 + 1);
                block.shrink_to_fit();
                assert!(block.iter().all(|&b| b == fill));
            }
            drop(blocks);
            let zeroed: Vec<Box<[u64; 4]>> = (0..100).map(|_| Box::new([0; 4])).collect();
            assert!(zeroed.iter().all(|b| b.iter().all(|&w| w == 0)));
        }
        release_cached();
        assert!(FREE.with(|lists| {
            lists
                .iter()
                .all(|l| l.head.get().is_null() && l.len.get() == 0)
        }));
    }

    #[test]
    fn the_count_follows_requested_bytes_not_classes() {
        let before = used();
        let block = vec![0u8; 17];
        assert_eq!(used(), before + 17);
        drop(block);
        assert_eq!(used(), before);
    }
}
