//! The pages' stylesheet and script, files of `assets/pages/` built into
//! the binary: no build step, nothing from the network.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{SCRIPT_PATH, STYLESHEET_PATH};
use crate::http::AppState;

const STYLESHEET: &str = include_str!("../../../assets/pages/portcullis.css");
const SCRIPT: &str = include_str!("../../../assets/pages/portcullis.js");

/// Short: a new version of the binary reaches browsers within minutes.
const CACHE: &str = "public, max-age=300";

/// The pages' stylesheet, `PAGES_ACCENT_COLOR` first.
#[utoipa::path(get, path = STYLESHEET_PATH, tag = "pages",
    responses((status = 200, description = "CSS", body = String, content_type = "text/css")))]
pub async fn stylesheet(State(state): State<AppState>) -> Response {
    let css = match &state.config.pages.accent_color {
        // Checked at start-up to be `#rgb` or `#rrggbb`.
        Some(color) => format!("{STYLESHEET}\n:root {{ --accent: {color}; }}\n"),
        None => STYLESHEET.to_string(),
    };
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        css,
    )
        .into_response()
}

/// The pages' script: a client of the JSON API.
#[utoipa::path(get, path = SCRIPT_PATH, tag = "pages",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript")))]
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
        .into_response()
}
