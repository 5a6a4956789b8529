//! Built-in functions, methods, operators and error values.
//!
//! Pure built-ins (`len`, `str`, list/map/string methods, arithmetic) live
//! here. Primitives whose meaning depends on the runtime (`sleep`,
//! `set_timeout`, promises, `gather`, …) are forwarded to the policy.

use crate::runtime::Policy;
use crate::value::{ErrorValue, Flavor, Map, Native, NativeData, Value};
use crate::vm::{FiberId, NativeOutcome, Thrown, Vm};
use std::rc::Rc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Print,
    Str,
    Int,
    Float,
    Round,
    Floor,
    Ceil,
    Abs,
    Min,
    Max,
    Len,
    TypeOf,
    Error,
    Now,
    // Runtime primitives, forwarded to the policy:
    Sleep,
    Work,
    SetTimeout,
    ClearTimeout,
    QueueMicrotask,
    NextTick,
    NewPromise,
    Gather,
    PromiseResolve,
    PromiseReject,
    PromiseAll,
    PromiseRace,
    PromiseAllSettled,
    PromiseAny,
    /// A promise's resolve/reject function (`NativeData::Resolver`).
    Resolver,
    /// `.finally` helper returning a saved value.
    ReturnValue,
    /// `.finally` helper throwing a saved value.
    ThrowValue,
    /// A `Promise.all`-style element reaction.
    CombinatorStep,
    /// A method bound to its receiver.
    BoundMethod,
}

/// Global names and the built-in each one is bound to.
const GLOBALS: &[(&str, Builtin)] = &[
    ("print", Builtin::Print),
    ("str", Builtin::Str),
    ("int", Builtin::Int),
    ("float", Builtin::Float),
    ("round", Builtin::Round),
    ("floor", Builtin::Floor),
    ("ceil", Builtin::Ceil),
    ("abs", Builtin::Abs),
    ("min", Builtin::Min),
    ("max", Builtin::Max),
    ("len", Builtin::Len),
    ("type_of", Builtin::TypeOf),
    ("error", Builtin::Error),
    ("now", Builtin::Now),
    ("sleep", Builtin::Sleep),
    ("work", Builtin::Work),
    ("set_timeout", Builtin::SetTimeout),
    ("clear_timeout", Builtin::ClearTimeout),
    ("queue_microtask", Builtin::QueueMicrotask),
    ("next_tick", Builtin::NextTick),
    ("promise", Builtin::NewPromise),
    ("gather", Builtin::Gather),
];

const PROMISE_STATICS: &[(&str, Builtin)] = &[
    ("resolve", Builtin::PromiseResolve),
    ("reject", Builtin::PromiseReject),
    ("all", Builtin::PromiseAll),
    ("race", Builtin::PromiseRace),
    ("allSettled", Builtin::PromiseAllSettled),
    ("any", Builtin::PromiseAny),
];

pub fn global_names() -> Vec<&'static str> {
    GLOBALS
        .iter()
        .map(|(n, _)| *n)
        .chain(std::iter::once("Promise"))
        .collect()
}

pub fn is_global_name(name: &str) -> bool {
    name == "Promise" || GLOBALS.iter().any(|(n, _)| *n == name)
}

/// The initial value of a global slot, if the name is a built-in.
pub fn global_value(name: &str) -> Option<Value> {
    if name == "Promise" {
        let mut map = Map::default();
        for (key, builtin) in PROMISE_STATICS {
            map.insert(Rc::from(*key), native(*builtin));
        }
        return Some(Value::map(map));
    }
    GLOBALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| native(*b))
}

fn native(builtin: Builtin) -> Value {
    Value::Native(Rc::new(Native {
        builtin,
        data: NativeData::None,
    }))
}

impl Builtin {
    pub fn name(self) -> String {
        GLOBALS
            .iter()
            .chain(PROMISE_STATICS)
            .find(|(_, b)| *b == self)
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| format!("{self:?}").to_lowercase())
    }
}

