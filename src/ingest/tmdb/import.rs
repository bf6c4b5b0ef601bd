//! `marquee import tmdb`: for every catalogue title, find its TMDb movie (an id mapping, an
//! earlier match, or a search under the match rule), fetch its details with credits and
//! release dates in one request, and store them — one transaction per batch, so an
//! interrupted run keeps what it finished and `--only-missing` picks up where it stopped.
//!
//! A title that is ambiguous, unmatched or fails (after the client's retries) is listed in the
//! report and the run goes on; only what makes every request fail (a refused key, no
//! configuration) or a database error stops it.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::client::{ClientStats, TmdbClient, TmdbError};
use super::matching::{Candidate, Decision, TitleQuery};
use super::response::{self, ImageUrls};
use super::{Match, MatchMethod, TitleMetadata, TmdbId};
use crate::clock::Clock;
use crate::domain::{MaturityRating, TitleId};
use crate::engine::catalog::natural_cmp;
use crate::ingest::movielens::ImportError;
use crate::store::Store;

/// A catalogue title to look up.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkItem {
    pub title: TitleId,
    pub name: String,
    pub year: Option<i32>,
    /// The dataset's own rating (MovieLens + vega); TMDb's certification fills in only where
    /// it is `None`.
    pub dataset_maturity: Option<MaturityRating>,
    /// What an earlier run matched: refreshed by id, never searched again.
    pub stored: Option<(TmdbId, Match)>,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Skip titles that already have metadata.
    pub only_missing: bool,
    /// Titles per transaction.
    pub batch_size: usize,
    /// Titles looked up at once (the client separately caps requests in flight).
    pub concurrency: usize,
    /// Catalogue id → TMDb id, from `--links`; wins over stored matches and search.
    pub links: HashMap<TitleId, TmdbId>,
    /// Serve images from here instead of the configuration's `secure_base_url` (a CDN or
    /// proxy the UI's Content-Security-Policy allows).
    pub image_base: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            only_missing: false,
            batch_size: 50,
            concurrency: 8,
            links: HashMap::new(),
            image_base: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Tmdb(#[from] TmdbError),
    #[error("database: {0:#}")]
    Store(anyhow::Error),
}

/// What happened to one title.
#[derive(Debug)]
enum Outcome {
    Matched {
        metadata: Box<TitleMetadata>,
        /// The match as the rule decided it (search only), for the report's breakdown.
        candidate: Option<Candidate>,
        missing: Vec<&'static str>,
    },
    Ambiguous(Vec<Candidate>),
    Unmatched(Option<Candidate>),
    Failed(TmdbError),
}

/// A title named in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub title: TitleId,
    pub name: String,
    pub year: Option<i32>,
    pub detail: String,
}

