//! Host names, `local_address = "auto"` and the proxy into the cluster: what the file may
//! say, where a mistake is pointed at, and what the team's file from git may not decide.

use super::super::*;
use super::{WEB, findings, one};

const TEAM: &str = "https://git.example/team.git@abc:kftray.toml";

#[test]
fn a_domain_must_be_a_host_name_of_our_own() {
    let e = load_str("kftray.toml", &format!("{WEB}domain = \"Web.Dev.Test\"\n")).unwrap();
    assert_eq!(e.forwards[0].domain.as_deref(), Some("web.dev.test"));
    for bad in [
        "web_dev",
        "localhost",
        "api.localhost",
        "127.0.0.1",
        "-web.test",
        "a..b",
    ] {
        let (code, line, column) = one(&format!("{WEB}domain = \"{bad}\"\n"));
        assert_eq!(
            (code.as_str(), line, column),
            ("kftray::domain", 4, 10),
            "{bad}"
        );
    }
    // A name for a forward on another machine's address cannot go in the hosts file.
    let exposed = format!(
        "{WEB}domain = \"web.test\"\nlocal_address = \"192.0.2.1\"\nexpose_to_network = true\n"
    );
    assert_eq!(one(&exposed).0, "kftray::domain");
    // 0.0.0.0 answers on loopback too.
    let everywhere = format!(
        "{WEB}domain = \"web.test\"\nlocal_address = \"0.0.0.0\"\nexpose_to_network = true\n"
    );
    assert!(load_str("kftray.toml", &everywhere).is_ok());
}

#[test]
fn two_forwards_cannot_claim_one_name() {
    let text = "[forwards.a]\nservice = \"a\"\nremote_port = 80\ndomain = \"api.test\"\n\n\
                [forwards.b]\nservice = \"b\"\nremote_port = 81\ndomain = \"API.test\"\n";
    let d = load_str("kftray.toml", text).unwrap_err();
    assert_eq!(d.len(), 1);
    let f = &d.findings()[0];
    assert_eq!(f.code, "kftray::domain-conflict");
    assert_eq!((f.line, f.column), (Some(4), Some(10)));
    assert_eq!(f.labels[1].line, 9);
    // A disabled one claims nothing; each port of one alias shares its name.
    let disabled = text.replace(
        "domain = \"API.test\"",
        "domain = \"API.test\"\nenabled = false",
    );
    assert!(load_str("kftray.toml", &disabled).is_ok());
    let ports = "[forwards.a]\nservice = \"a\"\nports = [\"80\", \"81\"]\ndomain = \"api.test\"\n";
    let e = load_str("kftray.toml", ports).unwrap();
    assert!(
        e.forwards
            .iter()
            .all(|f| f.domain.as_deref() == Some("api.test"))
    );
}

#[test]
fn the_team_file_cannot_name_hosts_on_this_machine_unless_the_user_says_so() {
    let named = format!("{WEB}domain = \"web.team.test\"\n");
    let d = load_layers(vec![Layer::remote(TEAM, named.as_str(), "/p".into())]).unwrap_err();
    let f = &d.findings()[0];
    assert_eq!(
        (f.code.as_str(), f.file.to_str().unwrap(), f.line, f.column),
        ("kftray::trust", TEAM, Some(4), Some(10))
    );
    assert!(
        f.help
            .as_deref()
            .unwrap()
            .contains("[trust] domains = true")
    );

    // The user's own [trust] accepts the team's names…
    let trusting = "[trust]\ndomains = true\n";
    let e = load_layers(vec![
        Layer::remote(TEAM, named.as_str(), "/p".into()),
        Layer::local("/p/kftray.local.toml", trusting),
    ])
    .unwrap();
    assert_eq!(e.forwards[0].domain.as_deref(), Some("web.team.test"));
    // …and so does a domain the user writes for the team's forward.
    let own = "[forwards.web]\ndomain = \"web.mine.test\"\n";
    let e = load_layers(vec![
        Layer::remote(TEAM, named.as_str(), "/p".into()),
        Layer::local("/p/kftray.local.toml", own),
    ])
    .unwrap();
    assert_eq!(e.forwards[0].domain.as_deref(), Some("web.mine.test"));
    // The team cannot trust itself.
    let self_trust = format!("[trust]\ndomains = true\n{named}");
    let d = load_layers(vec![Layer::remote(TEAM, self_trust.as_str(), "/p".into())]).unwrap_err();
    let codes: Vec<(&str, Option<usize>)> = d
        .findings()
        .iter()
        .map(|f| (f.code.as_str(), f.line))
        .collect();
    assert_eq!(codes, [("kftray::trust", Some(1))]);
}

