//! `marquee import movielens`: all-or-nothing, idempotent, and precise about bad input.

mod common;

use common::{TestDb, marquee, marquee_ok, write_fixture};
use marquee::store::{Store, Table};

async fn counts(url: &str) -> [i64; 5] {
    let store = Store::open(url).await.unwrap();
    let c = [
        store.count(Table::Titles).await.unwrap(),
        store.count(Table::Profiles).await.unwrap(),
        store.count(Table::Events).await.unwrap(),
        store.count(Table::WatchState).await.unwrap(),
        store.title_entities().await.unwrap().len() as i64,
    ];
    store.close().await;
    c
}

async fn import_behaviour(db: TestDb, dir: &std::path::Path) {
    let url = db.url().to_owned();
    let fixture = write_fixture(&dir.join("ml"));
    let ml = fixture.dir.to_str().unwrap();
    marquee_ok(dir, &url, &["import", "movielens", ml]);
    let first = counts(&url).await;
    assert_eq!(first[0], 60);
    assert!(first[2] > 200, "{first:?}");
    // The fixture's knowledge graph names 7 (title, role, person) links.
    assert_eq!(first[4], 7, "{first:?}");

    // Re-importing the same files changes nothing.
    let log = marquee_ok(dir, &url, &["import", "movielens", ml]);
    assert!(log.contains("0 new events"), "{log}");
    assert_eq!(counts(&url).await, first);

    // A held-out split: only an .inter file, any name, referring to imported titles.
    let split = dir.join("split");
    std::fs::create_dir_all(&split).unwrap();
    std::fs::write(
        split.join("heldout.test.inter"),
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t60\t4\t893000000\n",
    )
    .unwrap();
    marquee_ok(dir, &url, &["import", "movielens", split.to_str().unwrap()]);
    let after_split = counts(&url).await;
    assert_eq!(after_split[2], first[2] + 1);
    assert_eq!(
        after_split[4], first[4],
        "no knowledge graph, entities untouched"
    );

    // A malformed line deep in the file aborts the import and names file and line; nothing
    // of the (otherwise new) data is written.
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let mut inter = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    for i in 0..50 {
        inter.push_str(&format!("900\t{}\t3\t893000{i:03}\n", 1 + i % 60));
    }
    inter.push_str("900\t5\tnot-a-rating\t893000999\n");
    std::fs::write(bad.join("more.inter"), inter).unwrap();
    let out = marquee(dir, &url, &["import", "movielens", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("more.inter:52: rating \"not-a-rating\" is not a number"),
        "{stderr}"
    );
    assert_eq!(counts(&url).await, after_split);

    // An interaction with a title nobody defined is refused the same way, naming its line.
    std::fs::write(
        bad.join("more.inter"),
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n901\t1\t3\t893000000\n901\t4242\t3\t893000000\n",
    )
    .unwrap();
    let out = marquee(dir, &url, &["import", "movielens", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("more.inter:3: unknown item_id 4242"),
        "{stderr}"
    );
    assert_eq!(counts(&url).await, after_split);
    history_reads_back_exact_reals(&url).await;
    db.drop_db().await;
}

/// A profile's watch state reads back exactly as recorded, whichever way the backend reads it
/// (on SQLite `Store::history` and `Store::viewer` read on the caller's thread, with rusqlite;
/// on PostgreSQL through sqlx): no progress or rating loses a bit.
async fn history_reads_back_exact_reals(url: &str) {
    use marquee::domain::{
        AccountId, EventAction, Profile, ProfileId, Progress, StarRating, TitleId,
    };
    use marquee::store::records::NewEvent;
    let store = Store::open(url).await.unwrap();
    // A new profile of MovieLens user 1's account: no history but what is recorded here.
    let profile = ProfileId::parse("exact-reals").unwrap();
    let new = Profile {
        id: profile.clone(),
        account_id: AccountId::parse("1").unwrap(),
        name: "Exact".into(),
        is_kids: false,
        maturity_limit: None,
        country: None,
        onboarding_genres: vec![],
    };
    assert!(store.create_profile(&new, 1).await.unwrap());
    let progress = [
        0.1 + 0.2,
        1.0 / 3.0,
        0.9999999999999999,
        5e-324,
        std::f64::consts::FRAC_1_SQRT_2,
        0.0,
    ];
    let ratings = [10.0 / 3.0, 0.5000000000000001, 4.999999999999999, 2.5];
    let title = |n: usize| TitleId::parse(&n.to_string()).unwrap();
    let event = |n: usize, action: EventAction, at: i64, id: String| NewEvent {
        title_id: title(n),
        action,
        occurred_at: at,
        client_event_id: id,
        request_id: None,
    };
    // Progress on titles 1…, ratings on titles 20….
    let events: Vec<NewEvent> = (progress.iter().enumerate())
        .map(|(i, p)| {
            let action = EventAction::Progress(Progress::new(*p).unwrap());
            event(
                i + 1,
                action,
                4_000_000_000_000 + i as i64,
                format!("exact-progress-{i}"),
            )
        })
        .chain(ratings.iter().enumerate().map(|(i, r)| {
            let action = EventAction::Rating(StarRating::new(*r).unwrap());
            event(
                i + 20,
                action,
                4_000_000_000_100 + i as i64,
                format!("exact-rating-{i}"),
            )
        }))
        .collect();
    store
        .record_events(&profile, &events, 4_000_000_001_000)
        .await
        .unwrap();
    let history = store.history(&profile).await.unwrap();
    for (i, p) in progress.iter().enumerate() {
        let state = history.get(&title(i + 1)).unwrap();
        assert_eq!(state.progress.get().to_bits(), p.to_bits(), "progress {p}");
        assert_eq!(state.last_watched_at, Some(4_000_000_000_000 + i as i64));
        assert_eq!(state.rating, None);
        assert!(!state.completed);
    }
    for (i, r) in ratings.iter().enumerate() {
        let state = history.get(&title(i + 20)).unwrap();
        assert_eq!(state.rating.map(|x| x.get().to_bits()), Some(r.to_bits()));
    }
    // The same states through the page's read of profile and history together.
    let (read, again) = store.viewer(&profile).await.unwrap().unwrap();
    assert_eq!(read, new);
    assert_eq!(again.states().count(), progress.len() + ratings.len());
    assert_eq!(again.version(), history.version());
    assert!(
        store
            .viewer(&ProfileId::parse("no-such-profile").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    // The page's read keeps the history it read (`Store::viewer`) and reuses it while the
    // profile's events are unchanged; an event stored by anyone (here another process's
    // store, as another replica) is in the next read.
    let (_, kept) = store.viewer(&profile).await.unwrap().unwrap();
    assert_eq!(kept.version(), history.version());
    let other = Store::open(url).await.unwrap();
    let later = event(
        1,
        EventAction::Progress(Progress::new(0.75).unwrap()),
        4_000_000_002_000,
        "exact-later".into(),
    );
    other
        .record_events(&profile, &[later], 4_000_000_002_500)
        .await
        .unwrap();
    let (_, after) = store.viewer(&profile).await.unwrap().unwrap();
    assert_eq!(after.get(&title(1)).unwrap().progress.get(), 0.75);
    assert_ne!(after.version(), history.version());
    assert_eq!(
        after.version(),
        other.history(&profile).await.unwrap().version()
    );
    let (_, again) = store.viewer(&profile).await.unwrap().unwrap();
    assert_eq!(again.version(), after.version());
    other.close().await;
    store.close().await;
}

#[tokio::test]
async fn import_is_atomic_idempotent_and_names_bad_lines_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    import_behaviour(TestDb::sqlite(dir.path()), dir.path()).await;
}

#[tokio::test]
async fn import_is_atomic_idempotent_and_names_bad_lines_postgres() {
    let dir = tempfile::tempdir().unwrap();
    import_behaviour(TestDb::postgres().await, dir.path()).await;
}

#[test]
fn cli_errors_name_the_config_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("marquee.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:8080\"\nlisen = 3\n").unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["--config", cfg.to_str().unwrap(), "models", "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("marquee.toml:2:"), "{stderr}");
}

/// Every table an import writes, as text: what two databases must agree on. The times an
/// import stamps with the wall clock (`received_at`, `created_at`) are left out.
async fn import_tables(url: &str) -> Vec<(&'static str, String)> {
    let queries: [(&str, &str); 8] = [
        ("accounts", "SELECT id, name FROM accounts"),
        (
            "profiles",
            "SELECT id, account_id, name, is_kids, maturity_limit, country, onboarding_genres FROM profiles",
        ),
        ("titles", "SELECT * FROM titles"),
        ("title_entities", "SELECT * FROM title_entities"),
        (
            "events",
            "SELECT id, profile_id, title_id, kind, value, occurred_at, client_event_id, request_id FROM events",
        ),
        ("watch_state", "SELECT * FROM watch_state"),
        (
            "indexes",
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()",
        ),
        ("sequence", "SELECT last_value FROM events_id_seq"),
    ];
    let db = sqlx::AnyPool::connect(url).await.unwrap();
    let mut out = Vec::new();
    for (name, q) in queries {
        let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COALESCE(string_agg(x::text, E'\\n' ORDER BY x::text), '') FROM ({q}) x"
        )))
        .fetch_one(&db)
        .await
        .unwrap();
        out.push((name, text));
    }
    db.close().await;
    out
}

