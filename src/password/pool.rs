//! A bounded pool that runs password hashing off the async runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::share::{HashCaller, Shares};
use super::{
    BCRYPT_MAX_BYTES, HashMemory, HashPolicy, NewPassword, hash_password, hash_password_in,
    is_bcrypt, needs_rehash, verify_password_in,
};

/// Whether bcrypt refuses `password` against `hash` without working (it is
/// over bcrypt's 72 bytes): such a refusal measures nothing.
fn is_bcrypt_over_limit(password: &str, hash: &str) -> bool {
    is_bcrypt(hash) && password.len() > BCRYPT_MAX_BYTES
}
use crate::config::PasswordConfig;
use crate::error::{Error, Result};

/// A job for a hashing thread, given that thread's memory.
type Job = Box<dyn FnOnce(&mut HashMemory) + Send>;

/// The fixed hashing threads: each owns one [`HashMemory`] for its whole
/// life, so memory stays at `workers` × argon2's 19 MiB however many hashes
/// run. (Hashing on `spawn_blocking` threads let each thread's allocator
/// arena keep its own 19 MiB blocks: 425 MB after a login flood.) The
/// threads end when the last clone of the pool is dropped.
struct Workers {
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
}

impl Workers {
    fn start(count: usize) -> anyhow::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..count {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("portcullis-hash-{n}"))
                .spawn(move || {
                    let mut memory = HashMemory::default();
                    loop {
                        let job = {
                            let queue = queue.lock().unwrap_or_else(|p| p.into_inner());
                            queue.recv()
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self {
            jobs: Mutex::new(jobs),
        })
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| Error::internal(anyhow::anyhow!("the hashing threads are gone")))
    }
}

/// Runs hashing on `workers` fixed threads with at most `queue_capacity`
/// more waiting; past that, callers get [`Error::Unavailable`] (503 with
/// `Retry-After`) instead of an unbounded wait. A hash done for a named
/// [`HashCaller`] also counts against that caller's share of the queue
/// (`per_caller` places); past it the caller gets 429 `RATE_LIMITED`.
#[derive(Clone)]
pub struct PasswordHasherPool {
    policy: HashPolicy,
    workers: Arc<Workers>,
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    shares: Arc<Shares>,
    dummy_hash: Arc<str>,
    /// Hashes and verifications started, since the pool was made.
    started: Arc<AtomicU64>,
    /// How long a verification takes, per kind of stored hash.
    costs: Arc<VerifyCosts>,
}

/// The smoothed time a verification takes for each kind of stored hash
/// (its algorithm and parameters: `$2b$10`, `$argon2id$v=19$m=19456,t=2,p=1`).
/// A failed verification is made to last as long as the slowest kind, so
/// that an unknown e-mail, a wrong password on a current hash, one on a
/// legacy bcrypt hash, and a password bcrypt refuses at once (over 72
/// bytes) all answer in the same time (SPEC §7).
#[derive(Debug, Default)]
struct VerifyCosts(Mutex<HashMap<String, Duration>>);

/// No failure is padded beyond this, whatever was measured.
const MAX_PADDING: Duration = Duration::from_secs(2);

impl VerifyCosts {
    /// The kind of `hash`: everything before its salt.
    fn kind(hash: &str) -> &str {
        match hash.rfind('$') {
            Some(end) if hash.starts_with("$argon2") => {
                // `$argon2id$v=19$m=…,t=…,p=…$salt$hash`: drop salt and hash.
                let head = &hash[..end];
                head.rfind('$').map_or(head, |i| &head[..i])
            }
            _ => hash.get(..7).unwrap_or(hash),
        }
    }

    /// Folds one measured verification of `hash` into its kind's average.
    fn observe(&self, hash: &str, took: Duration) {
        let took = took.min(MAX_PADDING);
        let mut costs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let kind = Self::kind(hash);
        let kinds = costs.len();
        match costs.get_mut(kind) {
            // Up fast, down slowly: an underestimate is what leaks.
            Some(avg) if took > *avg => *avg = (*avg + took) / 2,
            Some(avg) => *avg = (*avg * 7 + took) / 8,
            None if kinds < 64 => {
                costs.insert(kind.to_string(), took);
            }
            None => {}
        }
    }

