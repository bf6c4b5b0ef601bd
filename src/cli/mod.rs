//! The `marquee` command line: global options, settings resolution and the dispatch to one
//! module per command group.

mod experiments;
mod import;
mod lab;
mod models;
mod serve;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::FileConfig;
use crate::engine::Engine;
use crate::store::Store;
use crate::{api, app};

#[derive(Debug, Parser)]
#[command(
    name = "marquee",
    version,
    about = "Personalized home pages for streaming services, over GraphQL"
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// Where the SQLite database, fetched datasets and model artifacts live.
    #[arg(long, global = true, env = "MARQUEE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// sqlite://FILE or postgres://… (default: marquee.db in the data directory).
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Production serving: redis://… for shared candidate lists and trending counts
    /// (default: in process).
    #[arg(long, global = true, env = "REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Production serving: nats://… for the event stream, JetStream (default: in process).
    #[arg(long, global = true, env = "NATS_URL", hide_env_values = true)]
    nats_url: Option<String>,
    /// Prefix of Redis keys and of the event stream's name (default `marquee`): deployments
    /// sharing a Redis or NATS server use different ones.
    #[arg(long, global = true, env = "MARQUEE_KEY_PREFIX")]
    key_prefix: Option<String>,
    /// Keep segment lists (New Releases, genre rows: shared by every profile of an audience)
    /// between pages and replicas; `false` computes them on every page (to measure what the
    /// cache saves).
    #[arg(long, global = true, env = "MARQUEE_SEGMENT_CACHE", default_value_t = true, action = clap::ArgAction::Set)]
    segment_cache: bool,
    /// Keep each profile's candidate lists (Top Picks, Because You Watched, …; keyed by its
    /// history, model and variant) between pages; `false` computes them on every page (to
    /// measure what the cache saves).
    #[arg(long, global = true, env = "MARQUEE_LIST_CACHE", default_value_t = true, action = clap::ArgAction::Set)]
    list_cache: bool,
    /// Settings file (default: ./marquee.toml if present).
    #[arg(long, global = true, env = "MARQUEE_CONFIG")]
    config: Option<PathBuf>,
    /// Log lines on stderr as text, or as one JSON object per line (with the request's span
    /// fields, e.g. `request_id`). `MARQUEE_LOG` filters either.
    #[arg(long, global = true, env = "MARQUEE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Cli {
    pub fn log_format(&self) -> LogFormat {
        self.global.log_format
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch MovieLens-100K, import it, train, and serve with GraphiQL: the whole demo.
    Demo(serve::ServeArgs),
    /// Import a dataset.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Train models from the events in the database and activate them.
    Train(models::TrainArgs),
    /// Serve GraphQL, /healthz and /readyz.
    Serve(serve::ServeArgs),
    /// Warm the shared list cache for recently active profiles with the active model (after
    /// an activation), at a bounded rate.
    Precompute(models::PrecomputeArgs),
    /// List, activate or roll back trained models.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Evaluate and inspect GrowthBook features and experiments.
    #[command(subcommand)]
    Experiments(experiments::ExperimentsCommand),
    /// Drive a running server with simulated viewers to check the experiment pipeline
    /// (A/A experiments and a deliberately degraded A/B variant).
    Simulate(lab::SimulateArgs),
    /// Write synthetic data (RecBole atomic files) for scale runs: power-law popularity,
    /// latent taste clusters, timelines. Deterministic for a seed.
    Generate(lab::GenerateArgs),
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Measure page assembly latency for random profiles.
    Bench(lab::BenchArgs),
    /// Split a dataset for offline evaluation (protocol ml100k-temporal-80-20-v1).
    #[command(subcommand)]
    Split(crate::lab::quality::SplitCommand),
    /// Measure the served Top Picks ranking offline on a split, next to MostPop.
    Eval(crate::lab::quality::EvalArgs),
    /// Print a bearer token from the development issuer (the key in the data directory):
    /// for scripts, load tests and operators. MovieLens user N is account N.
    DevToken(DevTokenArgs),
}

