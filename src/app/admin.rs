//! Admin operations — importing MovieLens and training a model — for both front doors: the
//! command line runs them in the foreground, the API starts them as a background job (they
//! take longer than a request may: the request timeout) whose state an admin then polls.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;

use anyhow::Result;

use super::AppState;
use super::models::{TrainClocks, TrainReport, train};
use crate::clock::Clock;
use crate::domain::{Country, Millis};
use crate::engine::model::TrainParams;
use crate::ingest::movielens;
use crate::store::{Backend, ImportMethod, ImportOptions, ImportSummary, Store};

/// What a MovieLens import read and stored.
pub struct MovieLensImport {
    /// Lines the reader skipped or questioned (`file:line: why`).
    pub warnings: Vec<String>,
    /// Titles given an MPAA rating from vega-datasets' `movies.json`, and the file.
    pub maturity: Option<(usize, PathBuf)>,
    pub summary: ImportSummary,
}

/// How a MovieLens import is done, whichever front door asked.
pub struct MovieLensSource<'a> {
    /// Directory with exactly one `*.inter` file.
    pub dir: &'a Path,
    /// vega-datasets' `movies.json` (default: `dir/movies.json` when present).
    pub maturity: Option<&'a Path>,
    /// Accounts whose id hashes to 0 modulo N get a kids profile (0: none).
    pub kids_every: u32,
    /// Country of users without one.
    pub country: Country,
    /// How the rows are written (`Auto`: COPY on PostgreSQL).
    pub method: ImportMethod,
}

