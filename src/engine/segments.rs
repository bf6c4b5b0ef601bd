//! Segment lists: candidate lists that depend on no single profile — only on its audience (what
//! `filters::suitable` reads: country, maturity limit, kids), the catalogue, the model and, for
//! some, the calendar. Every profile of an audience shares them (New Releases, a genre's titles),
//! so the caller may keep them across pages and replicas (`page::CandidateLists::segments`); the
//! engine only names them (`SegmentKey`, which carries everything a list depends on) and computes
//! those it is not handed. Where they are kept is the caller's business.
//!
//! A segment holds titles the audience may see, best first, the first `SEGMENT_LEN`. A source
//! takes the profile's eligible best from it (history filters, titles placed above) and, when the
//! list was cut short and the profile filtered out too much of it, computes the whole list
//! instead: a page made from a segment is the page made without one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::filters::{self, Audience};
use crate::engine::model::Model;

/// How many titles a kept segment holds: far more than a row's pool (size × 4 plus the titles
/// placed above), so that a profile's watched and thumbed-down titles rarely exhaust it.
pub const SEGMENT_LEN: usize = 1000;

/// What a segment lists; the `list` label of its cache metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    NewReleases,
    Genre,
}

impl SegmentKind {
    pub const ALL: [SegmentKind; 2] = [SegmentKind::NewReleases, SegmentKind::Genre];

    pub fn label(self) -> &'static str {
        match self {
            SegmentKind::NewReleases => "new-releases",
            SegmentKind::Genre => "genre",
        }
    }
}

/// The name of a segment list: its kind, the model version, the catalogue's fingerprint, the
/// audience and what else the source made it from (a genre, a window of years). Two pages that
/// compute the same key compute the same list, on any replica.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentKey {
    kind: SegmentKind,
    text: String,
}

impl SegmentKey {
    /// `detail`: what the source made the list from besides model, catalogue and audience.
    pub fn new(
        kind: SegmentKind,
        model: &Model,
        catalog: &Catalog,
        audience: Audience<'_>,
        detail: &str,
    ) -> Self {
        Self {
            kind,
            text: format!(
                "{}:{}:{:016x}:{}:{detail}",
                kind.label(),
                model.version,
                catalog.fingerprint(),
                shared(audience, catalog)
            ),
        }
    }

    pub fn kind(&self) -> SegmentKind {
        self.kind
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for SegmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The audience a segment of `catalog` is made for: the profile's, without the country when no
/// title is regional (then every country sees the same titles, and shares the list).
pub fn shared<'a>(audience: Audience<'a>, catalog: &Catalog) -> Audience<'a> {
    Audience {
        country: audience.country.filter(|_| catalog.regional()),
        ..audience
    }
}

/// A segment list (serde: the caller keeps it, e.g. in Redis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Titles the audience may see with a positive score, best first (ties: lower index first,
    /// the order `SourceContext::top` ranks by).
    pub entries: Vec<(TitleIdx, f32)>,
    /// Whether `entries` holds every such title (else the best `limit` of them).
    pub complete: bool,
}

impl Segment {
    /// The best `limit` of `scored` that `audience` may see.
    pub fn build(
        catalog: &Catalog,
        audience: Audience<'_>,
        scored: impl IntoIterator<Item = (TitleIdx, f32)>,
        limit: usize,
    ) -> Segment {
        let audience = shared(audience, catalog);
        let mut entries: Vec<(TitleIdx, f32)> = scored
            .into_iter()
            .filter(|(t, s)| *s > 0.0 && filters::suitable_for(audience, catalog.title(*t)).is_ok())
            .collect();
        entries.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let complete = entries.len() <= limit;
        entries.truncate(limit);
        Segment { entries, complete }
    }
}

