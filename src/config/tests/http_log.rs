//! `http_log`: inherited key by key, checked at the exact key, and redaction that a team
//! file can add to but not take away.

use super::super::*;
use super::{WEB, findings, one};
use std::time::Duration;

fn http_log(text: &str) -> Option<HttpLog> {
    load_str("kftray.toml", text).unwrap().forwards[0]
        .http_log
        .clone()
}

#[test]
fn a_switch_or_a_table_turns_it_on_with_the_defaults_filled_in() {
    assert_eq!(http_log(WEB), None);
    assert_eq!(
        http_log(&format!("{WEB}http_log = true\n")),
        Some(HttpLog::default())
    );
    let log = http_log(&format!(
        "{WEB}http_log = {{ max_file_size = \"1MiB\", body_limit = 0, retention = \"forever\", \
         redact = [\"X-Api-Key\"], reveal = [\"Cookie\"] }}\n"
    ))
    .unwrap();
    assert_eq!(log.max_file_size, 1 << 20);
    assert_eq!(log.body_limit, 0);
    assert_eq!(log.retention, None);
    assert_eq!(
        log.redact,
        [
            "authorization",
            "proxy-authorization",
            "set-cookie",
            "x-api-key"
        ]
    );
    assert_eq!(
        http_log(&format!("{WEB}http_log = {{ enabled = false }}\n")),
        None
    );
}

#[test]
fn a_forward_takes_each_key_it_does_not_set_from_the_defaults() {
    let text = format!(
        "[defaults]\nhttp_log = {{ retention = \"1d\", body_limit = \"1KiB\" }}\n{WEB}\
         http_log = {{ body_limit = \"2KiB\" }}\n\
         [forwards.db]\nservice = \"db\"\nremote_port = 5432\nhttp_log = false\n"
    );
    let e = load_str("kftray.toml", &text).unwrap();
    let web = e.forwards.iter().find(|f| f.name == "web").unwrap();
    let log = web.http_log.as_ref().unwrap();
    assert_eq!(log.retention, Some(Duration::from_secs(86_400)));
    assert_eq!(log.body_limit, 2048);
    let db = e.forwards.iter().find(|f| f.name == "db").unwrap();
    assert_eq!(db.http_log, None);
}

#[test]
fn udp_forwards_are_left_out_of_the_defaults_and_refused_on_their_own() {
    let dns = "[forwards.dns]\nservice = \"dns\"\nremote_port = 53\nprotocol = \"udp\"\n";
    let e = load_str(
        "kftray.toml",
        &format!("[defaults]\nhttp_log = true\n{dns}"),
    )
    .unwrap();
    assert_eq!(e.forwards[0].http_log, None);
    assert_eq!(
        one(&format!("{dns}http_log = true\n")),
        ("kftray::http-log".into(), 5, 12)
    );
}

#[test]
fn every_bad_setting_is_pointed_at_inside_the_table() {
    let text = format!(
        "{WEB}http_log = {{ max_file_size = \"3 parsecs\", retention = \"soon\", \
         redact = [\"X Bad\"], reveal = [\"X-Api-Key\"], body_limt = 4 }}\n"
    );
    let found = findings(&text);
    let codes: Vec<(&str, usize)> = found.iter().map(|(c, _, col)| (c.as_str(), *col)).collect();
    assert_eq!(
        codes,
        [
            ("kftray::http-log", 30),
            ("kftray::http-log", 55),
            ("kftray::http-log", 73),
            ("kftray::http-log", 93),
            ("kftray::unknown-key", 107),
        ],
        "{found:?}"
    );
    let d = load_str("kftray.toml", &format!("{WEB}http_log = \"yes\"\n")).unwrap_err();
    assert_eq!(d.findings()[0].code, "kftray::wrong-type");
    assert!(
        d.findings()[0]
            .help
            .as_deref()
            .unwrap()
            .contains("http_log = true")
    );
}

const TEAM: &str = "git:team@abc:kftray.toml";

#[test]
fn the_team_file_can_add_redactions_but_not_reveal_secrets() {
    let team =
        format!("{WEB}http_log = {{ redact = [\"X-Team\"], reveal = [\"Authorization\"] }}\n");
    let d = load_layers(vec![Layer::remote(TEAM, team.as_str(), "/p".into())]).unwrap_err();
    let f = &d.findings()[0];
    assert_eq!((f.code.as_str(), f.line), ("kftray::trust", Some(4)));
    assert!(f.help.as_deref().unwrap().contains("kftray.local.toml"));

    // The user's own file may; the team's redactions stay.
    let team = format!("{WEB}http_log = {{ redact = [\"X-Team\"] }}\n");
    let mine = "[forwards.web]\nhttp_log = { reveal = [\"authorization\"] }\n";
    let e = load_layers(vec![
        Layer::remote(TEAM, team.as_str(), "/p".into()),
        Layer::local("/p/kftray.local.toml", mine),
    ])
    .unwrap();
    assert_eq!(
        e.forwards[0].http_log.as_ref().unwrap().redact,
        ["cookie", "proxy-authorization", "set-cookie", "x-team"]
    );
}
