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
//! bookkeeping in the values. Small blocks (up to 256 bytes) are carved
//! from chunks and reused through per-thread free lists, as CPython's
//! pymalloc keeps its small objects (see "Small blocks" below). The count
//! is per thread (a plain add to a thread-local, no atomic
//! read-modify-write on every allocation): a run
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
// string's text and its `Rc`, a closure, a promise, a frame vector, a
// unit's stack), and the system allocator spends ~100 instructions and a
// header of 8–16 bytes on each. Blocks of up to `SMALL_MAX` bytes
// (alignment up to 16) are rounded up to a size class (a multiple of 16)
// and carved, header-free, from 64 KiB chunks the thread obtains from the
// system; a freed block waits on a per-thread free list of its class for
// the next allocation of that class — CPython's pymalloc works the same
// way. Chunks are never given back while the process runs: a small block
// is only ever reused as a small block of its class. So that the heap
// budget still bounds the process's memory, the blocks waiting on free
// lists count against it (`check`) as blocks in use do.
// `release_cached` hands a finishing thread's free blocks and the rest of
// its chunk to a process-wide stash that other threads draw from (`looplab
// test` runs programs on threads one after another).
const CLASS_BYTES: usize = 16;
const CLASSES: usize = 16;
const SMALL_MAX: usize = CLASS_BYTES * CLASSES;
const CHUNK_BYTES: usize = 64 << 10;

/// One size class's free list: freed blocks chained through their first
/// word.
struct FreeList {
    head: std::cell::Cell<*mut u8>,
    len: std::cell::Cell<usize>,
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
    // No destructors (cells of pointers and integers), so no registration
    // that could allocate, and never unavailable during thread teardown.
    static FREE: [FreeList; CLASSES] = const { [const { FreeList::empty() }; CLASSES] };
    /// The part of the thread's current chunk not carved yet: `[next, end)`.
    static CARVE: std::cell::Cell<(*mut u8, *mut u8)> =
        const { std::cell::Cell::new((std::ptr::null_mut(), std::ptr::null_mut())) };
}

/// Bytes of all the chunks the process has carved small blocks from: a
/// bound of the free small blocks any thread keeps (chunks are never given
/// back), so `check` can pass a heap far under its budget without summing
/// the free lists.
static CHUNK_TOTAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Free lists of finished threads, by class, for any thread to adopt.
struct Stash([(usize, usize); CLASSES]);
static STASH: std::sync::Mutex<Stash> = std::sync::Mutex::new(Stash([(0, 0); CLASSES]));
/// Whether the stash may hold blocks (read before locking it).
static STASHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The size class of a request, if it is small.
#[inline(always)]
fn class_of(size: usize, align: usize) -> Option<usize> {
    (size != 0 && size <= SMALL_MAX && align <= CLASS_BYTES).then(|| (size - 1) / CLASS_BYTES)
}

/// The bytes of a block of `class`.
#[inline(always)]
fn class_bytes(class: usize) -> usize {
    (class + 1) * CLASS_BYTES
}

/// A free block of `class`, if this thread has one.
#[inline(always)]
fn take_cached(class: usize) -> *mut u8 {
    FREE.with(|lists| {
        let list = &lists[class];
        let block = list.head.get();
        if !block.is_null() {
            // SAFETY: `block` is a free block of this class on the list; its
            // first word holds the next block's address (`keep_cached`).
            list.head.set(unsafe { block.cast::<*mut u8>().read() });
            list.len.set(list.len.get() - 1);
        }
        block
    })
}

/// Puts a freed block of `class` on this thread's free list.
#[inline(always)]
fn keep_cached(block: *mut u8, class: usize) {
    FREE.with(|lists| {
        let list = &lists[class];
        // SAFETY: the block is at least 16 bytes, 16-aligned, and no longer
        // in use: its first word may hold the list's link.
        unsafe { block.cast::<*mut u8>().write(list.head.get()) };
        list.head.set(block);
        list.len.set(list.len.get() + 1);
    })
}

