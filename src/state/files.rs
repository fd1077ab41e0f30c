//! The files kftray keeps under `$KFTRAY_HOME`: private to the user, named safely, never
//! reached through a link someone planted, never in a folder another user owns.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Why a file or folder of kftray's own cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// A symbolic link where kftray keeps a file: whoever planted it may want kftray to
    /// write, or truncate, something else.
    #[error(
        "{} is a symbolic link; kftray does not follow links for its own files: remove it \
         (kftray creates the file)",
        path.display()
    )]
    Symlink {
        /// Where the link is.
        path: PathBuf,
    },
    /// A folder of another user's: they could read the status and stop the forwards.
    #[error(
        "{} belongs to another user (uid {owner}), so kftray will not keep its state there: \
         point KFTRAY_HOME at a folder of your own",
        path.display()
    )]
    NotYours {
        /// The folder.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
    },
    /// Anything else the OS refused.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// `text` as a file name under `$KFTRAY_HOME` (logs, the git cache): letters, digits, `-` and
/// `.` kept, anything else `_`.
pub fn file_name_of(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The run's log, `$KFTRAY_HOME/logs/<project path with / as _>.log`, private, appended to.
pub fn open_log(home: &Path, project: &str) -> Result<(PathBuf, File), PrivateFileError> {
    let dir = home.join("logs");
    create_private_dir(home)?;
    create_private_dir(&dir)?;
    let name = file_name_of(project);
    let path = dir.join(format!("{}.log", name.trim_start_matches('_')));
    let file = open_private_file(&path)?;
    Ok((path, file))
}

#[cfg(unix)]
pub(super) fn create_private_dir(dir: &Path) -> Result<(), PrivateFileError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let failed = |source| PrivateFileError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(failed)?;
    // Where a link leads is what counts: a home behind a link of the user's own (a dotfiles
    // setup) is theirs to make.
    let owner = std::fs::metadata(dir).map_err(failed)?.uid();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if owner != unsafe { libc::geteuid() } {
        return Err(PrivateFileError::NotYours {
            path: dir.to_path_buf(),
            owner,
        });
    }
    // An existing directory made by an older version or by hand is tightened too.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)
}

#[cfg(not(unix))]
pub(super) fn create_private_dir(dir: &Path) -> Result<(), PrivateFileError> {
    std::fs::create_dir_all(dir).map_err(|source| PrivateFileError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Opens (creating) `path` for appending, 0600, refusing a symbolic link in its place.
#[cfg(unix)]
pub(super) fn open_private_file(path: &Path) -> Result<File, PrivateFileError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(libc::ELOOP) {
                PrivateFileError::Symlink {
                    path: path.to_path_buf(),
                }
            } else {
                PrivateFileError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
    // On the open file, not the path: nothing can be swapped in between.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|source| PrivateFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(file)
}

#[cfg(not(unix))]
pub(super) fn open_private_file(path: &Path) -> Result<File, PrivateFileError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| PrivateFileError::Io {
            path: path.to_path_buf(),
            source,
        })
}
