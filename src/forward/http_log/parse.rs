//! One direction of an HTTP/1.x connection, read as it streams past: heads parsed with
//! httparse, bodies framed by Content-Length, chunked coding or the end of the connection,
//! in whatever pieces the bytes arrive.
//!
//! It never holds traffic up and never changes it: it reads a copy of each chunk the splice
//! has already read. Once a stream stops being HTTP/1 (an upgrade, a tunnel, bytes that are
//! not HTTP), the rest passes it by unread.

/// A parsed request or response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) line: StartLine,
    /// In the order sent; values as text (invalid UTF-8 replaced).
    pub(super) headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StartLine {
    Request {
        method: String,
        target: String,
        minor: u8,
    },
    Response {
        code: u16,
        reason: String,
        minor: u8,
    },
}

impl Head {
    /// The first value of a header, by case-insensitive name.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the last transfer coding is chunked (RFC 9112 §6.3).
    pub(super) fn is_chunked(&self) -> bool {
        self.header("transfer-encoding").is_some_and(|te| {
            te.rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        })
    }

    pub(super) fn content_length(&self) -> Option<u64> {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
    }
}

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body: the next message starts at once.
    Empty,
    Length(u64),
    Chunked,
    /// A response without a length: its body runs to the end of the connection.
    UntilClose,
    /// The connection stops being HTTP/1 after this head (101 Switching Protocols, CONNECT).
    Tunnel,
}

/// What the parser found, told as it finds it.
pub(super) trait Messages {
    /// A head; the answer says how its body is framed (a response's depends on its request).
    fn head(&mut self, head: Head) -> Framing;
    /// Body bytes, with the chunked coding taken off.
    fn body(&mut self, bytes: &[u8]);
    /// The message is complete.
    fn end(&mut self);
    /// The stream is not HTTP/1 (from its first bytes, `why` says what it looks like), or
    /// stopped making sense as HTTP; nothing more is read.
    fn not_http(&mut self, why: String);
}

/// Heads larger than this are not HTTP a person wants logged; the stream passes unread.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;
/// A chunk-size line or a trailer line longer than this is not chunked coding.
const MAX_LINE: usize = 4096;

#[derive(Debug)]
enum State {
    /// Reading a head; the bytes of it so far.
    Head(Vec<u8>),
    Length(u64),
    /// Reading a chunk-size line.
    ChunkSize(Vec<u8>),
    ChunkData(u64),
    /// The CRLF after a chunk's data: how many bytes of it are left.
    ChunkEnd(u8),
    /// Trailer lines after the last chunk, up to the blank line; the current line so far.
    Trailers(Vec<u8>),
    UntilClose,
    /// Not (or no longer) HTTP/1: everything passes unread.
    Done,
}

#[derive(Debug)]
pub(super) struct Parser {
    state: State,
    /// Whether a message has been seen: only the very first bytes decide "not HTTP at all".
    started: bool,
    is_request: bool,
}

impl Parser {
    pub(super) fn requests() -> Parser {
        Parser::new(true)
    }

    pub(super) fn responses() -> Parser {
        Parser::new(false)
    }

    fn new(is_request: bool) -> Parser {
        Parser {
            state: State::Head(Vec::new()),
            started: false,
            is_request,
        }
    }

    /// Whether the rest of the stream passes unread.
    pub(super) fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Stops reading: the other direction found the connection upgraded.
    pub(super) fn stop(&mut self) {
        self.state = State::Done;
    }

    /// Whether a message is in the middle of its body, and how its end was to be told: a
    /// closed connection then ends it early (`UntilClose` ends it as it should).
    pub(super) fn mid_body(&self) -> Option<Framing> {
        match self.state {
            State::Length(_) => Some(Framing::Length(0)),
            State::ChunkSize(_) | State::ChunkData(_) | State::ChunkEnd(_) | State::Trailers(_) => {
                Some(Framing::Chunked)
            }
            State::UntilClose => Some(Framing::UntilClose),
            State::Head(_) | State::Done => None,
        }
    }