/// A new block of `class`: from the stash if a finished thread left some,
/// else carved from the thread's chunk (a new chunk when it is used up;
/// null when the system has no memory).
#[cold]
#[inline(never)]
fn carve(class: usize) -> *mut u8 {
    if STASHED.load(std::sync::atomic::Ordering::Relaxed) && adopt_stash(class) {
        return take_cached(class);
    }
    let bytes = class_bytes(class);
    CARVE.with(|carve| {
        let (mut next, mut end) = carve.get();
        if (end as usize) - (next as usize) < bytes {
            // The old chunk's tail (less than one block) is left unused.
            // SAFETY: a valid, non-zero-sized layout.
            let chunk = unsafe { System.alloc(chunk_layout()) };
            if chunk.is_null() {
                return chunk;
            }
            CHUNK_TOTAL.fetch_add(CHUNK_BYTES, std::sync::atomic::Ordering::Relaxed);
            // SAFETY: the chunk has `CHUNK_BYTES` bytes.
            (next, end) = (chunk, unsafe { chunk.add(CHUNK_BYTES) });
        }
        carve.set((next.wrapping_add(bytes), end));
        next
    })
}

fn chunk_layout() -> Layout {
    // SAFETY: 64 KiB with alignment 16 is a valid layout.
    unsafe { Layout::from_size_align_unchecked(CHUNK_BYTES, CLASS_BYTES) }
}

