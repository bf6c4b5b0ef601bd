//! `marquee split` and `marquee eval`: the offline quality measurement of the served rankings
//! (protocol and maths in `eval.rs`; this file is only the command line around them).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::app;
use crate::engine::model::TrainParams;
use crate::ingest::fetch;
use crate::lab::eval::{self, EvalSet};

#[derive(Debug, Subcommand)]
pub enum SplitCommand {
    /// Split RecBole atomic files (one *.inter in DIR) into OUT/{train,valid,test}/ by
    /// protocol ml100k-temporal-80-20-v1; each part imports on its own.
    Movielens(SplitArgs),
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Directory with exactly one *.inter file (and optionally *.item, *.user).
    pub dir: PathBuf,
    /// Output directory.
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A directory written by `marquee split` (default: DATA_DIR/split, made from the demo's
    /// MovieLens-100K, fetched if missing).
    pub split: Option<PathBuf>,
    /// Train on TRAIN minus VALID and score VALID: the only figures to tune on.
    #[arg(long)]
    pub tune: bool,
    /// Write the Top Picks rankings as `user_id<TAB>item_id<TAB>rank`.
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    /// Page definition whose rows are evaluated (default: the built-in rows/home.toml).
    #[arg(long, env = "MARQUEE_ROWS")]
    pub rows: Option<PathBuf>,
    /// Training parameters as JSON, merged over the defaults, e.g. '{"ease_lambda": 500}'.
    #[arg(long, value_name = "JSON")]
    pub train_params: Option<String>,
}

pub fn split(cmd: SplitCommand) -> Result<()> {
    let SplitCommand::Movielens(args) = cmd;
    let s = eval::split_dir(&args.dir, &args.out)?;
    println!(
        "{}: {} users; train {} (of which valid {}), test {}",
        eval::PROTOCOL,
        s.users,
        s.train,
        s.valid,
        s.test
    );
    for d in &s.dirs {
        println!("  {}", d.display());
    }
    Ok(())
}

pub fn eval(args: EvalArgs, data_dir: &Path, rows: Option<&Path>) -> Result<()> {
    let split = match args.split {
        Some(dir) => dir,
        None => default_split(data_dir)?,
    };
    let home = app::models::page_definition(args.rows.as_deref().or(rows))?;
    let params: TrainParams = match &args.train_params {
        Some(json) => serde_json::from_str(json).context("--train-params")?,
        None => TrainParams::default(),
    };
    let (set, target) = if args.tune {
        (
            EvalSet::load(&split.join("train"), &split.join("valid"), true)?,
            "VALID",
        )
    } else {
        (
            EvalSet::load(&split.join("train"), &split.join("test"), false)?,
            "TEST",
        )
    };
    let report = eval::run(&set, &params, &home, target)?;
    print!("{}", report.table());
    if let Some(path) = &args.export {
        std::fs::write(path, report.export_tsv())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// DATA_DIR/split, made from the demo's MovieLens-100K the first time.
fn default_split(data_dir: &Path) -> Result<PathBuf> {
    let out = data_dir.join("split");
    if !out.join("test").is_dir() {
        let ml = fetch::ensure_movielens(data_dir, &|m| eprintln!("{m}"))?;
        let s = eval::split_dir(&ml.dir, &out)?;
        eprintln!(
            "split {} into {} (train {}, valid {}, test {})",
            ml.dir.display(),
            out.display(),
            s.train,
            s.valid,
            s.test
        );
    }
    Ok(out)
}
