//! The JSON Schema is what editors (taplo, Even Better TOML) check a kftray.toml against as it
//! is typed: every valid file must pass it, and the common mistakes must be flagged by it.

use serde_json::Value;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("schema/kftray.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).expect("the checked-in schema compiles")
}

/// TOML as the editor sees it: the same document, as JSON.
fn as_json(toml_text: &str) -> Value {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

fn problems(validator: &jsonschema::Validator, toml_text: &str) -> Vec<String> {
    validator
        .iter_errors(&as_json(toml_text))
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn every_example_and_the_root_file_pass_the_schema() {
    let validator = validator();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.push(root().join("kftray.toml"));
    assert!(files.len() >= 6);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let found = problems(&validator, &text);
        assert!(found.is_empty(), "{}: {found:#?}", path.display());
    }
}

#[test]
fn the_starter_file_passes_the_schema() {
    let found = problems(&validator(), &kftray::config::starter(None));
    assert!(found.is_empty(), "{found:#?}");
}

/// Each mistake an editor should underline as it is typed, and where.
#[test]
fn common_mistakes_are_flagged_where_they_are() {
    let validator = validator();
    let base = "[forwards.web]\nservice = \"web\"\nremote_port = 80\n";
    let cases = [
        ("namespce = \"shop\"\n", "/forwards/web"),
        ("local_port = \"eighty\"\n", "/forwards/web/local_port"),
        ("local_port = 70000\n", "/forwards/web/local_port"),
        ("protocol = \"sctp\"\n", "/forwards/web/protocol"),
        ("tags = \"backend\"\n", "/forwards/web/tags"),
        ("enabled = \"no\"\n", "/forwards/web/enabled"),
    ];
    for (line, place) in cases {
        let text = format!("{base}{line}");
        let found = problems(&validator, &text);
        assert!(
            found.iter().any(|p| p.ends_with(&format!(" at {place}"))),
            "{line:?} should be flagged at {place}: {found:#?}"
        );
    }
    let elsewhere = [
        ("version = 2\n", "/version"),
        ("[defaults]\nnamspace = \"x\"\n", "/defaults"),
        (
            "[forwards.Web_1]\nservice = \"web\"\nremote_port = 80\n",
            "/forwards",
        ),
        ("[sync]\nrepo = \"r\"\ninterval = 60\n", "/sync/interval"),
        ("[forwarsd.web]\nservice = \"web\"\n", ""),
    ];
    for (text, place) in elsewhere {
        let found = problems(&validator, text);
        assert!(
            found.iter().any(|p| p.ends_with(&format!(" at {place}"))),
            "{text:?} should be flagged at {place:?}: {found:#?}"
        );
    }
}
