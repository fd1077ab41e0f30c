//! Stamps what `kftray --version` says beyond the crate version: the commit it was built from,
//! and the relay image it asks clusters for (pinned by digest in a release build).

use std::path::Path;
use std::process::Command;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir);
    println!("cargo:rustc-env=KFTRAY_COMMIT={}", commit(dir));
    println!(
        "cargo:rustc-env=KFTRAY_RELAY_IMAGE={}",
        relay_image(dir, &std::env::var("CARGO_PKG_VERSION").unwrap())
    );
}

/// The commit: from the `.cargo_vcs_info.json` that `cargo package` writes into a crate (one
/// from crates.io), else from git in a checkout, else "unknown" (a tarball of the sources).
/// The packaged file comes first: a crate unpacked inside some other repository must not
/// take that repository's commit for its own.
fn commit(dir: &Path) -> String {
    println!("cargo:rerun-if-env-changed=KFTRAY_COMMIT");
    if let Ok(given) = std::env::var("KFTRAY_COMMIT") {
        return given;
    }
    let vcs_info = dir.join(".cargo_vcs_info.json");
    if let Some(sha) = std::fs::read_to_string(&vcs_info)
        .ok()
        .and_then(|text| sha1_in(&text))
    {
        rerun_if_changed(&vcs_info);
        return sha[..12].to_string();
    }
    let Some(sha) = git(dir, &["rev-parse", "HEAD"]) else {
        return "unknown".to_string();
    };
    // A new commit changes HEAD or the ref it names; either reruns this.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(dir, &["symbolic-ref", "-q", "HEAD"]));
    for path in watched {
        if let Some(file) = git(dir, &["rev-parse", "--git-path", &path]) {
            rerun_if_changed(&dir.join(file));
        }
    }
    sha[..12.min(sha.len())].to_string()
}

/// Only for a file that exists: cargo reruns the script at every build for a missing one, and
/// kftray's library would be compiled again each time.
fn rerun_if_changed(file: &Path) {
    if file.exists() {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// The `"sha1": "…"` of `.cargo_vcs_info.json`, without a JSON parser for one field.
fn sha1_in(text: &str) -> Option<String> {
    let after = &text[text.find("\"sha1\"")? + 6..];
    let start = after.find('"')? + 1;
    let sha = after[start..].split('"').next()?;
    (sha.len() >= 12 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then(|| sha.to_string())
}

/// kftray's own relay image of this version, by digest when the release set one: in the
/// environment (`KFTRAY_RELAY_DIGEST`, the release workflow's binaries) or in the file
/// `relay-image.digest` (written into the crate it publishes).
fn relay_image(dir: &Path, version: &str) -> String {
    println!("cargo:rerun-if-env-changed=KFTRAY_RELAY_DIGEST");
    let file = dir.join("relay-image.digest");
    rerun_if_changed(&file);
    let digest = std::env::var("KFTRAY_RELAY_DIGEST")
        .ok()
        .or_else(|| std::fs::read_to_string(&file).ok())
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());
    let image = format!("ghcr.io/kftray/kftray-relay:{version}");
    match digest {
        None => image,
        Some(digest) => {
            let hex = digest.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                panic!("the relay image digest {digest:?} is not sha256:<64 lowercase hex>");
            }
            format!("{image}@{digest}")
        }
    }
}
