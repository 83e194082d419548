//! An application that mounts Portcullis and protects its own route, like the
//! seed's `/profile` with `Depends(get_current_active_user)`.
//!
//! Run it with `cargo run --example profile`, then:
//!
//! ```text
//! curl -X POST localhost:8000/api/auth/register -H 'content-type: application/json' \
//!      -d '{"email":"user@example.com","password":"correct-horse-42","phone":"+41 79 000 00 00"}'
//! curl localhost:8000/profile -H "Authorization: Bearer <access_token>"
//! ```

use std::time::Duration;

use axum::{Router, routing::get};
use portcullis::http::response::{Envelope, UserView};
use portcullis::{ActiveUser, AppState, Config, Portcullis, UserField};

/// The seed's protected route: only an active, authenticated user gets here.
async fn profile(ActiveUser(user): ActiveUser) -> impl axum::response::IntoResponse {
    Envelope::ok(UserView::new(&user).to_json())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    portcullis::telemetry::init(portcullis::config::LogFormat::Pretty);
    let config = Config::from_env()?;
    let bind = config.bind_address();
    let auth = Portcullis::builder(config)
        // FastEdgy's example: an application-defined field on the user.
        .user_field(UserField::string("phone", 20))
        .build()
        .await?;

    // The application's routes and Portcullis's, under one set of request
    // ids, metrics, logs and 404/405 answers.
    let routes: Router<AppState> = Router::new().route("/profile", get(profile));
    let app = auth.app(routes);

    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!("example listening on {}", listener.local_addr()?);
    // Peer addresses for sessions, a deadline for request heads, and a
    // graceful drain on Ctrl-C.
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    portcullis::http::server::serve(listener, app, ctrl_c, Duration::from_secs(10)).await;
    // Let a mail delivery in progress finish, then close the database.
    auth.shutdown(Duration::from_secs(10)).await;
    Ok(())
}
