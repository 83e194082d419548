//! The OpenAPI 3.1 description of every endpoint (`GET /openapi.json`) and
//! Swagger UI at `/docs`, whose Authorize button logs in through `/login`.
//!
//! The document is generated with utoipa from the code, so it cannot drift
//! from it: each handler carries a `#[utoipa::path]` attribute with its
//! path, body and answers, and the request and response types derive
//! `ToSchema` (the success envelope is the generic [`Envelope<T>`], every
//! error body the one [`ErrorEnvelope`]). [`AuthApi`] and [`RootApi`]
//! collect them. What is only known at start-up is filled in by
//! [`document`]: the route prefix the auth endpoints are nested under (as
//! the router nests them), the token URL of the OAuth2 password flow, the
//! password length limits, and the application's own user fields. The answers that come from the router and
//! the body extractors rather than from a handler are added in one place
//! ([`answers::add_shared_answers`]).
//!
//! [`Envelope<T>`]: super::response::Envelope

pub mod answers;
pub mod cookie;
pub mod schemas;

use serde_json::Value;
use utoipa::OpenApi;
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa_swagger_ui::SwaggerUi;

use super::{account, admin, auth, clients, discovery, links, mfa, oauth, ops, pages, passkeys};
use crate::config::Config;
use crate::error::ErrorEnvelope;
use crate::fields::UserFields;

/// What the document says about itself.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "Email/password JWT authentication. Every JSON answer is \
            {\"success\": true, \"data\": …} or {\"success\": false, \"error\": {\"message\", \
            \"code\", \"details\"?}}, except the RFC 6749 bodies of `/token` and the JWK Set; \
            the pages behind the mailed links answer in HTML. Any path that is not served \
            answers 404 NOT_FOUND, and a served path asked with another method 405 \
            METHOD_NOT_ALLOWED, both in the envelope.",
    ),
    components(schemas(ErrorEnvelope)),
    tags(
        (name = "auth", description = "Registering, logging in and refreshing tokens"),
        (name = "account", description = "The signed-in user's own account"),
        (name = "sessions", description = "Logging out and the user's sessions"),
        (name = "admin", description = "Managing users (superusers only); every change is recorded in the user's security events"),
        (name = "clients", description = "The applications that sign people in with Portcullis (OpenID Connect clients, SPEC §13; superusers only). Creation and deletion are recorded on the acting superuser's security events"),
        (name = "password reset", description = "Forgotten passwords, by mailed link"),
        (name = "verification", description = "Confirming the e-mail address, by mailed link"),
        (name = "second factor", description = "TOTP and recovery codes (SPEC §10), and a passkey as the second step (SPEC §11). A login of a user with a second factor answers `mfa_required` with an `mfa_token` instead of tokens; `/mfa/verify` completes it (with a passkey: after `/mfa/passkey/options`). Swagger UI's Authorize button works only for users without a second factor."),
        (name = "passkeys", description = "Passkeys (WebAuthn, SPEC §11): register them with the password as proof, then sign in with one instead of a password. Options answers are `{\"ceremony_id\", \"options\": {\"publicKey\": …}, \"expires_in\": 300}`: pass `options.publicKey` to `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`, and post `credential.toJSON()` back with the `ceremony_id` (single-use)."),
        (name = "operations", description = "Health, readiness, metrics and public keys"),
        (name = "pages", description = "The HTML pages the mailed links open, at the root"),
    ),
)]
struct Base;

/// The endpoints of SPEC §6, nested under `AUTH_ROUTE_PREFIX` as the router
/// nests them.
#[derive(OpenApi)]
#[openapi(paths(
    auth::register,
    auth::login_form,
    auth::login_json,
    oauth::token,
    auth::refresh,
    auth::logout,
    account::me,
    account::update_me,
    account::change_password,
    account::list_sessions,
    account::delete_session,
    account::list_events,
    links::forgot_password,
    links::reset_password,
    links::verify_email,
    links::resend_verification,
    links::send_verification,
    mfa::verify,
    mfa::passkey_options,
    mfa::status,
    mfa::setup,
    mfa::confirm,
    mfa::disable,
    mfa::recovery_codes,
    passkeys::passkey_register_options,
    passkeys::passkey_register,
    passkeys::list_passkeys,
    passkeys::rename_passkey,
    passkeys::remove_passkey,
    passkeys::passkey_sign_in_options,
    passkeys::passkey_sign_in,
))]
pub struct AuthApi;

