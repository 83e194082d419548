//! What the tests send a [`TestApp`]: plain and authenticated requests,
//! and the flows (register, log in, refresh, …) with their checks.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use super::{Reply, TestApp, expect_token_pair, sid_of};

impl TestApp {
    // ---- plain requests -----------------------------------------------------------

    /// `GET` a root path.
    pub async fn get_root(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    /// `GET` a root path that answers a page (the pages the mailed links
    /// open, HTML even when they refuse): checks the `X-Request-Id` only.
    pub async fn get_page(&self, path: &str) -> Reply {
        let reply = self.send_unchecked(self.client.get(self.url(path))).await;
        reply.expect_request_id();
        reply
    }

    /// `GET` a path under the prefix, without credentials.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }

    /// `POST` a JSON body to a path under the prefix.
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// `POST` a form to a path under the prefix.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send(self.request(Method::POST, path).form(form)).await
    }

    /// `POST` raw bytes with a content type to a path under the prefix.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        self.send(
            self.request(Method::POST, path)
                .header(header::CONTENT_TYPE, content_type)
                .body(body.into()),
        )
        .await
    }

    // ---- authenticated requests ------------------------------------------------------

    /// `GET` with `Authorization: Bearer <token>`.
    pub async fn auth_get(&self, path: &str, token: &str) -> Reply {
        self.send(self.request(Method::GET, path).bearer_auth(token))
            .await
    }

    /// `POST` a JSON body with a bearer token.
    pub async fn auth_post_json(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send(
            self.request(Method::POST, path)
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    /// `POST` without a body, with a bearer token.
    pub async fn auth_post_empty(&self, path: &str, token: &str) -> Reply {
        self.send(self.request(Method::POST, path).bearer_auth(token))
            .await
    }

    /// `PATCH` a JSON body with a bearer token.
    pub async fn auth_patch_json(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send(
            self.request(Method::PATCH, path)
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    /// `DELETE` with a bearer token.
    pub async fn auth_delete(&self, path: &str, token: &str) -> Reply {
        self.send(self.request(Method::DELETE, path).bearer_auth(token))
            .await
    }

    /// `GET /me` with a token.
    pub async fn me(&self, token: &str) -> Reply {
        self.auth_get("/me", token).await
    }

    /// Makes this instance keep `token`'s session in memory: asks `/me`
    /// (which must accept it) until an answer came from memory. The instance
    /// trusts its memory once it has read the change feed (every 200 ms), so
    /// this gives it up to two seconds on a loaded machine.
    pub async fn warm(&self, token: &str) {
        let since = std::time::Instant::now();
        loop {
            let (hits, _) = self.store().session_cache_stats();
            self.me(token).await.expect_ok(StatusCode::OK);
            if self.store().session_cache_stats().0 > hits {
                return;
            }
            assert!(
                since.elapsed() < std::time::Duration::from_secs(2),
                "the session was not answered from memory"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    // ---- flows ------------------------------------------------------------------------

    /// `POST /register` with e-mail and password; the raw answer.
    pub async fn register_raw(&self, email: &str, password: &str) -> Reply {
        self.post_json("/register", &json!({"email": email, "password": password}))
            .await
    }

    /// Registers a user and checks the 201.
    pub async fn register(&self, email: &str, password: &str) -> Session {
        let reply = self.register_raw(email, password).await;
        let data = reply.expect_ok(StatusCode::CREATED);
        Session {
            user_id: data["user"]["id"].as_i64().expect("user.id is an integer"),
            email: data["user"]["email"]
                .as_str()
                .expect("user.email")
                .to_string(),
            access: data["access_token"]
                .as_str()
                .expect("access_token")
                .to_string(),
            refresh: data["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_string(),
        }
    }

    /// `POST /login/json`; the raw answer.
    pub async fn login_json(&self, email: &str, password: &str) -> Reply {
        self.post_json(
            "/login/json",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// `POST /login` as an OAuth2 password-flow form; the raw answer.
    pub async fn login_form(&self, email: &str, password: &str) -> Reply {
        self.post_form("/login", &[("username", email), ("password", password)])
            .await
    }

    /// Logs in (JSON) and checks the 200: a new session of a known user.
    pub async fn login(&self, user: &Session, password: &str) -> Session {
        let reply = self.login_json(&user.email, password).await;
        let data = reply.expect_ok(StatusCode::OK);
        Session {
            user_id: user.user_id,
            email: user.email.clone(),
            access: data["access_token"]
                .as_str()
                .expect("access_token")
                .to_string(),
            refresh: data["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_string(),
        }
    }

    /// `POST /refresh`; the raw answer.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post_json("/refresh", &json!({"refresh_token": refresh_token}))
            .await
    }

    /// Refreshes and checks the 200; the new pair.
    pub async fn refresh_ok(&self, refresh_token: &str) -> (String, String) {
        let reply = self.refresh(refresh_token).await;
        let data = reply.expect_ok(StatusCode::OK);
        expect_token_pair(data);
        (
            data["access_token"].as_str().unwrap().to_string(),
            data["refresh_token"].as_str().unwrap().to_string(),
        )
    }

    /// `GET /sessions` with a token; the list.
    pub async fn sessions(&self, token: &str) -> Vec<Value> {
        let reply = self.auth_get("/sessions", token).await;
        reply
            .expect_ok(StatusCode::OK)
            .as_array()
            .expect("sessions is an array")
            .clone()
    }

    /// Sessions of `user_id` (open or revoked), counted straight in the database.
    pub async fn count_sessions_in_db(&self, user_id: i64) -> i64 {
        sqlx::query_scalar::<sqlx::Any, i64>("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(self.store().pool())
            .await
            .expect("count sessions")
    }

    /// Users in the database whose e-mail matches, case-insensitively.
    pub async fn count_users_in_db(&self, email: &str) -> i64 {
        sqlx::query_scalar::<sqlx::Any, i64>("SELECT COUNT(*) FROM users WHERE email_key = $1")
            .bind(email.trim().to_lowercase())
            .fetch_one(self.store().pool())
            .await
            .expect("count users")
    }
}

/// A user's session as the client holds it.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user's id.
    pub user_id: i64,
    /// The e-mail as the server returned it.
    pub email: String,
    /// Access token.
    pub access: String,
    /// Refresh token.
    pub refresh: String,
}

impl Session {
    /// The `sid` claim of the access token.
    pub fn sid(&self) -> String {
        sid_of(&self.access)
    }
}
