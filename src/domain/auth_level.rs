//! How a session was authenticated (SPEC §10): the RFC 8176 `amr` values and
//! the assurance level `aal` that its access tokens carry.

/// The factors a session was opened with. Stored on the session row and
/// copied into every access token of the session, on refresh too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionAuth {
    /// The password alone (`["pwd"]`, `aal1`).
    Password,
    /// The password and a TOTP code (`["pwd", "otp", "mfa"]`, `aal2`).
    PasswordAndOtp,
    /// The password and a recovery code (`["pwd", "recovery_code", "mfa"]`,
    /// `aal2`; `recovery_code` is a private value).
    PasswordAndRecoveryCode,
    /// A passkey bound to its device (`["hwk", "user", "mfa"]`, `aal2`):
    /// possession plus the user verification the authenticator did.
    DevicePasskey,
    /// A synced passkey, backup-eligible (`["swk", "user", "mfa"]`, `aal2`).
    SyncedPasskey,
    /// The password and a device-bound passkey as the second step
    /// (`["pwd", "hwk", "mfa"]`, `aal2`).
    PasswordAndDevicePasskey,
    /// The password and a synced (backup-eligible) passkey as the second
    /// step (`["pwd", "swk", "mfa"]`, `aal2`).
    PasswordAndSyncedPasskey,
}

impl SessionAuth {
    /// The `amr` claim.
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            Self::Password => &["pwd"],
            Self::PasswordAndOtp => &["pwd", "otp", "mfa"],
            Self::PasswordAndRecoveryCode => &["pwd", "recovery_code", "mfa"],
            Self::DevicePasskey => &["hwk", "user", "mfa"],
            Self::SyncedPasskey => &["swk", "user", "mfa"],
            Self::PasswordAndDevicePasskey => &["pwd", "hwk", "mfa"],
            Self::PasswordAndSyncedPasskey => &["pwd", "swk", "mfa"],
        }
    }

    /// The `aal` claim: `aal1` or `aal2`.
    pub fn aal(self) -> &'static str {
        match self {
            Self::Password => "aal1",
            Self::PasswordAndOtp
            | Self::PasswordAndRecoveryCode
            | Self::DevicePasskey
            | Self::SyncedPasskey
            | Self::PasswordAndDevicePasskey
            | Self::PasswordAndSyncedPasskey => "aal2",
        }
    }

    /// Whether a second factor was used.
    pub fn is_multi_factor(self) -> bool {
        self != Self::Password
    }

    /// The `amr` column: the values separated by spaces.
    pub fn stored(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::PasswordAndOtp => "pwd otp mfa",
            Self::PasswordAndRecoveryCode => "pwd recovery_code mfa",
            Self::DevicePasskey => "hwk user mfa",
            Self::SyncedPasskey => "swk user mfa",
            Self::PasswordAndDevicePasskey => "pwd hwk mfa",
            Self::PasswordAndSyncedPasskey => "pwd swk mfa",
        }
    }

    /// The value of an `amr` column; anything unknown reads as the
    /// password alone (the weakest).
    pub fn from_stored(amr: &str) -> Self {
        [
            Self::PasswordAndOtp,
            Self::PasswordAndRecoveryCode,
            Self::DevicePasskey,
            Self::SyncedPasskey,
            Self::PasswordAndDevicePasskey,
            Self::PasswordAndSyncedPasskey,
        ]
        .into_iter()
        .find(|a| a.stored() == amr)
        .unwrap_or(Self::Password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_round_trip() {
        for auth in [
            SessionAuth::Password,
            SessionAuth::PasswordAndOtp,
            SessionAuth::PasswordAndRecoveryCode,
            SessionAuth::DevicePasskey,
            SessionAuth::SyncedPasskey,
            SessionAuth::PasswordAndDevicePasskey,
            SessionAuth::PasswordAndSyncedPasskey,
        ] {
            assert_eq!(SessionAuth::from_stored(auth.stored()), auth);
            assert_eq!(auth.amr().join(" "), auth.stored());
            assert_eq!(auth.is_multi_factor(), auth.aal() == "aal2");
        }
        assert_eq!(SessionAuth::from_stored("mfa"), SessionAuth::Password);
    }
}
