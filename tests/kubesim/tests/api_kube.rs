//! kube-rs 5 against the simulated API server: list, get, watch, errors, auth, TLS.

mod support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::core::ObjectMeta;
use kubesim::testing::{TIMEOUT, demo_cluster, http_get};
use kubesim::{Auth, ClusterOptions, Credentials};
use support::{api_error, client, client_as};

fn names(pods: &[Pod]) -> Vec<String> {
    let mut n: Vec<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    n.sort();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_get_and_selectors() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&cluster).await, "demo");

    let web = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(web.items.len(), 2);
    assert!(web.items.iter().all(|p| {
        p.metadata
            .name
            .as_deref()
            .unwrap_or_default()
            .starts_with("web-")
    }));
    let set = pods
        .list(&ListParams::default().labels("tier in (frontend, backend),env!=prod"))
        .await
        .unwrap();
    assert_eq!(set.items.len(), 3, "{:?}", names(&set.items));
    let exists = pods
        .list(&ListParams::default().labels("env,!missing"))
        .await
        .unwrap();
    assert_eq!(names(&exists.items), vec!["cache"]);
    let notin = pods
        .list(&ListParams::default().labels("app notin (web,dns)"))
        .await
        .unwrap();
    assert_eq!(names(&notin.items), vec!["cache", "postgres-0"]);

    let by_field = pods
        .list(&ListParams::default().fields("metadata.name=postgres-0,status.phase=Running"))
        .await
        .unwrap();
    assert_eq!(names(&by_field.items), vec!["postgres-0"]);
    let all: Api<Pod> = Api::all(client(&cluster).await);
    let on_node = all
        .list(&ListParams::default().fields("spec.nodeName=kubesim,metadata.namespace=demo"))
        .await
        .unwrap();
    assert_eq!(on_node.items.len(), 5);
    let bad = all
        .list(&ListParams::default().fields("spec.bogus=x"))
        .await
        .unwrap_err();
    assert_eq!(api_error(bad).code, 400);

    // Pages of 2 add up to the whole list, in order, without repeats.
    let mut paged = Vec::new();
    let mut lp = ListParams::default().limit(2);
    loop {
        let page = all.list(&lp).await.unwrap();
        assert!(page.items.len() <= 2);
        paged.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    assert_eq!(names(&paged), names(&on_node.items));

    let cache = pods.get("cache").await.unwrap();
    assert_eq!(
        cache.status.and_then(|s| s.phase).as_deref(),
        Some("Running")
    );
    let missing = api_error(pods.get("nope").await.unwrap_err());
    assert_eq!(
        (
            missing.code,
            missing.reason.as_str(),
            missing.message.as_str()
        ),
        (404, "NotFound", "pods \"nope\" not found")
    );

    let svc: Api<Service> = Api::namespaced(client(&cluster).await, "demo");
    let web_svc = svc.get("web").await.unwrap();
    let ip = web_svc.spec.and_then(|s| s.cluster_ip).unwrap();
    assert!(ip.starts_with("127.96."), "{ip}");
    let deploy: Api<Deployment> = Api::namespaced(client(&cluster).await, "demo");
    let d = deploy.get("web").await.unwrap();
    assert_eq!(d.status.and_then(|s| s.ready_replicas), Some(2));
    let missing = api_error(deploy.get("nope").await.unwrap_err());
    assert_eq!(missing.message, "deployments.apps \"nope\" not found");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_readiness_flip_and_deletion() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&cluster).await, "demo");
    let list = pods.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let wp = WatchParams::default().labels("app=cache").timeout(120);
    let mut events = pods.watch(&wp, &rv).await.unwrap().boxed();

    assert!(cluster.set_ready("demo", "cache", false));
    let ready_of = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.clone())
    };
    let mut next = async || loop {
        let ev = tokio::time::timeout(TIMEOUT, events.next())
            .await
            .expect("event in time");
        match ev.expect("stream open").expect("event decodes") {
            WatchEvent::Bookmark(_) => continue,
            ev => return ev,
        }
    };
    match next().await {
        WatchEvent::Modified(p) => assert_eq!(ready_of(&p).as_deref(), Some("False")),
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    // Endpoints follow readiness.
    let ep = cluster.get("endpoints", "demo", "web").unwrap();
    assert!(ep.to_string().contains("127.244."));

    pods.delete("cache", &DeleteParams::default())
        .await
        .unwrap();
    let mut saw_terminating = false;
    loop {
        match next().await {
            WatchEvent::Modified(p) => saw_terminating |= p.metadata.deletion_timestamp.is_some(),
            WatchEvent::Deleted(p) => {
                assert_eq!(p.metadata.name.as_deref(), Some("cache"));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        saw_terminating,
        "a graceful delete sets deletionTimestamp first"
    );
    assert!(api_error(pods.get("cache").await.unwrap_err()).code == 404);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_resource_version_is_gone() {
    let opts = ClusterOptions {
        bookmark_interval: Duration::from_millis(500),
        ..Default::default()
    };
    let cluster = demo_cluster(opts).await.unwrap();
    let c = client(&cluster).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "demo");
    let first = pods.list(&ListParams::default().limit(1)).await.unwrap();
    let old_rv = first.metadata.resource_version.clone().unwrap();
    let token = first.metadata.continue_.clone().unwrap();
    // History moves on past the list's revision, then is compacted away.
    cluster
        .apply_yaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: later\n")
        .unwrap();
    cluster.compact();

    let mut events = pods
        .watch(&WatchParams::default(), &old_rv)
        .await
        .unwrap()
        .boxed();
    let ev = tokio::time::timeout(TIMEOUT, events.try_next())
        .await
        .unwrap()
        .unwrap();
    match ev {
        Some(WatchEvent::Error(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
            assert!(
                s.message.starts_with("too old resource version: "),
                "{}",
                s.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    let gone = api_error(
        pods.list(&ListParams::default().limit(1).continue_token(&token))
            .await
            .unwrap_err(),
    );
    assert_eq!((gone.code, gone.reason.as_str()), (410, "Expired"));
    let exact = ListParams::default()
        .at(&old_rv)
        .matching(kube::api::VersionMatch::Exact);
    let gone = api_error(pods.list(&exact).await.unwrap_err());
    assert_eq!(
        (gone.code, gone.message.as_str()),
        (410, "The resourceVersion for the provided list is too old.")
    );

    // A watch from a current resourceVersion with bookmarks gets them.
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let ev = tokio::time::timeout(TIMEOUT, events.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(ev, Some(WatchEvent::Bookmark(_))), "{ev:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_get_401_and_removed_permissions_403() {
    let cluster = demo_cluster(ClusterOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    let stranger = client_as(
        &cluster,
        dir.path(),
        Credentials::Token("not-a-token".into()),
    )
    .await;
    let e = api_error(
        Api::<Pod>::namespaced(stranger, "demo")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );

    let token = cluster.add_token_user("u");
    let u = client_as(&cluster, dir.path(), Credentials::Token(token.clone())).await;
    let pods: Api<Pod> = Api::namespaced(u.clone(), "default");
    pods.list(&ListParams::default()).await.unwrap();

    cluster.deny("u", "create", "pods");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "x"}, "spec": {"containers": [{"name": "c", "image": "kubesim/echo"}]}
    }))
    .unwrap();
    let e = api_error(pods.create(&PostParams::default(), &pod).await.unwrap_err());
    assert_eq!(e.code, 403);
    assert_eq!(e.reason, "Forbidden");
    assert_eq!(
        e.message,
        "pods is forbidden: User \"u\" cannot create resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    cluster.allow("u", "create", "pods");
    pods.create(&PostParams::default(), &pod).await.unwrap();

    cluster.deny("u", "get", "pods/portforward");
    let req = http::Request::get("/api/v1/namespaces/default/pods/x/portforward?ports=80")
        .body(Vec::new())
        .unwrap();
    let e = api_error(u.request_text(req).await.unwrap_err());
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "pods \"x\" is forbidden: User \"u\" cannot get resource \"pods/portforward\" in API group \"\" in the namespace \"default\""
    );

    cluster.revoke_token(&token);
    assert_eq!(
        api_error(pods.list(&ListParams::default()).await.unwrap_err()).code,
        401
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_over_https() {
    let cluster = kubesim::Cluster::start(ClusterOptions {
        auth: Auth::ClientCert,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(cluster.server_url().starts_with("https://"));
    let ns: Api<Namespace> = Api::all(client(&cluster).await);
    let names: Vec<String> = ns
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");

    // CN is the user name, so a permission taken from "alice" shows in her 403.
    let dir = tempfile::tempdir().unwrap();
    let cert = cluster.client_cert("alice").unwrap();
    cluster.deny("alice", "list", "namespaces");
    let alice = client_as(
        &cluster,
        dir.path(),
        Credentials::ClientCert {
            cert_pem: cert.cert_pem,
            key_pem: cert.key_pem,
        },
    )
    .await;
    let e = api_error(
        Api::<Namespace>::all(alice)
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "namespaces is forbidden: User \"alice\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );

    // A certificate from another CA is refused in the TLS handshake.
    let other = kubesim::tls::Authority::new()
        .unwrap()
        .client_cert("mallory")
        .unwrap();
    let mallory = client_as(
        &cluster,
        dir.path(),
        Credentials::ClientCert {
            cert_pem: other.cert_pem,
            key_pem: other.key_pem,
        },
    )
    .await;
    assert!(
        Api::<Namespace>::all(mallory)
            .list(&ListParams::default())
            .await
            .is_err()
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_pod_runs_a_real_server_and_deletes_gracefully() {
    let cluster = kubesim::Cluster::start(ClusterOptions::default())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&cluster).await, "default");
    let pod = Pod {
        metadata: ObjectMeta { name: Some("hello".into()), ..Default::default() },
        spec: serde_json::from_value(serde_json::json!({"containers": [{"name": "web", "image": "kubesim/http", "ports": [{"containerPort": 8080}]}]})).unwrap(),
        ..Default::default()
    };
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let dup = api_error(pods.create(&PostParams::default(), &pod).await.unwrap_err());
    assert_eq!(
        (dup.code, dup.reason.as_str(), dup.message.as_str()),
        (409, "AlreadyExists", "pods \"hello\" already exists")
    );
    assert!(cluster.wait_ready("default", "hello", TIMEOUT).await);

    let ip = pods
        .get("hello")
        .await
        .unwrap()
        .status
        .and_then(|s| s.pod_ip)
        .unwrap();
    let addr = cluster.pod_addr("default", "hello", 8080).unwrap();
    assert_eq!(addr.ip().to_string(), ip);
    let (code, body) = http_get(addr, "/").await.unwrap();
    assert_eq!((code, body.as_str()), (200, "hello\n"));

    let in_missing_ns: Api<Pod> = Api::namespaced(client(&cluster).await, "nowhere");
    let e = api_error(
        in_missing_ns
            .create(&PostParams::default(), &pod)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );

    pods.delete("hello", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        cluster
            .wait_for("pods", "default", "hello", TIMEOUT, |p| p.is_none())
            .await
    );
    // The backend went with the pod.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portforward_needs_an_existing_running_pod() {
    let opts = ClusterOptions::default().image("local/missing", "/nonexistent/program");
    let cluster = kubesim::Cluster::start(opts).await.unwrap();
    cluster
        .apply_yaml("apiVersion: v1\nkind: Pod\nmetadata:\n  name: stuck\nspec:\n  containers:\n    - name: c\n      image: local/missing\n")
        .unwrap();
    let c = client(&cluster).await;
    let pf = |pod: &str| {
        http::Request::get(format!(
            "/api/v1/namespaces/default/pods/{pod}/portforward?ports=80"
        ))
        .body(Vec::new())
        .unwrap()
    };
    let e = api_error(c.request_text(pf("nope")).await.unwrap_err());
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "pods \"nope\" not found")
    );

    // The program cannot start, so the pod stays Pending and has nothing to forward to.
    let pending = cluster
        .wait_for("pods", "default", "stuck", TIMEOUT, |p| {
            p.is_some_and(|p| p.pointer("/status/message").is_some())
        })
        .await;
    assert!(pending);
    assert_eq!(
        cluster.get("pods", "default", "stuck").unwrap()["status"]["phase"],
        "Pending"
    );
    let e = api_error(c.request_text(pf("stuck")).await.unwrap_err());
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "pod not found (\"stuck_default\")")
    );
    cluster.shutdown().await;
}
