//! `marquee serve` and `marquee demo`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::import::{import_movielens, import_tmdb, tmdb_from_env};
use super::models::train_and_register;
use super::{Resolved, load_engine, open_store, say};
use crate::app::{self, AppState};
use crate::auth::Mode;
use crate::config::ClockSetting;
use crate::experiments::FeatureSet;
use crate::ingest::fetch;
use crate::store::{Store, Table};
use crate::{api, clock};

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "MARQUEE_LISTEN")]
    pub(super) listen: Option<SocketAddr>,
    /// Page definition file (default: the rows/home.toml built into the binary).
    #[arg(long, env = "MARQUEE_ROWS")]
    pub(super) rows: Option<PathBuf>,
    /// "now": system, last-event (replayed data) or an RFC 3339 time.
    #[arg(long, env = "MARQUEE_CLOCK")]
    pub(super) clock: Option<ClockSetting>,
    /// Directory of GrowthBook feature files (default: ./experiments if present).
    #[arg(long, env = "MARQUEE_EXPERIMENTS")]
    pub(super) experiments: Option<PathBuf>,
    /// How far after the server's clock an event's `occurredAt` may be, in seconds
    /// (default 300). Events further ahead, or before 1900, are refused.
    #[arg(long, env = "MARQUEE_EVENT_MAX_AHEAD", value_name = "SECS")]
    pub(super) event_max_ahead: Option<u32>,
    /// production: viewers sign in at the configured OpenID Connect issuer ([auth] in
    /// marquee.toml). development: the built-in development issuer signs in demo accounts.
    /// Default: production for `serve`, development for `demo`.
    #[arg(long, env = "MARQUEE_MODE", value_enum)]
    pub(super) mode: Option<crate::auth::Mode>,
    /// Requests per second one account may make to /graphql on average (bursts of ten
    /// seconds' worth pass; 0: no limit). Default: 100 in production mode, none in development.
    #[arg(long, env = "MARQUEE_RATE_LIMIT_ACCOUNT", value_name = "PER_SEC")]
    pub(super) rate_limit_account: Option<u32>,
    /// Requests per second one client IP may make to /graphql on average (bursts of ten
    /// seconds' worth pass; 0: no limit). Default: 1000 in production mode, none in development.
    #[arg(long, env = "MARQUEE_RATE_LIMIT_IP", value_name = "PER_SEC")]
    pub(super) rate_limit_ip: Option<u32>,
    /// How long one /graphql request may run before it is answered 503 TIMEOUT, in
    /// milliseconds (0: no bound). Default 30000.
    #[arg(long, env = "MARQUEE_REQUEST_TIMEOUT_MS", value_name = "MS")]
    pub(super) request_timeout_ms: Option<u64>,
    /// Schema introspection and GraphiQL at GET /graphql. Default: on in development mode,
    /// off in production mode.
    #[arg(long, env = "MARQUEE_INTROSPECTION", value_name = "BOOL")]
    pub(super) introspection: Option<bool>,
    /// Connections served at once; more are closed as soon as they are accepted (slowloris).
    /// Default 1024.
    #[arg(long, env = "MARQUEE_MAX_CONNECTIONS", value_name = "N")]
    pub(super) max_connections: Option<usize>,
    /// How long a client may take to send a request's headers (and a kept-alive connection
    /// may stay idle), in milliseconds. Default 10000.
    #[arg(long, env = "MARQUEE_HEADER_READ_TIMEOUT_MS", value_name = "MS")]
    pub(super) header_read_timeout_ms: Option<u64>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(
        long,
        env = "MARQUEE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub(super) tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(
        long,
        env = "MARQUEE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub(super) tls_key: Option<PathBuf>,
    /// An origin other than Marquee's own that browsers may call the API from (CORS), e.g.
    /// https://tv.example.com. Repeat, or separate with commas. Default: none.
    #[arg(
        long = "cors-origin",
        env = "MARQUEE_CORS_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub(super) cors_origins: Vec<String>,
}

pub(super) async fn serve(cfg: &Resolved, args: ServeArgs) -> Result<()> {
    let store = open_store(cfg).await?;
    run_server(store, cfg, args, ClockSetting::System, Mode::Production).await
}

