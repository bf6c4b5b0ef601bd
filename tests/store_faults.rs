//! Storage faults under load, against the real binary: the SQLite database and WAL files made
//! unwritable for ten seconds (`chattr +i`), and the test's own PostgreSQL server stopped (`-m immediate`)
//! and started again. Throughout: no HTTP 5xx. While the fault lasts: writes answer the
//! retryable `UNAVAILABLE` code and /readyz says 503. Afterwards: writes succeed again by
//! themselves within seconds, /readyz is 200, every acknowledged event is in the database, and
//! the impressions served during the fault are written (or, if the queue overflowed, counted
//! as dropped).

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::services::{Postgres, Service};
use common::{Server, TestDb, import_and_train};
use serde_json::{Value, json};

const HOME: &str =
    r#"query($p: ID!) { home(profileId: $p) { requestId rows { items { title { id } } } } }"#;
const RECORD: &str = r#"mutation($p: ID!, $e: [EventInput!]!) {
  recordEvents(profileId: $p, events: $e) { accepted duplicates } }"#;

/// A write is expected to work again this long after the fault is cleared. A correctness
/// bound (it does recover by itself), not a performance target: the time is printed.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);
/// Requests still in flight when the fault starts may finish either way; after this, every
/// write must fail with `UNAVAILABLE`.
const SETTLE: Duration = Duration::from_secs(2);
const WORKERS: usize = 4;

/// What one request got back.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Ok,
    /// A GraphQL error and its `extensions.code` (empty when it had none).
    Coded(String),
    /// An HTTP status ≥ 500, or no answer at all.
    ServerError(String),
}

#[derive(Debug, Clone)]
struct Sample {
    /// When the request was sent / answered, from the start of the run.
    sent: Duration,
    answered: Duration,
    write: bool,
    outcome: Outcome,
}

struct Run {
    start: Instant,
    samples: Mutex<Vec<Sample>>,
    /// (sent, answered, HTTP status or 0 for no answer)
    readiness: Mutex<Vec<(Duration, Duration, u16)>>,
    /// (profile, clientEventId) of every event the server acknowledged.
    accepted: Mutex<HashSet<(String, String)>>,
    stop: AtomicBool,
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    vars: Value,
) -> (Outcome, Value) {
    let resp = client
        .post(format!("{url}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => return (Outcome::ServerError(format!("no answer: {e}")), Value::Null),
    };
    let status = resp.status();
    if status.is_server_error() {
        return (Outcome::ServerError(format!("HTTP {status}")), Value::Null);
    }
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if body["errors"].is_null() && !body["data"].is_null() {
        (Outcome::Ok, body)
    } else {
        let code = body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        (Outcome::Coded(code), body)
    }
}

/// Pages and plays for profiles 1–40 until told to stop: each worker reads a home page, then
/// plays its first title with the page's request id (the attributed play the experiment
/// report counts). When no page came back (PostgreSQL down), it plays Toy Story anyway, so
/// writes are tried throughout.
/// Tokens of the accounts that own profiles 1–40 (from the server's development issuer).
type Tokens = Arc<std::collections::HashMap<String, String>>;

async fn worker(run: Arc<Run>, url: String, tokens: Tokens, worker: usize) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut i = 0usize;
    while !run.stop.load(Ordering::Relaxed) {
        let profile = ((worker * 7 + i) % 40 + 1).to_string();
        let sent = run.start.elapsed();
        let token = &tokens[&profile];
        let (outcome, body) = post(&client, &url, token, HOME, json!({"p": profile})).await;
        run.samples.lock().unwrap().push(Sample {
            sent,
            answered: run.start.elapsed(),
            write: false,
            outcome: outcome.clone(),
        });
        let home = &body["data"]["home"];
        let title = home["rows"][0]["items"][0]["title"]["id"]
            .as_str()
            .unwrap_or("1")
            .to_owned();
        let event_id = format!("load-{worker}-{i}");
        let mut event = json!({"clientEventId": event_id, "titleId": title, "kind": "PLAY"});
        if let Some(r) = home["requestId"].as_str() {
            event["requestId"] = json!(r);
        }
        let sent = run.start.elapsed();
        let (outcome, body) = post(
            &client,
            &url,
            token,
            RECORD,
            json!({"p": profile, "e": [event]}),
        )
        .await;
        if outcome == Outcome::Ok {
            assert_eq!(
                body["data"]["recordEvents"]["accepted"], 1,
                "a new event id was not accepted: {body}"
            );
            run.accepted.lock().unwrap().insert((profile, event_id));
        }
        run.samples.lock().unwrap().push(Sample {
            sent,
            answered: run.start.elapsed(),
            write: true,
            outcome,
        });
        i += 1;
        // Bounded load: the point is a steady stream of writes, not saturation.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn readiness_poller(run: Arc<Run>, url: String) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    while !run.stop.load(Ordering::Relaxed) {
        let sent = run.start.elapsed();
        let status = match client.get(format!("{url}/readyz")).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        };
        run.readiness
            .lock()
            .unwrap()
            .push((sent, run.start.elapsed(), status));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Something that breaks storage and later repairs it.
trait Fault: Send + 'static {
    fn name(&self) -> &'static str;
    fn begin(&mut self);
    fn end(&mut self);
    /// How long the fault lasts.
    fn duration(&self) -> Duration;
}

