//! An exchange as the `.http` file holds it, in the format VS Code's REST Client and
//! JetBrains' HTTP Client read: `###` between entries, the request as it can be sent again,
//! and the response beneath it as comment lines, which both clients skip.
//!
//! Each entry also carries one `# kftray: {json}` line, which `kftray logs http` reads.

use super::parse::{Head, StartLine};
use super::record::{Body, Exchange};
use crate::config::format_size;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io::Read;
use std::time::{Duration, SystemTime};

/// What `kftray logs http` shows of an entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<f64>,
    #[serde(default)]
    pub request_bytes: u64,
    #[serde(default)]
    pub response_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The line prefix of an entry's summary.
pub const SUMMARY: &str = "# kftray: ";

pub(super) fn timestamp(at: SystemTime) -> String {
    jiff::Timestamp::try_from(at)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default()
}

/// A note between entries (not HTTP, entries dropped).
pub(super) fn note(at: SystemTime, text: &str) -> String {
    let summary = Summary {
        at: timestamp(at),
        method: None,
        url: None,
        status: None,
        ms: None,
        request_bytes: 0,
        response_bytes: 0,
        note: Some(text.to_owned()),
    };
    format!(
        "### {text}\n{SUMMARY}{}\n\n",
        serde_json::to_string(&summary).unwrap_or_default()
    )
}

pub(super) fn entry(exchange: &Exchange, body_limit: u64) -> String {
    let mut out = String::new();
    let status = exchange
        .response
        .as_ref()
        .and_then(|(head, _)| match &head.line {
            StartLine::Response { code, reason, .. } => Some((*code, reason.as_str())),
            StartLine::Request { .. } => None,
        });
    let path = url_path(&exchange.url);
    let _ = match status {
        Some((code, reason)) => writeln!(out, "### {} {path} -> {code} {reason}", exchange.method),
        None => writeln!(out, "### {} {path} -> no response", exchange.method),
    };
    let summary = Summary {
        at: timestamp(exchange.at),
        method: Some(exchange.method.clone()),
        url: Some(exchange.url.clone()),
        status: status.map(|(code, _)| code),
        ms: Some(millis(exchange.took)),
        request_bytes: exchange.request_body.total,
        response_bytes: exchange.response.as_ref().map_or(0, |(_, b)| b.total),
        note: exchange.note.clone(),
    };
    let _ = writeln!(
        out,
        "{SUMMARY}{}",
        serde_json::to_string(&summary).unwrap_or_default()
    );
    if let Some(note) = &exchange.note {
        let _ = writeln!(out, "# note: {note}");
    }
    let chunked = exchange
        .request_headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let _ = writeln!(
        out,
        "{} {} HTTP/1.{}",
        exchange.method, exchange.url, exchange.version
    );
    for (name, value) in &exchange.request_headers {
        // Sent again, the body is whole text: the client frames it itself.
        if chunked && name.eq_ignore_ascii_case("transfer-encoding") {
            let _ = writeln!(
                out,
                "# {name}: {value} (left out: the body below is decoded)"
            );
            continue;
        }
        let _ = writeln!(out, "{name}: {value}");
    }
    out.push('\n');
    let content_type = header(&exchange.request_headers, "content-type");
    request_body(&mut out, &exchange.request_body, content_type);
    for code in &exchange.interim {
        let _ = writeln!(out, "# <- HTTP/1.1 {code} (interim)");
    }
    if let Some((head, body)) = &exchange.response {
        response(&mut out, head, body, exchange, body_limit);
    }
    out.push('\n');
    out
}

