//! One connection's two directions read together: each response is matched to its request
//! (in order, as HTTP/1 pipelines them) and the pair goes to the log's writer as one entry.

use super::parse::{Framing, Head, Messages, Parser, StartLine};
use super::record::{Body, Exchange, Record};
use super::writer::Sink;
use crate::forward::Observe;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

/// Watches one connection for its log. Finishing (on drop) logs what the close cut short.
pub struct Tap {
    inner: Mutex<Connection>,
    /// Set once neither direction is read any more (tunnelled, or not HTTP): the rest of a
    /// long WebSocket or TLS connection then passes without taking the lock.
    passing: AtomicBool,
}

struct Connection {
    requests: Parser,
    responses: Parser,
    state: Pairing,
}

/// What the two parsers share: the requests waiting for their responses.
struct Pairing {
    sink: Arc<Sink>,
    /// The forward's local address: the URL of a request without a Host header.
    local: SocketAddr,
    pending: VecDeque<Pending>,
    /// The request being read now is the back of `pending`.
    reading_request: bool,
    response: Option<Response>,
    /// A 101 or a CONNECT answered (the connection is not HTTP/1 any more), or too many
    /// requests wait: neither direction is read from here on.
    tunnel: bool,
}

struct Pending {
    at: SystemTime,
    started: Instant,
    finished: Option<Instant>,
    head: Head,
    body: Body,
    /// Interim responses (100 Continue, 103 Early Hints) it got before its answer.
    interim: Vec<u16>,
}

struct Response {
    first_byte: Instant,
    head: Head,
    body: Body,
}

impl Tap {
    pub(super) fn new(sink: Arc<Sink>, local: SocketAddr) -> Tap {
        Tap {
            inner: Mutex::new(Connection {
                requests: Parser::requests(),
                responses: Parser::responses(),
                state: Pairing {
                    sink,
                    local,
                    pending: VecDeque::new(),
                    reading_request: false,
                    response: None,
                    tunnel: false,
                },
            }),
            passing: AtomicBool::new(false),
        }
    }

    fn with(&self, feed: impl FnOnce(&mut Connection)) {
        if self.passing.load(Ordering::Relaxed) {
            return;
        }
        // A panic elsewhere must not take the traffic down with the log.
        let mut connection = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        feed(&mut connection);
        if connection.state.tunnel {
            connection.requests.stop();
            connection.responses.stop();
        }
        if connection.requests.is_done() && connection.responses.is_done() {
            self.passing.store(true, Ordering::Relaxed);
        }
    }
}

impl Observe for Tap {
    fn outbound(&self, bytes: &[u8]) {
        self.with(|c| {
            if !c.requests.is_done() {
                c.requests.feed(bytes, &mut Requests(&mut c.state));
            }
        });
    }

    fn inbound(&self, bytes: &[u8]) {
        self.with(|c| {
            if !c.responses.is_done() {
                c.responses.feed(bytes, &mut Responses(&mut c.state));
            }
        });
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let connection = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        let cut = connection.responses.mid_body();
        let state = &mut connection.state;
        if let Some(response) = state.response.take() {
            let note = match cut {
                Some(Framing::UntilClose) | None => None,
                Some(_) => Some(format!(
                    "the connection closed in the middle of the response body, after {} bytes",
                    response.body.total
                )),
            };
            state.answered(response, note);
        }
        while let Some(request) = state.pending.pop_front() {
            let note = if request.finished.is_some() {
                "no response: the connection closed first"
            } else {
                "the connection closed in the middle of the request"
            };
            state.sink.send(Record::Exchange(Box::new(Exchange {
                note: Some(note.into()),
                ..request.into_exchange(state.local)
            })));
        }
    }
}

