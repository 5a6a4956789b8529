//! Built-in functions and methods the VM computes by itself: `print`,
//! `len`, `str`, …, and the methods of lists, maps and strings. None of them
//! depends on the scheduler; where JavaScript and Python disagree, they ask
//! the dialect. The runtime's primitives (`sleep`, `set_timeout`, promises…)
//! are not here: they are the policy's (see `runtime`).

use super::dialect::{Dialect, RoundHalves};
use super::ops::{
    LIST_METHODS, MAX_LIST_LENGTH, STRING_METHODS, check_list_size, check_memory,
    check_string_size, compare, display, error,
};
use super::{Thrown, Vm};
use crate::value::{Flavor, Map, Native, Value};
use std::rc::Rc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
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
];

/// The names of the built-in functions.
pub fn names() -> impl Iterator<Item = &'static str> {
    GLOBALS.iter().map(|(n, _)| *n)
}

/// The value of a global slot named `name`, if it is a built-in.
pub fn global_value(name: &str) -> Option<Value> {
    GLOBALS.iter().find(|(n, _)| *n == name).map(|(n, b)| {
        Value::Native(Rc::new(Native::Builtin {
            id: *b as u8,
            name: n,
        }))
    })
}

impl Builtin {
    fn from_id(id: u8) -> Option<Builtin> {
        GLOBALS.iter().map(|(_, b)| *b).find(|b| *b as u8 == id)
    }
}

type NativeResult = Result<Value, Thrown>;

fn ok(v: Value) -> NativeResult {
    Ok(v)
}

fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Nil)
}

