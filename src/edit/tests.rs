use super::merge::{Conflict, OnConflict, Options, Outcome, merge};
use super::*;
use crate::config::{LocalPort, PortRef};

const TEAM: &str = "\
#:schema ./schema.json
version = 1

[defaults]
namespace = \"shop\"

# The storefront, on 8080.
[forwards.web]
service = \"web\"   # by name
local_port = 8080
remote_port = 80
";

fn project(team: &str, local: Option<&str>) -> (tempfile::TempDir, Files) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kftray.toml");
    std::fs::write(&path, team).unwrap();
    if let Some(local) = local {
        std::fs::write(dir.path().join("kftray.local.toml"), local).unwrap();
    }
    let files = Files::open(&path).unwrap();
    (dir, files)
}

fn service(alias: &str, name: &str, local: u16, remote: u16) -> Draft {
    let mut d = Draft::new(
        alias,
        DraftTarget::Service(name.into()),
        vec![PortPair {
            local: Some(LocalPort::Fixed(local)),
            remote: PortRef::Number(remote),
        }],
    );
    d.namespace = Some("shop".into());
    d
}

fn options(on_conflict: OnConflict) -> Options {
    Options {
        layer: Layer::Base,
        on_conflict,
        move_ports: false,
    }
}

#[test]
fn a_new_forward_is_appended_and_the_rest_is_kept() {
    let (_dir, mut files) = project(TEAM, None);
    let plan = merge(
        &mut files,
        &[service("db", "postgres", 5432, 5432)],
        options(OnConflict::Refuse),
    )
    .unwrap();
    assert_eq!(plan.outcomes, [Outcome::Added { alias: "db".into() }]);
    assert_eq!(
        files.base.text(),
        format!(
            "{TEAM}\n[forwards.db]\nservice = \"postgres\"\nlocal_port = 5432\nremote_port = 5432\n"
        )
    );
    assert!(files.check().unwrap().effective.is_some());
}

#[test]
fn the_same_forward_again_is_unchanged_even_under_another_alias() {
    let (_dir, mut files) = project(TEAM, None);
    let plan = merge(
        &mut files,
        &[service("storefront", "web", 8080, 80)],
        options(OnConflict::Refuse),
    )
    .unwrap();
    // Same settings as `web`: importing it again must not add a copy under a new name.
    assert_eq!(
        plan.outcomes,
        [Outcome::Unchanged {
            alias: "web".into()
        }]
    );
    assert!(!files.changed());
}

#[test]
fn conflicts_are_reported_and_nothing_changes() {
    let (_dir, mut files) = project(TEAM, None);
    let plan = merge(
        &mut files,
        &[
            service("web", "frontend", 8081, 80),
            service("api", "api", 8080, 80),
        ],
        options(OnConflict::Refuse),
    )
    .unwrap();
    assert_eq!(
        plan.conflicts,
        [
            Conflict::Alias {
                alias: "web".into(),
                existing: vec![
                    "service = \"web\"".into(),
                    "local_port = 8080".into(),
                    "remote_port = 80".into()
                ],
                incoming: vec![
                    "service = \"frontend\"".into(),
                    "local_port = 8081".into(),
                    "remote_port = 80".into()
                ],
            },
            Conflict::Port {
                alias: "api".into(),
                other: "web".into(),
                listen: "127.0.0.1:8080/tcp".into()
            }
        ]
    );
    assert!(!files.changed());
}

#[test]
fn replace_overwrites_in_place_and_displaces_port_holders() {
    let team = format!(
        "{TEAM}\n[forwards.admin]\nservice = \"admin\"\nlocal_port = 9000\nremote_port = 80\n"
    );
    let (_dir, mut files) = project(&team, None);
    let plan = merge(
        &mut files,
        &[
            service("web", "frontend", 8080, 80),
            service("api", "api", 9000, 80),
        ],
        options(OnConflict::Replace),
    )
    .unwrap();
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    assert_eq!(
        plan.outcomes,
        [
            Outcome::Replaced {
                alias: "web".into(),
                displaced: vec![]
            },
            Outcome::Replaced {
                alias: "api".into(),
                displaced: vec!["admin".into()]
            },
        ]
    );
    assert_eq!(
        files.base.text(),
        TEAM.replace(
            "service = \"web\"   # by name",
            "service = \"frontend\"   # by name"
        ) + "\n[forwards.api]\nservice = \"api\"\nlocal_port = 9000\nremote_port = 80\n"
    );
    files.check().unwrap();
}

