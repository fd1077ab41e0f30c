//! A forward to be written into kftray.toml, as the commands that write one (`add`, `import`)
//! build it, and the TOML table it becomes.
//!
//! Keys are written in one order (target, where, ports, the rest), and a key whose value is
//! what `[defaults]` already gives is left out, so that imported forwards read like the ones
//! a person writes.

use crate::config::{HttpLog, LocalPort, PortRef, Protocol, format_duration, size_text};
use toml_edit::{Array, InlineTable, Item, Table, value};

/// What a forward reaches: the kftray.toml key that names the kind, and its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DraftTarget {
    Service(String),
    Selector(String),
    Pod(String),
    Deployment(String),
    StatefulSet(String),
    DaemonSet(String),
    Proxy(String),
}

impl DraftTarget {
    pub fn key(&self) -> &'static str {
        match self {
            DraftTarget::Service(_) => "service",
            DraftTarget::Selector(_) => "selector",
            DraftTarget::Pod(_) => "pod",
            DraftTarget::Deployment(_) => "deployment",
            DraftTarget::StatefulSet(_) => "statefulset",
            DraftTarget::DaemonSet(_) => "daemonset",
            DraftTarget::Proxy(_) => "proxy",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            DraftTarget::Service(v)
            | DraftTarget::Selector(v)
            | DraftTarget::Pod(v)
            | DraftTarget::Deployment(v)
            | DraftTarget::StatefulSet(v)
            | DraftTarget::DaemonSet(v)
            | DraftTarget::Proxy(v) => v,
        }
    }
}

/// One port pair. `local: None` writes only `remote_port` (the same number locally).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortPair {
    pub local: Option<LocalPort>,
    pub remote: PortRef,
}

impl PortPair {
    /// The local port this pair listens on, when it is a fixed number.
    pub fn fixed_local(&self) -> Option<u16> {
        match (&self.local, &self.remote) {
            (Some(LocalPort::Fixed(n)), _) | (None, PortRef::Number(n)) => Some(*n),
            _ => None,
        }
    }

    /// `"LOCAL:REMOTE"` as a `ports` entry, or `"PORT"` when both are one number.
    pub fn entry(&self) -> String {
        match (&self.local, &self.remote) {
            (None, remote) => remote.to_string(),
            (Some(LocalPort::Fixed(l)), PortRef::Number(r)) if l == r => r.to_string(),
            (Some(local), remote) => format!("{local}:{remote}"),
        }
    }
}

/// A forward to write. `ports` with one pair becomes `local_port`/`remote_port`, with several a
/// `ports` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub alias: String,
    pub target: DraftTarget,
    /// None: every port the target declares (`ports = "all"`).
    pub ports: Vec<PortPair>,
    pub namespace: Option<String>,
    pub context: Option<String>,
    pub kubeconfig: Option<String>,
    pub local_address: Option<String>,
    pub expose_to_network: bool,
    pub protocol: Protocol,
    pub domain: Option<String>,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub http_log: Option<HttpLog>,
    /// The name the forward had where it came from (a kftray alias), kept in `description`
    /// whenever the alias it gets here differs.
    pub source_name: Option<String>,
}

impl Draft {
    pub fn new(alias: impl Into<String>, target: DraftTarget, ports: Vec<PortPair>) -> Draft {
        Draft {
            alias: alias.into(),
            target,
            ports,
            namespace: None,
            context: None,
            kubeconfig: None,
            local_address: None,
            expose_to_network: false,
            protocol: Protocol::Tcp,
            domain: None,
            enabled: true,
            tags: Vec::new(),
            description: None,
            http_log: None,
            source_name: None,
        }
    }

    /// The same forward under another alias; the name it came with goes to `description`
    /// (unless it has one) so that it is not lost.
    pub fn with_alias(&self, alias: &str) -> Draft {
        let mut d = self.clone();
        d.alias = alias.to_owned();
        if d.description.is_none() {
            d.description = self.source_name.clone().filter(|name| name != alias);
        }
        d
    }

