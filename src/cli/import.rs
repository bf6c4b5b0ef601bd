//! `marquee import`: datasets into the store.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{Resolved, open_store, progress_bar, say, spinner};
use crate::clock;
use crate::domain::Country;
use crate::ingest::movielens;
use crate::store::{ImportOptions, Store};

#[derive(Debug, Subcommand)]
pub(super) enum ImportCommand {
    /// Import RecBole atomic files (*.inter, and optionally *.item, *.user) from DIR.
    Movielens(ImportArgs),
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
}

pub(super) async fn run(cfg: &Resolved, cmd: ImportCommand) -> Result<()> {
    match cmd {
        ImportCommand::Movielens(args) => {
            let store = open_store(cfg).await?;
            import_movielens(
                &store,
                &args.dir,
                args.maturity.as_deref(),
                args.kids_every,
                &args.country,
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
