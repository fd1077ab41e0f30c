//! The REST API: routing, authentication, authorization, and the get/list/watch/create/
//! delete verbs over the store.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::auth::{User, Users};
use crate::controller::{prepare, terminating};
use crate::discovery;
use crate::faults::FaultState;
use crate::runtime::Runtime;
use crate::selector::{FieldSelector, LabelSelector, labels_of};
use crate::status::{ApiError, json_response};
use crate::store::{Event, EventType, Store};

pub(crate) type Body = BoxBody<Bytes, Infallible>;

pub(crate) const ADMIN: &str = "kubesim-admin";

pub(crate) struct Api {
    pub store: Store,
    pub users: Users,
    pub runtime: Arc<Runtime>,
    pub faults: Arc<FaultState>,
    pub bookmark_interval: Duration,
    pub termination_delay: Duration,
}

/// What the connection layer knows about a request's connection.
pub(crate) struct ConnInfo {
    pub tls: bool,
    pub cert_user: Option<User>,
    pub closed: CancellationToken,
}

fn full(r: Response<Full<Bytes>>) -> Response<Body> {
    r.map(|b| b.boxed())
}

fn err(e: ApiError) -> Response<Body> {
    full(e.response())
}

fn ok_json(code: StatusCode, v: &Value) -> Response<Body> {
    full(json_response(code, v))
}

/// The parsed target of a resource request.
struct Target {
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

enum Route {
    Json(Value),
    Text(&'static str),
    Resource(Target),
}

fn route(path: &str) -> Result<Route, ApiError> {
    let seg: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let not_found = || {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    };
    let (group, rest): (&str, &[&str]) = match seg.as_slice() {
        ["version"] => return Ok(Route::Json(discovery::version())),
        ["healthz" | "readyz" | "livez"] => return Ok(Route::Text("ok")),
        ["api"] => return Ok(Route::Json(discovery::api_versions())),
        ["apis"] => return Ok(Route::Json(discovery::api_group_list())),
        ["api", v] => {
            return discovery::resource_list("", v)
                .map(Route::Json)
                .ok_or_else(not_found);
        }
        ["apis", g, v] => {
            return discovery::resource_list(g, v)
                .map(Route::Json)
                .ok_or_else(not_found);
        }
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", g, "v1", rest @ ..] => (*g, rest),
        _ => return Err(not_found()),
    };
    let own = |s: &&str| s.to_string();
    let t = match rest {
        ["namespaces", ns, res, tail @ ..] => Target {
            resource: res.to_string(),
            namespace: Some(ns.to_string()),
            name: tail.first().map(own),
            sub: tail.get(1).map(own),
        },
        [res, tail @ ..] => Target {
            resource: res.to_string(),
            namespace: None,
            name: tail.first().map(own),
            sub: tail.get(1).map(own),
        },
        [] => return Err(not_found()),
    };
    let info = discovery::info(&t.resource).ok_or_else(not_found)?;
    if info.group != group || (!info.namespaced && t.namespace.is_some()) || rest.len() > 5 {
        return Err(not_found());
    }
    Ok(Route::Resource(t))
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    let mut q = HashMap::new();
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()) {
        q.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    q
}

impl Api {
    fn authenticate(&self, req: &Request<Incoming>, conn: &ConnInfo) -> Result<User, ApiError> {
        if let Some(h) = req.headers().get(header::AUTHORIZATION) {
            let token = h
                .to_str()
                .ok()
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim);
            return token
                .and_then(|t| self.users.by_token(t))
                .ok_or_else(ApiError::unauthorized);
        }
        if let Some(u) = &conn.cert_user {
            return Ok(u.clone());
        }
        // kubectl sends no credentials over plain http, as if to an insecure port.
        if !conn.tls {
            return Ok(User(ADMIN.into()));
        }
        Err(ApiError::unauthorized())
    }

