//! Forwards through the relay on the real control plane, whose relay pods run the real
//! relay-server binary: UDP to services, a real DNS query, hosts only the cluster knows, many
//! UDP clients at once, the kubelet restarting under the tunnel, a relay pod deleted
//! mid-session, leftovers of a dead owner, a 403, and the relay in a namespace that enforces
//! the `restricted` Pod Security Standard.
//!
//! The relay binary is built by `cargo test --workspace` (relay-server has tests of its own);
//! alone, build it first: `cargo build -p kftray-relay -p kubesim`.

mod support;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kftray::engine::{Phase, RunSpec, Supervisor};
use kftray::forward::Tuning;
use kftray::relay::{Owner, SELECTOR};
use kube::api::{Api, DeleteParams};
use kubesim::testing::{TIMEOUT, http_get};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::cluster::{Namespace, PRIVATE_HOST, PYTHON_IMAGE, WEB};
use support::udp_exchange;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Beside `WEB`: a DNS server pod behind `cluster-dns`, and a UDP echo service.
const FIXTURE: &str = "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: dns
spec:
  replicas: 1
  selector:
    matchLabels: {app: dns}
  template:
    metadata:
      labels: {app: dns}
    spec:
      containers:
        - name: dns
          image: kubesim/dns
          ports:
            - {name: dns, containerPort: 5353, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata:
  name: cluster-dns
spec:
  selector: {app: dns}
  ports:
    - {name: dns, port: 10053, targetPort: dns, protocol: UDP}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: udp-echo
spec:
  replicas: 2
  selector:
    matchLabels: {app: udp-echo}
  template:
    metadata:
      labels: {app: udp-echo}
    spec:
      containers:
        - name: echo
          image: kubesim/udp-echo
          ports:
            - {name: echo, containerPort: 7007, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata:
  name: udp-echo
spec:
  selector: {app: udp-echo}
  ports:
    - {name: echo, port: 7070, targetPort: echo, protocol: UDP}
";

/// A namespace of the shared control plane with the fixture's pods Ready.
async fn ground() -> Namespace {
    let ns = Namespace::new("kftray-relay").await;
    populate(&ns).await;
    ns
}

async fn populate(ns: &Namespace) {
    ns.apply(WEB).await;
    ns.apply(FIXTURE).await;
    for (selector, n) in [("app=web", 2), ("app=dns", 1), ("app=udp-echo", 2)] {
        ns.wait_ready(selector, n).await;
    }
}

/// The forwards of a kftray.toml (defaults: this kubeconfig and namespace), as `up` runs them.
fn forwards(kubeconfig: &Path, ns: &str, text: &str) -> BTreeMap<String, RunSpec> {
    let text = format!(
        "[defaults]\nkubeconfig = {:?}\nnamespace = {ns:?}\n\n{text}",
        kubeconfig.display().to_string()
    );
    let effective = kftray::config::load_str("kftray.toml", &text)
        .unwrap_or_else(|d| panic!("{}", d.render(false, 100)));
    kftray::engine::desired(&effective, &[], &[])
        .unwrap()
        .runnable
}

async fn supervise(ns: &Namespace, text: &str) -> Supervisor {
    supervise_as(&ns.kubeconfig, ns, text).await
}

async fn supervise_as(kubeconfig: &Path, ns: &Namespace, text: &str) -> Supervisor {
    let mut supervisor = Supervisor::for_project(Tuning::default(), "/tmp/kftray-relay-test");
    let applied = supervisor
        .apply(&forwards(kubeconfig, &ns.name, text))
        .await;
    assert!(applied.failed.is_empty(), "{:?}", applied.failed);
    supervisor
}

/// Waits until `name` is ready: its local address and the (relay) pod it goes through.
async fn ready(supervisor: &Supervisor, name: &str) -> (SocketAddr, String) {
    let mut last = None;
    let found = tokio::time::timeout(TIMEOUT, async {
        loop {
            let report = supervisor.report().into_iter().find(|r| r.name == name);
            if let Some(r) = &report
                && let Phase::Ready { pod, .. } = &r.phase
            {
                return (r.local, pod.clone());
            }
            last = report.map(|r| r.phase);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{name} never became ready: {last:?}"))
}

/// The supervisor's report of one forward.
fn report(supervisor: &Supervisor, name: &str) -> kftray::engine::ForwardReport {
    supervisor
        .report()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap()
}

/// Waits until `name` fails: why, as its report says.
async fn failed(supervisor: &Supervisor, name: &str) -> String {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let phase = report(supervisor, name).phase;
        if let Phase::Failed(why) = phase {
            return why;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never failed: {phase:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn relay_pods(ns: &Namespace) -> Vec<String> {
    ns.pod_names(SELECTOR).await
}

/// Waits until `pred` holds for the relay pods of the namespace.
async fn relay_pods_until(ns: &Namespace, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let pods = relay_pods(ns).await;
        if pred(&pods) {
            return pods;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "relay pods in {}: {pods:?}",
            ns.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_echo_and_a_real_dns_query_over_udp_service_forwards() {
    let ns = ground().await;
    let mut supervisor = supervise(
        &ns,
        "[forwards.echo]\nservice = \"udp-echo\"\nprotocol = \"udp\"\nremote_port = \"echo\"\nlocal_port = \"any\"\n\n\
         [forwards.dns]\nservice = \"cluster-dns\"\nprotocol = \"udp\"\nremote_port = 10053\nlocal_port = \"any\"\n",
    )
    .await;
    let (echo, echo_pod) = ready(&supervisor, "echo").await;
    let (dns, dns_pod) = ready(&supervisor, "dns").await;
    assert!(echo_pod.starts_with("kftray-relay-"), "{echo_pod}");
    assert_eq!(echo_pod, dns_pod, "one relay per namespace, shared");
    assert_eq!(relay_pods(&ns).await, std::slice::from_ref(&echo_pod));

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(udp_exchange(&client, echo, b"hello").await, b"hello");
    eprintln!(
        "first UDP round trip (opens the flow): {:?}",
        started.elapsed()
    );
    let started = std::time::Instant::now();
    assert_eq!(udp_exchange(&client, echo, b"again").await, b"again");
    eprintln!("UDP round trip on an open flow: {:?}", started.elapsed());

    // A real resolver, over the UDP forward, to the cluster's DNS pod: the answer is web's
    // ClusterIP.
    let web_ip = Api::<Service>::namespaced(ns.client.clone(), &ns.name)
        .get("web")
        .await
        .unwrap()
        .spec
        .and_then(|s| s.cluster_ip)
        .unwrap();
    use hickory_resolver::config::{NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    let mut server = NameServerConfig::udp(dns.ip());
    server.connections[0].port = dns.port();
    let resolver = hickory_resolver::Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![server]),
        TokioRuntimeProvider::default(),
    )
    .build()
    .unwrap();
    let answer = resolver
        .lookup_ip(format!("web.{}.svc.cluster.local.", ns.name))
        .await
        .unwrap();
    let ips: Vec<String> = answer.iter().map(|ip| ip.to_string()).collect();
    assert_eq!(ips, [web_ip]);
    let missing = resolver
        .lookup_ip(format!("nope.{}.svc.cluster.local.", ns.name))
        .await;
    assert!(missing.unwrap_err().is_nx_domain());

    let r = report(&supervisor, "echo");
    assert!(r.bytes_out >= 10 && r.bytes_in >= 10, "{r:?}");
    assert_eq!(
        r.spec.to_string(),
        format!("svc/udp-echo:echo/udp in {} via relay", ns.name)
    );

    // The last forward stopping deletes the relay pod.
    supervisor.shutdown().await;
    relay_pods_until(&ns, <[String]>::is_empty).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_forwards_reach_hosts_only_the_cluster_knows_and_via_relay_reaches_a_service() {
    let ns = ground().await;
    // Servers on this machine's loopback, named only in the cluster's DNS.
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = tcp.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let _ = conn.read_to_end(&mut request).await;
                let _ = conn.write_all(b"db says: ").await;
                let _ = conn.write_all(&request).await;
            });
        }
    });
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
            let mut reply = b"stats got ".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = udp.send_to(&reply, peer).await;
        }
    });
    assert!(
        tokio::net::lookup_host((PRIVATE_HOST, 1)).await.is_err(),
        "this machine must not know the name for the test to mean anything"
    );
    let supervisor = supervise(
        &ns,
        &format!(
            "[forwards.db]\nproxy = \"{PRIVATE_HOST}\"\nremote_port = {tcp_port}\nlocal_port = \"any\"\n\n\
             [forwards.stats]\nproxy = \"{PRIVATE_HOST}\"\nprotocol = \"udp\"\nremote_port = {udp_port}\nlocal_port = \"any\"\n\n\
             [forwards.web]\nservice = \"web\"\nvia = \"relay\"\nremote_port = \"http\"\nlocal_port = \"any\"\n"
        ),
    )
    .await;
    let (db, _) = ready(&supervisor, "db").await;
    let (stats, _) = ready(&supervisor, "stats").await;
    let (web, relay) = ready(&supervisor, "web").await;

    // TCP with half-close: the server answers after the request's end.
    let mut conn = TcpStream::connect(db).await.unwrap();
    conn.write_all(b"SELECT 1").await.unwrap();
    conn.shutdown().await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(TIMEOUT, conn.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, b"db says: SELECT 1");

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(
        udp_exchange(&client, stats, b"gauge:1").await,
        b"stats got gauge:1"
    );

    // Through the relay to web's ClusterIP: kube-proxy picks a web pod, which says its name.
    let web_pods = ns.pod_names("app=web").await;
    let mut served = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let (code, body) = http_get(web, "/").await.unwrap();
        assert_eq!(code, 200);
        assert!(web_pods.contains(&body.trim().to_string()), "{body}");
        served.insert(body.trim().to_string());
    }
    assert_eq!(served.len(), 2, "kube-proxy balances across both pods");
    assert!(relay.starts_with("kftray-relay-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_udp_clients_each_get_only_their_own_replies() {
    let ns = ground().await;
    let supervisor = supervise(
        &ns,
        "[forwards.echo]\nservice = \"udp-echo\"\nprotocol = \"udp\"\nremote_port = 7070\nlocal_port = \"any\"\n",
    )
    .await;
    let (echo, _) = ready(&supervisor, "echo").await;
    let clients = (0..50).map(|client| {
        tokio::spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            for n in 0..10 {
                let payload = format!("client {client} datagram {n}");
                let answer = udp_exchange(&socket, echo, payload.as_bytes()).await;
                // A retry may bring an older answer: any answer must be this client's.
                let text = String::from_utf8(answer).unwrap();
                assert!(
                    text.starts_with(&format!("client {client} ")),
                    "client {client} got {text:?}"
                );
            }
        })
    });
    for client in futures::future::join_all(clients).await {
        client.unwrap();
    }
    let r = report(&supervisor, "echo");
    assert!(r.total_connections >= 50, "one flow per client: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_does_not_resolve_is_a_clear_error() {
    let ns = ground().await;
    let supervisor = supervise(
        &ns,
        "[forwards.gone]\nproxy = \"nope.private.example\"\nremote_port = 5432\nlocal_port = \"any\"\n\n\
         [forwards.gone-udp]\nproxy = \"nope.private.example\"\nprotocol = \"udp\"\nremote_port = 514\nlocal_port = \"any\"\n",
    )
    .await;
    let (tcp, _) = ready(&supervisor, "gone").await;
    let (udp, _) = ready(&supervisor, "gone-udp").await;
    let mut conn = TcpStream::connect(tcp).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, conn.read_to_end(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(b"<14>hello", udp).await.unwrap();
    for name in ["gone", "gone-udp"] {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let error = loop {
            if let Some(error) = report(&supervisor, name).last_error {
                break error;
            }
            assert!(tokio::time::Instant::now() < deadline, "{name}: no error");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            error.contains("no such host") && error.contains("nope.private.example"),
            "{name}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forward_recovers_when_the_kubelet_restarts_or_its_relay_pod_is_deleted() {
    // A control plane of its own: the test restarts its kubelet.
    let mut cp = controlplane::ControlPlane::start(support::cluster::options())
        .await
        .unwrap();
    let ns = Namespace::on(cp.kubeconfig(), &cp.kubectl(), "kftray-relay").await;
    populate(&ns).await;
    let mut supervisor = supervise(
        &ns,
        "[forwards.echo]\nservice = \"udp-echo\"\nprotocol = \"udp\"\nremote_port = 7070\nlocal_port = \"any\"\n\n\
         [forwards.web]\nservice = \"web\"\nvia = \"relay\"\nremote_port = 80\nlocal_port = \"any\"\n",
    )
    .await;
    let (echo, first) = ready(&supervisor, "echo").await;
    let (web, _) = ready(&supervisor, "web").await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(udp_exchange(&client, echo, b"before").await, b"before");

    // The kubelet restarts, and with it every port-forward stream to the relay pod: the
    // forward reconnects to the same relay.
    cp.restart_kubelet_api().unwrap();
    assert_eq!(
        udp_exchange(&client, echo, b"reconnected").await,
        b"reconnected"
    );
    assert_eq!(ready(&supervisor, "echo").await.1, first);
    assert_eq!(relay_pods(&ns).await, std::slice::from_ref(&first));

    // The relay pod dies: another one replaces it.
    ns.pods()
        .delete(&first, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let pods = relay_pods_until(&ns, |pods| pods.len() == 1 && pods[0] != first).await;
    let second = &pods[0];
    // The same local socket and listener, through the new relay.
    assert_eq!(udp_exchange(&client, echo, b"after").await, b"after");
    let (again, pod) = ready(&supervisor, "echo").await;
    assert_eq!(again, echo);
    assert_eq!(&pod, second);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Ok((200, _)) = http_get(web, "/").await {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "web never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    supervisor.shutdown().await;
    drop(ns);
    cp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftover_relays_of_a_dead_owner_are_removed() {
    let ns = ground().await;
    let me = Owner::current("/tmp/kftray-relay-test");
    // A process that has exited: its pid is this machine's dead owner.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let fresh = k8s_openapi::jiff::Timestamp::now().to_string();
    let leftover = |name: &str, host: &str, pid: u32, heartbeat: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    \
             app.kubernetes.io/name: kftray-relay\n    app.kubernetes.io/managed-by: kftray\n  \
             annotations:\n    kftray.dev/owner-hostname: {host:?}\n    kftray.dev/owner-pid: \"{pid}\"\n    \
             kftray.dev/heartbeat: {heartbeat:?}\nspec:\n  containers:\n    - name: relay\n      image: kubesim/echo\n"
        )
    };
    ns.apply(&leftover("kftray-relay-orphan", &me.host, dead_pid, &fresh))
        .await;
    ns.apply(&leftover(
        "kftray-relay-silent",
        "elsewhere",
        1,
        "2020-01-01T00:00:00Z",
    ))
    .await;
    ns.apply(&leftover("kftray-relay-busy", "elsewhere", 1, &fresh))
        .await;
    assert_eq!(relay_pods(&ns).await.len(), 3);

    let supervisor = supervise(
        &ns,
        "[forwards.echo]\nservice = \"udp-echo\"\nprotocol = \"udp\"\nremote_port = 7070\nlocal_port = \"any\"\n",
    )
    .await;
    let (_, mine) = ready(&supervisor, "echo").await;
    let pods = relay_pods_until(&ns, |pods| pods.len() == 2).await;
    let mut expected = vec!["kftray-relay-busy".to_string(), mine.clone()];
    expected.sort();
    assert_eq!(
        pods, expected,
        "the live owner's relay stays, the dead and silent ones go"
    );
    // Ours says who owns it.
    let pod = ns.pods().get(&mine).await.unwrap();
    let labels = pod.metadata.labels.unwrap_or_default();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "kftray");
    assert!(labels.contains_key("kftray.dev/owner-user"));
    let annotations = pod.metadata.annotations.unwrap_or_default();
    assert_eq!(annotations["kftray.dev/owner-hostname"], me.host);
    assert_eq!(
        annotations["kftray.dev/owner-pid"],
        std::process::id().to_string()
    );
    assert!(annotations.contains_key("kftray.dev/heartbeat"));
    assert_eq!(
        pod.spec.and_then(|s| s.automount_service_account_token),
        Some(false)
    );
}

/// examples/relay-rbac.yaml, applied as it is, binds its Role to the group `developers`:
/// the restricted user of the test cluster (kftray-dev) is in it and has no other rights.
fn relay_rbac() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/relay-rbac.yaml"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_image_the_cluster_cannot_pull_shows_the_pull_error_and_the_key_to_set() {
    let ns = ground().await;
    let supervisor = supervise(
        &ns,
        &format!(
            "[relay]\nimage = \"registry.invalid/kftray-relay:0\"\n\n\
             [forwards.db]\nproxy = \"{PRIVATE_HOST}\"\nremote_port = 5432\nlocal_port = \"any\"\n"
        ),
    )
    .await;
    let why = failed(&supervisor, "db").await;
    assert!(
        why.contains("ErrImagePull") || why.contains("ImagePullBackOff"),
        "the pull error: {why}"
    );
    for part in ["registry.invalid/kftray-relay:0", "`[relay] image`"] {
        assert!(why.contains(part), "{part:?} missing from: {why}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_of_another_protocol_version_is_replaced_not_misread() {
    let ns = ground().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/old_relay.py");
    let manifest = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        manifest.path(),
        format!(
            "apiVersion: v1\nkind: Pod\nspec:\n  restartPolicy: Never\n  containers:\n    \
             - name: relay\n      image: {PYTHON_IMAGE}\n      \
             args: [\"{script}\", \"$(POD_IP)\", \"7000\"]\n      \
             ports:\n        - {{name: relay, containerPort: 7000}}\n"
        ),
    )
    .unwrap();
    let supervisor = supervise(
        &ns,
        &format!(
            "[relay]\nmanifest = {:?}\n\n\
             [forwards.db]\nproxy = \"{PRIVATE_HOST}\"\nremote_port = 5432\nlocal_port = \"any\"\n",
            manifest.path().display().to_string()
        ),
    )
    .await;
    let first = relay_pods_until(&ns, |pods| pods.len() == 1).await;
    let why = failed(&supervisor, "db").await;
    for part in [
        "speaks relay protocol version 0",
        "speaks version 1",
        "`[relay] image`",
    ] {
        assert!(why.contains(part), "{part:?} missing from: {why}");
    }
    // The relay that spoke version 0 is deleted, and another takes its place.
    relay_pods_until(&ns, |pods| !pods.is_empty() && pods[0] != first[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_rbac_yaml_is_enough_and_a_403_on_pod_create_names_the_missing_permission() {
    let ns = ground().await;
    let restricted = &support::cluster::shared().restricted_kubeconfig;
    // The Role without `create` on pods.
    let rbac = relay_rbac();
    let without_create = rbac.replacen(
        "verbs: [\"create\", \"get\", \"list\", \"watch\", \"patch\", \"delete\"]",
        "verbs: [\"get\", \"list\", \"watch\", \"patch\", \"delete\"]",
        1,
    );
    assert_ne!(
        without_create, rbac,
        "the pods rule of relay-rbac.yaml changed"
    );
    ns.apply(&without_create).await;
    let supervisor = supervise_as(
        restricted,
        &ns,
        &format!(
            "[forwards.db]\nproxy = \"{PRIVATE_HOST}\"\nremote_port = 5432\nlocal_port = \"any\"\n"
        ),
    )
    .await;
    let why = failed(&supervisor, "db").await;
    for part in [
        "create",
        "`pods`",
        &format!("namespace \"{}\"", ns.name),
        "relay-rbac.yaml",
        "forbidden",
    ] {
        assert!(why.contains(part), "{part:?} missing from: {why}");
    }
    // relay-rbac.yaml as it is: the relay comes up without restarting anything.
    ns.apply(&rbac).await;
    let (_, pod) = ready(&supervisor, "db").await;
    assert!(pod.starts_with("kftray-relay-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_security_restricted_admits_the_relay_pod() {
    let ns = ground().await;
    ns.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n  labels:\n    \
         pod-security.kubernetes.io/enforce: restricted\n    pod-security.kubernetes.io/enforce-version: latest\n",
        ns.name
    ))
    .await;
    // Admission really enforces it here: a pod that runs as root is refused.
    let root_pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "as-root"},
        "spec": {"containers": [{"name": "c", "image": "kubesim/echo"}]},
    }))
    .unwrap();
    let refused = ns
        .pods()
        .create(&kube::api::PostParams::default(), &root_pod)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("violates PodSecurity"),
        "{refused}"
    );
    let supervisor = supervise(
        &ns,
        "[forwards.echo]\nservice = \"udp-echo\"\nprotocol = \"udp\"\nremote_port = 7070\nlocal_port = \"any\"\n",
    )
    .await;
    let (echo, pod) = ready(&supervisor, "echo").await;
    assert!(pod.starts_with("kftray-relay-"));
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(
        udp_exchange(&client, echo, b"restricted").await,
        b"restricted"
    );
}

/// `kftray up --detach`, `status` and `down` as separate processes: status shows the relay
/// (target text, pod), and down deletes the relay pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_relay_and_down_deletes_it() {
    let ns = ground().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kftray.toml"),
        format!(
            "[defaults]\nkubeconfig = {:?}\nnamespace = {:?}\n\n\
             [forwards.echo]\nservice = \"udp-echo\"\nprotocol = \"udp\"\nremote_port = 7070\nlocal_port = \"any\"\n",
            ns.kubeconfig.display().to_string(),
            ns.name
        ),
    )
    .unwrap();
    let kftray = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kftray"));
        command
            .args(args)
            .current_dir(dir.path())
            .env("KFTRAY_HOME", dir.path().join("home"))
            .env("NO_COLOR", "1");
        async move {
            tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap()
        }
    };
    let up = kftray(&["up", "--detach"]).await;
    assert!(up.status.success(), "{up:?}");
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let echo = loop {
        let out = kftray(&["status", "-o", "json"]).await;
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(echo) = all.as_array().unwrap().first()
            && echo["state"] == "ready"
        {
            break echo.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "never ready: {all}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        echo["target"],
        format!("svc/udp-echo:7070/udp in {} via relay", ns.name)
    );
    let pod = echo["pod"].as_str().unwrap().to_string();
    assert_eq!(relay_pods(&ns).await, std::slice::from_ref(&pod));
    let local: SocketAddr = echo["local_address"].as_str().unwrap().parse().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(udp_exchange(&client, local, b"ping").await, b"ping");
    let table = kftray(&["status"]).await;
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(
        table.contains(&pod) && table.contains("via relay"),
        "{table}"
    );

    let down = kftray(&["down"]).await;
    assert!(down.status.success(), "{down:?}");
    relay_pods_until(&ns, <[String]>::is_empty).await;
}

/// A namespace with only the fixture's udp-echo Deployment and Service.
async fn echo_only() -> Namespace {
    let ns = Namespace::new("kftray-rbac").await;
    let echo = FIXTURE
        .split("\n---\n")
        .filter(|doc| doc.contains("name: udp-echo"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    ns.apply(&echo).await;
    ns.wait_ready("app=udp-echo", 2).await;
    ns
}

/// The forwards that use every rule of relay-rbac.yaml: a proxy (the relay pod itself), UDP
/// to a deployment (its pods, read by name) and UDP to a service.
fn every_kind(ns: &Namespace) -> String {
    let _ = ns;
    format!(
        "[forwards.db]\nproxy = \"{PRIVATE_HOST}\"\nremote_port = 5432\nlocal_port = \"any\"\n\n\
         [forwards.by-deployment]\ndeployment = \"udp-echo\"\nprotocol = \"udp\"\nremote_port = \"echo\"\nlocal_port = \"any\"\n\n\
         [forwards.by-service]\nservice = \"udp-echo\"\nprotocol = \"udp\"\nremote_port = \"echo\"\nlocal_port = \"any\"\n"
    )
}

/// relay-rbac.yaml with one verb taken from the rule for `resource`.
fn rbac_without(verb: &str, resource: &str) -> String {
    let rbac = relay_rbac();
    let (role, binding) = rbac.split_once("\n---\n").unwrap();
    let mut role: serde_yaml::Value = serde_yaml::from_str(role).unwrap();
    let mut found = false;
    for rule in role["rules"].as_sequence_mut().unwrap() {
        if rule["resources"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|r| r == resource)
        {
            let verbs = rule["verbs"].as_sequence_mut().unwrap();
            let before = verbs.len();
            verbs.retain(|v| v != verb);
            found |= verbs.len() < before;
        }
    }
    assert!(found, "relay-rbac.yaml has no `{verb}` on `{resource}`");
    // A rule left with no verbs is invalid: it goes.
    role["rules"]
        .as_sequence_mut()
        .unwrap()
        .retain(|rule| !rule["verbs"].as_sequence().unwrap().is_empty());
    format!("{}\n---\n{binding}", serde_yaml::to_string(&role).unwrap())
}

/// Everything the supervisor says about its forwards, as one text.
fn said(supervisor: &Supervisor) -> String {
    supervisor
        .report()
        .iter()
        .map(|r| format!("{}: {:?} {:?}\n", r.name, r.phase, r.last_error))
        .collect::<String>()
        .replace("\\\"", "\"")
}

/// Each verb of relay-rbac.yaml taken away in turn, as a user whose only rights are that Role
/// (the README's read permissions are part of it): every one but `get` on pods/portforward
/// (the WebSocket fallback's) is needed, and kftray names the missing one. The heartbeat's `patch`, which only the log tells of, has a test of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_of_relay_rbac_yaml_is_needed_and_its_absence_is_named() {
    let restricted = &support::cluster::shared().restricted_kubeconfig;
    let cases = [
        ("create", "pods"),
        ("get", "pods"),
        ("list", "pods"),
        ("watch", "pods"),
        ("delete", "pods"),
        ("create", "pods/portforward"),
        ("get", "pods/portforward"),
        ("list", "services"),
        ("watch", "services"),
        ("get", "deployments"),
    ];
    let runs = cases.iter().map(|&(verb, resource)| async move {
        let ns = echo_only().await;
        ns.apply(&rbac_without(verb, resource)).await;
        let mut supervisor = supervise_as(restricted, &ns, &every_kind(&ns)).await;
        let wanted = format!("cannot {verb} resource \"{resource}\"");
        let grant = format!("grant `{verb}` on `{resource}`");
        if (verb, resource) == ("get", "pods/portforward") {
            // Only the WebSocket upgrade is a GET: raw SPDY, kftray's first choice, is a POST
            // (`create`), so everything works. The Role keeps `get` for the fallback.
            for name in ["db", "by-deployment", "by-service"] {
                ready(&supervisor, name).await;
            }
            supervisor.shutdown().await;
            return;
        }
        if verb == "delete" {
            // Everything works; the relay pod outlives the run (kftray logs the refusal, and
            // the heartbeat going stale lets the next run's cleanup take it).
            for name in ["db", "by-deployment", "by-service"] {
                ready(&supervisor, name).await;
            }
            let pods = relay_pods(&ns).await;
            supervisor.shutdown().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(
                relay_pods(&ns).await,
                pods,
                "without delete the relay stays"
            );
            return;
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let text = loop {
            let text = said(&supervisor);
            // The server's words, or kftray's where it cut them short.
            if text.contains(&wanted) || text.contains(&grant) {
                break text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "without {verb} on {resource}, nothing says so:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if text.contains("grant `") {
            assert!(
                text.contains(&grant),
                "kftray asks for another permission than the one refused:\n{text}"
            );
        }
        supervisor.shutdown().await;
    });
    // A few at a time: each is a relay pod and two echo pods on the machine's two cores.
    futures::stream::iter(runs)
        .buffer_unordered(3)
        .collect::<Vec<()>>()
        .await;

    // As it is, the Role is enough for all three.
    let ns = echo_only().await;
    ns.apply(&relay_rbac()).await;
    let mut supervisor = supervise_as(restricted, &ns, &every_kind(&ns)).await;
    for name in ["db", "by-deployment", "by-service"] {
        ready(&supervisor, name).await;
    }
    let (echo, _) = ready(&supervisor, "by-service").await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(udp_exchange(&client, echo, b"granted").await, b"granted");
    supervisor.shutdown().await;
    relay_pods_until(&ns, <[String]>::is_empty).await;
}

/// Without `patch` on pods every forward works, but the relay's heartbeat cannot be
/// refreshed: `kftray up` says so at once, naming the verb and what will follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_patch_kftray_up_says_the_relays_heartbeat_is_refused() {
    let restricted = &support::cluster::shared().restricted_kubeconfig;
    let ns = echo_only().await;
    ns.apply(&rbac_without("patch", "pods")).await;
    let mut project = support::Project::new();
    std::fs::write(
        project.path("kftray.toml"),
        format!(
            "[defaults]\nkubeconfig = {:?}\nnamespace = {:?}\n\n{}",
            restricted.display().to_string(),
            ns.name,
            every_kind(&ns)
        ),
    )
    .unwrap();
    project.spawn_up(&[]);
    for name in ["db", "by-deployment", "by-service"] {
        project.ready(name).await;
    }
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let log = project.log();
        if log.contains("cannot patch resource \"pods\"") {
            assert!(log.contains("grant `patch` on `pods`"), "{log}");
            assert!(log.contains("take this relay for abandoned"), "{log}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing says patch is refused:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
