//! Reading one file into a spanned TOML tree, and laying kftray.local.toml over kftray.toml.
//!
//! The overlay is merged by alias before anything is typed, so a local file may change a
//! single key of a team forward (`[forwards.web] local_port = 18080`) and every diagnostic
//! still points into the file that set the offending value.

use super::diagnostic::Issue;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

pub(crate) type Tree<'a> = DeTable<'a>;

/// Keys that choose a forward's target: an overlay that sets one replaces the base's target.
pub(crate) const TARGET_KEYS: [&str; 7] = [
    "service",
    "selector",
    "pod",
    "deployment",
    "statefulset",
    "daemonset",
    "proxy",
];

/// Parses one file whose spans start at `offset`, reporting every syntax error found.
pub(crate) fn parse<'a>(text: &'a str, offset: usize, issues: &mut Vec<Issue>) -> Option<Tree<'a>> {
    let (table, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for error in errors {
            let span = error.span().unwrap_or(0..0);
            let span = span.start + offset..span.end + offset;
            issues.push(
                Issue::new(
                    "kftray::syntax",
                    format!("TOML syntax: {}", error.message().trim()),
                )
                .label(span, "here")
                .help("see https://toml.io for the syntax of TOML files"),
            );
        }
        return None;
    }
    Some(shift_table(table.into_inner(), offset))
}

fn shift_table(table: Tree<'_>, offset: usize) -> Tree<'_> {
    let mut out = Tree::new();
    for (key, value) in table {
        let span = key.span();
        let key = Spanned::new(span.start + offset..span.end + offset, key.into_inner());
        out.insert(key, shift_value(value, offset));
    }
    out
}

fn shift_value(value: Spanned<DeValue<'_>>, offset: usize) -> Spanned<DeValue<'_>> {
    let span = value.span();
    let inner = match value.into_inner() {
        DeValue::Array(items) => DeValue::Array(
            items
                .into_iter()
                .map(|item| shift_value(item, offset))
                .collect::<DeArray<'_>>(),
        ),
        DeValue::Table(table) => DeValue::Table(shift_table(table, offset)),
        other => other,
    };
    Spanned::new(span.start + offset..span.end + offset, inner)
}

/// Lays `local` over `base`: forwards merge by alias (a key in the overlay replaces the same
/// key; a target or port form in the overlay replaces the base's), `[defaults]`, `[sync]`,
/// `[relay]`, `[proxy]` and `[trust]` merge key by key, anything else is replaced.
pub(crate) fn overlay<'a>(mut base: Tree<'a>, local: Tree<'a>) -> Tree<'a> {
    for (key, value) in local {
        let merged = match (key.get_ref().as_ref(), base.get_mut(key.get_ref().as_ref())) {
            ("forwards" | "exposes", Some(existing)) => match (existing.get_mut(), value.get_ref())
            {
                (DeValue::Table(base_forwards), DeValue::Table(_)) => {
                    let DeValue::Table(local_forwards) = value.into_inner() else {
                        continue;
                    };
                    for (alias, forward) in local_forwards {
                        merge_forward(base_forwards, alias, forward);
                    }
                    continue;
                }
                _ => value,
            },
            ("defaults" | "sync" | "relay" | "proxy" | "trust", Some(existing)) => {
                match (existing.get_mut(), value.get_ref()) {
                    (DeValue::Table(base_table), DeValue::Table(_)) => {
                        let DeValue::Table(local_table) = value.into_inner() else {
                            continue;
                        };
                        for (k, v) in local_table {
                            set_key(base_table, k, v);
                        }
                        continue;
                    }
                    _ => value,
                }
            }
            _ => value,
        };
        base.insert(key, merged);
    }
    base
}

fn merge_forward<'a>(
    forwards: &mut Tree<'a>,
    alias: Spanned<std::borrow::Cow<'a, str>>,
    forward: Spanned<DeValue<'a>>,
) {
    let Some(existing) = forwards.get_mut(alias.get_ref().as_ref()) else {
        forwards.insert(alias, forward);
        return;
    };
    let (DeValue::Table(base), DeValue::Table(_)) = (existing.get_mut(), forward.get_ref()) else {
        forwards.insert(alias, forward);
        return;
    };
    let DeValue::Table(local) = forward.into_inner() else {
        return;
    };
    let sets = |k: &str| local.contains_key(k);
    if TARGET_KEYS.iter().any(|k| sets(k)) {
        remove_keys(base, |k| TARGET_KEYS.contains(&k));
    }
    if sets("ports") {
        remove_keys(base, |k| matches!(k, "local_port" | "remote_port"));
    }
    if sets("local_port") || sets("remote_port") {
        remove_keys(base, |k| k == "ports");
    }
    for (k, v) in local {
        set_key(base, k, v);
    }
}

/// One key of an overlay's table: replaces the base's, except that an `http_log` table
/// merges into the base's key by key (so a user's `reveal` keeps the team's `redact`).
fn set_key<'a>(
    table: &mut Tree<'a>,
    key: Spanned<std::borrow::Cow<'a, str>>,
    value: Spanned<DeValue<'a>>,
) {
    if key.get_ref() == "http_log"
        && let Some(existing) = table.get_mut(key.get_ref().as_ref())
        && let (DeValue::Table(base), DeValue::Table(_)) = (existing.get_mut(), value.get_ref())
    {
        if let DeValue::Table(local) = value.into_inner() {
            base.extend(local);
        }
        return;
    }
    table.insert(key, value);
}

fn remove_keys(table: &mut Tree<'_>, remove: impl Fn(&str) -> bool) {
    let doomed: Vec<String> = table
        .iter()
        .map(|(k, _)| k.get_ref().to_string())
        .filter(|k| remove(k))
        .collect();
    for key in doomed {
        table.remove(key.as_str());
    }
}
