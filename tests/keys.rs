//! Asymmetric tokens (SPEC §1, §5): `ALGORITHM=RS256|ES256|EdDSA` with
//! `PRIVATE_KEY_FILE` and `PUBLIC_KEY_FILES`, the `kid` (the RFC 7638
//! thumbprint), `/.well-known/jwks.json`, the algorithm-confusion refusals,
//! the README's key rotation walked step by step, the development key pair
//! and `portcullis gen-key`; each on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Header, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The asymmetric algorithms, as `ALGORITHM` spells them.
const ALGORITHMS: [&str; 3] = ["EdDSA", "ES256", "RS256"];

/// A server signing with `keys`, with `public` as `PUBLIC_KEY_FILES`.
async fn spawn_with(backend: Backend, keys: &KeyFiles, public: &[&KeyFiles]) -> TestApp {
    let vars = key_vars(keys, public);
    TestApp::builder(backend)
        .vars(&as_refs(&vars))
        .spawn()
        .await
}

/// Another server on `app`'s database, signing with `keys`.
async fn spawn_sharing_with(app: &TestApp, keys: &KeyFiles, public: &[&KeyFiles]) -> TestApp {
    let vars = key_vars(keys, public);
    TestApp::builder_on(app.db.clone())
        .vars(&as_refs(&vars))
        .spawn()
        .await
}

/// `ALGORITHM`, `PRIVATE_KEY_FILE` and `PUBLIC_KEY_FILES` of a server.
fn key_vars(keys: &KeyFiles, public: &[&KeyFiles]) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("ALGORITHM", keys.alg.to_string()),
        ("PRIVATE_KEY_FILE", keys.private.clone()),
    ];
    if !public.is_empty() {
        let list: Vec<&str> = public.iter().map(|k| k.public.as_str()).collect();
        vars.push(("PUBLIC_KEY_FILES", list.join(",")));
    }
    vars
}

fn as_refs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// `GET /.well-known/jwks.json`, checked: 200, `Cache-Control: public` with
/// a `max-age` of at most 300 s, `keys` at the top level; its keys.
async fn jwks(app: &TestApp) -> Vec<Value> {
    let reply = app.get_root("/.well-known/jwks.json").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let cache = reply
        .header("cache-control")
        .unwrap_or_default()
        .to_string();
    assert!(cache.contains("public"), "Cache-Control: {cache}");
    let max_age: u64 = cache
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no max-age in {cache:?}"));
    assert!(max_age <= 300, "max-age {max_age} over 5 minutes");
    assert_eq!(reply.body["keys"], reply.body["data"]["keys"]);
    reply.body["keys"].as_array().expect("keys").clone()
}

/// The `kid`s of the JWKS.
async fn jwks_kids(app: &TestApp) -> Vec<String> {
    jwks(app)
        .await
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

/// `payload` signed with `keys`' private key under `kid`.
fn sign(keys: &KeyFiles, kid: Option<&str>, payload: &Value) -> String {
    let mut header = Header::new(keys.algorithm());
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, payload, &keys.encoding_key()).expect("sign")
}

/// A compact JWS with exactly `header` and `payload`, HMAC-SHA-256 signed
/// under `key`.
fn hmac_signed(header: &Value, payload: &Value, key: &[u8]) -> String {
    use hmac::Mac;
    let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(mac.finalize().into_bytes()))
}

/// `GET /me` with `token` must be 401 `INVALID_TOKEN`.
#[track_caller]
fn expect_invalid(what: &str, reply: &Reply) {
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNAUTHORIZED, "INVALID_TOKEN"),
        "{what}: {}",
        reply.text()
    );
    reply.expect_error(StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
}

