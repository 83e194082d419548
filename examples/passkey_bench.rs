//! The load generator of `bench/run.sh`'s passkey rows (issue #18): what a
//! passkey sign-in costs against a password sign-in, side by side in one
//! run against one server.
//!
//! It registers `USERS` users through the API, each with one passkey of its
//! own software authenticator (webauthn-authenticator-rs's `SoftPasskey`,
//! as the tests use it), then for `DURATION` each:
//!
//! - password sign-ins: `POST /login/json`, `CONCURRENCY` clients;
//! - passkey sign-ins: `POST /login/passkey/options` `{"email"}`, the
//!   authenticator's signature, `POST /login/passkey`: a fresh ceremony
//!   every time, two requests per sign-in; `CONCURRENCY` clients, each
//!   signing in its own users (a passkey's counter grows one use at a time).
//!
//! It prints `key=value` lines: sign-ins per second, the requests per
//! second behind them, the p99 of a whole sign-in, refusals, and the ratio.
//! The authenticator signs on the same cores as the server works, as a
//! browser would not: the passkey figure is a floor.
//!
//! With `SERVER_PID` (Linux), it also prints the server's CPU time per
//! sign-in of each kind (from `/proc/PID/stat`): a figure that moves less
//! than requests per second on a shared machine.
//!
//! The server needs `WEBAUTHN_RP_ID=localhost`, `ORIGIN` among its
//! `WEBAUTHN_ORIGINS` and, to measure work rather than the limits,
//! `RATE_LIMIT_ENABLED=false`.
//!
//! ```text
//! BASE_URL=http://127.0.0.1:18006 USERS=64 CONCURRENCY=64 DURATION=10s \
//!     cargo run --release --example passkey_bench
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url, WebauthnAuthenticator,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// The password of every bench user.
const PASSWORD: &str = "bench-password-42";

/// The settings, from the environment.
struct Settings {
    /// The server's root URL.
    base: String,
    /// Its `AUTH_ROUTE_PREFIX`.
    prefix: String,
    /// How many users (each with one passkey).
    users: usize,
    /// Clients at once.
    concurrency: usize,
    /// How long each measurement runs.
    duration: Duration,
    /// The page origin the authenticator is told.
    origin: Url,
    /// The server's process id, to read its CPU time.
    server_pid: Option<u32>,
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        let number = |name: &str, default: &str| {
            var(name, default)
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{name}: a positive whole number"))
        };
        let duration = var("DURATION", "10s");
        let seconds: f64 = duration
            .trim_end_matches('s')
            .parse()
            .map_err(|_| format!("DURATION: seconds, as 10s ({duration:?})"))?;
        let concurrency = number("CONCURRENCY", "64")?;
        let users = number("USERS", "64")?.max(concurrency);
        let origin = var("ORIGIN", "http://localhost:8000");
        Ok(Self {
            base: var("BASE_URL", "http://127.0.0.1:18006"),
            prefix: var("AUTH_ROUTE_PREFIX", "/api/auth"),
            users,
            concurrency,
            duration: Duration::from_secs_f64(seconds),
            origin: Url::parse(&origin).map_err(|e| format!("ORIGIN: {e}"))?,
            server_pid: std::env::var("SERVER_PID")
                .ok()
                .and_then(|p| p.parse().ok()),
        })
    }
}

/// A bench user with its authenticator.
struct BenchUser {
    email: String,
    device: SoftPasskey,
}

/// The HTTP side: one keep-alive client for every task.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    auth: String,
}

