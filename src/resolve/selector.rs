//! Label selectors: read from a workload, and written in the query syntax the API takes.

use crate::api_error::describe;
use crate::target::WorkloadKind;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use std::collections::BTreeMap;
use std::fmt;

/// Why a workload's selector is not known (yet); `kind` is lowercase, as kubectl writes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum SelectorError {
    #[error("{kind} {name} has an empty selector")]
    Empty { kind: String, name: String },
    #[error("waiting for {kind} {name} to exist")]
    Missing { kind: String, name: String },
    #[error("reading {kind} {name}: {reason}")]
    Unreadable {
        kind: String,
        name: String,
        reason: String,
    },
}

/// The label selector of a workload, in query syntax.
pub(super) async fn workload_selector(
    client: &kube::Client,
    namespace: &str,
    kind: WorkloadKind,
    name: &str,
) -> Result<String, SelectorError> {
    async fn selector_of<K>(
        client: &kube::Client,
        namespace: &str,
        name: &str,
        selector: impl Fn(&K) -> &LabelSelector,
    ) -> Result<String, SelectorError>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        let kind = K::kind(&K::DynamicType::default()).to_lowercase();
        let name = name.to_owned();
        match api.get_opt(&name).await {
            Ok(Some(object)) => Some(label_selector_string(selector(&object)))
                .filter(|s| !s.is_empty())
                .ok_or(SelectorError::Empty { kind, name }),
            Ok(None) => Err(SelectorError::Missing { kind, name }),
            Err(e) => Err(SelectorError::Unreadable {
                kind,
                name,
                reason: describe(&e),
            }),
        }
    }
    match kind {
        WorkloadKind::Deployment => {
            selector_of::<Deployment>(client, namespace, name, |d| &d.spec.selector).await
        }
        WorkloadKind::StatefulSet => {
            selector_of::<StatefulSet>(client, namespace, name, |d| &d.spec.selector).await
        }
        WorkloadKind::DaemonSet => {
            selector_of::<DaemonSet>(client, namespace, name, |d| &d.spec.selector).await
        }
    }
}

/// Labels as a selector that matches exactly them.
pub(super) fn selector_string(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A `LabelSelector` (matchLabels and matchExpressions) in the query syntax the API takes.
pub fn label_selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default().join(",");
        parts.push(match expr.operator.as_str() {
            "In" => format!("{} in ({values})", expr.key),
            "NotIn" => format!("{} notin ({values})", expr.key),
            "Exists" => expr.key.clone(),
            "DoesNotExist" => format!("!{}", expr.key),
            other => format!("{} {other} ({values})", expr.key),
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_print_in_query_syntax() {
        let selector: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert_eq!(
            label_selector_string(&selector),
            "app=web,tier in (a,b),!canary"
        );
    }
}
