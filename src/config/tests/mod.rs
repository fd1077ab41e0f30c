//! The loader end to end on small files: each kind of mistake is found, at the right place,
//! and all of them in one run; valid files resolve with every default applied.

use super::*;

/// (code, line, column) of each finding.
pub(super) fn findings(text: &str) -> Vec<(String, usize, usize)> {
    match load_str("kftray.toml", text) {
        Ok(_) => Vec::new(),
        Err(d) => d
            .findings()
            .iter()
            .map(|f| (f.code.clone(), f.line.unwrap_or(0), f.column.unwrap_or(0)))
            .collect(),
    }
}

pub(super) fn one(text: &str) -> (String, usize, usize) {
    let found = findings(text);
    assert_eq!(found.len(), 1, "expected one finding, got {found:?}");
    found.into_iter().next().unwrap()
}

fn code(c: &str, line: usize, column: usize) -> (String, usize, usize) {
    (format!("kftray::{c}"), line, column)
}

pub(super) const WEB: &str = "[forwards.web]\nservice = \"web\"\nremote_port = 80\n";

#[test]
fn toml_syntax_errors_are_located() {
    assert_eq!(
        one("[forwards.web\nservice = \"web\"\n").0,
        "kftray::syntax"
    );
    let (_, line, _) = one("version = 1\n\n[forwards.web]\nservice = \"web\nremote_port = 80\n");
    assert_eq!(line, 4);
}

#[test]
fn unknown_keys_suggest_the_right_one() {
    let text = "[forwards.web]\nservice = \"web\"\nremote_prot = 80\n";
    let d = load_str("kftray.toml", text).unwrap_err();
    // Only the misspelling: the missing remote_port it causes is not reported twice.
    assert_eq!(d.len(), 1);
    assert_eq!(d.findings()[0].code, "kftray::unknown-key");
    assert_eq!(
        (d.findings()[0].line, d.findings()[0].column),
        (Some(3), Some(1))
    );
    assert!(
        d.findings()[0].labels[0]
            .text
            .contains("did you mean `remote_port`?")
    );
    let d = load_str("kftray.toml", "[forward.web]\n").unwrap_err();
    assert!(d.findings()[0].labels[0].text.contains("`forwards`"));
    let d = load_str(
        "kftray.toml",
        "[forwards.web]\nservice = \"w\"\nremote_port = 1\nremote_address = \"x\"\n",
    )
    .unwrap_err();
    assert!(
        d.findings()[0]
            .help
            .as_deref()
            .unwrap()
            .contains("proxy = \"host\"")
    );
}

#[test]
fn wrong_types_are_reported_per_key() {
    let text = "[forwards.web]\nservice = 3\nremote_port = true\nenabled = \"yes\"\ntags = \"a\"\n";
    assert_eq!(
        findings(text),
        [
            code("wrong-type", 2, 11),
            code("wrong-type", 3, 15),
            code("wrong-type", 4, 11),
            code("wrong-type", 5, 8),
        ]
    );
    assert_eq!(one("forwards = 1\n"), code("wrong-type", 1, 12));
}

#[test]
fn a_forward_needs_exactly_one_target() {
    assert_eq!(
        one("[forwards.web]\nremote_port = 80\n"),
        code("no-target", 1, 11)
    );
    let d = load_str(
        "kftray.toml",
        "[forwards.web]\nservice = \"web\"\npod = \"web-0\"\nremote_port = 80\n",
    )
    .unwrap_err();
    let f = &d.findings()[0];
    assert_eq!(f.code, "kftray::two-targets");
    assert_eq!(f.labels.len(), 2, "both targets are labelled");
    assert_eq!((f.labels[1].line, f.labels[1].column), (3, 7));
}

