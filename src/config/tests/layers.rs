//! Layers: the user's overlay over the team's file, and what the team's file may not decide
//! for this machine.

use super::super::*;
use super::WEB;

#[test]
fn the_local_file_overrides_by_alias_and_points_into_itself() {
    let base = "[defaults]\ncontext = \"dev\"\n\
                [forwards.web]\nservice = \"web\"\nremote_port = 80\nlocal_port = 3000\n\
                [forwards.db]\nservice = \"db\"\nremote_port = 5432\n";
    let local = "[defaults]\ncontext = \"dev-eu\"\n\
                 [forwards.web]\nlocal_port = 13000\n\
                 [forwards.db]\npod = \"db-0\"\n\
                 [forwards.mine]\npod = \"debug\"\nremote_port = 4000\n";
    let e = load_layers(vec![
        Layer::local("kftray.toml", base),
        Layer::local("kftray.local.toml", local),
    ])
    .unwrap();
    let by_name = |n: &str| e.forwards.iter().find(|f| f.name == n).unwrap();
    assert_eq!(by_name("web").local_port, LocalPort::Fixed(13000));
    assert_eq!(by_name("web").context.as_deref(), Some("dev-eu"));
    // A target in the overlay replaces the base's target instead of adding a second one.
    assert_eq!(
        by_name("db").target,
        Target::Pod {
            name: "db-0".into()
        }
    );
    assert_eq!(by_name("mine").remote_port, PortRef::Number(4000));
    assert_eq!(
        e.files,
        [
            std::path::PathBuf::from("kftray.toml"),
            "kftray.local.toml".into()
        ]
    );

    let local = "[forwards.db]\nlocal_port = 3000\n";
    let d = load_layers(vec![
        Layer::local("kftray.toml", base),
        Layer::local("kftray.local.toml", local),
    ])
    .unwrap_err();
    let f = &d.findings()[0];
    assert_eq!(f.code, "kftray::port-conflict");
    let files: Vec<_> = f
        .labels
        .iter()
        .map(|l| (l.file.to_str().unwrap(), l.line))
        .collect();
    assert_eq!(files, [("kftray.local.toml", 2), ("kftray.toml", 6)]);
    let rendered = d.render(false, 100);
    assert!(rendered.contains("[kftray.toml:6:14]"), "{rendered}");
    assert!(rendered.contains("[kftray.local.toml:2:14]"), "{rendered}");
}

const TEAM: &str = "git:https://git.example/team/env.git@1a2b3c4:kftray.toml";

#[test]
fn three_layers_merge_in_order_and_relative_paths_of_the_team_file_resolve_in_the_project() {
    let team = "[defaults]\nnamespace = \"shop\"\nkubeconfig = \"kube/dev.yaml\"\n\
                [forwards.web]\nservice = \"web\"\nremote_port = 80\nlocal_port = 3000\n\
                [forwards.db]\nservice = \"db\"\nremote_port = 5432\n";
    let mine = "[sync]\nrepo = \"https://git.example/team/env.git\"\n\
                [forwards.web]\nlocal_port = 13000\n[forwards.mine]\npod = \"debug\"\nremote_port = 4000\n";
    let personal = "[forwards.web]\nlocal_port = 23000\n";
    let e = load_layers(vec![
        Layer::remote(TEAM, team, "/project".into()),
        Layer::local("/project/kftray.toml", mine),
        Layer::local("/project/kftray.local.toml", personal),
    ])
    .unwrap();
    let by_name = |n: &str| e.forwards.iter().find(|f| f.name == n).unwrap();
    assert_eq!(by_name("web").local_port, LocalPort::Fixed(23000));
    assert_eq!(by_name("db").namespace.as_deref(), Some("shop"));
    assert_eq!(
        by_name("db").kubeconfig.as_deref(),
        Some(std::path::Path::new("/project/kube/dev.yaml"))
    );
    assert!(e.forwards.iter().any(|f| f.name == "mine"));
    assert_eq!(e.sync.unwrap().repo, "https://git.example/team/env.git");
    assert_eq!(e.files.len(), 3);

    // A mistake in the team's file is reported in the team's file.
    let d = load_layers(vec![
        Layer::remote(
            TEAM,
            "[forwards.web]\nservice = \"web\"\nremote_prot = 80\n",
            "/p".into(),
        ),
        Layer::local("/p/kftray.toml", ""),
    ])
    .unwrap_err();
    assert_eq!(d.findings()[0].file, std::path::Path::new(TEAM));
    assert_eq!(d.findings()[0].line, Some(3));
}

