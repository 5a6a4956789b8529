//! A unit's operand stack: a `Vec<Value>` kept in 16 bytes instead of 24
//! (its buffer pointer, and its length and capacity as `u32`s), because a
//! million sleeping tasks keep one each in the fiber arena. Every operation
//! that may grow, shrink or move the buffer puts the parts back together
//! as the `Vec` they came from, runs the `Vec`'s own code, and takes the
//! parts apart again (`Stack::with`); reading (`len`, `capacity`, the
//! pointers, the values as a slice) reads the parts. The dispatch loop's
//! lent stack (`dispatch.rs`) sees the same buffer, length and capacity a
//! `Vec` would show it.
//!
//! Invariant: `(ptr, len, cap)` are the parts of a `Vec<Value>` that this
//! `Stack` owns (from `Vec::new()` or a `Vec` it put together and took
//! apart); `len` and `cap` fit in `u32` (checked as they are taken apart: a
//! stack that large would be tens of gigabytes, far past the heap budget).

use crate::value::Value;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

pub struct Stack {
    ptr: NonNull<Value>,
    len: u32,
    cap: u32,
}

impl Default for Stack {
    fn default() -> Stack {
        Stack::from_vec(Vec::new())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the parts are those of a `Vec` this stack owns (the
        // module's invariant); it is put together once, here, and dropped.
        drop(unsafe { self.take_vec() });
    }
}

/// Puts a `Vec` back into its `Stack` when an operation on it ends,
/// even by a panic (so the stack never keeps parts the `Vec` has freed).
struct Guard<'a> {
    stack: &'a mut Stack,
    vec: ManuallyDrop<Vec<Value>>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // SAFETY: `vec` is not used after this (the guard is going away),
        // so the stack becomes its only owner again.
        let vec = unsafe { ManuallyDrop::take(&mut self.vec) };
        self.stack.store(vec);
    }
}

impl Stack {
    fn from_vec(vec: Vec<Value>) -> Stack {
        let mut stack = Stack {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
        };
        stack.store(vec);
        stack
    }

    /// Takes `vec`'s parts (the stack's own were given to it by `take_vec`).
    #[inline(always)]
    fn store(&mut self, vec: Vec<Value>) {
        let mut vec = ManuallyDrop::new(vec);
        // The length is at most the capacity: one check covers both.
        assert!(
            vec.capacity() <= u32::MAX as usize,
            "a stack of fewer than 2^32 values"
        );
        // SAFETY: a `Vec`'s pointer is never null (dangling when empty).
        self.ptr = unsafe { NonNull::new_unchecked(vec.as_mut_ptr()) };
        self.len = vec.len() as u32;
        self.cap = vec.capacity() as u32;
    }

    /// The `Vec` the parts stand for.
    ///
    /// # Safety
    /// The caller gives the `Vec` back (`store`) or drops it, and does not
    /// use the stack's parts in between.
    unsafe fn take_vec(&mut self) -> Vec<Value> {
        // SAFETY: the parts are those of a `Vec<Value>` this stack owns
        // (the module's invariant), and the caller's contract keeps them
        // from being used twice.
        unsafe { Vec::from_raw_parts(self.ptr.as_ptr(), self.len as usize, self.cap as usize) }
    }

    /// Runs `f` on the stack as the `Vec` it is.
    #[inline]
    fn with<R>(&mut self, f: impl FnOnce(&mut Vec<Value>) -> R) -> R {
        // SAFETY: the guard gives the `Vec` back to the stack when `f`
        // ends, and the stack's parts are not read until then (the guard
        // holds the only reference to it).
        let vec = ManuallyDrop::new(unsafe { self.take_vec() });
        let mut guard = Guard { stack: self, vec };
        f(&mut guard.vec)
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len as usize
    }
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    #[inline(always)]
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }
    #[inline(always)]
    pub fn as_ptr(&self) -> *const Value {
        self.ptr.as_ptr()
    }
    #[inline(always)]
    pub fn as_mut_ptr(&mut self) -> *mut Value {
        self.ptr.as_ptr()
    }
    /// Sets the length, as `Vec::set_len`.
    ///
    /// # Safety
    /// As `Vec::set_len`: `len` is at most the capacity, and the values
    /// below it are initialised.
    #[inline(always)]
    pub unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= self.cap as usize);
        self.len = len as u32;
    }

    // The operations of every scheduler step (a resumed value, a call's
    // arguments taken off, a finished unit's stack cleared) work on the
    // parts in line, as `Vec`'s own code does; growing goes through the
    // `Vec`.
    #[inline]
    pub fn push(&mut self, v: Value) {
        if self.len < self.cap {
            // SAFETY: `len < cap`, so the slot is inside the buffer and
            // holds no value; it is counted once written.
            unsafe { self.ptr.as_ptr().add(self.len as usize).write(v) };
            self.len += 1;
        } else {
            self.with(|vec| vec.push(v));
        }
    }
    #[inline]
    pub fn pop(&mut self) -> Option<Value> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: the slot at the old `len - 1` held an initialised value,
        // no longer counted, so it is read out exactly once.
        Some(unsafe { self.ptr.as_ptr().add(self.len as usize).read() })
    }
    pub fn truncate(&mut self, len: usize) {
        let old = self.len as usize;
        if len >= old {
            return;
        }
        // Shortened first, as `Vec::truncate` does: a panicking drop
        // leaks the rest rather than dropping one twice.
        self.len = len as u32;
        // SAFETY: the values in `[len, old)` were initialised and are no
        // longer counted: each is dropped once.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr().add(len),
                old - len,
            ));
        }
    }
    pub fn clear(&mut self) {
        self.truncate(0);
    }
    #[inline]
    pub fn reserve(&mut self, n: usize) {
        if (self.cap - self.len) as usize >= n {
            return;
        }
        self.with(|vec| vec.reserve(n));
    }
    #[inline]
    pub fn reserve_exact(&mut self, n: usize) {
        if (self.cap - self.len) as usize >= n {
            return;
        }
        self.with(|vec| vec.reserve_exact(n));
    }
    #[inline]
    pub fn split_off(&mut self, at: usize) -> Vec<Value> {
        let len = self.len as usize;
        assert!(at <= len, "split_off past the stack's length");
        let n = len - at;
        let mut tail = Vec::with_capacity(n);
        // SAFETY: the `n` values from `at` are initialised; they are moved
        // into `tail`'s fresh buffer (room for `n`, not overlapping) and
        // counted there instead of here.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(at), tail.as_mut_ptr(), n);
            self.len = at as u32;
            tail.set_len(n);
        }
        tail
    }
    pub fn append(&mut self, other: &mut Vec<Value>) {
        let n = other.len();
        self.reserve(n);
        // SAFETY: `reserve` made room for `n` values past `len`; `other`'s
        // `n` initialised values are moved there (distinct buffers) and
        // counted here instead of there.
        unsafe {
            std::ptr::copy_nonoverlapping(
                other.as_ptr(),
                self.ptr.as_ptr().add(self.len as usize),
                n,
            );
            other.set_len(0);
            self.len += n as u32;
        }
    }
    pub fn extend(&mut self, values: impl IntoIterator<Item = Value>) {
        self.with(|vec| vec.extend(values));
    }
    pub fn resize(&mut self, len: usize, value: Value) {
        self.with(|vec| vec.resize(len, value));
    }
}

