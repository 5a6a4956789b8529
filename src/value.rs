//! Runtime values, and how `print` shows them.
//!
//! Values are cheap to clone (16 bytes; heap objects behind `Rc`). A value
//! names neither the VM nor the runtime: what a runtime policy adds
//! (promises, tasks, coroutines, its primitives) is a `Handle`, an object the
//! policy defines and only the policy looks inside.
//!
//! Display has two styles, and the policy's dialect picks one:
//! `Flavor::Js` shows values as Node's `console.log` does (`{ id: 42 }`,
//! `[ 1, 2 ]`, `true`, nil as `undefined`), `Flavor::Python` as Python's
//! `print` does (`{'id': 42}`, `[1, 2]`, `True`, nil as `None`). Cycles print
//! as `[Circular]` / `[...]`.

use crate::bytecode::Function;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write;
use std::rc::Rc;

mod handle;
pub use handle::{Handle, HandleRef, Hc};

#[derive(Clone, Default)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<String>),
    List(Rc<ListCell>),
    Map(Rc<RefCell<Map>>),
    Closure(Rc<Closure>),
    /// A function the VM computes itself, or a method bound to its receiver.
    Native(Rc<Native>),
    /// An object of the runtime policy's: a promise, a task, a coroutine,
    /// or one of its primitives (`sleep`, a promise's resolve function…).
    Handle(HandleRef),
    /// An error raised by the runtime or made by `error(...)`.
    Error(Rc<ErrorValue>),
    /// A captured variable's shared box (only ever in local slots).
    Cell(Rc<RefCell<Value>>),
    /// A global that has not been defined yet (never visible to programs).
    Uninit,
}

/// A list's storage: the `Vec` behind a `RefCell` (it derefs to it, so
/// `xs.borrow()` works), in a type of its own so that dropping it is
/// iterative (see `drop_children`).
#[derive(Default)]
pub struct ListCell(pub RefCell<Vec<Value>>);

impl std::ops::Deref for ListCell {
    type Target = RefCell<Vec<Value>>;
    fn deref(&self) -> &RefCell<Vec<Value>> {
        &self.0
    }
}

impl Drop for ListCell {
    fn drop(&mut self) {
        drop_children(std::mem::take(self.0.get_mut()));
    }
}

thread_local! {
    /// Values whose drop was deferred by a container being dropped, and
    /// whether a drop loop is draining them (see `drop_children`).
    static DROPPING: RefCell<(bool, Vec<Value>)> = const { RefCell::new((false, Vec::new())) };
}

/// Drops values later, from the loop that is dropping a container now (or
/// now, if none is): for a runtime object's `Drop` whose parts chain on
/// (a promise's reactions hold the promises derived from it), so a chain
/// of millions drops without recursing in Rust.
pub fn drop_later(values: impl IntoIterator<Item = Value>) {
    let values: Vec<Value> = values.into_iter().filter(holds_values).collect();
    if !values.is_empty() {
        drop_children(values);
    }
}

/// True for a value whose drop may drop further values (and so recurse).
fn holds_values(v: &Value) -> bool {
    matches!(
        v,
        Value::List(_)
            | Value::Map(_)
            | Value::Closure(_)
            | Value::Native(_)
            | Value::Handle(_)
            | Value::Error(_)
            | Value::Cell(_)
    )
}

/// Drops a container's children without recursing in Rust: a value nested
/// millions deep (a list in a list in a list…, a chain of closures) is
/// dropped by a loop over a work list, not by one Rust frame per level.
/// The outermost container's drop runs the loop; a container dropped by
/// the loop only moves its children onto the work list.
fn drop_children(mut children: Vec<Value>) {
    // Sorted out before the work list is borrowed: what is dropped on the
    // way may run a container's drop, which comes back here.
    children.retain(holds_values);
    if children.is_empty() {
        return;
    }
    let run_loop = DROPPING.try_with(|d| match d.try_borrow_mut() {
        Ok(mut d) => {
            d.1.append(&mut children);
            Some(!std::mem::replace(&mut d.0, true))
        }
        Err(_) => None,
    });
    match run_loop {
        Ok(Some(true)) => {}
        Ok(Some(false)) => return,
        // Thread-local storage is being torn down (or, never expected,
        // busy): drop in place.
        _ => {
            drop(children);
            return;
        }
    }
    loop {
        let next = DROPPING.with(|d| {
            let mut d = d.borrow_mut();
            let next = d.1.pop();
            if next.is_none() {
                d.0 = false;
                d.1 = Vec::new();
            }
            next
        });
        match next {
            Some(value) => drop(value),
            None => break,
        }
    }
}

pub struct Closure {
    pub function: Rc<Function>,
    pub upvalues: Box<[Rc<RefCell<Value>>]>,
    /// `function`'s first instruction, and its arity when a call enters
    /// it in the dispatch loop (`u32::MAX` for an async function): a call
    /// reaches both in the closure, without reading the function first.
    /// (`code` points into `function`, which the closure holds and which
    /// is never changed once shared.)
    code: *const crate::bytecode::Op,
    loop_arity: u32,
}

impl Closure {
    pub fn new(function: Rc<Function>, upvalues: Box<[Rc<RefCell<Value>>]>) -> Closure {
        let code = function.code.as_ptr();
        let loop_arity = if function.is_async {
            u32::MAX
        } else {
            function.arity
        };
        Closure {
            function,
            upvalues,
            code,
            loop_arity,
        }
    }

    /// The function's first instruction (valid while the closure is).
    #[inline(always)]
    pub fn code(&self) -> *const crate::bytecode::Op {
        self.code
    }

