//! Exponential backoff with full jitter between reconnection attempts.

use std::time::Duration;

/// How long to wait before each reconnection attempt: exponential from `min` to `max`, with
/// full jitter (a uniformly random delay up to the current bound), so that many clients
/// cut off together do not reconnect together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The bound of the first wait.
    pub min: Duration,
    /// The largest bound.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            min: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

/// The state of a backoff sequence.
#[derive(Debug)]
pub(crate) struct Attempts {
    backoff: Backoff,
    attempt: u32,
    rng: fastrand::Rng,
}

impl Attempts {
    pub(crate) fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            attempt: 0,
            rng: fastrand::Rng::new(),
        }
    }

    /// The number of the next attempt, from 1.
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt.max(1)
    }

    /// The wait before the next attempt. The very first connection of a client waits
    /// nothing; every later sequence starts with a jittered wait up to `min`, so that
    /// clients cut off together do not all come back at the same instant.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let attempt = self.attempt;
        self.attempt = self.attempt.saturating_add(1);
        if attempt == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX);
        let bound = self
            .backoff
            .min
            .saturating_mul(factor)
            .min(self.backoff.max);
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.u64(0..=nanos))
    }

    /// A connection made progress: the next failure starts a new sequence.
    pub(crate) fn reset(&mut self) {
        self.attempt = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_bound_with_jitter() {
        let mut attempts = Attempts::new(Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(1),
        });
        assert_eq!(attempts.next_delay(), Duration::ZERO);
        for n in 1..20u32 {
            let bound = (Duration::from_millis(100) * 2u32.pow((n - 1).min(10)))
                .min(Duration::from_secs(1));
            assert!(attempts.next_delay() <= bound);
        }
        attempts.reset();
        assert!(
            attempts.next_delay() <= Duration::from_millis(100),
            "jittered, up to min"
        );
    }
}
