//! How a retry loop reports a dependency that is down (the database, the
//! LISTEN connection, the mail server): one line when it goes down, a summary
//! every minute while it stays down, one line when it is back, rather than a
//! line per attempt; and the wait between attempts, doubling from 250 ms to
//! 30 s with jitter, so that a fleet of processes does not retry in step.

use std::time::{Duration, Instant};

use rand::Rng;

const FIRST_RETRY: Duration = Duration::from_millis(250);
const LONGEST_RETRY: Duration = Duration::from_secs(30);
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

pub struct Outage {
    dependency: &'static str,
    down: Option<Down>,
}

struct Down {
    since: Instant,
    failures: u64,
    last_summary: Instant,
}

impl Outage {
    pub fn new(dependency: &'static str) -> Self {
        Self {
            dependency,
            down: None,
        }
    }

    pub fn is_down(&self) -> bool {
        self.down.is_some()
    }

    /// Records a failed attempt (its error's cause chain on one line);
    /// returns how long to wait before the next.
    pub fn failed(&mut self, err: &dyn std::fmt::Display) -> Duration {
        let now = Instant::now();
        let dependency = self.dependency;
        let down = self.down.get_or_insert_with(|| {
            tracing::warn!(dependency, error = %err, "{dependency} is unreachable; retrying with backoff");
            Down {
                since: now,
                failures: 0,
                last_summary: now,
            }
        });
        down.failures += 1;
        if now - down.last_summary >= SUMMARY_EVERY {
            down.last_summary = now;
            tracing::warn!(
                dependency,
                down_for_secs = (now - down.since).as_secs(),
                failures = down.failures,
                error = %err,
                "{dependency} is still unreachable"
            );
        }
        retry_after(down.failures)
    }

    /// Records a successful attempt: says so once if it had been down.
    pub fn recovered(&mut self) {
        if let Some(down) = self.down.take() {
            let dependency = self.dependency;
            tracing::info!(
                dependency,
                down_for_secs = down.since.elapsed().as_secs(),
                failures = down.failures,
                "{dependency} is reachable again"
            );
        }
    }
}

/// The wait after `failures` failures in a row: 250 ms doubling, capped at
/// 30 s, each drawn between half and all of that.
fn retry_after(failures: u64) -> Duration {
    let doubled = FIRST_RETRY.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled
        .min(LONGEST_RETRY)
        .mul_f64(rand::rng().random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_cap_with_jitter() {
        for (failures, full) in [(1, 250), (2, 500), (3, 1000), (8, 30_000), (60, 30_000)] {
            let wait = retry_after(failures).as_millis() as u64;
            assert!((full / 2..=full).contains(&wait), "{failures}: {wait} ms");
        }
    }

    #[test]
    fn an_outage_is_down_until_it_recovers() {
        let mut outage = Outage::new("test");
        assert!(!outage.is_down());
        outage.failed(&"refused");
        outage.failed(&"refused");
        assert!(outage.is_down());
        outage.recovered();
        assert!(!outage.is_down());
    }
}