both_backends!(
    /// For each of RS256, ES256 and EdDSA: the tokens carry the algorithm
    /// and the thumbprint of the signing key as `kid`; the JWKS publishes
    /// that key with `kid`, `alg` and `use: "sig"` and no private member,
    /// cacheable for at most 5 minutes; a JWT library verifies the tokens
    /// with nothing but that JWK; and the server accepts and refreshes them.
    tokens_are_signed_with_the_private_key_and_verify_with_the_jwks,
    |backend: Backend| async move {
        let dir = tempfile::tempdir().unwrap();
        for alg in ALGORITHMS {
            let keys = KeyFiles::new(dir.path(), alg, alg);
            let app = spawn_with(backend, &keys, &[]).await;
            let user = app.register(&unique_email(alg), PASSWORD).await;
            for token in [&user.access, &user.refresh] {
                let (header, _) = jwt_parts(token);
                assert_eq!(header["alg"], alg, "{header}");
                assert_eq!(header["kid"], keys.kid.as_str(), "{header}");
            }

            let published = jwks(&app).await;
            assert_eq!(published.len(), 1, "{published:?}");
            let key = published[0].as_object().unwrap();
            assert_eq!(key["kid"], keys.kid.as_str());
            assert_eq!(key["alg"], alg);
            assert_eq!(key["use"], "sig");
            let expected_kty = match alg {
                "RS256" => "RSA",
                "ES256" => "EC",
                _ => "OKP",
            };
            assert_eq!(key["kty"], expected_kty);
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
                assert!(!key.contains_key(private), "{alg}: private member {private}");
            }

            // Verified with the published JWK alone, by jsonwebtoken directly.
            let jwk: Jwk = serde_json::from_value(published[0].clone()).unwrap();
            let mut validation = Validation::new(keys.algorithm());
            validation.validate_aud = false;
            let claims = jsonwebtoken::decode::<Value>(
                &user.access,
                &DecodingKey::from_jwk(&jwk).unwrap(),
                &validation,
            )
            .unwrap_or_else(|e| panic!("{alg}: the JWK does not verify the token: {e}"))
            .claims;
            assert_eq!(claims["sub"], user.user_id.to_string());
            assert_eq!(claims["type"], "access");

            app.me(&user.access).await.expect_ok(StatusCode::OK);
            let (access, refresh) = app.refresh_ok(&user.refresh).await;
            app.me(&access).await.expect_ok(StatusCode::OK);
            assert_eq!(jwt_parts(&refresh).0["kid"], keys.kid.as_str());
        }
    }
);

/// A server of each asymmetric algorithm, a user's genuine tokens, and
/// another key pair of the same algorithm: what the refusal tests forge
/// from. Each forgery comes with its control: the same payload signed here
/// with the server's key and `kid` is accepted.
struct Target {
    app: TestApp,
    keys: KeyFiles,
    other: KeyFiles,
    user: Session,
    payload: Value,
    refresh_payload: Value,
}

impl Target {
    async fn each(backend: Backend, dir: &Path) -> Vec<Target> {
        let mut targets = Vec::new();
        for alg in ALGORITHMS {
            let keys = KeyFiles::new(dir, alg, alg);
            let other = KeyFiles::new(dir, &format!("{alg}-other"), alg);
            let app = spawn_with(backend, &keys, &[]).await;
            let user = app.register(&unique_email(alg), PASSWORD).await;
            let (_, payload) = jwt_parts(&user.access);
            let (_, refresh_payload) = jwt_parts(&user.refresh);
            app.me(&sign(&keys, Some(&keys.kid), &payload))
                .await
                .expect_ok(StatusCode::OK);
            targets.push(Target {
                app,
                keys,
                other,
                user,
                payload,
                refresh_payload,
            });
        }
        targets
    }

    /// `GET /me` with `token` is 401 `INVALID_TOKEN`.
    async fn refuses_access(&self, what: &str, token: &str) {
        let what = format!("{}: {what}", self.keys.alg);
        expect_invalid(&what, &self.app.me(token).await);
    }

    /// `/refresh` with `token` is 401 `INVALID_TOKEN`.
    async fn refuses_refresh(&self, what: &str, token: &str) {
        let what = format!("{}: {what}", self.keys.alg);
        expect_invalid(&what, &self.app.refresh(token).await);
    }

