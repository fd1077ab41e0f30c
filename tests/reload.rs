//! Hot reload: a running `kftray up` follows kftray.toml (and kftray.local.toml) however an
//! editor saves it, applies only what changed, and keeps running through a bad edit or a
//! deleted file. The real binary against the simulated cluster, with traffic through real
//! sockets.

mod support;

use kubesim::ClusterOptions;
use kubesim::testing::{demo_cluster, http_get};
use std::time::Duration;
use support::{Project, aliases, defaults, forward, git, latencies};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WEB: (&str, &str, &str) = ("web", "web", "\"http\"");
const DB: (&str, &str, &str) = ("db", "postgres", "5432");

fn file(cluster: &kubesim::Cluster, forwards: &[(&str, &str, &str)]) -> String {
    let mut text = defaults(cluster);
    for (alias, service, port) in forwards {
        text.push_str(&forward(alias, service, port));
    }
    text
}

/// Starts `up` on a file with `web`, saves a file with `web` and `db` the way `save` does,
/// and expects `db` to come up with `web` left alone.
async fn reload_after(save: impl FnOnce(&Project, &str)) {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let mut project = Project::new();
    std::fs::write(project.path("kftray.toml"), file(&cluster, &[WEB])).unwrap();
    project.spawn_up(&[]);
    let web = project.ready("web").await;

    save(&project, &file(&cluster, &[WEB, DB]));
    project.ready("db").await;
    let status = project.status().await;
    assert_eq!(aliases(&status), ["db", "web"]);
    assert_eq!(support::address(&status, "web"), web, "web was restarted");
    assert_eq!(http_get(web, "/").await.unwrap().0, 200);
    let log = project.log();
    assert!(
        log.contains("reload (kftray.toml changed): started db"),
        "{log}"
    );
    for line in latencies(&log) {
        println!("measured: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_place_write_reloads() {
    reload_after(|p, text| std::fs::write(p.path("kftray.toml"), text).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temp_file_renamed_over_the_file_reloads() {
    reload_after(|p, text| {
        let tmp = p.path(".kftray.toml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, p.path("kftray.toml")).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vim_style_backup_copy_save_reloads() {
    reload_after(|p, text| {
        // vim with `backupcopy=no`: move the original away, write a new file, drop the backup.
        let backup = p.path("kftray.toml~");
        std::fs::rename(p.path("kftray.toml"), &backup).unwrap();
        std::fs::write(p.path("kftray.toml"), text).unwrap();
        std::fs::remove_file(&backup).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_checkout_of_another_revision_reloads() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let mut project = Project::new();
    let root = project.root();
    git(&root, &["init", "-q", "-b", "main"]);
    std::fs::write(project.path("kftray.toml"), file(&cluster, &[WEB])).unwrap();
    git(&root, &["add", "kftray.toml"]);
    git(&root, &["commit", "-qm", "web"]);
    git(&root, &["checkout", "-qb", "with-db"]);
    std::fs::write(project.path("kftray.toml"), file(&cluster, &[WEB, DB])).unwrap();
    git(&root, &["commit", "-qam", "db"]);
    git(&root, &["checkout", "-q", "main"]);

    project.spawn_up(&[]);
    let web = project.ready("web").await;
    git(&root, &["checkout", "-q", "with-db"]);
    project.ready("db").await;
    git(&root, &["checkout", "-q", "main"]);
    project
        .wait_for("db stopped", |s| aliases(s) == ["web"])
        .await;
    assert_eq!(support::address(&project.status().await, "web"), web);
    let log = project.log();
    assert!(log.contains("stopped db"), "{log}");
    for line in latencies(&log) {
        println!("measured: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_is_waited_for_and_its_return_applies() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let mut project = Project::new();
    std::fs::write(project.path("kftray.toml"), file(&cluster, &[WEB])).unwrap();
    project.spawn_up(&[]);
    let web = project.ready("web").await;

    std::fs::remove_file(project.path("kftray.toml")).unwrap();
    let status = project
        .wait_for("the file reported gone", |s| {
            s.iter().any(|f| {
                f["reload_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("is gone"))
            })
        })
        .await;
    assert_eq!(
        status[0]["state"], "ready",
        "the forward stopped: {status:#?}"
    );
    assert_eq!(http_get(web, "/").await.unwrap().0, 200);

    std::fs::write(project.path("kftray.toml"), file(&cluster, &[WEB, DB])).unwrap();
    project.ready("db").await;
    let status = project.status().await;
    assert!(
        status.iter().all(|f| f["reload_error"].is_null()),
        "{status:#?}"
    );
    assert!(project.up_exited().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_edit_changes_nothing_and_the_next_valid_save_applies() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let mut project = Project::new();
    let good = file(&cluster, &[WEB]);
    std::fs::write(project.path("kftray.toml"), &good).unwrap();
    project.spawn_up(&[]);
    let web = project.ready("web").await;

    // A typo in a key, and an unclosed table header: both reported, at their lines.
    let bad =
        format!("{good}[forwards.db]\nservice = \"postgres\"\nremote_prot = 5432\n[forwards.x\n");
    std::fs::write(project.path("kftray.toml"), bad).unwrap();
    let status = project
        .wait_for("the reload error", |s| {
            s.iter().any(|f| f["reload_error"].is_string())
        })
        .await;
    let error = status[0]["reload_error"].as_str().unwrap();
    assert!(error.contains("kftray::syntax"), "{error}");
    assert!(error.contains("kftray.toml:13:"), "{error}");
    assert!(
        !error.contains('\u{1b}'),
        "colour in the stored diagnostic: {error:?}"
    );
    assert!(status[0]["reload_error_at_ms"].as_i64().unwrap() > 0);
    assert_eq!(aliases(&status), ["web"]);
    assert_eq!(status[0]["state"], "ready");
    assert_eq!(http_get(web, "/").await.unwrap().0, 200);
    let table = project.run(&["status"]).await;
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("reload error"), "{table}");
    assert!(table.contains("kftray::syntax"), "{table}");
    let log = project.log();
    assert!(
        log.contains("not applied, the forwards keep running as they were"),
        "{log}"
    );

    std::fs::write(project.path("kftray.toml"), file(&cluster, &[WEB, DB])).unwrap();
    project.ready("db").await;
    let status = project.status().await;
    assert!(
        status.iter().all(|f| f["reload_error"].is_null()),
        "{status:#?}"
    );
    assert!(
        status.iter().all(|f| f["reloaded_at_ms"].is_i64()),
        "{status:#?}"
    );
    assert_eq!(support::address(&status, "web"), web);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untouched_forwards_keep_their_open_connections_across_a_reload() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let mut project = Project::new();
    std::fs::write(project.path("kftray.toml"), file(&cluster, &[WEB, DB])).unwrap();
    project.spawn_up(&[]);
    let db = project.ready("db").await;
    let web = project.ready("web").await;
    let mut held = tokio::net::TcpStream::connect(db).await.unwrap();
    held.write_all(b"before").await.unwrap();
    let mut buf = [0u8; 6];
    held.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"before");

    // web moves to another target; db is not touched; a description changes nothing.
    let text = file(&cluster, &[DB]).replace(
        "[forwards.db]",
        "[forwards.web]\ndeployment = \"web\"\nremote_port = \"http\"\nlocal_port = \"any\"\n\n\
         [forwards.db]\ndescription = \"the database\"",
    );
    std::fs::write(project.path("kftray.toml"), text).unwrap();
    let status = project
        .wait_for("web restarted", |s| {
            s.iter().any(|f| {
                f["alias"] == "web" && f["target"].as_str().unwrap().starts_with("deployment/")
            })
        })
        .await;
    assert_eq!(support::address(&status, "db"), db);
    let moved = project.ready("web").await;
    assert_ne!(
        moved, web,
        "web kept its listener though its target changed"
    );
    assert_eq!(http_get(moved, "/").await.unwrap().0, 200);

    held.write_all(b"after!").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), held.read_exact(&mut buf))
        .await
        .expect("the held connection hangs")
        .expect("the held connection was cut by the reload");
    assert_eq!(&buf, b"after!");
    let log = project.log();
    assert!(
        log.contains("reload (kftray.toml changed): restarted web"),
        "{log}"
    );

    // A change that no forward's run depends on is said to change nothing.
    let text = std::fs::read_to_string(project.path("kftray.toml"))
        .unwrap()
        .replace("the database", "the main database");
    std::fs::write(project.path("kftray.toml"), text).unwrap();
    let deadline = tokio::time::Instant::now() + support::TIMEOUT;
    while !project.log().contains("nothing changed") {
        assert!(tokio::time::Instant::now() < deadline, "{}", project.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    held.write_all(b"again!").await.unwrap();
    held.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"again!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_overlay_is_followed_too() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let mut project = Project::new();
    std::fs::write(project.path("kftray.toml"), file(&cluster, &[WEB])).unwrap();
    project.spawn_up(&[]);
    project.ready("web").await;
    let overlay = forward("mine", "postgres", "5432");
    std::fs::write(project.path("kftray.local.toml"), overlay).unwrap();
    project.ready("mine").await;
    std::fs::remove_file(project.path("kftray.local.toml")).unwrap();
    project
        .wait_for("mine stopped", |s| aliases(s) == ["web"])
        .await;
    assert!(
        project.log().contains("kftray.local.toml changed"),
        "{}",
        project.log()
    );
}
