//! `marquee simulate`: synthetic viewers with hidden tastes drive a running server through its
//! public GraphQL API, so that the experiment machinery (assignment, exposure and impression
//! logging, attribution, statistics) can be checked against a known truth.
//!
//! The simulation creates its experiments through the console's GraphQL API as a product
//! manager would (`saveFeature`, then `launchExperiment`), runs the viewers, and reads the
//! results back with `experimentReport`:
//! - `sim<seed>-aa-NN`: A/A experiments (two identical variations). About 5% should come out
//!   "significant" at p < 0.05 — more means the pipeline invents effects.
//! - `sim<seed>-ab`: a real difference. Variation 1 degrades the page to Trending and New Releases
//!   only (no personal rows); viewers play titles by their hidden tastes, so the report must
//!   find a negative lift.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::auth::{DEFAULT_AUDIENCE, DEV_ISSUER_PATH, DevIssuer, Role};
use crate::domain::AccountId;
use crate::rng::SplitMix64;

pub struct SimulateArgs {
    pub url: String,
    pub profiles: usize,
    pub sessions: usize,
    pub aa_experiments: usize,
    pub seed: u64,
    /// The server's data directory: its development issuer's key signs the viewers' tokens.
    pub data_dir: PathBuf,
}

/// A viewer's hidden taste: how much it likes each genre, 0–1.
struct Viewer {
    id: String,
    /// A development-issuer token for the viewer's account (one account per viewer).
    token: String,
    likes: Vec<(String, f64)>,
}

impl Viewer {
    fn affinity(&self, genres: &[String]) -> f64 {
        genres
            .iter()
            .filter_map(|g| self.likes.iter().find(|(l, _)| l == g).map(|(_, w)| *w))
            .fold(0.05, f64::max)
    }
}

struct Client {
    http: reqwest::Client,
    url: String,
    issuer: DevIssuer,
    /// A PM's token: experiments and their reports.
    pm: String,
}

impl Client {
    /// A development-issuer token for `account` on this server.
    fn token(&self, account: &str, role: Role) -> Result<String> {
        self.issuer.token(
            &format!("{}{DEV_ISSUER_PATH}", self.url),
            DEFAULT_AUDIENCE,
            &AccountId::parse(account)?,
            role,
        )
    }

    async fn gql(&self, query: &str, variables: Value) -> Result<Value> {
        self.gql_as(&self.pm, query, variables).await
    }

    async fn gql_as(&self, token: &str, query: &str, variables: Value) -> Result<Value> {
        let resp: Value = self
            .http
            .post(format!("{}/graphql", self.url))
            .bearer_auth(token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.url))?
            .json()
            .await?;
        if let Some(errors) = resp.get("errors") {
            bail!("GraphQL error: {errors}");
        }
        Ok(resp["data"].clone())
    }
}

/// Keys carry the seed, so runs with different seeds are separate experiments.
fn aa_key(seed: u64, i: usize) -> String {
    format!("sim{seed}-aa-{i:02}")
}

fn ab_key(seed: u64) -> String {
    format!("sim{seed}-ab")
}

/// The simulation's features: one per A/A experiment, and `home-rows` for the A/B one.
fn experiment_features(args: &SimulateArgs) -> Vec<(String, Value)> {
    let rule = |key: &str, variations: Value| {
        json!({"rules": [{
            "key": key, "seed": format!("{key}-{}", args.seed), "hashAttribute": "id",
            "hashVersion": 2, "weights": [0.5, 0.5], "variations": variations,
            "meta": [{"key": "control"}, {"key": "treatment"}]
        }]})
    };
    let mut features = Vec::new();
    for i in 0..args.aa_experiments {
        let key = aa_key(args.seed, i);
        features.push((key.clone(), rule(&key, json!([false, false]))));
    }
    let mut ab = rule(
        &ab_key(args.seed),
        json!([null, ["trending", "new-releases"]]),
    );
    ab["defaultValue"] = Value::Null;
    features.push(("home-rows".into(), ab));
    features
}

