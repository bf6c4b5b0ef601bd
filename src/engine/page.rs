//! Page assembly: rows in definition order, each filled by its source, filtered, deduplicated
//! against the rows above it and reranked for diversity.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashSet;

use serde::Serialize;

use crate::domain::{Millis, Profile, Progress};
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::filters;
use crate::engine::history::History;
use crate::engine::model::Model;
use crate::engine::rerank::mmr;
use crate::engine::rows::{PageDefinition, RowDefinition, RowOrder};
use crate::engine::segments::{SegmentKey, Segments};
use crate::engine::sources::personalized::PersonalScoreCache;
use crate::engine::sources::{Candidate, SourceContext, SourcedRow};

// `Serialize` so that tests can walk everything a page names, whatever field names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageItem {
    pub title: TitleIdx,
    pub score: f32,
    pub reason: Option<String>,
    /// Titles that led to this item; each passes the profile's `filters::suitable`, like the
    /// item itself (the reason text may name them).
    pub evidence: Vec<TitleIdx>,
    /// How far the profile has watched the title, where the row shows it.
    pub progress: Option<Progress>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageRow {
    /// `top-picks`, or `because-you-watched:242` for rows a source produced several of.
    pub id: String,
    /// The id of the row definition (`rows/home.toml`) this row comes from.
    pub definition: String,
    /// The title the row is about and names in its title ("Because You Watched X"); it passes
    /// the profile's `filters::suitable`.
    pub anchor: Option<TitleIdx>,
    pub title: String,
    /// The model version that filled this row.
    pub model_version: String,
    pub items: Vec<PageItem>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Page {
    pub rows: Vec<PageRow>,
}

/// Where a page's assembly time went (measured with one `Instant` per step, so cheap enough
/// to take on every page). The caller decides what to do with it (the app exports it as
/// metrics); the engine only measures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageTimings {
    /// Per row definition, in page order: its id and the time its source took (including
    /// the policy checks the source makes through `eligible`).
    pub sources: Vec<(String, Duration)>,
    /// Policy filters over what the sources returned.
    pub filters: Duration,
    /// Dedupe against the rows above and within each row.
    pub dedupe: Duration,
    /// Diversity rerank.
    pub rerank: Duration,
}

/// How many candidates a row asks its source for, per slot, so that dedupe and rerank have
/// something to choose from.
const POOL_FACTOR: usize = 4;

/// `alternates` are other model versions bound to the same catalogue, for rows whose
/// definition names one; every other row uses `model`.
#[allow(clippy::too_many_arguments)]
pub fn assemble(
    definition: &PageDefinition,
    catalog: &Catalog,
    model: &Model,
    alternates: &HashMap<String, Model>,
    profile: &Profile,
    history: &History,
    now: Millis,
) -> Page {
    let mut timings = PageTimings::default();
    assemble_timed(
        definition,
        catalog,
        model,
        alternates,
        profile,
        history,
        now,
        &mut timings,
    )
}

/// `assemble`, adding where the time went to `timings` (by stage for pages in definition
/// order; a page ordered by engagement counts as sourcing).
#[allow(clippy::too_many_arguments)]
pub fn assemble_timed(
    definition: &PageDefinition,
    catalog: &Catalog,
    model: &Model,
    alternates: &HashMap<String, Model>,
    profile: &Profile,
    history: &History,
    now: Millis,
    timings: &mut PageTimings,
) -> Page {
    assemble_with(
        definition,
        catalog,
        model,
        alternates,
        profile,
        history,
        now,
        timings,
        &mut CandidateLists::default(),
    )
}

/// The sourced rows of cacheable row definitions (`CandidateSource::cacheable`), by definition
/// id: what a page keeps for the next page of the same profile, history, model and variant.
/// Shared, not copied: a page reads the candidates of a kept list in place and copies only
/// the ~20 per row it places.
pub type KeptLists = HashMap<String, Arc<Vec<SourcedRow>>>;

