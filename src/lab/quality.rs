//! `marquee split` and `marquee eval`: the offline quality measurement of the served rankings
//! (protocol and maths in `eval.rs`; this file is only the command line around them).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::app;
use crate::engine::model::TrainParams;
use crate::engine::rows::PageOverrides;
use crate::engine::sources::SourceRegistry;
use crate::ingest::fetch;
use crate::lab::eval::{self, EvalSet};
use crate::lab::later_sitting;

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

/// Which question `marquee eval` asks of the served rankings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// `ml100k-temporal-80-20-v1`: each profile's own last fifth (mostly the end of the
    /// rating session the profile is in).
    SameSitting,
    /// `later-sitting-rolling-v1`: what profiles did after a cutoff, minus the sitting they
    /// were in, over several cutoffs (see src/lab/later_sitting.rs).
    LaterSitting,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// same-sitting: a directory written by `marquee split` (default: DATA_DIR/split, made
    /// from the demo's MovieLens-100K, fetched if missing). later-sitting: a directory with
    /// the whole log (default: DATA_DIR/ml-100k).
    pub split: Option<PathBuf>,
    /// Train on TRAIN minus VALID and score VALID (later-sitting: the TUNE cutoffs): the only
    /// figures to tune on.
    #[arg(long)]
    pub tune: bool,
    #[arg(long, value_enum, default_value = "same-sitting")]
    pub protocol: Protocol,
    /// later-sitting only: page variants scored next to the page on the same trained models,
    /// as a JSON object of name → experiment overrides, e.g.
    /// '{"tw1": {"settings": {"top-picks": {"params": {"trending_weight": 1.0}}}}}'.
    #[arg(long, value_name = "JSON")]
    pub variants: Option<String>,
    /// later-sitting only: scored profiles keep only their first K interactions.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..))]
    pub cold_start: Option<u16>,
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
    let home = app::models::page_definition(args.rows.as_deref().or(rows))?;
    let params: TrainParams = match &args.train_params {
        Some(json) => serde_json::from_str(json).context("--train-params")?,
        None => TrainParams::default(),
    };
    if args.protocol == Protocol::LaterSitting {
        return later_sitting(&args, data_dir, &home, &params);
    }
    if args.cold_start.is_some() || args.variants.is_some() {
        bail!("--cold-start and --variants need --protocol later-sitting");
    }
    let split = match args.split {
        Some(dir) => dir,
        None => default_split(data_dir)?,
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

fn later_sitting(
    args: &EvalArgs,
    data_dir: &Path,
    home: &crate::engine::rows::PageDefinition,
    params: &TrainParams,
) -> Result<()> {
    if args.export.is_some() {
        bail!("--export is for the same-sitting protocol");
    }
    let dir = match &args.split {
        Some(dir) => dir.clone(),
        None => fetch::ensure_movielens(data_dir, &|m| eprintln!("{m}"))?.dir,
    };
    let data = later_sitting::load(&dir)?;
    let overrides: std::collections::BTreeMap<String, PageOverrides> = match &args.variants {
        Some(json) => serde_json::from_str(json).context("--variants")?,
        None => Default::default(),
    };
    let registry = SourceRegistry::builtin();
    let variants = overrides
        .into_iter()
        .map(|(name, o)| {
            let page = home
                .with_overrides(&o, &registry)
                .with_context(|| format!("--variants: {name}"))?;
            Ok((name, page))
        })
        .collect::<Result<Vec<_>>>()?;
    let setup = later_sitting::Setup {
        data: &data,
        home,
        params,
        rule: later_sitting::SplitRule {
            cold_start: args.cold_start.map(usize::from),
            ..later_sitting::SplitRule::default()
        },
        schedule: later_sitting::Schedule::default(),
        variants,
    };
    let part = if args.tune {
        later_sitting::Part::Tune
    } else {
        later_sitting::Part::Test
    };
    print!("{}", later_sitting::run(&setup, part)?.table());
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
