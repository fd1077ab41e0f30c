//! Processes racing over one project: `up`s started together (exactly one runs), `down`
//! racing `up --detach` (what status says is what runs), `kill -9` in the middle of the
//! state database's writes (it stays whole, and the next `up` starts at once), and `add`s
//! run together while `up` reloads (none is lost). The real binary against the simulated
//! cluster.

mod support;

use kubesim::ClusterOptions;
use kubesim::testing::{demo_cluster, http_get};
use std::process::Stdio;
use std::time::Duration;
use support::{Project, defaults, forward, text};

fn web_file(cluster: &kubesim::Cluster, count: usize) -> String {
    let mut file = defaults(cluster);
    for i in 0..count {
        file.push_str(&forward(&format!("web{i}"), "web", "\"http\"")[..]);
    }
    file
}

/// The outputs of `n` processes started together, the `i`th running `args(i)`.
async fn together<A: AsRef<str>>(
    project: &Project,
    n: usize,
    args: impl Fn(usize) -> Vec<A>,
) -> Vec<std::process::Output> {
    let children: Vec<_> = (0..n)
        .map(|i| {
            let args = args(i);
            let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
            project
                .command(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    })
    .await
    .unwrap()
}

fn alive(pid: i64) -> bool {
    // A zombie is dead; only a process that can still run counts.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit(") ").next().unwrap_or("").chars().next();
            !matches!(state, Some('Z' | 'X') | None)
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_ups_started_together_exactly_one_runs() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let project = Project::new();
    std::fs::write(project.path("kftray.toml"), web_file(&cluster, 1)).unwrap();
    let outs = together(&project, 4, |_| vec!["up", "--detach"]).await;
    let (won, lost): (Vec<_>, Vec<_>) = outs.iter().partition(|o| o.status.success());
    assert_eq!(
        won.len(),
        1,
        "{:#?}",
        outs.iter().map(text).collect::<Vec<_>>()
    );
    for out in &lost {
        let said = text(out);
        assert!(said.contains("already running"), "{said}");
        // It said so before binding anything or listing forwards.
        assert!(!said.contains("port"), "{said}");
        assert!(out.stdout.is_empty(), "{said}");
    }
    let addr = project.ready("web0").await;
    assert_eq!(http_get(addr, "/").await.unwrap().0, 200);
    let status = project.status().await;
    assert_eq!(status.len(), 1, "{status:#?}");
    assert!(project.run(&["down"]).await.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_racing_an_up_leaves_status_telling_the_truth() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let project = Project::new();
    std::fs::write(project.path("kftray.toml"), web_file(&cluster, 1)).unwrap();
    for round in 0..5 {
        let up = project
            .command(&["up", "--detach"])
            .stdin(Stdio::null())
            .output();
        // The down starts a little later each round, to land on a different step of the up.
        let delay = Duration::from_millis(40 * round);
        let down = {
            let mut command = project.command(&["down"]);
            async move {
                tokio::time::sleep(delay).await;
                tokio::task::spawn_blocking(move || command.output().unwrap())
                    .await
                    .unwrap()
            }
        };
        let (up, down) = tokio::join!(tokio::task::spawn_blocking(|| up.unwrap()), down);
        let (up, down) = (up.unwrap(), down);
        assert!(down.status.success(), "{}", text(&down));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = project.status().await;
        match status.first() {
            // What status lists runs and serves.
            Some(row) => {
                let pid = row["pid"].as_i64().unwrap();
                assert!(alive(pid), "round {round}: status lists dead pid {pid}");
                let addr = project.ready("web0").await;
                assert_eq!(http_get(addr, "/").await.unwrap().0, 200);
                assert!(project.run(&["down"]).await.status.success());
            }
            // Nothing listed: nothing of this project runs.
            None => {
                let ours = std::fs::read_dir("/proc")
                    .unwrap()
                    .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i64>().ok())
                    .filter(|pid| alive(*pid))
                    .filter(|pid| {
                        std::fs::read(format!("/proc/{pid}/environ"))
                            .map(|env| {
                                let home = format!("KFTRAY_HOME={}", project.home().display());
                                env.split(|b| *b == 0).any(|v| v == home.as_bytes())
                            })
                            .unwrap_or(false)
                    })
                    .count();
                assert_eq!(
                    ours,
                    0,
                    "round {round}: a kftray runs that status does not list\nup: {}\ndown: {}",
                    text(&up),
                    text(&down)
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_the_state_writes_leaves_the_database_whole() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let mut project = Project::new();
    // Many forwards: many rows written at the start and every second.
    std::fs::write(project.path("kftray.toml"), web_file(&cluster, 20)).unwrap();
    let db = project.home().join("state.db");
    for round in 0..12u64 {
        project.spawn_up(&[]);
        // From the opening of the database to the steady flushes.
        tokio::time::sleep(Duration::from_millis(30 + 97 * round)).await;
        project.kill_up(libc::SIGKILL);
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let started = std::time::Instant::now();
    project.spawn_up(&[]);
    project.ready("web19").await;
    eprintln!(
        "after 12 kill -9s, the next up was ready in {} ms",
        started.elapsed().as_millis()
    );
    assert!(
        !project.log().contains("already running"),
        "{}",
        project.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adds_run_together_while_up_reloads_are_all_kept() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let mut project = Project::new();
    std::fs::write(project.path("kftray.toml"), web_file(&cluster, 1)).unwrap();
    project.spawn_up(&[]);
    project.ready("web0").await;
    let outs = together(&project, 8, |i| {
        let web = format!("web{}", i + 1);
        let port = format!("{}:80", 24101 + i);
        vec![
            "add".into(),
            "--service".into(),
            "web".into(),
            "--port".into(),
            port,
            web,
        ]
    })
    .await;
    for out in &outs {
        assert!(out.status.success(), "{}", text(out));
    }
    let file = std::fs::read_to_string(project.path("kftray.toml")).unwrap();
    for i in 1..=8 {
        assert!(
            file.contains(&format!("[forwards.web{i}]")),
            "web{i} lost:\n{file}"
        );
    }
    for i in 0..=8 {
        project.ready(&format!("web{i}")).await;
    }
    let out = project.run(&["rm", "web3"]).await;
    assert!(out.status.success(), "{}", text(&out));
    project
        .wait_for("web3 gone", |s| s.iter().all(|f| f["alias"] != "web3"))
        .await;
}