pub fn error_value(kind: &str, message: &str) -> Value {
    let message = fix_articles(message);
    let message = message.as_str();
    Value::Error(Rc::new(ErrorValue {
        kind: Rc::from(kind),
        message: Rc::from(message),
        errors: Value::Nil,
        cancellation: false,
    }))
}

/// "a int" → "an int", "a error" → "an error" in generated messages.
fn fix_articles(message: &str) -> String {
    let mut out = message
        .replace(" a int", " an int")
        .replace(" a error", " an error");
    for (wrong, right) in [("a int", "an int"), ("a error", "an error")] {
        if out.starts_with(wrong) {
            out.replace_range(..wrong.len(), right);
        }
    }
    out
}

/// The longest string a program may build (bytes): past it, a MemoryError
/// rather than an allocation the machine cannot make.
pub const MAX_STRING_BYTES: usize = 1 << 28;
/// The longest list a program may build.
pub const MAX_LIST_LENGTH: usize = 1 << 26;

pub fn check_string_size(bytes: usize) -> Result<(), Thrown> {
    if bytes > MAX_STRING_BYTES {
        return Err(error(
            "MemoryError",
            format!("a string of {bytes} bytes is over looplab's limit of {MAX_STRING_BYTES}"),
        ));
    }
    Ok(())
}

pub fn check_list_size(length: usize) -> Result<(), Thrown> {
    if length > MAX_LIST_LENGTH {
        return Err(error(
            "MemoryError",
            format!("a list of {length} items is over looplab's limit of {MAX_LIST_LENGTH}"),
        ));
    }
    Ok(())
}

pub fn aggregate_error(message: &str, errors: Value) -> Value {
    Value::Error(Rc::new(ErrorValue {
        kind: Rc::from("AggregateError"),
        message: Rc::from(message),
        errors,
        cancellation: false,
    }))
}

fn error(kind: &str, message: String) -> Thrown {
    Thrown::new(error_value(kind, &message))
}

pub fn is_cancellation(value: &Value) -> bool {
    matches!(value, Value::Error(e) if e.cancellation)
}

/// Raised into a pending coroutine when it is closed (collected): like a
/// cancellation, `catch` does not catch it and `finally` runs.
pub fn generator_exit() -> Value {
    Value::Error(Rc::new(ErrorValue {
        kind: Rc::from("GeneratorExit"),
        message: Rc::from(""),
        errors: Value::Nil,
        cancellation: true,
    }))
}

/// asyncio's CancelledError, raised into a cancelled task at its `await`.
pub fn cancelled_error() -> Value {
    Value::Error(Rc::new(ErrorValue {
        kind: Rc::from("CancelledError"),
        message: Rc::from(""),
        errors: Value::Nil,
        cancellation: true,
    }))
}

type NativeResult = Result<NativeOutcome, Thrown>;

fn ok(v: Value) -> NativeResult {
    Ok(NativeOutcome::Value(v))
}

fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Nil)
}

/// Converts a duration argument (a number of milliseconds) to nanoseconds.
pub fn duration_ns(value: &Value, what: &str) -> Result<u64, Thrown> {
    let ms = match value {
        Value::Int(n) => *n as f64,
        Value::Float(x) => *x,
        Value::Nil => 0.0,
        other => {
            return Err(error(
                "TypeError",
                format!("{what} needs a duration, not a {}", other.type_name()),
            ));
        }
    };
    if !ms.is_finite() || ms < 0.0 {
        return Err(error(
            "ValueError",
            format!("{what} needs a duration of zero or more, not {ms}"),
        ));
    }
    if ms > 1.0e12 {
        return Err(error(
            "ValueError",
            format!("{what}: a duration of {ms} ms is too long (the limit is 10^12 ms)"),
        ));
    }
    Ok((ms * 1_000_000.0).round() as u64)
}

