//! Production serving under failure (issue 12): two `marquee serve` replicas on the test's own
//! PostgreSQL, Redis and NATS (JetStream), a bounded load of page requests and events, while
//! Redis, then NATS, then PostgreSQL are killed and started again, and finally one replica is
//! killed (-9) during an ingest burst. What must hold: no 5xx ever; pages keep coming and are
//! marked `degraded` while a dependency is down; every acknowledged event is in the database
//! and, once NATS is back, in the stream exactly once; everything recovers by itself. Also:
//! plays recorded on replica A move "Trending Now" on replica B within seconds.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::services::{Nats, Postgres, Redis, Service};
use common::{Server, TestDb, import_and_train, owner_of};
use serde_json::{Value, json};

const HOME: &str =
    "query($p: ID!) { home(profileId: $p) { degraded rows { id items { title { id } } } } }";
const RECORD: &str = "mutation($p: ID!, $e: [EventInput!]!) { recordEvents(profileId: $p, events: $e) { accepted duplicates } }";

/// What a replica answered, by phase.
#[derive(Default, Debug, Clone)]
struct PhaseStats {
    pages: u64,
    degraded_pages: u64,
    /// Pages requested after the phase settled (dependency state known to the replicas).
    settled_pages: u64,
    settled_degraded: u64,
    page_errors: Vec<String>,
    events_acked: u64,
    event_errors: HashMap<String, u64>,
    server_errors: u64,
}

struct Load {
    phase: AtomicUsize,
    settled: AtomicBool,
    stop: AtomicBool,
    stats: Mutex<Vec<PhaseStats>>,
    /// Every acknowledged (profile, client event id).
    acked: Mutex<Vec<(String, String)>>,
    counter: AtomicU64,
}

impl Load {
    fn record(&self, f: impl FnOnce(&mut PhaseStats)) {
        let phase = self.phase.load(Ordering::SeqCst);
        let mut stats = self.stats.lock().unwrap();
        while stats.len() <= phase {
            stats.push(PhaseStats::default());
        }
        f(&mut stats[phase]);
    }
}

/// A client of one replica: signs in as the owner of the profile it names.
#[derive(Clone)]
struct Client {
    url: String,
    tokens: Arc<HashMap<String, String>>,
    http: reqwest::Client,
}

impl Client {
    fn of(server: &Server, profiles: &[String]) -> Client {
        let tokens = profiles
            .iter()
            .map(|p| (p.clone(), server.token(owner_of(p), "viewer")))
            .collect();
        Client {
            url: server.url.clone(),
            tokens: Arc::new(tokens),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }

    /// The HTTP status and body; `None` when the connection failed (a killed replica).
    async fn gql(&self, profile: &str, query: &str, variables: Value) -> Option<(u16, Value)> {
        let resp = self
            .http
            .post(format!("{}/graphql", self.url))
            .bearer_auth(&self.tokens[profile])
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        Some((status, body))
    }
}

fn code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("?")
        .to_owned()
}

/// Titles every adult fixture profile may see (not the German-only one).
fn event_title(n: u64) -> String {
    (13 + n % 48).to_string()
}