    /// Nothing was spent: the genuine pair still works.
    async fn still_works(&self) {
        self.app
            .me(&self.user.access)
            .await
            .expect_ok(StatusCode::OK);
        self.app.refresh_ok(&self.user.refresh).await;
    }
}

both_backends!(
    /// Algorithm confusion: for each asymmetric algorithm, an `HS256` token
    /// whose HMAC key is the server's public key (the PEM anyone can read, or
    /// its JWKS entry), with the server's `kid` or none, is 401
    /// `INVALID_TOKEN` on a protected route and at `/refresh`; so is the
    /// genuine signature under another asymmetric `alg`. Only `ALGORITHM`
    /// verifies.
    hs256_signed_with_the_public_key_is_refused,
    |backend: Backend| async move {
        let dir = tempfile::tempdir().unwrap();
        for t in Target::each(backend, dir.path()).await {
            let published = jwks(&t.app).await[0].to_string();
            for (what, key) in [
                ("the public key PEM", t.keys.public_pem.as_bytes()),
                ("the JWKS entry", published.as_bytes()),
            ] {
                for h in [
                    json!({"alg": "HS256", "typ": "JWT", "kid": t.keys.kid}),
                    json!({"alg": "HS256", "typ": "JWT"}),
                ] {
                    let what = format!("HS256 keyed with {what}, {h}");
                    t.refuses_access(&what, &hmac_signed(&h, &t.payload, key))
                        .await;
                    t.refuses_refresh(&what, &hmac_signed(&h, &t.refresh_payload, key))
                        .await;
                }
            }
            let another = if t.keys.alg == "RS256" { "ES256" } else { "RS256" };
            let h = json!({"alg": another, "typ": "JWT", "kid": t.keys.kid});
            let signature = t.user.access.rsplit_once('.').unwrap().1;
            let relabelled = format!(
                "{}.{}.{signature}",
                b64(h.to_string()),
                b64(t.payload.to_string())
            );
            t.refuses_access("the genuine signature under another alg", &relabelled)
                .await;
            t.still_works().await;
        }
    }
);

both_backends!(
    /// `alg: none` (in any spelling), with the server's `kid`, unsigned or
    /// with the genuine signature, is 401 `INVALID_TOKEN` on a protected
    /// route and at `/refresh`, for each asymmetric algorithm.
    alg_none_is_refused,
    |backend: Backend| async move {
        let dir = tempfile::tempdir().unwrap();
        for t in Target::each(backend, dir.path()).await {
            let genuine_signature = t.user.access.rsplit_once('.').unwrap().1;
            for none in ["none", "None", "NONE"] {
                let h = json!({"alg": none, "typ": "JWT", "kid": t.keys.kid});
                let unsigned = format!("{}.{}.", b64(h.to_string()), b64(t.payload.to_string()));
                t.refuses_access(&format!("alg {none}"), &unsigned).await;
                t.refuses_access(
                    &format!("alg {none} with the genuine signature"),
                    &format!("{unsigned}{genuine_signature}"),
                )
                .await;
                let unsigned_refresh = format!(
                    "{}.{}.",
                    b64(h.to_string()),
                    b64(t.refresh_payload.to_string())
                );
                t.refuses_refresh(&format!("alg {none}"), &unsigned_refresh)
                    .await;
            }
            t.still_works().await;
        }
    }
);

