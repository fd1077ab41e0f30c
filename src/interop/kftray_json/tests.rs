use super::*;
use crate::config::Finding;

fn parse_str(text: &str) -> Result<Parsed, Diagnostics> {
    parse(Path::new("kftray.json"), text)
}

fn drafts(text: &str) -> Result<Vec<Draft>, Diagnostics> {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::open(&dir.path().join("kftray.toml")).unwrap();
    parse_str(text)?.drafts(&files, Layer::Base).map(|(d, _)| d)
}

/// (code, line, column, help) of each finding.
fn places(d: &Diagnostics) -> Vec<(String, usize, usize, String)> {
    d.findings()
        .iter()
        .map(|f: &Finding| {
            (
                f.code.clone(),
                f.line.unwrap_or(0),
                f.column.unwrap_or(0),
                f.help.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn the_documented_example_with_its_comments_reads() {
    let text = r#"[
  {
    "alias": "consul-ui", // the UI
    "context": "kind-7",
    "local_port": 8500,
    "namespace": "consul",
    "protocol": "tcp",
    "remote_port": 8500,
    "service": "consul-ui",
    "workload_type": "service"
  },
  {
    "alias": "redis-gcp",
    "context": "kind-6",
    "local_port": 26379,
    "namespace": "default",
    "protocol": "udp",
    "remote_address": "redis-prod.gcp.internal",
    "remote_port": 6379,
    "workload_type": "proxy",
  },
]"#;
    let d = drafts(text).unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].alias, "consul-ui");
    assert_eq!(d[0].target, DraftTarget::Service("consul-ui".into()));
    assert_eq!(d[0].context.as_deref(), Some("kind-7"));
    assert_eq!(d[0].description, None);
    assert_eq!(
        d[1].target,
        DraftTarget::Proxy("redis-prod.gcp.internal".into())
    );
    assert_eq!(d[1].protocol, Protocol::Udp);
    assert_eq!(
        d[1].ports,
        [PortPair {
            local: Some(LocalPort::Fixed(26379)),
            remote: PortRef::Number(6379)
        }]
    );
}

#[test]
fn aliases_become_dns_labels_and_keep_their_name() {
    let text = r#"[
      {"alias": "Web Front", "workload_type": "service", "service": "web", "namespace": "a", "remote_port": 80, "domain_enabled": "true"},
      {"alias": "Web Front", "workload_type": "service", "service": "web", "namespace": "b", "remote_port": 80, "local_port": 0},
      {"alias": "api.dev.local", "workload_type": "pod", "target": "app=api", "namespace": "a", "remote_port": 8080, "local_port": 18080, "domain_enabled": true}
    ]"#;
    let d = drafts(text).unwrap();
    let aliases: Vec<&str> = d.iter().map(|d| d.alias.as_str()).collect();
    assert_eq!(aliases, ["web-front", "web-front-2", "api-dev-local"]);
    assert_eq!(d[0].description.as_deref(), Some("Web Front"));
    assert_eq!(d[1].description.as_deref(), Some("Web Front"));
    // kftray names the host after the alias: a valid host name stays, others are made one.
    assert_eq!(d[0].domain.as_deref(), Some("web-front"));
    assert_eq!(d[2].domain.as_deref(), Some("api.dev.local"));
    assert_eq!(d[1].ports[0].local, Some(LocalPort::Any));
}

#[test]
fn older_exports_without_workload_type_and_with_placeholders_read() {
    let text = r#"{"service": "test", "namespace": "default-namespace", "local_port": 8080,
                   "remote_port": 80, "context": "current-context", "kubeconfig": "default",
                   "target": "default-target", "remote_address": "default-remote-address",
                   "protocol": "protocol", "id": 7, "http_logs_enabled": false}"#;
    let d = drafts(text).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].target, DraftTarget::Service("test".into()));
    assert_eq!(d[0].namespace, None);
    assert_eq!(d[0].context, None);
    assert_eq!(d[0].kubeconfig, None);
    assert_eq!(d[0].protocol, Protocol::Tcp);
    // No alias: it comes from the target.
    assert_eq!(d[0].alias, "test");
}

