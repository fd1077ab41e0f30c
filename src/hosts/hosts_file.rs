//! The hosts file as the helper writes it: only its kftray block changes, a reader sees the
//! old file or the new one (temporary file and rename, or in place where the file is a mount
//! point), and the file as the helper first found it is saved beside it.

use crate::hosts::block::{self, BlockError};
use crate::hosts::protocol::{Entry, ErrorKind, Refusal};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The hosts file unless told otherwise (Linux and macOS alike).
pub(crate) const DEFAULT_HOSTS_FILE: &str = "/etc/hosts";

/// The hosts file: `KFTRAY_HOSTS_FILE` when set, else [`DEFAULT_HOSTS_FILE`].
pub(crate) fn default_hosts_file() -> PathBuf {
    std::env::var_os("KFTRAY_HOSTS_FILE")
        .filter(|value| !value.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_HOSTS_FILE), PathBuf::from)
}

/// Why the hosts file was not changed.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// Its kftray block is damaged.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// A name asked for is one the file has outside the kftray block.
    #[error(
        "{name} is already in {}, line {line}, which kftray did not write: kftray will not \
         shadow it",
        file.display()
    )]
    Shadowed {
        /// The name.
        name: String,
        /// The hosts file.
        file: PathBuf,
        /// Where the file has it (from 1).
        line: usize,
    },
    /// It could not be read.
    #[error("cannot read {}: {source}", file.display())]
    Read {
        /// The hosts file.
        file: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// It (or its backup) could not be written.
    #[error("cannot write {}: {source}", file.display())]
    Write {
        /// The file being written.
        file: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

/// What the file holds is the user's to fix; what the system refused is a failure.
impl From<HostsError> for Refusal {
    fn from(e: HostsError) -> Refusal {
        let kind = match e {
            HostsError::Block(_) | HostsError::Shadowed { .. } => ErrorKind::Conflict,
            HostsError::Read { .. } | HostsError::Write { .. } => ErrorKind::Failed,
        };
        Refusal::new(kind, e.to_string())
    }
}

/// The hosts file whose kftray block the helper owns.
#[derive(Debug)]
pub(crate) struct HostsFile {
    path: PathBuf,
    /// Whether this helper has saved the file as it found it.
    backed_up: bool,
}

impl HostsFile {
    pub(crate) fn new(path: PathBuf) -> HostsFile {
        HostsFile {
            path,
            backed_up: false,
        }
    }

    /// Makes the kftray block hold `kept` and `added`, and nothing else. The names of `added`
    /// must not be ones the file has outside the block; `kept` were checked when they came.
    /// Nothing is written when anything is refused, nor when nothing changes.
    pub(crate) fn write(&mut self, kept: &[Entry], added: &[Entry]) -> Result<(), HostsError> {
        let original = self.read()?;
        let parsed = block::parse(&original, &self.path)?;
        let outside = parsed.names_outside();
        if let Some((name, &line)) = added
            .iter()
            .find_map(|entry| outside.get_key_value(&entry.name))
        {
            return Err(HostsError::Shadowed {
                name: name.clone(),
                file: self.path.clone(),
                line,
            });
        }
        let updated = parsed.render(&[kept, added].concat());
        if original == updated {
            return Ok(());
        }
        if !self.backed_up && self.path.exists() {
            let backup = backup_path(&self.path);
            write_backup(&backup, &original).map_err(|source| HostsError::Write {
                file: backup,
                source,
            })?;
            self.backed_up = true;
        }
        replace_file(&self.path, &updated).map_err(|source| HostsError::Write {
            file: self.path.clone(),
            source,
        })
    }

    /// The file's bytes; a missing file reads as empty.
    fn read(&self) -> Result<Vec<u8>, HostsError> {
        match fs::read(&self.path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(HostsError::Read {
                file: self.path.clone(),
                source,
            }),
        }
    }
}

fn backup_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".kftray-backup");
    PathBuf::from(name)
}

