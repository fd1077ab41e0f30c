//! Valid files resolved: defaults applied, ports expanded, paths resolved, forwards selected.

use super::super::*;
use super::{WEB, findings, one};
use std::net::IpAddr;

#[test]
fn defaults_apply_and_forwards_override_them() {
    let text = "[defaults]\ncontext = \"dev\"\nnamespace = \"shop\"\nlocal_address = \"127.0.0.3\"\n\
                [forwards.web]\nservice = \"web\"\nremote_port = 80\n\
                [forwards.db]\nstatefulset = \"pg\"\nremote_port = 5432\nlocal_port = \"any\"\n\
                namespace = \"data\"\ncontext = \"prod\"\n";
    let e = load_str("kftray.toml", text).unwrap();
    let (db, web) = (&e.forwards[0], &e.forwards[1]);
    assert_eq!(web.context.as_deref(), Some("dev"));
    assert_eq!(web.namespace.as_deref(), Some("shop"));
    assert_eq!(web.local_address, "127.0.0.3".parse::<IpAddr>().unwrap());
    assert_eq!(
        web.local_port,
        LocalPort::Fixed(80),
        "local port defaults to the remote number"
    );
    assert_eq!(web.protocol, Protocol::Tcp);
    assert!(web.enabled);
    assert_eq!(db.context.as_deref(), Some("prod"));
    assert_eq!(db.namespace.as_deref(), Some("data"));
    assert_eq!(db.local_port, LocalPort::Any);
    assert_eq!(
        db.target,
        Target::Workload {
            workload: WorkloadKind::StatefulSet,
            name: "pg".into()
        }
    );
    let bare = load_str("kftray.toml", WEB).unwrap();
    assert_eq!(bare.forwards[0].context, None);
    assert_eq!(bare.forwards[0].namespace, None);
    assert_eq!(
        bare.forwards[0].local_address,
        "127.0.0.1".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn a_ports_list_makes_one_forward_per_port() {
    let text =
        "[forwards.api]\nservice = \"api\"\nports = [\"8080:http\", \"9090\", \"any:grpc\"]\n";
    let e = load_str("kftray.toml", text).unwrap();
    let names: Vec<_> = e.forwards.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["api:9090", "api:grpc", "api:http"]);
    assert_eq!(e.forwards[0].local_port, LocalPort::Fixed(9090));
    assert_eq!(e.forwards[1].local_port, LocalPort::Any);
    assert_eq!(e.forwards[2].remote_port, PortRef::Name("http".into()));
    let text = "[forwards.api]\nservice = \"api\"\nports = [\"http\"]\n";
    assert_eq!(one(text).0, "kftray::ports");
    let text = "[forwards.api]\nservice = \"api\"\nports = [\"80\"]\nremote_port = 80\n";
    assert_eq!(one(text).0, "kftray::ports");
}

#[test]
fn kubeconfig_paths_expand_home_and_resolve_against_the_file() {
    let text = format!("{WEB}kubeconfig = \"clusters/dev.yaml\"\n");
    let e = load_str("/project/kftray.toml", &text).unwrap();
    assert_eq!(
        e.forwards[0].kubeconfig.as_deref(),
        Some(std::path::Path::new("/project/clusters/dev.yaml"))
    );
    if let Some(home) = std::env::var_os("HOME") {
        let text = format!("{WEB}kubeconfig = \"~/.kube/dev\"\n");
        let e = load_str("/project/kftray.toml", &text).unwrap();
        assert_eq!(
            e.forwards[0].kubeconfig,
            Some(std::path::PathBuf::from(home).join(".kube/dev"))
        );
    }
}

#[test]
fn tags_select_a_subset_of_the_enabled_forwards() {
    let text = "[forwards.a]\nservice = \"a\"\nremote_port = 1\ntags = [\"backend\", \"x\"]\n\
                [forwards.b]\nservice = \"b\"\nremote_port = 2\ntags = [\"frontend\"]\n\
                [forwards.c]\nservice = \"c\"\nremote_port = 3\ntags = [\"backend\"]\nenabled = false\n";
    let e = load_str("kftray.toml", text).unwrap();
    let names = |tags: &[String]| e.selected(tags).map(|f| f.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&[]), ["a", "b"]);
    assert_eq!(names(&["backend".into()]), ["a"]);
    assert_eq!(e.tags(), ["backend", "frontend", "x"]);
}

#[test]
fn sync_resolves_with_defaults() {
    let text = format!("{WEB}[sync]\nrepo = \"git@github.com:acme/dev.git\"\n");
    let s = load_str("kftray.toml", &text).unwrap().sync.unwrap();
    assert_eq!(s.reference, "HEAD");
    assert_eq!(s.path, std::path::PathBuf::from("kftray.toml"));
    assert_eq!(s.interval, std::time::Duration::from_secs(60));
    let text = format!("{WEB}[sync]\nrepo = \"not a url\"\npath = \"../x.toml\"\n");
    let codes: Vec<_> = findings(&text).into_iter().map(|f| f.0).collect();
    assert_eq!(codes, ["kftray::sync", "kftray::sync"]);
}

#[test]
fn the_effective_config_compares_by_value() {
    let a = load_str("a.toml", WEB).unwrap();
    let b = load_str("a.toml", &format!("# a comment\n{WEB}")).unwrap();
    assert_eq!(a.forwards, b.forwards);
    let c = load_str("a.toml", &WEB.replace("80", "81")).unwrap();
    assert_ne!(a.forwards, c.forwards);
}

#[test]
fn the_checked_in_schema_is_what_the_model_generates() {
    let checked_in = include_str!("../../../schema/kftray.schema.json");
    assert!(
        checked_in == schema_json(),
        "schema/kftray.schema.json is stale: run `cargo run -- schema > schema/kftray.schema.json`"
    );
}