#[test]
fn auto_addresses_are_stable_distinct_and_keep_the_remote_port() {
    let text = "[defaults]\nlocal_address = \"auto\"\n\n\
                [forwards.pg-staging]\nservice = \"postgres\"\ncontext = \"staging\"\nremote_port = 5432\n\n\
                [forwards.pg-prod]\nservice = \"postgres\"\ncontext = \"prod\"\nremote_port = 5432\n\n\
                [forwards.api]\nservice = \"api\"\nports = [\"80\", \"9090\"]\n";
    let e = load_str("/home/dev/shop/kftray.toml", text).unwrap();
    let at = |name: &str| {
        let f = e.forwards.iter().find(|f| f.name == name).unwrap();
        assert!(f.local_address_auto);
        f.local_address
    };
    assert_ne!(at("pg-staging"), at("pg-prod"));
    assert_eq!(
        at("api:80"),
        at("api:9090"),
        "the ports of one alias share it"
    );
    for name in ["pg-staging", "pg-prod", "api:80"] {
        let std::net::IpAddr::V4(v4) = at(name) else {
            panic!("not IPv4")
        };
        assert!(is_auto(v4), "{v4}");
    }
    // The same project gets the same addresses again; another project other ones.
    let again = load_str("/home/dev/shop/kftray.toml", text).unwrap();
    assert_eq!(again.forwards, e.forwards);
    let other = load_str("/home/dev/billing/kftray.toml", text).unwrap();
    assert_ne!(other.forwards[0].local_address, e.forwards[0].local_address);
    // Two auto forwards on one port are no conflict.
    assert_eq!(findings(text), []);
}

#[test]
fn two_aliases_whose_addresses_meet_are_moved_apart() {
    // Whatever alias the hash gives an address another alias of the file already has (here
    // a fixed one), it takes the next.
    let first = auto_address(
        &project_dir(std::path::Path::new("/p/kftray.toml"))
            .display()
            .to_string(),
        "db",
    );
    let text = format!(
        "[forwards.db]\nservice = \"db\"\nremote_port = 5432\nlocal_address = \"auto\"\n\n\
         [forwards.fixed]\nservice = \"db\"\nremote_port = 5432\nlocal_address = \"{first}\"\n"
    );
    let e = load_str("/p/kftray.toml", &text).unwrap();
    let db = e.forwards.iter().find(|f| f.name == "db").unwrap();
    assert_eq!(db.local_address, std::net::IpAddr::V4(next_auto(first)));
}

#[test]
fn the_proxy_section_is_checked_and_inherits_the_defaults() {
    let text = "[defaults]\ncontext = \"staging\"\nnamespace = \"shop\"\n\n\
                [proxy]\nsocks = 1080\nhttp = 3128\n";
    let e = load_str("kftray.toml", text).unwrap();
    let proxy = e.proxy.unwrap();
    assert_eq!((proxy.socks, proxy.http), (Some(1080), Some(3128)));
    assert_eq!(proxy.context.as_deref(), Some("staging"));
    assert_eq!(proxy.namespace.as_deref(), Some("shop"));
    assert!(proxy.local_address.is_loopback());

    assert_eq!(one("[proxy]\nnamespace = \"x\"\n").0, "kftray::proxy");
    assert_eq!(
        one("[proxy]\nsocks = 70000\n"),
        ("kftray::port-range".into(), 2, 9)
    );
    assert_eq!(
        one("[proxy]\nsocks = 1080\nhttp = 1080\n").0,
        "kftray::port-conflict"
    );
    assert_eq!(one("[proxy]\nsock = 1080\n").0, "kftray::unknown-key");
    assert_eq!(
        one("[proxy]\nsocks = \"1080\"\n"),
        ("kftray::wrong-type".into(), 2, 9)
    );
    assert_eq!(
        one("[proxy]\nsocks = 1080\nlocal_address = \"0.0.0.0\"\n"),
        ("kftray::not-loopback".into(), 3, 17)
    );
    // A forward on the proxy's port is pointed at on both sides.
    let clash = format!("[proxy]\nsocks = 80\n\n{WEB}");
    let d = load_str("kftray.toml", &clash).unwrap_err();
    let f = &d.findings()[0];
    assert_eq!(f.code, "kftray::port-conflict");
    assert!(f.message.contains("proxy.socks"), "{}", f.message);
}

