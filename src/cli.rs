//! The command line: `serve` (the default), `migrate`, `gen-secret`,
//! `gen-key`, the `user` commands ([`user`]) and the `client` commands
//! ([`client`]).

pub mod client;
mod gen_key;
pub mod import;
pub mod user;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::{Portcullis, shutdown_signal};
use crate::config::{Config, ConfigError};
use crate::store::Store;

/// Email/password JWT authentication server.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server on HOST:PORT (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print a new random secret for SECRET_KEY.
    GenSecret,
    /// Write a new key pair (PEM) for ALGORITHM=EdDSA, ES256 or RS256.
    GenKey(gen_key::GenKeyArgs),
    /// Manage users in the configured database (works while servers run).
    User(user::UserArgs),
    /// Manage the applications that sign in with Portcullis (works while servers run).
    Client(client::ClientArgs),
}

/// How long in-flight requests may take to finish after SIGTERM/SIGINT.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long background work (a mail delivery in progress, work queued after
/// responses) may take to finish at shutdown.
const TASK_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Exit status for bad configuration.
const EXIT_CONFIG: u8 = 2;

/// Parses the arguments and runs; the process's exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::GenSecret => {
            println!("{}", crate::config::generate_secret());
            ExitCode::SUCCESS
        }
        Command::GenKey(args) => gen_key::run(args),
        Command::Serve => with_config(|config| async move { serve(config).await }),
        Command::User(args) => user::main(args),
        Command::Client(args) => client::main(args),
        Command::Migrate => with_config(|config| async move {
            let store = Store::connect(&config.database_url).await?;
            store.migrate().await?;
            store.close().await;
            tracing::info!("migrations applied");
            Ok(())
        }),
    }
}

fn config_failure(err: &ConfigError) -> ExitCode {
    eprintln!("portcullis: {err}");
    ExitCode::from(EXIT_CONFIG)
}

fn with_config<F, Fut>(run: F) -> ExitCode
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => return config_failure(&err),
    };
    crate::telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("portcullis: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "portcullis stopped");
            eprintln!("portcullis: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether browsers keep a `Secure` cookie for `app_url`: https, or plain
/// http on `localhost` or a loopback address.
fn app_url_is_secure(app_url: &str) -> bool {
    let Some(rest) = app_url.strip_prefix("http://") else {
        return true;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Runs the server until SIGTERM or SIGINT, then drains and closes the
/// database. With `METRICS_ADDR`, a second listener serves `/metrics` alone
/// and stops on the same signal.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    if config.secret_generated {
        tracing::warn!(
            path = %config.data_dir.join("secret.key").display(),
            "SECRET_KEY is not set: using a generated development secret; set SECRET_KEY in production"
        );
    }
    if config.mfa.key_generated {
        tracing::warn!(
            path = %config.data_dir.join("mfa.key").display(),
            "MFA_ENCRYPTION_KEY is not set: using a generated development key; set MFA_ENCRYPTION_KEY in production"
        );
    }
    if let Some(path) = config
        .asymmetric_keys
        .as_ref()
        .and_then(|keys| keys.generated_into())
    {
        tracing::warn!(
            path = %path.display(),
            "PRIVATE_KEY_FILE is not set: signing with a development key pair generated into the data directory; set PRIVATE_KEY_FILE in production (portcullis gen-key)"
        );
    }
    let bind = config.bind_address();
    let metrics_addr = config.metrics_addr;
    let production = config.production;
    if config.pages.enabled && !app_url_is_secure(&config.app_url) {
        tracing::warn!(
            app_url = %config.app_url,
            "APP_URL is plain http on a host other than localhost: the pages need HTTPS (the refresh cookie is Secure, so browsers drop it)"
        );
    }
    let pages = config.pages.enabled;
    let auth = Portcullis::builder(config).pages(pages).build().await?;
    let app = auth.router();
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
    let metrics_listener = match metrics_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("METRICS_ADDR: cannot listen on {addr}: {e}"))?,
        ),
        None => None,
    };
    let local = listener.local_addr()?;

    // One signal stops both listeners.
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing requests in flight");
            stop.cancel();
        }
    });
    let metrics_server = match metrics_listener {
        Some(metrics_listener) => {
            let metrics_local = metrics_listener.local_addr()?;
            tracing::info!(
                metrics_address = %metrics_local,
                "metrics served on http://{metrics_local}/metrics"
            );
            Some(tokio::spawn(crate::http::server::serve(
                metrics_listener,
                auth.metrics_router(),
                stop.clone().cancelled_owned(),
                DRAIN_TIMEOUT,
            )))
        }
        None if production => {
            tracing::info!(
                "METRICS_ADDR is not set: /metrics is not served (in production it is served only on METRICS_ADDR)"
            );
            None
        }
        None => None,
    };
    tracing::info!(address = %local, "portcullis listening on {local}");

    if !crate::http::server::serve(listener, app, stop.clone().cancelled_owned(), DRAIN_TIMEOUT)
        .await
    {
        tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    if let Some(metrics_server) = metrics_server {
        let _ = metrics_server.await;
    }
    tracing::info!("shutting down: waiting for background work (mail deliveries in flight)");
    if !auth.shutdown(TASK_DRAIN_TIMEOUT).await {
        tracing::warn!(
            "background work was still running after {TASK_DRAIN_TIMEOUT:?}; a mail delivery cut off is retried after the next start"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::app_url_is_secure;

    #[test]
    fn plain_http_is_only_fine_on_localhost() {
        for ok in [
            "https://auth.example.com",
            "http://localhost:8000",
            "http://LOCALHOST",
            "http://app.localhost:3000/x",
            "http://127.0.0.1:8000",
            "http://[::1]:8000",
        ] {
            assert!(app_url_is_secure(ok), "{ok}");
        }
        for warn in [
            "http://auth.example.com",
            "http://10.0.0.5:8000",
            "http://localhost.example.com",
        ] {
            assert!(!app_url_is_secure(warn), "{warn}");
        }
    }
}
