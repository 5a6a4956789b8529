//! What the language means under a runtime: the questions the VM asks
//! where JavaScript and Python disagree, answered by the policy.
//!
//! The VM never asks "which runtime is this?"; it asks "is an empty list
//! true?", "what is 1 / 0?", "which way does a half round?". Each policy
//! hands the VM one `Dialect` (`runtime::js::DIALECT`, `runtime::python::DIALECT`)
//! and a new policy picks one or defines its own.

use crate::value::Flavor;

#[derive(Debug)]
pub struct Dialect {
    /// How `print` shows values (Node's `console.log` or Python's `print`).
    pub style: Flavor,
    /// Are `[]` and `{}` true (JavaScript) or false (Python)?
    pub empty_containers_truthy: bool,
    /// `x / 0` and `x % 0`: IEEE results (`Infinity`, `NaN`) or a
    /// `ZeroDivisionError`.
    pub zero_division: ZeroDivision,
    /// The sign of `a % b`: the dividend's (JavaScript) or the divisor's
    /// (Python).
    pub modulo_sign: ModuloSign,
    /// `round(x)`: halves up (`Math.round`) or to even (Python's `round`).
    pub round_halves: RoundHalves,
    /// A field of a list or string that is not one of its methods.
    pub missing_field: MissingField,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingField {
    /// JavaScript: `.length` is the length (UTF-16 units for a string),
    /// anything else `undefined`.
    Undefined,
    /// Python: an `AttributeError`.
    AttributeError,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroDivision {
    Ieee,
    Raise,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuloSign {
    Dividend,
    Divisor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundHalves {
    Up,
    ToEven,
}

impl Dialect {
    /// Truthiness: `nil`, `false`, `0`, `""` are false everywhere; empty
    /// containers depend on the dialect.
    #[inline]
    pub fn truthy(&self, value: &crate::value::Value) -> bool {
        use crate::value::Value;
        match value {
            Value::Bool(b) => *b,
            Value::List(xs) if !self.empty_containers_truthy => !xs.borrow().is_empty(),
            Value::Map(m) if !self.empty_containers_truthy => !m.borrow().is_empty(),
            other => other.truthy_scalar(),
        }
    }
}
