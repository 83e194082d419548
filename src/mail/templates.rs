//! The messages Portcullis sends, each with a plain-text and an HTML part.

use crate::domain::OutgoingMail;

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// One message in both forms from the same paragraphs, with an optional
/// action button (`label`, `url`); the HTML escapes everything it shows.
fn compose(
    to: &str,
    subject: &str,
    paragraphs: &[&str],
    action: Option<(&str, String)>,
) -> OutgoingMail {
    let mut text = String::from("Hello,\n\n");
    let mut body = String::new();
    for p in paragraphs {
        text.push_str(p);
        text.push_str("\n\n");
        body.push_str(&format!("<p>{}</p>\n", escape(p)));
    }
    if let Some((label, url)) = &action {
        text.push_str(&format!("{label}:\n{url}\n\n"));
        body.push_str(&format!(
            "<p><a href=\"{url}\" style=\"display:inline-block;padding:10px 16px;background:#1f4e8c;color:#fff;text-decoration:none;border-radius:4px\">{label}</a></p>\n<p style=\"font-size:13px;color:#555\">Or copy this address into your browser:<br>{url}</p>\n",
            url = escape(url),
            label = escape(label)
        ));
    }
    text.push_str("-- Portcullis\n");
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body style=\"font-family:sans-serif;line-height:1.5;color:#222\">\n<h1 style=\"font-size:20px\">{title}</h1>\n{body}<p style=\"font-size:13px;color:#555\">Sent by Portcullis.</p>\n</body></html>\n",
        title = escape(subject)
    );
    OutgoingMail {
        to: to.to_string(),
        subject: subject.to_string(),
        text,
        html,
        link: action.map(|(_, url)| url),
    }
}

/// "Confirm your e-mail address", carrying `APP_URL/verify-email?token=…`.
pub fn verification_mail(app_url: &str, to: &str, token: &str, hours: u64) -> OutgoingMail {
    compose(
        to,
        "Confirm your email address",
        &[
            "Please confirm your email address for your account.",
            &format!(
                "The link expires in {hours} hours. If you did not create an account, ignore this message."
            ),
        ],
        Some((
            "Confirm email address",
            format!("{app_url}/verify-email?token={token}"),
        )),
    )
}

/// "Reset your password", carrying `APP_URL/reset-password?token=…`.
pub fn reset_mail(app_url: &str, to: &str, token: &str, minutes: u64) -> OutgoingMail {
    compose(
        to,
        "Reset your password",
        &[
            "Someone asked to reset the password of your account.",
            &format!(
                "The link expires in {minutes} minutes and works once. If you did not ask for this, ignore this message: your password stays as it is."
            ),
        ],
        Some((
            "Choose a new password",
            format!("{app_url}/reset-password?token={token}"),
        )),
    )
}

/// Sent instead of a second account when someone registers an existing
/// address while verification is required, so registration reveals nothing.
pub fn already_registered_mail(app_url: &str, to: &str) -> OutgoingMail {
    compose(
        to,
        "You already have an account",
        &[
            "Someone tried to create an account with this email address, but you already have one.",
            "If it was you, log in, or reset your password if you forgot it. If it was not you, ignore this message.",
        ],
        Some(("Go to the application", format!("{app_url}/"))),
    )
}

/// "Your password was changed", sent after a change or a reset (SPEC §6):
/// when it happened, and what to do if it was not the owner.
pub fn password_changed_mail(app_url: &str, to: &str, when: &str, by_reset: bool) -> OutgoingMail {
    let how = if by_reset {
        "The password of your account was reset with a link sent to this address"
    } else {
        "The password of your account was changed"
    };
    compose(
        to,
        "Your password was changed",
        &[
            &format!("{how} on {when}. Every other session was signed out."),
            "If this was you, there is nothing more to do. If it was not you, open the application now and use \"Forgot password\" to choose a new password: the reset link goes only to this address.",
        ],
        Some(("Go to the application", format!("{app_url}/"))),
    )
}

/// "Sign-ins to your account are being held back": the account's budget of
/// failed logins from all addresses is used up (SPEC §7), sent once when it
/// happens (at most once a day).
pub fn login_budget_used_up_mail(app_url: &str, to: &str, when: &str) -> OutgoingMail {
    compose(
        to,
        "Sign-ins to your account are being held back",
        &[
            &format!(
                "On {when} there were so many failed sign-ins to your account, from wherever they came, that new sign-ins with its password are refused for a while."
            ),
            "You can still sign in from a device or browser you signed in from before. If the failed attempts were not you, someone is guessing your password: choose a strong one that you use nowhere else, and turn on the second factor.",
        ],
        Some(("Go to the application", format!("{app_url}/"))),
    )
}

/// The mails of the second factor (SPEC §10), one per thing that happened
/// to it; each says when, and what to do if it was not the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaNotice {
    /// TOTP was turned on.
    Enabled,
    /// TOTP was turned off by its owner.
    Disabled,
    /// Too many wrong codes in a row: the second step is locked.
    Locked,
    /// Few recovery codes are left.
    RecoveryCodesLow {
        /// How many are left.
        left: i64,
    },
    /// A superuser removed the second factor.
    ResetByAdmin,
}

/// The mail of `notice`, to `to`, at `when` (a formatted time).
pub fn mfa_mail(app_url: &str, to: &str, when: &str, notice: MfaNotice) -> OutgoingMail {
    let not_you = "If this was not you, someone knows your password: open the application now and use \"Forgot password\" to choose a new one.";
    let (subject, first) = match notice {
        MfaNotice::Enabled => (
            "Two-factor authentication is on",
            format!(
                "Two-factor authentication was turned on for your account on {when}. Every other session was signed out. Keep your recovery codes somewhere safe."
            ),
        ),
        MfaNotice::Disabled => (
            "Two-factor authentication is off",
            format!(
                "Two-factor authentication was turned off for your account on {when}. Every other session was signed out."
            ),
        ),
        MfaNotice::Locked => (
            "Two-factor sign-in is locked",
            format!(
                "On {when}, too many wrong authentication codes were entered after your password. The second step of sign-in is locked until the password is reset (or an administrator resets it)."
            ),
        ),
        MfaNotice::RecoveryCodesLow { left } => (
            "Few recovery codes left",
            format!(
                "A recovery code was used to sign in to your account on {when}. {left} recovery code(s) are left: generate a new set soon."
            ),
        ),
        MfaNotice::ResetByAdmin => (
            "Two-factor authentication was removed",
            format!(
                "An administrator removed two-factor authentication from your account on {when}. Every session was signed out; you can turn it on again after signing in."
            ),
        ),
    };
    compose(
        to,
        subject,
        &[&first, not_you],
        Some(("Go to the application", format!("{app_url}/"))),
    )
}

/// "A passkey was added / removed" (SPEC §11): which one, when, and what
/// to do if it was not the owner.
pub fn passkey_mail(app_url: &str, to: &str, when: &str, name: &str, added: bool) -> OutgoingMail {
    let (subject, first) = if added {
        (
            "A passkey was added to your account",
            format!(
                "The passkey \"{name}\" was added to your account on {when}. It can now sign in to your account without a password."
            ),
        )
    } else {
        (
            "A passkey was removed from your account",
            format!("The passkey \"{name}\" was removed from your account on {when}."),
        )
    };
    compose(
        to,
        subject,
        &[
            &first,
            "If this was not you, someone can sign in to your account: open the application now, remove the passkeys you do not know, and use \"Forgot password\" to choose a new password.",
        ],
        Some(("Go to the application", format!("{app_url}/"))),
    )
}
