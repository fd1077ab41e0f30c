//! Writing a configuration so that no reader ever sees half of it: a temporary file in the
//! same directory, flushed to disk, given the old file's permissions, then renamed over it.
//! A running `kftray up` that reloads on save reads either the old file or the new one.

use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path} changed on disk while it was being edited; nothing was written, try again")]
    Changed { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Replaces `path` with `text`. `expected` is what the file held when it was read (`None`:
/// it did not exist); if it holds something else now, someone saved it meanwhile and nothing
/// is written. A symlink is followed, so the link stays and its target changes.
pub fn write_atomically(path: &Path, expected: Option<&str>, text: &str) -> Result<(), WriteError> {
    let io = |source: std::io::Error| WriteError::Io {
        path: path.to_path_buf(),
        source,
    };
    let target = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(io(e)),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let permissions = match std::fs::metadata(&target) {
        Ok(meta) => Some(meta.permissions()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kftray.toml".into());
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(io)?;
    temp.write_all(text.as_bytes()).map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    let permissions = permissions.unwrap_or_else(default_permissions);
    std::fs::set_permissions(temp.path(), permissions).map_err(io)?;

    let now = match std::fs::read_to_string(&target) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    if now.as_deref() != expected {
        return Err(WriteError::Changed {
            path: path.to_path_buf(),
        });
    }
    temp.persist(&target).map_err(|e| io(e.error))?;
    // The rename itself is durable only once the directory is.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A new file is readable by everyone and writable by its owner, as an editor would create
/// it (the temporary file starts private).
fn default_permissions() -> std::fs::Permissions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::Permissions::from_mode(0o644)
    }
    #[cfg(not(unix))]
    {
        let file = tempfile::tempfile().expect("a temporary file");
        file.metadata().expect("its metadata").permissions()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_mode_survives_and_no_temporary_file_is_left() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kftray.toml");
        std::fs::write(&path, "a = 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, Some("a = 1\n"), "a = 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a = 2\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["kftray.toml"]);
    }

    #[test]
    fn a_file_saved_meanwhile_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kftray.toml");
        std::fs::write(&path, "a = 1\n# someone's edit\n").unwrap();
        let err = write_atomically(&path, Some("a = 1\n"), "a = 2\n").unwrap_err();
        assert!(matches!(err, WriteError::Changed { .. }), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a = 1\n# someone's edit\n"
        );
        // A file that appeared meanwhile is not overwritten either.
        let new = dir.path().join("new.toml");
        std::fs::write(&new, "x = 1\n").unwrap();
        assert!(write_atomically(&new, None, "a = 2\n").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_keeps_pointing_at_the_edited_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("team.toml");
        let link = dir.path().join("kftray.toml");
        std::fs::write(&real, "a = 1\n").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomically(&link, Some("a = 1\n"), "a = 2\n").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "a = 2\n");
    }
}
