//! The experiment console, black box: features and experiments created, launched, edited and
//! stopped through GraphQL (pm role), stored as revisions, sticky for exposed profiles, followed
//! by a second replica on the same database, exported and imported by the CLI.

mod common;

use std::time::{Duration, Instant};

use common::{Server, TestDb, error_code, import_and_train, marquee, marquee_ok};
use serde_json::{Value, json};

const SAVE: &str = "mutation($k: String!, $d: JSON!, $b: Int) { saveFeature(key: $k, definition: $d, baseRevision: $b) { revision } }";
const LAUNCH: &str =
    "mutation($k: String!) { launchExperiment(key: $k) { key status phases { number } } }";
const ASSIGNED: &str = "query($p: ID!) { home(profileId: $p) { rows { id } assignments { experimentKey variationIndex variationKey } } }";

/// A `home-rows` experiment: control (the page as defined) against trending first.
fn definition(weights: [f64; 2], coverage: f64) -> Value {
    json!({"defaultValue": null, "rules": [{
        "key": "console-ab", "hashAttribute": "id", "weights": weights, "coverage": coverage,
        "variations": [null, ["trending", "top-picks"]],
        "meta": [{"key": "control"}, {"key": "trending-first"}]
    }]})
}

/// The variation index `profile` is assigned in `console-ab`, if any.
async fn variation(s: &Server, profile: &str) -> Option<i64> {
    let r = s.gql(ASSIGNED, json!({"p": profile})).await;
    assert!(r["errors"].is_null(), "{r}");
    r["data"]["home"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["experimentKey"] == "console-ab")
        .and_then(|a| a["variationIndex"].as_i64())
}