/// Live events (every kind, out of order, ties) on profiles the fixture imports, so that the
/// watch state a re-import rebuilds folds more than ratings.
async fn record_live_events(url: &str) {
    use marquee::domain::{EventAction, ProfileId, Progress, StarRating, TitleId};
    use marquee::store::records::NewEvent;
    let store = Store::open(url).await.unwrap();
    let actions = [
        (EventAction::Play, 893_100_000_000),
        (
            EventAction::Progress(Progress::new(0.4).unwrap()),
            893_100_100_000,
        ),
        (
            EventAction::Progress(Progress::new(0.1).unwrap()),
            893_100_050_000,
        ),
        (EventAction::ThumbsUp, 893_100_200_000),
        (EventAction::ThumbsDown, 893_100_200_000),
        (
            EventAction::Rating(StarRating::new(2.5).unwrap()),
            893_100_300_000,
        ),
        (EventAction::Click, 893_100_400_000),
        (EventAction::Complete, 893_100_500_000),
    ];
    for (p, profile) in ["1", "2", "7"].into_iter().enumerate() {
        let events: Vec<NewEvent> = actions
            .iter()
            .enumerate()
            .skip(p)
            .map(|(n, (action, at))| NewEvent {
                title_id: TitleId::parse(&(1 + (n * 7 + p) % 60).to_string()).unwrap(),
                action: *action,
                occurred_at: *at,
                client_event_id: format!("live-{n}"),
                request_id: None,
            })
            .collect();
        store
            .record_events(
                &ProfileId::parse(profile).unwrap(),
                &events,
                893_200_000_000,
            )
            .await
            .unwrap();
    }
    store.close().await;
}

