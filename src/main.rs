//! The `kftray` binary: everything lives in the library, so that tests and later commands
//! share it.

fn main() -> std::process::ExitCode {
    kftray::cli::run(std::env::args_os())
}
