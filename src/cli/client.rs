//! `portcullis client …`: registering the applications that sign people in
//! with Portcullis (SPEC §13), on the configured database directly, through
//! the same flows as `/api/clients`. Servers may be running: they cache
//! nothing about clients, so a deletion holds for every instance at once.
//!
//! A command that cannot do what it was asked (an invalid redirect URI, an
//! unknown client id) exits 1 saying why; bad configuration exits 2.
//! Creation and deletion are recorded with `"via": "cli"`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::Config;
use crate::domain::OAuthClient;
use crate::error::Error;
use crate::flows::ClientRegistration;
use crate::flows::clients;
use crate::store::{Actor, Store};

/// `portcullis client <command>`.
#[derive(Debug, Args)]
#[command(
    about = "Manage the applications that sign in with Portcullis (OpenID Connect clients)",
    long_about = "Manage the applications that sign in with Portcullis (OpenID Connect clients) \
                  in the configured database (DATABASE_URL). Works while servers run. Exits 1 \
                  when the command cannot do what it was asked, 2 on bad configuration."
)]
pub struct ClientArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ClientCommand,
}

/// The `client` commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints `client_id: …` and, for a confidential
    /// client, `client_secret: …` (shown this once: only its hash is kept).
    Create {
        /// The application's name.
        #[arg(long)]
        name: String,
        /// A redirect URI (repeat for more; at least one). Matched exactly;
        /// a public client's http://127.0.0.1/… or http://[::1]/… without a
        /// port matches any port.
        #[arg(long = "redirect-uri", required = true, num_args = 1..)]
        redirect_uris: Vec<String>,
        /// A server-side application that keeps a secret.
        #[arg(long)]
        confidential: bool,
        /// The operator's own application: no consent page.
        #[arg(long)]
        first_party: bool,
        /// Where RP-initiated logout may send the browser (repeatable).
        #[arg(long = "post-logout-redirect-uri", num_args = 1..)]
        post_logout_redirect_uris: Vec<String>,
    },
    /// List the clients: id, kind, name and redirect URIs, one a line.
    List,
    /// Delete a client.
    Delete {
        /// The client's id.
        id: String,
    },
}

/// Runs a `client` command: its exit status.
pub fn main(args: ClientArgs) -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => return super::config_failure(&err),
    };
    crate::telemetry::init_with_default(config.log_format, "info,sqlx=error,tower_http=warn");
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
    match runtime.block_on(run(config, args.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("portcullis: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// An error of the flows as a sentence for the shell (validation errors
/// list each field's problem).
fn explain(err: Error) -> anyhow::Error {
    match err {
        Error::Validation(fields) => {
            let lines: Vec<String> = fields
                .iter()
                .map(|f| format!("--{}: {}", option_of(&f.field), f.message))
                .collect();
            anyhow::anyhow!("{}", lines.join("; "))
        }
        Error::NotFound => anyhow::anyhow!("no such client"),
        other => anyhow::Error::new(other),
    }
}

/// The command-line option that carries a flow's field.
fn option_of(field: &str) -> &str {
    match field {
        "redirect_uris" => "redirect-uri",
        "post_logout_redirect_uris" => "post-logout-redirect-uri",
        other => other,
    }
}

/// One line of `client list`.
fn list_line(client: &OAuthClient) -> String {
    let kind = if client.confidential {
        "confidential"
    } else {
        "public"
    };
    let party = if client.first_party {
        " first-party"
    } else {
        ""
    };
    format!(
        "{}\t{kind}{party}\t{}\t{}",
        client.client_id,
        client.name,
        client.redirect_uris.join(" ")
    )
}

/// Connects to the database (migrating it) and runs `command`.
pub async fn run(config: Config, command: ClientCommand) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let outcome = match command {
        ClientCommand::Create {
            name,
            redirect_uris,
            confidential,
            first_party,
            post_logout_redirect_uris,
        } => {
            let registration = ClientRegistration {
                name,
                redirect_uris,
                post_logout_redirect_uris,
                confidential,
                first_party,
            };
            clients::create_client(&store, &registration, &Actor::Cli)
                .await
                .map(|created| {
                    println!("client_id: {}", created.client.client_id);
                    if let Some(secret) = created.client_secret {
                        println!("client_secret: {secret}");
                    }
                })
                .map_err(explain)
        }
        ClientCommand::List => clients::list_clients(&store)
            .await
            .map(|all| {
                for client in &all {
                    println!("{}", list_line(client));
                }
            })
            .map_err(explain),
        ClientCommand::Delete { id } => clients::delete_client(&store, &id, &Actor::Cli)
            .await
            .map(|()| println!("client {id} deleted"))
            .map_err(explain),
    };
    store.close().await;
    outcome
}
