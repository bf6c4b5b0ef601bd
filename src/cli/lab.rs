//! The offline tools: `marquee bench`, `simulate` and `generate` (`split` and `eval` parse
//! their own arguments in `lab::quality`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::{Resolved, load_engine, open_store, progress_bar, say};
use crate::config::ClockSetting;
use crate::engine::model::TrainParams;
use crate::experiments::FeatureSet;
use crate::lab::{bench, generate as synthetic, simulate as simulation};
use crate::store::Store;

#[derive(Debug, Args)]
pub(super) struct SimulateArgs {
    /// The server to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub(super) url: String,
    #[arg(long, default_value_t = 400)]
    pub(super) profiles: usize,
    /// Home page visits per viewer.
    #[arg(long, default_value_t = 4)]
    pub(super) sessions: usize,
    /// Number of A/A experiments run side by side.
    #[arg(long, default_value_t = 40)]
    pub(super) aa: usize,
    /// Seed for tastes, assignment and choices; profile ids include it, so use a new seed
    /// against the same database.
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
}

#[derive(Debug, Args)]
pub(super) struct BenchArgs {
    /// Page requests to time.
    #[arg(long, default_value_t = 2000)]
    pub(super) requests: usize,
    /// Seed for choosing profiles.
    #[arg(long, default_value_t = 42)]
    pub(super) seed: u64,
    #[arg(long, env = "MARQUEE_ROWS")]
    pub(super) rows: Option<PathBuf>,
    /// Experiments to evaluate for every page, as `serve` does (default: ./experiments if
    /// present).
    #[arg(long, env = "MARQUEE_EXPERIMENTS")]
    pub(super) experiments: Option<PathBuf>,
    /// Measure a running server over HTTP instead (with --concurrency clients), and report
    /// its impression-log counters afterwards.
    #[arg(long)]
    pub(super) url: Option<String>,
    #[arg(long, default_value_t = 8)]
    pub(super) concurrency: usize,
    /// With --url: open-loop load at this many pages per second (latency counted from each
    /// request's scheduled time; no coordinated omission) instead of --concurrency clients.
    #[arg(long, requires = "url")]
    pub(super) rate: Option<f64>,
    /// With --rate: how long to keep the rate, in seconds.
    #[arg(long, default_value_t = 10.0, requires = "rate")]
    pub(super) duration: f64,
    /// With --url: bearer token sent as `Authorization: Bearer …` (never printed).
    #[arg(
        long,
        env = "MARQUEE_BENCH_TOKEN",
        hide_env_values = true,
        requires = "url"
    )]
    pub(super) token: Option<String>,
    /// Measure training, artifact size, peak memory and ANN retrieval instead, on the atomic
    /// files in DIR (e.g. from `marquee generate`), read straight from disk.
    #[arg(long, value_name = "DIR")]
    pub(super) training: Option<PathBuf>,
    /// With --training: profiles whose folded-in vectors query the ANN index.
    #[arg(long, default_value_t = 1000)]
    pub(super) queries: usize,
    /// With --training: training parameters as JSON, e.g. '{"als": {"factors": 32}}'.
    #[arg(long)]
    pub(super) train_params: Option<String>,
    /// With --training: keep the trained model in FILE, and when FILE exists measure it
    /// instead of training again (ANN settings from --train-params rebuild its index).
    #[arg(long, value_name = "FILE")]
    pub(super) model_cache: Option<PathBuf>,
    /// Measure the experiment report instead: build a database with --impressions row items
    /// (pages of 100, plays attributed) and time the report. Uses --database-url, which must
    /// be empty; without one, `<data-dir>/bench-report.db`, replaced on every run.
    #[arg(long)]
    pub(super) report: bool,
    /// With --report: row items to log.
    #[arg(long, default_value_t = 1_000_000)]
    pub(super) impressions: u64,
    /// Measure freshness across replicas instead: an event recorded on --url (replica A)
    /// until the next page of replica URL_B reflects it (p50/p99). Writes thumbs-down
    /// events: run it against a test deployment.
    #[arg(long, value_name = "URL_B", requires = "url")]
    pub(super) freshness: Option<String>,
    /// Measure sticky bucketing instead: the per-page cost of reading a profile's sticky
    /// document and writing it when first assigned, in the database (embedded mode) and, with
    /// REDIS_URL, with Redis in front of it. --requests fresh identities, each read again
    /// --returning times. Uses --database-url; without one, `<data-dir>/bench-sticky.db`.
    #[arg(long)]
    pub(super) sticky: bool,
    /// With --sticky: later pages per identity.
    #[arg(long, default_value_t = 5, requires = "sticky")]
    pub(super) returning: usize,
    /// Measure authentication instead: the CPU per request of validating an access token
    /// with a cached JWKS, and the first-use cost (discovery + JWKS over HTTP).
    #[arg(long)]
    pub(super) auth: bool,
}

