//! kftray JSON → kftray.toml → kftray JSON gives back every field, for any set of forwards
//! and exposes as the kftray app exports them (property test over generated configs).

use kftray::edit::merge::{OnConflict, Options, merge};
use kftray::edit::{Files, Layer};
use kftray::interop::{drafts_of, expose_drafts_of, kftray_json};
use kftray_json::KftrayConfig;
use proptest::prelude::*;
use std::path::Path;

fn alias() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,12}[a-z0-9]",
        "[A-Za-z0-9 ._-]{1,20}",
        "[a-z]{2,8}\\.(local|dev\\.local)",
        Just("Web Frontend (staging)".to_owned()),
        Just("...".to_owned()),
    ]
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}[a-z0-9]"
}

/// One forward the way kftray's export writes it: no placeholders, no `127.0.0.1`, no
/// `domain_enabled: false`, a namespace and a protocol always.
fn config() -> impl Strategy<Value = KftrayConfig> {
    let target = prop_oneof![
        name().prop_map(|n| ("service", n)),
        (name(), name()).prop_map(|(k, v)| ("pod", format!("{k}={v}"))),
        (name(), name()).prop_map(|(k, v)| ("pod", format!("app={k},tier!={v}"))),
        prop_oneof![
            "[a-z]{3,8}(\\.[a-z]{2,6}){1,2}",
            "10\\.[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}"
        ]
        .prop_map(|h| ("proxy", h)),
    ];
    (
        (alias(), target, name()),
        (
            proptest::option::of(prop_oneof![
                name(),
                Just("arn:aws:eks:eu-west-1:1234:cluster/dev".to_owned())
            ]),
            proptest::option::of(prop_oneof![
                Just("~/.kube/config".to_owned()),
                Just("~/.kube/dev.yaml".to_owned()),
                Just("/etc/kubernetes/admin.conf".to_owned()),
            ]),
            proptest::option::of(prop_oneof![
                Just("127.0.0.2".to_owned()),
                Just("127.1.2.3".to_owned()),
                Just("::1".to_owned()),
                Just("0.0.0.0".to_owned()),
            ]),
            // kftray's own pick of a loopback address, `local_address = "auto"` here.
            proptest::option::of(Just(true)),
        ),
        (
            proptest::option::of(1u16..=65535),
            1u16..=65535,
            any::<bool>(),
            proptest::option::of(Just(true)),
        ),
        // HTTP logs as the app writes them: all four fields, no retention without cleanup.
        proptest::option::of((1u64..=100 << 20, 1u64..=365, any::<bool>())),
    )
        .prop_map(
            |(
                (alias, (kind, target), namespace),
                (context, kubeconfig, local_address, auto_loopback_address),
                (local_port, remote_port, udp, domain_enabled),
                http_logs,
            )| {
                // Only services and proxies carry UDP, in kftray.toml; HTTP only TCP.
                let udp = udp && kind != "pod";
                let http_logs = http_logs.filter(|_| !udp);
                // The app's pick replaces the address it would have had.
                let local_address = local_address.filter(|_| auto_loopback_address.is_none());
                KftrayConfig {
                    alias: Some(alias),
                    auto_loopback_address,
                    context,
                    domain_enabled,
                    http_logs_auto_cleanup: http_logs.map(|(_, _, cleanup)| cleanup),
                    http_logs_enabled: http_logs.map(|_| true),
                    http_logs_max_file_size: http_logs.map(|(size, _, _)| size),
                    http_logs_retention_days: http_logs
                        .and_then(|(_, days, cleanup)| cleanup.then_some(days)),
                    kubeconfig,
                    local_address,
                    local_port,
                    namespace: Some(namespace),
                    protocol: Some(if udp { "udp" } else { "tcp" }.to_owned()),
                    remote_address: (kind == "proxy").then(|| target.clone()),
                    remote_port: Some(remote_port),
                    service: (kind == "service").then(|| target.clone()),
                    target: (kind == "pod").then(|| target.clone()),
                    workload_type: Some(kind.to_owned()),
                    ..KftrayConfig::default()
                }
            },
        )
}

/// One expose the way kftray's export writes it: "cluster" without any Ingress field;
/// "public" with its domain as the alias, the annotations as a compact JSON string, and an
/// issuer named with its kind whenever cert-manager is on.
fn expose() -> impl Strategy<Value = KftrayConfig> {
    let annotations = proptest::collection::btree_map(
        "[a-z]{1,8}\\.example\\.com/[a-z][a-z-]{0,8}[a-z]",
        "[a-zA-Z0-9 ./-]{0,12}",
        1..3,
    );
    let ingress = (
        prop_oneof![Just("example.com"), Just("dev.example.com")],
        proptest::option::of(prop_oneof![Just("nginx".to_owned()), name()]),
        proptest::option::of(annotations),
        proptest::option::of((name(), prop_oneof![Just("ClusterIssuer"), Just("Issuer")])),
    );
    (
        (name(), name(), 1u16..=65535),
        (
            proptest::option::of(name()),
            proptest::option::of(Just("~/.kube/dev.yaml".to_owned())),
            proptest::option::of(prop_oneof![
                Just("127.0.0.2".to_owned()),
                Just("::1".to_owned()),
                Just("192.168.1.10".to_owned()),
            ]),
        ),
        proptest::option::of(ingress),
    )
        .prop_map(
            |((service, namespace, local_port), (context, kubeconfig, local_address), ingress)| {
                let mut c = KftrayConfig {
                    alias: Some(service.clone()),
                    context,
                    exposure_type: Some("cluster".into()),
                    kubeconfig,
                    local_address,
                    local_port: Some(local_port),
                    namespace: Some(namespace),
                    protocol: Some("tcp".into()),
                    workload_type: Some("expose".into()),
                    ..KftrayConfig::default()
                };
                if let Some((domain, class, annotations, issuer)) = ingress {
                    c.alias = Some(format!("{service}.{domain}"));
                    c.exposure_type = Some("public".into());
                    c.ingress_class = class;
                    c.ingress_annotations = annotations.map(|a| serde_json::to_string(&a).unwrap());
                    c.cert_manager_enabled = issuer.as_ref().map(|_| true);
                    c.cert_issuer_kind = issuer.as_ref().map(|(_, kind)| kind.to_string());
                    c.cert_issuer = issuer.map(|(name, _)| name);
                }
                c
            },
        )
}

