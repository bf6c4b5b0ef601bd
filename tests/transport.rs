//! The HTTP transport and the browser-facing defences, black-box against a real server:
//! slowloris (header read timeout, connection cap), `/metrics` in production mode, CSRF,
//! the CORS allowlist, the UI's Content-Security-Policy, HTTPS with rustls (and `Secure`
//! session cookies), automatic persisted queries.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{NOW, Server, TestDb, error_code, marquee_ok, write_fixture};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server and what it serves from (kept alive with it).
#[allow(dead_code)]
struct Env {
    dir: tempfile::TempDir,
    db: TestDb,
    server: Server,
}

/// Imports and trains the fixture in a new directory; `prepare` may touch the database
/// before the server starts.
fn setup(prepare: impl FnOnce(&Path, &str)) -> (tempfile::TempDir, TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let fixture = write_fixture(&dir.path().join("ml"));
    let db = TestDb::sqlite(dir.path());
    let url = db.url().to_owned();
    let ml = fixture.dir.to_str().unwrap().to_owned();
    marquee_ok(dir.path(), &url, &["import", "movielens", &ml]);
    marquee_ok(dir.path(), &url, &["train", "--clock", NOW]);
    prepare(dir.path(), &url);
    (dir, db)
}

fn start(args: &[&str], env: &[(&str, &str)]) -> Env {
    let (dir, db) = setup(|_, _| {});
    let server = Server::start_env(dir.path(), db.url(), args, env);
    Env { dir, db, server }
}

/// Production mode, signing in through the development issuer (configured on purpose).
fn start_production(env: &[(&str, &str)]) -> Env {
    let (dir, db) = setup(|_, _| {});
    let config = dir.path().join("marquee.toml");
    std::fs::write(&config, "[auth]\ndev_issuer = true\n").unwrap();
    let server = Server::start_env(
        dir.path(),
        db.url(),
        &["--mode", "production", "--config", config.to_str().unwrap()],
        env,
    );
    Env { dir, db, server }
}

fn host_port(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap()
        .trim_end_matches('/')
        .to_owned()
}

