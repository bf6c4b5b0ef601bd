//! Black-box probes of identity, ownership and roles against a real server.
//!
//! Token validation runs against an issuer the test controls (a small OpenID Connect issuer on
//! loopback: discovery + JWKS, keys it can rotate), configured as the server's production
//! issuer — the same path as any external provider. Browser sessions (sign-in, profile
//! selection, the kids lock, sign-out) run against the development issuer in development
//! mode, driven over plain HTTP.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{NOW, Server, TestDb, error_code, marquee_ok, write_fixture};
use marquee::auth::{DevIssuer, Role};
use serde_json::{Value, json};

/// A minimal OpenID Connect issuer: discovery and JWKS, keys swappable while it runs.
struct TestIssuer {
    url: String,
    keys: Arc<RwLock<DevIssuer>>,
}

impl TestIssuer {
    async fn start() -> TestIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let keys = Arc::new(RwLock::new(DevIssuer::generate().unwrap()));
        let (k, u) = (keys.clone(), url.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let u = u.clone();
                    async move {
                        axum::Json(json!({"issuer": u, "jwks_uri": format!("{u}/jwks"),
                            "authorization_endpoint": format!("{u}/authorize"),
                            "token_endpoint": format!("{u}/token")}))
                    }
                }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || {
                    let k = k.clone();
                    async move { axum::Json(k.read().unwrap().jwks()) }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestIssuer { url, keys }
    }

    fn claims(&self, account: &str, roles: &[&str]) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        json!({"iss": self.url, "aud": "marquee", "sub": account, "iat": now, "nbf": now,
               "exp": now + 600, "roles": roles})
    }

    fn sign(&self, claims: &Value) -> String {
        self.keys.read().unwrap().sign(claims).unwrap()
    }

    fn token(&self, account: &str, roles: &[&str]) -> String {
        self.sign(&self.claims(account, roles))
    }
}

struct Env {
    _dir: tempfile::TempDir,
    server: Server,
    issuer: TestIssuer,
}

async fn start() -> Env {
    let issuer = TestIssuer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let fixture = write_fixture(&dir.path().join("ml"));
    let db = TestDb::sqlite(dir.path());
    let url = db.url().to_owned();
    let ml = fixture.dir.to_str().unwrap().to_owned();
    marquee_ok(
        dir.path(),
        &url,
        &["import", "movielens", &ml, "--kids-every", "3"],
    );
    marquee_ok(dir.path(), &url, &["train", "--clock", NOW]);
    let config = dir.path().join("marquee.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nissuer = \"{}\"\njwks_refetch_seconds = 1\nleeway_seconds = 5\n",
            issuer.url
        ),
    )
    .unwrap();
    let server = Server::start(
        dir.path(),
        &url,
        // Introspection (off by default in production) walks the schema below.
        &[
            "--mode",
            "production",
            "--config",
            config.to_str().unwrap(),
            "--introspection",
            "true",
        ],
    );
    Env {
        _dir: dir,
        server,
        issuer,
    }
}