    pub(super) fn feed(&mut self, mut bytes: &[u8], out: &mut impl Messages) {
        while !bytes.is_empty() {
            bytes = match &mut self.state {
                State::Done => return,
                State::Head(buf) => {
                    if buf.is_empty() {
                        // Stray line ends between messages are allowed (RFC 9112 §2.2).
                        let blank = bytes.iter().take_while(|b| matches!(b, b'\r' | b'\n'));
                        bytes = &bytes[blank.count()..];
                        if bytes.is_empty() {
                            return;
                        }
                    }
                    let before = buf.len();
                    buf.extend_from_slice(&bytes[..bytes.len().min(MAX_HEAD + 4 - before)]);
                    match self.parse_head(out) {
                        HeadRead::Partial => return,
                        HeadRead::Parsed(len) => &bytes[len - before..],
                        HeadRead::Failed => return,
                    }
                }
                State::Length(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    let (now, rest) = bytes.split_at(n as usize);
                    out.body(now);
                    *left -= n;
                    if *left == 0 {
                        self.finish_message(out);
                    }
                    rest
                }
                State::ChunkData(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    let (now, rest) = bytes.split_at(n as usize);
                    out.body(now);
                    *left -= n;
                    if *left == 0 {
                        self.state = State::ChunkEnd(2);
                    }
                    rest
                }
                State::ChunkEnd(left) => {
                    // Tolerates a bare LF, as servers do.
                    let mut rest = bytes;
                    while *left > 0 && !rest.is_empty() {
                        let b = rest[0];
                        rest = &rest[1..];
                        *left = if b == b'\r' && *left == 2 { 1 } else { 0 };
                    }
                    if *left == 0 {
                        self.state = State::ChunkSize(Vec::new());
                    }
                    rest
                }
                State::ChunkSize(line) | State::Trailers(line) => {
                    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(bytes);
                        if line.len() > MAX_LINE {
                            self.fail(out, "a chunk-size line that does not end");
                        }
                        return;
                    };
                    line.extend_from_slice(&bytes[..end]);
                    let rest = &bytes[end + 1..];
                    let text = String::from_utf8_lossy(line).trim().to_owned();
                    if matches!(self.state, State::Trailers(_)) {
                        if text.is_empty() {
                            self.finish_message(out);
                        } else {
                            self.state = State::Trailers(Vec::new());
                        }
                        rest
                    } else {
                        let size = text.split(';').next().unwrap_or_default().trim();
                        match u64::from_str_radix(size, 16) {
                            Ok(0) => self.state = State::Trailers(Vec::new()),
                            Ok(n) => self.state = State::ChunkData(n),
                            Err(_) => {
                                self.fail(out, "a chunk size that is not a hex number");
                                return;
                            }
                        }
                        rest
                    }
                }
                State::UntilClose => {
                    out.body(bytes);
                    return;
                }
            };
        }
    }

    fn parse_head(&mut self, out: &mut impl Messages) -> HeadRead {
        let State::Head(buf) = &self.state else {
            unreachable!("only called while reading a head")
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let parsed = if self.is_request {
            let mut req = httparse::Request::new(&mut headers);
            req.parse(buf).map(|status| match status {
                httparse::Status::Complete(len) => {
                    let line = StartLine::Request {
                        method: req.method.unwrap_or_default().to_owned(),
                        target: req.path.unwrap_or_default().to_owned(),
                        minor: req.version.unwrap_or(1),
                    };
                    Some((len, line, texts(req.headers)))
                }
                httparse::Status::Partial => None,
            })
        } else {
            let mut res = httparse::Response::new(&mut headers);
            res.parse(buf).map(|status| match status {
                httparse::Status::Complete(len) => {
                    let line = StartLine::Response {
                        code: res.code.unwrap_or_default(),
                        reason: res.reason.unwrap_or_default().to_owned(),
                        minor: res.version.unwrap_or(1),
                    };
                    Some((len, line, texts(res.headers)))
                }
                httparse::Status::Partial => None,
            })
        };
        match parsed {
            Ok(Some((len, line, headers))) => {
                self.started = true;
                let framing = out.head(Head { line, headers });
                self.state = match framing {
                    Framing::Empty => State::Head(Vec::new()),
                    Framing::Length(0) => State::Head(Vec::new()),
                    Framing::Length(n) => State::Length(n),
                    Framing::Chunked => State::ChunkSize(Vec::new()),
                    Framing::UntilClose => State::UntilClose,
                    Framing::Tunnel => State::Done,
                };
                if matches!(
                    framing,
                    Framing::Empty | Framing::Length(0) | Framing::Tunnel
                ) {
                    out.end();
                }
                HeadRead::Parsed(len)
            }
            Ok(None) if buf.len() > MAX_HEAD => {
                self.fail(out, "a head larger than 64 KiB");
                HeadRead::Failed
            }
            Ok(None) => HeadRead::Partial,
            Err(e) => {
                let why = if self.started {
                    format!("bytes that are not HTTP/1 after a message ({e})")
                } else {
                    looks_like(buf).to_owned()
                };
                self.fail(out, &why);
                HeadRead::Failed
            }
        }
    }

    fn finish_message(&mut self, out: &mut impl Messages) {
        self.state = State::Head(Vec::new());
        out.end();
    }

    fn fail(&mut self, out: &mut impl Messages, why: &str) {
        self.state = State::Done;
        out.not_http(why.to_owned());
    }
}