/// Reads until the server closes the connection or `limit` passes; what was read.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, ()> {
    let mut out = vec![];
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return Err(()),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off_and_connections_are_capped() {
    let env = start(
        &["--max-connections", "3", "--header-read-timeout-ms", "1500"],
        &[],
    );
    let s = &env.server;
    let addr = host_port(&s.url);
    assert_eq!(s.get("/healthz").await.status(), 200);

    // Half a request's headers, then nothing: the server hangs up once the timeout passes.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Le")
        .await
        .unwrap();
    let got = read_until_closed(&mut slow, Duration::from_secs(20))
        .await
        .expect("a stalled client was not disconnected within 20 s");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1400),
        "closed after {took:?}, before the timeout"
    );
    // Hyper answers 408 or just closes; either way no request ran.
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    drop(slow);
    // Let the closed connection's slot be freed.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Three idle connections fill the cap; a fourth is closed unserved.
    let mut held = vec![];
    for _ in 0..3 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut over = TcpStream::connect(&addr).await.unwrap();
    let _ = over
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let got = read_until_closed(&mut over, Duration::from_secs(5))
        .await
        .expect("the connection over the cap was neither served nor closed");
    assert!(
        got.is_empty(),
        "over the cap and served: {}",
        String::from_utf8_lossy(&got)
    );
    // The connections within the cap are served.
    held[0]
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut held[0], Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // Once they go, normal requests are served again.
    drop(held);
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(r) = reqwest::Client::new()
            .get(format!("{}/healthz", s.url))
            .send()
            .await
            && r.status() == 200
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ok,
        "the server did not serve again after the idle connections left"
    );
    let text = s.get("/metrics").await.text().await.unwrap();
    assert!(
        metric(&text, "marquee_connections_refused_total") >= 1.0,
        "{text}"
    );
    assert!(
        metric(&text, "marquee_header_read_timeouts_total") >= 1.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_for_admins_and_the_scraper_in_production() {
    let scrape = "scrape-token-for-tests-0123456789";
    let env = start_production(&[("MARQUEE_METRICS_TOKEN", scrape)]);
    let s = &env.server;
    let get = |token: Option<String>| {
        let url = format!("{}/metrics", s.url);
        async move {
            let mut req = reqwest::Client::new().get(url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get(None).await.0, 401);
    assert_eq!(get(Some("not-the-token".into())).await.0, 401);
    assert_eq!(get(Some(s.token("1", "viewer"))).await.0, 403);
    assert_eq!(get(Some(s.token("1", "pm"))).await.0, 403);
    let (status, body) = get(Some(s.token("ops", "admin"))).await;
    assert_eq!(status, 200);
    assert!(body.contains("marquee_catalog_titles"), "{body}");
    let (status, body) = get(Some(scrape.to_owned())).await;
    assert_eq!(status, 200);
    assert!(body.contains("marquee_catalog_titles"), "{body}");
    // Experiment reports are a pm's: a viewer is refused.
    let r = s
        .gql_with(
            Some(&s.token("1", "viewer")),
            "{ experimentReport(key: \"x\") { key } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    drop(env);

    // Development mode: public.
    let env = start(&[], &[]);
    let r = env.server.get("/metrics").await;
    assert_eq!(r.status(), 200);
}

/// Signs in through the development issuer as a browser would; the session cookie
/// (`name=value`).
async fn browser_session(server: &Server, http: &reqwest::Client, account: &str) -> String {
    let location = |r: &reqwest::Response| {
        r.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let r = http
        .get(format!("{}/auth/login", server.url))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let login_cookie = cookie_pair(r.headers()[reqwest::header::SET_COOKIE].to_str().unwrap());
    let authorize = reqwest::Url::parse(&location(&r)).unwrap();
    let mut form: HashMap<String, String> = authorize.query_pairs().into_owned().collect();
    form.insert("account".into(), account.into());
    form.insert("role".into(), "viewer".into());
    let mut body = reqwest::Url::parse("http://form/").unwrap();
    body.query_pairs_mut().extend_pairs(&form);
    let r = http
        .post(authorize.as_str().split('?').next().unwrap())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body.query().unwrap().to_owned())
        .send()
        .await
        .unwrap();
    let callback = location(&r);
    let r = http
        .get(&callback)
        .header(reqwest::header::COOKIE, login_cookie)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    r.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned()
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_form_posts_and_cross_origin_cookie_posts_are_refused() {
    let env = start(&[], &[]);
    let s = &env.server;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = cookie_pair(&browser_session(s, &http, "1").await);
    let mutation = json!({"query": "mutation { selectProfile(profileId: \"1\") { id } }"});
    let post = |content_type: &'static str, body: String, headers: Vec<(&'static str, String)>| {
        let (http, url) = (http.clone(), s.url.clone());
        async move {
            let mut req = http
                .post(format!("{url}/graphql"))
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // A form an attacker's page submits (the browser adds the cookie and its Origin).
    let evil = "https://evil.example".to_owned();
    let (status, body) = post(
        "application/x-www-form-urlencoded",
        "query=mutation%20%7B%20selectProfile(profileId%3A%20%221%22)%20%7B%20id%20%7D%20%7D"
            .into(),
        vec![("cookie", session.clone()), ("origin", evil.clone())],
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(error_code(&body), Some("UNSUPPORTED_MEDIA_TYPE"), "{body}");
    // text/plain, the other content type a page may send without a preflight.
    let (status, _) = post(
        "text/plain",
        mutation.to_string(),
        vec![("cookie", session.clone()), ("origin", evil.clone())],
    )
    .await;
    assert_eq!(status, 415);
    // JSON with the cookie from another origin, or with no origin at all.
    let (status, body) = post(
        "application/json",
        mutation.to_string(),
        vec![("cookie", session.clone()), ("origin", evil.clone())],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), Some("CSRF_REFUSED"), "{body}");
    let (status, _) = post(
        "application/json",
        mutation.to_string(),
        vec![
            ("cookie", session.clone()),
            ("referer", format!("{evil}/page")),
        ],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = post(
        "application/json",
        mutation.to_string(),
        vec![("cookie", session.clone())],
    )
    .await;
    assert_eq!(status, 403);
    // The UI's own requests pass: JSON from Marquee's origin.
    let (status, body) = post(
        "application/json",
        mutation.to_string(),
        vec![("cookie", session.clone()), ("origin", s.url.clone())],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["selectProfile"]["id"], "1", "{body}");
    // Bearer tokens cannot be forged by a page: no origin check.
    let (status, body) = post(
        "application/json",
        json!({"query": "mutation { createProfile(input: {id: \"1-den\", name: \"Den\"}) { id } }"})
            .to_string(),
        vec![
            ("authorization", format!("Bearer {}", s.token("1", "viewer"))),
            ("origin", evil.clone()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_configured_origins() {
    let env = start(&["--cors-origin", "https://tv.example.com"], &[]);
    let s = &env.server;
    let preflight = |origin: &'static str| {
        let url = format!("{}/graphql", s.url);
        async move {
            reqwest::Client::new()
                .request(reqwest::Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "content-type,authorization",
                )
                .send()
                .await
                .unwrap()
        }
    };
    let r = preflight("https://tv.example.com").await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://tv.example.com"
    );
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    let r = preflight("https://evil.example").await;
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        r.headers()
    );
    // The allowed origin's actual request gets the header too.
    let r = reqwest::Client::new()
        .post(format!("{}/graphql", s.url))
        .header("origin", "https://tv.example.com")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://tv.example.com"
    );
    drop(env);

    // None by default.
    let env = start(&[], &[]);
    let r = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/graphql", env.server.url),
        )
        .header("origin", "https://tv.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    drop(env);

    // The allowlist and the other limits from `[server]` in marquee.toml.
    let (dir, db) = setup(|_, _| {});
    let config = dir.path().join("marquee.toml");
    std::fs::write(
        &config,
        "[server]\ncors_origins = [\"https://tv.example.com\"]\nmax_connections = 64\n\
         header_read_timeout_ms = 5000\nrate_limit_ip = 0\nrequest_timeout_ms = 20000\n",
    )
    .unwrap();
    let server = Server::start(
        dir.path(),
        db.url(),
        &["--config", config.to_str().unwrap()],
    );
    let r = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", server.url))
        .header("origin", "https://tv.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://tv.example.com"
    );
    drop(server);
    // A mistake in the section is refused at start, naming the file and line.
    std::fs::write(&config, "[server]\nmax_conections = 64\n").unwrap();
    let out = common::marquee(
        dir.path(),
        db.url(),
        &[
            "--config",
            config.to_str().unwrap(),
            "serve",
            "--mode",
            "development",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("marquee.toml:2"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_has_a_content_security_policy_with_the_poster_host() {
    // A poster on an image host, as `marquee import tmdb` stores it.
    let (dir, db) = setup(|_, _| {});
    {
        let mut conn = db.connect().await;
        sqlx::query(
            "INSERT INTO title_metadata (title_id, tmdb_id, match_method, match_score, genres, poster_url, fetched_at) \
             VALUES ('1', 862, 'links', 1.0, '', 'http://127.0.0.1:9/t/p/w342/toy.jpg', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let server = Server::start(dir.path(), db.url(), &[]);
    let r = server.get("/").await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(part), "{part} missing: {csp}");
    }
    let img = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("img-src"))
        .unwrap();
    assert!(img.contains("http://127.0.0.1:9"), "{img}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["referrer-policy"], "same-origin");
    // Scripts too, and the API's answers are nosniff.
    let r = server.get("/app.js").await;
    assert!(r.headers().contains_key("content-security-policy"));
    let r = reqwest::Client::new()
        .post(format!("{}/graphql", server.url))
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    drop(dir);
}

/// A self-signed certificate for 127.0.0.1 (openssl CLI); (cert, key) paths.
fn self_signed(dir: &Path) -> (String, String) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed for the TLS test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_rustls_and_secure_cookies() {
    let (dir, db) = setup(|_, _| {});
    let (cert, key) = self_signed(dir.path());
    // The server fetches its own development issuer's keys over https: it trusts the
    // certificate through SSL_CERT_FILE, as an operator's private CA would be configured.
    let server = Server::start_env(
        dir.path(),
        db.url(),
        &["--tls-cert", &cert, "--tls-key", &key],
        &[("SSL_CERT_FILE", &cert)],
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .tls_certs_only([ca])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = https
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = server.url.replace("https://", "http://");
    assert!(
        reqwest::Client::new()
            .get(format!("{plain}/healthz"))
            .send()
            .await
            .is_err()
    );
    // GraphQL with a bearer token (validated against the JWKS fetched over https).
    let token = server.token("1", "viewer");
    let r: Value = https
        .post(format!("{}/graphql", server.url))
        .bearer_auth(&token)
        .json(&json!({"query": "{ me { accountId } }"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["data"]["me"]["accountId"], "1", "{r}");
    // The browser session's cookie is Secure.
    let set_cookie = browser_session(&server, &https, "1").await;
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_needs_a_usable_certificate() {
    let (dir, db) = setup(|_, _| {});
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let bogus = bogus.to_str().unwrap();
    let out = common::marquee(
        dir.path(),
        db.url(),
        &[
            "serve",
            "--mode",
            "development",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            bogus,
            "--tls-key",
            bogus,
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bogus.pem"), "{err}");
}

fn sha256_hex(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_persisted_queries_for_tv_clients() {
    let env = start(&[], &[]);
    let s = &env.server;
    let token = s.token("1", "viewer");
    let query = "query Tv($p: ID!) { home(profileId: $p) { requestId rows { id items(first: 3) { title { id } } } } }";
    let hash = sha256_hex(query);
    let send = |body: Value| {
        let (url, token) = (s.url.clone(), token.clone());
        async move {
            let r = reqwest::Client::new()
                .post(format!("{url}/graphql"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let ext = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
    let vars = json!({"p": "1"});
    // The hash alone: not known yet.
    let r = send(json!({"variables": vars, "extensions": ext})).await;
    assert_eq!(error_code(&r), Some("PERSISTED_QUERY_NOT_FOUND"), "{r}");
    assert_eq!(r["errors"][0]["message"], "PersistedQueryNotFound");
    // The hash with the query: runs, and is stored.
    let r = send(json!({"query": query, "variables": vars, "extensions": ext})).await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(r["data"]["home"]["requestId"].is_string(), "{r}");
    // The hash alone now runs the stored query.
    let r = send(json!({"variables": vars, "extensions": ext})).await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(r["data"]["home"]["requestId"].is_string(), "{r}");
    // A hash that is not the query's is refused (nobody can store a query under another's hash).
    let r = send(json!({"query": "{ __typename }", "extensions": ext})).await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");
    // A persisted query meets the same limits: a fragment bomb is refused with its hash too.
    let mut bomb = String::from("fragment F0 on Query { __typename }\n");
    for i in 1..7 {
        bomb.push_str(&format!(
            "fragment F{i} on Query {{ {}}}\n",
            format!("...F{} ", i - 1).repeat(20)
        ));
    }
    bomb.push_str("query { ...F6 }");
    let bomb_ext = json!({"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(&bomb)}});
    let r = send(json!({"query": bomb, "extensions": bomb_ext})).await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    let r = send(json!({"extensions": bomb_ext})).await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
}
