//! The link to a pod that a forward has chosen, kept open while the forward follows it: the
//! session is dialled ahead of the first local connection, and redialled (with backoff) as
//! soon as it dies, so `status` can say "reconnecting" and why, and the next connection
//! after the network returns finds a session already open.

use crate::backoff::Backoff;
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Whether a forward's pod can be reached now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// The first session is being dialled.
    Opening,
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
    by_pod: Mutex<HashMap<String, Followed>>,
}

/// One pod's link, and how a connection that reached the pod tells its keeper.
struct Followed {
    link: watch::Sender<Link>,
    reached: Arc<Notify>,
}

impl Links {
    /// A receiver of `pod`'s link; the first follower of a pod `start`s the task that keeps
    /// it (with `keep`, given the sender and what wakes it).
    pub(super) fn follow(
        &self,
        pod: &str,
        start: impl FnOnce(watch::Sender<Link>, Arc<Notify>),
    ) -> watch::Receiver<Link> {
        let mut by_pod = self.by_pod.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(followed) = by_pod.get(pod) {
            return followed.link.subscribe();
        }
        // Not "reconnecting" before its first dial even ends: a forward that has just found
        // its pod is ready once a session to it is open.
        let (tx, rx) = watch::channel(Link::Opening);
        let reached = Arc::new(Notify::new());
        by_pod.insert(
            pod.to_owned(),
            Followed {
                link: tx.clone(),
                reached: reached.clone(),
            },
        );
        start(tx, reached);
        rx
    }

    /// Whether a forward follows `pod` now.
    pub(super) fn is_followed(&self, pod: &str) -> bool {
        let by_pod = self.by_pod.lock().unwrap_or_else(|e| e.into_inner());
        by_pod
            .get(pod)
            .is_some_and(|followed| followed.link.receiver_count() > 0)
    }

    /// A connection reached `pod`. If its link is down, that connection dialled the session
    /// itself while the keeper waited out its backoff: the keeper takes that session now, so
    /// `status` says ready at once rather than up to a backoff later.
    pub(super) fn reached(&self, pod: &str) {
        let by_pod = self.by_pod.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(followed) = by_pod.get(pod)
            && matches!(*followed.link.borrow(), Link::Down(_))
        {
            // Only a keeper waiting now is woken: a permit kept for later would cut short
            // the backoff after some future failure.
            followed.reached.notify_waiters();
        }
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

/// The backoff between failed dials of a link.
pub(super) fn redial_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(200), Duration::from_secs(5))
}

/// Keeps `pod`'s link while anyone follows it: `dial` gives the open session (`None`: the
/// cluster takes one upgrade per connection, with nothing to hold), and is called again
/// whenever the session ends, or after `backoff` when a dial failed, or at once when
/// `reached` says a connection got through meanwhile.
pub(super) async fn keep<S, E, F, D>(
    links: &Links,
    pod: &str,
    link: watch::Sender<Link>,
    reached: &Notify,
    mut backoff: Backoff,
    dial: D,
) where
    S: Held,
    E: Display,
    F: Future<Output = Result<Option<S>, E>>,
    D: Fn() -> F,
{
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
                    () = reached.notified() => continue,
                }
            }
        }
        // Here only when the last follower went away.
        if links.unfollowed(pod, &link) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// A session that never ends.
    struct Open;

    impl Held for Open {
        async fn ended(&self) -> String {
            std::future::pending().await
        }
    }

    /// A link whose dials fail until `reachable` is set, kept with a backoff far longer
    /// than the test: only `Links::reached` can make it redial in time.
    fn kept(
        links: &Arc<Links>,
        reachable: &Arc<AtomicBool>,
        dials: &Arc<AtomicUsize>,
    ) -> watch::Receiver<Link> {
        links.follow("web-1", |tx, reached| {
            let (links, reachable, dials) = (links.clone(), reachable.clone(), dials.clone());
            tokio::spawn(async move {
                let dial = || {
                    dials.fetch_add(1, Ordering::SeqCst);
                    let up = reachable.load(Ordering::SeqCst);
                    async move {
                        if up {
                            Ok(Some(Open))
                        } else {
                            Err("dial timed out")
                        }
                    }
                };
                let hour = Duration::from_secs(3600);
                keep(
                    &links,
                    "web-1",
                    tx,
                    &reached,
                    Backoff::new(hour, hour),
                    dial,
                )
                .await;
            });
        })
    }

    #[tokio::test]
    async fn a_connection_that_got_through_brings_the_link_up_without_waiting_out_the_backoff() {
        let links = Arc::new(Links::default());
        let reachable = Arc::new(AtomicBool::new(false));
        let dials = Arc::new(AtomicUsize::new(0));
        let mut link = kept(&links, &reachable, &dials);
        let down = link
            .wait_for(|l| matches!(l, Link::Down(_)))
            .await
            .unwrap()
            .clone();
        assert_eq!(down, Link::Down("dial timed out".into()));
        // The pod is reachable again, but the keeper waits out its backoff...
        reachable.store(true, Ordering::SeqCst);
        let waited = tokio::time::timeout(Duration::from_millis(100), link.changed()).await;
        assert!(waited.is_err(), "the keeper redialled before its backoff");
        // ...until a connection says it got through.
        links.reached("web-1");
        let up = tokio::time::timeout(Duration::from_secs(10), link.wait_for(|l| *l == Link::Up));
        assert!(up.await.is_ok(), "the link stayed down");
        assert_eq!(dials.load(Ordering::SeqCst), 2);
    }
}
