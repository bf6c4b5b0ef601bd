//! Candidate sources: each proposes titles for one kind of row. Sources are registered by name
//! in a `SourceRegistry` and built from a row definition's `params` table; typed params with
//! `deny_unknown_fields` make a misspelt key an error at load time, not a silent default.

pub mod because_you_watched;
pub mod continue_watching;
pub mod new_releases;
pub mod personalized;
pub mod popular;
pub mod top_genre;

use std::collections::BTreeMap;
use std::fmt::Debug;

use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;

use crate::domain::{Millis, Profile, Progress};
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::history::{AgeFrom, History, RecencyDecay, WatchState};
use crate::engine::model::Model;
use crate::engine::segments::{Segment, SegmentKey, Segments};
use because_you_watched::BecauseYouWatched;
use continue_watching::ContinueWatching;
use new_releases::NewReleases;
use personalized::{PersonalScoreCache, Personalized, PersonalizedParams};
use popular::{Popular, Trending};
use top_genre::TopGenre;

// Serde: the serving layer caches a profile's candidate lists (`page::CandidateLists`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    pub title: TitleIdx,
    /// Relevance within the row; higher is better. Comparable only within one row.
    pub score: f32,
    /// Human-readable explanation shown with the item.
    pub reason: Option<String>,
    /// Titles from the profile's history that led to this candidate.
    pub evidence: Vec<TitleIdx>,
    /// How far the profile has watched the title, for rows that show it (Continue Watching).
    pub progress: Option<Progress>,
}

/// One row a source wants on the page. Most sources produce one; "Because You Watched"
/// produces one per anchor title.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourcedRow {
    /// Distinguishes rows from the same definition: the row id becomes `<id>:<key>`.
    pub key: Option<String>,
    /// Replaces the definition's title (e.g. "Because You Watched Toy Story").
    pub title: Option<String>,
    /// The title the row is about, named in its title ("Because You Watched X"). A row whose
    /// anchor the profile may not see is never placed.
    pub anchor: Option<TitleIdx>,
    /// Best first.
    pub candidates: Vec<Candidate>,
}

impl SourcedRow {
    fn single(candidates: Vec<Candidate>) -> Vec<SourcedRow> {
        vec![SourcedRow {
            key: None,
            title: None,
            anchor: None,
            candidates,
        }]
    }
}

/// What a source may look at while proposing candidates.
pub struct SourceContext<'a> {
    pub catalog: &'a Catalog,
    pub model: &'a Model,
    pub profile: &'a Profile,
    pub history: &'a History,
    pub now: Millis,
    /// Whether a title may still be placed (policy filters and titles placed higher up).
    /// Sources use it to fill their pool with titles that can actually be shown.
    pub eligible: &'a dyn Fn(TitleIdx) -> bool,
    /// How many candidates the row would like to choose from.
    pub pool: usize,
    /// The page's Top Picks params (`PageDefinition::top_picks`), for sources that order by
    /// the profile's personal score.
    pub top_picks: &'a PersonalizedParams,
    /// The page's personal score accumulation, computed once and shared by every source that
    /// ranks by it (`PersonalizedParams::scores`).
    pub personal: &'a PersonalScoreCache,
    /// Trending in the profile's country as counted from the event stream right now (decayed
    /// counts, best first), when the caller has it; the model's trending list (counted at
    /// training time) otherwise. Where it came from is the caller's business.
    pub live_trending: Option<&'a [(TitleIdx, f32)]>,
    /// The page's segment lists (`engine::segments`): handed in by the caller, or computed by
    /// the first source that needs one and handed back.
    pub segments: &'a Segments,
}

