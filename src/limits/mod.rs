//! Rate limits (SPEC §7), decided before any hashing work.
//!
//! Each [`Rule`] counts requests by a key (a client IP, an e-mail address, or
//! both) with the generic cell rate algorithm (GCRA): a limit of `N` per
//! period `P` lets `N` requests through at once and then one more every
//! `P / N`, like a bucket of `N` tokens refilled one at a time. A refused
//! request consumes nothing, and the answer says how long until the next one
//! would pass (`Retry-After`).
//!
//! The counters live in this process's memory ([`memory`], the `governor`
//! crate) or, with `REDIS_URL`, in Redis shared by every instance
//! ([`redis`]: one Lua script per decision, keys that expire by themselves).
//! When Redis does not answer within a short timeout, the decision is made
//! from memory instead, and a background task reconnects with back-off; the
//! `portcullis_rate_limit_backend{backend}` gauge says which is in use.
//!
//! Keys are SHA-256 digests of the rule and what it counts by, so neither
//! memory nor Redis holds an address, and a long e-mail costs no more room
//! than a short one. IPv6 clients are counted per /64 (one subscriber's
//! network), IPv4 clients per address.

mod budget;
mod device;
mod memory;
mod redis;

pub use budget::Spent;
pub use device::{DEVICE_TOKEN_TTL_SECS, DeviceTokens};

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ipnet::Ipv6Net;
use sha2::{Digest, Sha256};

use crate::config::{Rate, RateLimitConfig};
use crate::domain::ClientInfo;
use crate::error::{Error, Result};
use crate::tasks::Tasks;

use self::memory::MemoryCounters;
use self::redis::RedisCounters;

/// One limit of SPEC §7. Its [`name`](Rule::name) is the `rule` label of
/// `portcullis_rate_limited_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Login attempts (`/login`, `/login/json`, `/token`) from one client IP.
    LoginPerIp,
    /// Login attempts for one e-mail address from one client IP: a stranger
    /// hammering an account from elsewhere does not lock its owner out.
    LoginPerEmail,
    /// Registrations from one client IP.
    RegisterPerIp,
    /// Forgot-password and resend-verification requests from one client IP.
    MailRequestPerIp,
    /// Reset and verification mails to one address; past it no mail is sent
    /// but the request is answered as usual.
    MailPerEmail,
    /// Second steps of logins (`/mfa/verify`, the MFA grant of `/token`)
    /// from one client IP (SPEC §10).
    MfaPerIp,
    /// Checks of a current password behind a token (`/change-password`,
    /// `/mfa/totp/setup`) for one user: a stolen token is no
    /// password-guessing oracle.
    PasswordCheckPerUser,
    /// The same checks from one client IP, whatever the user.
    PasswordCheckPerIp,
    /// Failed logins for one account (its normalised e-mail, registered or
    /// not) from anywhere: a budget ([`Limits::budget_left`],
    /// [`Limits::spend`]); past it logins for the account are refused,
    /// except from a device that signed in to it before ([`DeviceTokens`]).
    LoginPerAccount,
    /// Mails telling an owner that their account's budget of failed logins
    /// is used up: one a day.
    AccountNotice,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 10] = [
        Rule::LoginPerIp,
        Rule::LoginPerEmail,
        Rule::RegisterPerIp,
        Rule::MailRequestPerIp,
        Rule::MailPerEmail,
        Rule::MfaPerIp,
        Rule::PasswordCheckPerUser,
        Rule::PasswordCheckPerIp,
        Rule::LoginPerAccount,
        Rule::AccountNotice,
    ];

    /// The rule's name in metrics and Redis keys.
    pub fn name(self) -> &'static str {
        match self {
            Rule::LoginPerIp => "login_per_ip",
            Rule::LoginPerEmail => "login_per_email",
            Rule::RegisterPerIp => "register_per_ip",
            Rule::MailRequestPerIp => "mail_request_per_ip",
            Rule::MailPerEmail => "mail_per_email",
            Rule::MfaPerIp => "mfa_per_ip",
            Rule::PasswordCheckPerUser => "password_check_per_user",
            Rule::PasswordCheckPerIp => "password_check_per_ip",
            Rule::LoginPerAccount => "login_per_account",
            Rule::AccountNotice => "account_notice",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn rate(self, config: &RateLimitConfig) -> Rate {
        match self {
            Rule::LoginPerIp => config.login_per_ip,
            Rule::LoginPerEmail => config.login_per_email,
            Rule::RegisterPerIp => config.register_per_ip,
            Rule::MailRequestPerIp => config.mail_request_per_ip,
            Rule::MailPerEmail => config.mail_per_email,
            Rule::MfaPerIp => config.mfa_per_ip,
            Rule::PasswordCheckPerUser => config.password_check_per_user,
            Rule::PasswordCheckPerIp => config.password_check_per_ip,
            Rule::LoginPerAccount => config.login_per_account,
            Rule::AccountNotice => Rate {
                count: 1,
                per: Duration::from_secs(86_400),
            },
        }
    }
}

