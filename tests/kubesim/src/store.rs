//! The object store: JSON objects keyed by (resource, namespace, name), one resourceVersion
//! counter as etcd's revision, and a bounded event history that watches resume from.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::status::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventType,
    pub resource: String,
    pub namespace: String,
    pub rv: u64,
    pub object: Value,
    // The object before a MODIFIED, so selector watches can tell entering from leaving.
    pub old: Option<Value>,
}

type Key = (String, String, String);

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Event>,
    // Watches from a resourceVersion older than this get 410 Gone.
    oldest_rv: u64,
}

const HISTORY: usize = 20_000;

#[derive(Clone)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    tx: broadcast::Sender<Event>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(16_384);
        // Start above 1 so that clients' "0" (any) never collides with a real revision.
        let inner = Inner {
            rv: 1000,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            oldest_rv: 1000,
        };
        Self {
            inner: Arc::new(Mutex::new(inner)),
            tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn oldest_rv(&self) -> u64 {
        self.lock().oldest_rv
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        self.lock().objects.get(&key(resource, ns, name)).cloned()
    }

    /// Objects of a resource (in one namespace, or all when `ns` is None), sorted by
    /// namespace then name as etcd's key order gives them.
    pub fn list(&self, resource: &str, ns: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|((r, n, _), _)| r == resource && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    pub fn create(&self, resource: &str, ns: &str, mut obj: Value) -> Result<Value, ApiError> {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            return Err(ApiError::invalid(
                resource,
                "",
                "metadata.name: Required value: name or generateName is required",
            ));
        }
        let mut inner = self.lock();
        let k = key(resource, ns, &name);
        if inner.objects.contains_key(&k) {
            return Err(ApiError::already_exists(resource, &name));
        }
        inner.rv += 1;
        let rv = inner.rv;
        let meta = &mut obj["metadata"];
        if !ns.is_empty() {
            meta["namespace"] = json!(ns);
        }
        meta["uid"] = json!(uid());
        meta["resourceVersion"] = json!(rv.to_string());
        meta["creationTimestamp"] = json!(crate::time::now());
        if meta.get("generation").is_none()
            && ["deployments", "statefulsets", "daemonsets", "replicasets"].contains(&resource)
        {
            meta["generation"] = json!(1);
        }
        inner.objects.insert(k, obj.clone());
        self.emit(
            &mut inner,
            EventType::Added,
            resource,
            ns,
            obj.clone(),
            None,
        );
        Ok(obj)
    }

    /// Applies `f` to a stored object; an unchanged object keeps its resourceVersion and
    /// sends no event, so controllers can write their desired state unconditionally.
    pub fn update(
        &self,
        resource: &str,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        let mut inner = self.lock();
        let k = key(resource, ns, name);
        let old = inner.objects.get(&k)?.clone();
        let mut new = old.clone();
        f(&mut new);
        if new == old {
            return Some(old);
        }
        inner.rv += 1;
        new["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        inner.objects.insert(k, new.clone());
        self.emit(
            &mut inner,
            EventType::Modified,
            resource,
            ns,
            new.clone(),
            Some(old),
        );
        Some(new)
    }

    pub fn delete(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let mut inner = self.lock();
        let mut obj = inner.objects.remove(&key(resource, ns, name))?;
        inner.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.emit(
            &mut inner,
            EventType::Deleted,
            resource,
            ns,
            obj.clone(),
            None,
        );
        Some(obj)
    }

    fn emit(
        &self,
        inner: &mut Inner,
        kind: EventType,
        resource: &str,
        ns: &str,
        object: Value,
        old: Option<Value>,
    ) {
        let ev = Event {
            kind,
            resource: resource.into(),
            namespace: ns.into(),
            rv: inner.rv,
            object,
            old,
        };
        inner.history.push_back(ev.clone());
        while inner.history.len() > HISTORY {
            if let Some(old) = inner.history.pop_front() {
                inner.oldest_rv = old.rv;
            }
        }
        let _ = self.tx.send(ev);
    }

    /// Events after `rv` plus a receiver for later ones, taken atomically so none is lost
    /// or repeated. Err(oldest) when `rv` is older than the retained history.
    pub fn watch_from(&self, rv: u64) -> Result<(Vec<Event>, broadcast::Receiver<Event>), u64> {
        let inner = self.lock();
        if rv < inner.oldest_rv {
            return Err(inner.oldest_rv);
        }
        let past = inner
            .history
            .iter()
            .filter(|e| e.rv > rv)
            .cloned()
            .collect();
        Ok((past, self.tx.subscribe()))
    }

    /// Current objects plus a receiver for every later change.
    pub fn snapshot_and_subscribe(
        &self,
        resource: &str,
        ns: Option<&str>,
    ) -> (Vec<Value>, u64, broadcast::Receiver<Event>) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|((r, n, _), _)| r == resource && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv, self.tx.subscribe())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Forgets the event history, as etcd compaction does: any watch from an older
    /// resourceVersion then gets 410 Gone.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.history.clear();
        inner.oldest_rv = inner.rv;
    }
}

fn key(resource: &str, ns: &str, name: &str) -> Key {
    (resource.to_string(), ns.to_string(), name.to_string())
}

pub fn uid() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_resumes_and_expires() {
        let s = Store::new();
        let a = s
            .create("pods", "ns", json!({"metadata": {"name": "a"}}))
            .unwrap();
        let rv_a: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            s.create("pods", "ns", json!({"metadata": {"name": "a"}}))
                .is_err()
        );
        s.update("pods", "ns", "a", |o| o["x"] = json!(1));
        let unchanged = s.current_rv();
        s.update("pods", "ns", "a", |o| o["x"] = json!(1));
        assert_eq!(s.current_rv(), unchanged);
        let (past, _) = s.watch_from(rv_a).unwrap();
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].kind, EventType::Modified);
        s.compact();
        assert!(s.watch_from(rv_a).is_err());
    }
}
