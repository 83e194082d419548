//! Rate-limit settings (SPEC §7): whether the limits apply, how many
//! requests each one allows per period, and where the counters live.

use std::time::Duration;

use super::source::Source;
use super::{ConfigError, Rate, RateLimitConfig};

/// Namespace of the counters in Redis when `REDIS_KEY_PREFIX` is not set.
const DEFAULT_REDIS_KEY_PREFIX: &str = "portcullis:";

/// The rate-limit settings; each limit is `COUNT/PERIOD` (see [`Rate`]).
pub(super) fn read(src: &Source<'_>) -> Result<RateLimitConfig, ConfigError> {
    const RATE: &str = "a rate such as 60/minute (a count, /, and second, minute, hour or day)";
    Ok(RateLimitConfig {
        enabled: src.flag("RATE_LIMIT_ENABLED", true)?,
        login_per_ip: src.parse("RATE_LIMIT_LOGIN_PER_IP", Rate::per_minute(60), RATE)?,
        login_per_email: src.parse("RATE_LIMIT_LOGIN_PER_EMAIL", Rate::per_minute(10), RATE)?,
        register_per_ip: src.parse("RATE_LIMIT_REGISTER_PER_IP", Rate::per_hour(20), RATE)?,
        mail_request_per_ip: src.parse(
            "RATE_LIMIT_MAIL_REQUEST_PER_IP",
            Rate::per_hour(20),
            RATE,
        )?,
        mail_per_email: src.parse("RATE_LIMIT_MAIL_PER_EMAIL", Rate::per_hour(3), RATE)?,
        mfa_per_ip: src.parse("RATE_LIMIT_MFA_PER_IP", Rate::per_minute(30), RATE)?,
        password_check_per_user: src.parse(
            "RATE_LIMIT_PASSWORD_CHECK",
            Rate::per_minute(5),
            RATE,
        )?,
        password_check_per_ip: src.parse(
            "RATE_LIMIT_PASSWORD_CHECK_PER_IP",
            Rate::per_minute(20),
            RATE,
        )?,
        login_per_account: src.parse("RATE_LIMIT_LOGIN_PER_ACCOUNT", Rate::per_hour(50), RATE)?,
        redis_url: redis_url(src)?,
        redis_key_prefix: src
            .get("REDIS_KEY_PREFIX")
            .unwrap_or_else(|| DEFAULT_REDIS_KEY_PREFIX.into()),
    })
}

/// `REDIS_URL`: `redis://[user:password@]host[:port][/db]` or
/// `redis+unix:///path` / `unix:///path`. TLS (`rediss://`) is not built in.
fn redis_url(src: &Source<'_>) -> Result<Option<String>, ConfigError> {
    let Some(url) = src.get("REDIS_URL") else {
        return Ok(None);
    };
    if url.starts_with("rediss://") {
        return Err(ConfigError::new(
            "REDIS_URL",
            "rediss:// (TLS) is not supported; use redis:// on a private network",
        ));
    }
    let known_scheme = ["redis://", "redis+unix://", "unix://"]
        .iter()
        .any(|scheme| url.starts_with(scheme));
    if !known_scheme || redis::Client::open(url.as_str()).is_err() {
        return Err(ConfigError::new(
            "REDIS_URL",
            "expected a URL such as redis://127.0.0.1:6379/0",
        ));
    }
    Ok(Some(url))
}

impl Rate {
    /// `count` a minute.
    pub const fn per_minute(count: u32) -> Self {
        Rate {
            count,
            per: Duration::from_secs(60),
        }
    }

    /// `count` an hour.
    pub const fn per_hour(count: u32) -> Self {
        Rate {
            count,
            per: Duration::from_secs(3600),
        }
    }
}

impl std::str::FromStr for Rate {
    type Err = ();

