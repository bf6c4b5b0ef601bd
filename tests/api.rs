//! Black-box tests of the GraphQL contract: the real binary imports a fixture, trains and
//! serves on an ephemeral port, against SQLite and against a fresh PostgreSQL database.

mod common;

use std::collections::HashSet;

use common::{Fixture, NOW, Server, TestDb, error_code, marquee_ok, write_fixture};
use serde_json::{Value, json};

const HOME: &str = r#"query($p: ID!) { home(profileId: $p) { requestId generatedAt modelVersion
  rows { id title definition items { position score reason
    title { id name year genres maturityRating } evidence { id name } } } } }"#;

const RECORD: &str = r#"mutation($p: ID!, $e: [EventInput!]!) {
  recordEvents(profileId: $p, events: $e) { accepted duplicates } }"#;

struct Env {
    _dir: tempfile::TempDir,
    db: TestDb,
    fixture: Fixture,
    server: Server,
    /// A page definition the server reads (and rereads when a model is activated).
    _rows: Option<tempfile::TempPath>,
}

async fn start(db: impl FnOnce(&std::path::Path) -> TestDb) -> Env {
    start_with(db, &[]).await
}

async fn start_with(db: impl FnOnce(&std::path::Path) -> TestDb, serve_args: &[&str]) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let fixture = write_fixture(&dir.path().join("ml"));
    let db = db(dir.path());
    let url = db.url().to_owned();
    let data = dir.path();
    let ml = fixture.dir.to_str().unwrap().to_owned();
    marquee_ok(
        data,
        &url,
        &["import", "movielens", &ml, "--kids-every", "3"],
    );
    marquee_ok(data, &url, &["train", "--clock", NOW]);
    let server = Server::start(data, &url, serve_args);
    Env {
        _dir: dir,
        db,
        fixture,
        server,
        _rows: None,
    }
}

async fn home(s: &Server, profile: &str) -> Value {
    let resp = s.gql(HOME, json!({"p": profile})).await;
    assert!(resp["errors"].is_null(), "home({profile}) failed: {resp}");
    resp["data"]["home"].clone()
}

fn page_titles(home: &Value) -> Vec<String> {
    home["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["items"].as_array().unwrap().iter())
        .map(|i| i["title"]["id"].as_str().unwrap().to_owned())
        .collect()
}

fn row<'a>(home: &'a Value, id: &str) -> Option<&'a Value> {
    home["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
}

fn event(id: &str, title: &str, kind: &str, value: Option<f64>, at: Option<&str>) -> Value {
    json!({"clientEventId": id, "titleId": title, "kind": kind, "value": value, "occurredAt": at})
}

async fn profile_ids(s: &Server, kids: Option<bool>) -> Vec<String> {
    s.fixture_profiles(kids).await
}

/// The home query written straight to JSON answers as the executor does (`common`), on kids
/// and main profiles.
async fn check_direct_answers(env: &Env) {
    let profiles = profile_ids(&env.server, None).await;
    common::check_direct_answers(&env.server, &profiles, 24, 0x5eed).await;
}