#[test]
fn the_team_file_may_offer_a_proxy_on_loopback_only() {
    let team = "[proxy]\nsocks = 1080\n";
    assert!(load_layers(vec![Layer::remote(TEAM, team, "/p".into())]).is_ok());
    let exposed = "[proxy]\nsocks = 1080\nlocal_address = \"0.0.0.0\"\nexpose_to_network = true\n";
    let d = load_layers(vec![Layer::remote(TEAM, exposed, "/p".into())]).unwrap_err();
    assert_eq!(d.findings()[0].code, "kftray::trust");
    assert!(d.findings()[0].message.contains("[proxy]"));
    let allowed = "[proxy]\nexpose_to_network = true\n";
    assert!(
        load_layers(vec![
            Layer::remote(TEAM, exposed, "/p".into()),
            Layer::local("/p/kftray.local.toml", allowed),
        ])
        .is_ok()
    );
}

#[test]
fn an_expose_takes_its_service_and_port_from_the_alias_and_local_port() {
    let text = "[defaults]\nnamespace = \"shop\"\n\n\
                [exposes.webhook]\nlocal_port = 3000\n\n\
                [exposes.debugger]\nlocal_port = 5005\nlocal_address = \"localhost\"\nservice = \"dbg\"\nport = 80\nenabled = false\n";
    let e = load_str("kftray.toml", text).unwrap();
    let webhook = e.exposes.iter().find(|x| x.alias == "webhook").unwrap();
    assert_eq!(
        (
            webhook.service.as_str(),
            webhook.port,
            webhook.local.to_string().as_str()
        ),
        ("webhook", 3000, "127.0.0.1:3000")
    );
    assert_eq!(webhook.namespace.as_deref(), Some("shop"));
    assert_eq!(webhook.name(), "expose.webhook");
    let debugger = e.exposes.iter().find(|x| x.alias == "debugger").unwrap();
    assert_eq!((debugger.service.as_str(), debugger.port), ("dbg", 80));
    assert!(!debugger.enabled);
    assert!(e.names("expose.webhook") && !e.names("webhook"));
}

#[test]
fn a_bad_expose_is_pointed_at() {
    assert_eq!(one("[exposes.hook]\nport = 80\n").0, "kftray::expose");
    assert_eq!(
        one("[exposes.hook]\nlocal_port = 70000\n"),
        ("kftray::port-range".into(), 2, 14)
    );
    assert_eq!(
        one("[exposes.hook]\nlocal_port = 3000\nservice = \"Hook_1\"\n"),
        ("kftray::service-name".into(), 3, 11)
    );
    assert_eq!(
        one("[exposes.1hook]\nlocal_port = 3000\n").0,
        "kftray::service-name"
    );
    assert_eq!(
        one("[exposes.hook]\nlocal_port = 3000\nlocal_address = \"here\"\n").0,
        "kftray::local-address"
    );
    assert_eq!(
        one("[exposes.hook]\nlocal_prt = 3000\n").0,
        "kftray::unknown-key"
    );
}

#[test]
fn the_team_file_cannot_expose_this_machine_unless_the_user_says_so() {
    let team = "[exposes.hook]\nlocal_port = 3000\n";
    let d = load_layers(vec![Layer::remote(TEAM, team, "/p".into())]).unwrap_err();
    let f = &d.findings()[0];
    assert_eq!((f.code.as_str(), f.line), ("kftray::trust", Some(1)));
    assert!(
        f.help
            .as_deref()
            .unwrap()
            .contains("[trust] exposes = true")
    );
    let trusting = "[trust]\nexposes = true\n";
    let e = load_layers(vec![
        Layer::remote(TEAM, team, "/p".into()),
        Layer::local("/p/kftray.local.toml", trusting),
    ])
    .unwrap();
    assert_eq!(e.exposes.len(), 1);
    // An expose the user writes is theirs.
    assert!(load_layers(vec![Layer::local("/p/kftray.toml", team)]).is_ok());
}