fn response(out: &mut String, head: &Head, body: &Body, exchange: &Exchange, limit: u64) {
    let StartLine::Response {
        code,
        reason,
        minor,
    } = &head.line
    else {
        return;
    };
    let waited = exchange
        .waited
        .map(|w| format!(", waited {:.1} ms", millis(w)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "# <- HTTP/1.{minor} {code} {reason} ({:.1} ms{waited})",
        millis(exchange.took)
    );
    for (name, value) in &head.headers {
        let _ = writeln!(out, "# {name}: {value}");
    }
    if body.total == 0 {
        return;
    }
    out.push_str("#\n");
    let (shown, decoding) = decoded(head, body, limit);
    if let Some(decoding) = decoding {
        let _ = writeln!(out, "# ({decoding})");
    }
    let content_type = head.header("content-type");
    match text_of(&shown, content_type) {
        Some(text) => {
            for line in text.lines() {
                let _ = writeln!(out, "# {line}");
            }
        }
        None => {
            let _ = writeln!(out, "# {}", binary_summary(&shown, body, content_type));
        }
    }
    if body.is_cut() {
        let _ = writeln!(
            out,
            "# (body cut at {} of {})",
            format_size(body.kept.len() as u64),
            format_size(body.total)
        );
    }
}

fn request_body(out: &mut String, body: &Body, content_type: Option<&str>) {
    if body.total == 0 {
        return;
    }
    match text_of(&body.kept, content_type) {
        // The clients drop lines that look like comments, and `###` would end the entry.
        Some(text) if !body.is_cut() && !text.lines().any(looks_like_comment) => {
            out.push_str(text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
        Some(text) => {
            let why = if body.is_cut() {
                format!(
                    "cut at {} of {}",
                    format_size(body.kept.len() as u64),
                    format_size(body.total)
                )
            } else {
                "it has lines the clients would read as comments".to_owned()
            };
            let _ = writeln!(out, "# (request body shown as a comment: {why})");
            for line in text.lines() {
                let _ = writeln!(out, "# {line}");
            }
        }
        None => {
            let _ = writeln!(out, "# {}", binary_summary(&body.kept, body, content_type));
        }
    }
    out.push('\n');
}

fn looks_like_comment(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with('#') || line.starts_with("//")
}

/// The body as a person reads it: gzip and deflate undone (up to `limit` bytes of output).
fn decoded(head: &Head, body: &Body, limit: u64) -> (Vec<u8>, Option<String>) {
    let Some(encoding) = head.header("content-encoding").map(str::trim) else {
        return (body.kept.clone(), None);
    };
    let mut out = Vec::new();
    let done = match encoding.to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(&body.kept[..])
            .take(limit)
            .read_to_end(&mut out),
        "deflate" => {
            // Most servers send zlib-wrapped deflate, some raw: try both.
            let zlib = flate2::read::ZlibDecoder::new(&body.kept[..])
                .take(limit)
                .read_to_end(&mut out);
            if zlib.is_err() {
                out.clear();
                flate2::read::DeflateDecoder::new(&body.kept[..])
                    .take(limit)
                    .read_to_end(&mut out)
            } else {
                zlib
            }
        }
        other => {
            return (
                body.kept.clone(),
                Some(format!("{other}-encoded: shown as sent")),
            );
        }
    };
    match done {
        Ok(_) => (
            out,
            Some(format!(
                "{encoding}-decoded from {}",
                format_size(body.total)
            )),
        ),
        // A body cut at the limit ends mid-stream: what decoded is still worth showing.
        Err(_) if !out.is_empty() => (out, Some(format!("{encoding}-decoded, in part"))),
        Err(e) => (
            body.kept.clone(),
            Some(format!(
                "could not {encoding}-decode it ({e}): shown as sent"
            )),
        ),
    }
}

/// The bytes as text, if they are: a textual type (or none) and valid UTF-8 without
/// control characters.
fn text_of<'a>(bytes: &'a [u8], content_type: Option<&str>) -> Option<&'a str> {
    if let Some(kind) = content_type {
        let kind = kind.to_ascii_lowercase();
        let textual = kind.starts_with("text/")
            || [
                "json",
                "xml",
                "javascript",
                "x-www-form-urlencoded",
                "yaml",
                "graphql",
            ]
            .iter()
            .any(|t| kind.contains(t));
        if !textual {
            return None;
        }
    }
    // A body cut at the limit may end inside a character.
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    let control = text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
    (!control).then_some(text)
}