    pub(crate) async fn serve(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: &ConnInfo,
    ) -> Response<Body> {
        if let Some(e) = self.faults.before_request().await {
            return err(e);
        }
        let path = req.uri().path().to_string();
        let public = matches!(
            path.as_str(),
            "/version" | "/healthz" | "/readyz" | "/livez"
        );
        let user = match self.authenticate(&req, conn) {
            Ok(u) => u,
            Err(e) if !(public && req.headers().get(header::AUTHORIZATION).is_none()) => {
                return err(e);
            }
            Err(_) => User("system:anonymous".into()),
        };
        let route = match route(&path) {
            Ok(r) => r,
            Err(e) => return err(e),
        };
        match route {
            Route::Json(v) => ok_json(StatusCode::OK, &v),
            Route::Text(t) => full(Response::new(Full::new(Bytes::from_static(t.as_bytes())))),
            Route::Resource(t) => match self.resource(req, t, &user, conn).await {
                Ok(r) => r,
                Err(e) => err(e),
            },
        }
    }

    async fn resource(
        &self,
        req: Request<Incoming>,
        t: Target,
        user: &User,
        conn: &ConnInfo,
    ) -> Result<Response<Body>, ApiError> {
        let q = query(&req);
        let watch = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
        let verb = match (req.method(), &t.name, &t.sub) {
            (&Method::GET, Some(_), Some(s)) if s == "portforward" => "get",
            (&Method::POST, Some(_), Some(s)) if s == "portforward" => "create",
            (&Method::GET, Some(_), Some(s)) if s == "scale" && scalable(&t.resource) => "get",
            (&Method::PUT, Some(_), Some(s)) if s == "scale" && scalable(&t.resource) => "update",
            (&Method::PATCH, Some(_), Some(s)) if s == "scale" && scalable(&t.resource) => "patch",
            (_, Some(_), Some(_)) => {
                return Err(ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ));
            }
            (&Method::GET, Some(_), None) => "get",
            (&Method::GET, None, _) if watch => "watch",
            (&Method::GET, None, _) => "list",
            (&Method::POST, None, _) => "create",
            (&Method::PUT, Some(_), None) => "update",
            (&Method::PATCH, Some(_), None) => "patch",
            (&Method::DELETE, Some(_), None) => "delete",
            _ => {
                return Err(ApiError::new(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                ));
            }
        };
        let full_resource = match &t.sub {
            Some(s) => format!("{}/{s}", t.resource),
            None => t.resource.clone(),
        };
        let ns = t.namespace.clone().unwrap_or_default();
        let name = t.name.clone().unwrap_or_default();
        if !self.users.can(user, verb, &full_resource) {
            return Err(ApiError::forbidden(
                &user.0,
                verb,
                &t.resource,
                t.sub.as_deref().unwrap_or(""),
                &ns,
                &name,
            ));
        }
        match verb {
            _ if t.sub.as_deref() == Some("scale") => {
                self.scale(req, verb, &t.resource, &ns, &name).await
            }
            "get" if t.sub.is_some() => self.portforward(req, &ns, &name),
            "get" => {
                let obj = self
                    .store
                    .get(&t.resource, &ns, &name)
                    .ok_or_else(|| ApiError::not_found(&t.resource, &name))?;
                Ok(ok_json(StatusCode::OK, &obj))
            }
            "list" => self.list(&req, &t, &q),
            "watch" => {
                let accept = req
                    .headers()
                    .get(header::ACCEPT)
                    .and_then(|a| a.to_str().ok())
                    .unwrap_or_default();
                self.watch(&t, &q, conn, crate::table::wants_table(accept))
            }
            "create" if t.sub.is_some() => self.portforward(req, &ns, &name),
            "create" => {
                let body = read_json(req).await?;
                self.create(&t.resource, &ns, body)
                    .map(|o| ok_json(StatusCode::CREATED, &o))
            }
            "patch" => {
                let ct = req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|c| c.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if !ct.starts_with("application/merge-patch+json")
                    && !ct.starts_with("application/strategic-merge-patch+json")
                {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        format!(
                            "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json; got {ct}"
                        ),
                    ));
                }
                let patch = read_json(req).await?;
                let cur = self
                    .store
                    .get(&t.resource, &ns, &name)
                    .ok_or_else(|| ApiError::not_found(&t.resource, &name))?;
                let mut merged = cur.clone();
                // Strategic merge is applied as a JSON merge patch: lists are replaced whole.
                merge_patch(&mut merged, &patch);
                self.replace(&t.resource, &ns, &name, merged)
                    .map(|o| ok_json(StatusCode::OK, &o))
            }
            "update" => {
                let body = read_json(req).await?;
                self.replace(&t.resource, &ns, &name, body)
                    .map(|o| ok_json(StatusCode::OK, &o))
            }
            _ => {
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let opts: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let grace = q
                    .get("gracePeriodSeconds")
                    .and_then(|g| g.parse::<u64>().ok())
                    .or_else(|| opts.get("gracePeriodSeconds").and_then(Value::as_u64));
                let obj = self.delete(&t.resource, &ns, &name, grace)?;
                Ok(ok_json(StatusCode::OK, &obj))
            }
        }
    }

    /// The `autoscaling/v1 Scale` subresource of deployments, statefulsets and replicasets.
    async fn scale(
        &self,
        req: Request<Incoming>,
        verb: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Result<Response<Body>, ApiError> {
        let cur = self
            .store
            .get(resource, ns, name)
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        let as_scale = |o: &Value| {
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": name, "namespace": ns, "uid": o["metadata"]["uid"], "resourceVersion": o["metadata"]["resourceVersion"], "creationTimestamp": o["metadata"]["creationTimestamp"]},
                "spec": {"replicas": o.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
                "status": {"replicas": o.pointer("/status/replicas").cloned().unwrap_or(json!(0))}})
        };
        if verb == "get" {
            return Ok(ok_json(StatusCode::OK, &as_scale(&cur)));
        }
        let body = read_json(req).await?;
        let mut scale = as_scale(&cur);
        if verb == "patch" {
            merge_patch(&mut scale, &body);
        } else {
            scale = body;
        }
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .ok_or_else(|| ApiError::invalid(resource, name, "spec.replicas: Required value"))?;
        let updated = self
            .store
            .update(resource, ns, name, |o| {
                if o.pointer("/spec/replicas").and_then(Value::as_u64) != Some(replicas) {
                    o["spec"]["replicas"] = json!(replicas);
                    let g = o
                        .pointer("/metadata/generation")
                        .and_then(Value::as_u64)
                        .unwrap_or(1);
                    o["metadata"]["generation"] = json!(g + 1);
                }
            })
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        Ok(ok_json(StatusCode::OK, &as_scale(&updated)))
    }

    fn portforward(
        &self,
        req: Request<Incoming>,
        ns: &str,
        name: &str,
    ) -> Result<Response<Body>, ApiError> {
        let pod = self
            .store
            .get("pods", ns, name)
            .ok_or_else(|| ApiError::not_found("pods", name))?;
        let phase = pod
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // The kubelet finds no running sandbox for the pod: its error, as the API server
        // relays it. A terminating pod still forwards while its containers run.
        let not_running = || ApiError::bad_request(format!("pod not found (\"{name}_{ns}\")"));
        if phase != "Running" {
            return Err(not_running());
        }
        let (resolve, kill) = self.runtime.target(ns, name).ok_or_else(not_running)?;
        let uid = pod
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let target = crate::portforward::Target {
            namespace: ns.into(),
            pod: name.into(),
            uid,
            resolve,
            kill,
        };
        Ok(full(crate::portforward::handle(req, target)))
    }

    fn list(
        &self,
        req: &Request<Incoming>,
        t: &Target,
        q: &HashMap<String, String>,
    ) -> Result<Response<Body>, ApiError> {
        let (labels, fields) = selectors(&t.resource, q)?;
        let (items, rv) = self.store.list(&t.resource, t.namespace.as_deref());
        let mut items: Vec<Value> = items
            .into_iter()
            .filter(|o| labels.matches(&labels_of(o)) && fields.matches(o))
            .collect();
        // An exact read at a compacted revision cannot be served, as etcd cannot.
        if q.get("resourceVersionMatch").is_some_and(|m| m == "Exact") {
            let rv = q.get("resourceVersion").and_then(|r| r.parse::<u64>().ok());
            if rv.is_some_and(|rv| rv < self.store.oldest_rv()) {
                return Err(ApiError::gone(
                    "The resourceVersion for the provided list is too old.",
                ));
            }
        }
        let mut start_after = None;
        let mut list_rv = rv;
        if let Some(c) = q.get("continue").filter(|c| !c.is_empty()) {
            let (crv, key) = decode_continue(c).ok_or_else(|| ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
            if crv < self.store.oldest_rv() {
                return Err(ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ));
            }
            list_rv = crv;
            start_after = Some(key);
        }
        if let Some(after) = &start_after {
            items.retain(|o| object_key(o).as_str() > after.as_str());
        }
        let limit = q
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let mut cont = None;
        let mut remaining = None;
        if let Some(limit) = limit.filter(|l| items.len() > *l) {
            remaining = Some(items.len() - limit);
            items.truncate(limit);
            cont = items
                .last()
                .map(|o| encode_continue(list_rv, &object_key(o)));
        }
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .unwrap_or_default();
        if crate::table::wants_table(accept) {
            return Ok(ok_json(
                StatusCode::OK,
                &crate::table::table(&t.resource, &items, list_rv, cont.as_deref()),
            ));
        }
        let info = discovery::info(&t.resource)
            .ok_or_else(|| ApiError::bad_request("unknown resource"))?;
        let mut meta = json!({"resourceVersion": list_rv.to_string()});
        if let Some(c) = cont {
            meta["continue"] = json!(c);
            meta["remainingItemCount"] = json!(remaining);
        }
        let list = json!({"kind": format!("{}List", info.kind), "apiVersion": discovery::api_version(info), "metadata": meta, "items": items});
        Ok(ok_json(StatusCode::OK, &list))
    }

    fn watch(
        &self,
        t: &Target,
        q: &HashMap<String, String>,
        conn: &ConnInfo,
        as_table: bool,
    ) -> Result<Response<Body>, ApiError> {
        let (labels, fields) = selectors(&t.resource, q)?;
        let info = discovery::info(&t.resource)
            .ok_or_else(|| ApiError::bad_request("unknown resource"))?;
        let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
        let initial_end = q.get("sendInitialEvents").is_some_and(|v| v == "true");
        let timeout = q
            .get("timeoutSeconds")
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(1800);
        let rv = q
            .get("resourceVersion")
            .filter(|s| !s.is_empty() && *s != "0");
        let ns = t.namespace.clone();
        let resource = t.resource.clone();
        let matches = move |ev_resource: &str, ev_ns: &str, o: &Value| {
            ev_resource == resource
                && ns.as_deref().is_none_or(|n| n == ev_ns)
                && labels.matches(&labels_of(o))
                && fields.matches(o)
        };
        let (initial, past, mut rx, gone) = match rv {
            None => {
                let (items, _, rx) = self
                    .store
                    .snapshot_and_subscribe(&t.resource, t.namespace.as_deref());
                let items: Vec<Value> = items
                    .into_iter()
                    .filter(|o| matches(&t.resource, ns_of(o), o))
                    .collect();
                (items, Vec::new(), Some(rx), None)
            }
            Some(rv) => {
                let n: u64 = rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version \"{rv}\""))
                })?;
                match self.store.watch_from(n) {
                    Ok((past, rx)) => (Vec::new(), past, Some(rx), None),
                    Err(oldest) => (
                        Vec::new(),
                        Vec::new(),
                        None,
                        Some(format!("too old resource version: {n} ({oldest})")),
                    ),
                }
            }
        };
        let (mut tx, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(64);
        let store = self.store.clone();
        let interval = self.bookmark_interval;
        let closed = conn.closed.clone();
        let kind = info.kind;
        let api_version = discovery::api_version(info);
        let table_resource = t.resource.clone();
        tokio::spawn(async move {
            // kubectl's `get -w` asks for each event's object as a one-row Table.
            let line = |mut v: Value| {
                if as_table && v["type"] != "ERROR" && v["type"] != "BOOKMARK" {
                    let rv = v
                        .pointer("/object/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0);
                    v["object"] = crate::table::table(
                        &table_resource,
                        std::slice::from_ref(&v["object"]),
                        rv,
                        None,
                    );
                }
                let mut b = serde_json::to_vec(&v).unwrap_or_default();
                b.push(b'\n');
                Bytes::from(b)
            };
            let bookmark = |rv: u64, initial: bool| {
                let mut meta = json!({"resourceVersion": rv.to_string()});
                if initial {
                    meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                }
                line(
                    json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": meta}}),
                )
            };
            if let Some(msg) = gone {
                let _ = tx
                    .send_data(line(
                        json!({"type": "ERROR", "object": ApiError::gone(msg).to_json()}),
                    ))
                    .await;
                return;
            }
            let mut last_rv = store.current_rv();
            for o in initial {
                if tx
                    .send_data(line(json!({"type": "ADDED", "object": o})))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if initial_end && bookmarks {
                let _ = tx.send_data(bookmark(last_rv, true)).await;
            }
            for ev in past {
                last_rv = ev.rv;
                if let Some(l) = render(&ev, &matches)
                    && tx.send_data(line(l)).await.is_err()
                {
                    return;
                }
            }
            let Some(rx) = rx.as_mut() else { return };
            let deadline = tokio::time::sleep(Duration::from_secs(timeout));
            tokio::pin!(deadline);
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = &mut deadline => return,
                    _ = closed.cancelled() => return,
                    _ = tick.tick(), if bookmarks => {
                        if tx.send_data(bookmark(last_rv, false)).await.is_err() { return; }
                    }
                    ev = rx.recv() => match ev {
                        Ok(ev) => {
                            last_rv = ev.rv;
                            if let Some(l) = render(&ev, &matches) && tx.send_data(line(l)).await.is_err() {
                    return;
                }
                        }
                        // A watcher too slow for the event stream is closed, as the watch cache does.
                        Err(_) => return,
                    }
                }
            }
        });
        let resp = Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-cache, private")
            .body(body.boxed())
            .unwrap_or_default();
        Ok(resp)
    }

    pub(crate) fn create(
        &self,
        resource: &str,
        ns: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        let info =
            discovery::info(resource).ok_or_else(|| ApiError::bad_request("unknown resource"))?;
        let body_ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if info.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if info.namespaced && self.store.get("namespaces", "", ns).is_none() {
            return Err(ApiError::not_found("namespaces", ns));
        }
        prepare(resource, &mut obj, &self.runtime)?;
        self.store
            .create(resource, if info.namespaced { ns } else { "" }, obj)
    }

    fn replace(&self, resource: &str, ns: &str, name: &str, obj: Value) -> Result<Value, ApiError> {
        let cur = self
            .store
            .get(resource, ns, name)
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        let sent_rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        if sent_rv.is_some_and(|rv| {
            Some(rv)
                != cur
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
        }) {
            let (group, _) = (discovery::info(resource).map_or("", |i| i.group), ());
            let q = if group.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}.{group}")
            };
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {q} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                ),
            ));
        }
        let updated = self.store.update(resource, ns, name, |o| {
            for k in ["spec", "data"] {
                if let Some(v) = obj.get(k) {
                    o[k] = v.clone();
                }
            }
            for k in ["labels", "annotations"] {
                if let Some(v) = obj.pointer(&format!("/metadata/{k}")) {
                    o["metadata"][k] = v.clone();
                }
            }
            if o.pointer("/metadata/generation").is_some() && o.get("spec") != cur.get("spec") {
                let g = o
                    .pointer("/metadata/generation")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                o["metadata"]["generation"] = json!(g + 1);
            }
        });
        updated.ok_or_else(|| ApiError::not_found(resource, name))
    }

    /// Deletes an object. A pod with a grace period first gets its deletionTimestamp and
    /// goes away once its containers stopped; owned objects are collected in cascade.
    pub(crate) fn delete(
        &self,
        resource: &str,
        ns: &str,
        name: &str,
        grace: Option<u64>,
    ) -> Result<Value, ApiError> {
        let obj = self
            .store
            .get(resource, ns, name)
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        if resource == "pods" {
            let grace = grace
                .or_else(|| {
                    obj.pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_u64)
                })
                .unwrap_or(30);
            if grace > 0 {
                if terminating(&obj) {
                    return Ok(obj);
                }
                let at = crate::time::rfc3339(SystemTime::now() + Duration::from_secs(grace));
                let marked = self.store.update("pods", ns, name, |o| {
                    o["metadata"]["deletionTimestamp"] = json!(at);
                    o["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                });
                let (store, runtime) = (self.store.clone(), self.runtime.clone());
                let (ns, name) = (ns.to_string(), name.to_string());
                let uid = obj.pointer("/metadata/uid").cloned();
                // Sim containers exit as soon as they are signalled, so the pod is gone
                // well before its grace period ends.
                let delay = self.termination_delay.min(Duration::from_secs(grace));
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    runtime.stop_pod(&ns, &name);
                    if store
                        .get("pods", &ns, &name)
                        .and_then(|o| o.pointer("/metadata/uid").cloned())
                        == uid
                    {
                        store.delete("pods", &ns, &name);
                    }
                });
                return Ok(marked.unwrap_or(obj));
            }
            self.runtime.stop_pod(ns, name);
        }
        let deleted = self
            .store
            .delete(resource, ns, name)
            .ok_or_else(|| ApiError::not_found(resource, name))?;
        self.collect_garbage(ns, &deleted);
        if resource == "namespaces" {
            for info in discovery::RESOURCES.iter().filter(|i| i.namespaced) {
                for o in self.store.list(info.name, Some(name)).0 {
                    let n = o
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let _ = self.delete(info.name, name, n, Some(0));
                }
            }
        }
        Ok(deleted)
    }

    fn collect_garbage(&self, ns: &str, owner: &Value) {
        let Some(uid) = owner.pointer("/metadata/uid").and_then(Value::as_str) else {
            return;
        };
        for info in discovery::RESOURCES.iter().filter(|i| i.namespaced) {
            for o in self.store.list(info.name, Some(ns)).0 {
                let owned = o
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|r| r.iter().any(|r| r["uid"].as_str() == Some(uid)));
                if owned {
                    let n = o
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let _ = self.delete(info.name, ns, n, None);
                }
            }
        }
    }
}

