//! Background tasks that keep the state current while serving: following the model
//! registry's active version (the experiment console's revisions: `console::watch_console`).

use std::path::PathBuf;
use std::sync::Arc;

use super::AppState;

/// Keeps the engine on the registry's active model (`marquee train`, `models activate`,
/// `models rollback`) and on the model versions experiments name for some rows. A new engine is
/// built beside the old one and swapped in one atomic store: requests in flight finish on the
/// engine they started with.
pub fn watch_models(state: &Arc<AppState>, data_dir: PathBuf, rows: Option<PathBuf>) {
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        // What the last build was for, so a version that cannot load is not retried forever.
        let mut last_attempt: Option<(String, Vec<String>)> = None;
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else {
                return;
            };
            let active = match state.store.active_model().await {
                Ok(Some(m)) => m.version,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot read the model registry");
                    continue;
                }
            };
            // Drafts too: previews force their variations.
            let wanted: Vec<String> = state
                .preview_features
                .load()
                .model_versions()
                .into_iter()
                .filter(|v| *v != active)
                .collect();
            let current = state.engine.load();
            let mut loaded: Vec<String> = current.alternates.keys().cloned().collect();
            loaded.sort();
            let up_to_date = current.model.version == active && loaded == wanted;
            let attempt = (active.clone(), wanted.clone());
            if up_to_date || last_attempt.as_ref() == Some(&attempt) {
                continue;
            }
            last_attempt = Some(attempt);
            let loaded = match super::models::page_definition(rows.as_deref()) {
                Ok(home) => {
                    super::models::load_engine(&state.store, &data_dir, home, &wanted).await
                }
                Err(e) => Err(e),
            };
            match loaded {
                Ok(engine) => {
                    tracing::info!(model = %active, alternates = ?wanted, "engine swapped");
                    state.engine.store(Arc::new(engine));
                    // The old model's segment and candidate lists are never asked for again
                    // (their keys name it): free them now rather than at their time to live.
                    state.serving.segments.clear();
                    state.serving.lists.clear();
                }
                // Keep serving the current engine; try again when the choice changes.
                Err(e) => {
                    tracing::error!(model = %active, error = %format!("{e:#}"), "cannot load the active model")
                }
            }
        }
    });
}
