//! `kftray schema`: the JSON Schema, exactly as checked in at schema/kftray.schema.json.

use super::failure::Outcome;

pub(super) fn run() -> Outcome {
    super::output::say(&crate::config::schema_json());
    Ok(())
}
