//! Why a session or one of its streams cannot go on.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the SPDY connection is closed{}", .0.as_ref().map(|w| format!(": {w}")).unwrap_or_default())]
    Closed(Option<String>),
    #[error("the peer is going away and takes no new streams")]
    GoingAway,
    #[error("no SYN_REPLY within {0:?}")]
    ReplyTimeout(Duration),
    #[error("no PING reply within {0:?}")]
    PingTimeout(Duration),
    #[error("the peer refused the stream (RST_STREAM status {0})")]
    Refused(u32),
}
