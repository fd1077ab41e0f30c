//! The change to a file as a unified diff, the way `git diff` shows it.

use std::path::Path;

/// A unified diff of `old` → `new` with three lines of context, headed by the file's name;
/// empty when nothing changes. `old: None` is a file that does not exist yet.
pub fn unified(path: &Path, old: Option<&str>, new: &str, color: bool) -> String {
    let before = old.unwrap_or("");
    if before == new {
        return String::new();
    }
    let name = path.display().to_string();
    let from = if old.is_some() {
        format!("a/{name}")
    } else {
        "/dev/null".to_owned()
    };
    let diff = similar::TextDiff::from_lines(before, new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&from, &format!("b/{name}"))
        .to_string();
    if !color {
        return text;
    }
    text.lines()
        .map(|line| {
            let paint = match line.as_bytes().first() {
                _ if line.starts_with("+++") || line.starts_with("---") => "1",
                Some(b'+') => "32",
                Some(b'-') => "31",
                Some(b'@') => "36",
                _ => return format!("{line}\n"),
            };
            format!("\x1b[{paint}m{line}\x1b[0m\n")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_shows_as_minus_and_plus() {
        let d = unified(
            Path::new("kftray.toml"),
            Some("a\nb\nc\n"),
            "a\nB\nc\n",
            false,
        );
        assert_eq!(
            d,
            "--- a/kftray.toml\n+++ b/kftray.toml\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
        assert_eq!(unified(Path::new("x"), Some("a\n"), "a\n", false), "");
        assert!(unified(Path::new("x"), None, "a\n", false).starts_with("--- /dev/null\n"));
    }
}