impl fmt::Display for Listed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>6}  {}", self.title.as_str(), self.name)?;
        if let Some(y) = self.year {
            write!(f, " ({y})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Titles in the catalogue.
    pub catalogue: usize,
    /// Skipped because their metadata is stored (`--only-missing`).
    pub skipped: usize,
    pub matched_by_links: usize,
    /// Earlier matches fetched again.
    pub refreshed: usize,
    pub matched_by_search: usize,
    /// Search matches by year agreement: same year, one year apart, a year unknown.
    pub search_same_year: usize,
    pub search_year_apart: usize,
    pub search_year_unknown: usize,
    /// Search matches through a parenthesised alternate title / by similar (not equal) names.
    pub search_alternate_title: usize,
    pub search_similar_name: usize,
    /// Stored with some fields missing from TMDb's answer, by field.
    pub partial: usize,
    pub missing_fields: Vec<(&'static str, usize)>,
    /// Titles with a US certification, and those of them MovieLens had no rating for.
    pub certified: usize,
    pub newly_rated: usize,
    pub ambiguous: Vec<Listed>,
    pub unmatched: Vec<Listed>,
    pub failed: Vec<Listed>,
    /// Failures by kind.
    pub failure_kinds: Vec<(&'static str, usize)>,
    pub stats: ClientStats,
    pub elapsed: Duration,
}

impl ImportReport {
    pub fn matched(&self) -> usize {
        self.matched_by_links + self.refreshed + self.matched_by_search
    }

    pub fn looked_up(&self) -> usize {
        self.matched() + self.ambiguous.len() + self.unmatched.len() + self.failed.len()
    }

    fn bump(list: &mut Vec<(&'static str, usize)>, key: &'static str) {
        match list.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => list.push((key, 1)),
        }
    }

    fn record(&mut self, item: &WorkItem, outcome: &Outcome) {
        let listed = |detail: String| Listed {
            title: item.title.clone(),
            name: item.name.clone(),
            year: item.year,
            detail,
        };
        match outcome {
            Outcome::Matched {
                metadata,
                candidate,
                missing,
            } => {
                match (metadata.matched.method, candidate) {
                    (MatchMethod::Links, _) => self.matched_by_links += 1,
                    (MatchMethod::Search, None) => self.refreshed += 1,
                    (MatchMethod::Search, Some(c)) => {
                        self.matched_by_search += 1;
                        match (item.year, c.year) {
                            (Some(a), Some(b)) if a == b => self.search_same_year += 1,
                            (Some(_), Some(_)) => self.search_year_apart += 1,
                            _ => self.search_year_unknown += 1,
                        }
                        if c.alternate {
                            self.search_alternate_title += 1;
                        }
                        if c.name_similarity < 1.0 {
                            self.search_similar_name += 1;
                        }
                    }
                }
                if !missing.is_empty() {
                    self.partial += 1;
                    for m in missing {
                        Self::bump(&mut self.missing_fields, m);
                    }
                }
                if metadata.certification.is_some() {
                    self.certified += 1;
                    if item.dataset_maturity.is_none() {
                        self.newly_rated += 1;
                    }
                }
            }
            Outcome::Ambiguous(candidates) => self.ambiguous.push(listed(
                candidates
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" | "),
            )),
            Outcome::Unmatched(closest) => self.unmatched.push(listed(match closest {
                Some(c) => format!("closest {c}"),
                None => "no search result".into(),
            })),
            Outcome::Failed(e) => {
                Self::bump(&mut self.failure_kinds, e.kind());
                self.failed.push(listed(e.to_string()));
            }
        }
    }
}

impl ImportReport {
    /// The counts, one line.
    pub fn summary(&self) -> String {
        format!(
            "TMDb metadata: {} matched, {} ambiguous, {} unmatched, {} failed, {} already stored ({} requests, {} retries, {:.1} s)",
            self.matched(),
            self.ambiguous.len(),
            self.unmatched.len(),
            self.failed.len(),
            self.skipped,
            self.stats.requests,
            self.stats.retries,
            self.elapsed.as_secs_f64()
        )
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        let list = |v: &[(&'static str, usize)]| {
            v.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            f,
            "TMDb import: {} titles in the catalogue, {} already stored and skipped, {} looked up in {:.1} s",
            self.catalogue,
            self.skipped,
            self.looked_up(),
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  matched    {:>5}  by search {} (same year {}, one year apart {}, year unknown {}; via an alternate title {}, by similar name {}), by --links {}, refreshed {}",
            self.matched(),
            self.matched_by_search,
            self.search_same_year,
            self.search_year_apart,
            self.search_year_unknown,
            self.search_alternate_title,
            self.search_similar_name,
            self.matched_by_links,
            self.refreshed
        )?;
        if self.partial > 0 {
            writeln!(
                f,
                "    partial  {:>5}  stored without: {}",
                self.partial,
                list(&self.missing_fields)
            )?;
        }
        writeln!(
            f,
            "    rated    {:>5}  with a US certification; {} of them had no MovieLens rating",
            self.certified, self.newly_rated
        )?;
        writeln!(
            f,
            "  ambiguous  {:>5}  (not guessed: settle them with --links)",
            self.ambiguous.len()
        )?;
        writeln!(f, "  unmatched  {:>5}", self.unmatched.len())?;
        writeln!(
            f,
            "  failed     {:>5}{}",
            self.failed.len(),
            if self.failure_kinds.is_empty() {
                String::new()
            } else {
                format!("  ({})", list(&self.failure_kinds))
            }
        )?;
        writeln!(
            f,
            "  requests   {:>5}  retries {} (answers: 429 × {}, 5xx × {}; timeouts {}, connection errors {})",
            s.requests, s.retries, s.rate_limited, s.server_errors, s.timeouts, s.connection_errors
        )?;
        for (label, items) in [
            ("ambiguous", &self.ambiguous),
            ("unmatched", &self.unmatched),
            ("failed", &self.failed),
        ] {
            if !items.is_empty() {
                writeln!(f, "{label}:")?;
                for i in items {
                    writeln!(f, "  {i}")?;
                }
            }
        }
        Ok(())
    }
}

/// Reads MovieLens' `links.csv` (`movieId,imdbId,tmdbId`): catalogue id → TMDb id. Rows
/// without a TMDb id are skipped; anything else malformed names its line.
pub fn read_links(path: &Path) -> Result<HashMap<TitleId, TmdbId>, ImportError> {
    let file = path.display().to_string();
    let err = |line: usize, message: String| ImportError::Line {
        file: file.clone(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| ImportError::File {
        path: file.clone(),
        message: e.to_string(),
    })?;
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, h)| h.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let column = |name: &str| {
        header.iter().position(|c| *c == name).ok_or_else(|| {
            err(
                1,
                format!("missing column {name:?} (expected movieId,imdbId,tmdbId)"),
            )
        })
    };
    let (movie, tmdb) = (column("movieId")?, column("tmdbId")?);
    let mut links = HashMap::new();
    for (i, line) in lines {
        let number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let (Some(id), Some(t)) = (fields.get(movie), fields.get(tmdb)) else {
            return Err(err(number, format!("expected {} columns", header.len())));
        };
        if t.is_empty() {
            continue;
        }
        let title = TitleId::parse(id).map_err(|e| err(number, e.0))?;
        let tmdb_id = t
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0 && *n <= i64::MAX as u64)
            .ok_or_else(|| err(number, format!("tmdbId {t:?} is not a TMDb id")))?;
        if links.insert(title, TmdbId(tmdb_id)).is_some() {
            return Err(err(number, format!("movieId {id} appears twice")));
        }
    }
    Ok(links)
}

/// Runs the import; each batch is stored as fetched at `clock`'s time when it is written.
/// `progress(done, total)` is called as titles finish.
pub async fn import_metadata(
    store: &Store,
    client: &TmdbClient,
    opts: &ImportOptions,
    clock: &Clock,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<ImportReport, RunError> {
    let started = Instant::now();
    // The configuration first: without an image base there are no poster URLs, and a refused
    // key shows here, before any title is touched.
    let config = client.configuration().await?;
    let images = ImageUrls::from_configuration(&config.images, opts.image_base.as_deref())
        .map_err(|e| TmdbError::Malformed {
            endpoint: "configuration".into(),
            message: e.0,
        })?;
    let all = store.tmdb_work().await.map_err(RunError::Store)?;
    let mut report = ImportReport {
        catalogue: all.len(),
        ..ImportReport::default()
    };
    let work: Vec<WorkItem> = all
        .into_iter()
        .filter(|w| !(opts.only_missing && w.stored.is_some()))
        .collect();
    report.skipped = report.catalogue - work.len();
    let total = work.len() as u64;
    progress(0, total);

    // Titles finish in any order: one that waits out retries and timeouts must not hold up
    // the others (in catalogue order, one slow title would stall every worker behind it).
    // The report sorts its lists back into catalogue order.
    let mut results = futures_util::stream::iter(work)
        .map(|item| async {
            let outcome = lookup(client, &images, &opts.links, &item).await;
            (item, outcome)
        })
        .buffer_unordered(opts.concurrency.max(1));
    let mut batch: Vec<TitleMetadata> = Vec::with_capacity(opts.batch_size);
    let mut done = 0u64;
    while let Some((item, outcome)) = results.next().await {
        let outcome = match outcome {
            Outcome::Failed(e) if e.is_fatal() => {
                // Keep what is finished, then stop: every other request would fail the same.
                store
                    .upsert_title_metadata(&batch, clock.now())
                    .await
                    .map_err(RunError::Store)?;
                return Err(RunError::Tmdb(e));
            }
            other => other,
        };
        report.record(&item, &outcome);
        if let Outcome::Matched { metadata, .. } = outcome {
            batch.push(*metadata);
        }
        done += 1;
        if batch.len() >= opts.batch_size.max(1) {
            store
                .upsert_title_metadata(&batch, clock.now())
                .await
                .map_err(RunError::Store)?;
            batch.clear();
        }
        progress(done, total);
    }
    store
        .upsert_title_metadata(&batch, clock.now())
        .await
        .map_err(RunError::Store)?;
    for list in [
        &mut report.ambiguous,
        &mut report.unmatched,
        &mut report.failed,
    ] {
        list.sort_by(|a, b| natural_cmp(a.title.as_str(), b.title.as_str()));
    }
    report.stats = client.stats();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Finds the title's movie and fetches its details.
async fn lookup(
    client: &TmdbClient,
    images: &ImageUrls,
    links: &HashMap<TitleId, TmdbId>,
    item: &WorkItem,
) -> Outcome {
    let (id, matched, candidate) = if let Some(id) = links.get(&item.title) {
        (
            *id,
            Match {
                method: MatchMethod::Links,
                score: 1.0,
            },
            None,
        )
    } else if let Some((id, matched)) = item.stored {
        (id, matched, None)
    } else {
        match search(client, item).await {
            Ok(Decision::Match(c)) => (
                c.id,
                Match {
                    method: MatchMethod::Search,
                    score: c.score,
                },
                Some(c),
            ),
            Ok(Decision::Ambiguous { candidates }) => return Outcome::Ambiguous(candidates),
            Ok(Decision::Unmatched { closest }) => return Outcome::Unmatched(closest),
            Err(e) => return Outcome::Failed(e),
        }
    };
    match client.movie_details(id).await {
        Ok(details) => {
            let converted = response::to_metadata(details, images, item.title.clone(), matched);
            Outcome::Matched {
                metadata: Box::new(converted.metadata),
                candidate,
                missing: converted.missing,
            }
        }
        Err(e) => Outcome::Failed(e),
    }
}

/// The main title, then alternate titles while nothing matches, then — when the first page
/// was full — the main title narrowed to the year.
async fn search(client: &TmdbClient, item: &WorkItem) -> Result<Decision, TmdbError> {
    let query = TitleQuery::new(&item.name, item.year);
    let Some(main) = query.searches.first() else {
        return Ok(Decision::Unmatched { closest: None });
    };
    let first = client.search_movie(main, None).await?;
    let page_full = first.total_results > first.results.len() as u64;
    let mut seen = first.results;
    let mut decision = query.decide(&seen);
    for alternate in query.searches.iter().skip(1).take(2) {
        if !matches!(decision, Decision::Unmatched { .. }) {
            break;
        }
        seen.extend(client.search_movie(alternate, None).await?.results);
        decision = query.decide(&seen);
    }
    if let (Decision::Unmatched { .. }, true, Some(year)) = (&decision, page_full, item.year) {
        seen.extend(client.search_movie(main, Some(year)).await?.results);
        decision = query.decide(&seen);
    }
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_files_name_their_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("links.csv");
        std::fs::write(
            &path,
            "movieId,imdbId,tmdbId\n1,0114709,862\n2,0113497,\n\n3,x,abc\n",
        )
        .unwrap();
        let err = read_links(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("links.csv:5: tmdbId \"abc\" is not a TMDb id"),
            "{err}"
        );
        std::fs::write(&path, "movieId,imdbId,tmdbId\n1,0114709,862\n2,0113497,\n").unwrap();
        let links = read_links(&path).unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links[&TitleId::parse("1").unwrap()], TmdbId(862));
        std::fs::write(&path, "a,b\n").unwrap();
        assert!(
            read_links(&path)
                .unwrap_err()
                .to_string()
                .contains(":1: missing column")
        );
    }
}
