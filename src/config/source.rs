//! The layered sources of one configuration, and the mapping from a span to a file, a line
//! and a column.
//!
//! The files are laid end to end in one address space (each starts after the previous one),
//! so a span alone says which file a value came from once the files are merged.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// One file's text and where it starts in the shared address space.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    pub offset: usize,
    pub origin: Origin,
    /// Where relative paths written in this file resolve.
    pub dir: PathBuf,
}

/// Who wrote a layer: this machine's user, or someone else (a team file fetched from git).
/// What a remote layer may decide alone is limited (see `validate.rs`, the trust rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// This machine's user: kftray.toml and kftray.local.toml.
    Local,
    /// Someone else: the team's file from git.
    Remote,
}

/// The files of one configuration, in layer order (the team's file from git when there is
/// one, then kftray.toml, then kftray.local.toml).
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceMap {
    files: Vec<SourceFile>,
}

/// A span resolved to a file and a position (line and column start at 1; the column counts
/// characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    pub file: usize,
    pub local: Range<usize>,
    pub line: usize,
    pub column: usize,
}

impl SourceMap {
    /// Adds a file and returns the offset its spans must be shifted by.
    pub(crate) fn add(&mut self, path: &Path, text: String, origin: Origin, dir: PathBuf) -> usize {
        let offset = self
            .files
            .last()
            .map_or(0, |last| last.offset + last.text.len() + 1);
        self.files.push(SourceFile {
            path: path.to_path_buf(),
            text,
            offset,
            origin,
            dir,
        });
        offset
    }

    pub(crate) fn files(&self) -> &[SourceFile] {
        &self.files
    }

    pub(crate) fn file(&self, index: usize) -> Option<&SourceFile> {
        self.files.get(index)
    }

    /// The file a span was read from.
    pub(crate) fn file_at(&self, offset: usize) -> Option<&SourceFile> {
        self.files.get(self.file_of(offset))
    }

    /// Which file a global offset belongs to.
    pub(crate) fn file_of(&self, offset: usize) -> usize {
        self.files
            .iter()
            .rposition(|f| f.offset <= offset)
            .unwrap_or(0)
    }

    pub(crate) fn position(&self, span: &Range<usize>) -> Position {
        let index = self.file_of(span.start);
        let Some(file) = self.files.get(index) else {
            return Position {
                file: 0,
                local: 0..0,
                line: 1,
                column: 1,
            };
        };
        let len = file.text.len();
        let mut start = span.start.saturating_sub(file.offset).min(len);
        while !file.text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = span.end.saturating_sub(file.offset).clamp(start, len);
        while !file.text.is_char_boundary(end) {
            end += 1;
        }
        let before = &file.text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position {
            file: index,
            local: start..end,
            line,
            column,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_map_to_their_file_line_and_column() {
        let mut map = SourceMap::default();
        let local = |map: &mut SourceMap, name: &str, text: &str| {
            map.add(Path::new(name), text.into(), Origin::Local, PathBuf::new())
        };
        assert_eq!(local(&mut map, "a.toml", "x = 1\ny = 2\n"), 0);
        let second = local(&mut map, "b.toml", "[t]\nzé = 3\n");
        assert_eq!(second, 13);
        let p = map.position(&(6..7));
        assert_eq!((p.file, p.line, p.column), (0, 2, 1));
        // "3" on line 2 of b.toml, after a two-byte character: column counts characters.
        let three = second + "[t]\nzé = ".len();
        let p = map.position(&(three..three + 1));
        assert_eq!((p.file, p.line, p.column), (1, 2, 6));
        assert_eq!(p.local, 10..11);
    }
}
