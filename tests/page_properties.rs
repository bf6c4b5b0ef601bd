//! Property tests of page assembly over random catalogues, models, profiles and histories.

use std::collections::{BTreeMap, HashMap, HashSet};

use marquee::domain::{
    AccountId, Country, EventAction, MaturityRating, Profile, ProfileId, Progress, StarRating,
    Title, TitleId, effective_maturity,
};
use marquee::engine::Engine;
use marquee::engine::catalog::Catalog;
use marquee::engine::filters;
use marquee::engine::history::{History, WatchState};
use marquee::engine::model::als::Factors;
use marquee::engine::model::ann::AnnParams;
use marquee::engine::model::{
    ARTIFACT_FORMAT, EmbeddingArtifact, Model, ModelArtifact, ScoredTitle, TrainParams,
};
use marquee::engine::page::CandidateLists;
use marquee::engine::rows::{DEFAULT_HOME, PageDefinition, PageOverrides, RowOrder};
use marquee::engine::segments::Segments;
use marquee::engine::sources::SourceRegistry;
use proptest::prelude::*;

const GENRES: [&str; 7] = [
    "Action",
    "Animation",
    "Children's",
    "Comedy",
    "Drama",
    "Horror",
    "Romance",
];
const NOW: i64 = 893_289_600_000;

fn tid(i: usize) -> TitleId {
    TitleId::parse(&i.to_string()).unwrap()
}

/// A rating from each source: the dataset's (MovieLens + vega) and TMDb's US certification.
type Sources = (Option<MaturityRating>, Option<MaturityRating>);

fn arb_sources() -> impl Strategy<Value = Sources> {
    let rating = || proptest::option::of(proptest::sample::select(MaturityRating::ALL.to_vec()));
    (rating(), rating())
}

/// A title whose rating combines its two sources as the store does when it loads the
/// catalogue; the sources come along so that the properties can restate the precedence.
fn arb_title(i: usize) -> impl Strategy<Value = (Title, Sources)> {
    (
        proptest::sample::subsequence(GENRES.to_vec(), 0..=3),
        arb_sources(),
        1990i32..=1998,
        prop_oneof![8 => Just(None), 1 => Just(Some(vec!["DE"])), 1 => Just(Some(vec!["US", "DE"]))],
    )
        .prop_map(move |(genres, sources, year, countries)| (Title {
            id: tid(i),
            // A marker a text can be searched for: every row title and reason that names a
            // title names it as «i».
            name: format!("Title «{i}»"),
            year: Some(year),
            genres: genres.into_iter().map(str::to_owned).collect(),
            maturity: effective_maturity(sources.0, sources.1),
            overview: None,
            added_at: 0,
            countries: countries.map(|cs| cs.into_iter().map(|c| Country::parse(c).unwrap()).collect()),
            details: None,
        }, sources))
}

fn arb_catalog() -> impl Strategy<Value = Vec<(Title, Sources)>> {
    (5usize..60).prop_flat_map(|n| (0..n).map(arb_title).collect::<Vec<_>>())
}

fn arb_state(n: usize) -> impl Strategy<Value = WatchState> {
    (
        0..n,
        0u8..6,
        proptest::option::of(1u8..=10),
        0.0f64..=1.0,
        -1i8..=1,
        0i64..90,
    )
        .prop_map(|(t, kind, stars, progress, thumbs, age_days)| {
            let mut s = WatchState::new(tid(t));
            let at = NOW - age_days * 86_400_000;
            match kind {
                0 => s.apply(EventAction::Complete, at),
                1 | 2 => s.apply(EventAction::Progress(Progress::new(progress).unwrap()), at),
                _ => s.apply(EventAction::Play, at),
            }
            if let Some(stars) = stars {
                s.apply(
                    EventAction::Rating(StarRating::new(f64::from(stars) / 2.0).unwrap()),
                    at,
                );
            }
            match thumbs {
                1 => s.apply(EventAction::ThumbsUp, at),
                -1 => s.apply(EventAction::ThumbsDown, at),
                _ => {}
            }
            s
        })
}

fn arb_profile() -> impl Strategy<Value = Profile> {
    (
        any::<bool>(),
        proptest::option::of(proptest::sample::select(vec!["US", "DE"])),
        proptest::option::of(proptest::sample::select(MaturityRating::ALL.to_vec())),
    )
        .prop_map(|(is_kids, country, limit)| Profile {
            id: ProfileId::parse("p").unwrap(),
            account_id: AccountId::parse("a").unwrap(),
            name: "p".into(),
            is_kids,
            maturity_limit: limit,
            country: country.map(|c| Country::parse(c).unwrap()),
            onboarding_genres: vec!["Comedy".into()],
        })
}