pub fn call_native(
    vm: &mut Vm,
    policy: &mut dyn Policy,
    fiber: FiberId,
    native: &Rc<Native>,
    args: Vec<Value>,
) -> NativeResult {
    let flavor = vm.flavor;
    match native.builtin {
        Builtin::Print => {
            let mut line = args
                .iter()
                .map(|v| v.display(flavor))
                .collect::<Vec<_>>()
                .join(" ");
            line.push('\n');
            vm.print(&line);
            ok(Value::Nil)
        }
        Builtin::Str => ok(Value::str(&arg(&args, 0).display(flavor))),
        Builtin::Int => match arg(&args, 0) {
            Value::Int(n) => ok(Value::Int(n)),
            Value::Float(x) if x.is_finite() && x.abs() < 9.2e18 => {
                ok(Value::Int(x.trunc() as i64))
            }
            Value::Float(x) if x.is_finite() => Err(error(
                "OverflowError",
                format!("int(): {x} does not fit in a 64-bit integer"),
            )),
            Value::Bool(b) => ok(Value::Int(b as i64)),
            Value::Str(s) => match s.trim().parse::<i64>() {
                Ok(n) => ok(Value::Int(n)),
                Err(_) => Err(error(
                    "ValueError",
                    format!("int(): `{s}` is not an integer"),
                )),
            },
            other => Err(error(
                "TypeError",
                format!("int() cannot convert {}", other.repr(flavor)),
            )),
        },
        Builtin::Float => match arg(&args, 0) {
            Value::Int(n) => ok(Value::Float(n as f64)),
            Value::Float(x) => ok(Value::Float(x)),
            Value::Bool(b) => ok(Value::Float(if b { 1.0 } else { 0.0 })),
            Value::Str(s) => match s.trim().parse::<f64>() {
                Ok(x) => ok(Value::Float(x)),
                Err(_) => Err(error(
                    "ValueError",
                    format!("float(): `{s}` is not a number"),
                )),
            },
            other => Err(error(
                "TypeError",
                format!("float() cannot convert {}", other.repr(flavor)),
            )),
        },
        Builtin::Round | Builtin::Floor | Builtin::Ceil => {
            let x = number(&arg(&args, 0), "round/floor/ceil")?;
            let digits = match arg(&args, 1) {
                Value::Int(d) => Some(d.clamp(0, 15)),
                _ => None,
            };
            match (native.builtin, digits) {
                (Builtin::Round, Some(d)) => {
                    let scale = 10f64.powi(d as i32);
                    ok(Value::Float((x * scale).round() / scale))
                }
                _ => {
                    let r = match native.builtin {
                        Builtin::Floor => x.floor(),
                        Builtin::Ceil => x.ceil(),
                        // Math.round rounds halves up; Python's round() to even.
                        _ if flavor == Flavor::Js => (x + 0.5).floor(),
                        _ => x.round_ties_even(),
                    };
                    if r.is_finite() && r.abs() < 9.2e18 {
                        ok(Value::Int(r as i64))
                    } else {
                        ok(Value::Float(r))
                    }
                }
            }
        }
        Builtin::Abs => match arg(&args, 0) {
            Value::Int(n) => n
                .checked_abs()
                .map(|n| NativeOutcome::Value(Value::Int(n)))
                .ok_or_else(|| error("OverflowError", "integer overflow in abs()".into())),
            v => ok(Value::Float(number(&v, "abs")?.abs())),
        },
        Builtin::Min | Builtin::Max => {
            let items = match args.as_slice() {
                [Value::List(xs)] => xs.borrow().clone(),
                _ => args,
            };
            let mut best: Option<Value> = None;
            for item in items {
                best = Some(match best {
                    None => item,
                    Some(b) => {
                        let less = compare(&item, &b)? == std::cmp::Ordering::Less;
                        if less == (native.builtin == Builtin::Min) {
                            item
                        } else {
                            b
                        }
                    }
                });
            }
            best.map(NativeOutcome::Value)
                .ok_or_else(|| error("ValueError", "min()/max() of nothing".into()))
        }
        Builtin::Len => ok(Value::Int(length(&arg(&args, 0))?)),
        Builtin::TypeOf => ok(Value::str(arg(&args, 0).type_name())),
        Builtin::Error => {
            let message = arg(&args, 0).display(flavor);
            let kind = match arg(&args, 1) {
                Value::Str(k) => k.to_string(),
                _ => "Error".into(),
            };
            ok(error_value(&kind, &message))
        }
        Builtin::Now => ok(Value::Int((vm.now_ns() / 1_000_000) as i64)),
        Builtin::Work => {
            let ns = duration_ns(&arg(&args, 0), "work()")?;
            vm.charge_ns(ns);
            ok(Value::Nil)
        }
        Builtin::BoundMethod => {
            let NativeData::Method { receiver, name } = &native.data else {
                unreachable!()
            };
            call_method(vm, policy, fiber, receiver, name, args)
        }
        Builtin::ReturnValue => match &native.data {
            NativeData::Value(v) => ok(v.clone()),
            _ => ok(Value::Nil),
        },
        Builtin::ThrowValue => match &native.data {
            NativeData::Value(v) => Err(Thrown::new(v.clone())),
            _ => ok(Value::Nil),
        },
        _ => policy.builtin(vm, fiber, native, args),
    }
}