#[test]
fn an_expose_can_have_an_ingress_with_a_certificate() {
    let text = "[exposes.webhook]\nlocal_port = 3000\nport = 80\n\
                ingress = { host = \"hook.dev.example.com\", class = \"nginx\", \
                cert_issuer = \"letsencrypt-prod\", \
                annotations = { \"nginx.ingress.kubernetes.io/proxy-body-size\" = \"10m\" } }\n\n\
                [exposes.plain]\nlocal_port = 4000\n\n\
                [exposes.plain.ingress]\nhost = \"*.dev.example.com\"\npath = \"/hooks\"\n\
                tls_secret = \"wildcard\"\n\n\
                [exposes.own]\nlocal_port = 5000\ningress = { host = \"own.example.com\", \
                cert_issuer = \"team-ca\", cert_issuer_kind = \"Issuer\" }\n";
    let e = load_str("kftray.toml", text).unwrap();
    let of = |alias: &str| {
        e.exposes
            .iter()
            .find(|x| x.alias == alias)
            .and_then(|x| x.ingress.clone())
            .unwrap()
    };
    let webhook = of("webhook");
    assert_eq!(
        (webhook.host.as_str(), webhook.path.as_str()),
        ("hook.dev.example.com", "/")
    );
    assert_eq!(webhook.class.as_deref(), Some("nginx"));
    assert_eq!(
        webhook.annotations["nginx.ingress.kubernetes.io/proxy-body-size"],
        "10m"
    );
    let tls = webhook.tls.unwrap();
    assert_eq!(tls.secret, "webhook-tls");
    let issuer = tls.issuer.unwrap();
    assert_eq!(
        (issuer.annotation(), issuer.name.as_str()),
        ("cert-manager.io/cluster-issuer", "letsencrypt-prod")
    );
    // A certificate already there, no issuer.
    let plain = of("plain");
    assert_eq!(plain.path, "/hooks");
    let tls = plain.tls.unwrap();
    assert_eq!((tls.secret.as_str(), tls.issuer), ("wildcard", None));
    let own = of("own").tls.unwrap().issuer.unwrap();
    assert_eq!(own.annotation(), "cert-manager.io/issuer");
    // No ingress, no Ingress.
    let none = load_str("kftray.toml", "[exposes.a]\nlocal_port = 1\n").unwrap();
    assert_eq!(none.exposes[0].ingress, None);
}

#[test]
fn a_bad_ingress_is_pointed_at() {
    let with = |ingress: &str| {
        one(&format!(
            "[exposes.hook]\nlocal_port = 3000\ningress = {{ {ingress} }}\n"
        ))
    };
    assert_eq!(with("class = \"nginx\""), ("kftray::ingress".into(), 3, 11));
    assert_eq!(
        with("host = \"10.0.0.1\""),
        ("kftray::ingress".into(), 3, 20)
    );
    assert_eq!(with("host = \"Hook.Example.com\"").0, "kftray::ingress");
    assert_eq!(
        with("host = \"a.b\", path = \"hooks\""),
        ("kftray::ingress".into(), 3, 34)
    );
    assert_eq!(
        with("host = \"a.b\", cert_issuer_kind = \"Issuer\"").0,
        "kftray::ingress"
    );
    assert_eq!(
        with("host = \"a.b\", cert_issuer = \"x\", cert_issuer_kind = \"issuer\"").0,
        "kftray::ingress"
    );
    assert_eq!(
        with("host = \"a.b\", annotations = { \"bad key!\" = \"1\" }").0,
        "kftray::ingress"
    );
    assert_eq!(
        with("host = \"a.b\", hots = \"c.d\"").0,
        "kftray::unknown-key"
    );
    assert_eq!(with("host = 3").0, "kftray::wrong-type");
}

#[test]
fn the_team_file_needs_its_own_trust_for_an_ingress() {
    let team = "[exposes.hook]\nlocal_port = 3000\ningress = { host = \"hook.example.com\" }\n";
    let only_exposes = "[trust]\nexposes = true\n";
    let d = load_layers(vec![
        Layer::remote(TEAM, team, "/p".into()),
        Layer::local("/p/kftray.local.toml", only_exposes),
    ])
    .unwrap_err();
    let f = &d.findings()[0];
    assert_eq!((f.code.as_str(), f.line), ("kftray::trust", Some(3)));
    assert!(
        f.help
            .as_deref()
            .unwrap()
            .contains("[trust] ingresses = true")
    );
    let both = "[trust]\nexposes = true\ningresses = true\n";
    let e = load_layers(vec![
        Layer::remote(TEAM, team, "/p".into()),
        Layer::local("/p/kftray.local.toml", both),
    ])
    .unwrap();
    assert!(e.exposes[0].ingress.is_some());
}

#[test]
fn a_udp_expose_has_no_ingress() {
    let e = load_str(
        "kftray.toml",
        "[exposes.dns]\nlocal_port = 5353\nprotocol = \"udp\"\n",
    )
    .unwrap();
    assert_eq!(e.exposes[0].protocol, Protocol::Udp);
    let tcp = load_str("kftray.toml", "[exposes.web]\nlocal_port = 80\n").unwrap();
    assert_eq!(tcp.exposes[0].protocol, Protocol::Tcp);
    assert_eq!(
        one("[exposes.dns]\nlocal_port = 5353\nprotocol = \"udp\"\ningress = { host = \"a.b\" }\n"),
        ("kftray::ingress".into(), 4, 11)
    );
    assert_eq!(
        one("[exposes.dns]\nlocal_port = 5353\nprotocol = \"sctp\"\n").0,
        "kftray::wrong-type"
    );
}
