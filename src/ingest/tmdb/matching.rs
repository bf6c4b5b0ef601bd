//! Finding a catalogue title on TMDb from its name and release year, or refusing to.
//!
//! MovieLens names titles like a library card: "Usual Suspects, The", "Seven (Se7en)",
//! "City of Lost Children, The (Cité des enfants perdus, La)". From a name come search
//! queries — the main title with its trailing article moved to the front ("The Usual
//! Suspects"), then each parenthesised alternate title the same way ("Se7en") — and the keys
//! candidates are compared against.
//!
//! **The match rule.** Every TMDb search result is scored against the title:
//!
//! ```text
//! score = name similarity × year agreement
//! name similarity = 1 when the normalised names are equal (the result's title or original
//!                   title against the main or any alternate title), else the Dice
//!                   coefficient of their word sets, 2·|A∩B| / (|A|+|B|)
//! year agreement  = 1 same year · 0.9 one year apart (festival premiere vs US release) ·
//!                   0.85 either year unknown · 0 two or more years apart (a remake)
//! ```
//!
//! Names are normalised to lower-case words without accents or punctuation, a leading article
//! and the word "and" dropped ("The Usual Suspects" = "Usual Suspects, The" = "usual
//! suspects"). The best result is the match when its score is at least [`THRESHOLD`] and no
//! other movie scores within [`AMBIGUITY_MARGIN`] of it; several within the margin are
//! *ambiguous* and none above the threshold *unmatched*. Both are reported with their
//! candidates and never guessed: a wrong poster or certification is worse than none (an
//! operator can settle them with an id mapping, `--links`).

use super::TmdbId;
use super::response::SearchResult;
use crate::engine::catalog::search_key;

/// Lowest score accepted as a match.
pub const THRESHOLD: f64 = 0.8;
/// A runner-up this close to the best makes the title ambiguous.
pub const AMBIGUITY_MARGIN: f64 = 0.05;

/// Trailing articles MovieLens moves to the end, in the languages its titles use.
const ARTICLES: [&str; 22] = [
    "The", "A", "An", "La", "Le", "Les", "L'", "Il", "Lo", "Gli", "Das", "Der", "Die", "Det",
    "Den", "El", "Los", "Las", "Un", "Une", "Una", "O",
];

/// What to search for and compare against, from one catalogue title.
#[derive(Debug, Clone, PartialEq)]
pub struct TitleQuery {
    /// Search strings: the main title first, then alternates.
    pub searches: Vec<String>,
    pub year: Option<i32>,
    /// Normalised names (see the module doc), one per search string.
    keys: Vec<String>,
}

impl TitleQuery {
    pub fn new(name: &str, year: Option<i32>) -> Self {
        let (main, alternates) = split_alternates(name);
        let mut searches = vec![front_article(&main)];
        for alt in alternates {
            let alt = front_article(&alt);
            if !searches.contains(&alt) {
                searches.push(alt);
            }
        }
        searches.retain(|s| !normalise(s).is_empty());
        let keys = searches.iter().map(|s| normalise(s)).collect();
        Self {
            searches,
            year,
            keys,
        }
    }

    /// Score of a search result (see the module doc), 0–1.
    pub fn score(&self, candidate: &SearchResult) -> f64 {
        self.assess(candidate).score
    }

    fn assess(&self, candidate: &SearchResult) -> Candidate {
        let names = [&candidate.title, &candidate.original_title];
        // The best (name similarity, alternate?) over our keys × their names.
        let (similarity, alternate) = names
            .iter()
            .filter_map(|n| n.as_deref())
            .map(normalise)
            .flat_map(|n| {
                self.keys
                    .iter()
                    .enumerate()
                    .map(move |(i, k)| (name_similarity(k, &n), i > 0))
            })
            .fold((0.0, false), |best, x| if x.0 > best.0 { x } else { best });
        let year = candidate.year();
        Candidate {
            id: TmdbId(candidate.id),
            title: candidate.title.clone().unwrap_or_default(),
            year,
            name_similarity: similarity,
            alternate,
            score: similarity * year_agreement(self.year, year),
        }
    }

