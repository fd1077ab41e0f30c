//! A multiplexed SPDY session over one connection, as client (odd stream and ping ids) or
//! server (even ones).
//!
//! A reader task decodes frames and routes them to streams; a writer task encodes what
//! streams and the session queue. Every stream's inbound buffer is bounded: spdystream (the
//! Go side) has no flow control, so when one stream's reader stops reading, the whole
//! connection waits — head-of-line blocking is a property of the protocol as Kubernetes
//! uses it, and the reason a caller may spread busy streams over several sessions.

pub use crate::error::SessionError;
use crate::frame::{Frame, FrameCodec, Headers, rst};
use crate::over_websocket::{Pong, WsFrameSink, WsFrames};
use crate::rfc6455::{Reader, Writer};
pub use crate::role::Role;
use crate::stream::{Event, Outbox, Stream};
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

/// The read buffer of a raw connection: a few of the largest DATA frames.
const READ_CAPACITY: usize = 128 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// How long `Opening::wait` waits for the peer's SYN_REPLY (kubectl: 30 s).
    pub reply_timeout: Duration,
    /// DATA frames buffered per stream before the connection waits for its reader.
    pub stream_buffer: usize,
    /// Frames queued for the writer before writers wait.
    pub write_queue: usize,
    /// Streams the peer opened that `Incoming::accept` has not taken yet.
    pub accept_backlog: usize,
    /// How long closing may take to flush before the connection is dropped.
    pub close_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            reply_timeout: Duration::from_secs(30),
            stream_buffer: 32,
            write_queue: 256,
            accept_backlog: 1024,
            close_timeout: Duration::from_secs(5),
        }
    }
}

pub(crate) struct Inner {
    role: Role,
    config: SessionConfig,
    out: mpsc::Sender<Frame>,
    /// Held from taking a stream id to queueing its SYN_STREAM, so ids reach the wire in
    /// increasing order however many tasks open streams at once: a peer refuses an id lower
    /// than one it has seen.
    opening: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    /// Fires when the connection is gone (read side ended, `close` or `abort`).
    closed: CancellationToken,
    /// Fires on `abort`: the writer stops at once, sending nothing more.
    aborted: CancellationToken,
    /// When the session began, and how long after it a frame last came in (milliseconds):
    /// a peer that sends anything is alive, whatever a ping in the queue behind it says.
    began: Instant,
    heard_ms: AtomicU64,
}

struct State {
    next_stream: u32,
    next_ping: u32,
    last_peer_stream: u32,
    streams: HashMap<u32, Slot>,
    pings: HashMap<u32, oneshot::Sender<()>>,
    going_away: bool,
    why_closed: Option<String>,
}

struct Slot {
    events: mpsc::Sender<Event>,
    reply: Option<oneshot::Sender<Result<Headers, u32>>>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Outbox for Inner {
    fn queue(&self) -> &mpsc::Sender<Frame> {
        &self.out
    }

    fn forget(&self, id: u32) {
        self.lock().streams.remove(&id);
    }

    /// Queues a frame from a context that cannot wait (a Drop, the reader's replies):
    /// directly if there is room, else from a task so ordering per stream still holds.
    fn send_soon(&self, frame: Frame) {
        if let Err(mpsc::error::TrySendError::Full(frame)) = self.out.try_send(frame) {
            let out = self.out.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = out.send(frame).await;
                });
            }
        }
    }
}

/// A handle on the session; cheap to clone. Streams keep the connection alive on their own.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

/// Streams the peer opens (server role).
pub struct Incoming {
    rx: mpsc::Receiver<(Headers, Stream)>,
}

impl Incoming {
    /// The next stream the peer opened, with its headers; `None` once the connection ends.
    pub async fn accept(&mut self) -> Option<(Headers, Stream)> {
        self.rx.recv().await
    }
}

/// A stream whose SYN_STREAM is sent; `wait` for the peer's SYN_REPLY.
pub struct Opening {
    stream: Stream,
    reply: oneshot::Receiver<Result<Headers, u32>>,
    timeout: Duration,
}