    /// `COUNT/PERIOD`, e.g. `60/minute`: a count from 1 to 1,000,000 and
    /// `second`, `minute`, `hour` or `day` (also `s`, `min`, `m`, `h`, `d`).
    fn from_str(s: &str) -> Result<Self, ()> {
        let (count, period) = s.split_once('/').ok_or(())?;
        let count: u32 = count.trim().parse().map_err(|_| ())?;
        if !(1..=1_000_000).contains(&count) {
            return Err(());
        }
        let seconds = match period.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            "d" | "day" => 86_400,
            _ => return Err(()),
        };
        Ok(Rate {
            count,
            per: Duration::from_secs(seconds),
        })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let period = match self.per.as_secs() {
            1 => "second",
            60 => "minute",
            3600 => "hour",
            86_400 => "day",
            other => return write!(f, "{}/{other}s", self.count),
        };
        write!(f, "{}/{period}", self.count)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Config, Rate};

    #[test]
    fn the_defaults_are_those_of_the_spec() {
        let limits = Config::from_vars([("PORT", "8000")]).unwrap().rate_limits;
        assert!(limits.enabled);
        assert_eq!(limits.login_per_ip, Rate::per_minute(60));
        assert_eq!(limits.login_per_email, Rate::per_minute(10));
        assert_eq!(limits.register_per_ip, Rate::per_hour(20));
        assert_eq!(limits.mail_request_per_ip, Rate::per_hour(20));
        assert_eq!(limits.mail_per_email, Rate::per_hour(3));
        assert_eq!(limits.password_check_per_user, Rate::per_minute(5));
        assert_eq!(limits.password_check_per_ip, Rate::per_minute(20));
        assert_eq!(limits.login_per_account, Rate::per_hour(50));
        assert_eq!(limits.redis_url, None);
        assert_eq!(limits.redis_key_prefix, "portcullis:");
    }

    #[test]
    fn rates_read_with_their_unit() {
        let cfg = Config::from_vars([
            ("RATE_LIMIT_LOGIN_PER_IP", "100/second"),
            ("RATE_LIMIT_LOGIN_PER_EMAIL", " 5 / min "),
            ("RATE_LIMIT_REGISTER_PER_IP", "2/day"),
            ("RATE_LIMIT_MAIL_REQUEST_PER_IP", "7/h"),
            ("RATE_LIMIT_MAIL_PER_EMAIL", "1/Hour"),
            ("RATE_LIMIT_ENABLED", "false"),
        ])
        .unwrap();
        let limits = cfg.rate_limits;
        assert!(!limits.enabled);
        assert_eq!(limits.login_per_ip.count, 100);
        assert_eq!(limits.login_per_ip.per, Duration::from_secs(1));
        assert_eq!(limits.login_per_email, Rate::per_minute(5));
        assert_eq!(limits.register_per_ip.per, Duration::from_secs(86_400));
        assert_eq!(limits.mail_request_per_ip, Rate::per_hour(7));
        assert_eq!(limits.mail_per_email, Rate::per_hour(1));
        assert_eq!(Rate::per_minute(60).to_string(), "60/minute");
    }

    #[test]
    fn bad_rates_and_urls_name_the_variable() {
        for (var, bad) in [
            ("RATE_LIMIT_LOGIN_PER_IP", "60"),
            ("RATE_LIMIT_LOGIN_PER_IP", "0/minute"),
            ("RATE_LIMIT_LOGIN_PER_EMAIL", "ten/minute"),
            ("RATE_LIMIT_REGISTER_PER_IP", "20/fortnight"),
            ("RATE_LIMIT_MAIL_REQUEST_PER_IP", "-1/hour"),
            ("RATE_LIMIT_MAIL_PER_EMAIL", "3/"),
            ("RATE_LIMIT_ENABLED", "maybe"),
            ("REDIS_URL", "127.0.0.1:6379"),
            ("REDIS_URL", "http://127.0.0.1:6379"),
            ("REDIS_URL", "rediss://cache.example:6380"),
        ] {
            let err = Config::from_vars([(var, bad)]).unwrap_err();
            assert_eq!(err.variable, var, "{bad}");
        }
        let ok = Config::from_vars([("REDIS_URL", "redis://:pw@127.0.0.1:6379/3")]).unwrap();
        assert_eq!(
            ok.rate_limits.redis_url.as_deref(),
            Some("redis://:pw@127.0.0.1:6379/3")
        );
    }
}
