//! The offline evaluation end to end on a small synthetic dataset: split files, train, rank
//! with the served Top Picks row, and check that it beats MostPop by a wide margin. The real
//! MovieLens figures (README, "Recommendation quality") need a download and are not run here.

use std::fmt::Write;

use marquee::app::models::page_definition;
use marquee::engine::model::TrainParams;
use marquee::engine::rows::PageOverrides;
use marquee::engine::sources::SourceRegistry;
use marquee::lab::eval::{self, EvalSet};

const CLUSTERS: usize = 12;
const PER_CLUSTER: usize = 25;
const USERS: usize = 300;
const PER_USER: usize = 30;
const GENRES: [&str; 6] = ["Action", "Comedy", "Drama", "Horror", "Romance", "Western"];

/// Deterministic pseudo-random numbers (64-bit LCG, high bits), so the test cannot flake.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Users each prefer one cluster of titles (85% of their interactions, skewed towards the
/// cluster's first titles); the rest are globally popular titles. A good personal ranking finds
/// the user's cluster; MostPop cannot.
fn write_dataset(dir: &std::path::Path) {
    let mut item =
        String::from("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n");
    for i in 0..CLUSTERS * PER_CLUSTER {
        let c = i / PER_CLUSTER;
        writeln!(
            item,
            "{}\tTitle {i}\t1995\t{}",
            i + 1,
            GENRES[c % GENRES.len()]
        )
        .unwrap();
    }
    std::fs::write(dir.join("synth.item"), item).unwrap();
    let mut inter = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    let mut rng = Lcg(7);
    for u in 0..USERS {
        let c = u % CLUSTERS;
        let mut seen = std::collections::HashSet::new();
        let mut t = 880_000_000 + u * 1_000;
        while seen.len() < PER_USER {
            let i = if rng.next(100) < 85 {
                // min of two draws: earlier titles in the cluster are more popular.
                c * PER_CLUSTER + rng.next(PER_CLUSTER).min(rng.next(PER_CLUSTER))
            } else {
                rng.next(CLUSTERS * PER_CLUSTER)
                    .min(rng.next(CLUSTERS * PER_CLUSTER))
            };
            if seen.insert(i) {
                t += 60 + rng.next(600);
                writeln!(inter, "{u}\t{}\t{}\t{t}", i + 1, 1 + rng.next(5)).unwrap();
            }
        }
    }
    std::fs::write(dir.join("synth.inter"), inter).unwrap();
}

/// The metrics of the report's ranking whose name starts with `name`.
fn line(report: &eval::Report, name: &str) -> eval::Metrics {
    report
        .lines
        .iter()
        .find(|(n, _)| n.starts_with(name))
        .map(|(_, m)| *m)
        .unwrap()
}

#[test]
fn served_top_picks_beat_most_popular_by_a_wide_margin() {
    let raw = tempfile::tempdir().unwrap();
    write_dataset(raw.path());
    let out = tempfile::tempdir().unwrap();
    let s = eval::split_dir(raw.path(), out.path()).unwrap();
    assert_eq!(s.users, USERS);
    // 30 each → 6 held out for TEST, then 24 → 4 for VALID.
    assert_eq!(
        (s.train, s.test, s.valid),
        (USERS * 24, USERS * 6, USERS * 4)
    );
    assert!(out.path().join("train/synth.train.inter").is_file());
    assert!(out.path().join("test/synth.item").is_file());

    let home = page_definition(None).unwrap();
    for (target, dir, subtract) in [("TEST", "test", false), ("VALID", "valid", true)] {
        let set =
            EvalSet::load(&out.path().join("train"), &out.path().join(dir), subtract).unwrap();
        assert_eq!(set.users.len(), USERS);
        let report = eval::run(&set, &TrainParams::default(), &home, target).unwrap();
        let (pop, picks) = (line(&report, "MostPop"), line(&report, "Top Picks"));
        println!("{}", report.table());
        assert!(
            picks.ndcg_10 >= 2.0 * pop.ndcg_10 && picks.ndcg_10 >= 0.25,
            "{target}: Top Picks NDCG@10 {:.3} vs MostPop {:.3}",
            picks.ndcg_10,
            pop.ndcg_10
        );
        assert!(
            picks.recall_20 >= 2.0 * pop.recall_20,
            "{target}: {picks:?} vs {pop:?}"
        );
        assert!(picks.coverage_10 > pop.coverage_10);
        // Every user gets a row (faint scores may shorten it), and the export lists it.
        let items: usize = report.top_picks.iter().map(|(_, r)| r.len()).sum();
        assert!(
            report
                .top_picks
                .iter()
                .all(|(_, r)| (1..=eval::DEPTH).contains(&r.len()))
        );
        assert_eq!(report.export_tsv().lines().count(), items);
    }
}

