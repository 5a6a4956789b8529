//! The operators and element access the VM executes: arithmetic and
//! comparison (slow paths; the integer fast paths are in the dispatch
//! loop), indexing, fields. Where JavaScript and Python disagree, the
//! dialect answers. Errors are `Thrown`, like every error in the VM.

use super::Thrown;
use super::dialect::{Dialect, MissingField, ModuloSign, ZeroDivision};
use crate::bytecode::Op;
use crate::value::{Native, Value};
use std::rc::Rc;

/// The longest string a program may build (bytes): past it, a MemoryError
/// rather than an allocation the machine cannot make.
pub const MAX_STRING_BYTES: usize = crate::value::MAX_TEXT_BYTES;
/// The longest list a program may build.
pub const MAX_LIST_LENGTH: usize = 1 << 26;

pub fn check_string_size(bytes: usize) -> Result<(), Thrown> {
    check_string_limit(bytes)?;
    check_memory(bytes)
}

/// A MemoryError if a string of `bytes` would pass looplab's limit on one
/// string (whatever the heap's budget).
pub fn check_string_limit(bytes: usize) -> Result<(), Thrown> {
    if bytes > MAX_STRING_BYTES {
        return Err(error(
            "MemoryError",
            format!("a string of {bytes} bytes is over looplab's limit of {MAX_STRING_BYTES}"),
        ));
    }
    Ok(())
}

/// A MemoryError if growing the heap by `bytes` would pass the heap
/// budget (`--max-memory`; see `crate::memory`). Growth under 64 KiB is
/// always allowed (a handler can still print its message); the heap's
/// steady growth by small steps is caught by `check_map_write` and the
/// policies' checks between slices.
pub fn check_memory(bytes: usize) -> Result<(), Thrown> {
    if bytes < 1 << 16 {
        return Ok(());
    }
    crate::memory::check(bytes).map_err(|message| error("MemoryError", message))
}

/// A MemoryError if the heap is over its budget already, before a map
/// write (which `memory` counts as work on a big heap).
pub fn check_map_write() -> Result<(), Thrown> {
    crate::memory::check_map_write().map_err(|message| error("MemoryError", message))
}

/// `value.display(flavor)`, or a MemoryError when the text would be too long.
pub fn display(value: &Value, flavor: crate::value::Flavor) -> Result<String, Thrown> {
    let text = value.display_checked(flavor).map_err(|bytes| {
        check_string_size(bytes).err().unwrap_or_else(|| {
            error(
                "MemoryError",
                format!("a text of {bytes} bytes is too long"),
            )
        })
    })?;
    check_memory(text.len())?;
    Ok(text)
}

/// The heap budget's check before `buffer` grows to hold `needed` bytes:
/// it grows only when it must, by what it grows to (`String` at least
/// doubles) less what it had.
#[inline]
pub fn check_growth(buffer: &String, needed: usize) -> Result<(), Thrown> {
    check_string_limit(needed)?;
    if needed > buffer.capacity() {
        let capacity = buffer.capacity();
        check_memory(needed.max(2 * capacity) - capacity)?;
    }
    Ok(())
}

/// `a + b` of two texts the caller owns: a text nobody else holds (a
/// temporary, such as the `str(i)` of `"k" + str(i)`) takes the other in
/// place, as CPython's `+` does for a string only the expression holds;
/// else a new text.
pub fn add_texts(mut a: Rc<String>, mut b: Rc<String>) -> Result<Value, Thrown> {
    let needed = a.len() + b.len();
    if Rc::weak_count(&a) == 0
        && let Some(buffer) = Rc::get_mut(&mut a)
    {
        check_growth(buffer, needed)?;
        buffer.push_str(&b);
        return Ok(Value::Str(a));
    }
    if Rc::weak_count(&b) == 0
        && let Some(buffer) = Rc::get_mut(&mut b)
        && buffer.capacity() >= needed
    {
        check_string_limit(needed)?;
        buffer.insert_str(0, &a);
        return Ok(Value::Str(b));
    }
    joined_text(&a, &b)
}

