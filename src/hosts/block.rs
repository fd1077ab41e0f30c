//! The kftray block of a hosts file: finding it, and writing the file back with a new one.
//!
//! Pure text work, no IO. The file belongs to the system and its user; kftray owns only the
//! lines between its two markers. Everything outside them comes back byte for byte (line
//! endings, a missing final newline, bytes that are not UTF-8), and a block that becomes empty
//! is removed with its markers, so the file is as it was before kftray ever wrote to it.

use crate::hosts::protocol::Entry;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The line that opens the block. Says who writes it, so a person editing the file knows
/// their edits inside it will not last.
pub const BEGIN: &str = "# BEGIN kftray: entries of running kftray forwards, written by kftray-helper; edits here are lost";

/// The line that closes the block.
pub const END: &str = "# END kftray";

/// A hosts file whose kftray block kftray-helper will not touch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// BEGIN without END: where the block stops is a guess, and a wrong guess would delete
    /// the user's lines.
    #[error(
        "the kftray block in {} has no end marker (line {line}): fix or remove it by hand",
        file.display()
    )]
    NoEnd {
        /// The hosts file.
        file: PathBuf,
        /// The line of the BEGIN marker, from 1.
        line: usize,
    },
    /// Two BEGIN markers: which one is ours is a guess too.
    #[error(
        "{} has two kftray blocks (lines {first} and {second}): remove one by hand",
        file.display()
    )]
    Twice {
        /// The hosts file.
        file: PathBuf,
        /// The line of the first BEGIN marker.
        first: usize,
        /// The line of the second.
        second: usize,
    },
}

/// A hosts file split around its kftray block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsText<'a> {
    before: &'a [u8],
    block: Option<Block>,
    after: &'a [u8],
    /// The line number (from 1) of the first line of `after`.
    after_line: usize,
    newline: &'static [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    entries: Vec<Entry>,
    /// Whether the END line has a line ending: it has none when kftray appended the block to
    /// a file without a final newline, and removing the block must then take away the line
    /// ending kftray added before BEGIN.
    end_newline: bool,
}

/// Splits `text` around its kftray block. `file` only names the file in errors.
pub fn parse<'a>(text: &'a [u8], file: &Path) -> Result<HostsText<'a>, BlockError> {
    let newline = detect_newline(text);
    let mut begin: Option<(usize, usize)> = None; // (byte offset, line number)
    let mut end: Option<(usize, usize, bool)> = None; // (byte offset after END, its line, newline)
    let mut offset = 0;
    for (index, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        let content = trim(line);
        if content == BEGIN.as_bytes() {
            if let Some((_, first)) = begin {
                return Err(BlockError::Twice {
                    file: file.into(),
                    first,
                    second: number,
                });
            }
            begin = Some((offset, number));
        } else if content == END.as_bytes() && begin.is_some() && end.is_none() {
            end = Some((offset + line.len(), number, line.ends_with(b"\n")));
        }
        offset += line.len();
    }
    let Some((start, begin_line)) = begin else {
        return Ok(HostsText {
            before: text,
            block: None,
            after: &[],
            after_line: text.split_inclusive(|&b| b == b'\n').count() + 1,
            newline,
        });
    };
    let Some((stop, end_line, end_newline)) = end else {
        return Err(BlockError::NoEnd {
            file: file.into(),
            line: begin_line,
        });
    };
    let inside = &text[start..stop];
    let entries = inside
        .split_inclusive(|&b| b == b'\n')
        .flat_map(|line| {
            let (address, names) = fields(line)?;
            let address = address.parse::<IpAddr>().ok()?;
            Some(names.into_iter().map(move |name| Entry { address, name }))
        })
        .flatten()
        .collect();
    Ok(HostsText {
        before: &text[..start],
        block: Some(Block {
            entries,
            end_newline,
        }),
        after: &text[stop..],
        after_line: end_line + 1,
        newline,
    })
}

