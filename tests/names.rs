//! Reaching forwards by name, on the real control plane: the proxy into the cluster (curl's
//! SOCKS5 and HTTP proxy clients, a raw Rust SOCKS5 client, `kftray proxy`), hosts entries
//! written by the real kftray-helper (a hosts file of the test's own, then the /etc/hosts of
//! a test host in network and mount namespaces, read by glibc's `getent` and by curl), addresses of
//! `local_address = "auto"`, and a low port for a user who may not bind one.

mod support;

use controlplane::FaultProxy;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::cluster::{Namespace, api_server, kubeconfig_to, shared};
use support::netns::{NetHost, with_hosts};
use support::servers::free_port;
use support::{Project, TIMEOUT, address, text};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HELPER: &str = env!("CARGO_BIN_EXE_kftray-helper");

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl is installed by scripts/test.sh")
}

fn body(out: &std::process::Output) -> String {
    assert!(out.status.success(), "curl failed: {}", text(out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The web pods answer with their own name.
fn from_web(body: &str) -> bool {
    body.starts_with("web-")
}

/// A row of `status` once it is ready.
async fn ready_row(project: &Project, name: &str) -> Value {
    let what = format!("{name} ready");
    let status = project
        .wait_for(&what, |s| {
            s.iter()
                .any(|f| f["alias"] == name && f["state"] == "ready")
        })
        .await;
    status.into_iter().find(|f| f["alias"] == name).unwrap()
}

/// A SOCKS5 CONNECT by name, as a program of the user's would make it; the reply code.
async fn socks_connect(proxy: SocketAddr, host: &str, port: u16) -> (u8, TcpStream) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut greeting = [0u8; 2];
    s.read_exact(&mut greeting).await.unwrap();
    assert_eq!(greeting, [5, 0]);
    let mut request = vec![5, 1, 0, 3, host.len() as u8];
    request.extend_from_slice(host.as_bytes());
    request.extend_from_slice(&port.to_be_bytes());
    s.write_all(&request).await.unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).await.unwrap();
    (reply[1], s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_reaches_services_by_their_names_in_the_cluster() {
    let ns = Namespace::with_web("kftray-proxy").await;
    let (socks, http) = (free_port(), free_port());
    let mut project = ns.project(&format!("[proxy]\nsocks = {socks}\nhttp = {http}\n"));
    project.spawn_up(&[]);
    ready_row(&project, "proxy.socks").await;
    let row = ready_row(&project, "proxy.http").await;
    assert!(
        row["target"]
            .as_str()
            .unwrap()
            .contains("http proxy into the cluster"),
        "{row:#?}"
    );
    let web = format!("http://web.{}.svc.cluster.local/", ns.name);
    let socks_url = format!("socks5h://127.0.0.1:{socks}");
    let http_url = format!("http://127.0.0.1:{http}");

    // curl, as a user would run it, through each kind.
    assert!(from_web(&body(&curl(&["--proxy", &socks_url, &web]))));
    assert!(from_web(&body(&curl(&["--proxy", &http_url, &web]))));
    assert!(from_web(&body(&curl(&[
        "--proxytunnel",
        "--proxy",
        &http_url,
        &web
    ]))));
    // Two requests on one kept-alive proxy connection.
    let twice = body(&curl(&["--proxy", &http_url, &web, &web]));
    assert_eq!(twice.lines().filter(|l| from_web(l)).count(), 2, "{twice}");

    // A name the cluster does not know is said so, by each protocol in its own way.
    let nowhere = format!("http://nowhere.{}.svc.cluster.local/", ns.name);
    let out = curl(&["--proxy", &socks_url, &nowhere]);
    assert!(!out.status.success(), "{}", text(&out));
    let out = curl(&[
        "-o",
        "-",
        "-w",
        "%{http_code}",
        "--proxy",
        &http_url,
        &nowhere,
    ]);
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.ends_with("502") && answer.contains("no such host"),
        "{answer}"
    );

    // A program of the user's: a raw SOCKS5 client, 50 at once.
    let proxy: SocketAddr = format!("127.0.0.1:{socks}").parse().unwrap();
    let host = format!("web.{}.svc.cluster.local", ns.name);
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move {
                let (code, mut s) = socks_connect(proxy, &host, 80).await;
                assert_eq!(code, 0);
                s.write_all(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let mut answer = String::new();
                s.read_to_string(&mut answer).await.unwrap();
                answer
            })
        })
        .collect();
    for client in clients {
        let answer = tokio::time::timeout(TIMEOUT, client)
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let (code, _) =
        socks_connect(proxy, &format!("nowhere.{}.svc.cluster.local", ns.name), 80).await;
    assert_eq!(code, 4, "host unreachable");
    // Its numbers reach `status` as a forward's do.
    project
        .wait_for("the proxy's bytes counted", |s| {
            s.iter().any(|f| {
                f["alias"] == "proxy.socks" && f["bytes_in"].as_u64().is_some_and(|n| n > 50 * 100)
            })
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kftray_proxy_serves_a_one_off_session() {
    let ns = Namespace::with_web("kftray-proxy-cmd").await;
    let socks = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kftray"))
        .args([
            "proxy",
            "--socks",
            &socks.to_string(),
            "-n",
            &ns.name,
            "--kubeconfig",
        ])
        .arg(&shared().kubeconfig)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let ready = line.contains("ready on");
            seen.push(line);
            if ready {
                break;
            }
        }
        seen
    });
    let lines = tokio::time::timeout(TIMEOUT, lines).await.unwrap().unwrap();
    let ready = lines.last().cloned().unwrap_or_default();
    assert!(
        ready.contains(&format!("socks5h://127.0.0.1:{socks}")),
        "{lines:?}"
    );
    let web = format!("http://web.{}.svc.cluster.local/", ns.name);
    let out = curl(&["--proxy", &format!("socks5h://127.0.0.1:{socks}"), &web]);
    assert!(from_web(&body(&out)));
    // SAFETY: kill(2) on the child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", socks)).is_err());
}

/// kftray-helper on a socket and hosts file of the test's own, serving this (root) user.
struct HelperProcess {
    child: Child,
    socket: PathBuf,
    hosts: PathBuf,
}

impl HelperProcess {
    fn start(dir: &Path, user: u32) -> HelperProcess {
        let (socket, hosts) = (dir.join("helper.sock"), dir.join("hosts"));
        if !hosts.exists() {
            std::fs::write(
                &hosts,
                "127.0.0.1\tlocalhost\n192.0.2.7\ttaken.kftray.test\n",
            )
            .unwrap();
        }
        // The hosts file as users with an unusual setup name it: KFTRAY_HOSTS_FILE.
        let child = Command::new(HELPER)
            .args(["serve", "--user", &user.to_string(), "--socket"])
            .arg(&socket)
            .env("KFTRAY_HOSTS_FILE", &hosts)
            .stderr(std::fs::File::create(dir.join("helper.log")).unwrap())
            .spawn()
            .unwrap();
        wait_until("the helper's socket", || socket.exists());
        HelperProcess {
            child,
            socket,
            hosts,
        }
    }

    fn hosts(&self) -> String {
        std::fs::read_to_string(&self.hosts).unwrap()
    }
}

impl Drop for HelperProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never saw {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

async fn wait_hosts(helper: &HelperProcess, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let hosts = helper.hosts();
        if done(&hosts) {
            return hosts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saw {what} in the hosts file:\n{hosts}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn web_forward(alias: &str, extra: &str) -> String {
    format!(
        "[forwards.{alias}]\nservice = \"web\"\nremote_port = 80\nlocal_port = \"any\"\n{extra}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_names_live_as_long_as_their_run() {
    let ns = Namespace::with_web("kftray-hosts").await;
    let scratch = tempfile::tempdir().unwrap();
    let helper = HelperProcess::start(scratch.path(), 0);
    let original = helper.hosts();
    let forwards = web_forward(
        "web",
        "domain = \"web.kftray.test\"\nlocal_address = \"auto\"",
    );
    let mut project = ns.project(&forwards);
    project.env.push((
        "KFTRAY_HELPER_SOCKET".into(),
        helper.socket.display().to_string(),
    ));
    project.spawn_up(&[]);
    let at = project.ready("web").await;
    let entry = format!("{}\tweb.kftray.test", at.ip());
    let hosts = wait_hosts(&helper, &entry, |h| h.contains(&entry)).await;
    assert!(hosts.starts_with(&original), "other lines kept:\n{hosts}");
    assert!(Path::new(&format!("{}.kftray-backup", helper.hosts.display())).exists());

    // A new name at a save of the file; the old one goes.
    ns.configure(
        &project,
        &web_forward(
            "web",
            "domain = \"www.kftray.test\"\nlocal_address = \"auto\"",
        ),
    );
    let hosts = wait_hosts(&helper, "the new name", |h| {
        h.contains("\twww.kftray.test") && !h.contains("\tweb.kftray.test")
    })
    .await;
    assert!(
        hosts.contains(&at.ip().to_string()),
        "the same auto address:\n{hosts}"
    );

    // A crashed run leaves no entry behind.
    project.kill_up(libc::SIGKILL);
    wait_hosts(&helper, "the entries gone", |h| h == original).await;

    // A name someone else wrote is not shadowed: the forward says why, the run goes on.
    ns.configure(
        &project,
        &format!(
            "{}{}",
            web_forward("web", "domain = \"www.kftray.test\""),
            web_forward("other", "domain = \"taken.kftray.test\"")
        ),
    );
    project.spawn_up(&[]);
    let status = project
        .wait_for("the taken name refused", |s| {
            s.iter().any(|f| {
                f["alias"] == "other"
                    && f["state"] == "failed"
                    && f["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("did not write"))
            })
        })
        .await;
    assert!(helper.hosts() == original, "nothing written half");
    drop(status);

    // `kftray down` takes the names out.
    ns.configure(
        &project,
        &web_forward("web", "domain = \"www.kftray.test\""),
    );
    project.ready("web").await;
    wait_hosts(&helper, "www again", |h| h.contains("\twww.kftray.test")).await;
    let out = project.run(&["down"]).await;
    assert!(out.status.success(), "{}", text(&out));
    wait_hosts(&helper, "the entries gone after down", |h| h == original).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_helper_a_named_forward_says_how_to_start_it() {
    let ns = Namespace::with_web("kftray-nohelper").await;
    let mut project = ns.project(&format!(
        "{}{}",
        web_forward("web", "domain = \"web.kftray.test\""),
        web_forward("plain", "")
    ));
    let socket = project.dir.path().join("no-helper.sock");
    project
        .env
        .push(("KFTRAY_HELPER_SOCKET".into(), socket.display().to_string()));
    project.spawn_up(&[]);
    project.ready("plain").await;
    project
        .wait_for("web failed with how to start the helper", |s| {
            s.iter().any(|f| {
                f["alias"] == "web"
                    && f["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("sudo kftray-helper serve"))
            })
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glibc_resolves_the_name_to_the_forward_through_a_real_etc_hosts() {
    let ns = Namespace::with_web("kftray-etchosts").await;
    // A test host of its own (a network namespace, on a veth pair), where kftray, glibc and
    // curl see one /etc/hosts: the test's file, bind-mounted over it in mount namespaces of
    // their own. kftray-helper writes the path it always writes, /etc/hosts (in place: a
    // bind-mounted file cannot be renamed over), and every view sees the change.
    let host = NetHost::new(3).expect("a network namespace (root, iproute2)");
    let entry = FaultProxy::start_on((host.here, 0).into(), api_server())
        .await
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let hosts = scratch.path().join("hosts");
    // The API server's certificate names "kubernetes": there, the name leads to this host.
    std::fs::write(
        &hosts,
        format!("127.0.0.1\tlocalhost\n{}\tkubernetes\n", host.here),
    )
    .unwrap();
    let kubeconfig = kubeconfig_to(
        scratch.path(),
        "by-name.kubeconfig",
        &format!("https://kubernetes:{}", entry.addr().port()),
    );
    let there = |program: &[&str]| -> Vec<String> {
        let mut all = host.exec_prefix();
        all.extend(with_hosts(&hosts));
        all.extend(program.iter().map(|s| s.to_string()));
        all
    };
    let socket = scratch.path().join("helper.sock");
    let socket_text = socket.display().to_string();
    let helper = there(&[HELPER, "serve", "--user", "0", "--socket", &socket_text]);
    let mut helper = Command::new(&helper[0])
        .args(&helper[1..])
        .stderr(std::fs::File::create(scratch.path().join("helper.log")).unwrap())
        .spawn()
        .unwrap();
    wait_until("the helper's socket", || socket.exists());
    let mut project = ns.project_as(
        &kubeconfig,
        &web_forward(
            "web",
            "domain = \"web.etc.kftray.test\"\nlocal_address = \"auto\"",
        ),
    );
    project.wrapper = there(&[]);
    project
        .env
        .push(("KFTRAY_HELPER_SOCKET".into(), socket_text.clone()));
    project.spawn_up(&[]);
    let at = project.ready("web").await;
    let run_there = |program: &[&str]| {
        let all = there(program);
        Command::new(&all[0]).args(&all[1..]).output().unwrap()
    };
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let resolved = loop {
        let out = run_there(&["getent", "hosts", "web.etc.kftray.test"]);
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "getent never resolved it; the file:\n{}",
            std::fs::read_to_string(&hosts).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        resolved.split_whitespace().next(),
        Some(at.ip().to_string().as_str()),
        "{resolved}"
    );
    let url = format!("http://web.etc.kftray.test:{}/", at.port());
    let out = run_there(&["curl", "-sS", "--max-time", "30", &url]);
    assert!(from_web(&body(&out)));
    // Outside, neither the name nor the forward is there: the machine's own /etc/hosts was
    // never touched, and the forward listens on the test host's loopback.
    assert!(
        !std::fs::read_to_string("/etc/hosts")
            .unwrap()
            .contains("kftray")
    );
    assert!(std::net::TcpStream::connect(at).is_err());
    // Stopped, the run takes its name out of that file too.
    project.kill_up(libc::SIGINT);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while std::fs::read_to_string(&hosts)
        .unwrap()
        .contains("web.etc.kftray.test")
    {
        assert!(tokio::time::Instant::now() < deadline, "the name stayed");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = helper.kill();
    let _ = helper.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_addresses_let_two_forwards_keep_one_port() {
    let ns = Namespace::with_web("kftray-auto").await;
    let port = free_port();
    let forwards = format!(
        "[forwards.one]\nservice = \"web\"\nremote_port = 80\nlocal_port = {port}\nlocal_address = \"auto\"\n\n\
         [forwards.two]\nselector = \"app=web\"\nremote_port = 8080\nlocal_port = {port}\nlocal_address = \"auto\"\n"
    );
    let mut project = ns.project(&forwards);
    project.spawn_up(&[]);
    let (one, two) = (project.ready("one").await, project.ready("two").await);
    assert_eq!((one.port(), two.port()), (port, port));
    assert_ne!(one.ip(), two.ip());
    for at in [one, two] {
        let (code, answer) = kubesim::testing::http_get(at, "/").await.unwrap();
        assert_eq!(code, 200);
        assert!(from_web(answer.trim()));
    }
    // The same addresses at the next run.
    project.kill_up(libc::SIGTERM);
    project.spawn_up(&[]);
    assert_eq!(project.ready("one").await, one);
    let status = project.status().await;
    assert_eq!(address(&status, "two"), two);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_port_is_bound_by_the_helper_for_a_user_who_may_not() {
    const NOBODY: u32 = 65534;
    let ns = Namespace::with_web("kftray-lowport").await;
    let mut project = ns.project("");
    // The unprivileged user needs its own copy of the kubeconfig, and folders it can use.
    let kubeconfig = project.dir.path().join("nobody.kubeconfig");
    std::fs::copy(&shared().kubeconfig, &kubeconfig).unwrap();
    for dir in [
        project.dir.path().to_path_buf(),
        project.root(),
        project.user_home(),
    ] {
        std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    std::os::unix::fs::chown(&kubeconfig, Some(NOBODY), Some(NOBODY)).unwrap();
    // Port 80 on an address of the test's own, so that nothing else holds it.
    let forwards = "[forwards.web]\nservice = \"web\"\nremote_port = 80\nlocal_port = 80\nlocal_address = \"127.80.0.1\"\n";
    ns.configure_as(&project, &kubeconfig, forwards);
    std::os::unix::fs::chown(project.path("kftray.toml"), Some(NOBODY), Some(NOBODY)).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(scratch.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    // The build's folder may be one the user cannot enter (a checkout under /root): kftray
    // runs from a copy of its own, which the wrapper puts in place of the path it is given.
    let copy = scratch.path().join("kftray");
    std::fs::copy(env!("CARGO_BIN_EXE_kftray"), &copy).unwrap();
    project.wrapper = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "sh",
        "-c",
        "shift; exec \"$KFTRAY_COPY\" \"$@\"",
        "sh",
    ]
    .map(String::from)
    .to_vec();
    project
        .env
        .push(("KFTRAY_COPY".into(), copy.display().to_string()));
    project.env.push((
        "KFTRAY_HELPER_SOCKET".into(),
        scratch.path().join("helper.sock").display().to_string(),
    ));

    // No helper: the refusal says what the user can do.
    project.spawn_up(&[]);
    let status = project
        .wait_for("web refused", |s| {
            s.iter()
                .any(|f| f["alias"] == "web" && f["state"] == "failed")
        })
        .await;
    let why = status[0]["last_error"].as_str().unwrap().to_owned();
    for said in [
        "ip_unprivileged_port_start",
        "sudo kftray-helper serve",
        "cap_net_bind_service",
    ] {
        assert!(why.contains(said), "{why}");
    }

    // With the helper serving this user, the port comes up at the next try.
    let _helper = HelperProcess::start(scratch.path(), NOBODY);
    let at = project.ready("web").await;
    assert_eq!(at, "127.80.0.1:80".parse().unwrap());
    let (code, answer) = kubesim::testing::http_get(at, "/").await.unwrap();
    assert_eq!(code, 200);
    assert!(from_web(answer.trim()));
}
