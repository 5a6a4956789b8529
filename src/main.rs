//! The `looplab` binary: parses the command line and runs it on a thread
//! with a large stack (parsing and printing deeply nested input recurse).

use clap::Parser;

fn main() {
    let cli = match looplab::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Help, version, or a usage error (status 2).
        Err(e) => std::process::exit(looplab::cli::report_clap(&e)),
    };
    let worker = std::thread::Builder::new()
        .stack_size(512 * 1024 * 1024)
        .spawn(move || looplab::cli::main_with(cli));
    let status = match worker.map(|handle| handle.join()) {
        Ok(Ok(status)) => status,
        _ => {
            eprintln!("looplab: internal error (please report it with the program that caused it)");
            3
        }
    };
    std::process::exit(status);
}