impl HostsText<'_> {
    /// The entries in the kftray block as the file has them.
    pub fn entries(&self) -> &[Entry] {
        self.block.as_ref().map_or(&[], |block| &block.entries)
    }

    /// The file with `entries` as its kftray block (sorted by name, then address; duplicates
    /// once), in the file's own line endings. An existing block keeps its place; a new one
    /// goes at the end. With no entries the block goes away, markers and all.
    pub fn render(&self, entries: &[Entry]) -> Vec<u8> {
        let mut sorted = entries.to_vec();
        sorted.sort_by(|a, b| (&a.name, a.address).cmp(&(&b.name, b.address)));
        sorted.dedup();
        let mut out = Vec::with_capacity(self.before.len() + self.after.len() + 64);
        match (&self.block, sorted.is_empty()) {
            (None, true) => out.extend_from_slice(self.before),
            (Some(block), true) => {
                out.extend_from_slice(self.before);
                if !block.end_newline {
                    strip_newline(&mut out);
                }
                out.extend_from_slice(self.after);
            }
            (Some(block), false) => {
                out.extend_from_slice(self.before);
                self.push_block(&mut out, &sorted, block.end_newline);
                out.extend_from_slice(self.after);
            }
            (None, false) => {
                out.extend_from_slice(self.before);
                // Appending to a file without a final newline: end the last line so BEGIN
                // starts its own, and leave END without one, so the file keeps its shape
                // and removing the block undoes exactly this.
                let unterminated = !self.before.is_empty() && !self.before.ends_with(b"\n");
                if unterminated {
                    out.extend_from_slice(self.newline);
                }
                self.push_block(&mut out, &sorted, !unterminated);
            }
        }
        out
    }

    fn push_block(&self, out: &mut Vec<u8>, entries: &[Entry], end_newline: bool) {
        out.extend_from_slice(BEGIN.as_bytes());
        out.extend_from_slice(self.newline);
        for entry in entries {
            out.extend_from_slice(format!("{}\t{}", entry.address, entry.name).as_bytes());
            out.extend_from_slice(self.newline);
        }
        out.extend_from_slice(END.as_bytes());
        if end_newline {
            out.extend_from_slice(self.newline);
        }
    }

    /// Every name the file defines outside the kftray block, lowercase, with the line (from 1)
    /// where it first appears.
    pub fn names_outside(&self) -> BTreeMap<String, usize> {
        let mut names = BTreeMap::new();
        for (first, part) in [(1, self.before), (self.after_line, self.after)] {
            for (index, line) in part.split_inclusive(|&b| b == b'\n').enumerate() {
                if let Some((_, line_names)) = fields(line) {
                    for name in line_names {
                        names.entry(name).or_insert(first + index);
                    }
                }
            }
        }
        names
    }
}

/// Hosts-file syntax: `#` starts a comment, fields are separated by blanks, the first is the
/// address and the rest are names. A line with fewer than two fields defines nothing.
fn fields(line: &[u8]) -> Option<(String, Vec<String>)> {
    let content = match line.iter().position(|&b| b == b'#') {
        Some(hash) => &line[..hash],
        None => line,
    };
    let content = String::from_utf8_lossy(content);
    let mut words = content.split_ascii_whitespace();
    let address = words.next()?.to_string();
    let names: Vec<String> = words.map(str::to_ascii_lowercase).collect();
    (!names.is_empty()).then_some((address, names))
}

/// The line without its line ending and trailing blanks.
fn trim(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |last| last + 1);
    &line[..end]
}

/// CRLF when the file's first line ends so, else LF.
fn detect_newline(text: &[u8]) -> &'static [u8] {
    match text.iter().position(|&b| b == b'\n') {
        Some(at) if at > 0 && text[at - 1] == b'\r' => b"\r\n",
        _ => b"\n",
    }
}

