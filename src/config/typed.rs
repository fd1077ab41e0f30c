//! From the merged TOML tree to the typed model, reporting every unknown key and every value
//! of the wrong type rather than stopping at the first, as serde alone would.
//!
//! Each key is deserialized on its own through the model's own serde types, so the model stays
//! the one definition of what a key accepts, and the known keys come from its JSON Schema.

use super::checks::did_you_mean;
use super::diagnostic::Issue;
use super::layer::Tree;
use super::model::{
    At, ConfigFile, Defaults, ExposeSpec, ForwardSpec, HttpLogTable, IngressSpec, ProxySpec,
    RelaySpec, SyncSpec, TrustSpec,
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

/// The typed file, plus the spans of the tables themselves (for findings about a whole table,
/// such as a forward without a target).
#[derive(Debug, Default)]
pub(crate) struct Typed {
    pub file: ConfigFile,
    pub forward_keys: BTreeMap<String, Range<usize>>,
    /// Per alias, the keys that were written but rejected (wrong type, or misspelt as an
    /// unknown key close to them), so that their absence is not reported a second time.
    pub rejected: BTreeMap<String, Vec<String>>,
    pub sync_key: Option<Range<usize>>,
    pub proxy_key: Option<Range<usize>>,
    /// The keys of `[proxy]` written but rejected, as for a forward.
    pub proxy_rejected: Vec<String>,
    /// Per expose alias, its table's span and the keys written but rejected.
    pub expose_keys: BTreeMap<String, (Range<usize>, Vec<String>)>,
}

const TOP_KEYS: [&str; 8] = [
    "version", "defaults", "forwards", "sync", "relay", "proxy", "trust", "exposes",
];

/// Keys that kftray's JSON export uses, or that users of similar tools write, and what this
/// format calls them.
const RENAMED: [(&str, &str); 8] = [
    (
        "remote_address",
        "a proxy target is written `proxy = \"host\"`",
    ),
    (
        "target",
        "a label selector target is written `selector = \"app=web\"`",
    ),
    (
        "workload_type",
        "the target key names the kind: service, selector, pod, deployment, statefulset, daemonset or proxy",
    ),
    (
        "domain_enabled",
        "write `domain = \"name.local\"` to give the forward a host name",
    ),
    (
        "port",
        "write `remote_port` (and `local_port`), or `ports = [\"LOCAL:REMOTE\"]`",
    ),
    ("alias", "the alias is the table name: `[forwards.<alias>]`"),
    (
        "labels",
        "a label selector target is written `selector = \"app=web\"`",
    ),
    ("address", "write `local_address = \"127.0.0.2\"`"),
];

pub(crate) fn typed(tree: Tree<'_>, issues: &mut Vec<Issue>) -> Typed {
    let mut out = Typed::default();
    for (key, value) in tree {
        let span = key.span();
        match key.get_ref().as_ref() {
            "version" => {
                if let Some(v) = one_value::<i64>(&key, &value, "an integer", issues) {
                    out.file.version = Some(v);
                }
            }
            "defaults" => {
                if let Some(table) = table_of(&key, value, issues) {
                    out.file.defaults = Some(typed_table::<Defaults>(
                        table,
                        "[defaults]",
                        issues,
                        &mut Vec::new(),
                    ));
                }
            }
            "sync" => {
                if let Some(table) = table_of(&key, value, issues) {
                    out.sync_key = Some(span);
                    out.file.sync = Some(typed_table::<SyncSpec>(
                        table,
                        "[sync]",
                        issues,
                        &mut Vec::new(),
                    ));
                }
            }
            "relay" => {
                if let Some(table) = table_of(&key, value, issues) {
                    out.file.relay = Some(typed_table::<RelaySpec>(
                        table,
                        "[relay]",
                        issues,
                        &mut Vec::new(),
                    ));
                }
            }
            "proxy" => {
                if let Some(table) = table_of(&key, value, issues) {
                    out.proxy_key = Some(span);
                    out.file.proxy = Some(typed_table::<ProxySpec>(
                        table,
                        "[proxy]",
                        issues,
                        &mut out.proxy_rejected,
                    ));
                }
            }
            "trust" => {
                if let Some(table) = table_of(&key, value, issues) {
                    out.file.trust = Some(typed_table::<TrustSpec>(
                        table,
                        "[trust]",
                        issues,
                        &mut Vec::new(),
                    ));
                }
            }
            "exposes" => {
                let Some(exposes) = table_of(&key, value, issues) else {
                    continue;
                };
                for (alias, expose) in exposes.into_inner() {
                    let Some(table) = table_of(&alias, expose, issues) else {
                        continue;
                    };
                    let name = alias.get_ref().to_string();
                    let mut rejected = Vec::new();
                    let spec = typed_table::<ExposeSpec>(table, "an expose", issues, &mut rejected);
                    out.expose_keys
                        .insert(name.clone(), (alias.span(), rejected));
                    out.file.exposes.insert(name, spec);
                }
            }
            "forwards" => {
                let Some(forwards) = table_of(&key, value, issues) else {
                    continue;
                };
                for (alias, forward) in forwards.into_inner() {
                    let Some(table) = table_of(&alias, forward, issues) else {
                        continue;
                    };
                    let name = alias.get_ref().to_string();
                    let mut rejected = Vec::new();
                    let spec =
                        typed_table::<ForwardSpec>(table, "a forward", issues, &mut rejected);
                    out.forward_keys.insert(name.clone(), alias.span());
                    out.rejected.insert(name.clone(), rejected);
                    out.file.forwards.insert(name, spec);
                }
            }
            other => issues.push(unknown_key(other, span, "the top level", &TOP_KEYS)),
        }
    }
    out
}

fn table_of<'a>(
    key: &Spanned<std::borrow::Cow<'a, str>>,
    value: Spanned<DeValue<'a>>,
    issues: &mut Vec<Issue>,
) -> Option<Spanned<Tree<'a>>> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(t) => Some(Spanned::new(span, t)),
        other => {
            issues.push(
                Issue::new(
                    "kftray::wrong-type",
                    format!(
                        "`{}` must be a table, not {}",
                        key.get_ref(),
                        article(other.type_str())
                    ),
                )
                .label(span, "expected a table")
                .help(format!("write it as a section: [{}]", key.get_ref())),
            );
            None
        }
    }
}

