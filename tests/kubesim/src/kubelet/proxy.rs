//! kube-proxy's job: Services and their EndpointSlices mirrored from the API server into the
//! runtime's store, and a listener on each ClusterIP:port that connects to a ready endpoint.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use serde::Serialize;
use serde_json::Value;

use crate::runtime::Runtime;
use crate::store::Store;

pub(super) async fn run(client: kube::Client, store: Store, runtime: Arc<Runtime>) {
    let slices = tokio::spawn(mirror::<EndpointSlice>(
        Api::all(client.clone()),
        "endpointslices",
        store.clone(),
        None,
    ));
    mirror::<Service>(Api::all(client), "services", store, Some(runtime)).await;
    slices.abort();
}

/// Keeps `store` equal to the API server's objects of one kind; for Services, the
/// runtime's proxies follow.
async fn mirror<K>(api: Api<K>, resource: &str, store: Store, runtime: Option<Arc<Runtime>>)
where
    K: kube::Resource + Clone + std::fmt::Debug + Serialize + serde::de::DeserializeOwned,
    K: Send + 'static,
{
    let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut listing: HashSet<(String, String)> = HashSet::new();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("watching {resource}: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        match event {
            Event::Init => listing.clear(),
            Event::InitApply(obj) => {
                listing.insert(put(&store, resource, &obj, runtime.as_deref()).await);
            }
            Event::InitDone => {
                // A relist: what was not listed again is gone.
                for (ns, name) in seen.difference(&listing) {
                    store.delete(resource, ns, name);
                }
                seen = std::mem::take(&mut listing);
                forget(&seen, runtime.as_deref());
            }
            Event::Apply(obj) => {
                seen.insert(put(&store, resource, &obj, runtime.as_deref()).await);
            }
            Event::Delete(obj) => {
                let key = key_of(&obj);
                store.delete(resource, &key.0, &key.1);
                seen.remove(&key);
                forget(&seen, runtime.as_deref());
            }
        }
    }
}

fn key_of<K: kube::Resource>(obj: &K) -> (String, String) {
    let meta = obj.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

async fn put<K: kube::Resource + Serialize>(
    store: &Store,
    resource: &str,
    obj: &K,
    runtime: Option<&Runtime>,
) -> (String, String) {
    let key = key_of(obj);
    let value = serde_json::to_value(obj).unwrap_or(Value::Null);
    if store
        .update(resource, &key.0, &key.1, |o| *o = value.clone())
        .is_none()
    {
        let _ = store.create(resource, &key.0, value.clone());
    }
    if let Some(runtime) = runtime {
        runtime.sync_service(&value).await;
    }
    key
}

fn forget(keep: &HashSet<(String, String)>, runtime: Option<&Runtime>) {
    if let Some(runtime) = runtime {
        let keep: Vec<(String, String)> = keep.iter().cloned().collect();
        runtime.forget_services_except(&keep);
    }
}
