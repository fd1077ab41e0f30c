use super::*;
use crate::config::Finding;

fn parse_str(text: &str) -> Result<Parsed, Diagnostics> {
    parse(Path::new("kftray.json"), text)
}

fn drafts(text: &str) -> Result<Vec<Draft>, Diagnostics> {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::open(&dir.path().join("kftray.toml")).unwrap();
    parse_str(text)?
        .drafts(&files, Layer::Base)
        .map(|i| i.forwards)
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
  {"alias": "c", "workload_type": "expose"},
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
            ("kftray::json-missing".into(), 4, 3),
            ("kftray::json-missing".into(), 5, 3),
            ("kftray::json-missing".into(), 6, 3),
            ("kftray::json-protocol".into(), 7, 73),
            ("kftray::name".into(), 8, 57),
        ]
    );
    let messages: Vec<&str> = err.findings().iter().map(|f| f.message.as_str()).collect();
    assert_eq!(messages[0], "a service forward needs `service`");
    assert_eq!(messages[1], "unknown workload_type `deployment`");
    assert_eq!(messages[2], "this expose has no `local_port`");
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
    let Imported {
        forwards: d,
        warnings,
        ..
    } = parsed.drafts(&files, Layer::Base).unwrap();
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
    let Imported {
        forwards: drafts,
        warnings,
        ..
    } = parsed.drafts(&files, Layer::Base).unwrap();
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
    let Imported {
        forwards: drafts,
        warnings,
        ..
    } = parsed.drafts(&files, Layer::Base).unwrap();
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

/// The exposes of `text` and the warnings about it.
fn exposes(text: &str) -> (Vec<ExposeDraft>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::open(&dir.path().join("kftray.toml")).unwrap();
    let imported = parse_str(text)
        .and_then(|p| p.drafts(&files, Layer::Base))
        .unwrap_or_else(|d| panic!("{}", d.render(false, 100)));
    assert!(imported.forwards.is_empty());
    let warnings = imported.warnings.into_iter().map(|w| w.message).collect();
    (imported.exposes, warnings)
}

fn table(draft: &ExposeDraft) -> String {
    draft
        .to_table(&crate::edit::Inherited::default())
        .to_string()
}

const CLUSTER_AND_PUBLIC: &str = r#"[
  {"alias": "hook", "workload_type": "expose", "exposure_type": "cluster", "local_port": 3000,
   "local_address": "localhost", "namespace": "dev", "context": "kind", "protocol": "tcp"},
  {"alias": "hook.dev.example.com", "workload_type": "expose", "exposure_type": "public",
   "local_port": 8080, "namespace": "dev", "ingress_class": "nginx",
   "ingress_annotations": "{\"nginx.ingress.kubernetes.io/proxy-body-size\": \"10m\"}",
   "cert_manager_enabled": true, "cert_issuer_kind": "Issuer"},
  {"alias": "Web Hook", "workload_type": "expose", "local_port": 4000, "local_address": "127.0.0.2"}
]"#;

#[test]
fn cluster_and_public_exposes_become_exposes_tables() {
    let (d, warnings) = exposes(CLUSTER_AND_PUBLIC);
    let aliases: Vec<&str> = d.iter().map(|d| d.alias.as_str()).collect();
    // The public one is named after its domain's first label, as kftray names its Service.
    assert_eq!(aliases, ["hook", "hook-2", "web-hook"]);
    assert_eq!(
        table(&d[0]),
        "local_port = 3000\nnamespace = \"dev\"\ncontext = \"kind\"\n"
    );
    assert_eq!(
        table(&d[1]),
        "local_port = 8080\nservice = \"hook\"\nnamespace = \"dev\"\ningress = { host = \
         \"hook.dev.example.com\", class = \"nginx\", annotations = { \
         \"nginx.ingress.kubernetes.io/proxy-body-size\" = \"10m\" }, cert_issuer = \
         \"letsencrypt-prod\", cert_issuer_kind = \"Issuer\" }\n"
    );
    assert_eq!(
        table(&d[2]),
        "local_port = 4000\nlocal_address = \"127.0.0.2\"\ndescription = \"Web Hook\"\n"
    );
    assert_eq!(
        warnings,
        [
            "kftray names the Service after the alias, and `Web Hook` cannot name one: the \
          Service is `web-hook`"
        ]
    );
}

#[test]
fn imported_exposes_load_as_kftray_toml_and_export_back() {
    let (drafts, _) = exposes(CLUSTER_AND_PUBLIC);
    let mut file = String::new();
    for d in &drafts {
        file.push_str(&format!("[exposes.{}]\n{}\n", d.alias, table(d)));
    }
    let effective = crate::config::load_str("kftray.toml", &file)
        .unwrap_or_else(|d| panic!("{file}\n{}", d.render(false, 100)));
    let public = &effective.exposes[1];
    assert_eq!((public.service.as_str(), public.port), ("hook", 8080));
    let tls = public.ingress.as_ref().unwrap().tls.as_ref().unwrap();
    assert_eq!(tls.secret, "hook-tls");
    assert_eq!(
        tls.issuer.as_ref().unwrap().annotation(),
        "cert-manager.io/issuer"
    );

    let back: Vec<KftrayConfig> = crate::interop::expose_drafts_of(&effective)
        .iter()
        .map(|d| from_expose(d, d.namespace.as_deref().unwrap_or("default")).unwrap())
        .collect();
    let json = serde_json::to_value(&back).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"alias": "hook", "context": "kind", "exposure_type": "cluster", "local_port": 3000,
             "namespace": "dev", "protocol": "tcp", "workload_type": "expose"},
            {"alias": "hook.dev.example.com", "cert_issuer": "letsencrypt-prod",
             "cert_issuer_kind": "Issuer", "cert_manager_enabled": true,
             "exposure_type": "public",
             "ingress_annotations": "{\"nginx.ingress.kubernetes.io/proxy-body-size\":\"10m\"}",
             "ingress_class": "nginx", "local_port": 8080, "namespace": "dev",
             "protocol": "tcp", "workload_type": "expose"},
            // A name kftray could not give a Service comes back as the Service's.
            {"alias": "web-hook", "exposure_type": "cluster", "local_address": "127.0.0.2",
             "local_port": 4000, "namespace": "default", "protocol": "tcp",
             "workload_type": "expose"}
        ])
    );
}

