//! The catalogue held in memory: every title, addressed by a dense index for the hot paths.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;

use crate::domain::{Title, TitleId};

/// Dense position of a title in the catalogue. Only meaningful for the `Catalog` that issued it.
pub type TitleIdx = u32;

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    titles: Vec<Title>,
    /// Fx-hashed: looked up for every history entry by several sources on every page.
    by_id: FxHashMap<TitleId, TitleIdx>,
    /// Genre → number of titles, sorted by name.
    genres: BTreeMap<String, usize>,
    /// Lower-cased, punctuation-free names for search.
    search_keys: Vec<String>,
    /// The same for overviews ("" without one).
    overview_keys: Vec<String>,
    /// Each title's genres as a bit set over `genres` (their rank in it), when the catalogue
    /// has at most 64 genres and the title lists none twice: `key_similarity` is then one
    /// popcount instead of string comparisons (the diversity rerank calls it about 1,800
    /// times per page).
    genre_bits: Option<Vec<u64>>,
    /// A hash of what shared lists depend on (ids, years, genres, ratings, regions), the same
    /// in every process that loads the same titles: segment lists are keyed by it, so a changed
    /// catalogue never finds a list made from another (`engine::segments`).
    fingerprint: u64,
    /// Whether any title is licensed in some countries only; when none is, the country does not
    /// change what a profile may see, and segment lists are shared across countries.
    regional: bool,
}

/// Where a search query matched a title. Name matches rank above overview-only ones: someone
/// typing "alien" wants *Alien* before a film whose synopsis mentions aliens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SearchMatch {
    Name,
    Overview,
}

/// A title's genres as `Catalog::key_similarity` compares them (`Catalog::genre_key`).
#[derive(Debug, Clone, Copy)]
pub struct GenreKey {
    /// The genres as bits, when the catalogue has them (`Catalog::genre_bits`); else 0.
    bits: u64,
    /// How many bits are set: the size of the genre set.
    count: u32,
    /// For catalogues whose genres do not fit in bits.
    title: TitleIdx,
}

/// Overviews are searched only for queries at least this long (letters and digits): a
/// synopsis has so many words that one or two letters match most of the catalogue.
pub const MIN_OVERVIEW_QUERY: usize = 3;

/// Words too common in synopses to search them for.
const OVERVIEW_STOP_WORDS: [&str; 16] = [
    "the", "a", "an", "and", "of", "in", "on", "to", "is", "his", "her", "their", "with", "for",
    "at", "by",
];

/// Lower-case alphanumerics separated by single spaces; "Toy Story (1995)" → "toy story 1995".
pub fn search_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