impl Api {
    /// `POST {prefix}{path}` with `body` (and `token`): the status and the
    /// answer's `data`.
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<(u16, Value), String> {
        let mut request = self.client.post(format!("{}{path}", self.auth)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let reply = request.send().await.map_err(|e| format!("{path}: {e}"))?;
        let status = reply.status().as_u16();
        let body: Value = reply.json().await.unwrap_or(Value::Null);
        Ok((status, body["data"].clone()))
    }

    /// Like [`Api::post`], but only a 2xx answer's `data`.
    async fn post_ok(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Value, String> {
        match self.post(path, token, body).await? {
            (200..=299, data) => Ok(data),
            (status, _) => Err(format!("{path}: {status}")),
        }
    }
}

/// Registers `email` with a passkey of a new software authenticator.
async fn enrol(api: &Api, origin: &Url, email: String) -> Result<BenchUser, String> {
    let body = json!({"email": email, "password": PASSWORD});
    let registered = api.post_ok("/register", None, &body).await?;
    let token = registered["access_token"]
        .as_str()
        .ok_or("no access_token")?
        .to_string();
    let ceremony = api
        .post_ok(
            "/passkeys/register/options",
            Some(&token),
            &json!({"password": PASSWORD}),
        )
        .await?;
    let mut options = ceremony["options"].clone();
    // The software passkey keeps no discoverable credentials (see
    // tests/passkey_support): sign-ins name the e-mail, so none is needed.
    let selection = &mut options["publicKey"]["authenticatorSelection"];
    selection["residentKey"] = json!("discouraged");
    selection["requireResidentKey"] = json!(false);
    let request: CreationChallengeResponse =
        serde_json::from_value(options).map_err(|e| e.to_string())?;
    let mut device = SoftPasskey::new(true);
    let credential = device
        .do_registration(origin.clone(), request)
        .map_err(|e| format!("the authenticator: {e:?}"))?;
    let body =
        json!({"ceremony_id": ceremony["ceremony_id"], "credential": credential, "name": "Bench"});
    api.post_ok("/passkeys/register", Some(&token), &body)
        .await?;
    Ok(BenchUser { email, device })
}

/// The CPU time (user and system) process `pid` has used, from
/// `/proc/PID/stat` (clock ticks of 10 ms: Linux's `USER_HZ` is 100).
fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// What one client did in a measurement.
#[derive(Default)]
struct Tally {
    /// Sign-ins that opened a session, with how long each took.
    took: Vec<Duration>,
    /// Requests sent.
    requests: u64,
    /// Answers other than 200.
    refused: u64,
}

/// One password sign-in of `user`: whether it opened a session.
async fn password_sign_in(api: &Api, email: &str, tally: &mut Tally) -> Result<bool, String> {
    tally.requests += 1;
    let (status, data) = api
        .post(
            "/login/json",
            None,
            &json!({"email": email, "password": PASSWORD}),
        )
        .await?;
    Ok(status == 200 && data["access_token"].is_string())
}

/// One passkey sign-in of `user`, a fresh ceremony: whether it opened a session.
async fn passkey_sign_in(
    api: &Api,
    origin: &Url,
    user: &mut BenchUser,
    tally: &mut Tally,
) -> Result<bool, String> {
    tally.requests += 1;
    let (status, ceremony) = api
        .post(
            "/login/passkey/options",
            None,
            &json!({"email": user.email}),
        )
        .await?;
    if status != 200 {
        return Ok(false);
    }
    let request: RequestChallengeResponse =
        serde_json::from_value(ceremony["options"].clone()).map_err(|e| e.to_string())?;
    let assertion = user
        .device
        .do_authentication(origin.clone(), request)
        .map_err(|e| format!("the authenticator: {e:?}"))?;
    tally.requests += 1;
    let body = json!({"ceremony_id": ceremony["ceremony_id"], "credential": assertion});
    let (status, data) = api.post("/login/passkey", None, &body).await?;
    Ok(status == 200 && data["access_token"].is_string())
}

/// Which sign-in a measurement runs.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Password,
    Passkey,
}

/// What a measurement found.
struct Figures {
    /// Sign-ins per second.
    sign_ins: f64,
    /// Requests per second.
    requests: f64,
    /// The p99 of a sign-in.
    p99: Duration,
    /// Answers other than 200.
    refused: u64,
    /// The server's CPU time per sign-in, when known.
    server_cpu: Option<Duration>,
}

impl Figures {
    /// Prints them as `key=value` lines, each key starting with `name`.
    fn print(&self, name: &str) {
        println!("{name}_signins_per_s={:.1}", self.sign_ins);
        println!("{name}_requests_per_s={:.1}", self.requests);
        println!("{name}_p99_ms={:.1}", self.p99.as_secs_f64() * 1000.0);
        println!("{name}_refused={}", self.refused);
        if let Some(cpu) = self.server_cpu {
            println!("{name}_server_cpu_ms={:.2}", cpu.as_secs_f64() * 1000.0);
        }
    }
}

/// Runs `kind` with every client for the duration.
async fn measure(
    api: &Api,
    settings: &Settings,
    groups: &[Arc<Mutex<Vec<BenchUser>>>],
    kind: Kind,
) -> Result<Figures, String> {
    let cpu_before = cpu_time(settings.server_pid);
    let began = Instant::now();
    let until = began + settings.duration;
    let mut tasks = Vec::new();
    for group in groups {
        let (api, group, origin) = (api.clone(), Arc::clone(group), settings.origin.clone());
        tasks.push(tokio::spawn(async move {
            let mut users = group.lock().await;
            let mut tally = Tally::default();
            let (mut next, count) = (0, users.len());
            while Instant::now() < until {
                let user = &mut users[next % count];
                next += 1;
                let started = Instant::now();
                let ok = match kind {
                    Kind::Password => password_sign_in(&api, &user.email, &mut tally).await?,
                    Kind::Passkey => passkey_sign_in(&api, &origin, user, &mut tally).await?,
                };
                if ok {
                    tally.took.push(started.elapsed());
                } else {
                    tally.refused += 1;
                }
            }
            Ok::<_, String>(tally)
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let tally = task.await.map_err(|e| e.to_string())??;
        all.took.extend(tally.took);
        all.requests += tally.requests;
        all.refused += tally.refused;
    }
    let elapsed = began.elapsed().as_secs_f64();
    let server_cpu = cpu_before
        .zip(cpu_time(settings.server_pid))
        .filter(|_| !all.took.is_empty())
        .map(|(before, after)| (after - before) / all.took.len() as u32);
    all.took.sort();
    let p99 = all
        .took
        .get((all.took.len() * 99 / 100).min(all.took.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    Ok(Figures {
        sign_ins: all.took.len() as f64 / elapsed,
        requests: all.requests as f64 / elapsed,
        p99,
        refused: all.refused,
        server_cpu,
    })
}

async fn run() -> Result<(), String> {
    let settings = Settings::from_env()?;
    let api = Api {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(settings.concurrency * 2)
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?,
        auth: format!("{}{}", settings.base.trim_end_matches('/'), settings.prefix),
    };
    // Users in groups, one per client; registered a few at a time (each
    // registration hashes twice).
    let run_id = std::process::id();
    let mut groups: Vec<Vec<BenchUser>> = (0..settings.concurrency).map(|_| Vec::new()).collect();
    let began = Instant::now();
    let mut pending = Vec::new();
    for i in 0..settings.users {
        let (api, origin) = (api.clone(), settings.origin.clone());
        let email = format!("passkey-bench-{run_id}-{i}@example.com");
        pending.push(tokio::spawn(
            async move { enrol(&api, &origin, email).await },
        ));
        if pending.len() == 8 || i + 1 == settings.users {
            for task in pending.drain(..) {
                let user = task.await.map_err(|e| e.to_string())??;
                let n: usize = groups.iter().map(Vec::len).sum();
                groups[n % settings.concurrency].push(user);
            }
        }
    }
    eprintln!(
        "passkey_bench: {} users with a passkey each in {:.1} s",
        settings.users,
        began.elapsed().as_secs_f64()
    );
    let groups: Vec<_> = groups
        .into_iter()
        .map(|g| Arc::new(Mutex::new(g)))
        .collect();
    let password = measure(&api, &settings, &groups, Kind::Password).await?;
    let passkey = measure(&api, &settings, &groups, Kind::Passkey).await?;
    println!("concurrency={}", settings.concurrency);
    println!("users={}", settings.users);
    password.print("password");
    passkey.print("passkey");
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::INFINITY };
    println!("ratio={:.1}", ratio(passkey.sign_ins, password.sign_ins));
    if let (Some(pw), Some(pk)) = (password.server_cpu, passkey.server_cpu) {
        println!("cpu_ratio={:.1}", ratio(pw.as_secs_f64(), pk.as_secs_f64()));
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("passkey_bench: {e}");
        std::process::exit(1);
    }
}