    /// The number of arguments a call that enters the function in the
    /// dispatch loop passes (`u32::MAX` for an async function, which a
    /// call does not enter).
    #[inline(always)]
    pub fn loop_arity(&self) -> u32 {
        self.loop_arity
    }
}

impl Drop for Closure {
    fn drop(&mut self) {
        // A captured variable only this closure holds goes with it.
        let upvalues = std::mem::take(&mut self.upvalues);
        if upvalues.is_empty() {
            return;
        }
        drop_children(
            upvalues
                .into_vec()
                .into_iter()
                .filter_map(|cell| Rc::try_unwrap(cell).ok())
                .map(RefCell::into_inner)
                .collect(),
        );
    }
}

pub struct ErrorValue {
    pub kind: Rc<str>,
    pub message: Rc<str>,
    /// `AggregateError.errors`: the rejection reasons, in order.
    pub errors: Value,
    /// asyncio's CancelledError (`catch` does not catch it; `finally` runs).
    pub cancellation: bool,
}

impl Drop for ErrorValue {
    fn drop(&mut self) {
        if holds_values(&self.errors) {
            drop_children(vec![std::mem::take(&mut self.errors)]);
        }
    }
}

/// A function the VM computes itself from its arguments.
pub enum Native {
    /// A built-in function (`len`, `str`, `print`, …): its number in the
    /// VM's table, and its name.
    Builtin { id: u8, name: &'static str },
    /// A method bound to its receiver: `let push = xs.push;`
    Method { receiver: Value, name: Rc<str> },
}

impl Native {
    pub fn name(&self) -> &str {
        match self {
            Native::Builtin { name, .. } => name,
            Native::Method { name, .. } => name,
        }
    }
}

/// A map's key. A short one (up to `Key::SHORT` bytes, most keys) lives
/// in the map's entry itself, so a lookup compares it without following a
/// pointer; a longer one is a shared `str`. It hashes and compares as its
/// `str`, so a map is searched by `&str`.
#[derive(Clone)]
pub struct Key(KeyText);

#[derive(Clone)]
enum KeyText {
    Short { len: u8, bytes: [u8; Key::SHORT] },
    Long(Rc<str>),
}

impl Key {
    /// The longest key kept in the entry.
    const SHORT: usize = 22;

    pub fn new(text: &str) -> Key {
        Key(match text.len() {
            len @ 0..=Key::SHORT => {
                let mut bytes = [0; Key::SHORT];
                bytes[..len].copy_from_slice(text.as_bytes());
                KeyText::Short {
                    len: len as u8,
                    bytes,
                }
            }
            _ => KeyText::Long(Rc::from(text)),
        })
    }

    /// The key as a string value.
    pub fn to_value(&self) -> Value {
        Value::str(self)
    }
}

impl std::ops::Deref for Key {
    type Target = str;
    fn deref(&self) -> &str {
        match &self.0 {
            // SAFETY: `bytes[..len]` is a copy of a `str` (`Key::new`).
            KeyText::Short { len, bytes } => unsafe {
                std::str::from_utf8_unchecked(&bytes[..*len as usize])
            },
            KeyText::Long(text) => text,
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        **self == **other
    }
}

impl Eq for Key {}

impl std::borrow::Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self
    }
}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

/// An insertion-ordered string-keyed map: `indexmap`'s entries in
/// insertion order with a hash table of their positions, as CPython's
/// compact dict keeps them (each entry keeps its hash, so growing the table
/// never reads a key again).
#[derive(Default, Clone)]
pub struct Map {
    entries: indexmap::IndexMap<Key, Value, FastHash>,
}

impl Map {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }
    /// Inserts or replaces (a replaced entry keeps its place and its key).
    pub fn insert(&mut self, key: Rc<str>, value: Value) {
        self.set(&key, value)
    }
    /// Inserts or replaces by `&str`, hashing once and making a key only
    /// when it is new.
    pub fn set(&mut self, key: &str, value: Value) {
        use indexmap::map::RawEntryApiV1;
        use indexmap::map::raw_entry_v1::RawEntryMut;
        match self.entries.raw_entry_mut_v1().from_key(key) {
            RawEntryMut::Occupied(mut entry) => *entry.get_mut() = value,
            RawEntryMut::Vacant(entry) => {
                entry.insert(Key::new(key), value);
            }
        }
    }
    /// Removes, keeping the order of the rest (like `delete` in JS and
    /// `del` in Python: the entries after it move up one place).
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.entries.shift_remove(key)
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.entries.iter()
    }
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &Key> {
        self.entries.keys()
    }
    pub fn values(&self) -> impl ExactSizeIterator<Item = &Value> {
        self.entries.values()
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // Only the values that hold others go through the work list.
        let entries = std::mem::take(&mut self.entries);
        let containers: Vec<Value> = entries.into_values().filter(holds_values).collect();
        drop_children(containers);
    }
}