/// The SQLite database and WAL files made immutable: every write to them fails with EPERM,
/// as with a failing disk. Not the `-shm` file: it is memory-mapped (SQLite's WAL index), and
/// the kernel kills a process that writes to a mapped page of an immutable file with SIGBUS —
/// an outage no program survives, and not the storage fault this test is about.
struct Immutable {
    files: Vec<PathBuf>,
    applied: Vec<PathBuf>,
}

impl Immutable {
    fn new(db: &Path) -> Immutable {
        let name = db.file_name().unwrap().to_str().unwrap();
        let files = ["", "-wal"]
            .iter()
            .map(|suffix| db.with_file_name(format!("{name}{suffix}")))
            .collect();
        Immutable {
            files,
            applied: vec![],
        }
    }
}

fn chattr(flag: &str, file: &Path) {
    let out = std::process::Command::new("chattr")
        .arg(flag)
        .arg(file)
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "this test makes the SQLite files immutable with `chattr {flag}` and that failed on {}: {} \
             (it needs root and a filesystem with the immutable attribute, e.g. ext4)",
            file.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "this test needs `chattr` (Debian's e2fsprogs; .ci/run installs it) to make the SQLite files immutable: {e}"
        ),
    }
}

impl Fault for Immutable {
    fn name(&self) -> &'static str {
        "SQLite files immutable"
    }
    fn begin(&mut self) {
        for f in &self.files {
            if f.exists() {
                chattr("+i", f);
                self.applied.push(f.clone());
            }
        }
        assert_eq!(
            self.applied.len(),
            2,
            "expected the database and its WAL: {:?}",
            self.applied
        );
    }
    fn end(&mut self) {
        for f in self.applied.drain(..) {
            chattr("-i", &f);
        }
    }
    fn duration(&self) -> Duration {
        Duration::from_secs(10)
    }
}

impl Drop for Immutable {
    /// Even when an assertion failed mid-fault: an immutable file cannot be deleted, and the
    /// temporary directory would stay behind.
    fn drop(&mut self) {
        for f in self.applied.drain(..) {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&f)
                .output();
        }
    }
}

/// The test's own PostgreSQL stopped abruptly, then started again.
struct PostgresDown(Postgres);

impl Fault for PostgresDown {
    fn name(&self) -> &'static str {
        "PostgreSQL stopped"
    }
    fn begin(&mut self) {
        self.0.stop();
    }
    fn end(&mut self) {
        self.0.start_again();
    }
    fn duration(&self) -> Duration {
        Duration::from_secs(10)
    }
}

struct Env {
    dir: tempfile::TempDir,
    db: TestDb,
    server: Server,
}

