//! New Releases: recent titles, newest year first.

use serde::Deserialize;

use super::{CandidateSource, SourceContext, SourcedRow};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewReleasesParams {
    /// Titles released this many years before "now" (or later) count as new.
    pub max_age_years: i32,
}

impl Default for NewReleasesParams {
    fn default() -> Self {
        Self { max_age_years: 1 }
    }
}

/// Recent releases, newest year first, popular ones first within a year.
#[derive(Debug)]
pub struct NewReleases(pub NewReleasesParams);

impl CandidateSource for NewReleases {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        let now_year = chrono::DateTime::from_timestamp_millis(ctx.now)
            .map_or(1970, |d| chrono::Datelike::year(&d));
        let oldest = now_year - self.0.max_age_years;
        SourcedRow::single(ctx.top(ctx.catalog.titles().filter_map(|(t, title)| {
            let year = title.year?;
            if year < oldest || year > now_year {
                return None;
            }
            // Each year newer doubles the weight; popularity orders within a year and keeps
            // titles nobody has watched yet above zero.
            let freshness = ((year - oldest) as f32).exp2();
            Some((t, freshness * (0.05 + ctx.model.popularity(t))))
        })))
    }
}
