//! Syntax rules for the strings a forward contains: names as Kubernetes defines them, label
//! selectors as kubectl parses them, ports, durations. Each check returns what is wrong, and
//! where in the string when that helps to point at it.

use std::ops::Range;

/// A problem inside a string value: the message, and the byte range inside the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flaw {
    pub message: String,
    pub at: Option<Range<usize>>,
}

impl Flaw {
    fn new(message: impl Into<String>, at: Option<Range<usize>>) -> Self {
        Flaw {
            message: message.into(),
            at,
        }
    }
}

/// RFC 1123 label, as Kubernetes requires for namespaces and service names: lowercase
/// letters, digits and '-', starting and ending with a letter or digit, at most 63 characters.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain (dot-separated labels, at most 253 characters), as Kubernetes requires
/// for most object names.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A host name (letters of either case allowed) or an IP address.
pub(crate) fn is_host(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.split('.')
            .all(|label| is_dns_label(&label.to_ascii_lowercase()))
}

/// IANA service name, which Kubernetes uses for port names: at most 15 characters of
/// lowercase letters, digits and '-', with at least one letter and no '--'.
pub(crate) fn is_port_name(s: &str) -> bool {
    is_dns_label(s)
        && s.len() <= 15
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.contains("--")
}

/// A tag: what `--tag` can name on the command line.
pub(crate) fn is_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks a label selector in kubectl's syntax: comma-separated requirements `key`, `!key`,
/// `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`.
pub(crate) fn check_selector(selector: &str) -> Result<(), Flaw> {
    if selector.trim().is_empty() {
        return Err(Flaw::new(
            "an empty selector would match every pod of the namespace",
            None,
        ));
    }
    for (start, part) in split_requirements(selector)? {
        check_requirement(part, start)?;
    }
    Ok(())
}

/// Splits on the commas that are not inside parentheses, keeping each part's offset.
fn split_requirements(s: &str) -> Result<Vec<(usize, &str)>, Flaw> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| Flaw::new("unbalanced `)`", Some(i..i + 1)))?;
            }
            ',' if depth == 0 => {
                parts.push((start, &s[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err(Flaw::new(
            "unclosed `(`",
            Some(s.len().saturating_sub(1)..s.len()),
        ));
    }
    parts.push((start, &s[start..]));
    Ok(parts)
}

fn check_requirement(part: &str, offset: usize) -> Result<(), Flaw> {
    let lead = part.len() - part.trim_start().len();
    let req = part.trim();
    let at = offset + lead;
    let whole = Some(at..at + req.len());
    if req.is_empty() {
        return Err(Flaw::new(
            "empty requirement (a stray comma?)",
            Some(offset..offset),
        ));
    }
    if let Some(key) = req.strip_prefix('!') {
        return check_key(key.trim(), at + 1 + (key.len() - key.trim_start().len()));
    }
    for op in [" notin ", " in "] {
        if let Some(pos) = req.find(op) {
            let key = req[..pos].trim();
            check_key(key, at)?;
            let list = req[pos + op.len()..].trim();
            let list_at = at + req.len() - list.len();
            let Some(inner) = list.strip_prefix('(').and_then(|l| l.strip_suffix(')')) else {
                return Err(Flaw::new(
                    format!(
                        "`{}` needs a list of values in parentheses, e.g. `(a,b)`",
                        op.trim()
                    ),
                    Some(list_at..list_at + list.len()),
                ));
            };
            if inner.trim().is_empty() {
                return Err(Flaw::new(
                    format!("`{}` needs at least one value", op.trim()),
                    Some(list_at..list_at + list.len()),
                ));
            }
            let mut value_at = list_at + 1;
            for value in inner.split(',') {
                let lead = value.len() - value.trim_start().len();
                check_value(value.trim(), value_at + lead)?;
                value_at += value.len() + 1;
            }
            return Ok(());
        }
    }
    for op in ["!=", "==", "="] {
        if let Some(pos) = req.find(op) {
            let key = req[..pos].trim_end();
            check_key(key, at)?;
            let value = &req[pos + op.len()..];
            let lead = value.len() - value.trim_start().len();
            return check_value(value.trim(), at + pos + op.len() + lead);
        }
    }
    if req.contains(['<', '>']) {
        return Err(Flaw::new(
            "`<` and `>` are not supported in port-forward selectors",
            whole,
        ));
    }
    check_key(req, at)
}

/// A label key, or any qualified name of that shape (an annotation's key), at `at` in its text.
pub(crate) fn check_key(key: &str, at: usize) -> Result<(), Flaw> {
    let span = Some(at..at + key.len());
    if key.is_empty() {
        return Err(Flaw::new("missing label key", Some(at..at)));
    }
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            if !is_dns_subdomain(prefix) {
                return Err(Flaw::new(
                    format!("label key prefix `{prefix}` is not a DNS subdomain"),
                    span,
                ));
            }
            name
        }
        None => key,
    };
    if name.is_empty() || name.len() > 63 || !is_label_chars(name) {
        return Err(Flaw::new(
            format!(
                "`{key}` is not a valid label key (at most 63 letters, digits, '-', '_' or '.', \
                 starting and ending with a letter or digit)"
            ),
            span,
        ));
    }
    Ok(())
}