/// Calls built-in function number `id` (from `Native::Builtin`).
pub fn call_builtin(vm: &mut Vm, id: u8, args: &[Value]) -> NativeResult {
    let dialect = vm.dialect;
    let flavor = dialect.style;
    let Some(builtin) = Builtin::from_id(id) else {
        return Err(error("TypeError", format!("no built-in number {id}")));
    };
    match builtin {
        Builtin::Print => {
            let mut line = String::new();
            for (i, v) in args.iter().enumerate() {
                let text = display(v, flavor)?;
                check_string_size(line.len() + text.len() + 1)?;
                if i > 0 {
                    line.push(' ');
                }
                line.push_str(&text);
            }
            line.push('\n');
            vm.print(&line);
            ok(Value::Nil)
        }
        Builtin::Str => match args.first() {
            // A string is its own text: share it.
            Some(Value::Str(s)) => ok(Value::Str(s.clone())),
            // At most 20 bytes: under any size or budget check.
            Some(Value::Int(n)) => ok(Value::Str(Rc::new(crate::value::int_text(*n)))),
            Some(v) => ok(Value::Str(Rc::new(display(v, flavor)?))),
            None => ok(Value::Str(Rc::new(display(&Value::Nil, flavor)?))),
        },
        Builtin::Int => match arg(args, 0) {
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
        Builtin::Float => match arg(args, 0) {
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
        Builtin::Round if dialect.round_halves == RoundHalves::ToEven => {
            python_round(&arg(args, 0), &arg(args, 1))
        }
        Builtin::Round | Builtin::Floor | Builtin::Ceil => {
            let x = number(&arg(args, 0), "round/floor/ceil")?;
            let digits = match arg(args, 1) {
                Value::Int(d) => Some(d.clamp(0, 15)),
                _ => None,
            };
            match (builtin, digits) {
                (Builtin::Round, Some(d)) => {
                    let scale = 10f64.powi(d as i32);
                    ok(Value::Float((x * scale).round() / scale))
                }
                _ => {
                    let r = match builtin {
                        Builtin::Floor => x.floor(),
                        Builtin::Ceil => x.ceil(),
                        _ => round_half(x, dialect),
                    };
                    if r.is_finite() && r.abs() < 9.2e18 {
                        ok(Value::Int(r as i64))
                    } else {
                        ok(Value::Float(r))
                    }
                }
            }
        }
        Builtin::Abs => match arg(args, 0) {
            Value::Int(n) => n
                .checked_abs()
                .map(Value::Int)
                .ok_or_else(|| error("OverflowError", "integer overflow in abs()".into())),
            v => ok(Value::Float(number(&v, "abs")?.abs())),
        },
        Builtin::Min | Builtin::Max => {
            let items = match args {
                [Value::List(xs)] => xs.borrow().clone(),
                _ => args.to_vec(),
            };
            let mut best: Option<Value> = None;
            for item in items {
                best = Some(match best {
                    None => item,
                    Some(b) => {
                        let less = compare(&item, &b)? == std::cmp::Ordering::Less;
                        if less == (builtin == Builtin::Min) {
                            item
                        } else {
                            b
                        }
                    }
                });
            }
            best.ok_or_else(|| error("ValueError", "min()/max() of nothing".into()))
        }
        Builtin::Len => ok(Value::Int(length(&arg(args, 0))?)),
        Builtin::TypeOf => ok(Value::str(arg(args, 0).type_name())),
        Builtin::Error => {
            let message = display(&arg(args, 0), flavor)?;
            let kind = match arg(args, 1) {
                Value::Str(k) => k.to_string(),
                _ => "Error".into(),
            };
            ok(Value::error(&kind, &message))
        }
    }
}

/// Python's `round(x)` / `round(x, n)`: halves to even, on the exact
/// binary value (`round(2.675, 2)` is 2.67, as the float is a little below);
/// an int stays an int (`round(5, 2)` is 5, `round(1250, -2)` is 1200).
fn python_round(x: &Value, digits: &Value) -> Result<Value, Thrown> {
    let digits = match digits {
        Value::Nil => None,
        Value::Int(d) => Some(*d),
        other => {
            return Err(error(
                "TypeError",
                format!(
                    "round(): the number of digits must be an int, not {}",
                    other.repr(Flavor::Python)
                ),
            ));
        }
    };
    match (x, digits) {
        (Value::Int(n), None) => Ok(Value::Int(*n)),
        (Value::Int(n), Some(d)) if d >= 0 => Ok(Value::Int(*n)),
        (Value::Int(n), Some(d)) => {
            // Round to a multiple of 10^-d, halves to even (in i128: no overflow).
            let Some(unit) = 10i128.checked_pow((-d).min(38) as u32) else {
                return Ok(Value::Int(0));
            };
            let n = *n as i128;
            let (q, r) = (n.div_euclid(unit), n.rem_euclid(unit));
            let q = match (2 * r).cmp(&unit) {
                std::cmp::Ordering::Greater => q + 1,
                std::cmp::Ordering::Equal if q % 2 != 0 => q + 1,
                _ => q,
            };
            i64::try_from(q * unit)
                .map(Value::Int)
                .map_err(|_| error("OverflowError", "integer overflow in round()".into()))
        }
        (x, None) => {
            let x = number(x, "round")?;
            if !x.is_finite() {
                return Err(error(
                    "ValueError",
                    format!(
                        "cannot convert float {} to integer",
                        Value::Float(x).repr(Flavor::Python)
                    ),
                ));
            }
            let r = x.round_ties_even();
            if r.abs() < 9.2e18 {
                Ok(Value::Int(r as i64))
            } else {
                Err(error("OverflowError", "integer overflow in round()".into()))
            }
        }
        (x, Some(d)) => {
            let x = number(x, "round")?;
            if !x.is_finite() || d > 330 {
                return Ok(Value::Float(x));
            }
            if d >= 0 {
                // Formatting rounds the exact binary value, halves to even,
                // as CPython's dtoa does.
                let text = format!("{x:.*}", d as usize);
                return Ok(Value::Float(text.parse().unwrap_or(x)));
            }
            if d < -330 {
                return Ok(Value::Float(0.0 * x));
            }
            let unit = 10f64.powi((-d) as i32);
            Ok(Value::Float((x / unit).round_ties_even() * unit))
        }
    }
}

/// Rounds a half as the dialect does: up (`Math.round`) or to even.
fn round_half(x: f64, dialect: &Dialect) -> f64 {
    match dialect.round_halves {
        RoundHalves::Up => (x + 0.5).floor(),
        RoundHalves::ToEven => x.round_ties_even(),
    }
}

fn number(v: &Value, what: &str) -> Result<f64, Thrown> {
    match v {
        Value::Int(n) => Ok(*n as f64),
        Value::Float(x) => Ok(*x),
        other => Err(error(
            "TypeError",
            format!("{what}() needs a number, not {}", other.a_type()),
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
                format!("{} has no length", other.a_type()),
            ));
        }
    })
}

