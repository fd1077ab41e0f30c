//! Aliases from elsewhere (kftray's free-text aliases, service names) made into kftray.toml
//! aliases, which are DNS labels, and recognized again on the way back.

/// `s` as a DNS label: lowercase ASCII letters and digits, every other run of characters one
/// `-`, no `-` at either end, at most 63 characters. Empty when nothing is left.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_matches('-').to_owned();
    out.truncate(63);
    out.trim_end_matches('-').to_owned()
}

/// The alias a forward gets from the name it came with, else from what it reaches.
pub fn alias_base(original: Option<&str>, target: &str) -> String {
    [original.unwrap_or(""), target]
        .into_iter()
        .map(slug)
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "forward".to_owned())
}

/// `name` itself when it is a DNS label already (a Kubernetes name is kept whole, `a--b`
/// included), else what [`alias_base`] makes of it.
pub fn label_of(name: &str, fallback: &str) -> String {
    if crate::config::is_dns_label(name) {
        name.to_owned()
    } else {
        alias_base(Some(name), fallback)
    }
}

/// Whether `alias` is what `alias_base` made of `description` (maybe with a `-N` added to
/// keep it unique): then the description is the name the forward came with.
pub fn came_from(alias: &str, description: &str, target: &str) -> bool {
    let base = alias_base(Some(description), target);
    match alias.strip_prefix(base.trim_end_matches('-')) {
        Some("") => alias == base,
        Some(rest) => rest
            .strip_prefix('-')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_becomes_a_dns_label() {
        assert_eq!(slug("Web Frontend (staging)"), "web-frontend-staging");
        assert_eq!(slug("api.dev.local"), "api-dev-local");
        assert_eq!(slug("__x__"), "x");
        assert_eq!(slug("ünïcode"), "n-code");
        assert_eq!(slug(&"a".repeat(70)).len(), 63);
        assert_eq!(slug(&format!("{}-b", "a".repeat(62))), "a".repeat(62));
        assert_eq!(alias_base(Some("..."), "redis.internal"), "redis-internal");
        assert_eq!(alias_base(None, "!!"), "forward");
        assert_eq!(label_of("a--b", "x"), "a--b");
        assert_eq!(label_of("A--B", "x"), "a-b");
    }

    #[test]
    fn the_description_an_alias_came_from_is_recognized() {
        assert!(came_from("web-front", "Web Front", "web"));
        assert!(came_from("web-front-2", "Web Front", "web"));
        assert!(came_from("redis-internal", "...", "redis.internal"));
        assert!(!came_from("web", "The storefront", "web"));
        assert!(!came_from("web-front-x", "Web Front", "web"));
        assert!(!came_from("web-frontend", "Web Front", "web"));
    }
}
