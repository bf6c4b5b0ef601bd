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
    db.drop_db().await;
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
