//! Where and how output goes: colour only on a terminal, never under NO_COLOR (unless
//! `--color always`), quiet and verbose levels.

use super::ColorWhen;
use std::io::IsTerminal;

/// How a command prints: decided once from the flags and the terminal.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Colour on stderr (diagnostics go there).
    pub color: bool,
    /// `-q`: errors only.
    pub quiet: bool,
    /// `-v` repeated: how much more to say.
    pub verbose: u8,
    /// Width diagnostics wrap at.
    pub width: usize,
}

impl Output {
    /// From the global flags, `NO_COLOR`, `COLUMNS` and whether stderr is a terminal.
    pub fn new(when: ColorWhen, quiet: bool, verbose: u8) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match when {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => !no_color && std::io::stderr().is_terminal(),
        };
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100);
        Output {
            color,
            quiet,
            verbose,
            width,
        }
    }

    /// Prints an error message (not a diagnostic) to stderr.
    pub fn error(&self, message: &str) {
        if self.color {
            eprintln!("\x1b[1;31merror\x1b[0m: {message}");
        } else {
            eprintln!("error: {message}");
        }
    }

    /// Prints a warning (something not done, or done differently than asked) to stderr.
    pub fn warning(&self, message: &str) {
        if self.color {
            eprintln!("\x1b[1;33mwarning\x1b[0m: {message}");
        } else {
            eprintln!("warning: {message}");
        }
    }

    /// Prints a note (something worth knowing) to stderr.
    pub fn note(&self, message: &str) {
        if self.color {
            eprintln!("\x1b[1;36mnote\x1b[0m: {message}");
        } else {
            eprintln!("note: {message}");
        }
    }

    /// Prints the diagnostics of a failed load to stderr, with a summary line.
    pub fn diagnostics(&self, diagnostics: &crate::config::Diagnostics) {
        eprint!("{}", diagnostics.render(self.color, self.width));
        let n = diagnostics.len();
        let files: Vec<String> = {
            let mut files: Vec<String> = diagnostics
                .findings()
                .iter()
                .map(|f| f.file.display().to_string())
                .collect();
            files.dedup();
            files
        };
        self.error(&format!(
            "{n} problem{} in {}",
            if n == 1 { "" } else { "s" },
            files.join(", ")
        ));
    }
}

/// Writes to stdout, ignoring a closed pipe (`kftray schema | head` must not panic).
pub(super) fn say(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}
