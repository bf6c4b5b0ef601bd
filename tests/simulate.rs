//! `marquee simulate` against a real server: the experiment pipeline finds a real effect with
//! the right sign, and does not find effects in A/A experiments much more often than 5%. The
//! experiments are created and launched through the console's GraphQL API, not a file.
//! Seeds are fixed, so the outcome is deterministic for a given build.

mod common;

use common::{NOW, Server, TestDb, marquee_ok};

#[tokio::test]
async fn simulation_detects_a_degraded_page_and_not_a_placebo() {
    let dir = tempfile::tempdir().unwrap();
    // A catalogue large enough for taste to matter: 600 titles over 18 genres, and 300
    // members whose histories follow two favourite genres each.
    let world = dir.path().join("world");
    let db = TestDb::sqlite(dir.path());
    let url = db.url().to_owned();
    let w = world.to_str().unwrap();
    marquee_ok(
        dir.path(),
        &url,
        &[
            "generate",
            w,
            "--profiles",
            "300",
            "--titles",
            "600",
            "--events",
            "7500",
            "--seed",
            "99",
        ],
    );
    marquee_ok(
        dir.path(),
        &url,
        &["import", "movielens", world.to_str().unwrap()],
    );
    marquee_ok(dir.path(), &url, &["train", "--clock", NOW]);
    let exp = dir.path().join("exp");
    std::fs::create_dir_all(&exp).unwrap();
    let server = Server::start(dir.path(), &url, &["--experiments", exp.to_str().unwrap()]);
    // The server's data directory: simulate signs its viewers in with its development issuer.
    let out = std::process::Command::new(common::BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["simulate", "--url", &server.url])
        .args([
            "--profiles",
            "300",
            "--sessions",
            "3",
            "--aa",
            "20",
            "--seed",
            "7",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    println!("{stdout}");
    assert!(stdout.contains("detected, right sign"), "{stdout}");
    let not_significant: usize = stdout
        .split("A/A: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        not_significant >= 16,
        "too many A/A experiments significant: {stdout}"
    );
}