impl Opening {
    pub async fn wait(self) -> Result<Stream, SessionError> {
        let Opening {
            mut stream,
            reply,
            timeout,
        } = self;
        match tokio::time::timeout(timeout, reply).await {
            Ok(Ok(Ok(_headers))) => Ok(stream),
            Ok(Ok(Err(status))) => Err(SessionError::Refused(status)),
            Ok(Err(_)) => Err(stream.session_error()),
            Err(_) => {
                stream.reset(rst::CANCEL);
                Err(SessionError::ReplyTimeout(timeout))
            }
        }
    }
}

impl Session {
    /// Starts the reader and writer tasks on `io` (raw SPDY, after an HTTP upgrade).
    pub fn new<T>(io: T, role: Role, config: SessionConfig) -> (Session, Incoming)
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        Session::start(
            FramedRead::with_capacity(read, FrameCodec::default(), READ_CAPACITY),
            FramedWrite::new(write, FrameCodec::default()),
            role,
            config,
            Arc::new(Notify::new()),
        )
    }

    /// Starts the reader and writer tasks on a connection upgraded to WebSocket, whose
    /// binary messages carry the SPDY bytes (`SPDY/3.1+portforward.k8s.io`).
    pub fn over_websocket<T>(io: T, role: Role, config: SessionConfig) -> (Session, Incoming)
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let pong = Arc::new(Pong::default());
        let kick = pong.kick.clone();
        Session::start(
            WsFrames::new(Reader::new(read, role), pong.clone()),
            WsFrameSink::new(Writer::new(write, role), pong),
            role,
            config,
            kick,
        )
    }

    /// `kick` makes the writer flush with nothing queued (a WebSocket pong is due).
    fn start<R, W>(
        frames_in: R,
        frames_out: W,
        role: Role,
        config: SessionConfig,
        kick: Arc<Notify>,
    ) -> (Session, Incoming)
    where
        R: futures::Stream<Item = std::io::Result<Frame>> + Unpin + Send + 'static,
        W: futures::Sink<Frame, Error = std::io::Error> + Unpin + Send + 'static,
    {
        let (out_tx, out_rx) = mpsc::channel(config.write_queue);
        let (accept_tx, accept_rx) = mpsc::channel(config.accept_backlog);
        let first = match role {
            Role::Client => 1,
            Role::Server => 2,
        };
        let inner = Arc::new(Inner {
            role,
            config,
            out: out_tx,
            opening: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                next_stream: first,
                next_ping: first,
                last_peer_stream: 0,
                streams: HashMap::new(),
                pings: HashMap::new(),
                going_away: false,
                why_closed: None,
            }),
            closed: CancellationToken::new(),
            aborted: CancellationToken::new(),
            began: Instant::now(),
            heard_ms: AtomicU64::new(0),
        });
        tokio::spawn(write_loop(
            frames_out,
            out_rx,
            inner.closed.clone(),
            inner.aborted.clone(),
            kick,
            config.close_timeout,
        ));
        tokio::spawn(read_loop(frames_in, inner.clone(), accept_tx));
        (Session { inner }, Incoming { rx: accept_rx })
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    /// Whether the peer said GOAWAY: the session carries its open streams to their end but
    /// takes no new one.
    pub fn is_going_away(&self) -> bool {
        self.inner.lock().going_away
    }

    /// How long since the peer last sent a frame (any frame: data, a reply, a ping).
    pub fn silent_for(&self) -> Duration {
        let heard = Duration::from_millis(self.inner.heard_ms.load(Ordering::Relaxed));
        self.inner.began.elapsed().saturating_sub(heard)
    }

    /// Streams open on this session, either end's: a stream counts until it is dropped or
    /// reset, so a session with none carries no connection and can be closed unnoticed.
    pub fn open_streams(&self) -> usize {
        self.inner.lock().streams.len()
    }

    /// Resolves when the connection is gone.
    pub async fn closed(&self) {
        self.inner.closed.cancelled().await;
    }

    /// Sends SYN_STREAM; the returned `Opening` waits for the reply. Two streams can be
    /// started back to back before either reply, as kubectl opens a port-forward pair.
    pub async fn start_stream(&self, headers: Headers) -> Result<Opening, SessionError> {
        let (events_tx, events_rx) = mpsc::channel(self.inner.config.stream_buffer);
        let (reply_tx, reply_rx) = oneshot::channel();
        let opening = self.inner.opening.lock().await;
        let id = {
            let mut state = self.inner.lock();
            if self.inner.closed.is_cancelled() {
                return Err(SessionError::Closed(state.why_closed.clone()));
            }
            if state.going_away {
                return Err(SessionError::GoingAway);
            }
            let id = state.next_stream;
            state.next_stream += 2;
            state.streams.insert(
                id,
                Slot {
                    events: events_tx,
                    reply: Some(reply_tx),
                },
            );
            id
        };
        let stream = Stream::new(id, self.inner.clone(), events_rx);
        let syn = Frame::SynStream {
            stream_id: id,
            associated: 0,
            priority: 0,
            flags: 0,
            headers,
        };
        if self.inner.out.send(syn).await.is_err() {
            return Err(stream.session_error());
        }
        drop(opening);
        Ok(Opening {
            stream,
            reply: reply_rx,
            timeout: self.inner.config.reply_timeout,
        })
    }

    /// Opens a stream and waits for the peer to accept it.
    pub async fn open_stream(&self, headers: Headers) -> Result<Stream, SessionError> {
        self.start_stream(headers).await?.wait().await
    }

    /// A PING round trip: proof that the peer still reads and answers.
    pub async fn ping(&self, timeout: Duration) -> Result<Duration, SessionError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut state = self.inner.lock();
            if self.inner.closed.is_cancelled() {
                return Err(SessionError::Closed(state.why_closed.clone()));
            }
            let id = state.next_ping;
            state.next_ping = state.next_ping.wrapping_add(2).max(1);
            state.pings.insert(id, tx);
            id
        };
        let started = Instant::now();
        let sent = self.inner.out.send(Frame::Ping { id }).await;
        let answered = async {
            sent.ok()?;
            rx.await.ok()
        };
        match tokio::time::timeout(timeout, answered).await {
            Ok(Some(())) => Ok(started.elapsed()),
            Ok(None) => Err(SessionError::Closed(self.inner.lock().why_closed.clone())),
            Err(_) => {
                self.inner.lock().pings.remove(&id);
                Err(SessionError::PingTimeout(timeout))
            }
        }
    }

    /// GOAWAY, then the connection closes once queued frames are written (bounded by the
    /// close timeout). Open streams end with an error.
    pub async fn close(&self) {
        let last_stream = self.inner.lock().last_peer_stream;
        let goaway = Frame::GoAway {
            last_stream,
            status: 0,
        };
        let _ = tokio::time::timeout(self.inner.config.close_timeout, self.inner.out.send(goaway))
            .await;
        self.inner.closed.cancel();
    }

    /// Drops the connection as a network failure would: no GOAWAY, nothing queued goes out
    /// (not even the FIN of a stream dropped afterwards), and the peer's streams end in error.
    pub fn abort(&self) {
        self.inner.aborted.cancel();
        self.inner.closed.cancel();
    }
}

