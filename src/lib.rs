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
//! - `habits`: JavaScript and Python spellings, each told its looplab one
//! - `driver`: the pipeline end to end; `cli`: the command line
pub mod ast;
pub mod builtins;
pub mod bytecode;
pub mod cli;
pub mod compiler;
pub mod diagnostic;
pub mod driver;
pub mod habits;
pub mod lexer;
pub mod parser;
pub mod runtime;
pub mod value;
pub mod vm;
