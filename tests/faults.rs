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
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::Project;
use support::cluster::{Namespace, WEB, shared};
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
    let cluster = shared();
    let upstream: SocketAddr = cluster
        .server
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let text = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    assert!(text.contains(&cluster.server), "no server line to move");
    let kubeconfig = dir.join("via-proxy.kubeconfig");
    std::fs::write(&kubeconfig, text.replace(&cluster.server, &proxy.url())).unwrap();
    (proxy, kubeconfig)
}

fn start_up(kubeconfig: &Path, ns: &Namespace) -> Project {
    let mut project = project_for(kubeconfig, ns);
    project.spawn_up(&[]);
    project
}

/// A project with a forward to web through `kubeconfig`, not started.
fn project_for(kubeconfig: &Path, ns: &Namespace) -> Project {
    let project = Project::new();
    std::fs::write(
        project.path("kftray.toml"),
        format!(
            "[defaults]\nkubeconfig = {:?}\nnamespace = {:?}\n\n{}",
            kubeconfig.display().to_string(),
            ns.name,
            support::forward("web", "web", "\"http\"")
        ),
    )
    .unwrap();
    project
}

/// `kubectl port-forward svc/web` through the same kubeconfig, and its local port.
async fn kubectl_forward(kubeconfig: &Path, ns: &Namespace) -> (tokio::process::Child, u16) {
    kubectl_forward_with(&[], &shared().kubectl, kubeconfig, ns).await
}

/// The same with `kubectl` of the caller's choice, run under `wrapper` (a program and its
/// arguments) if it is not empty.
async fn kubectl_forward_with(
    wrapper: &[String],
    kubectl: &Path,
    kubeconfig: &Path,
    ns: &Namespace,
) -> (tokio::process::Child, u16) {
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
        .arg(format!("{port}:80"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    (child, port)
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

/// What `kftray status` says of the forward: its state and last error.
async fn said(project: &Project) -> String {
    let status = project.status().await;
    status
        .iter()
        .find(|f| f["alias"] == "web")
        .map(|f| format!("{} {}", f["state"], f["last_error"]))
        .unwrap_or_else(|| "not listed".into())
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
    let ns = Namespace::new("kftray-blackhole").await;
    ns.apply(WEB).await;
    ns.wait_ready("app=web", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let (proxy, kubeconfig) = behind_proxy(dir.path()).await;
    let project = start_up(&kubeconfig, &ns);
    let addr = project.ready("web").await;
    let (mut kubectl, kubectl_port) = kubectl_forward(&kubeconfig, &ns).await;
    let kubectl_addr: SocketAddr = ([127, 0, 0, 1], kubectl_port).into();
    assert!(
        first_success(kubectl_addr, Duration::from_secs(30))
            .await
            .is_some(),
        "kubectl port-forward never served"
    );
    assert!(first_success(addr, Duration::from_secs(30)).await.is_some());

    for secs in seconds("KFTRAY_BLACKHOLE_SECS", "5,40") {
        let hole = Duration::from_secs(secs);
        proxy.stall(true);
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
        let status_during = said(&project).await;
        proxy.stall(false);
        let restored = Instant::now();
        let back = first_success(addr, Duration::from_secs(60)).await;
        let ready_again = loop {
            if said(&project).await.starts_with("\"ready\"") {
                break Some(restored.elapsed());
            }
            if restored.elapsed() > Duration::from_secs(60) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (outcome, waited) = during.await.unwrap();
        let kubectl_alive = kubectl.try_wait().unwrap().is_none();
        let kubectl_back = if kubectl_alive {
            first_success(kubectl_addr, Duration::from_secs(10)).await
        } else {
            None
        };
        record(&format!(
            "blackhole {secs} s\tfirst request after: {}\tconnection made during it: {} after {} ms\tstatus during: {status_during}\tstatus ready again after: {}\tkubectl: {}",
            ms(back),
            match &outcome {
                Ok(code) => format!("answered {code}"),
                Err(why) => format!("closed ({why})"),
            },
            waited.as_millis(),
            ms(ready_again),
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
        }
        assert!(ready_again.is_some(), "status never said ready again");
    }
    let _ = kubectl.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_kftray_serves_at_once_when_it_resumes() {
    let ns = Namespace::new("kftray-suspend").await;
    ns.apply(WEB).await;
    ns.wait_ready("app=web", 2).await;
    let project = start_up(&shared().kubeconfig, &ns);
    let addr = project.ready("web").await;
    let pid = project.status().await[0]["pid"].as_i64().unwrap() as i32;
    let (mut kubectl, kubectl_port) = kubectl_forward(&shared().kubeconfig, &ns).await;
    let kubectl_addr: SocketAddr = ([127, 0, 0, 1], kubectl_port).into();
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
    let (mut kubectl, kubectl_port) =
        kubectl_forward_with(&[], &cp.kubectl(), &kubeconfig, &ns).await;
    let kubectl_addr: SocketAddr = ([127, 0, 0, 1], kubectl_port).into();
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

/// A program run with `hosts` as its /etc/hosts (a mount namespace of its own), so that a
/// name resolves where the test says, and moves when the file is rewritten in place.
fn with_hosts(hosts: &Path) -> Vec<String> {
    [
        "unshare",
        "-m",
        "sh",
        "-c",
        "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
    ]
    .map(String::from)
    .into_iter()
    .chain([hosts.display().to_string()])
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_servers_name_moving_to_another_address_is_followed() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot give kftray an /etc/hosts of its own here");
        return;
    }
    let ns = Namespace::new("kftray-moved").await;
    ns.apply(WEB).await;
    ns.wait_ready("app=web", 2).await;
    let cluster = shared();
    let upstream: SocketAddr = cluster
        .server
        .trim_start_matches("https://")
        .parse()
        .unwrap();
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
    let text = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let kubeconfig = dir.path().join("by-name.kubeconfig");
    std::fs::write(
        &kubeconfig,
        text.replace(&cluster.server, &format!("https://kubernetes:{port}")),
    )
    .unwrap();
    let mut project = project_for(&kubeconfig, &ns);
    project.wrapper = with_hosts(&hosts);
    project.spawn_up(&[]);
    let addr = project.ready("web").await;
    assert!(first_success(addr, Duration::from_secs(30)).await.is_some());
    let (mut kubectl, kubectl_port) =
        kubectl_forward_with(&with_hosts(&hosts), &cluster.kubectl, &kubeconfig, &ns).await;
    let kubectl_addr: SocketAddr = ([127, 0, 0, 1], kubectl_port).into();
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
