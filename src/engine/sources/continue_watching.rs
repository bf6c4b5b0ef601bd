//! Continue Watching: titles in progress, most recently watched first.

use serde::Deserialize;

use super::{Candidate, CandidateSource, SourceContext, SourcedRow};
use crate::domain::{Millis, Progress};
use crate::engine::catalog::TitleIdx;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContinueWatchingParams {
    /// Below this, the profile merely sampled the title.
    pub min_progress: f64,
    /// Above this, the credits are rolling: the title counts as finished.
    pub max_progress: f64,
}

impl Default for ContinueWatchingParams {
    fn default() -> Self {
        Self {
            min_progress: 0.05,
            max_progress: 0.9,
        }
    }
}

/// Titles in progress, most recently watched first.
#[derive(Debug)]
pub struct ContinueWatching(pub ContinueWatchingParams);

impl CandidateSource for ContinueWatching {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        let p = &self.0;
        let mut watching: Vec<(TitleIdx, Millis, Progress)> = ctx
            .history
            .states()
            .filter(|s| !s.is_watched())
            .filter(|s| (p.min_progress..=p.max_progress).contains(&s.progress.get()))
            .filter_map(|s| {
                let t = ctx.catalog.idx(&s.title_id)?;
                Some((t, s.last_watched_at?, s.progress))
            })
            .filter(|(t, _, _)| (ctx.eligible)(*t))
            .collect();
        watching.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let n = watching.len();
        SourcedRow::single(
            watching
                .into_iter()
                .enumerate()
                .map(|(rank, (title, _, progress))| Candidate {
                    title,
                    // Recency rank is the order; keep scores strictly decreasing.
                    score: (n - rank) as f32,
                    reason: Some(format!("{:.0}% watched", progress.get() * 100.0)),
                    evidence: vec![],
                    progress: Some(progress),
                })
                .collect(),
        )
    }
}
