//! `kftray man`: the man page, generated from the clap definitions.

use std::process::ExitCode;

pub(super) fn run() -> ExitCode {
    let man = clap_mangen::Man::new(super::command());
    let mut page = Vec::new();
    if let Err(e) = man.render(&mut page) {
        eprintln!("error: cannot render the man page: {e}");
        return ExitCode::from(2);
    }
    use std::io::Write;
    if std::io::stdout().write_all(&page).is_err() {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
