//! `kftray completions SHELL`: a completion script generated from the clap definitions.

use super::failure::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub(super) fn run(args: &Args) -> Outcome {
    let mut command = super::command();
    clap_complete::generate(args.shell, &mut command, "kftray", &mut std::io::stdout());
    Ok(())
}