#[test]
fn ports_out_of_range() {
    assert_eq!(
        one("[forwards.web]\nservice = \"web\"\nremote_port = 0\n"),
        code("port-range", 3, 15)
    );
    assert_eq!(
        one("[forwards.web]\nservice = \"web\"\nremote_port = 80\nlocal_port = 70000\n"),
        code("port-range", 4, 14)
    );
    assert_eq!(
        one("[forwards.web]\nservice = \"web\"\nports = [\"8080:99999\"]\n"),
        code("port-range", 3, 16)
    );
    assert_eq!(
        one("[forwards.web]\nservice = \"web\"\nremote_port = \"Not A Name\"\n"),
        code("port-name", 3, 15)
    );
}

#[test]
fn duplicate_local_ports_label_both_forwards() {
    let text = format!(
        "{WEB}local_port = 8080\n[forwards.api]\nservice = \"api\"\nremote_port = 80\nlocal_port = 8080\n"
    );
    let d = load_str("kftray.toml", &text).unwrap_err();
    let f = &d.findings()[0];
    assert_eq!(f.code, "kftray::port-conflict");
    let places: Vec<_> = f.labels.iter().map(|l| (l.line, l.column)).collect();
    assert_eq!(places, [(8, 14), (4, 14)]);
    // Another loopback address, another protocol, "any" or a disabled forward: no conflict.
    for other in [
        "local_address = \"127.0.0.2\"\n",
        "protocol = \"udp\"\n",
        "enabled = false\n",
    ] {
        let text = format!(
            "{WEB}local_port = 8080\n[forwards.api]\nservice = \"api\"\nremote_port = 80\nlocal_port = 8080\n{other}"
        );
        assert_eq!(findings(&text), [], "{other}");
    }
}

#[test]
fn udp_goes_through_the_relay_whatever_the_target() {
    for target in [
        "service = \"kube-dns\"",
        "pod = \"coredns-0\"",
        "selector = \"k8s-app=kube-dns\"",
        "deployment = \"coredns\"",
        "proxy = \"10.96.0.10\"",
    ] {
        let text = format!("[forwards.dns]\n{target}\nprotocol = \"udp\"\nremote_port = 53\n");
        let effective = load_str("kftray.toml", &text).unwrap();
        assert_eq!(effective.forwards[0].via, Via::Relay, "{target}");
    }
    let text = "[forwards.dns]\nservice = \"kube-dns\"\nremote_port = 53\n";
    assert_eq!(
        load_str("kftray.toml", text).unwrap().forwards[0].via,
        Via::PortForward
    );
}

#[test]
fn via_port_forward_is_refused_where_only_the_relay_goes() {
    let text = "[forwards.dns]\nservice = \"kube-dns\"\nprotocol = \"udp\"\nvia = \"port-forward\"\nremote_port = 53\n";
    assert_eq!(one(text), code("via", 4, 7));
    let text =
        "[forwards.db]\nproxy = \"db.internal\"\nvia = \"port-forward\"\nremote_port = 5432\n";
    assert_eq!(one(text), code("via", 3, 7));
    let text = "[forwards.web]\nservice = \"web\"\nvia = \"relay\"\nremote_port = 80\n";
    assert_eq!(
        load_str("kftray.toml", text).unwrap().forwards[0].via,
        Via::Relay
    );
    assert_eq!(
        one("[forwards.web]\nservice = \"web\"\nvia = \"proxy\"\nremote_port = 80\n").0,
        "kftray::wrong-type"
    );
}

