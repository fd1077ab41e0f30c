//! Users: bearer tokens, client certificates and per-user permissions (RBAC reduced to
//! "everything, minus what a test takes away").

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User(pub String);

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, String>,
    certs: HashMap<Vec<u8>, String>,
    // (user, verb, resource-with-subresource); "*" matches any verb.
    denied: HashSet<(String, String, String)>,
}

#[derive(Clone, Default)]
pub struct Users {
    inner: Arc<Mutex<Inner>>,
}

impl Users {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_token(&self, token: &str, user: &str) {
        self.lock().tokens.insert(token.into(), user.into());
    }

    pub fn revoke_token(&self, token: &str) {
        self.lock().tokens.remove(token);
    }

    pub fn add_cert(&self, der: Vec<u8>, user: &str) {
        self.lock().certs.insert(der, user.into());
    }

    pub fn by_token(&self, token: &str) -> Option<User> {
        self.lock().tokens.get(token).cloned().map(User)
    }

    pub fn by_cert(&self, der: &[u8]) -> Option<User> {
        self.lock().certs.get(der).cloned().map(User)
    }

    /// Takes away `verb` (or "*") on `resource` ("pods", "pods/portforward") from `user`.
    pub fn deny(&self, user: &str, verb: &str, resource: &str) {
        self.lock()
            .denied
            .insert((user.into(), verb.into(), resource.into()));
    }

    pub fn allow(&self, user: &str, verb: &str, resource: &str) {
        self.lock()
            .denied
            .remove(&(user.into(), verb.into(), resource.into()));
    }

    pub fn can(&self, user: &User, verb: &str, resource: &str) -> bool {
        let inner = self.lock();
        ![verb, "*"].iter().any(|v| {
            inner
                .denied
                .contains(&(user.0.clone(), v.to_string(), resource.to_string()))
        })
    }
}