impl SourceContext<'_> {
    /// The profile's history as (title, weight): each entry's `weight` (entries weighing
    /// nothing are left out), faded by `decay` over its age counted back from `from`.
    fn decayed_history(
        &self,
        weight: impl Fn(&WatchState) -> f64,
        decay: RecencyDecay,
        from: AgeFrom,
    ) -> Vec<(TitleIdx, f32)> {
        let entries: Vec<(TitleIdx, f64, Millis)> = self
            .history
            .states()
            .filter_map(|s| Some((self.catalog.idx(&s.title_id)?, weight(s), s.last_activity())))
            .filter(|(_, w, _)| *w > 0.0)
            .collect();
        let anchor = match from {
            AgeFrom::Now => self.now,
            AgeFrom::LatestActivity => entries.iter().map(|e| e.2).max().unwrap_or(0),
        };
        entries
            .into_iter()
            .map(|(t, w, at)| (t, (w * decay.factor((anchor - at).max(0))) as f32))
            .collect()
    }

    /// Item-item scores from the (decayed) history: Σ weight(anchor) · sim(anchor, title).
    fn personal_scores(&self, decay: RecencyDecay) -> FxHashMap<TitleIdx, f32> {
        let mut scores: FxHashMap<TitleIdx, f32> = FxHashMap::default();
        let history = self.decayed_history(WatchState::affinity, decay, AgeFrom::Now);
        for (anchor, w) in history {
            for &(t, s) in self.model.neighbors(anchor) {
                *scores.entry(t).or_default() += w * s;
            }
        }
        scores
    }

    /// The eligible entries of `scored`, best first, at most `pool`.
    pub(crate) fn top(&self, scored: impl IntoIterator<Item = (TitleIdx, f32)>) -> Vec<Candidate> {
        let mut list: Vec<(TitleIdx, f32)> = scored
            .into_iter()
            .filter(|(t, s)| *s > 0.0 && (self.eligible)(*t))
            .collect();
        best_n(&mut list, self.pool);
        unexplained(list)
    }

    /// `top` of a list already in `top`'s order (`best_first`): only its head is read, up to
    /// `pool` eligible entries, not the whole list — and those are already the best, in order.
    pub(crate) fn top_of_ordered(&self, ordered: &[(TitleIdx, f32)]) -> Vec<Candidate> {
        debug_assert!(ordered.is_sorted_by(|a, b| order(a, b).is_le()));
        unexplained(
            ordered
                .iter()
                .copied()
                .filter(|(t, s)| *s > 0.0 && (self.eligible)(*t))
                .take(self.pool),
        )
    }

    /// `top` over `extras` and the entries of `segment` that `skip` does not claim (the
    /// extras rescore them), and whether that is what the whole list would have given: true
    /// when the segment is complete, or when `pool` eligible entries were found in it — every
    /// title it was cut short of ranks below all of them.
    pub(crate) fn top_of_segment(
        &self,
        segment: &Segment,
        extras: Vec<(TitleIdx, f32)>,
        skip: impl Fn(TitleIdx) -> bool,
    ) -> (Vec<Candidate>, bool) {
        // Entries are sorted: the first `pool` eligible ones are all the segment can add.
        let taken: Vec<(TitleIdx, f32)> = segment
            .entries
            .iter()
            .filter(|(t, _)| !skip(*t) && (self.eligible)(*t))
            .take(self.pool)
            .copied()
            .collect();
        let sufficient = segment.complete || taken.len() >= self.pool;
        (self.top(extras.into_iter().chain(taken)), sufficient)
    }

    /// The segment `key` (kept, or computed with `compute(SEGMENT_LEN)`), and the best `pool` of
    /// it with `extras` as in `top_of_segment`; the whole list (`compute(usize::MAX)`, not kept)
    /// when the profile filtered out too much of a list that was cut short.
    pub(crate) fn top_via_segment(
        &self,
        key: &SegmentKey,
        compute: impl Fn(usize) -> Segment,
        extras: Vec<(TitleIdx, f32)>,
        skip: impl Fn(TitleIdx) -> bool,
    ) -> Vec<Candidate> {
        let segment = self
            .segments
            .get_or_compute(key, || compute(crate::engine::segments::SEGMENT_LEN));
        let (top, sufficient) = self.top_of_segment(&segment, extras.clone(), &skip);
        if sufficient {
            return top;
        }
        self.top_of_segment(&compute(usize::MAX), extras, &skip).0
    }

    fn popular(&self) -> Vec<Candidate> {
        self.top(
            self.model
                .popular()
                .iter()
                .filter(|t| (self.eligible)(**t))
                .take(self.pool)
                .map(|&t| (t, self.model.popularity(t))),
        )
    }
}

pub trait CandidateSource: Send + Sync + Debug {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow>;

    /// Whether the rows are a function of the profile, its history and the model only (no
    /// live input), expensive enough to be worth caching per profile: `page::CandidateLists`
    /// may then hold them from an earlier page with the same history.
    fn cacheable(&self) -> bool {
        false
    }

    /// The segment lists (`engine::segments`) `rows` will ask for in `ctx`, so that the caller
    /// can fetch them first. Cheap: a source that needs work to name them should name none.
    fn segments(&self, _ctx: &SourceContext<'_>) -> Vec<SegmentKey> {
        Vec::new()
    }
}

