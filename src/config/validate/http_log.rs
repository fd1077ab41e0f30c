//! `http_log`: a forward's own keys, else `[defaults]`' keys, else the built-in settings.

use super::Context;
use crate::config::diagnostic::Issue;
use crate::config::effective::HttpLog;
use crate::config::model::{At, ForwardSpec, HttpLogSpec, HttpLogTable, Protocol, SizeSpec};
use crate::config::{parse_duration, parse_size, trust};

impl Context<'_> {
    pub(super) fn http_log(
        &self,
        spec: &ForwardSpec,
        protocol: Protocol,
        issues: &mut Vec<Issue>,
    ) -> Option<HttpLog> {
        let own = spec.http_log.as_ref();
        let inherited = self.defaults.http_log.as_ref();
        let enabled = own.or(inherited).is_some_and(|at| switched_on(&at.value));
        if !enabled {
            return None;
        }
        if protocol == Protocol::Udp {
            // `[defaults]` turning logs on for every forward does not mean the UDP ones.
            if let Some(own) = own {
                issues.push(
                    Issue::new(
                        "kftray::http-log",
                        format!("`{}` is a UDP forward: HTTP runs over TCP", self.alias),
                    )
                    .label(own.span.clone(), "nothing HTTP to log here")
                    .help("remove `http_log` from this forward"),
                );
            }
            return None;
        }
        let tables = [own, inherited].map(|at| match at.map(|at| &at.value) {
            Some(HttpLogSpec::Table(table)) => Some(&**table),
            _ => None,
        });
        let mut log = HttpLog::default();
        if let Some(at) = pick(&tables, |t| t.max_file_size.as_ref()) {
            match bytes(at, "max_file_size", issues) {
                Some(0) => issues.push(
                    Issue::new("kftray::http-log", "`max_file_size` must be more than zero")
                        .label(at.span.clone(), "zero")
                        .help("write a size like \"10MiB\""),
                ),
                Some(n) => log.max_file_size = n,
                None => {}
            }
        }
        if let Some(at) = pick(&tables, |t| t.body_limit.as_ref()) {
            log.body_limit = bytes(at, "body_limit", issues).unwrap_or(log.body_limit);
        }
        if let Some(at) = pick(&tables, |t| t.retention.as_ref()) {
            if at.value == "forever" {
                log.retention = None;
            } else {
                match parse_duration(&at.value) {
                    Ok(d) => log.retention = Some(d),
                    Err(e) => issues.push(
                        Issue::new("kftray::http-log", format!("invalid `retention`: {e}"))
                            .label(at.span.clone(), "not a duration")
                            .help("write a duration like \"7d\" or \"12h\", or \"forever\""),
                    ),
                }
            }
        }
        let redact = pick(&tables, |t| t.redact.as_ref());
        let reveal = pick(&tables, |t| t.reveal.as_ref());
        let redact = header_names(redact, issues);
        let mut reveal_names = header_names(reveal, issues);
        if let Some(reveal) = reveal {
            trust::redaction(self.alias, reveal, self.map, issues);
            for name in &reveal.value {
                let lower = name.value.to_ascii_lowercase();
                if !HttpLog::SECRET_HEADERS.contains(&lower.as_str()) {
                    reveal_names.retain(|n| *n != lower);
                    issues.push(
                        Issue::new(
                            "kftray::http-log",
                            format!("`{}` is not redacted unless you ask for it", name.value),
                        )
                        .label(name.span.clone(), "not one of the four redacted by default")
                        .help(
                            "`reveal` takes Authorization, Cookie, Set-Cookie or \
                             Proxy-Authorization; for another header, leave it out of `redact`",
                        ),
                    );
                }
            }
        }
        log.redact.retain(|h| !reveal_names.contains(h));
        log.redact.extend(redact);
        log.redact.sort();
        log.redact.dedup();
        Some(log)
    }
}

/// A setting from the first table that has it: the forward's, then `[defaults]`'.
fn pick<'a, T>(
    tables: &[Option<&'a HttpLogTable>; 2],
    key: impl Fn(&'a HttpLogTable) -> Option<&'a At<T>>,
) -> Option<&'a At<T>> {
    tables.iter().flatten().find_map(|t| key(t))
}

fn switched_on(spec: &HttpLogSpec) -> bool {
    match spec {
        HttpLogSpec::Switch(on) => *on,
        HttpLogSpec::Table(table) => table.enabled.as_ref().is_none_or(|e| e.value),
    }
}

fn bytes(at: &At<SizeSpec>, key: &str, issues: &mut Vec<Issue>) -> Option<u64> {
    let parsed = match &at.value {
        SizeSpec::Bytes(n) => u64::try_from(*n).map_err(|_| "a size cannot be negative".to_owned()),
        SizeSpec::Text(text) => parse_size(text).map_err(|e| e.to_string()),
    };
    parsed
        .map_err(|why| {
            issues.push(
                Issue::new("kftray::http-log", format!("invalid `{key}`: {why}"))
                    .label(at.span.clone(), "not a size")
                    .help(format!(
                        "write a size like {key} = \"64KiB\", or a number of bytes"
                    )),
            );
        })
        .ok()
}

/// The valid header names of a list, lowercase; the others are reported.
fn header_names(list: Option<&At<Vec<At<String>>>>, issues: &mut Vec<Issue>) -> Vec<String> {
    let mut names = Vec::new();
    for name in list.iter().flat_map(|l| &l.value) {
        if is_header_name(&name.value) {
            names.push(name.value.to_ascii_lowercase());
        } else {
            issues.push(
                Issue::new(
                    "kftray::http-log",
                    format!("`{}` is not an HTTP header name", name.value),
                )
                .label(name.span.clone(), "not a header name")
                .help("write the name alone, like \"X-Api-Key\", without ':' or a value"),
            );
        }
    }
    names
}

/// RFC 9110's token: the characters a field name may hold.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