/// Takes up to a chunk's worth of the stash's blocks of `class` onto this
/// thread's (empty) free list. A batch, not the whole chain: free blocks
/// count against the taker's budget, and another thread's leftovers must
/// not use up a small one (`--max-memory 16MB`).
fn adopt_stash(class: usize) -> bool {
    let Ok(mut stash) = STASH.lock() else {
        return false;
    };
    let (head, len) = stash.0[class];
    if head == 0 {
        return false;
    }
    let batch = (CHUNK_BYTES / class_bytes(class)).min(len);
    // SAFETY: the stash's chain for `class` links `len` free blocks through
    // their first words, the last to null; `batch` is at most `len`.
    let rest = unsafe {
        let mut last = head as *mut u8;
        for _ in 1..batch {
            last = last.cast::<*mut u8>().read();
        }
        let rest = last.cast::<*mut u8>().read();
        last.cast::<*mut u8>().write(std::ptr::null_mut());
        rest
    };
    stash.0[class] = (rest as usize, len - batch);
    if stash.0.iter().all(|&(head, _)| head == 0) {
        STASHED.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    drop(stash);
    FREE.with(|lists| {
        let list = &lists[class];
        debug_assert!(list.head.get().is_null());
        list.head.set(head as *mut u8);
        list.len.set(batch);
    });
    true
}

/// Hands this thread's free small blocks, and the rest of its chunk, to
/// the process-wide stash (a thread that runs programs calls it when done,
/// so what it freed serves the threads after it).
pub fn release_cached() {
    // The chunk's rest, carved into blocks of the largest class it fits.
    let (next, end) =
        CARVE.with(|carve| carve.replace((std::ptr::null_mut(), std::ptr::null_mut())));
    let mut at = next;
    while (end as usize) - (at as usize) >= CLASS_BYTES {
        let class = (((end as usize) - (at as usize)).min(SMALL_MAX) / CLASS_BYTES) - 1;
        keep_cached(at, class);
        at = at.wrapping_add(class_bytes(class));
    }
    let Ok(mut stash) = STASH.lock() else {
        return;
    };
    FREE.with(|lists| {
        for (class, list) in lists.iter().enumerate() {
            let (head, len) = (list.head.replace(std::ptr::null_mut()), list.len.replace(0));
            if head.is_null() {
                continue;
            }
            // Append the stash's chain for this class behind this one.
            let mut tail = head;
            // SAFETY: every block on the list links to the next through its
            // first word, and the last one to null.
            unsafe {
                while !tail.cast::<*mut u8>().read().is_null() {
                    tail = tail.cast::<*mut u8>().read();
                }
                tail.cast::<*mut u8>().write(stash.0[class].0 as *mut u8);
            }
            stash.0[class] = (head as usize, stash.0[class].1 + len);
        }
    });
    if stash.0.iter().any(|&(head, _)| head != 0) {
        STASHED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Bytes of free small blocks this thread keeps for reuse.
fn cached_bytes() -> usize {
    FREE.with(|lists| {
        lists
            .iter()
            .enumerate()
            .map(|(class, list)| list.len.get() * class_bytes(class))
            .sum()
    })
}

// SAFETY: a small request (`class_of`) gets a block of its class's size,
// 16-aligned, carved from a chunk or taken from a free list of that class,
// and goes back onto a free list of that class (never to the system); any
// other request goes to the system allocator with its own layout. `realloc`
// moves a block between the two kinds by allocating, copying and freeing.
// The counter is only arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = match class_of(layout.size(), layout.align()) {
            Some(class) => {
                let p = take_cached(class);
                if p.is_null() { carve(class) } else { p }
            }
            // SAFETY: a valid, non-zero-sized layout.
            None => unsafe { System.alloc(layout) },
        };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if let Some(class) = class_of(layout.size(), layout.align()) {
            // SAFETY: as `alloc`.
            let p = unsafe { self.alloc(layout) };
            if !p.is_null() {
                // SAFETY: the block has `class_bytes(class)` bytes.
                unsafe { p.write_bytes(0, class_bytes(class)) };
            }
            return p;
        }
        // SAFETY: a valid, non-zero-sized layout.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        match class_of(layout.size(), layout.align()) {
            Some(class) => keep_cached(ptr, class),
            // SAFETY: `ptr` was obtained from the system with `layout`.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_class = class_of(layout.size(), layout.align());
        let new_class = class_of(new_size, layout.align());
        if old_class.is_none() && new_class.is_none() {
            // SAFETY: `ptr` was obtained from the system with `layout`;
            // `new_size` is non-zero (the caller's contract).
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                count(new_size as isize - layout.size() as isize);
            }
            return p;
        }
        if old_class.is_some() && old_class == new_class {
            // The same class: the block fits as is.
            count(new_size as isize - layout.size() as isize);
            return ptr;
        }
        // Between a small block and another class or a system block.
        // SAFETY: `layout.align()` is valid and `new_size` rounded up to it
        // does not overflow (the caller's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid, non-zero-sized layout.
        let p = unsafe { self.alloc(new_layout) };
        if !p.is_null() {
            // SAFETY: both blocks hold at least the smaller size; they are
            // distinct blocks.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
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
/// `check_map_write`) made since the last call while the heap was past the
/// size growth is charged from: on a heap that large each write's probes
/// miss the caches, work no instruction counts.
pub fn take_map_writes() -> u64 {
    MAP_WRITES.try_with(|n| n.replace(0)).unwrap_or(0)
}

thread_local! {
    /// Work done inside one instruction that no instruction counts (a
    /// built-in method walking a long list or string), in steps, until the
    /// dispatch loop (as the call returns) or a policy (at a check) takes
    /// it (`take_work`).
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

/// Sets the budget in bytes (0: none).
pub fn set_budget(bytes: u64) {
    let bytes = if bytes == 0 {
        usize::MAX
    } else {
        usize::try_from(bytes).unwrap_or(usize::MAX)
    };
    let _ = BUDGET.try_with(|budget| budget.set(bytes));
}

/// The VM's check before a map write: `check(0)`, and the write counted
/// for `take_map_writes` when the heap is past its uncharged size.
pub fn check_map_write() -> Result<(), String> {
    let past = CHARGED_UP_TO
        .try_with(|mark| used() > mark.get())
        .unwrap_or(false);
    if past {
        let _ = MAP_WRITES.try_with(|n| n.set(n.get() + 1));
    }
    check(0)
}

/// `Err(message)` if growing the heap by `extra` bytes would pass the
/// budget (`check(0)`: if it is past the budget already).
pub fn check(extra: usize) -> Result<(), String> {
    let budget = BUDGET.try_with(|budget| budget.get()).unwrap_or(usize::MAX);
    let used = used();
    // Far under the budget even if every chunk's blocks were free here.
    let chunks = CHUNK_TOTAL.load(std::sync::atomic::Ordering::Relaxed);
    if used.saturating_add(chunks).saturating_add(extra) <= budget {
        return Ok(());
    }
    // Free small blocks are memory the process keeps (see "Small blocks").
    let used = used + cached_bytes();
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

    /// A finished thread's free blocks go to the stash and serve other
    /// threads: blocks handed out after that never overlap (each keeps the
    /// pattern written into it), whichever thread adopted them.
    #[test]
    fn blocks_left_by_a_finished_thread_serve_others_without_mixing() {
        for round in 0..3u8 {
            std::thread::spawn(move || {
                let blocks: Vec<Box<[u8; 40]>> = (0..3000).map(|_| Box::new([round; 40])).collect();
                drop(blocks);
                release_cached();
            })
            .join()
            .expect("the first thread runs");
            std::thread::spawn(|| {
                // A fresh thread takes a batch from the stash, not all of it
                // (the 3,000 blocks are 144,000 bytes; the slack is what the
                // thread's own start-up freed).
                let one = Box::new([0u8; 40]);
                assert!(
                    cached_bytes() <= CHUNK_BYTES + 4096,
                    "{} bytes adopted",
                    cached_bytes()
                );
                drop(one);
            })
            .join()
            .expect("the batch thread runs");
            std::thread::spawn(move || {
                let blocks: Vec<Box<[u8; 40]>> = (0..5000u32)
                    .map(|n| Box::new([(n % 251) as u8; 40]))
                    .collect();
                for (n, block) in blocks.iter().enumerate() {
                    assert!(block.iter().all(|&b| b == (n % 251) as u8));
                }
                let mut addresses: Vec<usize> =
                    blocks.iter().map(|b| &**b as *const _ as usize).collect();
                addresses.sort_unstable();
                assert!(addresses.windows(2).all(|w| w[1] - w[0] >= 48));
                drop(blocks);
                release_cached();
            })
            .join()
            .expect("the second thread runs");
        }
    }

    /// Free small blocks stay the process's memory, so they count against
    /// the budget until they are used again.
    #[test]
    fn free_small_blocks_count_against_the_budget() {
        std::thread::spawn(|| {
            let blocks: Vec<Box<[u8; 100]>> = (0..10_000).map(|_| Box::new([1; 100])).collect();
            drop(blocks);
            set_budget((used() + (512 << 10)) as u64);
            assert!(check(0).is_err(), "1 MiB of free blocks is past the budget");
            let total = used() + cached_bytes();
            let again: Vec<Box<[u8; 100]>> = (0..10_000).map(|_| Box::new([2; 100])).collect();
            // In use again, they are counted once: the total grows by the
            // vector of 10,000 pointers only.
            assert!(used() + cached_bytes() <= total + 80_000);
            drop(again);
            set_budget(0);
            release_cached();
        })
        .join()
        .expect("the thread runs");
    }

    /// `check`'s quick pass counts every chunk's bytes as free: a bound of
    /// the free lists, so it never lets through what the exact sum stops.
    #[test]
    fn the_chunks_bound_the_free_blocks() {
        std::thread::spawn(|| {
            let blocks: Vec<Box<[u8; 200]>> = (0..5_000).map(|_| Box::new([1; 200])).collect();
            drop(blocks);
            let chunks = CHUNK_TOTAL.load(std::sync::atomic::Ordering::Relaxed);
            assert!(cached_bytes() >= 5_000 * 208 && cached_bytes() <= chunks);
            set_budget((used() + chunks + 4096) as u64);
            assert!(check(0).is_ok() && check(4096).is_ok());
            set_budget((used() + cached_bytes() - 1) as u64);
            assert!(
                check(0).is_err(),
                "the exact sum still decides near the budget"
            );
            set_budget(0);
            release_cached();
        })
        .join()
        .expect("the thread runs");
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