impl std::ops::Deref for Stack {
    type Target = [Value];
    #[inline(always)]
    fn deref(&self) -> &[Value] {
        // SAFETY: the first `len` values of the buffer are initialised
        // (the module's invariant: they are a `Vec`'s).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len as usize) }
    }
}

impl std::ops::DerefMut for Stack {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [Value] {
        // SAFETY: as `deref`, and `&mut self` makes the slice the only
        // reference to them.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len as usize) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(stack: &Stack) -> Vec<i64> {
        stack
            .iter()
            .map(|v| match v {
                Value::Int(n) => *n,
                _ => -1,
            })
            .collect()
    }

    /// The stack behaves as the `Vec` it stands for, through every
    /// operation the VM uses, with values that own memory (strings) so
    /// that a double drop or a leak would show under Miri or the
    /// allocator's count.
    #[test]
    fn a_stack_behaves_as_a_vector() {
        assert_eq!(std::mem::size_of::<Stack>(), 16);
        let mut stack = Stack::default();
        assert!(stack.is_empty() && stack.capacity() == 0);
        stack.reserve_exact(4);
        assert_eq!(stack.capacity(), 4);
        for n in 0..10 {
            stack.push(Value::Int(n));
        }
        assert_eq!(ints(&stack), (0..10).collect::<Vec<_>>());
        assert!(stack.capacity() >= 10);
        let tail = stack.split_off(7);
        assert_eq!(tail.len(), 3);
        assert_eq!(ints(&stack), (0..7).collect::<Vec<_>>());
        assert!(matches!(stack.pop(), Some(Value::Int(6))));
        stack.truncate(3);
        stack.extend([Value::Int(7), Value::Int(8)]);
        let mut more = vec![Value::Int(9)];
        stack.append(&mut more);
        assert!(more.is_empty());
        assert_eq!(ints(&stack), vec![0, 1, 2, 7, 8, 9]);
        stack.resize(8, Value::Int(0));
        assert_eq!(ints(&stack), vec![0, 1, 2, 7, 8, 9, 0, 0]);
        stack[0] = Value::Int(5);
        assert!(matches!(stack.first(), Some(Value::Int(5))));
        assert!(matches!(stack.last(), Some(Value::Int(0))));
        // Values that own memory: dropped once each by truncate, clear and
        // the stack's own drop.
        for n in 0..20 {
            stack.push(Value::str(&format!("value {n}")));
        }
        stack.truncate(10);
        assert_eq!(stack.len(), 10);
        stack.clear();
        assert!(stack.is_empty());
        for n in 0..7 {
            stack.push(Value::str(&format!("kept {n}")));
        }
        let tail = stack.split_off(5);
        assert!(matches!(&tail[1], Value::Str(s) if &**s == "kept 6"));
        assert!(matches!(stack.pop(), Some(Value::Str(s)) if &*s == "kept 4"));
        stack.push(Value::str("kept 4"));
        // Lent as the dispatch loop lends it: length 0, values read through
        // the buffer, then given back.
        let len = stack.len();
        let buffer = stack.as_ptr();
        // SAFETY: 0 is within the capacity; the values stay initialised in
        // the buffer and are given back below.
        unsafe { stack.set_len(0) };
        // SAFETY: the buffer holds `len` initialised values (lent above).
        assert!(matches!(unsafe { &*buffer.add(len - 1) }, Value::Str(_)));
        // SAFETY: the values below `len` are still initialised.
        unsafe { stack.set_len(len) };
        assert_eq!(stack.len(), 5);
    }
}
