//! The commented starter file `kftray init` writes, built with toml_edit so that later edits by
//! tools keep its comments and layout.

use toml_edit::{Array, DocumentMut, Item, Table, value};

/// Where editors find the schema when the file is not inside this repository.
pub const SCHEMA_URL: &str =
    "https://raw.githubusercontent.com/kftray/kftray-cli/main/schema/kftray.schema.json";

/// A starter kftray.toml: one service forward, commented, that validates as it is.
/// `schema` is the `#:schema` path to put on the first line, if any.
pub fn starter(schema: Option<&str>) -> String {
    let mut doc = empty_document(schema);

    let mut defaults = Table::new();
    defaults.decor_mut().set_prefix(
        "\n# Inherited by every forward. Omitted: the kubeconfig's current context and its\n\
         # namespace, and 127.0.0.1.\n",
    );
    defaults["namespace"] = value("default");
    doc["defaults"] = Item::Table(defaults);

    let mut forwards = Table::new();
    forwards.set_implicit(true);
    let mut web = Table::new();
    web.decor_mut().set_prefix(
        "\n# One table per forward, named by its alias. Exactly one target: service, selector,\n\
         # pod, deployment, statefulset, daemonset or proxy.\n",
    );
    web["service"] = value("web");
    web["remote_port"] = value(80);
    web["local_port"] = value(8080);
    let mut tags = Array::new();
    tags.push("frontend");
    web["tags"] = value(tags);
    if let Some(mut key) = web.key_mut("remote_port") {
        key.leaf_decor_mut()
            .set_prefix("# A number or a port name (\"http\"); local_port may be \"any\".\n");
    }
    forwards.insert("web", Item::Table(web));
    doc["forwards"] = Item::Table(forwards);
    doc.to_string()
}

/// A file with no forward yet: the `#:schema` line, a comment saying what the file is, and
/// `version = 1`. Tools that create kftray.toml (`init`, `add`, `import`) start from it.
pub fn empty_document(schema: Option<&str>) -> DocumentMut {
    let mut doc = DocumentMut::new();
    doc["version"] = value(1);
    let mut header = String::new();
    if let Some(schema) = schema {
        header.push_str(&format!("#:schema {schema}\n"));
    }
    header.push_str(
        "# kftray.toml: this project's Kubernetes port-forwards. `kftray validate` checks it,\n\
         # `kftray up` runs it. Personal overrides go in kftray.local.toml (git-ignored).\n",
    );
    if let Some(mut key) = doc.key_mut("version") {
        key.leaf_decor_mut().set_prefix(header);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_file_is_valid() {
        let text = starter(Some("./schema/kftray.schema.json"));
        assert!(text.starts_with("#:schema ./schema/kftray.schema.json\n"));
        let effective = crate::config::load_str("kftray.toml", &text).unwrap();
        assert_eq!(effective.forwards.len(), 1);
        assert_eq!(effective.forwards[0].name, "web");
    }
}
