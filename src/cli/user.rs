//! `portcullis user …`: what an operator does to accounts from a shell,
//! on the configured database directly (SPEC §1). Servers may be running:
//! every change is a transaction of its own, and what it revokes (sessions
//! of a deactivated or deleted user, or revoked outright) is refused by
//! every instance on its next request.
//!
//! A command that cannot do what it was asked (an unknown e-mail, a taken
//! one, a weak password, a bad import line) exits 1 saying why; bad
//! configuration exits 2, as `serve` does. Each change is recorded in the
//! user's security events with `"via": "cli"`.
//!
//! To add a command: a variant of [`UserCommand`] (its doc comment is its
//! `--help`), an arm in [`run`], and a function here taking the store.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::config::Config;
use crate::domain::{DisplayName, EmailAddress, SecurityEvent};
use crate::fields::ExtraFields;
use crate::password::{HashPolicy, NewPassword, hash_password};
use crate::store::{Actor, CreateUserError, NewUser, Store, User, UserChanges};

/// `portcullis user <command>`.
#[derive(Debug, Args)]
#[command(
    about = "Manage users in the configured database (DATABASE_URL); works while servers run",
    long_about = "Manage users in the configured database (DATABASE_URL, read from the environment \
                  and .env like `serve`). Works while servers run: deactivation, deletion and \
                  revoked sessions hold on every instance at once. Exits 1 when the command cannot \
                  do what it was asked (e.g. an unknown e-mail), 2 on bad configuration."
)]
pub struct UserArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: UserCommand,
}

/// The `user` commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user and print their id. The password is asked twice on a
    /// terminal (not echoed), else read from the first line of standard
    /// input; registration's password policy applies.
    Create {
        /// The e-mail address (exits 1 if it is taken).
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Make the user a superuser (may use the admin API).
        #[arg(long)]
        superuser: bool,
        /// Mark the e-mail address as verified.
        #[arg(long)]
        verified: bool,
    },
    /// Activate (true) or deactivate (false) a user. Deactivation revokes
    /// every session and voids reset and verification links.
    SetActive {
        /// The user's e-mail address.
        email: String,
        /// `true` or `false`.
        #[arg(action = clap::ArgAction::Set)]
        active: bool,
    },
    /// Delete a user, revoking every session.
    Delete {
        /// The user's e-mail address.
        email: String,
    },
    /// Revoke every session of a user (they must log in again).
    RevokeSessions {
        /// The user's e-mail address.
        email: String,
    },
    /// Remove a user's second factor (TOTP and recovery codes), revoking
    /// every session; the owner's mail is queued for a running server to send.
    ResetMfa {
        /// The user's e-mail address.
        email: String,
    },
    /// Import users from JSON lines: one object a line,
    /// {"email", "name"?, "password_hash", "is_active"?, "is_verified"?,
    /// "is_superuser"?, "created_at"?}, with bcrypt ($2a$, $2b$, $2y$) or
    /// argon2 PHC hashes. The whole input is checked first: if any line is
    /// bad, each bad line is reported and nothing is written (exit 1).
    Import {
        /// The file to read, or `-` for standard input.
        file: String,
    },
}

/// Runs a `user` command: its exit status.
pub fn main(args: UserArgs) -> ExitCode {
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

/// Connects to the database (migrating it, so that the first admin can be
/// created before the first `serve`) and runs `command`.
pub async fn run(config: Config, command: UserCommand) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let outcome = match command {
        UserCommand::Create {
            email,
            name,
            superuser,
            verified,
        } => {
            create(
                &store,
                &config,
                &email,
                name.as_deref(),
                superuser,
                verified,
            )
            .await
        }
        UserCommand::SetActive { email, active } => set_active(&store, &email, active).await,
        UserCommand::Delete { email } => delete(&store, &email).await,
        UserCommand::RevokeSessions { email } => revoke_sessions(&store, &email).await,
        UserCommand::ResetMfa { email } => reset_mfa(&store, &config, &email).await,
        UserCommand::Import { file } => super::import::import(&store, &file).await,
    };
    store.close().await;
    outcome
}

/// The user with `email`, or an error that says there is none.
async fn existing(store: &Store, email: &str) -> anyhow::Result<User> {
    match store.user_by_email(email).await? {
        Some(record) => Ok(record.user),
        None => anyhow::bail!("no user with e-mail {}", email.trim()),
    }
}

