//! `kftray man`: the man page, generated from the clap definitions.

use super::failure::{Code, Failure, Outcome};
use std::io::Write;

pub(super) fn run() -> Outcome {
    let man = clap_mangen::Man::new(super::command());
    let mut page = Vec::new();
    man.render(&mut page)
        .map_err(|e| Failure::Usage(format!("cannot render the man page: {e}")))?;
    // A closed pipe (`kftray man | head`) has nobody left to tell.
    std::io::stdout()
        .write_all(&page)
        .map_err(|_| Failure::Said(Code::Usage))
}
