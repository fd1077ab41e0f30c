//! scripts/demo.sh as a user runs it: forwards come up and curl is answered; then the
//! terminal's Ctrl-C (SIGINT to the whole foreground process group) ends it with one calm
//! line, and leaves no process and no file behind.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The pids of `pid` and everything below it.
fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // "pid (comm) state ppid …": comm may hold spaces, so read after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(parent) && !all.contains(&child) {
                all.push(child);
            }
        }
        i += 1;
    }
    all
}

/// Processes whose command line mentions `text`.
fn mentioning(text: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(text)
                .then_some(pid)
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, s)| s.trim_start().starts_with('Z'))
    })
}

#[test]
fn the_demo_serves_curl_and_ctrl_c_leaves_nothing_behind() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_kftray"));
    let bin = bin.parent().unwrap();
    assert!(
        bin.join("kubesim").is_file() && bin.join("relay-server").is_file(),
        "the workspace's binaries are not built"
    );
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path().join("tmp");
    std::fs::create_dir(&scratch).unwrap();
    let mut demo = Command::new("bash")
        .arg(root.join("scripts/demo.sh"))
        .env("KFTRAY_DEMO_BIN", bin)
        .env("KFTRAY_HOME", tmp.path().join("home"))
        .env("TMPDIR", &scratch)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A terminal's foreground job: its own process group, which Ctrl-C signals whole.
        .process_group(0)
        .spawn()
        .unwrap();
    let said = Arc::new(Mutex::new(String::new()));
    let readers: Vec<_> = [
        Box::new(demo.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(demo.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|pipe| {
        let said = said.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = said.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        })
    })
    .collect();
    let text = || said.lock().unwrap().clone();

    // Every forward ready, the UDP one through its relay pod.
    let deadline = Instant::now() + TIMEOUT;
    let ready = ["web ", "db ", "web-any ", "dns "];
    while !ready.iter().all(|name| {
        text()
            .lines()
            .any(|l| l.starts_with(name) && l.contains(" ready "))
    }) {
        assert!(
            Instant::now() < deadline,
            "the demo never came up:\n{}",
            text()
        );
        assert!(
            demo.try_wait().unwrap().is_none(),
            "the demo ended:\n{}",
            text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let curl = Command::new("curl")
        .args(["-s", "--max-time", "10", "http://127.0.0.1:8080/"])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&curl.stdout);
    assert!(
        body.trim().starts_with("web-"),
        "curl said {body:?}\n{}",
        text()
    );

    let cluster = mentioning(&scratch.display().to_string());
    assert!(!cluster.is_empty(), "no cluster process found");
    let everything: Vec<u32> = cluster.iter().flat_map(|&pid| tree(pid)).collect();
    assert!(everything.len() > cluster.len(), "the cluster runs no pods");

    let group = demo.id() as i32;
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
    assert_eq!(unsafe { libc::kill(-group, libc::SIGINT) }, 0);
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo kept running:\n{}",
            text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    for reader in readers {
        reader.join().unwrap();
    }
    let out = text();
    let after: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.contains("stopping (interrupted)"))
        .collect();
    assert_eq!(after, ["stopping (interrupted)"], "{out}");
    assert!(!out.contains("WARN") && !out.contains("ERROR"), "{out}");
    assert!(
        status.success() || status.code() == Some(130),
        "{status:?}\n{out}"
    );
    let left: Vec<u32> = everything.into_iter().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "left running: {left:?}\n{out}");
    let files: Vec<_> = std::fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(files.is_empty(), "left behind: {files:?}");
}