async fn check_page_shape(env: &Env) {
    let h = home(&env.server, "1").await;
    assert!(!h["requestId"].as_str().unwrap().is_empty());
    assert!(
        h["generatedAt"]
            .as_str()
            .unwrap()
            .starts_with("1998-04-23T00:00:00")
    );
    let rows = h["rows"].as_array().unwrap();
    assert!(rows.len() >= 3, "expected several rows: {h}");
    let known = [
        "continue-watching",
        "top-picks",
        "because-you-watched",
        "trending",
        "new-releases",
        "genre",
    ];
    for r in rows {
        let id = r["id"].as_str().unwrap();
        assert!(
            known.contains(&r["definition"].as_str().unwrap()),
            "unknown row definition in {r}"
        );
        assert!(
            id == r["definition"]
                || id.starts_with(&format!("{}:", r["definition"].as_str().unwrap()))
        );
        let items = r["items"].as_array().unwrap();
        assert!(!items.is_empty() && items.len() <= 20);
        for (i, item) in items.iter().enumerate() {
            assert_eq!(item["position"], i);
        }
    }
    assert!(
        row(&h, "top-picks").is_some(),
        "a profile with history gets Top Picks: {h}"
    );
    let byw: Vec<&Value> = rows
        .iter()
        .filter(|r| r["definition"] == "because-you-watched")
        .collect();
    assert!(byw.len() <= 2);
    for r in byw {
        let anchor = r["id"]
            .as_str()
            .unwrap()
            .strip_prefix("because-you-watched:")
            .unwrap();
        for item in r["items"].as_array().unwrap() {
            assert_eq!(
                item["evidence"][0]["id"], anchor,
                "each item carries its evidence"
            );
            assert!(
                item["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("Because you watched")
            );
        }
    }

    // Cold start: a profile with no history still gets a page, led by popular titles.
    let cold = home(&env.server, "41").await;
    let rows = cold["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "cold-start page is empty");
    assert_eq!(rows[0]["title"], "Popular on Marquee");
    assert!(row(&cold, "trending").is_some());

    // A new profile with onboarding genres gets a row of its first genre straight away.
    let create = "mutation($i: CreateProfileInput!) { createProfile(input: $i) { id isKids maturityLimit country } }";
    let input =
        json!({"id": "newbie", "name": "New", "country": "US", "onboardingGenres": ["Comedy"]});
    let r = env.server.gql(create, json!({"i": input})).await;
    assert_eq!(r["data"]["createProfile"]["id"], "newbie", "{r}");
    let fresh = home(&env.server, "newbie").await;
    assert!(row(&fresh, "genre:Comedy").is_some(), "{fresh}");
    let r = env.server.gql(create, json!({"i": input})).await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "duplicate id: {r}");
    let bad = json!({"id": "other", "name": "X", "onboardingGenres": ["Nope"]});
    let r = env.server.gql(create, json!({"i": bad})).await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");
    let kid = json!({"id": "newbie-kids", "name": "Kid", "isKids": true});
    let r = env.server.gql(create, json!({"i": kid})).await;
    assert_eq!(r["data"]["createProfile"]["maturityLimit"], "PG", "{r}");
}

async fn check_no_duplicates_and_no_watched(env: &Env) {
    for (user, _) in &env.fixture.users {
        let h = home(&env.server, user).await;
        let titles = page_titles(&h);
        let unique: HashSet<&String> = titles.iter().collect();
        assert_eq!(
            unique.len(),
            titles.len(),
            "duplicate titles on {user}'s page"
        );
        if let Some(watched) = env.fixture.watched.get(user) {
            for t in &titles {
                let id: u32 = t.parse().unwrap();
                assert!(
                    !watched.contains(&id),
                    "profile {user} was shown title {t}, which it rated"
                );
            }
        }
    }
}

async fn check_kids_and_region(env: &Env) {
    let kids = profile_ids(&env.server, Some(true)).await;
    assert!(!kids.is_empty(), "the import made no kids profiles");
    for kid in &kids {
        assert!(kid.ends_with("-kids"));
        let h = home(&env.server, kid).await;
        assert!(
            !h["rows"].as_array().unwrap().is_empty(),
            "kids page is empty"
        );
        for r in h["rows"].as_array().unwrap() {
            for item in r["items"].as_array().unwrap() {
                let t = &item["title"];
                let rating = t["maturityRating"].as_str();
                assert!(
                    matches!(rating, None | Some("G") | Some("PG")),
                    "{kid} was shown {} rated {rating:?}",
                    t["name"]
                );
                if rating.is_none() {
                    let genres: Vec<&str> = t["genres"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|g| g.as_str().unwrap())
                        .collect();
                    assert!(genres.contains(&"Children's") || genres.contains(&"Animation"));
                }
            }
        }
    }
    // Search and browse for a kids profile leave out what it may not see.
    let kid = &kids[0];
    let q = "query($p: ID) { search(query: \"pulp\", profileId: $p) { id } browse(genre: \"Crime\", first: 100, profileId: $p) { edges { node { maturityRating } } } }";
    let adult = env.server.gql(q, json!({"p": "1"})).await;
    assert_eq!(
        adult["data"]["search"].as_array().unwrap().len(),
        1,
        "{adult}"
    );
    let child = env.server.gql(q, json!({"p": kid})).await;
    assert!(
        child["data"]["search"].as_array().unwrap().is_empty(),
        "{child}"
    );
    for e in child["data"]["browse"]["edges"].as_array().unwrap() {
        assert!(
            matches!(
                e["node"]["maturityRating"].as_str(),
                None | Some("G") | Some("PG")
            ),
            "{child}"
        );
    }

    // Title 7 is licensed only in Germany.
    for (user, country) in &env.fixture.users {
        let titles = page_titles(&home(&env.server, user).await);
        if *country == "US" {
            assert!(
                !titles.contains(&"7".to_owned()),
                "US profile {user} was shown a DE-only title"
            );
        }
    }
}

async fn check_events_change_the_next_page(env: &Env) {
    let s = &env.server;
    // A title user 3 has not watched and that is not German-only.
    let watched = &env.fixture.watched["3"];
    let fresh: Vec<String> = (1..=60u32)
        .filter(|t| !watched.contains(t) && *t != 7)
        .map(|t| t.to_string())
        .collect();
    let (a, b) = (&fresh[0], &fresh[1]);

    let r = s
        .gql(RECORD, json!({"p": "3", "e": [event("cw-1", a, "PROGRESS", Some(0.4), Some("1998-04-22T10:00:00Z"))]}))
        .await;
    assert_eq!(
        r["data"]["recordEvents"],
        json!({"accepted": 1, "duplicates": 0}),
        "{r}"
    );
    let h = home(s, "3").await;
    let cw =
        row(&h, "continue-watching").expect("Continue Watching appears after a progress event");
    assert_eq!(cw["items"][0]["title"]["id"], a.as_str());
    assert_eq!(
        h["rows"][0]["id"], "continue-watching",
        "Continue Watching is the first row"
    );

    // The most recently watched comes first.
    s.gql(RECORD, json!({"p": "3", "e": [event("cw-2", b, "PROGRESS", Some(0.2), Some("1998-04-22T11:00:00Z"))]}))
        .await;
    let h = home(s, "3").await;
    let cw = row(&h, "continue-watching").unwrap();
    assert_eq!(cw["items"][0]["title"]["id"], b.as_str());
    assert_eq!(cw["items"][1]["title"]["id"], a.as_str());

    // Finishing removes it from Continue Watching and from the page.
    s.gql(
        RECORD,
        json!({"p": "3", "e": [event("cw-3", b, "COMPLETE", None, Some("1998-04-22T12:00:00Z"))]}),
    )
    .await;
    let h = home(s, "3").await;
    assert!(
        !page_titles(&h).contains(b),
        "a completed title is not recommended again"
    );

    // The same client event id is accepted once.
    let r = s
        .gql(
            RECORD,
            json!({"p": "3", "e": [event("cw-1", a, "PROGRESS", Some(0.9), None)]}),
        )
        .await;
    assert_eq!(
        r["data"]["recordEvents"],
        json!({"accepted": 0, "duplicates": 1}),
        "{r}"
    );

    // Thumbs down on something shown removes it everywhere, More Like This included.
    let user = "5";
    let before = home(s, user).await;
    let target = before["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] != "continue-watching")
        .map(|r| r["items"][0]["title"]["id"].as_str().unwrap().to_owned())
        .unwrap();
    let r = s
        .gql(
            RECORD,
            json!({"p": user, "e": [event("td-1", &target, "THUMBS_DOWN", None, None)]}),
        )
        .await;
    assert_eq!(r["data"]["recordEvents"]["accepted"], 1, "{r}");
    let after = home(s, user).await;
    assert!(
        !page_titles(&after).contains(&target),
        "thumbed-down title {target} still shown"
    );
    for anchor in 1..=12 {
        let sim = s
            .gql(
                "query($t: ID!, $p: ID) { similar(titleId: $t, profileId: $p, first: 50) { id } }",
                json!({"t": anchor.to_string(), "p": user}),
            )
            .await;
        if anchor == 7 {
            // Licensed only in Germany: a US profile may not see it, nor ask what is like it.
            assert_eq!(error_code(&sim), Some("FORBIDDEN_TITLE"), "{sim}");
            continue;
        }
        let ids: Vec<&str> = sim["data"]["similar"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert!(
            !ids.contains(&target.as_str()),
            "thumbed-down title in More Like This"
        );
    }
}

async fn check_errors(env: &Env) {
    let s = &env.server;
    let r = s.gql(HOME, json!({"p": "no-such-profile"})).await;
    assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");
    let r = s.gql(HOME, json!({"p": ""})).await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");
    let r = s
        .gql("{ similar(titleId: \"999999\") { id } }", json!({}))
        .await;
    assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");
    let r = s
        .gql("{ search(query: \"toy\", first: 0) { id } }", json!({}))
        .await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");
    let r = s
        .gql("{ browse(after: \"garbage\") { totalCount } }", json!({}))
        .await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");
    let r = s
        .gql(RECORD, json!({"p": "no-such-profile", "e": []}))
        .await;
    assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");

    // One bad event rejects the batch, and the error names it.
    for (bad, expect) in [
        (
            event("bad-1", "1", "PROGRESS", Some(1.5), None),
            "between 0 and 1",
        ),
        (
            event("bad-2", "999999", "PLAY", None, None),
            "unknown title",
        ),
        (event("bad-3", "1", "RATING", Some(9.0), None), "0.5 and 5"),
        (
            event("bad-4", "1", "PLAY", None, Some("last tuesday")),
            "RFC 3339",
        ),
        (event("bad-5", "1", "RATING", None, None), "needs a value"),
    ] {
        let id = bad["clientEventId"].as_str().unwrap().to_owned();
        let r = s
            .gql(
                RECORD,
                json!({"p": "2", "e": [event("good-with-bad", "2", "PLAY", None, None), bad]}),
            )
            .await;
        assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");
        let msg = r["errors"][0]["message"].as_str().unwrap();
        assert!(
            msg.contains("events[1]") && msg.contains(&id) && msg.contains(expect),
            "{msg}"
        );
    }
    // …and nothing of it was stored: the good event is still new.
    let r = s
        .gql(
            RECORD,
            json!({"p": "2", "e": [event("good-with-bad", "2", "PLAY", None, None)]}),
        )
        .await;
    assert_eq!(r["data"]["recordEvents"]["accepted"], 1, "{r}");

    // Not even a malformed request body is a 500.
    assert!(s.post_raw("{not json").await.is_client_error());
    let r = s.gql("{ home { rows { id } } }", json!({})).await;
    assert!(r["errors"].is_array());

    assert!(s.get("/healthz").await.status().is_success());
    assert!(s.get("/readyz").await.status().is_success());
}

async fn check_catalogue_queries(env: &Env) {
    let s = &env.server;
    let r = s
        .gql("{ search(query: \"toy sto\") { id name } }", json!({}))
        .await;
    assert_eq!(r["data"]["search"][0]["name"], "Toy Story");
    let r = s
        .gql(
            "{ title(id: \"1\") { name year genres maturityRating } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r["data"]["title"],
        json!({"name": "Toy Story", "year": 1995, "genres": ["Animation", "Children's", "Comedy"], "maturityRating": "G"})
    );
    let r = s.gql("{ title(id: \"999999\") { name } }", json!({})).await;
    assert!(r["data"]["title"].is_null());

    // Relay pagination walks the whole genre once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let r = s
            .gql(
                "query($a: String) { browse(genre: \"Drama\", first: 4, after: $a) { totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
                json!({"a": after}),
            )
            .await;
        let b = &r["data"]["browse"];
        for e in b["edges"].as_array().unwrap() {
            seen.push(e["node"]["id"].as_str().unwrap().to_owned());
        }
        if !b["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            assert_eq!(seen.len() as u64, b["totalCount"].as_u64().unwrap());
            break;
        }
        after = b["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());

    let r = s
        .gql("{ similar(titleId: \"1\", first: 5) { id } }", json!({}))
        .await;
    assert_eq!(r["data"]["similar"].as_array().unwrap().len(), 5);
    // Title 7 has no interactions: its neighbours are content neighbours, led by the title
    // sharing its director (8), each sharing a genre (Drama Comedy) or a person with it.
    let r = s
        .gql(
            "{ similar(titleId: \"7\", first: 10) { id genres } }",
            json!({}),
        )
        .await;
    let cold = r["data"]["similar"].as_array().unwrap();
    assert_eq!(cold.len(), 10, "{r}");
    assert_eq!(cold[0]["id"], "8", "{r}");
    for t in cold {
        let genres: Vec<&str> = t["genres"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap())
            .collect();
        assert!(
            genres.contains(&"Drama") || genres.contains(&"Comedy"),
            "{t} shares nothing with title 7"
        );
    }
    let r = s
        .gql(
            "{ profile(id: \"8\") { id name isKids country maturityLimit } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["profile"]["country"], "DE");
}

async fn contract(env: Env) {
    check_page_shape(&env).await;
    check_direct_answers(&env).await;
    check_no_duplicates_and_no_watched(&env).await;
    check_kids_and_region(&env).await;
    check_catalogue_queries(&env).await;
    check_errors(&env).await;
    check_events_change_the_next_page(&env).await;
    drop(env.server);
    env.db.drop_db().await;
}

/// Every title field a kids response may carry, in every place a title appears.
const TITLE: &str = "id name genres maturityRating";

fn kids_page_query() -> String {
    format!(
        r#"query($p: ID!) {{ home(profileId: $p) {{ rows {{ id title definition
          anchor {{ {TITLE} }}
          items {{ reason title {{ {TITLE} }} evidence {{ {TITLE} }} }} }} }}
        search(query: "a", first: 100, profileId: $p) {{ {TITLE} }}
        browse(first: 100, profileId: $p) {{ edges {{ node {{ {TITLE} }} }} }}
        similar(titleId: "1", first: 100, profileId: $p) {{ {TITLE} }}
        title(id: "1", profileId: $p) {{ {TITLE} }} }}"#
    )
}

