//! The `marquee` command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{ClockSetting, FileConfig};
use crate::domain::Country;
use crate::engine::model::TrainParams;
use crate::experiments::FeatureSet;
use crate::ingest::{fetch, movielens};
use crate::lab::bench;
use crate::store::{ImportOptions, Store, Table};
use crate::{api, app, clock};

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
    /// Settings file (default: ./marquee.toml if present).
    #[arg(long, global = true, env = "MARQUEE_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch MovieLens-100K, import it, train, and serve with GraphiQL: the whole demo.
    Demo(ServeArgs),
    /// Import a dataset.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Train models from the events in the database and activate them.
    Train(TrainArgs),
    /// Serve GraphQL, /healthz and /readyz.
    Serve(ServeArgs),
    /// List, activate or roll back trained models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Evaluate and inspect GrowthBook features and experiments.
    #[command(subcommand)]
    Experiments(ExperimentsCommand),
    /// Drive a running server with simulated viewers to check the experiment pipeline
    /// (A/A experiments and a deliberately degraded A/B variant).
    Simulate(SimulateCli),
    /// Write synthetic data (RecBole atomic files) for scale runs: power-law popularity,
    /// latent taste clusters, timelines. Deterministic for a seed.
    Generate {
        /// Output directory (gen.item, gen.user, gen.inter, movies.json).
        out: PathBuf,
        #[arg(long)]
        profiles: u64,
        #[arg(long)]
        titles: u64,
        #[arg(long)]
        events: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Measure page assembly latency for random profiles.
    Bench(BenchArgs),
    /// Split a dataset for offline evaluation (protocol ml100k-temporal-80-20-v1).
    #[command(subcommand)]
    Split(crate::lab::quality::SplitCommand),
    /// Measure the served Top Picks ranking offline on a split, next to MostPop.
    Eval(crate::lab::quality::EvalArgs),
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Import RecBole atomic files (*.inter, and optionally *.item, *.user) from DIR.
    Movielens(ImportArgs),
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// Directory with exactly one *.inter file.
    dir: PathBuf,
    /// vega-datasets' movies.json, to set MPAA ratings (default: DIR/movies.json if present).
    #[arg(long)]
    maturity: Option<PathBuf>,
    /// Accounts whose id hashes to 0 modulo N get a kids profile `<id>-kids` (0: none).
    #[arg(long, default_value_t = 5)]
    kids_every: u32,
    /// Country for users without a `country` column (MovieLens users are in the US).
    #[arg(long, default_value = "US")]
    country: String,
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// "now" for trending windows: system, last-event or an RFC 3339 time.
    #[arg(long, default_value = "last-event")]
    clock: ClockSetting,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "MARQUEE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Page definition file (default: the rows/home.toml built into the binary).
    #[arg(long, env = "MARQUEE_ROWS")]
    rows: Option<PathBuf>,
    /// "now": system, last-event (replayed data) or an RFC 3339 time.
    #[arg(long, env = "MARQUEE_CLOCK")]
    clock: Option<ClockSetting>,
    /// Directory of GrowthBook feature files (default: ./experiments if present).
    #[arg(long, env = "MARQUEE_EXPERIMENTS")]
    experiments: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// All registered models, newest first.
    List,
    /// Make VERSION the active model.
    Activate { version: String },
    /// Re-activate the model registered before the active one.
    Rollback,
}

