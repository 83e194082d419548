//! The messages Portcullis sends, each with a plain-text and an HTML part.

use super::OutgoingMail;

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

fn html(title: &str, paragraphs: &[&str], link: Option<(&str, &str)>) -> String {
    let mut body = String::new();
    for p in paragraphs {
        body.push_str(&format!("<p>{}</p>\n", escape(p)));
    }
    if let Some((label, url)) = link {
        body.push_str(&format!(
            "<p><a href=\"{url}\" style=\"display:inline-block;padding:10px 16px;background:#1f4e8c;color:#fff;text-decoration:none;border-radius:4px\">{label}</a></p>\n<p style=\"font-size:13px;color:#555\">Or copy this address into your browser:<br>{url}</p>\n",
            url = escape(url),
            label = escape(label)
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body style=\"font-family:sans-serif;line-height:1.5;color:#222\">\n<h1 style=\"font-size:20px\">{title}</h1>\n{body}<p style=\"font-size:13px;color:#555\">Sent by Portcullis.</p>\n</body></html>\n",
        title = escape(title)
    )
}

/// "Confirm your e-mail address", carrying `APP_URL/verify-email?token=…`.
pub fn verification_mail(app_url: &str, to: &str, token: &str, hours: u64) -> OutgoingMail {
    let link = format!("{app_url}/verify-email?token={token}");
    let subject = "Confirm your email address".to_string();
    let text = format!(
        "Hello,\n\nPlease confirm your email address for your account by opening this link:\n\n{link}\n\nThe link expires in {hours} hours. If you did not create an account, ignore this message.\n\n-- Portcullis\n"
    );
    let expires = format!(
        "The link expires in {hours} hours. If you did not create an account, ignore this message."
    );
    let html = html(
        "Confirm your email address",
        &[
            "Please confirm your email address for your account.",
            &expires,
        ],
        Some(("Confirm email address", &link)),
    );
    OutgoingMail {
        to: to.to_string(),
        subject,
        text,
        html,
        link: Some(link),
    }
}

/// "Reset your password", carrying `APP_URL/reset-password?token=…`.
pub fn reset_mail(app_url: &str, to: &str, token: &str, minutes: u64) -> OutgoingMail {
    let link = format!("{app_url}/reset-password?token={token}");
    let subject = "Reset your password".to_string();
    let text = format!(
        "Hello,\n\nSomeone asked to reset the password of your account. To choose a new password, open this link:\n\n{link}\n\nThe link expires in {minutes} minutes and works once. If you did not ask for this, ignore this message: your password stays as it is.\n\n-- Portcullis\n"
    );
    let expires = format!(
        "The link expires in {minutes} minutes and works once. If you did not ask for this, ignore this message: your password stays as it is."
    );
    let html = html(
        "Reset your password",
        &[
            "Someone asked to reset the password of your account.",
            &expires,
        ],
        Some(("Choose a new password", &link)),
    );
    OutgoingMail {
        to: to.to_string(),
        subject,
        text,
        html,
        link: Some(link),
    }
}

/// Sent instead of a second account when someone registers an existing
/// address while verification is required, so registration reveals nothing.
pub fn already_registered_mail(app_url: &str, to: &str) -> OutgoingMail {
    let link = format!("{app_url}/");
    let subject = "You already have an account".to_string();
    let text = "Hello,\n\nSomeone tried to create an account with this email address, but you already have one. If it was you, log in, or reset your password if you forgot it. If it was not you, ignore this message.\n\n-- Portcullis\n".to_string();
    let html = html(
        "You already have an account",
        &[
            "Someone tried to create an account with this email address, but you already have one.",
            "If it was you, log in, or reset your password if you forgot it. If it was not you, ignore this message.",
        ],
        None,
    );
    OutgoingMail {
        to: to.to_string(),
        subject,
        text,
        html,
        link: Some(link),
    }
}
