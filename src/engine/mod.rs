//! The recommendation engine: catalogue, history, models, candidate sources, filters, rerank
//! and page assembly. Nothing in here knows about HTTP, GraphQL or SQL; callers hand it plain
//! values and get plain values back.

pub mod catalog;
pub mod filters;
pub mod history;
pub mod model;
pub mod page;
pub mod rerank;
pub mod rows;
pub mod segments;
pub mod sources;
pub mod training_set;

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use crate::domain::{Millis, Profile, TitleId};
use catalog::{Catalog, TitleIdx};
use history::History;
use model::Model;
use page::{Page, PageTimings};
use rows::{PageDefinition, PageError, PageOverrides, VariantDefinition, Variants};
use sources::SourceRegistry;

/// Everything needed to answer requests, swapped as one unit when a new model is activated.
#[derive(Debug)]
pub struct Engine {
    pub catalog: Catalog,
    pub model: Model,
    pub home: PageDefinition,
    /// Builds the sources of page variants that experiments ask for.
    pub sources: SourceRegistry,
    /// Other model versions, bound to this catalogue, that experiments name for some rows.
    pub alternates: HashMap<String, Model>,
    /// `home` as the experiments' variants have it, built once each.
    pub variants: Variants,
    /// What a caller derives from this engine and keeps for as long as it serves (the API's
    /// pre-written title metadata): the caller's type, opaque here, gone with the engine.
    pub derived: Derived,
}

/// `Engine::derived`: one value of the caller's type, made on first use.
#[derive(Default)]
pub struct Derived(OnceLock<Box<dyn Any + Send + Sync>>);

impl Derived {
    /// The value, made by `make` on first use; `None` if the slot holds another type.
    pub fn get_or_init<T: Any + Send + Sync>(&self, make: impl FnOnce() -> T) -> Option<&T> {
        self.0.get_or_init(|| Box::new(make())).downcast_ref()
    }
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Derived")
    }
}

impl Engine {
    /// `home` as `overrides` have it (`Variants`).
    pub fn variant(&self, overrides: &PageOverrides) -> VariantDefinition {
        self.variants.of(&self.home, overrides, &self.sources)
    }

    pub fn home_page(&self, profile: &Profile, history: &History, now: Millis) -> Page {
        self.assemble(&self.home, profile, history, now)
    }

    /// The home page as an experiment variant composes it. Overrides are validated when the
    /// experiments are loaded; one that still fails here is an error for the caller to report.
    pub fn home_page_with(
        &self,
        overrides: &PageOverrides,
        profile: &Profile,
        history: &History,
        now: Millis,
    ) -> Result<Page, PageError> {
        if overrides.is_empty() {
            return Ok(self.home_page(profile, history, now));
        }
        let variant = self.variant(overrides)?;
        Ok(self.assemble(&variant, profile, history, now))
    }

    /// `home_page_with`, adding where the time went to `timings` (the default page's too when
    /// the caller falls back to it with `home_page_timed`).
    pub fn home_page_with_timed(
        &self,
        overrides: &PageOverrides,
        profile: &Profile,
        history: &History,
        now: Millis,
        timings: &mut PageTimings,
    ) -> Result<Page, PageError> {
        if overrides.is_empty() {
            return Ok(self.home_page_timed(profile, history, now, timings));
        }
        let variant = self.variant(overrides)?;
        Ok(self.assemble_timed(&variant, profile, history, now, timings))
    }

    /// `home_page_with_timed` with the caller's candidate lists (`page::CandidateLists`: live
    /// trending, lists kept from an earlier page; the lists this page computed come back in
    /// it). A variant that fails is an error, as with `home_page_with`.
    pub fn home_page_lists(
        &self,
        overrides: &PageOverrides,
        profile: &Profile,
        history: &History,
        now: Millis,
        timings: &mut PageTimings,
        lists: &mut page::CandidateLists,
    ) -> Result<Page, PageError> {
        let variant;
        let definition = if overrides.is_empty() {
            &self.home
        } else {
            variant = self.variant(overrides)?;
            &*variant
        };
        Ok(page::assemble_with(
            definition,
            &self.catalog,
            &self.model,
            &self.alternates,
            profile,
            history,
            now,
            timings,
            lists,
        ))
    }