/// What the caller brings to a page besides the profile — live trending, candidate lists kept
/// from an earlier page — and receives back: the lists this page computed, to keep. The engine
/// does not know where they are kept (the serving layer's caches).
#[derive(Debug, Default)]
pub struct CandidateLists {
    /// Trending in the profile's country, live (`SourceContext::live_trending`).
    pub live_trending: Option<Vec<(TitleIdx, f32)>>,
    /// The sourced rows of cacheable row definitions (`CandidateSource::cacheable`), by
    /// definition id, from an earlier page of the same profile, history, model and page
    /// variant. Policy filters and dedupe are applied to them again, as to fresh ones.
    pub cached: Arc<KeptLists>,
    /// The sourced rows this page computed for cacheable definitions it found no list for.
    pub computed: KeptLists,
    /// Segment lists (`engine::segments`: shared by every profile of an audience) the caller
    /// kept, and those this page computed (`Segments::take_computed`), to keep.
    pub segments: Segments,
}

impl CandidateLists {
    /// The lists to keep after the page: those it was handed and those it computed (a
    /// variant's row the kept lists did not have, say), without copying a candidate.
    pub fn all(&self) -> KeptLists {
        let mut all = (*self.cached).clone();
        all.extend(
            self.computed
                .iter()
                .map(|(id, rows)| (id.clone(), rows.clone())),
        );
        all
    }
}

