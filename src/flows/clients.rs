//! Registering the clients of Sign in with Portcullis (SPEC §13): the rules
//! that `portcullis client …` and the superusers' `/api/clients` share.
//!
//! - A `client_id` is random and opaque (128 bits, base64url). A
//!   confidential client gets a `client_secret` of 256 bits, returned by
//!   [`create_client`] only; the database keeps its SHA-256 (a hash is
//!   enough for a secret this long: there is nothing to guess).
//! - Redirect URIs are checked as `domain::oauth_client` says; a problem
//!   is 422 `VALIDATION_ERROR` naming the field, as every other input.
//! - Whether a client is confidential is fixed at creation (a public
//!   client has no secret to keep; register a new client instead).
//! - Creation and deletion are recorded (`client_created`,
//!   `client_deleted`) naming the actor, in the transaction that makes them.
//! - Nothing about clients is cached by servers: every use reads the
//!   database, so a client deleted by the CLI is gone for every running
//!   instance at once.

use super::{Flows, reject_if_any};
use crate::domain::{OAuthClient, check_client_name, check_redirect_uris};
use crate::error::{Error, FieldError, Result};
use crate::random::{one_time_token, random_id};
use crate::store::{Actor, ClientChanges, NewClient, Store};

/// What a new client is registered with.
#[derive(Debug, Clone, Default)]
pub struct ClientRegistration {
    /// Its name.
    pub name: String,
    /// Where authorization answers may go (at least one).
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may go.
    pub post_logout_redirect_uris: Vec<String>,
    /// Whether it authenticates with a secret.
    pub confidential: bool,
    /// Whether it skips consent.
    pub first_party: bool,
}

/// A change to a client: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ClientUpdate {
    /// A new name.
    pub name: Option<String>,
    /// New redirect URIs (replacing the list).
    pub redirect_uris: Option<Vec<String>>,
    /// New post-logout redirect URIs (replacing the list).
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Must equal the client's: it cannot change.
    pub confidential: Option<bool>,
    /// Whether it skips consent.
    pub first_party: Option<bool>,
}

/// A client just registered, with its secret: the only time it is known.
#[derive(Debug, Clone)]
pub struct CreatedClient {
    /// The client as stored.
    pub client: OAuthClient,
    /// The `client_secret` of a confidential client, shown once.
    pub client_secret: Option<String>,
}

/// Registers a client (see the module's rules).
pub async fn create_client(
    store: &Store,
    registration: &ClientRegistration,
    actor: &Actor<'_>,
) -> Result<CreatedClient> {
    let public = !registration.confidential;
    let mut errors: Vec<FieldError> = Vec::new();
    let name = check_client_name(&registration.name, "name")
        .map_err(|e| errors.push(e))
        .ok();
    errors.extend(check_redirect_uris(
        &registration.redirect_uris,
        public,
        "redirect_uris",
        true,
    ));
    errors.extend(check_redirect_uris(
        &registration.post_logout_redirect_uris,
        public,
        "post_logout_redirect_uris",
        false,
    ));
    reject_if_any(errors)?;
    let name = name.ok_or_else(|| Error::internal(anyhow::anyhow!("name checked")))?;
    let client_id = random_id();
    let secret = registration.confidential.then(one_time_token);
    let client = store
        .insert_client(
            &NewClient {
                client_id: &client_id,
                name: &name,
                secret: secret.as_deref(),
                redirect_uris: &registration.redirect_uris,
                post_logout_redirect_uris: &registration.post_logout_redirect_uris,
                first_party: registration.first_party,
            },
            actor,
        )
        .await?;
    Ok(CreatedClient {
        client,
        client_secret: secret,
    })
}

/// Every registered client, oldest first.
pub async fn list_clients(store: &Store) -> Result<Vec<OAuthClient>> {
    store.list_clients().await
}

/// The client `client_id`; 404 `NOT_FOUND` if there is none.
pub async fn get_client(store: &Store, client_id: &str) -> Result<OAuthClient> {
    store.client_by_id(client_id).await?.ok_or(Error::NotFound)
}

/// Changes client `client_id`; the client as changed. 404 if there is none.
pub async fn update_client(
    store: &Store,
    client_id: &str,
    update: &ClientUpdate,
) -> Result<OAuthClient> {
    let current = get_client(store, client_id).await?;
    let public = !current.confidential;
    let mut errors: Vec<FieldError> = Vec::new();
    let name = match &update.name {
        Some(raw) => check_client_name(raw, "name")
            .map_err(|e| errors.push(e))
            .ok(),
        None => None,
    };
    if let Some(list) = &update.redirect_uris {
        errors.extend(check_redirect_uris(list, public, "redirect_uris", true));
    }
    if let Some(list) = &update.post_logout_redirect_uris {
        errors.extend(check_redirect_uris(
            list,
            public,
            "post_logout_redirect_uris",
            false,
        ));
    }
    if update
        .confidential
        .is_some_and(|c| c != current.confidential)
    {
        errors.push(FieldError::new(
            "confidential",
            "Cannot be changed; register a new client instead",
        ));
    }
    reject_if_any(errors)?;
    let changes = ClientChanges {
        name,
        redirect_uris: update.redirect_uris.clone(),
        post_logout_redirect_uris: update.post_logout_redirect_uris.clone(),
        first_party: update.first_party,
    };
    store
        .update_client(client_id, &changes)
        .await?
        .ok_or(Error::NotFound)
}

/// Deletes client `client_id`; 404 if there is none.
pub async fn delete_client(store: &Store, client_id: &str, actor: &Actor<'_>) -> Result<()> {
    if store.delete_client(client_id, actor).await? {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

impl Flows {
    /// [`create_client`] on this server's database.
    pub async fn create_client(
        &self,
        registration: &ClientRegistration,
        actor: &Actor<'_>,
    ) -> Result<CreatedClient> {
        create_client(&self.store, registration, actor).await
    }

    /// [`list_clients`] on this server's database.
    pub async fn list_clients(&self) -> Result<Vec<OAuthClient>> {
        list_clients(&self.store).await
    }

    /// [`get_client`] on this server's database.
    pub async fn get_client(&self, client_id: &str) -> Result<OAuthClient> {
        get_client(&self.store, client_id).await
    }

    /// [`update_client`] on this server's database.
    pub async fn update_client(
        &self,
        client_id: &str,
        update: &ClientUpdate,
    ) -> Result<OAuthClient> {
        update_client(&self.store, client_id, update).await
    }

    /// [`delete_client`] on this server's database.
    pub async fn delete_client(&self, client_id: &str, actor: &Actor<'_>) -> Result<()> {
        delete_client(&self.store, client_id, actor).await
    }
}
