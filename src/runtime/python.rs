//! What the language means under a Python runtime (asyncio today; threads
//! and process later): Python's answers to the questions the VM asks.

use crate::value::Flavor;
use crate::vm::{Dialect, MissingField, ModuloSign, RoundHalves, ZeroDivision};

pub const DIALECT: Dialect = Dialect {
    style: Flavor::Python,
    empty_containers_truthy: false,
    zero_division: ZeroDivision::Raise,
    modulo_sign: ModuloSign::Divisor,
    round_halves: RoundHalves::ToEven,
    missing_field: MissingField::AttributeError,
};