    /// The table for `[forwards.<alias>]`. Keys equal to what `defaults` already gives are
    /// left out.
    pub fn to_table(&self, defaults: &Inherited) -> Table {
        let mut t = Table::new();
        t[self.target.key()] = value(self.target.value());
        for (key, v) in [
            ("namespace", &self.namespace),
            ("context", &self.context),
            ("kubeconfig", &self.kubeconfig),
            ("local_address", &self.local_address),
        ] {
            if let Some(v) = defaults.unless_given(key, v) {
                t[key] = value(v);
            }
        }
        if self.expose_to_network {
            t["expose_to_network"] = value(true);
        }
        match self.ports.as_slice() {
            [one] => {
                if let Some(local) = &one.local {
                    t["local_port"] = match local {
                        LocalPort::Fixed(n) => value(i64::from(*n)),
                        LocalPort::Any => value("any"),
                    };
                }
                t["remote_port"] = match &one.remote {
                    PortRef::Number(n) => value(i64::from(*n)),
                    PortRef::Name(name) => value(name.as_str()),
                };
            }
            [] => t["ports"] = value("all"),
            many => {
                let mut list = Array::new();
                for pair in many {
                    list.push(pair.entry());
                }
                t["ports"] = value(list);
            }
        }
        if self.protocol != Protocol::Tcp {
            t["protocol"] = value(self.protocol.to_string());
        }
        if let Some(domain) = &self.domain {
            t["domain"] = value(domain.as_str());
        }
        if !self.enabled {
            t["enabled"] = value(false);
        }
        if !self.tags.is_empty() {
            let mut tags = Array::new();
            for tag in &self.tags {
                tags.push(tag.as_str());
            }
            t["tags"] = value(tags);
        }
        if let Some(description) = &self.description {
            t["description"] = value(description.as_str());
        }
        if let Some(log) = &self.http_log {
            t["http_log"] = http_log_value(log);
        }
        t
    }
}

/// `true` for the built-in settings, else an inline table of the ones that differ.
fn http_log_value(log: &HttpLog) -> Item {
    let defaults = HttpLog::default();
    let mut table = InlineTable::new();
    if log.max_file_size != defaults.max_file_size {
        table.insert("max_file_size", size_text(log.max_file_size).into());
    }
    if log.retention != defaults.retention {
        let retention = log.retention.map_or("forever".into(), format_duration);
        table.insert("retention", retention.into());
    }
    if log.body_limit != defaults.body_limit {
        table.insert("body_limit", size_text(log.body_limit).into());
    }
    let listed = |names: Vec<&String>| names.into_iter().map(String::as_str).collect::<Array>();
    let added: Vec<&String> = log
        .redact
        .iter()
        .filter(|h| !HttpLog::SECRET_HEADERS.contains(&h.as_str()))
        .collect();
    if !added.is_empty() {
        table.insert("redact", listed(added).into());
    }
    let revealed: Vec<String> = HttpLog::SECRET_HEADERS
        .iter()
        .filter(|h| !log.redact.iter().any(|r| r == *h))
        .map(|h| h.to_string())
        .collect();
    if !revealed.is_empty() {
        table.insert("reveal", listed(revealed.iter().collect()).into());
    }
    if table.is_empty() {
        value(true)
    } else {
        value(table)
    }
}

/// The string values of a file's `[defaults]` (context, kubeconfig, namespace,
/// local_address), which a new forward inherits without repeating them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inherited {
    values: Vec<(String, String)>,
}

impl Inherited {
    pub fn from_document(doc: &toml_edit::DocumentMut) -> Inherited {
        let values = doc
            .get("defaults")
            .and_then(Item::as_table_like)
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| Some((k.to_owned(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Inherited { values }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `value`, unless `[defaults]` gives it for `key` already.
    pub fn unless_given<'a>(&self, key: &str, value: &'a Option<String>) -> Option<&'a str> {
        value.as_deref().filter(|v| self.get(key) != Some(*v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(draft: &Draft, defaults: &str) -> String {
        let doc: toml_edit::DocumentMut = defaults.parse().unwrap();
        draft.to_table(&Inherited::from_document(&doc)).to_string()
    }

    #[test]
    fn keys_come_in_a_fixed_order_and_inherited_ones_are_left_out() {
        let mut d = Draft::new(
            "api",
            DraftTarget::Service("orders".into()),
            vec![PortPair {
                local: Some(LocalPort::Fixed(8081)),
                remote: PortRef::Name("http".into()),
            }],
        );
        d.namespace = Some("shop".into());
        d.context = Some("staging".into());
        d.protocol = Protocol::Udp;
        d.tags = vec!["backend".into()];
        d.description = Some("Orders API".into());
        assert_eq!(
            render(&d, "[defaults]\nnamespace = \"shop\"\n"),
            "service = \"orders\"\ncontext = \"staging\"\nlocal_port = 8081\n\
             remote_port = \"http\"\nprotocol = \"udp\"\ntags = [\"backend\"]\n\
             description = \"Orders API\"\n"
        );
    }

    #[test]
    fn several_pairs_become_a_ports_list() {
        let d = Draft::new(
            "ledger",
            DraftTarget::Selector("app=ledger".into()),
            vec![
                PortPair {
                    local: Some(LocalPort::Fixed(8080)),
                    remote: PortRef::Name("http".into()),
                },
                PortPair {
                    local: Some(LocalPort::Fixed(9090)),
                    remote: PortRef::Number(9090),
                },
                PortPair {
                    local: Some(LocalPort::Any),
                    remote: PortRef::Name("admin".into()),
                },
            ],
        );
        assert_eq!(
            render(&d, ""),
            "selector = \"app=ledger\"\nports = [\"8080:http\", \"9090\", \"any:admin\"]\n"
        );
    }
}
