//! `ingress = { ... }` of an expose: an Ingress in front of its Service.

use super::Context;
use crate::config::checks::{check_key, is_dns_subdomain};
use crate::config::diagnostic::Issue;
use crate::config::effective::{CertIssuer, Ingress, IngressTls};
use crate::config::model::{At, IngressSpec};

impl Context<'_> {
    /// The Ingress of the expose whose Service is `service`, if it is whole.
    pub(super) fn ingress(
        &self,
        spec: &At<IngressSpec>,
        service: &str,
        issues: &mut Vec<Issue>,
    ) -> Option<Ingress> {
        let alias = self.alias;
        let before = issues.len();
        let host = match &spec.value.host {
            Some(h) if is_ingress_host(&h.value) => Some(h.value.clone()),
            Some(h) => {
                issues.push(
                    Issue::new(
                        "kftray::ingress",
                        format!("`{}` is not a host name an Ingress can answer for", h.value),
                    )
                    .label(h.span.clone(), "not a lowercase DNS name")
                    .help("write a name such as \"webhook.dev.example.com\", or \"*.dev.example.com\""),
                );
                None
            }
            // Written wrong, it was reported as such.
            None if self.rejected.iter().any(|k| k == "ingress.host") => None,
            None => {
                issues.push(
                    Issue::new(
                        "kftray::ingress",
                        format!("the ingress of `{alias}` names no host"),
                    )
                    .label(spec.span.clone(), "which name does it answer for?")
                    .help("add host = \"webhook.dev.example.com\""),
                );
                None
            }
        };
        let path = match &spec.value.path {
            None => "/".to_owned(),
            Some(p) if p.value.starts_with('/') && !p.value.contains(char::is_whitespace) => {
                p.value.clone()
            }
            Some(p) => {
                issues.push(
                    Issue::new(
                        "kftray::ingress",
                        format!("`{}` is not a path an Ingress routes", p.value),
                    )
                    .label(p.span.clone(), "a path starts with '/' and has no spaces")
                    .help("write path = \"/\" or a prefix such as \"/hooks\""),
                );
                "/".to_owned()
            }
        };
        let class = spec.value.class.as_ref().map(|c| {
            self.object_name(c, "an IngressClass", issues);
            c.value.clone()
        });
        let annotations = spec
            .value
            .annotations
            .as_ref()
            .map(|a| {
                for key in a.value.keys() {
                    if let Err(flaw) = check_key(key, 0) {
                        let message = flaw.message.replace("label key", "annotation key");
                        issues.push(
                            Issue::new("kftray::ingress", message)
                                .label(a.span.clone(), format!("in `{key}`"))
                                .help(
                                    "an annotation's key is `name` or `prefix/name`, as a label's",
                                ),
                        );
                    }
                }
                a.value.clone()
            })
            .unwrap_or_default();
        let issuer = self.issuer(&spec.value, issues);
        if let Some(secret) = &spec.value.tls_secret {
            self.object_name(secret, "a Secret", issues);
        }
        let tls = match (&spec.value.tls_secret, issuer) {
            (None, None) => None,
            (secret, issuer) => Some(IngressTls {
                secret: secret
                    .as_ref()
                    .map_or_else(|| IngressTls::default_secret(service), |s| s.value.clone()),
                issuer,
            }),
        };
        if issues.len() > before {
            return None;
        }
        Some(Ingress {
            host: host?,
            path,
            class,
            annotations,
            tls,
        })
    }

    fn issuer(&self, spec: &IngressSpec, issues: &mut Vec<Issue>) -> Option<CertIssuer> {
        let namespaced = match &spec.cert_issuer_kind {
            None => false,
            Some(k) if k.value == "ClusterIssuer" => false,
            Some(k) if k.value == "Issuer" => true,
            Some(k) => {
                issues.push(
                    Issue::new(
                        "kftray::ingress",
                        format!("`{}` is not a cert-manager issuer kind", k.value),
                    )
                    .label(k.span.clone(), "not ClusterIssuer or Issuer")
                    .help("write cert_issuer_kind = \"ClusterIssuer\" or \"Issuer\""),
                );
                false
            }
        };
        match (&spec.cert_issuer, &spec.cert_issuer_kind) {
            (Some(name), _) => {
                self.object_name(name, "a cert-manager issuer", issues);
                Some(CertIssuer {
                    namespaced,
                    name: name.value.clone(),
                })
            }
            (None, Some(kind)) => {
                issues.push(
                    Issue::new(
                        "kftray::ingress",
                        "cert_issuer_kind says which kind of issuer, but no cert_issuer is named",
                    )
                    .label(kind.span.clone(), "the kind of which issuer?")
                    .help("add cert_issuer = \"letsencrypt-prod\", or remove cert_issuer_kind"),
                );
                None
            }
            (None, None) => None,
        }
    }

    /// A Kubernetes object's name: a DNS subdomain.
    fn object_name(&self, name: &At<String>, what: &str, issues: &mut Vec<Issue>) {
        if !is_dns_subdomain(&name.value) {
            issues.push(
                Issue::new(
                    "kftray::ingress",
                    format!("`{}` cannot name {what}", name.value),
                )
                .label(name.span.clone(), "not a DNS subdomain")
                .help("lowercase letters, digits, '-' and '.', at most 253"),
            );
        }
    }
}

/// A host an Ingress rule accepts: a lowercase DNS subdomain, its first label possibly `*`,
/// never an IP address.
fn is_ingress_host(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_err()
        && is_dns_subdomain(host.strip_prefix("*.").unwrap_or(host))
}

#[cfg(test)]
mod tests {
    use super::is_ingress_host;

    #[test]
    fn ingress_hosts() {
        for good in ["webhook.dev.example.com", "*.dev.example.com", "local"] {
            assert!(is_ingress_host(good), "{good}");
        }
        for bad in [
            "10.0.0.1",
            "Web.example.com",
            "*",
            "a..b",
            "*.com.",
            "",
            "-a.b",
        ] {
            assert!(!is_ingress_host(bad), "{bad}");
        }
    }
}
