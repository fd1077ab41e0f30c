//! Surgery on one parsed kftray.toml: add, replace or remove one `[forwards.<alias>]` and
//! leave every other byte as it was (comments, blank lines, key order, quoting, inline
//! tables, dotted keys).

use toml_edit::{DocumentMut, Item, Table, TableLike};

/// The aliases the file defines, in file order.
pub fn aliases(doc: &DocumentMut) -> Vec<String> {
    forwards(doc)
        .map(|t| t.iter().map(|(k, _)| k.to_owned()).collect())
        .unwrap_or_default()
}

pub fn has_forward(doc: &DocumentMut, alias: &str) -> bool {
    forwards(doc).is_some_and(|t| t.contains_key(alias))
}

fn forwards(doc: &DocumentMut) -> Option<&dyn TableLike> {
    doc.get("forwards").and_then(Item::as_table_like)
}

/// Appends `[forwards.<alias>]` after the last forward, separated by a blank line.
pub fn insert_forward(doc: &mut DocumentMut, alias: &str, mut table: Table) {
    let empty = doc.iter().next().is_none() && doc.trailing().as_str().is_none_or(str::is_empty);
    if !empty {
        table.decor_mut().set_prefix("\n");
    }
    if !doc.contains_key("forwards") {
        let mut forwards = Table::new();
        forwards.set_implicit(true);
        doc.insert("forwards", Item::Table(forwards));
    }
    match doc.get_mut("forwards") {
        Some(Item::Table(forwards)) => {
            forwards.insert(alias, Item::Table(table));
        }
        // `forwards = { web = {...} }` on one line: the new forward joins it inline.
        Some(item) => {
            if let Some(forwards) = item.as_table_like_mut() {
                forwards.insert(alias, Item::Value(table.into_inline_table().into()));
            }
        }
        None => {}
    }
}

/// Replaces the keys of an existing forward in place: the table keeps its place, the comments
/// above it and, for every key it keeps, that key's comments and layout. Returns false when
/// there is no such forward.
pub fn replace_forward(doc: &mut DocumentMut, alias: &str, table: &Table) -> bool {
    let Some(existing) = doc
        .get_mut("forwards")
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

/// Removes a forward with the comments written above it. Returns false when there is none.
pub fn remove_forward(doc: &mut DocumentMut, alias: &str) -> bool {
    doc.get_mut("forwards")
        .and_then(Item::as_table_like_mut)
        .and_then(|f| f.remove(alias))
        .is_some()
}

/// The table of a forward as the file writes it, for comparisons and diffs.
pub fn forward_table(doc: &DocumentMut, alias: &str) -> Option<Table> {
    let item = forwards(doc)?.get(alias)?;
    match item {
        Item::Table(t) => Some(t.clone()),
        Item::Value(toml_edit::Value::InlineTable(t)) => Some(t.clone().into_table()),
        _ => None,
    }
}

/// The `key = value` lines of a table, normalized (no comments, one space around `=`), in
/// its key order: what two forwards are compared by, and what a conflict report shows.
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

    fn table(pairs: &[(&str, i64)]) -> Table {
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
        insert_forward(&mut doc, "db", table(&[("remote_port", 5432)]));
        assert_eq!(
            doc.to_string(),
            FILE.replace(
                "remote_port = 8081\n",
                "remote_port = 8081\n\n[forwards.db]\nservice = \"db\"\nremote_port = 5432\n"
            )
        );
        assert_eq!(aliases(&doc), ["web", "api", "db"]);
    }

    #[test]
    fn removing_takes_the_comments_above_it_and_keeps_the_rest() {
        let mut doc: DocumentMut = FILE.parse().unwrap();
        assert!(remove_forward(&mut doc, "web"));
        assert!(!remove_forward(&mut doc, "web"));
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
        assert!(replace_forward(&mut doc, "web", &t));
        assert_eq!(
            doc.to_string(),
            FILE.replace("local_port = 8080", "local_port = 9090")
        );
    }

    #[test]
    fn the_first_forward_of_an_empty_file_and_of_an_inline_forwards_table() {
        let mut doc = DocumentMut::new();
        insert_forward(&mut doc, "db", table(&[("remote_port", 5432)]));
        assert_eq!(
            doc.to_string(),
            "[forwards.db]\nservice = \"db\"\nremote_port = 5432\n"
        );

        let mut doc: DocumentMut = "forwards = { web = { service = \"web\", remote_port = 80 } }\n"
            .parse()
            .unwrap();
        insert_forward(&mut doc, "db", table(&[("remote_port", 5432)]));
        let text = doc.to_string();
        crate::config::load_str("kftray.toml", &text).unwrap();
        assert_eq!(aliases(&doc), ["web", "db"]);
        assert!(remove_forward(&mut doc, "web"));
        assert_eq!(aliases(&doc), ["db"]);
    }

    #[test]
    fn dotted_and_inline_forwards_are_found_and_compared() {
        let doc: DocumentMut =
            "[forwards]\nweb = { service = \"web\", remote_port = 80 }\ndb.service = \"db\" # dotted\n"
                .parse()
                .unwrap();
        assert_eq!(aliases(&doc), ["web", "db"]);
        let t = forward_table(&doc, "web").unwrap();
        assert_eq!(lines(&t), ["service = \"web\"", "remote_port = 80"]);
        let t = forward_table(&doc, "db").unwrap();
        assert_eq!(lines(&t), ["service = \"db\""]);
    }
}
