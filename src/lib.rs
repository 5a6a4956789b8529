//! looplab: one program, several concurrency runtimes.
//!
//! Layout (one module per pipeline stage, named after what it produces):
//! - `lexer`: source → tokens (logos)
//! - `parser`: tokens → `ast` (chumsky)
//! - `compiler`: AST → `bytecode` (one `Function` per function body)
//! - `vm`: runs fibers of bytecode; returns why it stopped
//! - `runtime`: the `Policy` trait and the policies (`js`, `asyncio`)
//! - `value`, `builtins`: values, their display, built-in functions
//! - `diagnostic`: every error, rendered through one ariadne renderer
//! - `driver`: the pipeline end to end; `cli`: the command line
//! - `golden`: golden-output tests of programs (`looplab test`, tests/golden.rs)
pub mod ast;
pub mod bytecode;
pub mod cli;
pub mod compiler;
pub mod diagnostic;
pub mod driver;
pub mod golden;
pub mod lexer;
pub mod parser;
pub mod runtime;
pub mod value;
pub mod vm;
