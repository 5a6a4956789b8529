//! Keeps README.md's and grammar/REFERENCE.md's examples real. Files come
//! from fenced blocks: a ```lab block whose first line is `// NAME.lab`
//! (NAME may contain `/`), or any block whose info string is a language
//! and a file name (```` ```text dir/NAME.out ````), is written under a
//! scratch directory. Then every ```console block's `$ looplab …` commands
//! run there: their output (stdout, then stderr) must be exactly the lines
//! that follow each command, and they must exit 0 unless the next line is
//! `$ echo $?`, whose output is the status the command must exit with. The
//! scratch directory is removed even when a check fails. The newcomer's
//! seed command must name a program that exists.

use std::path::{Path, PathBuf};
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

/// A scratch directory, removed when dropped (also when a test panics).
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "looplab-doc-{}-{}",
            std::process::id(),
            label.replace('/', "-")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn write(&self, name: &str, body: &str) {
        let name = name.trim();
        assert!(
            !name.starts_with('/') && !name.split('/').any(|part| part == ".."),
            "example file {name} must be a relative path inside the scratch directory"
        );
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("example subdirectory");
        }
        std::fs::write(path, body).expect("write example");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn readme_examples_print_what_they_show() {
    check_examples("README.md", 5);
}

#[test]
fn reference_examples_print_what_they_show() {
    check_examples("grammar/REFERENCE.md", 10);
}

/// One `$ looplab …` command of a console block and what it must do.
struct Example {
    command: String,
    output: String,
    status: i32,
}

/// The commands of a console block, with their output and exit status.
fn examples(body: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut lines = body.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "$ echo $?" {
            let status = lines.next().and_then(|l| l.trim().parse().ok());
            match (out.last_mut(), status) {
                (Some(last), Some(status)) => last.status = status,
                _ => panic!("`$ echo $?` must follow a command and be followed by a number"),
            }
        } else if let Some(command) = line.strip_prefix("$ ") {
            let mut output = String::new();
            while let Some(next) = lines.next_if(|l| !l.starts_with("$ ")) {
                output.push_str(next);
                output.push('\n');
            }
            out.push(Example {
                command: command.to_string(),
                output,
                status: 0,
            });
        }
    }
    out
}

/// Runs a markdown file's examples (see the module comment).
fn check_examples(file: &str, at_least: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(file)).expect("the document exists");
    let scratch = Scratch::new(file);
    let blocks = blocks(&text);
    for (info, body) in &blocks {
        let mut words = info.split_whitespace();
        let (language, name) = (words.next(), words.next());
        if let Some(name) = name {
            scratch.write(name, body);
        } else if language == Some("lab")
            && let Some(name) = body.lines().next().and_then(|l| l.strip_prefix("// "))
        {
            scratch.write(name, body);
        }
    }
    let mut checked = 0;
    for (_, body) in blocks.iter().filter(|(info, _)| info == "console") {
        for example in examples(body) {
            let (output, status) = run(&scratch.0, &example.command);
            assert_eq!(
                output, example.output,
                "{file}: example `{}` prints something else",
                example.command
            );
            assert_eq!(
                status,
                Some(example.status),
                "{file}: example `{}` exits with another status{}",
                example.command,
                if example.status == 0 {
                    " (show a non-zero one with `$ echo $?` after the command)"
                } else {
                    ""
                }
            );
            checked += 1;
        }
    }
    assert!(
        checked >= at_least,
        "{file}: expected at least {at_least} console examples, found {checked}"
    );
}

/// Runs a `looplab …` command in `dir`: its stdout then stderr, and status.
fn run(dir: &Path, command: &str) -> (String, Option<i32>) {
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
        .env_remove("CI")
        .output()
        .expect("run looplab");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (text, output.status.code())
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
