//! Build script: `PORTCULLIS_SKIP_BROWSER=1` at build time sets the cfg
//! `skip_browser`, which marks the browser tests ignored (they show as
//! such in the test report instead of passing without a browser).
//!
//! It also lists the pages' language catalogues, `assets/i18n/*.json`, into
//! `$OUT_DIR/catalogues.rs` (SPEC §12: adding a language is adding a file).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(skip_browser)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PORTCULLIS_SKIP_BROWSER");
    catalogues();
    if std::env::var("PORTCULLIS_SKIP_BROWSER").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=skip_browser");
    }
}

/// Writes `$OUT_DIR/catalogues.rs`: `&[("en", include_str!(…)), …]`, one
/// entry per `assets/i18n/<language>.json`, sorted by language.
fn catalogues() {
    let dir = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"))
        .join("assets/i18n");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut entries: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("read assets/i18n")
        .map(|entry| entry.expect("list assets/i18n").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            println!("cargo::rerun-if-changed={}", path.display());
            let lang = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("a catalogue's name is its language")
                .to_string();
            (lang, path.display().to_string())
        })
        .collect();
    entries.sort();
    let mut code = String::from("&[\n");
    for (lang, path) in entries {
        code.push_str(&format!("    ({lang:?}, include_str!({path:?})),\n"));
    }
    code.push_str("]\n");
    let out =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("catalogues.rs");
    std::fs::write(out, code).expect("write catalogues.rs");
}
