//! The API documentation: `/openapi.json` checked over plain HTTP against the
//! routes the server really serves, and Swagger UI at `/docs` used in a real
//! headless Chromium (chromedriver and WebDriver, see `tests/browser_support`):
//! its Authorize button logs in through the OAuth2 password flow at
//! `<AUTH_ROUTE_PREFIX>/login`, and "Execute" on `GET /me` then sends the
//! bearer token it got.
//!
//! Needs `chromium` and `chromedriver`; without them the browser test fails
//! (built with `PORTCULLIS_SKIP_BROWSER=1`, it is marked ignored). A screenshot of the executed
//! `GET /me` is written to `/tmp/portcullis-docs.png`.

mod browser_support;
#[macro_use]
mod common;
mod docs_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use browser_support::{browser_sized, run_then_close, write_screenshot};
use common::{PASSWORD, PREFIX, TestApp};
use docs_support::{HTTP_METHODS, routes_in_source};
use fantoccini::elements::Element;
use fantoccini::{Client, Locator};
use reqwest::{Method, StatusCode};
use serde_json::Value;

const SCREENSHOT: &str = "/tmp/portcullis-docs.png";

/// How long the page may take to show something.
const PATIENCE: Duration = Duration::from_secs(15);

// ---- /openapi.json over HTTP ------------------------------------------------------

/// `GET /openapi.json`, checked to be a JSON OpenAPI 3.1.0 document.
async fn openapi(app: &TestApp) -> Value {
    let reply = app.get_root("/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(
        reply.is_json(),
        "content type {:?}",
        reply.header("content-type")
    );
    let doc = reply.body.clone();
    assert!(doc.is_object(), "not a JSON object: {}", reply.text());
    assert_eq!(doc["openapi"], "3.1.0", "openapi version");
    doc
}

/// `(method, path)` of every operation of the document.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut ops = Vec::new();
    for (path, item) in paths {
        let item = item
            .as_object()
            .unwrap_or_else(|| panic!("{path}: not an object"));
        for (method, op) in item {
            if HTTP_METHODS.contains(&method.as_str()) {
                ops.push((method.clone(), path.clone(), op));
            }
        }
    }
    ops
}

/// The schema `schema` names, following a `$ref` into the components.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("not a schema reference: {reference}"));
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

