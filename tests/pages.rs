//! The pages of SPEC §12 over plain HTTP, on SQLite and PostgreSQL: the
//! headers and CSP of every page, the fields password managers read, the
//! `redirect_to` rule as a page applies it, `REGISTRATION_ENABLED`,
//! `Accept-Language`, and the QR code of the TOTP setup. (The pages used in
//! a real browser: tests/browser_pages.rs; bad settings: tests/cli.rs.)

#[macro_use]
mod common;

use common::{PASSWORD, Reply, TestApp, python, unique_email};
use portcullis::store::{Actor, UserChanges};
use reqwest::StatusCode;
use serde_json::json;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

const PAGES_ON: (&str, &str) = ("PAGES_ENABLED", "true");

/// `GET path` with `Accept-Language: lang` (none if empty).
async fn page(app: &TestApp, path: &str, lang: &str) -> Reply {
    let mut request = app.client.get(app.url(path));
    if !lang.is_empty() {
        request = request.header("accept-language", lang);
    }
    let reply = app.send_unchecked(request).await;
    reply.expect_request_id();
    reply
}

/// The headers every page carries, with `csp`.
#[track_caller]
fn expect_page_headers(reply: &Reply, csp: &str) {
    let what = format!("{} {:?}", reply.status, reply.headers);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8"),
        "{what}"
    );
    assert_eq!(reply.header("content-security-policy"), Some(csp), "{what}");
    assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        reply.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
    assert_eq!(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
}

/// Nothing the CSP would refuse: no inline script or style, no handler
/// attribute, no asset from elsewhere.
#[track_caller]
fn expect_no_inline_code(html: &str) {
    let lower = html.to_ascii_lowercase();
    for (at, _) in lower.match_indices("<script") {
        let tag = &lower[at..at + lower[at..].find('>').expect("closed tag")];
        assert!(tag.contains(" src=\"/assets/"), "inline script: {tag}");
    }
    for bad in [
        " style=",
        "<style",
        " onclick=",
        " onload=",
        "javascript:",
        "http://",
        "https://",
    ] {
        assert!(!lower.contains(bad), "{bad} in the page:\n{html}");
    }
}