    /// The time every failed verification should take.
    fn floor(&self) -> Duration {
        let costs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        costs.values().copied().max().unwrap_or_default()
    }
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
        let began = Instant::now();
        let dummy = hash_password("portcullis-dummy-password", policy)
            .map_err(|e| anyhow::anyhow!("computing the dummy hash: {e}"))?;
        // Hashing costs what verifying does: the first estimate of the floor.
        let costs = VerifyCosts::default();
        costs.observe(&dummy, began.elapsed());
        Ok(Self {
            policy,
            workers: Arc::new(Workers::start(cfg.workers)?),
            running: Arc::new(Semaphore::new(cfg.workers)),
            admitted: Arc::new(Semaphore::new(cfg.workers + cfg.queue_capacity)),
            shares: Arc::new(Shares::new(cfg.per_caller)),
            dummy_hash: dummy.into(),
            started: Arc::new(AtomicU64::new(0)),
            costs: Arc::new(costs),
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

    async fn run<T: Send + 'static>(
        &self,
        caller: Option<&HashCaller>,
        job: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T> {
        let share = caller.map(|c| self.shares.take(c)).transpose()?;
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
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.workers.send(Box::new(move |memory: &mut HashMemory| {
            let out = job(memory);
            drop((worker, admission, share));
            let _ = reply.send(out);
        }))?;
        let out = answer
            .await
            .map_err(|_| Error::internal(anyhow::anyhow!("a hashing thread stopped")))?;
        metrics::histogram!("portcullis_password_hash_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(out)
    }

    /// Hashes a policy-checked password.
    pub async fn hash(&self, password: &NewPassword) -> Result<String> {
        self.hash_for(None, password).await
    }

    /// [`PasswordHasherPool::hash`] for `caller`, within its share of the queue.
    pub async fn hash_for(
        &self,
        caller: Option<&HashCaller>,
        password: &NewPassword,
    ) -> Result<String> {
        let password = password.expose().to_string();
        let policy = self.policy;
        self.run(caller, move |memory| {
            hash_password_in(&password, policy, memory)
        })
        .await?
        .map_err(Error::internal)
    }

    /// Verifies `password` against `stored`; with no stored hash (unknown
    /// user) it does the same work against a dummy hash and answers `false`.
    /// An unreadable stored hash also answers `false` (and is logged).
    ///
    /// A `false` answer never comes sooner than the slowest kind of stored
    /// hash takes to verify (it waits, without holding a hashing thread), so
    /// its timing tells nothing about the account. A kind of hash is known
    /// once one of its verifications has been measured.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool> {
        self.verify_for(None, password, stored).await
    }

    /// [`PasswordHasherPool::verify`] for `caller`, within its share of the
    /// queue: past it, 429 `RATE_LIMITED` without hashing.
    pub async fn verify_for(
        &self,
        caller: Option<&HashCaller>,
        password: &str,
        stored: Option<&str>,
    ) -> Result<bool> {
        let known = stored.is_some();
        let hash = stored.map_or_else(|| self.dummy_hash.to_string(), str::to_string);
        let password = password.to_string();
        let measured = hash.clone();
        let (outcome, began, took) = self
            .run(caller, move |memory| {
                let began = Instant::now();
                let short_cut = is_bcrypt_over_limit(&password, &hash);
                let outcome = verify_password_in(&password, &hash, memory);
                let took = (!short_cut && outcome.is_ok()).then(|| began.elapsed());
                (outcome, began, took)
            })
            .await?;
        if let Some(took) = took {
            self.costs.observe(&measured, took);
        }
        let matched = match outcome {
            Ok(matched) => matched && known,
            Err(e) => {
                tracing::warn!(error = %e, "stored password hash could not be verified");
                false
            }
        };
        if !matched {
            let until = began + self.costs.floor();
            tokio::time::sleep_until(until.into()).await;
        }
        Ok(matched)
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
            per_caller: 4,
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
        let pool = PasswordHasherPool::new(&cfg(1, 0)).unwrap();
        let stored = pool.dummy_hash.to_string();
        // A job that holds the only place until it is let go.
        let (running, is_running) = tokio::sync::oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(None, move |_| {
                    let _ = running.send(());
                    let _ = released.recv();
                })
                .await
            })
        };
        is_running.await.unwrap();
        // Refused at once, not queued behind the busy job (the time limit
        // only turns such a wait into a failure instead of a hang).
        let second = tokio::time::timeout(Duration::from_secs(10), pool.verify("x", Some(&stored)))
            .await
            .expect("the second verification waited for a place");
        assert!(matches!(second, Err(Error::Unavailable)), "{second:?}");
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        // The place is free again.
        assert!(!pool.verify("x", Some(&stored)).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_failure_costs_one_hash_and_waits_for_the_slowest_kind() {
        let mut c = cfg(2, 64);
        c.hasher = HasherKind::Argon2id;
        let pool = PasswordHasherPool::new(&c).unwrap();
        // A legacy account on bcrypt.
        let bcrypt = HashPolicy {
            kind: HasherKind::Bcrypt,
            bcrypt_rounds: 4,
        };
        let legacy = hash_password("the-right-password", bcrypt).unwrap();
        let right = NewPassword::parse("the-right-password", None, &c, "p").unwrap();
        let current = pool.hash(&right).await.unwrap();
        // An unknown e-mail verifies against a hash of the current kind
        // (algorithm and parameters): the work of a wrong password.
        assert_eq!(
            VerifyCosts::kind(&pool.dummy_hash),
            VerifyCosts::kind(&current)
        );
        // The slowest kind measured so far: every failure waits as long.
        let slowest = Duration::from_millis(300);
        pool.costs.observe("$2b$15$a-slow-legacy-kind", slowest);
        assert_eq!(pool.costs.floor(), slowest);
        let too_long = "x".repeat(100);
        let cases = [
            ("unknown e-mail", None, "a-wrong-password"),
            (
                "wrong password, argon2id",
                Some(current.as_str()),
                "a-wrong-password",
            ),
            (
                "wrong password, bcrypt",
                Some(legacy.as_str()),
                "a-wrong-password",
            ),
            (
                "over 72 bytes, bcrypt",
                Some(legacy.as_str()),
                too_long.as_str(),
            ),
        ];
        for (what, stored, password) in cases {
            let jobs = pool.jobs_started();
            let began = Instant::now();
            assert!(!pool.verify(password, stored).await.unwrap(), "{what}");
            let took = began.elapsed();
            assert_eq!(pool.jobs_started() - jobs, 1, "{what}: hashing jobs");
            assert!(
                took >= slowest,
                "{what} answered in {took:?}, before {slowest:?}"
            );
        }
        // A right password is one job too.
        let jobs = pool.jobs_started();
        assert!(
            pool.verify("the-right-password", Some(&legacy))
                .await
                .unwrap()
        );
        assert_eq!(pool.jobs_started() - jobs, 1);
    }
}
