//! Because You Watched X: one row per recent strongly-positive title.

use rustc_hash::FxHashMap;

use serde::Deserialize;

use super::{CandidateSource, SourceContext, SourcedRow};
use crate::domain::Millis;
use crate::engine::catalog::TitleIdx;
use crate::engine::filters;
use crate::engine::model::Model;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BecauseYouWatchedParams {
    /// One row per anchor, at most this many.
    pub max_rows: usize,
    /// A rating at least this high makes a title an anchor (thumbs up and completion do too).
    pub min_stars: f64,
    /// Weight of the profile's Top Picks score (with the page's Top Picks params,
    /// `PageDefinition::top_picks`) next to the similarity to the anchor, when ordering the
    /// anchor's neighbours. 0: similarity only. Tuned on VALID (README, "Recommendation
    /// quality").
    pub personal_weight: f32,
}

impl Default for BecauseYouWatchedParams {
    fn default() -> Self {
        Self {
            max_rows: 2,
            min_stars: 4.0,
            personal_weight: 1.0,
        }
    }
}

/// An anchor's co-occurrence neighbours, or its content neighbours when it has none (a title
/// too new or too rarely watched to have co-occurred with anything).
fn anchor_neighbors(model: &Model, anchor: TitleIdx) -> &[(TitleIdx, f32)] {
    match model.neighbors(anchor) {
        [] => model.content_neighbors(anchor),
        list => list,
    }
}

/// "Because You Watched X": neighbours of the most recent strongly-positive titles (content
/// neighbours for an anchor without co-occurrence neighbours).
#[derive(Debug)]
pub struct BecauseYouWatched(pub BecauseYouWatchedParams);

impl CandidateSource for BecauseYouWatched {
    fn cacheable(&self) -> bool {
        true
    }

    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        let mut anchors: Vec<(TitleIdx, Millis)> = ctx
            .history
            .states()
            .filter(|s| s.is_strongly_positive(self.0.min_stars))
            .filter_map(|s| Some((ctx.catalog.idx(&s.title_id)?, s.last_activity())))
            // The row names its anchor: one the profile may not see (a kids profile that
            // rated an R title) makes no row, and the next anchor takes its place.
            .filter(|(t, _)| filters::suitable(ctx.profile, ctx.catalog.title(*t)).is_ok())
            .filter(|(t, _)| !anchor_neighbors(ctx.model, *t).is_empty())
            .collect();
        anchors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        // The anchor decides which titles are in a row; the whole history may help order them.
        let personal: FxHashMap<TitleIdx, f32> = if self.0.personal_weight > 0.0 {
            ctx.top_picks
                .scores(ctx)
                .map(|s| s.into_iter().collect())
                .unwrap_or_default()
        } else {
            FxHashMap::default()
        };
        anchors
            .into_iter()
            .take(self.0.max_rows)
            .map(|(anchor, _)| {
                let name = &ctx.catalog.title(anchor).name;
                let neighbors = anchor_neighbors(ctx.model, anchor);
                let best = neighbors
                    .first()
                    .map_or(1.0, |n| n.1.max(f32::MIN_POSITIVE));
                let mut candidates = ctx.top(neighbors.iter().map(|&(t, s)| {
                    let p = personal.get(&t).copied().unwrap_or(0.0).max(0.0);
                    (t, s / best + self.0.personal_weight * p)
                }));
                for c in &mut candidates {
                    c.reason = Some(format!("Because you watched {name}"));
                    c.evidence = vec![anchor];
                }
                SourcedRow {
                    key: Some(ctx.catalog.title(anchor).id.to_string()),
                    title: Some(format!("Because You Watched {name}")),
                    anchor: Some(anchor),
                    candidates,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountId, Profile, ProfileId, Title, TitleId};
    use crate::engine::catalog::Catalog;
    use crate::engine::history::{History, WatchState};
    use crate::engine::model::{Interaction, TrainParams, TrainingSet, train};

    fn title(id: &str, genres: &[&str]) -> Title {
        Title {
            year: Some(1995),
            genres: genres.iter().map(|g| g.to_string()).collect(),
            ..Title::new(TitleId::parse(id).unwrap(), format!("t{id}"))
        }
    }

    #[test]
    fn because_you_watched_falls_back_to_content_neighbours() {
        // Only one interaction in the whole world: title 1 has no co-occurrence neighbours,
        // but shares its genre with 2.
        let catalog = Catalog::new(vec![
            title("1", &["Drama"]),
            title("2", &["Drama"]),
            title("3", &["Comedy"]),
        ]);
        let p = ProfileId::parse("p").unwrap();
        let data = TrainingSet::from_interactions(
            &catalog,
            &[Interaction {
                profile: p.clone(),
                title: TitleId::parse("1").unwrap(),
                affinity: 1.0,
                at: 0,
                country: None,
            }],
        );
        let artifact = train(&catalog, &data, &[], 0, &TrainParams::default());
        let model = Model::load("t", &artifact, &catalog);
        assert!(model.neighbors(0).is_empty());
        let mut watched = WatchState::new(TitleId::parse("1").unwrap());
        watched.completed = true;
        watched.last_watched_at = Some(0);
        let history = History::new([watched]);
        let profile = Profile {
            id: p,
            account_id: AccountId::parse("p").unwrap(),
            name: "p".into(),
            is_kids: false,
            maturity_limit: None,
            country: None,
            onboarding_genres: vec![],
        };
        let eligible = |t: TitleIdx| t != 0;
        let ctx = SourceContext {
            catalog: &catalog,
            model: &model,
            profile: &profile,
            history: &history,
            now: 0,
            eligible: &eligible,
            pool: 10,
            top_picks: &Default::default(),
            personal: &Default::default(),
            live_trending: None,
            segments: &Default::default(),
        };
        let rows = BecauseYouWatched(BecauseYouWatchedParams::default()).rows(&ctx);
        assert_eq!(rows.len(), 1);
        let titles: Vec<TitleIdx> = rows[0].candidates.iter().map(|c| c.title).collect();
        assert_eq!(titles, vec![1]);
    }
}