/// `a + b` of two texts: one allocation of the exact size, after the
/// size check and the heap budget's.
fn joined_text(a: &str, b: &str) -> Result<Value, Thrown> {
    check_string_size(a.len() + b.len())?;
    let mut text = String::with_capacity(a.len() + b.len());
    text.push_str(a);
    text.push_str(b);
    Ok(Value::Str(std::rc::Rc::new(text)))
}

pub fn check_list_size(length: usize) -> Result<(), Thrown> {
    if length > MAX_LIST_LENGTH {
        return Err(error(
            "MemoryError",
            format!("a list of {length} items is over looplab's limit of {MAX_LIST_LENGTH}"),
        ));
    }
    check_memory(length.saturating_mul(std::mem::size_of::<Value>()))
}

pub(crate) fn error(kind: &str, message: String) -> Thrown {
    Thrown::new(Value::error(kind, &message))
}

/// The methods of lists and strings (for field access and error messages).
pub const LIST_METHODS: &str = "len push pop shift insert contains index_of join slice reverse sort concat copy map filter find some every reduce";
pub const STRING_METHODS: &str =
    "len upper lower trim split contains starts_with ends_with replace index_of slice repeat";

/// Is `name` a method of this list or string?
pub fn has_method(receiver: &Value, name: &str) -> bool {
    let known = match receiver {
        Value::List(_) => LIST_METHODS,
        Value::Str(_) => STRING_METHODS,
        _ => return true,
    };
    known.split(' ').any(|m| m == name)
}

pub fn get_field(object: &Value, name: &str, dialect: &Dialect) -> Result<Value, Thrown> {
    match object {
        Value::List(_) | Value::Str(_) if !has_method(object, name) => {
            match (dialect.missing_field, object) {
                (MissingField::Undefined, Value::List(xs)) if name == "length" => {
                    Ok(Value::Int(xs.borrow().len() as i64))
                }
                (MissingField::Undefined, Value::Str(s)) if name == "length" => {
                    Ok(Value::Int(s.encode_utf16().count() as i64))
                }
                (MissingField::Undefined, _) => Ok(Value::Nil),
                (MissingField::AttributeError, _) => Err(error(
                    "AttributeError",
                    format!(
                        "'{}' object has no attribute '{name}'",
                        if matches!(object, Value::List(_)) {
                            "list"
                        } else {
                            "str"
                        }
                    ),
                )),
            }
        }
        Value::Map(m) => Ok(m.borrow().get(name).cloned().unwrap_or(Value::Nil)),
        Value::Error(e) => match name {
            "message" => Ok(Value::str(&e.message)),
            "kind" => Ok(Value::str(&e.kind)),
            "errors" => Ok(e.errors.clone()),
            _ => Ok(Value::Nil),
        },
        Value::List(_) | Value::Str(_) | Value::Handle(_) => {
            Ok(Value::Native(Rc::new(Native::Method {
                receiver: object.clone(),
                name: Rc::from(name),
            })))
        }
        Value::Nil => Err(error(
            "TypeError",
            format!("cannot read field `{name}` of nil"),
        )),
        other => Err(error(
            "TypeError",
            format!("{} has no field `{name}`", other.a_type()),
        )),
    }
}

pub fn index(object: &Value, index: &Value, dialect: &Dialect) -> Result<Value, Thrown> {
    let flavor = dialect.style;
    match (object, index) {
        (Value::List(xs), Value::Int(i)) => {
            let list = xs.borrow();
            let at = if *i < 0 { *i + list.len() as i64 } else { *i };
            list.get(at as usize)
                .filter(|_| at >= 0)
                .cloned()
                .ok_or_else(|| {
                    error(
                        "IndexError",
                        format!(
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
                return Err(error(
                    "IndexError",
                    format!("index {i} is out of range for a string of length {len}"),
                ));
            }
            Ok(Value::str(
                &s.chars()
                    .nth(at as usize)
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            ))
        }
        (Value::Map(_), other) => Err(error(
            "TypeError",
            format!("map keys are strings, not {}", other.repr(flavor)),
        )),
        (target, other) => Err(error(
            "TypeError",
            format!(
                "cannot index {} with {}",
                target.a_type(),
                other.repr(flavor)
            ),
        )),
    }
}

pub fn set_index(object: &Value, index: &Value, value: Value) -> Result<(), Thrown> {
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
                None => Err(error(
                    "IndexError",
                    format!("index {i} is out of range for a list of length {len}"),
                )),
            }
        }
        (Value::Map(m), Value::Str(k)) => {
            check_map_write()?;
            m.borrow_mut().set(k, value);
            Ok(())
        }
        (Value::Map(_), other) => Err(error(
            "TypeError",
            format!(
                "map keys are strings, not {}",
                other.repr(crate::value::Flavor::Js)
            ),
        )),
        (Value::Str(_), _) => Err(error(
            "TypeError",
            "strings cannot be changed; build a new one with `+` or slice()".into(),
        )),
        (target, other) => Err(error(
            "TypeError",
            format!(
                "cannot set an element of {} at {}",
                target.a_type(),
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
                format!("cannot compare {} with {}", a.a_type(), b.a_type()),
            ));
        }
    })
}