#[test]
fn rename_picks_a_free_alias_and_a_free_port_and_keeps_the_old_name() {
    let (_dir, mut files) = project(TEAM, None);
    let mut d = service("web", "frontend", 8080, 80);
    d.source_name = Some("web".into());
    let plan = merge(&mut files, &[d.clone()], options(OnConflict::Rename)).unwrap();
    assert_eq!(
        plan.outcomes,
        [Outcome::Renamed {
            wanted: "web".into(),
            alias: "web-2".into()
        }]
    );
    assert_eq!(plan.moved, [("web-2".to_string(), 8080, 8081)]);
    assert!(files.base.text().ends_with(
        "[forwards.web-2]\nservice = \"frontend\"\nlocal_port = 8081\nremote_port = 80\ndescription = \"web\"\n"
    ));
    files.check().unwrap();
    // Importing the same again finds it: nothing changes the second time.
    let again = merge(&mut files, &[d], options(OnConflict::Rename)).unwrap();
    assert_eq!(
        again.outcomes,
        [Outcome::Unchanged {
            alias: "web-2".into()
        }]
    );
}

#[test]
fn an_edit_may_keep_old_problems_but_not_add_new_ones() {
    let broken =
        format!("{TEAM}\n[forwards.typo]\nservice = \"x\"\nremote_port = 81\nnamespce = \"a\"\n");
    let (_dir, mut files) = project(&broken, None);
    assert!(document::remove(
        &mut files.base.doc,
        document::FORWARDS,
        "web"
    ));
    let checked = files.check().unwrap();
    assert_eq!(checked.old_problems, 1);
    assert!(checked.effective.is_none());
    let mut t = toml_edit::Table::new();
    t["service"] = toml_edit::value("y");
    t["remote_port"] = toml_edit::value(81);
    document::insert(&mut files.base.doc, document::FORWARDS, "clash", t);
    let new = files.check().unwrap_err();
    let codes: Vec<&str> = new.findings().iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, ["kftray::port-conflict"]);
}

#[test]
fn commit_writes_only_changed_files_and_a_missing_file_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kftray.toml");
    let mut files = Files::open(&path).unwrap();
    assert!(!files.changed() || files.base.original.is_none());
    let plan = merge(
        &mut files,
        &[service("db", "postgres", 5432, 5432)],
        options(OnConflict::Refuse),
    )
    .unwrap();
    assert_eq!(plan.outcomes.len(), 1);
    assert_eq!(files.commit().unwrap(), std::slice::from_ref(&path));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with(&format!("#:schema {}\n", crate::config::SCHEMA_URL)),
        "{text}"
    );
    crate::config::load(&path).unwrap();
    assert!(!dir.path().join("kftray.local.toml").exists());
}

#[test]
fn exposes_merge_by_alias_and_listen_on_nothing() {
    let team = format!("{TEAM}\n[exposes.hook]\nlocal_port = 3000\n");
    let hook = |port: u16| ExposeDraft::new("hook", "hook", port);
    let (_dir, mut files) = project(&team, None);
    let plan = merge(&mut files, &[hook(3000)], options(OnConflict::Refuse)).unwrap();
    assert_eq!(
        plan.outcomes,
        [Outcome::Unchanged {
            alias: "hook".into()
        }]
    );
    let plan = merge(&mut files, &[hook(4000)], options(OnConflict::Refuse)).unwrap();
    assert_eq!(
        plan.conflicts,
        [Conflict::Alias {
            alias: "hook".into(),
            existing: vec!["local_port = 3000".into()],
            incoming: vec!["local_port = 4000".into()],
        }]
    );
    assert!(!files.changed());

    // The local server's port is not a port kftray listens on: `web`'s 8080 is no conflict.
    let plan = merge(&mut files, &[hook(8080)], options(OnConflict::Rename)).unwrap();
    assert_eq!(
        plan.outcomes,
        [Outcome::Renamed {
            wanted: "hook".into(),
            alias: "hook-2".into()
        }]
    );
    assert!(
        files
            .base
            .text()
            .ends_with("[exposes.hook-2]\nlocal_port = 8080\nservice = \"hook\"\n"),
        "{}",
        files.base.text()
    );
    files.check().unwrap();

    let (_dir, mut files) = project(&team, None);
    let plan = merge(&mut files, &[hook(4000)], options(OnConflict::Replace)).unwrap();
    assert_eq!(
        plan.outcomes,
        [Outcome::Replaced {
            alias: "hook".into(),
            displaced: Vec::new()
        }]
    );
    assert_eq!(files.base.text(), team.replace("3000", "4000"));
}