/// FxHash-style hasher: maps are keyed by short strings or the policies'
/// own integer ids, SipHash is overkill (and its per-process random keys
/// would make any iteration order vary between runs).
#[derive(Default, Clone, Copy)]
pub struct FastHash;
impl std::hash::BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}
pub struct FastHasher(u64);
impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        // murmur3's finalizer: spreads entropy to the low bits hashbrown indexes by.
        let x = (self.0 ^ (self.0 >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
    /// An integer key (a timer's id, a duration) in one step: the same as
    /// `write` of its eight little-endian bytes.
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavor {
    Js,
    Python,
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Rc::new(s.to_string()))
    }
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(ListCell(RefCell::new(items))))
    }
    pub fn map(map: Map) -> Value {
        Value::Map(Rc::new(RefCell::new(map)))
    }

    /// Truthiness of everything but containers (whose truth is the
    /// dialect's question: see `vm::dialect`). Containers are true here.
    #[inline]
    pub fn truthy_scalar(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Nil | Value::Uninit => false,
            Value::Int(n) => *n != 0,
            Value::Float(x) => *x != 0.0 && !x.is_nan(),
            Value::Str(s) => !s.is_empty(),
            _ => true,
        }
    }

    /// The language-level type name, as `type_of` returns it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil | Value::Uninit => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Closure(_) | Value::Native(_) => "function",
            Value::Handle(h) => h.type_name(),
            Value::Error(_) => "error",
            Value::Cell(_) => "cell",
        }
    }

    pub fn is_callable(&self) -> bool {
        match self {
            Value::Closure(_) | Value::Native(_) => true,
            Value::Handle(h) => h.is_callable(),
            _ => false,
        }
    }

    /// Structural equality for scalars and strings, identity for objects.
    pub fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => {
                (*a as f64) == *b
            }
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => Rc::ptr_eq(a, b),
            (Value::Map(a), Value::Map(b)) => Rc::ptr_eq(a, b),
            (Value::Closure(a), Value::Closure(b)) => Rc::ptr_eq(a, b),
            (Value::Native(a), Value::Native(b)) => {
                Rc::ptr_eq(a, b)
                    || match (&**a, &**b) {
                        // `xs.push == xs.push`: each read binds anew, but the
                        // same method of the same receiver is the same
                        // function (node: the prototype's; Python: bound
                        // methods compare their `__self__` and function).
                        (
                            Native::Method { receiver, name },
                            Native::Method {
                                receiver: other,
                                name: other_name,
                            },
                        ) => name == other_name && receiver.equals(other),
                        _ => false,
                    }
            }
            (Value::Handle(a), Value::Handle(b)) => HandleRef::ptr_eq(a, b),
            (Value::Error(a), Value::Error(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The type's name with its article, as messages say it: `an int`,
    /// `a list`.
    pub fn a_type(&self) -> String {
        with_article(self.type_name())
    }

    /// An error value of `kind` (`TypeError`, …) with a message.
    pub fn error(kind: &str, message: &str) -> Value {
        Value::Error(Rc::new(ErrorValue {
            kind: Rc::from(kind),
            message: Rc::from(message),
            errors: Value::Nil,
            cancellation: false,
        }))
    }

    /// An error a bare `catch` does not catch (asyncio's CancelledError,
    /// GeneratorExit: Python's `BaseException`s that are not `Exception`s).
    pub fn uncatchable_error(kind: &str) -> Value {
        Value::Error(Rc::new(ErrorValue {
            kind: Rc::from(kind),
            message: Rc::from(""),
            errors: Value::Nil,
            cancellation: true,
        }))
    }

    /// True for an error a bare `catch` lets through.
    pub fn is_uncatchable(&self) -> bool {
        matches!(self, Value::Error(e) if e.cancellation)
    }

    /// A deep copy, as a process boundary needs it (fork, a pipe): lists,
    /// maps, captured variables and errors are copied, keeping their sharing
    /// and cycles; functions' code is shared (it never changes). A runtime
    /// handle (a promise, a task, a lock) cannot be copied: the error names it.
    pub fn deep_copy(&self) -> Result<Value, String> {
        Copier::default().copy(self)
    }

    /// How `print` shows a value at top level (strings bare).
    pub fn display(&self, flavor: Flavor) -> String {
        match self {
            Value::Str(s) => s.as_str().to_owned(),
            _ => {
                let mut out = String::new();
                Printer::new(flavor, false).write(&mut out, self, 0);
                out
            }
        }
    }

    /// `display`, refused (with the size it would have) when the text
    /// would pass `MAX_TEXT_BYTES`: a list of big strings shown whole.
    pub fn display_checked(&self, flavor: Flavor) -> Result<String, usize> {
        match self {
            Value::Str(s) => return Ok(s.as_str().to_owned()),
            Value::Int(n) => return Ok(int_text(*n)),
            _ => {}
        }
        let mut out = String::new();
        let mut printer = Printer::new(flavor, false);
        printer.write(&mut out, self, 0);
        match printer.text_bytes > MAX_TEXT_BYTES {
            true => Err(printer.text_bytes),
            false => Ok(out),
        }
    }

    /// How a value shows inside a container (strings quoted).
    pub fn repr(&self, flavor: Flavor) -> String {
        let mut out = String::new();
        Printer::new(flavor, true).write(&mut out, self, 0);
        out
    }
}

/// An integer in decimal, written without the formatting machinery (it
/// is the hot path of `str(i)` and of printing numbers).
pub fn int_text(n: i64) -> String {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    // 19 digits and a sign at most (`i64::MIN`), written from the end,
    // two digits at a time.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    while rest >= 100 {
        let pair = (rest % 100) as usize * 2;
        rest /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if rest >= 10 {
        let pair = rest as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + rest as u8;
    }
    if n < 0 {
        at -= 1;
        digits[at] = b'-';
    }
    // The small-block allocator gives a short text a 16-byte block
    // anyway: the room lets `"k" + str(i)` prepend in place.
    let mut out = String::with_capacity((digits.len() - at).max(16));
    // SAFETY: `digits[at..]` holds ASCII digits and perhaps a `-` (tested
    // at the extremes by `value::tests::integers_as_text`).
    out.push_str(unsafe { std::str::from_utf8_unchecked(&digits[at..]) });
    out
}

/// `a list`, `an int`, `an error`: a noun with its indefinite article.
pub fn with_article(noun: &str) -> String {
    let vowel = noun
        .chars()
        .next()
        .is_some_and(|c| matches!(c.to_ascii_lowercase(), 'a' | 'e' | 'i' | 'o' | 'u'));
    if vowel {
        format!("an {noun}")
    } else {
        format!("a {noun}")
    }
}

/// `Value::deep_copy`'s state: every container already copied, by address,
/// so shared parts stay shared and cycles stay cycles. Iterative: a value
/// nested millions deep does not recurse in Rust.
#[derive(Default)]
struct Copier {
    copies: HashMap<*const (), Value>,
}

impl Copier {
    fn copy(&mut self, root: &Value) -> Result<Value, String> {
        // Pass 1: make an empty shell for every container reachable.
        let mut work = vec![root.clone()];
        let mut order = Vec::new();
        while let Some(v) = work.pop() {
            let Some(key) = container_key(&v) else {
                if let Value::Handle(h) = &v {
                    return Err(format!(
                        "{} cannot be copied to another process",
                        h.a_type()
                    ));
                }
                continue;
            };
            if self.copies.contains_key(&key) {
                continue;
            }
            let shell = match &v {
                Value::List(_) => Value::list(Vec::new()),
                Value::Map(_) => Value::map(Map::default()),
                Value::Cell(_) => Value::Cell(Rc::new(RefCell::new(Value::Nil))),
                Value::Closure(c) => {
                    work.extend(c.upvalues.iter().map(|u| Value::Cell(u.clone())));
                    v.clone()
                }
                Value::Native(n) => match &**n {
                    Native::Method { receiver, .. } => {
                        work.push(receiver.clone());
                        v.clone()
                    }
                    Native::Builtin { .. } => v.clone(),
                },
                Value::Error(e) => {
                    work.push(e.errors.clone());
                    v.clone()
                }
                _ => v.clone(),
            };
            match &v {
                Value::List(xs) => work.extend(xs.borrow().iter().cloned()),
                Value::Map(m) => work.extend(m.borrow().values().cloned()),
                Value::Cell(c) => work.push(c.borrow().clone()),
                _ => {}
            }
            self.copies.insert(key, shell);
            order.push(v);
        }
        // Pass 2: rebuild what holds references but is not a shell —
        // closures first (they point only at cells), then bound methods and
        // errors — and then fill the shells, pointing at the copies.
        for rank in 0..3 {
            for original in &order {
                let key = container_key(original).unwrap_or(std::ptr::null());
                match (rank, original) {
                    (0, Value::Closure(c)) => {
                        let upvalues = c
                            .upvalues
                            .iter()
                            .map(|u| match self.mapped(&Value::Cell(u.clone())) {
                                Value::Cell(copy) => copy,
                                _ => u.clone(),
                            })
                            .collect();
                        let copy =
                            Value::Closure(Rc::new(Closure::new(c.function.clone(), upvalues)));
                        self.copies.insert(key, copy);
                    }
                    (1, Value::Native(n)) => {
                        if let Native::Method { receiver, name } = &**n {
                            let copy = Value::Native(Rc::new(Native::Method {
                                receiver: self.mapped(receiver),
                                name: name.clone(),
                            }));
                            self.copies.insert(key, copy);
                        }
                    }
                    (1, Value::Error(e)) => {
                        let copy = Value::Error(Rc::new(ErrorValue {
                            kind: e.kind.clone(),
                            message: e.message.clone(),
                            errors: self.mapped(&e.errors),
                            cancellation: e.cancellation,
                        }));
                        self.copies.insert(key, copy);
                    }
                    (2, Value::List(xs)) => {
                        let items = xs.borrow().iter().map(|x| self.mapped(x)).collect();
                        if let Some(Value::List(shell)) = self.copies.get(&key) {
                            *shell.borrow_mut() = items;
                        }
                    }
                    (2, Value::Map(m)) => {
                        let mut copy = Map::default();
                        for (k, x) in m.borrow().iter() {
                            copy.set(k, self.mapped(x));
                        }
                        if let Some(Value::Map(shell)) = self.copies.get(&key) {
                            *shell.borrow_mut() = copy;
                        }
                    }
                    (2, Value::Cell(c)) => {
                        let inner = self.mapped(&c.borrow());
                        if let Some(Value::Cell(shell)) = self.copies.get(&key) {
                            *shell.borrow_mut() = inner;
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(self.mapped(root))
    }

    /// The copy of a value: scalars and strings as they are, containers
    /// from the table.
    fn mapped(&self, v: &Value) -> Value {
        match container_key(v).and_then(|k| self.copies.get(&k)) {
            Some(copy) => copy.clone(),
            None => v.clone(),
        }
    }
}

/// The address that identifies a copyable object, or `None` for scalars,
/// strings (immutable, shared as they are) and handles.
fn container_key(v: &Value) -> Option<*const ()> {
    Some(match v {
        Value::List(rc) => Rc::as_ptr(rc) as *const (),
        Value::Map(rc) => Rc::as_ptr(rc) as *const (),
        Value::Cell(rc) => Rc::as_ptr(rc) as *const (),
        Value::Closure(rc) => Rc::as_ptr(rc) as *const (),
        Value::Native(rc) => Rc::as_ptr(rc) as *const (),
        Value::Error(rc) => Rc::as_ptr(rc) as *const (),
        _ => return None,
    })
}

struct Printer {
    flavor: Flavor,
    /// Containers being printed, outermost first (for cycle detection).
    seen: Vec<*const ()>,
    /// Runtime handles being printed (a subset of `seen` under js).
    handles: Vec<*const ()>,
    /// Bytes of strings written so far (bounded by `MAX_TEXT_BYTES`).
    text_bytes: usize,
    /// Python: the length of `seen` put aside while a handle prints its
    /// values (so nesting through handles stays bounded too).
    stashed: usize,
    /// Containers found to be the target of a cycle, with their `*N` label.
    circular: Vec<(*const (), usize)>,
    /// Printing inside a container (strings get quoted, errors get a repr).
    inside: bool,
    /// Entries still allowed: shared sub-lists can make a small value print
    /// as an enormous text; past the budget, containers print as `...`.
    budget: usize,
}

/// The longest text a program may build (bytes): strings, and what
/// `print`/`str` make of a value. Past it, printing elides strings.
pub const MAX_TEXT_BYTES: usize = 1 << 28;

/// At most this many container entries are printed for one value.
const PRINT_BUDGET: usize = 1_000_000;

/// Node's `util.inspect` breakLength.
const JS_BREAK_LENGTH: usize = 80;

/// Node's `util.inspect` default depth: deeper containers print as `[Array]`.
const JS_MAX_DEPTH: usize = 2;
/// Python raises RecursionError on very deep containers; we elide instead.
const PYTHON_MAX_DEPTH: usize = 500;

impl Printer {
    fn new(flavor: Flavor, inside: bool) -> Printer {
        Printer {
            flavor,
            seen: Vec::new(),
            handles: Vec::new(),
            stashed: 0,
            text_bytes: 0,
            circular: Vec::new(),
            inside,
            budget: PRINT_BUDGET,
        }
    }

    fn write(&mut self, out: &mut String, value: &Value, indent: usize) {
        let js = self.flavor == Flavor::Js;
        match value {
            Value::Nil | Value::Uninit => out.push_str(if js { "undefined" } else { "None" }),
            Value::Bool(b) => out.push_str(match (js, b) {
                (true, true) => "true",
                (true, false) => "false",
                (false, true) => "True",
                (false, false) => "False",
            }),
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Float(x) => out.push_str(&format_float(*x, self.flavor)),
            Value::Str(s) if self.text_bytes + s.len() > MAX_TEXT_BYTES => {
                // Too much text: counted (for `display_checked`), not written.
                self.text_bytes += s.len();
                out.push_str("...");
            }
            Value::Str(s) if self.inside => {
                self.text_bytes += s.len();
                quote(out, s, self.flavor)
            }
            Value::Str(s) => {
                self.text_bytes += s.len();
                out.push_str(s)
            }
            Value::List(items) => {
                let items = items.borrow();
                self.container(out, value, indent, |p, indent| {
                    items.iter().map(|v| p.part(v, indent)).collect()
                });
            }
            Value::Map(map) => {
                let map = map.borrow();
                self.container(out, value, indent, |p, indent| {
                    map.iter()
                        .map(|(k, v)| {
                            let mut entry = String::new();
                            if p.flavor == Flavor::Js && is_identifier(k) {
                                entry.push_str(k);
                            } else {
                                quote(&mut entry, k, p.flavor);
                            }
                            entry.push_str(": ");
                            entry.push_str(&p.part(v, indent));
                            entry
                        })
                        .collect()
                });
            }
            Value::Closure(c) => {
                let name = c.function.name.as_ref();
                match (js, c.function.is_async) {
                    (true, true) => {
                        let _ = write!(out, "[AsyncFunction: {name}]");
                    }
                    (true, false) if name == "<anonymous>" => {
                        out.push_str("[Function (anonymous)]")
                    }
                    (true, false) => {
                        let _ = write!(out, "[Function: {name}]");
                    }
                    (false, _) => {
                        let _ = write!(out, "<function {name}>");
                    }
                }
            }
            Value::Native(n) => {
                let name = n.name();
                if js {
                    let _ = write!(out, "[Function: {name}]");
                } else {
                    let _ = write!(out, "<built-in function {name}>");
                }
            }
            Value::Handle(h) => self.handle(out, h, indent),
            Value::Error(e) => match (js, self.inside) {
                (true, _) => {
                    let _ = write!(out, "{}: {}", e.kind, e.message);
                }
                (false, true) => {
                    let _ = write!(out, "{}(", e.kind);
                    quote(out, &e.message, self.flavor);
                    out.push(')');
                }
                (false, false) => out.push_str(&e.message),
            },
            Value::Cell(cell) => {
                let inner = cell.borrow().clone();
                self.write(out, &inner, indent)
            }
        }
    }

    /// Prints a list or map: cycles, depth limits, then its entries.
    fn container(
        &mut self,
        out: &mut String,
        value: &Value,
        indent: usize,
        entries: impl FnOnce(&mut Printer, usize) -> Vec<String>,
    ) {
        let (ptr, is_list) = match value {
            Value::List(rc) => (Rc::as_ptr(rc) as *const (), true),
            Value::Map(rc) => (Rc::as_ptr(rc) as *const (), false),
            _ => return,
        };
        let js = self.flavor == Flavor::Js;
        if self.seen.contains(&ptr) {
            if js {
                let _ = write!(out, "[Circular *{}]", self.label(ptr));
            } else {
                out.push_str(if is_list { "[...]" } else { "{...}" });
            }
            return;
        }
        let depth = self.seen.len();
        let count = match value {
            Value::List(rc) => rc.borrow().len(),
            Value::Map(rc) => rc.borrow().len(),
            _ => 0,
        };
        if count > self.budget {
            out.push_str("...");
            return;
        }
        self.budget -= count;
        if js && depth > JS_MAX_DEPTH {
            out.push_str(if is_list { "[Array]" } else { "[Object]" });
            return;
        }
        if depth + self.stashed > PYTHON_MAX_DEPTH {
            out.push_str(if is_list { "[...]" } else { "{...}" });
            return;
        }
        self.seen.push(ptr);
        let inside = std::mem::replace(&mut self.inside, true);
        let parts = entries(self, indent + 2);
        self.inside = inside;
        self.seen.pop();
        if let Some((_, n)) = self.circular.iter().find(|(p, _)| *p == ptr) {
            let _ = write!(out, "<ref *{n}> ");
        }
        let (open, close) = if is_list { ("[", "]") } else { ("{", "}") };
        let all_numbers = match value {
            Value::List(items) => items
                .borrow()
                .iter()
                .all(|v| matches!(v, Value::Int(_) | Value::Float(_))),
            _ => false,
        };
        self.join(
            out,
            (open, close),
            parts,
            indent,
            is_list.then_some(all_numbers),
        );
    }

    /// Prints a runtime handle; the values it holds go through this printer,
    /// so a cycle through a promise or a task prints as a cycle: Node's
    /// `<ref *1> … [Circular *1]`; CPython's `reprlib.recursive_repr` `...`
    /// (its futures show their result with a fresh `reprlib`, so only
    /// handles count there, not the containers around them).
    fn handle(&mut self, out: &mut String, h: &HandleRef, indent: usize) {
        let ptr = h.as_ptr();
        let js = self.flavor == Flavor::Js;
        if self.handles.contains(&ptr) {
            if js {
                let _ = write!(out, "[Circular *{}]", self.label(ptr));
            } else {
                out.push_str("...");
            }
            return;
        }
        if self.handles.len() + self.seen.len() + self.stashed > PYTHON_MAX_DEPTH {
            out.push_str("...");
            return;
        }
        self.handles.push(ptr);
        self.seen.push(ptr);
        let outer = if js {
            Vec::new()
        } else {
            std::mem::take(&mut self.seen)
        };
        self.stashed += outer.len();
        let inside = std::mem::replace(&mut self.inside, true);
        let mut text = String::new();
        h.describe(&mut text, &mut |o, v| self.write(o, v, indent));
        self.inside = inside;
        self.stashed -= outer.len();
        if !js {
            self.seen = outer;
        }
        self.seen.pop();
        self.handles.pop();
        if let Some((_, n)) = self.circular.iter().find(|(p, _)| *p == ptr) {
            let _ = write!(out, "<ref *{n}> ");
        }
        out.push_str(&text);
    }

    /// The `*N` label of a cycle's target (numbered as first found).
    fn label(&mut self, ptr: *const ()) -> usize {
        match self.circular.iter().find(|(p, _)| *p == ptr) {
            Some((_, n)) => *n,
            None => {
                let n = self.circular.len() + 1;
                self.circular.push((ptr, n));
                n
            }
        }
    }

    fn part(&mut self, value: &Value, indent: usize) -> String {
        let mut s = String::new();
        self.write(&mut s, value, indent);
        s
    }

    /// Lays out entries as Node's `reduceToSingleString` does (arrays of
    /// more than six entries grouped in columns first), or as Python does.
    /// `list` is `Some(all entries are numbers)` for a list.
    fn join(
        &self,
        out: &mut String,
        (open, close): (&str, &str),
        parts: Vec<String>,
        indent: usize,
        list: Option<bool>,
    ) {
        if parts.is_empty() {
            out.push_str(open);
            out.push_str(close);
            return;
        }
        if self.flavor == Flavor::Python {
            out.push_str(open);
            out.push_str(&parts.join(", "));
            out.push_str(close);
            return;
        }
        let entries = parts.len();
        let output = match list {
            Some(all_numbers) if entries > 6 => group_array_elements(parts, indent, all_numbers),
            _ => parts,
        };
        if output.len() == entries {
            // isBelowBreakLength: entries, their separators and the braces fit.
            let start = output.len() + indent + open.len() + 10;
            let total =
                output.iter().map(|p| p.chars().count()).sum::<usize>() + output.len() + start;
            if total <= JS_BREAK_LENGTH && !output.iter().any(|p| p.contains('\n')) {
                let _ = write!(out, "{open} {} {close}", output.join(", "));
                return;
            }
        }
        let pad = " ".repeat(indent + 2);
        let _ = write!(
            out,
            "{open}\n{pad}{}\n{}{close}",
            output.join(&format!(",\n{pad}")),
            " ".repeat(indent)
        );
    }
}

/// Node's `groupArrayElements`: short entries of a long array in aligned
/// columns (numbers right-aligned, anything else left-aligned).
fn group_array_elements(output: Vec<String>, indent: usize, all_numbers: bool) -> Vec<String> {
    const SEPARATOR_SPACE: usize = 2;
    let lengths: Vec<usize> = output.iter().map(|p| p.chars().count()).collect();
    let total_length: usize = lengths.iter().map(|l| l + SEPARATOR_SPACE).sum();
    let max_length = lengths.iter().copied().max().unwrap_or(0);
    let actual_max = max_length + SEPARATOR_SPACE;
    let break_length = JS_BREAK_LENGTH;
    if !(actual_max * 3 + indent < break_length
        && (total_length as f64 / actual_max as f64 > 5.0 || max_length <= 6))
    {
        return output;
    }
    let average_bias = (actual_max as f64 - total_length as f64 / output.len() as f64).sqrt();
    let biased_max = (actual_max as f64 - 3.0 - average_bias).max(1.0);
    let columns = ((2.5 * biased_max * output.len() as f64).sqrt() / biased_max)
        .round()
        .min(((break_length - indent) / actual_max) as f64)
        .min(12.0) // compact (3) * 4
        .min(15.0) as usize;
    if columns <= 1 {
        return output;
    }
    let max_line_length: Vec<usize> = (0..columns)
        .map(|i| {
            (i..output.len())
                .step_by(columns)
                .map(|j| lengths[j])
                .max()
                .unwrap_or(0)
                + SEPARATOR_SPACE
        })
        .collect();
    let pad = |text: &str, width: usize| {
        let fill = " ".repeat(width.saturating_sub(text.chars().count()));
        if all_numbers {
            format!("{fill}{text}")
        } else {
            format!("{text}{fill}")
        }
    };
    let mut rows = Vec::new();
    for row_start in (0..output.len()).step_by(columns) {
        let row_end = (row_start + columns).min(output.len());
        let mut row = String::new();
        for j in row_start..row_end - 1 {
            row.push_str(&pad(
                &format!("{}, ", output[j]),
                max_line_length[j - row_start],
            ));
        }
        let last = row_end - 1;
        if all_numbers {
            row.push_str(&pad(
                &output[last],
                max_line_length[last - row_start] - SEPARATOR_SPACE,
            ));
        } else {
            row.push_str(&output[last]);
        }
        rows.push(row);
    }
    rows
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Quotes a string the way the flavour's inspector does.
fn quote(out: &mut String, s: &str, flavor: Flavor) {
    let quote = if flavor == Flavor::Python && s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let quote = if flavor == Flavor::Js && s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        quote
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c)
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Formats a float as JavaScript's `String(x)` or Python's `repr(x)` does.
pub fn format_float(x: f64, flavor: Flavor) -> String {
    if x.is_nan() {
        return if flavor == Flavor::Js { "NaN" } else { "nan" }.into();
    }
    if x.is_infinite() {
        let sign = if x < 0.0 { "-" } else { "" };
        return format!(
            "{sign}{}",
            if flavor == Flavor::Js {
                "Infinity"
            } else {
                "inf"
            }
        );
    }
    if x == 0.0 {
        return match flavor {
            Flavor::Js => if x.is_sign_negative() { "-0" } else { "0" }.into(),
            Flavor::Python => if x.is_sign_negative() { "-0.0" } else { "0.0" }.into(),
        };
    }
    // Shortest round-trip digits and decimal exponent, via Rust's `{:e}`.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    let (use_exponent, exp_style) = match flavor {
        Flavor::Js => (!(-6..21).contains(&exp), "js"),
        Flavor::Python => (!(-4..16).contains(&exp), "py"),
    };
    if use_exponent {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let e_sign = if exp < 0 { "-" } else { "+" };
        return if exp_style == "js" {
            format!("{sign}{m}e{e_sign}{}", exp.abs())
        } else {
            format!("{sign}{m}e{e_sign}{:02}", exp.abs())
        };
    }
    let point = exp + 1; // digits before the decimal point
    let mut text = if point <= 0 {
        format!("0.{}{}", "0".repeat((-point) as usize), digits)
    } else if point as usize >= digits.len() {
        format!("{}{}", digits, "0".repeat(point as usize - digits.len()))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    if flavor == Flavor::Python && !text.contains('.') {
        text.push_str(".0");
    }
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::any::Any;

    #[test]
    fn integers_as_text() {
        for n in [
            0,
            7,
            -7,
            10,
            99,
            100,
            -100,
            12_345,
            1_000_000,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            assert_eq!(int_text(n), n.to_string());
        }
        for n in (-100_000..100_000).step_by(7) {
            assert_eq!(int_text(n), n.to_string());
        }
    }

    #[test]
    fn integers_print_in_decimal_at_every_width() {
        for n in [0, 7, -7, 10, -10, 99, 100, 123_456_789, i64::MAX, i64::MIN] {
            assert_eq!(int_text(n), n.to_string());
        }
    }

    #[test]
    fn floats_print_as_each_language_prints_them() {
        let cases = [
            (1.0, "1", "1.0"),
            (0.1 + 0.2, "0.30000000000000004", "0.30000000000000004"),
            (1e21, "1e+21", "1e+21"),
            (1e16, "10000000000000000", "1e+16"),
            (1e-7, "1e-7", "1e-07"),
            (0.0001, "0.0001", "0.0001"),
            (0.00001, "0.00001", "1e-05"),
            (-0.0, "-0", "-0.0"),
            (f64::INFINITY, "Infinity", "inf"),
        ];
        for (x, js, python) in cases {
            assert_eq!(format_float(x, Flavor::Js), js, "js {x}");
            assert_eq!(format_float(x, Flavor::Python), python, "python {x}");
        }
    }

    #[test]
    fn deep_copy_keeps_sharing_and_cycles() {
        let inner = Value::list(vec![Value::Int(1)]);
        let outer = Value::list(vec![inner.clone(), inner.clone()]);
        if let Value::List(xs) = &outer {
            xs.borrow_mut().push(outer.clone());
        }
        let copy = outer.deep_copy().expect("copyable");
        let Value::List(items) = &copy else {
            panic!("a list")
        };
        let items = items.borrow();
        assert!(items[0].equals(&items[1]), "shared part stays shared");
        assert!(!items[0].equals(&inner), "but is a copy");
        assert!(items[2].equals(&copy), "the cycle points at the copy");
    }

    /// Runs `f` on a thread with a small stack: a drop that recursed once
    /// per level would overflow it.
    fn on_small_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(f)
            .expect("thread")
            .join()
            .expect("no stack overflow");
    }

    #[test]
    fn dropping_deeply_nested_lists_does_not_recurse() {
        on_small_stack(|| {
            let mut v = Value::list(Vec::new());
            for _ in 0..200_000 {
                v = Value::list(vec![Value::Int(1), v]);
            }
            drop(v);
        });
    }

    #[test]
    fn dropping_deeply_nested_maps_and_errors_does_not_recurse() {
        on_small_stack(|| {
            let mut v = Value::Nil;
            for i in 0..200_000 {
                let mut m = Map::default();
                m.set("x", v);
                v = Value::map(m);
                if i % 2 == 0 {
                    v = Value::Error(Rc::new(ErrorValue {
                        kind: Rc::from("Error"),
                        message: Rc::from(""),
                        errors: v,
                        cancellation: false,
                    }));
                }
            }
            drop(v);
        });
    }

    #[test]
    fn dropping_a_long_closure_chain_does_not_recurse() {
        on_small_stack(|| {
            let function = Rc::new(Function {
                name: Rc::from("f"),
                arity: 0,
                is_async: false,
                code: Vec::new(),
                spans: Vec::new(),
                constants: Vec::new(),
                num_slots: 0,
                upvalues: Vec::new(),
                source: crate::diagnostic::SourceFile::new("t", String::new()),
                is_main: false,
            });
            let mut v = Value::Nil;
            for _ in 0..200_000 {
                v = Value::Closure(Rc::new(Closure::new(
                    function.clone(),
                    Box::new([Rc::new(RefCell::new(v))]),
                )));
            }
            drop(v);
        });
    }

    struct Boxed(RefCell<Value>);

    impl Drop for Boxed {
        fn drop(&mut self) {
            drop_later([self.0.take()]);
        }
    }

    impl Handle for Boxed {
        fn type_name(&self) -> &'static str {
            "box"
        }
        fn describe(&self, out: &mut String, inner: &mut dyn FnMut(&mut String, &Value)) {
            out.push_str("Box { ");
            inner(out, &self.0.borrow());
            out.push_str(" }");
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    #[test]
    fn a_cycle_through_a_handle_prints_as_a_cycle() {
        let b = Hc::new(Boxed(RefCell::new(Value::Nil)));
        let list = Value::list(vec![Value::from(b.clone())]);
        *b.0.borrow_mut() = list.clone();
        assert_eq!(
            list.display(Flavor::Js),
            "<ref *1> [ Box { [Circular *1] } ]"
        );
        assert_eq!(
            Value::from(b.clone()).display(Flavor::Js),
            "<ref *1> Box { [ [Circular *1] ] }"
        );
        assert_eq!(list.display(Flavor::Python), "[Box { [...] }]");
        *b.0.borrow_mut() = Value::Nil; // break the cycle

        // A chain of handles a million deep prints with bounded nesting.
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(|| {
                let mut v = Value::Nil;
                for _ in 0..1_000_000 {
                    v = Value::from(Hc::new(Boxed(RefCell::new(v))));
                }
                for flavor in [Flavor::Js, Flavor::Python] {
                    let text = v.display(flavor);
                    assert!(text.starts_with("Box { Box { "), "{flavor:?}");
                    assert!(text.contains("..."), "{flavor:?}");
                }
            })
            .expect("thread")
            .join()
            .expect("no stack overflow");
    }

    #[test]
    fn deep_copy_refuses_handles() {
        struct Lock;
        impl Handle for Lock {
            fn type_name(&self) -> &'static str {
                "lock"
            }
            fn describe(&self, out: &mut String, _: &mut dyn FnMut(&mut String, &Value)) {
                out.push_str("<lock>");
            }
            fn as_any(&self) -> &dyn Any {
                self
            }
        }
        let value = Value::list(vec![Value::from(Hc::new(Lock))]);
        let error = value.deep_copy().err().expect("refused");
        assert!(error.contains("lock"), "{error}");
    }

    /// Keys of up to 22 bytes are kept in the entry, longer ones shared:
    /// both read back, hash, compare and order the same.
    #[test]
    fn short_and_long_map_keys() {
        let short = "k".repeat(Key::SHORT);
        let long = "k".repeat(Key::SHORT + 1);
        let accented = "é".repeat(11); // 22 bytes of two-byte characters
        let mut m = Map::default();
        for (i, key) in ["", short.as_str(), long.as_str(), accented.as_str()]
            .iter()
            .enumerate()
        {
            m.set(key, Value::Int(i as i64));
        }
        m.insert(Rc::from(long.as_str()), Value::Int(9));
        let keys: Vec<String> = m.keys().map(|k| k.to_string()).collect();
        assert_eq!(keys, ["", short.as_str(), long.as_str(), accented.as_str()]);
        assert!(matches!(m.get(&long), Some(Value::Int(9))));
        assert!(matches!(m.get(&accented), Some(Value::Int(3))));
        assert!(m.get(&"k".repeat(21)).is_none());
        assert!(matches!(m.remove(&short), Some(Value::Int(1))));
        assert_eq!(m.len(), 3);
        assert!(matches!(&Key::new(&long).0, KeyText::Long(_)));
        assert!(matches!(
            &Key::new(&accented).0,
            KeyText::Short { len: 22, .. }
        ));
    }
}