/// A method of a list, map or string; `None` if the receiver has no
/// built-in methods (a runtime handle's methods are the policy's).
pub fn call_method(vm: &Vm, receiver: &Value, name: &str, args: &[Value]) -> Option<NativeResult> {
    let flavor = vm.dialect.style;
    Some(match receiver {
        Value::List(xs) => list_method(xs, name, args, flavor),
        Value::Map(m) => map_method(m, name, args, flavor),
        Value::Str(s) => string_method(s, name, args, flavor),
        Value::Handle(_) => return None,
        Value::Error(e) => Err(error(
            "TypeError",
            format!(
                "an error ({}) has no method `{name}`; read its fields `kind` and `message`",
                e.kind
            ),
        )),
        other => Err(error(
            "TypeError",
            format!("{} has no method `{name}`", other.a_type()),
        )),
    })
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
            format!("{what} needs an integer, not {}", other.a_type()),
        )),
    }
}

/// `xs.push(items…)`: the list's length limit, and the heap budget when
/// the push makes the list grow its storage (the only time a push
/// allocates), then the items; the new length.
pub(super) fn push_onto(
    xs: &std::cell::RefCell<Vec<Value>>,
    items: impl ExactSizeIterator<Item = Value>,
) -> Result<usize, Thrown> {
    let mut list = xs.borrow_mut();
    let length = list.len() + items.len();
    if length > list.capacity() || length > MAX_LIST_LENGTH {
        check_list_size(length)?;
    }
    list.extend(items);
    Ok(list.len())
}

fn list_method(
    xs: &Rc<crate::value::ListCell>,
    name: &str,
    args: &[Value],
    flavor: Flavor,
) -> NativeResult {
    if !matches!(name, "len" | "push" | "pop") {
        // The others walk or move the whole list: one step per 4 items.
        crate::memory::charge_work(xs.borrow().len() as u64 / 4);
    }
    match name {
        "len" => ok(Value::Int(xs.borrow().len() as i64)),
        "push" => ok(Value::Int(push_onto(xs, args.iter().cloned())? as i64)),
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
            let at = index_arg(&arg(args, 0), list.len(), "insert")?;
            check_list_size(list.len() + 1)?;
            list.insert(at, arg(args, 1));
            ok(Value::Nil)
        }
        "contains" => ok(Value::Bool(
            xs.borrow().iter().any(|v| v.equals(&arg(args, 0))),
        )),
        "index_of" => ok(Value::Int(
            xs.borrow()
                .iter()
                .position(|v| v.equals(&arg(args, 0)))
                .map_or(-1, |i| i as i64),
        )),
        "join" => {
            let sep = match arg(args, 0) {
                Value::Str(s) => s.to_string(),
                Value::Nil => ",".into(),
                other => display(&other, flavor)?,
            };
            // The result's size is checked as it grows: never more than
            // the limit is asked for.
            let mut joined = String::new();
            for (i, v) in xs.borrow().iter().enumerate() {
                let sep = if i > 0 { sep.as_str() } else { "" };
                // A string item is its own text: no copy made first.
                let copied;
                let text = match v {
                    Value::Str(s) => {
                        check_memory(s.len())?;
                        s.as_str()
                    }
                    other => {
                        copied = display(other, flavor)?;
                        copied.as_str()
                    }
                };
                check_string_size(joined.len() + sep.len() + text.len())?;
                joined.push_str(sep);
                joined.push_str(text);
            }
            ok(Value::Str(Rc::new(joined)))
        }
        "slice" => {
            let list = xs.borrow();
            let start = index_arg(&arg(args, 0), list.len(), "slice")?;
            let end = index_arg(&arg(args, 1), list.len(), "slice")?;
            check_list_size(end.saturating_sub(start))?;
            ok(Value::list(list[start..end.max(start)].to_vec()))
        }
        "reverse" => {
            xs.borrow_mut().reverse();
            ok(Value::Nil)
        }
        // `sort(compare)` is the prelude's (see `Vm::prelude_method`).
        "sort" => {
            let mut list = xs.borrow().clone();
            check_sortable(&list)?;
            list.sort_by(total_order);
            *xs.borrow_mut() = list;
            ok(Value::Nil)
        }
        "map" | "filter" | "find" | "some" | "every" | "reduce" => Err(error(
            "TypeError",
            format!(
                "`{name}` of a list cannot be called from here: call it as `xs.{name}(f)` inside a function"
            ),
        )),
        "concat" => match arg(args, 0) {
            Value::List(other) => {
                check_list_size(xs.borrow().len() + other.borrow().len())?;
                let mut joined = xs.borrow().clone();
                joined.extend(other.borrow().iter().cloned());
                ok(Value::list(joined))
            }
            other => Err(error(
                "TypeError",
                format!("concat needs a list, not {}", other.a_type()),
            )),
        },
        "copy" => {
            check_list_size(xs.borrow().len())?;
            ok(Value::list(xs.borrow().clone()))
        }
        _ => Err(unknown_method("list", name, LIST_METHODS)),
    }
}