#[derive(Debug, Args)]
struct DevTokenArgs {
    /// The account the token speaks for.
    #[arg(long)]
    account: String,
    /// viewer, pm or admin.
    #[arg(long, default_value = "viewer")]
    role: crate::auth::Role,
    /// The server's base URL (default: [auth] public_url, else http://<listen address>).
    #[arg(long)]
    url: Option<String>,
}

pub async fn run(cli: Cli) -> Result<()> {
    let cfg = resolve(&cli.global)?;
    match cli.command {
        Command::Demo(args) => serve::demo(&cfg, args).await,
        Command::Import(cmd) => import::run(&cfg, cmd).await,
        Command::Train(args) => models::train(&cfg, args).await,
        Command::Serve(args) => serve::serve(&cfg, args).await,
        Command::Models(cmd) => models::run(&cfg, cmd).await,
        Command::Precompute(args) => models::precompute(&cfg, args).await,
        Command::Experiments(cmd) => experiments::run(&cfg, cmd).await,
        Command::Simulate(args) => lab::simulate(&cfg, args).await,
        Command::Generate(args) => lab::generate(args),
        Command::Schema => {
            print!("{}", api::sdl());
            Ok(())
        }
        Command::Bench(args) => lab::bench(&cfg, args).await,
        Command::Split(cmd) => crate::lab::quality::split(cmd),
        Command::DevToken(args) => dev_token(&cfg, args),
        Command::Eval(args) => {
            crate::lab::quality::eval(args, &cfg.data_dir, cfg.file.rows.as_deref())
        }
    }
}

fn dev_token(cfg: &Resolved, args: DevTokenArgs) -> Result<()> {
    let account = crate::domain::AccountId::parse(&args.account)
        .map_err(|e| anyhow::anyhow!("--account: {e}"))?;
    let listen = cfg
        .file
        .listen
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8080)));
    let public = args.url.as_deref().or(cfg.file.auth.public_url.as_deref());
    let issuer = api::auth::dev_issuer_url(public, listen);
    let audience = cfg
        .file
        .auth
        .audience
        .as_deref()
        .unwrap_or(crate::auth::DEFAULT_AUDIENCE);
    let token = crate::auth::DevIssuer::load(&cfg.data_dir)?
        .token(&issuer, audience, &account, args.role)?;
    println!("{token}");
    Ok(())
}

/// Settings after flags, environment and file are merged.
struct Resolved {
    data_dir: PathBuf,
    database_url: String,
    serving: app::serving::ServingConfig,
    file: FileConfig,
}

fn resolve(global: &Global) -> Result<Resolved> {
    let file = match &global.config {
        Some(path) => FileConfig::load(path, true)?,
        None => FileConfig::load(Path::new("marquee.toml"), false)?,
    };
    let data_dir = global
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("data"));
    let database_url = global
        .database_url
        .clone()
        .or_else(|| file.database_url.clone())
        .unwrap_or_else(|| crate::store::sqlite_url(&data_dir));
    let serving = app::serving::ServingConfig {
        redis_url: global.redis_url.clone().or_else(|| file.redis_url.clone()),
        nats_url: global.nats_url.clone().or_else(|| file.nats_url.clone()),
        key_prefix: global
            .key_prefix
            .clone()
            .or_else(|| file.key_prefix.clone()),
        no_segment_cache: !global.segment_cache,
        no_list_cache: !global.list_cache,
    };
    Ok(Resolved {
        data_dir,
        database_url,
        serving,
        file,
    })
}

/// Opens the database, creating the data directory first (it holds the default SQLite file).
async fn open_store(cfg: &Resolved) -> Result<Store> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    Store::open(&cfg.database_url).await
}

fn say(msg: &str) {
    eprintln!("{msg}");
}

fn progress_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:40}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_owned());
    bar
}

fn spinner(msg: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_message(msg.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// The engine on the active model, with the page from `rows` (or the built-in one).
async fn load_engine(store: &Store, cfg: &Resolved, rows: Option<&Path>) -> Result<Engine> {
    app::models::load_engine(
        store,
        &cfg.data_dir,
        app::models::page_definition(rows)?,
        &[],
    )
    .await
}
