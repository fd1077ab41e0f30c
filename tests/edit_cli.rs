//! `kftray import`, `export`, `add` and `rm` as a user runs them: golden files show that the
//! file's comments and layout survive every edit, conflicts and bad input change nothing.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::golden;

const KFTRAY: &str = env!("CARGO_BIN_EXE_kftray");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// A folder holding a copy of the commented fixture as kftray.toml.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("commented.toml"), dir.path().join("kftray.toml")).unwrap();
    dir
}

fn kftray(dir: &Path, args: &[&str]) -> Output {
    Command::new(KFTRAY)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env("HOME", dir)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kftray")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn file(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("kftray.toml")).unwrap()
}

/// Every line of the original is still there, in order: nothing was reformatted.
fn keeps_every_line(before: &str, after: &str) {
    let mut rest = after.lines();
    for line in before.lines() {
        assert!(
            rest.any(|l| l == line),
            "line {line:?} of the original is gone or moved:\n{after}"
        );
    }
}

fn valid(dir: &Path) {
    let out = kftray(dir, &["validate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn import_appends_and_keeps_comments_and_layout() {
    let dir = project();
    let input = fixture("kftray-export.json");
    let out = kftray(dir.path(), &["import", input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "added consul-ui\nadded auth-api-pod\nadded redis-gcp\nwrote kftray.toml\n"
    );
    let after = file(dir.path());
    keeps_every_line(
        &std::fs::read_to_string(fixture("commented.toml")).unwrap(),
        &after,
    );
    golden("import.toml", &after);
    valid(dir.path());

    // Again: everything is already there, and the file does not change.
    let again = kftray(dir.path(), &["import", input.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("unchanged consul-ui (already there)"));
    assert_eq!(file(dir.path()), after);
}

#[test]
fn add_and_rm_touch_only_their_forward() {
    let dir = project();
    let original = file(dir.path());
    let out = kftray(
        dir.path(),
        &[
            "add",
            "cache",
            "--selector",
            "app=cache,tier!=canary",
            "-p",
            "6379",
            "-p",
            "any:admin",
            "--tag",
            "backend",
            "--description",
            "Redis, for sessions",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "added cache to kftray.toml\nwrote kftray.toml\n"
    );
    let added = file(dir.path());
    keeps_every_line(&original, &added);
    golden("add.toml", &added);
    valid(dir.path());

    let out = kftray(dir.path(), &["rm", "orders"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let removed = file(dir.path());
    golden("rm.toml", &removed);
    valid(dir.path());

    // Removing what was added gives back the file minus `orders`, byte for byte.
    let out = kftray(dir.path(), &["remove", "cache"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let start = original.find("# Orders, with its metrics.").unwrap();
    let end = original
        .find("# A database only the cluster reaches.")
        .unwrap();
    let expected = format!("{}{}", &original[..start], &original[end..]);
    assert_eq!(file(dir.path()), expected);
}

#[test]
fn conflicts_are_shown_as_a_diff_and_nothing_is_written() {
    let dir = project();
    let original = file(dir.path());
    let input = fixture("kftray-conflicts.json");
    let out = kftray(dir.path(), &["import", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    golden("import-conflicts.stderr", &text(&out.stderr));
    assert_eq!(file(dir.path()), original);

    // --dry-run shows what --rename would do, as a diff, and writes nothing.
    let out = kftray(
        dir.path(),
        &["import", "--rename", "--dry-run", input.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    golden("import-rename.diff", &text(&out.stdout));
    assert_eq!(file(dir.path()), original);

    // --force: `web` is replaced in place, `orders` (on 9090) gives way to `admin`.
    let out = kftray(dir.path(), &["import", "--force", input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "replaced web\nreplaced admin, and removed orders (on the same local port)\nwrote kftray.toml\n"
    );
    let after = file(dir.path());
    assert!(after.contains("# The storefront: http://127.0.0.1:8080\n[forwards.web]\nservice = \"frontend\"\nlocal_port = 8088\nremote_port = 80 # the service port, not the pod's\n"), "{after}");
    assert!(!after.contains("[forwards.orders]"), "{after}");
    valid(dir.path());
}

#[test]
fn bad_json_is_reported_at_its_lines_and_columns() {
    let dir = project();
    let original = file(dir.path());
    let input = fixture("kftray-bad.json");
    let out = kftray(dir.path(), &["import", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr).replace(input.to_str().unwrap(), "kftray-bad.json");
    golden("import-bad-json.stderr", &stderr);
    assert_eq!(file(dir.path()), original);
}

#[test]
fn export_gives_json_the_kftray_app_imports_and_back_again() {
    let dir = project();
    let out = kftray(dir.path(), &["export"]);
    // `orders` targets a deployment, which kftray's JSON cannot say.
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("orders: kftray's JSON has no deployment target"));
    assert_eq!(text(&out.stdout), "");

    let out = kftray(dir.path(), &["export", "--skip-unsupported"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = text(&out.stdout);
    golden("export.json", &json);
    assert!(text(&out.stderr).contains("warning: left out orders"));

    // Into an empty project and out again: the same JSON.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("in.json"), &json).unwrap();
    let out = kftray(other.path(), &["import", "in.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let text_file = file(other.path());
    assert!(text_file.starts_with("#:schema "), "{text_file}");
    let out = kftray(other.path(), &["export"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), json);

    // As TOML: one self-contained file with every default applied.
    let out = kftray(dir.path(), &["export", "-o", "toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    golden("export.toml", &text(&out.stdout));
    std::fs::write(other.path().join("kftray.toml"), &out.stdout).unwrap();
    valid(other.path());
}

#[test]
fn edits_that_would_break_the_file_write_nothing() {
    let dir = project();
    let original = file(dir.path());
    // Taken alias.
    let out = kftray(
        dir.path(),
        &["add", "web", "--service", "x", "-p", "1234:80"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("already has a forward `web`; --force replaces it"));
    // Taken port: the report points at both forwards in the edited text.
    let out = kftray(
        dir.path(),
        &["add", "api", "--service", "api", "-p", "8080:80"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`api` and `web` both listen on 127.0.0.1:8080/tcp"),
        "{stderr}"
    );
    // Bad selector.
    let out = kftray(
        dir.path(),
        &["add", "x", "--selector", "app in (a", "-p", "1:1"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("kftray::selector"),
        "{}",
        text(&out.stderr)
    );
    // Unknown alias for rm, with a suggestion.
    let out = kftray(dir.path(), &["rm", "odrers"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("did you mean `orders`?"));
    assert_eq!(file(dir.path()), original);
    // --force replaces in place.
    let out = kftray(
        dir.path(),
        &[
            "add",
            "web",
            "--service",
            "storefront",
            "-p",
            "8000:80",
            "--force",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(file(dir.path()).contains("[forwards.web]\nservice = \"storefront\"\nlocal_port = 8000\nremote_port = 80 # the service port, not the pod's\n"));
}

#[test]
fn a_new_project_gets_a_file_with_the_schema_line_and_local_edits_go_local() {
    let dir = tempfile::tempdir().unwrap();
    let out = kftray(
        dir.path(),
        &[
            "add",
            "web",
            "--service",
            "web",
            "-p",
            "8080:80",
            "-n",
            "shop",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let text_file = file(dir.path());
    assert!(text_file.starts_with("#:schema https://"), "{text_file}");
    valid(dir.path());
    let out = kftray(
        dir.path(),
        &["add", "mine", "--pod", "debug-0", "-p", "4000", "--local"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(file(dir.path()), text_file);
    let local = std::fs::read_to_string(dir.path().join("kftray.local.toml")).unwrap();
    assert_eq!(
        local,
        "[forwards.mine]\npod = \"debug-0\"\nremote_port = 4000\n"
    );
    // rm finds it in the overlay.
    let out = kftray(dir.path(), &["rm", "mine"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "removed mine from kftray.local.toml\nwrote kftray.local.toml\n"
    );
}

#[test]
fn stdin_is_read_with_a_dash() {
    use std::io::Write;
    let dir = project();
    let mut child = Command::new(KFTRAY)
        .args(["import", "-", "--dry-run"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"alias": "x", "workload_type": "service", "service": "x", "namespace": "shop", "remote_port": 81}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    assert!(
        diff.contains(
            "+[forwards.x]\n+service = \"x\"\n+local_port = \"any\"\n+remote_port = 81\n"
        ),
        "{diff}"
    );
}

#[test]
fn exposes_are_imported_and_exported_as_kftrays_expose_entries() {
    let dir = project();
    let original = file(dir.path());
    let json = std::fs::read_to_string(fixture("kftray-exposes.json")).unwrap();
    std::fs::write(dir.path().join("in.json"), &json).unwrap();
    let out = kftray(dir.path(), &["import", "in.json", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("+[exposes.webhook]\n+local_port = 3000\n"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(file(dir.path()), original);

    let out = kftray(dir.path(), &["import", "in.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "added expose.webhook\nadded expose.hook\nwrote kftray.toml\n"
    );
    let after = file(dir.path());
    keeps_every_line(&original, &after);
    // `namespace` is the file's default, and left out.
    assert!(
        after.ends_with(
            "\n[exposes.webhook]\nlocal_port = 3000\n\n[exposes.hook]\nlocal_port = 8080\n\
             ingress = { host = \"hook.dev.example.com\", class = \"nginx\", annotations = { \
             \"nginx.ingress.kubernetes.io/proxy-body-size\" = \"10m\" }, cert_issuer = \
             \"letsencrypt-prod\" }\n"
        ),
        "{after}"
    );
    valid(dir.path());
    let again = kftray(dir.path(), &["import", "in.json"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("unchanged expose.webhook (already there)"));
    assert_eq!(file(dir.path()), after);

    // Another local port for `webhook` is a conflict, reported under the name `status` uses.
    std::fs::write(dir.path().join("in.json"), json.replace("3000", "3001")).unwrap();
    let out = kftray(dir.path(), &["import", "in.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`expose.webhook` is already in kftray.toml, with other settings:\n")
            && stderr.contains("    - local_port = 3000\n    + local_port = 3001\n"),
        "{stderr}"
    );
    assert_eq!(file(dir.path()), after);

    // Out again as kftray writes them (its defaults said), beside the file's forwards.
    let out = kftray(dir.path(), &["export", "--skip-unsupported"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exported: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let exposes: Vec<&serde_json::Value> = exported
        .iter()
        .filter(|c| c["workload_type"] == "expose")
        .collect();
    assert_eq!(
        exposes,
        [
            &serde_json::json!({"alias": "hook.dev.example.com", "cert_issuer": "letsencrypt-prod",
             "cert_issuer_kind": "ClusterIssuer", "cert_manager_enabled": true,
             "context": "staging", "exposure_type": "public",
             "ingress_annotations": "{\"nginx.ingress.kubernetes.io/proxy-body-size\":\"10m\"}",
             "ingress_class": "nginx", "local_port": 8080, "namespace": "shop",
             "protocol": "tcp", "workload_type": "expose"}),
            &serde_json::json!({"alias": "webhook", "context": "staging",
             "exposure_type": "cluster", "local_port": 3000, "namespace": "shop",
             "protocol": "tcp", "workload_type": "expose"}),
        ]
    );

    // A Service port kftray's expose cannot have is refused by name.
    let edited = after.replace(
        "[exposes.webhook]\nlocal_port = 3000\n",
        "[exposes.webhook]\nlocal_port = 3000\nport = 80\n",
    );
    std::fs::write(dir.path().join("kftray.toml"), edited).unwrap();
    let out = kftray(dir.path(), &["export"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(
            "expose.webhook: kftray's expose has one port, the local server's and the \
             Service's, and this Service's port 80 is not local_port 3000"
        ),
        "{}",
        text(&out.stderr)
    );
}
