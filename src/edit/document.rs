//! Surgery on one parsed kftray.toml: add, replace or remove one `[forwards.<alias>]` (or
//! `[exposes.<alias>]`) and leave every other byte as it was (comments, blank lines, key
//! order, quoting, inline tables, dotted keys).

use std::ops::Range;
use toml_edit::{Document, DocumentMut, Item, Table, TableLike};

/// The section of forwards, `[forwards.<alias>]`.
pub const FORWARDS: &str = "forwards";
/// The section of reverse forwards, `[exposes.<alias>]`.
pub const EXPOSES: &str = "exposes";

/// The aliases `section` defines, in file order.
pub fn names(doc: &DocumentMut, section: &str) -> Vec<String> {
    entries(doc, section)
        .map(|t| t.iter().map(|(k, _)| k.to_owned()).collect())
        .unwrap_or_default()
}

pub fn has(doc: &DocumentMut, section: &str, alias: &str) -> bool {
    entries(doc, section).is_some_and(|t| t.contains_key(alias))
}

fn entries<'a>(doc: &'a DocumentMut, section: &str) -> Option<&'a dyn TableLike> {
    doc.get(section).and_then(Item::as_table_like)
}

/// Appends `[<section>.<alias>]` after the last one, separated by a blank line.
pub fn insert(doc: &mut DocumentMut, section: &str, alias: &str, mut table: Table) {
    let empty = doc.iter().next().is_none() && doc.trailing().as_str().is_none_or(str::is_empty);
    if !empty {
        table.decor_mut().set_prefix("\n");
    }
    if !doc.contains_key(section) {
        let mut entries = Table::new();
        entries.set_implicit(true);
        doc.insert(section, Item::Table(entries));
    }
    match doc.get_mut(section) {
        Some(Item::Table(entries)) => {
            entries.insert(alias, Item::Table(table));
        }
        // `forwards = { web = {...} }` on one line: the new one joins it inline.
        Some(item) => {
            if let Some(entries) = item.as_table_like_mut() {
                entries.insert(alias, Item::Value(table.into_inline_table().into()));
            }
        }
        None => {}
    }
}

/// Replaces the keys of an existing entry in place: the table keeps its place, the comments
/// above it and, for every key it keeps, that key's comments and layout. Returns false when
/// there is no such entry.
pub fn replace(doc: &mut DocumentMut, section: &str, alias: &str, table: &Table) -> bool {
    let Some(existing) = doc
        .get_mut(section)
        .and_then(Item::as_table_like_mut)
        .and_then(|f| f.get_mut(alias))
        .and_then(Item::as_table_like_mut)
    else {
        return false;
    };
    let stale: Vec<String> = existing
        .iter()
        .map(|(k, _)| k.to_owned())
        .filter(|k| !table.contains_key(k))
        .collect();
    for key in stale {
        existing.remove(&key);
    }
    for (key, item) in table.iter() {
        let Some(new) = item.as_value() else {
            continue;
        };
        match existing.get_mut(key).and_then(Item::as_value_mut) {
            Some(old) => {
                if old.to_string().trim() != new.to_string().trim() {
                    let decor = old.decor().clone();
                    *old = new.clone();
                    *old.decor_mut() = decor;
                }
            }
            None => {
                existing.insert(key, Item::Value(new.clone()));
            }
        }
    }
    true
}

/// Removes an entry with the comments written above it. Returns false when there is none.
pub fn remove(doc: &mut DocumentMut, section: &str, alias: &str) -> bool {
    doc.get_mut(section)
        .and_then(Item::as_table_like_mut)
        .and_then(|f| f.remove(alias))
        .is_some()
}

/// The table of an entry as the file writes it, for comparisons and diffs.
pub fn table(doc: &DocumentMut, section: &str, alias: &str) -> Option<Table> {
    let item = entries(doc, section)?.get(alias)?;
    match item {
        Item::Table(t) => Some(t.clone()),
        Item::Value(toml_edit::Value::InlineTable(t)) => Some(t.clone().into_table()),
        _ => None,
    }
}

/// The `key = value` lines of a table, normalized (no comments, one space around `=`), in
/// its key order: what two entries are compared by, and what a conflict report shows.
pub fn lines(table: &Table) -> Vec<String> {
    table
        .iter()
        .filter_map(|(k, item)| {
            let v = item.as_value()?;
            let mut v = v.clone();
            v.decor_mut().clear();
            Some(format!("{k} = {v}"))
        })
        .collect()
}

