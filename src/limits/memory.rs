//! Counters in this process's memory: one keyed GCRA limiter of the
//! `governor` crate per rule. Used without Redis, and while Redis is down.
//!
//! Memory is bounded whatever the request rate: each rule keeps at most
//! [`MAX_KEYS`] counters. A new key that finds its rule full first has the
//! counters that are back to their initial state dropped (at most once a
//! second), and if the rule is still full it is counted in an *overflow*
//! limiter keyed by the first two bytes of its digest instead (65,536
//! counters at most): coarser, since keys that share a bucket share its
//! allowance, but never unlimited and never unbounded.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use super::{Decision, Key, Rule};
use crate::config::Rate;

/// How often counters that are back to their initial state are dropped.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);

/// Counters a rule keeps before new keys go to its overflow limiter.
pub(super) const MAX_KEYS: usize = 50_000;

/// How often, at most, a full rule drops its idle counters on the spot.
const INLINE_CLEANUP_INTERVAL: Duration = Duration::from_secs(1);

/// governor's own concurrent map of counters, shared so that the rule can
/// ask whether a key has one (the limiter does not say).
#[derive(Default)]
struct SharedCounters(Arc<DashMapStateStore<Key>>);

impl StateStore for SharedCounters {
    type Key = Key;

    fn measure_and_replace<T, F, E>(&self, key: &Key, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<Key> for SharedCounters {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&*self.0, drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&*self.0);
    }

    fn len(&self) -> usize {
        ShrinkableKeyedStateStore::len(&*self.0)
    }

    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::is_empty(&*self.0)
    }
}

type KeyedLimiter = RateLimiter<Key, SharedCounters, DefaultClock, NoOpMiddleware>;

/// One rule's counters: by key, and the overflow buckets for keys that
/// arrive while the rule is full.
struct RuleCounters {
    by_key: KeyedLimiter,
    /// The map inside `by_key`.
    keys: Arc<DashMapStateStore<Key>>,
    overflow: DefaultKeyedRateLimiter<u16>,
    /// When the last inline clean-up ran, in milliseconds since `base`.
    cleaned_ms: AtomicU64,
}

/// One set of counters per rule, in [`Rule::ALL`] order.
pub(super) struct MemoryCounters {
    rules: Vec<RuleCounters>,
    max_keys: usize,
    overflow_mask: u16,
    base: Instant,
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
    /// The counters of the rules whose rates are `rates`, each holding at
    /// most [`MAX_KEYS`] keys.
    pub(super) fn new(rates: &[Rate]) -> Self {
        Self::bounded(rates, MAX_KEYS, u16::MAX)
    }

    /// Counters holding at most `max_keys` keys per rule, the overflow
    /// keyed by the digest's first two bytes masked with `overflow_mask`.
    fn bounded(rates: &[Rate], max_keys: usize, overflow_mask: u16) -> Self {
        Self {
            rules: rates
                .iter()
                .map(|rate| {
                    let keys = Arc::new(DashMapStateStore::default());
                    let store = SharedCounters(Arc::clone(&keys));
                    RuleCounters {
                        by_key: RateLimiter::new(quota(*rate), store, DefaultClock::default()),
                        keys,
                        overflow: DefaultKeyedRateLimiter::keyed(quota(*rate)),
                        cleaned_ms: AtomicU64::new(0),
                    }
                })
                .collect(),
            max_keys,
            overflow_mask,
            base: Instant::now(),
        }
    }

    pub(super) fn decide(&self, rule: Rule, key: &Key) -> Decision {
        let counters = &self.rules[rule.index()];
        if counters.by_key.len() >= self.max_keys && !self.holds(counters, key) {
            let bucket = u16::from_be_bytes([key[0], key[1]]) & self.overflow_mask;
            let limiter = &counters.overflow;
            return match limiter.check_key(&bucket) {
                Ok(()) => Decision::Allowed,
                Err(not_until) => {
                    Decision::Limited(not_until.wait_time_from(limiter.clock().now()))
                }
            };
        }
        let limiter = &counters.by_key;
        match limiter.check_key(key) {
            Ok(()) => Decision::Allowed,
            Err(not_until) => Decision::Limited(not_until.wait_time_from(limiter.clock().now())),
        }
    }

    /// Whether a full rule can count `key` by itself: it has a counter for
    /// it already, or dropping the idle counters (at most once every
    /// [`INLINE_CLEANUP_INTERVAL`]) made room.
    fn holds(&self, counters: &RuleCounters, key: &Key) -> bool {
        if counters.keys.contains_key(key) {
            return true;
        }
        let now_ms = self.base.elapsed().as_millis() as u64;
        let last = counters.cleaned_ms.load(Ordering::Relaxed);
        let due =
            last == 0 || now_ms.saturating_sub(last) >= INLINE_CLEANUP_INTERVAL.as_millis() as u64;
        if due
            && counters
                .cleaned_ms
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            counters.by_key.retain_recent();
        }
        counters.by_key.len() < self.max_keys
    }

    /// How many counters `rule` holds, by key and in its overflow.
    #[cfg(test)]
    fn held(&self, rule: Rule) -> usize {
        let counters = &self.rules[rule.index()];
        counters.by_key.len() + counters.overflow.len()
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
            for counters in &self.rules {
                counters.by_key.retain_recent();
                counters.by_key.shrink_to_fit();
                counters.overflow.retain_recent();
                counters.overflow.shrink_to_fit();
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

    fn key_of(n: u32) -> Key {
        super::super::key(Rule::LoginPerIp, &[&n.to_string()])
    }

    #[test]
    fn a_flood_of_new_keys_holds_a_bounded_number_of_counters() {
        let rates = Rule::ALL.map(|_| Rate::per_minute(2));
        // 100 keys, and an overflow of 16 buckets.
        let counters = MemoryCounters::bounded(&rates, 100, 0x000f);
        for n in 0..20_000 {
            counters.decide(Rule::LoginPerIp, &key_of(n));
        }
        let held = counters.held(Rule::LoginPerIp);
        assert!(held <= 100 + 16, "{held} counters held");
    }

    #[test]
    fn a_key_that_overflows_is_still_limited() {
        let rates = Rule::ALL.map(|_| Rate::per_minute(2));
        let counters = MemoryCounters::bounded(&rates, 10, u16::MAX);
        // Fill the rule with keys that are not idle (each used up).
        for n in 0..10 {
            for _ in 0..2 {
                counters.decide(Rule::LoginPerIp, &key_of(n));
            }
        }
        let newcomer = key_of(1_000);
        let decisions: Vec<_> = (0..3)
            .map(|_| counters.decide(Rule::LoginPerIp, &newcomer))
            .collect();
        assert_eq!(decisions[..2], [Decision::Allowed, Decision::Allowed]);
        assert!(matches!(decisions[2], Decision::Limited(_)));
        // A key that was there before keeps its own counter.
        assert!(matches!(
            counters.decide(Rule::LoginPerIp, &key_of(3)),
            Decision::Limited(_)
        ));
    }
}
