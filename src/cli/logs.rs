//! `kftray logs [ALIAS]`: what the project's run went through (reconnects, pod changes,
//! errors), from the state database; `kftray logs http ALIAS`: the HTTP traffic a forward
//! logged (`http_log`), one line per exchange, or the `.http` file as it is with `--raw`.

use super::failure::{Failure, Outcome};
use super::output::say;
use super::{Cli, runs_to_read};
use crate::config::format_size;
use crate::forward::http_log::{self, SUMMARY, Summary};
use crate::state::{Event, State};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `ALIAS` for the run's events about one forward (none: all of them), or `http ALIAS`
    /// for the HTTP traffic of a forward with `http_log` on.
    #[arg(value_name = "ALIAS", num_args = 0..=2)]
    pub what: Vec<String>,
    /// Keep printing what comes next (-f is `--file` everywhere in kftray).
    #[arg(short = 'F', long)]
    pub follow: bool,
    /// How many of the latest entries to print first.
    #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
    pub lines: usize,
    /// The `.http` file's own text (HTTP logs only).
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// How often a followed log is looked at again.
const POLL: Duration = Duration::from_millis(200);

pub(super) fn run(cli: &Cli, args: &Args) -> Outcome {
    let (home, project) = runs_to_read(cli, false)?;
    let project = project.unwrap_or_default();
    match args.what.as_slice() {
        [http, alias] if http == "http" => http_logs(&home, &project, alias, args),
        [alias] => events(&home, &project, Some(alias), args),
        [] => events(&home, &project, None, args),
        _ => Err(Failure::Usage(
            "write `kftray logs ALIAS` for a forward's events, or `kftray logs http ALIAS` for \
             its HTTP traffic"
                .into(),
        )),
    }
}

fn events(home: &Path, project: &str, alias: Option<&str>, args: &Args) -> Outcome {
    let failed = |e: crate::state::StateError| Failure::Usage(e.to_string());
    let state = State::open(home).map_err(failed)?;
    let Some(run) = state.latest_run(project).map_err(failed)? else {
        return Err(Failure::Failed(
            "this project has not run yet: start it with `kftray up`".into(),
        ));
    };
    let about = |e: &Event| {
        alias.is_none_or(|alias| {
            e.forward.as_deref().is_some_and(|f| {
                f == alias || f.strip_prefix(alias).is_some_and(|p| p.starts_with(':'))
            })
        })
    };
    let all = state.events(run.id, usize::MAX).map_err(failed)?;
    let mine: Vec<&Event> = all.iter().filter(|e| about(e)).collect();
    for event in &mine[mine.len().saturating_sub(args.lines)..] {
        print_event(event, args.json);
    }
    if !args.follow {
        return Ok(());
    }
    let mut seen = all.len();
    loop {
        std::thread::sleep(POLL);
        let all = state.events(run.id, usize::MAX).map_err(failed)?;
        for event in all.iter().skip(seen).filter(|e| about(e)) {
            print_event(event, args.json);
        }
        seen = all.len();
    }
}

fn print_event(event: &Event, json: bool) {
    if json {
        return say_json(event);
    }
    let at = jiff::Timestamp::from_millisecond(event.at_ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default();
    say(&format!(
        "{}  {:<10} {:<16} {}\n",
        clock(&at),
        event.kind.as_str(),
        event.forward.as_deref().unwrap_or("-"),
        event.message
    ));
}

/// The latest `limit` exchanges of an alias's HTTP log, as a JSON array (for `kftray mcp`).
pub(super) fn latest_exchanges(
    home: &Path,
    project: &str,
    alias: &str,
    limit: usize,
) -> Result<String, String> {
    let path = http_log::file_of(&http_log::dir_of(home, project), alias);
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => no_log_yet(alias, &path),
        _ => format!("{}: {e}", path.display()),
    })?;
    let summaries = summaries(latest(&text, limit));
    serde_json::to_string_pretty(&summaries).map_err(|e| e.to_string())
}

fn no_log_yet(alias: &str, path: &Path) -> String {
    format!(
        "`{alias}` has logged no HTTP traffic yet ({} does not exist): turn it on with \
         `http_log = true` in [forwards.{alias}] and send it a request",
        path.display()
    )
}

