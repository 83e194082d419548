//! Handlers of `/api/clients` (SPEC §13, superusers only): registering the
//! applications that sign people in with Portcullis. The rules are in
//! [`flows::clients`](crate::flows::clients); these parse, call one flow
//! and render.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::body::JsonBody;
use super::extract::Superuser;
use super::openapi::answers::{Busy, Invalid, NotSuperuser, Unauthenticated};
use super::response::{Envelope, rfc3339};
use crate::domain::{ClientInfo, OAuthClient};
use crate::error::{Error, ErrorEnvelope, Result};
use crate::flows::{ClientRegistration, ClientUpdate};
use crate::store::Actor;

/// `POST /api/clients` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientBody {
    /// The application's name, 1 to 100 characters.
    name: String,
    /// Where authorization answers may be sent (1 to 20): `https`, `http`
    /// on loopback, or (public clients) a reverse-domain private-use scheme;
    /// no fragment. Matched exactly; a public client's
    /// `http://127.0.0.1/…` or `http://[::1]/…` without a port matches any port.
    redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser (matched exactly).
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    /// A server-side application with a secret (default `false`: public,
    /// PKCE only). Fixed at creation.
    #[serde(default)]
    confidential: bool,
    /// The operator's own application: no consent page (default `false`).
    #[serde(default)]
    first_party: bool,
}

/// `PATCH /api/clients/{id}` body: any of the keys; those left out stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientChangesBody {
    /// A new name.
    name: Option<String>,
    /// New redirect URIs (replace the list).
    redirect_uris: Option<Vec<String>>,
    /// New post-logout redirect URIs (replace the list).
    post_logout_redirect_uris: Option<Vec<String>>,
    /// Must equal the client's (it cannot change: 422 otherwise).
    confidential: Option<bool>,
    /// Whether it skips the consent page.
    first_party: Option<bool>,
}

/// A registered client (never its secret).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OAuthClient)]
pub struct ClientView {
    /// The client's id.
    client_id: String,
    /// Its name.
    name: String,
    /// Its redirect URIs.
    redirect_uris: Vec<String>,
    /// Its post-logout redirect URIs.
    post_logout_redirect_uris: Vec<String>,
    /// Whether it authenticates with a secret.
    confidential: bool,
    /// Whether it skips the consent page.
    first_party: bool,
    /// When it was registered (RFC 3339, UTC).
    created_at: String,
    /// When it was last changed (RFC 3339, UTC).
    updated_at: String,
}

impl ClientView {
    fn new(client: &OAuthClient) -> Self {
        Self {
            client_id: client.client_id.clone(),
            name: client.name.clone(),
            redirect_uris: client.redirect_uris.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
            confidential: client.confidential,
            first_party: client.first_party,
            created_at: rfc3339(client.created_at),
            updated_at: rfc3339(client.updated_at),
        }
    }
}

/// A client just registered: the client, and a confidential client's secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedClientView {
    /// The client.
    #[serde(flatten)]
    client: ClientView,
    /// The secret of a confidential client (`null` for a public one), shown
    /// this once: only its hash is kept.
    client_secret: Option<String>,
}

/// What a deletion did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientDeleted {
    /// What happened.
    message: &'static str,
}

/// The id in the path; any that does not parse is an unknown one.
fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String> {
    id.map(|Path(id)| id).map_err(|_| Error::NotFound)
}

/// List the clients.
#[utoipa::path(get, path = "/api/clients", tag = "clients",
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "Every client, oldest first (no secrets)", body = Envelope<Vec<ClientView>>),
        Unauthenticated, NotSuperuser, Busy,
    ))]
pub async fn list_clients(
    State(state): State<AppState>,
    Superuser(_admin): Superuser,
) -> Result<Response> {
    let all = state.flows.list_clients().await?;
    let views: Vec<ClientView> = all.iter().map(ClientView::new).collect();
    Ok(Envelope::ok(views).into_response())
}

/// Register a client.
///
/// A confidential client's `client_secret` is in this answer only. Recorded
/// as `client_created` on the acting superuser's trail.
#[utoipa::path(post, path = "/api/clients", tag = "clients",
    request_body = NewClientBody,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 201, description = "Registered", body = Envelope<CreatedClientView>),
        Unauthenticated, NotSuperuser, Invalid, Busy,
    ))]
pub async fn create_client(
    State(state): State<AppState>,
    client: ClientInfo,
    Superuser(admin): Superuser,
    JsonBody(body): JsonBody<NewClientBody>,
) -> Result<Response> {
    let registration = ClientRegistration {
        name: body.name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        confidential: body.confidential,
        first_party: body.first_party,
    };
    let actor = Actor::Admin {
        id: admin.id,
        client: &client,
    };
    let created = state.flows.create_client(&registration, &actor).await?;
    Ok(Envelope::created(CreatedClientView {
        client: ClientView::new(&created.client),
        client_secret: created.client_secret,
    })
    .into_response())
}

/// Read a client.
#[utoipa::path(get, path = "/api/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client_id")),
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The client (no secret)", body = Envelope<ClientView>),
        (status = 404, description = "NOT_FOUND: no client with this id", body = ErrorEnvelope),
        Unauthenticated, NotSuperuser, Busy,
    ))]
pub async fn get_client(
    State(state): State<AppState>,
    Superuser(_admin): Superuser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let found = state.flows.get_client(&path_id(id)?).await?;
    Ok(Envelope::ok(ClientView::new(&found)).into_response())
}

/// Change a client.
#[utoipa::path(patch, path = "/api/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client_id")),
    request_body = ClientChangesBody,
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "The client as changed", body = Envelope<ClientView>),
        (status = 404, description = "NOT_FOUND: no client with this id", body = ErrorEnvelope),
        Unauthenticated, NotSuperuser, Invalid, Busy,
    ))]
pub async fn update_client(
    State(state): State<AppState>,
    Superuser(_admin): Superuser,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<ClientChangesBody>,
) -> Result<Response> {
    let update = ClientUpdate {
        name: body.name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        confidential: body.confidential,
        first_party: body.first_party,
    };
    let changed = state.flows.update_client(&path_id(id)?, &update).await?;
    Ok(Envelope::ok(ClientView::new(&changed)).into_response())
}

/// Delete a client.
///
/// Recorded as `client_deleted` on the acting superuser's trail.
#[utoipa::path(delete, path = "/api/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client_id")),
    security(("OAuth2PasswordBearer" = []), ("BearerAuth" = [])),
    responses(
        (status = 200, description = "Deleted", body = Envelope<ClientDeleted>),
        (status = 404, description = "NOT_FOUND: no client with this id", body = ErrorEnvelope),
        Unauthenticated, NotSuperuser, Busy,
    ))]
pub async fn delete_client(
    State(state): State<AppState>,
    client: ClientInfo,
    Superuser(admin): Superuser,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let actor = Actor::Admin {
        id: admin.id,
        client: &client,
    };
    state.flows.delete_client(&path_id(id)?, &actor).await?;
    Ok(Envelope::ok(ClientDeleted {
        message: "Client deleted",
    })
    .into_response())
}
