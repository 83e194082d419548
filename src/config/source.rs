//! Where configuration values come from: the process environment and `.env`,
//! or an explicit map; each name also under its `AUTH_` prefix; and the typed
//! getters the settings are read with.

use std::collections::HashMap;

use super::ConfigError;

/// A lookup of one variable by its exact name.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Where configuration values come from: layers asked in order, the first
/// that has the variable (under its own name or its `AUTH_` prefix) wins.
pub(super) struct Source<'a> {
    layers: Vec<Lookup<'a>>,
}

impl Source<'static> {
    /// The process environment, then `./.env` (a missing or unreadable file
    /// counts as empty; lines it cannot parse are skipped). The environment
    /// wins whichever spelling each uses: `AUTH_PORT` in the environment
    /// beats `PORT` in `.env`.
    pub(super) fn environment() -> Self {
        let dotenv: HashMap<String, String> = match dotenvy::from_path_iter(".env") {
            Ok(iter) => iter.filter_map(Result::ok).collect(),
            Err(_) => HashMap::new(),
        };
        Source {
            layers: vec![
                Box::new(|name| std::env::var(name).ok()),
                Box::new(move |name| dotenv.get(name).cloned()),
            ],
        }
    }

    /// Exactly these variables, nothing else.
    pub(super) fn vars(map: HashMap<String, String>) -> Self {
        Source {
            layers: vec![Box::new(move |name| map.get(name).cloned())],
        }
    }
}

impl Source<'_> {
    /// The value of `name` (or `AUTH_name`), empty values counting as unset.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        let prefixed = format!("AUTH_{name}");
        self.layers.iter().find_map(|layer| {
            [name, prefixed.as_str()]
                .into_iter()
                .filter_map(layer)
                .map(|v| v.trim().to_string())
                .find(|v| !v.is_empty())
        })
    }

    /// The value of `name` parsed as a `T`, or `default` when unset; `what`
    /// names the expected kind of value in the error.
    pub(super) fn parse<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| ConfigError::new(name, format!("expected {what}, got {raw:?}"))),
        }
    }

    /// A whole number greater than 0, or `default` when unset.
    pub(super) fn positive(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        let value = self.parse(name, default, "a positive whole number")?;
        if value == 0 {
            return Err(ConfigError::new(name, "must be greater than 0"));
        }
        Ok(value)
    }

    /// A positive number of `unit`s (`default` when unset), as a duration;
    /// a value too large to represent is refused rather than wrapped.
    pub(super) fn duration(
        &self,
        name: &'static str,
        default: u64,
        unit: std::time::Duration,
    ) -> Result<std::time::Duration, ConfigError> {
        let count = self.positive(name, default)?;
        u32::try_from(count)
            .ok()
            .and_then(|n| unit.checked_mul(n))
            .filter(|d| d.as_secs() <= i64::MAX as u64 / 4)
            .ok_or_else(|| ConfigError::new(name, "is too large"))
    }

    /// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off` (any case), or
    /// `default` when unset.
    pub(super) fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(ConfigError::new(
                name,
                format!("expected true or false, got {v:?}"),
            )),
        }
    }

    /// A comma-separated list, entries trimmed and empty ones dropped.
    pub(super) fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    #[test]
    fn defaults_apply_and_prefixed_names_work() {
        let cfg = Config::from_vars([("AUTH_ACCESS_TOKEN_EXPIRE_MINUTES", "15")]).unwrap();
        assert_eq!(cfg.access_token_ttl, Duration::from_secs(900));
        assert_eq!(cfg.port, 8000);
        assert_eq!(cfg.route_prefix, "/api/auth");
        assert!(cfg.secret_generated);
    }

    #[test]
    fn unprefixed_name_wins() {
        let cfg = Config::from_vars([("PORT", "9000"), ("AUTH_PORT", "9001")]).unwrap();
        assert_eq!(cfg.port, 9000);
    }
}
