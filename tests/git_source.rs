//! The team's file followed in git: pushed commits change the forwards within one interval,
//! an invalid commit is kept out, an unreachable server leaves the last good configuration
//! running, and credentials come from the environment, the OS keyring, git's helpers or the
//! user's ssh key — against real servers (a bare repository on disk, `git daemon`,
//! `git http-backend` behind nginx with Basic auth, sshd, gnome-keyring on its own D-Bus),
//! never a token in sight.

mod support;

use kubesim::ClusterOptions;
use kubesim::testing::{demo_cluster, http_get};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::servers::{GitDaemon, HTTP_USER, HttpGit, SecretService, SshGit, TeamRepo};
use support::{Project, TIMEOUT, aliases, defaults, forward, text};

fn team_file(cluster: &kubesim::Cluster, forwards: &[(&str, &str, &str)]) -> String {
    let mut text = defaults(cluster);
    for (alias, service, port) in forwards {
        text.push_str(&forward(alias, service, port));
    }
    text
}

const WEB: (&str, &str, &str) = ("web", "web", "\"http\"");
const DB: (&str, &str, &str) = ("db", "postgres", "5432");

fn row<'a>(status: &'a [Value], alias: &str) -> &'a Value {
    status
        .iter()
        .find(|f| f["alias"] == alias)
        .unwrap_or_else(|| panic!("no {alias}: {status:#?}"))
}

/// Every file under `dir` whose bytes contain `secret`.
fn files_containing(dir: &Path, secret: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, secret));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(secret.len()).any(|w| w == secret.as_bytes())
        {
            found.push(path);
        }
    }
    found
}

/// `token` is nowhere kftray wrote or shows: the output of `up` (run with `RUST_LOG=trace`,
/// the most it says), every file under its home (the database, the logs, the git cache),
/// `status` as a table and as JSON, and the command line of every process on the machine.
async fn leaks_nowhere(project: &Project, token: &str) {
    assert!(
        !project.log().contains(token),
        "the output of up shows the token"
    );
    let leaks = files_containing(&project.home(), token);
    assert!(leaks.is_empty(), "the token reached {leaks:?}");
    for args in [&["status"][..], &["status", "-o", "json"]] {
        let out = project.run(args).await;
        assert!(!text(&out).contains(token), "{args:?} shows the token");
    }
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            assert!(
                !cmdline.windows(token.len()).any(|w| w == token.as_bytes()),
                "the token is on the command line of pid {:?}: {}",
                entry.file_name(),
                String::from_utf8_lossy(&cmdline)
            );
        }
    }
}