/// Walks all of `value`: every object with a `maturityRating` is a title, and must be one a
/// kids profile may see; no text may name a title it may not.
fn assert_fit_for_kids(value: &Value, forbidden_names: &[&str], context: &str) {
    match value {
        Value::Object(fields) => {
            if let Some(rating) = fields.get("maturityRating") {
                assert!(
                    matches!(rating.as_str(), None | Some("G") | Some("PG")),
                    "{context}: a kids answer names {value}"
                );
                if rating.is_null() {
                    let genres = fields["genres"].to_string();
                    assert!(
                        genres.contains("Children's") || genres.contains("Animation"),
                        "{context}: a kids answer names the unrated {value}"
                    );
                }
            }
            fields
                .values()
                .for_each(|v| assert_fit_for_kids(v, forbidden_names, context));
        }
        Value::Array(values) => values
            .iter()
            .for_each(|v| assert_fit_for_kids(v, forbidden_names, context)),
        Value::String(text) => {
            for name in forbidden_names {
                assert!(!text.contains(name), "{context}: {text:?} names {name}");
            }
        }
        _ => {}
    }
}

/// Issue 9, item 1: a kids profile that has R titles in its history (rated before the policy
/// refused it, or rated under an older catalogue) is never shown them — not as an item, not
/// as the anchor, reason or evidence of "Because You Watched", not by search, browse, More
/// Like This or the title page. And it can no longer record events on them.
async fn kids_never_see_a_title_above_their_limit(env: Env) {
    let s = &env.server;
    let kids = profile_ids(s, Some(true)).await;
    let kid = kids[0].as_str();
    // Pulp Fiction (2) and Heat (4) are R, Showgirls (3) NC-17, Apt Pupil (11) R.
    let forbidden_names = ["Pulp Fiction", "Heat", "Showgirls", "Apt Pupil"];
    let r = s
        .gql(
            RECORD,
            json!({"p": kid, "e": [event("kid-ok", "1", "PLAY", None, None),
                                   event("kid-r", "2", "RATING", Some(5.0), None)]}),
        )
        .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN_TITLE"), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["index"], 1, "{r}");
    // The batch is refused whole: the good event is still new.
    let r = s
        .gql(
            RECORD,
            json!({"p": kid, "e": [event("kid-ok", "1", "PLAY", None, None),
                                   event("kid-ok-2", "1", "RATING", Some(5.0), Some("1998-04-01T00:00:00Z"))]}),
        )
        .await;
    assert_eq!(r["data"]["recordEvents"]["accepted"], 2, "{r}");

    // A database that already holds such a history (written before this check existed).
    let mut conn = env.db.connect().await;
    for (n, title) in ["2", "4", "11", "3"].into_iter().enumerate() {
        let at = 893_200_000_000i64 + n as i64 * 1_000;
        for sql in [
            format!(
                "INSERT INTO events (profile_id, title_id, kind, value, occurred_at, received_at, client_event_id) \
                 VALUES ('{kid}', '{title}', 'RATING', 5.0, {at}, {at}, 'old-{title}')"
            ),
            format!(
                "INSERT INTO watch_state (profile_id, title_id, progress, completed, last_watched_at, rating, rated_at, thumbs) \
                 VALUES ('{kid}', '{title}', 1.0, 1, {at}, 5.0, {at}, 1)"
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }

    let r = s.gql(&kids_page_query(), json!({"p": kid})).await;
    assert!(r["errors"].is_null(), "{r}");
    let byw = r["data"]["home"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["definition"] == "because-you-watched")
        .count();
    assert!(
        byw > 0,
        "the kid's allowed anchor (1) still makes a row: {r}"
    );
    assert_fit_for_kids(&r["data"], &forbidden_names, kid);
    assert!(
        !r["data"]["home"]["rows"].as_array().unwrap().is_empty(),
        "{r}"
    );
    // What a kids profile may not see stays visible to a grown-up one.
    for (field, query) in [
        (
            "title",
            r#"query($p: ID) { title(id: "2", profileId: $p) { id } }"#,
        ),
        (
            "similar",
            r#"query($p: ID) { similar(titleId: "2", profileId: $p) { id } }"#,
        ),
    ] {
        let r = s.gql(query, json!({"p": kid})).await;
        assert_eq!(error_code(&r), Some("FORBIDDEN_TITLE"), "{field}: {r}");
        assert!(!r.to_string().contains("Pulp Fiction"), "{r}");
        let r = s.gql(query, json!({"p": "1"})).await;
        assert!(r["errors"].is_null(), "{field} for an adult: {r}");
    }
    let r = s
        .gql(
            r#"query($p: ID) { search(query: "pulp", profileId: $p) { id } }"#,
            json!({"p": kid}),
        )
        .await;
    assert_eq!(r["data"]["search"], json!([]), "{r}");
    drop(env.server);
    env.db.drop_db().await;
}

/// Issue 9, item 2: a client cannot move the server's clock. An event from the far future
/// (or before 1900) is refused; a database that already holds one (stored before the window
/// was enforced) does not drive the replay clock there on restart.
async fn clients_cannot_move_the_clock(env: Env) {
    let s = &env.server;
    for (at, expect) in [
        ("9999-12-31T23:59:59.999Z", "after the server's clock"),
        ("1998-04-23T00:06:00Z", "after the server's clock"),
        ("1899-12-31T23:59:59Z", "before 1900"),
    ] {
        let r = s
            .gql(
                RECORD,
                json!({"p": "1", "e": [event("future", "1", "PLAY", None, Some(at))]}),
            )
            .await;
        assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{at}: {r}");
        let msg = r["errors"][0]["message"].as_str().unwrap();
        assert!(msg.contains(expect), "{at}: {msg}");
    }
    // A few minutes of client clock drift is fine.
    let r = s
        .gql(RECORD, json!({"p": "1", "e": [event("drift", "1", "PLAY", None, Some("1998-04-23T00:04:00Z"))]}))
        .await;
    assert_eq!(r["data"]["recordEvents"]["accepted"], 1, "{r}");
    let user = "1";
    assert!(
        row(&home(s, user).await, "new-releases").is_some(),
        "the page shows New Releases"
    );

    // What an older version let through.
    let mut conn = env.db.connect().await;
    let far_future = 253_402_300_799_999i64; // 9999-12-31T23:59:59.999Z
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO events (profile_id, title_id, kind, value, occurred_at, received_at, client_event_id) \
         VALUES ('2', '1', 'PLAY', NULL, {far_future}, 0, 'old-future')"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);
    let data = env._dir.path();
    let rows = env._rows.as_ref().unwrap().to_str().unwrap();
    let restarted = Server::start(
        data,
        env.db.url(),
        &["--clock", "last-event", "--rows", rows],
    );
    let h = home(&restarted, user).await;
    let generated = h["generatedAt"].as_str().unwrap();
    assert!(generated.starts_with("1998-04-2"), "now = {generated}");
    assert!(
        row(&h, "new-releases").is_some(),
        "New Releases survives a restart: {h}"
    );
    drop(restarted);
    drop(env.server);
    env.db.drop_db().await;
}

#[tokio::test]
async fn event_times_on_sqlite() {
    clients_cannot_move_the_clock(start_with_rows(TestDb::sqlite, NEW_RELEASES_FIRST).await).await;
}

#[tokio::test]
async fn event_times_on_postgres() {
    let db = TestDb::postgres().await;
    clients_cannot_move_the_clock(start_with_rows(move |_| db, NEW_RELEASES_FIRST).await).await;
}

/// Asserts a `BAD_USER_INPUT` whose message says `expect` and quotes little of the input.
fn assert_refused(r: &Value, expect: &str, context: &str) {
    assert_eq!(error_code(r), Some("BAD_USER_INPUT"), "{context}: {r:.300}");
    let msg = r["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains(expect), "{context}: {msg:.300}");
    assert!(
        msg.chars().count() < 300,
        "{context}: the error echoes the input ({} characters)",
        msg.chars().count()
    );
}

/// Issue 9, item 4: every client string and list is bounded, checked before anything is
/// stored, and errors quote only a short prefix of what came.
#[tokio::test]
async fn client_input_is_bounded() {
    let env = start(TestDb::sqlite).await;
    let s = &env.server;
    let big = "x".repeat(100_000);
    let create =
        "mutation($i: CreateProfileInput!) { createProfile(input: $i) { id name maturityLimit } }";
    let profile = |id: &str, name: &str| json!({"id": id, "name": name});

    // Ids: at most 128 bytes.
    let e = |rid: &str| json!([{"clientEventId": "b-1", "titleId": "1", "kind": "PLAY", "requestId": rid}]);
    let r = s.gql(RECORD, json!({"p": "1", "e": e(&big)})).await;
    assert_refused(&r, "requestId", "a 100 KB requestId");
    let r = s
        .gql(RECORD, json!({"p": "1", "e": e(&"r".repeat(129))}))
        .await;
    assert_refused(&r, "longer than 128 bytes", "a 129-byte requestId");
    let r = s
        .gql(RECORD, json!({"p": "1", "e": e(&"r".repeat(128))}))
        .await;
    assert_eq!(r["data"]["recordEvents"]["accepted"], 1, "{r}");
    let r = s
        .gql(
            RECORD,
            json!({"p": "1", "e": [{"clientEventId": big, "titleId": "1", "kind": "PLAY"}]}),
        )
        .await;
    assert_refused(&r, "clientEventId", "a 100 KB clientEventId");
    let r = s
        .gql(RECORD, json!({"p": "1", "e": [{"clientEventId": "b-2", "titleId": "1", "kind": "PLAY", "occurredAt": big}]}))
        .await;
    assert_refused(&r, "occurredAt", "a 100 KB occurredAt");
    let many: Vec<Value> = (0..501)
        .map(|i| json!({"clientEventId": format!("m-{i}"), "titleId": "1", "kind": "PLAY"}))
        .collect();
    let r = s.gql(RECORD, json!({"p": "1", "e": many})).await;
    assert_refused(&r, "at most 500", "501 events");

    // Names: 1–50 characters (not bytes), no control characters.
    let r = s
        .gql(create, json!({"i": profile("b-nul", "Ann\u{0}ie")}))
        .await;
    assert_refused(&r, "control characters", "a NUL in a name");
    let emoji = "😀".repeat(50);
    let r = s
        .gql(create, json!({"i": profile("b-emoji", &emoji)}))
        .await;
    assert_eq!(r["data"]["createProfile"]["name"], emoji.as_str(), "{r}");
    let r = s
        .gql(create, json!({"i": profile("b-long", &"😀".repeat(51))}))
        .await;
    assert_refused(&r, "at most 50", "a 51-character name");
    let r = s.gql(create, json!({"i": profile("b-big", &big)})).await;
    assert_refused(&r, "at most 50", "a 100 KB name");

    // Lists: at most 20 onboarding genres.
    let genres: Vec<&str> = std::iter::repeat_n("Comedy", 10_000).collect();
    let mut input = profile("b-genres", "G");
    input["onboardingGenres"] = json!(genres);
    let r = s.gql(create, json!({"i": input})).await;
    assert_refused(&r, "at most 20", "10,000 genres");
    input["onboardingGenres"] = json!([big]);
    let r = s.gql(create, json!({"i": input})).await;
    assert_refused(&r, "unknown genre", "a 100 KB genre");

    // A kids profile's limit stays within the kids ratings.
    for (limit, ok) in [
        ("NC_17", false),
        ("PG_13", false),
        ("PG", true),
        ("G", true),
    ] {
        let mut kid = profile(&format!("b-kid-{limit}"), "Kid");
        kid["isKids"] = json!(true);
        kid["maturityLimit"] = json!(limit);
        let r = s.gql(create, json!({"i": kid})).await;
        if ok {
            assert_eq!(r["data"]["createProfile"]["maturityLimit"], limit, "{r}");
        } else {
            assert_refused(&r, "kids profile", limit);
        }
    }

    // Search counts characters: 60 emoji are a short query; 201 characters are not.
    let q = "query($q: String!) { search(query: $q) { id } }";
    let r = s.gql(q, json!({"q": "😀".repeat(60)})).await;
    assert!(r["errors"].is_null(), "{r:.300}");
    let r = s.gql(q, json!({"q": "a".repeat(201)})).await;
    assert_refused(&r, "at most 200", "a 201-character query");

    // Everything else a client sends.
    let r = s
        .gql(
            "query($a: String) { browse(after: $a) { totalCount } }",
            json!({"a": big}),
        )
        .await;
    assert_refused(&r, "after", "a 100 KB cursor");
    let r = s
        .gql(
            "query($g: String) { browse(genre: $g) { totalCount } }",
            json!({"g": big}),
        )
        .await;
    assert_refused(&r, "genre", "a 100 KB genre");
    let r = s
        .gql(
            "query($k: String!) { experimentReport(key: $k) { key } }",
            json!({"k": big}),
        )
        .await;
    assert_refused(&r, "key", "a 100 KB experiment key");
    let h = "query($p: ID!, $pl: String, $a: JSON, $f: [ForcedVariationInput!]) { home(profileId: $p, platform: $pl, attributes: $a, forcedVariations: $f) { requestId } }";
    let r = s.gql(h, json!({"p": "1", "pl": big})).await;
    assert_refused(&r, "platform", "a 100 KB platform");
    let attrs: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("k{i}"), json!(i))).collect();
    let r = s.gql(h, json!({"p": "1", "a": attrs})).await;
    assert_refused(&r, "attributes", "33 attributes");
    let forced: Vec<Value> = (0..17)
        .map(|i| json!({"experimentKey": format!("e{i}"), "variation": 0}))
        .collect();
    let r = s.gql(h, json!({"p": "1", "f": forced})).await;
    assert_refused(&r, "at most 16", "17 forced variations");
    let r = s
        .gql(h, json!({"p": "1", "pl": "tv", "a": {"plan": "basic"}}))
        .await;
    assert!(r["errors"].is_null(), "{r}");

    drop(env.server);
    env.db.drop_db().await;
}

/// Issue 9, item 5: errors that stop a request before any resolver runs carry a code too,
/// and a body that is not a GraphQL request gets a JSON answer.
#[tokio::test]
async fn every_error_has_a_code() {
    let env = start(TestDb::sqlite).await;
    let s = &env.server;
    let code = |v: &Value| {
        v["errors"][0]["extensions"]["code"]
            .as_str()
            .map(str::to_owned)
    };
    let batch: Vec<Value> = (0..11)
        .map(|_| json!({"query": "{ genres { name } }"}))
        .collect();
    let search = "query($f: Int!) { search(query: \"a\", first: $f) { id } }";
    for (body, status, expect) in [
        ("{not json".to_owned(), 400, "BAD_REQUEST"),
        ("42".to_owned(), 400, "BAD_REQUEST"),
        (
            "{\"variables\": {}}".to_owned(),
            200,
            "GRAPHQL_PARSE_FAILED",
        ),
        ("x".repeat(600 * 1024), 413, "PAYLOAD_TOO_LARGE"),
        (json!(batch).to_string(), 400, "BAD_REQUEST"),
        (json!({"query": "{ genres { name }"}).to_string(), 200, "GRAPHQL_PARSE_FAILED"),
        (json!({"query": "{ nope }"}).to_string(), 200, "GRAPHQL_VALIDATION_FAILED"),
        (json!({"query": "{ home { rows { id } } }"}).to_string(), 200, "GRAPHQL_VALIDATION_FAILED"),
        (json!({"query": search, "variables": {"f": "many"}}).to_string(), 200, "BAD_USER_INPUT"),
        (json!({"query": search}).to_string(), 200, "BAD_USER_INPUT"),
        (
            json!({"query": RECORD, "variables": {"p": "1", "e": [{"clientEventId": "c", "titleId": "1", "kind": "NOPE"}]}}).to_string(),
            200,
            "BAD_USER_INPUT",
        ),
        (
            json!({"query": "query A { genres { name } }", "operationName": "Missing"}).to_string(),
            200,
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ] {
        let (got, v) = s.post_raw_json(body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body:.100}: {v}");
        assert_eq!(code(&v).as_deref(), Some(expect), "{body:.100}: {v}");
    }
    // Deeper than the depth limit (12).
    let mut deep = String::from("id");
    for _ in 0..14 {
        deep = format!("accountProfiles {{ {deep} }}");
    }
    let query = format!("{{ profile(id: \"1\") {{ {deep} }} }}");
    let (_, v) = s.post_raw_json(json!({ "query": query }).to_string()).await;
    assert_eq!(
        code(&v).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{v}"
    );
    // A small batch is still served.
    let two = json!([{"query": "{ genres { name } }"}, {"query": "{ title(id: \"1\") { id } }"}]);
    let (status, v) = s.post_raw_json(two.to_string()).await;
    assert!(status.is_success(), "{v}");
    assert_eq!(v[1]["data"]["title"]["id"], "1", "{v}");
    drop(env.server);
    env.db.drop_db().await;
}

/// Because You Watched first, so that a kid's few allowed titles are not all taken by the
/// rows above it.
const ANCHORS_FIRST: &str = r#"
[[row]]
id = "because-you-watched"
title = "Because You Watched"
source = "because-you-watched"
min_items = 1

[[row]]
id = "top-picks"
title = "Top Picks for You"
source = "personalized"
"#;

/// New Releases first, so that what is new at "now" always makes a row.
const NEW_RELEASES_FIRST: &str = r#"
[[row]]
id = "new-releases"
title = "New Releases"
source = "new-releases"
min_items = 1

[[row]]
id = "top-picks"
title = "Top Picks for You"
source = "personalized"
"#;

async fn start_with_rows(db: impl FnOnce(&std::path::Path) -> TestDb, page: &str) -> Env {
    let rows = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(rows.path(), page).unwrap();
    let rows = rows.into_temp_path();
    let mut env = start_with(db, &["--rows", rows.to_str().unwrap()]).await;
    env._rows = Some(rows);
    env
}

#[tokio::test]
async fn kids_safety_on_sqlite() {
    kids_never_see_a_title_above_their_limit(start_with_rows(TestDb::sqlite, ANCHORS_FIRST).await)
        .await;
}

#[tokio::test]
async fn kids_safety_on_postgres() {
    let db = TestDb::postgres().await;
    kids_never_see_a_title_above_their_limit(start_with_rows(move |_| db, ANCHORS_FIRST).await)
        .await;
}

#[tokio::test]
async fn graphql_contract_on_sqlite() {
    contract(start(TestDb::sqlite).await).await;
}

/// Lookups of candidate lists and segment lists on `server`'s `/metrics`
/// (`marquee_cache_lookups_total` but for live trending's one-second near cache, which stays
/// on, and `marquee_segment_lookups_total`).
async fn cache_lookups(server: &Server) -> f64 {
    let text = server.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|l| {
            (l.starts_with("marquee_cache_lookups_total{") && !l.contains("trending-near"))
                || l.starts_with("marquee_segment_lookups_total{")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// With `--list-cache false --segment-cache false` (how the benchmark measures pages computed
/// in full) no cache is asked, and the pages are the ones the caches serve: a second request
/// to the caching server (its lists now cached) and the first to the other name the same
/// titles in the same rows.
#[tokio::test]
async fn pages_without_caches_are_the_pages_with_them() {
    let env = start(TestDb::sqlite).await;
    let uncached = Server::start(
        env._dir.path(),
        env.db.url(),
        &["--list-cache", "false", "--segment-cache", "false"],
    );
    let profiles = profile_ids(&env.server, None).await;
    assert!(profiles.len() >= 4, "{profiles:?}");
    for p in &profiles {
        home(&env.server, p).await;
        let cached = home(&env.server, p).await;
        let computed = home(&uncached, p).await;
        assert_eq!(page_titles(&cached), page_titles(&computed), "profile {p}");
        assert!(!page_titles(&computed).is_empty(), "profile {p}");
    }
    assert!(cache_lookups(&env.server).await > 0.0);
    assert_eq!(cache_lookups(&uncached).await, 0.0);
    drop(uncached);
    drop(env.server);
    env.db.drop_db().await;
}

#[tokio::test]
async fn graphql_contract_on_postgres() {
    let db = TestDb::postgres().await;
    contract(start(move |_| db).await).await;
}

const HOME_WITH_VARIATIONS: &str = r#"query($p: ID!, $f: [ForcedVariationInput!]) {
  home(profileId: $p, forcedVariations: $f, platform: "tv") {
    assignments { featureKey experimentKey variationIndex variationKey inExperiment hashUsed }
    rows { id } } }"#;

fn row_ids(home: &Value) -> Vec<String> {
    home["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The shipped `experiments/` (imported into the empty database at start) drive the page;
/// imports are followed, and broken ones refused.
#[tokio::test]
async fn experiments_shape_the_page_and_reload_safely() {
    let exp_dir = tempfile::tempdir().unwrap();
    for f in ["trending-first.json", "stronger-diversity.json"] {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("experiments")
            .join(f);
        std::fs::copy(src, exp_dir.path().join(f)).unwrap();
    }
    let exp = exp_dir.path().to_str().unwrap().to_owned();
    let env = start_with(TestDb::sqlite, &["--experiments", &exp]).await;
    let s = &env.server;

    let r = s
        .gql(
            "{ experiments { key featureKey variations { key weight } } }",
            json!({}),
        )
        .await;
    let keys: Vec<&str> = r["data"]["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["stronger-diversity", "trending-above-top-picks"]);

    // Previewing each variation of "Trending above Top Picks".
    let preview = |v: i64| json!({"p": "1", "f": [{"experimentKey": "trending-above-top-picks", "variation": v}]});
    let treated = s.gql(HOME_WITH_VARIATIONS, preview(1)).await;
    let home_t = &treated["data"]["home"];
    let ids = row_ids(home_t);
    let pos = |ids: &[String], id: &str| ids.iter().position(|x| x == id).unwrap();
    assert!(pos(&ids, "trending") < pos(&ids, "top-picks"), "{ids:?}");
    let a = home_t["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["experimentKey"] == "trending-above-top-picks")
        .unwrap();
    assert_eq!(a["variationKey"], "trending-first");
    assert_eq!(a["hashUsed"], false);
    let control = s.gql(HOME_WITH_VARIATIONS, preview(0)).await;
    let ids = row_ids(&control["data"]["home"]);
    assert!(pos(&ids, "top-picks") < pos(&ids, "trending"), "{ids:?}");

    // Assignment is deterministic per profile and split across profiles.
    let mut variations = std::collections::HashSet::new();
    for p in 1..=40 {
        let a = s
            .gql(HOME_WITH_VARIATIONS, json!({"p": p.to_string()}))
            .await;
        let b = s
            .gql(HOME_WITH_VARIATIONS, json!({"p": p.to_string()}))
            .await;
        assert_eq!(
            a["data"]["home"]["assignments"],
            b["data"]["home"]["assignments"]
        );
        for asg in a["data"]["home"]["assignments"].as_array().unwrap() {
            assert_eq!(asg["hashUsed"], true);
            variations.insert((
                asg["experimentKey"].as_str().unwrap().to_owned(),
                asg["variationIndex"].as_i64().unwrap(),
            ));
        }
    }
    assert_eq!(
        variations.len(),
        4,
        "both variations of both experiments occur: {variations:?}"
    );

    // Exposures, impressions and attributed plays reach the report.
    let mut plays_sent = 0;
    for p in 1..=40 {
        let h = s.gql("query($p: ID!) { home(profileId: $p) { requestId rows { items { title { id } } } } }", json!({"p": p.to_string()})).await;
        let home = &h["data"]["home"];
        if p % 2 == 0 {
            let title = home["rows"][0]["items"][0]["title"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let e = json!([{"clientEventId": format!("sim-play-{p}"), "titleId": title, "kind": "PLAY", "requestId": home["requestId"]}]);
            let r = s.gql(RECORD, json!({"p": p.to_string(), "e": e})).await;
            assert_eq!(r["data"]["recordEvents"]["accepted"], 1, "{r}");
            plays_sent += 1;
        }
    }
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = s.get("/metrics").await.text().await.unwrap();
        if metrics.contains("marquee_impressions_backlog 0") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        metrics.contains("marquee_impressions_dropped_total 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("marquee_impressions_backlog 0"),
        "{metrics}"
    );
    let r = s
        .gql(
            r#"{ experimentReport(key: "trending-above-top-picks") { srmFlagged excludedProfiles
                 variations { key exposedProfiles impressions plays playRate conversion conversionLift { relative ciLow ciHigh pValue } } } }"#,
            json!({}),
        )
        .await;
    let rep = &r["data"]["experimentReport"];
    let vars = rep["variations"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"));
    let exposed: i64 = vars
        .iter()
        .map(|v| v["exposedProfiles"].as_i64().unwrap())
        .sum();
    let plays: i64 = vars.iter().map(|v| v["plays"].as_i64().unwrap()).sum();
    assert_eq!(exposed, 40, "previews are not exposures: {rep}");
    assert_eq!(plays, plays_sent, "{rep}");
    assert!(
        vars.iter().all(|v| v["impressions"].as_i64().unwrap() > 0),
        "{rep}"
    );
    assert_eq!(rep["srmFlagged"], false);
    assert!(
        vars[1]["conversionLift"]["pValue"].as_f64().is_some(),
        "{rep}"
    );
    let r = s
        .gql(r#"{ experimentReport(key: "nope") { key } }"#, json!({}))
        .await;
    assert_eq!(error_code(&r), Some("NOT_FOUND"));

    // Kids profiles are not targeted by the diversity experiment.
    let kid = profile_ids(s, Some(true)).await.remove(0);
    let k = s.gql(HOME_WITH_VARIATIONS, json!({"p": kid})).await;
    let kid_exps: Vec<&str> = k["data"]["home"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["experimentKey"].as_str().unwrap())
        .collect();
    assert!(!kid_exps.contains(&"stronger-diversity"), "{kid_exps:?}");

    // Edits are revisions in the database, applied with `marquee experiments import`: a valid
    // one is followed within a second, a broken one is refused as a whole and the last good
    // features stay in force; the directory is only the bootstrap.
    let probe = exp_dir.path().join("probe.json");
    let probe_with = |key: &str| {
        format!(
            r#"{{"features": {{"probe": {{"defaultValue": 0, "rules": [{{"key": "{key}", "variations": [0, 1]}}]}}}}}}"#
        )
    };
    let import = |file: &std::path::Path| {
        common::marquee(
            env._dir.path(),
            env.db.url(),
            &["experiments", "import", file.to_str().unwrap()],
        )
    };
    std::fs::write(&probe, probe_with("probe-1")).unwrap();
    assert!(import(&probe).status.success());
    assert_eq!(
        wait_for_experiments(s, |keys| keys.contains(&"probe-1".to_owned())).await,
        vec!["probe-1"],
        "a valid import was not followed (an import replaces every feature)"
    );
    let broken = exp_dir.path().join("broken.json");
    std::fs::write(
        &broken,
        r#"{"features": {"home-rows": {"defaultValue": ["nope"]}, "probe": {"rules": [{"key": "probe-2", "variations": [0, 1]}]}}}"#,
    )
    .unwrap();
    let out = import(&broken);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("features.home-rows.defaultValue[0]"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&broken, "{ \"features\": { \"home-rows\": [").unwrap();
    assert!(!import(&broken).status.success());
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        experiment_keys(s).await,
        vec!["probe-1"],
        "a broken import was not refused"
    );
    // Files changed in the bootstrap directory are not read again.
    std::fs::write(&probe, probe_with("probe-3")).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(experiment_keys(s).await, vec!["probe-1"]);
}

/// The keys of `experiments`, sorted.
async fn experiment_keys(s: &Server) -> Vec<String> {
    let r = s.gql("{ experiments { key } }", json!({})).await;
    let mut keys: Vec<String> = r["data"]["experiments"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys
}

/// The experiment keys once `done` holds for them, or the last ones seen after 5 s.
async fn wait_for_experiments(s: &Server, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut keys = Vec::new();
    for _ in 0..50 {
        keys = experiment_keys(s).await;
        if done(&keys) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    keys
}
