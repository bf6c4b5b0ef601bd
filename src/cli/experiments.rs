//! `marquee experiments`: evaluate, list and report GrowthBook features and experiments.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::{Resolved, open_store};
use crate::app;
use crate::engine::sources::SourceRegistry;
use crate::experiments::FeatureSet;

#[derive(Debug, Subcommand)]
pub(super) enum ExperimentsCommand {
    /// Evaluate one feature for one user and print the result as JSON (GrowthBook's shape).
    Evaluate(EvaluateArgs),
    /// Load and validate a directory of feature files and list its experiments.
    List {
        #[arg(long, default_value = "experiments")]
        dir: PathBuf,
    },
    /// Writes the database's features and experiments (every draft, running and stopped
    /// experiment, with its lifecycle under `experiments`) in GrowthBook's JSON shape.
    Export {
        /// The file to write (standard output when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Applies a feature file (GrowthBook's shape, as `export` writes it) as a new revision,
    /// validated against the page first; running servers follow within a second.
    Import { file: PathBuf },
    /// Results per variation: exposures, impressions, play and completion rates, conversion,
    /// lift vs control with 95% CI and p-value, and the sample-ratio-mismatch check. The
    /// experiment is looked up in the database.
    Report {
        /// Experiment key.
        key: String,
        /// Recompute the outcomes from exposures, page views and events (a full scan)
        /// instead of reading the counters kept as they are written; says whether they agree.
        #[arg(long)]
        recompute: bool,
    },
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["context", "features"]))]
pub(super) struct EvaluateArgs {
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

pub(super) async fn run(cfg: &Resolved, cmd: ExperimentsCommand) -> Result<()> {
    match cmd {
        ExperimentsCommand::Evaluate(args) => evaluate(&args),
        ExperimentsCommand::List { dir } => list(&dir, cfg),
        ExperimentsCommand::Export { out } => {
            let store = open_store(cfg).await?;
            let state = app::console::load(&store).await?;
            let text = serde_json::to_string_pretty(&state.config)? + "\n";
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(())
        }
        ExperimentsCommand::Import { file } => import(&file, cfg).await,
        ExperimentsCommand::Report { key, recompute } => {
            let store = open_store(cfg).await?;
            let config = app::console::load(&store).await?.config;
            let Some(report) =
                app::reports::experiment_report(&store, &config, &key, recompute).await?
            else {
                anyhow::bail!("no experiment {key:?} in the database");
            };
            print!("{}", app::reports::format_report(&report));
            if recompute {
                let phase = report.phase as i64;
                let counted = store.experiment_outcomes(&key, phase).await?;
                let scanned = store.experiment_outcomes_full_scan(&key, phase).await?;
                if counted != scanned {
                    anyhow::bail!(
                        "the outcome counters disagree with the full scan ({} vs {} profiles, {} vs {} excluded): \
                         the report above is the full scan's",
                        counted.profiles.len(),
                        scanned.profiles.len(),
                        counted.contaminated,
                        scanned.contaminated
                    );
                }
                println!("  the outcome counters agree with the full scan");
            }
            Ok(())
        }
    }
}

fn list(dir: &Path, cfg: &Resolved) -> Result<()> {
    let set = load_features(dir, cfg)?;
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

/// `marquee experiments import FILE`: the file, validated, as the next revision.
async fn import(file: &Path, cfg: &Resolved) -> Result<()> {
    use crate::experiments::console::{Change, Config};
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {name}"))?;
    let now = crate::clock::Clock::System.now();
    let config = Config::parse_file(&name, &text, now)?;
    let page = app::models::page_definition(cfg.file.rows.as_deref())?;
    let registry = SourceRegistry::builtin();
    let store = open_store(cfg).await?;
    let author = format!("import: {name}");
    let (revision, config) = app::console::apply(
        &store,
        &|o| page.with_overrides(o, &registry).map(|_| ()),
        &author,
        &Change::Import(Box::new(config)),
        None,
        now,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    println!(
        "revision {revision}: {} features, {} experiments from {name}",
        config.features.len(),
        config.experiments.len()
    );
    Ok(())
}

/// Loads feature files validated against the configured page.
fn load_features(dir: &Path, cfg: &Resolved) -> Result<FeatureSet> {
    let page = app::models::page_definition(cfg.file.rows.as_deref())?;
    let registry = SourceRegistry::builtin();
    FeatureSet::load_dir(dir, &|o| page.with_overrides(o, &registry).map(|_| ()))
        .map_err(anyhow::Error::from)
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
