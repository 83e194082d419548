//! The security events Portcullis records (SPEC §6), one name each.

use std::fmt;

/// Something that happened to an account, kept in `security_events` with
/// the caller's IP and user agent. The stored name is [`SecurityEvent::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityEvent {
    /// An account was registered.
    UserCreated,
    /// A login succeeded and opened a session.
    LoginSucceeded,
    /// A login was refused for a wrong e-mail or password.
    LoginFailed,
    /// One session, or all of them, were closed by their owner.
    Logout,
    /// The owner changed their password.
    PasswordChanged,
    /// Someone asked for a reset link for a registered address.
    PasswordResetRequested,
    /// A reset link was used to set a new password.
    PasswordReset,
    /// The e-mail address was confirmed.
    EmailVerified,
    /// A spent refresh token came back: the session was revoked.
    RefreshReuseDetected,
    /// The owner turned a second factor (TOTP) on.
    MfaEnabled,
    /// The owner turned the second factor off.
    MfaDisabled,
    /// A wrong second-step code (a wrong TOTP code, a reused step, a spent
    /// or unknown recovery code).
    MfaFailed,
    /// Too many wrong codes in a row: the second step is locked until a
    /// password reset or an admin reset.
    MfaLocked,
    /// A recovery code was used in place of a TOTP code.
    MfaRecoveryCodeUsed,
    /// A new set of recovery codes replaced the old one.
    MfaRecoveryCodesRegenerated,
    /// A superuser removed the user's second factor.
    MfaReset,
    /// Recorded on the acting superuser: they removed someone's second factor.
    AdminMfaReset,
    /// A superuser (or the `user` commands) changed the account's name or
    /// flags other than `is_active`; `details` says what changed.
    UserUpdated,
    /// The account was deactivated (its sessions and one-time tokens went with it).
    UserDeactivated,
    /// The account was activated again.
    UserActivated,
    /// The account was deleted (its e-mail is kept in `details`).
    UserDeleted,
    /// A superuser (or the `user` commands) revoked every session of the account.
    SessionsRevoked,
    /// A wrong current password was sent with a session (`/change-password`,
    /// `/mfa/totp/setup`): someone holding a token guessing the password.
    PasswordCheckFailed,
    /// A passkey was registered (SPEC §11).
    PasskeyAdded,
    /// A passkey was removed.
    PasskeyRemoved,
    /// A passkey's signature counter did not grow: the assertion was
    /// refused, as a cloned authenticator's (the passkey stays).
    PasskeyCloneSuspected,
    /// A client of Sign in with Portcullis was registered (SPEC §13), by a
    /// superuser (`actor_id`) or a `client` command (`"via": "cli"`);
    /// `details` names it. On the acting superuser's own trail (none for
    /// the CLI).
    ClientCreated,
    /// A client was deleted, recorded as [`SecurityEvent::ClientCreated`].
    ClientDeleted,
}

impl SecurityEvent {
    /// Every kind, in declaration order.
    pub const ALL: [SecurityEvent; 28] = [
        Self::UserCreated,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::Logout,
        Self::PasswordChanged,
        Self::PasswordResetRequested,
        Self::PasswordReset,
        Self::EmailVerified,
        Self::RefreshReuseDetected,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::MfaFailed,
        Self::MfaLocked,
        Self::MfaRecoveryCodeUsed,
        Self::MfaRecoveryCodesRegenerated,
        Self::MfaReset,
        Self::AdminMfaReset,
        Self::UserUpdated,
        Self::UserDeactivated,
        Self::UserActivated,
        Self::UserDeleted,
        Self::SessionsRevoked,
        Self::PasswordCheckFailed,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
        Self::PasskeyCloneSuspected,
        Self::ClientCreated,
        Self::ClientDeleted,
    ];

    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user_created",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::Logout => "logout",
            Self::PasswordChanged => "password_changed",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordReset => "password_reset",
            Self::EmailVerified => "email_verified",
            Self::RefreshReuseDetected => "refresh_reuse_detected",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::MfaFailed => "mfa_failed",
            Self::MfaLocked => "mfa_locked",
            Self::MfaRecoveryCodeUsed => "mfa_recovery_code_used",
            Self::MfaRecoveryCodesRegenerated => "mfa_recovery_codes_regenerated",
            Self::MfaReset => "mfa_reset",
            Self::AdminMfaReset => "admin_mfa_reset",
            Self::UserUpdated => "user_updated",
            Self::UserDeactivated => "user_deactivated",
            Self::UserActivated => "user_activated",
            Self::UserDeleted => "user_deleted",
            Self::SessionsRevoked => "sessions_revoked",
            Self::PasswordCheckFailed => "password_check_failed",
            Self::PasskeyAdded => "passkey_added",
            Self::PasskeyRemoved => "passkey_removed",
            Self::PasskeyCloneSuspected => "passkey_clone_suspected",
            Self::ClientCreated => "client_created",
            Self::ClientDeleted => "client_deleted",
        }
    }

    /// The kind stored as `name`, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for SecurityEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for kind in SecurityEvent::ALL {
            assert!(seen.insert(kind.as_str()), "{kind} named twice");
            assert_eq!(SecurityEvent::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(SecurityEvent::from_name("nope"), None);
    }
}