/// One replica's load: a page, then an event, in a loop, until told to stop.
async fn drive(load: Arc<Load>, client: Client, profiles: Vec<String>, replica: &'static str) {
    let mut i = 0usize;
    while !load.stop.load(Ordering::SeqCst) {
        let profile = &profiles[i % profiles.len()];
        i += 1;
        let phase = load.phase.load(Ordering::SeqCst);
        let settled = load.settled.load(Ordering::SeqCst);
        if let Some((status, body)) = client.gql(profile, HOME, json!({"p": profile})).await {
            // Settled: the dependencies were in the phase's state for the whole request.
            let settled = settled
                && load.settled.load(Ordering::SeqCst)
                && load.phase.load(Ordering::SeqCst) == phase;
            load.record(|s| {
                if status >= 500 {
                    s.server_errors += 1;
                } else if body["data"]["home"].is_object() {
                    let degraded = body["data"]["home"]["degraded"] == json!(true);
                    s.pages += 1;
                    s.degraded_pages += u64::from(degraded);
                    if settled {
                        s.settled_pages += 1;
                        s.settled_degraded += u64::from(degraded);
                    }
                } else {
                    s.page_errors.push(format!("{body}"));
                }
            });
        }
        let n = load.counter.fetch_add(1, Ordering::SeqCst);
        let id = format!("load-{replica}-{n}");
        let events = json!([{"clientEventId": id, "titleId": event_title(n), "kind": "PLAY"}]);
        if let Some((status, body)) = client
            .gql(profile, RECORD, json!({"p": profile, "e": events}))
            .await
        {
            let accepted = body["data"]["recordEvents"]["accepted"].as_i64() == Some(1);
            if accepted {
                load.acked.lock().unwrap().push((profile.clone(), id));
            }
            load.record(|s| {
                if status >= 500 {
                    s.server_errors += 1;
                } else if accepted {
                    s.events_acked += 1;
                } else {
                    *s.event_errors.entry(code(&body)).or_default() += 1;
                }
            });
        }
        // Bounded: about 25 pages and 25 events per second per replica.
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

/// Waits until `client`'s page for `profile` is no longer degraded; how long it took.
async fn until_recovered(client: &Client, profile: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if let Some((_, body)) = client.gql(profile, HOME, json!({"p": profile})).await
            && body["data"]["home"]["degraded"] == json!(false)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "pages still degraded {limit:?} after the dependency came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until events are accepted again after the database came back.
async fn until_events_accepted(client: &Client, profile: &str, load: &Load, limit: Duration) {
    let started = Instant::now();
    loop {
        let n = load.counter.fetch_add(1, Ordering::SeqCst);
        let id = format!("load-probe-{n}");
        let events = json!([{"clientEventId": id, "titleId": event_title(n), "kind": "PLAY"}]);
        if let Some((_, body)) = client
            .gql(profile, RECORD, json!({"p": profile, "e": events}))
            .await
            && body["data"]["recordEvents"]["accepted"].as_i64() == Some(1)
        {
            load.acked.lock().unwrap().push((profile.to_owned(), id));
            return;
        }
        assert!(
            started.elapsed() < limit,
            "events still refused {limit:?} after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn trending_ids(body: &Value) -> Vec<String> {
    body["data"]["home"]["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["id"] == json!("trending"))
        .map(|r| {
            r["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["title"]["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// German plays of one title recorded through `players` put it first in Trending Now on
/// `viewers`' page for German profile 8; how long after the plays that took.
async fn trending_moves(players: &Client, viewers: &Client, ids: &str) -> Duration {
    let viewer = "8";
    let (_, before) = viewers
        .gql(viewer, HOME, json!({"p": viewer}))
        .await
        .unwrap();
    assert_eq!(before["data"]["home"]["degraded"], json!(false), "{before}");
    let trending = trending_ids(&before);
    let rising = trending
        .last()
        .cloned()
        .expect("a trending row for profile 8");
    let played_at = Instant::now();
    for (k, player) in ["16", "24", "32", "40"].iter().enumerate() {
        let events =
            json!([{"clientEventId": format!("{ids}-{k}"), "titleId": rising, "kind": "PLAY"}]);
        let (_, r) = players
            .gql(player, RECORD, json!({"p": player, "e": events}))
            .await
            .unwrap();
        assert_eq!(r["data"]["recordEvents"]["accepted"], json!(1), "{r}");
    }
    loop {
        let (_, page) = viewers
            .gql(viewer, HOME, json!({"p": viewer}))
            .await
            .unwrap();
        if trending_ids(&page).first() == Some(&rising) {
            return played_at.elapsed();
        }
        assert!(
            played_at.elapsed() < Duration::from_secs(10),
            "trending did not move within 10 s: {:?}",
            trending_ids(&page)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The embedded default (SQLite, in-process cache and bus): the same consumers, so plays move
/// Trending Now within seconds there too, and pages are not degraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mode_has_live_trending_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    import_and_train(dir.path(), db.url());
    let server = Server::start(dir.path(), db.url(), &[]);
    let profiles: Vec<String> = (1..=40).map(|u| u.to_string()).collect();
    let client = Client::of(&server, &profiles);
    let took = trending_moves(&client, &client, "embedded").await;
    eprintln!("embedded: trending moved after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_live_through_redis_nats_and_postgres_outages() {
    let test_started = Instant::now();
    let mut pg = Postgres::start();
    let mut redis = Redis::start();
    let mut nats = Nats::start();
    let db = TestDb::postgres_on(&pg.admin_url()).await;
    let dir = tempfile::tempdir().unwrap();
    import_and_train(dir.path(), db.url());
    let prefix = format!(
        "t{}_{}",
        std::process::id(),
        test_started.elapsed().as_nanos()
    );
    let production = [
        "--redis-url",
        &redis.url(),
        "--nats-url",
        &nats.url(),
        "--key-prefix",
        &prefix,
    ];
    let a = Server::start(dir.path(), db.url(), &production);
    let b = Server::start(dir.path(), db.url(), &production);
    let profiles: Vec<String> = (1..=40).map(|u| u.to_string()).collect();
    let (ca, cb) = (Client::of(&a, &profiles), Client::of(&b, &profiles));

    // Trending moves across replicas within seconds: German plays on A, a German page on B.
    let moved_after = trending_moves(&ca, &cb, "trend").await;
    eprintln!("trending moved on the other replica after {moved_after:?}");
    let mut acked_first: Vec<(String, String)> = ["16", "24", "32", "40"]
        .iter()
        .enumerate()
        .map(|(k, p)| (p.to_string(), format!("trend-{k}")))
        .collect();

    let load = Arc::new(Load {
        phase: AtomicUsize::new(0),
        settled: AtomicBool::new(true),
        stop: AtomicBool::new(false),
        stats: Mutex::new(vec![]),
        acked: Mutex::new(vec![]),
        counter: AtomicU64::new(0),
    });
    let drivers = [
        tokio::spawn(drive(load.clone(), ca.clone(), profiles.clone(), "a")),
        tokio::spawn(drive(
            load.clone(),
            cb.clone(),
            profiles[20..].to_vec(),
            "b",
        )),
    ];
    // Phase 0: all up.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // One phase per dependency: kill it, let the replicas notice, keep loading, restart it,
    // wait for recovery.
    let mut recoveries = vec![];
    let services: [(&str, &mut dyn Service); 3] = [
        ("redis", &mut redis),
        ("nats", &mut nats),
        ("postgres", &mut pg),
    ];
    for (k, (name, service)) in services.into_iter().enumerate() {
        load.settled.store(false, Ordering::SeqCst);
        load.phase.store(1 + 2 * k, Ordering::SeqCst);
        service.stop();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        load.settled.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(3)).await;
        load.settled.store(false, Ordering::SeqCst);
        load.phase.store(2 + 2 * k, Ordering::SeqCst);
        service.start_again();
        if name == "postgres" {
            until_events_accepted(&ca, "1", &load, Duration::from_secs(30)).await;
            until_events_accepted(&cb, "22", &load, Duration::from_secs(30)).await;
        }
        let took = until_recovered(&cb, "2", Duration::from_secs(30)).await;
        until_recovered(&ca, "3", Duration::from_secs(30)).await;
        recoveries.push((name, took));
        load.settled.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    load.stop.store(true, Ordering::SeqCst);
    for d in drivers {
        d.await.unwrap();
    }
    let stats = load.stats.lock().unwrap().clone();
    for (phase, s) in stats.iter().enumerate() {
        eprintln!("phase {phase}: {s:?}");
    }
    eprintln!("recovery after restart: {recoveries:?}");
    let all: PhaseStats = stats.iter().fold(PhaseStats::default(), |mut acc, s| {
        acc.server_errors += s.server_errors;
        acc.pages += s.pages;
        acc.page_errors.extend(s.page_errors.iter().cloned());
        acc
    });
    assert_eq!(all.server_errors, 0, "5xx answers");
    assert!(
        all.page_errors.is_empty(),
        "home failed: {:?}",
        all.page_errors
    );
    // All up: nothing degraded.
    assert!(stats[0].pages > 10, "{:?}", stats[0]);
    assert_eq!(stats[0].degraded_pages, 0, "{:?}", stats[0]);
    // Redis down: every settled page degraded; events accepted.
    assert!(stats[1].settled_pages > 5, "{:?}", stats[1]);
    assert_eq!(
        stats[1].settled_degraded, stats[1].settled_pages,
        "{:?}",
        stats[1]
    );
    assert!(stats[1].events_acked > 5, "{:?}", stats[1]);
    // NATS down: events still accepted (the outbox holds them), pages normal.
    assert!(stats[3].events_acked > 5, "{:?}", stats[3]);
    assert!(stats[3].event_errors.is_empty(), "{:?}", stats[3]);
    // PostgreSQL down: pages keep coming, degraded; events refused as retryable.
    assert!(stats[5].settled_pages > 5, "{:?}", stats[5]);
    assert_eq!(
        stats[5].settled_degraded, stats[5].settled_pages,
        "{:?}",
        stats[5]
    );
    assert!(
        stats[5].event_errors.keys().all(|c| c == "UNAVAILABLE"),
        "{:?}",
        stats[5]
    );
    // After the last recovery: normal pages again.
    let last = stats.last().unwrap();
    assert_eq!(last.settled_degraded, 0, "{last:?}");

    // kill -9 of replica B during an ingest burst: nothing acknowledged is lost.
    let burst_acked = Arc::new(Mutex::new(Vec::new()));
    let mut burst = vec![];
    for w in 0..4 {
        let (cb, acked) = (cb.clone(), burst_acked.clone());
        burst.push(tokio::spawn(async move {
            for n in 0..200u64 {
                let profile = (21 + (w * 5 + n) % 20).to_string();
                let ids: Vec<String> = (0..5).map(|k| format!("burst-{w}-{n}-{k}")).collect();
                let events: Vec<Value> = ids
                    .iter()
                    .enumerate()
                    .map(|(k, id)| json!({"clientEventId": id, "titleId": event_title(n + k as u64), "kind": "PLAY"}))
                    .collect();
                match cb.gql(&profile, RECORD, json!({"p": profile, "e": events})).await {
                    Some((status, body)) => {
                        assert!(status < 500, "HTTP {status}");
                        if body["data"]["recordEvents"]["accepted"].as_i64() == Some(5) {
                            acked
                                .lock()
                                .unwrap()
                                .extend(ids.into_iter().map(|id| (profile.clone(), id)));
                        }
                    }
                    None => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop(b); // SIGKILL
    for t in burst {
        t.await.unwrap();
    }
    let burst_acked = burst_acked.lock().unwrap().clone();
    assert!(
        !burst_acked.is_empty(),
        "the burst acknowledged nothing before the kill"
    );
    eprintln!(
        "burst: {} events acknowledged before kill -9",
        burst_acked.len()
    );

    let mut acked = load.acked.lock().unwrap().clone();
    acked.append(&mut acked_first);
    acked.extend(burst_acked);

    // Every acknowledged event is in the database.
    let mut conn = db.connect().await;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT profile_id, client_event_id FROM events WHERE received_at > 0")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let stored: HashSet<(String, String)> = rows.into_iter().collect();
    let missing: Vec<_> = acked.iter().filter(|e| !stored.contains(*e)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );

    // The outbox drains (replica A publishes what B left behind) and the stream holds every
    // acknowledged event exactly once.
    let drained = Instant::now();
    loop {
        let unsent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if unsent == 0 {
            break;
        }
        assert!(
            drained.elapsed() < Duration::from_secs(20),
            "{unsent} outbox rows still unsent"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(format!("{}_EVENTS", prefix.to_ascii_uppercase()))
        .await
        .unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut in_stream: HashMap<(String, String), u32> = HashMap::new();
    for seq in state.first_sequence..=state.last_sequence {
        let msg = stream.get_raw_message(seq).await.unwrap();
        let e: Value = serde_json::from_slice(&msg.payload).unwrap();
        let key = (
            e["profileId"].as_str().unwrap().to_owned(),
            e["clientEventId"].as_str().unwrap().to_owned(),
        );
        *in_stream.entry(key).or_default() += 1;
    }
    let not_streamed: Vec<_> = acked
        .iter()
        .filter(|e| !in_stream.contains_key(*e))
        .collect();
    assert!(
        not_streamed.is_empty(),
        "acknowledged but not in the stream: {not_streamed:?}"
    );
    let twice: Vec<_> = in_stream.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "in the stream more than once: {twice:?}");
    eprintln!(
        "{} acknowledged events: all stored, all in the stream once; test took {:?}",
        acked.len(),
        test_started.elapsed()
    );
    drop(a);
    db.drop_db().await;
}

const STICKY_HOME: &str = "query($p: ID!) { home(profileId: $p) { degraded assignments { experimentKey variationIndex } } }";

/// `home` for `profile`: its variation in `console-ab` and whether the page was degraded.
async fn sticky_page(s: &Server, profile: &str) -> (Option<i64>, bool) {
    let r = s.gql(STICKY_HOME, json!({"p": profile})).await;
    assert!(r["errors"].is_null(), "{r}");
    let home = &r["data"]["home"];
    let variation = home["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["experimentKey"] == "console-ab")
        .and_then(|a| a["variationIndex"].as_i64());
    (variation, home["degraded"] == json!(true))
}

/// The sticky-document keys Redis holds under `prefix`.
async fn sticky_keys(redis_url: &str, prefix: &str) -> usize {
    use deadpool_redis::redis;
    let Ok(client) = redis::Client::open(redis_url) else {
        return 0;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return 0;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:sticky:*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    keys.iter().filter(|k| !k.is_empty()).count()
}

async fn sql(db: &TestDb, statements: &[&str]) {
    let mut conn = db.connect().await;
    for s in statements {
        sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

/// With the database's copy of the sticky documents set aside, every profile in `profiles`
/// still gets its variation in `before`, undegraded: Redis alone served them.
async fn assert_kept_by_redis_alone(s: &Server, db: &TestDb, profiles: &[String], before: &[i64]) {
    sql(
        db,
        &[
            "CREATE TABLE sticky_aside AS SELECT * FROM sticky_assignments",
            "DELETE FROM sticky_assignments",
        ],
    )
    .await;
    for (p, v) in profiles.iter().zip(before) {
        assert_eq!(sticky_page(s, p).await, (Some(*v), false), "profile {p}");
    }
    sql(
        db,
        &[
            "INSERT INTO sticky_assignments SELECT * FROM sticky_aside",
            "DROP TABLE sticky_aside",
        ],
    )
    .await;
}

/// Production mode keeps sticky-bucket documents in Redis in front of the database: an exposed
/// profile keeps its variation across a weight change with the documents served by Redis
/// (the database's copy removed for the check); after Redis restarts empty it keeps it (read
/// back from the database, and Redis refilled); with Redis down pages are served, degraded,
/// and still keep it.
async fn sticky_documents_live_in_redis(db: TestDb, dir: &std::path::Path) {
    let mut redis = Redis::start();
    import_and_train(dir, db.url());
    let prefix = format!("sticky{}", std::process::id());
    let s = Server::start(
        dir,
        db.url(),
        &["--redis-url", &redis.url(), "--key-prefix", &prefix],
    );
    let pm = s.token("console-pm", "pm");
    let definition = |weights: [f64; 2]| {
        json!({"defaultValue": null, "rules": [{
            "key": "console-ab", "hashAttribute": "id", "weights": weights, "coverage": 1.0,
            "variations": [null, ["trending", "top-picks"]],
            "meta": [{"key": "control"}, {"key": "trending-first"}]
        }]})
    };
    let save =
        "mutation($k: String!, $d: JSON!) { saveFeature(key: $k, definition: $d) { revision } }";
    let r = s
        .gql_with(
            Some(&pm),
            save,
            json!({"k": "home-rows", "d": definition([0.5, 0.5])}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let r = s
        .gql_with(
            Some(&pm),
            "mutation { launchExperiment(key: \"console-ab\") { status } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["launchExperiment"]["status"], "RUNNING", "{r}");

    let profiles: Vec<String> = (1..=20).map(|p| p.to_string()).collect();
    let mut before = vec![];
    for p in &profiles {
        let (v, degraded) = sticky_page(&s, p).await;
        assert!(!degraded);
        before.push(v.expect("in at full coverage"));
    }
    assert!(before.contains(&0), "{before:?}");
    assert_eq!(sticky_keys(&redis.url(), &prefix).await, profiles.len());

    // Everyone to the treatment from now on.
    let r = s
        .gql_with(
            Some(&pm),
            save,
            json!({"k": "home-rows", "d": definition([0.0, 1.0])}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");

    // Served by Redis: with the database's copy set aside, nobody moves.
    assert_kept_by_redis_alone(&s, &db, &profiles, &before).await;

    // Redis restarts empty (it keeps nothing on disk): the database's copy answers, and
    // Redis is refilled from it.
    redis.stop();
    redis.start_again();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for (p, v) in profiles.iter().zip(&before) {
            assert_eq!(sticky_page(&s, p).await.0, Some(*v), "profile {p} moved");
        }
        if sticky_keys(&redis.url(), &prefix).await == profiles.len() {
            break;
        }
        assert!(Instant::now() < deadline, "redis was not refilled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Refilled: the documents are Redis's again.
    assert_kept_by_redis_alone(&s, &db, &profiles, &before).await;

    // Redis down: pages are served from the database's copy, degraded, nobody moves.
    redis.stop();
    for (p, v) in profiles.iter().zip(&before) {
        assert_eq!(sticky_page(&s, p).await, (Some(*v), true), "profile {p}");
    }
    drop(s);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_documents_live_in_redis_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    sticky_documents_live_in_redis(TestDb::sqlite(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_documents_live_in_redis_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    sticky_documents_live_in_redis(TestDb::postgres().await, dir.path()).await;
}

const PAGE: &str = "query($p: ID!) { home(profileId: $p) { degraded rows { id items { title { id maturityRating genres } } } } }";

/// `marquee_segment_lookups_total{list, outcome}` on `server`'s `/metrics` (0 when absent).
async fn segment_lookups(server: &Server, list: &str, outcome: &str) -> f64 {
    let text = server.get("/metrics").await.text().await.unwrap();
    let (list, outcome) = (format!("list=\"{list}\""), format!("outcome=\"{outcome}\""));
    text.lines()
        .filter(|l| l.starts_with("marquee_segment_lookups_total{"))
        .find(|l| l.contains(&list) && l.contains(&outcome))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

fn row<'a>(home: &'a Value, id: &str) -> Option<&'a Vec<Value>> {
    home["rows"]
        .as_array()?
        .iter()
        .find(|r| r["id"] == json!(id))?["items"]
        .as_array()
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["title"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn page(server: &Server, profile: &str) -> Value {
    let r = server.gql(PAGE, json!({"p": profile})).await;
    assert!(r["errors"].is_null(), "{r}");
    r["data"]["home"].clone()
}

/// Segment lists (New Releases and the genre rows, per audience) through Redis: one replica
/// computes a list, the other reads it (counted on `/metrics` per list kind); filters still run
/// per request on top (a thumbs-down on a title of a cached genre row takes it off the next
/// page); a kids profile gets its own audience's list, never the grown-ups'; Redis killed →
/// pages still served, marked degraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_lists_are_shared_by_replicas_and_filtered_per_request() {
    let mut redis = Redis::start();
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    import_and_train(dir.path(), db.url());
    let prefix = format!("seg{}", std::process::id());
    let production = ["--redis-url", &redis.url(), "--key-prefix", &prefix];
    let a = Server::start(dir.path(), db.url(), &production);
    let b = Server::start(dir.path(), db.url(), &production);
    let create = "mutation($i: CreateProfileInput!) { createProfile(input: $i) { id } }";
    // Two grown-ups of one audience (US, no limit) starting from Comedy, and a kid.
    for (id, kids) in [("segone", false), ("segtwo", false), ("segkid", true)] {
        let input = json!({"id": id, "name": id, "isKids": kids, "country": "US", "onboardingGenres": ["Comedy"]});
        let r = a.gql(create, json!({"i": input})).await;
        assert_eq!(r["data"]["createProfile"]["id"], json!(id), "{r}");
    }

    // A computes the lists…
    let first = page(&a, "segone").await;
    assert_eq!(first["degraded"], json!(false), "{first}");
    let comedy = ids(row(&first, "genre:Comedy").expect("a Comedy row"));
    for list in ["genre", "new-releases"] {
        assert!(
            segment_lookups(&a, list, "miss").await >= 1.0,
            "{list} on A"
        );
    }
    // … B reads them (A keeps them off the request path: give it a moment).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = page(&b, "segtwo").await;
    assert_eq!(second["degraded"], json!(false), "{second}");
    for list in ["genre", "new-releases"] {
        assert!(
            segment_lookups(&b, list, "shared").await >= 1.0,
            "B read no {list} list from Redis"
        );
        assert_eq!(
            segment_lookups(&b, list, "miss").await,
            0.0,
            "B computed {list}"
        );
    }
    // Same audience, no history: the same list, so the same row.
    assert_eq!(ids(row(&second, "genre:Comedy").unwrap()), comedy);

    // A thumbs-down on B for the first title of the cached Comedy row: gone from the next page
    // on A, which still takes the row from its near copy of the list.
    let disliked = comedy[0].clone();
    let events = json!([{"clientEventId": "seg-td", "titleId": disliked, "kind": "THUMBS_DOWN"}]);
    let r = b.gql(RECORD, json!({"p": "segtwo", "e": events})).await;
    assert_eq!(r["data"]["recordEvents"]["accepted"], json!(1), "{r}");
    let near_before = segment_lookups(&a, "genre", "near").await;
    let after = page(&a, "segtwo").await;
    let shown: Vec<String> = after["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| ids(r["items"].as_array().unwrap()))
        .collect();
    assert!(
        !shown.contains(&disliked),
        "{disliked} shown after a thumbs-down: {after}"
    );
    assert!(
        segment_lookups(&a, "genre", "near").await > near_before,
        "A did not use its near copy of the Comedy list"
    );
    assert!(row(&after, "genre:Comedy").is_some(), "{after}");

    // The kid: its own audience's list (a miss on B, not the grown-ups' list), nothing above PG
    // anywhere on its page.
    let misses = segment_lookups(&b, "genre", "miss").await;
    let kid = page(&b, "segkid").await;
    assert!(
        segment_lookups(&b, "genre", "miss").await > misses,
        "the kid got a grown-up list"
    );
    for r in kid["rows"].as_array().unwrap() {
        for item in r["items"].as_array().unwrap() {
            let t = &item["title"];
            let for_children = t["genres"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == "Children's" || g == "Animation");
            match t["maturityRating"].as_str() {
                Some(rating) => assert!(["G", "PG"].contains(&rating), "kid shown {t}"),
                None => assert!(for_children, "kid shown unrated {t}"),
            }
        }
    }

    // Redis killed: pages still served (lists computed in process, near copies used), degraded.
    redis.stop();
    let started = Instant::now();
    let mut degraded = 0;
    while started.elapsed() < Duration::from_secs(2) {
        for (server, profile) in [(&a, "segone"), (&b, "segtwo"), (&b, "segkid")] {
            let home = page(server, profile).await;
            assert!(!home["rows"].as_array().unwrap().is_empty(), "{home}");
            degraded += usize::from(home["degraded"] == json!(true));
            if profile == "segtwo" {
                assert!(!ids(row(&home, "genre:Comedy").unwrap()).contains(&disliked));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(degraded > 0, "no page marked degraded while Redis was down");
    redis.start_again();
    let ca = Client::of(&a, &["segone".to_owned()]);
    until_recovered(&ca, "segone", Duration::from_secs(30)).await;
    drop((a, b));
    db.drop_db().await;
}