fn number(v: &Value, what: &str) -> Result<f64, Thrown> {
    match v {
        Value::Int(n) => Ok(*n as f64),
        Value::Float(x) => Ok(*x),
        other => Err(error(
            "TypeError",
            format!("{what}() needs a number, not a {}", other.type_name()),
        )),
    }
}

fn length(v: &Value) -> Result<i64, Thrown> {
    Ok(match v {
        Value::Str(s) => s.chars().count() as i64,
        Value::List(xs) => xs.borrow().len() as i64,
        Value::Map(m) => m.borrow().len() as i64,
        other => {
            return Err(error(
                "TypeError",
                format!("a {} has no length", other.type_name()),
            ));
        }
    })
}

pub fn call_method(
    vm: &mut Vm,
    policy: &mut dyn Policy,
    fiber: FiberId,
    receiver: &Value,
    name: &str,
    args: Vec<Value>,
) -> NativeResult {
    let flavor = vm.flavor;
    match receiver {
        Value::List(xs) => list_method(xs, name, args, flavor),
        Value::Map(m) => map_method(m, name, args, flavor),
        Value::Str(s) => string_method(s, name, args, flavor),
        Value::Promise(p) => policy.promise_method(vm, fiber, p, name, args),
        Value::Error(e) => Err(error(
            "TypeError",
            format!(
                "an error ({}) has no method `{name}`; read its fields `kind` and `message`",
                e.kind
            ),
        )),
        other => Err(error(
            "TypeError",
            format!("a {} has no method `{name}`", other.type_name()),
        )),
    }
}

fn unknown_method(kind: &str, name: &str, known: &str) -> Thrown {
    error(
        "TypeError",
        format!("a {kind} has no method `{name}` (known: {known})"),
    )
}

fn index_arg(v: &Value, len: usize, what: &str) -> Result<usize, Thrown> {
    match v {
        Value::Int(i) => {
            let i = if *i < 0 { *i + len as i64 } else { *i };
            if i < 0 {
                Ok(0)
            } else {
                Ok((i as usize).min(len))
            }
        }
        Value::Nil => Ok(len),
        other => Err(error(
            "TypeError",
            format!("{what} needs an integer, not a {}", other.type_name()),
        )),
    }
}

