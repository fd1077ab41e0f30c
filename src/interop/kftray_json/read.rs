//! Reading kftray's JSON: every value checked where it stands, so that each problem is
//! pinned to its line and column.

use super::*;

/// Reads a kftray JSON export. Comments and trailing commas are accepted (kftray's own
/// documentation writes them); anything wrong is reported at its place, all at once.
pub fn parse(name: &Path, text: &str) -> Result<Parsed, Diagnostics> {
    let mut map = SourceMap::default();
    let dir = name.parent().map(Path::to_path_buf).unwrap_or_default();
    map.add(name, text.to_owned(), crate::config::Origin::Local, dir);
    let options = jsonc_parser::ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
    };
    let ast = match jsonc_parser::parse_to_ast(text, &Default::default(), &options) {
        Ok(ast) => ast,
        Err(e) => {
            let r = e.range();
            let issue = Issue::new("kftray::json-syntax", format!("JSON syntax: {}", e.kind()))
                .label(r.start..r.end.max(r.start + 1), "here")
                .help("a kftray export is a JSON array of objects: [{\"alias\": \"web\", ...}]");
            return Err(Diagnostics::from_issues(vec![issue], &map));
        }
    };
    let mut issues = Vec::new();
    let mut warnings = Vec::new();
    let objects: Vec<&Object<'_>> = match &ast.value {
        Some(Value::Array(array)) => array
            .elements
            .iter()
            .filter_map(|element| match element {
                Value::Object(o) => Some(o),
                other => {
                    issues.push(
                        Issue::new(
                            "kftray::json-type",
                            format!("expected an object, found {}", kind(other)),
                        )
                        .label(range(other), "not a forward")
                        .help("each element is one forward: {\"alias\": \"web\", \"workload_type\": \"service\", ...}"),
                    );
                    None
                }
            })
            .collect(),
        Some(Value::Object(o)) => vec![o],
        Some(other) => {
            issues.push(
                Issue::new(
                    "kftray::json-type",
                    format!("expected an array of forwards, found {}", kind(other)),
                )
                .label(range(other), "not an array")
                .help("a kftray export is a JSON array of objects: [{\"alias\": \"web\", ...}]"),
            );
            Vec::new()
        }
        None => Vec::new(),
    };
    if !issues.is_empty() {
        return Err(Diagnostics::from_issues(issues, &map));
    }
    let mut entries = Vec::new();
    for object in objects {
        let before = issues.len();
        let entry = read_entry(
            object,
            &mut issues,
            &mut |span: Range<usize>, message: String| {
                let pos = map.position(&span);
                warnings.push(Warning {
                    line: pos.line,
                    column: pos.column,
                    message,
                });
            },
        );
        if issues.len() == before {
            entries.push(entry);
        }
    }
    Ok(Parsed {
        entries,
        warnings,
        issues,
        map,
    })
}

fn range(value: &impl Ranged) -> Range<usize> {
    let r = value.range();
    r.start..r.end
}

