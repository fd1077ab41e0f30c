//! The forwards of a run that could not start, and when to try them again.

use crate::backoff::Backoff;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// How soon a forward that could not start (a taken port) is tried again, and the longest
/// wait between tries.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Forwards that could not start (a taken port), with why, tried again with backoff until
/// they do: the next reload is not the only chance.
pub(super) struct Retry {
    pub(super) failed: BTreeMap<String, String>,
    backoff: Backoff,
    at: Option<Instant>,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            failed: BTreeMap::new(),
            backoff: Backoff::new(RETRY_FIRST, RETRY_MAX),
            at: None,
        }
    }
}

impl Retry {
    /// After an apply of every desired forward: those that failed are exactly these.
    pub(super) fn failed_now(&mut self, failed: &[(String, String)]) {
        self.failed = failed.iter().cloned().collect();
        self.at = if self.failed.is_empty() {
            self.backoff.reset();
            None
        } else {
            Some(Instant::now() + self.backoff.next_delay())
        };
    }

    /// Resolves when it is time for the next try; never, with nothing to try.
    pub(super) async fn due(&self) {
        match self.at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_tried_again_ever_later_until_none_is_left() {
        let mut retry = Retry::default();
        let failed = [(
            "db".to_owned(),
            "127.0.0.1:5432 is already in use".to_owned(),
        )];
        retry.failed_now(&failed);
        let first = retry.at.unwrap() - Instant::now();
        assert!(first <= Duration::from_millis(1200), "{first:?}");
        retry.failed_now(&failed);
        let second = retry.at.unwrap() - Instant::now();
        assert!(second >= Duration::from_millis(1500), "{second:?}");
        assert_eq!(retry.failed.len(), 1);

        retry.failed_now(&[]);
        assert!(retry.failed.is_empty());
        assert_eq!(retry.at, None);
        // After a success the next failure waits the first delay again.
        retry.failed_now(&failed);
        assert!(retry.at.unwrap() - Instant::now() <= Duration::from_millis(1200));
    }
}
