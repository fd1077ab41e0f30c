//! Retry delays that double up to a ceiling, each with ±20% jitter so that many retrying
//! tasks (forwards of one cluster, clients of one git server) do not knock in step.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first.min(max),
        }
    }

    /// The delay before the next attempt (jittered), doubling the one after.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay.mul_f64(rand::rng().random_range(0.8..1.2))
    }

    /// Back to the first delay, after a success.
    pub(crate) fn reset(&mut self) {
        self.next = self.first.min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_ceiling_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
        let within = |d: Duration, ms: u64| {
            let ms = ms as f64;
            (ms * 0.8..=ms * 1.2).contains(&(d.as_secs_f64() * 1000.0))
        };
        for expected in [500, 1000, 2000, 3000, 3000] {
            let d = b.next_delay();
            assert!(within(d, expected), "{d:?} is not {expected} ms ±20%");
        }
        b.reset();
        assert!(within(b.next_delay(), 500));
    }
}
