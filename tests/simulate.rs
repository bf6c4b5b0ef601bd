//! `marquee simulate` against a real server: the experiment pipeline finds a real effect with
//! the right sign, and does not find effects in A/A experiments much more often than 5%.
//! Seeds are fixed, so the outcome is deterministic for a given build.

mod common;

use std::fmt::Write;
use std::path::Path;

use common::{NOW, Rng, Server, TestDb, marquee_ok};

const GENRES: [&str; 18] = [
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// A catalogue large enough for taste to matter: 600 titles over 18 genres, and 300 members
/// whose histories follow two favourite genres each.
fn write_world(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = Rng(99);
    let mut item =
        String::from("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n");
    let mut by_genre: Vec<Vec<u32>> = vec![Vec::new(); GENRES.len()];
    for id in 1..=600u32 {
        let g1 = rng.below(GENRES.len() as u64) as usize;
        let g2 = rng.below(GENRES.len() as u64) as usize;
        by_genre[g1].push(id);
        let genres = if g1 == g2 {
            GENRES[g1].to_owned()
        } else {
            format!("{} {}", GENRES[g1], GENRES[g2])
        };
        let _ = writeln!(item, "{id}\tTitle {id}\t{}\t{genres}", 1990 + rng.below(9));
    }
    std::fs::write(dir.join("world.item"), item).unwrap();
    let mut inter = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    for user in 1..=300u32 {
        let favourites = [rng.below(18) as usize, rng.below(18) as usize];
        let mut seen = std::collections::HashSet::new();
        for k in 0..25u64 {
            let pool = &by_genre[favourites[(k % 2) as usize]];
            let title = if rng.below(10) < 8 && !pool.is_empty() {
                pool[rng.below(pool.len() as u64) as usize]
            } else {
                1 + rng.below(600) as u32
            };
            if seen.insert(title) {
                let _ = writeln!(
                    inter,
                    "{user}\t{title}\t{}\t{}",
                    3 + rng.below(3),
                    890_000_000 + rng.below(3_000_000)
                );
            }
        }
    }
    std::fs::write(dir.join("world.inter"), inter).unwrap();
}

#[tokio::test]
async fn simulation_detects_a_degraded_page_and_not_a_placebo() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    write_world(&world);
    let db = TestDb::sqlite(dir.path());
    let url = db.url().to_owned();
    marquee_ok(
        dir.path(),
        &url,
        &["import", "movielens", world.to_str().unwrap()],
    );
    marquee_ok(dir.path(), &url, &["train", "--clock", NOW]);
    let exp = dir.path().join("exp");
    std::fs::create_dir_all(&exp).unwrap();
    let server = Server::start(dir.path(), &url, &["--experiments", exp.to_str().unwrap()]);
    let out = std::process::Command::new(common::BIN)
        .args([
            "simulate",
            "--url",
            &server.url,
            "--experiments-dir",
            exp.to_str().unwrap(),
        ])
        .args([
            "--profiles",
            "300",
            "--sessions",
            "3",
            "--aa",
            "20",
            "--seed",
            "7",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    println!("{stdout}");
    assert!(stdout.contains("detected, right sign"), "{stdout}");
    let not_significant: usize = stdout
        .split("A/A: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        not_significant >= 16,
        "too many A/A experiments significant: {stdout}"
    );
}
