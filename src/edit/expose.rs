//! A reverse forward to be written into kftray.toml (`[exposes.<alias>]`), as `import` builds
//! it, and the TOML table it becomes.
//!
//! Keys come in the order the README shows them, and a key whose value is the default (or
//! what `[defaults]` already gives) is left out, as for a forward.

use super::Inherited;
use crate::config::{Ingress, IngressTls, Protocol};
use toml_edit::{InlineTable, Table, value};

/// An expose to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposeDraft {
    pub alias: String,
    /// The port the server on this machine listens on.
    pub local_port: u16,
    /// The address it listens on; None: 127.0.0.1.
    pub local_address: Option<String>,
    /// The Service's name.
    pub service: String,
    /// The Service's port.
    pub port: u16,
    /// What the local server speaks.
    pub protocol: Protocol,
    pub namespace: Option<String>,
    pub context: Option<String>,
    pub kubeconfig: Option<String>,
    pub enabled: bool,
    pub description: Option<String>,
    pub ingress: Option<Ingress>,
}

impl ExposeDraft {
    /// The server on `local_port` as Service `service`, on the same port.
    pub fn new(alias: impl Into<String>, service: impl Into<String>, local_port: u16) -> Self {
        ExposeDraft {
            alias: alias.into(),
            local_port,
            local_address: None,
            service: service.into(),
            port: local_port,
            protocol: Protocol::Tcp,
            namespace: None,
            context: None,
            kubeconfig: None,
            enabled: true,
            description: None,
            ingress: None,
        }
    }

    /// The same expose under another alias. Its Service keeps its name, which says where it
    /// came from.
    pub fn with_alias(&self, alias: &str) -> Self {
        ExposeDraft {
            alias: alias.to_owned(),
            ..self.clone()
        }
    }

    /// The table for `[exposes.<alias>]`.
    pub fn to_table(&self, defaults: &Inherited) -> Table {
        let mut t = Table::new();
        t["local_port"] = value(i64::from(self.local_port));
        if let Some(address) = &self.local_address {
            t["local_address"] = value(address.as_str());
        }
        if self.service != self.alias {
            t["service"] = value(self.service.as_str());
        }
        if self.port != self.local_port {
            t["port"] = value(i64::from(self.port));
        }
        if self.protocol != Protocol::Tcp {
            t["protocol"] = value(self.protocol.to_string());
        }
        for (key, v) in [
            ("namespace", &self.namespace),
            ("context", &self.context),
            ("kubeconfig", &self.kubeconfig),
        ] {
            if let Some(v) = defaults.unless_given(key, v) {
                t[key] = value(v);
            }
        }
        if !self.enabled {
            t["enabled"] = value(false);
        }
        if let Some(description) = &self.description {
            t["description"] = value(description.as_str());
        }
        if let Some(ingress) = &self.ingress {
            t["ingress"] = value(ingress_table(ingress, &self.service));
        }
        t
    }
}

/// `ingress = { ... }`, inline: one entry stays one table, which is what a merge compares
/// and replaces key by key.
fn ingress_table(ingress: &Ingress, service: &str) -> InlineTable {
    let mut t = InlineTable::new();
    t.insert("host", ingress.host.as_str().into());
    if ingress.path != "/" {
        t.insert("path", ingress.path.as_str().into());
    }
    if let Some(class) = &ingress.class {
        t.insert("class", class.as_str().into());
    }
    if !ingress.annotations.is_empty() {
        let annotations: InlineTable = ingress
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), toml_edit::Value::from(v.as_str())))
            .collect();
        t.insert("annotations", annotations.into());
    }
    if let Some(tls) = &ingress.tls {
        if let Some(issuer) = &tls.issuer {
            t.insert("cert_issuer", issuer.name.as_str().into());
            if issuer.namespaced {
                t.insert("cert_issuer_kind", "Issuer".into());
            }
        }
        if tls.issuer.is_none() || tls.secret != IngressTls::default_secret(service) {
            t.insert("tls_secret", tls.secret.as_str().into());
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CertIssuer;

    #[test]
    fn defaults_are_left_out_and_the_ingress_is_one_inline_table() {
        let mut d = ExposeDraft::new("hook", "hook", 3000);
        d.namespace = Some("shop".into());
        let doc: toml_edit::DocumentMut = "[defaults]\nnamespace = \"shop\"\n".parse().unwrap();
        let inherited = Inherited::from_document(&doc);
        assert_eq!(d.to_table(&inherited).to_string(), "local_port = 3000\n");

        let mut d = d.with_alias("hook-2");
        d.port = 80;
        d.local_address = Some("127.0.0.2".into());
        d.ingress = Some(Ingress {
            host: "hook.dev.example.com".into(),
            path: "/".into(),
            class: Some("nginx".into()),
            annotations: [(
                "nginx.ingress.kubernetes.io/proxy-body-size".into(),
                "10m".into(),
            )]
            .into(),
            tls: Some(IngressTls {
                secret: IngressTls::default_secret("hook"),
                issuer: Some(CertIssuer {
                    namespaced: true,
                    name: "letsencrypt".into(),
                }),
            }),
        });
        assert_eq!(
            d.to_table(&Inherited::default()).to_string(),
            "local_port = 3000\nlocal_address = \"127.0.0.2\"\nservice = \"hook\"\nport = 80\n\
             namespace = \"shop\"\ningress = { host = \"hook.dev.example.com\", class = \"nginx\", \
             annotations = { \"nginx.ingress.kubernetes.io/proxy-body-size\" = \"10m\" }, \
             cert_issuer = \"letsencrypt\", cert_issuer_kind = \"Issuer\" }\n"
        );
    }
}
