//! Faults of the state database and its disk: a database another process holds locked, a
//! full disk, and files that are damaged, cut short, from a newer kftray or in a folder that
//! cannot be written. A running `up` keeps serving through the first two and writes what
//! happened once it can; a start on any of them is refused with the file named and what to
//! do, and the file is left as it was. The real binary against the simulated cluster.

mod support;

use kubesim::ClusterOptions;
use kubesim::testing::{demo_cluster, http_get};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{Project, defaults, forward, text};

const WEB: &str = "web";

fn file(cluster: &kubesim::Cluster, forwards: &[&str]) -> String {
    let mut text = defaults(cluster);
    for alias in forwards {
        let (service, port) = match *alias {
            "db" => ("postgres", "5432"),
            _ => ("web", "\"http\""),
        };
        text.push_str(&forward(alias, service, port));
    }
    text
}

/// The event kinds recorded so far, oldest first, read as any other process would.
fn events(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT kind || ': ' || message FROM events ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Waits until the log of `up` holds `what`.
async fn log_says(project: &Project, what: &str) {
    let deadline = tokio::time::Instant::now() + support::TIMEOUT;
    while !project.log().contains(what) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log never said {what:?}:\n{}",
            project.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// While the database cannot be written (`break_it` until `mend_it`), the forward serves,
/// a reload still applies, the log says why nothing is written, and once it can be written
/// again every event is there, the ones from before and the ones kept meanwhile.
async fn survives(
    project: &mut Project,
    cluster: &kubesim::Cluster,
    break_it: impl FnOnce(),
    said: &str,
    mend_it: impl FnOnce(),
) {
    std::fs::write(project.path("kftray.toml"), file(cluster, &[WEB])).unwrap();
    project.spawn_up(&[]);
    let web = project.ready(WEB).await;
    let db = project.home().join("state.db");
    let before = events(&db);
    assert!(
        before.iter().any(|e| e.starts_with("started")),
        "{before:?}"
    );

    break_it();
    std::fs::write(project.path("kftray.toml"), file(cluster, &[WEB, "db"])).unwrap();
    log_says(project, said).await;
    log_says(project, "started db").await;
    for _ in 0..5 {
        assert_eq!(http_get(web, "/").await.unwrap().0, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        project.up_exited().is_none(),
        "up stopped:\n{}",
        project.log()
    );

    let broken = std::time::Instant::now();
    mend_it();
    log_says(project, "is written again").await;
    let mended = broken.elapsed();
    for line in project
        .log()
        .lines()
        .filter(|l| l.contains("state database"))
    {
        eprintln!("up said: {line}");
    }
    eprintln!(
        "written again {} ms after the fault was mended",
        mended.as_millis()
    );
    project.ready("db").await;
    let after = events(&db);
    assert!(after.starts_with(&before), "{before:?}\n{after:?}");
    assert!(
        after.iter().any(|e| e.contains("started db")),
        "the reload made while nothing could be written is lost: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_does_not_stop_the_forwards() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let mut project = Project::new();
    let db = project.home().join("state.db");
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked_tx, locked) = std::sync::mpsc::channel();
    let holder = {
        let db = db.clone();
        move || {
            std::thread::spawn(move || {
                let conn = rusqlite::Connection::open(&db).unwrap();
                conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
                locked_tx.send(()).unwrap();
                let _ = released.recv();
                conn.execute_batch("COMMIT").unwrap();
            });
            locked.recv().unwrap();
        }
    };
    survives(
        &mut project,
        &cluster,
        holder,
        &format!("the state database {} is locked", db.display()),
        move || release.send(()).unwrap(),
    )
    .await;
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&at).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot mount a tmpfs at {}", at.display());
        Tmpfs(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("not root: cannot mount a small disk here");
    }
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_does_not_stop_the_forwards() {
    if !root() {
        return;
    }
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let mut project = Project::new();
    let disk = Tmpfs::mount(project.home(), "4m");
    let filler = disk.0.join("filler");
    let fill = {
        let filler = filler.clone();
        move || {
            use std::io::Write;
            let mut f = std::fs::File::create(&filler).unwrap();
            let block = vec![0u8; 64 * 1024];
            while f.write_all(&block).is_ok() {}
            // The last bytes too, so not even a page is left.
            while f.write_all(&[0]).is_ok() {}
        }
    };
    survives(
        &mut project,
        &cluster,
        fill,
        "is full: free some space",
        move || std::fs::remove_file(&filler).unwrap(),
    )
    .await;
    drop(project);
    drop(disk);
}

/// `status` and `up` on a home whose database is `bytes`: both refused, saying `expected`,
/// with the file named, and the file left as it was.
async fn refused(cluster: &kubesim::Cluster, bytes: &[u8], expected: &str) {
    let project = Project::new();
    std::fs::create_dir_all(project.home()).unwrap();
    let db = project.home().join("state.db");
    std::fs::write(&db, bytes).unwrap();
    std::fs::write(project.path("kftray.toml"), file(cluster, &[WEB])).unwrap();
    for args in [&["status"][..], &["up"]] {
        let out = project.run(args).await;
        let said = text(&out);
        assert!(!out.status.success(), "{args:?} worked on it: {said}");
        assert!(said.contains(&db.display().to_string()), "{args:?}: {said}");
        assert!(said.contains(expected), "{args:?}: {said}");
        assert!(!said.contains("panicked"), "{said}");
        assert_eq!(
            std::fs::read(&db).unwrap(),
            bytes,
            "{args:?} changed the file"
        );
    }
}

/// A real database, as a run leaves it.
async fn a_used_database(cluster: &kubesim::Cluster) -> Vec<u8> {
    let mut project = Project::new();
    std::fs::write(project.path("kftray.toml"), file(cluster, &[WEB])).unwrap();
    project.spawn_up(&[]);
    project.ready(WEB).await;
    let out = project.run(&["down"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let db = project.home().join("state.db");
    // The run's pages moved from the log into the file itself.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    std::fs::read(&db).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_cut_short_or_newer_database_is_refused_with_what_to_do() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    refused(&cluster, &vec![b'x'; 8192], "is damaged").await;
    let used = a_used_database(&cluster).await;
    assert!(used.len() > 8192, "{} bytes", used.len());
    refused(&cluster, &used[..used.len() / 2], "mv ").await;
    let mut newer = used.clone();
    // PRAGMA user_version lives at offset 60 of the header, big-endian.
    newer[60..64].copy_from_slice(&99u32.to_be_bytes());
    refused(&cluster, &newer, "written by a newer kftray (schema 99").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_at_start_and_a_read_only_home_are_refused_by_name() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let project = Project::new();
    std::fs::write(project.path("kftray.toml"), file(&cluster, &[WEB])).unwrap();
    let out = project.run(&["status"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let db = project.home().join("state.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let out = project.run(&["up"]).await;
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("the state database {} is locked", db.display())),
        "{said}"
    );
    conn.execute_batch("COMMIT").unwrap();
    drop(conn);

    if !root() {
        return;
    }
    // Root writes through any mode: a read-only mount is what refuses it.
    let home = project.home();
    let disk = Tmpfs::mount(home.clone(), "1m");
    let remount = std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&home)
        .status()
        .unwrap();
    assert!(remount.success());
    let out = project.run(&["up"]).await;
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains(&home.display().to_string()), "{said}");
    assert!(!said.contains("panicked"), "{said}");
    drop(disk);
}