/// The segment lists of one page: those the caller brought (`cached`) and those the page had to
/// compute (`computed`, for the caller to keep). Interior mutability: sources see the page's
/// context by shared reference, and a page is assembled on one thread.
#[derive(Debug, Default)]
pub struct Segments {
    pub cached: HashMap<SegmentKey, Arc<Segment>>,
    computed: RefCell<HashMap<SegmentKey, Arc<Segment>>>,
}

impl Segments {
    pub fn new(cached: HashMap<SegmentKey, Arc<Segment>>) -> Self {
        Self {
            cached,
            computed: RefCell::default(),
        }
    }

    /// The list named `key`: the caller's, one this page computed already, or `compute`d now.
    pub fn get_or_compute(
        &self,
        key: &SegmentKey,
        compute: impl FnOnce() -> Segment,
    ) -> Arc<Segment> {
        if let Some(segment) = self.cached.get(key) {
            return segment.clone();
        }
        if let Some(segment) = self.computed.borrow().get(key) {
            return segment.clone();
        }
        let segment = Arc::new(compute());
        self.computed
            .borrow_mut()
            .insert(key.clone(), segment.clone());
        segment
    }

    /// The lists this page computed (the caller keeps them).
    pub fn take_computed(&mut self) -> HashMap<SegmentKey, Arc<Segment>> {
        std::mem::take(self.computed.get_mut())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{AccountId, Country, MaturityRating, Profile, ProfileId, Title, TitleId};
    use crate::engine::history::History;
    use crate::engine::model::{ARTIFACT_FORMAT, ModelArtifact, ScoredTitle, TrainParams};
    use crate::engine::sources::SourceContext;

    fn tid(i: usize) -> TitleId {
        TitleId::parse(&i.to_string()).unwrap()
    }

    /// 40 titles: ratings cycle G, PG, PG-13, R, unrated; every seventh is licensed in DE only;
    /// popularity falls with the id, in steps of two (ties).
    fn world(version: &str) -> (Catalog, Model) {
        let catalog = Catalog::new(
            (1..=40)
                .map(|i| {
                    let mut t = Title::new(tid(i), format!("t{i}"));
                    t.maturity = [
                        Some(MaturityRating::G),
                        Some(MaturityRating::Pg),
                        Some(MaturityRating::Pg13),
                        Some(MaturityRating::R),
                        None,
                    ][i % 5];
                    if i % 7 == 0 {
                        t.countries = Some(vec![Country::parse("DE").unwrap()]);
                    }
                    t.genres = vec![if i % 3 == 0 { "Drama" } else { "Comedy" }.to_owned()];
                    t
                })
                .collect(),
        );
        let artifact = ModelArtifact {
            format: ARTIFACT_FORMAT,
            trained_at: 0,
            params: TrainParams::default(),
            interactions: 0,
            popularity: (1..=40)
                .map(|i| ScoredTitle(tid(i), 1.0 - (i / 2) as f32 * 0.02))
                .collect(),
            trending: BTreeMap::new(),
            item_weights: BTreeMap::new(),
            neighbors: BTreeMap::new(),
            content_neighbors: BTreeMap::new(),
            embeddings: None,
            popular_now: None,
        };
        let model = Model::load(version, &artifact, &catalog);
        (catalog, model)
    }

    fn profile(kids: bool, limit: Option<MaturityRating>, country: Option<&str>) -> Profile {
        Profile {
            id: ProfileId::parse("p").unwrap(),
            account_id: AccountId::parse("a").unwrap(),
            name: "p".into(),
            is_kids: kids,
            maturity_limit: limit,
            country: country.map(|c| Country::parse(c).unwrap()),
            onboarding_genres: vec![],
        }
    }

    #[test]
    fn keys_name_everything_a_list_depends_on() {
        let (catalog, model) = world("m1");
        let (_, other_model) = world("m2");
        let key = |p: &Profile, m: &Model, c: &Catalog, detail: &str| {
            SegmentKey::new(SegmentKind::Genre, m, c, Audience::of(p), detail)
        };
        let grown_up = profile(false, None, Some("US"));
        let base = key(&grown_up, &model, &catalog, "Drama");
        assert_eq!(
            base.as_str(),
            format!("genre:m1:{:016x}:US/none/all:Drama", catalog.fingerprint())
        );
        // Each dimension changes the key.
        assert_ne!(base, key(&grown_up, &other_model, &catalog, "Drama"));
        assert_ne!(base, key(&grown_up, &model, &catalog, "Comedy"));
        assert_ne!(
            base,
            key(&profile(false, None, Some("DE")), &model, &catalog, "Drama")
        );
        let kids = key(&profile(true, None, Some("US")), &model, &catalog, "Drama");
        let kids_g = key(
            &profile(true, Some(MaturityRating::G), Some("US")),
            &model,
            &catalog,
            "Drama",
        );
        let teen = key(
            &profile(false, Some(MaturityRating::Pg), Some("US")),
            &model,
            &catalog,
            "Drama",
        );
        assert!(kids.as_str().contains("US/PG/kids"), "{kids}");
        assert_ne!(kids, kids_g);
        // A grown-up limited to PG is not a kids profile (unrated titles differ).
        assert_ne!(kids, teen);
        // Another catalogue (one rating changed) is another key.
        let mut titles: Vec<Title> = catalog.titles().map(|(_, t)| t.clone()).collect();
        titles[0].maturity = Some(MaturityRating::Nc17);
        let changed = Catalog::new(titles);
        assert_ne!(base, key(&grown_up, &model, &changed, "Drama"));
        assert_eq!(
            catalog.fingerprint(),
            world("m3").0.fingerprint(),
            "deterministic"
        );
        // Without regional titles the country does not matter, so countries share lists.
        let everywhere = Catalog::new(
            catalog
                .titles()
                .map(|(_, t)| Title {
                    countries: None,
                    ..t.clone()
                })
                .collect(),
        );
        assert_eq!(
            key(&grown_up, &model, &everywhere, "Drama"),
            key(
                &profile(false, None, Some("DE")),
                &model,
                &everywhere,
                "Drama"
            )
        );
        assert!(
            key(&grown_up, &model, &everywhere, "Drama")
                .as_str()
                .contains(":*/none/all:")
        );
    }

    #[test]
    fn a_segment_holds_only_what_its_audience_may_see() {
        let (catalog, model) = world("m");
        for p in [
            profile(true, None, Some("US")),
            profile(true, Some(MaturityRating::G), None),
            profile(false, Some(MaturityRating::Pg13), Some("DE")),
            profile(false, None, None),
        ] {
            let all = catalog.titles().map(|(t, _)| (t, model.popularity(t)));
            let segment = Segment::build(&catalog, Audience::of(&p), all, SEGMENT_LEN);
            assert!(segment.complete);
            for (t, _) in &segment.entries {
                assert!(
                    filters::suitable(&p, catalog.title(*t)).is_ok(),
                    "{t} for {p:?}"
                );
            }
            let expected = catalog
                .titles()
                .filter(|(_, t)| filters::suitable(&p, t).is_ok())
                .count();
            assert_eq!(segment.entries.len(), expected);
        }
    }

    /// Whatever the cut and whatever the profile filters out, the best `pool` taken through a
    /// segment (with extras, as the genre row adds personal titles) equal those of the whole list.
    #[test]
    fn the_best_of_a_segment_are_the_best_of_the_whole_list() {
        let (catalog, model) = world("m");
        let p = profile(false, Some(MaturityRating::R), Some("US"));
        let history = History::default();
        let all: Vec<(TitleIdx, f32)> = catalog
            .titles()
            .map(|(t, _)| (t, 0.1 * model.popularity(t)))
            .collect();
        for limit in [0, 1, 3, 5, 8, 13, 40] {
            for pool in [1, 4, 7, 12] {
                for hide in [0u32, 2, 3, 5] {
                    // Hidden: watched, thumbed down or placed above; extras: "personal" titles.
                    let eligible = |t: TitleIdx| {
                        (hide == 0 || t % hide != 1)
                            && filters::suitable(&p, catalog.title(t)).is_ok()
                    };
                    let extras: Vec<(TitleIdx, f32)> = [(30, 0.9f32), (4, 0.05), (17, 0.5)].into();
                    let personal = |t: TitleIdx| extras.iter().any(|e| e.0 == t);
                    let ctx = SourceContext {
                        catalog: &catalog,
                        model: &model,
                        profile: &p,
                        history: &history,
                        now: 0,
                        eligible: &eligible,
                        pool,
                        top_picks: &Default::default(),
                        personal: &Default::default(),
                        live_trending: None,
                        segments: &Segments::default(),
                    };
                    let whole = ctx.top(
                        extras
                            .iter()
                            .copied()
                            .chain(all.iter().copied().filter(|(t, _)| !personal(*t))),
                    );
                    let segment =
                        Segment::build(&catalog, Audience::of(&p), all.iter().copied(), limit);
                    let (taken, sufficient) =
                        ctx.top_of_segment(&segment, extras.clone(), personal);
                    if sufficient {
                        assert_eq!(taken, whole, "limit {limit} pool {pool} hide {hide}");
                    } else {
                        assert!(!segment.complete);
                    }
                    if segment.complete {
                        assert!(sufficient);
                    }
                }
            }
        }
    }

    /// A kept list cut short that the profile filters out almost entirely: the page uses the
    /// whole list instead (and does not hand it back to keep).
    #[test]
    fn a_list_cut_too_short_for_the_profile_gives_way_to_the_whole_list() {
        let (catalog, model) = world("m");
        let p = profile(false, None, Some("US"));
        let history = History::default();
        let all: Vec<(TitleIdx, f32)> = catalog
            .titles()
            .map(|(t, _)| (t, model.popularity(t)))
            .collect();
        let compute =
            |limit| Segment::build(&catalog, Audience::of(&p), all.iter().copied(), limit);
        let key = SegmentKey::new(
            SegmentKind::NewReleases,
            &model,
            &catalog,
            Audience::of(&p),
            "x",
        );
        let cut = compute(4);
        assert!(!cut.complete);
        let mut segments = Segments::new(HashMap::from([(key.clone(), Arc::new(cut))]));
        // The four best are "watched".
        let hidden: Vec<TitleIdx> = compute(4).entries.iter().map(|e| e.0).collect();
        let eligible =
            |t: TitleIdx| !hidden.contains(&t) && filters::suitable(&p, catalog.title(t)).is_ok();
        let ctx = SourceContext {
            catalog: &catalog,
            model: &model,
            profile: &p,
            history: &history,
            now: 0,
            eligible: &eligible,
            pool: 3,
            top_picks: &Default::default(),
            personal: &Default::default(),
            live_trending: None,
            segments: &segments,
        };
        let taken = ctx.top_via_segment(&key, compute, vec![], |_| false);
        assert_eq!(taken, ctx.top(all.iter().copied()));
        assert_eq!(taken.len(), 3);
        assert!(segments.take_computed().is_empty());
    }

    #[test]
    fn a_page_uses_the_segments_it_is_handed_and_returns_those_it_computed() {
        let mut segments = Segments::default();
        let (catalog, model) = world("m");
        let p = profile(false, None, None);
        let key = SegmentKey::new(
            SegmentKind::NewReleases,
            &model,
            &catalog,
            Audience::of(&p),
            "x",
        );
        let made = segments.get_or_compute(&key, || Segment {
            entries: vec![(1, 1.0)],
            complete: true,
        });
        let again = segments.get_or_compute(&key, || unreachable!("computed once"));
        assert!(Arc::ptr_eq(&made, &again));
        let computed = segments.take_computed();
        assert_eq!(computed.len(), 1);
        let segments = Segments::new(computed);
        segments.get_or_compute(&key, || unreachable!("handed in"));
    }
}
