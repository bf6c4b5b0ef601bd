//! `marquee train` and `marquee models`: training and the model registry.

use std::path::Path;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{Resolved, open_store, say, spinner};
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
    Ok(())
}