/// Fetches MovieLens-100K, imports it, trains, and serves; each step is skipped when its
/// result is already there.
pub(super) async fn demo(cfg: &Resolved, args: ServeArgs) -> Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    let ml = tokio::task::spawn_blocking({
        let dir = cfg.data_dir.clone();
        move || fetch::ensure_movielens(&dir, &say)
    })
    .await??;
    let store = open_store(cfg).await?;
    if store.count(Table::Events).await? == 0 {
        import_movielens(
            &store,
            &ml.dir,
            ml.movies_json.as_deref(),
            5,
            "US",
            crate::store::ImportMethod::Auto,
            &clock::Clock::System,
        )
        .await?;
    } else {
        say("data already imported; skipping import");
    }
    // Catalogue metadata when a TMDb key is in the environment. Optional: without it (or
    // without network) the demo serves the dataset's own metadata and generated posters.
    if let Some(tmdb) = tmdb_from_env()? {
        match import_tmdb(&store, &tmdb, &clock::Clock::System).await {
            Ok(report) => say(&report.summary()),
            Err(e) => say(&format!(
                "warning: TMDb metadata not imported ({e:#}); serving without it"
            )),
        }
    }
    let fingerprint = store.data_fingerprint().await?;
    // A model trained by an older Marquee (another artifact format) is retrained too.
    let fresh = store.active_model().await?.is_some_and(|m| {
        m.data_fingerprint == fingerprint && app::models::artifact_is_readable(&cfg.data_dir, &m)
    });
    if fresh {
        say("active model is up to date; skipping training");
    } else {
        let clock = ClockSetting::LastEvent
            .resolve(&store, clock::EventWindow::default())
            .await?;
        train_and_register(&store, &cfg.data_dir, &clock).await?;
    }
    run_server(store, cfg, args, ClockSetting::LastEvent, Mode::Development).await
}