    /// The decision over every candidate seen so far (several searches may have found the
    /// same movie; each counts once).
    pub fn decide(&self, candidates: &[SearchResult]) -> Decision {
        let mut scored: Vec<Candidate> = Vec::new();
        for c in candidates {
            // Ids beyond what a database integer holds are not TMDb's; duplicates count once.
            if c.id > i64::MAX as u64 || scored.iter().any(|s| s.id.0 == c.id) {
                continue;
            }
            scored.push(self.assess(c));
        }
        // Highest score first; equal scores in TMDb's order (its relevance), so the report
        // lists candidates the way TMDb ranked them.
        scored.sort_by(|a, b| b.score.total_cmp(&a.score));
        let Some(best) = scored.first().cloned() else {
            return Decision::Unmatched { closest: None };
        };
        if best.score < THRESHOLD {
            return Decision::Unmatched {
                closest: Some(best),
            };
        }
        let rivals: Vec<Candidate> = scored
            .iter()
            .take_while(|c| c.score >= best.score - AMBIGUITY_MARGIN)
            .take(5)
            .cloned()
            .collect();
        if rivals.len() > 1 {
            Decision::Ambiguous { candidates: rivals }
        } else {
            Decision::Match(best)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: TmdbId,
    pub title: String,
    pub year: Option<i32>,
    /// 1 for equal normalised names, else the Dice coefficient.
    pub name_similarity: f64,
    /// The best name match was with an alternate title ("Se7en"), not the main one.
    pub alternate: bool,
    pub score: f64,
}

impl std::fmt::Display for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tmdb {} {:?}", self.id.0, self.title)?;
        if let Some(y) = self.year {
            write!(f, " ({y})")?;
        }
        write!(f, " {:.2}", self.score)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Match(Candidate),
    /// Two or more movies within the margin of the best, best first.
    Ambiguous {
        candidates: Vec<Candidate>,
    },
    /// Nothing reached the threshold; the closest result, if any.
    Unmatched {
        closest: Option<Candidate>,
    },
}

fn year_agreement(ours: Option<i32>, theirs: Option<i32>) -> f64 {
    match (ours, theirs) {
        (Some(a), Some(b)) => match (a - b).abs() {
            0 => 1.0,
            1 => 0.9,
            _ => 0.0,
        },
        _ => 0.85,
    }
}

fn name_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let wa: std::collections::BTreeSet<&str> = a.split(' ').filter(|w| !w.is_empty()).collect();
    let wb: std::collections::BTreeSet<&str> = b.split(' ').filter(|w| !w.is_empty()).collect();
    if wa.is_empty() || wb.is_empty() {
        return 0.0;
    }
    let shared = wa.intersection(&wb).count();
    // Equal word sets in another order are not the same title ("Man Bites Dog" / "Dog Bites
    // Man"): keep them just under an exact match.
    (2.0 * shared as f64 / (wa.len() + wb.len()) as f64).min(0.99)
}

/// "Seven (Se7en)" → ("Seven", ["Se7en"]); a "(1995)" year is not an alternate title.
fn split_alternates(name: &str) -> (String, Vec<String>) {
    let mut main = String::new();
    let mut alternates = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in name.chars() {
        match c {
            '(' => {
                if depth > 0 {
                    current.push(c);
                }
                depth += 1;
            }
            ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    let alt = current.trim().to_owned();
                    let is_year = alt.len() == 4 && alt.chars().all(|c| c.is_ascii_digit());
                    if !alt.is_empty() && !is_year {
                        alternates.push(alt);
                    }
                    current.clear();
                } else {
                    current.push(c);
                }
            }
            _ if depth > 0 => current.push(c),
            _ => main.push(c),
        }
    }
    let main = main.split_whitespace().collect::<Vec<_>>().join(" ");
    if main.is_empty() {
        // "(Untitled)" alone: the parenthesis is the title.
        return (alternates.first().cloned().unwrap_or_default(), alternates);
    }
    (main, alternates)
}

/// "Usual Suspects, The" → "The Usual Suspects"; "Uomo delle stelle, L'" → "L'Uomo delle
/// stelle".
fn front_article(name: &str) -> String {
    let name = name.trim();
    for article in ARTICLES {
        if let Some(stem) = name.strip_suffix(&format!(", {article}")) {
            let sep = if article.ends_with('\'') { "" } else { " " };
            return format!("{article}{sep}{stem}");
        }
    }
    name.to_owned()
}

/// Lower-case words without accents, punctuation, a leading article or "and".
pub fn normalise(name: &str) -> String {
    let folded: String = name.chars().map(fold_accent).collect();
    let key = search_key(&folded);
    let mut words: Vec<&str> = key
        .split(' ')
        .filter(|w| !w.is_empty() && *w != "and")
        .collect();
    if words.len() > 1
        && ARTICLES
            .iter()
            .any(|a| a.trim_end_matches('\'').eq_ignore_ascii_case(words[0]))
    {
        words.remove(0);
    }
    words.join(" ")
}

fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
        'ç' => 'c',
        'Ç' => 'C',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'È' | 'É' | 'Ê' | 'Ë' => 'E',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
        'ñ' => 'n',
        'Ñ' => 'N',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => 'O',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
        'ý' | 'ÿ' => 'y',
        'Ý' => 'Y',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: u64, title: &str, date: &str) -> SearchResult {
        SearchResult {
            id,
            title: Some(title.into()),
            original_title: Some(title.into()),
            release_date: Some(date.into()),
        }
    }

    #[test]
    fn movielens_names_become_queries() {
        let q = TitleQuery::new("Usual Suspects, The", Some(1995));
        assert_eq!(q.searches, ["The Usual Suspects"]);
        let q = TitleQuery::new(
            "City of Lost Children, The (Cité des enfants perdus, La)",
            Some(1995),
        );
        assert_eq!(
            q.searches,
            ["The City of Lost Children", "La Cité des enfants perdus"]
        );
        let q = TitleQuery::new("Star Maker, The (Uomo delle stelle, L')", None);
        assert_eq!(q.searches, ["The Star Maker", "L'Uomo delle stelle"]);
        let q = TitleQuery::new(
            "Land Before Time III: The Time of the Great Giving (1995)",
            None,
        );
        assert_eq!(
            q.searches,
            ["Land Before Time III: The Time of the Great Giving"]
        );
        assert_eq!(normalise("The Usual Suspects"), normalise("Usual Suspects"));
        assert_eq!(normalise("Cité"), "cite");
        assert_eq!(
            normalise("Wallace & Gromit"),
            normalise("Wallace and Gromit")
        );
        assert_eq!(normalise("The"), "the");
    }

    #[test]
    fn exact_and_off_by_one_years_match_remakes_do_not() {
        let q = TitleQuery::new("Usual Suspects, The", Some(1995));
        let d = q.decide(&[result(629, "The Usual Suspects", "1995-07-19")]);
        assert!(matches!(d, Decision::Match(ref c) if c.id == TmdbId(629) && c.score == 1.0));

        let d = q.decide(&[result(629, "The Usual Suspects", "1994-09-01")]);
        assert!(
            matches!(d, Decision::Match(ref c) if (c.score - 0.9).abs() < 1e-9),
            "{d:?}"
        );

        let d = q.decide(&[result(7, "The Usual Suspects", "2015-01-01")]);
        assert!(
            matches!(d, Decision::Unmatched { closest: Some(_) }),
            "{d:?}"
        );

        // The original and a remake two decades later: the year decides.
        let q = TitleQuery::new("Sabrina", Some(1995));
        let d = q.decide(&[
            result(6, "Sabrina", "1954-09-22"),
            result(11860, "Sabrina", "1995-12-15"),
        ]);
        assert!(
            matches!(d, Decision::Match(ref c) if c.id == TmdbId(11860)),
            "{d:?}"
        );
    }

    #[test]
    fn alternate_titles_match() {
        let q = TitleQuery::new("Seven (Se7en)", Some(1995));
        let d = q.decide(&[result(807, "Se7en", "1995-09-22")]);
        assert!(
            matches!(d, Decision::Match(ref c) if c.id == TmdbId(807)),
            "{d:?}"
        );
        let q = TitleQuery::new("Shanghai Triad (Yao a yao yao dao waipo qiao)", Some(1995));
        let mut r = result(1, "Shanghai Triad", "1995-05-01");
        r.original_title = Some("摇啊摇，摇到外婆桥".into());
        assert!(matches!(q.decide(&[r]), Decision::Match(_)));
    }

    #[test]
    fn close_calls_are_ambiguous_and_strangers_unmatched() {
        let q = TitleQuery::new("Hamlet", Some(1996));
        let d = q.decide(&[
            result(10549, "Hamlet", "1996-12-25"),
            result(99, "Hamlet", "1996-01-01"),
            result(3, "Hamlet", "1948-05-04"),
        ]);
        match d {
            Decision::Ambiguous { candidates } => assert_eq!(candidates.len(), 2),
            other => panic!("{other:?}"),
        }
        // An exact year beats one year apart by more than the margin.
        let d = q.decide(&[
            result(1, "Hamlet", "1997-01-01"),
            result(2, "Hamlet", "1996-01-01"),
        ]);
        assert!(
            matches!(d, Decision::Match(ref c) if c.id == TmdbId(2)),
            "{d:?}"
        );

        let q = TitleQuery::new("Species", Some(1995));
        let d = q.decide(&[result(8, "Species II", "1995-01-01")]);
        assert!(matches!(d, Decision::Unmatched { .. }), "{d:?}");
        assert_eq!(q.decide(&[]), Decision::Unmatched { closest: None });
        // The same movie found by two searches counts once.
        let r = result(5, "Species", "1995-07-07");
        assert!(matches!(q.decide(&[r.clone(), r]), Decision::Match(_)));
    }

    #[test]
    fn subtitles_and_word_order() {
        let q = TitleQuery::new("Star Trek: The Wrath of Khan", Some(1982));
        let d = q.decide(&[result(154, "Star Trek II: The Wrath of Khan", "1982-06-04")]);
        assert!(matches!(d, Decision::Match(_)), "{d:?}");
        assert!(name_similarity("man bites dog", "dog bites man") < 1.0);
    }
}