both_backends!(
    /// Unknown `kid`s: for each asymmetric algorithm, a token signed with the
    /// server's own key under a `kid` it does not know, and tokens signed
    /// with another key (under its own `kid`, the server's, or none) are 401
    /// `INVALID_TOKEN`, on a protected route and at `/refresh`.
    unknown_kids_are_refused,
    |backend: Backend| async move {
        let dir = tempfile::tempdir().unwrap();
        for t in Target::each(backend, dir.path()).await {
            let (keys, other) = (&t.keys, &t.other);
            let unknown = Some("no-such-key");
            t.refuses_access("the server's key, an unknown kid", &sign(keys, unknown, &t.payload))
                .await;
            t.refuses_refresh(
                "the server's key, an unknown kid",
                &sign(keys, unknown, &t.refresh_payload),
            )
            .await;
            for (what, kid) in [
                ("another key under its own kid", Some(other.kid.as_str())),
                ("another key under the server's kid", Some(keys.kid.as_str())),
                ("another key without a kid", None),
            ] {
                t.refuses_access(what, &sign(other, kid, &t.payload)).await;
                t.refuses_refresh(what, &sign(other, kid, &t.refresh_payload))
                    .await;
            }
            t.still_works().await;
        }
    }
);

both_backends!(
    /// The README's key rotation, step by step, with the servers an operator
    /// rolls out (each a new instance on the same database):
    /// 1. publish the new public key (`PUBLIC_KEY_FILES`) while the old key
    ///    still signs: the JWKS lists both, and a server still on the old
    ///    configuration accepts the new key's tokens once it has it too;
    /// 2. switch `PRIVATE_KEY_FILE` to the new key, the old public key in
    ///    `PUBLIC_KEY_FILES`: new tokens carry the new `kid`;
    /// 3. tokens signed with the old key keep working (access and refresh);
    /// 4. once the old key is removed, they are refused.
    the_key_rotation_runbook_walked_step_by_step,
    |backend: Backend| async move {
        let dir = tempfile::tempdir().unwrap();
        let old = KeyFiles::new(dir.path(), "old", "EdDSA");
        let new = KeyFiles::new(dir.path(), "new", "EdDSA");

        // Before: the old key signs.
        let before = spawn_with(backend, &old, &[]).await;
        let user = before.register(&unique_email("rotation"), PASSWORD).await;
        let second = before.login(&user, PASSWORD).await;
        assert_eq!(jwks_kids(&before).await, std::slice::from_ref(&old.kid));

        // 1. Publish the new public key; the old key still signs.
        let published = spawn_sharing_with(&before, &old, &[&new]).await;
        assert_eq!(jwks_kids(&published).await, [old.kid.clone(), new.kid.clone()]);
        let during = published.login(&user, PASSWORD).await;
        assert_eq!(jwt_parts(&during.access).0["kid"], old.kid.as_str());
        published.me(&user.access).await.expect_ok(StatusCode::OK);

        // 2. Switch the signing key; the old public key stays published.
        let switched = spawn_sharing_with(&before, &new, &[&old]).await;
        assert_eq!(jwks_kids(&switched).await, [new.kid.clone(), old.kid.clone()]);
        let fresh = switched.login(&user, PASSWORD).await;
        assert_eq!(jwt_parts(&fresh.access).0["kid"], new.kid.as_str());
        assert_eq!(jwt_parts(&fresh.refresh).0["kid"], new.kid.as_str());
        // Instances that published the new key first accept its tokens.
        published.me(&fresh.access).await.expect_ok(StatusCode::OK);

        // 3. The old key's tokens keep working: access, and refresh (the new
        // pair is signed with the new key).
        switched.me(&user.access).await.expect_ok(StatusCode::OK);
        let (access, refresh) = switched.refresh_ok(&user.refresh).await;
        assert_eq!(jwt_parts(&access).0["kid"], new.kid.as_str());
        assert_eq!(jwt_parts(&refresh).0["kid"], new.kid.as_str());

        // 4. Remove the old key: its tokens are refused, the new ones work.
        let after = spawn_sharing_with(&before, &new, &[]).await;
        assert_eq!(jwks_kids(&after).await, std::slice::from_ref(&new.kid));
        expect_invalid("an old access token", &after.me(&second.access).await);
        expect_invalid("an old refresh token", &after.refresh(&second.refresh).await);
        expect_invalid("an old access token", &after.me(&during.access).await);
        after.me(&fresh.access).await.expect_ok(StatusCode::OK);
        after.me(&access).await.expect_ok(StatusCode::OK);
        after.refresh_ok(&fresh.refresh).await;
    }
);

