//! A bounded soak on the real control plane: `kftray up` under steady churn (connections
//! every second, a reload every 5 s, a web pod deleted every 10 s, the relay pod deleted
//! every 15 s), its open fds, RSS and threads sampled from /proc as it goes. After the
//! warm-up they must not grow: a leak of sockets, sessions or tasks shows as growth.
//!
//! `KFTRAY_SOAK_SECS` sets the length: 40 s in the suite, 600 in `scripts/soak.sh`. The
//! samples are printed and written to `target/reliability/soak.tsv`.

mod support;

use kftray::relay::SELECTOR;
use kube::api::{DeleteParams, ListParams};
use kubesim::testing::http_get;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::Project;
use support::cluster::{Namespace, WEB, shared};

fn file(ns: &Namespace, extra: bool) -> String {
    let mut text = format!(
        "[defaults]\nkubeconfig = {:?}\nnamespace = {:?}\n\n{}\
         [forwards.web-relayed]\nservice = \"web\"\nvia = \"relay\"\nremote_port = \"http\"\nlocal_port = \"any\"\n\n",
        shared().kubeconfig.display().to_string(),
        ns.name,
        support::forward("web", "web", "\"http\""),
    );
    if extra {
        text.push_str(
            "[forwards.extra]\nservice = \"web\"\nremote_port = \"http\"\nlocal_port = \"any\"\n",
        );
    }
    text
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    fds: usize,
    rss_kib: u64,
    threads: u64,
}

fn sample(pid: i64, at: Duration) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Sample {
        at,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count(),
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
    }
}

/// `n` GETs at once through `addr`: how many were answered 200.
async fn burst(addr: SocketAddr, n: usize) -> usize {
    let gets = (0..n).map(|_| tokio::spawn(http_get(addr, "/")));
    let mut ok = 0;
    for get in gets {
        if let Ok(Ok((200, _))) = get.await {
            ok += 1;
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_steady_churn_fds_memory_and_threads_do_not_grow() {
    let secs: u64 = std::env::var("KFTRAY_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let every = Duration::from_secs((secs / 8).clamp(5, 10));
    let ns = Namespace::new("kftray-soak").await;
    ns.apply(WEB).await;
    ns.wait_ready("app=web", 2).await;
    let mut project = Project::new();
    std::fs::write(project.path("kftray.toml"), file(&ns, false)).unwrap();
    project.spawn_up(&[]);
    let web = project.ready("web").await;
    let relayed = project.ready("web-relayed").await;
    let pid = project.status().await[0]["pid"].as_i64().unwrap();

    let started = Instant::now();
    let (mut samples, mut asked, mut answered) = (Vec::new(), 0, 0);
    let mut next_sample = Duration::ZERO;
    for second in 0..secs {
        asked += 25;
        answered += burst(web, 20).await + burst(relayed, 5).await;
        if second % 5 == 4 {
            let extra = (second / 5) % 2 == 0;
            std::fs::write(project.path("kftray.toml"), file(&ns, extra)).unwrap();
        }
        if second % 10 == 9
            && let Some(pod) = ns.pod_names("app=web").await.first()
        {
            let _ = ns.pods().delete(pod, &DeleteParams::default()).await;
        }
        if second % 15 == 14 {
            let relays = ns
                .pods()
                .list(&ListParams::default().labels(SELECTOR))
                .await
                .unwrap();
            for pod in relays.items.iter().filter_map(|p| p.metadata.name.clone()) {
                let _ = ns
                    .pods()
                    .delete(&pod, &DeleteParams::default().grace_period(0))
                    .await;
            }
        }
        if started.elapsed() >= next_sample {
            samples.push(sample(pid, started.elapsed()));
            next_sample += every;
        }
        let pace = Duration::from_secs(second + 1).saturating_sub(started.elapsed());
        tokio::time::sleep(pace).await;
    }
    // Settled: churn stopped, the forwards serve again.
    project.ready("web").await;
    burst(web, 5).await;
    samples.push(sample(pid, started.elapsed()));

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../reliability");
    std::fs::create_dir_all(&dir).unwrap();
    let mut tsv = format!("# soak {secs} s: {answered} of {asked} requests answered 200\n");
    tsv.push_str("seconds\tfds\trss_kib\tthreads\n");
    for s in &samples {
        tsv.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            s.at.as_secs(),
            s.fds,
            s.rss_kib,
            s.threads
        ));
    }
    eprint!("{tsv}");
    std::fs::write(dir.join("soak.tsv"), &tsv).unwrap();

    // The first samples are the warm-up: sessions, the relay and the caches being made.
    let warm = samples[samples.len() / 3];
    let end = samples[samples.len() - 1];
    assert!(
        end.fds <= warm.fds + 16,
        "open fds grew from {} to {}:\n{tsv}",
        warm.fds,
        end.fds
    );
    assert!(
        end.rss_kib <= warm.rss_kib * 3 / 2 + 8 * 1024,
        "RSS grew from {} KiB to {} KiB:\n{tsv}",
        warm.rss_kib,
        end.rss_kib
    );
    assert!(
        end.threads <= warm.threads + 4,
        "threads grew from {} to {}:\n{tsv}",
        warm.threads,
        end.threads
    );
    assert!(
        answered * 10 >= asked * 9,
        "only {answered} of {asked} requests answered:\n{}",
        project.log()
    );
    assert!(project.up_exited().is_none());
}

/// A forward removed by a reload leaves nothing behind: its pod and service watches end with
/// it. Before they did, each removal left a watch (and its connection to the API server)
/// running for the life of the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_removed_by_reloads_leave_no_connection_behind() {
    let ns = Namespace::new("kftray-removed").await;
    ns.apply(WEB).await;
    ns.wait_ready("app=web", 2).await;
    let mut project = Project::new();
    let toml = project.path("kftray.toml");
    let write = |extra| std::fs::write(&toml, file(&ns, extra)).unwrap();
    write(false);
    project.spawn_up(&[]);
    project.ready("web").await;
    project.ready("web-relayed").await;
    let pid = project.status().await[0]["pid"].as_i64().unwrap();
    let toggle = async || {
        write(true);
        project.ready("extra").await;
        write(false);
        project
            .wait_for("extra removed", |s| {
                !support::aliases(s).iter().any(|a| a == "extra")
            })
            .await;
    };
    // Once first, so what is made on first use (pooled connections, the session) counts in
    // the baseline.
    toggle().await;
    let before = sample(pid, Duration::ZERO).fds;
    for _ in 0..8 {
        toggle().await;
    }
    let after = sample(pid, Duration::ZERO).fds;
    assert!(
        after <= before + 2,
        "8 forwards added and removed left {} more fds open ({before} to {after})",
        after.saturating_sub(before)
    );
}
