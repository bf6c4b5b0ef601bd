//! Experiment reports read outcome counters kept up to date as pages and events are written.
//! Against a real server on SQLite and PostgreSQL: the counters equal a full scan of the raw
//! tables (the old report's definition), for pages and plays in either order, plays that do
//! not count, and phases (a new phase re-randomises: each keeps its own rows, and the report
//! reads the current one); a database from before the counters is backfilled by the
//! migrations; and reports running in parallel do not starve page serving.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Server, TestDb, import_and_train};
use marquee::store::Store;
use serde_json::{Value, json};

const HOME: &str =
    r#"query($p: ID!) { home(profileId: $p) { requestId rows { items { title { id } } } } }"#;
const RECORD: &str = r#"mutation($p: ID!, $e: [EventInput!]!) {
  recordEvents(profileId: $p, events: $e) { accepted duplicates } }"#;
const REPORT: &str = r#"query($k: String!) { experimentReport(key: $k) { phase excludedProfiles
  variations { key exposedProfiles impressions plays completes } } }"#;
const EXPERIMENTS: [&str; 2] = ["trending-above-top-picks", "stronger-diversity"];

struct Env {
    dir: tempfile::TempDir,
    _experiments: tempfile::TempDir,
    db: TestDb,
    server: Option<Server>,
}

impl Env {
    fn server(&self) -> &Server {
        self.server.as_ref().expect("the server is running")
    }
}

fn start(db: impl FnOnce(&Path) -> TestDb) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let experiments = tempfile::tempdir().unwrap();
    for f in ["trending-first.json", "stronger-diversity.json"] {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("experiments")
            .join(f);
        std::fs::copy(src, experiments.path().join(f)).unwrap();
    }
    let db = db(dir.path());
    let url = db.url().to_owned();
    import_and_train(dir.path(), &url);
    let exp = experiments.path().to_str().unwrap().to_owned();
    let server = Server::start(dir.path(), &url, &["--experiments", &exp]);
    Env {
        dir,
        _experiments: experiments,
        db,
        server: Some(server),
    }
}