async fn status(s: &Server, key: &str) -> Option<String> {
    let r = s.gql("{ experiments { key status } }", json!({})).await;
    r["data"]["experiments"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .find(|e| e["key"] == key)
        .map(|e| e["status"].as_str().unwrap().to_owned())
}

fn pm(s: &Server) -> String {
    s.token("console-pm", "pm")
}

#[tokio::test]
async fn a_pm_runs_an_experiment_and_exposed_profiles_stick() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let url = db.url().to_owned();
    import_and_train(dir.path(), &url);
    let s = Server::start(dir.path(), &url, &[]);
    let pm = pm(&s);
    let gql = |q: &'static str, v: Value| {
        let (s, pm) = (&s, pm.clone());
        async move { s.gql_with(Some(&pm), q, v).await }
    };

    // A viewer may not touch the console.
    let viewer = s.token("1", "viewer");
    let r = s
        .gql_with(
            Some(&viewer),
            SAVE,
            json!({"k": "home-rows", "d": definition([0.5, 0.5], 1.0)}),
        )
        .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");

    // An invalid value is refused with the path of the mistake, and nothing is stored.
    let mut bad = definition([0.5, 0.5], 1.0);
    bad["rules"][0]["variations"][1] = json!(["trending", "top-picks", "nope"]);
    let r = gql(SAVE, json!({"k": "home-rows", "d": bad})).await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");
    assert_eq!(
        r["errors"][0]["extensions"]["path"], "rules[0].variations[1][2]",
        "{r}"
    );
    let mut bad = definition([0.5, 0.5], 1.0);
    bad["rules"][0]["weights"] = json!(["half", 0.5]);
    let r = gql(SAVE, json!({"k": "home-rows", "d": bad})).await;
    assert_eq!(
        r["errors"][0]["extensions"]["path"], "rules[0].weights[0]",
        "{r}"
    );
    let r = gql(
        "query($d: JSON!) { validateFeature(key: \"home-rows\", definition: $d) { path message } }",
        json!({"d": {"rules": [{"key": "x", "variations": [1, 2], "weights": [0.9, 0.9]}]}}),
    )
    .await;
    assert_eq!(
        r["data"]["validateFeature"][0]["path"], "rules[0].weights",
        "{r}"
    );
    assert_eq!(status(&s, "console-ab").await, None);

    // Created as a draft: not served.
    let r = gql(
        SAVE,
        json!({"k": "home-rows", "d": definition([0.5, 0.5], 1.0)}),
    )
    .await;
    let revision = r["data"]["saveFeature"]["revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(status(&s, "console-ab").await.as_deref(), Some("DRAFT"));
    assert_eq!(variation(&s, "1").await, None, "a draft assigns nobody");
    // A stale base revision is a conflict.
    let r = gql(
        SAVE,
        json!({"k": "home-rows", "d": definition([0.5, 0.5], 1.0), "b": revision - 1}),
    )
    .await;
    assert_eq!(error_code(&r), Some("CONFLICT"), "{r}");
    let r = gql(
        "mutation { stopExperiment(key: \"console-ab\") { status } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&r), Some("FAILED_PRECONDITION"), "{r}");

    // Launched: profiles are assigned and exposed.
    let r = gql(LAUNCH, json!({"k": "console-ab"})).await;
    assert_eq!(r["data"]["launchExperiment"]["status"], "RUNNING", "{r}");
    let profiles: Vec<String> = (1..=40).map(|p| p.to_string()).collect();
    let mut before = Vec::new();
    for p in &profiles[..20] {
        before.push(
            variation(&s, p)
                .await
                .expect("everyone is in at full coverage"),
        );
    }
    assert!(before.contains(&0) && before.contains(&1), "{before:?}");

    // Weights change to 100% treatment and coverage stays: exposed profiles keep their
    // variation (sticky), new ones all get the treatment.
    let r = gql(
        SAVE,
        json!({"k": "home-rows", "d": definition([0.0, 1.0], 1.0)}),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    for (p, v) in profiles[..20].iter().zip(&before) {
        assert_eq!(variation(&s, p).await, Some(*v), "profile {p} moved");
    }
    for p in &profiles[20..] {
        assert_eq!(variation(&s, p).await, Some(1), "new profile {p}");
    }
    // Coverage down to 1%: exposed profiles stay in.
    let r = gql(
        SAVE,
        json!({"k": "home-rows", "d": definition([0.0, 1.0], 0.01)}),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    for (p, v) in profiles[..20].iter().zip(&before) {
        assert_eq!(variation(&s, p).await, Some(*v), "profile {p} moved");
    }

    // A new phase re-randomises on purpose (50/50 again, a new seed).
    gql(
        SAVE,
        json!({"k": "home-rows", "d": definition([0.5, 0.5], 1.0)}),
    )
    .await;
    let r = gql(
        "mutation { startExperimentPhase(key: \"console-ab\") { status phases { number endedAt } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r["data"]["startExperimentPhase"]["phases"][1]["number"], 1,
        "{r}"
    );
    let mut moved = 0;
    for (p, v) in profiles[..20].iter().zip(&before) {
        if variation(&s, p).await != Some(*v) {
            moved += 1;
        }
    }
    assert!(moved > 0 && moved < 20, "{moved} of 20 moved");

    // The guard rails answer.
    let r = gql(
        "{ experimentReport(key: \"console-ab\") { status srmFlagged peekingWarning guardrailFlagged variations { guardrailDegraded conversionLift { sequentialPValue peeking } } } }",
        json!({}),
    )
    .await;
    assert_eq!(r["data"]["experimentReport"]["status"], "RUNNING", "{r}");
    // The SRM alarm reaches /metrics. (Reports cover the current phase, checked per weight
    // epoch: `weight_changes_raise_no_false_sample_ratio_alarm` tests the verdict itself.)
    let flagged = if r["data"]["experimentReport"]["srmFlagged"] == true {
        1
    } else {
        0
    };
    let metrics = s.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(&format!(
            "marquee_experiment_srm_flagged{{experiment=\"console-ab\"}} {flagged}"
        )),
        "{metrics}"
    );
    let r = gql(
        "{ experimentPlan(key: \"console-ab\", mde: 0.1) { weeklyProfiles profilesPerVariation profilesNeeded estimatedDays } }",
        json!({}),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");

    // Stop and roll out the winner: nobody is assigned, everyone gets its value.
    let r = gql(
        "mutation { chooseWinner(key: \"console-ab\", variation: 1) { status winner } }",
        json!({}),
    )
    .await;
    assert_eq!(r["data"]["chooseWinner"]["status"], "STOPPED", "{r}");
    assert_eq!(r["data"]["chooseWinner"]["winner"], 1, "{r}");
    let home = s.gql(ASSIGNED, json!({"p": "3"})).await;
    assert!(
        home["data"]["home"]["assignments"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{home}"
    );
    let rows: Vec<&str> = home["data"]["home"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(&rows[..2], ["trending", "top-picks"], "{home}");

    // The history: who, what, the diff.
    let r = gql(
        "{ experimentHistory(key: \"console-ab\", first: 50) { revision author action changes { path before after } } }",
        json!({}),
    )
    .await;
    let history = r["data"]["experimentHistory"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"));
    let actions: Vec<&str> = history
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "choose-winner",
            "new-phase",
            "save-feature",
            "save-feature",
            "save-feature",
            "launch",
            "save-feature"
        ],
        "{r}"
    );
    assert!(
        history[0]["author"]
            .as_str()
            .unwrap()
            .starts_with("console-pm")
    );
    let weight_change = &history[4]["changes"];
    assert!(
        weight_change
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["path"] == "features.home-rows.rules[0].weights[0]"
                && c["before"] == "0.5"
                && c["after"] == "0.0"),
        "{weight_change}"
    );

    // Export writes GrowthBook's shape with the lifecycle; a broken import is refused
    // (naming the path) and changes nothing; a good one is a new revision.
    let export = dir.path().join("export.json");
    marquee_ok(
        dir.path(),
        &url,
        &["experiments", "export", "--out", export.to_str().unwrap()],
    );
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert_eq!(
        exported["features"]["home-rows"]["defaultValue"],
        json!(["trending", "top-picks"])
    );
    assert_eq!(exported["experiments"]["console-ab"]["status"], "stopped");
    let mut broken = exported.clone();
    broken["features"]["home-rows"]["defaultValue"] = json!(["nope"]);
    let broken_file = dir.path().join("broken.json");
    std::fs::write(&broken_file, broken.to_string()).unwrap();
    let out = marquee(
        dir.path(),
        &url,
        &["experiments", "import", broken_file.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("features.home-rows.defaultValue[0]"),
        "{stderr}"
    );
    let mut fixed = exported.clone();
    fixed["features"]["probe"] =
        json!({"defaultValue": 0, "rules": [{"key": "probe-x", "variations": [0, 1]}]});
    let fixed_file = dir.path().join("fixed.json");
    std::fs::write(&fixed_file, fixed.to_string()).unwrap();
    marquee_ok(
        dir.path(),
        &url,
        &["experiments", "import", fixed_file.to_str().unwrap()],
    );
    // The server follows the CLI's revision (a new experiment from a file runs).
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&s, "probe-x").await.as_deref() != Some("RUNNING") {
        assert!(Instant::now() < deadline, "the import was not followed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(&s, "console-ab").await.as_deref(), Some("STOPPED"));
}

/// Two `serve` processes on one database: a change made through one is served by the other
/// within a second (measured), without restart.
async fn replicas_follow(db: TestDb, dir: &std::path::Path) {
    let url = db.url().to_owned();
    import_and_train(dir, &url);
    let a = Server::start(dir, &url, &[]);
    let b = Server::start(dir, &url, &[]);
    let pm = pm(&a);
    // Each replica's development issuer signs for its own URL.
    let pm_b = b.token("console-pm", "pm");
    let mut lags = Vec::new();
    for (i, weights) in [[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]].iter().enumerate() {
        let r = a
            .gql_with(
                Some(&pm),
                SAVE,
                json!({"k": "home-rows", "d": definition(*weights, 1.0)}),
            )
            .await;
        assert!(r["errors"].is_null(), "{r}");
        if i == 0 {
            a.gql_with(Some(&pm), LAUNCH, json!({"k": "console-ab"}))
                .await;
        }
        let changed = Instant::now();
        loop {
            let r = b
                .gql_with(
                    Some(&pm_b),
                    "{ experiments { key status variations { weight } } }",
                    json!({}),
                )
                .await;
            let e = &r["data"]["experiments"][0];
            if e["status"] == "RUNNING" && e["variations"][1]["weight"].as_f64() == Some(weights[1])
            {
                break;
            }
            assert!(
                changed.elapsed() < Duration::from_secs(10),
                "replica b did not follow: {r}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        lags.push(changed.elapsed());
    }
    println!("replica b followed after {lags:?} (polling every 250 ms)");
    // B serves the experiment: its pages are assigned.
    assert!(variation(&b, "1").await.is_some());
    drop((a, b));
    db.drop_db().await;
}

#[tokio::test]
async fn a_second_replica_follows_changes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    replicas_follow(TestDb::sqlite(dir.path()), dir.path()).await;
}

#[tokio::test]
async fn a_second_replica_follows_changes_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    replicas_follow(TestDb::postgres().await, dir.path()).await;
}

const SRM_REPORT: &str = "query($k: String!) { experimentReport(key: $k) { phase srmFlagged srmPValue \
    srmEpochs { weights firstExposedProfiles pValue } variations { exposedProfiles } } }";

/// Waits until the impression log has written every page served so far.
async fn drain_impressions(s: &Server) {
    for _ in 0..200 {
        let m = s.get("/metrics").await.text().await.unwrap();
        if m.contains("marquee_impressions_backlog 0\n") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the impression log did not drain");
}

fn split(variations: &[i64], n: usize) -> Vec<i64> {
    (0..n as i64)
        .map(|v| variations.iter().filter(|x| **x == v).count() as i64)
        .collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// With sticky bucketing a weight change inside a phase leaves exposed profiles where they
/// are, so all exposures together match no single set of weights. The sample-ratio check
/// counts each profile in the weight epoch of its first exposure and tests each epoch against
/// its own weights: no alarm for a legitimate change, an alarm for a broken split; and the
/// report covers the current phase only.
async fn weight_changes_raise_no_false_alarm(db: TestDb, dir: &std::path::Path) {
    let url = db.url().to_owned();
    import_and_train(dir, &url);
    // Epochs are told apart by time: a clock that ticks.
    let s = Server::start(dir, &url, &["--clock", "system"]);
    let pm = pm(&s);
    let gql = |q: &'static str, v: Value| {
        let (s, pm) = (&s, pm.clone());
        async move { s.gql_with(Some(&pm), q, v).await }
    };
    let r = gql(
        SAVE,
        json!({"k": "home-rows", "d": definition([0.5, 0.5], 1.0)}),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    gql(LAUNCH, json!({"k": "console-ab"})).await;
    let profiles: Vec<String> = (1..=41).map(|p| p.to_string()).collect();
    let mut first = Vec::new();
    for p in &profiles[..20] {
        first.push(variation(&s, p).await.expect("in at full coverage"));
    }

    // 5/95 from now on. Pages a second later (replicas follow within one): the first twenty
    // stay where they are, newcomers land by the new weights.
    let weights = [0.05, 0.95];
    let r = gql(
        SAVE,
        json!({"k": "home-rows", "d": definition(weights, 1.0)}),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for (p, v) in profiles[..20].iter().zip(&first) {
        assert_eq!(variation(&s, p).await, Some(*v), "profile {p} moved");
    }
    let mut newcomers = Vec::new();
    for p in &profiles[20..] {
        newcomers.push(variation(&s, p).await.expect("in at full coverage"));
    }
    assert!(
        split(&newcomers, 2)[1] >= 17,
        "newcomers land by 5/95: {newcomers:?}"
    );
    drain_impressions(&s).await;

    let r = gql(SRM_REPORT, json!({"k": "console-ab"})).await;
    let report = &r["data"]["experimentReport"];
    assert_eq!(report["phase"], 0, "{r}");
    assert_eq!(report["srmFlagged"], false, "{r}");
    let epochs = report["srmEpochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2, "{r}");
    assert_eq!(
        ints(&epochs[0]["firstExposedProfiles"]),
        split(&first, 2),
        "{r}"
    );
    assert_eq!(
        ints(&epochs[1]["firstExposedProfiles"]),
        split(&newcomers, 2),
        "{r}"
    );
    // What the report said before epochs: every exposure against today's weights, a false
    // alarm (χ² > 10.83 is p < 0.001 on one degree of freedom).
    let exposed: Vec<i64> = report["variations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["exposedProfiles"].as_i64().unwrap())
        .collect();
    let total: i64 = exposed.iter().sum();
    assert_eq!(total, 41);
    let chi2: f64 = exposed
        .iter()
        .zip(weights)
        .map(|(o, w)| (*o as f64 - total as f64 * w).powi(2) / (total as f64 * w))
        .sum();
    assert!(
        chi2 > 10.83,
        "the mixed check would not have fired: {exposed:?}"
    );
    let metrics = s.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("marquee_experiment_srm_flagged{experiment=\"console-ab\"} 0"),
        "{metrics}"
    );

    // A broken split in the current epoch — profiles of one variation exposed far beyond its
    // weight, as the counters would hold them if assignment were broken — is flagged.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut conn = db.connect().await;
    for i in 0..100 {
        sqlx::query(
            "INSERT INTO experiment_outcomes (experiment_key, phase, profile_id, variation_index, \
             first_seen_at, variations, impressions, plays, completes) \
             VALUES ('console-ab', 0, $1, 0, $2, 1, 0, 0, 0)",
        )
        .bind(format!("injected-{i}"))
        .bind(now)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    drop(conn);
    let r = gql(SRM_REPORT, json!({"k": "console-ab"})).await;
    let report = &r["data"]["experimentReport"];
    assert_eq!(report["srmFlagged"], true, "{r}");
    assert!(
        report["srmEpochs"][1]["pValue"].as_f64().unwrap() < 0.001,
        "{r}"
    );
    assert!(
        report["srmEpochs"][0]["pValue"].as_f64().unwrap() > 0.001,
        "{r}"
    );
    let metrics = s.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("marquee_experiment_srm_flagged{experiment=\"console-ab\"} 1"),
        "{metrics}"
    );

    // A new phase re-randomises: its report starts empty and counts only its own exposures.
    let r = gql(
        "mutation { startExperimentPhase(key: \"console-ab\") { status } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r["data"]["startExperimentPhase"]["status"], "RUNNING",
        "{r}"
    );
    for p in &profiles[..10] {
        variation(&s, p).await.expect("in at full coverage");
    }
    drain_impressions(&s).await;
    let r = gql(SRM_REPORT, json!({"k": "console-ab"})).await;
    let report = &r["data"]["experimentReport"];
    assert_eq!(report["phase"], 1, "{r}");
    let exposed: i64 = report["variations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["exposedProfiles"].as_i64().unwrap())
        .sum();
    assert_eq!(exposed, 10, "{r}");
    assert_eq!(report["srmEpochs"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(report["srmFlagged"], false, "{r}");
    drop(s);
    db.drop_db().await;
}

#[tokio::test]
async fn weight_changes_raise_no_false_sample_ratio_alarm_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    weight_changes_raise_no_false_alarm(TestDb::sqlite(dir.path()), dir.path()).await;
}

#[tokio::test]
async fn weight_changes_raise_no_false_sample_ratio_alarm_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    weight_changes_raise_no_false_alarm(TestDb::postgres().await, dir.path()).await;
}
