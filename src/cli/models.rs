//! `marquee train` and `marquee models`: training and the model registry.

use std::path::Path;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{Resolved, load_engine, open_store, progress_bar, say, spinner};
use crate::config::ClockSetting;
use crate::engine::model::TrainParams;
use crate::store::Store;
use crate::{app, clock};

#[derive(Debug, Args)]
pub(super) struct TrainArgs {
    /// "now" for trending windows: system, last-event or an RFC 3339 time.
    #[arg(long, default_value = "last-event")]
    pub(super) clock: ClockSetting,
}

#[derive(Debug, Subcommand)]
pub(super) enum ModelsCommand {
    /// All registered models, newest first.
    List,
    /// Make VERSION the active model.
    Activate { version: String },
    /// Re-activate the model registered before the active one.
    Rollback,
}

pub(super) async fn train(cfg: &Resolved, args: TrainArgs) -> Result<()> {
    let store = open_store(cfg).await?;
    let clock = args
        .clock
        .resolve(&store, crate::clock::EventWindow::default())
        .await?;
    train_and_register(&store, &cfg.data_dir, &clock).await
}

pub(super) async fn run(cfg: &Resolved, cmd: ModelsCommand) -> Result<()> {
    let store = open_store(cfg).await?;
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

pub(super) async fn train_and_register(
    store: &Store,
    data_dir: &Path,
    clock: &clock::Clock,
) -> Result<()> {
    let spin = spinner("training (popularity, trending, item-item similarity)");
    let clocks = app::models::TrainClocks {
        data: clock,
        wall: &clock::Clock::System,
    };
    let report = app::models::train(store, data_dir, clocks, &TrainParams::default()).await?;
    spin.finish_and_clear();
    say(&format!(
        "trained model {} on {} interactions in {:.1}s (now = {})",
        report.record.version,
        report.record.interactions,
        report.seconds,
        clock::format_rfc3339(report.record.trained_at)
    ));
    if let Some(line) = &report.popular_now {
        say(line);
    }
    Ok(())
}

#[derive(Debug, Args)]
pub(super) struct PrecomputeArgs {
    /// Profiles with events in the last HOURS (before "now") are warmed.
    #[arg(long, default_value_t = 24)]
    pub(super) hours: u32,
    /// At most this many profiles, most recently active first.
    #[arg(long, default_value_t = 10_000)]
    pub(super) limit: u32,
    /// Profiles per second, so that warming does not starve serving of CPU or Redis.
    #[arg(long, default_value_t = 200)]
    pub(super) rate: u32,
    /// "now": system, last-event (replayed data) or an RFC 3339 time; use the one `serve`
    /// uses, as the lists depend on it.
    #[arg(long, default_value = "system")]
    pub(super) clock: ClockSetting,
    /// Page definition file, as `serve --rows`.
    #[arg(long, env = "MARQUEE_ROWS")]
    pub(super) rows: Option<std::path::PathBuf>,
}

/// `marquee precompute`: after a model activation, computes the candidate lists of recently
/// active profiles with the active model into the list cache (Redis, `REDIS_URL`) that the
/// replicas read, at a bounded rate.
pub(super) async fn precompute(cfg: &Resolved, args: PrecomputeArgs) -> Result<()> {
    if cfg.serving.redis_url.is_none() {
        anyhow::bail!(
            "precompute warms the shared list cache: set REDIS_URL (or --redis-url) to the replicas' Redis"
        );
    }
    let store = open_store(cfg).await?;
    let window = crate::clock::EventWindow::default();
    let clock = args.clock.resolve(&store, window).await?;
    let rows = args.rows.clone().or_else(|| cfg.file.rows.clone());
    let engine = load_engine(&store, cfg, rows.as_deref()).await?;
    let model = engine.model.version.clone();
    let since = clock.now() - i64::from(args.hours) * 3_600_000;
    let profiles = store
        .recently_active_profiles(since, i64::from(args.limit))
        .await?;
    let serving = app::serving::Serving::connect(&cfg.serving).await?;
    let (impressions, _writer) = app::impressions::ImpressionLog::start(store.clone());
    let state = app::AppState::new(
        store,
        engine,
        crate::experiments::FeatureSet::default(),
        clock,
        window,
        impressions,
        serving,
        cfg.data_dir.clone(),
    );
    let bar = progress_bar("precompute");
    bar.set_length(profiles.len() as u64);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs_f64(
        1.0 / f64::from(args.rate.max(1)),
    ));
    let (mut warmed, mut failed) = (0usize, 0usize);
    for id in &profiles {
        tick.tick().await;
        match state.precompute_lists(id).await {
            Ok(true) => warmed += 1,
            Ok(false) => {}
            Err(e) => {
                failed += 1;
                tracing::warn!(profile = %id, error = %format!("{e:#}"), "lists not precomputed");
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    say(&format!(
        "precomputed the lists of {warmed} of {} recently active profiles with model {model} ({failed} failed)",
        profiles.len()
    ));
    if failed > 0 && warmed == 0 {
        anyhow::bail!("no lists precomputed");
    }
    Ok(())
}
