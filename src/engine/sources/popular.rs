//! Trending (per country) and Popular (overall): the rows that need no history.

use serde::Deserialize;

use super::{CandidateSource, SourceContext, SourcedRow};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Trending in the profile's country (time-decayed popularity, computed at training time).
#[derive(Debug)]
pub struct Trending(pub NoParams);

impl CandidateSource for Trending {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        SourcedRow::single(
            ctx.top(
                ctx.model
                    .trending(ctx.profile.country.as_ref())
                    .iter()
                    .copied(),
            ),
        )
    }
}

/// Most popular overall.
#[derive(Debug)]
pub struct Popular(pub NoParams);

impl CandidateSource for Popular {
    fn rows(&self, ctx: &SourceContext<'_>) -> Vec<SourcedRow> {
        SourcedRow::single(ctx.popular())
    }
}
