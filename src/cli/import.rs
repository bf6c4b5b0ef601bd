//! `marquee import`: datasets into the store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use super::{Resolved, open_store, progress_bar, say};
use crate::app;
use crate::clock::Clock;
use crate::domain::Country;
use crate::ingest::tmdb;
use crate::store::{ImportMethod, Store};

#[derive(Debug, Subcommand)]
pub(super) enum ImportCommand {
    /// Import RecBole atomic files (*.inter, and optionally *.item, *.user) from DIR.
    Movielens(ImportArgs),
    /// Fetch catalogue metadata from TMDb (overview, tagline, runtime, language, poster and
    /// backdrop, US certification, cast, director) for the imported titles.
    Tmdb(TmdbArgs),
}

/// TMDb's documented ceiling is "somewhere in the 50 requests per second range".
const TMDB_MAX_RATE: u32 = 50;

#[derive(Debug, Clone, Args)]
pub(super) struct TmdbArgs {
    /// Environment variable that holds the TMDb API key (v3) or read access token (v4).
    /// The key is read from the environment only, so it never shows in `ps` or shell history.
    #[arg(long, default_value = "TMDB_API_KEY")]
    pub(super) api_key_env: String,
    /// TMDb API root (https; plain http only to a loopback address, e.g. a local mirror).
    #[arg(long, env = "TMDB_BASE_URL", default_value = tmdb::DEFAULT_BASE_URL)]
    pub(super) base_url: String,
    /// Only titles without stored metadata: resumes an interrupted run.
    #[arg(long)]
    pub(super) only_missing: bool,
    /// Titles looked up at once, and requests in flight at most.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub(super) concurrency: u16,
    /// Requests per second at most (token bucket). TMDb allows about 50; more is accepted
    /// only for another --base-url (a mirror or a test server).
    #[arg(long, env = "TMDB_RATE_LIMIT", default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub(super) rate_limit: u32,
    /// Seconds a whole request may take (connecting alone: 5 at most).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub(super) timeout: u64,
    /// Attempts per request, retries on 429, 5xx, timeouts and dropped connections included.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub(super) max_attempts: u32,
    /// Titles stored per transaction (an interruption loses at most one batch of work).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(super) batch_size: u32,
    /// MovieLens' links.csv (movieId,imdbId,tmdbId): TMDb ids to use instead of searching,
    /// e.g. to settle titles the report lists as ambiguous.
    #[arg(long)]
    pub(super) links: Option<PathBuf>,
    /// Build poster and backdrop URLs on this base instead of TMDb's image server (a CDN or
    /// proxy that the UI's Content-Security-Policy allows).
    #[arg(long, env = "TMDB_IMAGE_BASE_URL")]
    pub(super) image_base_url: Option<String>,
}

/// `marquee demo` reads the same settings from the environment.
#[derive(Debug, Parser)]
struct TmdbFromEnv {
    #[command(flatten)]
    args: TmdbArgs,
}

#[derive(Debug, Args)]
pub(super) struct ImportArgs {
    /// Directory with exactly one *.inter file.
    pub(super) dir: PathBuf,
    /// vega-datasets' movies.json, to set MPAA ratings (default: DIR/movies.json if present).
    #[arg(long)]
    pub(super) maturity: Option<PathBuf>,
    /// Accounts whose id hashes to 0 modulo N get a kids profile `<id>-kids` (0: none).
    #[arg(long, default_value_t = 5)]
    pub(super) kids_every: u32,
    /// Country for users without a `country` column (MovieLens users are in the US).
    #[arg(long, default_value = "US")]
    pub(super) country: String,
    /// How rows are written: `copy` streams the interactions from the file through
    /// PostgreSQL's COPY (PostgreSQL only; 50M interactions fit); `rows` reads the whole
    /// dataset into memory and inserts it in batches (both backends); `auto` is `copy` on
    /// PostgreSQL and `rows` on SQLite.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    pub(super) method: MethodArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum MethodArg {
    Auto,
    Rows,
    Copy,
}

impl From<MethodArg> for ImportMethod {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Auto => ImportMethod::Auto,
            MethodArg::Rows => ImportMethod::Rows,
            MethodArg::Copy => ImportMethod::Copy,
        }
    }
}

