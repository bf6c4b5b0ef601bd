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
