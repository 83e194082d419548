//! A bounded pool that runs password hashing off the async runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::Semaphore;

use super::{HashPolicy, NewPassword, hash_password, needs_rehash, verify_password};
use crate::config::PasswordConfig;
use crate::error::{Error, Result};

/// Runs hashing on at most `workers` blocking threads with at most
/// `queue_capacity` more waiting; past that, callers get
/// [`Error::Unavailable`] (503 with `Retry-After`) instead of an unbounded wait.
#[derive(Clone)]
pub struct PasswordHasherPool {
    policy: HashPolicy,
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    dummy_hash: Arc<str>,
    /// Hashes and verifications started, since the pool was made.
    started: Arc<AtomicU64>,
}

impl std::fmt::Debug for PasswordHasherPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasherPool")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl PasswordHasherPool {
    /// A pool for `cfg`. Computes one dummy hash (used for unknown e-mails so
    /// they cost the same work as a wrong password).
    pub fn new(cfg: &PasswordConfig) -> anyhow::Result<Self> {
        let policy = HashPolicy::from_config(cfg);
        let dummy = hash_password("portcullis-dummy-password", policy)
            .map_err(|e| anyhow::anyhow!("computing the dummy hash: {e}"))?;
        Ok(Self {
            policy,
            running: Arc::new(Semaphore::new(cfg.workers)),
            admitted: Arc::new(Semaphore::new(cfg.workers + cfg.queue_capacity)),
            dummy_hash: dummy.into(),
            started: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The policy new hashes follow.
    pub fn policy(&self) -> HashPolicy {
        self.policy
    }

    /// How many hashes and verifications this pool (and its clones) started:
    /// a request that did none did no hashing work.
    pub fn jobs_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let Ok(admission) = self.admitted.clone().try_acquire_owned() else {
            metrics::counter!("portcullis_hash_rejected_total").increment(1);
            return Err(Error::Unavailable);
        };
        let worker = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(Error::internal)?;
        self.started.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let out = tokio::task::spawn_blocking(move || {
            let out = job();
            drop((worker, admission));
            out
        })
        .await
        .map_err(Error::internal)?;
        metrics::histogram!("portcullis_password_hash_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(out)
    }

    /// Hashes a policy-checked password.
    pub async fn hash(&self, password: &NewPassword) -> Result<String> {
        let password = password.expose().to_string();
        let policy = self.policy;
        self.run(move || hash_password(&password, policy))
            .await?
            .map_err(Error::internal)
    }

    /// Verifies `password` against `stored`; with no stored hash (unknown
    /// user) it does the same work against a dummy hash and answers `false`.
    /// An unreadable stored hash also answers `false` (and is logged).
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool> {
        let known = stored.is_some();
        let hash = stored.map_or_else(|| self.dummy_hash.to_string(), str::to_string);
        let password = password.to_string();
        let outcome = self.run(move || verify_password(&password, &hash)).await?;
        match outcome {
            Ok(matched) => Ok(matched && known),
            Err(e) => {
                tracing::warn!(error = %e, "stored password hash could not be verified");
                Ok(false)
            }
        }
    }

    /// Whether `stored` should be replaced by a hash under the current policy.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        needs_rehash(stored, self.policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HasherKind;

    fn cfg(workers: usize, queue: usize) -> PasswordConfig {
        PasswordConfig {
            hasher: HasherKind::Bcrypt,
            bcrypt_rounds: 4,
            min_length: 8,
            queue_capacity: queue,
            workers,
        }
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        let pool = PasswordHasherPool::new(&cfg(1, 64)).unwrap();
        assert!(
            !pool
                .verify("portcullis-dummy-password", None)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn full_queue_answers_unavailable() {
        let mut c = cfg(1, 0);
        c.bcrypt_rounds = 12;
        let pool = PasswordHasherPool::new(&c).unwrap();
        let stored = pool.dummy_hash.to_string();
        let busy = {
            let pool = pool.clone();
            let stored = stored.clone();
            tokio::spawn(async move { pool.verify("x", Some(&stored)).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let second = pool.verify("x", Some(&stored)).await;
        assert!(matches!(second, Err(Error::Unavailable)));
        assert!(!busy.await.unwrap().unwrap());
    }
}