#[test]
fn the_team_file_cannot_choose_what_the_relay_pod_runs() {
    let team = format!("{WEB}\n[relay]\nimage = \"evil.example/miner:1\"\n");
    let d = load_layers(vec![Layer::remote(TEAM, team.as_str(), "/p".into())]).unwrap_err();
    let f = &d.findings()[0];
    assert_eq!(
        (f.code.as_str(), f.file.to_str().unwrap(), f.line, f.column),
        ("kftray::trust", TEAM, Some(6), Some(9))
    );
    assert!(f.help.as_deref().unwrap().contains("kftray.local.toml"));

    // The user's own file may choose it, over the team's.
    let mine = "[relay]\nimage = \"registry.example/kftray-relay:0.1.0\"\n";
    let e = load_layers(vec![
        Layer::remote(TEAM, team.as_str(), "/p".into()),
        Layer::local("/p/kftray.local.toml", mine),
    ])
    .unwrap();
    assert_eq!(
        e.relay.image.as_deref(),
        Some("registry.example/kftray-relay:0.1.0")
    );
}

#[test]
fn the_team_file_cannot_expose_this_machine_to_the_network() {
    let exposed = format!("{WEB}local_address = \"0.0.0.0\"\nexpose_to_network = true\n");
    let d = load_layers(vec![Layer::remote(TEAM, exposed.as_str(), "/p".into())]).unwrap_err();
    let f = &d.findings()[0];
    assert_eq!(
        (f.code.as_str(), f.file.to_str().unwrap(), f.line, f.column),
        ("kftray::trust", TEAM, Some(5), Some(21))
    );
    assert_eq!(f.labels[1].line, 4, "the address is labelled too");
    assert!(f.help.as_deref().unwrap().contains("kftray.local.toml"));
    let rendered = d.render(false, 100);
    assert!(
        rendered.contains("only your own files can allow this"),
        "{rendered}"
    );

    // The same opt-in in the user's own file is theirs to give.
    let allowed = "[forwards.web]\nexpose_to_network = true\n";
    let e = load_layers(vec![
        Layer::remote(TEAM, exposed.as_str(), "/p".into()),
        Layer::local("/p/kftray.local.toml", allowed),
    ])
    .unwrap();
    assert!(e.forwards[0].local_address.is_unspecified());
    // And an address from the team's [defaults] with the opt-in given locally.
    let team = format!("[defaults]\nlocal_address = \"0.0.0.0\"\n{WEB}");
    assert!(
        load_layers(vec![
            Layer::remote(TEAM, team.as_str(), "/p".into()),
            Layer::local("/p/kftray.local.toml", allowed),
        ])
        .is_ok()
    );
    // Loopback addresses need nobody's permission.
    let loopback = format!("{WEB}local_address = \"127.0.0.9\"\n");
    assert!(load_layers(vec![Layer::remote(TEAM, loopback.as_str(), "/p".into())]).is_ok());
}

#[test]
fn the_team_file_cannot_choose_the_sync_source() {
    let team = format!("[sync]\nrepo = \"https://evil.example/x.git\"\n{WEB}");
    let d = load_layers(vec![Layer::remote(TEAM, team.as_str(), "/p".into())]).unwrap_err();
    let f = &d.findings()[0];
    assert_eq!(
        (f.code.as_str(), f.line, f.column),
        ("kftray::remote-sync", Some(1), Some(2))
    );
}
