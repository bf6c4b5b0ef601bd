//! A row per favourite genre of the profile.

use std::collections::HashMap;

use serde::Deserialize;

use super::{CandidateSource, SourceContext, SourcedRow};
use crate::domain::DAY_MS;
use crate::engine::filters::Audience;
use crate::engine::history::{AgeFrom, RecencyDecay, WatchState};
use crate::engine::segments::{Segment, SegmentKey, SegmentKind};

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

/// How much popularity adds to a title's (normalised) personal score in its genre row.
const POPULARITY_WEIGHT: f32 = 0.1;

/// The segment list of `genre`'s titles for the profile's audience, scored by popularity alone:
/// what a title scores in the row when the profile's history does not point at it.
fn genre_key(ctx: &SourceContext<'_>, genre: &str) -> SegmentKey {
    SegmentKey::new(
        SegmentKind::Genre,
        ctx.model,
        ctx.catalog,
        Audience::of(ctx.profile),
        genre,
    )
}

impl CandidateSource for TopGenre {
    fn cacheable(&self) -> bool {
        true
    }

    fn segments(&self, ctx: &SourceContext<'_>) -> Vec<SegmentKey> {
        self.favourite_genres(ctx)
            .iter()
            .map(|g| genre_key(ctx, g))
            .collect()
    }

    /// Per genre: the titles the profile's history points at (personal score, scaled to the
    /// best, plus a little popularity), then the genre's segment list by popularity — the same
    /// ranking as scoring every title of the genre, without walking the catalogue per page.
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        let personal = ctx.personal_scores(self.0.recency());
        let max = personal.values().copied().fold(f32::MIN_POSITIVE, f32::max);
        let audience = Audience::of(ctx.profile);
        self.favourite_genres(ctx)
            .into_iter()
            .map(|genre| {
                let in_genre = |t| ctx.catalog.title(t).genres.contains(&genre);
                let personal_in_genre: Vec<_> = personal
                    .iter()
                    .filter(|(t, _)| in_genre(**t))
                    .map(|(&t, s)| (t, s / max + POPULARITY_WEIGHT * ctx.model.popularity(t)))
                    .collect();
                let compute = |limit| {
                    let titles = ctx
                        .catalog
                        .titles()
                        .filter(|(_, t)| t.genres.contains(&genre))
                        .map(|(t, _)| (t, POPULARITY_WEIGHT * ctx.model.popularity(t)));
                    Segment::build(ctx.catalog, audience, titles, limit)
                };
                let candidates =
                    ctx.top_via_segment(&genre_key(ctx, &genre), compute, personal_in_genre, |t| {
                        personal.contains_key(&t)
                    });
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
