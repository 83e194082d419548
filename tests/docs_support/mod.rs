//! The routes Portcullis's router serves, read from `src/http/routes.rs`, for
//! `tests/docs.rs` to hold `/openapi.json` to.

/// The methods OpenAPI names, in its spelling.
pub const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One route `src/http/routes.rs` registers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// Lower case, as OpenAPI spells methods.
    pub method: String,
    /// The path as registered.
    pub path: String,
    /// Registered in `auth_routes(prefix)`, under the prefix.
    pub under_prefix: bool,
    /// Registered in `page_routes()`: served only with `PAGES_ENABLED`.
    pub pages_only: bool,
}

impl Route {
    /// Method and full path when the auth routes are under `prefix`.
    pub fn served_at(&self, prefix: &str) -> (String, String) {
        let prefix = if self.under_prefix { prefix } else { "" };
        (self.method.clone(), format!("{prefix}{}", self.path))
    }
}

/// `text` from just after an opening parenthesis up to its closing one.
fn up_to_closing_paren(text: &str) -> &str {
    let mut depth = 1;
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..at];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in src/http/routes.rs")
}

/// The routes of Portcullis's router, read from `src/http/routes.rs`: every
/// `.route(PATH, get(…).post(…))` call, those in `auth_routes(prefix)` (as
/// `&at(PATH)`) under the prefix. The scan refuses to guess: a way of adding routes it does not
/// read, or a path it cannot resolve, fails it, and
/// `openapi_json_describes_every_served_route` checks what it finds against
/// the running router.
pub fn routes_in_source() -> Vec<Route> {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/routes.rs"))
            .expect("read src/http/routes.rs");
    for other in [".route_service(", ".nest_service(", ".fallback_service("] {
        assert!(
            !source.contains(other),
            "routes.rs uses {other}, which this scan does not read: extend it"
        );
    }
    assert!(
        !source.contains(".nest("),
        "routes.rs nests a router: extend the scan"
    );
    assert!(
        source.contains(".merge(auth_routes(prefix))"),
        "routes.rs no longer merges auth_routes(prefix): extend the scan"
    );
    for (at, _) in source.match_indices(".merge(") {
        let merged = up_to_closing_paren(&source[at + ".merge(".len()..]);
        assert!(
            merged == "routes"
                || merged == "auth_routes(prefix)"
                || merged == "page_routes()"
                || merged.starts_with("openapi::swagger_ui("),
            "routes.rs merges {merged}, which this scan does not read: extend it"
        );
    }
    let auth_start = source
        .find("fn auth_routes(prefix: &str)")
        .expect("fn auth_routes");
    let auth_end = auth_start + source[auth_start..].find("\n}\n").expect("its end");
    let pages_start = source.find("fn page_routes()").expect("fn page_routes");
    let pages_end = pages_start + source[pages_start..].find("\n}\n").expect("its end");
    let mut routes = Vec::new();
    for (at, _) in source.match_indices(".route(") {
        let args = up_to_closing_paren(&source[at + ".route(".len()..]);
        let (path, handlers) = args.split_once(',').expect("path, handler");
        let path = match path.trim() {
            quoted if quoted.starts_with('"') => quoted.trim_matches('"').to_string(),
            // In auth_routes(): `&at("/me")`, the path under the prefix.
            prefixed if prefixed.starts_with("&at(\"") && prefixed.ends_with("\")") => {
                prefixed["&at(\"".len()..prefixed.len() - "\")".len()].to_string()
            }
            "pages::STYLESHEET_PATH" => portcullis::http::pages::STYLESHEET_PATH.to_string(),
            "pages::SCRIPT_PATH" => portcullis::http::pages::SCRIPT_PATH.to_string(),
            "METRICS_PATH" => portcullis::http::routes::METRICS_PATH.to_string(),
            other => panic!("the scan cannot resolve the path {other}: extend it"),
        };
        let before = |i: usize| handlers[..i].chars().last();
        let methods: Vec<&str> = HTTP_METHODS
            .iter()
            .copied()
            .filter(|m| {
                handlers.match_indices(&format!("{m}(")).any(|(i, _)| {
                    !before(i).is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                })
            })
            .collect();
        assert!(!methods.is_empty(), "no method found in .route({args})");
        for method in methods {
            routes.push(Route {
                method: method.to_string(),
                path: path.clone(),
                under_prefix: (auth_start..auth_end).contains(&at),
                pages_only: (pages_start..pages_end).contains(&at),
            });
        }
    }
    routes.sort();
    routes
}
