//! Golden tests: every `programs/**/NAME.lab` runs under each policy it is
//! meant for, and its stdout, stderr and exit status must match
//! `NAME.<policy>.out` or, when all policies agree, `NAME.out`. Where a
//! JavaScript or Python twin was recorded (`NAME.node.out`,
//! `NAME.python.out`), looplab's js / asyncio stdout and exit status must
//! match the real runtime's too. A program with a `// skip: REASON` header
//! (the benchmarks in `programs/bench`) is listed as ignored with its reason.
//!
//! The discovery, headers, expected files, limits and twin checks are
//! `looplab::golden`'s, the same code `looplab test` runs; this file only
//! hands its cases to libtest-mimic. `BLESS=1 cargo test` rewrites the
//! looplab expectations (never the recorded twin outputs), and refuses when
//! `CI` is set. Conventions: `programs/CONVENTIONS.md`.

use libtest_mimic::{Arguments, Completion, Trial};
use looplab::golden::{self, Limits, Selection, Verdict};
use std::path::{Path, PathBuf};

const BLESS_HINT: &str = "BLESS=1 cargo test";

fn main() {
    let args = Arguments::from_args();
    // Programs are named relative to the repository root, as `looplab test
    // programs/` from there names them (error messages show these paths).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Err(e) = std::env::set_current_dir(root) {
        eprintln!("golden: cannot enter {}: {e}", root.display());
        std::process::exit(1);
    }
    let found = match golden::discover(&[PathBuf::from("programs")]) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("golden: {e}");
            std::process::exit(1);
        }
    };
    let cases = golden::plan(&found, &Selection::default(), looplab::cli::header_flags).cases;
    let limits = Limits::default();
    if std::env::var_os("BLESS").is_some() {
        bless(&cases, &limits);
    }
    let trials = cases
        .into_iter()
        .map(|case| {
            Trial::ignorable_test(case.name.clone(), move || {
                let result = golden::check(&case, &limits);
                match &result.verdict {
                    Verdict::Pass => Ok(Completion::Completed),
                    Verdict::Skip(reason) => Ok(Completion::ignored_with(reason)),
                    _ => Err(golden::describe(&result, false, BLESS_HINT).into()),
                }
            })
        })
        .collect();
    // `exit` also ends any run abandoned after its wall-clock limit.
    libtest_mimic::run(&args, trials).exit();
}

/// `BLESS=1`: rewrite the expected files first (then the trials check them).
fn bless(cases: &[golden::Case], limits: &Limits) {
    if golden::in_ci() {
        eprintln!(
            "golden: BLESS is set but so is CI: refusing to rewrite expected files in CI \
             (bless locally, review the diff, commit it)"
        );
        std::process::exit(1);
    }
    let jobs = std::thread::available_parallelism().map_or(1, usize::from);
    let results = golden::run_all(cases, limits, jobs, |_, _| {});
    match golden::bless(cases, &results) {
        Ok(changes) => {
            for change in changes {
                eprintln!("golden: blessed: {change}");
            }
        }
        Err(e) => {
            eprintln!("golden: {e}");
            std::process::exit(1);
        }
    }
}