/// A list `sort()` can order: all numbers or all strings.
fn check_sortable(list: &[Value]) -> Result<(), Thrown> {
    let class = |v: &Value| match v {
        Value::Int(_) | Value::Float(_) => Some(0),
        Value::Str(_) => Some(1),
        _ => None,
    };
    let Some(first) = list.first() else {
        return Ok(());
    };
    let Some(odd) = list
        .iter()
        .find(|v| class(v).is_none() || class(v) != class(first))
    else {
        return Ok(());
    };
    let what = match class(odd) {
        None => format!("not {}", odd.a_type()),
        Some(_) => format!("not a mix ({} and {})", first.type_name(), odd.type_name()),
    };
    Err(error(
        "TypeError",
        format!(
            "sort() with no comparator sorts numbers or strings, {what}: pass one, as in xs.sort(fn(a, b) {{ return … }})"
        ),
    ))
}

/// `sort()`'s order, total so sorting never fails half-way: numbers by
/// value (an int and a float exactly), NaN after every number; strings by
/// code point.
fn total_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let float_int = |x: f64, n: i64| -> Ordering {
        if x.is_nan() {
            return Ordering::Greater;
        }
        match x.partial_cmp(&(n as f64)) {
            Some(Ordering::Equal) => (x as i128).cmp(&(n as i128)),
            Some(o) => o,
            None => Ordering::Greater,
        }
    };
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => match (x.is_nan(), y.is_nan()) {
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            // Two NaNs have no order: `partial_cmp` is `None`, so Equal.
            _ => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        },
        (Value::Float(x), Value::Int(n)) => float_int(*x, *n),
        (Value::Int(n), Value::Float(x)) => float_int(*x, *n).reverse(),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

fn map_method(
    m: &Rc<std::cell::RefCell<Map>>,
    name: &str,
    args: &[Value],
    _flavor: Flavor,
) -> NativeResult {
    let key = |i: usize| match arg(args, i) {
        Value::Str(s) => Ok(Rc::from(s.as_str())),
        other => Err(error(
            "TypeError",
            format!("map keys are strings, not {}", other.type_name()),
        )),
    };
    if matches!(name, "keys" | "values" | "copy") {
        // These walk the whole map: one step per 2 entries.
        crate::memory::charge_work(m.borrow().len() as u64 / 2);
    }
    match name {
        "len" => ok(Value::Int(m.borrow().len() as i64)),
        "keys" => {
            check_list_size(m.borrow().len())?;
            check_memory(m.borrow().len().saturating_mul(48))?;
            ok(Value::list(
                m.borrow().keys().map(crate::value::Key::to_value).collect(),
            ))
        }
        "values" => {
            check_list_size(m.borrow().len())?;
            ok(Value::list(m.borrow().values().cloned().collect()))
        }
        "contains" | "has" => ok(Value::Bool(m.borrow().get(&key(0)?).is_some())),
        "get" => ok(m
            .borrow()
            .get(&key(0)?)
            .cloned()
            .unwrap_or_else(|| arg(args, 1))),
        "set" => {
            super::ops::check_map_write()?;
            m.borrow_mut().set(&key(0)?, arg(args, 1));
            ok(Value::Nil)
        }
        "remove" => ok(m.borrow_mut().remove(&key(0)?).unwrap_or(Value::Nil)),
        "copy" => {
            check_memory(m.borrow().len().saturating_mul(64))?;
            ok(Value::map(m.borrow().clone()))
        }
        _ => Err(unknown_method(
            "map",
            name,
            "len keys values contains has get set remove copy",
        )),
    }
}

