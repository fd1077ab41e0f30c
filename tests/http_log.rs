//! HTTP logs on the real control plane: real clients (curl, and raw requests from Rust)
//! through a forward to a pod that runs Python's own HTTP server, every shape of traffic the
//! log must read, the `.http` file read back by `kftray logs`, and a logged request sent
//! again from the file as REST Client would send it.

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use support::cluster::{Namespace, PYTHON_IMAGE};
use support::{Project, TIMEOUT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn server(ns: &Namespace) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/http_server.py");
    format!(
        "
apiVersion: v1
kind: Pod
metadata:
  name: httpbin
  namespace: {ns}
  labels: {{app: httpbin}}
spec:
  containers:
    - name: httpbin
      image: {PYTHON_IMAGE}
      args: [\"{script}\", \"$(POD_IP)\", \"8080\", \"9000\"]
      ports:
        - {{name: http, containerPort: 8080}}
        - {{name: echo, containerPort: 9000}}
---
apiVersion: v1
kind: Service
metadata:
  name: httpbin
  namespace: {ns}
spec:
  selector: {{app: httpbin}}
  ports:
    - {{name: http, port: 80, targetPort: http}}
    - {{name: echo, port: 9000, targetPort: echo}}
",
        ns = ns.name
    )
}

/// One request on a connection of its own; the whole answer, read to the close.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut answer))
        .await
        .expect("no answer")
        .unwrap();
    answer
}

fn curl(args: &[&str]) -> std::process::Output {
    std::process::Command::new("curl")
        .args(["-sS", "--max-time", "120"])
        .args(args)
        .output()
        .expect("curl is installed by scripts/test.sh")
}

/// The entries `kftray logs http ALIAS --json` reads, once `done` holds of them.
async fn logged(project: &Project, alias: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let out = project
            .run(&["logs", "http", alias, "--json", "-n", "1000"])
            .await;
        let entries: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if out.status.success() && done(&entries) {
            return entries;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never logged: {entries:#?}\n{}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            project.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn entry<'a>(entries: &'a [Value], method: &str, path: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["method"] == method && e["url"].as_str().is_some_and(|u| u.ends_with(path)))
        .unwrap_or_else(|| panic!("no {method} {path} in {entries:#?}"))
}

/// The entry of the `.http` file whose request line is `request_line`.
fn http_entry<'a>(file: &'a str, request_line: &str) -> &'a str {
    file.split("\n### ")
        .find(|e| e.lines().any(|l| l == request_line))
        .unwrap_or_else(|| panic!("no `{request_line}` in:\n{file}"))
}

