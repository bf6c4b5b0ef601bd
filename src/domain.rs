//! The vocabulary every other module speaks: ids, maturity ratings, titles, profiles and events.
//!
//! Values here are parsed once at the edge (import, GraphQL, database rows) so that the engine
//! never has to re-check them: a `MaturityRating` is always one of the known ratings, a
//! `Progress` is always within 0–1, a `StarRating` always within 0.5–5.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. Every timestamp in Marquee uses this unit so that SQLite,
/// PostgreSQL and the engine agree without time-zone or precision surprises.
pub type Millis = i64;

pub const DAY_MS: Millis = 86_400_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// `value` when `range` holds it (never NaN); otherwise a `ParseError` that says what was
/// `expected` and what came. The check behind every bounded number type.
pub fn in_range(
    value: f64,
    range: std::ops::RangeInclusive<f64>,
    expected: &str,
) -> Result<f64, ParseError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ParseError(format!("{expected}, got {value}")))
    }
}

/// How much of a client's input an error message may quote.
pub const EXCERPT_CHARS: usize = 40;

/// `raw` quoted for an error message: at most `EXCERPT_CHARS` characters of it (then "…"),
/// so that an error never echoes a megabyte back, nor a control character into a log.
pub fn excerpt(raw: &str) -> String {
    let mut quoted: String = raw
        .chars()
        .take(EXCERPT_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if raw.chars().nth(EXCERPT_CHARS).is_some() {
        quoted.push('…');
    }
    format!("\"{quoted}\"")
}

/// Client text of at most `max_chars` characters (characters, not bytes: 60 emoji are 60),
/// without control characters (NUL, escapes, line breaks). `what` names it in the error.
pub fn bounded_text(what: &str, raw: &str, max_chars: usize) -> Result<String, ParseError> {
    let n = raw.chars().count();
    if n > max_chars {
        return Err(ParseError(format!(
            "{what} is {n} characters long; at most {max_chars} are allowed"
        )));
    }
    if raw.chars().any(char::is_control) {
        return Err(ParseError(format!(
            "{what} {} contains control characters",
            excerpt(raw)
        )));
    }
    Ok(raw.to_owned())
}

/// A profile's display name: 1–50 characters once trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileName(String);

impl ProfileName {
    pub const MAX_CHARS: usize = 50;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let name = bounded_text("name", raw.trim(), Self::MAX_CHARS)?;
        if name.is_empty() {
            return Err(ParseError("name must not be empty".into()));
        }
        Ok(Self(name))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Ids are opaque tokens: non-empty, at most 128 bytes, no whitespace or control
            /// characters (they travel in URLs, TSV exports and log lines).
            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                if raw.is_empty() {
                    return Err(ParseError(format!("{} must not be empty", stringify!($name))));
                }
                if raw.len() > 128 {
                    return Err(ParseError(format!(
                        "{} {} is longer than 128 bytes",
                        stringify!($name),
                        excerpt(raw)
                    )));
                }
                if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(ParseError(format!(
                        "{} {} contains whitespace or control characters",
                        stringify!($name),
                        excerpt(raw)
                    )));
                }
                Ok(Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

string_id!(
    /// A client's id for one event, unique per profile: resending it is harmless.
    ClientEventId
);
string_id!(
    /// A served page's id (`HomePage.requestId`), which events name to be attributed.
    RequestId
);
string_id!(
    /// A title (movie or show). MovieLens item ids are kept as they are.
    TitleId
);
string_id!(
    /// A viewing profile. MovieLens user `u` becomes profile `u`; its kids profile is `u-kids`.
    ProfileId
);
string_id!(
    /// The account that owns one or more profiles.
    AccountId
);

/// US MPAA ratings, ordered from least to most restrictive content.
/// "Unrated" is not a variant: it is the absence of a rating (`Option<MaturityRating>`),
/// because the rules for unknown ratings differ from every known one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MaturityRating {
    G,
    Pg,
    Pg13,
    R,
    Nc17,
}

impl MaturityRating {
    pub const ALL: [MaturityRating; 5] = [Self::G, Self::Pg, Self::Pg13, Self::R, Self::Nc17];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::G => "G",
            Self::Pg => "PG",
            Self::Pg13 => "PG-13",
            Self::R => "R",
            Self::Nc17 => "NC-17",
        }
    }
}

