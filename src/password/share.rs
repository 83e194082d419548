//! Each caller's share of the hashing queue (SPEC §7): no single user or
//! client IP may hold more than a few of the queue's places, so one account
//! (or one address) flooding a password route cannot make a stranger's
//! login wait or fail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// Who a hash is done for, as far as the queue's fair share goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HashCaller(String);

impl HashCaller {
    /// A signed-in user (a check of their current password).
    pub fn user(id: i64) -> Self {
        Self(format!("user:{id}"))
    }

    /// A client, by what the per-IP limits count it by (its IPv4 address or
    /// IPv6 /64; see [`crate::limits::Limits::client_key`]).
    pub fn client(key: &str) -> Self {
        Self(format!("ip:{key}"))
    }

    /// An e-mail address being signed in to (normalised), when the client's
    /// IP is unknown.
    pub fn email(key: &str) -> Self {
        Self(format!("email:{key}"))
    }
}

/// How many hashes each caller has waiting or running. Entries exist only
/// while a caller has one, so the map is never larger than the queue.
#[derive(Debug)]
pub(super) struct Shares {
    cap: usize,
    held: Mutex<HashMap<HashCaller, usize>>,
}

/// One place in the queue held for a caller, given back when dropped (when
/// its hash has run, or was never sent).
pub(super) struct Share {
    shares: Arc<Shares>,
    caller: HashCaller,
}

impl Shares {
    /// At most `cap` places per caller.
    pub(super) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// A place for `caller`, or 429 `RATE_LIMITED` (counted under the rule
    /// `hash_queue_per_caller`) when it already holds its share.
    pub(super) fn take(self: &Arc<Self>, caller: &HashCaller) -> Result<Share> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(caller.clone()).or_insert(0);
        if *count >= self.cap {
            drop(held);
            metrics::counter!("portcullis_rate_limited_total", "rule" => "hash_queue_per_caller")
                .increment(1);
            return Err(Error::RateLimited { retry_after: 1 });
        }
        *count += 1;
        Ok(Share {
            shares: Arc::clone(self),
            caller: caller.clone(),
        })
    }

    /// How many places `caller` holds now.
    #[cfg(test)]
    pub(super) fn held(&self, caller: &HashCaller) -> usize {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(caller).copied().unwrap_or(0)
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = self.shares.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&self.caller) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_holds_at_most_its_share_and_gets_it_back() {
        let shares = Arc::new(Shares::new(2));
        let greedy = HashCaller::user(1);
        let first = shares.take(&greedy).unwrap();
        let _second = shares.take(&greedy).unwrap();
        assert!(matches!(
            shares.take(&greedy),
            Err(Error::RateLimited { retry_after: 1 })
        ));
        // Someone else is not affected.
        let _other = shares.take(&HashCaller::client("192.0.2.1")).unwrap();
        drop(first);
        assert_eq!(shares.held(&greedy), 1);
        let _third = shares.take(&greedy).unwrap();
        assert_eq!(shares.held(&greedy), 2);
    }

    #[test]
    fn entries_go_when_their_last_share_does() {
        let shares = Arc::new(Shares::new(1));
        drop(shares.take(&HashCaller::email("a@example.com")).unwrap());
        assert!(shares.held.lock().unwrap().is_empty());
    }
}
