//! Checking an assertion and recording the passkey's use: the part that a
//! passkey sign-in (first factor) and a passkey as a login's second step
//! share. What a refusal answers, and what it counts against, is the
//! caller's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, Passkey, PublicKeyCredential, Uuid,
    WebauthnError,
};

use super::stored_passkey;
use crate::domain::ClientInfo;
use crate::domain::SecurityEvent;
use crate::error::Result;
use crate::flows::Flows;
use crate::store::{PasskeyRecord, PasskeyUse};

/// Why an assertion was refused.
#[derive(Debug)]
pub(in crate::flows) enum Refusal {
    /// The credential is not JSON of the expected shape.
    Malformed,
    /// An unknown credential (or not the ceremony user's), or one that did
    /// not verify; whose it is when known, and why (for the log only).
    Refused {
        /// The owner of the credential, when it is a registered one.
        user_id: Option<i64>,
        /// The reason, for the log.
        why: String,
    },
    /// The signature counter did not grow (a cloned authenticator,
    /// perhaps); the event is recorded by [`Flows::clone_suspected_event`].
    CloneSuspected(Box<PasskeyRecord>),
}

/// An assertion that verified, not yet recorded.
#[derive(Debug)]
pub(in crate::flows) struct Verified {
    /// The passkey that made it, as stored.
    pub record: PasskeyRecord,
    /// Its credential, to move forward with the result.
    passkey: Passkey,
    /// What the authenticator said (counter, flags).
    result: AuthenticationResult,
}

impl Flows {
    /// Checks `credential` against the ceremony `state`: a registered
    /// credential (of `bound_to` when given), whose user handle, if sent,
    /// is its own, and whose assertion verifies (origin, RP id, challenge,
    /// user verification, signature, a counter that grew over the stored
    /// one). Nothing is written.
    pub(in crate::flows) async fn check_assertion(
        &self,
        state: DiscoverableAuthentication,
        bound_to: Option<i64>,
        credential: Value,
    ) -> Result<Result<Verified, Refusal>> {
        let webauthn = self.webauthn()?;
        let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(credential) else {
            return Ok(Err(Refusal::Malformed));
        };
        let found = self
            .store
            .passkey_by_credential(&URL_SAFE_NO_PAD.encode(credential.get_credential_id()))
            .await?;
        let Some(record) = found.filter(|r| bound_to.is_none_or(|user| user == r.user_id)) else {
            return Ok(Err(Refusal::Refused {
                user_id: None,
                why: "unknown credential".into(),
            }));
        };
        if let Some(handle) = credential.get_user_unique_id()
            && Uuid::from_slice(handle).ok().map(|h| h.to_string())
                != Some(record.user_handle.clone())
        {
            return Ok(Err(Refusal::Refused {
                user_id: Some(record.user_id),
                why: "user handle mismatch".into(),
            }));
        }
        let passkey = stored_passkey(&record)?;
        match webauthn.finish_discoverable_authentication_v2(&credential, state, &passkey) {
            Ok(result) => Ok(Ok(Verified {
                record,
                passkey,
                result,
            })),
            Err(WebauthnError::CredentialPossibleCompromise) => {
                Ok(Err(Refusal::CloneSuspected(Box::new(record))))
            }
            Err(e) => Ok(Err(Refusal::Refused {
                user_id: Some(record.user_id),
                why: format!("assertion refused: {e}"),
            })),
        }
    }

    /// Records the use of a verified assertion: the credential, its counter
    /// (only forward, across instances), the backup state and
    /// `last_used_at`. Whether the passkey is a synced one (flag BE, now or
    /// at registration), or [`Refusal::CloneSuspected`] when another use
    /// moved the counter past this one meanwhile.
    pub(in crate::flows) async fn record_assertion(
        &self,
        verified: Verified,
    ) -> Result<Result<bool, Refusal>> {
        let Verified {
            record,
            mut passkey,
            result,
        } = verified;
        passkey.update_credential(&result);
        let serialised = serde_json::to_string(&passkey).map_err(crate::error::Error::internal)?;
        let used = PasskeyUse {
            id: &record.id,
            passkey: &serialised,
            sign_count: i64::from(result.counter()),
            backed_up: result.backup_state(),
        };
        if !self.store.record_passkey_use(&used).await? {
            return Ok(Err(Refusal::CloneSuspected(Box::new(record))));
        }
        Ok(Ok(record.backup_eligible || result.backup_eligible()))
    }

    /// Records that `record`'s counter did not grow
    /// (`passkey_clone_suspected`); the passkey stays.
    pub(in crate::flows) async fn clone_suspected_event(
        &self,
        record: &PasskeyRecord,
        client: &ClientInfo,
    ) -> Result<()> {
        tracing::warn!(passkey = %record.id, "a passkey's signature counter did not grow");
        self.store
            .record_event(
                Some(record.user_id),
                SecurityEvent::PasskeyCloneSuspected,
                client,
            )
            .await
    }
}