#[derive(Debug, Args)]
pub(super) struct GenerateArgs {
    /// Output directory (gen.item, gen.user, gen.inter, movies.json).
    pub(super) out: PathBuf,
    #[arg(long)]
    pub(super) profiles: u64,
    #[arg(long)]
    pub(super) titles: u64,
    #[arg(long)]
    pub(super) events: u64,
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
}

pub(super) async fn simulate(cfg: &Resolved, a: SimulateArgs) -> Result<()> {
    simulation::run(simulation::SimulateArgs {
        data_dir: cfg.data_dir.clone(),
        url: a.url,
        profiles: a.profiles,
        sessions: a.sessions,
        aa_experiments: a.aa,
        seed: a.seed,
    })
    .await
}

pub(super) fn generate(a: GenerateArgs) -> Result<()> {
    let GenerateArgs {
        out,
        profiles,
        titles,
        events,
        seed,
    } = a;
    let bar = progress_bar("events");
    bar.set_length(events);
    let args = synthetic::GenerateArgs {
        profiles,
        titles,
        events,
        seed,
    };
    let started = std::time::Instant::now();
    synthetic::generate(&out, &args, &|n| bar.set_position(n))?;
    bar.finish_and_clear();
    say(&format!(
        "wrote {profiles} profiles, {titles} titles, {events} events to {} in {:.1}s",
        out.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// In process on the loaded data; with `--url` against a running server; with `--training`
/// training and retrieval on atomic files.
pub(super) async fn bench(cfg: &Resolved, args: BenchArgs) -> Result<()> {
    if args.auth {
        let requests = args.requests;
        return tokio::task::spawn_blocking(move || bench::run_auth(requests)).await?;
    }
    if let Some(dir) = args.training {
        let params: TrainParams = match &args.train_params {
            Some(json) => serde_json::from_str(json).context("--train-params")?,
            None => TrainParams::default(),
        };
        return tokio::task::spawn_blocking(move || {
            bench::run_training(
                &dir,
                &params,
                args.queries,
                args.seed,
                args.model_cache.as_deref(),
            )
        })
        .await?;
    }
    if let (Some(url), Some(url_b)) = (&args.url, &args.freshness) {
        return bench::run_freshness(url, url_b, &cfg.data_dir, args.requests.min(500), args.seed)
            .await;
    }
    if let (Some(url), Some(rate)) = (&args.url, args.rate) {
        let duration = std::time::Duration::try_from_secs_f64(args.duration)
            .ok()
            .filter(|d| !d.is_zero())
            .context("--duration must be a positive number of seconds")?;
        // With --token, every profile the token may see; else accounts 1–100 signed in with
        // the server's development issuer, each requesting its own profiles.
        let profiles = match &args.token {
            Some(token) => {
                let token: std::sync::Arc<str> = token.as_str().into();
                bench_profiles(cfg, url, Some(&token))
                    .await?
                    .into_iter()
                    .map(|p| (p, Some(token.clone())))
                    .collect()
            }
            None => bench::dev_signed_in_profiles(url, &cfg.data_dir)
                .await?
                .into_iter()
                .map(|(p, t)| (p, Some(t)))
                .collect(),
        };
        return bench::run_open_loop(bench::OpenLoopArgs {
            url: url.clone(),
            rate,
            duration,
            profiles,
            seed: args.seed,
            timeout: std::time::Duration::from_secs(10),
        })
        .await;
    }
    if let Some(url) = args.url {
        return bench::run_http(
            &url,
            &cfg.data_dir,
            args.requests,
            args.concurrency,
            args.seed,
        )
        .await;
    }
    if args.sticky {
        let url = if cfg.database_url == crate::store::sqlite_url(&cfg.data_dir) {
            std::fs::create_dir_all(&cfg.data_dir)?;
            let file = cfg.data_dir.join("bench-sticky.db");
            format!("sqlite://{}?mode=rwc", file.display())
        } else {
            cfg.database_url.clone()
        };
        let store = Store::open(&url).await?;
        let prefix = format!(
            "{}-bench",
            cfg.serving.key_prefix.as_deref().unwrap_or("marquee")
        );
        let redis = cfg
            .serving
            .redis_url
            .as_deref()
            .map(|u| crate::app::serving::cache::Redis::connect(u, &prefix))
            .transpose()?;
        return bench::run_sticky(&store, redis.as_ref(), args.requests, args.returning).await;
    }
    if args.report {
        let url = if cfg.database_url == crate::store::sqlite_url(&cfg.data_dir) {
            std::fs::create_dir_all(&cfg.data_dir)?;
            let file = cfg.data_dir.join("bench-report.db");
            for suffix in ["", "-wal", "-shm"] {
                let f = PathBuf::from(format!("{}{suffix}", file.display()));
                if f.exists() {
                    std::fs::remove_file(&f)
                        .with_context(|| format!("cannot remove {}", f.display()))?;
                }
            }
            format!("sqlite://{}?mode=rwc", file.display())
        } else {
            cfg.database_url.clone()
        };
        let store = Store::open(&url).await?;
        let report = bench::ReportBenchArgs {
            impressions: args.impressions,
            seed: args.seed,
        };
        return bench::run_report(&store, &report).await;
    }
    let store = open_store(cfg).await?;
    let rows = args.rows.or_else(|| cfg.file.rows.clone());
    let engine = load_engine(&store, cfg, rows.as_deref()).await?;
    let clock = ClockSetting::LastEvent
        .resolve(&store, crate::clock::EventWindow::default())
        .await?;
    // The experiments `serve` would load (`--experiments`, the settings file, ./experiments).
    let dir = args
        .experiments
        .or_else(|| cfg.file.experiments.clone())
        .or_else(|| Some(PathBuf::from("experiments")).filter(|d| d.is_dir()));
    let features = match dir {
        Some(dir) => FeatureSet::load_dir(&dir, &|o| {
            engine.home.with_overrides(o, &engine.sources).map(|_| ())
        })
        .with_context(|| format!("experiments in {}", dir.display()))?,
        None => FeatureSet::default(),
    };
    bench::run(
        &store,
        &engine,
        &features,
        &clock,
        args.requests,
        args.seed,
        !cfg.serving.no_segment_cache,
    )
    .await
}

/// The profiles an open-loop bench picks from: every profile in the database when it can be
/// read (the server's own, with the same settings), else the first 100 the server lists.
async fn bench_profiles(cfg: &Resolved, url: &str, token: Option<&str>) -> Result<Vec<String>> {
    // Never create an SQLite file that is not there (opening one with mode=rwc would).
    let sqlite_missing = cfg
        .database_url
        .strip_prefix("sqlite://")
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .is_some_and(|file| !std::path::Path::new(file).exists());
    if !sqlite_missing
        && let Ok(store) = Store::open(&cfg.database_url).await
        && let Ok(ids) = store.profile_ids().await
        && !ids.is_empty()
    {
        say(&format!("{} profiles from the database", ids.len()));
        return Ok(ids.into_iter().map(|(id, _)| id.to_string()).collect());
    }
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", url.trim_end_matches('/')))
        .json(&serde_json::json!({"query": "{ profiles(first: 100) { id } }"}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body: serde_json::Value = request.send().await?.json().await?;
    let ids: Vec<String> = body["data"]["profiles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["id"].as_str().map(str::to_owned))
        .collect();
    say(&format!("{} profiles listed by {url}", ids.len()));
    Ok(ids)
}
