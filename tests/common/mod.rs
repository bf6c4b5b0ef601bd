//! Test harness: a deterministic MovieLens-format fixture, and the real `marquee` binary run
//! against it (import, train, serve on an ephemeral port) with SQLite or a fresh PostgreSQL
//! database.
#![allow(dead_code)]

pub mod services;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_marquee");
/// "Now" for every fixture run: the fixture's events end shortly before it.
pub const NOW: &str = "1998-04-23T00:00:00Z";
const NOW_SECS: i64 = 893_289_600;

/// Fixtures are drawn from a seeded SplitMix64, so they are the same on every machine.
pub use marquee::rng::SplitMix64 as Rng;

pub struct FixtureTitle {
    pub id: u32,
    pub name: String,
    pub year: i32,
    pub genres: &'static str,
    pub mpaa: Option<&'static str>,
    pub countries: &'static str,
}

/// A small catalogue built to exercise every rule: R and NC-17 hits, unrated adult and
/// children's titles, a title licensed only in Germany, and 1998 releases.
pub fn fixture_titles() -> Vec<FixtureTitle> {
    let mut titles = vec![];
    let specs: [(&str, i32, &str, Option<&str>, &str); 12] = [
        (
            "Toy Story",
            1995,
            "Animation Children's Comedy",
            Some("G"),
            "",
        ),
        ("Pulp Fiction", 1994, "Crime Drama", Some("R"), ""),
        ("Showgirls", 1995, "Drama", Some("NC-17"), ""),
        ("Heat", 1995, "Action Crime Thriller", Some("R"), ""),
        ("Unrated Drama", 1996, "Drama", None, ""),
        ("Unrated Cartoon", 1996, "Animation Children's", None, ""),
        ("Berlin Only", 1997, "Drama Comedy", Some("PG"), "DE"),
        ("Babe", 1995, "Children's Comedy Drama", Some("G"), ""),
        ("Titanic", 1997, "Action Drama Romance", Some("PG-13"), ""),
        ("Mulan", 1998, "Animation Children's", Some("G"), ""),
        ("Apt Pupil", 1998, "Drama Thriller", Some("R"), ""),
        (
            "Lion King, The",
            1994,
            "Animation Children's Musical",
            Some("G"),
            "",
        ),
    ];
    for (i, (name, year, genres, mpaa, countries)) in specs.into_iter().enumerate() {
        titles.push(FixtureTitle {
            id: i as u32 + 1,
            name: name.to_owned(),
            year,
            genres,
            mpaa,
            countries,
        });
    }
    let pool: [(&str, Option<&str>); 8] = [
        ("Comedy", Some("PG-13")),
        ("Drama", Some("R")),
        ("Action Thriller", Some("R")),
        ("Children's Comedy", Some("G")),
        ("Sci-Fi Action", Some("PG-13")),
        ("Romance Comedy", Some("PG")),
        ("Horror", None),
        ("Documentary", None),
    ];
    let mut rng = Rng(7);
    for id in 13..=60u32 {
        let (genres, mpaa) = pool[rng.below(pool.len() as u64) as usize];
        titles.push(FixtureTitle {
            id,
            name: format!("Film {id}"),
            year: 1990 + rng.below(8) as i32,
            genres,
            mpaa,
            countries: "",
        });
    }
    titles
}

