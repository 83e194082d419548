//! An application that mounts Portcullis and protects its own route, like the
//! seeds' `/profile` with `Depends(get_current_active_user)`. The README's
//! "Embedding the library" section shows this file as it is (a test keeps
//! them equal).
//!
//! Run it with `cargo run --example profile`, then:
//!
//! ```text
//! curl -X POST localhost:8000/api/auth/register -H 'content-type: application/json' \
//!      -d '{"email":"user@example.com","password":"correct-horse-42","phone":"+41 79 000 00 00"}'
//! curl localhost:8000/profile -H "Authorization: Bearer <access_token>"
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::{Router, routing::get};
use portcullis::{ActiveUser, AppState, Config, Envelope, Error, Portcullis, UserField};
use serde_json::{Value, json};

/// The application's own state, with Portcullis's inside it.
#[derive(Clone)]
struct App {
    auth: AppState,
    greeting: Arc<str>,
}

/// Lets Portcullis's extractors find their state inside `App`.
impl FromRef<App> for AppState {
    fn from_ref(app: &App) -> AppState {
        app.auth.clone()
    }
}

/// Only an active, authenticated user gets here; the answer is in the same
/// `{"success": true, "data": …}` envelope as Portcullis's own, and a
/// `portcullis::Error` becomes `{"success": false, "error": …}`.
async fn profile(
    State(app): State<App>,
    ActiveUser(user): ActiveUser,
) -> Result<Envelope<Value>, Error> {
    let Some(phone) = user.field("phone") else {
        return Err(Error::NotFound); // 404 NOT_FOUND in the envelope
    };
    Ok(Envelope::ok(json!({
        "greeting": format!("{}, {}", app.greeting, user.email),
        "phone": phone, // an application-defined user field
    })))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    portcullis::telemetry::init(config.log_format); // LOG_FORMAT, RUST_LOG
    let bind = config.bind_address(); // HOST:PORT
    let auth = Portcullis::builder(config)
        .user_field(UserField::string("phone", 20)) // accepted at /register and PATCH /me
        .build()
        .await?;

    let app = App {
        auth: auth.state(),
        greeting: "Hello".into(),
    };
    let routes = Router::new()
        .route("/profile", get(profile))
        .with_state(app);
    // Your routes beside Portcullis's, under one set of request ids,
    // metrics, logs and 404/405 answers.
    let service = auth.app(routes);

    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!("listening on {}", listener.local_addr()?);
    // Peer IPs for sessions, a deadline for request heads, and a graceful
    // drain on SIGINT or SIGTERM.
    let drain = Duration::from_secs(10);
    portcullis::http::server::serve(listener, service, portcullis::shutdown_signal(), drain).await;
    // Finish background work (a mail delivery in flight), then close the database.
    auth.shutdown(drain).await;
    Ok(())
}