enum HeadRead {
    Partial,
    /// The head took this many bytes of the buffer.
    Parsed(usize),
    Failed,
}

fn texts(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// What a stream that does not start as HTTP/1 most likely is, for the one note it gets.
fn looks_like(first: &[u8]) -> &'static str {
    match first {
        [0x16, 0x03, ..] | [0x16] => "TLS",
        _ if first.starts_with(b"PRI * HTTP/2") => "HTTP/2 with prior knowledge",
        [0x00, 0x00, 0x00, _, 0x00, 0x03, ..] => "the PostgreSQL protocol",
        [b'*', ..] => "the Redis protocol",
        _ => "not HTTP",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what the parser says, framing bodies as a plain client or server would.
    #[derive(Default)]
    struct Seen {
        events: Vec<String>,
        /// The method of each request, for the responses' framing.
        head_requests: bool,
    }

    impl Messages for Seen {
        fn head(&mut self, head: Head) -> Framing {
            let framing = match &head.line {
                StartLine::Request { .. } if head.is_chunked() => Framing::Chunked,
                StartLine::Request { .. } => head
                    .content_length()
                    .map_or(Framing::Empty, Framing::Length),
                StartLine::Response { code: 101, .. } => Framing::Tunnel,
                StartLine::Response { code: 100..200, .. } => Framing::Empty,
                StartLine::Response { .. } if self.head_requests => Framing::Empty,
                StartLine::Response { .. } if head.is_chunked() => Framing::Chunked,
                StartLine::Response { .. } => head
                    .content_length()
                    .map_or(Framing::UntilClose, Framing::Length),
            };
            self.events.push(match head.line {
                StartLine::Request { method, target, .. } => format!("head {method} {target}"),
                StartLine::Response { code, .. } => format!("head {code}"),
            });
            framing
        }
        fn body(&mut self, bytes: &[u8]) {
            match self.events.last_mut() {
                Some(last) if last.starts_with("body ") => {
                    last.push_str(&String::from_utf8_lossy(bytes))
                }
                _ => self
                    .events
                    .push(format!("body {}", String::from_utf8_lossy(bytes))),
            }
        }
        fn end(&mut self) {
            self.events.push("end".into());
        }
        fn not_http(&mut self, why: String) {
            self.events.push(format!("not http: {why}"));
        }
    }

    /// The events of `stream` fed in pieces of `piece` bytes.
    fn events(mut parser: Parser, stream: &[u8], piece: usize) -> Vec<String> {
        let mut seen = Seen::default();
        for part in stream.chunks(piece) {
            parser.feed(part, &mut seen);
        }
        seen.events
    }

    /// The same events whatever the pieces: one byte at a time, odd sizes, all at once.
    fn same_in_any_pieces(parser: fn() -> Parser, stream: &[u8]) -> Vec<String> {
        let whole = events(parser(), stream, stream.len());
        for piece in [1, 2, 3, 7, 64] {
            assert_eq!(
                events(parser(), stream, piece),
                whole,
                "in pieces of {piece}"
            );
        }
        whole
    }

    #[test]
    fn pipelined_requests_with_every_kind_of_body() {
        let stream = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
                       POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
                       \r\nPUT /c HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
                       4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n\
                       GET /d HTTP/1.1\r\n\r\n";
        assert_eq!(
            same_in_any_pieces(Parser::requests, stream),
            [
                "head GET /a",
                "end",
                "head POST /b",
                "body hello",
                "end",
                "head PUT /c",
                "body wikipedia",
                "end",
                "head GET /d",
                "end"
            ]
        );
    }

    #[test]
    fn responses_interim_upgraded_and_until_close() {
        let stream = b"HTTP/1.1 100 Continue\r\n\r\n\
                       HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\
                       HTTP/1.1 200 OK\r\n\r\nthe rest of it";
        assert_eq!(
            same_in_any_pieces(Parser::responses, stream),
            [
                "head 100",
                "end",
                "head 200",
                "body ok",
                "end",
                "head 200",
                "body the rest of it"
            ]
        );
        let upgraded =
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello";
        let mut parser = Parser::responses();
        let mut seen = Seen::default();
        parser.feed(upgraded, &mut seen);
        assert_eq!(seen.events, ["head 101", "end"]);
        assert!(
            parser.is_done(),
            "the frames after 101 are not read as HTTP"
        );
    }

    #[test]
    fn a_response_to_head_has_no_body_whatever_its_length_says() {
        let mut seen = Seen {
            head_requests: true,
            ..Seen::default()
        };
        let mut parser = Parser::responses();
        parser.feed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 404 Not Found\r\n\r\n",
            &mut seen,
        );
        assert_eq!(seen.events, ["head 200", "end", "head 404", "end"]);
    }

    #[test]
    fn streams_that_are_not_http_are_named_once_and_then_left_alone() {
        for (first, what) in [
            (&b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..], "TLS"),
            (
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                "HTTP/2 with prior knowledge",
            ),
            (b"*1\r\n$4\r\nPING\r\n", "the Redis protocol"),
            (b"SSH-2.0-OpenSSH_9.6\r\n", "not HTTP"),
        ] {
            let mut parser = Parser::requests();
            let mut seen = Seen::default();
            parser.feed(first, &mut seen);
            parser.feed(b"GET / HTTP/1.1\r\n\r\n", &mut seen);
            assert_eq!(seen.events, [format!("not http: {what}")]);
            assert!(parser.is_done());
        }
        let mut parser = Parser::requests();
        let mut seen = Seen::default();
        parser.feed(b"GET / HTTP/1.1\r\n\r\n\x00\x01garbage\r\n\r\n", &mut seen);
        assert_eq!(seen.events[..2], ["head GET /", "end"]);
        assert!(seen.events[2].starts_with("not http: bytes that are not HTTP/1 after"));
    }

    #[test]
    fn a_body_cut_by_the_close_is_told_apart_from_one_that_runs_to_it() {
        let mut parser = Parser::responses();
        let mut seen = Seen::default();
        parser.feed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            &mut seen,
        );
        assert_eq!(parser.mid_body(), Some(Framing::Length(0)));
        let mut parser = Parser::responses();
        parser.feed(b"HTTP/1.1 200 OK\r\n\r\nabc", &mut seen);
        assert_eq!(parser.mid_body(), Some(Framing::UntilClose));
        let mut parser = Parser::responses();
        parser.feed(
            b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
            &mut seen,
        );
        assert_eq!(parser.mid_body(), None);
    }

    #[test]
    fn a_head_that_never_ends_is_given_up_on() {
        let mut parser = Parser::requests();
        let mut seen = Seen::default();
        parser.feed(b"GET / HTTP/1.1\r\n", &mut seen);
        let header = format!("X-Long: {}\r\n", "a".repeat(1000));
        for _ in 0..70 {
            parser.feed(header.as_bytes(), &mut seen);
        }
        assert_eq!(seen.events, ["not http: a head larger than 64 KiB"]);
    }
}