/// Why a row definition's source could not be built: both are mistakes in the page file (or
/// in an experiment's row settings), never internal failures.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    #[error("unknown source {name:?} (known: {known})")]
    Unknown { name: String, known: String },
    /// The `params` table does not fit the source's params type (the TOML message: an unknown
    /// key, a wrong type).
    #[error("{0}")]
    Params(String),
}

pub type SourceFactory = fn(toml::Table) -> Result<Box<dyn CandidateSource>, SourceError>;

/// Candidate sources by name, as `rows/*.toml` refers to them.
#[derive(Clone, Debug)]
pub struct SourceRegistry {
    factories: BTreeMap<&'static str, SourceFactory>,
}

/// A source's typed params from a row definition's `params` table.
fn params_from<P: DeserializeOwned>(params: toml::Table) -> Result<P, SourceError> {
    toml::Value::Table(params)
        .try_into()
        .map_err(|e: toml::de::Error| SourceError::Params(e.message().to_owned()))
}

fn build<P, S>(
    params: toml::Table,
    make: fn(P) -> S,
) -> Result<Box<dyn CandidateSource>, SourceError>
where
    P: DeserializeOwned,
    S: CandidateSource + 'static,
{
    Ok(Box::new(make(params_from(params)?)))
}

impl SourceRegistry {
    pub fn builtin() -> Self {
        let mut r = Self {
            factories: BTreeMap::new(),
        };
        r.register("continue-watching", |p| build(p, ContinueWatching));
        r.register(personalized::SOURCE, |p| build(p, Personalized));
        r.register("because-you-watched", |p| build(p, BecauseYouWatched));
        r.register("trending", |p| build(p, Trending));
        r.register("new-releases", |p| build(p, NewReleases));
        r.register("top-genre", |p| build(p, TopGenre));
        r.register("popular", |p| build(p, Popular));
        r
    }

    pub fn register(&mut self, name: &'static str, factory: SourceFactory) {
        self.factories.insert(name, factory);
    }

    pub fn build(
        &self,
        name: &str,
        params: toml::Table,
    ) -> Result<Box<dyn CandidateSource>, SourceError> {
        let factory = self
            .factories
            .get(name)
            .ok_or_else(|| SourceError::Unknown {
                name: name.to_owned(),
                known: self
                    .factories
                    .keys()
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        factory(params)
    }
}

/// Candidates of scored titles, without a reason, evidence or progress.
fn unexplained(scored: impl IntoIterator<Item = (TitleIdx, f32)>) -> Vec<Candidate> {
    scored
        .into_iter()
        .map(|(title, score)| Candidate {
            title,
            score,
            reason: None,
            evidence: vec![],
            progress: None,
        })
        .collect()
}

/// `top`'s order: score descending, then title index.
fn order(a: &(TitleIdx, f32), b: &(TitleIdx, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// `list` in `top`'s order.
pub(crate) fn best_first(mut list: Vec<(TitleIdx, f32)>) -> Vec<(TitleIdx, f32)> {
    list.sort_by(order);
    list
}

/// Keeps the `n` best entries of `list` in `top`'s order: the first `n` of the whole list
/// sorted. The order is total, so selecting the `n` first and sorting only them gives
/// exactly that.
fn best_n(list: &mut Vec<(TitleIdx, f32)>, n: usize) {
    if n == 0 {
        list.clear();
        return;
    }
    if list.len() > n {
        list.select_nth_unstable_by(n - 1, order);
        list.truncate(n);
    }
    list.sort_by(order);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The best `n` are the first `n` of the whole list sorted, ties and repeated titles
        /// included.
        #[test]
        fn best_n_is_the_head_of_the_sorted_list(
            mut list in proptest::collection::vec((0u32..40, prop_oneof![Just(0.5f32), Just(1.0), -2.0f32..2.0]), 0..120),
            n in 0usize..60,
        ) {
            let mut sorted = list.clone();
            sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let ordered = sorted.clone();
            sorted.truncate(n);
            best_n(&mut list, n);
            prop_assert_eq!(list, sorted);
            // `top_of_ordered`'s shortcut: the first `n` passing a filter of an ordered list
            // are the best `n` of those passing it.
            let even = |t: u32| t.is_multiple_of(2);
            let mut passing: Vec<(u32, f32)> = ordered.iter().copied().filter(|e| even(e.0)).collect();
            best_n(&mut passing, n);
            let head: Vec<(u32, f32)> = ordered.into_iter().filter(|e| even(e.0)).take(n).collect();
            prop_assert_eq!(head, passing);
        }
    }
}
