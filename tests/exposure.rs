//! What a running kftray opens to this machine and to its other users: every socket it
//! listens on is loopback unless the user's file says `expose_to_network = true`, and another
//! local user can neither read its status nor stop its forwards.

mod support;

use kubesim::testing::{demo_cluster, http_get, workspace_bin};
use kubesim::{Cluster, ClusterOptions};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use support::{Project, text};

const NOBODY: u32 = 65534;

/// The demo cluster, its relay image run by the relay-server binary, as scripts/demo.sh
/// starts it.
async fn cluster() -> Cluster {
    const RELAY: &str = "ghcr.io/kftray/kftray-relay";
    let relay = workspace_bin("relay-server").expect("run `cargo build -p kftray-relay`");
    let env = |name: &str, value: &str| (RELAY.to_owned(), name.to_owned(), value.to_owned());
    demo_cluster(ClusterOptions {
        images: vec![(RELAY.into(), relay)],
        image_env: vec![
            env("RELAY_LISTEN", "$(POD_IP):7000"),
            env("RELAY_NAMESERVER", "$(KUBESIM_NAMESERVER)"),
        ],
        ..ClusterOptions::default()
    })
    .await
    .unwrap()
}

fn project_with(cluster: &Cluster, forwards: &str) -> Project {
    let project = Project::new();
    std::fs::write(
        project.path("kftray.toml"),
        format!(
            "[defaults]\nkubeconfig = {:?}\nnamespace = \"demo\"\n\n{forwards}",
            cluster.kubeconfig_path().display().to_string()
        ),
    )
    .unwrap();
    project
}

const WEB_AND_DNS: &str = "[forwards.web]\nservice = \"web\"\nremote_port = \"http\"\nlocal_port = \"any\"\n\n\
    [forwards.dns]\ndeployment = \"dns\"\nprotocol = \"udp\"\nremote_port = \"dns\"\nlocal_port = \"any\"\n\n\
    [forwards.alias]\nservice = \"web\"\nremote_port = \"http\"\nlocal_port = \"any\"\nlocal_address = \"127.0.0.9\"\n";

/// The addresses `pid` listens on: TCP sockets in LISTEN, and bound UDP sockets that are not
/// connected to a peer, from /proc (the sockets whose inodes its fds name).
fn listening(pid: u32) -> BTreeSet<(&'static str, SocketAddr)> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut found = BTreeSet::new();
    for (table, proto) in [
        ("tcp", "tcp"),
        ("tcp6", "tcp"),
        ("udp", "udp"),
        ("udp6", "udp"),
    ] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, state, inode) = (f[1], f[2], f[3], f[9]);
            let listens = match proto {
                "tcp" => state == "0A",
                _ => parse(remote).port() == 0,
            };
            if listens && inodes.contains(inode) {
                found.insert((proto, parse(local)));
            }
        }
    }
    found
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6), each 32-bit word in host order.
fn parse(text: &str) -> SocketAddr {
    let (ip, port) = text.split_once(':').unwrap();
    let port = u16::from_str_radix(port, 16).unwrap();
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| {
            u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16)
                .unwrap()
                .swap_bytes()
        })
        .collect();
    let ip: IpAddr = match words.as_slice() {
        [v4] => Ipv4Addr::from(*v4).into(),
        [a, b, c, d] => {
            let mut octets = [0u8; 16];
            for (i, w) in [a, b, c, d].iter().enumerate() {
                octets[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
            }
            Ipv6Addr::from(octets).into()
        }
        _ => panic!("not an address: {text}"),
    };
    SocketAddr::new(ip, port)
}

#[test]
fn proc_addresses_are_read_as_the_kernel_writes_them() {
    assert_eq!(parse("0100007F:1F90"), "127.0.0.1:8080".parse().unwrap());
    assert_eq!(parse("00000000:0035"), "0.0.0.0:53".parse().unwrap());
    assert_eq!(
        parse("00000000000000000000000001000000:0050"),
        "[::1]:80".parse().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_socket_kftray_listens_on_is_loopback_unless_the_file_exposes_it() {
    let cluster = cluster().await;
    let mut project = project_with(&cluster, WEB_AND_DNS);
    project.spawn_up(&[]);
    for alias in ["web", "dns", "alias"] {
        project.ready(alias).await;
    }
    let pid = project.status().await[0]["pid"].as_u64().unwrap() as u32;
    let sockets = listening(pid);
    let tcp = sockets.iter().filter(|(p, _)| *p == "tcp").count();
    let udp = sockets.iter().filter(|(p, _)| *p == "udp").count();
    assert!(
        tcp >= 2 && udp >= 1,
        "the forwards' sockets are not all seen: {sockets:?}"
    );
    let open: Vec<_> = sockets
        .iter()
        .filter(|(_, a)| !a.ip().is_loopback())
        .collect();
    assert!(
        open.is_empty(),
        "listening beyond loopback: {open:?} of {sockets:?}"
    );
    drop(project);

    // The user's own file opts in: exactly that forward listens on every address.
    let exposed = format!(
        "{WEB_AND_DNS}\n[forwards.shared]\nservice = \"web\"\nremote_port = \"http\"\nlocal_port = \"any\"\n\
         local_address = \"0.0.0.0\"\nexpose_to_network = true\n"
    );
    let mut project = project_with(&cluster, &exposed);
    project.spawn_up(&[]);
    let shared = project.ready("shared").await;
    let pid = project.status().await[0]["pid"].as_u64().unwrap() as u32;
    let open: Vec<_> = listening(pid)
        .into_iter()
        .filter(|(_, a)| !a.ip().is_loopback())
        .collect();
    assert_eq!(open, [("tcp", shared)]);
}

/// `kftray ARGS` run as the user `nobody`, with the state home given.
fn as_nobody(kftray: &Path, home: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--",
        ])
        .arg(kftray)
        .args(args)
        .env("KFTRAY_HOME", home)
        .env("NO_COLOR", "1")
        .current_dir("/")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_local_user_can_neither_read_the_status_nor_stop_the_forwards() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot run kftray as another user here");
        return;
    }
    let cluster = cluster().await;
    let mut project = project_with(
        &cluster,
        "[forwards.web]\nservice = \"web\"\nremote_port = \"http\"\nlocal_port = \"any\"\n",
    );
    // Everything up to the state home is open to others, as a home directory often is; the
    // home kftray makes is what must keep them out.
    let open = |p: &Path| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
    open(project.dir.path()).unwrap();
    let kftray = project.dir.path().join("kftray");
    std::fs::copy(env!("CARGO_BIN_EXE_kftray"), &kftray).unwrap();
    open(&kftray).unwrap();
    project.spawn_up(&[]);
    let addr = project.ready("web").await;

    // nobody can run kftray at all (so what follows is refused for the right reason).
    let own = tempfile::tempdir().unwrap();
    let own_home = own.path().join("home");
    open(own.path()).unwrap();
    std::os::unix::fs::chown(own.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    let theirs = as_nobody(&kftray, &own_home, &["status", "--all"]);
    assert!(theirs.status.success(), "{}", text(&theirs));

    for args in [&["status", "--all", "-o", "json"][..], &["down", "--all"]] {
        let out = as_nobody(&kftray, &project.home(), args);
        assert!(!out.status.success(), "{args:?} as nobody: {}", text(&out));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("belongs to another user"),
            "{args:?}: {}",
            text(&out)
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("web"),
            "{}",
            text(&out)
        );
    }
    let status = project.status().await;
    assert_eq!(status[0]["state"], "ready", "{status:?}");
    assert_eq!(http_get(addr, "/").await.unwrap().0, 200);
}