impl fmt::Display for MaturityRating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MaturityRating {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim().to_ascii_uppercase().replace(' ', "").as_str() {
            "G" => Ok(Self::G),
            "PG" => Ok(Self::Pg),
            "PG-13" | "PG13" => Ok(Self::Pg13),
            "R" => Ok(Self::R),
            "NC-17" | "NC17" => Ok(Self::Nc17),
            _ => Err(ParseError(format!(
                "unknown maturity rating {s:?} (expected G, PG, PG-13, R or NC-17)"
            ))),
        }
    }
}

/// ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country(String);

impl Country {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(code))
        } else {
            Err(ParseError(format!(
                "{} is not a two-letter country code",
                excerpt(raw)
            )))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Country {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}

impl From<Country> for String {
    fn from(c: Country) -> String {
        c.0
    }
}

/// Fraction of a title watched, always within 0–1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct Progress(f64);

impl Progress {
    pub const ZERO: Progress = Progress(0.0);
    pub const DONE: Progress = Progress(1.0);

    pub fn new(fraction: f64) -> Result<Self, ParseError> {
        in_range(
            fraction,
            0.0..=1.0,
            "progress must be a fraction between 0 and 1",
        )
        .map(Self)
    }
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A star rating on MovieLens' scale, 0.5–5.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct StarRating(f64);

impl StarRating {
    pub fn new(stars: f64) -> Result<Self, ParseError> {
        in_range(stars, 0.5..=5.0, "rating must be between 0.5 and 5 stars").map(Self)
    }
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A title's rating from its two sources: the dataset's (MovieLens + vega-datasets' MPAA
/// ratings) wins; the metadata provider's US certification (TMDb) counts only where the
/// dataset has none. The one place this precedence is decided; the store applies it when it
/// loads the catalogue, and the kids property tests generate titles through it.
pub fn effective_maturity(
    dataset: Option<MaturityRating>,
    provider: Option<MaturityRating>,
) -> Option<MaturityRating> {
    dataset.or(provider)
}

/// Genres as MovieLens spells them ("Children's", "Sci-Fi", "Film-Noir").
pub const CHILDREN_GENRES: [&str; 2] = ["Children's", "Animation"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Title {
    pub id: TitleId,
    pub name: String,
    pub year: Option<i32>,
    pub genres: Vec<String>,
    /// The dataset's rating (MovieLens + vega-datasets) when it has one, else the metadata
    /// provider's US certification (TMDb); `None` is unrated. The store resolves this
    /// precedence when it loads the catalogue.
    pub maturity: Option<MaturityRating>,
    /// The dataset's synopsis when it has one, else the metadata provider's.
    pub overview: Option<String>,
    /// When the title joined the catalogue.
    pub added_at: Millis,
    /// Countries where the title may be shown; `None` means everywhere.
    pub countries: Option<Vec<Country>>,
    /// Provider metadata (`marquee import tmdb`), when the title has some. Behind an `Arc`:
    /// titles are cloned into every response, the cast list need not be.
    pub details: Option<Arc<TitleDetails>>,
}

/// What a metadata provider (TMDb) adds to a title. Every list and text is bounded when it is
/// parsed (`ingest::tmdb::response`), so nothing here grows with a provider's whims.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TitleDetails {
    pub tagline: Option<String>,
    pub runtime_minutes: Option<u32>,
    /// ISO 639-1 code of the original language ("en", "fr").
    pub original_language: Option<String>,
    /// Absolute image URLs, built at import from the provider's image base and sizes.
    pub poster_url: Option<String>,
    pub backdrop_url: Option<String>,
    /// Top-billed cast, in billing order.
    pub cast: Vec<CastMember>,
    /// Directors in credit order (usually one).
    pub directors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CastMember {
    pub name: String,
    pub character: Option<String>,
}

impl Title {
    /// A title known only by id and name: no metadata, licensed everywhere.
    pub fn new(id: TitleId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            year: None,
            genres: Vec::new(),
            maturity: None,
            overview: None,
            added_at: 0,
            countries: None,
            details: None,
        }
    }

    pub fn is_for_children(&self) -> bool {
        self.genres
            .iter()
            .any(|g| CHILDREN_GENRES.contains(&g.as_str()))
    }

    pub fn available_in(&self, country: Option<&Country>) -> bool {
        match (&self.countries, country) {
            (None, _) => true,
            // A profile of unknown country only sees titles licensed everywhere.
            (Some(_), None) => false,
            (Some(list), Some(c)) => list.contains(c),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub id: ProfileId,
    pub account_id: AccountId,
    pub name: String,
    pub is_kids: bool,
    /// Highest rating this profile may see; `None` means no limit.
    pub maturity_limit: Option<MaturityRating>,
    pub country: Option<Country>,
    /// Genres picked during onboarding, used while the profile has no history.
    pub onboarding_genres: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    Play,
    Progress,
    Complete,
    Rating,
    ThumbsUp,
    ThumbsDown,
    Click,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Play => "PLAY",
            Self::Progress => "PROGRESS",
            Self::Complete => "COMPLETE",
            Self::Rating => "RATING",
            Self::ThumbsUp => "THUMBS_UP",
            Self::ThumbsDown => "THUMBS_DOWN",
            Self::Click => "CLICK",
        }
    }
}

impl FromStr for EventKind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Ok(match s {
            "PLAY" => Self::Play,
            "PROGRESS" => Self::Progress,
            "COMPLETE" => Self::Complete,
            "RATING" => Self::Rating,
            "THUMBS_UP" => Self::ThumbsUp,
            "THUMBS_DOWN" => Self::ThumbsDown,
            "CLICK" => Self::Click,
            other => return Err(ParseError(format!("unknown event kind {other:?}"))),
        })
    }
}

/// What happened, with its validated payload: a progress event always carries a `Progress`,
/// a rating a `StarRating`, and nothing else carries a value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum EventAction {
    Play,
    Progress(Progress),
    Complete,
    Rating(StarRating),
    ThumbsUp,
    ThumbsDown,
    Click,
}

impl EventAction {
    /// Builds the action from the wire form (kind + optional value).
    pub fn from_parts(kind: EventKind, value: Option<f64>) -> Result<Self, ParseError> {
        let needs_value = |what: &str| ParseError(format!("a {what} event needs a value"));
        Ok(match kind {
            EventKind::Progress => EventAction::Progress(Progress::new(
                value.ok_or_else(|| needs_value("PROGRESS"))?,
            )?),
            EventKind::Rating => EventAction::Rating(StarRating::new(
                value.ok_or_else(|| needs_value("RATING"))?,
            )?),
            other => {
                if let Some(v) = value.filter(|v| !v.is_finite()) {
                    return Err(ParseError(format!("value {v} is not a finite number")));
                }
                match other {
                    EventKind::Play => EventAction::Play,
                    EventKind::Complete => EventAction::Complete,
                    EventKind::ThumbsUp => EventAction::ThumbsUp,
                    EventKind::ThumbsDown => EventAction::ThumbsDown,
                    _ => EventAction::Click,
                }
            }
        })
    }

    pub fn kind(self) -> EventKind {
        match self {
            Self::Play => EventKind::Play,
            Self::Progress(_) => EventKind::Progress,
            Self::Complete => EventKind::Complete,
            Self::Rating(_) => EventKind::Rating,
            Self::ThumbsUp => EventKind::ThumbsUp,
            Self::ThumbsDown => EventKind::ThumbsDown,
            Self::Click => EventKind::Click,
        }
    }

    pub fn value(self) -> Option<f64> {
        match self {
            Self::Progress(p) => Some(p.get()),
            Self::Rating(r) => Some(r.get()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maturity_ratings_order_from_mild_to_restricted() {
        assert!(MaturityRating::G < MaturityRating::Pg);
        assert!(MaturityRating::Pg13 < MaturityRating::R);
        assert!(MaturityRating::R < MaturityRating::Nc17);
        for r in MaturityRating::ALL {
            assert_eq!(r.as_str().parse::<MaturityRating>(), Ok(r));
        }
        assert!("Not Rated".parse::<MaturityRating>().is_err());
    }

    #[test]
    fn ids_reject_blank_and_whitespace() {
        assert!(TitleId::parse("").is_err());
        assert!(TitleId::parse("a b").is_err());
        assert_eq!(
            TitleId::parse("242").map(|t| t.to_string()),
            Ok("242".into())
        );
    }

    #[test]
    fn event_values_are_checked_per_kind() {
        assert!(EventAction::from_parts(EventKind::Progress, Some(1.2)).is_err());
        assert!(EventAction::from_parts(EventKind::Progress, None).is_err());
        assert!(EventAction::from_parts(EventKind::Rating, Some(0.0)).is_err());
        assert!(EventAction::from_parts(EventKind::Rating, Some(4.5)).is_ok());
        assert!(EventAction::from_parts(EventKind::Play, Some(f64::NAN)).is_err());
    }
}