fn list_method(
    xs: &Rc<std::cell::RefCell<Vec<Value>>>,
    name: &str,
    args: Vec<Value>,
    flavor: Flavor,
) -> NativeResult {
    match name {
        "len" => ok(Value::Int(xs.borrow().len() as i64)),
        "push" => {
            let mut list = xs.borrow_mut();
            check_list_size(list.len() + args.len())?;
            list.extend(args);
            ok(Value::Int(list.len() as i64))
        }
        "pop" => ok(xs.borrow_mut().pop().unwrap_or(Value::Nil)),
        "shift" => {
            let mut list = xs.borrow_mut();
            ok(if list.is_empty() {
                Value::Nil
            } else {
                list.remove(0)
            })
        }
        "insert" => {
            let mut list = xs.borrow_mut();
            let at = index_arg(&arg(&args, 0), list.len(), "insert")?;
            list.insert(at, arg(&args, 1));
            ok(Value::Nil)
        }
        "contains" => ok(Value::Bool(
            xs.borrow().iter().any(|v| v.equals(&arg(&args, 0))),
        )),
        "index_of" => ok(Value::Int(
            xs.borrow()
                .iter()
                .position(|v| v.equals(&arg(&args, 0)))
                .map_or(-1, |i| i as i64),
        )),
        "join" => {
            let sep = match arg(&args, 0) {
                Value::Str(s) => s.to_string(),
                Value::Nil => ",".into(),
                other => other.display(flavor),
            };
            ok(Value::str(
                &xs.borrow()
                    .iter()
                    .map(|v| v.display(flavor))
                    .collect::<Vec<_>>()
                    .join(&sep),
            ))
        }
        "slice" => {
            let list = xs.borrow();
            let start = index_arg(&arg(&args, 0), list.len(), "slice")?;
            let end = index_arg(&arg(&args, 1), list.len(), "slice")?;
            ok(Value::list(list[start..end.max(start)].to_vec()))
        }
        "reverse" => {
            xs.borrow_mut().reverse();
            ok(Value::Nil)
        }
        "sort" => {
            if !args.is_empty() {
                return Err(error(
                    "TypeError",
                    "sort() takes no comparator: it sorts numbers or strings in ascending order (reverse() after it for descending)".into(),
                ));
            }
            let mut list = xs.borrow().clone();
            let mut failure = None;
            list.sort_by(|a, b| {
                compare(a, b).unwrap_or_else(|e| {
                    failure = Some(e);
                    std::cmp::Ordering::Equal
                })
            });
            if let Some(e) = failure {
                return Err(e);
            }
            *xs.borrow_mut() = list;
            ok(Value::Nil)
        }
        "concat" => match arg(&args, 0) {
            Value::List(other) => {
                check_list_size(xs.borrow().len() + other.borrow().len())?;
                let mut joined = xs.borrow().clone();
                joined.extend(other.borrow().iter().cloned());
                ok(Value::list(joined))
            }
            other => Err(error(
                "TypeError",
                format!("concat needs a list, not a {}", other.type_name()),
            )),
        },
        "copy" => ok(Value::list(xs.borrow().clone())),
        _ => Err(unknown_method(
            "list",
            name,
            "len push pop shift insert contains index_of join slice reverse sort concat copy",
        )),
    }
}

fn map_method(
    m: &Rc<std::cell::RefCell<Map>>,
    name: &str,
    args: Vec<Value>,
    _flavor: Flavor,
) -> NativeResult {
    let key = |i: usize| match arg(&args, i) {
        Value::Str(s) => Ok(Rc::from(s.as_str())),
        other => Err(error(
            "TypeError",
            format!("map keys are strings, not {}", other.type_name()),
        )),
    };
    match name {
        "len" => ok(Value::Int(m.borrow().len() as i64)),
        "keys" => ok(Value::list(
            m.borrow().keys().iter().map(|k| Value::str(k)).collect(),
        )),
        "values" => ok(Value::list(m.borrow().values().to_vec())),
        "contains" | "has" => ok(Value::Bool(m.borrow().get(&key(0)?).is_some())),
        "get" => ok(m
            .borrow()
            .get(&key(0)?)
            .cloned()
            .unwrap_or_else(|| arg(&args, 1))),
        "set" => {
            m.borrow_mut().set(&key(0)?, arg(&args, 1));
            ok(Value::Nil)
        }
        "remove" => ok(m.borrow_mut().remove(&key(0)?).unwrap_or(Value::Nil)),
        "copy" => ok(Value::map(m.borrow().clone())),
        _ => Err(unknown_method(
            "map",
            name,
            "len keys values contains has get set remove copy",
        )),
    }
}