fn string_method(s: &str, name: &str, args: &[Value], flavor: Flavor) -> NativeResult {
    // Each walks the string: one step per 32 bytes.
    crate::memory::charge_work(s.len() as u64 / 32);
    let text = |i: usize| match arg(args, i) {
        Value::Str(t) => Ok(t),
        other => Err(error(
            "TypeError",
            format!("`{name}` needs a string, not {}", other.a_type()),
        )),
    };
    match name {
        "len" => ok(Value::Int(s.chars().count() as i64)),
        "upper" => ok(Value::str(&s.to_uppercase())),
        "lower" => ok(Value::str(&s.to_lowercase())),
        "trim" => ok(Value::str(s.trim())),
        "split" => {
            let parts: Vec<Value> = match arg(args, 0) {
                Value::Nil => {
                    let n = s.split_whitespace().count();
                    check_list_size(n)?;
                    check_memory(n.saturating_mul(56))?;
                    s.split_whitespace().map(Value::str).collect()
                }
                Value::Str(sep) if sep.is_empty() => {
                    // One string per character: ~16 bytes in the list and
                    // ~40 for each string.
                    let n = s.chars().count();
                    check_list_size(n)?;
                    check_memory(n.saturating_mul(56))?;
                    s.chars().map(|c| Value::str(&c.to_string())).collect()
                }
                Value::Str(sep) => {
                    let n = s.matches(sep.as_str()).count() + 1;
                    check_list_size(n)?;
                    check_memory(n.saturating_mul(56))?;
                    s.split(&*sep).map(Value::str).collect()
                }
                other => {
                    return Err(error(
                        "TypeError",
                        format!("split needs a string, not {}", other.a_type()),
                    ));
                }
            };
            ok(Value::list(parts))
        }
        "contains" => ok(Value::Bool(s.contains(&*text(0)?))),
        "starts_with" => ok(Value::Bool(s.starts_with(&*text(0)?))),
        "ends_with" => ok(Value::Bool(s.ends_with(&*text(0)?))),
        "replace" => {
            let (from, to) = (text(0)?, text(1)?);
            // The result's size, before building it: each match (an empty
            // pattern matches between every character) grows it by the
            // difference.
            let matches = s.matches(from.as_str()).count();
            let size = (s.len() - matches.saturating_mul(from.len()))
                .saturating_add(matches.saturating_mul(to.len()));
            check_string_size(size)?;
            ok(Value::str(&s.replace(&*from, &to)))
        }
        "index_of" => {
            let needle = text(0)?;
            ok(Value::Int(
                s.find(&*needle)
                    .map_or(-1, |b| s[..b].chars().count() as i64),
            ))
        }
        "slice" => {
            let chars: Vec<char> = s.chars().collect();
            let start = index_arg(&arg(args, 0), chars.len(), "slice")?;
            let end = index_arg(&arg(args, 1), chars.len(), "slice")?;
            ok(Value::str(
                &chars[start..end.max(start)].iter().collect::<String>(),
            ))
        }
        "repeat" => match arg(args, 0) {
            Value::Int(n) if n >= 0 => {
                // Too long is the string limit's (or the heap's) to say.
                let count = usize::try_from(n).unwrap_or(usize::MAX);
                check_string_size(s.len().saturating_mul(count))?;
                ok(Value::str(&s.repeat(count)))
            }
            other => Err(error(
                "ValueError",
                format!(
                    "repeat needs a whole count of 0 or more, not {}",
                    other.repr(flavor)
                ),
            )),
        },
        _ => Err(unknown_method("string", name, STRING_METHODS)),
    }
}
