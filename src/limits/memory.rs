//! Counters in this process's memory: one keyed GCRA limiter of the
//! `governor` crate per rule. Used without Redis, and while Redis is down.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio_util::sync::CancellationToken;

use super::{Decision, Key, Rule};
use crate::config::Rate;

/// How often counters that are back to their initial state are dropped.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);

/// One limiter per rule, in [`Rule::ALL`] order.
pub(super) struct MemoryCounters {
    limiters: Vec<DefaultKeyedRateLimiter<Key>>,
}

/// The governor quota of `rate`: `count` at once, one more each `per / count`.
fn quota(rate: Rate) -> Quota {
    let count = NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN);
    let interval = (rate.per / count.get()).max(Duration::from_nanos(1));
    Quota::with_period(interval)
        .unwrap_or_else(|| Quota::per_second(count))
        .allow_burst(count)
}

impl MemoryCounters {
    pub(super) fn new(rates: &[Rate]) -> Self {
        Self {
            limiters: rates
                .iter()
                .map(|rate| DefaultKeyedRateLimiter::keyed(quota(*rate)))
                .collect(),
        }
    }

    pub(super) fn decide(&self, rule: Rule, key: &Key) -> Decision {
        let limiter = &self.limiters[rule.index()];
        match limiter.check_key(key) {
            Ok(()) => Decision::Allowed,
            Err(not_until) => Decision::Limited(not_until.wait_time_from(limiter.clock().now())),
        }
    }

    /// Every minute, drops the counters that are back to their initial
    /// state, so that memory follows the clients of the last period, not
    /// every client ever seen.
    pub(super) async fn housekeeping(
        self: std::sync::Arc<Self>,
        stop: CancellationToken,
        budget: std::sync::Arc<super::budget::MemoryBudget>,
    ) {
        let mut every = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = stop.cancelled() => return,
            }
            for limiter in &self.limiters {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            budget.forget_idle();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_follow_the_rate() {
        let q = quota(Rate::per_minute(10));
        assert_eq!(q.burst_size().get(), 10);
        assert_eq!(q.replenish_interval(), Duration::from_secs(6));
        let q = quota(Rate::per_hour(3));
        assert_eq!(q.burst_size().get(), 3);
        assert_eq!(q.replenish_interval(), Duration::from_secs(1200));
    }
}
