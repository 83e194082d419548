//! Build script: `PORTCULLIS_SKIP_BROWSER=1` at build time sets the cfg
//! `skip_browser`, which marks the browser tests ignored (they show as
//! such in the test report instead of passing without a browser).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(skip_browser)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PORTCULLIS_SKIP_BROWSER");
    if std::env::var("PORTCULLIS_SKIP_BROWSER").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=skip_browser");
    }
}