fn binary_summary(shown: &[u8], body: &Body, content_type: Option<&str>) -> String {
    let digest = Sha256::digest(shown);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let of = if body.is_cut() {
        format!(" of the first {}", format_size(body.kept.len() as u64))
    } else {
        String::new()
    };
    format!(
        "binary body: {}, {}, sha256{of} {hex}",
        content_type.unwrap_or("no Content-Type"),
        format_size(body.total)
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn url_path(url: &str) -> &str {
    url.strip_prefix("http://")
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url)
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn head(line: StartLine, headers: &[(&str, &str)]) -> Head {
        Head {
            line,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn body(bytes: &[u8], limit: u64) -> Body {
        let mut body = Body::new(limit);
        body.push(bytes);
        body
    }

    fn exchange(request: (&[(&str, &str)], &[u8]), response: Option<(Head, Body)>) -> Exchange {
        Exchange {
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_876_601_123),
            method: "POST".into(),
            url: "http://127.0.0.1:8080/api/items?x=1".into(),
            version: 1,
            request_headers: request
                .0
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            request_body: body(request.1, 1024),
            interim: vec![100],
            response,
            waited: Some(Duration::from_micros(2500)),
            took: Duration::from_micros(12_340),
            note: None,
        }
    }

    fn ok(headers: &[(&str, &str)]) -> Head {
        head(
            StartLine::Response {
                code: 200,
                reason: "OK".into(),
                minor: 1,
            },
            headers,
        )
    }

    #[test]
    fn an_entry_reads_as_a_request_to_send_again_with_its_response_commented_beneath() {
        let e = exchange(
            (
                &[
                    ("Host", "127.0.0.1:8080"),
                    ("Content-Type", "application/json"),
                ],
                b"{\"name\": \"a\"}",
            ),
            Some((
                ok(&[("Content-Type", "text/plain")]),
                body(b"made\nit", 1024),
            )),
        );
        let text = entry(&e, 1024);
        assert_eq!(
            text,
            "### POST /api/items?x=1 -> 200 OK\n\
             # kftray: {\"at\":\"2025-12-04T19:30:01.123Z\",\"method\":\"POST\",\"url\":\"http://127.0.0.1:8080/api/items?x=1\",\"status\":200,\"ms\":12.3,\"request_bytes\":13,\"response_bytes\":7}\n\
             POST http://127.0.0.1:8080/api/items?x=1 HTTP/1.1\n\
             Host: 127.0.0.1:8080\n\
             Content-Type: application/json\n\
             \n\
             {\"name\": \"a\"}\n\
             \n\
             # <- HTTP/1.1 100 (interim)\n\
             # <- HTTP/1.1 200 OK (12.3 ms, waited 2.5 ms)\n\
             # Content-Type: text/plain\n\
             #\n\
             # made\n\
             # it\n\
             \n"
        );
        let summary: Summary =
            serde_json::from_str(text.lines().find_map(|l| l.strip_prefix(SUMMARY)).unwrap())
                .unwrap();
        assert_eq!(summary.status, Some(200));
    }

    #[test]
    fn gzip_is_decoded_for_reading_and_binary_is_summarised() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"{\"compressed\": true}").unwrap();
        let zipped = gz.finish().unwrap();
        let e = exchange(
            (&[], b""),
            Some((
                ok(&[
                    ("Content-Type", "application/json"),
                    ("Content-Encoding", "gzip"),
                ]),
                body(&zipped, 1024),
            )),
        );
        let text = entry(&e, 1024);
        assert!(text.contains("# (gzip-decoded from "), "{text}");
        assert!(text.contains("# {\"compressed\": true}"), "{text}");

        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let e = exchange(
            (&[("Content-Type", "application/octet-stream")], &png[..]),
            Some((ok(&[("Content-Type", "image/png")]), body(png, 4))),
        );
        let text = entry(&e, 4);
        assert!(
            text.contains("# binary body: application/octet-stream, 16 B, sha256 "),
            "{text}"
        );
        assert!(text.contains("# binary body: image/png, 16 B, sha256 of the first 4 B "));
        assert!(text.contains("# (body cut at 4 B of 16 B)"));
    }

    #[test]
    fn a_body_the_clients_would_mangle_is_kept_as_a_comment() {
        let e = exchange((&[], b"line\n### not a new entry\n"), None);
        let text = entry(&e, 1024);
        assert!(
            text.contains("# (request body shown as a comment"),
            "{text}"
        );
        assert!(text.contains("# ### not a new entry"));
        assert!(text.starts_with("### POST /api/items?x=1 -> no response\n"));
        let chunked = exchange((&[("Transfer-Encoding", "chunked")], b"whole"), None);
        let text = entry(&chunked, 1024);
        assert!(
            text.contains("# Transfer-Encoding: chunked (left out"),
            "{text}"
        );
        assert!(text.contains("\n\nwhole\n"), "{text}");
    }
}
