//! Budgets: limits that count only some requests (failed logins for one
//! account), decided before the work by *looking* at the counter, and
//! spent after it. The same GCRA as the rules ([`super`]), in memory or in
//! Redis ([`super::redis::Mode::Peek`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::redis::Mode;
use super::{Key, Limits, Rule, key};
use crate::config::Rate;
use crate::error::{Error, Result};

/// The most keys a memory budget remembers; past it, the one that would be
/// back to its initial state first is forgotten.
const MAX_KEYS: usize = 100_000;

/// One budget's counters in this process's memory: the theoretical arrival
/// time of each key.
#[derive(Debug)]
pub(super) struct MemoryBudget {
    rate: Rate,
    tats: Mutex<HashMap<Key, Instant>>,
}

/// What spending one unit of a budget did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    /// Spent; some is left.
    Left,
    /// Spent the last of it: the budget is used up from now on.
    UsedUp,
    /// Nothing was left to spend.
    Empty,
}

impl MemoryBudget {
    pub(super) fn new(rate: Rate) -> Self {
        Self {
            rate,
            tats: Mutex::new(HashMap::new()),
        }
    }

    fn interval(&self) -> Duration {
        (self.rate.per / self.rate.count.max(1)).max(Duration::from_nanos(1))
    }

    /// How long until a unit could be spent (zero: now).
    fn wait(&self, tat: Instant, now: Instant) -> Duration {
        let tolerance = self.interval() * self.rate.count.saturating_sub(1);
        tat.saturating_duration_since(now + tolerance)
    }

    fn peek(&self, key: &Key) -> Duration {
        let now = Instant::now();
        let tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        tats.get(key)
            .map_or(Duration::ZERO, |tat| self.wait(*tat, now))
    }

    fn spend(&self, key: &Key) -> Spent {
        let now = Instant::now();
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        let tat = tats.get(key).copied().unwrap_or(now).max(now);
        if !self.wait(tat, now).is_zero() {
            return Spent::Empty;
        }
        if tats.len() >= MAX_KEYS && !tats.contains_key(key) {
            tats.retain(|_, t| *t > now);
            if tats.len() >= MAX_KEYS
                && let Some(first) = tats.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k)
            {
                tats.remove(&first);
            }
        }
        let next = tat + self.interval();
        tats.insert(*key, next);
        if self.wait(next, now).is_zero() {
            Spent::Left
        } else {
            Spent::UsedUp
        }
    }

    /// Forgets the keys that are back to their initial state.
    pub(super) fn forget_idle(&self) {
        let now = Instant::now();
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        tats.retain(|_, t| *t > now);
        tats.shrink_to_fit();
    }
}

impl Limits {
    /// Whether `rule`'s budget for the key made of `parts` has some left,
    /// without spending any: over it, [`Error::RateLimited`] (counted in
    /// `portcullis_rate_limited_total{rule}`).
    pub async fn budget_left(&self, rule: Rule, parts: &[&str]) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let key = key(rule, parts);
        let redis = match &self.redis {
            Some(redis) => redis.run(rule, &key, self.rate(rule), Mode::Peek).await,
            None => None,
        };
        let wait = match redis {
            Some(wait_ms) => Duration::from_millis(wait_ms.max(0) as u64),
            None => self.account_budget.peek(&key),
        };
        if wait.is_zero() {
            return Ok(());
        }
        metrics::counter!("portcullis_rate_limited_total", "rule" => rule.name()).increment(1);
        Err(Error::RateLimited {
            retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
    }

    /// Spends one unit of `rule`'s budget for the key made of `parts`.
    pub async fn spend(&self, rule: Rule, parts: &[&str]) -> Spent {
        if !self.enabled {
            return Spent::Left;
        }
        let key = key(rule, parts);
        let redis = match &self.redis {
            Some(redis) => redis.run(rule, &key, self.rate(rule), Mode::Count).await,
            None => None,
        };
        match redis {
            Some(0) => Spent::Left,
            Some(-1) => Spent::UsedUp,
            Some(_) => Spent::Empty,
            None => self.account_budget.spend(&key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_looked_at_without_spending_and_says_when_it_is_used_up() {
        let budget = MemoryBudget::new(Rate::per_hour(3));
        let k = key(Rule::LoginPerAccount, &["a@example.com"]);
        for _ in 0..5 {
            assert_eq!(budget.peek(&k), Duration::ZERO);
        }
        assert_eq!(budget.spend(&k), Spent::Left);
        assert_eq!(budget.spend(&k), Spent::Left);
        assert_eq!(budget.spend(&k), Spent::UsedUp);
        assert!(budget.peek(&k) > Duration::from_secs(1000));
        assert_eq!(budget.spend(&k), Spent::Empty);
        // Another key has its own.
        assert_eq!(
            budget.peek(&key(Rule::LoginPerAccount, &["b@example.com"])),
            Duration::ZERO
        );
    }
}
