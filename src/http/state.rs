//! The state every handler and extractor receives.

use std::sync::Arc;

use crate::flows::Flows;

/// Shared state of every Portcullis handler and extractor; cheap to clone.
/// It holds the [`Flows`] (and derefs to them), so a handler reaches the
/// account rules as `state.flows` and the parts as `state.store`,
/// `state.config`, ….
///
/// Applications with their own state implement `FromRef<TheirState>` for
/// `AppState` so that the extractors work in their handlers too.
#[derive(Clone)]
pub struct AppState {
    /// The account rules and the parts they use.
    pub flows: Arc<Flows>,
}

impl AppState {
    /// The state around `flows`.
    pub fn new(flows: Arc<Flows>) -> Self {
        Self { flows }
    }
}

impl std::ops::Deref for AppState {
    type Target = Flows;
    fn deref(&self) -> &Flows {
        &self.flows
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}