/// The COPY import (PostgreSQL's default) leaves exactly the tables the row import leaves:
/// titles, people, profiles, events with the same ids and client ids, and watch state
/// rebuilt in SQL equal to `rebuild_watch_state`'s, live events included; a re-import adds
/// nothing; the event indexes dropped for a first load are back.
#[tokio::test]
async fn copy_import_matches_row_import_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = write_fixture(&dir.path().join("ml"));
    let ml = fixture.dir.to_str().unwrap();
    let rows = TestDb::postgres().await;
    let copy = TestDb::postgres().await;
    for (db, method) in [(&rows, "rows"), (&copy, "copy")] {
        let log = marquee_ok(
            dir.path(),
            db.url(),
            &["import", "movielens", ml, "--method", method],
        );
        assert!(!log.contains(" 0 new events"), "{log}");
        record_live_events(db.url()).await;
        let log = marquee_ok(
            dir.path(),
            db.url(),
            &["import", "movielens", ml, "--method", method],
        );
        assert!(log.contains(" 0 new events"), "{log}");
    }
    let (a, b) = (
        import_tables(rows.url()).await,
        import_tables(copy.url()).await,
    );
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            !x.is_empty() || *name == "title_entities",
            "{name} is empty"
        );
        assert_eq!(
            x, y,
            "table {name} differs between the row and the COPY import"
        );
    }
    rows.drop_db().await;
    copy.drop_db().await;
}

#[tokio::test]
async fn copy_import_needs_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let fixture = write_fixture(&dir.path().join("ml"));
    let out = marquee(
        dir.path(),
        db.url(),
        &[
            "import",
            "movielens",
            fixture.dir.to_str().unwrap(),
            "--method",
            "copy",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("COPY import needs PostgreSQL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