fn render(ev: &Event, matches: &impl Fn(&str, &str, &Value) -> bool) -> Option<Value> {
    let now = matches(&ev.resource, &ev.namespace, &ev.object);
    let before = ev
        .old
        .as_ref()
        .is_some_and(|o| matches(&ev.resource, &ev.namespace, o));
    let ty = match ev.kind {
        EventType::Modified if now && before => "MODIFIED",
        EventType::Modified if now => "ADDED",
        EventType::Modified if before => "DELETED",
        EventType::Modified => return None,
        k if now => k.as_str(),
        _ => return None,
    };
    Some(json!({"type": ty, "object": ev.object}))
}

fn scalable(resource: &str) -> bool {
    ["deployments", "statefulsets", "replicasets"].contains(&resource)
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (k, v) in p {
        if v.is_null() {
            target.as_object_mut().map(|t| t.remove(k));
        } else {
            merge_patch(&mut target[k], v);
        }
    }
}

fn ns_of(o: &Value) -> &str {
    o.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn object_key(o: &Value) -> String {
    format!(
        "{}/{}",
        ns_of(o),
        o.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
}

fn selectors(
    resource: &str,
    q: &HashMap<String, String>,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    fields
        .check_supported(resource)
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

// Continue tokens carry the list's resourceVersion and the last key returned, as upstream's do.
fn encode_continue(rv: u64, key: &str) -> String {
    let v = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": key});
    base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
}

fn decode_continue(token: &str) -> Option<(u64, String)> {
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    Some((v["rv"].as_u64()?, v["start"].as_str()?.to_string()))
}

async fn read_json(req: Request<Incoming>) -> Result<Value, ApiError> {
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .to_bytes();
    serde_json::from_slice(&body)
        .or_else(|_| serde_yaml::from_slice(&body))
        .map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(
            route("/api/v1/namespaces/demo/pods/web-0/portforward"),
            Ok(Route::Resource(Target { sub: Some(_), .. }))
        ));
        assert!(matches!(
            route("/apis/apps/v1/deployments"),
            Ok(Route::Resource(Target {
                namespace: None,
                ..
            }))
        ));
        assert!(route("/api/v1/deployments").is_err());
        assert!(route("/apis/apps/v1/namespaces/x/pods").is_err());
        assert!(matches!(
            route("/api/v1/namespaces/demo"),
            Ok(Route::Resource(Target { name: Some(_), .. }))
        ));
    }

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut v = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut v, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(v, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn continue_tokens_round_trip() {
        assert_eq!(
            decode_continue(&encode_continue(7, "ns/a")),
            Some((7, "ns/a".to_string()))
        );
        assert_eq!(decode_continue("!!"), None);
    }
}