async fn home(s: &Server, profile: &str) -> (String, Vec<String>) {
    let r = s.gql(HOME, json!({"p": profile})).await;
    assert!(r["errors"].is_null(), "home({profile}): {r}");
    let home = &r["data"]["home"];
    let titles = home["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row["items"].as_array().unwrap())
        .map(|i| i["title"]["id"].as_str().unwrap().to_owned())
        .collect();
    (home["requestId"].as_str().unwrap().to_owned(), titles)
}

async fn record(s: &Server, profile: &str, events: Value) {
    let r = s.gql(RECORD, json!({"p": profile, "e": events})).await;
    assert!(r["errors"].is_null(), "recordEvents({profile}): {r}");
}

fn event(id: String, title: &str, kind: &str, request: &str) -> Value {
    json!({"clientEventId": id, "titleId": title, "kind": kind, "requestId": request})
}

async fn drain_impressions(s: &Server) {
    for _ in 0..200 {
        let m = s.get("/metrics").await.text().await.unwrap();
        if m.contains("marquee_impressions_backlog 0\n") {
            assert!(m.contains("marquee_impressions_dropped_total 0\n"), "{m}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the impression log did not drain");
}

/// Pages for profiles 1–40 and events about them, in every combination the counters must get
/// right. Returns the (profile, request id, titles) of the pages served.
async fn traffic(s: &Server, round: &str) -> Vec<(String, String, Vec<String>)> {
    let mut pages = vec![];
    for p in 1..=40 {
        let profile = p.to_string();
        for visit in 0..2 {
            let (request, titles) = home(s, &profile).await;
            let first = titles[0].clone();
            let not_shown = (1..=60)
                .map(|t| t.to_string())
                .find(|t| !titles.contains(t))
                .unwrap();
            let id = |n: &str| format!("{round}-{p}-{visit}-{n}");
            // Sent at once: the impression log has usually not written the page yet, so the
            // page's write must count the play.
            let mut events = vec![event(id("play"), &first, "PLAY", &request)];
            if p % 3 == 0 {
                events.push(event(id("complete"), &first, "COMPLETE", &request));
            }
            // Not attributed: the title was not on the page.
            events.push(event(id("elsewhere"), &not_shown, "PLAY", &request));
            record(s, &profile, json!(events)).await;
            // Resent: a duplicate, stored and counted once.
            record(
                s,
                &profile,
                json!([event(id("play"), &first, "PLAY", &request)]),
            )
            .await;
            pages.push((profile.clone(), request, titles));
        }
    }
    pages
}

async fn counters_agree_with_a_full_scan(store: &Store, what: &str) {
    for key in EXPERIMENTS {
        for phase in 0..=1 {
            let counted = store.experiment_outcomes(key, phase).await.unwrap();
            let scanned = store
                .experiment_outcomes_full_scan(key, phase)
                .await
                .unwrap();
            assert_eq!(
                counted, scanned,
                "{what}: the counters of {key} (phase {phase}) differ from a full scan"
            );
        }
    }
}

async fn check(mut env: Env) {
    let s = env.server();
    let pages = traffic(s, "a").await;
    drain_impressions(s).await;
    // Plays arriving after their page is stored: the event's write counts them. One names
    // another profile's page and is not attributed.
    for (i, (profile, request, titles)) in pages.iter().enumerate().step_by(3) {
        record(
            s,
            profile,
            json!([event(format!("late-{i}"), &titles[1], "PLAY", request)]),
        )
        .await;
        let (_, other_request, _) = &pages[(i + 2) % pages.len()];
        record(
            s,
            profile,
            json!([event(
                format!("foreign-{i}"),
                &titles[0],
                "PLAY",
                other_request
            )]),
        )
        .await;
    }
    // A new phase (a new seed) reassigns about half the profiles: each phase has its own
    // rows, and nobody counts as having seen two variations.
    let r = s
        .gql(
            r#"mutation { startExperimentPhase(key: "trending-above-top-picks") { status } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        r["data"]["startExperimentPhase"]["status"], "RUNNING",
        "{r}"
    );
    traffic(s, "b").await;
    drain_impressions(s).await;

    let store = Store::open(env.db.url()).await.unwrap();
    counters_agree_with_a_full_scan(&store, "live").await;
    let first = store
        .experiment_outcomes("trending-above-top-picks", 0)
        .await
        .unwrap();
    let trending = store
        .experiment_outcomes("trending-above-top-picks", 1)
        .await
        .unwrap();
    assert_eq!(first.profiles.len(), 40, "{first:?}");
    assert_eq!(trending.profiles.len(), 40, "{trending:?}");
    assert_eq!((first.contaminated, trending.contaminated), (0, 0));
    let moved = first
        .profiles
        .iter()
        .zip(&trending.profiles)
        .filter(|(a, b)| a.variation != b.variation)
        .count();
    assert!(moved > 5 && moved < 35, "{moved} of 40 reassigned");
    let plays: u64 = trending.profiles.iter().map(|o| o.plays).sum();
    let completes: u64 = trending.profiles.iter().map(|o| o.completes).sum();
    assert!(plays > 0 && completes > 0, "{trending:?}");

    // The API reports the counters of the current phase.
    let r = s
        .gql(REPORT, json!({"k": "trending-above-top-picks"}))
        .await;
    let report = &r["data"]["experimentReport"];
    assert_eq!(report["phase"], 1, "{r}");
    assert_eq!(
        report["excludedProfiles"].as_u64(),
        Some(trending.contaminated as u64),
        "{r}"
    );
    let api_plays: u64 = report["variations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["plays"].as_u64().unwrap())
        .sum();
    assert_eq!(api_plays, plays, "{r}");

    reports_do_not_starve_pages(s).await;
    drain_impressions(s).await;
    let first = store
        .experiment_outcomes("trending-above-top-picks", 0)
        .await
        .unwrap();

    // A database from before the counters (and before phases: only the first phase's
    // exposures, no phase column): the migrations backfill them, as phase 0.
    env.server.take();
    store.close().await;
    {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(env.db.url()).await.unwrap();
        let mut statements = vec![
            "DROP TABLE experiment_outcomes",
            "DROP TABLE store_heartbeat",
            "DELETE FROM _sqlx_migrations WHERE version IN (4, 9)",
            "CREATE TABLE exposures_old AS SELECT experiment_key, profile_id, variation_index, \
             variation_key, feature_key, first_seen_at FROM exposures WHERE phase = 0",
            "DROP TABLE exposures",
            "ALTER TABLE exposures_old RENAME TO exposures",
        ];
        if env.db.url().starts_with("postgres") {
            statements.push(
                "ALTER TABLE exposures ADD PRIMARY KEY (experiment_key, profile_id, variation_index)",
            );
        }
        for sql in statements {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
    let store = Store::open(env.db.url()).await.unwrap();
    counters_agree_with_a_full_scan(&store, "backfilled").await;
    let backfilled = store
        .experiment_outcomes("trending-above-top-picks", 0)
        .await
        .unwrap();
    assert_eq!(backfilled, first);
    store.close().await;
    env.db.drop_db().await;
    let _ = &env.dir;
}

/// Eight reports at once, again and again, while pages are requested: every page is served.
async fn reports_do_not_starve_pages(s: &Server) {
    let url = s.url.clone();
    let pm = s.token("pm", "pm");
    let reports = async move {
        let client = reqwest::Client::new();
        for _ in 0..5 {
            let mut calls = tokio::task::JoinSet::new();
            for i in 0..8 {
                let request = client
                    .post(format!("{url}/graphql"))
                    .bearer_auth(&pm)
                    .json(&json!({"query": REPORT, "variables": {"k": EXPERIMENTS[i % EXPERIMENTS.len()]}}));
                calls.spawn(async move { request.send().await?.json::<Value>().await });
            }
            while let Some(r) = calls.join_next().await {
                let r = r.unwrap().unwrap();
                assert!(r["errors"].is_null(), "{r}");
            }
        }
    };
    let pages = async {
        for p in 1..=40 {
            home(s, &p.to_string()).await;
        }
    };
    tokio::join!(reports, pages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_counters_on_sqlite() {
    check(start(TestDb::sqlite)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_counters_on_postgres() {
    let db = TestDb::postgres().await;
    check(start(|_| db)).await;
}