impl Pending {
    fn into_exchange(self, local: SocketAddr) -> Exchange {
        let StartLine::Request {
            method,
            target,
            minor,
        } = self.head.line.clone()
        else {
            unreachable!("requests are read by the request parser")
        };
        let host = self
            .head
            .header("host")
            .map_or_else(|| local.to_string(), str::to_owned);
        Exchange {
            at: self.at,
            method,
            url: if target.starts_with('/') {
                format!("http://{host}{target}")
            } else {
                target
            },
            version: minor,
            request_headers: self.head.headers,
            request_body: self.body,
            interim: self.interim,
            response: None,
            waited: None,
            took: self.started.elapsed(),
            note: None,
        }
    }
}

impl Pairing {
    fn answered(&mut self, response: Response, note: Option<String>) {
        let Some(request) = self.pending.pop_front() else {
            self.sink.send(Record::Note(
                "a response that answered no request was passed through".into(),
            ));
            return;
        };
        let waited = request
            .finished
            .map(|f| response.first_byte.saturating_duration_since(f));
        let took = request.started.elapsed();
        let mut exchange = request.into_exchange(self.local);
        exchange.response = Some((response.head, response.body));
        exchange.waited = waited;
        exchange.took = took;
        exchange.note = note;
        self.sink.send(Record::Exchange(Box::new(exchange)));
    }
}

/// The request direction's view of the pairing.
struct Requests<'a>(&'a mut Pairing);

/// Requests waiting for their answers, at most: a client that pipelines more without reading
/// would make the log hold them all.
const MAX_PENDING: usize = 256;

impl Messages for Requests<'_> {
    fn head(&mut self, head: Head) -> Framing {
        if self.0.pending.len() >= MAX_PENDING {
            self.0.tunnel = true;
            self.0.sink.send(Record::Note(format!(
                "more than {MAX_PENDING} requests waited for their answers: the rest of the \
                 connection is passed through, not logged"
            )));
            return Framing::Tunnel;
        }
        let framing = if head.is_chunked() {
            Framing::Chunked
        } else {
            head.content_length()
                .map_or(Framing::Empty, Framing::Length)
        };
        let sink = &self.0.sink;
        self.0.pending.push_back(Pending {
            at: SystemTime::now(),
            started: Instant::now(),
            finished: None,
            head: sink.redacted(head),
            body: Body::new(sink.body_limit()),
            interim: Vec::new(),
        });
        self.0.reading_request = true;
        framing
    }

    fn body(&mut self, bytes: &[u8]) {
        if let Some(request) = self.0.pending.back_mut() {
            request.body.push(bytes);
        }
    }

    fn end(&mut self) {
        if self.0.reading_request
            && let Some(request) = self.0.pending.back_mut()
        {
            request.finished = Some(Instant::now());
        }
        self.0.reading_request = false;
    }

    fn not_http(&mut self, why: String) {
        self.0.sink.send(Record::Note(format!(
            "{why}: passed through untouched, not logged"
        )));
    }
}

/// The response direction's view of the pairing.
struct Responses<'a>(&'a mut Pairing);

