//! The pages' texts: one catalogue per language, `assets/i18n/<lang>.json`
//! (a flat object of keys and texts), built into the binary by `build.rs`;
//! adding a language is adding one file. `Accept-Language` picks among
//! them (RFC 9110 §12.5.4, with q-values); English is the fallback, for a
//! language and for a key missing from a catalogue.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

/// Every catalogue as shipped: `(language, JSON text)`, sorted by language.
const SHIPPED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/catalogues.rs"));

/// The language every page falls back to.
pub const FALLBACK: &str = "en";

type Catalogue = HashMap<String, String>;

fn catalogues() -> &'static HashMap<&'static str, Catalogue> {
    static CATALOGUES: OnceLock<HashMap<&'static str, Catalogue>> = OnceLock::new();
    CATALOGUES.get_or_init(|| {
        SHIPPED
            .iter()
            .map(|(lang, json)| {
                // A malformed catalogue is a build mistake that the unit
                // tests catch; it then only loses its texts (English shows).
                let catalogue: Catalogue = serde_json::from_str(json).unwrap_or_else(|e| {
                    tracing::error!(language = lang, error = %e, "language catalogue is not valid JSON");
                    Catalogue::new()
                });
                (*lang, catalogue)
            })
            .collect()
    })
}

/// The languages shipped, sorted.
pub fn languages() -> Vec<&'static str> {
    SHIPPED.iter().map(|(lang, _)| *lang).collect()
}

/// A shipped language, chosen for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lang(pub &'static str);

impl Lang {
    /// The text of `key` in this language, else in English, else the key.
    pub fn t(self, key: &str) -> &'static str {
        let all = catalogues();
        [self.0, FALLBACK]
            .iter()
            .find_map(|lang| all.get(lang).and_then(|c| c.get(key)))
            .map_or_else(|| leak_key(key), String::as_str)
    }

    /// [`Lang::t`] with `{name}` placeholders replaced by `values` (which
    /// are not escaped: escape the result when it goes into HTML).
    pub fn format(self, key: &str, values: &[(&str, &str)]) -> String {
        values
            .iter()
            .fold(self.t(key).to_string(), |text, (name, value)| {
                text.replace(&format!("{{{name}}}"), value)
            })
    }

    /// The texts the pages' script needs (`error.*` and `js.*`), as a JSON
    /// object in this language with English filling the gaps.
    pub fn script_texts(self) -> String {
        let all = catalogues();
        let mut texts: std::collections::BTreeMap<&str, &str> = Default::default();
        for lang in [FALLBACK, self.0] {
            if let Some(catalogue) = all.get(lang) {
                for (key, text) in catalogue {
                    if key.starts_with("error.") || key.starts_with("js.") {
                        texts.insert(key, text);
                    }
                }
            }
        }
        serde_json::to_string(&texts).unwrap_or_else(|_| "{}".into())
    }

    /// The best shipped language for an `Accept-Language` header value.
    pub fn negotiate(accept_language: Option<&str>) -> Lang {
        let shipped = languages();
        let mut ranges: Vec<(f32, usize, String)> = accept_language
            .unwrap_or_default()
            .split(',')
            .enumerate()
            .filter_map(|(order, item)| {
                let mut parts = item.split(';');
                let range = parts.next()?.trim().to_ascii_lowercase();
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (!range.is_empty() && q > 0.0 && q <= 1.0).then_some((q, order, range))
            })
            .collect();
        // Highest q first; among equals, the order the client gave.
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, range) in ranges {
            if range == "*" {
                break;
            }
            let primary = range.split('-').next().unwrap_or_default();
            if let Some(lang) = shipped.iter().find(|lang| **lang == primary) {
                return Lang(lang);
            }
        }
        Lang(FALLBACK)
    }
}

/// A key without a text: shown as itself (interned, so that texts are
/// always `'static`; the set of keys is the code's, and small).
fn leak_key(key: &str) -> &'static str {
    static MISSING: OnceLock<std::sync::Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let mut missing = MISSING
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(text) = missing.get(key) {
        return text;
    }
    let text: &'static str = Box::leak(key.to_string().into_boxed_str());
    missing.insert(key.to_string(), text);
    text
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Ok(Lang::negotiate(header))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_has_every_key_of_the_english_one() {
        let all = catalogues();
        assert!(languages().len() >= 2, "{:?}", languages());
        let english = all.get(FALLBACK).expect("an English catalogue");
        assert!(english.len() > 20);
        for (lang, json) in SHIPPED {
            let catalogue: Catalogue = serde_json::from_str(json).expect("valid JSON");
            let mut missing: Vec<&String> = english
                .keys()
                .filter(|k| !catalogue.contains_key(*k))
                .collect();
            missing.sort();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
            let mut extra: Vec<&String> = catalogue
                .keys()
                .filter(|k| !english.contains_key(*k))
                .collect();
            extra.sort();
            assert!(extra.is_empty(), "{lang} has keys English lacks: {extra:?}");
        }
    }

    #[test]
    fn accept_language_is_negotiated_with_q_values() {
        for (header, want) in [
            (None, "en"),
            (Some(""), "en"),
            (Some("fr"), "fr"),
            (Some("fr-CH, fr;q=0.9, en;q=0.8"), "fr"),
            (Some("de, fr;q=0.5, en;q=0.7"), "en"),
            (Some("en;q=0.2, FR-ca;q=0.9"), "fr"),
            (Some("fr;q=0, en"), "en"),
            (Some("de, *;q=0.5"), "en"),
            (Some("de-DE,de;q=0.9"), "en"),
            (Some("fr;q=bogus"), "fr"),
        ] {
            assert_eq!(Lang::negotiate(header), Lang(want), "{header:?}");
        }
    }

    #[test]
    fn texts_fall_back_to_english_then_to_the_key() {
        assert_eq!(Lang("fr").t("sign_in.title"), "Connexion");
        assert_eq!(Lang("en").t("sign_in.title"), "Sign in");
        assert_eq!(Lang("en").t("no.such.key"), "no.such.key");
        assert_eq!(
            Lang("en").format("js.retry_after", &[("seconds", "5")]),
            "Try again in 5 seconds."
        );
        let texts: serde_json::Value = serde_json::from_str(&Lang("fr").script_texts()).unwrap();
        assert_eq!(
            texts["error.INVALID_CREDENTIALS"],
            "L’adresse e-mail ou le mot de passe est incorrect."
        );
        assert!(texts.get("sign_in.title").is_none());
    }
}