/// The segment lists a page of `definition` for `profile` will ask for, except those of rows
/// whose sourced rows the caller brings (`kept`, `CandidateLists::cached`): what the caller
/// should fetch before assembling it. A list it could not fetch is computed by the page.
#[allow(clippy::too_many_arguments)]
pub fn segment_keys(
    definition: &PageDefinition,
    catalog: &Catalog,
    model: &Model,
    alternates: &HashMap<String, Model>,
    profile: &Profile,
    history: &History,
    now: Millis,
    kept: &KeptLists,
) -> Vec<SegmentKey> {
    let personal = PersonalScoreCache::default();
    let segments = Segments::default();
    let mut keys: Vec<SegmentKey> = Vec::new();
    let engagement = definition.order.rows == RowOrder::Engagement;
    for def in &definition.rows {
        // Pages ordered by engagement source every row afresh.
        if !engagement && def.source.cacheable() && kept.contains_key(&def.id) {
            continue;
        }
        let model = def
            .model
            .as_ref()
            .and_then(|v| alternates.get(v))
            .unwrap_or(model);
        let allowed = |t: TitleIdx| {
            filters::allowed(profile, history, catalog.title(t), def.show_watched).is_ok()
        };
        let ctx = SourceContext {
            catalog,
            model,
            profile,
            history,
            now,
            eligible: &allowed,
            pool: def.size * POOL_FACTOR,
            top_picks: &definition.top_picks,
            personal: &personal,
            live_trending: None,
            segments: &segments,
        };
        for key in def.source.segments(&ctx) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// `assemble_timed`, with the caller's `lists`. A cacheable row's source is asked with the
/// policy filters only (not "placed higher up"), so that its list does not depend on the rows
/// above it and can be used again; its pool is larger by the titles placed so far, so that
/// dedupe leaves as much to choose from as before.
#[allow(clippy::too_many_arguments)]
pub fn assemble_with(
    definition: &PageDefinition,
    catalog: &Catalog,
    model: &Model,
    alternates: &HashMap<String, Model>,
    profile: &Profile,
    history: &History,
    now: Millis,
    timings: &mut PageTimings,
    lists: &mut CandidateLists,
) -> Page {
    if definition.order.rows == RowOrder::Engagement {
        let started = Instant::now();
        let page = by_engagement(
            definition,
            catalog,
            model,
            alternates,
            profile,
            history,
            now,
            &lists.segments,
        );
        timings
            .sources
            .push(("engagement-order".to_owned(), started.elapsed()));
        return page;
    }
    let personal = PersonalScoreCache::default();
    // Dense ids hash in one multiply with Fx; SipHash's DoS resistance buys nothing here.
    let mut placed: FxHashSet<TitleIdx> = FxHashSet::default();
    let mut rows = Vec::new();
    let order: Vec<&RowDefinition> = match definition.order.rows {
        RowOrder::Learned => learned_order(&definition.rows, model.row_order()),
        _ => definition.rows.iter().collect(),
    };
    for def in order {
        let model = def
            .model
            .as_ref()
            .and_then(|v| alternates.get(v))
            .unwrap_or(model);
        let allowed = |t: TitleIdx| {
            filters::allowed(profile, history, catalog.title(t), def.show_watched).is_ok()
        };
        // What an item or row merely names (evidence, anchor) must be fit for the profile too,
        // though it may be watched: that is why it is named.
        let suitable = |t: &TitleIdx| filters::suitable(profile, catalog.title(*t)).is_ok();
        let started = Instant::now();
        let cacheable = def.source.cacheable();
        let kept = if cacheable {
            lists.cached.get(&def.id).cloned()
        } else {
            None
        };
        let sourced: Arc<Vec<SourcedRow>> = match kept {
            Some(rows) => rows,
            None => {
                let unplaced = |t: TitleIdx| !placed.contains(&t) && allowed(t);
                let ctx = SourceContext {
                    catalog,
                    model,
                    profile,
                    history,
                    now,
                    eligible: if cacheable {
                        &allowed as &dyn Fn(TitleIdx) -> bool
                    } else {
                        &unplaced
                    },
                    pool: def.size * POOL_FACTOR + if cacheable { placed.len() } else { 0 },
                    top_picks: &definition.top_picks,
                    personal: &personal,
                    live_trending: lists.live_trending.as_deref(),
                    segments: &lists.segments,
                };
                let rows = Arc::new(def.source.rows(&ctx));
                if cacheable {
                    lists.computed.insert(def.id.clone(), rows.clone());
                }
                rows
            }
        };
        let mut mark = Instant::now();
        timings.sources.push((def.id.clone(), mark - started));
        let mut lap = |into: &mut Duration| {
            let t = Instant::now();
            *into += t - mark;
            mark = t;
        };
        // Placing the previous row is nobody's stage.
        let mut bookkeeping = Duration::ZERO;
        for row in sourced.iter() {
            lap(&mut bookkeeping);
            if !row.anchor.iter().all(suitable) {
                continue;
            }
            // Sources are trusted to try, not to be right: filter and dedupe here regardless
            // (this also dedupes between several rows of one source). Dedupe first, as it is
            // cheaper; both are pure per-title predicates, so the order changes nothing.
            let mut in_row = FxHashSet::with_capacity_and_hasher(
                row.candidates.len(),
                rustc_hash::FxBuildHasher,
            );
            let deduped: Vec<&Candidate> = row
                .candidates
                .iter()
                .filter(|c| !placed.contains(&c.title) && in_row.insert(c.title))
                .collect();
            lap(&mut timings.dedupe);
            let candidates: Vec<_> = deduped
                .into_iter()
                .filter(|c| allowed(c.title) && c.evidence.iter().all(suitable))
                .collect();
            lap(&mut timings.filters);
            let chosen = mmr(candidates, def.diversity, def.size, catalog);
            lap(&mut timings.rerank);
            if chosen.len() < def.min_items {
                continue;
            }
            placed.extend(chosen.iter().map(|c| c.title));
            rows.push(page_row(def, model, row, &chosen));
        }
    }
    Page { rows }
}

/// `rows` in the learned order: pinned rows first (in definition order), then for each place
/// of `learned` the first row not yet ordered whose source it names (a place naming a source
/// whose rows are all ordered — the second row of Because You Watched, which its definition
/// makes next to the first — orders nothing), then the rest in definition order.
fn learned_order<'a>(rows: &'a [RowDefinition], learned: &[String]) -> Vec<&'a RowDefinition> {
    let mut out: Vec<&RowDefinition> = rows.iter().filter(|r| r.pinned).collect();
    let mut taken: Vec<bool> = rows.iter().map(|r| r.pinned).collect();
    for source in learned {
        if let Some(i) = (0..rows.len()).find(|&i| !taken[i] && rows[i].source_name() == source) {
            taken[i] = true;
            out.push(&rows[i]);
        }
    }
    out.extend(
        rows.iter()
            .zip(&taken)
            .filter(|(_, t)| !**t)
            .map(|(r, _)| r),
    );
    out
}