/// A request as VS Code's REST Client reads it from an entry: comment lines dropped, the
/// request line, headers to the blank line, the body after it (trailing blank lines
/// trimmed); then sent as the client would send it, with a Content-Length of its own.
fn resendable(entry: &str) -> (String, Vec<(String, String)>, String) {
    let lines: Vec<&str> = entry
        .lines()
        .skip(1) // the `###` title
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim_start().starts_with("//"))
        .collect();
    let (request_line, rest) = lines.split_first().expect("a request line");
    let blank = rest.iter().position(|l| l.is_empty()).unwrap_or(rest.len());
    let headers = rest[..blank]
        .iter()
        .filter_map(|h| h.split_once(": "))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let body = rest.get(blank + 1..).unwrap_or_default().join("\n");
    (
        request_line.to_string(),
        headers,
        body.trim_end_matches('\n').to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_traffic_is_logged_and_a_logged_request_can_be_sent_again() {
    let ns = Namespace::new("kftray-httplog").await;
    ns.apply(&server(&ns)).await;
    ns.wait_ready("app=httpbin", 1).await;
    let mut project = ns.project(
        "[forwards.api]\nservice = \"httpbin\"\nremote_port = \"http\"\nlocal_port = \"any\"\n\
         http_log = { body_limit = \"4KiB\", redact = [\"X-Api-Key\"] }\n\n\
         [forwards.raw]\nservice = \"httpbin\"\nremote_port = 9000\nlocal_port = \"any\"\n\
         http_log = true\n",
    );
    project.spawn_up(&[]);
    let api = project.ready("api").await;
    let raw = project.ready("raw").await;
    // The pod is Ready once its process runs; Python listens a moment later.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !curl(&[&format!("http://{api}/hello")]).status.success() {
        assert!(tokio::time::Instant::now() < deadline, "{}", project.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // curl: a plain GET with credentials, a gzip response, a chunked one, a cookie.
    let out = curl(&[
        "-H",
        "Authorization: Bearer top-secret-token",
        "-H",
        "X-Api-Key: key-123",
        &format!("http://{api}/hello"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from the pod\n");
    let out = curl(&["--compressed", &format!("http://{api}/gzip")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"compressed\": true"));
    let out = curl(&[&format!("http://{api}/chunked")]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "first part, second part, last part\n"
    );
    let out = curl(&[
        "-H",
        "Cookie: session=mine",
        &format!("http://{api}/cookie"),
    ]);
    assert!(out.status.success());
    // A chunked upload (curl sends chunked when told so), answered with the same body.
    let out = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        "uploaded in chunks",
        &format!("http://{api}/echo"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "uploaded in chunks");
    // 1 GiB down, its body capped at 4 KiB in the log.
    let out = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{size_download}",
        &format!("http://{api}/bytes/1073741824"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1073741824",
        "{out:?}"
    );

    // An upload that asks first (Expect: 100-continue), which Python answers with a 100.
    let form = "field=".to_string() + &"v".repeat(4000);
    let out = curl(&[
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        &form,
        &format!("http://{api}/echo"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), form);

    // hyper, a Rust HTTP client: two requests on one kept-alive connection.
    let tcp = TcpStream::connect(api).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    let driver = tokio::spawn(connection);
    for path in ["/hello", "/chunked"] {
        let request = http::Request::get(path)
            .header("host", api.to_string())
            .header("user-agent", "hyper")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        // After a response, hyper takes a moment to see the connection free again.
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
    }
    drop(sender);
    let _ = driver.await;

    // Raw from Rust: two pipelined requests in one write, the answers in order.
    let answer = exchange(
        api,
        format!(
            "POST /echo HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\n\
             Content-Length: 15\r\n\r\n{{\"pipelined\":1}}\
             GET /hello HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    let first = answer.find("{\"pipelined\":1}").expect("the first answer");
    let second = answer
        .find("hello from the pod")
        .expect("the second answer");
    assert!(first < second, "{answer}");

    // A WebSocket upgrade: after the 101, bytes pass both ways untouched.
    let mut ws = TcpStream::connect(api).await.unwrap();
    ws.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {api}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 4096];
    let n = ws.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 101"));
    let frame = b"\x81\x05hello GET / HTTP/1.1\r\n\r\n";
    ws.write_all(frame).await.unwrap();
    let mut echoed = vec![0u8; frame.len()];
    ws.read_exact(&mut echoed).await.unwrap();
    assert_eq!(echoed, frame);
    drop(ws);

    // A body the server cuts short by closing.
    let cut = exchange(
        api,
        format!("GET /cut HTTP/1.1\r\nHost: {api}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(String::from_utf8_lossy(&cut).ends_with("only the start"));

    // Not HTTP at all: a TLS ClientHello's first bytes, echoed back byte for byte.
    let hello = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03binary\x00\xff";
    let mut s = TcpStream::connect(raw).await.unwrap();
    s.write_all(hello).await.unwrap();
    let mut back = vec![0u8; hello.len()];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, hello);
    drop(s);

    let entries = logged(&project, "api", |e| {
        e.iter()
            .any(|e| e["url"].as_str().is_some_and(|u| u.ends_with("/cut")))
            && e.iter()
                .any(|e| e["url"].as_str().is_some_and(|u| u.ends_with("/ws")))
    })
    .await;
    assert_eq!(entry(&entries, "GET", "/hello")["status"], 200);
    let big = entry(&entries, "GET", "/bytes/1073741824");
    assert_eq!(big["response_bytes"], 1_073_741_824_u64);
    assert_eq!(entry(&entries, "POST", "/echo")["request_bytes"], 18);
    assert_eq!(entry(&entries, "GET", "/ws")["status"], 101);
    let cut = entry(&entries, "GET", "/cut");
    assert!(
        cut["note"]
            .as_str()
            .is_some_and(|n| n.contains("closed in the middle of the response body")),
        "{cut}"
    );
    // Pipelined: both logged, each with its own answer.
    assert!(
        entries
            .iter()
            .filter(|e| e["url"].as_str().is_some_and(|u| u.ends_with("/hello")))
            .count()
            >= 3
    );

    // $KFTRAY_HOME/http_logs/<project>/api.http: the one project of this home.
    let mut dirs = std::fs::read_dir(project.home().join("http_logs")).unwrap();
    let dir = dirs.next().unwrap().unwrap().path();
    let file = std::fs::read_to_string(dir.join("api.http")).unwrap();
    assert!(
        !file.contains("top-secret-token"),
        "Authorization is redacted"
    );
    assert!(
        !file.contains("key-123"),
        "so is a header the file asks for"
    );
    assert!(
        !file.contains("s3cr3t") && !file.contains("session=mine"),
        "and cookies"
    );
    assert!(file.contains("Authorization: [redacted]"));
    assert!(
        file.contains("# {\"compressed\": true, \"n\": 42}"),
        "gzip decoded"
    );
    assert!(
        file.contains("# first part, second part, last part"),
        "chunks joined"
    );
    assert!(file.contains("# (body cut at 4.0 KiB of 1.0 GiB)"));
    assert!(file.contains("switched to websocket"));
    assert!(
        !file.contains("hello GET /"),
        "WebSocket frames are not read as HTTP"
    );
    assert!(
        file.contains("# <- HTTP/1.1 100 (interim)"),
        "the 100 Continue is noted"
    );
    assert_eq!(
        // hyper sends header names in lowercase; the log keeps them as sent.
        file.matches("\nuser-agent: hyper\n").count(),
        2,
        "both of hyper's requests"
    );
    let chunked = http_entry(&file, &format!("POST http://{api}/echo HTTP/1.1"));
    assert!(chunked.contains("\nuploaded in chunks\n"), "{chunked}");

    // Sent again from the file, the pipelined POST gets the same answer.
    let logged_post = file
        .split("\n### ")
        .find(|e| e.contains("{\"pipelined\":1}") && e.starts_with("POST"))
        .expect("the pipelined POST");
    let (request_line, headers, body) = resendable(logged_post);
    assert_eq!(request_line, format!("POST http://{api}/echo HTTP/1.1"));
    // To the host and path of the URL, as the client would send it.
    let mut parts = request_line.split(' ');
    let (method, url) = (parts.next().unwrap(), parts.next().unwrap());
    let (host, path) = url
        .strip_prefix("http://")
        .unwrap()
        .split_once('/')
        .unwrap();
    let mut again = format!("{method} /{path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in &headers {
        if !name.eq_ignore_ascii_case("content-length") {
            again.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    again.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let answer = exchange(host.parse().unwrap(), again.as_bytes()).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("{\"pipelined\":1}"), "{answer}");

    // The other forward: one note, and the bytes were not touched.
    let notes = logged(&project, "raw", |e| !e.is_empty()).await;
    assert!(
        notes[0]["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("TLS: passed through untouched")),
        "{notes:#?}"
    );

    // The human view: one line per exchange.
    let out = project.run(&["logs", "http", "api", "-n", "3"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("GET     /cut"), "{text}");
    // Followed: only what comes next (-n 0), as it comes.
    let mut follow = project
        .command(&["logs", "http", "api", "-F", "--json", "-n", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line_tx.send(line).is_err() {
                return;
            }
        }
    });
    // New requests until it prints one (it may start after the first): each is new to it.
    let deadline = std::time::Instant::now() + TIMEOUT;
    let line = loop {
        assert!(
            curl(&[&format!("http://{api}/hello?followed=1")])
                .status
                .success()
        );
        if let Ok(line) = line_rx.recv_timeout(Duration::from_secs(1)) {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "`logs http -F` printed nothing for new requests"
        );
    };
    let followed: Value = serde_json::from_str(&line).unwrap();
    assert!(
        followed["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/hello?followed=1")),
        "the first line is a new request, not an old one: {line}"
    );
    follow.kill().unwrap();
    let _ = follow.wait();

    // And the run's events.
    let out = project.run(&["logs"]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("started"),
        "{out:?}"
    );
    let out = project.run(&["logs", "api", "--json"]).await;
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test]
async fn asking_for_a_log_that_does_not_exist_says_how_to_get_one() {
    let project = Project::new();
    std::fs::write(
        project.path("kftray.toml"),
        support::forward("web", "web", "80"),
    )
    .unwrap();
    let out = project.run(&["logs", "http", "web"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("http_log = true"), "{stderr}");
    let out = project.run(&["logs", "web"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has not run yet"));
}
