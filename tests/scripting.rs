//! kftray as scripts use it, on the real control plane: `up --wait` returns when the forwards
//! are ready (not merely listening), says which are not and why when they do not become so,
//! and prints JSON a script can read.

mod support;

use kubesim::testing::http_get;
use serde_json::Value;
use std::net::SocketAddr;
use support::Project;
use support::cluster::Namespace;

/// A project of one forward to web in `ns`.
fn web_only(ns: &Namespace) -> Project {
    ns.project(&support::forward("web", "web", "\"http\""))
}

/// web, and a forward to a service that does not exist: never ready.
fn web_and_nothing(ns: &Namespace) -> Project {
    ns.project(&format!(
        "{}{}",
        support::forward("web", "web", "\"http\""),
        support::forward("nothing", "no-such-service", "80")
    ))
}

/// What `exec` started has stopped.
async fn nothing_left(project: &Project) {
    let status = project.status().await;
    assert!(
        status.is_empty(),
        "the run it started outlived it: {status:#?}"
    );
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_wait_returns_once_every_forward_is_ready_and_each_answers_at_once() {
    let ns = Namespace::with_web("kftray-wait").await;
    let project = ns.project(&format!(
            "{}[forwards.web-relay]\nservice = \"web\"\nvia = \"relay\"\nremote_port = 80\nlocal_port = \"any\"\n",
            support::forward("web", "web", "\"http\"")
        ),
    );
    let out = project.run(&["up", "--wait", "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    // stdout is the JSON alone; where the run is goes to stderr.
    let forwards: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)));
    assert_eq!(forwards.len(), 2, "{forwards:#?}");
    for forward in &forwards {
        assert_eq!(forward["state"], "ready", "{forward}");
        assert!(forward["pod"].is_string(), "{forward}");
        // Ready means ready: the first request, with no retry, is answered.
        let addr: SocketAddr = forward["local_address"].as_str().unwrap().parse().unwrap();
        let (code, _) = http_get(addr, "/")
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", forward["alias"]));
        assert_eq!(code, 200, "{forward}");
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("running in the background"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_wait_names_each_forward_that_is_not_ready_and_why_after_its_timeout() {
    let ns = Namespace::with_web("kftray-wait-no").await;
    let project = web_and_nothing(&ns);
    let out = project.run(&["up", "--wait", "--timeout", "3s"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(said.len(), 1, "{}", text(&out));
    assert!(
        said[0].starts_with("error: nothing is not ready after 3s: waiting: ")
            && said[0].contains("no-such-service"),
        "{}",
        text(&out)
    );
    // The table still shows both, and the run keeps going: web serves.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("web") && stdout.contains("nothing"),
        "{stdout}"
    );
    let status = project.status().await;
    let web = status.iter().find(|f| f["alias"] == "web").unwrap();
    assert_eq!(web["state"], "ready", "{status:#?}");
    let addr: SocketAddr = web["local_address"].as_str().unwrap().parse().unwrap();
    assert_eq!(http_get(addr, "/").await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_json_is_refused_in_the_foreground() {
    let project = Project::new();
    std::fs::write(
        project.path("kftray.toml"),
        support::forward("web", "web", "\"http\""),
    )
    .unwrap();
    let out = project.run(&["up", "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--output is for --detach or --wait"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_names_every_forward_for_a_shell_a_dotenv_file_and_json() {
    let ns = Namespace::with_web("kftray-env").await;
    let project = ns.project(&format!(
        "{}[forwards.api-v2]\nservice = \"web\"\nports = [\"any:http\"]\n",
        support::forward("web", "web", "\"http\"")
    ));
    let out = project.run(&["up", "--wait"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let status = project.status().await;
    let address = |alias: &str| -> SocketAddr {
        let row = status.iter().find(|f| f["alias"] == alias);
        let row = row.unwrap_or_else(|| panic!("no {alias} in {status:#?}"));
        row["local_address"].as_str().unwrap().parse().unwrap()
    };
    let web = address("web");
    let api = address("api-v2:http");

    // What a shell sees after eval, and that the address it names answers.
    let shell = project.command(&["env"]);
    let program = shell.get_program().to_owned();
    let script = format!(
        "eval \"$({} env)\" && echo \"$KFTRAY_WEB_ADDR $KFTRAY_WEB_HOST $KFTRAY_WEB_PORT $KFTRAY_API_V2_HTTP_PORT\"",
        program.to_string_lossy()
    );
    let echoed = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(project.root())
        .envs(
            shell
                .get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .output()
        .unwrap();
    assert!(echoed.status.success(), "{}", text(&echoed));
    assert_eq!(
        String::from_utf8_lossy(&echoed.stdout).trim(),
        format!("{web} {} {} {}", web.ip(), web.port(), api.port())
    );
    assert_eq!(http_get(web, "/").await.unwrap().0, 200);

    let dotenv = project.run(&["env", "--format", "dotenv"]).await;
    assert!(dotenv.status.success(), "{}", text(&dotenv));
    let lines: Vec<String> = String::from_utf8_lossy(&dotenv.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        lines.contains(&format!("KFTRAY_WEB_ADDR={web}")),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 6, "{lines:?}");

    let json = project.run(&["env", "--format", "json"]).await;
    let vars: serde_json::Map<String, Value> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(vars["KFTRAY_API_V2_HTTP_ADDR"], api.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_without_a_run_says_how_to_start_one() {
    let project = Project::new();
    std::fs::write(
        project.path("kftray.toml"),
        support::forward("web", "web", "\"http\""),
    )
    .unwrap();
    let out = project.run(&["env"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("kftray up --wait"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_the_command_with_its_forwards_ready_and_stops_what_it_started() {
    let ns = Namespace::with_web("kftray-exec").await;
    let project = web_only(&ns);
    // The command reaches the forward by the variables alone (bash's /dev/tcp), and its exit
    // code is kftray's.
    let script = "exec 3<>/dev/tcp/$KFTRAY_WEB_HOST/$KFTRAY_WEB_PORT && \
                  printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 && exit 7";
    let out = project.run(&["exec", "--", "bash", "-c", script]).await;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("HTTP/1.1 200"),
        "{}",
        text(&out)
    );
    // Only the command's output is on stdout.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    nothing_left(&project).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_joins_a_run_already_up_and_leaves_it_running() {
    let ns = Namespace::with_web("kftray-exec-join").await;
    let project = ns.project(&format!(
        "{}[forwards.admin]\nservice = \"web\"\nremote_port = \"http\"\nlocal_port = \"any\"\ntags = [\"ops\"]\n",
        support::forward("web", "web", "\"http\"")
    ));
    let up = project.run(&["up", "--wait"]).await;
    assert!(up.status.success(), "{}", text(&up));
    let before = project.status().await;
    let out = project
        .run(&[
            "exec",
            "--",
            "sh",
            "-c",
            "test -n \"$KFTRAY_WEB_ADDR\" && test -n \"$KFTRAY_ADMIN_ADDR\"",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    // Of the joined run, only what is asked for: by name, or by tag.
    for picked in [["web"], ["--tag=ops"]] {
        let only = if picked[0] == "web" { "WEB" } else { "ADMIN" };
        let other = if only == "WEB" { "ADMIN" } else { "WEB" };
        let script = format!("test -n \"$KFTRAY_{only}_ADDR\" && test -z \"$KFTRAY_{other}_ADDR\"");
        let mut argv = vec!["exec"];
        argv.extend(picked);
        argv.extend(["--", "sh", "-c", &script]);
        let out = project.run(&argv).await;
        assert!(out.status.success(), "{picked:?}: {}", text(&out));
    }
    // `env` picks the same way.
    let env = project.run(&["env", "--tag=ops", "--format", "json"]).await;
    assert!(env.status.success(), "{}", text(&env));
    let vars: Value = serde_json::from_slice(&env.stdout).unwrap();
    let names: Vec<&String> = vars.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "KFTRAY_ADMIN_ADDR",
            "KFTRAY_ADMIN_HOST",
            "KFTRAY_ADMIN_PORT"
        ]
    );
    let none = project.run(&["env", "nothing"]).await;
    assert_eq!(none.status.code(), Some(1), "{}", text(&none));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("is named nothing"),
        "{}",
        text(&none)
    );
    let absent = project
        .run(&["exec", "--timeout", "1s", "nothing", "--", "true"])
        .await;
    assert_eq!(absent.status.code(), Some(1), "{}", text(&absent));
    assert!(
        String::from_utf8_lossy(&absent.stderr).contains("has no forward named nothing"),
        "{}",
        text(&absent)
    );
    let after = project.status().await;
    assert_eq!(after.len(), 2, "{after:#?}");
    assert_eq!(after[0]["pid"], before[0]["pid"]);
    assert!(after.iter().all(|f| f["state"] == "ready"), "{after:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_says_what_a_shell_says_and_runs_nothing_before_its_forwards_are_ready() {
    let ns = Namespace::with_web("kftray-exec-bad").await;
    let project = web_and_nothing(&ns);
    let no_command = project.run(&["exec"]).await;
    assert_eq!(no_command.status.code(), Some(2), "{}", text(&no_command));

    let missing = project
        .run(&["exec", "web", "--", "no-such-program-kftray"])
        .await;
    assert_eq!(missing.status.code(), Some(127), "{}", text(&missing));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("no-such-program-kftray: command not found"),
        "{}",
        text(&missing)
    );
    assert!(project.status().await.is_empty());

    let marker = project.path("ran");
    let never = project
        .run(&[
            "exec",
            "--timeout",
            "3s",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ])
        .await;
    assert_eq!(never.status.code(), Some(1), "{}", text(&never));
    let stderr = String::from_utf8_lossy(&never.stderr);
    assert!(
        stderr.contains("error: nothing is not ready after 3s: waiting: service no-such-service"),
        "{}",
        text(&never)
    );
    assert!(!marker.exists(), "the command ran without its forwards");
    nothing_left(&project).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_to_exec_reaches_the_command_and_the_run_it_started_stops() {
    let ns = Namespace::with_web("kftray-exec-term").await;
    let project = web_only(&ns);
    let marker = project.path("started");
    let script = format!("touch {} && exec sleep 60", marker.display());
    let child = project
        .command(&["exec", "--", "sh", "-c", &script])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + kubesim::testing::TIMEOUT;
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // SAFETY: kill(2) on the child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGTERM),
        "{}",
        text(&out)
    );
    nothing_left(&project).await;
}

/// The aliases `status` shows for the project.
async fn running(project: &Project) -> Vec<String> {
    let mut aliases = support::aliases(&project.status().await);
    aliases.sort();
    aliases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_and_up_by_name_or_tag_change_a_run_that_is_up_without_restarting_it() {
    let ns = Namespace::with_web("kftray-hold").await;
    let project = ns.project(&format!(
        "{}{}[forwards.admin]\nservice = \"web\"\nremote_port = 80\nlocal_port = \"any\"\n\
         tags = [\"ops\"]\n",
        support::forward("web", "web", "\"http\""),
        support::forward("api", "web", "\"http\""),
    ));
    // A run of two of the three forwards.
    let out = project.run(&["up", "--wait", "web", "api"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let pid = project.status().await[0]["pid"].clone();
    let web = support::address(&project.status().await, "web");
    assert_eq!(running(&project).await, ["api", "web"]);

    // Down by name: api stops, web keeps serving, in the same process.
    let out = project.run(&["down", "api"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("stopped api"), "{}", text(&out));
    assert_eq!(running(&project).await, ["web"]);
    assert_eq!(project.status().await[0]["pid"], pid);
    let table = project.run(&["status"]).await;
    assert!(
        text(&table).contains("held down: api (`kftray up api` brings them back)"),
        "{}",
        text(&table)
    );
    assert_eq!(http_get(web, "/").await.unwrap().0, 200);

    // Up by tag adds a forward the run did not select; up by name brings api back.
    let out = project.run(&["up", "--wait", "--tag", "ops"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(running(&project).await, ["admin", "web"]);
    let out = project.run(&["up", "--wait", "-o", "json", "api"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let shown: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        shown
            .iter()
            .any(|f| f["alias"] == "api" && f["state"] == "ready"),
        "{shown:#?}"
    );
    assert_eq!(running(&project).await, ["admin", "api", "web"]);
    assert!(project.status().await.iter().all(|f| f["pid"] == pid));
    assert_eq!(
        support::address(&project.status().await, "web"),
        web,
        "web never restarted"
    );

    // A name the run does not have is an error, and changes nothing.
    let out = project.run(&["down", "nope"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("nope"), "{}", text(&out));
    // `up` with nothing held and nothing new says the project is up, as before.
    let out = project.run(&["up", "--wait"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already"), "{}", text(&out));

    // Down by tag, then down of what is left ends the run.
    let out = project.run(&["down", "--tag", "ops"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(running(&project).await, ["api", "web"]);
    let out = project.run(&["down", "api", "web"]).await;
    assert!(out.status.success(), "{}", text(&out));
    nothing_left(&project).await;
}
