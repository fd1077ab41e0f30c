//! Reverse forwards on the real control plane: a server on this machine reached from the
//! cluster through a Service of kftray's that selects the relay pod.

mod support;

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use std::net::SocketAddr;
use std::time::Duration;
use support::TIMEOUT;
use support::cluster::{Namespace, PYTHON_IMAGE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A local echo server that prefixes what it echoes, and its address.
async fn local_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The Service once it exists, with its ClusterIP.
async fn service(ns: &Namespace, name: &str) -> Service {
    let api: Api<Service> = Api::namespaced(ns.client.clone(), &ns.name);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Ok(Some(s)) = api.get_opt(name).await
            && s.spec
                .as_ref()
                .and_then(|s| s.cluster_ip.as_ref())
                .is_some()
        {
            return s;
        }
        assert!(tokio::time::Instant::now() < deadline, "no Service {name}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `message` to `to` and reads it back, retrying while the Service's endpoints settle
/// (for `patience` at most).
async fn try_echo(to: SocketAddr, message: &[u8], patience: Duration) -> Result<Vec<u8>, String> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let attempt = async {
            let mut s = TcpStream::connect(to).await?;
            s.write_all(message).await?;
            let mut back = vec![0u8; message.len()];
            s.read_exact(&mut back).await?;
            std::io::Result::Ok(back)
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(back)) => return Ok(back),
            other if tokio::time::Instant::now() >= deadline => {
                return Err(format!("never echoed through {to}: {other:?}"));
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn echo_through(to: SocketAddr, message: &[u8]) -> Vec<u8> {
    try_echo(to, message, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_server_is_reached_through_the_service_and_down_removes_it() {
    let ns = Namespace::new("kftray-expose").await;
    let local = local_server().await;
    let mut project = ns.project(&format!(
        "[exposes.echo]\nlocal_port = {}\nservice = \"local-echo\"\nport = 7777\n",
        local.port()
    ));
    project.spawn_up(&[]);
    project
        .wait_for("expose.echo ready", |s| {
            s.iter()
                .any(|f| f["alias"] == "expose.echo" && f["state"] == "ready")
        })
        .await;
    let svc = service(&ns, "local-echo").await;
    let ip = svc.spec.unwrap().cluster_ip.unwrap();
    let to: SocketAddr = format!("{ip}:7777").parse().unwrap();
    assert_eq!(
        echo_through(to, b"hello from the cluster").await,
        b"hello from the cluster"
    );
    // Many at once, each carried on its own.
    let clients: Vec<_> = (0..20)
        .map(|i| {
            tokio::spawn(async move { echo_through(to, format!("client {i}").as_bytes()).await })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        assert_eq!(client.await.unwrap(), format!("client {i}").as_bytes());
    }
    // status counts the bytes carried both ways (192 each, the 21 messages), as for a
    // forward, and no connection stays open once its client is done.
    let status = project
        .wait_for("the bytes counted and the connections closed", |s| {
            s.iter().any(|f| {
                f["alias"] == "expose.echo"
                    && f["connections"].as_i64() == Some(0)
                    && f["bytes_in"].as_i64() >= Some(192)
                    && f["bytes_out"].as_i64() >= Some(192)
            })
        })
        .await;
    let row = status.iter().find(|f| f["alias"] == "expose.echo").unwrap();
    assert_eq!(
        row["target"].as_str().unwrap(),
        format!(
            "svc/local-echo:7777 from the cluster to {local} in {} via relay",
            ns.name
        )
    );

    // The relay pod deleted mid-session: a new one, the Service follows it, clients too.
    let relay = row["pod"].as_str().unwrap().to_owned();
    ns.pods().delete(&relay, &Default::default()).await.unwrap();
    let moved = project
        .wait_for("a new relay pod", |s| {
            s.iter().any(|f| {
                f["alias"] == "expose.echo"
                    && f["state"] == "ready"
                    && f["pod"].as_str().is_some_and(|p| p != relay)
            })
        })
        .await;
    drop(moved);
    let after = try_echo(to, b"after the relay moved", TIMEOUT).await;
    if let Err(e) = &after {
        panic!("{e} after the relay moved\nlog:\n{}", project.log());
    }
    assert_eq!(after.unwrap(), b"after the relay moved");

    let out = project.run(&["down"]).await;
    assert!(out.status.success(), "{}", support::text(&out));
    let api: Api<Service> = Api::namespaced(ns.client.clone(), &ns.name);
    gone(&api, "local-echo", "the Service stayed after down").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_server_that_is_down_resets_the_clients_connection_at_once() {
    let ns = Namespace::new("kftray-expose-down").await;
    // A port nothing listens on.
    let port = support::servers::free_port();
    let mut project = ns.project(&format!(
        "[exposes.gone]\nlocal_port = {port}\nservice = \"gone\"\nport = 8080\n"
    ));
    project.spawn_up(&[]);
    project
        .wait_for("expose.gone ready", |s| {
            s.iter()
                .any(|f| f["alias"] == "expose.gone" && f["state"] == "ready")
        })
        .await;
    let ip = service(&ns, "gone").await.spec.unwrap().cluster_ip.unwrap();
    let to: SocketAddr = format!("{ip}:8080").parse().unwrap();
    // Whether the Service's endpoints are there yet or not, the client is reset within
    // seconds: never left hanging, and never given a clean end it could take for an answer.
    for _ in 0..3 {
        let started = tokio::time::Instant::now();
        let answered = tokio::time::timeout(Duration::from_secs(5), async {
            let mut s = TcpStream::connect(to).await?;
            let _ = s.write_all(b"anyone?").await;
            let mut buf = [0u8; 16];
            s.read(&mut buf).await
        })
        .await
        .expect("a client hung on a local server that is down");
        let error = answered.expect_err("a clean end, not a reset");
        assert!(
            matches!(
                error.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionRefused
            ),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    project
        .wait_for("the failure said", |s| {
            s.iter().any(|f| {
                f["alias"] == "expose.gone"
                    && f["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("did not answer"))
            })
        })
        .await;
}

/// A local server that greets, closes its half, then counts what the client still sends.
async fn greeting_server() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (counted, counts) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let counted = counted.clone();
            tokio::spawn(async move {
                s.write_all(b"hello\n").await?;
                s.shutdown().await?;
                let mut got = Vec::new();
                s.read_to_end(&mut got).await?;
                let _ = counted.send(got.len());
                std::io::Result::Ok(())
            });
        }
    });
    (addr, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_closes_reach_the_other_end_both_ways() {
    let ns = Namespace::new("kftray-expose-half").await;
    let echo = local_server().await;
    let (greeter, mut counts) = greeting_server().await;
    let mut project = ns.project(&format!(
        "[exposes.echo]\nlocal_port = {}\nservice = \"echo\"\nport = 7777\n\n\
         [exposes.greeter]\nlocal_port = {}\nservice = \"greeter\"\nport = 7778\n",
        echo.port(),
        greeter.port()
    ));
    project.spawn_up(&[]);
    let ip = service(&ns, "echo").await.spec.unwrap().cluster_ip.unwrap();
    let to: SocketAddr = format!("{ip}:7777").parse().unwrap();
    // Endpoints first, then the client sends 3 MiB and closes its half: the local server sees
    // the end, and its whole answer and its own end come back.
    echo_through(to, b"ready?").await;
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let (mut read, mut write) = TcpStream::connect(to).await.unwrap().into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        write.write_all(&sent).await?;
        write.shutdown().await
    });
    let mut back = Vec::new();
    tokio::time::timeout(TIMEOUT, read.read_to_end(&mut back))
        .await
        .unwrap_or_else(|_| panic!("the answer never ended\nlog:\n{}", project.log()))
        .unwrap();
    writer.await.unwrap().unwrap();
    assert!(
        back == data,
        "{} of {} bytes came back",
        back.len(),
        data.len()
    );

    // The other way: the local server closes its half first, and still hears the client.
    let ip = service(&ns, "greeter")
        .await
        .spec
        .unwrap()
        .cluster_ip
        .unwrap();
    let to: SocketAddr = format!("{ip}:7778").parse().unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut conn = loop {
        let attempt = async {
            let mut s = TcpStream::connect(to).await?;
            let mut greeting = Vec::new();
            s.read_to_end(&mut greeting).await?;
            std::io::Result::Ok((s, greeting))
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok((s, greeting))) if greeting == b"hello\n" => break s,
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no greeting and its end: {other:?}\nlog:\n{}",
                    project.log()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    // Attempts that failed may have been counted (as 0); this one sends 2 MiB.
    conn.write_all(&vec![1u8; 2 * 1024 * 1024]).await.unwrap();
    conn.shutdown().await.unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let count = tokio::time::timeout_at(deadline, counts.recv())
            .await
            .expect("the local server never heard the client's end")
            .unwrap();
        if count == 2 * 1024 * 1024 {
            break;
        }
        assert_eq!(count, 0, "the local server heard part of what was sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_a_crashed_run_left_is_deleted_by_the_next_expose() {
    let ns = Namespace::new("kftray-expose-left").await;
    // What a run killed with -9 leaves: its expose's Service, selecting a relay pod that the
    // next relay's cleanup deleted.
    ns.apply(
        "apiVersion: v1
kind: Service
metadata:
  name: left-behind
  labels:
    app.kubernetes.io/managed-by: kftray
    app.kubernetes.io/component: expose
    kftray.dev/expose: old
spec:
  selector: {kftray.dev/relay: kftray-relay-gone}
  ports:
    - {name: tcp, port: 80, targetPort: 20080}
",
    )
    .await;
    let local = local_server().await;
    let mut project = ns.project(&format!(
        "[exposes.echo]\nlocal_port = {}\nservice = \"fresh\"\nport = 7777\n",
        local.port()
    ));
    project.spawn_up(&[]);
    service(&ns, "fresh").await;
    let api: Api<Service> = Api::namespaced(ns.client.clone(), &ns.name);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while api.get_opt("left-behind").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the left-behind Service stayed\nlog:\n{}",
            project.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_routes_to_the_service_and_goes_with_it() {
    use k8s_openapi::api::networking::v1::Ingress;
    let ns = Namespace::new("kftray-expose-ingress").await;
    let local = local_server().await;
    let mut project = ns.project(&format!(
        "[exposes.hook]\nlocal_port = {}\nport = 7777\n\
         ingress = {{ host = \"hook.example.test\", class = \"nginx\", \
         cert_issuer = \"letsencrypt-staging\", \
         annotations = {{ \"nginx.ingress.kubernetes.io/proxy-body-size\" = \"10m\" }} }}\n",
        local.port()
    ));
    project.spawn_up(&[]);
    let row = project
        .wait_for("expose.hook ready", |s| {
            s.iter()
                .any(|f| f["alias"] == "expose.hook" && f["state"] == "ready")
        })
        .await;
    let row = row.iter().find(|f| f["alias"] == "expose.hook").unwrap();
    assert!(
        row["target"]
            .as_str()
            .unwrap()
            .starts_with("svc/hook:7777 and https://hook.example.test/ from the cluster to "),
        "{row}"
    );
    let svc = service(&ns, "hook").await;
    let ingresses: Api<Ingress> = Api::namespaced(ns.client.clone(), &ns.name);
    let ingress = appears(&ingresses, "hook").await;
    let json = serde_json::to_value(&ingress).unwrap();
    let annotations = &json["metadata"]["annotations"];
    assert_eq!(
        annotations["cert-manager.io/cluster-issuer"],
        "letsencrypt-staging"
    );
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/proxy-body-size"],
        "10m"
    );
    assert_eq!(json["metadata"]["labels"]["kftray.dev/expose"], "hook");
    let owner = &json["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Service");
    assert_eq!(owner["uid"].as_str(), svc.metadata.uid.as_deref());
    assert_eq!(json["spec"]["ingressClassName"], "nginx");
    let rule = &json["spec"]["rules"][0];
    assert_eq!(rule["host"], "hook.example.test");
    let path = &rule["http"]["paths"][0];
    assert_eq!(path["path"], "/");
    assert_eq!(path["pathType"], "Prefix");
    assert_eq!(path["backend"]["service"]["name"], "hook");
    assert_eq!(path["backend"]["service"]["port"]["number"], 7777);
    assert_eq!(json["spec"]["tls"][0]["secretName"], "hook-tls");
    assert_eq!(json["spec"]["tls"][0]["hosts"][0], "hook.example.test");

    // A run killed with -9 deletes nothing; its Ingress goes with its Service all the same,
    // by the cluster's garbage collector.
    project.kill_up(9);
    let services: Api<Service> = Api::namespaced(ns.client.clone(), &ns.name);
    services.delete("hook", &Default::default()).await.unwrap();
    gone(&ingresses, "hook", "the Ingress outlived its Service").await;

    // `down` deletes both at once.
    project.spawn_up(&[]);
    appears(&ingresses, "hook").await;
    let out = project.run(&["down"]).await;
    assert!(out.status.success(), "{}", support::text(&out));
    gone(&ingresses, "hook", "the Ingress stayed after down").await;
    gone(&services, "hook", "the Service stayed after down").await;
}

/// Waits until `name` exists ("ready" says the relay is, not yet what kftray makes there).
async fn appears<K>(api: &Api<K>, name: &str) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(found) = api.get_opt(name).await.unwrap() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "no {name}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `name` is gone.
async fn gone<K>(api: &Api<K>, name: &str, why: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while api.get_opt(name).await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "{why}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A local UDP server that answers each datagram with "got " and the datagram.
async fn udp_server() -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            let mut reply = b"got ".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = socket.send_to(&reply, peer).await;
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_server_is_reached_through_the_service_each_client_answered_alone() {
    let ns = Namespace::new("kftray-expose-udp").await;
    let local = udp_server().await;
    let mut project = ns.project(&format!(
        "[exposes.stats]\nlocal_port = {}\nprotocol = \"udp\"\nservice = \"local-stats\"\nport = 8125\n",
        local.port()
    ));
    project.spawn_up(&[]);
    let ip = service(&ns, "local-stats")
        .await
        .spec
        .unwrap()
        .cluster_ip
        .unwrap();
    let to: SocketAddr = format!("{ip}:8125").parse().unwrap();
    let svc = service(&ns, "local-stats").await;
    let port = &svc.spec.unwrap().ports.unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("UDP"));
    // The first answer once the Service's endpoints are there.
    let first = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut buf = [0u8; 64];
    loop {
        first.send_to(b"hello", to).await.unwrap();
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(300), first.recv_from(&mut buf)).await
        {
            assert_eq!(&buf[..n], b"got hello");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer through the Service\nlog:\n{}",
            project.log()
        );
    }
    // Clients at once, each answered on its own socket with its own datagrams.
    let clients: Vec<_> = (0..10)
        .map(|i| {
            tokio::spawn(async move {
                let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let message = format!("gauge:{i}");
                let mut buf = [0u8; 64];
                for _ in 0..20 {
                    socket.send_to(message.as_bytes(), to).await.unwrap();
                    let answer =
                        tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf))
                            .await;
                    if let Ok(Ok((n, _))) = answer {
                        return String::from_utf8_lossy(&buf[..n]).into_owned();
                    }
                }
                String::new()
            })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        assert_eq!(client.await.unwrap(), format!("got gauge:{i}"));
    }
    let status = project
        .wait_for("the datagrams counted", |s| {
            s.iter().any(|f| {
                f["alias"] == "expose.stats"
                    && f["bytes_in"].as_i64() >= Some(5 + 10 * 7)
                    && f["bytes_out"].as_i64() >= Some(9 + 10 * 11)
            })
        })
        .await;
    let row = status
        .iter()
        .find(|f| f["alias"] == "expose.stats")
        .unwrap();
    assert!(
        row["target"]
            .as_str()
            .unwrap()
            .starts_with("svc/local-stats:8125 from the cluster to "),
        "{row}"
    );
    assert!(row["target"].as_str().unwrap().contains("/udp"), "{row}");
    let out = project.run(&["down"]).await;
    assert!(out.status.success(), "{}", support::text(&out));
    let api: Api<Service> = Api::namespaced(ns.client.clone(), &ns.name);
    gone(&api, "local-stats", "the Service stayed after down").await;
}

/// A pod of Python's that connects where it is asked, resolving names with the cluster DNS.
fn probe_pod(ns: &Namespace) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/probe.py");
    format!(
        "
apiVersion: v1
kind: Pod
metadata:
  name: probe
  namespace: {ns}
  labels: {{app: probe}}
spec:
  containers:
    - name: probe
      image: {PYTHON_IMAGE}
      args: [\"{script}\", \"$(POD_IP)\", \"8080\"]
      ports:
        - {{name: http, containerPort: 8080}}
",
        ns = ns.name
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_reaches_the_local_server_by_the_services_name_and_its_cluster_ip() {
    let ns = Namespace::new("kftray-expose-pod").await;
    ns.apply(&probe_pod(&ns)).await;
    ns.wait_ready("app=probe", 1).await;
    let local = local_server().await;
    let mut project = ns.project(&format!(
        "[forwards.probe]\npod = \"probe\"\nremote_port = 8080\nlocal_port = \"any\"\n\n\
         [exposes.echo]\nlocal_port = {}\nservice = \"local-echo\"\nport = 7777\n",
        local.port()
    ));
    project.spawn_up(&[]);
    let probe = project.ready("probe").await;
    let name = format!("local-echo.{}.svc.cluster.local", ns.name);
    let ip = service(&ns, "local-echo")
        .await
        .spec
        .unwrap()
        .cluster_ip
        .unwrap();
    for host in [name.as_str(), ip.as_str()] {
        let path = format!("/probe?host={host}&port=7777&send=from-a-pod");
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let answer = kubesim::testing::http_get(probe, &path).await;
            if let Ok((200, body)) = &answer
                && body == "from-a-pod"
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the pod never reached the local server at {host}: {answer:?}\nlog:\n{}",
                project.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