/// Reads a RecBole MovieLens directory and imports it in one transaction (idempotent).
/// `progress(stage, done, total)` follows the import.
pub async fn import_movielens(
    store: &Store,
    source: MovieLensSource<'_>,
    received_at: Millis,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<MovieLensImport> {
    let copy = match (source.method, store.backend()) {
        (ImportMethod::Rows, _) | (ImportMethod::Auto, Backend::Sqlite) => false,
        (ImportMethod::Copy | ImportMethod::Auto, Backend::Postgres) => true,
        (ImportMethod::Copy, Backend::Sqlite) => {
            anyhow::bail!("the COPY import needs PostgreSQL; on SQLite use the rows import")
        }
    };
    let dir = source.dir.to_owned();
    let country = source.country;
    // The COPY import streams the interactions from the file; the rows import reads them all.
    let (mut data, inter) = tokio::task::spawn_blocking(move || {
        if copy {
            movielens::read_metadata(&dir, Some(&country)).map(|(d, p)| (d, Some(p)))
        } else {
            movielens::read_dir(&dir, Some(&country)).map(|d| (d, None))
        }
    })
    .await??;
    let maturity_file = source
        .maturity
        .map(Path::to_owned)
        .or_else(|| Some(source.dir.join("movies.json")).filter(|p| p.is_file()));
    let maturity = match maturity_file {
        Some(path) => Some((movielens::join_maturity(&mut data.titles, &path)?, path)),
        None => None,
    };
    let options = ImportOptions {
        kids_every: source.kids_every,
        received_at,
    };
    let warnings = std::mem::take(&mut data.warnings);
    let summary = match inter {
        Some(inter) => store.import_bulk(data, &inter, &options, progress).await?,
        None => store.import(&data, &options, progress).await?,
    };
    Ok(MovieLensImport {
        warnings,
        maturity,
        summary,
    })
}

/// The admin job the API last started, and whether one is running: one at a time, since
/// both rewrite what the other reads.
#[derive(Default)]
pub struct AdminJobs {
    last: Mutex<Option<AdminJob>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminJobKind {
    Train,
    ImportMovieLens,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminJobState {
    Running,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone)]
pub struct AdminJob {
    /// Unique for the life of the process.
    pub id: u64,
    pub kind: AdminJobKind,
    pub state: AdminJobState,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    /// What it did: the model version trained, or the import's counts.
    pub result: Option<String>,
    /// Why it failed (the error chain; no secrets travel in import or training errors).
    pub error: Option<String>,
}

/// Why a job was not started.
#[derive(Debug, thiserror::Error)]
pub enum JobRefused {
    #[error("admin job {0} is still running; one at a time")]
    Busy(u64),
}

impl AdminJobs {
    pub fn last(&self) -> Option<AdminJob> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<AdminJob>> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new running job, unless one is running.
    fn begin(&self, kind: AdminJobKind) -> Result<AdminJob, JobRefused> {
        let mut last = self.lock();
        if let Some(job) = last.as_ref().filter(|j| j.state == AdminJobState::Running) {
            return Err(JobRefused::Busy(job.id));
        }
        let job = AdminJob {
            id: last.as_ref().map_or(1, |j| j.id + 1),
            kind,
            state: AdminJobState::Running,
            started_at: Clock::System.now(),
            finished_at: None,
            result: None,
            error: None,
        };
        *last = Some(job.clone());
        Ok(job)
    }

    fn finish(&self, id: u64, outcome: Result<String>) {
        let mut last = self.lock();
        if let Some(job) = last.as_mut().filter(|j| j.id == id) {
            job.finished_at = Some(Clock::System.now());
            match outcome {
                Ok(result) => {
                    job.state = AdminJobState::Succeeded;
                    job.result = Some(result);
                }
                Err(e) => {
                    job.state = AdminJobState::Failed;
                    job.error = Some(format!("{e:#}"));
                }
            }
        }
    }
}

impl AppState {
    /// Starts training on everything stored, in the background; the model is registered
    /// active, and every replica's model watcher swaps it in.
    pub fn start_training(self: &Arc<Self>) -> Result<AdminJob, JobRefused> {
        let job = self.jobs.begin(AdminJobKind::Train)?;
        let state = self.clone();
        let id = job.id;
        tokio::spawn(async move {
            let clocks = TrainClocks {
                data: &state.clock,
                wall: &Clock::System,
            };
            let outcome = train(
                &state.store,
                &state.data_dir,
                clocks,
                &TrainParams::default(),
            )
            .await
            .map(|r: TrainReport| {
                format!(
                    "model {} trained on {} interactions in {:.1}s{}",
                    r.record.version,
                    r.record.interactions,
                    r.seconds,
                    r.popular_now.map_or(String::new(), |l| format!("; {l}"))
                )
            });
            log_outcome("training", &outcome);
            state.jobs.finish(id, outcome);
        });
        Ok(job)
    }

    /// Starts importing a MovieLens directory on the server's disk, in the background.
    pub fn start_movielens_import(
        self: &Arc<Self>,
        dir: PathBuf,
        kids_every: u32,
        country: Country,
    ) -> Result<AdminJob, JobRefused> {
        let job = self.jobs.begin(AdminJobKind::ImportMovieLens)?;
        let state = self.clone();
        let id = job.id;
        tokio::spawn(async move {
            let source = MovieLensSource {
                dir: &dir,
                maturity: None,
                kids_every,
                country,
                method: ImportMethod::Auto,
            };
            let outcome = import_movielens(&state.store, source, Clock::System.now(), &|_, _, _| {})
                .await
                .map(|i| {
                    let s = i.summary;
                    format!(
                        "{} titles, {} accounts ({} with a kids profile), {} new events ({} already present), {} warnings",
                        s.titles,
                        s.profiles,
                        s.kids_profiles,
                        s.events_new,
                        s.events_already_present,
                        i.warnings.len()
                    )
                });
            log_outcome("import", &outcome);
            state.jobs.finish(id, outcome);
        });
        Ok(job)
    }
}

fn log_outcome(what: &str, outcome: &Result<String>) {
    match outcome {
        Ok(result) => tracing::info!(%result, "admin {what} finished"),
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "admin {what} failed"),
    }
}
