//! The `looplab` binary: parses the command line and runs it on a thread
//! with a large stack (parsing and printing deeply nested input recurse).
//! Ctrl-C (SIGINT) asks the run to stop: the handler only sets a flag the
//! policies check between slices and events (`runtime::interrupt`); a
//! second Ctrl-C ends the process at once.

use clap::Parser;

extern "C" fn on_sigint(_: libc::c_int) {
    if looplab::runtime::interrupt() {
        // The first one was not heeded: stop now (only async-signal-safe calls).
        // SAFETY: `_exit` is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

fn main() {
    let cli = match looplab::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Help, version, or a usage error (status 2).
        Err(e) => std::process::exit(looplab::cli::report_clap(&e)),
    };
    // The REPL handles Ctrl-C itself (it cancels an entry, never the
    // session); every other command stops on it.
    if !matches!(cli.command, None | Some(looplab::cli::Command::Repl(_))) {
        let handler: extern "C" fn(libc::c_int) = on_sigint;
        // SAFETY: installing a handler that only touches atomics and `_exit`.
        unsafe {
            libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        }
    }
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
