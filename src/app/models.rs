//! The model lifecycle, composed from store and engine: the page definition, loading the
//! engine (active model plus the versions experiments name), training and registering a
//! model, and the registry operations.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::clock::{Clock, format_rfc3339};
use crate::engine::Engine;
use crate::engine::catalog::Catalog;
use crate::engine::model::{self, Model, ModelArtifact, ScoredTitle, TrainParams};
use crate::engine::rows::PageDefinition;
use crate::engine::sources::SourceRegistry;
use crate::store::{ModelRecord, Store};

/// The home page definition: the file given, or the one built into the binary.
pub fn page_definition(rows: Option<&Path>) -> Result<PageDefinition> {
    let registry = SourceRegistry::builtin();
    match rows {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            PageDefinition::parse(&text, &path.display().to_string(), &registry)
                .map_err(anyhow::Error::from)
        }
        None => PageDefinition::parse(
            crate::engine::rows::DEFAULT_HOME,
            "rows/home.toml",
            &registry,
        )
        .map_err(anyhow::Error::from),
    }
}

fn read_artifact(data_dir: &Path, record: &ModelRecord) -> Result<ModelArtifact> {
    let path = data_dir.join(&record.artifact_path);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "model {}: cannot read artifact {}",
            record.version,
            path.display()
        )
    })?;
    ModelArtifact::decode(&bytes)
        .with_context(|| format!("model {}: artifact {}", record.version, path.display()))
}

/// Whether this build can load the model's artifact (it exists and has the current format).
pub fn artifact_is_readable(data_dir: &Path, record: &ModelRecord) -> bool {
    read_artifact(data_dir, record).is_ok()
}

/// Builds the engine from the catalogue, the active model and the `alternates` (other
/// registered versions that experiments name for some rows; unknown ones are skipped with a
/// warning, and those rows use the active model).
pub async fn load_engine(
    store: &Store,
    data_dir: &Path,
    home: PageDefinition,
    alternates: &[String],
) -> Result<Engine> {
    let catalog = Catalog::new(store.titles().await?);
    if catalog.is_empty() {
        bail!(
            "the catalogue is empty: import data first (`marquee import movielens DIR`, or `marquee demo`)"
        );
    }
    let record = store
        .active_model()
        .await?
        .context("no trained model: run `marquee train` first")?;
    let registered = store.models().await?;
    let mut others = Vec::new();
    for version in alternates.iter().filter(|v| **v != record.version) {
        match registered.iter().find(|m| &m.version == version) {
            Some(m) => others.push(m.clone()),
            None => {
                tracing::warn!(model = %version, "experiments name a model version that is not registered")
            }
        }
    }
    // Parsing and binding an artifact is CPU work: keep it off the async workers that serve
    // requests while a running server swaps models.
    let data_dir = data_dir.to_owned();
    // A missing or unreadable artifact must not take serving down: the page is served from
    // popularity (counted from the stored watch state) until a model is trained again.
    let fallback = match read_artifact(&data_dir, &record) {
        Ok(_) => None,
        Err(e) => {
            tracing::error!(
                model = %record.version,
                error = %format!("{e:#}"),
                "MODEL ARTIFACT UNUSABLE: serving a popularity-only fallback model; run `marquee train`"
            );
            Some(popularity_fallback(store, &record).await?)
        }
    };
    crate::telemetry::dependency_up(crate::telemetry::Dependency::Model, fallback.is_none());
    tokio::task::spawn_blocking(move || {
        let (version, artifact) = match fallback {
            Some(artifact) => (format!("{}{FALLBACK_SUFFIX}", record.version), artifact),
            None => (record.version.clone(), read_artifact(&data_dir, &record)?),
        };
        let model = Model::load(&version, &artifact, &catalog);
        let mut alternates = std::collections::HashMap::new();
        for m in others {
            match read_artifact(&data_dir, &m) {
                Ok(a) => {
                    alternates.insert(m.version.clone(), Model::load(&m.version, &a, &catalog));
                }
                Err(e) => tracing::warn!(model = %m.version, error = %format!("{e:#}"), "alternate model not loaded"),
            }
        }
        Ok(Engine {
            catalog,
            model,
            home,
            sources: SourceRegistry::builtin(),
            alternates,
            variants: Default::default(),
            derived: Default::default(),
        })
    })
    .await?
}

fn version_name(created_at: i64, fingerprint: &str) -> String {
    let stamp = chrono::DateTime::from_timestamp_millis(created_at)
        .map(|d| d.format("%Y%m%d-%H%M%S%.3f").to_string())
        .unwrap_or_else(|| created_at.to_string())
        .replace('.', "");
    let hash = crate::rng::fnv1a32(fingerprint.bytes());
    format!("{stamp}-{:06x}", hash & 0xff_ffff)
}

pub struct TrainReport {
    pub record: ModelRecord,
    pub seconds: f64,
    /// What the popular-now backtest learned, in a line (`PopularNowBacktest::describe`).
    pub popular_now: Option<String>,
}

/// The two times training reads.
#[derive(Debug, Clone, Copy)]
pub struct TrainClocks<'a> {
    /// Training's "now", which trending windows count back from: for replayed data the
    /// newest event (`--clock last-event`).
    pub data: &'a Clock,
    /// When the model is made (`created_at`, the version name): real time, so that versions
    /// sort in the order they were trained whatever the data's clock says.
    pub wall: &'a Clock,
}

