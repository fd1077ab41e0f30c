//! The faults a laptop meets, on the real control plane, with kubectl beside kftray: the
//! link to the API server blackholed (no byte through, no reset, as a sleeping Wi-Fi), the
//! API server's name moving to another address (a VPN coming up), the API server, etcd and
//! the kubelet restarted, and kftray itself suspended (SIGSTOP, as a closed lid). Each case prints one line of
//! RELIABILITY.md's table and appends it to `target/reliability/faults.tsv`.
//!
//! The durations are `KFTRAY_BLACKHOLE_SECS` (default `5,40`; `5,40,180` for the 3-minute case)
//! and `KFTRAY_SUSPEND_SECS` (default 60).

mod support;

use controlplane::{ControlPlane, FaultProxy};
use kubesim::testing::http_get;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::Project;
use support::cluster::{Namespace, WEB, api_server, kubeconfig_to, shared};
use support::netns::{NetHost, with_hosts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn seconds(var: &str, default: &str) -> Vec<u64> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().parse().expect("a list of seconds"))
        .collect()
}

/// The shared cluster's API server through a proxy of the test's own, and a kubeconfig that
/// goes through it.
async fn behind_proxy(dir: &Path) -> (FaultProxy, PathBuf) {
    let proxy = FaultProxy::start(api_server()).await.unwrap();
    let kubeconfig = kubeconfig_to(dir, "via-proxy.kubeconfig", &proxy.url());
    (proxy, kubeconfig)
}

/// The shared cluster's API server's address.
/// Whether this runs as root, which namespaces need; if not, says so for `what`.
fn root_for(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("not root: cannot {what} here");
    }
    root
}

fn start_up(kubeconfig: &Path, ns: &Namespace) -> Project {
    let mut project = project_for(kubeconfig, ns);
    project.spawn_up(&[]);
    project
}

/// A project with a forward to web through `kubeconfig`, not started.
fn project_for(kubeconfig: &Path, ns: &Namespace) -> Project {
    project_with(kubeconfig, ns, &support::forward("web", "web", "\"http\""))
}

/// A project of these forwards through `kubeconfig`, not started.
fn project_with(kubeconfig: &Path, ns: &Namespace, forwards: &str) -> Project {
    let project = Project::new();
    std::fs::write(
        project.path("kftray.toml"),
        format!(
            "[defaults]\nkubeconfig = {:?}\nnamespace = {:?}\n\n{forwards}",
            kubeconfig.display().to_string(),
            ns.name,
        ),
    )
    .unwrap();
    project
}

/// `kubectl port-forward svc/web` through the same kubeconfig, and its local address.
async fn kubectl_forward(kubeconfig: &Path, ns: &Namespace) -> (tokio::process::Child, SocketAddr) {
    kubectl_forward_with(&[], &shared().kubectl, kubeconfig, ns, LOOPBACK).await
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The same with `kubectl` of the caller's choice, run under `wrapper` (a program and its
/// arguments) if it is not empty, listening on `address`.
async fn kubectl_forward_with(
    wrapper: &[String],
    kubectl: &Path,
    kubeconfig: &Path,
    ns: &Namespace,
    address: IpAddr,
) -> (tokio::process::Child, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = match wrapper.split_first() {
        Some((program, before)) => {
            let mut c = tokio::process::Command::new(program);
            c.args(before).arg(kubectl);
            c
        }
        None => tokio::process::Command::new(kubectl),
    };
    let child = command
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(["-n", &ns.name, "port-forward", "svc/web"])
        .arg(format!("--address={address}"))
        .arg(format!("{port}:80"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    (child, SocketAddr::new(address, port))
}

/// One GET, allowed `patience`: the status code, or why there was none.
async fn get(addr: SocketAddr, patience: Duration) -> Result<u16, String> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf).to_string();
        Ok::<_, std::io::Error>(
            text.split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
        )
    };
    match tokio::time::timeout(patience, exchange).await {
        Ok(Ok(code)) => Ok(code),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {patience:?}")),
    }
}