#[test]
fn wrong_types_are_pinned_to_their_value() {
    let text = "[\n  {\n    \"alias\": 7,\n    \"workload_type\": \"service\",\n    \"service\": \"web\",\n    \"local_port\": \"8080\",\n    \"remote_port\": 70000,\n    \"domain_enabled\": \"yes\"\n  }\n]\n";
    let err = drafts(text).unwrap_err();
    assert_eq!(
        places(&err),
        [
            (
                "kftray::json-type".into(),
                3,
                14,
                "write it in quotes: \"alias\": \"...\"".into()
            ),
            (
                "kftray::json-type".into(),
                6,
                19,
                "write the number without quotes: \"local_port\": 8080".into()
            ),
            (
                "kftray::json-port".into(),
                7,
                20,
                "a port is a whole number from 1 to 65535 (local_port 0: any free port)".into()
            ),
            (
                "kftray::json-type".into(),
                8,
                23,
                "write \"domain_enabled\": true or \"domain_enabled\": false".into()
            ),
        ]
    );
    assert_eq!(
        err.findings()[1].message,
        "`local_port` must be a port number, not a string"
    );
}

#[test]
fn missing_fields_and_unknown_workload_types_say_what_to_add() {
    let text = r#"[
  {"alias": "a", "workload_type": "service", "remote_port": 80},
  {"alias": "b", "workload_type": "deployment", "service": "x", "remote_port": 80},
  {"alias": "c", "workload_type": "expose", "local_port": 3000},
  {"alias": "d", "workload_type": "pod", "target": "app=d"},
  {"alias": "e", "remote_port": 80},
  {"alias": "f", "workload_type": "pod", "target": "app=f", "protocol": "udp", "remote_port": 53},
  {"alias": "g", "workload_type": "service", "service": "Bad_Name", "remote_port": 80}
]"#;
    let err = drafts(text).unwrap_err();
    let got: Vec<(String, usize, usize)> = places(&err)
        .into_iter()
        .map(|(c, l, col, _)| (c, l, col))
        .collect();
    assert_eq!(
        got,
        [
            ("kftray::json-missing".into(), 2, 35),
            ("kftray::json-workload".into(), 3, 35),
            ("kftray::json-workload".into(), 4, 35),
            ("kftray::json-missing".into(), 5, 3),
            ("kftray::json-missing".into(), 6, 3),
            ("kftray::json-protocol".into(), 7, 73),
            ("kftray::name".into(), 8, 57),
        ]
    );
    let messages: Vec<&str> = err.findings().iter().map(|f| f.message.as_str()).collect();
    assert_eq!(messages[0], "a service forward needs `service`");
    assert_eq!(messages[1], "unknown workload_type `deployment`");
    assert_eq!(messages[2], "`expose` forwards are not supported");
    assert_eq!(messages[3], "this forward has no `remote_port`");
    assert_eq!(messages[4], "this forward has no `workload_type`");
    assert_eq!(messages[6], "`Bad_Name` is not a valid service name");
}

#[test]
fn syntax_errors_and_a_wrong_shape_are_located() {
    let err = parse_str("[\n  {\"alias\": \"a\",, }\n]").unwrap_err();
    let p = places(&err);
    assert_eq!((p[0].0.as_str(), p[0].1), ("kftray::json-syntax", 2));
    let err = parse_str("\"web\"").unwrap_err();
    assert_eq!(
        err.findings()[0].message,
        "expected an array of forwards, found a string"
    );
    let err = parse_str("[1, {\"x\": 1}]").unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(
        err.findings()[0].message,
        "expected an object, found a number"
    );
}

#[test]
fn fields_without_a_place_here_are_warned_about() {
    let text = r#"[{"alias": "a", "workload_type": "service", "service": "a", "remote_port": 80,
        "remote_prot": 1, "http_logs_enabled": true,
        "local_address": "0.0.0.0"}]"#;
    let parsed = parse_str(text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = Files::open(&dir.path().join("kftray.toml")).unwrap();
    let (d, warnings) = parsed.drafts(&files, Layer::Base).unwrap();
    let messages: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "unknown field `remote_prot` ignored (did you mean `remote_port`?)",
            "`0.0.0.0` is reachable from the network: written with expose_to_network = true",
        ]
    );
    assert_eq!((warnings[0].line, warnings[0].column), (2, 9));
    assert!(d[0].expose_to_network);
}

#[test]
fn auto_loopback_address_is_local_address_auto_both_ways() {
    let text = r#"[{"alias": "db", "workload_type": "service", "service": "db", "remote_port": 5432,
        "local_port": 5432, "auto_loopback_address": true}]"#;
    let parsed = parse_str(text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = Files::open(&dir.path().join("kftray.toml")).unwrap();
    let (drafts, warnings) = parsed.drafts(&files, Layer::Base).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(drafts[0].local_address.as_deref(), Some("auto"));
    let back = from_draft(&drafts[0], "default").unwrap();
    assert_eq!(back[0].auto_loopback_address, Some(true));
    assert_eq!(back[0].local_address, None);
}