#[test]
fn the_relay_table_is_checked_and_merged_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("relay.yaml");
    std::fs::write(
        &manifest,
        "kind: Pod\nspec:\n  containers:\n    - name: relay\n      image: mine/relay:1\n",
    )
    .unwrap();
    let base = dir.path().join("kftray.toml");
    let text = format!("[relay]\nmanifest = \"relay.yaml\"\nnamespace = \"kftray\"\n\n{WEB}");
    let local = "[relay]\nimage = \"registry.local/relay:2\"\n".to_string();
    let effective = load_layers(vec![
        Layer::local(base.clone(), text),
        Layer::local(dir.path().join("kftray.local.toml"), local),
    ])
    .unwrap();
    assert_eq!(
        effective.relay,
        Relay {
            image: Some("registry.local/relay:2".into()),
            manifest: Some(manifest),
            namespace: Some("kftray".into()),
        }
    );
    std::fs::write(
        dir.path().join("bad.yaml"),
        "kind: Pod\nspec:\n  containers: [\n",
    )
    .unwrap();
    let text =
        format!("[relay]\nmanifest = \"bad.yaml\"\nimage = \"a b\"\nnamespace = \"No\"\n\n{WEB}");
    let found = match load_layers(vec![Layer::local(base.clone(), text)]) {
        Err(d) => d
            .findings()
            .iter()
            .map(|f| (f.code.clone(), f.message.clone()))
            .collect::<Vec<_>>(),
        Ok(_) => panic!("a bad [relay] passed"),
    };
    let codes: Vec<&str> = found.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        codes,
        [
            "kftray::relay-manifest",
            "kftray::relay",
            "kftray::namespace"
        ]
    );
    assert!(found[0].1.contains("bad.yaml:"), "{found:?}");
    let missing = format!("[relay]\nmanifest = \"nope.yaml\"\n\n{WEB}");
    let Err(d) = load_layers(vec![Layer::local(base, missing)]) else {
        panic!("a missing manifest passed")
    };
    assert!(
        d.findings()[0].message.contains("cannot read"),
        "{:?}",
        d.findings()
    );
}

#[test]
fn a_proxy_needs_a_remote_address_and_a_numeric_port() {
    assert_eq!(
        one("[forwards.db]\nproxy = \"\"\nremote_port = 5432\n"),
        code("proxy", 2, 9)
    );
    let d = load_str(
        "kftray.toml",
        "[forwards.db]\nproxy = \"db.internal:5432\"\nremote_port = 5432\n",
    )
    .unwrap_err();
    assert!(
        d.findings()[0]
            .help
            .as_deref()
            .unwrap()
            .contains("remote_port")
    );
    assert_eq!(
        one("[forwards.db]\nproxy = \"db.internal\"\nremote_port = \"postgres\"\n"),
        code("proxy-port", 3, 15)
    );
}

#[test]
fn bad_durations() {
    let text = format!("{WEB}[sync]\nrepo = \"https://example.com/a.git\"\ninterval = \"soon\"\n");
    assert_eq!(one(&text), code("duration", 6, 12));
    let text = format!("{WEB}[sync]\ninterval = \"1m\"\n");
    assert_eq!(one(&text), code("sync", 4, 2));
}

#[test]
fn malformed_selectors_point_inside_the_string() {
    let text = "[forwards.api]\nselector = \"app=api,tier in web\"\nremote_port = 80\n";
    // The label sits under `web`, not under the whole string.
    assert_eq!(one(text), code("selector", 2, 29));
}

#[test]
fn non_loopback_addresses_need_the_opt_in() {
    let text = format!("{WEB}local_address = \"0.0.0.0\"\n");
    assert_eq!(one(&text), code("not-loopback", 4, 17));
    let text = format!("{WEB}local_address = \"0.0.0.0\"\nexpose_to_network = true\n");
    let e = load_str("kftray.toml", &text).unwrap();
    assert!(e.forwards[0].expose_to_network);
    assert_eq!(
        one(&format!("{WEB}local_address = \"localhost\"\n")),
        code("local-address", 4, 17)
    );
}

#[test]
fn aliases_must_be_dns_labels() {
    assert_eq!(
        one("[forwards.My_Web]\nservice = \"web\"\nremote_port = 80\n"),
        code("alias", 1, 11)
    );
}

#[test]
fn unknown_versions_are_refused() {
    assert_eq!(one(&format!("version = 2\n{WEB}")), code("version", 1, 11));
    assert_eq!(findings(&format!("version = 1\n{WEB}")), []);
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let text = "version = 3\n\
                [forwards.a]\nservce = \"x\"\nremote_port = 80\n\
                [forwards.b]\nservice = \"b\"\nremote_port = 0\n\
                [forwards.c]\nproxy = \"\"\nremote_port = 1\n";
    let codes: Vec<String> = findings(text).into_iter().map(|f| f.0).collect();
    assert_eq!(
        codes,
        [
            "kftray::version",
            "kftray::unknown-key",
            "kftray::port-range",
            "kftray::proxy",
        ]
    );
}

