//! `ports = "all"` on the real control plane: every port a target declares is forwarded on
//! the same local port, UDP ones through the relay, a port another forward listens on is left
//! out and said, a port the Service gains is forwarded at the next reload, and a target that
//! does not exist yet is listed once it does.

mod support;

use kubesim::testing::{TIMEOUT, http_get};
use serde_json::Value;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use support::cluster::Namespace;
use support::{address, text, udp_exchange};
use tokio::net::UdpSocket;

/// `n` local ports free now (the Service's ports are these, so that `all` can use them here).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A Deployment `api` whose pods serve HTTP on 8080 and 8081 and echo UDP on 7007, and a
/// Service `api` with a port for each of `tcp` (to 8080, 8081, … in turn) and one UDP port.
fn api(tcp: &[u16], udp: u16) -> String {
    let ports: String = tcp
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "    - {{name: http{i}, port: {p}, targetPort: {}}}\n",
                8080 + i
            )
        })
        .collect();
    format!(
        "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 1
  selector:
    matchLabels: {{app: api}}
  template:
    metadata:
      labels: {{app: api}}
    spec:
      containers:
        - name: http
          image: kubesim/http
          ports:
            - {{containerPort: 8080}}
            - {{containerPort: 8081}}
            - {{containerPort: 8082}}
        - name: echo
          image: kubesim/udp-echo
          ports:
            - {{containerPort: 7007, protocol: UDP}}
---
apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  selector: {{app: api}}
  ports:
{ports}    - {{name: echo, port: {udp}, targetPort: 7007, protocol: UDP}}
"
    )
}

fn names(status: &[Value]) -> Vec<String> {
    support::aliases(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_declared_port_is_forwarded_and_one_taken_locally_is_left_out_and_said() {
    let ns = Namespace::new("kftray-all-ports").await;
    let ports = free_ports(3);
    let (a, b, udp) = (ports[0], ports[1], ports[2]);
    ns.apply(&api(&[a, b], udp)).await;
    ns.wait_ready("app=api", 1).await;
    let forwards = format!(
        "[forwards.api]\nservice = \"api\"\nports = \"all\"\n\n\
         [forwards.echo]\nservice = \"api\"\nprotocol = \"udp\"\nports = \"all\"\n\n\
         [forwards.mine]\ndeployment = \"api\"\nremote_port = 8081\nlocal_port = {b}\n"
    );
    let project = ns.project(&forwards);

    // Offline, the file is valid and the expansion is left to `up`.
    let out = project.run(&["validate"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("api: every tcp port of svc/api"),
        "{}",
        text(&out)
    );
    // `config` asks the cluster.
    let out = project.run(&["config", "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed: Vec<&str> = config["forwards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let (api_a, echo_udp) = (format!("api:{a}"), format!("echo:{udp}"));
    assert_eq!(
        listed,
        [api_a.as_str(), echo_udp.as_str(), "mine"],
        "{}",
        text(&out)
    );
    let skipped = format!(
        "note: api:{b} is not forwarded: local port {b} is `mine`'s (give `mine` another \
         local_port to free it)"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&skipped),
        "{}",
        text(&out)
    );

    let out = project.run(&["up", "--wait", "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let warned = format!("warning: {}", &skipped["note: ".len()..]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&warned),
        "{}",
        text(&out)
    );
    let status: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        names(&status),
        [api_a.clone(), echo_udp.clone(), "mine".into()]
    );
    let addr = address(&status, &api_a);
    assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], a)));
    let (code, _) = http_get(addr, "/").await.unwrap();
    assert_eq!(code, 200);
    // The UDP port, through the relay, on its own number.
    let echo = address(&status, &echo_udp);
    assert_eq!(echo.port(), udp);
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(udp_exchange(&socket, echo, b"ping").await, b"ping");

    // The Service gains a port; the next save of the file forwards it.
    let c = free_ports(1)[0];
    ns.apply(&api(&[a, b, c], udp)).await;
    ns.configure(&project, &format!("{forwards}tags = [\"now\"]\n"));
    let api_c = format!("api:{c}");
    let status = project
        .wait_for(&format!("{api_c} ready"), |s| {
            s.iter()
                .any(|f| f["alias"] == api_c && f["state"] == "ready")
        })
        .await;
    let (code, _) = http_get(address(&status, &api_c), "/").await.unwrap();
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_is_not_there_yet_is_failed_with_why_then_forwarded_once_it_is() {
    let ns = Namespace::new("kftray-all-later").await;
    let ports = free_ports(2);
    let project = ns.project("[forwards.api]\nservice = \"api\"\nports = \"all\"\n");
    let out = project.run(&["up", "--wait", "--timeout", "2s"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: api is not ready after 2s")
            && stderr.contains("cannot read svc/api")
            && stderr.contains("not found"),
        "{}",
        text(&out)
    );

    ns.apply(&api(&[ports[0]], ports[1])).await;
    let name = format!("api:{}", ports[0]);
    // Tried again with backoff (at most 30 s apart).
    let deadline = tokio::time::Instant::now() + TIMEOUT + Duration::from_secs(30);
    loop {
        let status = project.status().await;
        if status
            .iter()
            .any(|f| f["alias"] == name.as_str() && f["state"] == "ready")
        {
            assert_eq!(
                names(&status),
                std::slice::from_ref(&name),
                "the failed `api` row is left: {status:#?}"
            );
            let (code, _) = http_get(address(&status, &name), "/").await.unwrap();
            assert_eq!(code, 200);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never forwarded: {status:#?}\n{}",
            project.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
