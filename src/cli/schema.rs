//! `kftray schema`: the JSON Schema, exactly as checked in at schema/kftray.schema.json.

use std::process::ExitCode;

pub(super) fn run() -> ExitCode {
    super::output::say(&crate::config::schema_json());
    ExitCode::SUCCESS
}
