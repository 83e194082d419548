//! Counters in Redis, shared by every instance: one Lua script per decision
//! (GCRA, like the memory counters), run atomically by Redis on its own
//! clock, on keys that expire by themselves once they are back to their
//! initial state.
//!
//! Every call has a short timeout. When one fails, the connection is
//! dropped, the caller decides from memory, and [`RedisCounters::supervise`]
//! reconnects in the background with back-off, so no request waits for a
//! connection attempt while Redis is down.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Backend, Decision, Key, Rule};
use crate::config::Rate;

/// The longest a decision waits for Redis before memory decides.
const CALL_TIMEOUT: Duration = Duration::from_millis(200);
/// The longest a connection attempt (in the background) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// First and longest pause between reconnection attempts.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// GCRA on one key. `KEYS[1]`: the counter, holding the theoretical arrival
/// time (TAT) in milliseconds of Redis's clock. `ARGV[1]`: the emission
/// interval `T` (period / count) in ms; `ARGV[2]`: the burst (count);
/// `ARGV[3]`: `peek` to only look (budgets, see [`super::budget`]).
/// A request at `now` conforms if `now >= TAT - T * (burst - 1)`; then the
/// TAT becomes `max(TAT, now) + T` and the key expires when the TAT is
/// reached (its state is then the initial one). Returns 0 when allowed
/// (-1 when allowed and the next request would not be), else the
/// milliseconds until a request would conform. Milliseconds keep every
/// number within the 14 significant digits Lua writes out exactly.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local allowed_at = tat - interval * (burst - 1)
if now < allowed_at then
  return allowed_at - now
end
if ARGV[3] == 'peek' then
  return 0
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now)
if now < next_tat - interval * (burst - 1) then
  return -1
end
return 0
";

/// What the script is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Count the request if it conforms.
    Count,
    /// Only say whether a request would conform.
    Peek,
}

/// The connection in use, numbered so that a failure seen on an old
/// connection does not drop a newer one.
struct Slot {
    generation: u64,
    connection: Option<MultiplexedConnection>,
}

pub(super) struct RedisCounters {
    client: Client,
    prefix: String,
    script: Script,
    slot: Mutex<Slot>,
    /// Woken when the connection is dropped.
    lost: Notify,
    /// Whether the last attempt or call succeeded (for logging the
    /// transitions once).
    up: AtomicBool,
}

impl RedisCounters {
    /// Counters at `url` (not connected yet), under `prefix`.
    pub(super) fn new(url: &str, prefix: &str) -> redis::RedisResult<Self> {
        Ok(Self {
            client: Client::open(url)?,
            prefix: prefix.to_string(),
            script: Script::new(GCRA),
            slot: Mutex::new(Slot {
                generation: 0,
                connection: None,
            }),
            lost: Notify::new(),
            up: AtomicBool::new(false),
        })
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a connection is in use.
    pub(super) fn is_connected(&self) -> bool {
        self.slot().connection.is_some()
    }

    /// The first connection, at start-up; on failure the instance starts
    /// with its own counters (logged) and the supervisor keeps trying.
    pub(super) async fn connect_at_start(&self) {
        match self.connect().await {
            Ok(()) => tracing::info!("rate limits: counters shared through Redis"),
            Err(e) => {
                tracing::warn!(error = %e, "rate limits: Redis is unreachable; counting in this instance's memory until it answers");
                metrics::counter!("portcullis_rate_limit_fallbacks_total").increment(1);
            }
        }
    }

    /// Opens a connection and loads the script; on success it is the one in use.
    async fn connect(&self) -> redis::RedisResult<()> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT));
        let attempt = async {
            let mut connection = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            self.script
                .prepare_invoke()
                .load_async(&mut connection)
                .await?;
            Ok::<_, redis::RedisError>(connection)
        };
        let connection = tokio::time::timeout(CONNECT_TIMEOUT + CALL_TIMEOUT, attempt)
            .await
            .map_err(|_| {
                redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting to Redis timed out",
                ))
            })??;
        let mut slot = self.slot();
        slot.generation += 1;
        slot.connection = Some(connection);
        self.up.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Drops connection `generation` after a failed call, and wakes the supervisor.
    fn lose(&self, generation: u64) {
        let mut slot = self.slot();
        if slot.generation == generation && slot.connection.take().is_some() {
            drop(slot);
            Backend::Memory.report();
            self.lost.notify_one();
        }
    }

    /// The decision for `key` under `rule`, or `None` when Redis cannot give
    /// one in time (then memory decides).
    pub(super) async fn decide(&self, rule: Rule, key: &Key, rate: Rate) -> Option<Decision> {
        self.run(rule, key, rate, Mode::Count)
            .await
            .map(|wait_ms| match wait_ms {
                ..=0 => Decision::Allowed,
                wait => Decision::Limited(Duration::from_millis(wait as u64)),
            })
    }

    /// The script's answer for `key` under `rule` in `mode` (see [`GCRA`]),
    /// or `None` when Redis cannot give one in time.
    pub(super) async fn run(&self, rule: Rule, key: &Key, rate: Rate, mode: Mode) -> Option<i64> {
        let (generation, mut connection) = {
            let slot = self.slot();
            (slot.generation, slot.connection.clone()?)
        };
        let interval_ms = (rate.per.as_millis() / u128::from(rate.count.max(1))).max(1) as u64;
        let redis_key = format!("{}rl:{}:{}", self.prefix, rule.name(), hex(key));
        let mut invocation = self.script.key(redis_key);
        let mode = match mode {
            Mode::Count => "count",
            Mode::Peek => "peek",
        };
        invocation.arg(interval_ms).arg(rate.count).arg(mode);
        let call = invocation.invoke_async::<i64>(&mut connection);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "rate limits: Redis call failed");
                self.lose(generation);
                None
            }
            Err(_) => {
                tracing::debug!("rate limits: Redis call timed out");
                self.lose(generation);
                None
            }
        }
    }

    /// Runs until `stop`: whenever the connection is lost, logs the outage
    /// once, then reconnects with back-off (100 ms, doubling, at most 2 s
    /// apart) and logs the return.
    pub(super) async fn supervise(self: std::sync::Arc<Self>, stop: CancellationToken) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            if self.is_connected() {
                tokio::select! {
                    () = self.lost.notified() => {}
                    () = stop.cancelled() => return,
                }
                continue;
            }
            if self.up.swap(false, Ordering::SeqCst) {
                tracing::warn!(
                    "rate limits: Redis is unreachable; counting in this instance's memory until it answers"
                );
                metrics::counter!("portcullis_rate_limit_fallbacks_total").increment(1);
                Backend::Memory.report();
            }
            match self.connect().await {
                Ok(()) => {
                    tracing::info!("rate limits: Redis answers again; counters shared again");
                    Backend::Redis.report();
                    backoff = FIRST_BACKOFF;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "rate limits: reconnecting to Redis failed");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(32), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