fn one_value<T: DeserializeOwned>(
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
    expected: &str,
    issues: &mut Vec<Issue>,
) -> Option<At<T>> {
    let de = ValueDeserializer::from(value.clone());
    match At::<T>::deserialize_from(de) {
        Ok(v) => Some(v),
        Err(e) => {
            issues.push(
                Issue::new(
                    "kftray::wrong-type",
                    format!("wrong type for `{}`: {}", key.get_ref(), e.message()),
                )
                .label(value.span(), format!("expected {expected}"))
                .help("write version = 1"),
            );
            None
        }
    }
}

impl<T: DeserializeOwned> At<T> {
    fn deserialize_from(de: ValueDeserializer<'_>) -> Result<Self, toml::de::Error> {
        <At<T> as serde::Deserialize>::deserialize(de)
    }
}

/// The keys of a table that fit `T`; the others are reported (and named in `rejected`).
fn checked<'a, T: DeserializeOwned + JsonSchema>(
    table: Spanned<Tree<'a>>,
    place: &str,
    issues: &mut Vec<Issue>,
    rejected: &mut Vec<String>,
) -> Tree<'a> {
    let known = known_keys::<T>();
    let span = table.span();
    let mut good = Tree::new();
    for (key, value) in table.into_inner() {
        let name = key.get_ref().to_string();
        if !known.contains(&name) {
            let known_str: Vec<&str> = known.iter().map(String::as_str).collect();
            let renamed = RENAMED.iter().any(|(k, _)| *k == name);
            if let Some(meant) = did_you_mean(&name, known_str.iter().copied()).filter(|_| !renamed)
            {
                rejected.push(meant.to_owned());
            }
            issues.push(unknown_key(
                &name,
                key.span(),
                place,
                &known.iter().map(String::as_str).collect::<Vec<_>>(),
            ));
            continue;
        }
        let value = nested(&name, value, issues, rejected);
        let mut single = Tree::new();
        single.insert(key.clone(), value.clone());
        let de = ValueDeserializer::from(Spanned::new(span.clone(), DeValue::Table(single)));
        match T::deserialize(de) {
            Ok(_) => {
                good.insert(key, value);
            }
            Err(error) => {
                issues.push(wrong_type(&name, &value, error.message()));
                rejected.push(name);
            }
        }
    }
    good
}

/// Deserializes a table key by key into `T`, leaving out (and reporting) what does not fit.
fn typed_table<T: DeserializeOwned + JsonSchema + Default>(
    table: Spanned<Tree<'_>>,
    place: &str,
    issues: &mut Vec<Issue>,
    rejected: &mut Vec<String>,
) -> T {
    let span = table.span();
    let good = checked::<T>(table, place, issues, rejected);
    T::deserialize(ValueDeserializer::from(Spanned::new(
        span.clone(),
        DeValue::Table(good),
    )))
    .unwrap_or_else(|error| {
        // Each key passed on its own; a failure here would be a bug, still reported.
        issues.push(Issue::new("kftray::internal", error.message().to_owned()).label(span, "here"));
        T::default()
    })
}

