//! Trending (per country) and Popular (overall): the rows that need no history.

use serde::Deserialize;

use rustc_hash::FxHashSet;

use super::{CandidateSource, SourceContext, SourcedRow};
use crate::engine::catalog::TitleIdx;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Trending in the profile's country: what the event stream counts right now
/// (`SourceContext::live_trending`) first, then the time-decayed popularity computed at
/// training time, which fills the row while little is happening.
#[derive(Debug)]
pub struct Trending(pub NoParams);

impl CandidateSource for Trending {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        let trained = ctx.model.trending(ctx.profile.country.as_ref());
        let live = ctx.live_trending.unwrap_or(&[]);
        if live.is_empty() {
            return SourcedRow::single(ctx.top_of_ordered(trained));
        }
        // Each list scaled to its best, live ones above (1–2) the trained ones (0–1): what
        // is played now outranks what was popular when the model was trained.
        let best = |l: &[(TitleIdx, f32)]| l.iter().map(|e| e.1).fold(f32::MIN_POSITIVE, f32::max);
        let (live_best, trained_best) = (best(live), best(trained));
        let mut seen = FxHashSet::default();
        let merged = live
            .iter()
            .map(|&(t, s)| (t, 1.0 + s.max(0.0) / live_best))
            .chain(
                trained
                    .iter()
                    .map(|&(t, s)| (t, s.max(f32::MIN_POSITIVE) / trained_best)),
            )
            .filter(|(t, _)| seen.insert(*t));
        SourcedRow::single(ctx.top(merged.collect::<Vec<_>>()))
    }
}

/// Most popular overall.
#[derive(Debug)]
pub struct Popular(pub NoParams);

impl CandidateSource for Popular {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        SourcedRow::single(ctx.popular())
    }
}