// ---- the binary ---------------------------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// `portcullis` run in `dir` with only `envs` (and `PATH`).
fn command(dir: &Path, envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_FORMAT", "json")
        .env("RATE_LIMIT_ENABLED", "false")
        .env("MFA_ENCRYPTION_KEY", common::MFA_KEY)
        .envs(envs.iter().copied())
        .stdin(Stdio::null());
    cmd
}

/// A `portcullis serve` and the log lines it wrote up to its ready line.
struct Server {
    child: Child,
    base_url: String,
    log: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `serve` in `dir` on a free port.
    fn start(dir: &Path, envs: &[(&str, &str)]) -> Server {
        let mut child = command(dir, envs)
            .arg("serve")
            .env("PORT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn portcullis");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut log = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                log.push(line.clone());
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split('"').next().unwrap_or_default();
                    return Server {
                        child,
                        base_url: format!("http://{addr}"),
                        log,
                    };
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("portcullis did not log its ready line: {log:?}");
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.base_url))
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON")
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}{PREFIX}{path}", self.base_url))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST");
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn me(&self, token: &str) -> StatusCode {
        reqwest::Client::new()
            .get(format!("{}{PREFIX}/me", self.base_url))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /me")
            .status()
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

both_backends!(
    /// Zero configuration with an asymmetric algorithm: in development the
    /// key pair is generated once into `data/` (the private key 0600, a
    /// warning naming PRIVATE_KEY_FILE), the next start signs with the same
    /// key (its tokens still verify); in production, no key file is exit
    /// status 2 naming PRIVATE_KEY_FILE, and nothing is generated.
    the_development_key_pair_is_generated_once,
    |backend: Backend| async move {
        let db = TestDb::create(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let envs = [("ALGORITHM", "ES256"), ("DATABASE_URL", db.url.as_str())];

        let first = Server::start(dir.path(), &envs);
        let warning = first
            .log
            .iter()
            .find(|l| l.contains("PRIVATE_KEY_FILE is not set"))
            .unwrap_or_else(|| panic!("no warning about the generated key: {:?}", first.log));
        assert!(warning.contains("\"WARN\""), "{warning}");
        let private = dir.path().join("data/signing-key-es256.pem");
        assert!(private.exists(), "no key in data/");
        #[cfg(unix)]
        {
            assert_eq!(mode(&private), 0o600);
            assert_eq!(mode(&dir.path().join("data")), 0o700);
        }
        let kid = first.get("/.well-known/jwks.json").await["keys"][0]["kid"]
            .as_str()
            .expect("a published key")
            .to_string();
        let (status, body) = first
            .post(
                "/register",
                None,
                json!({"email": "dev@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let access = body["data"]["access_token"].as_str().unwrap().to_string();
        assert_eq!(jwt_parts(&access).0["kid"], kid.as_str());
        let pem = std::fs::read(&private).unwrap();
        drop(first);

        let second = Server::start(dir.path(), &envs);
        assert_eq!(std::fs::read(&private).unwrap(), pem, "the key was replaced");
        assert_eq!(
            second.get("/.well-known/jwks.json").await["keys"][0]["kid"],
            kid.as_str()
        );
        assert_eq!(second.me(&access).await, StatusCode::OK);
        drop(second);

        let prod = tempfile::tempdir().unwrap();
        for alg in ALGORITHMS {
            let out = command(
                prod.path(),
                &[
                    ("PORTCULLIS_ENV", "production"),
                    ("ALGORITHM", alg),
                    ("DATABASE_URL", db.url.as_str()),
                ],
            )
            .arg("serve")
            .output()
            .unwrap();
            assert_eq!(out.status.code(), Some(2), "{alg}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("PRIVATE_KEY_FILE"), "{alg}: {stderr}");
            assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        }
        assert!(
            !prod.path().join("data").exists(),
            "production generated something"
        );
    }
);

both_backends!(
    /// `portcullis gen-key --algorithm EdDSA|ES256|RS256` writes a PEM pair
    /// (the private key 0600, the public one 0644), prints its `kid`, never
    /// overwrites a key, and the server signs with it: the JWKS publishes
    /// the printed `kid`. A production server starts with the pair alone
    /// (no SECRET_KEY).
    gen_key_writes_a_pair_the_server_signs_with,
    |backend: Backend| async move {
        let db = TestDb::create(backend).await;
        let dir = tempfile::tempdir().unwrap();
        for alg in ALGORITHMS {
            let private = format!("{alg}.pem");
            let public = format!("{alg}.pub.pem");
            let args = [
                "gen-key",
                "--algorithm",
                alg,
                "--private-key",
                &private,
                "--public-key",
                &public,
            ];
            let out = command(dir.path(), &[]).args(args).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            let printed_kid = stdout
                .lines()
                .find_map(|l| l.split("thumbprint): ").nth(1))
                .unwrap_or_else(|| panic!("no kid printed: {stdout}"))
                .trim()
                .to_string();
            assert!(stdout.contains(&format!("ALGORITHM={alg}")), "{stdout}");
            let private_pem = std::fs::read_to_string(dir.path().join(&private)).unwrap();
            let public_pem = std::fs::read_to_string(dir.path().join(&public)).unwrap();
            assert!(private_pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{alg}");
            assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{alg}");
            #[cfg(unix)]
            {
                assert_eq!(mode(&dir.path().join(&private)), 0o600, "{alg}");
                assert_eq!(mode(&dir.path().join(&public)), 0o644, "{alg}");
            }

            // Never overwritten.
            let again = command(dir.path(), &[]).args(args).output().unwrap();
            assert_eq!(again.status.code(), Some(1), "{alg}");
            assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
            assert_eq!(
                std::fs::read_to_string(dir.path().join(&private)).unwrap(),
                private_pem
            );

            let server = Server::start(
                dir.path(),
                &[
                    ("PORTCULLIS_ENV", "production"),
                    ("ALGORITHM", alg),
                    ("PRIVATE_KEY_FILE", &private),
                    ("DATABASE_URL", db.url.as_str()),
                ],
            );
            let published = server.get("/.well-known/jwks.json").await;
            assert_eq!(published["keys"][0]["kid"], printed_kid.as_str(), "{alg}");
            assert_eq!(published["keys"].as_array().unwrap().len(), 1);
        }
        let out = command(dir.path(), &[])
            .args(["gen-key", "--algorithm", "HS256"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "HS256 has no key pair");
    }
);

/// A key of the wrong kind, or a private key listed as public, stops
/// start-up with exit status 2 naming the variable and the file.
#[test]
fn bad_key_files_stop_start_up_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let ed = KeyFiles::new(dir.path(), "ed", "EdDSA");
    for (envs, variable, file) in [
        (
            vec![
                ("ALGORITHM", "ES256"),
                ("PRIVATE_KEY_FILE", ed.private.as_str()),
            ],
            "PRIVATE_KEY_FILE",
            "ed.pem",
        ),
        (
            vec![
                ("ALGORITHM", "EdDSA"),
                ("PRIVATE_KEY_FILE", ed.private.as_str()),
                ("PUBLIC_KEY_FILES", ed.private.as_str()),
            ],
            "PUBLIC_KEY_FILES",
            "ed.pem",
        ),
        (
            vec![("ALGORITHM", "RS256"), ("PRIVATE_KEY_FILE", "missing.pem")],
            "PRIVATE_KEY_FILE",
            "missing.pem",
        ),
    ] {
        let out = command(dir.path(), &envs).arg("serve").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{envs:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(variable) && stderr.contains(file),
            "{envs:?}: {stderr}"
        );
    }
}
