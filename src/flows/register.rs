//! Registration (SPEC §6 `POST /register`).

use serde_json::{Map, Value};

use super::{Flows, TokenPair, reject_if_any};
use crate::clock::now_unix;
use crate::domain::{ClientInfo, DisplayName, EmailAddress, SecurityEvent};
use crate::error::{Error, Result};
use crate::limits::Rule;
use crate::mail::already_registered_mail;
use crate::password::NewPassword;
use crate::store::{CreateUserError, NewUser, StillValid, User};

/// What a client asks to register with, as sent.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// The e-mail address.
    pub email: String,
    /// The password.
    pub password: String,
    /// An optional display name.
    pub name: Option<String>,
    /// Everything else in the request: the application's own fields are
    /// picked out of it, other keys are ignored.
    pub fields: Map<String, Value>,
    /// The caller's access token, if it sent one: with
    /// `REGISTRATION_ENABLED=false` only a superuser's may register.
    pub actor_token: Option<String>,
}

/// How a registration ended.
#[derive(Debug, Clone)]
pub enum Registered {
    /// The account was created and signed in.
    SignedIn {
        /// The new user.
        user: User,
        /// The first session's tokens.
        tokens: TokenPair,
    },
    /// E-mail verification is required: the answer must not tell whether the
    /// address was new, so `user` is what was asked for (its id is not shown)
    /// and the mailbox's owner learns the rest.
    AwaitingVerification {
        /// The account as requested.
        user: User,
    },
}

impl Flows {
    /// With registration closed (SPEC §12), only an active superuser's
    /// token opens it; anything else is `REGISTRATION_DISABLED`.
    async fn require_superuser_actor(&self, token: Option<&str>) -> Result<()> {
        let Some(token) = token else {
            return Err(Error::RegistrationDisabled);
        };
        match self.check_access(token).await {
            Ok(session) if session.user.is_active && session.user.is_superuser => Ok(()),
            Err(Error::Unavailable) => Err(Error::Unavailable),
            Err(Error::Internal(e)) => Err(Error::Internal(e)),
            _ => Err(Error::RegistrationDisabled),
        }
    }

    /// Registers an account, within the per-IP rate limit. Every field is
    /// checked and every problem reported at once. When verification is
    /// required, an address that is already registered gets the same answer
    /// after the same hashing work, and its owner gets a mail instead of a
    /// second account.
    pub async fn register(&self, input: Registration, client: &ClientInfo) -> Result<Registered> {
        if !self.config.registration_enabled {
            self.require_superuser_actor(input.actor_token.as_deref())
                .await?;
        }
        self.limits
            .check_client(Rule::RegisterPerIp, client)
            .await?;
        let mut errors = Vec::new();
        let email = EmailAddress::parse(&input.email, "email")
            .map_err(|e| errors.push(e))
            .ok();
        let password = NewPassword::parse(
            &input.password,
            email.as_ref().map(EmailAddress::as_str),
            &self.config.password,
            "password",
        )
        .map_err(|e| errors.push(e))
        .ok();
        let name = DisplayName::parse(input.name.as_deref(), "name")
            .map_err(|e| errors.push(e))
            .ok();
        let extra = self
            .fields
            .extract(&input.fields, false)
            .map_err(|e| errors.extend(e))
            .ok();
        reject_if_any(errors)?;
        let (Some(email), Some(password), Some(name), Some(extra)) = (email, password, name, extra)
        else {
            return Err(Error::internal(anyhow::anyhow!("validation left a gap")));
        };
        let new_user = |hash| NewUser {
            email: email.as_str(),
            name: name.as_deref(),
            password_hash: hash,
            is_active: true,
            is_verified: false,
            is_superuser: false,
            extra: &extra,
            created_at: None,
        };

        if self.config.require_email_verification {
            let hash = self.passwords.hash(&password).await?;
            let user = match self.store.create_user(&new_user(&hash)).await {
                Ok(user) => {
                    self.store
                        .record_event(Some(user.id), SecurityEvent::UserCreated, client)
                        .await?;
                    self.send_verification(&user).await?;
                    user
                }
                Err(CreateUserError::EmailTaken) => {
                    self.tell_owner_of(&email).await?;
                    User {
                        id: 0,
                        email: email.as_str().to_string(),
                        name: name.as_deref().map(str::to_string),
                        is_active: true,
                        is_verified: false,
                        is_superuser: false,
                        created_at: now_unix(),
                        extra: extra.clone(),
                    }
                }
                Err(CreateUserError::Other(e)) => return Err(e),
            };
            return Ok(Registered::AwaitingVerification { user });
        }

        if self.store.user_by_email(email.as_str()).await?.is_some() {
            return Err(Error::EmailAlreadyExists);
        }
        let hash = self.passwords.hash(&password).await?;
        let user = self.store.create_user(&new_user(&hash)).await?;
        self.store
            .record_event(Some(user.id), SecurityEvent::UserCreated, client)
            .await?;
        self.send_verification(&user).await?;
        let check = StillValid {
            password_hash: None,
            require_verified: false,
        };
        let tokens = self.open_session(&user, check, client).await?;
        Ok(Registered::SignedIn { user, tokens })
    }

    /// Mails the owner of a registered address that someone tried to
    /// register it again, within the address's mail allowance
    /// (`RATE_LIMIT_MAIL_PER_EMAIL`, shared with reset and verification
    /// mails): past it no mail goes, and the answer stays the same.
    async fn tell_owner_of(&self, email: &EmailAddress) -> Result<()> {
        let Some(owner) = self.store.user_by_email(email.as_str()).await? else {
            return Ok(());
        };
        if self.may_mail(&owner.user.email).await {
            let mail = already_registered_mail(&self.config.app_url, &owner.user.email);
            self.store.enqueue_mail(&mail).await?;
            self.mailer.wake();
        }
        Ok(())
    }
}
