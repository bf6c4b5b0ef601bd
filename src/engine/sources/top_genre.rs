//! A row per favourite genre of the profile.

use std::collections::HashMap;

use serde::Deserialize;

use super::{CandidateSource, SourceContext, SourcedRow};
use crate::domain::DAY_MS;
use crate::engine::history::{AgeFrom, RecencyDecay, WatchState};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopGenreParams {
    pub max_rows: usize,
    /// Taste fades in calendar time: an entry's weight halves every this many days before
    /// "now" (0: no decay).
    pub recency_half_life_days: f64,
}

impl TopGenreParams {
    fn recency(&self) -> RecencyDecay {
        RecencyDecay::halving_every(self.recency_half_life_days * DAY_MS as f64)
    }
}

impl Default for TopGenreParams {
    fn default() -> Self {
        Self {
            max_rows: 1,
            recency_half_life_days: 60.0,
        }
    }
}

/// A row for each of the profile's favourite genres (onboarding genres while it has no
/// history), ranked by personal score with popularity as the fallback.
#[derive(Debug)]
pub struct TopGenre(pub TopGenreParams);

impl TopGenre {
    fn favourite_genres(&self, ctx: &SourceContext<'_>) -> Vec<String> {
        let history = ctx.decayed_history(WatchState::affinity, self.0.recency(), AgeFrom::Now);
        if history.is_empty() {
            return ctx
                .profile
                .onboarding_genres
                .iter()
                .filter(|g| ctx.catalog.has_genre(g))
                .take(self.0.max_rows)
                .cloned()
                .collect();
        }
        let mut weight: HashMap<&str, f32> = HashMap::new();
        for (t, w) in history {
            for g in &ctx.catalog.title(t).genres {
                *weight.entry(g.as_str()).or_default() += w;
            }
        }
        // Normalise by how common the genre is, so that "Drama" does not win every profile.
        let mut ranked: Vec<(&str, f32)> = ctx
            .catalog
            .genres()
            .filter_map(|(g, n)| Some((g, weight.get(g)? / (n as f32).sqrt())))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        ranked
            .into_iter()
            .take(self.0.max_rows)
            .map(|(g, _)| g.to_owned())
            .collect()
    }
}

impl CandidateSource for TopGenre {
    fn cacheable(&self) -> bool {
        true
    }

    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        let personal = ctx.personal_scores(self.0.recency());
        let max = personal.values().copied().fold(f32::MIN_POSITIVE, f32::max);
        self.favourite_genres(ctx)
            .into_iter()
            .map(|genre| {
                let in_genre = ctx
                    .catalog
                    .titles()
                    .filter(|(_, t)| t.genres.contains(&genre))
                    .map(|(t, _)| {
                        let personal = personal.get(&t).map_or(0.0, |s| s / max);
                        (t, personal + 0.1 * ctx.model.popularity(t))
                    });
                let candidates = ctx.top(in_genre);
                SourcedRow {
                    key: Some(genre.clone()),
                    title: Some(genre),
                    anchor: None,
                    candidates,
                }
            })
            .collect()
    }
}