fn string_method(s: &str, name: &str, args: Vec<Value>, flavor: Flavor) -> NativeResult {
    let text = |i: usize| match arg(&args, i) {
        Value::Str(t) => Ok(t),
        other => Err(error(
            "TypeError",
            format!("`{name}` needs a string, not a {}", other.type_name()),
        )),
    };
    match name {
        "len" => ok(Value::Int(s.chars().count() as i64)),
        "upper" => ok(Value::str(&s.to_uppercase())),
        "lower" => ok(Value::str(&s.to_lowercase())),
        "trim" => ok(Value::str(s.trim())),
        "split" => {
            let parts: Vec<Value> = match arg(&args, 0) {
                Value::Nil => s.split_whitespace().map(Value::str).collect(),
                Value::Str(sep) if sep.is_empty() => {
                    s.chars().map(|c| Value::str(&c.to_string())).collect()
                }
                Value::Str(sep) => s.split(&*sep).map(Value::str).collect(),
                other => {
                    return Err(error(
                        "TypeError",
                        format!("split needs a string, not a {}", other.type_name()),
                    ));
                }
            };
            ok(Value::list(parts))
        }
        "contains" => ok(Value::Bool(s.contains(&*text(0)?))),
        "starts_with" => ok(Value::Bool(s.starts_with(&*text(0)?))),
        "ends_with" => ok(Value::Bool(s.ends_with(&*text(0)?))),
        "replace" => ok(Value::str(&s.replace(&*text(0)?, &text(1)?))),
        "index_of" => {
            let needle = text(0)?;
            ok(Value::Int(
                s.find(&*needle)
                    .map_or(-1, |b| s[..b].chars().count() as i64),
            ))
        }
        "slice" => {
            let chars: Vec<char> = s.chars().collect();
            let start = index_arg(&arg(&args, 0), chars.len(), "slice")?;
            let end = index_arg(&arg(&args, 1), chars.len(), "slice")?;
            ok(Value::str(
                &chars[start..end.max(start)].iter().collect::<String>(),
            ))
        }
        "repeat" => match arg(&args, 0) {
            Value::Int(n)
                if (0..=10_000_000).contains(&n)
                    && s.len().saturating_mul(n as usize) <= 100_000_000 =>
            {
                ok(Value::str(&s.repeat(n as usize)))
            }
            other => Err(error(
                "ValueError",
                format!(
                    "repeat needs a count from 0 up to a 100 MB result, not {}",
                    other.repr(flavor)
                ),
            )),
        },
        _ => Err(unknown_method(
            "string",
            name,
            "len upper lower trim split contains starts_with ends_with replace index_of slice repeat",
        )),
    }
}

pub fn get_field(object: &Value, name: &str) -> Result<Value, Value> {
    match object {
        Value::Map(m) => Ok(m.borrow().get(name).cloned().unwrap_or(Value::Nil)),
        Value::Error(e) => match name {
            "message" => Ok(Value::str(&e.message)),
            "kind" => Ok(Value::str(&e.kind)),
            "errors" => Ok(e.errors.clone()),
            _ => Ok(Value::Nil),
        },
        Value::List(_) | Value::Str(_) | Value::Promise(_) => Ok(Value::Native(Rc::new(Native {
            builtin: Builtin::BoundMethod,
            data: NativeData::Method {
                receiver: object.clone(),
                name: Rc::from(name),
            },
        }))),
        Value::Nil => Err(error_value(
            "TypeError",
            &format!("cannot read field `{name}` of nil"),
        )),
        other => Err(error_value(
            "TypeError",
            &format!("a {} has no field `{name}`", other.type_name()),
        )),
    }
}