fn check_value(value: &str, at: usize) -> Result<(), Flaw> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 || !is_label_chars(value) {
        return Err(Flaw::new(
            format!(
                "`{value}` is not a valid label value (at most 63 letters, digits, '-', '_' or \
                 '.', starting and ending with a letter or digit)"
            ),
            Some(at..at + value.len()),
        ));
    }
    Ok(())
}

fn is_label_chars(s: &str) -> bool {
    let bytes = s.as_bytes();
    let edge = |b: &u8| b.is_ascii_alphanumeric();
    bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The closest known name to `unknown`, when it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    unknown: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for good in ["web", "a", "web-1", "0abc"] {
            assert!(is_dns_label(good), "{good}");
        }
        for bad in ["", "Web", "web_1", "-web", "web-", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }

    #[test]
    fn port_names_follow_iana() {
        assert!(is_port_name("http"));
        assert!(is_port_name("grpc-web"));
        assert!(!is_port_name("8080"));
        assert!(!is_port_name("a--b"));
        assert!(!is_port_name("much-too-long-name"));
    }

    #[test]
    fn selectors_in_kubectl_syntax_are_accepted() {
        for good in [
            "app=web",
            "app==web,tier!=cache",
            "app in (web, api),!canary",
            "environment notin (prod)",
            "app.kubernetes.io/name=web",
            "release",
            "app=",
        ] {
            assert_eq!(check_selector(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn selector_errors_point_inside_the_string() {
        let flaw = check_selector("app=web,tier=bad value").unwrap_err();
        assert_eq!(flaw.at, Some(13..22));
        let flaw = check_selector("app=web,,x=y").unwrap_err();
        assert!(flaw.message.contains("stray comma"));
        let flaw = check_selector("app in (a,b").unwrap_err();
        assert!(flaw.message.contains("unclosed"));
        let flaw = check_selector("app in a").unwrap_err();
        assert_eq!(flaw.at, Some(7..8));
        let flaw = check_selector("-app=x").unwrap_err();
        assert_eq!(flaw.at, Some(0..4));
        assert!(check_selector("  ").is_err());
        assert!(check_selector("x>1").is_err());
    }

    #[test]
    fn suggestions_for_typos_only() {
        let known = ["service", "selector", "remote_port", "local_port"];
        assert_eq!(did_you_mean("servce", known), Some("service"));
        assert_eq!(did_you_mean("remote_prot", known), Some("remote_port"));
        assert_eq!(did_you_mean("zzz", known), None);
    }
}