/// Saves the file as the helper found it, readable by all as /etc/hosts is.
fn write_backup(backup: &Path, original: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(backup)?;
    file.write_all(original)?;
    file.set_permissions(fs::Permissions::from_mode(0o644))?;
    file.sync_all()
}

/// Replaces the file's contents so that a reader sees the old file or the new one, never a
/// mix: a temporary file beside it (same mode and owner), fsync, rename over.
fn replace_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let meta = fs::metadata(path).ok();
    let mode = meta
        .as_ref()
        .map_or(0o644, |m| m.permissions().mode() & 0o7777);
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.kftray-{}", std::process::id()));
    let _ = fs::remove_file(&temp);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some(meta) = &meta {
            let own = file.metadata()?;
            if (own.uid(), own.gid()) != (meta.uid(), meta.gid()) {
                std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))?;
            }
        }
        file.write_all(contents)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    if let Err(e) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        // The hosts file is a mount point of its own (containers bind-mount /etc/hosts; so
        // does systemd's ReadWritePaths=/etc/hosts): nothing can be renamed over it. Rewrite
        // it in place instead; readers may see a partial file for an instant.
        return match e.raw_os_error() {
            Some(libc::EBUSY | libc::EXDEV) => rewrite_in_place(path, contents),
            _ => Err(e),
        };
    }
    // The rename itself is durable once the directory is synced; a failure here loses
    // nothing that is not also lost on a crash, so it is not an error.
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Overwrites from the start, then cuts to length: unlike truncating first, a crash
/// half-way never leaves an empty hosts file.
fn rewrite_in_place(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    file.write_all(contents)?;
    file.set_len(contents.len() as u64)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::block::{BEGIN, END};
    use crate::hosts::protocol::entry;

    const ORIGINAL: &str = "127.0.0.1\tlocalhost\n10.0.0.5 nas.home nas\n";

    #[test]
    fn the_block_is_written_and_the_original_saved_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        fs::write(&path, ORIGINAL).unwrap();
        let mut file = HostsFile::new(path.clone());
        let (kept, added) = (
            [entry("127.0.0.2", "a.local")],
            [entry("127.0.0.3", "b.local")],
        );
        file.write(&kept, &added).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{ORIGINAL}{BEGIN}\n127.0.0.2\ta.local\n127.0.0.3\tb.local\n{END}\n")
        );
        file.write(&[], &[]).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), ORIGINAL);
        let backup = dir.path().join("hosts.kftray-backup");
        assert_eq!(fs::read_to_string(&backup).unwrap(), ORIGINAL);
        assert_eq!(
            fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn an_added_name_the_file_has_is_refused_a_kept_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        fs::write(&path, ORIGINAL).unwrap();
        let mut file = HostsFile::new(path.clone());
        let nas = [entry("127.0.0.2", "nas")];
        let err = file.write(&[], &nas).unwrap_err();
        assert!(
            matches!(&err, HostsError::Shadowed { name, line: 2, .. } if name == "nas"),
            "{err}"
        );
        assert_eq!(Refusal::from(err).kind, ErrorKind::Conflict);
        assert_eq!(fs::read_to_string(&path).unwrap(), ORIGINAL);
        // A name the user added after kftray wrote it must still leave the block.
        file.write(&nas, &[]).unwrap();
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("127.0.0.2\tnas")
        );
    }

    #[test]
    fn a_missing_file_is_created_without_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        HostsFile::new(path.clone())
            .write(&[], &[entry("127.0.0.2", "a.local")])
            .unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{BEGIN}\n127.0.0.2\ta.local\n{END}\n")
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn in_place_rewrite_shortens_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        fs::write(&path, "a long line of text\n").unwrap();
        rewrite_in_place(&path, b"short\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "short\n");
    }

    #[test]
    fn replacing_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        fs::write(&path, "old\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        replace_file(&path, b"new\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
