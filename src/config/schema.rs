//! The JSON Schema of kftray.toml, generated from the serde model (what editors with taplo or
//! Even Better TOML read through the file's `#:schema` line).

use super::model::ConfigFile;
use serde_json::Value;

/// The schema as pretty-printed JSON, ending with a newline: exactly what
/// `schema/kftray.schema.json` holds and `kftray schema` prints.
pub fn schema_json() -> String {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<ConfigFile>();
    let mut value = schema.to_value();
    strip_null(&mut value);
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

// TOML has no null: an omitted key is how a value is left out, so `null` must not be offered.
fn strip_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(options)) = map.get_mut(key) {
                    options.retain(|o| o.get("type").is_none_or(|t| t != "null"));
                }
            }
            if let Some(Value::Array(options)) = map.get("anyOf")
                && options.len() == 1
            {
                let only = options[0].clone();
                map.remove("anyOf");
                if let Value::Object(inner) = only {
                    for (k, v) in inner {
                        map.entry(k).or_insert(v);
                    }
                }
            }
            if map.get("default").is_some_and(Value::is_null) {
                map.remove("default");
            }
            for v in map.values_mut() {
                strip_null(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}
