//! Against an independent, real OpenID Connect provider: the npm package `oidc-provider` (v9),
//! started here on loopback with registered clients (tests/oidc/provider.mjs). Chromium
//! (playwright-core) drives the whole login of the web UI — Marquee's Sign in, the provider's
//! login and consent pages, back to Marquee with a session cookie — then GraphQL is called
//! with the session and with a bearer token a separate "TV app" client obtained
//! (tests/oidc/login.mjs). Marquee runs in production mode: the development issuer is off.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{NOW, Server, TestDb, error_code, import_and_train};
use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Kills the provider when the test ends, however it ends.
struct Provider(std::process::Child);

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn npm_ci(dir: &Path) {
    if dir.join("node_modules/oidc-provider").exists()
        && dir.join("node_modules/playwright-core").exists()
    {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("cannot run npm: install Node.js and npm");
    assert!(status.success(), "npm ci in tests/oidc failed ({status})");
}

#[test]
fn login_with_a_real_openid_connect_provider() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run .ci/run, or apt-get install chromium"
    );
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    npm_ci(&js);

    // Marquee's port first: the provider registers its callback as a redirect URI.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let marquee_url = format!("http://127.0.0.1:{port}");
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .current_dir(&js)
        .env(
            "MARQUEE_REDIRECT_URI",
            format!("{marquee_url}/auth/callback"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot run node");
    let stdout = child.stdout.take().unwrap();
    let provider = Provider(child);
    // Its output is drained for as long as it runs (a closed pipe would kill it).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            match line.strip_prefix("issuer ") {
                Some(url) => drop(tx.send(url.to_owned())),
                None => eprintln!("[oidc-provider] {line}"),
            }
        }
    });
    let issuer = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("oidc-provider did not start");

    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    import_and_train(dir.path(), db.url());
    let config = dir.path().join("marquee.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nissuer = \"{issuer}\"\nclient_id = \"marquee-web\"\nscopes = [\"openid\", \"api\"]\n\
             authorize_params = {{ resource = \"urn:marquee:api\" }}\n"
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start(
        dir.path(),
        db.url(),
        &[
            "--mode",
            "production",
            "--listen",
            &listen,
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(server.url, marquee_url);
    let _ = NOW;

    let out = Command::new("node")
        .arg("login.mjs")
        .current_dir(&js)
        .env("MARQUEE_URL", &server.url)
        .env("OIDC_ISSUER", &issuer)
        .env("CHROMIUM", CHROMIUM)
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "login.mjs failed:\n{stdout}");
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();

    // Marquee's one cookie is HttpOnly and holds no token; scripts cannot read it. (Cookies
    // are per host, not port: the provider's own cookies on 127.0.0.1 are in the list too.)
    let cookie = r["cookie"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "marquee_session")
        .unwrap_or_else(|| panic!("no session cookie: {r}"));
    assert_eq!(cookie["httpOnly"], true);
    assert_eq!(cookie["sameSite"], "Lax");
    assert_eq!(cookie["jwt"], false);
    assert_eq!(r["scriptSeesCookie"], false);
    // The session speaks for the provider's account 1, and only its profiles.
    let s = &r["session"]["data"];
    assert_eq!(s["me"]["accountId"], "1", "{r}");
    assert!(
        s["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["id"] == "1" || p["id"] == "1-kids"),
        "{r}"
    );
    assert!(s["home"]["requestId"].is_string(), "{r}");
    // The TV app's bearer token (a JWT from the provider, validated against its JWKS).
    let b = &r["bearer"]["data"];
    assert_eq!(b["me"]["accountId"], "1", "{r}");
    assert!(b["home"]["requestId"].is_string(), "{r}");
    assert_eq!(error_code(&r["stolen"]), Some("NOT_FOUND"), "{r}");
    // Signed out: the cookie no longer names a session.
    assert_eq!(error_code(&r["signedOut"]), Some("UNAUTHENTICATED"), "{r}");
    drop(provider);
}
