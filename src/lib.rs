//! looplab: one program, several concurrency runtimes.
//!
//! Layout (one module per pipeline stage, named after what it produces;
//! ARCHITECTURE.md explains the seam between the VM and the policies):
//! - `lexer`: source → tokens (logos)
//! - `parser`: tokens → `ast` (chumsky)
//! - `compiler`: AST → `bytecode` (one `Function` per function body)
//! - `vm`: runs one unit for a slice and returns why it stopped (`Halt`);
//!   its built-in functions, operators and the `Dialect` it asks
//! - `runtime`: the `Policy` trait, the registry and the policies (`js`,
//!   `asyncio`); the clock, the event log, the chooser they share
//! - `value`: values and how they print; runtime objects are `Handle`s
//! - `diagnostic`: every error, rendered through one ariadne renderer
//! - `habits`: JavaScript and Python spellings, each told its looplab one
//! - `driver`: the pipeline end to end; `cli`: the command line
//! - `repl`: the interactive session (`looplab repl`), entry after entry
//! - `memory`: the heap budget (a counting global allocator)
//! - `golden`: golden-output tests of programs (`looplab test`, tests/golden.rs)
pub mod ast;
pub mod bytecode;
pub mod cli;
pub mod compiler;
pub mod diagnostic;
pub mod driver;
pub mod golden;
pub mod habits;
pub mod lexer;
pub mod memory;
pub mod parser;
pub mod repl;
pub mod runtime;
pub mod value;
pub mod vm;
