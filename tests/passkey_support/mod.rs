//! A browser and its authenticator, for the passkey tests: webauthn-authenticator-rs's
//! software passkey, fed the options the server answers and posting back
//! what `credential.toJSON()` would.
//!
//! The software passkey keeps no discoverable credentials, so two things a
//! browser with a platform authenticator does are done here instead: the
//! `residentKey: "required"` of the creation options is relaxed before the
//! authenticator sees them (the server cannot check residency anyway), and
//! for a discoverable sign-in the credential is picked here and its user
//! handle added to the answer (which the signature does not cover).

#![allow(dead_code)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url, WebauthnAuthenticator,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::common::{PASSWORD, Reply, Session, TestApp};

/// The server's relying party for these tests.
pub const RP_ID: &str = "localhost";
/// The page origin of every ceremony unless a test says otherwise.
pub const ORIGIN: &str = "http://localhost:8000";
/// An origin the server also accepts, on a name under the RP id.
pub const SUB_ORIGIN: &str = "https://sub.localhost";
/// The settings that turn passkeys on for a test server (whose `APP_URL`
/// is an IP address).
pub const VARS: [(&str, &str); 2] = [
    ("WEBAUTHN_RP_ID", RP_ID),
    (
        "WEBAUTHN_ORIGINS",
        "http://localhost:8000,https://sub.localhost",
    ),
];

/// One authenticator with the credentials it created.
pub struct Device {
    soft: SoftPasskey,
    /// (credential id, user handle), base64url, of each registration.
    pub credentials: Vec<(String, String)>,
}

impl Device {
    /// An authenticator that verifies its user (`uv: false`: one that
    /// cannot, and says so in its flags).
    pub fn new(uv: bool) -> Self {
        Self {
            soft: SoftPasskey::new(uv),
            credentials: Vec::new(),
        }
    }

    /// `navigator.credentials.create` on `origin` with the server's
    /// `options` (`{"publicKey": …}`), as `credential.toJSON()` writes it.
    pub fn create(&mut self, origin: &str, options: &Value) -> Value {
        let mut options = options.clone();
        let selection = &mut options["publicKey"]["authenticatorSelection"];
        selection["residentKey"] = json!("discouraged");
        selection["requireResidentKey"] = json!(false);
        let handle = options["publicKey"]["user"]["id"]
            .as_str()
            .expect("user.id")
            .to_string();
        let request: CreationChallengeResponse =
            serde_json::from_value(options).expect("creation options parse");
        let credential = self
            .soft
            .do_registration(Url::parse(origin).expect("origin"), request)
            .expect("the authenticator creates a credential");
        let credential = serde_json::to_value(&credential).expect("credential JSON");
        let id = credential["id"].as_str().expect("id").to_string();
        self.credentials.push((id, handle));
        credential
    }

    /// `navigator.credentials.get` on `origin` with the server's `options`;
    /// with an empty `allowCredentials` (a discoverable sign-in) the
    /// device's latest credential answers, with its user handle.
    pub fn get(&mut self, origin: &str, options: &Value) -> Value {
        let mut options = options.clone();
        let discoverable = options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty);
        let (id, handle) = self.credentials.last().cloned().expect("a credential");
        if discoverable {
            options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": id}]);
        }
        let request: RequestChallengeResponse =
            serde_json::from_value(options).expect("request options parse");
        let assertion = self
            .soft
            .do_authentication(Url::parse(origin).expect("origin"), request)
            .expect("the authenticator signs");
        let mut assertion = serde_json::to_value(&assertion).expect("assertion JSON");
        if discoverable {
            assertion["response"]["userHandle"] = json!(handle);
        }
        assertion
    }
}

/// `options` asking for no user verification (what a tampered page or a
/// broken client sends the authenticator).
pub fn without_uv(options: &Value) -> Value {
    let mut options = options.clone();
    options["publicKey"]["userVerification"] = json!("discouraged");
    if options["publicKey"]["authenticatorSelection"].is_object() {
        options["publicKey"]["authenticatorSelection"]["userVerification"] = json!("discouraged");
    }
    options
}

/// `POST /passkeys/register/options` with the password; the raw answer.
pub async fn register_options_raw(app: &TestApp, user: &Session) -> Reply {
    app.auth_post_json(
        "/passkeys/register/options",
        &user.access,
        &json!({"password": PASSWORD}),
    )
    .await
}

/// `POST /passkeys/register/options`, checked: its `data`.
pub async fn register_options(app: &TestApp, user: &Session) -> Value {
    register_options_raw(app, user)
        .await
        .expect_ok(StatusCode::OK)
        .clone()
}