/// Trains on every interaction in the store, writes the artifact under `data_dir/models/`
/// and registers it as the active model.
pub async fn train(
    store: &Store,
    data_dir: &Path,
    clocks: TrainClocks<'_>,
    params: &TrainParams,
) -> Result<TrainReport> {
    let started = Instant::now();
    let catalog = Catalog::new(store.titles().await?);
    if catalog.is_empty() {
        bail!("the catalogue is empty: import data first (`marquee import movielens DIR`)");
    }
    let data = store.training_set(&catalog).await?;
    let entities = store.title_entities().await?;
    let fingerprint = store.data_fingerprint().await?;
    let now = clocks.data.now();
    let artifact = tokio::task::spawn_blocking({
        let params = params.clone();
        move || model::train(&catalog, &data, &entities, now, &params)
    })
    .await?;

    let created_at = clocks.wall.now();
    let version = version_name(created_at, &fingerprint);
    let relative = PathBuf::from("models").join(format!("{version}.model"));
    let path = data_dir.join(&relative);
    std::fs::create_dir_all(path.parent().unwrap_or(data_dir))
        .with_context(|| format!("cannot create {}", path.display()))?;
    // Write then rename: a crash never leaves a half-written artifact under the final name.
    let tmp = path.with_extension("model.tmp");
    std::fs::write(&tmp, artifact.encode()?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path)?;

    let metrics = serde_json::json!({
        "titles_with_neighbors": artifact.neighbors.len(),
        "titles_with_content_neighbors": artifact.content_neighbors.len(),
        "titles_with_embeddings": artifact.embeddings.as_ref().map_or(0, |e| e.titles.len()),
        "trending_countries": artifact.trending.keys().flatten().collect::<Vec<_>>(),
        "popular_now": artifact.popular_now,
        "train_seconds": started.elapsed().as_secs_f64(),
    });
    let record = ModelRecord {
        version,
        created_at,
        trained_at: now,
        interactions: artifact.interactions as i64,
        data_fingerprint: fingerprint,
        params: serde_json::to_string(params)?,
        metrics: metrics.to_string(),
        artifact_path: relative.to_string_lossy().into_owned(),
        active: true,
    };
    store.register_model(&record).await?;
    Ok(TrainReport {
        record,
        seconds: started.elapsed().as_secs_f64(),
        popular_now: artifact.popular_now.as_ref().map(|b| b.describe()),
    })
}

/// Activates the model registered before the active one.
pub async fn rollback(store: &Store) -> Result<String> {
    let models = store.models().await?;
    let active = models
        .iter()
        .position(|m| m.active)
        .context("no active model to roll back from")?;
    let previous = models
        .get(active + 1)
        .context("the active model is the oldest one; nothing to roll back to")?;
    store.activate_model(&previous.version).await?;
    Ok(previous.version.clone())
}

pub fn describe_model(m: &ModelRecord) -> String {
    format!(
        "{}{}  trained_at={}  interactions={}  data={}{}",
        m.version,
        if m.active { " (active)" } else { "" },
        format_rfc3339(m.trained_at),
        m.interactions,
        m.data_fingerprint,
        learned_popular_now(&m.metrics).map_or(String::new(), |s| format!("  popular_now={s}"))
    )
}

/// The popular-now setting a registered model learned, from its metrics (`train` stores the
/// backtest there); `None` for models trained before it existed or without a backtest.
fn learned_popular_now(metrics: &str) -> Option<String> {
    let metrics: serde_json::Value = serde_json::from_str(metrics).ok()?;
    let backtest: crate::engine::model::PopularNowBacktest =
        serde_json::from_value(metrics.get("popular_now")?.clone()).ok()?;
    if backtest.grid.is_empty() {
        return Some("off (too few returning profiles)".into());
    }
    let short = |c: crate::engine::model::PopularNowSetting| {
        format!(
            "trending {}/new {}/history {}",
            c.trending_weight, c.new_release_boost, c.history_half_saturation
        )
    };
    let mut line = short(backtest.chosen);
    if let Some(l) = &backtest.little_history {
        line.push_str(&format!(
            ", up to {} titles {}",
            l.max_titles,
            short(l.chosen)
        ));
    }
    Some(line)
}

/// The suffix of a fallback model's version: pages it ranks are `degraded`.
pub const FALLBACK_SUFFIX: &str = "+popularity-fallback";

/// A model of popularity only (how many profiles interacted with each title), for when the
/// active model's artifact is missing or corrupt.
async fn popularity_fallback(store: &Store, record: &ModelRecord) -> Result<ModelArtifact> {
    let counts = store.title_interaction_counts().await?;
    let mut popularity: Vec<ScoredTitle> = counts
        .into_iter()
        .map(|(t, n)| ScoredTitle(t, n as f32))
        .collect();
    popularity.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| a.0.as_str().cmp(b.0.as_str()))
    });
    let mut trending = std::collections::BTreeMap::new();
    trending.insert(None, popularity.iter().take(200).cloned().collect());
    Ok(ModelArtifact {
        format: crate::engine::model::ARTIFACT_FORMAT,
        trained_at: record.trained_at,
        params: Default::default(),
        interactions: 0,
        popularity,
        trending,
        neighbors: Default::default(),
        item_weights: Default::default(),
        content_neighbors: Default::default(),
        embeddings: None,
        popular_now: None,
    })
}
