//! What the tap hands the writer: whole exchanges, with their bodies kept up to the limit.

use super::parse::Head;
use std::time::{Duration, SystemTime};

/// One thing the log says.
#[derive(Debug)]
pub(super) enum Record {
    Exchange(Box<Exchange>),
    /// Something about a connection that is not an exchange (not HTTP, say).
    Note(String),
}

/// A request and its response, as they went through.
#[derive(Debug)]
pub(super) struct Exchange {
    /// When the request's first byte arrived.
    pub(super) at: SystemTime,
    pub(super) method: String,
    /// Absolute: `http://` + Host + target, so that the logged request can be sent again.
    pub(super) url: String,
    /// HTTP/1.x's x.
    pub(super) version: u8,
    pub(super) request_headers: Vec<(String, String)>,
    pub(super) request_body: Body,
    pub(super) interim: Vec<u16>,
    /// None: no response came.
    pub(super) response: Option<(Head, Body)>,
    /// From the end of the request to the response's first byte.
    pub(super) waited: Option<Duration>,
    /// From the request's first byte to the response's last.
    pub(super) took: Duration,
    pub(super) note: Option<String>,
}

/// A body: its first `limit` bytes, and how many there were.
#[derive(Debug, Default)]
pub(super) struct Body {
    pub(super) kept: Vec<u8>,
    pub(super) total: u64,
    limit: u64,
}

impl Body {
    pub(super) fn new(limit: u64) -> Body {
        Body {
            kept: Vec::new(),
            total: 0,
            limit,
        }
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.limit.saturating_sub(self.kept.len() as u64) as usize;
        self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    pub(super) fn is_cut(&self) -> bool {
        self.total > self.kept.len() as u64
    }
}
