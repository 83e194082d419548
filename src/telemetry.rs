//! Telemetry set-up: logs (JSON lines or pretty output, filtered by
//! `RUST_LOG`, default `info`) and the Prometheus metrics recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global log subscriber; a second call does nothing.
pub fn init(format: LogFormat) {
    init_with_default(format, "info,sqlx=warn,tower_http=warn");
}

/// Like [`init`], with `default_filter` where `RUST_LOG` is not set (the
/// `user` commands leave out sqlx's slow-statement warnings, which quote
/// a whole batch of an import).
pub fn init_with_default(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// How often the recorder folds the samples of its histograms into their
/// summaries.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The process-wide Prometheus recorder, installed on first use. If the
/// application installed another recorder first, Portcullis's metrics go to
/// that one and `/metrics` stays empty.
///
/// A thread runs the recorder's upkeep every five seconds: without it every
/// histogram sample (one per request) was kept until the next scrape, so
/// memory grew with the traffic when nothing scraped.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::debug!("a metrics recorder was already installed");
        }
        let upkeep = handle.clone();
        let started = std::thread::Builder::new()
            .name("portcullis-metrics".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        handle
    })
}