/// How long until a GET through `addr` is answered 200, tried every 50 ms; None after
/// `within`.
async fn first_success(addr: SocketAddr, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Ok((200, _)) = http_get(addr, "/").await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// What `kftray status` says of the forward web: its state and last error.
async fn said(project: &Project) -> String {
    said_of(project, "web").await
}

async fn said_of(project: &Project, alias: &str) -> String {
    let status = project.status().await;
    status
        .iter()
        .find(|f| f["alias"] == alias)
        .map(|f| format!("{} {}", f["state"], f["last_error"]))
        .unwrap_or_else(|| "not listed".into())
}

/// How long after `since` status says `alias` is ready with no error: a connection carried
/// since the link came back clears the errors of those that failed while it was away. None
/// after a minute.
async fn cleared(project: &Project, alias: &str, since: Instant) -> Option<Duration> {
    loop {
        if said_of(project, alias).await == "\"ready\" null" {
            return Some(since.elapsed());
        }
        if since.elapsed() > Duration::from_secs(60) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn record(line: &str) {
    eprintln!("RELIABILITY\t{line}");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../reliability");
    std::fs::create_dir_all(&dir).unwrap();
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("faults.tsv"))
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{} ms", d.as_millis()))
        .unwrap_or_else(|| "never".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_api_link_is_survived_and_serves_again_once_it_returns() {
    let ns = Namespace::with_web("kftray-blackhole").await;
    let dir = tempfile::tempdir().unwrap();
    let (proxy, kubeconfig) = behind_proxy(dir.path()).await;
    let mut project = project_with(&kubeconfig, &ns, &web_and_relayed(None));
    project.spawn_up(&[]);
    let kubectl = kubectl_forward(&kubeconfig, &ns).await;
    blackholes("stalling proxy", &project, kubectl, |on| proxy.stall(on)).await;
}

/// The same, the link a real one: kftray and kubectl on a host of their own (a network
/// namespace), every packet between it and the API server dropped by nftables. Unlike the
/// proxy, nothing is held for later: what was sent into the hole is retransmitted by TCP on
/// its own schedule, as after a laptop's sleep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_link_of_a_real_network_is_survived_too() {
    if !root_for("make a network namespace") {
        return;
    }
    let ns = Namespace::with_web("kftray-netns").await;
    let host = NetHost::new(1).unwrap();
    // The API server listens on loopback: this host reaches it at the veth's address.
    let entry = FaultProxy::start_on((host.here, 0).into(), api_server())
        .await
        .unwrap();
    let port = entry.addr().port();
    let dir = tempfile::tempdir().unwrap();
    // Its certificate names "kubernetes": the name leads to the veth's address there.
    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1 localhost\n{} kubernetes\n", host.here),
    )
    .unwrap();
    let kubeconfig = by_name(dir.path(), port);
    let wrapper: Vec<String> = host
        .exec_prefix()
        .into_iter()
        .chain(with_hosts(&hosts))
        .collect();
    // The forwards listen on the namespace's address, where this test reaches them.
    let mut project = project_with(&kubeconfig, &ns, &web_and_relayed(Some(host.there)));
    project.wrapper = wrapper.clone();
    project.spawn_up(&[]);
    let kubectl = kubectl_forward_with(
        &wrapper,
        &shared().kubectl,
        &kubeconfig,
        &ns,
        host.there.into(),
    )
    .await;
    blackholes(
        "network namespace, packets dropped",
        &project,
        kubectl,
        |on| host.blackhole(port, on).unwrap(),
    )
    .await;
}

/// web directly, and through the relay pod (a relayed forward's tunnel is redialled too),
/// listening on `address` if given.
fn web_and_relayed(address: Option<Ipv4Addr>) -> String {
    let listen = address
        .map(|a| format!("local_address = \"{a}\"\nexpose_to_network = true\n"))
        .unwrap_or_default();
    format!(
        "[forwards.web]\nservice = \"web\"\nremote_port = \"http\"\nlocal_port = \"any\"\n{listen}\n\
         [forwards.web-relay]\nservice = \"web\"\nvia = \"relay\"\nremote_port = 80\nlocal_port = \"any\"\n{listen}"
    )
}

/// The link blackholed by `hole_on(true)` for each of `KFTRAY_BLACKHOLE_SECS`, then restored:
/// what kftray's two forwards (web, web-relay) and kubectl do, a line of the report each.
async fn blackholes(
    how: &str,
    project: &Project,
    (mut kubectl, kubectl_addr): (tokio::process::Child, SocketAddr),
    hole_on: impl Fn(bool),
) {
    let addr = project.ready("web").await;
    let relayed = project.ready("web-relay").await;
    assert!(
        first_success(kubectl_addr, Duration::from_secs(30))
            .await
            .is_some(),
        "kubectl port-forward never served"
    );
    assert!(first_success(addr, Duration::from_secs(30)).await.is_some());
    assert!(
        first_success(relayed, Duration::from_secs(30))
            .await
            .is_some()
    );

    for secs in seconds("KFTRAY_BLACKHOLE_SECS", "5,40") {
        let hole = Duration::from_secs(secs);
        hole_on(true);
        let cut = Instant::now();
        // A connection that arrives while the link is dead: it must end, one way or the
        // other, never hang.
        tokio::time::sleep(Duration::from_secs(1).min(hole / 2)).await;
        let patience = hole + Duration::from_secs(90);
        let during = tokio::spawn(async move {
            let started = Instant::now();
            (get(addr, patience).await, started.elapsed())
        });
        tokio::time::sleep(hole.saturating_sub(cut.elapsed())).await;
        let status_during = said(project).await;
        let relayed_during = said_of(project, "web-relay").await;
        hole_on(false);
        let restored = Instant::now();
        let back = first_success(addr, Duration::from_secs(60)).await;
        let ready_again = cleared(project, "web", restored).await;
        let relayed_back = first_success(relayed, Duration::from_secs(60)).await;
        let relayed_ready_again = cleared(project, "web-relay", restored).await;
        let (outcome, waited) = during.await.unwrap();
        let kubectl_alive = kubectl.try_wait().unwrap().is_none();
        let kubectl_back = if kubectl_alive {
            first_success(kubectl_addr, Duration::from_secs(10)).await
        } else {
            None
        };
        record(&format!(
            "blackhole {secs} s ({how})\tfirst request after: {}\tconnection made during it: {} after {} ms\tstatus during: {status_during}\tstatus ready again after: {}\trelayed: first request after {}, status during {relayed_during}, ready again after {}\tkubectl: {}",
            ms(back),
            match &outcome {
                Ok(code) => format!("answered {code}"),
                Err(why) => format!("closed ({why})"),
            },
            waited.as_millis(),
            ms(ready_again),
            ms(relayed_back),
            ms(relayed_ready_again),
            if kubectl_alive {
                format!("still running, first request after {}", ms(kubectl_back))
            } else {
                "exited".to_owned()
            }
        ));
        assert!(
            back.is_some(),
            "no request served after the link came back:\n{}",
            project.log()
        );
        assert!(
            waited < patience,
            "a connection made while the link was dead hung: {outcome:?}"
        );
        // Pings go every 10 s and are given up after 10 more: a hole longer than that (and a
        // margin) is noticed, and status says so.
        if hole >= Duration::from_secs(30) {
            assert!(
                status_during.starts_with("\"reconnecting\""),
                "status during a {secs} s blackhole: {status_during}"
            );
            assert!(
                relayed_during.starts_with("\"reconnecting\""),
                "status of the relayed forward during a {secs} s blackhole: {relayed_during}"
            );
        }
        assert!(
            relayed_back.is_some(),
            "no request served through the relay after the link came back:\n{}",
            project.log()
        );
        // Ready, and without the errors of the connections that failed during the hole.
        assert!(
            ready_again.is_some() && relayed_ready_again.is_some(),
            "status never said ready without an error again: {} / {}",
            said(project).await,
            said_of(project, "web-relay").await
        );
    }
    let _ = kubectl.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_kftray_serves_at_once_when_it_resumes() {
    let ns = Namespace::with_web("kftray-suspend").await;
    let project = start_up(&shared().kubeconfig, &ns);
    let addr = project.ready("web").await;
    let pid = project.status().await[0]["pid"].as_i64().unwrap() as i32;
    let (mut kubectl, kubectl_addr) = kubectl_forward(&shared().kubeconfig, &ns).await;
    assert!(
        first_success(kubectl_addr, Duration::from_secs(30))
            .await
            .is_some()
    );
    let kubectl_pid = kubectl.id().unwrap() as i32;

    for secs in seconds("KFTRAY_SUSPEND_SECS", "60") {
        // SAFETY: kill(2) on processes this test started.
        unsafe {
            libc::kill(pid, libc::SIGSTOP);
            libc::kill(kubectl_pid, libc::SIGSTOP);
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
        unsafe {
            libc::kill(pid, libc::SIGCONT);
            libc::kill(kubectl_pid, libc::SIGCONT);
        }
        let back = first_success(addr, Duration::from_secs(60)).await;
        let kubectl_alive = kubectl.try_wait().unwrap().is_none();
        let kubectl_back = first_success(kubectl_addr, Duration::from_secs(10)).await;
        record(&format!(
            "suspended (SIGSTOP) {secs} s\tfirst request after: {}\tstatus after: {}\tkubectl: {}",
            ms(back),
            said(&project).await,
            if kubectl_alive {
                format!("still running, first request after {}", ms(kubectl_back))
            } else {
                "exited".to_owned()
            }
        ));
        assert!(
            back.is_some(),
            "nothing served after SIGCONT:\n{}",
            project.log()
        );
    }
    let _ = kubectl.kill().await;
}

/// kubectl beside kftray: whether it still runs, and how soon it serves if it does.
async fn kubectl_after(kubectl: &mut tokio::process::Child, addr: SocketAddr) -> String {
    if kubectl.try_wait().unwrap().is_some() {
        return "exited".to_owned();
    }
    format!(
        "still running, first request after {}",
        ms(first_success(addr, Duration::from_secs(10)).await)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_etcd_and_the_kubelet_restarted_are_survived() {
    let mut cp = ControlPlane::start(support::cluster::options())
        .await
        .unwrap();
    let ns = Namespace::on(cp.kubeconfig(), &cp.kubectl(), "kftray-restarts").await;
    ns.apply(WEB).await;
    ns.wait_ready("app=web", 2).await;
    let kubeconfig = cp.kubeconfig().to_path_buf();
    let project = start_up(&kubeconfig, &ns);
    let addr = project.ready("web").await;
    let (mut kubectl, kubectl_addr) =
        kubectl_forward_with(&[], &cp.kubectl(), &kubeconfig, &ns, LOOPBACK).await;
    assert!(
        first_success(kubectl_addr, Duration::from_secs(30))
            .await
            .is_some()
    );

    for fault in [
        "the API server",
        "etcd",
        "the kubelet's API (API server -> kubelet cut)",
    ] {
        let started = Instant::now();
        match fault {
            "the API server" => cp.restart_apiserver().await.unwrap(),
            "etcd" => cp.restart_etcd().await.unwrap(),
            _ => cp.restart_kubelet_api().unwrap(),
        }
        let took = started.elapsed();
        let back = first_success(addr, Duration::from_secs(60)).await;
        record(&format!(
            "{fault} killed and restarted ({} ms)\tfirst request after: {}\tstatus after: {}\tkubectl: {}",
            took.as_millis(),
            ms(back),
            said(&project).await,
            kubectl_after(&mut kubectl, kubectl_addr).await,
        ));
        assert!(
            back.is_some(),
            "nothing served after {fault}:\n{}",
            project.log()
        );
    }
    // The watches came back too: pods deleted now are followed to their replacements.
    let pods = ns.wait_ready("app=web", 2).await;
    for pod in &pods {
        ns.pods()
            .delete(pod, &kube::api::DeleteParams::default().grace_period(0))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, body)) = http_get(addr, "/").await
            && !pods.iter().any(|old| old == body.trim())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never moved to a new pod:\n{}",
            project.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = kubectl.kill().await;
    drop(project);
    drop(ns);
    cp.shutdown().await;
}

/// The shared cluster's kubeconfig with its API server named `kubernetes` (as its certificate
/// names it) on `port`: where the name leads is up to the hosts file of the one who reads it.
fn by_name(dir: &Path, port: u16) -> PathBuf {
    kubeconfig_to(
        dir,
        "by-name.kubeconfig",
        &format!("https://kubernetes:{port}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_servers_name_moving_to_another_address_is_followed() {
    if !root_for("give kftray an /etc/hosts of its own") {
        return;
    }
    let ns = Namespace::with_web("kftray-moved").await;
    let upstream = api_server();
    // The office network, then the VPN: one port, two addresses, one name (the API
    // server's certificate names it).
    let office = FaultProxy::start_on(([127, 0, 0, 2], 0).into(), upstream)
        .await
        .unwrap();
    let port = office.addr().port();
    let vpn = FaultProxy::start_on(([127, 0, 0, 3], port).into(), upstream)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.2 kubernetes\n").unwrap();
    let kubeconfig = by_name(dir.path(), port);
    let mut project = project_for(&kubeconfig, &ns);
    project.wrapper = with_hosts(&hosts);
    project.spawn_up(&[]);
    let addr = project.ready("web").await;
    assert!(first_success(addr, Duration::from_secs(30)).await.is_some());
    let (mut kubectl, kubectl_addr) = kubectl_forward_with(
        &with_hosts(&hosts),
        &shared().kubectl,
        &kubeconfig,
        &ns,
        LOOPBACK,
    )
    .await;
    assert!(
        first_success(kubectl_addr, Duration::from_secs(30))
            .await
            .is_some(),
        "kubectl port-forward never served"
    );
    let before = vpn.accepted();

    // The VPN comes up: the name resolves to the new address, and the old one is gone
    // (dropped packets, no reset), as a route that no longer leads anywhere.
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.3 kubernetes\n").unwrap();
    office.stall(true);
    let moved = Instant::now();
    let mut status_during = String::new();
    let back = loop {
        if let Ok(Ok((200, _))) =
            tokio::time::timeout(Duration::from_secs(2), http_get(addr, "/")).await
        {
            break Some(moved.elapsed());
        }
        if status_during.is_empty() && moved.elapsed() > Duration::from_secs(25) {
            status_during = said(&project).await;
        }
        if moved.elapsed() > Duration::from_secs(90) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    record(&format!(
        "the API server's name moved to another address (old one blackholed)\tfirst request after: {}\tstatus after 25 s: {}\tstatus after: {}\tkubectl: {}",
        ms(back),
        if status_during.is_empty() {
            "(served before)".to_owned()
        } else {
            status_during
        },
        said(&project).await,
        kubectl_after(&mut kubectl, kubectl_addr).await,
    ));
    assert!(
        back.is_some(),
        "never served through the new address:\n{}",
        project.log()
    );
    assert!(
        vpn.accepted() > before,
        "kftray never dialled the new address"
    );
    let _ = kubectl.kill().await;
}
