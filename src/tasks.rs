//! Every piece of background work Portcullis starts goes through one
//! [`Tasks`] tracker: the mail worker, the hourly purge, session touches and
//! the work done after a response (reset and verification requests). At
//! shutdown the tracker tells the long-running tasks to stop, refuses new
//! work, and waits for what is running, so that nothing touches the store
//! after it is closed.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The tracker of background work; cheap to clone (clones share it).
#[derive(Clone, Debug, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    stop: CancellationToken,
    /// `true` once shutdown began. Spawning holds the read side while it
    /// checks and spawns, so no task slips in after [`Tasks::shutdown`]
    /// stopped admitting work.
    closed: Arc<RwLock<bool>>,
}

impl Tasks {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `job` in the background; a failure is logged as "`what` failed".
    /// Returns `false`, and drops the job, once shutdown has begun.
    pub fn spawn<F>(&self, what: &'static str, job: F) -> bool
    where
        F: Future<Output = crate::error::Result<()>> + Send + 'static,
    {
        self.admit(async move {
            if let Err(e) = job.await {
                tracing::warn!(error = %e, "{what} failed");
            }
        })
    }

    /// Runs a long-lived service, such as a worker loop, which must return
    /// soon after the token it is given is cancelled (at shutdown).
    pub fn spawn_service<F, Fut>(&self, service: F) -> bool
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.clone();
        self.admit(service(stop))
    }

    fn admit<Fut>(&self, task: Fut) -> bool
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let closed = self.closed.read().unwrap_or_else(|p| p.into_inner());
        if *closed {
            tracing::debug!("shutting down: background work refused");
            return false;
        }
        self.tracker.spawn(task);
        true
    }

    /// How many tasks are running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Whether shutdown has begun.
    pub fn is_closed(&self) -> bool {
        *self.closed.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops admitting work, tells the services to stop, and waits at most
    /// `patience` for every task to finish. `false` if some were still
    /// running then (they are left to the runtime).
    pub async fn shutdown(&self, patience: Duration) -> bool {
        *self.closed.write().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.cancel();
        self.tracker.close();
        tokio::time::timeout(patience, self.tracker.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn shutdown_waits_for_running_work_and_refuses_new_work() {
        let tasks = Tasks::new();
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        assert!(tasks.spawn("slow job", async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            flag.store(true, Ordering::SeqCst);
            Ok(())
        }));
        let stopped = Arc::new(AtomicBool::new(false));
        let seen = stopped.clone();
        assert!(tasks.spawn_service(|stop| async move {
            stop.cancelled().await;
            seen.store(true, Ordering::SeqCst);
        }));
        assert_eq!(tasks.running(), 2);
        assert!(tasks.shutdown(Duration::from_secs(5)).await);
        assert!(
            done.load(Ordering::SeqCst),
            "shutdown returned before the job ended"
        );
        assert!(
            stopped.load(Ordering::SeqCst),
            "the service was not told to stop"
        );
        assert!(!tasks.spawn("late job", async { Ok(()) }));
        assert_eq!(tasks.running(), 0);
    }

    #[tokio::test]
    async fn shutdown_gives_up_after_its_patience() {
        let tasks = Tasks::new();
        tasks.spawn("stuck job", async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        });
        assert!(!tasks.shutdown(Duration::from_millis(50)).await);
    }
}