/// A model with random popularity, trending, neighbours and embeddings over the catalogue.
fn arb_artifact(n: usize) -> impl Strategy<Value = ModelArtifact> {
    (
        proptest::collection::vec(0.0f32..1.0, n),
        proptest::collection::vec(proptest::collection::vec((0..n, 0.01f32..1.0), 0..8), n),
        proptest::collection::vec(-1.0f32..1.0, n * 4),
    )
        .prop_map(move |(pop, neighbors, factors)| {
            let scored = |v: &[f32]| -> Vec<ScoredTitle> {
                let mut list: Vec<ScoredTitle> = v
                    .iter()
                    .enumerate()
                    .map(|(i, s)| ScoredTitle(tid(i), *s))
                    .collect();
                list.sort_by(|a, b| b.1.total_cmp(&a.1));
                list
            };
            ModelArtifact {
                format: ARTIFACT_FORMAT,
                trained_at: NOW,
                params: TrainParams::default(),
                interactions: 0,
                popularity: scored(&pop),
                trending: BTreeMap::from([(None, scored(&pop[..n / 2]))]),
                // EASE weights may be negative: reuse the neighbour lists with every other sign
                // flipped, so that Top Picks' scoring sees both.
                item_weights: neighbors
                    .iter()
                    .enumerate()
                    .map(|(i, list)| {
                        (
                            tid(i),
                            list.iter()
                                .enumerate()
                                .map(|(k, &(j, s))| {
                                    ScoredTitle(tid(j), if k % 2 == 1 { -s } else { s })
                                })
                                .collect(),
                        )
                    })
                    .collect(),
                neighbors: neighbors
                    .into_iter()
                    .enumerate()
                    .map(|(i, list)| {
                        (
                            tid(i),
                            list.into_iter()
                                .map(|(j, s)| ScoredTitle(tid(j), s))
                                .collect(),
                        )
                    })
                    .collect(),
                content_neighbors: BTreeMap::new(),
                // Every title has an embedding, so Top Picks draws candidates from the ANN
                // index too; they must obey the same filters.
                embeddings: Some(EmbeddingArtifact::build(
                    (0..n).map(tid).collect(),
                    Factors {
                        dim: 4,
                        data: factors,
                    },
                    &AnnParams::default(),
                )),
                popular_now: None,
            }
        })
}

fn arb_world() -> impl Strategy<
    Value = (
        Vec<(Title, Sources)>,
        ModelArtifact,
        Profile,
        Vec<WatchState>,
    ),
> {
    arb_catalog().prop_flat_map(|titles| {
        let n = titles.len();
        (
            Just(titles),
            arb_artifact(n),
            arb_profile(),
            proptest::collection::vec(arb_state(n), 0..20),
        )
    })
}

fn engine(titles: Vec<Title>, artifact: &ModelArtifact) -> Engine {
    let catalog = Catalog::new(titles);
    let model = Model::load("test", artifact, &catalog);
    let home =
        PageDefinition::parse(DEFAULT_HOME, "rows/home.toml", &SourceRegistry::builtin()).unwrap();
    Engine {
        catalog,
        model,
        home,
        sources: SourceRegistry::builtin(),
        alternates: Default::default(),
        variants: Default::default(),
        derived: Default::default(),
    }
}

/// What an experiment may do to the shipped page: any order and subset of its rows, any
/// diversity strength.
fn arb_overrides() -> impl Strategy<Value = PageOverrides> {
    let ids = vec![
        "continue-watching",
        "top-picks",
        "because-you-watched",
        "trending",
        "new-releases",
        "genre",
    ];
    (
        proptest::sample::subsequence(ids.clone(), 1..=6).prop_shuffle(),
        proptest::sample::select(ids),
        0.0f64..=1.0,
        proptest::option::of(proptest::sample::select(vec![
            RowOrder::Fixed,
            RowOrder::Engagement,
        ])),
    )
        .prop_map(|(rows, tuned, diversity, order)| {
            let mut o: PageOverrides = serde_json::from_value(serde_json::json!({
                "settings": {tuned: {"diversity": diversity, "size": 7}}
            }))
            .unwrap();
            o.rows = Some(rows.into_iter().map(str::to_owned).collect());
            o.order = order;
            o
        })
}

