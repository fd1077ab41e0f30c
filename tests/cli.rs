//! The `kftray` binary as a user meets it: exit codes, what goes to stdout and stderr, file
//! discovery, and the diagnostics of a file with one mistake of each kind.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::golden;

const KFTRAY: &str = env!("CARGO_BIN_EXE_kftray");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs kftray in `dir` with a fixed width and no colour unless the test asks for it.
fn kftray(dir: &Path, args: &[&str]) -> Output {
    Command::new(KFTRAY)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kftray")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_good_example_validates() {
    let out = kftray(&root(), &["validate", "examples/single-service.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "examples/single-service.toml: valid, 1 forward (1 enabled)\n"
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn every_problem_is_shown_with_its_place_label_and_help() {
    let out = kftray(&root(), &["validate", "tests/fixtures/many-problems.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    golden("many-problems.stderr", &text(&out.stderr));
}

#[test]
fn json_findings_carry_file_line_column_and_labels() {
    let out = kftray(
        &root(),
        &[
            "validate",
            "--format",
            "json",
            "tests/fixtures/many-problems.toml",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let summary: Vec<(String, u64, u64)> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
                f["column"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("kftray::version", 1, 11),
        ("kftray::namespace", 4, 13),
        ("kftray::unknown-key", 10, 1),
        ("kftray::port-conflict", 14, 14),
        ("kftray::alias", 17, 11),
        ("kftray::port-range", 19, 15),
        ("kftray::via", 23, 7),
        ("kftray::proxy", 27, 9),
        ("kftray::selector", 31, 32),
        ("kftray::not-loopback", 32, 17),
        ("kftray::duration", 37, 12),
    ];
    let expected: Vec<(String, u64, u64)> = expected
        .iter()
        .map(|(c, l, col)| (c.to_string(), *l, *col))
        .collect();
    assert_eq!(summary, expected);
    let conflict = &findings[3];
    assert_eq!(
        conflict["labels"].as_array().unwrap().len(),
        2,
        "both forwards labelled"
    );
    assert!(
        findings[2]["labels"][0]["text"]
            .as_str()
            .unwrap()
            .contains("did you mean `protocol`?")
    );
    for finding in findings.as_array().unwrap() {
        assert_eq!(finding["file"], "tests/fixtures/many-problems.toml");
        assert!(
            finding["help"].is_string(),
            "every finding has help: {finding}"
        );
    }
}

#[test]
fn a_valid_file_gives_an_empty_json_array() {
    let out = kftray(&root(), &["validate", "--format", "json", "kftray.toml"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "[]\n");
}

#[test]
fn the_file_is_found_in_a_parent_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("examples/single-service.toml"),
        dir.path().join("kftray.toml"),
    )
    .unwrap();
    let nested = dir.path().join("src/deep");
    std::fs::create_dir_all(&nested).unwrap();
    let out = kftray(&nested, &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("kftray.toml: valid"));

    // -f wins over discovery, and names the file in the findings.
    std::fs::write(nested.join("other.toml"), "[forwards.x]\n").unwrap();
    let out = kftray(&nested, &["-f", "other.toml", "validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("[other.toml:1:11]"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn no_file_anywhere_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = kftray(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("kftray init"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_local_overlay_is_applied_and_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("examples/git-sync.toml"),
        dir.path().join("kftray.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("kftray.local.toml"),
        "[forwards.web]\nlocal_port = 8080\n",
    )
    .unwrap();
    // web now collides with api (8080): labels in both files.
    let out = kftray(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("[kftray.toml:24:14]"), "{stderr}");
    assert!(stderr.contains("[kftray.local.toml:2:14]"), "{stderr}");
}

#[test]
fn config_prints_the_effective_forwards() {
    let out = kftray(
        &root(),
        &["-f", "examples/git-sync.toml", "config", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let effective: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let web = effective["forwards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "web")
        .unwrap();
    assert_eq!(web["local_port"], 13000, "the overlay's port");
    assert_eq!(web["context"], "dev-eu", "the overlay's default");
    assert_eq!(web["target"]["kind"], "service");
    assert_eq!(effective["sync"]["interval"], "2m");

    // -o/--output is the same option, as for `kftray status`.
    let again = kftray(
        &root(),
        &["-f", "examples/git-sync.toml", "config", "-o", "json"],
    );
    assert_eq!(again.stdout, out.stdout);

    let out = kftray(&root(), &["-f", "examples/git-sync.toml", "config"]);
    let table = text(&out.stdout);
    assert!(table.starts_with("NAME "), "{table}");
    assert!(table.contains("search (disabled)"), "{table}");
}

#[test]
fn schema_prints_the_checked_in_file() {
    let out = kftray(&root(), &["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let checked_in = std::fs::read_to_string(root().join("schema/kftray.schema.json")).unwrap();
    assert!(
        text(&out.stdout) == checked_in,
        "run `cargo run -- schema > schema/kftray.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&checked_in).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["definitions"]["ForwardSpec"]["properties"]["expose_to_network"].is_object());
}

#[test]
fn init_writes_a_valid_file_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = kftray(dir.path(), &["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(dir.path().join("kftray.toml")).unwrap();
    assert!(written.starts_with("#:schema https://"));
    assert!(written.contains("# One table per forward"));
    let out = kftray(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    std::fs::write(dir.path().join("kftray.toml"), "mine").unwrap();
    let out = kftray(dir.path(), &["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("kftray.toml")).unwrap(),
        "mine"
    );
}

#[test]
fn completions_man_page_and_version() {
    let out = kftray(&root(), &["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("validate"));
    let out = kftray(&root(), &["completions", "zsh"]);
    assert!(text(&out.stdout).contains("#compdef kftray"));
    let out = kftray(&root(), &["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH kftray"),
        "{page}"
    );
    assert!(page.contains("validate"));
    // The commit is the checkout's own, as git says it.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root())
        .output()
        .unwrap();
    let commit = text(&head.stdout).trim().to_string();
    let out = kftray(&root(), &["-V"]);
    assert_eq!(
        text(&out.stdout),
        format!("kftray {} ({commit})\n", env!("CARGO_PKG_VERSION"))
    );
    let long = text(&kftray(&root(), &["--version"]).stdout);
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(
        lines,
        [
            format!("kftray {} ({commit})", env!("CARGO_PKG_VERSION")).as_str(),
            &format!(
                "relay image: ghcr.io/kftray/kftray-relay:{}",
                env!("CARGO_PKG_VERSION")
            ),
            "relay protocol: 1",
            "state schema: 3",
        ]
    );
    let out = kftray(&root(), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_transport_that_does_not_exist_is_refused_before_anything_runs() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kftray"))
        .args(["validate", "tests/fixtures/many-problems.toml"])
        .current_dir(root())
        .env("KFTRAY_TRANSPORT", "http2")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = text(&out.stderr);
    assert!(
        said.contains("KFTRAY_TRANSPORT=\"http2\"") && said.contains("`websocket`"),
        "{said}"
    );
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let args = ["validate", "tests/fixtures/many-problems.toml"];
    // Not a terminal and NO_COLOR: plain.
    assert!(!text(&kftray(&root(), &args).stderr).contains('\x1b'));
    // --color always wins over NO_COLOR.
    let mut forced = vec!["--color", "always"];
    forced.extend(args);
    assert!(text(&kftray(&root(), &forced).stderr).contains('\x1b'));
    // auto on a pipe stays plain even without NO_COLOR.
    let out = Command::new(KFTRAY)
        .args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(!text(&out.stderr).contains('\x1b'));
}

#[test]
fn quiet_prints_nothing_on_success() {
    let out = kftray(&root(), &["-q", "validate", "kftray.toml"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "");
}