fn strip_newline(out: &mut Vec<u8>) {
    if out.ends_with(b"\n") {
        out.pop();
        if out.ends_with(b"\r") {
            out.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::protocol::entry;

    fn file() -> &'static Path {
        Path::new("/etc/hosts")
    }

    /// Adds entries, checks the result, removes them, and checks the file is as it was.
    fn round_trip(original: &str, expected_with: &str) {
        let parsed = parse(original.as_bytes(), file()).unwrap();
        let with = parsed.render(&[entry("127.0.0.2", "b.local"), entry("127.0.0.1", "a.local")]);
        assert_eq!(String::from_utf8(with.clone()).unwrap(), expected_with);
        let reparsed = parse(&with, file()).unwrap();
        assert_eq!(
            reparsed.entries(),
            [entry("127.0.0.1", "a.local"), entry("127.0.0.2", "b.local")]
        );
        let without = reparsed.render(&[]);
        assert_eq!(String::from_utf8(without).unwrap(), original);
    }

    #[test]
    fn no_block_gets_one_at_the_end_and_loses_it_again() {
        round_trip(
            "127.0.0.1\tlocalhost\n::1 localhost\n",
            &format!(
                "127.0.0.1\tlocalhost\n::1 localhost\n{BEGIN}\n127.0.0.1\ta.local\n\
                 127.0.0.2\tb.local\n{END}\n"
            ),
        );
    }

    #[test]
    fn missing_final_newline_stays_missing() {
        round_trip(
            "127.0.0.1 localhost",
            &format!("127.0.0.1 localhost\n{BEGIN}\n127.0.0.1\ta.local\n127.0.0.2\tb.local\n{END}"),
        );
    }

    #[test]
    fn crlf_files_keep_crlf() {
        round_trip(
            "127.0.0.1 localhost\r\n# comment\r\n",
            &format!(
                "127.0.0.1 localhost\r\n# comment\r\n{BEGIN}\r\n127.0.0.1\ta.local\r\n\
                 127.0.0.2\tb.local\r\n{END}\r\n"
            ),
        );
    }

    #[test]
    fn empty_file() {
        round_trip(
            "",
            &format!("{BEGIN}\n127.0.0.1\ta.local\n127.0.0.2\tb.local\n{END}\n"),
        );
    }

    #[test]
    fn block_in_the_middle_keeps_its_place() {
        let original = format!(
            "# top\n127.0.0.1 localhost\n{BEGIN}\n127.0.0.9\told.local\n{END}\n\n10.0.0.1 nas  # mine\n"
        );
        let parsed = parse(original.as_bytes(), file()).unwrap();
        assert_eq!(parsed.entries(), [entry("127.0.0.9", "old.local")]);
        let rendered = parsed.render(&[entry("127.0.0.3", "new.local")]);
        assert_eq!(
            String::from_utf8(rendered).unwrap(),
            format!(
                "# top\n127.0.0.1 localhost\n{BEGIN}\n127.0.0.3\tnew.local\n{END}\n\n10.0.0.1 nas  # mine\n"
            )
        );
        assert_eq!(
            String::from_utf8(parsed.render(&[])).unwrap(),
            "# top\n127.0.0.1 localhost\n\n10.0.0.1 nas  # mine\n"
        );
    }

    #[test]
    fn bytes_outside_the_block_survive_even_when_not_utf8() {
        let original = b"# caf\xe9\n127.0.0.1 localhost\n".to_vec();
        let parsed = parse(&original, file()).unwrap();
        let with = parsed.render(&[entry("127.0.0.1", "a.local")]);
        assert!(with.starts_with(&original));
        let without = parse(&with, file()).unwrap().render(&[]);
        assert_eq!(without, original);
    }

    #[test]
    fn duplicates_are_written_once() {
        let parsed = parse(b"", file()).unwrap();
        let out = parsed.render(&[entry("127.0.0.1", "a"), entry("127.0.0.1", "a")]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{BEGIN}\n127.0.0.1\ta\n{END}\n")
        );
    }

    #[test]
    fn begin_without_end_is_refused() {
        let text = format!("127.0.0.1 localhost\n{BEGIN}\n127.0.0.2\tx\n10.0.0.1 nas\n");
        let err = parse(text.as_bytes(), file()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the kftray block in /etc/hosts has no end marker (line 2): fix or remove it by hand"
        );
        let twice = format!("{BEGIN}\n{END}\n{BEGIN}\n{END}\n");
        assert!(matches!(
            parse(twice.as_bytes(), file()),
            Err(BlockError::Twice {
                first: 1,
                second: 3,
                ..
            })
        ));
    }

    #[test]
    fn names_outside_the_block_with_their_lines() {
        let text = format!(
            "# 127.0.0.1 commented.out\n127.0.0.1 localhost Loopback\n{BEGIN}\n127.0.0.2\tours\n{END}\n\
             10.0.0.1\tNAS nas.home # note\njunk\n"
        );
        let names = parse(text.as_bytes(), file()).unwrap().names_outside();
        let expected: BTreeMap<String, usize> = [
            ("localhost", 2),
            ("loopback", 2),
            ("nas", 6),
            ("nas.home", 6),
        ]
        .into_iter()
        .map(|(name, line)| (name.to_string(), line))
        .collect();
        assert_eq!(names, expected);
    }
}