fn http_logs(home: &Path, project: &str, alias: &str, args: &Args) -> Outcome {
    let path = http_log::file_of(&http_log::dir_of(home, project), alias);
    let mut log = match File::open(&path) {
        Ok(file) => Followed {
            path,
            file: Some(file),
            at: 0,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !args.follow => {
            return Err(Failure::Failed(no_log_yet(alias, &path)));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Followed::waiting(path),
        Err(e) => return Err(Failure::Usage(format!("{}: {e}", path.display()))),
    };
    let print = |text: &str| {
        if args.raw {
            say(text);
        } else {
            for summary in summaries(text) {
                print_summary(&summary, args.json);
            }
        }
    };
    // Text after the last complete line (the writer may be in the middle of it) waits for
    // the rest of it.
    let mut partial = log.read_new();
    let complete: String = partial
        .drain(..partial.rfind('\n').map_or(0, |end| end + 1))
        .collect();
    print(latest(&complete, args.lines));
    if !args.follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(POLL);
        partial.push_str(&log.read_new());
        if let Some(end) = partial.rfind('\n') {
            let complete: String = partial.drain(..=end).collect();
            print(&complete);
        }
    }
}

/// The last `n` entries of a log's text (`###` starts each; `-n 0` with `-F`: only what
/// comes next).
fn latest(text: &str, n: usize) -> &str {
    let starts: Vec<usize> = text
        .match_indices("### ")
        .filter(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b'\n')
        .map(|(i, _)| i)
        .collect();
    let from = match starts.len().checked_sub(n) {
        _ if n == 0 => text.len(),
        Some(skip) => starts[skip],
        None => 0,
    };
    &text[from..]
}

/// The summaries of a log's text, in order.
pub(crate) fn summaries(text: &str) -> Vec<Summary> {
    text.lines()
        .filter_map(|line| line.strip_prefix(SUMMARY))
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect()
}

fn print_summary(s: &Summary, json: bool) {
    if json {
        return say_json(s);
    }
    let (Some(method), Some(url)) = (&s.method, &s.url) else {
        say(&format!(
            "{}  note: {}\n",
            clock(&s.at),
            s.note.as_deref().unwrap_or_default()
        ));
        return;
    };
    let path = url
        .strip_prefix("http://")
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url);
    let status = s.status.map_or("---".to_owned(), |c| c.to_string());
    let ms = s.ms.map_or(String::new(), |ms| format!("{ms:.1} ms"));
    let mut line = format!(
        "{}  {method:<7} {path:<40} {status}  {ms:>10}  {} -> {}",
        clock(&s.at),
        format_size(s.request_bytes),
        format_size(s.response_bytes)
    );
    if let Some(note) = &s.note {
        line.push_str(&format!("  ({note})"));
    }
    line.push('\n');
    say(&line);
}

/// One JSON object on a line of its own.
fn say_json(value: &impl serde::Serialize) {
    say(&format!(
        "{}\n",
        serde_json::to_string(value).unwrap_or_default()
    ));
}

/// "2026-12-04T19:30:01.123Z" -> "19:30:01.123".
fn clock(at: &str) -> &str {
    at.get(11..23).unwrap_or(at)
}

/// A log file read as it grows; a rotation (the file replaced by a new, shorter one) starts
/// it over from the beginning.
struct Followed {
    path: PathBuf,
    file: Option<File>,
    at: u64,
}

impl Followed {
    fn waiting(path: PathBuf) -> Followed {
        Followed {
            path,
            file: None,
            at: 0,
        }
    }

    fn read_new(&mut self) -> String {
        let replaced = match (std::fs::metadata(&self.path), &self.file) {
            (Ok(now), Some(file)) => file.metadata().is_ok_and(|open| !same_file(&open, &now)),
            (Ok(_), None) => true,
            (Err(_), _) => false,
        };
        if replaced {
            self.file = File::open(&self.path).ok();
            self.at = 0;
        }
        let mut text = Vec::new();
        if let Some(file) = &mut self.file
            && file.seek(SeekFrom::Start(self.at)).is_ok()
            && let Ok(n) = file.read_to_end(&mut text)
        {
            self.at += n as u64;
        }
        String::from_utf8_lossy(&text).into_owned()
    }
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.ino() == b.ino() && a.dev() == b.dev()
}

#[cfg(not(unix))]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    b.len() >= a.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_entries_are_cut_at_entry_starts() {
        let text = "### a\nx\n\n### b\n# ### not a start\n\n### c\n";
        assert_eq!(latest(text, 1), "### c\n");
        assert_eq!(latest(text, 2), "### b\n# ### not a start\n\n### c\n");
        assert_eq!(latest(text, 9), text);
        assert_eq!(latest(text, 0), "");
    }
}
