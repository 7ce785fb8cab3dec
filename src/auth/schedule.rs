//! When `obol auth refresh --watch` refreshes next, and how it backs off after failures.
//!
//! Tokens living an hour or more are refreshed [`LEAD`] (15 minutes) before they expire: every
//! ~45 minutes for Google's 1-hour ID tokens, leaving three retries' worth of slack. Shorter
//! tokens are refreshed at 75% of their lifetime (a 20 s test token: after 15 s).

use std::time::Duration;

/// How long before expiry long-lived tokens are refreshed.
pub const LEAD: Duration = Duration::from_secs(15 * 60);
/// Smallest wait between two refreshes.
pub const MIN_DELAY: Duration = Duration::from_secs(1);

/// The delay before the next refresh of a token issued at `iat` (if known) that expires at
/// `exp`, at time `now` (Unix seconds).
pub fn next_refresh_in(now: i64, iat: Option<i64>, exp: i64) -> Duration {
    // An `iat` in the future or after `exp` (clock skew, odd issuers) is ignored.
    let issued = iat.filter(|&i| i <= now + 60 && i < exp).unwrap_or(now);
    let lifetime = (exp - issued).max(0);
    let lead = LEAD.as_secs() as i64;
    let at_ms = if lifetime >= 4 * lead {
        (exp - lead) * 1000
    } else {
        issued * 1000 + lifetime * 750
    };
    let delay_ms = at_ms - now * 1000;
    Duration::from_millis(delay_ms.max(MIN_DELAY.as_millis() as i64) as u64)
}

/// Exponential backoff for transient failures: 1 s, 2 s, 4 s, ... up to a minute, so a recovered
/// issuer or API server is tried again well before eRPC's token runs out.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The next delay, doubling each call.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub fn reset(&mut self) {
        *self = Backoff {
            max: self.max,
            ..Default::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_hour_tokens_refresh_at_45_minutes() {
        let now = 1_000_000;
        assert_eq!(
            next_refresh_in(now, Some(now), now + 3600),
            Duration::from_secs(45 * 60)
        );
        // 20 minutes into the hour: 25 minutes left to wait.
        assert_eq!(
            next_refresh_in(now + 1200, Some(now), now + 3600),
            Duration::from_secs(25 * 60)
        );
    }

    #[test]
    fn short_tokens_refresh_at_three_quarters() {
        let now = 1_000_000;
        assert_eq!(
            next_refresh_in(now, Some(now), now + 20),
            Duration::from_secs(15)
        );
        assert_eq!(
            next_refresh_in(now, None, now + 40),
            Duration::from_secs(30)
        );
        // Already past the point: the minimum.
        assert_eq!(next_refresh_in(now + 19, Some(now), now + 20), MIN_DELAY);
        assert_eq!(next_refresh_in(now + 100, Some(now), now + 20), MIN_DELAY);
    }

    #[test]
    fn backoff_doubles_up_to_its_max() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        b.reset();
        assert_eq!(b.next_delay().as_secs(), 1);
    }
}