both_backends!(
    openapi_json_describes_every_served_route,
    vars[("PAGES_ENABLED", "true")],
    |app| async move {
        let doc = openapi(&app).await;
        let routes = routes_in_source();
        // The scan is real: it finds routes of both kinds.
        for known in [("post", "/register", true), ("get", "/healthz", false)] {
            assert!(
                routes
                    .iter()
                    .any(|r| (r.method.as_str(), r.path.as_str(), r.under_prefix) == known),
                "{known:?} not found by the scan: {routes:?}"
            );
        }

        // Every operation answers something, and every answer is described.
        let ops = operations(&doc);
        for (method, path, op) in &ops {
            let responses = op["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path}: no responses object"));
            assert!(!responses.is_empty(), "{method} {path}: no responses");
            for (status, response) in responses {
                let description = response["description"].as_str();
                assert!(
                    description.is_some_and(|d| !d.trim().is_empty()),
                    "{method} {path} {status}: no description: {response}"
                );
            }
        }

        // The document lists exactly the routes the router serves (bar the
        // documentation's own, `/openapi.json` and `/docs`, which Swagger UI's
        // router adds).
        let listed: BTreeSet<(String, String)> = ops
            .iter()
            .map(|(method, path, _)| (method.clone(), path.clone()))
            .collect();
        let served: BTreeSet<(String, String)> =
            routes.iter().map(|r| r.served_at(PREFIX)).collect();
        let missing: Vec<_> = served.difference(&listed).collect();
        let extra: Vec<_> = listed.difference(&served).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "/openapi.json misses {missing:?} and lists {extra:?}, which the router does not serve"
        );

        // The scan is what the running router serves: each route answers
        // something other than the fallbacks' 404 or 405 (without credentials
        // or body, so mostly 401, 415 or 422) ...
        let mut by_path: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
        for route in &routes {
            let (method, path) = route.served_at(PREFIX);
            by_path.entry(path).or_default().insert(method);
        }
        for (path, methods) in &by_path {
            let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
            for method in methods {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let reply = app
                    .send_unchecked(app.client.request(method.clone(), app.url(&concrete)))
                    .await;
                assert!(
                    reply.status != StatusCode::NOT_FOUND
                        && reply.status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {concrete} is not served: {} {}",
                    reply.status,
                    reply.text()
                );
            }
            // ... and a method it does not serve there gets the fallback's 405,
            // whose `Allow` lists exactly the methods the scan found (and HEAD,
            // which axum serves wherever GET is).
            let unserved = ["put", "trace", "patch", "delete", "post", "get"]
                .into_iter()
                .find(|m| !methods.contains(*m))
                .expect("a method the path does not serve");
            let method = Method::from_bytes(unserved.to_uppercase().as_bytes()).unwrap();
            let reply = app
                .send(app.client.request(method.clone(), app.url(&concrete)))
                .await;
            reply.expect_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
            let allowed: BTreeSet<String> = reply
                .header("allow")
                .unwrap_or_else(|| panic!("{method} {concrete}: 405 without Allow"))
                .split(',')
                .map(|m| m.trim().to_lowercase())
                .filter(|m| !(m == "head" && methods.contains("get")))
                .collect();
            assert_eq!(&allowed, methods, "{path}: Allow differs from the scan");
            // Which the document says, as it says 404 for any path.
            let op = &doc["paths"][path][methods.first().unwrap()];
            assert!(
                op["responses"]["405"].is_object(),
                "{path}: 405 undocumented"
            );
        }
        let nothing = app.send(app.request(Method::POST, "/nothing-here")).await;
        nothing.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        for (method, path, op) in &ops {
            assert!(
                op["responses"]["404"].is_object(),
                "{method} {path}: 404 undocumented"
            );
        }

        // Swagger UI's Authorize logs in at the form login, whose answer has
        // `access_token` and `token_type` at the top level.
        let schemes = &doc["components"]["securitySchemes"];
        let password_flow = &schemes["OAuth2PasswordBearer"]["flows"]["password"];
        assert_eq!(schemes["OAuth2PasswordBearer"]["type"], "oauth2");
        assert_eq!(password_flow["tokenUrl"], format!("{PREFIX}/login"));
        assert_eq!(
            doc["paths"][format!("{PREFIX}/me")]["get"]["security"][0],
            serde_json::json!({ "OAuth2PasswordBearer": [] })
        );
        let user = app.register("dora@example.com", PASSWORD).await;
        let login = app.login_form(&user.email, PASSWORD).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text());
        assert_eq!(login.body["success"], true, "{}", login.text());
        assert_eq!(login.body["token_type"], "bearer", "{}", login.text());
        assert!(login.body["access_token"].is_string(), "{}", login.text());
        assert_eq!(
            login.body["access_token"],
            login.body["data"]["access_token"]
        );
    }
);

both_backends!(
    openapi_password_limits_follow_password_min_length,
    vars[("PASSWORD_MIN_LENGTH", "12")],
    |app| async move {
        let doc = openapi(&app).await;
        // Every request field with a length limit, in every body of every
        // operation: exactly the new passwords, each with the configured minimum.
        let mut limited = BTreeSet::new();
        for (method, path, op) in operations(&doc) {
            let Some(content) = op["requestBody"]["content"].as_object() else {
                continue;
            };
            for (media, body) in content {
                let schema = resolve(&doc, &body["schema"]);
                let Some(properties) = schema["properties"].as_object() else {
                    continue;
                };
                for (field, property) in properties {
                    let property = resolve(&doc, property);
                    if property.get("minLength").is_none() {
                        continue;
                    }
                    assert_eq!(property["minLength"], 12, "{method} {path} {media} {field}");
                    assert_eq!(
                        property["maxLength"], 128,
                        "{method} {path} {media} {field}"
                    );
                    let description = property["description"].as_str().unwrap_or_default();
                    assert!(
                        description.contains("at least 12 "),
                        "{method} {path} {field}: {description}"
                    );
                    limited.insert(format!("{method} {path} {field}"));
                }
            }
        }
        let expected: BTreeSet<String> = [
            format!("post {PREFIX}/register password"),
            format!("post {PREFIX}/change-password new_password"),
            format!("post {PREFIX}/reset-password new_password"),
            "post /reset-password new_password".to_string(),
            "post /reset-password confirm_password".to_string(),
        ]
        .into_iter()
        .collect();
        assert_eq!(limited, expected);

        // And the server holds the same limits.
        let eleven = "Quokka-Tea1";
        let twelve = "Quokka-Tea12";
        assert_eq!((eleven.chars().count(), twelve.chars().count()), (11, 12));
        app.register_raw("fern@example.com", eleven)
            .await
            .expect_invalid_field("password");
        let registered = app.register_raw("fern@example.com", twelve).await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{}",
            registered.text()
        );
        let too_long = "Q".repeat(129);
        app.register_raw("gus@example.com", &too_long)
            .await
            .expect_invalid_field("password");
    }
);

