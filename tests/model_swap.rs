//! A running server follows the model registry — train, rollback — while serving: no request
//! fails and every page is ranked by one whole model.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{NOW, Server, TestDb, marquee_ok, write_fixture};
use serde_json::json;

async fn served_version(s: &Server) -> String {
    let r = s
        .gql("{ home(profileId: \"1\") { modelVersion } }", json!({}))
        .await;
    r["data"]["home"]["modelVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn wait_for_version(s: &Server, want: &str) -> bool {
    for _ in 0..100 {
        if served_version(s).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A data directory with the fixture imported and a model trained by the CLI: the directory,
/// its database, the database URL and the fixture.
fn imported_and_trained() -> (tempfile::TempDir, TestDb, String, common::Fixture) {
    let dir = tempfile::tempdir().unwrap();
    let fixture = write_fixture(&dir.path().join("ml"));
    let db = TestDb::sqlite(dir.path());
    let url = db.url().to_owned();
    marquee_ok(
        dir.path(),
        &url,
        &["import", "movielens", fixture.dir.to_str().unwrap()],
    );
    marquee_ok(dir.path(), &url, &["train", "--clock", NOW]);
    (dir, db, url, fixture)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_swaps_models_under_load_without_failing_requests() {
    let (dir, _db, url, _fixture) = imported_and_trained();
    let exp = dir.path().join("exp");
    std::fs::create_dir_all(&exp).unwrap();
    let server = Arc::new(Server::start(
        dir.path(),
        &url,
        &["--experiments", exp.to_str().unwrap()],
    ));
    let first = served_version(&server).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (server, stop, served, failed) =
            (server.clone(), stop.clone(), served.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let p = (1 + (worker * 7 + n) % 40).to_string();
                let r = server
                    .gql("query($p: ID!) { home(profileId: $p) { modelVersion rows { items { title { id } } } } }", json!({"p": p}))
                    .await;
                if r["errors"].is_null() && r["data"]["home"]["modelVersion"].is_string() {
                    served.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    // A new training run registers and activates a second version…
    let log = marquee_ok(
        dir.path(),
        &url,
        &["train", "--clock", "1998-04-24T00:00:00Z"],
    );
    let second = log
        .split("trained model ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);
    assert!(
        wait_for_version(&server, &second).await,
        "the server did not switch to {second}"
    );
    // …and a rollback brings the first one back.
    marquee_ok(dir.path(), &url, &["models", "rollback"]);
    assert!(
        wait_for_version(&server, &first).await,
        "the server did not roll back to {first}"
    );

    // An experiment can fill one row with another registered version while the rest of the
    // page uses the active one.
    // Applied as a new revision with `marquee experiments import`; the server follows it.
    let file = dir.path().join("models.json");
    std::fs::write(
        &file,
        json!({"features": {"home-row-settings": {"defaultValue": null, "rules": [{
            "key": "top-picks-model", "variations": [null, {"top-picks": {"model": second}}]}]}}})
        .to_string(),
    )
    .unwrap();
    marquee_ok(
        dir.path(),
        &url,
        &["experiments", "import", file.to_str().unwrap()],
    );
    let preview = "{ home: previewHome(profileId: \"1\", forcedVariations: [{experimentKey: \"top-picks-model\", variation: 1}]) { rows { id modelVersion } } }";
    let mut mixed = false;
    for _ in 0..100 {
        let r = server.gql(preview, json!({})).await;
        let rows = r["data"]["home"]["rows"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let version = |id: &str| {
            rows.iter()
                .find(|row| row["id"] == id)
                .map(|row| row["modelVersion"].clone())
        };
        if version("top-picks") == Some(json!(second)) {
            assert_eq!(version("trending"), Some(json!(first)), "{r}");
            mixed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(mixed, "top-picks was never filled by {second}");

    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    assert!(
        served.load(Ordering::Relaxed) > 50,
        "too little load to mean anything"
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the swaps"
    );
}

/// Polls `adminJob` as `token` until it is no longer running.
async fn finished_job(s: &Server, token: &str) -> serde_json::Value {
    for _ in 0..600 {
        let r = s
            .gql_with(
                Some(token),
                "{ adminJob { id kind state result error } }",
                json!({}),
            )
            .await;
        let job = r["data"]["adminJob"].clone();
        if job["state"] != "RUNNING" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the admin job never finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_import_and_train_through_the_api() {
    let (dir, _db, url, fixture) = imported_and_trained();
    let server = Server::start(dir.path(), &url, &[]);
    let first = served_version(&server).await;
    let admin = server.token("ops", "admin");
    let viewer = server.token("1", "viewer");
    let import = "mutation($d: String!) { importMovieLens(directory: $d) { id kind state } }";
    let ml = fixture.dir.to_str().unwrap();

    // Viewers may not; a relative or missing directory is refused before any work.
    let r = server
        .gql_with(Some(&viewer), import, json!({"d": ml}))
        .await;
    assert_eq!(common::error_code(&r), Some("FORBIDDEN"), "{r}");
    let r = server
        .gql_with(Some(&admin), import, json!({"d": "relative/dir"}))
        .await;
    assert_eq!(common::error_code(&r), Some("BAD_USER_INPUT"), "{r}");

    let r = server
        .gql_with(Some(&admin), import, json!({"d": ml}))
        .await;
    assert_eq!(r["data"]["importMovieLens"]["state"], "RUNNING", "{r}");
    let job = finished_job(&server, &admin).await;
    assert_eq!(job["state"], "SUCCEEDED", "{job}");
    assert_eq!(job["kind"], "IMPORT_MOVIELENS");
    // Imports are idempotent: the same directory again adds no event.
    assert!(
        job["result"].as_str().unwrap().contains(" 0 new events"),
        "{job}"
    );

    let train = "mutation { trainModel { id state } }";
    let r = server.gql_with(Some(&admin), train, json!({})).await;
    assert_eq!(r["data"]["trainModel"]["state"], "RUNNING", "{r}");
    // One job at a time.
    let again = server.gql_with(Some(&admin), train, json!({})).await;
    let job = finished_job(&server, &admin).await;
    assert_eq!(job["state"], "SUCCEEDED", "{job}");
    if again["errors"].is_array() {
        assert_eq!(common::error_code(&again), Some("CONFLICT"), "{again}");
    }
    let models = server
        .gql_with(Some(&admin), "{ models { version active } }", json!({}))
        .await;
    let active = models["data"]["models"][0].clone();
    assert_eq!(active["active"], true, "{models}");
    let version = active["version"].as_str().unwrap().to_owned();
    assert!(
        job["result"].as_str().unwrap().contains(&version),
        "{job} {models}"
    );
    // The server follows the registry: its pages are ranked by the model trained just now.
    assert_ne!(version, first);
    assert!(wait_for_version(&server, &version).await);
}