/// The embedding path alone (ALS, fold-in, ANN), with EASE and co-occurrence turned off, must
/// find the users' clusters too: a broken fold-in or index would fall to MostPop or below.
#[test]
fn embeddings_alone_beat_most_popular() {
    let raw = tempfile::tempdir().unwrap();
    write_dataset(raw.path());
    let out = tempfile::tempdir().unwrap();
    eval::split_dir(raw.path(), out.path()).unwrap();
    // The shipped page with Top Picks' embedding weight raised, set structurally: an override
    // names the row and the param, and fails if either does not exist.
    let shipped = page_definition(None).unwrap();
    let overrides: PageOverrides = serde_json::from_value(serde_json::json!({
        "settings": {"top-picks": {"params": {"embedding_weight": 1.0}}}
    }))
    .unwrap();
    let home = shipped
        .with_overrides(&overrides, &SourceRegistry::builtin())
        .unwrap();
    assert_eq!(home.top_picks.embedding_weight, 1.0);
    let params = TrainParams {
        ease_max_titles: 0,
        neighbors: 0,
        ..TrainParams::default()
    };
    let set = EvalSet::load(&out.path().join("train"), &out.path().join("test"), false).unwrap();
    let report = eval::run(&set, &params, &home, "TEST").unwrap();
    println!("{}", report.table());
    let (pop, picks) = (line(&report, "MostPop"), line(&report, "Top Picks"));
    assert!(
        picks.ndcg_10 >= 0.2 && picks.ndcg_10 >= 4.0 * pop.ndcg_10,
        "embeddings alone: NDCG@10 {:.3} vs MostPop {:.3}",
        picks.ndcg_10,
        pop.ndcg_10
    );
}

/// The later-sitting protocol end to end on a synthetic log spread over months: profiles come
/// back every few days to titles of their cluster, so a personal ranking must beat all-time
/// popularity at every cutoff, and the report must carry the paired intervals and the page.
#[test]
fn later_sitting_scores_served_rankings_against_baselines_on_rolling_cutoffs() {
    use marquee::domain::{DAY_MS, ProfileId, Title, TitleId};
    use marquee::ingest::movielens::{Dataset, InteractionRecord};
    use marquee::lab::later_sitting::{self, Part, Schedule, Setup, SplitRule};

    let titles: Vec<Title> = (0..CLUSTERS * PER_CLUSTER)
        .map(|i| {
            let mut t = Title::new(
                TitleId::parse(&(i + 1).to_string()).unwrap(),
                format!("T{i}"),
            );
            t.year = Some(1995);
            t.genres = vec![GENRES[(i / PER_CLUSTER) % GENRES.len()].to_owned()];
            t
        })
        .collect();
    let mut rng = Lcg(11);
    let mut interactions = Vec::new();
    let start = 880_000_000_000i64;
    for u in 0..USERS {
        let c = u % CLUSTERS;
        let mut seen = std::collections::HashSet::new();
        // One title every 2–8 days from a random first day: sittings are days apart.
        let mut at = start + rng.next(60) as i64 * DAY_MS;
        while seen.len() < PER_USER {
            let i = if rng.next(100) < 85 {
                c * PER_CLUSTER + rng.next(PER_CLUSTER).min(rng.next(PER_CLUSTER))
            } else {
                rng.next(CLUSTERS * PER_CLUSTER)
            };
            if seen.insert(i) {
                at += (2 + rng.next(7)) as i64 * DAY_MS;
                interactions.push(InteractionRecord {
                    user: ProfileId::parse(&u.to_string()).unwrap(),
                    item: TitleId::parse(&(i + 1).to_string()).unwrap(),
                    rating: None,
                    at,
                });
            }
        }
    }
    let data = Dataset {
        titles,
        interactions,
        ..Dataset::default()
    };
    let home = page_definition(None).unwrap();
    // Without embeddings (the slow part of a debug build's training; covered above), the ALS
    // baseline is empty but still listed.
    let params = TrainParams {
        als: marquee::engine::model::als::AlsParams {
            factors: 0,
            ..Default::default()
        },
        ..TrainParams::default()
    };
    for cold_start in [None, Some(3)] {
        let setup = Setup {
            data: &data,
            home: &home,
            params: &params,
            rule: SplitRule {
                cold_start,
                ..SplitRule::default()
            },
            schedule: Schedule {
                test_cutoffs: 3,
                tune_cutoffs: 2,
                spacing: 14 * DAY_MS,
            },
            variants: vec![],
        };
        let report = later_sitting::run(&setup, Part::Test).unwrap();
        let table = report.table();
        println!("{table}");
        let p = &report.pooled;
        assert_eq!(p.cutoffs.len(), 3);
        assert!(p.cutoffs.iter().all(|(_, units)| *units > 0), "{table}");
        let ndcg = |name: &str| p.metrics(p.index(name).unwrap()).ndcg_10;
        let (pop, picks) = (ndcg("all-time popular"), ndcg("Top Picks"));
        let floor = if cold_start.is_some() { 1.2 } else { 2.0 };
        assert!(
            picks >= floor * pop,
            "{cold_start:?}: Top Picks {picks:.3} vs all-time popular {pop:.3}"
        );
        for name in [
            "recent popularity",
            "EASE",
            "implicit ALS",
            "Page, fixed order",
            "Page, engagement order",
        ] {
            assert!(p.index(name).is_some(), "{name} missing:\n{table}");
        }
        assert!(table.contains("paired differences"), "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.contains("vs all-time popular") && l.ends_with("ahead")),
            "{table}"
        );
    }
}