pub struct Fixture {
    pub dir: PathBuf,
    /// user → titles rated (all count as watched).
    pub watched: HashMap<String, HashSet<u32>>,
    pub users: Vec<(String, &'static str)>,
}

/// Writes `fixture.item`, `fixture.user`, `fixture.inter`, `fixture.link`, `fixture.kg` and
/// `movies.json` into `dir`.
pub fn write_fixture(dir: &Path) -> Fixture {
    std::fs::create_dir_all(dir).unwrap();
    let titles = fixture_titles();
    let mut item = String::from(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tcountries:token_seq\n",
    );
    let mut movies = vec![];
    for t in &titles {
        item.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            t.id, t.name, t.year, t.genres, t.countries
        ));
        // vega-datasets spells titles with the article in front.
        let vega_name = match t.name.strip_suffix(", The") {
            Some(stem) => format!("The {stem}"),
            None => t.name.clone(),
        };
        movies.push(json!({"Title": vega_name, "Release Date": format!("Jun 01 {}", t.year), "MPAA Rating": t.mpaa}));
    }
    std::fs::write(dir.join("fixture.item"), item).unwrap();
    std::fs::write(
        dir.join("movies.json"),
        serde_json::to_string(&movies).unwrap(),
    )
    .unwrap();

    let mut users = vec![];
    let mut user_file = String::from("user_id:token\tage:token\tcountry:token\n");
    for u in 1..=40u32 {
        let country = if u % 8 == 0 { "DE" } else { "US" };
        users.push((u.to_string(), country));
        user_file.push_str(&format!("{u}\t30\t{country}\n"));
    }
    // User 41 exists but has never watched anything: the cold-start case.
    users.push(("41".into(), "US"));
    user_file.push_str("41\t25\tUS\n");
    std::fs::write(dir.join("fixture.user"), user_file).unwrap();

    let mut inter = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    let mut watched: HashMap<String, HashSet<u32>> = HashMap::new();
    let mut rng = Rng(11);
    for u in 1..=40u32 {
        // Two taste clusters so that co-occurrence has structure: odd users lean to titles
        // 1–30, even users to 31–60; popular titles 1–12 are seen by many.
        let n = 6 + rng.below(10) as u32;
        let mut seen = HashSet::new();
        for k in 0..n {
            let title = if k < 3 {
                1 + rng.below(12) as u32
            } else if u % 2 == 1 {
                1 + rng.below(30) as u32
            } else {
                31 + rng.below(30) as u32
            };
            if title == 7 && u % 8 != 0 {
                continue; // only German users can have seen the German-only title
            }
            if !seen.insert(title) {
                continue;
            }
            let rating = 1 + rng.below(5);
            let ts = NOW_SECS - 86_400 * (1 + rng.below(60) as i64) - rng.below(80_000) as i64;
            inter.push_str(&format!("{u}\t{title}\t{rating}\t{ts}\n"));
        }
        watched.insert(u.to_string(), seen);
    }
    std::fs::write(dir.join("fixture.inter"), inter).unwrap();

    // A small knowledge graph in RecBole's .link/.kg form, both directions of a relation and
    // relations that are not people (genre, sequel) as in MovieLens-100K. Title 7 (Berlin Only)
    // has no interactions at all; its director also made Babe (8).
    let mut link = String::from("item_id:token\tentity_id:token\n");
    for id in 1..=12 {
        link.push_str(&format!("{id}\tm.film{id}\n"));
    }
    std::fs::write(dir.join("fixture.link"), link).unwrap();
    std::fs::write(
        dir.join("fixture.kg"),
        "head_id:token\trelation_id:token\ttail_id:token\n\
         m.film7\tfilm.film.directed_by\tm.director1\n\
         m.director1\tfilm.director.film\tm.film8\n\
         m.film7\tfilm.film.actor\tm.actor1\n\
         m.film8\tfilm.film.actor\tm.actor1\n\
         m.film1\tfilm.film.actor\tm.actor2\n\
         m.film10\tfilm.film.actor\tm.actor2\n\
         m.film12\tfilm.film.actor\tm.actor2\n\
         m.film7\tfilm.film.genre\tm.drama\n\
         m.film10\tfilm.film.sequel\tm.film12\n",
    )
    .unwrap();
    Fixture {
        dir: dir.to_owned(),
        watched,
        users,
    }
}

pub fn marquee(data_dir: &Path, db: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("DATABASE_URL", db)
        .env_remove("MARQUEE_CONFIG")
        .current_dir(data_dir)
        .output()
        .expect("run marquee")
}

pub fn marquee_ok(data_dir: &Path, db: &str, args: &[&str]) -> String {
    let out = marquee(data_dir, db, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "marquee {args:?} failed:\n{stderr}");
    stderr
}

/// Writes the fixture into `data_dir/ml`, imports it into `db` and trains a model on it: what
/// a server under test starts from.
pub fn import_and_train(data_dir: &Path, db: &str) -> Fixture {
    let fixture = write_fixture(&data_dir.join("ml"));
    let ml = fixture.dir.to_str().unwrap().to_owned();
    marquee_ok(data_dir, db, &["import", "movielens", &ml]);
    marquee_ok(data_dir, db, &["train", "--clock", NOW]);
    fixture
}

/// A database for one test run.
pub enum TestDb {
    Sqlite {
        url: String,
    },
    Postgres {
        url: String,
        admin: String,
        name: String,
    },
}