/// The password of `user create`: asked twice without echo on a terminal,
/// else the first line of standard input (without its line ending).
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let term = console::Term::stderr();
        term.write_str("Password: ")?;
        let first = term.read_secure_line()?;
        term.write_str("Password (again): ")?;
        let second = term.read_secure_line()?;
        if first != second {
            anyhow::bail!("the passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(line.strip_suffix('\r').unwrap_or(line).to_string())
}

async fn create(
    store: &Store,
    config: &Config,
    email: &str,
    name: Option<&str>,
    superuser: bool,
    verified: bool,
) -> anyhow::Result<()> {
    let email = EmailAddress::parse(email, "email")
        .map_err(|e| anyhow::anyhow!("--email: {}", e.message))?;
    let name =
        DisplayName::parse(name, "name").map_err(|e| anyhow::anyhow!("--name: {}", e.message))?;
    if store.user_by_email(email.as_str()).await?.is_some() {
        anyhow::bail!("a user with e-mail {} exists already", email.as_str());
    }
    let raw = tokio::task::spawn_blocking(read_password).await??;
    let password = NewPassword::parse(&raw, Some(email.as_str()), &config.password, "password")
        .map_err(|e| anyhow::anyhow!("password: {}", e.message))?;
    let policy = HashPolicy::from_config(&config.password);
    let hash =
        tokio::task::spawn_blocking(move || hash_password(password.expose(), policy)).await??;
    let extra = ExtraFields::new();
    let new = NewUser {
        email: email.as_str(),
        name: name.as_deref(),
        password_hash: &hash,
        is_active: true,
        is_verified: verified,
        is_superuser: superuser,
        extra: &extra,
        created_at: None,
    };
    let user = match store.create_user(&new).await {
        Ok(user) => user,
        Err(CreateUserError::EmailTaken) => {
            anyhow::bail!("a user with e-mail {} exists already", email.as_str())
        }
        Err(CreateUserError::Other(e)) => return Err(e.into()),
    };
    let details = json!({ "is_superuser": superuser, "is_verified": verified });
    store
        .record_event_by(
            Some(user.id),
            SecurityEvent::UserCreated,
            &Actor::Cli,
            Some(&details),
        )
        .await?;
    println!("{}", user.id);
    Ok(())
}

async fn set_active(store: &Store, email: &str, active: bool) -> anyhow::Result<()> {
    let user = existing(store, email).await?;
    let changes = UserChanges {
        is_active: Some(active),
        ..UserChanges::default()
    };
    if store
        .update_user(user.id, &changes, &Actor::Cli)
        .await?
        .is_none()
    {
        anyhow::bail!("no user with e-mail {}", user.email);
    }
    if active {
        println!("{} is active", user.email);
    } else {
        println!("{} is deactivated; their sessions are revoked", user.email);
    }
    Ok(())
}

async fn delete(store: &Store, email: &str) -> anyhow::Result<()> {
    let user = existing(store, email).await?;
    let Some(change) = store.delete_user(user.id, &Actor::Cli).await? else {
        anyhow::bail!("no user with e-mail {}", user.email);
    };
    println!(
        "{} is deleted; {} session(s) revoked",
        user.email, change.sessions_revoked
    );
    Ok(())
}

async fn revoke_sessions(store: &Store, email: &str) -> anyhow::Result<()> {
    let user = existing(store, email).await?;
    let Some(revoked) = store.revoke_sessions_of(user.id, &Actor::Cli).await? else {
        anyhow::bail!("no user with e-mail {}", user.email);
    };
    println!("revoked {revoked} session(s) of {}", user.email);
    Ok(())
}

async fn reset_mfa(store: &Store, config: &Config, email: &str) -> anyhow::Result<()> {
    let user = existing(store, email).await?;
    match crate::flows::remove_second_factor(store, config, user.id, &Actor::Cli).await {
        Ok(_) => {
            println!(
                "the second factor of {} is removed; their sessions are revoked",
                user.email
            );
            Ok(())
        }
        Err(crate::Error::MfaNotEnabled) => {
            anyhow::bail!("{} has no second factor", user.email)
        }
        Err(crate::Error::NotFound) => anyhow::bail!("no user with e-mail {}", user.email),
        Err(e) => Err(e.into()),
    }
}