async fn write_loop<W>(
    mut sink: W,
    mut frames: mpsc::Receiver<Frame>,
    closed: CancellationToken,
    aborted: CancellationToken,
    kick: Arc<Notify>,
    close_timeout: Duration,
) where
    W: futures::Sink<Frame, Error = std::io::Error> + Unpin,
{
    loop {
        let frame = tokio::select! {
            biased;
            () = aborted.cancelled() => return,
            frame = frames.recv() => frame,
            () = kick.notified() => {
                if sink.flush().await.is_err() {
                    closed.cancel();
                    return;
                }
                continue;
            }
            () = closed.cancelled() => break,
        };
        let Some(frame) = frame else { break };
        // Batch what is already queued into one flush: fewer syscalls under load.
        let mut batch = sink.feed(frame).await;
        while batch.is_ok() {
            match frames.try_recv() {
                Ok(frame) => batch = sink.feed(frame).await,
                Err(_) => break,
            }
        }
        if aborted.is_cancelled() {
            return;
        }
        if batch.is_err() || sink.flush().await.is_err() {
            closed.cancel();
            return;
        }
    }
    // Closing: what was queued before the close still goes out, within the deadline.
    let _ = tokio::time::timeout(close_timeout, async {
        while let Ok(frame) = frames.try_recv() {
            if sink.feed(frame).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    })
    .await;
}

async fn read_loop<R>(mut frames: R, inner: Arc<Inner>, accept: mpsc::Sender<(Headers, Stream)>)
where
    R: futures::Stream<Item = std::io::Result<Frame>> + Unpin,
{
    let why = loop {
        let next = tokio::select! {
            next = frames.next() => next,
            () = inner.closed.cancelled() => break None,
        };
        match next {
            None => break None,
            Some(Err(e)) => break Some(e.to_string()),
            Some(Ok(frame)) => {
                let heard = inner.began.elapsed().as_millis();
                inner
                    .heard_ms
                    .store(u64::try_from(heard).unwrap_or(u64::MAX), Ordering::Relaxed);
                dispatch(frame, &inner, &accept).await
            }
        }
    };
    // The connection is gone: every stream and waiter learns it now, not at a timeout.
    let (streams, pings) = {
        let mut state = inner.lock();
        state.why_closed = why;
        (
            std::mem::take(&mut state.streams),
            std::mem::take(&mut state.pings),
        )
    };
    inner.closed.cancel();
    drop(pings);
    for (_, slot) in streams {
        let _ = slot.events.try_send(Event::Lost);
    }
}

async fn dispatch(frame: Frame, inner: &Arc<Inner>, accept: &mpsc::Sender<(Headers, Stream)>) {
    match frame {
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            let Some(events) = inner
                .lock()
                .streams
                .get(&stream_id)
                .map(|s| s.events.clone())
            else {
                return;
            };
            if !data.is_empty() {
                // Waiting here is the backpressure: see the module comment.
                let _ = events.send(Event::Data(data)).await;
            }
            if flags & crate::frame::flags::FIN != 0 {
                let _ = events.send(Event::Fin).await;
            }
        }
        Frame::SynStream {
            stream_id, headers, ..
        } => {
            let ours = stream_id % 2 == u32::from(inner.role == Role::Client);
            let (events_tx, events_rx) = mpsc::channel(inner.config.stream_buffer);
            let accepted = {
                let mut state = inner.lock();
                let fresh = !ours
                    && stream_id > state.last_peer_stream
                    && inner.role == Role::Server
                    && !state.going_away;
                if fresh {
                    state.last_peer_stream = stream_id;
                    state.streams.insert(
                        stream_id,
                        Slot {
                            events: events_tx,
                            reply: None,
                        },
                    );
                }
                fresh
            };
            if !accepted {
                inner.send_soon(Frame::RstStream {
                    stream_id,
                    status: rst::REFUSED_STREAM,
                });
                return;
            }
            // The reply goes out before any data the application writes on the stream.
            inner.send_soon(Frame::SynReply {
                stream_id,
                flags: 0,
                headers: Vec::new(),
            });
            let stream = Stream::new(stream_id, inner.clone(), events_rx);
            if let Err(mpsc::error::TrySendError::Full((_, mut stream))) =
                accept.try_send((headers, stream))
            {
                stream.reset(rst::REFUSED_STREAM);
            }
        }
        Frame::SynReply {
            stream_id, headers, ..
        } => {
            let reply = inner
                .lock()
                .streams
                .get_mut(&stream_id)
                .and_then(|s| s.reply.take());
            if let Some(reply) = reply {
                let _ = reply.send(Ok(headers));
            }
        }
        Frame::RstStream { stream_id, status } => {
            let slot = inner.lock().streams.remove(&stream_id);
            if let Some(mut slot) = slot {
                if let Some(reply) = slot.reply.take() {
                    let _ = reply.send(Err(status));
                }
                let _ = slot.events.try_send(Event::Reset(status));
            }
        }
        Frame::Ping { id } => {
            let ours = id % 2 == u32::from(inner.role == Role::Client);
            if ours {
                if let Some(waiter) = inner.lock().pings.remove(&id) {
                    let _ = waiter.send(());
                }
            } else {
                inner.send_soon(Frame::Ping { id });
            }
        }
        Frame::GoAway { .. } => inner.lock().going_away = true,
        Frame::Ignored { .. } => {}
    }
}
