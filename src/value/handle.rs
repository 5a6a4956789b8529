//! A runtime policy's objects as values: the `Handle` trait, the typed
//! owning pointer a policy keeps (`Hc<T>`), and the thin pointer a
//! `Value::Handle` holds (`HandleRef`).
//!
//! Why not `Rc<dyn Handle>`: a pointer to a trait object is two words, and
//! it alone made `Value` 24 bytes instead of 16 (every other variant is one
//! word). Every value pays for the widest variant — the stack, every list,
//! map and promise result — so a `HandleRef` is one word: the address of an
//! `Rc`'d `HandleCell<T>`, whose first field (`repr(C)`: at offset 0) is the
//! function that rebuilds the wide pointer. One word more per policy object
//! buys eight bytes less per value.
//!
//! The header is one word too: a pointer to the type's static `Meta` (its
//! `TypeId` and its `widen`), so a downcast compares type ids read from
//! memory instead of calling through the trait object twice (`as_any`,
//! then `type_id`) after rebuilding it (a tenth of the asyncio policy's
//! time went to that).
//!
//! Invariants (what the `unsafe` blocks rely on):
//! - a `HandleRef`'s pointer came from `Rc::into_raw` of an
//!   `Rc<HandleCell<T>>` whose `header` was made for that same `T`
//!   (`Hc::new` is the only maker: its meta's `type_id` is `T`'s), and the
//!   `HandleRef` owns one strong count of it;
//! - `Rc<HandleCell<T>>` unsizes to `Rc<HandleCell<dyn Handle>>` at the same
//!   address, so the wide pointer the header rebuilds is one
//!   `Rc::increment_strong_count` / `decrement_strong_count` accept.

use super::{Value, with_article};
use std::any::{Any, TypeId};
use std::ptr::NonNull;
use std::rc::Rc;

/// An object a runtime policy made. The policy downcasts it
/// (`HandleRef::downcast`) to its own type; everyone else sees only what
/// this trait says.
pub trait Handle: Any {
    /// What `type_of` answers (`promise`, `task`, `coroutine`, `function`).
    fn type_name(&self) -> &'static str;
    /// How `print` shows it (the policy knows its own style). Values the
    /// handle holds (a promise's result) are written with `inner`: the
    /// caller's printer, which keeps track of cycles and depth, so a handle
    /// that (through its values) holds itself prints as a cycle.
    fn describe(&self, out: &mut String, inner: &mut dyn FnMut(&mut String, &Value));
    /// The type's name with its article, as messages say it (`a task`).
    fn a_type(&self) -> String {
        with_article(self.type_name())
    }
    /// A primitive the program can call (the VM halts to let the policy do it).
    fn is_callable(&self) -> bool {
        false
    }
    /// What `await` of this handle evaluates to at once, when the runtime
    /// goes on without a turn of its loop there (asyncio: a future already
    /// done with a result): the VM pushes it and runs on without halting.
    /// `None` (the default): the VM halts with `Halt::Await`.
    fn settled(&self) -> Option<Value> {
        None
    }
    fn as_any(&self) -> &dyn Any;
}

/// Rebuilds the wide pointer of a cell from its address.
type Widen = unsafe fn(NonNull<Header>) -> *const HandleCell<dyn Handle>;

/// What a handle's header points to: one static per handle type.
struct Meta {
    widen: Widen,
    type_id: TypeId,
}

/// The first word of every handle's allocation.
struct Header {
    meta: &'static Meta,
}

/// `T`'s static `Meta`.
fn meta_of<T: Handle>() -> &'static Meta {
    const {
        &Meta {
            widen: widen::<T>,
            type_id: TypeId::of::<T>(),
        }
    }
}

/// A handle's allocation (inside an `Rc`): the header, then the object.
#[repr(C)]
pub struct HandleCell<T: ?Sized> {
    header: Header,
    value: T,
}

/// The wide pointer of a `HandleCell<T>` at `cell`.
///
/// # Safety
/// `cell` points to a live `HandleCell<T>`.
unsafe fn widen<T: Handle>(cell: NonNull<Header>) -> *const HandleCell<dyn Handle> {
    cell.cast::<HandleCell<T>>().as_ptr() as *const HandleCell<dyn Handle>
}

/// A policy's own, typed, owning pointer to one of its objects (what it
/// keeps in its queues and tables; `Rc<T>` with room for the header).
pub struct Hc<T: Handle>(Rc<HandleCell<T>>);