both_backends!(openapi_states_the_bounds_of_paging, |app| async move {
    let doc = openapi(&app).await;
    // Every `page` and `per_page` query parameter, with its bounds: the
    // three paged lists, each with both.
    let mut paged = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        for parameter in op["parameters"].as_array().into_iter().flatten() {
            let parameter = resolve(&doc, parameter);
            let name = parameter["name"].as_str().unwrap_or_default();
            let bounds = match name {
                "page" => (1, 10_000_000),
                "per_page" => (1, 100),
                _ => continue,
            };
            assert_eq!(parameter["in"], "query", "{method} {path} {name}");
            let schema = resolve(&doc, &parameter["schema"]);
            assert_eq!(
                (schema["minimum"].as_i64(), schema["maximum"].as_i64()),
                (Some(bounds.0), Some(bounds.1)),
                "{method} {path} {name}: {schema}"
            );
            paged.insert(format!("{method} {path} {name}"));
        }
    }
    let expected: BTreeSet<String> = [
        format!("get {PREFIX}/events"),
        "get /api/users".to_string(),
        "get /api/users/{id}/events".to_string(),
    ]
    .into_iter()
    .flat_map(|op| [format!("{op} page"), format!("{op} per_page")])
    .collect();
    assert_eq!(paged, expected);
});

both_backends!(
    openapi_documents_the_answers_to_bad_bodies,
    |app| async move {
        // Every operation that takes a body is sent a wrong Content-Type, a body
        // that is not JSON (where it takes JSON) and one over 64 KiB; each answer
        // must be a status the document lists for that operation, and in the
        // envelope wherever the document says the envelope.
        let doc = openapi(&app).await;
        let user = app.register("bodies@example.com", PASSWORD).await;
        // A superuser, so that the admin routes read the body too: refused
        // before it is read, the 70 KiB body would meet a closed connection.
        sqlx::query("UPDATE users SET is_superuser = TRUE WHERE id = $1")
            .bind(user.user_id)
            .execute(app.store().pool())
            .await
            .unwrap();
        app.store().catch_up().await.unwrap();
        let oversized = "x".repeat(70 * 1024);
        let mut checked = 0;
        for (method, path, op) in operations(&doc) {
            let Some(content) = op["requestBody"]["content"].as_object() else {
                continue;
            };
            let takes_json = content.contains_key("application/json");
            let media = content.keys().next().expect("a media type").clone();
            let mut cases = vec![
                ("text/plain", "hello".to_string()),
                (media.as_str(), oversized.clone()),
            ];
            if takes_json {
                cases.push(("application/json", "{\"email\": ".to_string()));
            }
            for (content_type, body) in cases {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut request = app
                    .client
                    .request(method.clone(), app.url(&path))
                    .header("content-type", content_type)
                    .body(body.clone());
                if op["security"].is_array() {
                    request = request.bearer_auth(&user.access);
                }
                let reply = app.send_unchecked(request).await;
                let status = reply.status.as_str().to_string();
                let documented = &op["responses"][&status];
                assert!(
                    documented.is_object(),
                    "{method} {path} with {content_type} ({} bytes) answered {status}, which /openapi.json does not list: {}",
                    body.len(),
                    reply.text()
                );
                if documented["content"]["application/json"]["schema"]["$ref"]
                    == "#/components/schemas/Error"
                {
                    assert_eq!(
                        reply.body["success"],
                        false,
                        "{method} {path} {status}: not the envelope: {}",
                        reply.text()
                    );
                }
                checked += 1;
            }
        }
        assert!(checked >= 40, "only {checked} bad bodies were sent");
        // None of it logged the user out.
        app.me(&user.access).await.expect_ok(StatusCode::OK);
    }
);

/// The prefix of [`openapi_json_follows_the_route_prefix`].
const OTHER_PREFIX: &str = "/v2/identity";

