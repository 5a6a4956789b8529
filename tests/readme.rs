//! Keeps README.md's and grammar/REFERENCE.md's examples real: every ```lab block whose first line is
//! `// NAME.lab` is written to a scratch directory, and every ```console
//! block's `$ looplab …` commands are run there; their output (stdout, then
//! stderr) must be exactly the lines that follow each command. The
//! newcomer's seed command must name a program that exists.

use std::path::Path;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md exists")
}

/// The fenced blocks of a markdown text: (info string, body).
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```") {
            let mut body = String::new();
            for inner in lines.by_ref() {
                if inner.starts_with("```") {
                    break;
                }
                body.push_str(inner);
                body.push('\n');
            }
            out.push((info.trim().to_string(), body));
        }
    }
    out
}

#[test]
fn readme_examples_print_what_they_show() {
    check_examples("README.md", 4);
}

#[test]
fn reference_examples_print_what_they_show() {
    check_examples("grammar/REFERENCE.md", 10);
}

/// Runs a markdown file's examples (see the module comment).
fn check_examples(file: &str, at_least: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(file)).expect("the document exists");
    let scratch = std::env::temp_dir().join(format!(
        "looplab-doc-{}-{}",
        std::process::id(),
        file.replace('/', "-")
    ));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let blocks = blocks(&text);
    for (info, body) in &blocks {
        if info == "lab"
            && let Some(name) = body.lines().next().and_then(|l| l.strip_prefix("// "))
        {
            std::fs::write(scratch.join(name.trim()), body).expect("write example");
        }
    }
    let mut checked = 0;
    for (_, body) in blocks.iter().filter(|(info, _)| info == "console") {
        let mut command: Option<String> = None;
        let mut expected = String::new();
        for line in body.lines().chain(std::iter::once("$ ")) {
            if let Some(next) = line.strip_prefix("$ ") {
                if let Some(cmd) = command.take() {
                    let actual = run(&scratch, &cmd);
                    assert_eq!(
                        actual, expected,
                        "{file}: example `{cmd}` prints something else"
                    );
                    checked += 1;
                }
                command = Some(next.to_string()).filter(|c| !c.trim().is_empty());
                expected.clear();
            } else {
                expected.push_str(line);
                expected.push('\n');
            }
        }
    }
    assert!(
        checked >= at_least,
        "{file}: expected at least {at_least} console examples, found {checked}"
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

fn run(dir: &Path, command: &str) -> String {
    let mut words = command.split_whitespace();
    assert_eq!(
        words.next(),
        Some("looplab"),
        "README commands start with `looplab`"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_looplab"))
        .current_dir(dir)
        .args(words)
        .env("NO_COLOR", "1")
        .output()
        .expect("run looplab");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

#[test]
fn readme_start_commands_name_real_things() {
    let text = readme();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seed = text
        .lines()
        .find_map(|l| l.strip_prefix("cargo run -- run "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("README has the seed command");
    assert!(
        root.join(seed).exists(),
        "README's seed example {seed} does not exist"
    );
    assert!(
        text.lines().any(|l| l.starts_with("cargo test ")),
        "README has the test command"
    );
    let ci = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run exists");
    assert!(
        ci.lines().any(|l| l.trim() == "cargo test"),
        ".ci/run runs the README's test command"
    );
}