fn kind(value: &Value<'_>) -> &'static str {
    match value {
        Value::StringLit(_) => "a string",
        Value::NumberLit(_) => "a number",
        Value::BooleanLit(_) => "a boolean",
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::NullKeyword(_) => "null",
    }
}

fn read_entry(
    object: &Object<'_>,
    issues: &mut Vec<Issue>,
    warn: &mut impl FnMut(Range<usize>, String),
) -> Entry {
    let mut entry = Entry {
        config: KftrayConfig::default(),
        span: range(object),
        fields: BTreeMap::new(),
    };
    let mut seen = BTreeSet::new();
    for prop in &object.properties {
        let name = prop.name.as_str();
        let name_span = range(&prop.name);
        if !seen.insert(name.to_owned()) {
            issues.push(
                Issue::new("kftray::json-duplicate", format!("`{name}` is given twice"))
                    .label(name_span, "again here")
                    .help("keep one of them"),
            );
            continue;
        }
        let Some(field) = FIELDS.iter().copied().find(|f| *f == name) else {
            if !NOT_CARRIED.contains(&name) {
                let hint = crate::config::did_you_mean(name, FIELDS)
                    .map(|m| format!(" (did you mean `{m}`?)"))
                    .unwrap_or_default();
                warn(name_span, format!("unknown field `{name}` ignored{hint}"));
            }
            continue;
        };
        if matches!(prop.value, Value::NullKeyword(_)) {
            continue;
        }
        entry.fields.insert(field, range(&prop.value));
        let c = &mut entry.config;
        match field {
            "local_port" | "remote_port" => {
                if let Some(port) = port(prop, issues) {
                    if field == "local_port" {
                        c.local_port = Some(port);
                    } else {
                        c.remote_port = Some(port);
                    }
                }
            }
            "domain_enabled" => c.domain_enabled = flag(prop, issues),
            "auto_loopback_address" => c.auto_loopback_address = flag(prop, issues),
            "cert_manager_enabled" => c.cert_manager_enabled = flag(prop, issues),
            "http_logs_enabled" => c.http_logs_enabled = flag(prop, issues),
            "http_logs_auto_cleanup" => c.http_logs_auto_cleanup = flag(prop, issues),
            "http_logs_max_file_size" => c.http_logs_max_file_size = count(prop, issues),
            "http_logs_retention_days" => c.http_logs_retention_days = count(prop, issues),
            _ => {
                let Some(s) = string(prop, issues) else {
                    continue;
                };
                let slot = match field {
                    "alias" => &mut c.alias,
                    "cert_issuer" => &mut c.cert_issuer,
                    "cert_issuer_kind" => &mut c.cert_issuer_kind,
                    "context" => &mut c.context,
                    "exposure_type" => &mut c.exposure_type,
                    "ingress_annotations" => &mut c.ingress_annotations,
                    "ingress_class" => &mut c.ingress_class,
                    "kubeconfig" => &mut c.kubeconfig,
                    "local_address" => &mut c.local_address,
                    "namespace" => &mut c.namespace,
                    "protocol" => &mut c.protocol,
                    "remote_address" => &mut c.remote_address,
                    "service" => &mut c.service,
                    "target" => &mut c.target,
                    _ => &mut c.workload_type,
                };
                *slot = Some(s);
            }
        }
    }
    entry
}

fn string(prop: &ObjectProp<'_>, issues: &mut Vec<Issue>) -> Option<String> {
    match &prop.value {
        Value::StringLit(s) => Some(s.value.to_string()),
        other => {
            issues.push(wrong_type(prop, other, "a string"));
            None
        }
    }
}

fn port(prop: &ObjectProp<'_>, issues: &mut Vec<Issue>) -> Option<u16> {
    let name = prop.name.as_str();
    match &prop.value {
        Value::NumberLit(n) => match n.value.parse::<u16>() {
            Ok(port) => Some(port),
            Err(_) => {
                issues.push(
                    Issue::new(
                        "kftray::json-port",
                        format!("`{name}` is {}, not a port number", n.value),
                    )
                    .label(range(n), "not in 0-65535")
                    .help("a port is a whole number from 1 to 65535 (local_port 0: any free port)"),
                );
                None
            }
        },
        other => {
            let mut issue = wrong_type(prop, other, "a port number");
            if let Value::StringLit(s) = other
                && s.value.parse::<u16>().is_ok()
            {
                issue = issue.help(format!(
                    "write the number without quotes: \"{name}\": {}",
                    s.value
                ));
            } else if let Value::StringLit(_) = other {
                issue = issue.help(
                    "kftray's JSON has port numbers only; a port name can be written in \
                     kftray.toml after importing",
                );
            }
            issues.push(issue);
            None
        }
    }
}

fn count(prop: &ObjectProp<'_>, issues: &mut Vec<Issue>) -> Option<u64> {
    match &prop.value {
        Value::NumberLit(n) if n.value.parse::<u64>().is_ok_and(|n| n > 0) => n.value.parse().ok(),
        Value::NumberLit(n) => {
            let name = prop.name.as_str();
            issues.push(
                Issue::new(
                    "kftray::json-number",
                    format!("`{name}` is {}, not a whole number above 0", n.value),
                )
                .label(range(n), "expected a whole number above 0")
                .help(format!("for example: \"{name}\": 7")),
            );
            None
        }
        other => {
            issues.push(wrong_type(prop, other, "a whole number above 0"));
            None
        }
    }
}

fn flag(prop: &ObjectProp<'_>, issues: &mut Vec<Issue>) -> Option<bool> {
    match &prop.value {
        Value::BooleanLit(b) => Some(b.value),
        Value::StringLit(s) if s.value == "true" || s.value == "false" => Some(s.value == "true"),
        other => {
            issues.push(wrong_type(prop, other, "true or false"));
            None
        }
    }
}

fn wrong_type(prop: &ObjectProp<'_>, value: &Value<'_>, expected: &str) -> Issue {
    let name = prop.name.as_str();
    Issue::new(
        "kftray::json-type",
        format!("`{name}` must be {expected}, not {}", kind(value)),
    )
    .label(range(value), format!("expected {expected}"))
    .help(match expected {
        "a string" => format!("write it in quotes: \"{name}\": \"...\""),
        "true or false" => format!("write \"{name}\": true or \"{name}\": false"),
        _ => format!("for example: \"{name}\": 8080"),
    })
}

pub(super) fn set(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !PLACEHOLDERS.contains(v))
        .map(str::to_owned)
}