impl<T: Handle> Hc<T> {
    pub fn new(value: T) -> Hc<T> {
        Hc(Rc::new(HandleCell {
            header: Header {
                meta: meta_of::<T>(),
            },
            value,
        }))
    }
    /// Whether the two point to the same object.
    pub fn ptr_eq(a: &Hc<T>, b: &Hc<T>) -> bool {
        Rc::ptr_eq(&a.0, &b.0)
    }
    /// The object's address (an identity for tables).
    pub fn as_ptr(this: &Hc<T>) -> *const () {
        Rc::as_ptr(&this.0) as *const ()
    }
    /// How many owners the object has.
    pub fn strong_count(this: &Hc<T>) -> usize {
        Rc::strong_count(&this.0)
    }
}

impl<T: Handle> Clone for Hc<T> {
    fn clone(&self) -> Hc<T> {
        Hc(self.0.clone())
    }
}

impl<T: Handle> std::ops::Deref for Hc<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.value
    }
}

/// The thin owning pointer in a `Value::Handle`: one word.
pub struct HandleRef(NonNull<Header>);

impl HandleRef {
    fn meta(&self) -> &'static Meta {
        // SAFETY: `self.0` points to a live cell (this owns a count of it),
        // whose header is at offset 0.
        unsafe { self.0.as_ref().meta }
    }
    fn wide(&self) -> *const HandleCell<dyn Handle> {
        // SAFETY: `self.0` points to a live cell (this owns a count of it),
        // whose header, at offset 0, was made for the cell's own type.
        unsafe { (self.meta().widen)(self.0) }
    }
    /// The object, as the trait sees it.
    pub fn get(&self) -> &dyn Handle {
        // SAFETY: the cell lives at least as long as `self` holds its count.
        unsafe { &(*self.wide()).value }
    }
    /// The object, if it is a `T` (no count taken: a look, not a copy).
    pub fn downcast_ref<T: Handle>(&self) -> Option<&T> {
        if self.meta().type_id != TypeId::of::<T>() {
            return None;
        }
        let cell = self.0.cast::<HandleCell<T>>().as_ptr() as *const HandleCell<T>;
        // SAFETY: the cell is a live `HandleCell<T>` (its meta is `T`'s),
        // kept alive by the count `self` holds for as long as the borrow.
        Some(unsafe { &(*cell).value })
    }
    /// The policy's typed pointer, if the object is a `T`.
    pub fn downcast<T: Handle>(&self) -> Option<Hc<T>> {
        if self.meta().type_id != TypeId::of::<T>() {
            return None;
        }
        let cell = self.0.cast::<HandleCell<T>>().as_ptr() as *const HandleCell<T>;
        // SAFETY: the cell is a `HandleCell<T>` (its meta is `T`'s) made
        // by `Hc::new` and turned into this pointer by `Rc::into_raw`; the
        // new count is the returned `Hc`'s.
        unsafe {
            Rc::increment_strong_count(cell);
            Some(Hc(Rc::from_raw(cell)))
        }
    }
    /// Whether the two point to the same object.
    pub fn ptr_eq(a: &HandleRef, b: &HandleRef) -> bool {
        a.0 == b.0
    }
    /// The object's address (an identity for tables and cycle checks).
    pub fn as_ptr(&self) -> *const () {
        self.0.as_ptr() as *const ()
    }
}

impl<T: Handle> From<Hc<T>> for HandleRef {
    fn from(hc: Hc<T>) -> HandleRef {
        let cell = Rc::into_raw(hc.0) as *mut Header;
        // SAFETY: `Rc::into_raw` never returns null.
        HandleRef(unsafe { NonNull::new_unchecked(cell) })
    }
}

impl<T: Handle> From<Hc<T>> for Value {
    fn from(hc: Hc<T>) -> Value {
        Value::Handle(hc.into())
    }
}

impl Clone for HandleRef {
    fn clone(&self) -> HandleRef {
        // SAFETY: the wide pointer is that of a live `Rc` allocation (see
        // the module's invariants); the new count is the clone's.
        unsafe { Rc::increment_strong_count(self.wide()) };
        HandleRef(self.0)
    }
}

