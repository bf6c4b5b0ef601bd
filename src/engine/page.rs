//! Page assembly: rows in definition order, each filled by its source, filtered, deduplicated
//! against the rows above it and reranked for diversity.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::domain::{Millis, Profile, Progress};
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::filters;
use crate::engine::history::History;
use crate::engine::model::Model;
use crate::engine::rerank::mmr;
use crate::engine::rows::PageDefinition;
use crate::engine::sources::SourceContext;

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
    let mut placed: HashSet<TitleIdx> = HashSet::new();
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
            };
            def.source.rows(&ctx)
        };
        for row in sourced {
            if !row.anchor.iter().all(suitable) {
                continue;
            }
            // Sources are trusted to try, not to be right: filter and dedupe here regardless
            // (this also dedupes between several rows of one source).
            let mut in_row = HashSet::new();
            let candidates: Vec<_> = row
                .candidates
                .into_iter()
                .filter(|c| {
                    !placed.contains(&c.title)
                        && allowed(c.title)
                        && c.evidence.iter().all(suitable)
                        && in_row.insert(c.title)
                })
                .collect();
            let chosen = mmr(candidates, def.diversity, def.size, |a, b| {
                catalog.genre_similarity(a, b)
            });
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