async fn run_server(
    store: Store,
    cfg: &Resolved,
    args: ServeArgs,
    default_clock: ClockSetting,
    default_mode: Mode,
) -> Result<()> {
    // Before anything records a metric (loading the model, the NATS client's connection
    // state): handles taken earlier would stay no-ops.
    crate::telemetry::install()?;
    let mode = args.mode.or(cfg.file.auth.mode).unwrap_or(default_mode);
    // Settings mistakes (a TLS file missing, a bad origin) are reported before any work.
    let options = serve_options(&args, &cfg.file.server, mode)?;
    if mode == Mode::Production && cfg.file.auth.dev_issuer == Some(true) {
        say(
            "WARNING: production mode with dev_issuer = true: anyone can sign in as any account \
             through the development issuer. Never do this in front of real viewers.",
        );
    }
    let listen = args
        .listen
        .or(cfg.file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let clock_setting = match args.clock {
        Some(c) => c,
        None => match &cfg.file.clock {
            Some(s) => s
                .parse()
                .map_err(anyhow::Error::from)
                .context("marquee.toml: clock")?,
            None => default_clock,
        },
    };
    let event_window = clock::EventWindow {
        max_ahead: args
            .event_max_ahead
            .or(cfg.file.event_max_ahead_secs)
            .map_or(clock::EventWindow::DEFAULT_MAX_AHEAD, |s| {
                i64::from(s) * 1000
            }),
    };
    let clock = clock_setting.resolve(&store, event_window).await?;
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
    let serving = app::serving::Serving::connect(&cfg.serving).await?;
    let serving_mode = serving.mode.clone();
    let state = AppState::new(
        store.clone(),
        engine,
        FeatureSet::default(),
        clock,
        event_window,
        impressions,
        serving,
        cfg.data_dir.clone(),
    );
    let stop_relay = std::sync::Arc::new(tokio::sync::Notify::new());
    let relay = state.serving.start(store, stop_relay.clone());
    let grace = std::time::Duration::from_secs(cfg.file.shutdown_secs.unwrap_or(10));
    // Features and experiments live in the database; `experiments/` is imported into an empty
    // one (a broken file is an error then: nothing good is loaded yet to fall back to).
    state
        .start_console(experiments_dir.as_deref())
        .await
        .context("experiments")?;
    let console = state.console.load();
    say(&format!(
        "experiments: {} features, revision {}",
        console.config.features.len(),
        console
            .revision
            .map_or_else(|| "none yet".to_owned(), |r| r.to_string())
    ));
    drop(console);
    app::console::watch_console(&state);
    app::console::watch_sample_ratios(&state);
    app::watchers::watch_models(&state, cfg.data_dir.clone(), rows);
    let auth = api::auth::AuthOptions {
        mode,
        config: cfg.file.auth.clone(),
        data_dir: cfg.data_dir.clone(),
    };
    let show_schema = options.limits.introspection;
    let scheme = if options.transport.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let served = api::serve(state.clone(), listen, auth, options, grace, |addr, auth| {
        // Tests read this line to find the port.
        println!("listening on {scheme}://{addr}");
        if show_schema {
            say(&format!("GraphiQL:  http://{addr}/graphql"));
        }
        match auth.dev_issuer_url() {
            Some(url) => say(&format!(
                "sign-in:   {mode:?} mode, development issuer at {url} (demo accounts; tokens: marquee dev-token --account N)"
            )),
            None => say(&format!(
                "sign-in:   {mode:?} mode, issuer {} (development issuer off)",
                auth.validator.config().issuer
            )),
        }
        say(&format!("catalogue: {titles} titles, model {model}, now = {}", clock::format_rfc3339(clock.now())));
        say(&format!("serving:   {serving_mode}"));
        if !examples.is_empty() {
            say(&format!("try profiles: {}", examples.join(", ")));
            say(&format!(
                "  e.g. {{ home(profileId: \"{}\") {{ rows {{ title items {{ title {{ name maturityRating }} reason }} }} }} }}",
                examples[0]
            ));
        }
    })
    .await;
    // Requests are drained: flush the impressions of the last pages and publish the outbox,
    // each bounded by the grace period (what is left waits in the database: the outbox for
    // the next relay of any replica; impressions still queued are counted as dropped).
    stop_relay.notify_one();
    state.impressions.close();
    let flush = async {
        if let Err(e) = impression_writer.await {
            tracing::error!(error = %e, "impression writer failed");
        }
        if let Err(e) = relay.drain().await {
            tracing::warn!(error = %e, "outbox not flushed at shutdown; another replica or the next start publishes it");
        }
    };
    if tokio::time::timeout(grace, flush).await.is_err() {
        tracing::warn!("shutdown flush did not finish within the grace period");
    }
    served
}

/// The server's limits and transport: flags (and their variables), then `[server]` in
/// `marquee.toml`, then the mode's defaults.
fn serve_options(
    args: &ServeArgs,
    file: &crate::config::ServerConfig,
    mode: Mode,
) -> Result<api::ServeOptions> {
    let production = mode == Mode::Production;
    let mut options = api::ServeOptions::for_mode(production);
    let defaults = options.limits;
    options.limits = api::rate::RequestLimits {
        per_account: args
            .rate_limit_account
            .or(file.rate_limit_account)
            .unwrap_or(defaults.per_account),
        per_ip: args
            .rate_limit_ip
            .or(file.rate_limit_ip)
            .unwrap_or(defaults.per_ip),
        timeout: match args.request_timeout_ms.or(file.request_timeout_ms) {
            Some(0) => None,
            Some(ms) => Some(std::time::Duration::from_millis(ms)),
            None => defaults.timeout,
        },
        introspection: args
            .introspection
            .or(file.introspection)
            .unwrap_or(defaults.introspection),
    };
    let t = &mut options.transport;
    if let Some(n) = args.max_connections.or(file.max_connections) {
        anyhow::ensure!(n > 0, "max_connections must be at least 1");
        t.max_connections = n;
    }
    if let Some(ms) = args.header_read_timeout_ms.or(file.header_read_timeout_ms) {
        anyhow::ensure!(ms > 0, "header_read_timeout_ms must be at least 1");
        t.header_read_timeout = std::time::Duration::from_millis(ms);
    }
    let cert = args.tls_cert.clone().or_else(|| file.tls_cert.clone());
    let key = args.tls_key.clone().or_else(|| file.tls_key.clone());
    t.tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(api::listen::TlsFiles { cert, key }),
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both a certificate and a key (tls_cert and tls_key)"),
    };
    options.cors_origins = if args.cors_origins.is_empty() {
        file.cors_origins.clone().unwrap_or_default()
    } else {
        args.cors_origins.clone()
    };
    for o in &options.cors_origins {
        anyhow::ensure!(
            api::origin::origin_of(o).is_some(),
            "CORS origin {o:?} is not an http(s) origin like https://tv.example.com"
        );
    }
    // The scrape token is a secret: from the environment only.
    options.metrics.scrape_token = std::env::var("MARQUEE_METRICS_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    Ok(options)
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