#[test]
fn expose_problems_are_pinned_to_their_fields() {
    let text = r#"[
  {"alias": "a.example.com", "workload_type": "expose", "exposure_type": "public", "local_port": 3000, "ingress_annotations": "{\"a\": 1}"},
  {"alias": "b", "workload_type": "expose", "exposure_type": "internal", "local_port": 3001},
  {"alias": "c.example.com", "workload_type": "expose", "exposure_type": "public", "local_port": 3002, "ingress_class": "Bad_Class"},
  {"alias": "d.example.com", "workload_type": "expose", "exposure_type": "public", "local_port": 3003, "cert_manager_enabled": true, "cert_issuer_kind": "Cluster"},
  {"alias": "4ever", "workload_type": "expose", "local_port": 3004, "protocol": "udp"},
  {"alias": "f", "workload_type": "expose", "local_port": 0}
]"#;
    let err = drafts(text).unwrap_err();
    let got: Vec<(String, usize, usize)> = places(&err)
        .into_iter()
        .map(|(c, l, col, _)| (c, l, col))
        .collect();
    assert_eq!(
        got,
        [
            ("kftray::json-annotations".into(), 2, 127),
            ("kftray::json-exposure".into(), 3, 62),
            ("kftray::ingress".into(), 4, 121),
            ("kftray::json-issuer".into(), 5, 154),
            ("kftray::json-protocol".into(), 6, 81),
            ("kftray::json-port".into(), 7, 59),
        ]
    );
    let messages: Vec<&str> = err.findings().iter().map(|f| f.message.as_str()).collect();
    assert!(
        messages[0].starts_with("`ingress_annotations` is not a JSON object of strings: "),
        "{}",
        messages[0]
    );
    assert_eq!(messages[1], "unknown exposure_type `internal`");
    assert_eq!(messages[2], "`Bad_Class` cannot name an IngressClass");
    assert_eq!(messages[3], "`Cluster` is not a cert-manager issuer kind");
    assert_eq!(messages[4], "an expose carries TCP only");
    assert_eq!(messages[5], "local port 0 is not a port");

    // What kftray.toml refuses is found where it came from: a Service named after the alias.
    let text = r#"[{"alias": "4ever", "workload_type": "expose", "local_port": 3004}]"#;
    let err = drafts(text).unwrap_err();
    assert_eq!(
        places(&err)
            .into_iter()
            .map(|(c, l, col, _)| (c, l, col))
            .collect::<Vec<_>>(),
        [("kftray::service-name".to_owned(), 1, 12)]
    );
}

#[test]
fn fields_an_expose_has_no_use_for_are_warned_about() {
    let (d, warnings) = exposes(
        r#"[{"alias": "hook", "workload_type": "expose", "local_port": 3000, "remote_port": 80,
            "ingress_class": "nginx", "auto_loopback_address": false},
            {"alias": "x.example.com", "workload_type": "expose", "exposure_type": "public",
            "local_port": 3001, "cert_issuer": "letsencrypt-staging"}]"#,
    );
    assert_eq!(
        warnings,
        [
            "`remote_port` has no use in an expose: ignored",
            "`ingress_class` is for a public expose's Ingress: ignored",
            "`cert_issuer` is used only with \"cert_manager_enabled\": true: ignored",
        ]
    );
    assert_eq!(d[0].ingress, None);
    assert_eq!(d[1].ingress.as_ref().unwrap().tls, None);
}

#[test]
fn export_refuses_what_kftrays_expose_cannot_carry() {
    let (d, _) = exposes(CLUSTER_AND_PUBLIC);
    let refused = |change: &dyn Fn(&mut ExposeDraft)| {
        let mut draft = d[1].clone();
        change(&mut draft);
        from_expose(&draft, "dev").unwrap_err().to_string()
    };
    assert_eq!(
        refused(&|d| d.port = 80),
        "kftray's expose has one port, the local server's and the Service's, and this \
         Service's port 80 is not local_port 8080"
    );
    assert!(refused(&|d| d.ingress.as_mut().unwrap().path = "/hooks".into()).contains("`/hooks`"));
    assert!(
        refused(&|d| d.ingress.as_mut().unwrap().tls.as_mut().unwrap().issuer = None)
            .contains("Secret `hook-tls` without a cert_issuer")
    );
    assert!(
        refused(&|d| d.service = "webhook".into())
            .contains("Service `webhook` is not the first label of `hook.dev.example.com`")
    );
    assert_eq!(
        refused(&|d| d.protocol = crate::config::Protocol::Udp),
        "kftray's expose carries TCP only, and this one is UDP"
    );
    // A cluster expose has no host, so any Service name goes.
    let mut cluster = d[0].clone();
    cluster.service = "webhook".into();
    assert_eq!(
        from_expose(&cluster, "dev").unwrap().alias.as_deref(),
        Some("webhook")
    );
}