impl Messages for Responses<'_> {
    fn head(&mut self, head: Head) -> Framing {
        let StartLine::Response { code, .. } = head.line else {
            unreachable!("responses are read by the response parser")
        };
        let method = self.0.pending.front().and_then(|r| match &r.head.line {
            StartLine::Request { method, .. } => Some(method.as_str()),
            StartLine::Response { .. } => None,
        });
        let framing = match (code, method) {
            (101, _) => Framing::Tunnel,
            (200..300, Some("CONNECT")) => Framing::Tunnel,
            (100..200, _) => {
                if let Some(request) = self.0.pending.front_mut() {
                    request.interim.push(code);
                }
                return Framing::Empty;
            }
            (204 | 304, _) | (_, Some("HEAD")) => Framing::Empty,
            _ if head.is_chunked() => Framing::Chunked,
            _ => head
                .content_length()
                .map_or(Framing::UntilClose, Framing::Length),
        };
        if framing == Framing::Tunnel {
            self.0.tunnel = true;
        }
        let sink = &self.0.sink;
        self.0.response = Some(Response {
            first_byte: Instant::now(),
            head: sink.redacted(head),
            body: Body::new(sink.body_limit()),
        });
        framing
    }

    fn body(&mut self, bytes: &[u8]) {
        if let Some(response) = &mut self.0.response {
            response.body.push(bytes);
        }
    }

    fn end(&mut self) {
        // An interim response has no Response kept: its request waits for the real one.
        let Some(response) = self.0.response.take() else {
            return;
        };
        let note = self.0.tunnel.then(|| {
            let upgrade = response
                .head
                .header("upgrade")
                .unwrap_or("a tunnel")
                .to_owned();
            format!(
                "switched to {upgrade}: the rest of the connection is passed through, not logged"
            )
        });
        self.0.answered(response, note);
    }

    fn not_http(&mut self, why: String) {
        self.0.sink.send(Record::Note(format!(
            "a response of {why}: the rest of the connection is passed through, not logged"
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HttpLog;
    use std::time::Duration;

    /// What the log file says once every entry of a connection fed by `feed` is written.
    fn logged(entries: usize, feed: impl FnOnce(&Tap)) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.http");
        let (sink, _) = Sink::start(path.clone(), HttpLog::default()).unwrap();
        let sink = Arc::new(sink);
        let tap = sink.tap("127.0.0.1:8080".parse().unwrap());
        feed(&tap);
        drop((tap, sink));
        for _ in 0..500 {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.matches("# kftray: ").count() >= entries {
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "fewer than {entries} entries: {:?}",
            std::fs::read_to_string(&path)
        );
    }

    #[test]
    fn an_expect_100_continue_upload_is_one_entry_with_its_interim_answer() {
        let text = logged(1, |tap| {
            tap.outbound(b"PUT /up HTTP/1.1\r\nHost: api\r\nExpect: 100-continue\r\n");
            tap.outbound(b"Content-Length: 4\r\n\r\n");
            tap.inbound(b"HTTP/1.1 100 Continue\r\n\r\n");
            tap.outbound(b"data");
            tap.inbound(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
        });
        assert!(text.starts_with("### PUT /up -> 201 Created\n"), "{text}");
        assert!(text.contains("PUT http://api/up HTTP/1.1\n"), "{text}");
        assert!(text.contains("\n\ndata\n"), "{text}");
        assert!(text.contains("# <- HTTP/1.1 100 (interim)\n# <- HTTP/1.1 201 Created"));
        assert_eq!(text.matches("### ").count(), 1);
    }

    #[test]
    fn pipelined_answers_pair_in_order_and_a_head_answer_has_no_body() {
        let text = logged(3, |tap| {
            tap.outbound(b"HEAD /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n");
            tap.inbound(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            tap.inbound(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno");
            // The connection closes before /c is answered.
        });
        let titles: Vec<&str> = text.lines().filter(|l| l.starts_with("### ")).collect();
        assert_eq!(
            titles,
            [
                "### HEAD /a -> 200 OK",
                "### GET /b -> 404 Not Found",
                "### GET /c -> no response"
            ],
            "{text}"
        );
        assert!(text.contains("# note: no response: the connection closed first"));
        // With no Host header, the URL names the forward's own address.
        assert!(text.contains("GET http://127.0.0.1:8080/b HTTP/1.1"));
    }

    #[test]
    fn a_client_that_pipelines_without_reading_is_given_up_on_not_held_in_memory() {
        let text = logged(MAX_PENDING + 1, |tap| {
            for i in 0..MAX_PENDING + 50 {
                tap.outbound(format!("GET /{i} HTTP/1.1\r\n\r\n").as_bytes());
            }
        });
        assert!(text.contains(&format!("more than {MAX_PENDING} requests waited")));
        assert_eq!(text.matches("-> no response").count(), MAX_PENDING);
    }

    #[test]
    fn a_response_without_a_request_is_noted_not_invented() {
        let text = logged(1, |tap| {
            tap.inbound(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        });
        assert!(
            text.contains("a response that answered no request"),
            "{text}"
        );
    }
}