/// The order `sort()` uses: `compare`, made total — NaN sorts after every
/// other number (and equal to itself), so a list holding NaN sorts, and
/// the order stays consistent (Rust's sort requires it).
pub fn sort_order(a: &Value, b: &Value) -> Result<std::cmp::Ordering, Thrown> {
    let nan = |v: &Value| matches!(v, Value::Float(x) if x.is_nan());
    match (nan(a), nan(b)) {
        (false, false) => compare(a, b),
        (true, true) => Ok(std::cmp::Ordering::Equal),
        (a_nan, _) => {
            // Still a type error against a non-number.
            compare(a, b)?;
            Ok(if a_nan {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Less
            })
        }
    }
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Int(n) => *n as f64,
        Value::Float(x) => *x,
        _ => f64::NAN,
    }
}

/// Binary operators other than the VM's integer fast paths.
pub fn binary(op: Op, left: &Value, right: &Value, dialect: &Dialect) -> Result<Value, Thrown> {
    let flavor = dialect.style;
    let ieee = dialect.zero_division == ZeroDivision::Ieee;
    let divisor_sign = dialect.modulo_sign == ModuloSign::Divisor;
    let overflow = |sym: &str| error("OverflowError", format!("integer overflow in `{sym}`"));
    let mismatch = |sym: &str| {
        error(
            "TypeError",
            format!(
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
            let ord = compare(left, right)?;
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
                    if b == 0 && ieee {
                        Ok(Value::Float(a as f64 / 0.0))
                    } else if b == 0 {
                        Err(error("ZeroDivisionError", "division by zero".into()))
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
                    if b == 0 && ieee {
                        return Ok(Value::Float(f64::NAN));
                    }
                    if b == 0 {
                        return Err(error("ZeroDivisionError", "modulo by zero".into()));
                    }
                    // i64::MIN % -1 overflows in Rust; mathematically it is 0.
                    let r = a.checked_rem(b).unwrap_or(0);
                    // Python's result takes the divisor's sign; JavaScript's the dividend's.
                    Ok(Value::Int(
                        if divisor_sign && r != 0 && (r < 0) != (b < 0) {
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
                Op::Div if b == 0.0 && !ieee => {
                    Err(error("ZeroDivisionError", "division by zero".into()))
                }
                Op::Div => Ok(Value::Float(a / b)),
                Op::Mod if b == 0.0 && !ieee => {
                    Err(error("ZeroDivisionError", "modulo by zero".into()))
                }
                Op::Mod => {
                    let r = a % b;
                    Ok(Value::Float(
                        if divisor_sign && r != 0.0 && (r < 0.0) != (b < 0.0) {
                            r + b
                        } else {
                            r
                        },
                    ))
                }
                _ => Err(mismatch("?")),
            }
        }
        (Value::Str(a), Value::Str(b)) if op == Op::Add => joined_text(a, b),
        (Value::Str(a), b) if op == Op::Add => joined_text(a, &display(b, flavor)?),
        (a, Value::Str(b)) if op == Op::Add => joined_text(&display(a, flavor)?, b),
        (Value::List(a), Value::List(b)) if op == Op::Add => {
            check_list_size(a.borrow().len() + b.borrow().len())?;
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