/// The placed row of `def` that `row` became, with the candidates chosen for it.
fn page_row(
    def: &RowDefinition,
    model: &Model,
    row: &SourcedRow,
    chosen: &[&Candidate],
) -> PageRow {
    PageRow {
        id: match &row.key {
            Some(key) => format!("{}:{key}", def.id),
            None => def.id.clone(),
        },
        definition: def.id.clone(),
        anchor: row.anchor,
        model_version: model.version.clone(),
        title: row.title.clone().unwrap_or_else(|| def.title.clone()),
        items: chosen
            .iter()
            .map(|c| PageItem {
                title: c.title,
                score: c.score,
                reason: c.reason.clone(),
                evidence: c.evidence.clone(),
                progress: c.progress,
            })
            .collect(),
    }
}

/// A sourced row waiting for its place on an engagement-ordered page.
struct Waiting<'a> {
    def: &'a RowDefinition,
    model: &'a Model,
    row: SourcedRow,
}

/// The page in engagement order: every row is sourced once (against the policy filters
/// only), then, pinned rows first in definition order, the page repeatedly takes the row
/// whose first `SCREEN` titles — after dedupe against the rows already placed and the row's
/// rerank — the profile is most likely to take, by the page's Top Picks score (one score for
/// every row, so rows compare; popular-now included when Top Picks weighs it). A row of a
/// kind already on the page weighs `same_kind_penalty` less per such row, and rows that end
/// up too short are dropped, as in the fixed order.
#[allow(clippy::too_many_arguments)]
fn by_engagement(
    definition: &PageDefinition,
    catalog: &Catalog,
    model: &Model,
    alternates: &HashMap<String, Model>,
    profile: &Profile,
    history: &History,
    now: Millis,
    segments: &Segments,
) -> Page {
    /// Titles of a row a first screen shows; what the order is chosen on.
    const SCREEN: usize = 4;
    let allowed_by = |def: &RowDefinition, t: TitleIdx| {
        filters::allowed(profile, history, catalog.title(t), def.show_watched).is_ok()
    };
    // What an item or row merely names (evidence, anchor) must be fit for the profile too.
    let suitable = |t: &TitleIdx| filters::suitable(profile, catalog.title(*t)).is_ok();
    let personal = PersonalScoreCache::default();
    // The profile's engagement score of every title, scaled to its best.
    let mut engagement = vec![0f32; catalog.len()];
    if let Some(def) = definition.rows.first() {
        let eligible = |t: TitleIdx| allowed_by(def, t);
        let ctx = SourceContext {
            catalog,
            model,
            profile,
            history,
            now,
            eligible: &eligible,
            pool: def.size * POOL_FACTOR,
            top_picks: &definition.top_picks,
            personal: &personal,
            live_trending: None,
            segments,
        };
        let top_picks = &definition.top_picks;
        let scores = top_picks.scores(&ctx).unwrap_or_else(|| {
            let now = top_picks.popular_now(&ctx, 0);
            if now.is_empty() {
                model
                    .popular()
                    .iter()
                    .map(|t| (*t, model.popularity(*t)))
                    .collect()
            } else {
                now
            }
        });
        let best = scores.iter().map(|s| s.1).fold(f32::MIN_POSITIVE, f32::max);
        for (t, s) in scores {
            engagement[t as usize] = (s / best).max(0.0);
        }
    }
    let mut waiting: Vec<Waiting<'_>> = Vec::new();
    for def in &definition.rows {
        let model = def
            .model
            .as_ref()
            .and_then(|v| alternates.get(v))
            .unwrap_or(model);
        let eligible = |t: TitleIdx| allowed_by(def, t);
        let rows = def.source.rows(&SourceContext {
            catalog,
            model,
            profile,
            history,
            now,
            eligible: &eligible,
            pool: def.size * POOL_FACTOR,
            top_picks: &definition.top_picks,
            personal: &personal,
            live_trending: None,
            segments,
        });
        waiting.extend(
            rows.into_iter()
                .filter(|row| row.anchor.iter().all(suitable))
                .map(|row| Waiting { def, model, row }),
        );
    }
    let mut placed: FxHashSet<TitleIdx> = FxHashSet::default();
    let mut kinds: HashMap<&str, i32> = HashMap::new();
    let mut rows = Vec::new();
    while !waiting.is_empty() {
        let mut best: Option<(usize, f32, Vec<&Candidate>)> = None;
        let mut short: Vec<usize> = Vec::new();
        let pinned_left = waiting.iter().any(|w| w.def.pinned);
        for (i, w) in waiting.iter().enumerate() {
            if pinned_left && !w.def.pinned {
                continue;
            }
            let mut in_row = FxHashSet::default();
            let candidates: Vec<_> = w
                .row
                .candidates
                .iter()
                .filter(|c| {
                    !placed.contains(&c.title)
                        && allowed_by(w.def, c.title)
                        && c.evidence.iter().all(suitable)
                        && in_row.insert(c.title)
                })
                .collect();
            let chosen = mmr(candidates, w.def.diversity, w.def.size, catalog);
            if chosen.len() < w.def.min_items {
                // Too short now, and only shorter once more rows are placed.
                short.push(i);
                continue;
            }
            let predicted: f32 = chosen
                .iter()
                .take(SCREEN)
                .map(|c| engagement[c.title as usize])
                .sum::<f32>()
                * definition
                    .order
                    .same_kind_penalty
                    .powi(kinds.get(w.def.id.as_str()).copied().unwrap_or(0));
            // Pinned rows keep their definition order; ties keep it too.
            let better = match &best {
                None => true,
                Some(_) if w.def.pinned => false,
                Some((_, b, _)) => predicted > *b,
            };
            if better {
                best = Some((i, predicted, chosen));
            }
        }
        let Some((i, _, chosen)) = best else {
            // Nothing placeable this round: drop the rows too short (a pinned one among
            // them lets the others compete) and go on, or stop when none was.
            if short.is_empty() {
                break;
            }
            for i in short.into_iter().rev() {
                waiting.remove(i);
            }
            continue;
        };
        let w = &waiting[i];
        placed.extend(chosen.iter().map(|c| c.title));
        *kinds.entry(w.def.id.as_str()).or_default() += 1;
        rows.push(page_row(w.def, w.model, &w.row, &chosen));
        waiting.remove(i);
    }
    Page { rows }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{AccountId, EventAction, ProfileId, StarRating, Title, TitleId};
    use crate::engine::history::WatchState;
    use crate::engine::model::{
        ARTIFACT_FORMAT, ModelArtifact, PopularNowBacktest, PopularNowSetting, ScoredTitle,
        TrainParams, popular_now::LittleHistory,
    };
    use crate::engine::sources::SourceRegistry;

    fn tid(i: usize) -> TitleId {
        TitleId::parse(&i.to_string()).unwrap()
    }

    /// Titles 1–12; having watched 1 says 2–5 (EASE weights); 9–12 trend; popularity falls
    /// with the id.
    fn world() -> (Catalog, Model) {
        world_with(None)
    }

    /// `world`, with the popular-now setting training learned.
    fn world_with(learned: Option<PopularNowSetting>) -> (Catalog, Model) {
        world_learning(learned, None)
    }

    /// `world`, with the popular-now setting training learned, and the one it learned for
    /// profiles with at most so many titles.
    fn world_learning(
        learned: Option<PopularNowSetting>,
        little: Option<(usize, PopularNowSetting)>,
    ) -> (Catalog, Model) {
        let catalog = Catalog::new(
            (1..=12)
                .map(|i| Title::new(tid(i), format!("t{i}")))
                .collect(),
        );
        let scored = |ids: &[usize]| -> Vec<ScoredTitle> {
            ids.iter()
                .enumerate()
                .map(|(k, i)| ScoredTitle(tid(*i), 1.0 - k as f32 * 0.05))
                .collect()
        };
        let artifact = ModelArtifact {
            format: ARTIFACT_FORMAT,
            trained_at: 0,
            params: TrainParams::default(),
            interactions: 0,
            popularity: scored(&(1..=12).collect::<Vec<_>>()),
            trending: BTreeMap::from([(None, scored(&[9, 10, 11, 12]))]),
            item_weights: BTreeMap::from([(tid(1), scored(&[2, 3, 4, 5]))]),
            neighbors: BTreeMap::new(),
            content_neighbors: BTreeMap::new(),
            embeddings: None,
            popular_now: learned.map(|chosen| PopularNowBacktest {
                cutoff: 0,
                end: 0,
                windows: 1,
                profiles: 100,
                chosen,
                grid: vec![(chosen, 0.5)],
                rows: Vec::new(),
                little_history: little.map(|(max_titles, chosen)| LittleHistory {
                    max_titles,
                    titles: vec![max_titles],
                    profiles: 100,
                    chosen,
                    grid: vec![(chosen, 0.5)],
                }),
            }),
        };
        let model = Model::load("t", &artifact, &catalog);
        (catalog, model)
    }

    /// The test profile: a grown-up who rated title 1 five stars.
    fn grown_up_who_loved_title_1() -> (Profile, WatchState) {
        let profile = Profile {
            id: ProfileId::parse("p").unwrap(),
            account_id: AccountId::parse("a").unwrap(),
            name: "p".into(),
            is_kids: false,
            maturity_limit: None,
            country: None,
            onboarding_genres: vec![],
        };
        let mut watched = WatchState::new(tid(1));
        watched.apply(EventAction::Rating(StarRating::new(5.0).unwrap()), 0);
        (profile, watched)
    }

    fn page_ids(rows: &str) -> Vec<String> {
        page(rows).rows.into_iter().map(|r| r.id).collect()
    }

    fn page(rows: &str) -> Page {
        page_in(world(), rows)
    }

    fn page_in((catalog, model): (Catalog, Model), rows: &str) -> Page {
        let definition = PageDefinition::parse(rows, "x.toml", &SourceRegistry::builtin()).unwrap();
        let (profile, watched) = grown_up_who_loved_title_1();
        let history = History::new([watched]);
        assemble(
            &definition,
            &catalog,
            &model,
            &HashMap::new(),
            &profile,
            &history,
            0,
        )
    }

    /// Top Picks' titles (as ids) with the given params.
    fn top_picks(params: &str) -> Vec<String> {
        top_picks_learning(None, params)
    }

    /// Top Picks' titles (as ids) with the given params, on a model that learned `learned`.
    fn top_picks_learning(learned: Option<PopularNowSetting>, params: &str) -> Vec<String> {
        top_picks_in(world_with(learned), params)
    }

    /// Top Picks' titles (as ids) with the given params, in `world`.
    fn top_picks_in(in_world: (Catalog, Model), params: &str) -> Vec<String> {
        let (catalog, _) = world();
        let rows = format!(
            "[[row]]\nid = 'top-picks'\ntitle = 'P'\nsource = 'personalized'\nsize = 8\nmin_items = 1\nparams = {{ {params} }}\n"
        );
        page_in(in_world, &rows).rows[0]
            .items
            .iter()
            .map(|i| catalog.title(i.title).id.to_string())
            .collect()
    }

    /// Assembles `rows` with `lists` for the profile of `page`, who also thumbed title 3 down.
    fn page_with_lists(rows: &str, lists: &mut CandidateLists) -> Page {
        let (catalog, model) = world();
        let definition = PageDefinition::parse(rows, "x.toml", &SourceRegistry::builtin()).unwrap();
        let (profile, watched) = grown_up_who_loved_title_1();
        let mut disliked = WatchState::new(tid(3));
        disliked.apply(EventAction::ThumbsDown, 1);
        let history = History::new([watched, disliked]);
        assemble_with(
            &definition,
            &catalog,
            &model,
            &HashMap::new(),
            &profile,
            &history,
            0,
            &mut PageTimings::default(),
            lists,
        )
    }

    #[test]
    fn cached_lists_are_used_and_still_filtered_and_fresh_ones_come_back() {
        let rows = "[[row]]\nid = 'top-picks'\ntitle = 'P'\nsource = 'personalized'\nsize = 4\nmin_items = 1\n";
        // Computed: no cache, the list comes back to keep; the thumbed-down title is not in it.
        let mut lists = CandidateLists::default();
        let fresh = page_with_lists(rows, &mut lists);
        assert!(lists.computed.contains_key("top-picks"));
        // A cached list (say, from before the thumbs-down) naming 3 and 6: 6 is used, 3 never.
        let candidate = |t: TitleIdx| crate::engine::sources::Candidate {
            title: t,
            score: 1.0,
            reason: None,
            evidence: vec![],
            progress: None,
        };
        let (catalog, _) = world();
        let idx = |i: usize| catalog.idx(&tid(i)).unwrap();
        let mut lists = CandidateLists {
            cached: Arc::new(KeptLists::from([(
                "top-picks".to_owned(),
                Arc::new(vec![SourcedRow {
                    key: None,
                    title: None,
                    anchor: None,
                    candidates: vec![candidate(idx(3)), candidate(idx(6))],
                }]),
            )])),
            ..Default::default()
        };
        let cached = page_with_lists(rows, &mut lists);
        assert!(lists.computed.is_empty(), "a cached list is not recomputed");
        let titles: Vec<TitleIdx> = cached.rows[0].items.iter().map(|i| i.title).collect();
        assert_eq!(titles, [idx(6)]);
        assert!(fresh.rows[0].items.iter().all(|i| i.title != idx(3)));
    }

    #[test]
    fn live_trending_leads_the_trending_row_and_the_model_fills_it() {
        let rows =
            "[[row]]\nid = 'trending'\ntitle = 'T'\nsource = 'trending'\nsize = 4\nmin_items = 1\n";
        let (catalog, _) = world();
        let idx = |i: usize| catalog.idx(&tid(i)).unwrap();
        let mut lists = CandidateLists {
            live_trending: Some(vec![(idx(7), 5.0), (idx(8), 2.0)]),
            ..Default::default()
        };
        let page = page_with_lists(rows, &mut lists);
        let titles: Vec<String> = page.rows[0]
            .items
            .iter()
            .map(|i| catalog.title(i.title).id.to_string())
            .collect();
        assert_eq!(titles[..2], ["7", "8"]);
        assert_eq!(titles.len(), 4, "{titles:?}");
    }

    #[test]
    fn popular_now_enters_top_picks_by_its_weight() {
        // Off: only what the history points at.
        assert_eq!(top_picks(""), ["2", "3", "4", "5"]);
        // A little: the personal titles first, then what trends.
        assert_eq!(
            top_picks("trending_weight = 0.5, min_relative_score = 0.0"),
            ["2", "3", "4", "5", "9", "10", "11", "12"]
        );
        // A lot: what trends outranks what the history points at.
        assert_eq!(
            top_picks("trending_weight = 5.0, min_relative_score = 0.0")[..4],
            ["9", "10", "11", "12"]
        );
        // Little trust in a one-title history leans on popular-now too.
        assert_eq!(
            top_picks(
                "trending_weight = 0.5, history_half_saturation = 10.0, min_relative_score = 0.0"
            )[0],
            "9"
        );
    }

    #[test]
    fn top_picks_weighs_popular_now_as_training_learned_unless_told_otherwise() {
        let learned = Some(PopularNowSetting {
            trending_weight: 5.0,
            ..PopularNowSetting::default()
        });
        let all = "min_relative_score = 0.0";
        // By default (`popular_now = "learned"`) the model's setting: what trends leads.
        assert_eq!(
            top_picks_learning(learned, all)[..4],
            ["9", "10", "11", "12"]
        );
        assert_eq!(
            top_picks_learning(learned, all),
            top_picks(&format!("trending_weight = 5.0, {all}"))
        );
        // "off", or an explicit number, wins over what was learned.
        let off = top_picks(all);
        assert_eq!(
            top_picks_learning(learned, &format!("popular_now = 'off', {all}")),
            off
        );
        assert_eq!(
            top_picks_learning(learned, &format!("trending_weight = 0.0, {all}")),
            off
        );
        // A model that learned nothing (or an older one) leaves Top Picks as it was.
        assert_eq!(
            top_picks_learning(Some(PopularNowSetting::default()), all),
            off
        );
        assert!(
            PageDefinition::parse(
                "[[row]]\nid = 'p'\ntitle = 'P'\nsource = 'personalized'\nparams = { popular_now = 'sometimes' }\n",
                "x.toml",
                &SourceRegistry::builtin()
            )
            .is_err()
        );
    }

    #[test]
    fn little_history_gets_the_setting_learned_for_it() {
        let lead = PopularNowSetting {
            trending_weight: 5.0,
            ..PopularNowSetting::default()
        };
        let all = "min_relative_score = 0.0";
        let off = top_picks(all);
        let trending_leads = top_picks_learning(Some(lead), all);
        assert_ne!(off, trending_leads);
        // The profile has one title: a setting learned for up to one title is its own, and
        // it wins over the one learned for longer histories, whichever way round.
        let little = |max, s| world_learning(Some(PopularNowSetting::default()), Some((max, s)));
        assert_eq!(top_picks_in(little(1, lead), all), trending_leads);
        assert_eq!(top_picks_in(little(5, lead), all), trending_leads);
        let reverse = world_learning(Some(lead), Some((1, PopularNowSetting::default())));
        assert_eq!(top_picks_in(reverse, all), off);
        // Learned for no history only: the one-title profile gets the other setting.
        assert_eq!(top_picks_in(little(0, lead), all), off);
        // "off" and explicit numbers still win.
        assert_eq!(
            top_picks_in(little(1, lead), &format!("popular_now = 'off', {all}")),
            off
        );
    }

    #[test]
    fn learned_order_follows_the_model_and_keeps_pinned_rows_first() {
        let rows = "
            [[row]]\nid = 'top-picks'\ntitle = 'P'\nsource = 'personalized'\nsize = 4\nmin_items = 1
            [[row]]\nid = 'popular'\ntitle = 'O'\nsource = 'popular'\nsize = 4\nmin_items = 1
            [[row]]\nid = 'trending'\ntitle = 'T'\nsource = 'trending'\nsize = 4\nmin_items = 1
            [[row]]\nid = 'cw'\ntitle = 'C'\nsource = 'popular'\nsize = 1\nmin_items = 1\npinned = true
        ";
        let definition = PageDefinition::parse(rows, "x.toml", &SourceRegistry::builtin()).unwrap();
        let ids = |learned: &[&str]| -> Vec<&str> {
            let learned: Vec<String> = learned.iter().map(|s| s.to_string()).collect();
            learned_order(&definition.rows, &learned)
                .into_iter()
                .map(|r| r.id.as_str())
                .collect()
        };
        assert_eq!(
            ids(&["trending", "personalized", "popular"]),
            ["cw", "trending", "top-picks", "popular"]
        );
        // Unknown or repeated sources order nothing; rows it did not place keep their order.
        assert_eq!(
            ids(&["trending", "trending", "because-you-watched"]),
            ["cw", "trending", "top-picks", "popular"]
        );
        assert_eq!(ids(&[]), ["cw", "top-picks", "popular", "trending"]);
        // Assembled: a model without a learned order leaves the definition's order.
        let learned = format!("[page]\nrows = 'learned'\n{ROWS}");
        assert_eq!(page_ids(&learned), page_ids(ROWS));
    }

    const ROWS: &str = "
        [[row]]\nid = 'trending'\ntitle = 'T'\nsource = 'trending'\nsize = 4\nmin_items = 1
        [[row]]\nid = 'top-picks'\ntitle = 'P'\nsource = 'personalized'\nsize = 4\nmin_items = 1
        [[row]]\nid = 'popular'\ntitle = 'O'\nsource = 'popular'\nsize = 4\nmin_items = 1
    ";

    #[test]
    fn engagement_order_puts_the_profile_s_strongest_row_first() {
        assert_eq!(page_ids(ROWS), ["trending", "top-picks", "popular"]);
        let engaged = format!("[page]\nrows = 'engagement'\n{ROWS}");
        // Top Picks holds what the profile's history points at; trending and popular tie at
        // nothing and keep their definition order.
        assert_eq!(page_ids(&engaged), ["top-picks", "trending", "popular"]);
        // With popular-now in the score, trending titles count, and the popular row's first
        // titles (1–4, of which 2–4 Top Picks took) count for less than trending's.
        let with_trending = engaged.replace(
            "source = 'personalized'",
            "source = 'personalized'\nparams = { trending_weight = 2.0 }",
        );
        assert_eq!(page_ids(&with_trending)[2], "popular");
        // A pinned row stays on top whatever the profile (here it takes 2–5, the popular
        // titles left, so Top Picks has nothing left and is dropped).
        let pinned = engaged.replace("source = 'popular'", "source = 'popular'\npinned = true");
        assert_eq!(page_ids(&pinned), ["popular", "trending"]);
        // A pinned row with nothing to show (no title in progress) does not hold the page up.
        let empty_pinned = format!(
            "{engaged}\n[[row]]\nid = 'cw'\ntitle = 'C'\nsource = 'continue-watching'\nmin_items = 1\npinned = true\n"
        );
        assert_eq!(
            page_ids(&empty_pinned),
            ["top-picks", "trending", "popular"]
        );
    }
}
