//! The experiment console's service: features and experiments live in the database, one
//! revision per change (`experiments::console::Config`, stored whole with its author and
//! diff). A change is read–applied–validated–appended on the newest revision; a refused change
//! writes nothing, so the running version is never replaced by one that does not validate.
//! Every replica follows the newest revision (`watch_console`, a poll of the revision number
//! every 250 ms) and swaps the features it serves.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::AppState;
use crate::domain::Millis;
use crate::engine::rows::{PageError, PageOverrides};
use crate::experiments::console::{Change, Config, ConsoleError, DiffEntry, diff};
use crate::experiments::{FeatureSet, PageValidator};
use crate::store::experiments::RevisionRecord;
use crate::store::{Store, StoreError};

/// The configuration in force in this process, and its revision.
#[derive(Debug, Clone, Default)]
pub struct ConsoleState {
    pub revision: Option<i64>,
    pub config: Config,
}

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The change itself is wrong (a path and a message, an unknown experiment, a state
    /// that does not allow it); nothing was written.
    #[error(transparent)]
    Refused(#[from] ConsoleError),
    /// The configuration changed since the revision the caller edited (`expected`).
    #[error("the configuration changed meanwhile (now revision {0}); reload and edit again")]
    Conflict(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A stored revision, read back.
#[derive(Debug, Clone)]
pub struct Revision {
    pub revision: i64,
    pub created_at: Millis,
    pub author: String,
    pub action: String,
    pub subject: String,
    pub diff: Vec<DiffEntry>,
}

/// Checks page feature values against a page; `Sync`, so that a change can be applied in a
/// request's future (which holds it across the store's awaits).
pub type Validator<'a> = &'a (dyn Fn(&PageOverrides) -> Result<(), PageError> + Sync);

/// How often replicas look for a new revision: changes reach every replica well within 1 s.
pub const POLL: Duration = Duration::from_millis(250);

/// The newest stored configuration (an empty one before the first revision).
pub async fn load(store: &Store) -> anyhow::Result<ConsoleState> {
    let Some(rec) = store.current_experiment_config().await? else {
        return Ok(ConsoleState::default());
    };
    let config: Config = serde_json::from_str(&rec.config)
        .with_context(|| format!("experiment revision {} does not parse", rec.revision))?;
    Ok(ConsoleState {
        revision: Some(rec.revision),
        config,
    })
}

/// Applies `change` to the newest revision and stores the result as the next one. With
/// `expected`, refuses (`Conflict`) when the newest revision is another; without, a change
/// that races another is re-applied on top of it (a few times).
pub async fn apply(
    store: &Store,
    validate: Validator<'_>,
    author: &str,
    change: &Change,
    expected: Option<i64>,
    now: Millis,
) -> Result<(i64, Config), ChangeError> {
    for _ in 0..5 {
        let current = load(store).await?;
        if let Some(want) = expected
            && current.revision.unwrap_or(0) != want
        {
            return Err(ChangeError::Conflict(current.revision.unwrap_or(0)));
        }
        let next = current.config.apply(change, now, validate)?;
        let before = serde_json::to_value(&current.config).map_err(anyhow::Error::from)?;
        let after = serde_json::to_value(&next).map_err(anyhow::Error::from)?;
        let record = RevisionRecord {
            revision: 0,
            created_at: now,
            author: author.to_owned(),
            action: change.action().to_owned(),
            subject: change.subject(),
            config: after.to_string(),
            diff: serde_json::to_string(&diff(&before, &after)).map_err(anyhow::Error::from)?,
        };
        if let Some(revision) = store
            .append_experiment_revision(current.revision, &record)
            .await?
        {
            return Ok((revision, next));
        }
        if expected.is_some() {
            let now_at = store.latest_experiment_revision().await?.unwrap_or(0);
            return Err(ChangeError::Conflict(now_at));
        }
    }
    Err(ChangeError::Internal(anyhow::anyhow!(
        "the experiment configuration kept changing; try again"
    )))
}

/// The history of `subject` (an experiment or feature key; everything when `None`), newest
/// first.
pub async fn history(
    store: &Store,
    subject: Option<&str>,
    limit: usize,
) -> anyhow::Result<Vec<Revision>> {
    store
        .experiment_revisions(subject, limit)
        .await?
        .into_iter()
        .map(|r| {
            Ok(Revision {
                revision: r.revision,
                created_at: r.created_at,
                author: r.author,
                action: r.action,
                subject: r.subject,
                diff: serde_json::from_str(&r.diff)
                    .with_context(|| format!("experiment revision {}: diff", r.revision))?,
            })
        })
        .collect()
}

/// The history of one experiment: its own revisions (launch, stop, …), its feature's edits,
/// and imports that changed either; newest first.
pub async fn experiment_history(
    store: &Store,
    experiment: &str,
    feature: Option<&str>,
    limit: usize,
) -> anyhow::Result<Vec<Revision>> {
    let mut out = history(store, Some(experiment), limit).await?;
    if let Some(f) = feature.filter(|f| *f != experiment) {
        out.extend(history(store, Some(f), limit).await?);
    }
    let touches = |path: &str, prefix: &str| {
        path == prefix
            || path.starts_with(&format!("{prefix}."))
            || path.starts_with(&format!("{prefix}["))
    };
    let feature_path = feature.map(|f| format!("features.{f}"));
    let experiment_path = format!("experiments.{experiment}");
    out.retain(|r| {
        r.subject != "*"
            || r.diff.iter().any(|d| {
                touches(&d.path, &experiment_path)
                    || feature_path.as_deref().is_some_and(|f| touches(&d.path, f))
                    // The first revision replaces the empty document whole.
                    || d.path.is_empty()
            })
    });
    out.sort_by_key(|r| std::cmp::Reverse(r.revision));
    out.dedup_by_key(|r| r.revision);
    out.truncate(limit);
    Ok(out)
}

impl AppState {
    /// Checks a page feature's value against the page this process serves.
    fn with_validator<T>(&self, f: impl FnOnce(PageValidator<'_>) -> T) -> T {
        let engine = self.engine.load();
        f(&|o| engine.home.with_overrides(o, &engine.sources).map(|_| ()))
    }

    /// Serves `state`: the running experiments to page requests, drafts too to previews.
    /// Refused (and logged; the current version stays) when a value does not validate against
    /// this replica's page.
    pub fn install_console(&self, state: ConsoleState) -> Result<(), ConsoleError> {
        self.with_validator(|validate| {
            // Validate what will be served, as an import would.
            Config::default().apply(&Change::Import(Box::new(state.config.clone())), 0, validate)
        })?;
        self.features.store(Arc::new(state.config.served(false)));
        self.preview_features
            .store(Arc::new(state.config.served(true)));
        self.console.store(Arc::new(state));
        Ok(())
    }

    /// Makes a change as `author`, and serves it here at once (other replicas follow within
    /// `POLL`).
    pub async fn change_experiments(
        &self,
        author: &str,
        change: Change,
        expected: Option<i64>,
    ) -> Result<i64, ChangeError> {
        let now = self.clock.now();
        let (revision, config) = {
            let engine = self.engine.load_full();
            let validate =
                |o: &PageOverrides| engine.home.with_overrides(o, &engine.sources).map(|_| ());
            apply(&self.store, &validate, author, &change, expected, now).await?
        };
        tracing::info!(revision, author, action = change.action(), subject = %change.subject(), "experiments changed");
        self.follow_console_to(ConsoleState {
            revision: Some(revision),
            config,
        });
        Ok(revision)
    }

    /// Installs `state` unless this process already serves a newer revision.
    fn follow_console_to(&self, state: ConsoleState) {
        if self.console.load().revision >= state.revision {
            return;
        }
        let revision = state.revision;
        if let Err(e) = self.install_console(state) {
            tracing::error!(revision, error = %e, "experiment revision refused; keeping the last good version");
        }
    }

    /// Brings the console up at start: the newest revision, or — when the database has none —
    /// the feature files of `dir` imported as revision 1 (the bootstrap and git-ops path).
    pub async fn start_console(&self, dir: Option<&Path>) -> anyhow::Result<()> {
        let mut state = load(&self.store).await?;
        if state.revision.is_none()
            && let Some(dir) = dir
        {
            let files = self.with_validator(|v| FeatureSet::load_dir(dir, v))?;
            if !files.features.is_empty() {
                let config = Config::from_payload(
                    files.features,
                    files.saved_groups,
                    Default::default(),
                    self.clock.now(),
                );
                let author = format!("bootstrap: {}", dir.display());
                match self
                    .change_experiments(&author, Change::Import(Box::new(config)), Some(0))
                    .await
                {
                    // Another replica bootstrapped first: take its revision.
                    Ok(_) | Err(ChangeError::Conflict(_)) => {}
                    Err(ChangeError::Refused(e)) => {
                        anyhow::bail!("{}: {e}", dir.display())
                    }
                    Err(ChangeError::Store(e)) => return Err(e.into()),
                    Err(ChangeError::Internal(e)) => return Err(e),
                }
                state = load(&self.store).await?;
            }
        } else if state.revision.is_some()
            && let Some(dir) = dir
        {
            tracing::info!(dir = %dir.display(), "experiments come from the database; the directory is only imported into an empty one (`marquee experiments import`)");
        }
        if state.revision.is_some() {
            let revision = state.revision;
            self.install_console(state)
                .with_context(|| format!("experiment revision {revision:?}"))?;
        }
        Ok(())
    }
}

/// Follows the newest revision: polls its number every `POLL` and swaps the served features
/// when it changes. A revision this replica cannot validate is logged once and skipped; the
/// last good version stays in force.
pub fn watch_console(state: &Arc<AppState>) {
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refused: Option<i64> = None;
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else {
                return;
            };
            let latest = match state.store.latest_experiment_revision().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the experiment revision");
                    continue;
                }
            };
            if latest <= state.console.load().revision || latest == refused {
                continue;
            }
            match load(&state.store).await {
                Ok(next) => {
                    let revision = next.revision;
                    match state.install_console(next) {
                        Ok(()) => {
                            tracing::info!(revision, "experiments reloaded from the database")
                        }
                        Err(e) => {
                            refused = revision;
                            tracing::error!(revision, error = %e, "experiment revision refused; keeping the last good version");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot load experiments"),
            }
        }
    });
}

/// How often the sample ratio of running experiments is checked for `/metrics`.
pub const SRM_CHECK: Duration = Duration::from_secs(15);

/// Keeps `/metrics`' sample-ratio gauges current for running experiments (on the report
/// pool, from the outcome counters).
pub fn watch_sample_ratios(state: &Arc<AppState>) {
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SRM_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else {
                return;
            };
            let console = state.console.load_full();
            for (summary, exp) in console.config.summaries() {
                if exp.status != crate::experiments::console::Status::Running {
                    continue;
                }
                match super::reports::experiment_report(
                    &state.store,
                    &console.config,
                    &summary.key,
                    false,
                )
                .await
                {
                    Ok(Some(r)) => crate::telemetry::record_srm(
                        &summary.key,
                        r.analysis.srm_p_value,
                        r.analysis.srm_flagged,
                    ),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "sample ratio check failed")
                    }
                }
            }
        }
    });
}