#[test]
fn findings_survive_a_round_trip_through_json() {
    let d = load_str("kftray.toml", "[forwards.web]\nremote_port = 80\n").unwrap_err();
    let stored = d.to_json();
    let back: Vec<Finding> = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, d.findings());
    let again = Diagnostics::from_findings(back);
    // Without the source text the report still names the problem and the help.
    let text = again.render(false, 100);
    assert!(text.contains("forward `web` has no target"), "{text}");
}

#[test]
fn odd_input_is_reported_not_panicked_on() {
    for text in ["", "[forwards]\n"] {
        assert!(load_str("kftray.toml", text).unwrap().forwards.is_empty());
    }
    for text in [
        "forwards = []\n",
        "[forwards.web]\nservice = \"é\"\nremote_port = 80\n",
        "[forwards.web]\nselector = \"é=\\u00e9,\"\nremote_port = 80\n",
        "[forwards.web]\nservice = \"w\"\nports = [\"é:x\", \":\", \"\", \"1:2:3\"]\n",
        "[forwards.web]\nservice = \"w\"\nremote_port = 9223372036854775807\n",
        "[forwards.web]\nservice = \"w\"\nremote_port = -1\nlocal_port = -5\n",
        "[[forwards]]\nservice = \"w\"\n",
        "[sync]\nrepo = \"\"\ninterval = \"99999999999999999999999h\"\n",
    ] {
        let d = load_str("kftray.toml", text).expect_err(text);
        assert!(
            d.findings().iter().all(|f| f.help.is_some()),
            "{text}: {d:?}"
        );
    }
}

#[test]
fn every_finding_has_help() {
    let d = load_str(
        "kftray.toml",
        include_str!("../../../tests/fixtures/many-problems.toml"),
    )
    .unwrap_err();
    assert!(d.len() >= 10);
    let text = "version = \"1\"\n[forwards.web]\nservice = 3\nremote_port = 80\nenabled = 1\n";
    let d2 = load_str("kftray.toml", text).unwrap_err();
    assert_eq!(d2.len(), 3);
    for f in d.findings().iter().chain(d2.findings()) {
        assert!(f.help.is_some(), "{f:?}");
    }
}

mod http_log;
mod layers;
mod names;
mod resolved;

#[test]
fn ports_all_is_one_word_and_not_for_a_proxy_or_with_single_ports() {
    let all = "[forwards.api]\nservice = \"api\"\nports = \"all\"\n";
    let effective = load_str("kftray.toml", all).unwrap();
    assert!(effective.forwards.is_empty());
    assert_eq!(effective.all_ports[0].alias, "api");
    assert_eq!(
        effective.all_ports[0].local_address.to_string(),
        "127.0.0.1"
    );

    let (c, line, column) = one("[forwards.api]\nservice = \"api\"\nports = \"every\"\n");
    assert_eq!((c.as_str(), line, column), ("kftray::wrong-type", 3, 9));
    assert_eq!(
        one("[forwards.r]\nproxy = \"redis.internal\"\nports = \"all\"\n"),
        code("proxy-port", 3, 9)
    );
    assert_eq!(
        one("[forwards.api]\nservice = \"api\"\nports = \"all\"\nremote_port = 80\n"),
        code("ports", 3, 9)
    );
    // Its tags and alias count as any forward's for `up --tag` and `up NAME`.
    let d = load_str(
        "kftray.toml",
        "[forwards.api]\nservice = \"api\"\nports = \"all\"\ntags = [\"x\"]\n",
    )
    .unwrap();
    assert_eq!(d.tags(), ["x"]);
    assert!(d.names("api") && !d.names("api:80"));
}