fn start_env(db: impl FnOnce(&Path) -> TestDb) -> Env {
    // Under the target directory rather than /tmp, which may be a tmpfs without the
    // immutable attribute.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let db = db(dir.path());
    let url = db.url().to_owned();
    import_and_train(dir.path(), &url);
    let server = Server::start(dir.path(), &url, &[]);
    Env { dir, db, server }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

async fn db_query_strings(url: &str, sql: &'static str) -> Vec<(String, String)> {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query(sql)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect()
}

async fn db_query_i64(url: &str, sql: &'static str) -> i64 {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query(sql)
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get::<i64, _>(0)
}

async fn fault_under_load(env: &Env, mut fault: impl Fault) {
    let url = env.server.url.clone();
    let tokens: Tokens = Arc::new(
        (1..=40)
            .map(|p| (p.to_string(), env.server.token(&p.to_string(), "viewer")))
            .collect(),
    );
    let run = Arc::new(Run {
        start: Instant::now(),
        samples: Mutex::new(vec![]),
        readiness: Mutex::new(vec![]),
        accepted: Mutex::new(HashSet::new()),
        stop: AtomicBool::new(false),
    });
    let mut tasks = vec![];
    for w in 0..WORKERS {
        tasks.push(tokio::spawn(worker(
            run.clone(),
            url.clone(),
            tokens.clone(),
            w,
        )));
    }
    tasks.push(tokio::spawn(readiness_poller(run.clone(), url.clone())));

    tokio::time::sleep(Duration::from_secs(3)).await;
    let duration = fault.duration();
    let name = fault.name();
    let (fault, fault_start) = tokio::task::spawn_blocking({
        let run = run.clone();
        move || {
            let at = run.start.elapsed();
            fault.begin();
            (fault, at)
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(duration).await;
    // The repair takes a moment (PostgreSQL accepts connections before `pg_ctl start`
    // returns): the fault lasts until it starts, and is cleared once it is done.
    let (mut fault, fault_end, cleared) = tokio::task::spawn_blocking({
        let run = run.clone();
        let mut fault = fault;
        move || {
            let repair_started = run.start.elapsed();
            fault.end();
            (fault, repair_started, run.start.elapsed())
        }
    })
    .await
    .unwrap();

    // Keep the load on until writes work again (or the bound has clearly passed), and a
    // few seconds more to see that they keep working.
    let first_success = || {
        run.samples
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.write && s.outcome == Outcome::Ok && s.answered >= fault_end)
            .map(|s| s.answered)
            .min()
    };
    let wait_started = Instant::now();
    while first_success().is_none() && wait_started.elapsed() < RECOVERY_BOUND * 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    run.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    fault.end();

    let samples = run.samples.lock().unwrap().clone();
    let readiness = run.readiness.lock().unwrap().clone();
    let during = |t: Duration| t >= fault_start + SETTLE && t < fault_end;

    // Never a 5xx, never no answer.
    let server_errors: Vec<&Sample> = samples
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::ServerError(_)))
        .collect();
    assert!(
        server_errors.is_empty(),
        "{name}: {} requests failed at the HTTP level, e.g. {:?}",
        server_errors.len(),
        server_errors.first()
    );
    // Every error, reads included, is retryable and says so; never INTERNAL.
    let wrong_codes: Vec<&Sample> = samples
        .iter()
        .filter(|s| matches!(&s.outcome, Outcome::Coded(c) if c != "UNAVAILABLE"))
        .collect();
    assert!(
        wrong_codes.is_empty(),
        "{name}: {} errors were not UNAVAILABLE, e.g. {:?}",
        wrong_codes.len(),
        wrong_codes.first()
    );
    let before = samples
        .iter()
        .filter(|s| s.write && s.answered < fault_start && s.outcome == Outcome::Ok)
        .count();
    assert!(before > 0, "{name}: no write succeeded before the fault");
    // Answered before the fault ended: a write still waiting for a connection when the
    // database comes back may well succeed.
    let writes_during: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.write && during(s.sent) && s.answered < fault_end)
        .collect();
    assert!(
        writes_during.len() >= 3,
        "{name}: too few writes tried during the fault ({})",
        writes_during.len()
    );
    assert!(
        writes_during
            .iter()
            .all(|s| s.outcome == Outcome::Coded("UNAVAILABLE".into())),
        "{name}: during the fault every write must fail with UNAVAILABLE: {:?}",
        writes_during
            .iter()
            .filter(|s| s.outcome != Outcome::Coded("UNAVAILABLE".into()))
            .take(3)
            .collect::<Vec<_>>()
    );
    // Readiness is cached for about a second.
    let ready_during: Vec<u16> = readiness
        .iter()
        .filter(|(sent, answered, _)| {
            during(*sent)
                && *sent >= fault_start + SETTLE + Duration::from_millis(500)
                && *answered < fault_end
        })
        .map(|(_, _, s)| *s)
        .collect();
    assert!(
        !ready_during.is_empty() && ready_during.iter().all(|s| *s == 503),
        "{name}: /readyz during the fault: {ready_during:?}"
    );

    let recovered_at = first_success().unwrap_or_else(|| {
        panic!(
            "{name}: no write succeeded within {:?} after the fault was cleared; errors after it: {:?}",
            RECOVERY_BOUND * 2,
            samples
                .iter()
                .filter(|s| s.write && s.sent >= cleared)
                .take(3)
                .collect::<Vec<_>>()
        )
    });
    // Writes may already succeed while the repair finishes: then this is 0.
    let recovery = recovered_at.saturating_sub(cleared);
    println!(
        "{name}: fault cleared → first successful write: {:.2} s",
        recovery.as_secs_f64()
    );
    assert!(
        recovery <= RECOVERY_BOUND,
        "{name}: writes took {recovery:?} to recover (bound {RECOVERY_BOUND:?})"
    );
    // Recovered for good: every write sent a second after the first success worked.
    let late_failures: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent >= recovered_at + Duration::from_secs(1) && s.outcome != Outcome::Ok)
        .collect();
    assert!(
        late_failures.is_empty(),
        "{name}: requests still failing after recovery: {} e.g. {:?}",
        late_failures.len(),
        late_failures.first()
    );
    let ready_after: Vec<u16> = readiness
        .iter()
        .filter(|(sent, _, _)| *sent >= recovered_at + Duration::from_secs(2))
        .map(|(_, _, s)| *s)
        .collect();
    assert!(
        !ready_after.is_empty() && ready_after.iter().all(|s| *s == 200),
        "{name}: /readyz after recovery: {ready_after:?}"
    );

    // Nothing acknowledged is lost.
    let stored: HashSet<(String, String)> = db_query_strings(
        env.db.url(),
        "SELECT profile_id, client_event_id FROM events WHERE client_event_id LIKE 'load-%'",
    )
    .await
    .into_iter()
    .collect();
    let accepted = run.accepted.lock().unwrap().clone();
    let missing: Vec<_> = accepted.difference(&stored).take(5).collect();
    assert!(
        missing.is_empty(),
        "{name}: {} acknowledged events are not in the database, e.g. {missing:?}",
        accepted.difference(&stored).count()
    );

    // The impressions of pages served during the fault are written after it.
    let mut metrics = String::new();
    let drained = Instant::now();
    while drained.elapsed() < Duration::from_secs(60) {
        metrics = env.server.get("/metrics").await.text().await.unwrap();
        if metric(&metrics, "marquee_impressions_backlog") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let queued = metric(&metrics, "marquee_impressions_queued_total");
    let written = metric(&metrics, "marquee_impressions_written_total");
    let dropped = metric(&metrics, "marquee_impressions_dropped_total");
    println!("{name}: impressions queued {queued}, written {written}, dropped {dropped}");
    assert_eq!(
        metric(&metrics, "marquee_impressions_backlog"),
        0,
        "{name}: the impression backlog did not drain:\n{metrics}"
    );
    let pages_during = samples
        .iter()
        .filter(|s| !s.write && during(s.sent) && s.outcome == Outcome::Ok)
        .count();
    if dropped == 0 {
        assert_eq!(
            written, queued,
            "{name}: every queued impression is written"
        );
    }
    let in_db = db_query_i64(
        env.db.url(),
        "SELECT CAST(COALESCE(SUM(item_count), 0) AS BIGINT) FROM page_views",
    )
    .await;
    assert_eq!(
        in_db as u64, written,
        "{name}: the written counter matches the database"
    );
    println!(
        "{name}: {} writes acknowledged, {} pages served during the fault",
        accepted.len(),
        pages_during
    );
    let _ = &env.dir;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_unwritable_for_ten_seconds() {
    let env = start_env(TestDb::sqlite);
    let db_file = env.dir.path().join("test.db");
    fault_under_load(&env, Immutable::new(&db_file)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_started_under_load() {
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let db = TestDb::postgres_on(&pg.admin_url()).await;
    let env = start_env(|_| db);
    // The database goes away with the test's own server.
    fault_under_load(&env, PostgresDown(pg)).await;
}
