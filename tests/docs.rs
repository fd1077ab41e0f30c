//! The documentation is tested: every example file and every TOML snippet of README.md is
//! validated, and the error output the README shows is what kftray prints.

use kftray::config;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `#:schema` line of a file must lead to the checked-in schema from where the file is.
fn assert_schema_line(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let first = text.lines().next().unwrap_or_default();
    let target = first
        .strip_prefix("#:schema ")
        .unwrap_or_else(|| panic!("{} must start with a #:schema line", path.display()));
    let schema = path.parent().unwrap().join(target);
    assert_eq!(
        schema.canonicalize().unwrap(),
        root()
            .join("schema/kftray.schema.json")
            .canonicalize()
            .unwrap(),
        "{}",
        path.display()
    );
}

#[test]
fn every_example_validates() {
    let mut checked = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".toml") {
            continue;
        }
        assert_schema_line(&path);
        if name.ends_with(".local.toml") {
            // An overlay is validated with the file it is laid over (below, by `load`).
            let base = path.with_file_name(name.replace(".local.toml", ".toml"));
            assert!(base.is_file(), "{name} overlays nothing");
            continue;
        }
        if let Err(d) = config::load(&path) {
            panic!("{name} is invalid:\n{}", d.render(false, 100));
        }
        checked += 1;
    }
    assert!(checked >= 5, "at least five examples, found {checked}");
}

#[test]
fn the_root_example_validates() {
    let path = root().join("kftray.toml");
    assert_schema_line(&path);
    let effective = config::load(&path).unwrap_or_else(|d| panic!("{}", d.render(false, 100)));
    assert!(effective.forwards.len() >= 3);
}

/// A fenced block of README.md: its info string and its text.
struct Block {
    info: String,
    text: String,
}

fn readme_blocks() -> Vec<Block> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for line in readme.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => {
                current = Some(Block {
                    info: info.trim().to_owned(),
                    text: String::new(),
                })
            }
            (Some(_), Some("")) => blocks.extend(current.take()),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "README.md has an unclosed code block");
    blocks
}

/// Rules: ```toml is a whole file and must be valid; ```toml overlay is laid over the previous
/// whole file and the pair must be valid; ```toml invalid=CODE,... must fail with exactly
/// those findings, and a ```text block right after it is what `kftray validate` prints.
#[test]
fn every_toml_snippet_of_the_readme_is_checked() {
    let blocks = readme_blocks();
    let mut last_whole: Option<String> = None;
    let mut checked = 0;
    for (i, block) in blocks.iter().enumerate() {
        let Some(rest) = block.info.strip_prefix("toml") else {
            continue;
        };
        let rest = rest.trim();
        checked += 1;
        if rest.is_empty() {
            if let Err(d) = config::load_str("kftray.toml", &block.text) {
                panic!(
                    "README snippet is invalid:\n{}\n{}",
                    block.text,
                    d.render(false, 100)
                );
            }
            last_whole = Some(block.text.clone());
        } else if rest == "overlay" {
            let base = last_whole.clone().expect("an overlay follows a whole file");
            let result = config::load_layers(vec![
                config::Layer::local("kftray.toml", base),
                config::Layer::local("kftray.local.toml", block.text.clone()),
            ]);
            if let Err(d) = result {
                panic!("README overlay is invalid:\n{}", d.render(false, 100));
            }
        } else if let Some(codes) = rest.strip_prefix("invalid=") {
            let d = config::load_str("kftray.toml", &block.text)
                .expect_err("a snippet marked invalid must fail");
            let found: Vec<&str> = d.findings().iter().map(|f| f.code.as_str()).collect();
            let expected: Vec<&str> = codes.split(',').collect();
            assert_eq!(found, expected, "{}", block.text);
            if let Some(next) = blocks.get(i + 1).filter(|b| b.info == "text") {
                assert_eq!(
                    validate_output(&block.text),
                    next.text,
                    "README's sample output"
                );
            }
        } else {
            panic!("unknown README toml block kind: {}", block.info);
        }
    }
    assert!(checked >= 5, "README has {checked} toml snippets");
}

fn validate_output(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kftray.toml"), text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kftray"))
        .arg("validate")
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_quick_start_has_exactly_the_two_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("## Quick start")
        .expect("a Quick start section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let commands: Vec<String> = section
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|b| b.lines().skip(1).collect::<Vec<_>>().join("\n"))
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    // The main job: the simulated cluster and `kftray up` on the demo example.
    assert_eq!(commands[0], "bash scripts/demo.sh");
    let demo = std::fs::read_to_string(root().join("scripts/demo.sh")).unwrap();
    assert!(demo.contains("examples/demo.toml up"), "{demo}");
    assert!(root().join("examples/demo.toml").is_file());
    assert_eq!(commands[1], "bash scripts/test.sh");
}