#[derive(Debug, Subcommand)]
enum ExperimentsCommand {
    /// Evaluate one feature for one user and print the result as JSON (GrowthBook's shape).
    Evaluate(EvaluateArgs),
    /// Load and validate a directory of feature files and list its experiments.
    List {
        #[arg(long, default_value = "experiments")]
        dir: PathBuf,
    },
    /// Results per variation: exposures, impressions, play and completion rates, conversion,
    /// lift vs control with 95% CI and p-value, and the sample-ratio-mismatch check.
    Report {
        /// Experiment key.
        key: String,
        #[arg(long, default_value = "experiments")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["context", "features"]))]
struct EvaluateArgs {
    /// A GrowthBook context JSON (attributes, features, savedGroups, forcedVariations, qaMode,
    /// enabled, url); `-` reads standard input.
    #[arg(long)]
    context: Option<PathBuf>,
    /// A feature file (`{"features": …}` as in experiments/) — the short form, with --attributes.
    #[arg(long, requires = "attributes")]
    features: Option<PathBuf>,
    /// User attributes as a JSON object, with --features.
    #[arg(long)]
    attributes: Option<String>,
    /// The feature to evaluate.
    #[arg(long)]
    feature: String,
}

#[derive(Debug, Args)]
struct SimulateCli {
    /// The server to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The directory the server loads experiments from (started with `--experiments DIR`);
    /// the simulation writes `simulation.json` there. It must not define `home-rows` elsewhere.
    #[arg(long)]
    experiments_dir: PathBuf,
    #[arg(long, default_value_t = 400)]
    profiles: usize,
    /// Home page visits per viewer.
    #[arg(long, default_value_t = 4)]
    sessions: usize,
    /// Number of A/A experiments run side by side.
    #[arg(long, default_value_t = 40)]
    aa: usize,
    /// Seed for tastes, assignment and choices; profile ids include it, so use a new seed
    /// against the same database.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Page requests to time.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Seed for choosing profiles.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, env = "MARQUEE_ROWS")]
    rows: Option<PathBuf>,
    /// Measure a running server over HTTP instead (with --concurrency clients), and report
    /// its impression-log counters afterwards.
    #[arg(long)]
    url: Option<String>,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Measure training, artifact size, peak memory and ANN retrieval instead, on the atomic
    /// files in DIR (e.g. from `marquee generate`), read straight from disk.
    #[arg(long, value_name = "DIR")]
    training: Option<PathBuf>,
    /// With --training: profiles whose folded-in vectors query the ANN index.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// With --training: training parameters as JSON, e.g. '{"als": {"factors": 32}}'.
    #[arg(long)]
    train_params: Option<String>,
    /// With --training: keep the trained model in FILE, and when FILE exists measure it
    /// instead of training again (ANN settings from --train-params rebuild its index).
    #[arg(long, value_name = "FILE")]
    model_cache: Option<PathBuf>,
}

/// Settings after flags, environment and file are merged.
struct Resolved {
    data_dir: PathBuf,
    database_url: String,
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
    Ok(Resolved {
        data_dir,
        database_url,
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

pub async fn run(cli: Cli) -> Result<()> {
    let cfg = resolve(&cli.global)?;
    match cli.command {
        Command::Schema => {
            print!("{}", api::sdl());
            Ok(())
        }
        Command::Experiments(ExperimentsCommand::Evaluate(args)) => evaluate(&args),
        Command::Generate {
            out,
            profiles,
            titles,
            events,
            seed,
        } => {
            let bar = progress_bar("events");
            bar.set_length(events);
            let args = crate::lab::generate::GenerateArgs {
                profiles,
                titles,
                events,
                seed,
            };
            let started = std::time::Instant::now();
            crate::lab::generate::generate(&out, &args, &|n| bar.set_position(n))?;
            bar.finish_and_clear();
            say(&format!(
                "wrote {profiles} profiles, {titles} titles, {events} events to {} in {:.1}s",
                out.display(),
                started.elapsed().as_secs_f64()
            ));
            Ok(())
        }
        Command::Simulate(a) => {
            crate::lab::simulate::run(crate::lab::simulate::SimulateArgs {
                url: a.url,
                experiments_dir: a.experiments_dir,
                profiles: a.profiles,
                sessions: a.sessions,
                aa_experiments: a.aa,
                seed: a.seed,
            })
            .await
        }
        Command::Experiments(ExperimentsCommand::Report { key, dir }) => {
            let set = load_features(&dir, &cfg)?;
            let store = open_store(&cfg).await?;
            match app::reports::experiment_report(&store, &set, &key).await? {
                Some(report) => {
                    print!("{}", app::reports::format_report(&report));
                    Ok(())
                }
                None => anyhow::bail!("no experiment {key:?} in {}", dir.display()),
            }
        }
        Command::Experiments(ExperimentsCommand::List { dir }) => {
            let set = load_features(&dir, &cfg)?;
            for e in set.experiments() {
                let variations: Vec<String> = e
                    .variations
                    .iter()
                    .map(|v| format!("{}={:.0}%", v.key, v.weight * 100.0))
                    .collect();
                println!(
                    "{}  feature={}  hash={}  coverage={:.0}%  variations: {}{}",
                    e.key,
                    e.feature_key,
                    e.hash_attribute,
                    e.coverage * 100.0,
                    variations.join(", "),
                    e.condition
                        .map(|c| format!("  condition={c}"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Import(ImportCommand::Movielens(args)) => {
            let store = open_store(&cfg).await?;
            import_movielens(
                &store,
                &args.dir,
                args.maturity.as_deref(),
                args.kids_every,
                &args.country,
            )
            .await
        }
        Command::Train(args) => {
            let store = open_store(&cfg).await?;
            let clock = args.clock.resolve(&store).await?;
            train(&store, &cfg.data_dir, &clock).await
        }
        Command::Serve(args) => {
            let store = open_store(&cfg).await?;
            serve(store, &cfg, args, ClockSetting::System).await
        }
        Command::Demo(args) => {
            std::fs::create_dir_all(&cfg.data_dir).with_context(|| {
                format!("cannot create data directory {}", cfg.data_dir.display())
            })?;
            let ml = tokio::task::spawn_blocking({
                let dir = cfg.data_dir.clone();
                move || fetch::ensure_movielens(&dir, &say)
            })
            .await??;
            let store = open_store(&cfg).await?;
            if store.count(Table::Events).await? == 0 {
                import_movielens(&store, &ml.dir, ml.movies_json.as_deref(), 5, "US").await?;
            } else {
                say("data already imported; skipping import");
            }
            let fingerprint = store.data_fingerprint().await?;
            // A model trained by an older Marquee (another artifact format) is retrained too.
            let fresh = store.active_model().await?.is_some_and(|m| {
                m.data_fingerprint == fingerprint
                    && app::models::artifact_is_readable(&cfg.data_dir, &m)
            });
            if fresh {
                say("active model is up to date; skipping training");
            } else {
                let clock = ClockSetting::LastEvent.resolve(&store).await?;
                train(&store, &cfg.data_dir, &clock).await?;
            }
            serve(store, &cfg, args, ClockSetting::LastEvent).await
        }
        Command::Models(cmd) => {
            let store = open_store(&cfg).await?;
            match cmd {
                ModelsCommand::List => {
                    for m in store.models().await? {
                        println!("{}", app::models::describe_model(&m));
                    }
                }
                ModelsCommand::Activate { version } => {
                    store.activate_model(&version).await?;
                    println!("activated {version}; running servers switch to it within seconds");
                }
                ModelsCommand::Rollback => {
                    let v = app::models::rollback(&store).await?;
                    println!("rolled back to {v}; running servers switch to it within seconds");
                }
            }
            Ok(())
        }
        Command::Split(cmd) => crate::lab::quality::split(cmd),
        Command::Eval(args) => {
            crate::lab::quality::eval(args, &cfg.data_dir, cfg.file.rows.as_deref())
        }
        Command::Bench(args) if args.training.is_some() => {
            let params: TrainParams = match &args.train_params {
                Some(json) => serde_json::from_str(json).context("--train-params")?,
                None => TrainParams::default(),
            };
            let dir = args.training.unwrap_or_default();
            tokio::task::spawn_blocking(move || {
                bench::run_training(
                    &dir,
                    &params,
                    args.queries,
                    args.seed,
                    args.model_cache.as_deref(),
                )
            })
            .await?
        }
        Command::Bench(args) if args.url.is_some() => {
            let url = args.url.unwrap_or_default();
            bench::run_http(&url, args.requests, args.concurrency, args.seed).await
        }
        Command::Bench(args) => {
            let store = open_store(&cfg).await?;
            let rows = args.rows.or_else(|| cfg.file.rows.clone());
            let engine = load_engine(&store, &cfg, rows.as_deref()).await?;
            let clock = ClockSetting::LastEvent.resolve(&store).await?;
            bench::run(&store, &engine, &clock, args.requests, args.seed).await
        }
    }
}

/// The engine on the active model, with the page from `rows` (or the built-in one).
async fn load_engine(
    store: &Store,
    cfg: &Resolved,
    rows: Option<&Path>,
) -> Result<crate::engine::Engine> {
    app::models::load_engine(
        store,
        &cfg.data_dir,
        app::models::page_definition(rows)?,
        &[],
    )
    .await
}

/// Loads feature files validated against the configured page.
fn load_features(dir: &Path, cfg: &Resolved) -> Result<FeatureSet> {
    let page = app::models::page_definition(cfg.file.rows.as_deref())?;
    let registry = crate::engine::sources::SourceRegistry::builtin();
    FeatureSet::load_dir(dir, &|o| page.with_overrides(o, &registry).map(|_| ()))
        .map_err(anyhow::Error::msg)
}

/// Reads a JSON file (or standard input for `-`); errors name the file, line and column.
fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))
}

fn evaluate(args: &EvaluateArgs) -> Result<()> {
    use crate::experiments::growthbook::Context;
    let context = match (&args.context, &args.features) {
        (Some(path), _) => read_json(path)?,
        (None, Some(path)) => {
            let file = read_json(path)?;
            let features = file.get("features").cloned().unwrap_or(file.clone());
            let attributes: serde_json::Value =
                serde_json::from_str(args.attributes.as_deref().unwrap_or("{}"))
                    .map_err(|e| anyhow::anyhow!("--attributes: {e}"))?;
            if !attributes.is_object() {
                anyhow::bail!("--attributes must be a JSON object");
            }
            serde_json::json!({
                "attributes": attributes,
                "features": features,
                "savedGroups": file.get("savedGroups").cloned().unwrap_or_else(|| serde_json::json!({})),
            })
        }
        (None, None) => anyhow::bail!("give --context FILE, or --features FILE --attributes JSON"),
    };
    let origin = args
        .context
        .as_ref()
        .or(args.features.as_ref())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut ctx: Context = serde_path_to_error::deserialize(context)
        .map_err(|e| anyhow::anyhow!("{origin}: {}: {}", e.path(), e.inner()))?;
    let result = ctx.eval_feature(&args.feature);
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

async fn import_movielens(
    store: &Store,
    dir: &Path,
    maturity: Option<&Path>,
    kids_every: u32,
    country: &str,
) -> Result<()> {
    let country = Country::parse(country).map_err(|e| anyhow::anyhow!("--country: {e}"))?;
    let spin = spinner(&format!("reading {}", dir.display()));
    let dir_owned = dir.to_owned();
    let mut data =
        tokio::task::spawn_blocking(move || movielens::read_dir(&dir_owned, Some(&country)))
            .await??;
    spin.finish_and_clear();
    for w in &data.warnings {
        say(&format!("warning: {w}"));
    }
    let maturity = maturity
        .map(Path::to_owned)
        .or_else(|| Some(dir.join("movies.json")).filter(|p| p.is_file()));
    if let Some(path) = &maturity {
        let matched = movielens::join_maturity(&mut data.titles, path)?;
        say(&format!(
            "maturity ratings: {matched} of {} titles matched in {}",
            data.titles.len(),
            path.display()
        ));
    }
    let bar = progress_bar("importing");
    let summary = store
        .import(
            &data,
            &ImportOptions {
                kids_every,
                received_at: clock::wall_now(),
            },
            &|stage, done, total| {
                bar.set_prefix(stage.to_owned());
                bar.set_length(total);
                bar.set_position(done);
            },
        )
        .await?;
    bar.finish_and_clear();
    say(&format!(
        "imported {} titles ({} people links), {} accounts ({} with a kids profile), {} new events ({} already present)",
        summary.titles,
        summary.title_entities,
        summary.profiles,
        summary.kids_profiles,
        summary.events_new,
        summary.events_already_present
    ));
    Ok(())
}

async fn train(store: &Store, data_dir: &Path, clock: &clock::Clock) -> Result<()> {
    let spin = spinner("training (popularity, trending, item-item similarity)");
    let report = app::models::train(store, data_dir, clock, &TrainParams::default()).await?;
    spin.finish_and_clear();
    say(&format!(
        "trained model {} on {} interactions in {:.1}s (now = {})",
        report.record.version,
        report.record.interactions,
        report.seconds,
        clock::format_rfc3339(report.record.trained_at)
    ));
    Ok(())
}

async fn serve(
    store: Store,
    cfg: &Resolved,
    args: ServeArgs,
    default_clock: ClockSetting,
) -> Result<()> {
    let listen = args
        .listen
        .or(cfg.file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let clock_setting = match args.clock {
        Some(c) => c,
        None => match &cfg.file.clock {
            Some(s) => s
                .parse()
                .map_err(anyhow::Error::msg)
                .context("marquee.toml: clock")?,
            None => default_clock,
        },
    };
    let clock = clock_setting.resolve(&store).await?;
    let rows = args.rows.or_else(|| cfg.file.rows.clone());
    // Model versions that experiments name are loaded by the model watcher, right after start.
    let engine = load_engine(&store, cfg, rows.as_deref()).await?;
    let examples = example_profiles(&store).await?;
    let model = engine.model.version.clone();
    let titles = engine.catalog.len();
    let experiments_dir = args
        .experiments
        .or_else(|| cfg.file.experiments.clone())
        .or_else(|| Some(PathBuf::from("experiments")).filter(|d| d.is_dir()));
    let (impressions, impression_writer) =
        crate::app::impressions::ImpressionLog::start(store.clone());
    let state = app::AppState::new(store, engine, FeatureSet::default(), clock, impressions);
    if let Some(dir) = &experiments_dir {
        // At start a broken file is an error: nothing good is loaded yet to fall back to.
        let features = state.load_features(dir).map_err(anyhow::Error::msg)?;
        say(&format!(
            "experiments: {} features from {}",
            features.features.len(),
            dir.display()
        ));
        state.features.store(std::sync::Arc::new(features));
        app::watchers::watch_experiments(&state, dir.clone());
    }
    app::watchers::watch_models(&state, cfg.data_dir.clone(), rows);
    let served = api::serve(state.clone(), listen, |addr| {
        // Tests read this line to find the port.
        println!("listening on http://{addr}");
        say(&format!("GraphiQL:  http://{addr}/graphql"));
        say(&format!("catalogue: {titles} titles, model {model}, now = {}", clock::format_rfc3339(clock.now())));
        if !examples.is_empty() {
            say(&format!("try profiles: {}", examples.join(", ")));
            say(&format!(
                "  e.g. {{ home(profileId: \"{}\") {{ rows {{ title items {{ title {{ name maturityRating }} reason }} }} }} }}",
                examples[0]
            ));
        }
    })
    .await;
    // Flush the impressions of the last pages before exiting.
    state.impressions.close();
    if let Err(e) = impression_writer.await {
        tracing::error!(error = %e, "impression writer failed");
    }
    served
}

/// A few adult profiles and a kids profile to print for people trying the demo.
async fn example_profiles(store: &Store) -> Result<Vec<String>> {
    let ids = store.profile_ids().await?;
    let mut out: Vec<String> = ids
        .iter()
        .filter(|(_, kids)| !kids)
        .map(|(id, _)| id.to_string())
        .take(3)
        .collect();
    if let Some((kid, _)) = ids.iter().find(|(_, kids)| *kids) {
        out.push(format!("{kid} (kids)"));
    }
    Ok(out)
}
