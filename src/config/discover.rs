//! Finding the file as git and cargo find theirs: in the current directory or the nearest
//! parent that has one.

use std::path::{Path, PathBuf};

/// The file kftray looks for.
pub const FILE_NAME: &str = "kftray.toml";

/// The nearest `kftray.toml` in `start` or one of its parents.
pub fn discover(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

/// The project a file belongs to: the folder holding it, as an absolute path. Relative paths
/// in the file are read against it, and `status` and `down` find its run by it from any
/// subdirectory or terminal.
pub fn project_dir(config: &Path) -> PathBuf {
    let dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// The personal overlay beside a file: `kftray.toml` → `kftray.local.toml`, and
/// `team.toml` → `team.local.toml`.
pub fn local_path(main: &Path) -> PathBuf {
    let stem = main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kftray".to_owned());
    main.with_file_name(format!("{stem}.local.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_parent_wins() {
        let root = tempfile::tempdir().unwrap();
        let nested = root.path().join("a/b/c");
        std::fs::create_dir_all(&nested).unwrap();
        assert_eq!(discover(&nested), None);
        std::fs::write(root.path().join(FILE_NAME), "").unwrap();
        assert_eq!(discover(&nested), Some(root.path().join(FILE_NAME)));
        std::fs::write(root.path().join("a/b").join(FILE_NAME), "").unwrap();
        assert_eq!(
            discover(&nested),
            Some(root.path().join("a/b").join(FILE_NAME))
        );
    }

    #[test]
    fn the_overlay_sits_beside_the_file() {
        assert_eq!(
            local_path(Path::new("dir/kftray.toml")),
            Path::new("dir/kftray.local.toml")
        );
        assert_eq!(
            local_path(Path::new("team.toml")),
            Path::new("team.local.toml")
        );
    }
}