pub fn index(object: &Value, index: &Value, flavor: Flavor) -> Result<Value, Value> {
    match (object, index) {
        (Value::List(xs), Value::Int(i)) => {
            let list = xs.borrow();
            let at = if *i < 0 { *i + list.len() as i64 } else { *i };
            list.get(at as usize)
                .filter(|_| at >= 0)
                .cloned()
                .ok_or_else(|| {
                    error_value(
                        "IndexError",
                        &format!(
                            "index {i} is out of range for a list of length {}",
                            list.len()
                        ),
                    )
                })
        }
        (Value::Map(m), Value::Str(k)) => Ok(m.borrow().get(k).cloned().unwrap_or(Value::Nil)),
        (Value::Str(s), Value::Int(i)) => {
            let len = s.chars().count() as i64;
            let at = if *i < 0 { *i + len } else { *i };
            if at < 0 || at >= len {
                return Err(error_value(
                    "IndexError",
                    &format!("index {i} is out of range for a string of length {len}"),
                ));
            }
            Ok(Value::str(
                &s.chars()
                    .nth(at as usize)
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            ))
        }
        (Value::Map(_), other) => Err(error_value(
            "TypeError",
            &format!("map keys are strings, not {}", other.repr(flavor)),
        )),
        (target, other) => Err(error_value(
            "TypeError",
            &format!(
                "cannot index a {} with {}",
                target.type_name(),
                other.repr(flavor)
            ),
        )),
    }
}

pub fn set_index(object: &Value, index: &Value, value: Value) -> Result<(), Value> {
    match (object, index) {
        (Value::List(xs), Value::Int(i)) => {
            let mut list = xs.borrow_mut();
            let len = list.len();
            let at = if *i < 0 { *i + len as i64 } else { *i };
            match list.get_mut(at as usize).filter(|_| at >= 0) {
                Some(slot) => {
                    *slot = value;
                    Ok(())
                }
                None => Err(error_value(
                    "IndexError",
                    &format!("index {i} is out of range for a list of length {len}"),
                )),
            }
        }
        (Value::Map(m), Value::Str(k)) => {
            m.borrow_mut().set(k, value);
            Ok(())
        }
        (Value::Map(_), other) => Err(error_value(
            "TypeError",
            &format!("map keys are strings, not {}", other.repr(Flavor::Js)),
        )),
        (Value::Str(_), _) => Err(error_value(
            "TypeError",
            "strings cannot be changed; build a new one with `+` or slice()",
        )),
        (target, other) => Err(error_value(
            "TypeError",
            &format!(
                "cannot set an element of a {} at {}",
                target.type_name(),
                other.type_name()
            ),
        )),
    }
}

pub fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, Thrown> {
    use std::cmp::Ordering;
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (x, y) = (as_f64(a), as_f64(b));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        _ => {
            return Err(error(
                "TypeError",
                format!(
                    "cannot compare a {} with a {}",
                    a.type_name(),
                    b.type_name()
                ),
            ));
        }
    })
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Int(n) => *n as f64,
        Value::Float(x) => *x,
        _ => f64::NAN,
    }
}

