//! New Releases: recent titles, newest year first.

use serde::Deserialize;

use super::{CandidateSource, SourceContext, SourcedRow};
use crate::engine::catalog::TitleIdx;
use crate::engine::filters::Audience;
use crate::engine::segments::{Segment, SegmentKey, SegmentKind};

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

/// Recent releases, newest year first, popular ones first within a year. The same list for
/// every profile of an audience: a segment list, keyed by the window of years "now" gives.
#[derive(Debug)]
pub struct NewReleases(pub NewReleasesParams);

impl NewReleases {
    /// The years that count as new at `ctx.now`: (oldest, newest).
    fn window(&self, ctx: &SourceContext<'_>) -> (i32, i32) {
        let now_year = chrono::DateTime::from_timestamp_millis(ctx.now)
            .map_or(1970, |d| chrono::Datelike::year(&d));
        (now_year - self.0.max_age_years, now_year)
    }

    fn key(&self, ctx: &SourceContext<'_>) -> SegmentKey {
        let (oldest, newest) = self.window(ctx);
        SegmentKey::new(
            SegmentKind::NewReleases,
            ctx.model,
            ctx.catalog,
            Audience::of(ctx.profile),
            &format!("{oldest}-{newest}"),
        )
    }

    /// Every title of the window with its score, for `Segment::build`.
    fn scored<'c>(&self, ctx: &'c SourceContext<'_>) -> impl Iterator<Item = (TitleIdx, f32)> + 'c {
        let (oldest, now_year) = self.window(ctx);
        ctx.catalog.titles().filter_map(move |(t, title)| {
            let year = title.year?;
            if year < oldest || year > now_year {
                return None;
            }
            // Each year newer doubles the weight; popularity orders within a year and keeps
            // titles nobody has watched yet above zero.
            let freshness = ((year - oldest) as f32).exp2();
            Some((t, freshness * (0.05 + ctx.model.popularity(t))))
        })
    }
}

impl CandidateSource for NewReleases {
    fn segments(&self, ctx: &SourceContext<'_>) -> Vec<SegmentKey> {
        vec![self.key(ctx)]
    }

    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        let audience = Audience::of(ctx.profile);
        let compute = |limit| Segment::build(ctx.catalog, audience, self.scored(ctx), limit);
        SourcedRow::single(ctx.top_via_segment(&self.key(ctx), compute, vec![], |_| false))
    }
}
