//! Passkey settings (SPEC §11): the relying party (`WEBAUTHN_RP_ID`), the
//! origins whose pages may use it (`WEBAUTHN_ORIGINS`), the name shown
//! (`WEBAUTHN_RP_NAME`) and the number of passkeys a user may have
//! (`PASSKEYS_PER_USER`).
//!
//! Browsers refuse an IP address as a relying party: when `APP_URL`'s host
//! is one and `WEBAUTHN_RP_ID` is unset, the server still starts, logs why,
//! and the passkey endpoints answer 503 `PASSKEYS_UNAVAILABLE`.

use webauthn_rs::prelude::Url;

use super::source::Source;
use super::{ConfigError, PasskeyConfig, RelyingParty};

/// Passkeys per user when `PASSKEYS_PER_USER` is unset.
const DEFAULT_PER_USER: u64 = 10;

/// Reads and checks the passkey settings; `app_url` is the checked
/// `APP_URL` and `issuer` the resolved `MFA_ISSUER` (the default name).
pub(super) fn read(
    src: &Source<'_>,
    app_url: &str,
    issuer: &str,
) -> Result<PasskeyConfig, ConfigError> {
    let per_user = src.positive("PASSKEYS_PER_USER", DEFAULT_PER_USER)?;
    let per_user = u32::try_from(per_user)
        .ok()
        .filter(|n| *n <= 1000)
        .ok_or_else(|| ConfigError::new("PASSKEYS_PER_USER", "must be at most 1000"))?;
    let app = Url::parse(app_url).map_err(|e| ConfigError::new("APP_URL", e.to_string()))?;
    let explicit_id = src
        .get("WEBAUTHN_RP_ID")
        .map(|id| id.trim().to_ascii_lowercase())
        .filter(|id| !id.is_empty());
    let id = match explicit_id {
        Some(id) => {
            if Url::parse(&format!("https://{id}/"))
                .ok()
                .and_then(|u| u.domain().map(str::to_owned))
                .as_deref()
                != Some(id.as_str())
            {
                return Err(ConfigError::new(
                    "WEBAUTHN_RP_ID",
                    "must be a domain name such as example.com (not a URL, not an IP address)",
                ));
            }
            id
        }
        None => match app.domain() {
            Some(domain) => domain.to_ascii_lowercase(),
            None => {
                return Ok(PasskeyConfig {
                    relying_party: None,
                    unavailable_reason: Some(format!(
                        "APP_URL's host ({}) is an IP address, which browsers refuse as a \
                         WebAuthn relying party: set WEBAUTHN_RP_ID (and WEBAUTHN_ORIGINS) \
                         to turn passkeys on",
                        app.host_str().unwrap_or_default()
                    )),
                    per_user,
                });
            }
        },
    };
    let origins = match src.get("WEBAUTHN_ORIGINS") {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| parse_origin(s, &id))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![parse_origin(&app.origin().ascii_serialization(), &id)?],
    };
    if origins.is_empty() {
        return Err(ConfigError::new(
            "WEBAUTHN_ORIGINS",
            "must list at least one origin",
        ));
    }
    let name = src
        .get("WEBAUTHN_RP_NAME")
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| issuer.to_string());
    Ok(PasskeyConfig {
        relying_party: Some(RelyingParty { id, origins, name }),
        unavailable_reason: None,
        per_user,
    })
}

/// One origin (`https://app.example.com`, with a port if any) whose host
/// is the relying party's id or a name under it.
fn parse_origin(text: &str, rp_id: &str) -> Result<Url, ConfigError> {
    let bad = |why: &str| ConfigError::new("WEBAUTHN_ORIGINS", format!("{text:?}: {why}"));
    let url = Url::parse(text).map_err(|_| bad("not a URL such as https://app.example.com"))?;
    if !matches!(url.scheme(), "http" | "https") || url.path() != "/" || url.query().is_some() {
        return Err(bad("must be an origin: http(s)://host[:port], no path"));
    }
    let Some(host) = url.domain() else {
        return Err(bad(
            "its host must be a domain name (browsers refuse IP addresses)",
        ));
    };
    if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
        return Err(bad(&format!(
            "its host must be {rp_id} or a name under it (WEBAUTHN_RP_ID)"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn defaults_come_from_app_url_and_the_issuer() {
        let cfg = Config::from_vars([("APP_URL", "https://auth.example.com:8443/base")]).unwrap();
        let rp = cfg.passkeys.relying_party.unwrap();
        assert_eq!(rp.id, "auth.example.com");
        assert_eq!(rp.name, "auth.example.com");
        assert_eq!(
            rp.origins
                .iter()
                .map(|o| o.origin().ascii_serialization())
                .collect::<Vec<_>>(),
            ["https://auth.example.com:8443"]
        );
        assert_eq!(cfg.passkeys.per_user, 10);
        let cfg = Config::from_vars([
            ("APP_URL", "https://auth.example.com"),
            ("WEBAUTHN_RP_ID", "example.com"),
            (
                "WEBAUTHN_ORIGINS",
                "https://auth.example.com, https://app.example.com",
            ),
            ("MFA_ISSUER", "Example"),
            ("PASSKEYS_PER_USER", "3"),
        ])
        .unwrap();
        let rp = cfg.passkeys.relying_party.unwrap();
        assert_eq!(
            (rp.id.as_str(), rp.name.as_str()),
            ("example.com", "Example")
        );
        assert_eq!(rp.origins.len(), 2);
        assert_eq!(cfg.passkeys.per_user, 3);
    }

    #[test]
    fn an_ip_host_turns_passkeys_off_unless_an_id_is_set() {
        let cfg = Config::from_vars([("APP_URL", "http://127.0.0.1:8000")]).unwrap();
        assert!(cfg.passkeys.relying_party.is_none());
        assert!(
            cfg.passkeys
                .unavailable_reason
                .unwrap()
                .contains("WEBAUTHN_RP_ID")
        );
        let cfg = Config::from_vars([
            ("APP_URL", "http://127.0.0.1:8000"),
            ("WEBAUTHN_RP_ID", "localhost"),
            ("WEBAUTHN_ORIGINS", "http://localhost:8000"),
        ])
        .unwrap();
        assert_eq!(cfg.passkeys.relying_party.unwrap().id, "localhost");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (vars, variable) in [
            (
                vec![("WEBAUTHN_RP_ID", "https://example.com")],
                "WEBAUTHN_RP_ID",
            ),
            (vec![("WEBAUTHN_RP_ID", "10.0.0.1")], "WEBAUTHN_RP_ID"),
            (
                vec![("WEBAUTHN_ORIGINS", "https://other.com")],
                "WEBAUTHN_ORIGINS",
            ),
            (
                vec![("WEBAUTHN_ORIGINS", "http://localhost/x")],
                "WEBAUTHN_ORIGINS",
            ),
            (vec![("WEBAUTHN_ORIGINS", " , ")], "WEBAUTHN_ORIGINS"),
            (vec![("PASSKEYS_PER_USER", "0")], "PASSKEYS_PER_USER"),
            (
                vec![
                    ("APP_URL", "http://127.0.0.1"),
                    ("WEBAUTHN_RP_ID", "example.com"),
                ],
                "WEBAUTHN_ORIGINS",
            ),
        ] {
            let err = Config::from_vars(vars.clone()).unwrap_err();
            assert_eq!(err.variable, variable, "{vars:?}");
        }
    }
}
