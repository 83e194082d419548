//! Which handler answers which path, and the middleware around them.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post};

use super::{
    AppState, account, admin, auth, clients, discovery, links, mfa, middleware, oauth, openapi,
    ops, pages, passkeys,
};
use crate::error::Error;

/// Largest accepted request body (SPEC §3).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The auth endpoints of SPEC §6, under `AUTH_ROUTE_PREFIX`. Written out
/// with the prefix rather than `nest`ed: a nested router adds a layer that
/// rewrites every request's URI, and a boxed service, to each request.
fn auth_routes(prefix: &str) -> Router<AppState> {
    let at = |path: &str| format!("{prefix}{path}");
    Router::new()
        .route(&at("/register"), post(auth::register))
        .route(&at("/login"), post(auth::login_form))
        .route(&at("/login/json"), post(auth::login_json))
        .route(&at("/token"), post(oauth::token))
        .route(&at("/refresh"), post(auth::refresh))
        .route(&at("/logout"), post(auth::logout))
        .route(&at("/me"), get(account::me).patch(account::update_me))
        .route(&at("/change-password"), post(account::change_password))
        .route(&at("/sessions"), get(account::list_sessions))
        .route(&at("/sessions/{id}"), delete(account::delete_session))
        .route(&at("/events"), get(account::list_events))
        .route(&at("/forgot-password"), post(links::forgot_password))
        .route(&at("/reset-password"), post(links::reset_password))
        .route(&at("/verify-email"), post(links::verify_email))
        .route(
            &at("/verify-email/resend"),
            post(links::resend_verification),
        )
        .route(&at("/send-verification"), post(links::send_verification))
        .route(&at("/mfa"), get(mfa::status))
        .route(&at("/mfa/verify"), post(mfa::verify))
        .route(&at("/mfa/passkey/options"), post(mfa::passkey_options))
        .route(&at("/mfa/totp/setup"), post(mfa::setup))
        .route(&at("/mfa/totp/confirm"), post(mfa::confirm))
        .route(&at("/mfa/totp/disable"), post(mfa::disable))
        .route(&at("/mfa/recovery-codes"), post(mfa::recovery_codes))
        .route(
            &at("/passkeys/register/options"),
            post(passkeys::passkey_register_options),
        )
        .route(&at("/passkeys/register"), post(passkeys::passkey_register))
        .route(&at("/passkeys"), get(passkeys::list_passkeys))
        .route(
            &at("/passkeys/{id}"),
            patch(passkeys::rename_passkey).delete(passkeys::remove_passkey),
        )
        .route(
            &at("/login/passkey/options"),
            post(passkeys::passkey_sign_in_options),
        )
        .route(&at("/login/passkey"), post(passkeys::passkey_sign_in))
}

/// The pages of SPEC §12 beyond the two the mails link to, served with
/// `PAGES_ENABLED` (when the application asked for them); their paths are
/// [`pages::PAGE_PATHS`].
fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/sign-in", get(pages::sign_in_page))
        .route("/sign-up", get(pages::sign_up_page))
        .route("/forgot-password", get(pages::forgot_password_page))
        .route("/account", get(pages::account_page))
        .route(pages::SCRIPT_PATH, get(pages::script))
}

/// Portcullis's routes and the application's `routes` under one stack of
/// middleware (see [`crate::Portcullis::app`]). In production `/metrics` is
/// left out (it answers 404 like any unknown path): metrics reveal activity,
/// so they are served only by [`metrics`], on a listener of their own.
pub(crate) fn app(state: &AppState, routes: Router<AppState>) -> Router {
    let prefix = &state.config.route_prefix;
    let mut document = openapi::document(&state.config, &state.fields);
    if state.config.production
        && let Some(paths) = document["paths"].as_object_mut()
    {
        // Not served here in production: not described here either.
        paths.remove(METRICS_PATH);
    }
    let mut portcullis_routes = Router::new()
        .merge(auth_routes(prefix))
        .route(
            "/reset-password",
            get(pages::reset_page).post(pages::reset_submit),
        )
        .route(
            "/verify-email",
            get(pages::verify_page).post(pages::verify_submit),
        )
        .route(pages::STYLESHEET_PATH, get(pages::stylesheet))
        .route("/api/users", get(admin::list_users))
        .route(
            "/api/users/{id}",
            get(admin::get_user)
                .patch(admin::update_user)
                .delete(admin::delete_user),
        )
        .route(
            "/api/users/{id}/sessions",
            get(admin::user_sessions).delete(admin::revoke_sessions),
        )
        .route("/api/users/{id}/events", get(admin::user_events))
        .route("/api/users/{id}/mfa", delete(admin::reset_mfa))
        .route("/api/users/{id}/passkeys", get(admin::user_passkeys))
        .route(
            "/api/users/{id}/passkeys/{pid}",
            delete(admin::remove_user_passkey),
        )
        .route(
            "/api/clients",
            get(clients::list_clients).post(clients::create_client),
        )
        .route(
            "/api/clients/{id}",
            get(clients::get_client)
                .patch(clients::update_client)
                .delete(clients::delete_client),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::oauth_authorization_server),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/.well-known/jwks.json", get(ops::jwks))
        .merge(openapi::swagger_ui(document, &format!("{prefix}/login")));
    if !state.config.production {
        portcullis_routes = portcullis_routes.route(METRICS_PATH, get(ops::metrics));
    }
    if state.config.pages.enabled {
        portcullis_routes = portcullis_routes.merge(page_routes());
    }
    let portcullis_routes = portcullis_routes
        // One layer of both: each `Router::layer` call boxes every route again.
        .layer(
            tower::ServiceBuilder::new()
                .layer(middleware::PortcullisDefaultsLayer)
                .layer(DefaultBodyLimit::max(BODY_LIMIT)),
        );
    let router = portcullis_routes
        .merge(routes)
        .fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .with_state(state.clone());
    middleware::wrap(router, &state.config)
}

/// Where the Prometheus metrics are served.
pub const METRICS_PATH: &str = "/metrics";

/// `/metrics` alone, for a listener of its own (`METRICS_ADDR`): every
/// other path answers 404 and other methods 405, in the envelope, with a
/// request id. Nothing else of Portcullis is reachable through it.
pub(crate) fn metrics() -> Router {
    let router = Router::new()
        .route(METRICS_PATH, get(ops::metrics))
        .fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(middleware::PortcullisDefaultsLayer);
    middleware::wrap_ops(router)
}