/// `POST /passkeys/register`; the raw answer.
pub async fn finish_registration(
    app: &TestApp,
    user: &Session,
    ceremony: &Value,
    credential: &Value,
) -> Reply {
    app.auth_post_json(
        "/passkeys/register",
        &user.access,
        &json!({"ceremony_id": ceremony["ceremony_id"], "credential": credential, "name": "Laptop"}),
    )
    .await
}

/// Registers a passkey of `device` for `user`: the new passkey.
pub async fn add_passkey(app: &TestApp, user: &Session, device: &mut Device) -> Value {
    let ceremony = register_options(app, user).await;
    let credential = device.create(ORIGIN, &ceremony["options"]);
    finish_registration(app, user, &ceremony, &credential)
        .await
        .expect_ok(StatusCode::CREATED)
        .clone()
}

/// `POST /login/passkey/options`, checked: its `data`.
pub async fn sign_in_options(app: &TestApp, email: Option<&str>) -> Value {
    let body = match email {
        Some(email) => json!({"email": email}),
        None => json!({}),
    };
    app.post_json("/login/passkey/options", &body)
        .await
        .expect_ok(StatusCode::OK)
        .clone()
}

/// `POST /login/passkey`; the raw answer.
pub async fn finish_sign_in(app: &TestApp, ceremony: &Value, credential: &Value) -> Reply {
    app.post_json(
        "/login/passkey",
        &json!({"ceremony_id": ceremony["ceremony_id"], "credential": credential}),
    )
    .await
}

/// The kinds of `user`'s security events, newest first.
pub async fn event_kinds(app: &TestApp, user: &Session) -> Vec<String> {
    let reply = app.auth_get("/events?per_page=100", &user.access).await;
    reply.expect_ok(StatusCode::OK)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `DELETE /passkeys/{id}` with `password`; the raw answer.
pub async fn remove_passkey(app: &TestApp, user: &Session, id: &str, password: &str) -> Reply {
    app.send(
        app.request(Method::DELETE, &format!("/passkeys/{id}"))
            .bearer_auth(&user.access)
            .json(&json!({"password": password})),
    )
    .await
}

/// `registration` (a `credential.toJSON()` of a creation) rewritten to
/// claim the credential id `stolen_id` with its own key, under `none`
/// attestation, which signs nothing: what a client that wants another
/// account's credential id can send.
pub fn claiming_credential_id(registration: &Value, stolen_id: &str) -> Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let object = b64
        .decode(
            registration["response"]["attestationObject"]
                .as_str()
                .expect("attestationObject"),
        )
        .expect("base64url");
    // authData starts with the RP id's hash, inside a CBOR byte string.
    let rp_hash = Sha256::digest(RP_ID.as_bytes());
    let start = object
        .windows(32)
        .position(|w| w == &rp_hash[..])
        .expect("authData in the attestation object");
    let length = match (object[start - 2], object[start - 3]) {
        (0x58, _) => usize::from(object[start - 1]),
        (_, 0x59) => usize::from(u16::from_be_bytes([object[start - 2], object[start - 1]])),
        _ => panic!("unexpected CBOR around authData"),
    };
    let mut auth_data = object[start..start + length].to_vec();
    let stolen = b64.decode(stolen_id).expect("credential id");
    // rpIdHash 32, flags 1, counter 4, AAGUID 16, id length 2, then the id.
    let id_length = usize::from(u16::from_be_bytes([auth_data[53], auth_data[54]]));
    assert_eq!(id_length, stolen.len(), "the ids have one length");
    auth_data[55..55 + id_length].copy_from_slice(&stolen);
    let mut crafted = vec![0xa3, 0x63];
    crafted.extend_from_slice(b"fmt");
    crafted.push(0x64);
    crafted.extend_from_slice(b"none");
    crafted.push(0x67);
    crafted.extend_from_slice(b"attStmt");
    crafted.push(0xa0);
    crafted.push(0x68);
    crafted.extend_from_slice(b"authData");
    let length = u16::try_from(auth_data.len()).expect("authData length");
    crafted.push(0x59);
    crafted.extend_from_slice(&length.to_be_bytes());
    crafted.extend_from_slice(&auth_data);
    let mut out = registration.clone();
    out["id"] = json!(stolen_id);
    out["rawId"] = json!(stolen_id);
    out["response"]["attestationObject"] = json!(b64.encode(crafted));
    out
}