/// A table inside a table (`http_log = { ... }`, `ingress = { ... }`), checked key by key like its parent so
/// that a wrong key inside is pointed at, not the whole value.
/// Its keys written but rejected go into `rejected` as `key.inner`.
fn nested<'a>(
    key: &str,
    value: Spanned<DeValue<'a>>,
    issues: &mut Vec<Issue>,
    rejected: &mut Vec<String>,
) -> Spanned<DeValue<'a>> {
    let span = value.span();
    let mut inner = Vec::new();
    let value = match (key, value.into_inner()) {
        ("http_log", DeValue::Table(table)) => {
            let table = Spanned::new(span.clone(), table);
            let good = checked::<HttpLogTable>(table, "`http_log`", issues, &mut inner);
            Spanned::new(span, DeValue::Table(good))
        }
        ("ingress", DeValue::Table(table)) => {
            let table = Spanned::new(span.clone(), table);
            let good = checked::<IngressSpec>(table, "`ingress`", issues, &mut inner);
            Spanned::new(span, DeValue::Table(good))
        }
        (_, other) => Spanned::new(span, other),
    };
    rejected.extend(inner.into_iter().map(|k| format!("{key}.{k}")));
    value
}

fn wrong_type(key: &str, value: &Spanned<DeValue<'_>>, message: &str) -> Issue {
    let expected = expected_for(key);
    let message = message.trim();
    // An invalid value of the right type ("anyy" for a local port) reads better as such.
    let text = if message.starts_with("invalid type") {
        format!(
            "`{key}` must be {expected}, not {}",
            article(value.get_ref().type_str())
        )
    } else {
        format!("invalid `{key}`: {message}")
    };
    Issue::new("kftray::wrong-type", text)
        .label(value.span(), format!("expected {expected}"))
        .help(example_for(key))
}

fn example_for(key: &str) -> String {
    match key {
        "protocol" => "write protocol = \"tcp\" or protocol = \"udp\"".into(),
        "via" => "write via = \"relay\" or via = \"port-forward\"".into(),
        "local_port" => "write a port number, or local_port = \"any\" for a free port".into(),
        "remote_port" => "for example: remote_port = 80, or remote_port = \"http\"".into(),
        "ports" => {
            "for example: ports = [\"8080:80\", \"9090:metrics\"], or ports = \"all\"".into()
        }
        "tags" => "for example: tags = [\"backend\"]".into(),
        "http_log" => {
            "write http_log = true, or a table: http_log = { body_limit = \"1MiB\" }".into()
        }
        "max_file_size" | "body_limit" => format!("for example: {key} = \"10MiB\""),
        "redact" | "reveal" => format!("for example: {key} = [\"X-Api-Key\"]"),
        "enabled" | "expose_to_network" | "domains" => {
            format!("write {key} = true or {key} = false")
        }
        "socks" | "http" => format!(
            "write a port number: {key} = {}",
            if key == "socks" { 1080 } else { 3128 }
        ),
        other => format!("write it in quotes: {other} = \"...\""),
    }
}

fn expected_for(key: &str) -> &'static str {
    match key {
        "remote_port" => "a port number or a port name",
        "local_port" => "a port number or \"any\"",
        "ports" => "an array of \"LOCAL:REMOTE\" strings, or \"all\"",
        "tags" => "an array of strings",
        "http_log" => "true, false or a table",
        "max_file_size" | "body_limit" => "a size such as \"10MiB\", or a number of bytes",
        "redact" | "reveal" => "an array of header names",
        "enabled" | "expose_to_network" | "domains" => "true or false",
        "socks" | "http" | "port" => "a port number",
        "protocol" => "\"tcp\" or \"udp\"",
        "via" => "\"port-forward\" or \"relay\"",
        "version" => "an integer",
        _ => "a string",
    }
}

fn article(type_str: &str) -> String {
    match type_str {
        "integer" | "array" => format!("an {type_str}"),
        other => format!("a {other}"),
    }
}

fn unknown_key(key: &str, span: Range<usize>, place: &str, known: &[&str]) -> Issue {
    let issue = Issue::new(
        "kftray::unknown-key",
        format!("unknown key `{key}` in {place}"),
    );
    if let Some((_, hint)) = RENAMED.iter().find(|(name, _)| *name == key) {
        return issue.label(span, "not a kftray.toml key").help(*hint);
    }
    if let Some(best) = did_you_mean(key, known.iter().copied()) {
        return issue
            .label(span, format!("did you mean `{best}`?"))
            .help(format!("known keys here: {}", known.join(", ")));
    }
    issue
        .label(span, "unknown key")
        .help(format!("known keys here: {}", known.join(", ")))
}

/// The keys a table type accepts, read from its JSON Schema (the same one editors use).
pub(crate) fn known_keys<T: JsonSchema>() -> Vec<String> {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
    schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_come_from_the_schema() {
        let keys = known_keys::<SyncSpec>();
        assert_eq!(keys, ["interval", "path", "ref", "repo"]);
        assert!(known_keys::<ForwardSpec>().contains(&"expose_to_network".to_owned()));
    }
}