/// The key of `[<section>.<alias>]` in `text` whose value holds byte `offset`: `ingress.class`
/// for a key of an inline table, "" for the alias itself. How a problem found in a table
/// written from elsewhere is traced back to what it was written from.
pub fn key_at(text: &str, section: &str, alias: &str, offset: usize) -> Option<String> {
    let doc = Document::parse(text).ok()?;
    let (name, entry) = doc.get(section)?.as_table_like()?.get_key_value(alias)?;
    let holds = |span: Option<Range<usize>>| span.is_some_and(|s| s.contains(&offset));
    if holds(name.span()) {
        return Some(String::new());
    }
    for (key, item) in entry.as_table_like()?.iter() {
        let inner = item.as_table_like().into_iter().flat_map(|t| t.iter());
        for (inner_key, inner_item) in inner {
            if holds(inner_item.span()) {
                return Some(format!("{key}.{inner_key}"));
            }
        }
        if holds(item.span()) {
            return Some(key.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml_edit::value;

    const FILE: &str = "\
#:schema ./schema.json
# Our forwards.
version = 1

[defaults]
namespace = \"shop\"   # everyone's

# The storefront.
[forwards.web]
service = \"web\" # by name
local_port = 8080
remote_port = 80

[forwards.api]
deployment = \"api\"
remote_port = 8081

[sync]
repo = \"https://example.com/env.git\"
";

    fn db(pairs: &[(&str, i64)]) -> Table {
        let mut t = Table::new();
        t["service"] = value("db");
        for (k, v) in pairs {
            t[*k] = value(*v);
        }
        t
    }

    #[test]
    fn a_new_forward_goes_after_the_last_one_and_nothing_else_moves() {
        let mut doc: DocumentMut = FILE.parse().unwrap();
        insert(&mut doc, FORWARDS, "db", db(&[("remote_port", 5432)]));
        assert_eq!(
            doc.to_string(),
            FILE.replace(
                "remote_port = 8081\n",
                "remote_port = 8081\n\n[forwards.db]\nservice = \"db\"\nremote_port = 5432\n"
            )
        );
        assert_eq!(names(&doc, FORWARDS), ["web", "api", "db"]);
    }

    #[test]
    fn removing_takes_the_comments_above_it_and_keeps_the_rest() {
        let mut doc: DocumentMut = FILE.parse().unwrap();
        assert!(remove(&mut doc, FORWARDS, "web"));
        assert!(!remove(&mut doc, FORWARDS, "web"));
        assert_eq!(
            doc.to_string(),
            FILE.replace(
                "\n# The storefront.\n[forwards.web]\nservice = \"web\" # by name\nlocal_port = 8080\nremote_port = 80\n",
                ""
            )
        );
    }

    #[test]
    fn replacing_keeps_the_place_the_comments_and_unchanged_keys() {
        let mut doc: DocumentMut = FILE.parse().unwrap();
        let mut t = Table::new();
        t["service"] = value("web");
        t["local_port"] = value(9090);
        t["remote_port"] = value(80);
        assert!(replace(&mut doc, FORWARDS, "web", &t));
        assert_eq!(
            doc.to_string(),
            FILE.replace("local_port = 8080", "local_port = 9090")
        );
    }

    #[test]
    fn the_first_forward_of_an_empty_file_and_of_an_inline_forwards_table() {
        let mut doc = DocumentMut::new();
        insert(&mut doc, FORWARDS, "db", db(&[("remote_port", 5432)]));
        assert_eq!(
            doc.to_string(),
            "[forwards.db]\nservice = \"db\"\nremote_port = 5432\n"
        );

        let mut doc: DocumentMut = "forwards = { web = { service = \"web\", remote_port = 80 } }\n"
            .parse()
            .unwrap();
        insert(&mut doc, FORWARDS, "db", db(&[("remote_port", 5432)]));
        let text = doc.to_string();
        crate::config::load_str("kftray.toml", &text).unwrap();
        assert_eq!(names(&doc, FORWARDS), ["web", "db"]);
        assert!(remove(&mut doc, FORWARDS, "web"));
        assert_eq!(names(&doc, FORWARDS), ["db"]);
    }

    #[test]
    fn the_key_at_a_place_is_found_inside_inline_tables_too() {
        let text = "[defaults]\nnamespace = \"a\"\n\n[exposes.hook]\nlocal_port = 3000\n\
                    ingress = { host = \"h.example.com\", class = \"Bad_Class\" }\n";
        let at = |s: &str| key_at(text, EXPOSES, "hook", text.find(s).unwrap());
        assert_eq!(at("3000").as_deref(), Some("local_port"));
        assert_eq!(at("Bad_Class").as_deref(), Some("ingress.class"));
        assert_eq!(at("{ host").as_deref(), Some("ingress"));
        assert_eq!(at("hook]").as_deref(), Some(""));
        assert_eq!(at("\"a\""), None);
    }

    #[test]
    fn dotted_and_inline_forwards_are_found_and_compared() {
        let doc: DocumentMut =
            "[forwards]\nweb = { service = \"web\", remote_port = 80 }\ndb.service = \"db\" # dotted\n"
                .parse()
                .unwrap();
        assert_eq!(names(&doc, FORWARDS), ["web", "db"]);
        let t = table(&doc, FORWARDS, "web").unwrap();
        assert_eq!(lines(&t), ["service = \"web\"", "remote_port = 80"]);
        let t = table(&doc, FORWARDS, "db").unwrap();
        assert_eq!(lines(&t), ["service = \"db\""]);
    }
}
