//! Helpers for the tests that drive Portcullis's pages (SPEC §12) in
//! Chromium: scripts, waits, fields, buttons and screenshots.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use super::write_screenshot;

/// Where the page tests save their screenshots (the README shows some).
pub const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/screenshots");

/// Saves `png` as `target/screenshots/<name>.png`.
pub fn screenshot(png: &[u8], name: &str) {
    std::fs::create_dir_all(SCREENSHOTS).expect("create target/screenshots");
    write_screenshot(&format!("{SCREENSHOTS}/{name}.png"), png);
}

/// Runs `script` (a function body) in the page; its return value.
pub async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Waits (15 s at most) until `condition` (a JS expression) is truthy.
pub async fn wait_until(client: &Client, condition: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if js(client, &format!("return !!({condition});")).await == json!(true) {
            return;
        }
        if Instant::now() >= deadline {
            let url = client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let source = client.source().await.unwrap_or_default();
            panic!("{what}: never happened at {url}; the page is:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the page's `h1` reads `heading`.
pub async fn wait_for_heading(client: &Client, heading: &str) {
    wait_until(
        client,
        &format!(
            "document.querySelector('h1') && document.querySelector('h1').textContent.trim() === {}",
            json!(heading)
        ),
        &format!("the heading {heading:?}"),
    )
    .await;
}

/// Clears the field at `css` and types `text` into it.
pub async fn fill(client: &Client, css: &str, text: &str) {
    let field = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// Clicks the element at `css`.
pub async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}