    /// The segment lists (`segments`) the page `home_page_lists` would assemble for these
    /// arguments asks for, except those of rows in `kept` (`CandidateLists::cached`): for the
    /// caller to fetch first. None for a variant that fails (its page is the default one, which
    /// computes what it needs).
    pub fn segment_keys(
        &self,
        overrides: &PageOverrides,
        profile: &Profile,
        history: &History,
        now: Millis,
        kept: &page::KeptLists,
    ) -> Vec<segments::SegmentKey> {
        let variant;
        let definition = if overrides.is_empty() {
            &self.home
        } else {
            match self.variant(overrides) {
                Ok(v) => {
                    variant = v;
                    &*variant
                }
                Err(_) => return Vec::new(),
            }
        };
        page::segment_keys(
            definition,
            &self.catalog,
            &self.model,
            &self.alternates,
            profile,
            history,
            now,
            kept,
        )
    }

    /// `home_page`, adding where the time went to `timings`.
    pub fn home_page_timed(
        &self,
        profile: &Profile,
        history: &History,
        now: Millis,
        timings: &mut PageTimings,
    ) -> Page {
        self.assemble_timed(&self.home, profile, history, now, timings)
    }

    fn assemble(
        &self,
        page: &PageDefinition,
        profile: &Profile,
        history: &History,
        now: Millis,
    ) -> Page {
        self.assemble_timed(page, profile, history, now, &mut PageTimings::default())
    }

    fn assemble_timed(
        &self,
        page: &PageDefinition,
        profile: &Profile,
        history: &History,
        now: Millis,
        timings: &mut PageTimings,
    ) -> Page {
        page::assemble_timed(
            page,
            &self.catalog,
            &self.model,
            &self.alternates,
            profile,
            history,
            now,
            timings,
        )
    }

    /// Titles like `title`: trained (collaborative) neighbours first, then content neighbours
    /// (genres, year, people; so that titles nobody has watched yet still have neighbours),
    /// filtered for the profile if given.
    pub fn similar(
        &self,
        title: &TitleId,
        first: usize,
        profile: Option<(&Profile, &History)>,
    ) -> Option<Vec<TitleIdx>> {
        let anchor = self.catalog.idx(title)?;
        let allowed = |t: TitleIdx| match profile {
            Some((p, h)) => filters::allowed(p, h, self.catalog.title(t), false).is_ok(),
            None => true,
        };
        let mut seen = HashSet::from([anchor]);
        Some(
            self.model
                .neighbors(anchor)
                .iter()
                .chain(self.model.content_neighbors(anchor))
                .map(|(t, _)| *t)
                .filter(|t| allowed(*t) && seen.insert(*t))
                .take(first)
                .collect(),
        )
    }

    /// Search: titles whose name matches, most popular first, then titles whose overview
    /// matches (see `Catalog::search`), most popular first; with a viewer, only titles it may
    /// see (maturity, region) — watched titles stay findable.
    pub fn search(&self, query: &str, first: usize, viewer: Option<&Profile>) -> Vec<TitleIdx> {
        let mut hits = self.catalog.search(query);
        hits.retain(|(t, _)| self.suitable(viewer, *t));
        hits.sort_by(|(a, ka), (b, kb)| {
            ka.cmp(kb).then_with(|| self.model.popularity_order(*a, *b))
        });
        hits.truncate(first);
        hits.into_iter().map(|(t, _)| t).collect()
    }

    fn suitable(&self, viewer: Option<&Profile>, t: TitleIdx) -> bool {
        viewer.is_none_or(|p| filters::suitable(p, self.catalog.title(t)).is_ok())
    }

    /// All titles (of a genre) the viewer may see, most popular first: the browse order.
    pub fn browse(&self, genre: Option<&str>, viewer: Option<&Profile>) -> Vec<TitleIdx> {
        let mut list: Vec<TitleIdx> = self
            .catalog
            .titles()
            .filter(|(_, t)| genre.is_none_or(|g| t.genres.iter().any(|tg| tg == g)))
            .map(|(i, _)| i)
            .filter(|t| self.suitable(viewer, *t))
            .collect();
        self.model.sort_by_popularity(&mut list);
        list
    }
}