/// Every title `value` names, walking all of it: in a page's JSON form every integer is a
/// title index (scores and progress are floats), and every text names titles by their «i»
/// marker. A field added later that names a title is walked too.
fn named_titles(value: &serde_json::Value, out: &mut Vec<usize>) {
    match value {
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                out.push(i as usize);
            }
        }
        serde_json::Value::String(text) => {
            let mut rest = text.as_str();
            while let Some(start) = rest.find('«') {
                rest = &rest[start + '«'.len_utf8()..];
                let end = rest.find('»').expect("an unclosed marker");
                out.push(rest[..end].parse().expect("a marker names a title index"));
                rest = &rest[end..];
            }
        }
        serde_json::Value::Array(values) => values.iter().for_each(|v| named_titles(v, out)),
        serde_json::Value::Object(fields) => fields.values().for_each(|v| named_titles(v, out)),
        _ => {}
    }
}

/// The kids rule restated without the filter code: the dataset's rating decides whatever TMDb
/// says; TMDb's certification decides where the dataset has none; unrated by both, only
/// titles made for children. And the region rule.
fn may_see(profile: &Profile, title: &Title, sources: Sources) -> bool {
    let maturity_ok = match (profile.is_kids, profile.maturity_limit) {
        (false, None) => true,
        (kids, limit) => {
            let limit = limit.unwrap_or(MaturityRating::Pg);
            match sources {
                (Some(dataset), _) => dataset <= limit,
                (None, Some(tmdb)) => tmdb <= limit,
                (None, None) => {
                    !kids
                        || title
                            .genres
                            .iter()
                            .any(|g| g == "Children's" || g == "Animation")
                }
            }
        }
    };
    let region_ok = match (&title.countries, &profile.country) {
        (None, _) => true,
        (Some(cs), Some(c)) => cs.contains(c),
        // A profile of unknown country sees only titles licensed everywhere.
        (Some(_), None) => false,
    };
    maturity_ok && region_ok && filters::suitable(profile, title).is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Kids safety is a property of the whole answer: every title a page, a search, the
    /// browse list or More Like This names — as an item, an anchor, evidence, or in a row
    /// title or reason — is one the profile may see, including titles from its own history
    /// that it should never have had (a kids profile that rated an R title).
    #[test]
    fn every_title_an_answer_names_passes_the_policy(
        (catalog, artifact, profile, states) in arb_world(),
        overrides in arb_overrides(),
        anchor in 0usize..60,
    ) {
        let (titles, sources): (Vec<Title>, Vec<Sources>) = catalog.into_iter().unzip();
        let n = titles.len();
        let engine = engine(titles, &artifact);
        let history = History::new(states);
        let mut answers = vec![
            serde_json::to_value(engine.home_page(&profile, &history, NOW)).unwrap(),
            serde_json::to_value(engine.home_page_with(&overrides, &profile, &history, NOW).unwrap()).unwrap(),
            serde_json::to_value(engine.search("title", 100, Some(&profile))).unwrap(),
            serde_json::to_value(engine.browse(None, Some(&profile))).unwrap(),
        ];
        let anchor = tid(anchor % n);
        answers.push(serde_json::to_value(engine.similar(&anchor, 100, Some((&profile, &history)))).unwrap());
        for answer in &answers {
            let mut named = Vec::new();
            named_titles(answer, &mut named);
            for i in named {
                prop_assert!(i < n, "{i} is not a title index");
                let title = engine.catalog.title(i as u32);
                prop_assert_eq!(title.id.as_str(), i.to_string(), "catalogue order is id order");
                prop_assert!(
                    may_see(&profile, title, sources[i]),
                    "the answer names title {} ({:?}, {:?}) for profile {:?}",
                    i, title.maturity, title.countries, profile
                );
            }
        }
    }

    #[test]
    fn pages_never_repeat_a_title_and_never_leak_a_filtered_one(
        (catalog, artifact, profile, states) in arb_world()
    ) {
        // Title `i` has id "i": its sources are `sources[i]`.
        let (titles, sources): (Vec<Title>, Vec<Sources>) = catalog.into_iter().unzip();
        let engine = engine(titles, &artifact);
        let history = History::new(states);
        let page = engine.home_page(&profile, &history, NOW);
        let mut seen = HashSet::new();
        for row in &page.rows {
            prop_assert!(!row.items.is_empty());
            prop_assert!(row.items.len() <= 20);
            for item in &row.items {
                prop_assert!(seen.insert(item.title), "title {} twice on the page", item.title);
                let title = engine.catalog.title(item.title);
                prop_assert_eq!(filters::allowed(&profile, &history, title, false), Ok(()));
                // Restated without the filter code: what a kids profile may see. The dataset's
                // rating decides whatever TMDb says; TMDb's certification decides where the
                // dataset has none; unrated by both, only titles made for children.
                if profile.is_kids {
                    let limit = profile.maturity_limit.unwrap_or(MaturityRating::Pg);
                    let index: usize = title.id.as_str().parse().unwrap();
                    match sources[index] {
                        (Some(dataset), _) => prop_assert!(dataset <= limit),
                        (None, Some(tmdb)) => prop_assert!(tmdb <= limit),
                        (None, None) => prop_assert!(title.genres.iter().any(|g| g == "Children's" || g == "Animation")),
                    }
                }
                if let Some(s) = history.get(&title.id) {
                    prop_assert!(!s.is_watched());
                    prop_assert!(s.thumbs != marquee::engine::history::Thumbs::Down);
                }
            }
        }
        // Same inputs, same page.
        prop_assert_eq!(engine.home_page(&profile, &history, NOW), page);
    }

    #[test]
    fn experiment_variants_keep_the_page_invariants(
        (catalog, artifact, profile, states) in arb_world(),
        overrides in arb_overrides(),
    ) {
        let titles: Vec<Title> = catalog.into_iter().map(|(t, _)| t).collect();
        let engine = engine(titles, &artifact);
        let history = History::new(states);
        let page = engine.home_page_with(&overrides, &profile, &history, NOW).unwrap();
        let allowed_kinds = overrides.rows.clone().unwrap();
        let mut seen = HashSet::new();
        for row in &page.rows {
            prop_assert!(allowed_kinds.contains(&row.definition));
            for item in &row.items {
                prop_assert!(seen.insert(item.title));
                let title = engine.catalog.title(item.title);
                prop_assert_eq!(filters::allowed(&profile, &history, title, false), Ok(()));
            }
        }
    }

    /// Segment lists shared across profiles, as a replica's near cache and Redis share them:
    /// profiles of any audience (kids, limits, countries) ask in turn, each handed every list
    /// the pages before it computed. Each page is exactly the page assembled without shared
    /// lists — so a kids profile never gets a title above its level from a list made for
    /// someone else — and names only titles it may see.
    #[test]
    fn pages_from_shared_segment_lists_are_the_pages_without_them(
        (catalog, artifact, _, states) in arb_world(),
        profiles in proptest::collection::vec(arb_profile(), 2..6),
        overrides in arb_overrides(),
    ) {
        let (titles, sources): (Vec<Title>, Vec<Sources>) = catalog.into_iter().unzip();
        let engine = engine(titles, &artifact);
        let history = History::new(states);
        let mut shared = HashMap::new();
        for (k, profile) in profiles.iter().chain(profiles.iter()).enumerate() {
            let wanted = engine.segment_keys(&overrides, profile, &history, NOW, &HashMap::new());
            // Every list kept so far, not only those the page names: it looks lists up by the
            // keys it makes, so another audience's list is never one of them.
            let mut lists = CandidateLists {
                segments: Segments::new(shared.clone()),
                ..Default::default()
            };
            let page = engine
                .home_page_lists(&overrides, profile, &history, NOW, &mut Default::default(), &mut lists)
                .unwrap();
            let computed = lists.segments.take_computed();
            for key in computed.keys() {
                prop_assert!(!shared.contains_key(key), "{key} computed again");
            }
            if k >= profiles.len() {
                // The second round finds every list it names.
                prop_assert!(computed.is_empty(), "{:?}", computed.keys().collect::<Vec<_>>());
                prop_assert!(wanted.iter().all(|key| shared.contains_key(key)));
            }
            shared.extend(computed);
            prop_assert_eq!(&page, &engine.home_page_with(&overrides, profile, &history, NOW).unwrap());
            let mut named = Vec::new();
            named_titles(&serde_json::to_value(&page).unwrap(), &mut named);
            for i in named {
                let title = engine.catalog.title(i as u32);
                prop_assert!(may_see(profile, title, sources[i]), "title {} for {:?}", i, profile);
            }
        }
    }
}
