//! A hello-world axum server: the baseline that `bench/run.sh` measures
//! Portcullis against on the same machine, in the same run.

use axum::{Json, Router, routing::get};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8001".into());
    let app = Router::new().route(
        "/",
        get(|| async { Json(serde_json::json!({"success": true, "data": "hello"})) }),
    );
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, app).await
}