impl TestDb {
    pub fn sqlite(dir: &Path) -> Self {
        TestDb::Sqlite {
            url: format!("sqlite://{}?mode=rwc", dir.join("test.db").display()),
        }
    }

    /// A fresh database on the PostgreSQL server (MARQUEE_TEST_POSTGRES, default the local
    /// trust-auth server), named uniquely for this run.
    pub async fn postgres() -> Self {
        let admin = std::env::var("MARQUEE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        Self::postgres_on(&admin).await
    }

    /// A fresh database on the PostgreSQL server at `admin` (a maintenance database URL),
    /// e.g. a test's own server from `services::Postgres`.
    pub async fn postgres_on(admin: &str) -> Self {
        let admin = admin.to_owned();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!(
            "marquee_test_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000_000
        );
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL is needed for this test and is not reachable at {admin}: {e}. Run .ci/run (it installs and starts it), or set MARQUEE_TEST_POSTGRES.")
            });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
        TestDb::Postgres {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }

    /// A direct connection, for a test that must set up what the API would not let it (a
    /// database written by an older version).
    pub async fn connect(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        <sqlx::AnyConnection as sqlx::Connection>::connect(self.url())
            .await
            .unwrap()
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url } | TestDb::Postgres { url, .. } => url,
        }
    }

    pub async fn drop_db(&self) {
        if let TestDb::Postgres { admin, name, .. } = self
            && let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

/// A running `marquee serve`, killed on drop. Unless `extra` names another `--mode`, it runs
/// in development mode, so its development issuer (key in `data_dir`) signs the tests in.
pub struct Server {
    child: Child,
    pub url: String,
    client: reqwest::Client,
    data_dir: PathBuf,
    issuer: std::sync::OnceLock<Option<marquee::auth::DevIssuer>>,
}

/// The admin account `gql` signs in as when a request names no profile.
pub const OPS_ACCOUNT: &str = "ops";
/// Accounts of the fixture (MovieLens user N is account N, owning N and N-kids).
pub const FIXTURE_ACCOUNTS: std::ops::RangeInclusive<u32> = 1..=41;

/// The account that owns a profile under the MovieLens convention: `N` and `N-kids` are
/// account `N`'s (profiles tests create follow it: `newbie`, `newbie-kids`).
pub fn owner_of(profile: &str) -> &str {
    profile.strip_suffix("-kids").unwrap_or(profile)
}

impl Server {
    /// Serves with the clock fixed at `NOW` unless `extra` chooses a `--clock`.
    pub fn start(data_dir: &Path, db: &str, extra: &[&str]) -> Server {
        Self::start_env(data_dir, db, extra, &[])
    }

    /// `start` with extra environment variables for the server process.
    pub fn start_env(data_dir: &Path, db: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let clock: &[&str] = if extra.contains(&"--clock") {
            &[]
        } else {
            &["--clock", NOW]
        };
        let mode: &[&str] = if extra.contains(&"--mode") {
            &[]
        } else {
            &["--mode", "development"]
        };
        let listen: &[&str] = if extra.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve"])
            .args(clock)
            .args(listen)
            .args(mode)
            .args(extra)
            .env("DATABASE_URL", db)
            .env_remove("MARQUEE_CONFIG")
            .envs(env.iter().copied())
            .current_dir(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn marquee serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not report its address within 60 s");
        Server {
            child,
            url,
            client: reqwest::Client::new(),
            data_dir: data_dir.to_owned(),
            issuer: std::sync::OnceLock::new(),
        }
    }

    /// A bearer token from this server's development issuer (the same path `marquee
    /// dev-token` takes: signed with the key the server created in its data directory).
    pub fn token(&self, account: &str, role: &str) -> String {
        let issuer = self
            .issuer
            .get_or_init(|| marquee::auth::DevIssuer::load(&self.data_dir).ok())
            .as_ref()
            .expect("the server runs a development issuer");
        issuer
            .token(
                &format!("{}/dev-issuer", self.url),
                "marquee",
                &marquee::domain::AccountId::parse(account).unwrap(),
                role.parse().unwrap(),
            )
            .unwrap()
    }

    /// POSTs a GraphQL request signed in as the owner of the profile it names (a `p`,
    /// `profileId` or `id` variable, `i.id` of a created profile, or an inline
    /// `profileId: "…"` / `profile(id: "…")`), else as the admin
    /// account `ops`; asserts the HTTP layer never fails with a 5xx.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let token = self.token_for(query, &variables);
        self.gql_with(Some(&token), query, variables).await
    }

    /// `gql`, answering the response body as the server wrote it.
    pub async fn gql_text(&self, query: &str, variables: Value) -> String {
        let token = self.token_for(query, &variables);
        let resp = self
            .client
            .post(format!("{}/graphql", self.url))
            .bearer_auth(token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap();
        assert!(!resp.status().is_server_error(), "HTTP {}", resp.status());
        resp.text().await.unwrap()
    }

    /// The token `gql` signs a request in with.
    fn token_for(&self, query: &str, variables: &Value) -> String {
        let named = ["p", "profileId", "id", "profile"]
            .iter()
            .find_map(|k| variables.get(*k).and_then(Value::as_str))
            // A created profile (`createProfile(input: $i)`) belongs to its owner too.
            .or_else(|| variables["i"]["id"].as_str())
            .map(str::to_owned)
            .or_else(|| {
                regex::Regex::new(r#"(?:profileId|profile\(id):\s*"([^"]+)""#)
                    .unwrap()
                    .captures(query)
                    .map(|c| c[1].to_owned())
            });
        // Forcing variations is a PM's preview.
        let role = if query.contains("forcedVariations") {
            "pm"
        } else {
            "viewer"
        };
        match named.as_deref().map(owner_of) {
            // `id` also names titles; an account that owns no profile is harmless there.
            Some(owner) if marquee::domain::AccountId::parse(owner).is_ok() => {
                self.token(owner, role)
            }
            _ => self.token(OPS_ACCOUNT, "admin"),
        }
    }

    /// POSTs a GraphQL request with `token` (none: anonymous).
    pub async fn gql_with(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.url))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert!(!resp.status().is_server_error(), "HTTP {}", resp.status());
        resp.json().await.unwrap()
    }

    /// Every profile of the fixture's accounts (each account sees only its own).
    pub async fn fixture_profiles(&self, kids: Option<bool>) -> Vec<String> {
        let mut ids = vec![];
        for account in FIXTURE_ACCOUNTS {
            let token = self.token(&account.to_string(), "viewer");
            let r = self
                .gql_with(
                    Some(&token),
                    "query($k: Boolean) { profiles(first: 100, kids: $k) { id } }",
                    json!({"k": kids}),
                )
                .await;
            for p in r["data"]["profiles"].as_array().unwrap() {
                ids.push(p["id"].as_str().unwrap().to_owned());
            }
        }
        ids
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
    }

    /// POSTs `body` as it is; the status and the body, which must be JSON whatever happened.
    pub async fn post_raw_json(
        &self,
        body: impl Into<reqwest::Body>,
    ) -> (reqwest::StatusCode, Value) {
        let resp = self
            .client
            .post(format!("{}/graphql", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("HTTP {status}: not a JSON body ({e}): {text:.200}"));
        (status, json)
    }

    pub async fn post_raw(&self, body: &str) -> reqwest::StatusCode {
        self.client
            .post(format!("{}/graphql", self.url))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .status()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first error's `extensions.code`.
pub fn error_code(resp: &Value) -> Option<&str> {
    resp["errors"][0]["extensions"]["code"].as_str()
}

/// A type a home page is made of: its name, its leaf fields, and its object fields with their
/// types.
type PageType = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

/// The types a home page is made of; `check_direct_answers` selects among their fields.
const PAGE_TYPES: &[PageType] = &[
    (
        "HomePage",
        &["modelVersion", "degraded", "__typename"],
        &[("assignments", "Assignment"), ("rows", "Row")],
    ),
    (
        "Assignment",
        &[
            "featureKey",
            "experimentKey",
            "variationIndex",
            "variationKey",
            "inExperiment",
            "hashUsed",
            "__typename",
        ],
        &[],
    ),
    (
        "Row",
        &[
            "id",
            "title",
            "definition",
            "kind",
            "modelVersion",
            "__typename",
        ],
        &[("anchor", "Title"), ("items", "RowItem")],
    ),
    (
        "RowItem",
        &["position", "score", "reason", "__typename"],
        &[
            ("title", "Title"),
            ("evidence", "Title"),
            ("progress", "WatchProgress"),
        ],
    ),
    ("WatchProgress", &["fraction", "percent", "__typename"], &[]),
    (
        "Title",
        &[
            "id",
            "name",
            "year",
            "genres",
            "maturityRating",
            "overview",
            "addedAt",
            "countries",
            "tagline",
            "runtime",
            "originalLanguage",
            "director",
            "posterUrl",
            "backdropUrl",
            "__typename",
        ],
        &[("cast", "CastMember")],
    ),
    ("CastMember", &["name", "character", "__typename"], &[]),
];

/// A random selection of `ty`'s fields (the first selection of each type takes them all): in
/// random order, some aliased, `items` sometimes with `first`.
fn random_selection(ty: &str, rng: &mut impl FnMut() -> u64, all: bool, alias: &mut u32) -> String {
    let (_, leaves, objects) = PAGE_TYPES.iter().find(|(t, _, _)| *t == ty).unwrap();
    let mut parts: Vec<String> = Vec::new();
    for leaf in *leaves {
        if all || rng().is_multiple_of(2) {
            parts.push(leaf.to_string());
        }
    }
    for (field, inner) in *objects {
        if all || !rng().is_multiple_of(3) {
            let args = if *field == "items" && rng().is_multiple_of(2) {
                format!("(first: {})", 1 + rng() % 6)
            } else {
                String::new()
            };
            let sub = random_selection(inner, rng, all, alias);
            parts.push(format!("{field}{args} {{ {sub} }}"));
        }
    }
    if parts.is_empty() {
        parts.push("__typename".into());
    }
    for part in parts.iter_mut() {
        if rng().is_multiple_of(4) {
            *alias += 1;
            *part = format!("x{alias}: {part}");
        }
    }
    // Shuffle (Fisher–Yates).
    for i in (1..parts.len()).rev() {
        parts.swap(i, (rng() % (i as u64 + 1)) as usize);
    }
    parts.join(" ")
}

/// The count of home queries the server answered straight from their compiled plan.
pub async fn direct_answers(server: &Server) -> f64 {
    let text = server.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("marquee_graphql_direct_answers_total "))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// The home query written straight to JSON (`api::graphql::direct`) answers exactly as the
/// executor does. For `selections` random selections of a page's fields (the first selects
/// every field of every type; aliases, `__typename`, `items(first:)`, an aliased `home`, the
/// profile as a variable or inline): the second request of a query text, answered directly
/// (the server counts it), and the same query with a directive no plan takes, answered by
/// the executor, have the same body byte for byte but for the page's `requestId` and
/// `generatedAt`.
pub async fn check_direct_answers(
    server: &Server,
    profiles: &[String],
    selections: usize,
    seed: u64,
) {
    let mut state = seed;
    let mut rng = move || {
        // SplitMix64.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d1_049e_b4a1_33eb);
        z ^ (z >> 31)
    };
    let volatile = regex::Regex::new(r#""(requestId|generatedAt)":"[^"]*""#).unwrap();
    let before = direct_answers(server).await;
    for n in 0..selections {
        let profile = &profiles[n % profiles.len()];
        let mut alias = 0;
        let fields = random_selection("HomePage", &mut rng, n == 0, &mut alias);
        let root = if rng().is_multiple_of(3) {
            "page: home"
        } else {
            "home"
        };
        let (head, argument, variables) = if rng().is_multiple_of(2) {
            (
                "query Home($p: ID!)",
                "$p".to_owned(),
                json!({"p": profile}),
            )
        } else {
            ("query", format!("{profile:?}"), json!({}))
        };
        let query = |directive: &str| {
            format!(
                "{head} {{ {root}(profileId: {argument}) {{ requestId{directive} generatedAt {fields} }} }}"
            )
        };
        let direct = query("");
        let executed = query(" @include(if: true)");
        let first = server.gql_text(&direct, variables.clone()).await;
        assert!(first.starts_with(r#"{"data":{"#), "{first:.300}\n{direct}");
        let second = server.gql_text(&direct, variables.clone()).await;
        let reference = server.gql_text(&executed, variables.clone()).await;
        assert_eq!(
            volatile.replace_all(&second, ""),
            volatile.replace_all(&reference, ""),
            "profile {profile}, query {direct}"
        );
        assert_eq!(
            volatile.replace_all(&first, ""),
            volatile.replace_all(&reference, ""),
            "profile {profile}, query {direct}"
        );
    }
    assert_eq!(
        direct_answers(server).await - before,
        selections as f64,
        "each query's second request is answered directly"
    );
}