/// The value of `data-redirect` on the page.
fn redirect_of(html: &str) -> String {
    let rest = html
        .split_once("data-redirect=\"")
        .unwrap_or_else(|| panic!("no data-redirect:\n{html}"))
        .1;
    rest.split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

both_backends!(
    every_page_is_served_with_the_headers_and_fields_of_spec_12,
    vars[PAGES_ON],
    |app| async move {
        for path in ["/sign-in", "/sign-up", "/forgot-password", "/account"] {
            let reply = page(&app, path, "").await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
            expect_page_headers(&reply, CSP);
            let html = reply.text();
            assert!(html.starts_with("<!doctype html>"), "{path}");
            assert!(html.contains("<html lang=\"en\">"), "{path}");
            assert!(html.contains("name=\"viewport\""), "{path}");
            assert!(html.contains("src=\"/assets/portcullis.js\""), "{path}");
            assert!(html.contains("href=\"/assets/portcullis.css\""), "{path}");
            expect_no_inline_code(&html);
        }
        // The links' pages, in the same shell and under the same CSP (a
        // spent link answers 400 with its explanation).
        for path in ["/reset-password?token=nope", "/verify-email?token=nope"] {
            let reply = page(&app, path, "").await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
            expect_page_headers(&reply, CSP);
            expect_no_inline_code(&reply.text());
        }

        let sign_in = page(&app, "/sign-in", "").await.text();
        for field in [
            "type=\"email\" autocomplete=\"username webauthn\"",
            "type=\"password\" autocomplete=\"current-password\"",
            "type=\"text\" autocomplete=\"one-time-code\"",
            "<button type=\"submit\">Sign in</button>",
            "href=\"/forgot-password\"",
            "href=\"/sign-up\"",
            "<label for=\"email\">",
            "<label for=\"password\">",
            "role=\"alert\"",
        ] {
            assert!(
                sign_in.contains(field),
                "/sign-in lacks {field}:\n{sign_in}"
            );
        }
        let sign_up = page(&app, "/sign-up", "").await.text();
        for field in [
            "type=\"email\" autocomplete=\"email\"",
            "type=\"text\" autocomplete=\"name\"",
            "type=\"password\" autocomplete=\"new-password\"",
            "<button type=\"submit\">Create account</button>",
        ] {
            assert!(
                sign_up.contains(field),
                "/sign-up lacks {field}:\n{sign_up}"
            );
        }
        let forgot = page(&app, "/forgot-password", "").await.text();
        assert!(
            forgot.contains("type=\"email\" autocomplete=\"email\""),
            "{forgot}"
        );

        // The assets: from the binary, typed, not sniffable.
        for (path, kind) in [
            ("/assets/portcullis.css", "text/css; charset=utf-8"),
            ("/assets/portcullis.js", "text/javascript; charset=utf-8"),
        ] {
            let reply = page(&app, path, "").await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
            assert_eq!(reply.header("content-type"), Some(kind), "{path}");
            assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        }
        let script = page(&app, "/assets/portcullis.js", "").await.text();
        for never in [
            "localStorage",
            "sessionStorage",
            "document.cookie",
            "innerHTML",
            "eval(",
        ] {
            assert!(!script.contains(never), "the script uses {never}");
        }

        // The document describes them.
        let doc = app.get_root("/openapi.json").await.body;
        for path in ["/sign-in", "/sign-up", "/forgot-password", "/account"] {
            assert!(doc["paths"][path]["get"].is_object(), "{path} undocumented");
        }
        // And the refresh cookie, which the pages need, is on.
        let login = app.register_raw(&unique_email("cookie"), PASSWORD).await;
        assert!(
            login
                .headers
                .get_all("set-cookie")
                .iter()
                .any(|c| c.to_str().unwrap().starts_with("portcullis_refresh=")),
            "{:?}",
            login.headers
        );
    }
);

both_backends!(pages_are_only_served_when_enabled, |app| async move {
    // The test default is PAGES_ENABLED=false.
    for path in [
        "/sign-in",
        "/sign-up",
        "/forgot-password",
        "/account",
        "/assets/portcullis.js",
    ] {
        let reply = app.send(app.client.get(app.url(path))).await;
        reply.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    // The links' pages stay, stricter: no script at all.
    let reply = page(&app, "/reset-password?token=nope", "").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let csp = reply.header("content-security-policy").unwrap().to_string();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert!(!reply.text().contains("<script"), "{}", reply.text());
    expect_page_headers(&reply, &csp);
    assert_eq!(
        page(&app, "/assets/portcullis.css", "").await.status,
        StatusCode::OK
    );
});

both_backends!(
    redirect_to_is_followed_only_to_allowed_origins,
    vars[PAGES_ON, ("REDIRECT_ORIGINS", "https://app.example.com, http://localhost:3000")],
    |app| async move {
        let own = app.base_url.clone();
        let allowed = [
            "/dashboard?tab=keys&x=1".to_string(),
            "https://app.example.com/after?x=1&y=2".to_string(),
            "HTTPS://APP.example.com:443/".to_string(),
            "http://localhost:3000/callback".to_string(),
            format!("{own}/account"),
        ];
        for target in &allowed {
            for path in ["/sign-in", "/sign-up"] {
                let query: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("redirect_to", target)
                    .finish();
                let html = page(&app, &format!("{path}?{query}"), "").await.text();
                assert_eq!(redirect_of(&html), *target, "{path} {target}");
            }
        }
        let refused = [
            "//evil.example",
            "//evil.example/account",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            " //evil.example",
            "https://evil.example/",
            "https://app.example.com.evil.example/",
            "https://app.example.com@evil.example/",
            "https://evil.example\\@app.example.com/",
            "https://app.example.com:8443/",
            "http://app.example.com/",
            "https:/evil.example",
            "https:evil.example",
            "javascript:alert(document.domain)",
            "JAVASCRIPT:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "evil.example",
            "https://%65vil.example/",
            "\"><script>alert(1)</script>",
        ];
        for target in refused {
            for path in ["/sign-in", "/sign-up"] {
                let query: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("redirect_to", target)
                    .finish();
                let reply = page(&app, &format!("{path}?{query}"), "").await;
                assert_eq!(reply.status, StatusCode::OK, "{path} {target:?}");
                let html = reply.text();
                assert_eq!(redirect_of(&html), "/account", "{path} {target:?}");
                assert!(!html.contains("evil.example"), "{path} {target:?}:\n{html}");
                assert!(!html.contains("<script>alert"), "{path} {target:?}");
            }
        }
        // Without one, /account; the link to sign-up carries an allowed one.
        let html = page(&app, "/sign-in", "").await.text();
        assert_eq!(redirect_of(&html), "/account");
        let html = page(
            &app,
            "/sign-in?redirect_to=https%3A%2F%2Fapp.example.com%2Fx",
            "",
        )
        .await
        .text();
        assert!(
            html.contains("href=\"/sign-up?redirect_to=https%3A%2F%2Fapp.example.com%2Fx\""),
            "{html}"
        );
    }
);

both_backends!(
    closed_registration_hides_sign_up_and_refuses_register,
    vars[PAGES_ON],
    |app| async move {
        // A superuser and a plain user, made while registration was open.
        let admin = app.register(&unique_email("admin"), PASSWORD).await;
        let changes = UserChanges {
            is_superuser: Some(true),
            ..UserChanges::default()
        };
        app.store()
            .update_user(admin.user_id, &changes, &Actor::Cli)
            .await
            .unwrap()
            .expect("the user exists");
        let plain = app.register(&unique_email("plain"), PASSWORD).await;

        let closed = app
            .spawn_sharing(&[PAGES_ON, ("REGISTRATION_ENABLED", "false")])
            .await;
        let reply = page(&closed, "/sign-up", "").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
        expect_page_headers(&reply, CSP);
        assert!(!reply.text().contains("<form"), "{}", reply.text());
        let sign_in = page(&closed, "/sign-in", "").await.text();
        assert!(!sign_in.contains("/sign-up"), "{sign_in}");

        let body = json!({"email": unique_email("new"), "password": PASSWORD});
        closed
            .post_json("/register", &body)
            .await
            .expect_error(StatusCode::FORBIDDEN, "REGISTRATION_DISABLED");
        for token in [plain.access.as_str(), "not-a-token"] {
            closed
                .send(
                    closed
                        .request(reqwest::Method::POST, "/register")
                        .bearer_auth(token)
                        .json(&body),
                )
                .await
                .expect_error(StatusCode::FORBIDDEN, "REGISTRATION_DISABLED");
        }
        let made = closed
            .send(
                closed
                    .request(reqwest::Method::POST, "/register")
                    .bearer_auth(&admin.access)
                    .json(&body),
            )
            .await;
        made.expect_ok(StatusCode::CREATED);
        // Open, the same server software registers anyone.
        app.post_json(
            "/register",
            &json!({"email": unique_email("open"), "password": PASSWORD}),
        )
        .await
        .expect_ok(StatusCode::CREATED);
    }
);

both_backends!(
    accept_language_picks_the_catalogue_and_html_lang,
    vars[PAGES_ON],
    |app| async move {
        for (header, lang, heading) in [
            ("", "en", "Sign in"),
            ("fr", "fr", "Connexion"),
            ("fr-CH, fr;q=0.9, en;q=0.8", "fr", "Connexion"),
            ("de-DE, de;q=0.9, en;q=0.5, fr;q=0.4", "en", "Sign in"),
            ("en;q=0.3, fr;q=0.7", "fr", "Connexion"),
            ("fr;q=0, en", "en", "Sign in"),
            ("es, *;q=0.1", "en", "Sign in"),
        ] {
            let reply = page(&app, "/sign-in", header).await;
            let html = reply.text();
            assert!(
                html.contains(&format!("<html lang=\"{lang}\">")),
                "{header:?}: {html}"
            );
            assert!(
                html.contains(&format!("<h1>{heading}</h1>")),
                "{header:?}: {html}"
            );
            assert_eq!(reply.header("vary"), Some("Accept-Language"));
        }
        // The script's error texts come in the same language.
        let html = page(&app, "/sign-in", "fr").await.text();
        assert!(
            html.contains("L’adresse e-mail ou le mot de passe est incorrect."),
            "{html}"
        );
        // The links' pages too.
        let html = page(&app, "/verify-email?token=nope", "fr").await.text();
        assert!(html.contains("<html lang=\"fr\">"), "{html}");
        assert!(html.contains("Ce lien ne peut pas être utilisé"), "{html}");
    }
);

both_backends!(totp_setup_answers_a_qr_code_as_svg, |app| async move {
    let user = app.register(&unique_email("qr"), PASSWORD).await;
    let setup = app
        .auth_post_json(
            "/mfa/totp/setup",
            &user.access,
            &json!({"password": PASSWORD}),
        )
        .await;
    let data = setup.expect_ok(StatusCode::OK).clone();
    let svg = data["qr_svg"].as_str().expect("qr_svg").to_string();
    assert!(
        svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
    let lower = svg.to_ascii_lowercase();
    for never in ["<script", "javascript:", " on", "href", "<foreignobject"] {
        assert!(!lower.contains(never), "{never} in {svg}");
    }
    // A real XML parser reads it as one SVG document.
    let check = "import sys, xml.etree.ElementTree as ET\n\
root = ET.fromstring(sys.stdin.read())\n\
assert root.tag == '{http://www.w3.org/2000/svg}svg', root.tag\n\
assert not any(e.tag.endswith('script') for e in root.iter())\n\
print(len(list(root.iter())))\n";
    let mut child = python()
        .arg("-c")
        .arg(check)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(svg.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{svg}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        data["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
});

both_backends!(
    passkey_parts_only_where_the_server_has_a_relying_party,
    |backend: Backend| async move {
        // An IP address as APP_URL's host: no relying party, no passkey
        // button and no passkeys section.
        let app = TestApp::builder(backend).vars(&[PAGES_ON]).spawn().await;
        let sign_in = page(&app, "/sign-in", "").await.text();
        assert!(!sign_in.contains("id=\"passkey-slot\""), "{sign_in}");
        let account = page(&app, "/account", "").await.text();
        assert!(!account.contains("id=\"passkeys\""), "{account}");

        // Named `localhost`: both, with their fields and texts.
        let app = TestApp::builder(backend)
            .localhost()
            .vars(&[PAGES_ON])
            .spawn()
            .await;
        let sign_in = page(&app, "/sign-in", "").await.text();
        for part in [
            "id=\"passkey-slot\"",
            ">Sign in with a passkey</button>",
            "id=\"passkey-error\" role=\"alert\"",
            ">Use a passkey</button>",
            "type=\"email\" autocomplete=\"username webauthn\"",
        ] {
            assert!(sign_in.contains(part), "/sign-in lacks {part}:\n{sign_in}");
        }
        expect_no_inline_code(&sign_in);
        let account = page(&app, "/account", "").await.text();
        for part in [
            "id=\"passkeys\"",
            "id=\"passkey-list\"",
            "id=\"passkey_password\" name=\"passkey_password\" type=\"password\" autocomplete=\"current-password\"",
            "id=\"passkey_remove_password-error\" role=\"alert\"",
            "id=\"passkey_new_name\" name=\"passkey_new_name\" type=\"text\"",
            ">Add a passkey</button>",
        ] {
            assert!(account.contains(part), "/account lacks {part}:\n{account}");
        }
        expect_no_inline_code(&account);
        let french = page(&app, "/sign-in", "fr").await.text();
        assert!(
            french.contains("Se connecter avec une clé d’accès</button>"),
            "{french}"
        );
    }
);