/// Where the counters are kept at the moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// This process's memory: no `REDIS_URL`, or Redis is unreachable.
    Memory,
    /// Redis, shared by every instance.
    Redis,
}

impl Backend {
    /// The `backend` label of `portcullis_rate_limit_backend`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Redis => "redis",
        }
    }

    /// Sets the gauge: 1 for `self`, 0 for the other.
    fn report(self) {
        for backend in [Backend::Memory, Backend::Redis] {
            let value = if backend == self { 1.0 } else { 0.0 };
            metrics::gauge!("portcullis_rate_limit_backend", "backend" => backend.name())
                .set(value);
        }
    }
}

/// The outcome of one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// The request conforms (and was counted).
    Allowed,
    /// Over the limit: the next request may pass after this long.
    Limited(Duration),
}

/// What stands for the client IP in the keys of per-(e-mail, IP) rules when
/// the IP is unknown: all such requests share one count per address.
pub const NO_CLIENT_IP: &str = "no client IP";

/// A rule's counter key: a digest of the rule and what it counts by.
type Key = [u8; 16];

fn key(rule: Rule, parts: &[&str]) -> Key {
    let mut digest = Sha256::new();
    digest.update(rule.name().as_bytes());
    for part in parts {
        digest.update([0]);
        digest.update(part.as_bytes());
    }
    let full = digest.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&full[..16]);
    key
}

/// The rate limiter of a running Portcullis, held by
/// [`Flows`](crate::flows::Flows).
pub struct Limits {
    enabled: bool,
    rates: [Rate; Rule::ALL.len()],
    memory: Arc<MemoryCounters>,
    /// The per-account budget of failed logins, in memory.
    account_budget: Arc<budget::MemoryBudget>,
    redis: Option<Arc<RedisCounters>>,
    /// Whether a request without a client IP was already logged.
    warned_unknown_ip: AtomicBool,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("enabled", &self.enabled)
            .field("rates", &self.rates)
            .field("backend", &self.backend())
            .finish()
    }
}