impl Catalog {
    pub fn new(mut titles: Vec<Title>) -> Self {
        // Stable order regardless of how the store returned rows: numeric ids numerically.
        titles.sort_by(|a, b| natural_cmp(a.id.as_str(), b.id.as_str()));
        let by_id = titles
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i as TitleIdx))
            .collect();
        let mut genres = BTreeMap::new();
        for t in &titles {
            for g in &t.genres {
                *genres.entry(g.clone()).or_insert(0) += 1;
            }
        }
        let search_keys = titles.iter().map(|t| search_key(&t.name)).collect();
        let overview_keys = titles
            .iter()
            .map(|t| t.overview.as_deref().map(search_key).unwrap_or_default())
            .collect();
        let genre_bits = genre_bits(&titles, &genres);
        let fingerprint = fingerprint(&titles);
        let regional = titles.iter().any(|t| t.countries.is_some());
        Self {
            titles,
            by_id,
            genres,
            search_keys,
            overview_keys,
            genre_bits,
            fingerprint,
            regional,
        }
    }

    /// See the field: equal for catalogues whose titles agree on everything shared lists read.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Whether some title is licensed in some countries only.
    pub fn regional(&self) -> bool {
        self.regional
    }

    pub fn len(&self) -> usize {
        self.titles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.titles.is_empty()
    }

    pub fn idx(&self, id: &TitleId) -> Option<TitleIdx> {
        self.by_id.get(id).copied()
    }

    pub fn title(&self, idx: TitleIdx) -> &Title {
        &self.titles[idx as usize]
    }

    pub fn by_id(&self, id: &TitleId) -> Option<&Title> {
        self.idx(id).map(|i| self.title(i))
    }

    pub fn titles(&self) -> impl Iterator<Item = (TitleIdx, &Title)> {
        self.titles
            .iter()
            .enumerate()
            .map(|(i, t)| (i as TitleIdx, t))
    }

    pub fn genres(&self) -> impl Iterator<Item = (&str, usize)> {
        self.genres.iter().map(|(g, n)| (g.as_str(), *n))
    }

    pub fn has_genre(&self, genre: &str) -> bool {
        self.genres.contains_key(genre)
    }

    /// Titles whose name contains every word of `query` (as a prefix of some word of the
    /// name), then — for queries of at least `MIN_OVERVIEW_QUERY` characters — titles whose
    /// overview does; in catalogue order within each kind.
    pub fn search(&self, query: &str) -> Vec<(TitleIdx, SearchMatch)> {
        let words: Vec<String> = search_key(query)
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        if words.is_empty() {
            return Vec::new();
        }
        let all_in = |key: &str| {
            words
                .iter()
                .all(|w| key.split(' ').any(|kw| kw.starts_with(w.as_str())))
        };
        // In a synopsis "the" or "of" match everything: overviews are searched for the other
        // words, and not at all for a query of only such words.
        let content: Vec<&String> = words
            .iter()
            .filter(|w| !OVERVIEW_STOP_WORDS.contains(&w.as_str()))
            .collect();
        let overviews = !content.is_empty()
            && words.iter().map(|w| w.chars().count()).sum::<usize>() >= MIN_OVERVIEW_QUERY;
        let all_content_in = |key: &str| {
            content
                .iter()
                .all(|w| key.split(' ').any(|kw| kw.starts_with(w.as_str())))
        };
        self.search_keys
            .iter()
            .zip(&self.overview_keys)
            .enumerate()
            .filter_map(|(i, (name, overview))| {
                if all_in(name) {
                    Some((i as TitleIdx, SearchMatch::Name))
                } else if overviews && !overview.is_empty() && all_content_in(overview) {
                    Some((i as TitleIdx, SearchMatch::Overview))
                } else {
                    None
                }
            })
            .collect()
    }

    /// Genre similarity of two titles (Jaccard over genre sets), the diversity rerank's distance.
    pub fn genre_similarity(&self, a: TitleIdx, b: TitleIdx) -> f32 {
        self.key_similarity(self.genre_key(a), self.genre_key(b))
    }

    /// What `key_similarity` needs of a title, looked up once per candidate of a row: the
    /// rerank compares each candidate with up to a row's worth of picks.
    #[inline]
    pub fn genre_key(&self, title: TitleIdx) -> GenreKey {
        let bits = self
            .genre_bits
            .as_ref()
            .and_then(|bits| bits.get(title as usize).copied())
            .unwrap_or(0);
        GenreKey {
            bits,
            count: bits.count_ones(),
            title,
        }
    }

    /// `genre_similarity` of two titles' keys: one popcount when the genres fit in bits (the
    /// size of the union follows from the sizes of the sets), the names otherwise.
    #[inline]
    pub fn key_similarity(&self, a: GenreKey, b: GenreKey) -> f32 {
        if self.genre_bits.is_none() {
            return self.genre_similarity_by_name(a.title, b.title);
        }
        if a.count == 0 || b.count == 0 {
            return 0.0;
        }
        // |A ∩ B| / |A ∪ B|, the same integers as below.
        let shared = (a.bits & b.bits).count_ones();
        shared as f32 / (a.count + b.count - shared) as f32
    }

    /// `genre_similarity` for catalogues with more genres than bits.
    #[cold]
    fn genre_similarity_by_name(&self, a: TitleIdx, b: TitleIdx) -> f32 {
        let (ga, gb) = (&self.title(a).genres, &self.title(b).genres);
        if ga.is_empty() || gb.is_empty() {
            return 0.0;
        }
        let shared = ga.iter().filter(|g| gb.contains(g)).count();
        shared as f32 / (ga.len() + gb.len() - shared) as f32
    }
}