both_backends!(
    openapi_json_follows_the_route_prefix,
    vars[("AUTH_ROUTE_PREFIX", OTHER_PREFIX)],
    |app| async move {
        let prefix = OTHER_PREFIX;
        let doc = openapi(&app).await;
        assert_eq!(
            doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"],
            format!("{prefix}/login")
        );
        // The pages are off here (the test default): the document leaves
        // them out, as the router does.
        for route in routes_in_source() {
            let (method, path) = route.served_at(prefix);
            if route.pages_only {
                assert!(
                    doc["paths"][&path].is_null(),
                    "{path} is described though the pages are off"
                );
                continue;
            }
            assert!(
                doc["paths"][&path][&method].is_object(),
                "{method} {path} is not in /openapi.json"
            );
        }
        let stale: Vec<&String> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|p| p.starts_with(&format!("{PREFIX}/")))
            .collect();
        assert!(
            stale.is_empty(),
            "paths under the default prefix: {stale:?}"
        );
        // And the token URL is where the login really is.
        let user = app.register_raw("erin@example.com", PASSWORD).await;
        assert_eq!(
            user.status,
            StatusCode::NOT_FOUND,
            "the default prefix still answers"
        );
        let registered = app
            .send(
                app.client
                    .post(app.url(&format!("{prefix}/register")))
                    .json(&serde_json::json!({"email": "erin@example.com", "password": PASSWORD})),
            )
            .await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{}",
            registered.text()
        );
        let login = app
            .send(
                app.client
                    .post(app.url(&format!("{prefix}/login")))
                    .form(&[("username", "erin@example.com"), ("password", PASSWORD)]),
            )
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text());
        assert!(login.body["access_token"].is_string(), "{}", login.text());
    }
);

// ---- Swagger UI in a browser -----------------------------------------------------

/// The page's HTML, for failure messages.
async fn page_source(client: &Client) -> String {
    client.source().await.unwrap_or_default()
}

