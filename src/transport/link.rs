//! The link to a pod that a forward has chosen, kept open while the forward follows it: the
//! session is dialled ahead of the first local connection, and redialled (with backoff) as
//! soon as it dies, so `status` can say "reconnecting" and why, and the next connection
//! after the network returns finds a session already open.

use crate::backoff::Backoff;
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// Whether a forward's pod can be reached now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// A session is open (or the cluster takes one connection per upgrade, with nothing to
    /// keep open between them).
    Up,
    /// Being redialled; the text says why the last session or dial failed.
    Down(String),
}

/// A session that is held open, and ends some day.
pub(super) trait Held {
    /// Resolves when the session has ended, with why.
    fn ended(&self) -> impl Future<Output = String> + Send;
}

/// The links followed, one per pod, shared by every forward that follows it.
#[derive(Default)]
pub(super) struct Links {
    by_pod: Mutex<HashMap<String, watch::Sender<Link>>>,
}

impl Links {
    /// A receiver of `pod`'s link; the first follower of a pod `start`s the task that keeps
    /// it (with `keep`).
    pub(super) fn follow(
        &self,
        pod: &str,
        start: impl FnOnce(watch::Sender<Link>),
    ) -> watch::Receiver<Link> {
        let mut by_pod = self.by_pod.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(link) = by_pod.get(pod) {
            return link.subscribe();
        }
        // Up until proven otherwise: a forward that has just found its pod is not
        // "reconnecting" before its first dial even ends.
        let (tx, rx) = watch::channel(Link::Up);
        by_pod.insert(pod.to_owned(), tx.clone());
        start(tx);
        rx
    }

    /// Whether a forward follows `pod` now.
    pub(super) fn is_followed(&self, pod: &str) -> bool {
        let by_pod = self.by_pod.lock().unwrap_or_else(|e| e.into_inner());
        by_pod
            .get(pod)
            .is_some_and(|link| link.receiver_count() > 0)
    }

    /// Ends the following of `pod` if nobody follows it any more. Checked under the map's
    /// lock, where `follow` subscribes, so a follower arriving now is not left with a link
    /// that nobody keeps.
    fn unfollowed(&self, pod: &str, link: &watch::Sender<Link>) -> bool {
        let mut by_pod = self.by_pod.lock().unwrap_or_else(|e| e.into_inner());
        if link.receiver_count() > 0 {
            return false;
        }
        by_pod.remove(pod);
        true
    }
}

/// Keeps `pod`'s link while anyone follows it: `dial` gives the open session (`None`: the
/// cluster takes one upgrade per connection, with nothing to hold), and is called again,
/// with backoff, whenever the session ends or a dial fails.
pub(super) async fn keep<S, E, F, D>(links: &Links, pod: &str, link: watch::Sender<Link>, dial: D)
where
    S: Held,
    E: Display,
    F: Future<Output = Result<Option<S>, E>>,
    D: Fn() -> F,
{
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        let dialled = tokio::select! {
            () = link.closed() => if links.unfollowed(pod, &link) { return } else { continue },
            dialled = dial() => dialled,
        };
        match dialled {
            Ok(Some(open)) => {
                link.send_replace(Link::Up);
                backoff.reset();
                tokio::select! {
                    () = link.closed() => {}
                    why = open.ended() => {
                        tracing::info!(pod, why, "the port-forward session died; redialling");
                        link.send_replace(Link::Down(why));
                        continue;
                    }
                }
            }
            Ok(None) => {
                link.send_replace(Link::Up);
                link.closed().await;
            }
            Err(e) => {
                link.send_replace(Link::Down(e.to_string()));
                tokio::select! {
                    () = link.closed() => {}
                    () = tokio::time::sleep(backoff.next_delay()) => continue,
                }
            }
        }
        // Here only when the last follower went away.
        if links.unfollowed(pod, &link) {
            return;
        }
    }
}