/// Forwards that kftray would also refuse to run side by side are left out: two on one
/// local port. (An expose's local port is its server's: several may share one.)
fn configs() -> impl Strategy<Value = Vec<KftrayConfig>> {
    let entry = prop_oneof![3 => config(), 1 => expose()];
    proptest::collection::vec(entry, 1..8).prop_filter("distinct local ports", |list| {
        let mut ports: Vec<u16> = list
            .iter()
            .filter(|c| c.workload_type.as_deref() != Some("expose"))
            .filter_map(|c| c.local_port)
            .collect();
        let n = ports.len();
        ports.sort_unstable();
        ports.dedup();
        ports.len() == n
    })
}

fn round_trip(configs: &[KftrayConfig]) -> Vec<KftrayConfig> {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Files::open(&dir.path().join("kftray.toml")).unwrap();
    let json = serde_json::to_string_pretty(configs).unwrap();
    let parsed = kftray_json::parse(Path::new("in.json"), &json).unwrap();
    let imported = parsed
        .drafts(&files, Layer::Base)
        .unwrap_or_else(|d| panic!("{json}\n{}", d.render(false, 100)));
    let options = Options {
        layer: Layer::Base,
        on_conflict: OnConflict::Refuse,
        move_ports: false,
    };
    let plan = merge(&mut files, &imported.forwards, options).ok().unwrap();
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    let plan = merge(&mut files, &imported.exposes, options).ok().unwrap();
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    let text = files.base.text();
    let effective = kftray::config::load_str(dir.path().join("kftray.toml"), &text)
        .unwrap_or_else(|d| panic!("{text}\n{}", d.render(false, 100)));
    let forwards = drafts_of(&effective)
        .into_iter()
        .flat_map(|d| kftray_json::from_draft(&d, d.namespace.as_deref().unwrap()).unwrap());
    let exposes = expose_drafts_of(&effective)
        .into_iter()
        .map(|d| kftray_json::from_expose(&d, d.namespace.as_deref().unwrap()).unwrap());
    forwards.chain(exposes).collect()
}

fn sorted(mut list: Vec<KftrayConfig>) -> Vec<String> {
    let mut out: Vec<String> = list
        .drain(..)
        .map(|c| serde_json::to_string(&c).unwrap())
        .collect();
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn json_to_toml_to_json_keeps_every_field(configs in configs()) {
        let back = round_trip(&configs);
        prop_assert_eq!(sorted(back), sorted(configs));
    }
}

#[test]
fn the_documented_examples_come_back_as_they_were() {
    let configs: Vec<KftrayConfig> = serde_json::from_str(
        r#"[
  {"alias": "consul-ui", "context": "kind-7", "local_port": 8500, "namespace": "consul",
   "protocol": "tcp", "remote_port": 8500, "service": "consul-ui", "workload_type": "service"},
  {"alias": "redis-gcp", "context": "kind-6", "local_port": 26379, "namespace": "default",
   "protocol": "udp", "remote_address": "redis-prod.gcp.internal", "remote_port": 6379,
   "workload_type": "proxy"},
  {"alias": "web-frontend-svc", "context": "dev-cluster", "kubeconfig": "~/.kube/config",
   "local_port": 8080, "namespace": "webapp", "protocol": "tcp", "remote_port": 80,
   "service": "frontend-service", "workload_type": "service", "domain_enabled": true},
  {"alias": "auth-api-pod", "context": "dev-cluster", "local_address": "127.0.0.2",
   "local_port": 9001, "namespace": "backend", "protocol": "tcp", "remote_port": 8080,
   "target": "app=auth", "workload_type": "pod"},
  {"alias": "webhook", "context": "dev-cluster", "exposure_type": "cluster",
   "local_address": "127.0.0.2", "local_port": 3000, "namespace": "webapp", "protocol": "tcp",
   "workload_type": "expose"},
  {"alias": "hook.dev.example.com", "cert_issuer": "letsencrypt-prod",
   "cert_issuer_kind": "ClusterIssuer", "cert_manager_enabled": true, "context": "dev-cluster",
   "exposure_type": "public", "ingress_class": "nginx",
   "ingress_annotations": "{\"nginx.ingress.kubernetes.io/proxy-body-size\":\"10m\"}",
   "local_port": 8080, "namespace": "webapp", "protocol": "tcp", "workload_type": "expose"}
]"#,
    )
    .unwrap();
    assert_eq!(sorted(round_trip(&configs)), sorted(configs));
}
