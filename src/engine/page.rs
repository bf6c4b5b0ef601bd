//! Page assembly: rows in definition order, each filled by its source, filtered, deduplicated
//! against the rows above it and reranked for diversity.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rustc_hash::FxHashSet;

use serde::Serialize;

use crate::domain::{Millis, Profile, Progress};
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::filters;
use crate::engine::history::History;
use crate::engine::model::Model;
use crate::engine::rerank::mmr;
use crate::engine::rows::PageDefinition;
use crate::engine::sources::SourceContext;
use crate::engine::sources::personalized::PersonalScoreCache;

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

/// `assemble`, adding where the time went to `timings`.
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
    let personal = PersonalScoreCache::default();
    // Dense ids hash in one multiply with Fx; SipHash's DoS resistance buys nothing here.
    let mut placed: FxHashSet<TitleIdx> = FxHashSet::default();
    let mut rows = Vec::new();
    for def in &definition.rows {
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
        let sourced = {
            let eligible = |t: TitleIdx| !placed.contains(&t) && allowed(t);
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
            };
            def.source.rows(&ctx)
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
        for row in sourced {
            lap(&mut bookkeeping);
            if !row.anchor.iter().all(suitable) {
                continue;
            }
            // Sources are trusted to try, not to be right: filter and dedupe here regardless
            // (this also dedupes between several rows of one source). Dedupe first, as it is
            // cheaper; both are pure per-title predicates, so the order changes nothing.
            let mut in_row = FxHashSet::default();
            let deduped: Vec<_> = row
                .candidates
                .into_iter()
                .filter(|c| !placed.contains(&c.title) && in_row.insert(c.title))
                .collect();
            lap(&mut timings.dedupe);
            let candidates: Vec<_> = deduped
                .into_iter()
                .filter(|c| allowed(c.title) && c.evidence.iter().all(suitable))
                .collect();
            lap(&mut timings.filters);
            let chosen = mmr(candidates, def.diversity, def.size, |a, b| {
                catalog.genre_similarity(a, b)
            });
            lap(&mut timings.rerank);
            if chosen.len() < def.min_items {
                continue;
            }
            placed.extend(chosen.iter().map(|c| c.title));
            rows.push(PageRow {
                id: match &row.key {
                    Some(key) => format!("{}:{key}", def.id),
                    None => def.id.clone(),
                },
                definition: def.id.clone(),
                anchor: row.anchor,
                model_version: model.version.clone(),
                title: row.title.unwrap_or_else(|| def.title.clone()),
                items: chosen
                    .into_iter()
                    .map(|c| PageItem {
                        title: c.title,
                        score: c.score,
                        reason: c.reason,
                        evidence: c.evidence,
                        progress: c.progress,
                    })
                    .collect(),
            });
        }
    }
    Page { rows }
}