/// Binary operators other than the VM's integer fast paths.
pub fn binary(
    op: crate::bytecode::Op,
    left: &Value,
    right: &Value,
    flavor: Flavor,
) -> Result<Value, Value> {
    use crate::bytecode::Op;
    let overflow =
        |sym: &str| error_value("OverflowError", &format!("integer overflow in `{sym}`"));
    let mismatch = |sym: &str| {
        error_value(
            "TypeError",
            &format!(
                "unsupported operand types for `{sym}`: {} and {}",
                left.type_name(),
                right.type_name()
            ),
        )
    };
    match op {
        Op::Eq => return Ok(Value::Bool(left.equals(right))),
        Op::Ne => return Ok(Value::Bool(!left.equals(right))),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let ord = compare(left, right).map_err(|t| t.value)?;
            let result = match op {
                Op::Lt => ord.is_lt(),
                Op::Le => ord.is_le(),
                Op::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            };
            let float_nan = (as_f64(left).is_nan() || as_f64(right).is_nan())
                && (matches!(left, Value::Float(_)) || matches!(right, Value::Float(_)));
            if float_nan {
                return Ok(Value::Bool(false));
            }
            return Ok(Value::Bool(result));
        }
        _ => {}
    }
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => {
            let (a, b) = (*a, *b);
            match op {
                Op::Add => a
                    .checked_add(b)
                    .map(Value::Int)
                    .ok_or_else(|| overflow("+")),
                Op::Sub => a
                    .checked_sub(b)
                    .map(Value::Int)
                    .ok_or_else(|| overflow("-")),
                Op::Mul => a
                    .checked_mul(b)
                    .map(Value::Int)
                    .ok_or_else(|| overflow("*")),
                Op::Div => {
                    if b == 0 && flavor == Flavor::Js {
                        Ok(Value::Float(a as f64 / 0.0))
                    } else if b == 0 {
                        Err(error_value("ZeroDivisionError", "division by zero"))
                    } else if a == i64::MIN && b == -1 {
                        Err(overflow("/"))
                    } else if a.checked_rem(b) == Some(0) {
                        a.checked_div(b)
                            .map(Value::Int)
                            .ok_or_else(|| overflow("/"))
                    } else {
                        Ok(Value::Float(a as f64 / b as f64))
                    }
                }
                Op::Mod => {
                    if b == 0 && flavor == Flavor::Js {
                        return Ok(Value::Float(f64::NAN));
                    }
                    if b == 0 {
                        return Err(error_value("ZeroDivisionError", "modulo by zero"));
                    }
                    // i64::MIN % -1 overflows in Rust; mathematically it is 0.
                    let r = a.checked_rem(b).unwrap_or(0);
                    // Python's result takes the divisor's sign; JavaScript's the dividend's.
                    Ok(Value::Int(
                        if flavor == Flavor::Python && r != 0 && (r < 0) != (b < 0) {
                            r + b
                        } else {
                            r
                        },
                    ))
                }
                _ => Err(mismatch("?")),
            }
        }
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (a, b) = (as_f64(left), as_f64(right));
            match op {
                Op::Add => Ok(Value::Float(a + b)),
                Op::Sub => Ok(Value::Float(a - b)),
                Op::Mul => Ok(Value::Float(a * b)),
                Op::Div if b == 0.0 && flavor == Flavor::Python => {
                    Err(error_value("ZeroDivisionError", "division by zero"))
                }
                Op::Div => Ok(Value::Float(a / b)),
                Op::Mod if b == 0.0 && flavor == Flavor::Python => {
                    Err(error_value("ZeroDivisionError", "modulo by zero"))
                }
                Op::Mod => {
                    let r = a % b;
                    Ok(Value::Float(
                        if flavor == Flavor::Python && r != 0.0 && (r < 0.0) != (b < 0.0) {
                            r + b
                        } else {
                            r
                        },
                    ))
                }
                _ => Err(mismatch("?")),
            }
        }
        (Value::Str(a), b) if op == Op::Add => {
            let b = b.display(flavor);
            check_string_size(a.len() + b.len()).map_err(|t| t.value)?;
            Ok(Value::str(&format!("{a}{b}")))
        }
        (a, Value::Str(b)) if op == Op::Add => {
            let a = a.display(flavor);
            check_string_size(a.len() + b.len()).map_err(|t| t.value)?;
            Ok(Value::str(&format!("{a}{b}")))
        }
        (Value::List(a), Value::List(b)) if op == Op::Add => {
            check_list_size(a.borrow().len() + b.borrow().len()).map_err(|t| t.value)?;
            let mut joined = a.borrow().clone();
            joined.extend(b.borrow().iter().cloned());
            Ok(Value::list(joined))
        }
        _ => {
            let sym = match op {
                Op::Add => "+",
                Op::Sub => "-",
                Op::Mul => "*",
                Op::Div => "/",
                _ => "%",
            };
            Err(mismatch(sym))
        }
    }
}
