//! The cache against real repositories on disk (the git CLI makes them; libgit2 fetches
//! them through its local transport).

use super::*;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A work repository with one commit of kftray.toml on `main`.
fn upstream() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    commit(&work, "kftray.toml", "# one\n");
    (dir, work)
}

fn commit(work: &Path, path: &str, text: &str) -> String {
    let file = work.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "--allow-empty", "-m", "change"]);
    git(work, &["rev-parse", "HEAD"])
}

fn fetch(cache: &Cache, url: &RepoUrl, reference: &str) -> Result<String, GitError> {
    cache.fetch(url, reference, &mut Credentials::new(url))
}

#[test]
fn branches_head_tags_and_commits_are_fetched_and_read_from_the_tree() {
    let (dir, work) = upstream();
    let home = dir.path().join("home");
    let url = RepoUrl::parse(work.to_str().unwrap(), Path::new("/")).unwrap();
    let cache = Cache::open(&home, &url).unwrap();
    let first = fetch(&cache, &url, "main").unwrap();
    assert_eq!(first, git(&work, &["rev-parse", "HEAD"]));
    let file = cache.read(&first, Path::new("kftray.toml")).unwrap();
    assert_eq!(file.text, "# one\n");

    git(&work, &["tag", "v1"]);
    let second = commit(&work, "kftray.toml", "# two\n");
    assert_eq!(fetch(&cache, &url, "HEAD").unwrap(), second);
    assert_eq!(fetch(&cache, &url, "v1").unwrap(), first);
    assert_eq!(fetch(&cache, &url, &first[..10]).unwrap(), first);
    assert_eq!(fetch(&cache, &url, &first).unwrap(), first);

    // Another file changing leaves the blob of ours as it was.
    let third = commit(&work, "README", "x");
    assert_eq!(fetch(&cache, &url, "main").unwrap(), third);
    let a = cache.read(&second, Path::new("kftray.toml")).unwrap();
    let b = cache.read(&third, Path::new("kftray.toml")).unwrap();
    assert_eq!(a.blob, b.blob);

    let missing = cache
        .read(&third, Path::new("team/kftray.toml"))
        .unwrap_err();
    assert!(
        missing.message.contains("is not in the repository"),
        "{missing:?}"
    );
    let err = fetch(&cache, &url, "nope").unwrap_err();
    assert!(
        matches!(&err, GitError::NoRef { reference, .. } if reference == "nope"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("has no branch or tag `nope`"),
        "{err}"
    );
}

#[test]
fn the_cache_remembers_the_last_fetched_and_applied_commits_offline() {
    let (dir, work) = upstream();
    let home = dir.path().join("home");
    let url = RepoUrl::parse(work.to_str().unwrap(), Path::new("/")).unwrap();
    let head = fetch(&Cache::open(&home, &url).unwrap(), &url, "main").unwrap();
    let cache = Cache::open(&home, &url).unwrap();
    cache.set_applied("main", &head).unwrap();
    std::fs::remove_dir_all(&work).unwrap();

    let cache = Cache::open(&home, &url).unwrap();
    let err = fetch(&cache, &url, "main").unwrap_err();
    assert!(matches!(err, GitError::Fetch { .. }), "{err:?}");
    assert!(err.to_string().starts_with("cannot fetch from"), "{err}");
    assert_eq!(cache.last_fetched("main").as_deref(), Some(head.as_str()));
    assert_eq!(cache.last_applied("main").as_deref(), Some(head.as_str()));
    assert_eq!(cache.last_applied("other"), None);
    // No work tree and no file named after the URL's secrets: a bare repository.
    let dirs: Vec<_> = std::fs::read_dir(home.join("git")).unwrap().collect();
    assert_eq!(dirs.len(), 1);
    assert!(dirs[0].as_ref().unwrap().path().join("HEAD").is_file());
}

// Unix links and modes.
#[cfg(unix)]
#[test]
fn a_link_a_submodule_or_a_huge_file_at_the_path_is_refused_unread() {
    let (dir, work) = upstream();
    let home = dir.path().join("home");
    let url = RepoUrl::parse(work.to_str().unwrap(), Path::new("/")).unwrap();
    // A link in the repository to a file of this machine.
    std::fs::remove_file(work.join("kftray.toml")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", work.join("kftray.toml")).unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "link"]);
    let cache = Cache::open(&home, &url).unwrap();
    let linked = fetch(&cache, &url, "main").unwrap();
    let err = cache.read(&linked, Path::new("kftray.toml")).unwrap_err();
    assert!(err.message.contains("symbolic link"), "{err:?}");

    // A submodule (a commit in the tree) at the path.
    std::fs::remove_file(work.join("kftray.toml")).unwrap();
    git(&work, &["rm", "-q", "--cached", "kftray.toml"]);
    git(
        &work,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{linked},kftray.toml"),
        ],
    );
    git(&work, &["commit", "-q", "-m", "submodule"]);
    let sub = fetch(&cache, &url, "main").unwrap();
    let err = cache.read(&sub, Path::new("kftray.toml")).unwrap_err();
    assert!(err.message.contains("submodule"), "{err:?}");

    // 17 MiB of comments: more than any configuration.
    git(&work, &["rm", "-q", "--cached", "kftray.toml"]);
    let line = format!("# {}\n", "x".repeat(1021));
    let huge = commit(&work, "kftray.toml", &line.repeat(17 * 1024));
    assert_eq!(fetch(&cache, &url, "main").unwrap(), huge);
    let err = cache.read(&huge, Path::new("kftray.toml")).unwrap_err();
    assert!(err.message.contains("17 MiB"), "{err:?}");
}
