//! `kftray up`, `status` and `down` end to end: the real binary, as separate processes,
//! against the simulated cluster, with traffic through real sockets.

mod support;

use kubesim::testing::{TIMEOUT, demo_cluster, http_get};
use kubesim::{Cluster, ClusterOptions};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A project folder with its own kftray.toml and state home; `down --all` on drop so no
/// detached process outlives the test.
struct Project {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Project {
    fn new(cluster: &Cluster, forwards: &str) -> Project {
        let text = format!(
            "[defaults]\nkubeconfig = {:?}\nnamespace = \"demo\"\n\n{forwards}",
            cluster.kubeconfig_path().display().to_string()
        );
        Project::with_file(&text, Vec::new())
    }

    /// A project with this kftray.toml, run with these extra environment variables.
    fn with_file(text: &str, env: Vec<(String, String)>) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kftray.toml"), text).unwrap();
        Project { dir, env }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kftray"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("KFTRAY_HOME", self.home())
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    fn kftray(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs kftray off the async runtime's threads.
    async fn run(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    async fn up(&self) -> Output {
        let out = self.run(&["up", "--detach"]).await;
        assert!(out.status.success(), "up --detach failed:\n{}", text(&out));
        out
    }

    async fn status(&self) -> Vec<Value> {
        let out = self.run(&["status", "--output", "json"]).await;
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The forward's local address and the pod it uses, once it has one.
    async fn ready(&self, alias: &str) -> (SocketAddr, String) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let all = self.status().await;
            let forward = all.iter().find(|f| f["alias"] == alias);
            if let Some(f) = forward.filter(|f| f["state"] == "ready") {
                return (
                    f["local_address"].as_str().unwrap().parse().unwrap(),
                    f["pod"].as_str().unwrap().to_string(),
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{alias} never became ready: {all:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.kftray(&["down", "--all"]);
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn cluster() -> Cluster {
    demo_cluster(ClusterOptions::default()).await.unwrap()
}

const WEB: &str =
    "[forwards.web]\nservice = \"web\"\nremote_port = \"http\"\nlocal_port = \"any\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_status_and_down_work_from_separate_processes() {
    let cluster = cluster().await;
    let project = Project::new(&cluster, WEB);
    project.up().await;
    let (addr, pod) = project.ready("web").await;
    assert!(pod.starts_with("web-"), "{pod}");

    let (code, body) = http_get(addr, "/").await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        body.trim(),
        pod,
        "the forward reached another pod than status says"
    );

    // The bytes of that request show in status once the running kftray records them.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let status = project.status().await;
        assert_eq!(status.len(), 1);
        let (bytes_in, bytes_out) = (&status[0]["bytes_in"], &status[0]["bytes_out"]);
        if bytes_in.as_i64().unwrap() > 0 && bytes_out.as_i64().unwrap() > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no bytes counted: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let down = project.run(&["down"]).await;
    assert!(down.status.success(), "{}", text(&down));
    assert!(project.status().await.is_empty());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port still accepts after down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_up_for_the_same_project_is_refused() {
    let cluster = cluster().await;
    let project = Project::new(&cluster, WEB);
    project.up().await;
    let again = project.run(&["up", "--detach"]).await;
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already running"), "{}", text(&again));
    // Refused before anything starts: no forward listed, no bind attempted, no second run.
    assert!(again.stdout.is_empty(), "{}", text(&again));
    assert!(!err.contains("in use"), "{}", text(&again));
    assert_eq!(project.status().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_up_that_is_still_a_zombie_does_not_block_the_next() {
    let cluster = cluster().await;
    let project = Project::new(&cluster, WEB);
    // A foreground run whose parent (this test) does not reap it: after kill -9 it stays a
    // zombie, as under a container's pid 1 that never reaps.
    let mut child = project
        .command(&["up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    project.ready("web").await;
    child.kill().unwrap();
    let stat = format!("/proc/{}/stat", child.id());
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !std::fs::read_to_string(&stat).unwrap().contains(") Z ") {
        assert!(tokio::time::Instant::now() < deadline, "never a zombie");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    project.up().await;
    let (addr, _) = project.ready("web").await;
    assert_eq!(http_get(addr, "/").await.unwrap().0, 200);
    assert!(std::path::Path::new(&stat).exists(), "reaped too early");
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_the_next_up_cleans_up_and_starts() {
    let cluster = cluster().await;
    let project = Project::new(&cluster, WEB);
    project.up().await;
    let pid = project.status().await[0]["pid"].as_i64().unwrap();
    // SAFETY: plain kill(2) on the detached kftray this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        project.status().await.is_empty(),
        "a dead run is still listed"
    );
    project.up().await;
    let (addr, _) = project.ready("web").await;
    assert_eq!(http_get(addr, "/").await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_fails_that_forward_only_and_names_the_owner() {
    let cluster = cluster().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let forwards = format!(
        "{WEB}\n[forwards.db]\nservice = \"postgres\"\nremote_port = 5432\nlocal_port = {port}\n"
    );
    let project = Project::new(&cluster, &forwards);
    let out = project.run(&["up", "--detach"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port} is already in use")),
        "{}",
        text(&out)
    );
    assert!(err.contains("another `local_port`"), "{}", text(&out));
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{}",
        text(&out)
    );
    let (addr, _) = project.ready("web").await;
    assert_eq!(http_get(addr, "/").await.unwrap().0, 200);
    // Once the port is free the forward starts by itself, without a reload.
    drop(taken);
    let (addr, pod) = project.ready("db").await;
    assert_eq!(addr.port(), port);
    assert!(pod.starts_with("postgres"), "{pod}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pod_is_replaced_and_the_next_connection_succeeds() {
    let cluster = cluster().await;
    let project = Project::new(&cluster, WEB);
    project.up().await;
    let (addr, first) = project.ready("web").await;
    assert_eq!(http_get(addr, "/").await.unwrap().1.trim(), first);
    cluster.delete_pod("demo", &first, Some(0)).unwrap();
    // The listener never closes; the next connections reach a pod that is not the deleted one.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Ok((200, body)) = http_get(addr, "/").await
            && body.trim() != first
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never moved off {first}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_and_workload_targets_with_named_ports() {
    let cluster = cluster().await;
    let forwards = "[forwards.by-selector]\nselector = \"app=web\"\nremote_port = \"http\"\nlocal_port = \"any\"\n\n\
                    [forwards.by-deployment]\ndeployment = \"web\"\nremote_port = \"http\"\nlocal_port = \"any\"\n\n\
                    [forwards.by-pod-port]\nstatefulset = \"postgres\"\nremote_port = 5432\nlocal_port = \"any\"\n";
    let project = Project::new(&cluster, forwards);
    project.up().await;
    for alias in ["by-selector", "by-deployment"] {
        let (addr, pod) = project.ready(alias).await;
        let (code, body) = http_get(addr, "/").await.unwrap();
        assert_eq!((code, body.trim()), (200, pod.as_str()), "{alias}");
    }
    let (addr, pod) = project.ready("by-pod-port").await;
    assert_eq!(pod, "postgres-0");
    let mut echo = tokio::net::TcpStream::connect(addr).await.unwrap();
    echo.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    echo.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_gets_the_whole_reply() {
    let cluster = cluster().await;
    let forwards =
        "[forwards.db]\nservice = \"postgres\"\nremote_port = \"postgres\"\nlocal_port = \"any\"\n";
    let project = Project::new(&cluster, forwards);
    project.up().await;
    let (addr, _) = project.ready("db").await;
    let request: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client.write_all(&request).await.unwrap();
    client.shutdown().await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(TIMEOUT, client.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.len(), request.len());
    assert!(reply == request, "the echoed bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_connections_on_one_forward() {
    let cluster = cluster().await;
    let project = Project::new(&cluster, WEB);
    project.up().await;
    let (addr, _) = project.ready("web").await;
    support::gets_at_once(addr, 200, |body| body.starts_with("web-")).await;
}

/// Started with a soft open-file limit of 64, `up` still holds 150 connections open at once:
/// it raises its own limit, as kubectl's runtime does, instead of refusing past the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_open_connections_than_the_soft_file_limit() {
    use std::os::unix::process::CommandExt;
    let cluster = cluster().await;
    let forwards =
        "[forwards.db]\nservice = \"postgres\"\nremote_port = \"postgres\"\nlocal_port = \"any\"\n";
    let project = Project::new(&cluster, forwards);
    let mut command = project.command(&["up", "--detach"]);
    // SAFETY: only getrlimit/setrlimit between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let mut limit = std::mem::zeroed::<libc::rlimit>();
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = 64;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let (addr, _) = project.ready("db").await;
    let mut open = Vec::new();
    for i in 0..150u32 {
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = i.to_be_bytes();
        client.write_all(&request).await.unwrap();
        let mut reply = [0u8; 4];
        tokio::time::timeout(TIMEOUT, client.read_exact(&mut reply))
            .await
            .unwrap_or_else(|_| panic!("connection {i} got no echo"))
            .unwrap();
        assert_eq!(reply, request);
        open.push(client);
    }
    // Every one is still carried, the first as well as the last.
    for (i, client) in open.iter_mut().enumerate() {
        client.write_all(b"again").await.unwrap();
        let mut reply = [0u8; 5];
        tokio::time::timeout(TIMEOUT, client.read_exact(&mut reply))
            .await
            .unwrap_or_else(|_| panic!("connection {i} went quiet"))
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_plan_and_starts_nothing() {
    let cluster = cluster().await;
    let project = Project::new(&cluster, WEB);
    let out = project.run(&["up", "--dry-run"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "start   web\n");
    assert!(project.status().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_come_from_several_kubeconfig_files_as_kubectl_merges_them() {
    let east = demo_cluster(ClusterOptions {
        name: Some("east".into()),
        ..ClusterOptions::default()
    })
    .await
    .unwrap();
    let west = demo_cluster(ClusterOptions {
        name: Some("west".into()),
        ..ClusterOptions::default()
    })
    .await
    .unwrap();
    let paths = std::env::join_paths([east.kubeconfig_path(), west.kubeconfig_path()]).unwrap();
    let text = format!(
        "[defaults]\nnamespace = \"demo\"\n\n\
         [forwards.east-web]\ncontext = {:?}\nservice = \"web\"\nremote_port = \"http\"\nlocal_port = \"any\"\n\n\
         [forwards.west-web]\ncontext = {:?}\nservice = \"web\"\nremote_port = \"http\"\nlocal_port = \"any\"\n",
        east.context(),
        west.context()
    );
    let project = Project::with_file(
        &text,
        vec![("KUBECONFIG".into(), paths.to_string_lossy().into_owned())],
    );
    project.up().await;
    for (alias, cluster) in [("east-web", &east), ("west-web", &west)] {
        let (addr, pod) = project.ready(alias).await;
        assert!(
            cluster.get("pods", "demo", &pod).is_some(),
            "{alias} used a pod of another cluster"
        );
        assert_eq!(http_get(addr, "/").await.unwrap().1.trim(), pod);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_tags_pick_a_subset() {
    let cluster = cluster().await;
    let forwards = format!(
        "{WEB}tags = [\"frontend\"]\n\n[forwards.db]\nservice = \"postgres\"\nremote_port = 5432\nlocal_port = \"any\"\ntags = [\"backend\"]\n"
    );
    let project = Project::new(&cluster, &forwards);
    let plan = |args: &'static [&'static str]| {
        let out = project.kftray(args);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(plan(&["up", "--dry-run"]), "start   db\nstart   web\n");
    assert_eq!(plan(&["up", "--dry-run", "db"]), "start   db\n");
    assert_eq!(
        plan(&["up", "--dry-run", "--tag", "frontend"]),
        "start   web\n"
    );
    let unknown = project.kftray(&["up", "--dry-run", "cache"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no forward named \"cache\""),
        "{}",
        text(&unknown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pod_port_fails_that_connection_alone_with_the_kubelets_reason() {
    let cluster = cluster().await;
    let forwards = format!(
        "{WEB}\n[forwards.closed]\ndeployment = \"web\"\nremote_port = 9999\nlocal_port = \"any\"\n"
    );
    let project = Project::new(&cluster, &forwards);
    project.up().await;
    let (closed, _) = project.ready("closed").await;
    let mut stream = tokio::net::TcpStream::connect(closed).await.unwrap();
    let _ = stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await;
    let mut reply = Vec::new();
    // The pod has nothing on 9999: the connection ends without a reply...
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut reply))
        .await
        .unwrap();
    assert!(reply.is_empty());
    // ...status says why, and the other forward (and this listener) carry on.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let status = project.status().await;
        let row = status.iter().find(|f| f["alias"] == "closed").unwrap();
        if let Some(error) = row["last_error"].as_str() {
            assert!(error.contains("error forwarding port 9999"), "{error}");
            assert_eq!(row["state"], "ready");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no error recorded: {row}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (web, _) = project.ready("web").await;
    assert_eq!(http_get(web, "/").await.unwrap().0, 200);
    assert!(tokio::net::TcpStream::connect(closed).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_in_the_foreground_stops_cleanly_with_exit_0() {
    let cluster = cluster().await;
    let project = Project::new(&cluster, WEB);
    let child = project
        .command(&["up"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _) = project.ready("web").await;
    assert_eq!(http_get(addr, "/").await.unwrap().0, 200);
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stopping (interrupted)"),
        "{}",
        text(&out)
    );
    assert!(project.status().await.is_empty());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