impl Limits {
    /// The limits of `config`. With a Redis URL it connects (waiting at most
    /// a connect timeout); if Redis does not answer, the counters start in
    /// memory and [`Limits::start`]'s task keeps trying.
    pub async fn new(config: &RateLimitConfig) -> Self {
        let rates = Rule::ALL.map(|rule| rule.rate(config));
        let memory = Arc::new(MemoryCounters::new(&rates));
        let redis = match (&config.redis_url, config.enabled) {
            (Some(url), true) => {
                let redis = RedisCounters::new(url, &config.redis_key_prefix);
                match redis {
                    Ok(redis) => {
                        redis.connect_at_start().await;
                        Some(Arc::new(redis))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "REDIS_URL cannot be used; rate limits count in memory");
                        None
                    }
                }
            }
            _ => None,
        };
        let limits = Self {
            enabled: config.enabled,
            rates,
            memory,
            account_budget: Arc::new(budget::MemoryBudget::new(config.login_per_account)),
            redis,
            warned_unknown_ip: AtomicBool::new(false),
        };
        if limits.enabled {
            limits.backend().report();
        }
        limits
    }

    /// Starts the background work: forgetting idle memory counters every
    /// minute, and reconnecting to Redis after it was lost.
    pub fn start(&self, tasks: &Tasks) {
        if !self.enabled {
            return;
        }
        let memory = Arc::clone(&self.memory);
        let budget = Arc::clone(&self.account_budget);
        tasks.spawn_service(move |stop| memory.housekeeping(stop, budget));
        if let Some(redis) = &self.redis {
            let redis = Arc::clone(redis);
            tasks.spawn_service(move |stop| redis.supervise(stop));
        }
    }

    /// Whether limits apply at all (`RATE_LIMIT_ENABLED`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Where the counters are kept now.
    pub fn backend(&self) -> Backend {
        match &self.redis {
            Some(redis) if redis.is_connected() => Backend::Redis,
            _ => Backend::Memory,
        }
    }

    /// What the per-IP rules count `client` by: its IPv4 address, or the /64
    /// network of its IPv6 address. `None` when the transport gave no IP
    /// (then the per-IP rules cannot tell clients apart and do not apply).
    pub fn client_key(client: &ClientInfo) -> Option<String> {
        let ip: IpAddr = client.ip.as_deref()?.parse().ok()?;
        Some(match ip.to_canonical() {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => Ipv6Net::new(v6, 64)
                .map(|net| net.trunc().to_string())
                .unwrap_or_else(|_| v6.to_string()),
        })
    }

    /// Logs, once per process, that a limited request came without a client
    /// IP (the router served without connection info, or a flow called
    /// without one): the per-IP rules cannot apply to it, only those keyed
    /// without the IP.
    pub fn warn_unknown_client_ip(&self) {
        if self.enabled && !self.warned_unknown_ip.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "rate limits: a request came without a client IP (serve the router with \
                 connection info, e.g. into_make_service_with_connect_info::<SocketAddr>()); \
                 the per-IP limits cannot apply to such requests, the per-e-mail and \
                 per-account ones still do"
            );
        }
    }

    /// Counts a request under `rule` for the key made of `parts`; over the
    /// limit, [`Error::RateLimited`] (429 with `Retry-After`), counted in
    /// `portcullis_rate_limited_total{rule}`.
    pub async fn check(&self, rule: Rule, parts: &[&str]) -> Result<()> {
        match self.decide(rule, parts).await {
            Decision::Allowed => Ok(()),
            Decision::Limited(wait) => Err(Error::RateLimited {
                retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            }),
        }
    }

    /// The per-IP `rule` for `client`; when its IP is unknown, nothing (and
    /// the warning of [`Limits::warn_unknown_client_ip`]).
    pub async fn check_client(&self, rule: Rule, client: &ClientInfo) -> Result<()> {
        match Self::client_key(client) {
            Some(ip) => self.check(rule, &[&ip]).await,
            None => {
                self.warn_unknown_client_ip();
                Ok(())
            }
        }
    }

    /// Like [`Limits::check`], for work that is skipped rather than refused
    /// (a mail not sent): whether it may go ahead.
    pub async fn allows(&self, rule: Rule, parts: &[&str]) -> bool {
        self.decide(rule, parts).await == Decision::Allowed
    }

    fn rate(&self, rule: Rule) -> Rate {
        self.rates[rule.index()]
    }

    async fn decide(&self, rule: Rule, parts: &[&str]) -> Decision {
        if !self.enabled {
            return Decision::Allowed;
        }
        let key = key(rule, parts);
        let rate = self.rates[rule.index()];
        let redis_decision = match &self.redis {
            Some(redis) => redis.decide(rule, &key, rate).await,
            None => None,
        };
        let decision = redis_decision.unwrap_or_else(|| self.memory.decide(rule, &key));
        if decision != Decision::Allowed {
            metrics::counter!("portcullis_rate_limited_total", "rule" => rule.name()).increment(1);
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn client(ip: &str) -> ClientInfo {
        ClientInfo {
            ip: Some(ip.into()),
            user_agent: None,
        }
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let key = |ip| Limits::client_key(&client(ip)).unwrap();
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2::99"), key("2001:db8:1:2:ffff::1"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("198.51.100.7"), "198.51.100.7");
        assert_eq!(key("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(Limits::client_key(&ClientInfo::default()), None);
    }

    #[test]
    fn keys_depend_on_rule_and_every_part() {
        let a = key(Rule::LoginPerEmail, &["a@example.com", "192.0.2.1"]);
        assert_ne!(a, key(Rule::LoginPerEmail, &["a@example.com", "192.0.2.2"]));
        assert_ne!(a, key(Rule::LoginPerIp, &["a@example.com", "192.0.2.1"]));
        // Parts are separated, so moving a boundary changes the key.
        assert_ne!(
            key(Rule::LoginPerEmail, &["ab", "c"]),
            key(Rule::LoginPerEmail, &["a", "bc"])
        );
    }

    #[tokio::test]
    async fn memory_limits_refuse_past_the_rate_and_say_when_to_retry() {
        let config = Config::from_vars([("RATE_LIMIT_LOGIN_PER_IP", "3/minute")]).unwrap();
        let limits = Limits::new(&config.rate_limits).await;
        assert_eq!(limits.backend(), Backend::Memory);
        for _ in 0..3 {
            limits
                .check(Rule::LoginPerIp, &["192.0.2.1"])
                .await
                .unwrap();
        }
        match limits.check(Rule::LoginPerIp, &["192.0.2.1"]).await {
            // One more every 20 s.
            Err(Error::RateLimited { retry_after }) => assert!((19..=20).contains(&retry_after)),
            other => panic!("expected 429, got {other:?}"),
        }
        // Another key, another rule: their own counters.
        limits
            .check(Rule::LoginPerIp, &["192.0.2.2"])
            .await
            .unwrap();
        limits
            .check(Rule::RegisterPerIp, &["192.0.2.1"])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn disabled_limits_allow_everything() {
        let config = Config::from_vars([
            ("RATE_LIMIT_ENABLED", "false"),
            ("RATE_LIMIT_LOGIN_PER_IP", "1/hour"),
        ])
        .unwrap();
        let limits = Limits::new(&config.rate_limits).await;
        for _ in 0..5 {
            limits
                .check(Rule::LoginPerIp, &["192.0.2.1"])
                .await
                .unwrap();
        }
    }
}
