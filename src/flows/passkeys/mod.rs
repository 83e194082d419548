//! Passkeys (SPEC §11): registering, managing, and signing in with them.
//!
//! Every ceremony is two calls: the options (its challenge state stored in
//! the database under a random `ceremony_id`, 300 s, bound to its purpose
//! and, where known, its user) and the finish, which takes the state out of
//! the database in the statement that reads it, so it is single-use across
//! instances and a finish that fails has spent it. The WebAuthn checks are
//! webauthn-rs's; what is decided here is which credentials, which user,
//! and what the server answers.

pub(super) mod assertion;
mod manage;
mod register;
mod sign_in;

pub use manage::PasskeyInfo;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Value, json};
use webauthn_rs::prelude::{Passkey, Webauthn, WebauthnBuilder};

use super::Flows;
use crate::clock::now_unix;
use crate::config::PasskeyConfig;
use crate::error::{Error, Result};
use crate::random::random_id;
use crate::store::{CeremonyPurpose, PasskeyRecord};

/// How long a ceremony lives between its options and its finish (seconds).
pub const CEREMONY_TTL_SECS: i64 = 300;

/// The answer of every options call: `{"ceremony_id", "options",
/// "expires_in"}`. `options` holds `{"publicKey": {…}}` as WebAuthn Level 3
/// writes it, binary members base64url-encoded, for
/// `PublicKeyCredential.parseCreationOptionsFromJSON` /
/// `parseRequestOptionsFromJSON`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PasskeyOptions {
    /// Names the ceremony at its finish (single-use).
    pub ceremony_id: String,
    /// `{"publicKey": {…}}`: pass `options.publicKey` to the browser's
    /// `parse…OptionsFromJSON`.
    #[schema(value_type = Object)]
    pub options: Value,
    /// Seconds until the ceremony expires (300).
    pub expires_in: i64,
}

/// The relying party of `config`, ready to run ceremonies; `None` when
/// passkeys are unavailable (the reason is logged).
pub fn relying_party(config: &PasskeyConfig) -> Option<Webauthn> {
    let Some(rp) = &config.relying_party else {
        if let Some(reason) = &config.unavailable_reason {
            tracing::warn!("passkeys are unavailable: {reason}");
        }
        return None;
    };
    let first = rp.origins.first()?;
    let built = WebauthnBuilder::new(&rp.id, first).and_then(|builder| {
        rp.origins
            .iter()
            .skip(1)
            .fold(builder, |b, origin| b.append_allowed_origin(origin))
            .rp_name(&rp.name)
            .timeout(std::time::Duration::from_secs(CEREMONY_TTL_SECS as u64))
            .build()
    });
    match built {
        Ok(webauthn) => Some(webauthn),
        Err(e) => {
            tracing::warn!(error = %e, "passkeys are unavailable: the relying party was refused");
            None
        }
    }
}

/// The credential id of `passkey`, base64url: how it is stored and listed.
pub(super) fn credential_id(passkey: &Passkey) -> String {
    URL_SAFE_NO_PAD.encode(passkey.cred_id())
}

/// The stored credential of `record`; a row that does not read is a bug.
pub(super) fn stored_passkey(record: &PasskeyRecord) -> Result<Passkey> {
    serde_json::from_str(&record.passkey).map_err(Error::internal)
}

/// The flags BE and BS of `passkey` (webauthn-rs keeps them private; its
/// serialised form has them).
fn backup_flags(passkey: &Passkey) -> Result<(bool, bool)> {
    let value = serde_json::to_value(passkey).map_err(Error::internal)?;
    let read = |name: &str| value["cred"][name].as_bool().unwrap_or(false);
    Ok((read("backup_eligible"), read("backup_state")))
}

/// Whether `name` is a passkey name: 1–64 characters once trimmed.
fn checked_name(name: &str) -> Result<String> {
    let name = name.trim();
    let length = name.chars().count();
    if length == 0 || length > 64 || name.chars().any(char::is_control) {
        return Err(Error::field(
            "name",
            "must be 1 to 64 characters, without control characters",
        ));
    }
    Ok(name.to_string())
}