/// The endpoints at the root: the pages (those behind the mailed links, and
/// with `PAGES_ENABLED` the others) and the operations endpoints.
#[derive(OpenApi)]
#[openapi(paths(
    pages::reset_page,
    pages::reset_submit,
    pages::verify_page,
    pages::verify_submit,
    pages::stylesheet,
    pages::sign_in_page,
    pages::sign_up_page,
    pages::forgot_password_page,
    pages::account_page,
    pages::script,
    ops::healthz,
    ops::readyz,
    ops::metrics,
    ops::jwks,
    discovery::openid_configuration,
    discovery::oauth_authorization_server,
))]
pub struct RootApi;

/// The admin API at `/api/users` (superusers).
#[derive(OpenApi)]
#[openapi(paths(
    admin::list_users,
    admin::get_user,
    admin::update_user,
    admin::delete_user,
    admin::user_sessions,
    admin::revoke_sessions,
    admin::user_events,
    admin::reset_mfa,
    admin::user_passkeys,
    admin::remove_user_passkey,
    clients::list_clients,
    clients::create_client,
    clients::get_client,
    clients::update_client,
    clients::delete_client,
))]
pub struct AdminApi;

/// The OpenAPI document of the routes served with `config`, to an
/// application that declared the user `fields`.
pub fn document(config: &Config, fields: &UserFields) -> Value {
    let prefix = &config.route_prefix;
    let mut doc = Base::openapi()
        .nest(prefix, AuthApi::openapi())
        .merge_from(RootApi::openapi())
        .merge_from(AdminApi::openapi());
    answers::add_shared_answers(&mut doc);
    let components = doc.components.get_or_insert_with(Default::default);
    let password_flow = Password::with_refresh_url(
        format!("{prefix}/login"),
        Scopes::new(),
        format!("{prefix}/token"),
    );
    components.add_security_scheme(
        "OAuth2PasswordBearer",
        SecurityScheme::OAuth2(OAuth2::new([Flow::Password(password_flow)])),
    );
    components.add_security_scheme(
        "BearerAuth",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    let mut doc = serde_json::to_value(&doc).expect("the OpenAPI document is JSON");
    schemas::reference_copies(&mut doc);
    schemas::apply_password_limits(&mut doc, &config.password);
    schemas::add_user_fields(&mut doc, fields);
    cookie::describe_refresh_cookie(&mut doc, config);
    if !config.pages.enabled
        && let Some(paths) = doc["paths"].as_object_mut()
    {
        // Not served: not described.
        for path in crate::http::pages::PAGE_PATHS {
            paths.remove(*path);
        }
    }
    doc
}

/// Swagger UI at `/docs` reading `/openapi.json`, with an initializer of
/// our own (see [`initializer`]); `login_path` is the OAuth2 token URL.
pub fn swagger_ui<S>(document: Value, login_path: &str) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let script = initializer(login_path);
    let ui = SwaggerUi::new("/docs")
        .external_url_unchecked("/openapi.json", document)
        .config(utoipa_swagger_ui::Config::from("/openapi.json").try_it_out_enabled(true));
    axum::Router::from(ui).route(
        "/docs/swagger-initializer.js",
        axum::routing::get(move || {
            let script = script.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/javascript; charset=utf-8",
                    )],
                    script,
                )
            }
        }),
    )
}

/// The script that starts Swagger UI. Two things differ from the stock one:
/// - nothing is persisted: Swagger UI would keep the whole Authorize form,
///   the password and refresh token with it, in `localStorage`;
/// - the login's errors come in Portcullis's envelope while the Authorize
///   dialog reads OAuth2's string `error` and `error_description`, so a
///   response interceptor translates them for the dialog (which then shows
///   "Invalid email or password", not "[object Object]"); `/login` itself
///   keeps answering in the envelope.
fn initializer(login_path: &str) -> String {
    let login = serde_json::to_string(login_path).unwrap_or_else(|_| "\"/login\"".into());
    format!(
        r##"window.onload = function () {{
  var loginPath = {login};
  window.ui = SwaggerUIBundle({{
    dom_id: "#swagger-ui",
    url: "/openapi.json",
    deepLinking: true,
    tryItOutEnabled: true,
    persistAuthorization: false,
    layout: "StandaloneLayout",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    responseInterceptor: function (res) {{
      try {{
        var path = new URL(res.url, window.location.href).pathname;
        if (!res.ok && path === loginPath) {{
          var body = typeof res.data === "string" ? JSON.parse(res.data) : res.body;
          if (body && body.success === false && body.error) {{
            var oauth = {{ error: body.error.code, error_description: body.error.message }};
            res.body = oauth;
            res.obj = oauth;
            res.data = JSON.stringify(oauth);
            res.text = res.data;
          }}
        }}
      }} catch (e) {{}}
      return res;
    }}
  }});
}};
"##
    )
}

#[cfg(test)]
mod tests;