pub(super) async fn run(cfg: &Resolved, cmd: ImportCommand) -> Result<()> {
    match cmd {
        ImportCommand::Tmdb(args) => {
            let store = open_store(cfg).await?;
            let report = import_tmdb(&store, &args, &Clock::System).await?;
            print!("{report}");
            Ok(())
        }
        ImportCommand::Movielens(args) => {
            let store = open_store(cfg).await?;
            // The events are received now, whatever time the dataset's interactions carry.
            import_movielens(
                &store,
                &args.dir,
                args.maturity.as_deref(),
                args.kids_every,
                &args.country,
                args.method.into(),
                &Clock::System,
            )
            .await
        }
    }
}

pub(super) async fn import_movielens(
    store: &Store,
    dir: &Path,
    maturity: Option<&Path>,
    kids_every: u32,
    country: &str,
    method: ImportMethod,
    clock: &Clock,
) -> Result<()> {
    let country = Country::parse(country).map_err(|e| anyhow::anyhow!("--country: {e}"))?;
    let bar = progress_bar("importing");
    let source = app::admin::MovieLensSource {
        dir,
        maturity,
        kids_every,
        country,
        method,
    };
    let imported =
        app::admin::import_movielens(store, source, clock.now(), &|stage, done, total| {
            bar.set_prefix(stage.to_owned());
            bar.set_length(total);
            bar.set_position(done);
        })
        .await?;
    bar.finish_and_clear();
    for w in &imported.warnings {
        say(&format!("warning: {w}"));
    }
    if let Some((matched, path)) = &imported.maturity {
        say(&format!(
            "maturity ratings: {matched} titles matched in {}",
            path.display()
        ));
    }
    let summary = imported.summary;
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

/// TMDb settings for the demo when the API key's variable is set; `None` otherwise.
pub(super) fn tmdb_from_env() -> Result<Option<TmdbArgs>> {
    let parsed = TmdbFromEnv::try_parse_from(["marquee"]).context(
        "TMDb settings in the environment (TMDB_BASE_URL, TMDB_RATE_LIMIT, TMDB_IMAGE_BASE_URL)",
    )?;
    let mut args = parsed.args;
    if std::env::var_os(&args.api_key_env).is_none() {
        return Ok(None);
    }
    args.only_missing = true;
    Ok(Some(args))
}

/// Fetches and stores TMDb metadata; `clock` says when it was fetched (and when a
/// `Retry-After` date is).
pub(super) async fn import_tmdb(
    store: &Store,
    args: &TmdbArgs,
    clock: &Clock,
) -> Result<tmdb::ImportReport> {
    let key = std::env::var(&args.api_key_env).map_err(|_| {
        anyhow::anyhow!(
            "{} is not set: put your TMDb API key (v3) or read access token (v4) in it \
             (https://www.themoviedb.org/settings/api), or name another variable with --api-key-env",
            args.api_key_env
        )
    })?;
    let credential = tmdb::Credential::parse(&key)
        .with_context(|| format!("the value of {}", args.api_key_env))?;
    if args.rate_limit > TMDB_MAX_RATE && args.base_url.contains("themoviedb.org") {
        bail!(
            "--rate-limit {} is above TMDb's limit of about {TMDB_MAX_RATE} requests per second",
            args.rate_limit
        );
    }
    let client = tmdb::TmdbClient::new(tmdb::ClientOptions {
        rate_per_second: args.rate_limit,
        concurrency: usize::from(args.concurrency),
        connect_timeout: Duration::from_secs(args.timeout.min(5)),
        request_timeout: Duration::from_secs(args.timeout),
        max_attempts: args.max_attempts,
        clock: *clock,
        ..tmdb::ClientOptions::new(args.base_url.clone(), credential)
    })?;
    let links = match &args.links {
        Some(path) => tmdb::read_links(path)?,
        None => Default::default(),
    };
    let options = tmdb::ImportOptions {
        only_missing: args.only_missing,
        batch_size: args.batch_size as usize,
        concurrency: usize::from(args.concurrency),
        links,
        image_base: args.image_base_url.clone(),
    };
    let bar = progress_bar("tmdb");
    let report = tmdb::import_metadata(store, &client, &options, clock, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await;
    bar.finish_and_clear();
    Ok(report?)
}
