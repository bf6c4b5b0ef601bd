//! TMDb's response shapes (API v3) and their conversion into what Marquee stores.
//!
//! Shapes, as documented for `GET /search/movie`, `GET /movie/{id}?append_to_response=credits,
//! release_dates` and `GET /configuration`: every field Marquee does not need is ignored, and
//! every field it does need except a movie's `id` may be missing or null — a partial response
//! stores what it has and says what it lacked. Text and lists are bounded here, at the edge:
//! the rest of Marquee never sees a 10 MB tagline or a cast of thousands.

use serde::Deserialize;

use super::{Person, TitleMetadata, TmdbId};
use crate::domain::{MaturityRating, ParseError};

/// Longest overview kept, in characters (TMDb's are a few hundred; longer is cut with "…").
pub const MAX_OVERVIEW_CHARS: usize = 2_000;
/// Longest tagline, person or character name kept, in characters.
pub const MAX_SHORT_TEXT_CHARS: usize = 300;
/// Top-billed actors kept per title.
pub const MAX_CAST: usize = 10;
/// Directors kept per title.
pub const MAX_DIRECTORS: usize = 4;
/// Genres kept per title.
pub const MAX_GENRES: usize = 10;

#[derive(Debug, Clone, Deserialize)]
pub struct SearchPage {
    #[serde(default)]
    pub results: Vec<SearchResult>,
    #[serde(default)]
    pub total_results: u64,
    #[serde(default)]
    pub total_pages: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SearchResult {
    pub id: u64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub original_title: Option<String>,
    /// "1995-10-30"; "" when TMDb does not know it.
    #[serde(default)]
    pub release_date: Option<String>,
}

impl SearchResult {
    pub fn year(&self) -> Option<i32> {
        year_of(self.release_date.as_deref())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct MovieDetails {
    pub id: u64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub overview: Option<String>,
    #[serde(default)]
    pub tagline: Option<String>,
    /// Minutes; TMDb says 0 or null when unknown.
    #[serde(default)]
    pub runtime: Option<u32>,
    #[serde(default)]
    pub original_language: Option<String>,
    #[serde(default)]
    pub poster_path: Option<String>,
    #[serde(default)]
    pub backdrop_path: Option<String>,
    #[serde(default)]
    pub genres: Option<Vec<Genre>>,
    /// Present because of `append_to_response=credits`.
    #[serde(default)]
    pub credits: Option<Credits>,
    /// Present because of `append_to_response=release_dates`.
    #[serde(default)]
    pub release_dates: Option<ReleaseDates>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Genre {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Credits {
    #[serde(default)]
    pub cast: Vec<CastCredit>,
    #[serde(default)]
    pub crew: Vec<CrewCredit>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CastCredit {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub character: Option<String>,
    /// Billing order, 0 first.
    #[serde(default)]
    pub order: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CrewCredit {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub job: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReleaseDates {
    #[serde(default)]
    pub results: Vec<CountryReleases>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CountryReleases {
    pub iso_3166_1: String,
    #[serde(default)]
    pub release_dates: Vec<ReleaseDate>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReleaseDate {
    #[serde(default)]
    pub certification: Option<String>,
    /// 1 premiere, 2 limited theatrical, 3 theatrical, 4 digital, 5 physical, 6 TV.
    #[serde(default, rename = "type")]
    pub kind: Option<u8>,
    #[serde(default)]
    pub release_date: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Configuration {
    pub images: ImagesConfiguration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ImagesConfiguration {
    #[serde(default)]
    pub secure_base_url: Option<String>,
    #[serde(default)]
    pub poster_sizes: Vec<String>,
    #[serde(default)]
    pub backdrop_sizes: Vec<String>,
}

/// TMDb's error body: `{"success": false, "status_code": 7, "status_message": "…"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub status_message: Option<String>,
}

/// Where poster and backdrop URLs point: an image base and one size for each, chosen once
/// per run from `/configuration` (or the base given with `--image-base-url`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageUrls {
    /// Absolute http(s) URL ending in '/'.
    pub base: String,
    pub poster_size: String,
    pub backdrop_size: String,
}

/// Poster width asked for: large enough for the title page (2× a 240 px poster column is
/// cut down by the browser), small enough for rows of cards.
const POSTER_WIDTH: u32 = 500;
const BACKDROP_WIDTH: u32 = 1280;

impl ImageUrls {
    /// The image base (an override wins over the configuration's `secure_base_url`) and the
    /// sizes nearest to what the UI shows.
    pub fn from_configuration(
        config: &ImagesConfiguration,
        base_override: Option<&str>,
    ) -> Result<Self, ParseError> {
        let base = match base_override.or(config.secure_base_url.as_deref()) {
            Some(b) => b,
            None => {
                return Err(ParseError(
                    "the configuration has no images.secure_base_url".into(),
                ));
            }
        };
        let base = normalise_base(base)?;
        Ok(Self {
            base,
            poster_size: pick_size(&config.poster_sizes, POSTER_WIDTH),
            backdrop_size: pick_size(&config.backdrop_sizes, BACKDROP_WIDTH),
        })
    }

    /// The URL of an image path from a movie ("/abc.jpg"), or `None` when the path is not a
    /// plain file path (it is untrusted input that ends up in an `<img src>`).
    pub fn url(&self, size: &str, path: &str) -> Option<String> {
        let file = path.strip_prefix('/')?;
        let plain = !file.is_empty()
            && file.len() <= 100
            && !file.contains("..")
            && file
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        plain.then(|| format!("{}{size}/{file}", self.base))
    }
}

fn normalise_base(raw: &str) -> Result<String, ParseError> {
    let ok = (raw.starts_with("https://") || raw.starts_with("http://"))
        && raw.len() <= 500
        && !raw
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"');
    if !ok {
        return Err(ParseError(format!(
            "image base {raw:?} is not an absolute http(s) URL"
        )));
    }
    Ok(if raw.ends_with('/') {
        raw.to_owned()
    } else {
        format!("{raw}/")
    })
}

/// The smallest "w<N>" size at least `width` wide, else the largest one, else "original".
fn pick_size(sizes: &[String], width: u32) -> String {
    let mut widths: Vec<(u32, &String)> = sizes
        .iter()
        .filter_map(|s| Some((s.strip_prefix('w')?.parse::<u32>().ok()?, s)))
        .collect();
    widths.sort();
    widths
        .iter()
        .find(|(w, _)| *w >= width)
        .or(widths.last())
        .map_or_else(|| "original".to_owned(), |(_, s)| (*s).clone())
}

/// "1995-10-30" → 1995.
pub fn year_of(date: Option<&str>) -> Option<i32> {
    let d = date?;
    d.get(..4)?
        .parse::<i32>()
        .ok()
        .filter(|y| (1870..=2100).contains(y))
}

/// Trims, drops empty text, and cuts text longer than `max` characters with "…".
fn bounded(text: Option<String>, max: usize) -> Option<String> {
    let text = text?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.chars().count() <= max {
        return Some(trimmed.to_owned());
    }
    let mut cut: String = trimmed.chars().take(max - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    Some(cut)
}

/// The US certification of a movie, as an MPAA rating: theatrical releases first (they carry
/// the MPAA's rating; home-video ones sometimes an unrated cut's "NR"), then limited,
/// premiere and the rest; among equals the earliest. "NR" and empty certifications are not
/// ratings.
pub fn us_certification(dates: &ReleaseDates) -> Option<MaturityRating> {
    let preference = |kind: Option<u8>| match kind {
        Some(3) => 0,
        Some(2) => 1,
        Some(1) => 2,
        _ => 3,
    };
    dates
        .results
        .iter()
        .filter(|c| c.iso_3166_1.eq_ignore_ascii_case("US"))
        .flat_map(|c| &c.release_dates)
        .filter_map(|r| {
            let rating = r.certification.as_deref()?.parse::<MaturityRating>().ok()?;
            Some((preference(r.kind), r.release_date.clone(), rating))
        })
        .min_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)))
        .map(|(_, _, rating)| rating)
}

/// What a details response gave: the record to store, and the fields it lacked (a partial
/// response is stored, and reported).
#[derive(Debug, Clone)]
pub struct Converted {
    pub metadata: TitleMetadata,
    pub missing: Vec<&'static str>,
}

/// Builds the stored record from a details response. `match_*` say how the movie was found.
pub fn to_metadata(
    details: MovieDetails,
    images: &ImageUrls,
    title: crate::domain::TitleId,
    matched: super::Match,
) -> Converted {
    let mut missing = Vec::new();
    let overview = bounded(details.overview, MAX_OVERVIEW_CHARS);
    if overview.is_none() {
        missing.push("overview");
    }
    let runtime_minutes = details.runtime.filter(|m| (1..=1_000).contains(m));
    if runtime_minutes.is_none() {
        missing.push("runtime");
    }
    let original_language = details
        .original_language
        .filter(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_lowercase()));
    let poster_url = details
        .poster_path
        .as_deref()
        .and_then(|p| images.url(&images.poster_size, p));
    if poster_url.is_none() {
        missing.push("poster");
    }
    let backdrop_url = details
        .backdrop_path
        .as_deref()
        .and_then(|p| images.url(&images.backdrop_size, p));
    let genres: Vec<String> = details
        .genres
        .unwrap_or_default()
        .into_iter()
        .filter_map(|g| bounded(Some(g.name), MAX_SHORT_TEXT_CHARS))
        // '|' separates genres in the store.
        .filter(|g| !g.contains('|'))
        .take(MAX_GENRES)
        .collect();
    let (cast, directors) = match details.credits {
        Some(credits) => people(credits),
        None => {
            missing.push("credits");
            (Vec::new(), Vec::new())
        }
    };
    let certification = match &details.release_dates {
        Some(dates) => us_certification(dates),
        None => {
            missing.push("release_dates");
            None
        }
    };
    Converted {
        metadata: TitleMetadata {
            title,
            tmdb_id: TmdbId(details.id),
            matched,
            overview,
            tagline: bounded(details.tagline, MAX_SHORT_TEXT_CHARS),
            runtime_minutes,
            original_language,
            genres,
            certification,
            poster_url,
            backdrop_url,
            cast,
            directors,
        },
        missing,
    }
}

/// Top-billed cast by billing order, and directors in credit order; each person once.
fn people(credits: Credits) -> (Vec<Person>, Vec<Person>) {
    let mut cast: Vec<(u32, usize, CastCredit)> = credits
        .cast
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c.order.unwrap_or(u32::MAX), i, c))
        .collect();
    cast.sort_by_key(|(order, i, _)| (*order, *i));
    let mut seen = std::collections::HashSet::new();
    let cast = cast
        .into_iter()
        // Ids are stored as database integers.
        .filter(|(_, _, c)| c.id <= i64::MAX as u64)
        .filter_map(|(_, _, c)| {
            let name = bounded(Some(c.name), MAX_SHORT_TEXT_CHARS)?;
            seen.insert(c.id).then(|| Person {
                id: c.id,
                name,
                character: bounded(c.character, MAX_SHORT_TEXT_CHARS),
            })
        })
        .take(MAX_CAST)
        .collect();
    let mut seen = std::collections::HashSet::new();
    let directors = credits
        .crew
        .into_iter()
        .filter(|c| c.job.as_deref() == Some("Director") && c.id <= i64::MAX as u64)
        .filter_map(|c| {
            let name = bounded(Some(c.name), MAX_SHORT_TEXT_CHARS)?;
            seen.insert(c.id).then_some(Person {
                id: c.id,
                name,
                character: None,
            })
        })
        .take(MAX_DIRECTORS)
        .collect();
    (cast, directors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TitleId;
    use crate::ingest::tmdb::{Match, MatchMethod};
    use proptest::prelude::*;

    fn images() -> ImageUrls {
        ImageUrls::from_configuration(
            &ImagesConfiguration {
                secure_base_url: Some("https://image.tmdb.org/t/p/".into()),
                poster_sizes: ["w92", "w154", "w185", "w342", "w500", "w780", "original"]
                    .map(String::from)
                    .to_vec(),
                backdrop_sizes: ["w300", "w780", "w1280", "original"]
                    .map(String::from)
                    .to_vec(),
            },
            None,
        )
        .unwrap()
    }

    fn matched() -> Match {
        Match {
            method: MatchMethod::Search,
            score: 1.0,
        }
    }

    #[test]
    fn documented_details_shape_converts() {
        let json = r#"{
          "adult": false, "id": 629, "imdb_id": "tt0114814", "title": "The Usual Suspects",
          "original_title": "The Usual Suspects", "original_language": "en",
          "overview": "Held in an L.A. interrogation room, Verbal Kint ...",
          "tagline": "Five criminals. One line up. No coincidence.", "runtime": 106,
          "poster_path": "/rWbsxdwF9qQzpTPCLmDfVnVqTK1.jpg", "backdrop_path": "/x.jpg",
          "genres": [{"id": 18, "name": "Drama"}, {"id": 80, "name": "Crime"}],
          "release_date": "1995-07-19",
          "credits": {
            "cast": [
              {"id": 2, "name": "Kevin Spacey", "character": "Verbal Kint", "order": 1},
              {"id": 1, "name": "Gabriel Byrne", "character": "Dean Keaton", "order": 0},
              {"id": 1, "name": "Gabriel Byrne", "character": "Narrator", "order": 7}
            ],
            "crew": [
              {"id": 9, "name": "Bryan Singer", "job": "Director", "department": "Directing"},
              {"id": 8, "name": "Christopher McQuarrie", "job": "Screenplay"}
            ]
          },
          "release_dates": {"results": [
            {"iso_3166_1": "DE", "release_dates": [{"certification": "16", "type": 3}]},
            {"iso_3166_1": "US", "release_dates": [
              {"certification": "NR", "type": 5, "release_date": "1996-01-01T00:00:00.000Z"},
              {"certification": "R", "type": 3, "release_date": "1995-08-16T00:00:00.000Z"}
            ]}
          ]}
        }"#;
        let details: MovieDetails = serde_json::from_str(json).unwrap();
        let c = to_metadata(details, &images(), TitleId::parse("12").unwrap(), matched());
        let m = c.metadata;
        assert!(c.missing.is_empty(), "{:?}", c.missing);
        assert_eq!(m.tmdb_id, TmdbId(629));
        assert_eq!(m.runtime_minutes, Some(106));
        assert_eq!(m.certification, Some(MaturityRating::R));
        assert_eq!(
            m.poster_url.as_deref(),
            Some("https://image.tmdb.org/t/p/w500/rWbsxdwF9qQzpTPCLmDfVnVqTK1.jpg")
        );
        assert_eq!(
            m.backdrop_url.as_deref(),
            Some("https://image.tmdb.org/t/p/w1280/x.jpg")
        );
        let cast: Vec<&str> = m.cast.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(cast, ["Gabriel Byrne", "Kevin Spacey"]);
        assert_eq!(m.directors.len(), 1);
        assert_eq!(m.genres, ["Drama", "Crime"]);
    }

    #[test]
    fn partial_details_keep_what_they_have() {
        let details: MovieDetails = serde_json::from_str(
            r#"{"id": 5, "overview": "  ", "runtime": 0, "tagline": null,
                "poster_path": "https://evil.example/x.jpg", "genres": null}"#,
        )
        .unwrap();
        let c = to_metadata(details, &images(), TitleId::parse("1").unwrap(), matched());
        assert_eq!(
            c.missing,
            ["overview", "runtime", "poster", "credits", "release_dates"]
        );
        assert_eq!(c.metadata.poster_url, None);
        assert_eq!(c.metadata.certification, None);
        // A movie without an id is not a movie: that is an error, not a partial record.
        assert!(serde_json::from_str::<MovieDetails>(r#"{"title": "x"}"#).is_err());
    }

    #[test]
    fn image_paths_are_plain_files() {
        let i = images();
        assert_eq!(
            i.url("w500", "/a_b-1.jpg").as_deref(),
            Some("https://image.tmdb.org/t/p/w500/a_b-1.jpg")
        );
        for bad in [
            "a.jpg",
            "/../x.jpg",
            "//evil.example/x.jpg",
            "/x.jpg\"onerror=",
            "/",
        ] {
            assert_eq!(i.url("w500", bad), None, "{bad}");
        }
        assert!(
            ImageUrls::from_configuration(
                &ImagesConfiguration {
                    secure_base_url: Some("javascript:alert(1)".into()),
                    poster_sizes: vec![],
                    backdrop_sizes: vec![],
                },
                None
            )
            .is_err()
        );
        assert_eq!(pick_size(&[], 500), "original");
        assert_eq!(pick_size(&["w92".into(), "w185".into()], 500), "w185");
    }

    #[test]
    fn long_text_is_cut() {
        let long = "x".repeat(5_000);
        let cut = bounded(Some(long), MAX_OVERVIEW_CHARS).unwrap();
        assert_eq!(cut.chars().count(), MAX_OVERVIEW_CHARS);
        assert!(cut.ends_with('…'));
    }

    proptest! {
        // Responses are untrusted input: whatever bytes arrive, parsing either fails with an
        // error or yields a record within the documented bounds; it never panics.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(d) = serde_json::from_slice::<MovieDetails>(&body) {
                let c = to_metadata(d, &images(), TitleId::parse("1").unwrap(), matched());
                prop_assert!(c.metadata.cast.len() <= MAX_CAST);
            }
            let _ = serde_json::from_slice::<SearchPage>(&body);
        }

        #[test]
        fn arbitrary_details_stay_bounded(
            overview in ".{0,3000}",
            names in proptest::collection::vec(("[a-zA-Z ]{0,400}", 0u64..50, proptest::option::of(0u32..40)), 0..40),
            cert in proptest::option::of("[A-Z0-9-]{0,6}"),
        ) {
            let cast: Vec<serde_json::Value> = names.iter().map(|(n, id, order)| {
                serde_json::json!({"id": id, "name": n, "character": n, "order": order})
            }).collect();
            let body = serde_json::json!({
                "id": 1, "overview": overview, "credits": {"cast": cast, "crew": []},
                "release_dates": {"results": [{"iso_3166_1": "US", "release_dates": [{"certification": cert, "type": 3}]}]}
            });
            let d: MovieDetails = serde_json::from_value(body).unwrap();
            let c = to_metadata(d, &images(), TitleId::parse("1").unwrap(), matched());
            let m = c.metadata;
            prop_assert!(m.overview.as_ref().is_none_or(|o| o.chars().count() <= MAX_OVERVIEW_CHARS));
            prop_assert!(m.cast.len() <= MAX_CAST);
            prop_assert!(m.cast.iter().all(|p| !p.name.is_empty() && p.name.chars().count() <= MAX_SHORT_TEXT_CHARS));
            let ids: std::collections::HashSet<u64> = m.cast.iter().map(|p| p.id).collect();
            prop_assert_eq!(ids.len(), m.cast.len());
        }
    }
}
