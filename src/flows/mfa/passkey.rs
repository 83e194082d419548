//! A passkey as a login's second step (SPEC §11 "As the second step"):
//! `POST /mfa/passkey/options` and `POST /mfa/verify` with
//! `"method": "passkey"`.
//!
//! The ceremony is bound to its purpose, to the user of the `mfa_token`
//! (in its row) and to the `mfa_token` itself (its hash, kept with the
//! challenge state). Every failed passkey, whatever failed, answers 401
//! `INVALID_MFA_CODE` and counts as a wrong code (per user and per
//! `mfa_token`, the lock), so guessing at passkeys is no cheaper than
//! guessing at codes; a finish that fails spends its ceremony.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use webauthn_rs::prelude::DiscoverableAuthentication;

use super::SecondStepPassed;
use crate::clock::now_unix;
use crate::domain::{ClientInfo, SessionAuth};
use crate::error::{Error, Result};
use crate::flows::passkeys::assertion::Refusal;
use crate::flows::passkeys::{credential_id, stored_passkey, with_allowed};
use crate::flows::{Flows, PasskeyOptions};
use crate::limits::Rule;
use crate::store::{CeremonyPurpose, FactorProof, User, hash_secret};

/// The answer of every failed passkey at the second step.
const WRONG: Error = Error::InvalidMfaCode { login: true };

/// What a second-step ceremony keeps between its options and its finish.
#[derive(Serialize, Deserialize)]
struct SecondStepCeremony {
    /// SHA-256 of the `mfa_token` it was started with.
    mfa_token_hash: String,
    /// The challenge state, as webauthn-rs serialises it.
    state: DiscoverableAuthentication,
}

/// Whether two strings are equal, in time that depends only on their
/// lengths.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Flows {
    /// The options of a passkey as the second step of the login that
    /// `mfa_token` continues: they list that user's credentials (user
    /// verification required). 401 `INVALID_MFA_TOKEN` as `/mfa/verify`
    /// answers it; 400 `PASSKEY_CEREMONY_INVALID` when the user has no
    /// passkey (the caller knows the password, and `methods` said so
    /// already: nothing is revealed); 429 while the second step is
    /// throttled or locked. Not counted under any limit (nothing is checked
    /// but the token).
    pub async fn passkey_second_step_options(&self, mfa_token: &str) -> Result<PasskeyOptions> {
        let webauthn = self.webauthn()?;
        let (record, _) = self.pending_second_step(mfa_token, now_unix()).await?;
        let user_id = record.user.id;
        let ids = self
            .store
            .passkeys_of(user_id)
            .await?
            .iter()
            .map(|passkey| Ok(credential_id(&stored_passkey(passkey)?)))
            .collect::<Result<Vec<_>>>()?;
        if ids.is_empty() {
            return Err(Error::PasskeyCeremonyInvalid);
        }
        let (challenge, state) = webauthn
            .start_discoverable_authentication()
            .map_err(Error::internal)?;
        let options = serde_json::to_value(&challenge).map_err(Error::internal)?;
        let ceremony = SecondStepCeremony {
            mfa_token_hash: hash_secret(mfa_token),
            state,
        };
        self.start_ceremony(
            CeremonyPurpose::SecondStep,
            Some(user_id),
            &ceremony,
            with_allowed(options, &ids),
        )
        .await
    }

    /// The second step of a login passed with a passkey (`POST
    /// /mfa/verify` `{"mfa_token", "method": "passkey", "ceremony_id",
    /// "credential"}`): the assertion must answer a second-step ceremony
    /// started with this `mfa_token`, with one of its user's credentials,
    /// verified as a passkey sign-in is (origin, RP id, user verification,
    /// signature, a counter that grew). Any failure is 401
    /// `INVALID_MFA_CODE` and counts as a wrong code (a counter that did not
    /// grow also records `passkey_clone_suspected`). The session carries
    /// `amr` `["pwd", "hwk"|"swk", "mfa"]` and `aal2`. Token checks, limits
    /// and the password binding are those of [`Flows::verify_second_factor`].
    pub async fn verify_second_factor_with_passkey(
        &self,
        mfa_token: &str,
        ceremony_id: &str,
        credential: Value,
        client: &ClientInfo,
    ) -> Result<SecondStepPassed> {
        self.limits.check_client(Rule::MfaPerIp, client).await?;
        self.webauthn()?;
        let now = now_unix();
        let (record, _) = self.pending_second_step(mfa_token, now).await?;
        let user = &record.user;
        let ceremony = match self
            .take_ceremony::<SecondStepCeremony>(
                ceremony_id,
                CeremonyPurpose::SecondStep,
                Some(user.id),
            )
            .await
        {
            Ok((_, ceremony)) if same(&ceremony.mfa_token_hash, &hash_secret(mfa_token)) => {
                ceremony
            }
            Ok(_) => return self.passkey_failed(user, mfa_token, None, client).await,
            Err(Error::PasskeyCeremonyInvalid) => {
                return self.passkey_failed(user, mfa_token, None, client).await;
            }
            Err(e) => return Err(e),
        };
        let verified = match self
            .check_assertion(ceremony.state, Some(user.id), credential)
            .await?
        {
            Ok(verified) => verified,
            Err(refusal) => {
                return self
                    .passkey_failed(user, mfa_token, Some(refusal), client)
                    .await;
            }
        };
        let synced = match self.record_assertion(verified).await? {
            Ok(synced) => synced,
            Err(refusal) => {
                return self
                    .passkey_failed(user, mfa_token, Some(refusal), client)
                    .await;
            }
        };
        let auth = if synced {
            SessionAuth::PasswordAndSyncedPasskey
        } else {
            SessionAuth::PasswordAndDevicePasskey
        };
        self.pass_second_step(&record, mfa_token, &FactorProof::Passkey, auth, client, now)
            .await
    }

    /// Counts a failed passkey as a wrong code of the second step (with
    /// `passkey_clone_suspected` for a counter that did not grow) and
    /// answers 401 `INVALID_MFA_CODE`. `refusal` is `None` for a ceremony
    /// that is unknown, spent, expired, of another purpose, user or
    /// `mfa_token`.
    async fn passkey_failed<T>(
        &self,
        user: &User,
        mfa_token: &str,
        refusal: Option<Refusal>,
        client: &ClientInfo,
    ) -> Result<T> {
        let why = match refusal {
            None => "ceremony invalid".to_string(),
            Some(Refusal::Malformed) => "malformed credential".to_string(),
            Some(Refusal::Refused { why, .. }) => why,
            Some(Refusal::CloneSuspected(record)) => {
                self.clone_suspected_event(&record, client).await?;
                "counter did not grow".to_string()
            }
        };
        tracing::info!(reason = %why, "a passkey at the second step was refused");
        self.factor_failed(user, mfa_token, client).await?;
        Err(WRONG)
    }
}