/// `Catalog::fingerprint`: Fx is deterministic (no per-process seed), so every replica
/// computes the same value for the same titles.
fn fingerprint(titles: &[Title]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    titles.len().hash(&mut h);
    for t in titles {
        t.id.as_str().hash(&mut h);
        t.year.hash(&mut h);
        t.genres.hash(&mut h);
        t.maturity.map(|m| m.as_str()).hash(&mut h);
        t.countries
            .as_ref()
            .map(|cs| cs.iter().map(|c| c.as_str()).collect::<Vec<_>>())
            .hash(&mut h);
    }
    h.finish()
}

/// Every title's genres as bits (see `Catalog::genre_bits`), or `None` when that would not
/// give exactly the Jaccard of the genre lists.
fn genre_bits(titles: &[Title], genres: &BTreeMap<String, usize>) -> Option<Vec<u64>> {
    if genres.len() > 64 {
        return None;
    }
    let rank: HashMap<&str, usize> = genres
        .keys()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i))
        .collect();
    titles
        .iter()
        .map(|t| {
            let mut bits = 0u64;
            for g in &t.genres {
                let bit = 1u64 << rank.get(g.as_str())?;
                if bits & bit != 0 {
                    return None; // listed twice: the list's Jaccard counts it twice
                }
                bits |= bit;
            }
            Some(bits)
        })
        .collect()
}

/// Orders "2" before "10" (MovieLens ids are numbers stored as strings), other ids lexically.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title(id: &str, name: &str, genres: &[&str]) -> Title {
        Title {
            year: Some(1995),
            genres: genres.iter().map(|g| g.to_string()).collect(),
            ..Title::new(TitleId::parse(id).unwrap(), name)
        }
    }

    #[test]
    fn search_matches_word_prefixes_case_insensitively() {
        let c = Catalog::new(vec![
            title("1", "Toy Story", &["Animation"]),
            title("2", "GoldenEye", &["Action"]),
            title("10", "Toy Story 2", &["Animation"]),
        ]);
        let hits: Vec<_> = c
            .search("toy sto")
            .into_iter()
            .map(|(i, m)| (c.title(i).id.to_string(), m))
            .collect();
        assert_eq!(
            hits,
            vec![
                ("1".into(), SearchMatch::Name),
                ("10".into(), SearchMatch::Name)
            ]
        );
        assert!(c.search("  ").is_empty());
    }

    #[test]
    fn search_finds_overviews_after_names() {
        let mut spy = title("3", "Tomorrow Never Dies", &["Action"]);
        spy.overview = Some("James Bond sets out to stop a media mogul's plan.".into());
        let c = Catalog::new(vec![
            spy,
            title("4", "Media Circus", &["Comedy"]),
            title("5", "Mogul", &["Drama"]),
        ]);
        let hits: Vec<_> = c
            .search("media mog")
            .into_iter()
            .map(|(i, m)| (c.title(i).id.to_string(), m))
            .collect();
        assert_eq!(hits, vec![("3".into(), SearchMatch::Overview)]);
        let hits = c.search("media");
        assert_eq!(hits.len(), 2);
        assert!(hits.contains(&(1, SearchMatch::Name)));
        assert!(hits.contains(&(0, SearchMatch::Overview)));
        // Too short for overviews, or only common words: names only.
        assert_eq!(c.search("ja"), vec![]);
        assert_eq!(c.search("the"), vec![]);
        assert_eq!(c.search("the media mog"), vec![(0, SearchMatch::Overview)]);
        assert_eq!(c.search("jam"), vec![(0, SearchMatch::Overview)]);
    }

    #[test]
    fn genre_similarity_is_jaccard() {
        let c = Catalog::new(vec![
            title("1", "a", &["Animation", "Comedy"]),
            title("2", "b", &["Comedy", "Drama", "Romance"]),
        ]);
        assert!((c.genre_similarity(0, 1) - 0.25).abs() < 1e-6);
        assert_eq!(c.genre_similarity(0, 0), 1.0);
        assert!(c.genre_bits.is_some());
        // A genre listed twice counts twice in the lists' Jaccard: the bits step aside.
        let d = Catalog::new(vec![
            title("1", "a", &["Comedy", "Comedy"]),
            title("2", "b", &["Comedy", "Drama"]),
            title("3", "c", &[]),
        ]);
        assert!(d.genre_bits.is_none());
        assert!((d.genre_similarity(0, 1) - 2.0 / 2.0).abs() < 1e-6);
        assert_eq!(d.genre_similarity(0, 2), 0.0);
    }
}
