//! Catalogue metadata from TMDb (The Movie Database): overviews, taglines, runtimes, original
//! languages, posters and backdrops, genres, US certifications, top-billed cast and directors.
//!
//! - `client`: the HTTP client (rate limit, retries, timeouts, the key kept secret);
//! - `matching`: the documented rule that finds a catalogue title on TMDb, or refuses to;
//! - `response`: TMDb's response shapes, bounded and converted into [`TitleMetadata`];
//! - `import`: `marquee import tmdb` — titles → matches → details → the store, one
//!   transaction per batch, and the report.
//!
//! What the store keeps is read back into [`crate::domain::Title`]: the dataset's overview
//! and rating first, TMDb's where the dataset has none.

pub mod client;
pub mod import;
pub mod matching;
pub mod response;

pub use client::{ClientOptions, ClientStats, Credential, DEFAULT_BASE_URL, TmdbClient, TmdbError};
pub use import::{ImportOptions, ImportReport, RunError, WorkItem, import_metadata, read_links};

use crate::domain::{MaturityRating, TitleId};

/// A TMDb movie id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TmdbId(pub u64);

/// How a title's TMDb movie was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMethod {
    /// An id mapping (`--links`, MovieLens' `links.csv`).
    Links,
    /// TMDb search by title and year, scored by `matching`.
    Search,
}

impl MatchMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Links => "links",
            Self::Search => "search",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "links" => Some(Self::Links),
            "search" => Some(Self::Search),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    pub method: MatchMethod,
    /// The match rule's score (1 for an id mapping).
    pub score: f64,
}

/// A TMDb person credited on a title.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// TMDb person id.
    pub id: u64,
    pub name: String,
    /// The role played (actors only).
    pub character: Option<String>,
}

/// Everything stored for one matched title; every text and list within the bounds of
/// `response`.
#[derive(Debug, Clone, PartialEq)]
pub struct TitleMetadata {
    pub title: TitleId,
    pub tmdb_id: TmdbId,
    pub matched: Match,
    pub overview: Option<String>,
    pub tagline: Option<String>,
    pub runtime_minutes: Option<u32>,
    pub original_language: Option<String>,
    pub genres: Vec<String>,
    /// The US certification when it is an MPAA rating.
    pub certification: Option<MaturityRating>,
    pub poster_url: Option<String>,
    pub backdrop_url: Option<String>,
    /// Top-billed cast in billing order.
    pub cast: Vec<Person>,
    pub directors: Vec<Person>,
}