/// Environment for a run whose every word is checked for the token.
fn tracing_everything() -> (String, String) {
    ("RUST_LOG".into(), "trace".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_commit_changes_the_forwards_within_one_interval_over_file_urls() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let team = TeamRepo::new(&team_file(&cluster, &[WEB]));
    let mut project = Project::new();
    let url = format!("file://{}", team.bare().display());
    project.spawn_up(&["--git", &url, "--ref", "main", "--interval", "1s"]);
    let web = project.ready("web").await;
    let status = project.status().await;
    let first = support::git(&team.bare(), &["rev-parse", "main"]);
    assert_eq!(status[0]["git_commit"], first.as_str());
    assert_eq!(status[0]["git_repo"], team.bare().to_str().unwrap());
    assert_eq!(status[0]["git_ref"], "main");
    assert_eq!(status[0]["git_path"], "kftray.toml");
    assert!(status[0]["git_synced_at_ms"].is_i64());

    let pushed_at = tokio::time::Instant::now();
    let second = team.push(&team_file(&cluster, &[WEB, DB]));
    project.ready("db").await;
    println!(
        "measured: a pushed commit ran {} ms after the push (interval 1 s)",
        pushed_at.elapsed().as_millis()
    );
    let status = project.status().await;
    assert_eq!(row(&status, "db")["git_commit"], second.as_str());
    assert_eq!(support::address(&status, "web"), web, "web was restarted");
    assert!(
        project
            .log()
            .contains(&format!("reload (commit {}): started db", &second[..12]))
    );

    // A commit that leaves the file alone reloads nothing, and is recorded as what runs.
    let third = team.push_file("README.md", "docs\n");
    project
        .wait_for("the new commit recorded", |s| {
            s[0]["git_commit"] == third.as_str()
        })
        .await;
    assert_eq!(
        project.log().matches("reload (").count(),
        1,
        "{}",
        project.log()
    );

    // The table says where the configuration comes from; `status` finds the run from the
    // project folder, which has no kftray.toml.
    let table = project.run(&["status"]).await;
    assert!(table.status.success(), "{}", text(&table));
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains(&format!(
            "git: {} main kftray.toml at {}",
            team.bare().display(),
            &third[..12]
        )),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_section_of_a_local_file_lays_it_over_the_team_file_from_a_plain_path() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let team = TeamRepo::new(&team_file(&cluster, &[WEB, DB]));
    let mut project = Project::new();
    // A relative path, resolved from the project folder.
    let repo = pathdiff(&team.bare(), &project.root());
    let local = format!(
        "[sync]\nrepo = {repo:?}\nref = \"main\"\ninterval = \"1s\"\n\n\
         [forwards.db]\nenabled = false\n\n\
         [forwards.mine]\nstatefulset = \"postgres\"\nremote_port = 5432\nlocal_port = \"any\"\n"
    );
    std::fs::write(project.path("kftray.toml"), local).unwrap();
    project.spawn_up(&[]);
    project.ready("mine").await;
    project.ready("web").await;
    assert_eq!(aliases(&project.status().await), ["mine", "web"]);

    // `validate` and `config` see the same layers.
    let out = project.run(&["config", "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["files"].as_array().unwrap().len(), 2, "{config:#}");
    let out = project.run(&["validate"]).await;
    assert!(out.status.success(), "{}", text(&out));

    // A local edit and a team commit both land.
    let text = std::fs::read_to_string(project.path("kftray.toml"))
        .unwrap()
        .replace("enabled = false", "enabled = true");
    std::fs::write(project.path("kftray.toml"), text).unwrap();
    project.ready("db").await;
    team.push(&team_file(&cluster, &[DB]));
    project
        .wait_for("web gone with the team's commit", |s| {
            aliases(s) == ["db", "mine"]
        })
        .await;
}

/// `to` relative to `from` (both absolute), as a user would write it.
fn pathdiff(to: &Path, from: &Path) -> String {
    let to: Vec<_> = to.components().collect();
    let from: Vec<_> = from.components().collect();
    let common = to.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = from[common..].iter().map(|_| "..".to_owned()).collect();
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_commit_is_not_applied_and_status_shows_it_then_a_fix_is() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let team = TeamRepo::new(&team_file(&cluster, &[WEB]));
    let daemon = GitDaemon::start(&team.base());
    let mut project = Project::new();
    project.spawn_up(&["--git", &daemon.url(), "--interval", "1s"]);
    let web = project.ready("web").await;

    let bad = team.push(&format!(
        "{}[forwards.db]\nservice = \"postgres\"\nremote_port = 99999\n",
        team_file(&cluster, &[WEB])
    ));
    let status = project
        .wait_for("the rejected commit", |s| {
            s[0]["git_rejected_commit"] == bad.as_str()
        })
        .await;
    let error = status[0]["git_rejected_error"].as_str().unwrap();
    assert!(error.contains("kftray::port-range"), "{error}");
    assert!(
        error.contains(&format!("{}@{}:kftray.toml:", daemon.url(), &bad[..12])),
        "the diagnostic does not point into the team's file: {error}"
    );
    assert_eq!(aliases(&status), ["web"]);
    assert_eq!(status[0]["state"], "ready");
    assert_ne!(status[0]["git_commit"], bad.as_str());
    assert_eq!(http_get(web, "/").await.unwrap().0, 200);

    // The team's file may not open this machine to the network.
    let exposed = team.push(&format!(
        "{}local_address = \"0.0.0.0\"\nexpose_to_network = true\n",
        team_file(&cluster, &[WEB])
    ));
    let status = project
        .wait_for("the exposing commit rejected", |s| {
            s[0]["git_rejected_commit"] == exposed.as_str()
        })
        .await;
    let error = status[0]["git_rejected_error"].as_str().unwrap();
    assert!(error.contains("kftray::trust"), "{error}");
    assert_eq!(support::address(&status, "web"), web);

    let good = team.push(&team_file(&cluster, &[WEB, DB]));
    project.ready("db").await;
    let status = project.status().await;
    assert_eq!(status[0]["git_commit"], good.as_str());
    assert!(status[0]["git_rejected_commit"].is_null(), "{status:#?}");
    assert!(status[0]["reload_error"].is_null(), "{status:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_keeps_the_last_good_config_running_then_recovers() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let team = TeamRepo::new(&team_file(&cluster, &[WEB]));
    let mut daemon = GitDaemon::start(&team.base());
    let mut project = Project::new();
    project.spawn_up(&["--git", &daemon.url(), "--interval", "1s"]);
    let web = project.ready("web").await;

    daemon.stop();
    let status = project
        .wait_for("the sync error", |s| s[0]["git_sync_error"].is_string())
        .await;
    let error = status[0]["git_sync_error"].as_str().unwrap();
    assert!(error.contains(&daemon.url()), "{error}");
    assert!(status[0]["git_sync_error_at_ms"].is_i64());
    assert_eq!(status[0]["state"], "ready");
    assert_eq!(http_get(web, "/").await.unwrap().0, 200);
    let table = project.run(&["status"]).await;
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("sync error"),
        "{}",
        text(&table)
    );

    // Back, with a new commit: it is fetched (the retries back off, never slower than the
    // interval) and the error goes.
    let commit = team.push(&team_file(&cluster, &[WEB, DB]));
    daemon.restart();
    project.ready("db").await;
    let status = project
        .wait_for("the error cleared", |s| s[0]["git_sync_error"].is_null())
        .await;
    assert_eq!(status[0]["git_commit"], commit.as_str());
    assert!(project.log().contains("sync: "), "{}", project.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_without_network_runs_the_cached_copy_and_without_a_cache_fails_clearly() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let team = TeamRepo::new(&team_file(&cluster, &[WEB]));
    let mut daemon = GitDaemon::start(&team.base());
    let url = daemon.url();
    let project = Project::new();

    daemon.stop();
    let out = project.run(&["up", "--git", &url, "--detach"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot fetch from {url}")), "{err}");
    assert!(err.contains("no copy of"), "{err}");
    assert!(project.status().await.is_empty());

    daemon.restart();
    let out = project.run(&["up", "--git", &url, "--detach"]).await;
    assert!(out.status.success(), "{}", text(&out));
    project.ready("web").await;
    let down = project.run(&["down"]).await;
    assert!(down.status.success(), "{}", text(&down));

    daemon.stop();
    let out = project.run(&["up", "--git", &url, "--detach"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let status = project
        .wait_for("web from the cache", |s| {
            s.iter()
                .any(|f| f["alias"] == "web" && f["state"] == "ready")
        })
        .await;
    assert!(status[0]["git_sync_error"].is_string(), "{status:#?}");
    assert!(status[0]["git_commit"].is_string(), "{status:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_with_basic_auth_takes_the_token_from_the_environment_and_never_shows_it() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let team = TeamRepo::new(&team_file(&cluster, &[WEB]));
    let token = "kt-0123456789-good-token";
    let server = HttpGit::start(&team.base(), token);

    // No credentials anywhere: said so, with what to do.
    let mut project = Project::new();
    let out = project
        .run(&["up", "--git", &server.url(), "--detach"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("asks for credentials and none were found"),
        "{err}"
    );

    // A wrong token: a clear authentication error that does not contain it.
    let wrong = "kt-9876543210-wrong-token";
    project.env = vec![("KFTRAY_GIT_TOKEN".into(), wrong.into())];
    let out = project
        .run(&["up", "--git", &server.url(), "--detach"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("refused the credentials"), "{all}");
    assert!(all.contains("KFTRAY_GIT_TOKEN"), "{all}");
    assert!(!all.contains(wrong), "the token was printed: {all}");

    // The right one.
    project.env = vec![
        ("KFTRAY_GIT_TOKEN".into(), token.into()),
        tracing_everything(),
    ];
    project.spawn_up(&["--git", &server.url(), "--interval", "1s"]);
    project.ready("web").await;
    team.push(&team_file(&cluster, &[WEB, DB]));
    project.ready("db").await;
    leaks_nowhere(&project, token).await;
    let leaks = files_containing(&project.home(), wrong);
    assert!(leaks.is_empty(), "the wrong token reached {leaks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_url_is_used_but_never_printed_or_stored() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let team = TeamRepo::new(&team_file(&cluster, &[WEB]));
    let token = "kt-url-embedded-token-42";
    let server = HttpGit::start(&team.base(), token);
    let mut project = Project::new();
    project.env = vec![tracing_everything()];
    let url = format!(
        "http://{HTTP_USER}:{token}@127.0.0.1:{}/team.git",
        server.port
    );
    let out = project.run(&["up", "--git", &url, "--detach"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: a token in the URL"));
    project.ready("web").await;
    let status = project.run(&["status", "-o", "json"]).await;
    assert!(!text(&status).contains(token), "{}", text(&status));
    assert!(!text(&out).contains(token), "{}", text(&out));
    let status: Vec<Value> = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status[0]["git_repo"], server.url().as_str());
    // The detached process got the URL through its environment, not its command line.
    let pid = status[0]["pid"].as_i64().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(token));
    leaks_nowhere(&project, token).await;
    project.env.clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_credential_helpers_are_asked_when_kftray_has_no_token() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let team = TeamRepo::new(&team_file(&cluster, &[WEB]));
    let token = "kt-from-the-git-credential-store";
    let server = HttpGit::start(&team.base(), token);
    let mut project = Project::new();
    // The user's git setup: the `store` helper with a saved credential.
    let home = project.user_home();
    std::fs::write(home.join(".gitconfig"), "[credential]\n\thelper = store\n").unwrap();
    // (libgit2 asks helpers only about host names, not IP addresses: localhost it is.)
    std::fs::write(
        home.join(".git-credentials"),
        format!("http://{HTTP_USER}:{token}@localhost:{}\n", server.port),
    )
    .unwrap();
    let status = project
        .run(&["auth", "status", "--host", "localhost"])
        .await;
    assert!(
        text(&status).contains("git credential helpers: store"),
        "{}",
        text(&status)
    );
    let url = format!("http://localhost:{}/team.git", server.port);
    project.env = vec![tracing_everything()];
    project.spawn_up(&["--git", &url]);
    project.ready("web").await;
    leaks_nowhere(&project, token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_login_stores_the_token_in_the_secret_service_and_up_uses_it() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let team = TeamRepo::new(&team_file(&cluster, &[WEB]));
    let token = "kt-stored-in-the-keyring-7";
    let server = HttpGit::start(&team.base(), token);
    let keyring = SecretService::start();
    let mut project = Project::new();
    project.env = keyring.env();

    // The service takes a moment to claim its name on the bus.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let out = project
            .run(&["auth", "status", "--host", "127.0.0.1"])
            .await;
        if text(&out).contains("OS keyring: no token stored") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", text(&out));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut login = project.command(&["auth", "login", "--host", "127.0.0.1"]);
    login
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = login.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{token}\n").as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(token));

    let status = project
        .run(&["auth", "status", "--host", "127.0.0.1"])
        .await;
    assert!(
        text(&status).contains("OS keyring: a token is stored"),
        "{}",
        text(&status)
    );
    assert!(!text(&status).contains(token));

    project.env.push(tracing_everything());
    project.spawn_up(&["--git", &server.url(), "--interval", "1s"]);
    project.ready("web").await;
    leaks_nowhere(&project, token).await;
    // The keyring stores it encrypted, not as text.
    assert!(files_containing(&keyring.data_dir(), token).is_empty());

    let out = project
        .run(&["auth", "logout", "--host", "127.0.0.1"])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let status = project
        .run(&["auth", "status", "--host", "127.0.0.1"])
        .await;
    assert!(
        text(&status).contains("OS keyring: no token stored"),
        "{}",
        text(&status)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_uses_the_users_key_file_and_checks_the_host_against_known_hosts() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let team = TeamRepo::new(&team_file(&cluster, &[WEB]));
    let mut project = Project::new();
    let ssh = SshGit::start(&team.bare(), &project.user_home(), true);
    project.spawn_up(&["--git", &ssh.url(), "--interval", "1s"]);
    let web = project.ready("web").await;
    assert_eq!(http_get(web, "/").await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssh_host_missing_from_known_hosts_is_refused_clearly() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let team = TeamRepo::new(&team_file(&cluster, &[WEB]));
    let project = Project::new();
    let ssh = SshGit::start(&team.bare(), &project.user_home(), false);
    let out = project.run(&["up", "--detach", "--git", &ssh.url()]).await;
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("127.0.0.1 is not in ~/.ssh/known_hosts"),
        "{}",
        text(&out)
    );
    assert!(err.contains("connect once with `ssh`"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_from_a_private_ca_needs_that_ca_and_says_so_without_it() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let team = TeamRepo::new(&team_file(&cluster, &[WEB]));
    let token = "kt-behind-tls-42";
    let server = HttpGit::start_tls(&team.base(), token);
    let mut project = Project::new();
    project.env = vec![("KFTRAY_GIT_TOKEN".into(), token.into())];

    // The system's CAs do not know this one: refused, never fetched insecurely.
    let out = project
        .run(&["up", "--git", &server.url(), "--detach"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate"), "{}", text(&out));
    assert!(err.contains("SSL_CERT_FILE"), "{}", text(&out));

    project.env.push((
        "SSL_CERT_FILE".into(),
        server.ca_file().display().to_string(),
    ));
    project.spawn_up(&["--git", &server.url(), "--interval", "1s"]);
    let web = project.ready("web").await;
    assert_eq!(http_get(web, "/").await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_takes_the_key_from_the_agent_when_home_has_none() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let team = TeamRepo::new(&team_file(&cluster, &[WEB]));
    let mut project = Project::new();
    let ssh = SshGit::start(&team.bare(), &project.user_home(), true);
    // The key leaves HOME and lives only in an agent.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id_ed25519");
    std::fs::rename(project.user_home().join(".ssh/id_ed25519"), &key).unwrap();
    std::fs::remove_file(project.user_home().join(".ssh/id_ed25519.pub")).unwrap();
    let socket = keys.path().join("agent.sock");
    struct Agent(std::process::Child);
    impl Drop for Agent {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Agent(
        std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ssh-agent (scripts/test.sh installs openssh-client)"),
    );
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !socket.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "ssh-agent never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let added = std::process::Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");

    project.env = vec![("SSH_AUTH_SOCK".into(), socket.display().to_string())];
    project.spawn_up(&["--git", &ssh.url(), "--interval", "1s"]);
    let web = project.ready("web").await;
    assert_eq!(http_get(web, "/").await.unwrap().0, 200);
}
