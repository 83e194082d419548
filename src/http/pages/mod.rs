//! The HTML pages (SPEC §12), served at the root: the two the mails link to
//! (`/reset-password`, `/verify-email`, always served, in [`links`]) and,
//! with `PAGES_ENABLED`, the pages a person signs in, signs up and manages
//! the account with ([`screens`]), clients of the JSON API.
//!
//! - [`render`]: the shell every page shares and its headers (the CSP);
//! - [`i18n`]: the catalogues and `Accept-Language`;
//! - [`redirect`]: where `redirect_to` may lead;
//! - [`assets`]: the stylesheet and the script.

pub mod assets;
pub mod i18n;
pub mod links;
pub mod redirect;
pub mod render;
pub mod screens;

// Globs: the handlers and the `#[utoipa::path]` items generated beside them.
pub use assets::*;
pub use links::*;
pub use screens::*;

/// Path of the pages' stylesheet.
pub const STYLESHEET_PATH: &str = "/assets/portcullis.css";

/// Path of the pages' script (served only with `PAGES_ENABLED`).
pub const SCRIPT_PATH: &str = "/assets/portcullis.js";

/// The paths of the pages served with `PAGES_ENABLED` (the routes are in
/// `http::routes`; the API document leaves them out when pages are off).
pub const PAGE_PATHS: &[&str] = &[
    "/sign-in",
    "/sign-up",
    "/forgot-password",
    "/account",
    SCRIPT_PATH,
];