/// POSTs with a bearer token; returns (HTTP status, body).
async fn call(s: &Server, token: Option<&str>, query: &str, vars: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/graphql", s.url))
        .json(&json!({"query": query, "variables": vars}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    assert!(status < 500 || status == 503, "HTTP {status}");
    (status, resp.json().await.unwrap_or(Value::Null))
}

const HOME: &str = "query($p: ID!) { home(profileId: $p) { requestId rows { id } } }";

async fn home_status(env: &Env, token: &str) -> (u16, Option<String>) {
    let (status, body) = call(&env.server, Some(token), HOME, json!({"p": "1"})).await;
    (status, error_code(&body).map(str::to_owned))
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn tokens_are_validated_like_a_careful_resource_server() {
    let env = start().await;
    let good = env.issuer.token("1", &[]);
    assert_eq!(
        home_status(&env, &good).await,
        (200, None),
        "a valid token works"
    );

    let refused = |what: &'static str| {
        move |(status, code): (u16, Option<String>)| {
            assert_eq!(status, 401, "{what}: HTTP {status}");
            assert_eq!(code.as_deref(), Some("UNAUTHENTICATED"), "{what}");
        }
    };

    // Forged signature: the payload changed to another account, the signature kept.
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims = env.issuer.claims("2", &["admin"]);
    claims["sub"] = json!("1");
    let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    refused("forged signature")(home_status(&env, &forged).await);

    let now = env.issuer.claims("1", &[])["iat"].as_i64().unwrap();
    let mut c = env.issuer.claims("1", &[]);
    c["exp"] = json!(now - 3600);
    refused("expired")(home_status(&env, &env.issuer.sign(&c)).await);
    let mut c = env.issuer.claims("1", &[]);
    c["nbf"] = json!(now + 3600);
    refused("not yet valid")(home_status(&env, &env.issuer.sign(&c)).await);
    let mut c = env.issuer.claims("1", &[]);
    c["iss"] = json!("http://127.0.0.1:1/other");
    refused("wrong issuer")(home_status(&env, &env.issuer.sign(&c)).await);
    let mut c = env.issuer.claims("1", &[]);
    c["aud"] = json!("someone-else");
    refused("wrong audience")(home_status(&env, &env.issuer.sign(&c)).await);
    let mut c = env.issuer.claims("1", &[]);
    c.as_object_mut().unwrap().remove("exp");
    refused("no expiry")(home_status(&env, &env.issuer.sign(&c)).await);

    // A small clock skew is tolerated.
    let mut c = env.issuer.claims("1", &[]);
    c["nbf"] = json!(now + 2);
    assert_eq!(
        home_status(&env, &env.issuer.sign(&c)).await,
        (200, None),
        "leeway"
    );

    let kid = env.issuer.keys.read().unwrap().kid().to_owned();
    let payload = b64(&env.issuer.claims("1", &["admin"]));
    // alg: none, no signature.
    let none = format!(
        "{}.{payload}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid}))
    );
    refused("alg none")(home_status(&env, &none).await);

    // HS256 "signed" with the public key (the JWKS's modulus, and its JSON), the classic
    // algorithm confusion.
    let jwks = env.issuer.keys.read().unwrap().jwks();
    for secret in [
        jwks["keys"][0]["n"].as_str().unwrap().as_bytes().to_vec(),
        serde_json::to_vec(&jwks["keys"][0]).unwrap(),
    ] {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(kid.clone());
        let t = jsonwebtoken::encode(
            &h,
            &env.issuer.claims("1", &["admin"]),
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        refused("HS256 with the public key")(home_status(&env, &t).await);
    }

    // A key the issuer never published.
    let stranger = DevIssuer::generate().unwrap();
    refused("unknown kid")(
        home_status(&env, &stranger.sign(&env.issuer.claims("1", &[])).unwrap()).await,
    );
    refused("garbage")(home_status(&env, "not.a.token").await);
    let (status, body) = call(&env.server, None, HOME, json!({"p": "1"})).await;
    assert_eq!(
        (status, error_code(&body)),
        (200, Some("UNAUTHENTICATED")),
        "anonymous: {body}"
    );

    // Key rotation: the issuer signs with a new key; the server picks it up from the JWKS on
    // the first unknown kid (rate-limited: at most once a second here), without a restart.
    env.issuer.keys.write().unwrap().rotate().unwrap();
    let rotated = env.issuer.token("1", &[]);
    let mut accepted = false;
    for _ in 0..30 {
        if home_status(&env, &rotated).await == (200, None) {
            accepted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(accepted, "a token of the rotated key was never accepted");
    assert_eq!(
        home_status(&env, &good).await,
        (200, None),
        "old key still published"
    );
}

/// Every profile-scoped field, asked by another account, answers exactly as for a profile
/// that does not exist.
#[tokio::test]
async fn another_accounts_profile_is_indistinguishable_from_a_missing_one() {
    let env = start().await;
    let s = &env.server;
    let owner = env.issuer.token("1", &[]);
    let other = env.issuer.token("2", &["pm"]);
    let probes: &[(&str, &str, Value)] = &[
        ("home", HOME, json!({})),
        (
            "search",
            "query($p: ID!) { search(query: \"a\", profileId: $p) { id } }",
            json!({}),
        ),
        (
            "browse",
            "query($p: ID!) { browse(profileId: $p) { totalCount } }",
            json!({}),
        ),
        (
            "similar",
            "query($p: ID!) { similar(titleId: \"1\", profileId: $p) { id } }",
            json!({}),
        ),
        (
            "viewerState",
            "query($p: ID!) { viewerState(profileId: $p, titleId: \"1\") { progress } }",
            json!({}),
        ),
        (
            "recordEvents",
            "mutation($p: ID!) { recordEvents(profileId: $p, events: [{clientEventId: \"x\", titleId: \"1\", kind: PLAY}]) { accepted } }",
            json!({}),
        ),
        (
            "renameProfile",
            "mutation($p: ID!) { renameProfile(profileId: $p, name: \"Mine now\") { id } }",
            json!({}),
        ),
        (
            "removeProfile",
            "mutation($p: ID!) { removeProfile(profileId: $p) }",
            json!({}),
        ),
    ];
    for (field, query, _) in probes {
        let (_, stolen) = call(s, Some(&other), query, json!({"p": "1"})).await;
        let (_, missing) = call(s, Some(&other), query, json!({"p": "nobody"})).await;
        assert_eq!(error_code(&stolen), Some("NOT_FOUND"), "{field}: {stolen}");
        assert_eq!(
            stolen["errors"][0]["message"]
                .as_str()
                .unwrap()
                .replace("1", "X"),
            missing["errors"][0]["message"]
                .as_str()
                .unwrap()
                .replace("nobody", "X"),
            "{field}: another account's profile must read like a missing one"
        );
        assert!(
            stolen["data"].is_null() || stolen["data"][field].is_null(),
            "{field}: {stolen}"
        );
    }
    // `profile` answers null for both.
    let q = "query($p: ID!) { profile(id: $p) { id name } }";
    let (_, stolen) = call(s, Some(&other), q, json!({"p": "1"})).await;
    let (_, missing) = call(s, Some(&other), q, json!({"p": "nobody"})).await;
    assert_eq!(stolen["data"]["profile"], Value::Null);
    assert_eq!(stolen, missing);

    // Nothing was changed by the probes: the owner still has its profile, name and no event.
    let (_, mine) = call(s, Some(&owner), q, json!({"p": "1"})).await;
    assert_eq!(mine["data"]["profile"]["id"], "1", "{mine}");
    assert_ne!(mine["data"]["profile"]["name"], "Mine now");
    // The stolen recordEvents stored nothing: the owner's event with the same client id is new.
    let (_, r) = call(
        s,
        Some(&owner),
        "mutation { recordEvents(profileId: \"1\", events: [{clientEventId: \"x\", titleId: \"1\", kind: PLAY}]) { accepted duplicates } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r["data"]["recordEvents"],
        json!({"accepted": 1, "duplicates": 0}),
        "{r}"
    );

    // The picker lists only the caller's profiles, whatever it asks for.
    let (_, list) = call(
        s,
        Some(&other),
        "{ profiles(first: 100) { id accountId } }",
        json!({}),
    )
    .await;
    let ids: Vec<&str> = list["data"]["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["accountId"], "2");
            p["id"].as_str().unwrap()
        })
        .collect();
    assert!(ids.contains(&"2") && !ids.contains(&"1"), "{list}");

    // createProfile puts the profile on the caller's account; an accountId in the input is
    // not even part of the schema.
    let create = "mutation($i: CreateProfileInput!) { createProfile(input: $i) { id accountId isKids maturityLimit } }";
    let (_, r) = call(
        s,
        Some(&other),
        create,
        json!({"i": {"id": "two-b", "name": "B", "accountId": "1"}}),
    )
    .await;
    assert!(r["errors"].is_array(), "accountId must be refused: {r}");
    let (_, r) = call(
        s,
        Some(&other),
        create,
        json!({"i": {"id": "two-b", "name": "B"}}),
    )
    .await;
    assert_eq!(r["data"]["createProfile"]["accountId"], "2", "{r}");
    let (_, r) = call(
        s,
        Some(&other),
        create,
        json!({"i": {"id": "two-kid", "name": "K", "isKids": true, "maturityLimit": "R"}}),
    )
    .await;
    assert_eq!(
        error_code(&r),
        Some("BAD_USER_INPUT"),
        "kids above PG-13: {r}"
    );
    // Rename and remove work on one's own profile, and a removed profile is gone.
    let (_, r) = call(
        s,
        Some(&other),
        "mutation { renameProfile(profileId: \"two-b\", name: \"Bee\") { name } }",
        json!({}),
    )
    .await;
    assert_eq!(r["data"]["renameProfile"]["name"], "Bee", "{r}");
    let (_, r) = call(
        s,
        Some(&other),
        "mutation { removeProfile(profileId: \"two-b\") }",
        json!({}),
    )
    .await;
    assert_eq!(r["data"]["removeProfile"], "two-b", "{r}");
    let (_, r) = call(s, Some(&other), HOME, json!({"p": "two-b"})).await;
    assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");
}

/// (field, an operation that calls it) for every root field; `matrix` checks each for every
/// role, and the schema walk checks the list is complete.
const OPERATIONS: &[(&str, &str)] = &[
    ("home", "{ home(profileId: \"1\") { requestId } }"),
    (
        "previewHome",
        "{ previewHome(profileId: \"2\") { requestId } }",
    ),
    ("me", "{ me { accountId roles } }"),
    ("profiles", "{ profiles { id } }"),
    ("profile", "{ profile(id: \"1\") { id } }"),
    (
        "viewerState",
        "{ viewerState(profileId: \"1\", titleId: \"1\") { progress } }",
    ),
    ("title", "{ title(id: \"1\") { id } }"),
    ("search", "{ search(query: \"toy\") { id } }"),
    ("browse", "{ browse { totalCount } }"),
    ("genres", "{ genres { name } }"),
    ("similar", "{ similar(titleId: \"1\") { id } }"),
    ("experiments", "{ experiments { key } }"),
    (
        "experimentReport",
        "{ experimentReport(key: \"none\") { key } }",
    ),
    (
        "experimentPlan",
        "{ experimentPlan(key: \"none\", mde: 0.1) { mde } }",
    ),
    (
        "experimentHistory",
        "{ experimentHistory(key: \"none\") { revision } }",
    ),
    ("features", "{ features { key } }"),
    (
        "validateFeature",
        "{ validateFeature(key: \"f\", definition: {}) { path } }",
    ),
    ("previewAudit", "{ previewAudit { profileId } }"),
    ("models", "{ models { version } }"),
    (
        "createProfile",
        "mutation { createProfile(input: {id: \"m-new\", name: \"N\"}) { id } }",
    ),
    (
        "renameProfile",
        "mutation { renameProfile(profileId: \"1\", name: \"One\") { id } }",
    ),
    (
        "removeProfile",
        "mutation { removeProfile(profileId: \"nobody\") }",
    ),
    (
        "selectProfile",
        "mutation { selectProfile(profileId: \"1\") { id } }",
    ),
    (
        "recordEvents",
        "mutation { recordEvents(profileId: \"1\", events: []) { accepted } }",
    ),
    (
        "activateModel",
        "mutation { activateModel(version: \"none\") }",
    ),
    ("rollbackModel", "mutation { rollbackModel }"),
    ("adminJob", "{ adminJob { id } }"),
    ("trainModel", "mutation { trainModel { id } }"),
    (
        "importMovieLens",
        "mutation { importMovieLens(directory: \"/nonexistent\") { id } }",
    ),
    (
        "saveFeature",
        "mutation { saveFeature(key: \"auth-probe\", definition: {defaultValue: 1}) { revision } }",
    ),
    (
        "launchExperiment",
        "mutation { launchExperiment(key: \"none\") { key } }",
    ),
    (
        "stopExperiment",
        "mutation { stopExperiment(key: \"none\") { key } }",
    ),
    (
        "startExperimentPhase",
        "mutation { startExperimentPhase(key: \"none\") { key } }",
    ),
    (
        "chooseWinner",
        "mutation { chooseWinner(key: \"none\", variation: 1) { key } }",
    ),
];

#[tokio::test]
async fn every_field_declares_who_may_call_it_and_roles_are_enforced() {
    let env = start().await;
    let s = &env.server;
    // The schema, walked by introspection: every root field has a rule and an operation here.
    let admin = env.issuer.token("1", &["admin"]);
    let (_, schema) = call(
        s,
        Some(&admin),
        "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }",
        json!({}),
    )
    .await;
    let mut fields = vec![];
    for (ty, key) in [("Query", "queryType"), ("Mutation", "mutationType")] {
        for f in schema["data"]["__schema"][key]["fields"]
            .as_array()
            .unwrap()
        {
            fields.push((ty, f["name"].as_str().unwrap().to_owned()));
        }
    }
    assert!(fields.len() > 15, "{schema}");
    for (ty, name) in &fields {
        assert!(
            marquee::api::ACCESS_RULES
                .iter()
                .any(|(t, f, _)| t == ty && f == name),
            "{ty}.{name} has no access rule in src/api/graphql/access.rs"
        );
        assert!(
            OPERATIONS.iter().any(|(f, _)| f == name),
            "{ty}.{name} is missing from this test's role × operation matrix"
        );
    }
    assert_eq!(
        marquee::api::ACCESS_RULES.len(),
        fields.len(),
        "a rule names a field the schema does not have"
    );

    // The matrix: anonymous, viewer, pm, admin × every operation.
    let callers: [(&str, Option<String>, Option<Role>); 4] = [
        ("anonymous", None, None),
        (
            "viewer",
            Some(env.issuer.token("1", &[])),
            Some(Role::Viewer),
        ),
        ("pm", Some(env.issuer.token("1", &["pm"])), Some(Role::Pm)),
        (
            "admin",
            Some(env.issuer.token("1", &["admin"])),
            Some(Role::Admin),
        ),
    ];
    for (field, op) in OPERATIONS {
        let (_, _, rule) = marquee::api::ACCESS_RULES
            .iter()
            .find(|(_, f, _)| f == field)
            .unwrap();
        for (who, token, role) in &callers {
            let (_, r) = call(s, token.as_deref(), op, json!({})).await;
            let code = error_code(&r);
            let allowed = match (rule, role) {
                (marquee::api::Access::Public, _) => true,
                (_, None) => false,
                (marquee::api::Access::Viewer, Some(_)) => true,
                (marquee::api::Access::Pm, Some(r)) => *r >= Role::Pm,
                (marquee::api::Access::Admin, Some(r)) => *r == Role::Admin,
            };
            if allowed {
                assert!(
                    !matches!(code, Some("UNAUTHENTICATED" | "FORBIDDEN")),
                    "{who} may call {field}: {r}"
                );
            } else {
                let expected = if role.is_none() {
                    "UNAUTHENTICATED"
                } else {
                    "FORBIDDEN"
                };
                assert_eq!(code, Some(expected), "{who} must not call {field}: {r}");
            }
        }
    }

    // Role escalation through arguments: a viewer cannot force variations, and a role the
    // configuration does not know grants nothing.
    let viewer = env.issuer.token("1", &["superuser", "root"]);
    let (_, r) = call(
        s,
        Some(&viewer),
        "{ home(profileId: \"1\", forcedVariations: [{experimentKey: \"x\", variation: 1}]) { requestId } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    let (_, r) = call(s, Some(&viewer), "{ models { version } }", json!({})).await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");

    // A PM's preview of another profile is served and audited: who, whom, when.
    let pm = env.issuer.token("3", &["pm"]);
    let (_, r) = call(
        s,
        Some(&pm),
        "{ previewHome(profileId: \"2\") { requestId } }",
        json!({}),
    )
    .await;
    let request_id = r["data"]["previewHome"]["requestId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, audit) = call(
        s,
        Some(&admin),
        "{ previewAudit(first: 5) { previewedAt viewerAccountId profileId requestId } }",
        json!({}),
    )
    .await;
    let entry = &audit["data"]["previewAudit"][0];
    assert_eq!(entry["viewerAccountId"], "3", "{audit}");
    assert_eq!(entry["profileId"], "2");
    assert_eq!(entry["requestId"], request_id.as_str());
    // The real time of the preview, not the server's replayed "now" (1998).
    assert!(entry["previewedAt"].as_str().unwrap() > "2020", "{entry}");
}

/// The browser login against the development issuer, over plain HTTP: sign in, pick a
/// profile, the kids lock, sign out.
#[tokio::test]
async fn browser_sessions_select_profiles_and_kids_sessions_are_locked() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let url = db.url().to_owned();
    let fixture = write_fixture(&dir.path().join("ml"));
    let ml = fixture.dir.to_str().unwrap().to_owned();
    marquee_ok(
        dir.path(),
        &url,
        &["import", "movielens", &ml, "--kids-every", "3"],
    );
    marquee_ok(dir.path(), &url, &["train", "--clock", NOW]);
    let server = Server::start(dir.path(), &url, &[]);
    // The account that owns a kids profile.
    let kid = server.fixture_profiles(Some(true)).await.remove(0);
    let account = common::owner_of(&kid).to_owned();

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let location = |r: &reqwest::Response| {
        r.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned()
    };
    // /auth/login → the development issuer's sign-in page, with PKCE.
    let r = http
        .get(format!("{}/auth/login", server.url))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    // The sign-in in progress lives in the browser (any replica can finish it).
    let login_cookie = r.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        login_cookie.contains("HttpOnly") && login_cookie.contains("Path=/auth/callback"),
        "{login_cookie}"
    );
    let login_cookie = login_cookie.split(';').next().unwrap().to_owned();
    let authorize = reqwest::Url::parse(&location(&r)).unwrap();
    let params: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(params["code_challenge_method"], "S256");
    let page = http
        .get(authorize.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Product manager") && page.contains("Admin"),
        "{page}"
    );
    // Choosing an account posts the form; the issuer redirects to the callback with a code.
    let mut form = params.clone();
    form.insert("account".into(), account.clone());
    form.insert("role".into(), "viewer".into());
    let r = http
        .post(authorize.as_str().split('?').next().unwrap())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form_body(&form))
        .send()
        .await
        .unwrap();
    let callback = location(&r);
    assert!(callback.contains("/auth/callback?code="), "{callback}");
    // Another browser (no sign-in cookie: a login CSRF) cannot finish the sign-in.
    let r = http.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400, "a callback without its browser's sign-in");
    let forged = login_cookie.replacen('=', "=x", 1);
    let r = http
        .get(&callback)
        .header(reqwest::header::COOKIE, &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a callback with another sign-in's state");
    // A replayed code with another verifier is refused by the token endpoint, so only the
    // callback (which holds the verifier) can redeem it.
    let r = http
        .get(&callback)
        .header(reqwest::header::COOKIE, &login_cookie)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let cookie = r.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("eyJ"), "no token in the cookie: {cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    let r = http
        .get(&callback)
        .header(reqwest::header::COOKIE, &login_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a callback cannot be replayed");

    let gql = |q: &'static str| {
        let (http, url, session) = (http.clone(), server.url.clone(), session.clone());
        async move {
            // A browser names the page's origin; the CSRF check needs it with the cookie.
            http.post(format!("{url}/graphql"))
                .header(reqwest::header::COOKIE, session)
                .header(reqwest::header::ORIGIN, &url)
                .json(&json!({"query": q}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let me = gql("{ me { accountId roles selectedProfileId kidsLocked } }").await;
    assert_eq!(me["data"]["me"]["accountId"], account.as_str(), "{me}");
    assert_eq!(me["data"]["me"]["roles"], json!(["viewer"]));
    // Selecting the grown-up profile, then the kids one: the session is now locked.
    let select_main = format!("mutation {{ selectProfile(profileId: \"{account}\") {{ id }} }}");
    let select_kid = format!("mutation {{ selectProfile(profileId: \"{kid}\") {{ id }} }}");
    let post = |q: String| {
        let (http, url, session) = (http.clone(), server.url.clone(), session.clone());
        async move {
            // A browser names the page's origin; the CSRF check needs it with the cookie.
            http.post(format!("{url}/graphql"))
                .header(reqwest::header::COOKIE, session)
                .header(reqwest::header::ORIGIN, &url)
                .json(&json!({"query": q}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let r = post(select_main.clone()).await;
    assert_eq!(r["data"]["selectProfile"]["id"], account.as_str(), "{r}");
    let r = post(select_kid).await;
    assert_eq!(r["data"]["selectProfile"]["id"], kid.as_str(), "{r}");
    let me = gql("{ me { selectedProfileId kidsLocked } }").await;
    assert_eq!(me["data"]["me"]["kidsLocked"], true, "{me}");
    let r = post(select_main).await;
    assert_eq!(
        error_code(&r),
        Some("FORBIDDEN"),
        "a kids session cannot leave: {r}"
    );
    let r = post(format!(
        "{{ home(profileId: \"{account}\") {{ requestId }} }}"
    ))
    .await;
    assert_eq!(
        error_code(&r),
        Some("NOT_FOUND"),
        "nor read the grown-up page: {r}"
    );
    let r = gql("{ profiles { id } }").await;
    assert_eq!(r["data"]["profiles"], json!([{"id": kid}]), "{r}");
    // Leaving out profileId does not leave the kids rules behind: the locked session's
    // catalogue queries are answered under its profile's policy, where an anonymous caller
    // sees the R and NC-17 titles of the fixture.
    let adult = |r: &Value, field: &str| -> Vec<String> {
        let list = match field {
            "browse" => r["data"]["browse"]["edges"]
                .as_array()
                .unwrap_or_else(|| panic!("{r}"))
                .iter()
                .map(|e| e["node"].clone())
                .collect::<Vec<_>>(),
            _ => r["data"][field]
                .as_array()
                .unwrap_or_else(|| panic!("{r}"))
                .clone(),
        };
        list.iter()
            .filter(|t| matches!(t["maturityRating"].as_str(), Some("R" | "NC_17")))
            .map(|t| t["name"].to_string())
            .collect()
    };
    let browse = "{ browse(first: 100) { edges { node { name maturityRating } } } }";
    let search = "{ search(query: \"Showgirls\", first: 100) { name maturityRating } }";
    let anonymous = |q: &'static str| {
        let (http, url) = (http.clone(), server.url.clone());
        async move {
            http.post(format!("{url}/graphql"))
                .json(&json!({"query": q}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert!(!adult(&anonymous(browse).await, "browse").is_empty());
    assert!(!adult(&anonymous(search).await, "search").is_empty());
    assert_eq!(adult(&gql(browse).await, "browse"), Vec::<String>::new());
    assert_eq!(adult(&gql(search).await, "search"), Vec::<String>::new());

    // Another site cannot sign the viewer out (its form would carry the cookie).
    let r = http
        .post(format!("{}/auth/logout", server.url))
        .header(reqwest::header::COOKIE, &session)
        .header(reqwest::header::ORIGIN, "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!gql("{ me { accountId } }").await["data"]["me"].is_null());
    // Sign out: the session is gone on the server, not only in the browser.
    let r = http
        .post(format!("{}/auth/logout", server.url))
        .header(reqwest::header::COOKIE, &session)
        .header(reqwest::header::ORIGIN, &server.url)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    let me = gql("{ me { accountId } }").await;
    assert_eq!(error_code(&me), Some("UNAUTHENTICATED"), "{me}");
}

/// `marquee dev-token` prints a token the development issuer's server accepts.
#[tokio::test]
async fn dev_token_signs_in_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let url = db.url().to_owned();
    let fixture = write_fixture(&dir.path().join("ml"));
    let ml = fixture.dir.to_str().unwrap().to_owned();
    marquee_ok(dir.path(), &url, &["import", "movielens", &ml]);
    marquee_ok(dir.path(), &url, &["train", "--clock", NOW]);
    let server = Server::start(dir.path(), &url, &[]);
    let out = common::marquee(
        dir.path(),
        &url,
        &[
            "dev-token",
            "--account",
            "5",
            "--role",
            "pm",
            "--url",
            &server.url,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let r = server
        .gql_with(
            Some(&token),
            "{ me { accountId roles } home(profileId: \"5\") { requestId } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["me"]["accountId"], "5", "{r}");
    assert_eq!(r["data"]["me"]["roles"], json!(["viewer", "pm"]));
    assert!(r["data"]["home"]["requestId"].is_string());
    // The development issuer runs in production mode only when configured to, with a warning.
    let config = dir.path().join("dev-in-production.toml");
    std::fs::write(&config, "[auth]\ndev_issuer = true\n").unwrap();
    let mut child = std::process::Command::new(common::BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--config", config.to_str().unwrap()])
        .args(["serve", "--listen", "127.0.0.1:0", "--mode", "production"])
        .env("DATABASE_URL", &url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
        said.push_str(&line);
        said.push('\n');
        if line.starts_with("sign-in:") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        said.contains("WARNING: production mode with dev_issuer = true"),
        "{said}"
    );
    assert!(said.contains("development issuer at"), "{said}");
    // The production default refuses to start without an issuer, and says why.
    let out = common::marquee(dir.path(), &url, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("production mode needs an OpenID Connect issuer"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `application/x-www-form-urlencoded`, as a browser posts a form.
fn form_body(fields: &std::collections::HashMap<String, String>) -> String {
    let mut u = reqwest::Url::parse("http://form/").unwrap();
    u.query_pairs_mut().extend_pairs(fields);
    u.query().unwrap_or("").to_owned()
}