/// Creates the simulation's experiments through the console API and launches them. Refuses
/// to replace a `home-rows` feature that holds other experiments.
async fn install_experiments(client: &Client, args: &SimulateArgs) -> Result<()> {
    let existing = client
        .gql("{ experiments { key featureKey status } }", json!({}))
        .await?;
    let foreign: Vec<&str> = existing["experiments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["featureKey"] == "home-rows" && e["status"] == "RUNNING")
        .filter_map(|e| e["key"].as_str())
        .filter(|k| !k.starts_with("sim"))
        .collect();
    if !foreign.is_empty() {
        bail!(
            "the server runs experiments on home-rows ({}): stop them first, the simulation needs the feature",
            foreign.join(", ")
        );
    }
    for (key, definition) in experiment_features(args) {
        client
            .gql(
                "mutation($k: String!, $d: JSON!) { saveFeature(key: $k, definition: $d) { revision } }",
                json!({"k": key, "d": definition}),
            )
            .await
            .with_context(|| format!("saving feature {key}"))?;
    }
    let mut keys: Vec<String> = (0..args.aa_experiments)
        .map(|i| aa_key(args.seed, i))
        .collect();
    keys.push(ab_key(args.seed));
    for key in keys {
        client
            .gql(
                "mutation($k: String!) { launchExperiment(key: $k) { status } }",
                json!({"k": key}),
            )
            .await
            .with_context(|| format!("launching {key}"))?;
    }
    Ok(())
}

/// One viewer's visit: fetch the page, look at the first items of each row, play some.
async fn session(
    client: &Client,
    viewer: &Viewer,
    rng: &mut SplitMix64,
    visit: usize,
) -> Result<(usize, usize)> {
    let data = client
        .gql_as(
            &viewer.token,
            "query($p: ID!) { home(profileId: $p, platform: \"simulation\") { requestId rows { items { title { id genres } } } } }",
            json!({"p": viewer.id}),
        )
        .await?;
    let home = &data["home"];
    let mut events = Vec::new();
    let mut shown = 0;
    for (r, row) in home["rows"].as_array().into_iter().flatten().enumerate() {
        // People look at the start of a row, and less far down the page.
        for (i, item) in row["items"]
            .as_array()
            .into_iter()
            .flatten()
            .take(6)
            .enumerate()
        {
            shown += 1;
            let genres: Vec<String> = item["title"]["genres"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect();
            let p =
                0.25 * viewer.affinity(&genres) * 0.85f64.powi(r as i32) * 0.8f64.powi(i as i32);
            if rng.unit() < p {
                let title = item["title"]["id"].clone();
                let n = events.len();
                events.push(
                    json!({"clientEventId": format!("sim-{}-{visit}-{n}-play", viewer.id),
                    "titleId": title, "kind": "PLAY", "requestId": home["requestId"]}),
                );
                if rng.unit() < 0.7 * viewer.affinity(&genres) {
                    events.push(
                        json!({"clientEventId": format!("sim-{}-{visit}-{n}-done", viewer.id),
                        "titleId": title, "kind": "COMPLETE", "requestId": home["requestId"]}),
                    );
                }
            }
        }
    }
    let plays = events.iter().filter(|e| e["kind"] == "PLAY").count();
    if !events.is_empty() {
        client
            .gql_as(
                &viewer.token,
                "mutation($p: ID!, $e: [EventInput!]!) { recordEvents(profileId: $p, events: $e) { accepted } }",
                json!({"p": viewer.id, "e": events}),
            )
            .await?;
    }
    Ok((shown, plays))
}

pub async fn run(args: SimulateArgs) -> Result<()> {
    let url = args.url.trim_end_matches('/').to_owned();
    let issuer = DevIssuer::load(&args.data_dir)?;
    let pm = issuer.token(
        &format!("{url}{DEV_ISSUER_PATH}"),
        DEFAULT_AUDIENCE,
        &AccountId::parse("simulation-pm")?,
        Role::Pm,
    )?;
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        url,
        issuer,
        pm,
    };
    install_experiments(&client, &args).await?;

    let genres: Vec<String> = client.gql("{ genres { name } }", json!({})).await?["genres"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["name"].as_str().map(str::to_owned))
        .collect();
    if genres.len() < 2 {
        bail!("the catalogue needs at least two genres");
    }
    let mut rng = SplitMix64(args.seed);
    let mut viewers = Vec::with_capacity(args.profiles);
    for n in 0..args.profiles {
        let first = genres[rng.below(genres.len() as u64) as usize].clone();
        let second = genres[rng.below(genres.len() as u64) as usize].clone();
        let id = format!("sim{}-{n}", args.seed);
        let token = client.token(&id, Role::Viewer)?;
        client
            .gql_as(
                &token,
                "mutation($i: CreateProfileInput!) { createProfile(input: $i) { id } }",
                json!({"i": {"id": id, "name": format!("Simulated {n}"), "country": "US", "onboardingGenres": [first]}}),
            )
            .await
            .with_context(|| format!("creating profile {id} (ids are per seed: use another --seed)"))?;
        viewers.push(Viewer {
            id,
            token,
            likes: vec![(first, 1.0), (second, 0.6)],
        });
    }
    let started = Instant::now();
    let (mut shown, mut plays) = (0, 0);
    for visit in 0..args.sessions {
        for v in &viewers {
            let (s, p) = session(&client, v, &mut rng, visit).await?;
            shown += s;
            plays += p;
        }
    }
    eprintln!(
        "simulated {} viewers × {} visits: {} items looked at, {} plays, in {:.1}s",
        viewers.len(),
        args.sessions,
        shown,
        plays,
        started.elapsed().as_secs_f64()
    );
    // Impressions are written asynchronously: give the writer a moment to catch up.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let report_query = "query($k: String!) { experimentReport(key: $k) { srmFlagged variations {
        exposedProfiles impressions plays playRate conversion
        playRateLift { relative ciLow ciHigh pValue significant }
        conversionLift { relative pValue significant } } } }";
    let mut significant = 0;
    for i in 0..args.aa_experiments {
        let r = client
            .gql(report_query, json!({"k": aa_key(args.seed, i)}))
            .await?;
        let treatment = &r["experimentReport"]["variations"][1];
        if treatment["playRateLift"]["significant"] == true {
            significant += 1;
        }
    }
    let ab = client
        .gql(report_query, json!({"k": ab_key(args.seed)}))
        .await?;
    let v = &ab["experimentReport"]["variations"];
    let lift = &v[1]["playRateLift"];
    println!(
        "A/A: {} of {} experiments not significant at p < 0.05 ({:.0}%)",
        args.aa_experiments - significant,
        args.aa_experiments,
        100.0 * (args.aa_experiments - significant) as f64 / args.aa_experiments.max(1) as f64
    );
    println!(
        "A/B (degraded page): play rate per impression control {:.4} vs treatment {:.4}, lift {:+.1}% [{:+.1}%, {:+.1}%], p = {:.2e}{}; SRM flagged: {}",
        v[0]["playRate"].as_f64().unwrap_or(f64::NAN),
        v[1]["playRate"].as_f64().unwrap_or(f64::NAN),
        lift["relative"].as_f64().unwrap_or(f64::NAN) * 100.0,
        lift["ciLow"].as_f64().unwrap_or(f64::NAN) * 100.0,
        lift["ciHigh"].as_f64().unwrap_or(f64::NAN) * 100.0,
        lift["pValue"].as_f64().unwrap_or(f64::NAN),
        if lift["relative"].as_f64().is_some_and(|l| l < 0.0) && lift["significant"] == true {
            " — detected, right sign"
        } else {
            " — NOT detected"
        },
        ab["experimentReport"]["srmFlagged"]
    );
    Ok(())
}