impl Drop for HandleRef {
    fn drop(&mut self) {
        // SAFETY: this owns one strong count of the allocation, given back
        // here once; the wide pointer drops the cell as its own type.
        unsafe { Rc::decrement_strong_count(self.wide()) };
    }
}

impl std::ops::Deref for HandleRef {
    type Target = dyn Handle;
    fn deref(&self) -> &dyn Handle {
        self.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Counted(Rc<Cell<u32>>, u64);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    impl Handle for Counted {
        fn type_name(&self) -> &'static str {
            "counted"
        }
        fn describe(&self, out: &mut String, _: &mut dyn FnMut(&mut String, &Value)) {
            out.push_str(&format!("<counted {}>", self.1));
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    struct Other;
    impl Handle for Other {
        fn type_name(&self) -> &'static str {
            "other"
        }
        fn describe(&self, out: &mut String, _: &mut dyn FnMut(&mut String, &Value)) {
            out.push_str("<other>");
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    #[test]
    fn a_value_is_two_words() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
        assert_eq!(std::mem::size_of::<HandleRef>(), 8);
    }

    #[test]
    fn clones_and_drops_count_the_object_once_each() {
        let drops = Rc::new(Cell::new(0));
        let typed = Hc::new(Counted(drops.clone(), 7));
        let value: Value = typed.clone().into();
        assert_eq!(Hc::strong_count(&typed), 2);
        let copies: Vec<Value> = (0..5).map(|_| value.clone()).collect();
        assert_eq!(Hc::strong_count(&typed), 7);
        drop(copies);
        assert_eq!(Hc::strong_count(&typed), 2);
        let Value::Handle(h) = &value else {
            panic!("a handle")
        };
        assert_eq!(h.type_name(), "counted");
        let mut text = String::new();
        h.describe(&mut text, &mut |_, _| {});
        assert_eq!(text, "<counted 7>");
        let back = h.downcast::<Counted>().expect("a Counted");
        assert!(Hc::ptr_eq(&back, &typed));
        assert_eq!(back.1, 7);
        assert_eq!(Hc::strong_count(&typed), 3);
        drop((back, value));
        assert_eq!(drops.get(), 0);
        drop(typed);
        assert_eq!(drops.get(), 1, "dropped once, as its own type");
    }

    #[test]
    fn downcasting_to_another_type_gives_nothing_and_keeps_the_count() {
        let h: HandleRef = Hc::new(Other).into();
        assert!(h.downcast::<Counted>().is_none());
        let same = h.clone();
        assert!(HandleRef::ptr_eq(&h, &same));
        let other: HandleRef = Hc::new(Other).into();
        assert!(!HandleRef::ptr_eq(&h, &other));
        assert!(h.downcast::<Other>().is_some());
        assert_eq!(h.as_ptr(), same.as_ptr());
    }

    /// Types alike in everything but name (same layout, same code): the
    /// header's meta tells them apart, and a downcast gives the object back
    /// only as its own type, without touching the count otherwise.
    struct Same<const N: usize>(u64);
    impl<const N: usize> Handle for Same<N> {
        fn type_name(&self) -> &'static str {
            "same"
        }
        fn describe(&self, out: &mut String, _: &mut dyn FnMut(&mut String, &Value)) {
            out.push_str(&format!("<same {N} {}>", self.0));
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    #[test]
    fn the_header_tells_types_of_one_shape_apart() {
        let one: HandleRef = Hc::new(Same::<1>(10)).into();
        let two: HandleRef = Hc::new(Same::<2>(20)).into();
        assert!(std::ptr::eq(one.meta(), meta_of::<Same<1>>()));
        assert_ne!(one.meta().type_id, two.meta().type_id);
        assert!(one.downcast::<Same<2>>().is_none());
        assert!(two.downcast::<Same<1>>().is_none());
        let back = one.downcast::<Same<1>>().expect("a Same<1>");
        assert_eq!(((*back).0, Hc::strong_count(&back)), (10, 2));
        drop(back);
        let mut text = String::new();
        two.clone().describe(&mut text, &mut |_, _| {});
        assert_eq!(text, "<same 2 20>");
        assert_eq!(two.downcast::<Same<2>>().map(|h| (*h).0), Some(20));
        assert!(one.downcast::<Other>().is_none());
        assert_eq!(one.downcast_ref::<Same<1>>().map(|s| s.0), Some(10));
        assert!(one.downcast_ref::<Same<2>>().is_none());
    }
}