/// Waits for the first element at `locator`.
async fn wait_element(client: &Client, locator: Locator<'_>, what: &str) -> Element {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(element) = client.find(locator).await {
            return element;
        }
        if Instant::now() >= deadline {
            panic!(
                "the page never showed {what}; it is:\n{}",
                page_source(client).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the text of the elements at `css`, joined by newlines,
/// satisfies `ok`; that text.
async fn wait_text(client: &Client, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    let mut last = String::new();
    loop {
        if let Ok(elements) = client.find_all(Locator::Css(css)).await {
            let mut texts = Vec::new();
            for element in elements {
                texts.push(element.text().await.unwrap_or_default());
            }
            last = texts.join("\n");
            if ok(&last) {
                return last;
            }
        }
        if Instant::now() >= deadline {
            panic!(
                "the page never showed {what} in {css}; its text there was {last:?}; the page is:\n{}",
                page_source(client).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until nothing is at `css`.
async fn wait_gone(client: &Client, css: &str, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    while client
        .find_all(Locator::Css(css))
        .await
        .is_ok_and(|found| !found.is_empty())
    {
        if Instant::now() >= deadline {
            panic!(
                "{what} never went away; the page is:\n{}",
                page_source(client).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Scrolls `element` into the middle of the window and clicks it.
async fn click(client: &Client, element: &Element) {
    scroll_to(client, element).await;
    element.click().await.expect("click");
}

async fn scroll_to(client: &Client, element: &Element) {
    let arg = serde_json::to_value(element).expect("element as a script argument");
    client
        .execute("arguments[0].scrollIntoView({block: 'center'});", vec![arg])
        .await
        .expect("scroll");
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = wait_element(client, Locator::Css(css), css).await;
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// The OAuth2 part of the Authorize dialog (the one with the password form).
const OAUTH_BOX: &str =
    "//div[contains(@class, 'auth-container')][.//h4[contains(., 'OAuth2PasswordBearer')]]";

/// A button of the OAuth2 part of the dialog, by its label.
async fn oauth_button(client: &Client, label: &str) -> Element {
    let xpath = format!("{OAUTH_BOX}//button[normalize-space(.) = '{label}']");
    wait_element(
        client,
        Locator::XPath(&xpath),
        &format!("the dialog's {label} button"),
    )
    .await
}

/// The text of the OAuth2 part of the dialog.
async fn oauth_box_text(client: &Client) -> String {
    let element = wait_element(
        client,
        Locator::XPath(OAUTH_BOX),
        "the OAuth2 part of the dialog",
    )
    .await;
    element.text().await.unwrap_or_default()
}

/// Waits until the OAuth2 part of the dialog satisfies `ok`; its text.
async fn wait_oauth_box(client: &Client, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = oauth_box_text(client).await;
        if ok(&text) {
            return text;
        }
        if Instant::now() >= deadline {
            panic!(
                "the Authorize dialog never showed {what}; it read {text:?}; the page is:\n{}",
                page_source(client).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn swagger_authorize_then_execute_me(client: Client, app: &TestApp) {
    let email = "carol@example.com";
    let registered = app.register(email, PASSWORD).await;

    // Swagger UI renders the document.
    client.goto(&app.url("/docs/")).await.expect("open /docs/");
    wait_text(
        &client,
        ".swagger-ui .info .title",
        "the API's title",
        |t| t.contains("Portcullis"),
    )
    .await;
    let me_block = format!(
        "//div[contains(@class, 'opblock-get')][.//*[contains(@class, 'opblock-summary-path') and @data-path='{PREFIX}/me']]"
    );
    wait_element(&client, Locator::XPath(&me_block), "the GET /me operation").await;

    // The Authorize button opens the dialog with the password flow.
    let authorize = wait_element(
        &client,
        Locator::Css(".auth-wrapper button.authorize"),
        "the Authorize button",
    )
    .await;
    click(&client, &authorize).await;
    let dialog = wait_oauth_box(&client, "the password flow", |t| {
        t.contains("OAuth2PasswordBearer") && t.contains("password")
    })
    .await;
    assert!(
        dialog.contains(&format!("{PREFIX}/login")),
        "the dialog does not show the token URL: {dialog}"
    );

    // A wrong password: Swagger UI shows the failed login.
    fill(&client, "#oauth_username", email).await;
    fill(&client, "#oauth_password", "Not-The-Password-1").await;
    click(&client, &oauth_button(&client, "Authorize").await).await;
    // Swagger UI shows "Auth Error" with the status text ("Error:
    // Unauthorized") and the OAuth2 `error_description` that the served
    // initializer translates from the envelope.
    let failed = wait_oauth_box(&client, "an auth error", |t| t.contains("Auth Error")).await;
    assert!(failed.contains("Error: Unauthorized"), "{failed}");
    assert!(failed.contains("Invalid email or password"), "{failed}");
    assert!(!failed.contains("[object Object]"), "{failed}");
    assert!(
        !failed.contains("Logout"),
        "authorized with a wrong password: {failed}"
    );

    // The right password: authorized.
    fill(&client, "#oauth_password", PASSWORD).await;
    click(&client, &oauth_button(&client, "Authorize").await).await;
    let authorized = wait_oauth_box(&client, "the authorized state", |t| {
        t.contains("Authorized") && t.contains("Logout")
    })
    .await;
    assert!(authorized.contains(email), "{authorized}");
    assert!(!authorized.contains("Auth Error"), "{authorized}");
    // Nothing of the Authorize form is kept in the browser's storage.
    let stored = client
        .execute(
            "return JSON.stringify(window.localStorage) + JSON.stringify(window.sessionStorage);",
            vec![],
        )
        .await
        .expect("read the storage");
    let stored = stored.as_str().unwrap_or_default().to_string();
    assert!(
        !stored.contains(PASSWORD),
        "the password is stored: {stored}"
    );
    assert!(
        !stored.contains("authorized"),
        "the authorization is stored: {stored}"
    );
    click(&client, &oauth_button(&client, "Close").await).await;
    wait_gone(&client, ".dialog-ux", "the Authorize dialog").await;
    // The page-level button now shows a closed padlock.
    wait_element(
        &client,
        Locator::Css(".auth-wrapper button.authorize.locked"),
        "the locked Authorize button",
    )
    .await;

    // GET /me: expand it, Try it out, Execute.
    let summary = wait_element(
        &client,
        Locator::XPath(&format!(
            "{me_block}//*[contains(@class, 'opblock-summary-control')]"
        )),
        "the GET /me summary",
    )
    .await;
    click(&client, &summary).await;
    let try_out = wait_element(
        &client,
        Locator::XPath(&format!(
            "{me_block}//button[contains(@class, 'try-out__btn')]"
        )),
        "the Try it out button",
    )
    .await;
    // The UI is configured with `tryItOutEnabled`: operations open in
    // try-out mode already, and the button offers to "Cancel" it.
    let label = try_out.text().await.unwrap_or_default();
    match label.trim() {
        "Try it out" => click(&client, &try_out).await,
        "Cancel" => {}
        other => panic!("unexpected try-out button {other:?}"),
    }
    let execute = wait_element(
        &client,
        Locator::XPath(&format!("{me_block}//button[contains(@class, 'execute')]")),
        "the Execute button",
    )
    .await;
    click(&client, &execute).await;

    let status_css = ".opblock-get.is-open .live-responses-table .response .response-col_status";
    let status = wait_text(&client, status_css, "the response status", |t| {
        !t.trim().is_empty()
    })
    .await;
    let body_css = ".opblock-get.is-open .live-responses-table .response .response-col_description .highlight-code pre";
    let body = wait_text(&client, body_css, "the response body", |t| {
        !t.trim().is_empty()
    })
    .await;
    assert_eq!(status.trim(), "200", "GET /me answered {status}: {body}");
    let body: Value = serde_json::from_str(body.trim())
        .unwrap_or_else(|e| panic!("the response shown is not JSON ({e}): {body}"));
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(body["data"]["email"], email, "{body}");
    assert_eq!(body["data"]["id"], registered.user_id, "{body}");

    // The request carried the token that /login gave the dialog: a new
    // session's, not the one from registering.
    let curl = wait_text(
        &client,
        ".opblock-get.is-open .curl-command",
        "the curl command",
        |t| t.contains("Authorization: Bearer "),
    )
    .await;
    let token = curl
        .split("Authorization: Bearer ")
        .nth(1)
        .and_then(|rest| rest.split(['\'', '"', '\\', '\n', ' ']).next())
        .unwrap_or_default()
        .to_string();
    assert_eq!(token.split('.').count(), 3, "not a JWT in {curl}");
    assert_ne!(
        token, registered.access,
        "the registration's token was used"
    );
    let me = app.me(&token).await;
    assert_eq!(me.expect_ok(StatusCode::OK)["email"], email);
    assert_eq!(app.sessions(&token).await.len(), 2, "register + Authorize");

    let response = wait_element(
        &client,
        Locator::Css(".opblock-get.is-open .live-responses-table"),
        "the responses table",
    )
    .await;
    scroll_to(&client, &response).await;
    let png = client.screenshot().await.expect("screenshot");
    write_screenshot(SCREENSHOT, &png);
}

both_backends!(
    #[cfg_attr(skip_browser, ignore = "PORTCULLIS_SKIP_BROWSER is set")]
    swagger_ui_authorize_then_execute,
    |app| async move {
        let profile = tempfile::tempdir().expect("temporary directory");
        let (driver, client) = browser_sized(profile.path(), (1280, 1000)).await;
        run_then_close(
            driver,
            client.clone(),
            swagger_authorize_then_execute_me(client, &app),
        )
        .await;
    }
);

// ---- the README ------------------------------------------------------------------

/// The source of every file under `src/config/`, one after the other.
fn config_source() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/config");
    let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .expect("read src/config/")
        .map(|entry| entry.expect("list src/config/").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no .rs files in src/config/");
    paths
        .iter()
        .map(|path| std::fs::read_to_string(path).expect("read a file of src/config/"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names of the settings the files of `src/config/` read
/// (`src.get("NAME")`, `src.flag(…)`, …), found in their source.
fn settings_read_by_config() -> BTreeSet<String> {
    let source = config_source();
    let mut names = BTreeSet::new();
    for accessor in [
        ".get(",
        ".flag(",
        ".parse(",
        ".positive(",
        ".list(",
        ".duration(",
    ] {
        for (at, _) in source.match_indices(accessor) {
            let rest = source[at + accessor.len()..].trim_start();
            let Some(quoted) = rest.strip_prefix('"') else {
                continue;
            };
            let name: String = quoted.chars().take_while(|c| *c != '"').collect();
            let is_setting = name.len() >= 4
                && name.starts_with(|c: char| c.is_ascii_uppercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if is_setting {
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn the_readme_documents_every_setting() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let settings = settings_read_by_config();
    // The scan is real: it finds the settings of SPEC §2 that are implemented.
    for known in [
        "SECRET_KEY",
        "DATABASE_URL",
        "APP_URL",
        "MAIL_FROM",
        "AUTH_ROUTE_PREFIX",
        "PORT",
    ] {
        assert!(
            settings.contains(known),
            "{known} not found in src/config/: {settings:?}"
        );
    }
    let undocumented: Vec<&String> = settings
        .iter()
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "settings read by src/config/ but missing from the README: {undocumented:?}"
    );
}