#[test]
fn http_logs_settings_are_carried_both_ways() {
    let text = r#"[{"alias": "api", "workload_type": "service", "service": "api", "remote_port": 80,
        "http_logs_enabled": true, "http_logs_max_file_size": 1048576,
        "http_logs_retention_days": 3, "http_logs_auto_cleanup": true},
      {"alias": "keep", "workload_type": "service", "service": "keep", "remote_port": 81,
        "http_logs_enabled": true, "http_logs_auto_cleanup": false},
      {"alias": "off", "workload_type": "service", "service": "off", "remote_port": 82,
        "http_logs_enabled": false, "http_logs_max_file_size": 1048576}]"#;
    let parsed = parse_str(text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = Files::open(&dir.path().join("kftray.toml")).unwrap();
    let (drafts, warnings) = parsed.drafts(&files, Layer::Base).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let tables: Vec<String> = drafts
        .iter()
        .map(|d| d.to_table(&crate::edit::Inherited::default()).to_string())
        .collect();
    assert!(
        tables[0].contains("http_log = { max_file_size = \"1MiB\", retention = \"3d\" }"),
        "{}",
        tables[0]
    );
    assert!(
        tables[1].contains("http_log = { retention = \"forever\" }"),
        "{}",
        tables[1]
    );
    assert!(!tables[2].contains("http_log"), "{}", tables[2]);
    let back = from_draft(&drafts[0], "default").unwrap();
    assert_eq!(back[0].http_logs_enabled, Some(true));
    assert_eq!(back[0].http_logs_max_file_size, Some(1 << 20));
    assert_eq!(back[0].http_logs_retention_days, Some(3));
    assert_eq!(back[0].http_logs_auto_cleanup, Some(true));
    let kept = from_draft(&drafts[1], "default").unwrap();
    assert_eq!(kept[0].http_logs_auto_cleanup, Some(false));
    assert_eq!(
        from_draft(&drafts[2], "default").unwrap()[0].http_logs_enabled,
        None
    );

    let bad = r#"[{"alias": "a", "workload_type": "service", "service": "a", "remote_port": 80,
        "http_logs_max_file_size": -5}]"#;
    let err = parse_str(bad)
        .unwrap()
        .drafts(&files, Layer::Base)
        .unwrap_err();
    assert_eq!(err.findings()[0].code, "kftray::json-number");
    assert_eq!(
        (err.findings()[0].line, err.findings()[0].column),
        (Some(2), Some(36))
    );
}

#[test]
fn export_refuses_what_kftray_cannot_carry() {
    let mut d = Draft::new(
        "db",
        DraftTarget::StatefulSet("postgres".into()),
        vec![PortPair {
            local: None,
            remote: PortRef::Number(5432),
        }],
    );
    assert!(
        from_draft(&d, "default")
            .unwrap_err()
            .to_string()
            .contains("no statefulset target")
    );
    d.target = DraftTarget::Service("postgres".into());
    d.ports[0].remote = PortRef::Name("postgres".into());
    assert!(
        from_draft(&d, "default")
            .unwrap_err()
            .to_string()
            .contains("port numbers only")
    );
    d.ports = vec![
        PortPair {
            local: Some(LocalPort::Fixed(8080)),
            remote: PortRef::Number(80),
        },
        PortPair {
            local: Some(LocalPort::Any),
            remote: PortRef::Number(9090),
        },
    ];
    let out = from_draft(&d, "shop").unwrap();
    let summary: Vec<(Option<String>, Option<u16>, Option<u16>)> = out
        .iter()
        .map(|c| (c.alias.clone(), c.local_port, c.remote_port))
        .collect();
    assert_eq!(
        summary,
        [
            (Some("db-80".into()), Some(8080), Some(80)),
            (Some("db-9090".into()), None, Some(9090)),
        ]
    );
}

#[test]
fn localhost_is_read_as_loopback_as_kftrays_own_examples_write_it() {
    let text = r#"[{"alias": "a", "workload_type": "service", "service": "a", "remote_port": 80,
        "local_port": 8080, "local_address": "localhost"},
        {"alias": "b", "workload_type": "service", "service": "b", "remote_port": 80,
        "local_port": 8081, "local_address": "LocalHost"}]"#;
    let d = drafts(text).unwrap_or_else(|d| panic!("{}", d.render(false, 100)));
    assert_eq!(d.len(), 2);
    assert!(d.iter().all(|d| d.local_address.is_none()));
    assert!(d.iter().all(|d| !d.expose_to_network));
}