impl Flows {
    /// The relying party, or 503 `PASSKEYS_UNAVAILABLE`.
    pub(super) fn webauthn(&self) -> Result<&Webauthn> {
        self.webauthn.as_ref().ok_or(Error::PasskeysUnavailable)
    }

    /// Stores a ceremony's `state` and answers its `options`.
    pub(super) async fn start_ceremony(
        &self,
        purpose: CeremonyPurpose,
        user_id: Option<i64>,
        state: &impl Serialize,
        options: Value,
    ) -> Result<PasskeyOptions> {
        let ceremony_id = random_id();
        let state = serde_json::to_string(state).map_err(Error::internal)?;
        self.store
            .insert_passkey_ceremony(
                &ceremony_id,
                purpose,
                user_id,
                &state,
                now_unix() + CEREMONY_TTL_SECS,
            )
            .await?;
        Ok(PasskeyOptions {
            ceremony_id,
            options,
            expires_in: CEREMONY_TTL_SECS,
        })
    }

    /// Takes the ceremony `ceremony_id` of `purpose` (and `user_id`'s when
    /// given) and reads its state; 400 `PASSKEY_CEREMONY_INVALID` when it is
    /// unknown, expired, spent, or another's.
    pub(super) async fn take_ceremony<T: serde::de::DeserializeOwned>(
        &self,
        ceremony_id: &str,
        purpose: CeremonyPurpose,
        user_id: Option<i64>,
    ) -> Result<(Option<i64>, T)> {
        if ceremony_id.is_empty() || ceremony_id.len() > 64 {
            return Err(Error::PasskeyCeremonyInvalid);
        }
        let ceremony = self
            .store
            .take_passkey_ceremony(ceremony_id, purpose, user_id)
            .await?
            .ok_or(Error::PasskeyCeremonyInvalid)?;
        let state = serde_json::from_str(&ceremony.state).map_err(Error::internal)?;
        Ok((ceremony.user_id, state))
    }

    /// The credential id listed for an address without passkeys: derived
    /// from the normalised address with a key derived from `SECRET_KEY`,
    /// so that every instance lists the same one and it looks like a real
    /// one (32 bytes).
    fn decoy_credential_id(&self, email_key: &str) -> Result<String> {
        use hmac::{Hmac, Mac};
        type HmacSha256 = Hmac<sha2::Sha256>;
        let keyed = |key: &[u8], data: &[u8]| -> Result<Vec<u8>> {
            let mut mac = <HmacSha256 as Mac>::new_from_slice(key).map_err(Error::internal)?;
            mac.update(data);
            Ok(mac.finalize().into_bytes().to_vec())
        };
        let key = keyed(
            self.config.secret_key.as_bytes(),
            b"portcullis passkey decoy credential ids",
        )?;
        Ok(URL_SAFE_NO_PAD.encode(keyed(&key, email_key.as_bytes())?))
    }
}

/// `options` with `publicKey.allowCredentials` listing `ids` (base64url)
/// and no top-level `mediation` (the page chooses it): the same shape
/// whoever asked.
pub(super) fn with_allowed(mut options: Value, ids: &[String]) -> Value {
    if let Some(object) = options.as_object_mut() {
        object.remove("mediation");
    }
    options["publicKey"]["allowCredentials"] = ids
        .iter()
        .map(|id| json!({"type": "public-key", "id": id}))
        .collect();
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(checked_name("  Laptop ").unwrap(), "Laptop");
        assert!(checked_name("").is_err());
        assert!(checked_name("   ").is_err());
        assert!(checked_name(&"é".repeat(64)).is_ok());
        assert!(checked_name(&"é".repeat(65)).is_err());
        assert!(checked_name("a\nb").is_err());
    }

    #[test]
    fn allowed_credentials_replace_the_list_and_mediation_goes() {
        let options = json!({"publicKey": {"challenge": "x", "allowCredentials": []}, "mediation": "conditional"});
        let out = with_allowed(options, &["abc".to_string()]);
        assert_eq!(
            out,
            json!({"publicKey": {"challenge": "x", "allowCredentials": [{"type": "public-key", "id": "abc"}]}})
        );
    }
}
