//! API limits, black-box against a real server: query shape limits refuse a document before
//! validation or any resolver runs; rate limits per account and per IP answer 429.

mod common;

use common::{NOW, Server, TestDb, error_code, marquee_ok, write_fixture};
use serde_json::json;

struct Env {
    dir: tempfile::TempDir,
    db: TestDb,
    server: Server,
}

fn start() -> Env {
    start_with(&[])
}

fn start_with(serve_args: &[&str]) -> Env {
    start_with_dir(tempfile::tempdir().unwrap(), serve_args)
}

fn start_with_dir(dir: tempfile::TempDir, serve_args: &[&str]) -> Env {
    let fixture = write_fixture(&dir.path().join("ml"));
    let db = TestDb::sqlite(dir.path());
    let url = db.url().to_owned();
    let ml = fixture.dir.to_str().unwrap().to_owned();
    marquee_ok(dir.path(), &url, &["import", "movielens", &ml]);
    marquee_ok(dir.path(), &url, &["train", "--clock", NOW]);
    let server = Server::start(dir.path(), &url, serve_args);
    Env { dir, db, server }
}

/// Fragments that each spread the previous one `width` times: `width^(levels-1)` fields once
/// expanded. (The parser's own recursion limit allows only a few levels, so the bomb is wide.)
fn fragment_bomb(levels: usize, width: usize) -> String {
    let mut q = String::from("fragment F0 on Query { __typename }\n");
    for i in 1..levels {
        let spreads = format!("...F{} ", i - 1).repeat(width);
        q.push_str(&format!("fragment F{i} on Query {{ {spreads}}}\n"));
    }
    q.push_str(&format!("query {{ ...F{} }}", levels - 1));
    q
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_shape_limits() {
    let env = start();
    let s = &env.server;
    let admin = s.token("ops", "admin");
    let profile = s.fixture_profiles(Some(false)).await.remove(0);

    // The fragment bomb is refused (the server answers at all: it did not expand it).
    let bomb = s
        .gql_with(Some(&admin), &fragment_bomb(7, 20), json!({}))
        .await;
    assert_eq!(
        error_code(&bomb),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{bomb}"
    );
    assert!(bomb["data"].is_null(), "{bomb}");
    let message = bomb["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("fields"), "{message}");
    // A small fragment tree under the limit runs.
    let small = s
        .gql_with(Some(&admin), &fragment_bomb(3, 3), json!({}))
        .await;
    assert!(small["errors"].is_null(), "{small}");
    assert_eq!(small["data"]["__typename"], "Query");

    // 1,000 aliases of `home` are refused before any page is assembled.
    let aliases: String = (0..1000)
        .map(|i| format!("h{i}: home(profileId: $p) {{ requestId }} "))
        .collect();
    let q = format!("query($p: ID!) {{ {aliases} }}");
    let r = s.gql(&q, json!({"p": profile})).await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    assert!(r["data"].is_null(), "{r}");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("aliases")
    );
    // A few aliases still work.
    let r = s
        .gql(
            "query($p: ID!) { a: home(profileId: $p) { requestId } b: home(profileId: $p) { requestId } }",
            json!({"p": profile}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(r["data"]["a"]["requestId"].is_string(), "{r}");

    // List fields cost their items' selection once per item `first` allows: 20 searches of
    // 100 titles with 6 fields each are over the budget of 10,000, though small as text.
    let searches: String = (0..20)
        .map(|i| format!("s{i}: search(query: \"a\", first: 100) {{ id name year genres maturityRating posterUrl }} "))
        .collect();
    let r = s
        .gql_with(Some(&admin), &format!("{{ {searches} }}"), json!({}))
        .await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    assert!(r["data"].is_null(), "{r}");
    // The same with a variable `first`, and one search of 100 titles still runs.
    let r = s
        .gql_with(
            Some(&admin),
            &format!(
                "query($n: Int!) {{ {} }}",
                searches.replace("first: 100", "first: $n")
            ),
            json!({"n": 100}),
        )
        .await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    let r = s
        .gql_with(
            Some(&admin),
            "{ search(query: \"a\", first: 100) { id name year genres maturityRating posterUrl } }",
            json!({}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
}

/// POSTs a small query; the status, `Retry-After`, and the body.
async fn post(s: &Server, token: Option<&str>) -> (u16, Option<String>, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/graphql", s.url))
        .json(&json!({"query": "{ __typename }"}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_per_account_and_ip() {
    // 1 request/s per account (bursts of 10), 3/s per IP (bursts of 30).
    let env = start_with(&["--rate-limit-account", "1", "--rate-limit-ip", "3"]);
    let s = &env.server;
    let a = s.token("1", "viewer");
    let b = s.token("2", "viewer");

    let mut refused = None;
    for i in 0..20 {
        let (status, retry, body) = post(s, Some(&a)).await;
        if status == 429 {
            refused = Some((i, retry, body));
            break;
        }
        assert_eq!(status, 200, "{body}");
    }
    let (i, retry, body) = refused.expect("account 1 was never limited");
    assert!((10..=13).contains(&i), "limited after {i} requests");
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&secs), "Retry-After: {secs}");
    assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
    // Another account from the same IP is not limited by account 1's flood.
    let (status, _, body) = post(s, Some(&b)).await;
    assert_eq!(status, 200, "{body}");

    // Anonymous requests share the IP's budget, which the flood above has mostly spent.
    let mut limited = false;
    for _ in 0..40 {
        let (status, retry, body) = post(s, None).await;
        if status == 429 {
            assert!(retry.is_some());
            assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
            limited = true;
            break;
        }
    }
    assert!(limited, "the IP was never limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out() {
    // The profile is looked up on a server without the limit: at 1 ms even that
    // small query may time out (it did on a loaded CI machine).
    let env = start();
    let profile = env.server.fixture_profiles(Some(false)).await.remove(0);
    // 1 ms: a batch of 500 events written to SQLite always takes longer.
    let slow = Server::start(env.dir.path(), env.db.url(), &["--request-timeout-ms", "1"]);
    let s = &slow;
    let events: Vec<_> = (0..500)
        .map(|i| json!({"clientEventId": format!("t-{i}"), "titleId": "1", "kind": "PLAY"}))
        .collect();
    let token = s.token(common::owner_of(&profile), "viewer");
    let resp = reqwest::Client::new()
        .post(format!("{}/graphql", s.url))
        .bearer_auth(token)
        .json(&json!({
            "query": "mutation($p: ID!, $e: [EventInput!]!) { recordEvents(profileId: $p, events: $e) { accepted } }",
            "variables": {"p": profile, "e": events},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), Some("TIMEOUT"), "{body}");
}

const INTROSPECTION: &str = "{ __schema { queryType { name } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_mode_hides_the_schema_unless_configured() {
    // Development mode (the tests' default): GraphiQL and introspection.
    let dev = start();
    let s = &dev.server;
    assert_eq!(s.get("/graphql").await.status().as_u16(), 200);
    let r = s.gql_with(None, INTROSPECTION, json!({})).await;
    assert_eq!(r["data"]["__schema"]["queryType"]["name"], "Query", "{r}");
    drop(dev);

    // Production mode (signing in through the development issuer, configured on purpose).
    let prod_with = |extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("marquee.toml");
        std::fs::write(&config, "[auth]\ndev_issuer = true\n").unwrap();
        let config = config.to_str().unwrap().to_owned();
        let mut args = vec!["--mode", "production", "--config", &config];
        args.extend_from_slice(extra);
        start_with_dir(dir, &args)
    };
    let prod = prod_with(&[]);
    let s = &prod.server;
    let admin = s.token("ops", "admin");
    assert_ne!(
        s.get("/graphql").await.status().as_u16(),
        200,
        "GraphiQL is off"
    );
    let r = s.gql_with(Some(&admin), INTROSPECTION, json!({})).await;
    // async-graphql answers a disabled introspection field with null.
    assert!(r["data"]["__schema"].is_null(), "{r}");
    // Queries still work.
    let r = s
        .gql_with(Some(&admin), "{ genres { name } }", json!({}))
        .await;
    assert!(r["errors"].is_null(), "{r}");
    drop(prod);

    let prod = prod_with(&["--introspection", "true"]);
    let s = &prod.server;
    assert_eq!(s.get("/graphql").await.status().as_u16(), 200);
    let r = s.gql_with(None, INTROSPECTION, json!({})).await;
    assert_eq!(r["data"]["__schema"]["queryType"]["name"], "Query", "{r}");
}

/// A home page costs its assembly plus rows × items × the fields selected, so the count is
/// pages × rows × items: a few aliased pages, or a page asking for 100 items per row with a
/// wide selection, are refused before any page is built; the web UI's page runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_cost_counts_pages_rows_and_items() {
    let env = start();
    let s = &env.server;
    let profile = s.fixture_profiles(Some(false)).await.remove(0);
    // What the web UI asks for (web/api.js).
    let ui = "rows { id title definition items { position reason progress { fraction } \
              title { id name year genres maturityRating posterUrl overview } evidence { id name } } }";
    let r = s
        .gql(
            &format!("query($p: ID!) {{ home(profileId: $p) {{ requestId {ui} }} }}"),
            json!({"p": profile}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(
        !r["data"]["home"]["rows"].as_array().unwrap().is_empty(),
        "{r}"
    );

    // Twelve pages in one request (well under the alias limit of 50).
    let pages: String = (0..12)
        .map(|i| format!("h{i}: home(profileId: $p) {{ requestId }} "))
        .collect();
    let r = s
        .gql(
            &format!("query($p: ID!) {{ {pages} }}"),
            json!({"p": profile}),
        )
        .await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("complex"),
        "{r}"
    );
    // Two pages are fine.
    let r = s
        .gql(
            "query($p: ID!) { a: home(profileId: $p) { requestId } b: home(profileId: $p) { requestId } }",
            json!({"p": profile}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");

    // One page, 100 items per row, the UI's selection: rows × items × fields is too much.
    let wide = ui.replace("items {", "items(first: 100) {");
    let r = s
        .gql(
            &format!("query($p: ID!) {{ home(profileId: $p) {{ {wide} }} }}"),
            json!({"p": profile}),
        )
        .await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    // The same through a variable.
    let r = s
        .gql(
            &format!(
                "query($p: ID!, $n: Int) {{ home(profileId: $p) {{ {} }} }}",
                ui.replace("items {", "items(first: $n) {")
            ),
            json!({"p": profile, "n": 100}),
        )
        .await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    // `first` cuts a row.
    let r = s
        .gql(
            "query($p: ID!) { home(profileId: $p) { rows { items(first: 2) { position } } } }",
            json!({"p": profile}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    for row in r["data"]["home"]["rows"].as_array().unwrap() {
        assert!(row["items"].as_array().unwrap().len() <= 2, "{r}");
    }
    let r = s
        .gql(
            "query($p: ID!) { home(profileId: $p) { rows { items(first: 0) { position } } } }",
            json!({"p": profile}),
        )
        .await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");
}
