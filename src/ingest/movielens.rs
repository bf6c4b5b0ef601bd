//! Reading MovieLens in RecBole's atomic-file format (`*.inter`, `*.item`, `*.user`, and the
//! knowledge graph `*.link` + `*.kg`) and joining MPAA ratings from vega-datasets' `movies.json`.
//!
//! Parsing is pure and complete before anything is written: a malformed line aborts the whole
//! import with `file:line: what is wrong`, and the database is never touched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::{
    Country, MaturityRating, Millis, ParseError, ProfileId, StarRating, Title, TitleId,
};
use crate::engine::catalog::search_key;
use crate::engine::model::content::TitleEntity;

#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: ProfileId,
    pub country: Option<Country>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InteractionRecord {
    pub user: ProfileId,
    pub item: TitleId,
    /// Absent in implicit-feedback files; the interaction then counts as a completed view.
    pub rating: Option<StarRating>,
    pub at: Millis,
}

#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub titles: Vec<Title>,
    pub users: Vec<UserRecord>,
    pub interactions: Vec<InteractionRecord>,
    /// Item ids the interactions use that no `.item` file in this directory defines; the
    /// importer checks them against the database.
    pub external_items: Vec<(TitleId, String)>,
    /// People of the `.item` titles from the knowledge graph (`.link` + `.kg`), sorted and
    /// deduplicated; `None` when the directory has no knowledge graph. When `Some`, the import
    /// replaces the stored entities of every title in `titles`.
    pub entities: Option<Vec<TitleEntity>>,
    /// Problems that did not stop the import, each naming its file and line.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}:{line}: {message}")]
    Line {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

fn file_err(path: &Path, message: impl Into<String>) -> ImportError {
    ImportError::File {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// One atomic file: header `name:type` columns, tab-separated rows.
struct AtomicFile {
    path: PathBuf,
    columns: HashMap<String, usize>,
    rows: Vec<(usize, Vec<String>)>,
}

impl AtomicFile {
    fn read(path: &Path) -> Result<Self, ImportError> {
        let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e.to_string()))?;
        let mut lines = text.lines().enumerate();
        let (_, header) = lines
            .next()
            .ok_or_else(|| file_err(path, "empty file, expected a header line"))?;
        let mut columns = HashMap::new();
        for (i, col) in header.split('\t').enumerate() {
            let name = col.split(':').next().unwrap_or(col).trim().to_owned();
            columns.insert(name, i);
        }
        let rows = lines
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, l.split('\t').map(str::to_owned).collect()))
            .collect();
        Ok(Self {
            path: path.to_owned(),
            columns,
            rows,
        })
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn column(&self, name: &str) -> Result<usize, ImportError> {
        self.columns
            .get(name)
            .copied()
            .ok_or_else(|| ImportError::Line {
                file: self.name(),
                line: 1,
                message: format!("missing column {name:?} in the header"),
            })
    }

    fn err(&self, line: usize, message: impl Into<String>) -> ImportError {
        ImportError::Line {
            file: self.name(),
            line,
            message: message.into(),
        }
    }

    fn field<'a>(
        &self,
        line: usize,
        row: &'a [String],
        col: usize,
        name: &str,
    ) -> Result<&'a str, ImportError> {
        row.get(col).map(|s| s.trim()).ok_or_else(|| {
            self.err(
                line,
                format!(
                    "missing field {name:?} (expected {} columns, found {})",
                    self.columns.len(),
                    row.len()
                ),
            )
        })
    }
}

fn find_one(dir: &Path, ext: &str, required: bool) -> Result<Option<PathBuf>, ImportError> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| file_err(dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    found.sort();
    match found.len() {
        0 if required => Err(file_err(dir, format!("no *.{ext} file in this directory"))),
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(file_err(
            dir,
            format!(
                "more than one *.{ext} file ({}); keep one per directory",
                found
                    .iter()
                    .filter_map(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Reads `dir`: exactly one `*.inter`, and optionally one `*.item` and one `*.user`.
pub fn read_dir(dir: &Path, default_country: Option<&Country>) -> Result<Dataset, ImportError> {
    let (mut data, inter_path) = read_metadata(dir, default_country)?;
    let inter = AtomicFile::read(&inter_path)?;
    data.interactions = read_interactions(&inter)?;

    // Titles join the catalogue when first watched; release year is the fallback.
    let mut first_seen: HashMap<&TitleId, Millis> = HashMap::new();
    for i in &data.interactions {
        first_seen
            .entry(&i.item)
            .and_modify(|t| *t = (*t).min(i.at))
            .or_insert(i.at);
    }
    let known: std::collections::HashSet<TitleId> =
        data.titles.iter().map(|t| t.id.clone()).collect();
    let mut external: HashMap<TitleId, String> = HashMap::new();
    for (rec, (line, _)) in data.interactions.iter().zip(&inter.rows) {
        if !known.contains(&rec.item) {
            external
                .entry(rec.item.clone())
                .or_insert_with(|| format!("{}:{line}", inter.name()));
        }
    }
    set_added_at(&mut data.titles, |id| first_seen.get(id).copied());
    let mut external: Vec<_> = external.into_iter().collect();
    external.sort();
    data.external_items = external;
    Ok(data)
}

/// Everything of `dir` but its interactions: titles, users and the knowledge graph, with the
/// path of its one `*.inter` file, for importers that stream the interactions
/// (`stream_interactions`) instead of holding them. `interactions` and `external_items` are
/// left empty, and titles' `added_at` unset: the caller fills them from the stream
/// (`set_added_at`).
pub fn read_metadata(
    dir: &Path,
    default_country: Option<&Country>,
) -> Result<(Dataset, PathBuf), ImportError> {
    let inter_path =
        find_one(dir, "inter", true)?.ok_or_else(|| file_err(dir, "no *.inter file"))?;
    let mut data = Dataset::default();
    if let Some(path) = find_one(dir, "item", false)? {
        data.titles = read_items(&AtomicFile::read(&path)?, &mut data.warnings)?;
    }
    if let Some(path) = find_one(dir, "user", false)? {
        data.users = read_users(&AtomicFile::read(&path)?, default_country)?;
    }
    match (find_one(dir, "link", false)?, find_one(dir, "kg", false)?) {
        (Some(link), Some(kg)) => {
            let links = read_links(&AtomicFile::read(&link)?)?;
            let mut entities = read_kg(&AtomicFile::read(&kg)?, &links)?;
            let titles: std::collections::HashSet<&TitleId> =
                data.titles.iter().map(|t| &t.id).collect();
            let before = entities.len();
            entities.retain(|e| titles.contains(&e.title));
            if entities.len() < before {
                data.warnings.push(format!(
                    "{}: {} entity links of items not in the .item file were ignored",
                    link.display(),
                    before - entities.len()
                ));
            }
            data.entities = Some(entities);
        }
        (Some(only), None) | (None, Some(only)) => data.warnings.push(format!(
            "{}: a knowledge graph needs both a *.link and a *.kg file; ignored",
            only.display()
        )),
        (None, None) => {}
    }
    Ok((data, inter_path))
}

/// A title joins the catalogue when it was first watched (`first_seen`), else on January 1st
/// of its release year, else at the epoch.
pub fn set_added_at(titles: &mut [Title], first_seen: impl Fn(&TitleId) -> Option<Millis>) {
    for t in titles {
        if let Some(at) = first_seen(&t.id) {
            t.added_at = at;
        } else if let Some(y) = t.year {
            t.added_at = chrono::NaiveDate::from_ymd_opt(y, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map_or(0, |d| d.and_utc().timestamp_millis());
        }
    }
}

/// One line of an `.inter` file, checked as `read_dir` checks it.
#[derive(Debug, Clone, Copy)]
pub struct InteractionLine<'a> {
    /// 1-based line number in the file (the header is line 1).
    pub line: usize,
    pub user: &'a str,
    pub item: &'a str,
    pub rating: Option<StarRating>,
    pub at: Millis,
    /// Bytes of the file read so far, for progress.
    pub bytes_read: u64,
}

/// Streams an `.inter` file line by line, with the checks and error messages of `read_dir`
/// (ids, reserved `-kids` user ids, timestamps, ratings), without holding its text or its
/// records: what a bulk import of 50M interactions needs. `f` may refuse a line with a
/// message, which comes back as `file:line: message`. Returns the number of interactions.
pub fn stream_interactions(
    path: &Path,
    mut f: impl FnMut(&InteractionLine<'_>) -> Result<(), String>,
) -> Result<usize, ImportError> {
    use std::io::BufRead;
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| file_err(path, e.to_string()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let err = |line: usize, message: String| ImportError::Line {
        file: name.clone(),
        line,
        message,
    };
    let mut text = String::new();
    let read = |reader: &mut std::io::BufReader<std::fs::File>, text: &mut String| {
        text.clear();
        reader
            .read_line(text)
            .map_err(|e| file_err(path, e.to_string()))
    };
    if read(&mut reader, &mut text)? == 0 {
        return Err(file_err(path, "empty file, expected a header line"));
    }
    let columns: HashMap<String, usize> = text
        .trim_end_matches(['\n', '\r'])
        .split('\t')
        .enumerate()
        .map(|(i, c)| (c.split(':').next().unwrap_or(c).trim().to_owned(), i))
        .collect();
    let need = |col: &str| {
        columns
            .get(col)
            .copied()
            .ok_or_else(|| err(1, format!("missing column {col:?} in the header")))
    };
    let (user, item, ts) = (need("user_id")?, need("item_id")?, need("timestamp")?);
    let rating = columns.get("rating").copied();
    let width = columns.len();
    let mut number = 1;
    let mut count = 0;
    let mut bytes_read = text.len() as u64;
    loop {
        let n = read(&mut reader, &mut text)?;
        if n == 0 {
            break;
        }
        bytes_read += n as u64;
        number += 1;
        let row = text.trim_end_matches(['\n', '\r']);
        if row.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = row.split('\t').collect();
        let field = |col: usize, name: &str| {
            fields.get(col).map(|s| s.trim()).ok_or_else(|| {
                err(
                    number,
                    format!(
                        "missing field {name:?} (expected {width} columns, found {})",
                        fields.len()
                    ),
                )
            })
        };
        let u = field(user, "user_id")?;
        let i = field(item, "item_id")?;
        let t = field(ts, "timestamp")?;
        let at = parse_timestamp(t).map_err(|e| err(number, e.0))?;
        let stars = match rating {
            None => None,
            Some(c) => Some(parse_rating(field(c, "rating")?).map_err(|e| err(number, e.0))?),
        };
        check_user_id(u).map_err(|e| err(number, e))?;
        TitleId::parse(i).map_err(|e| err(number, e.0))?;
        f(&InteractionLine {
            line: number,
            user: u,
            item: i,
            rating: stars,
            at,
            bytes_read,
        })
        .map_err(|e| err(number, e))?;
        count += 1;
    }
    Ok(count)
}

/// A user id of an interaction: a valid profile id that does not name a kids profile.
fn check_user_id(raw: &str) -> Result<(), String> {
    let user = ProfileId::parse(raw).map_err(|e| e.0)?;
    if user.as_str().ends_with("-kids") {
        return Err("user ids ending in \"-kids\" are reserved for kids profiles".into());
    }
    Ok(())
}

/// Reads only the `*.item` file of `dir`: the catalogue, for runs that train straight from
/// files (see `for_each_interaction`).
pub fn read_titles(dir: &Path) -> Result<Vec<Title>, ImportError> {
    let path = find_one(dir, "item", true)?.ok_or_else(|| file_err(dir, "no *.item file"))?;
    read_items(&AtomicFile::read(&path)?, &mut Vec::new())
}

/// Streams the `*.inter` file of `dir` as (user, item, rating, at) without holding its text
/// or its records in memory, which is what training on 50M interactions needs. Errors name the
/// file and line, as the importer's do. Returns the number of interactions.
pub fn for_each_interaction(
    dir: &Path,
    mut f: impl FnMut(&str, &str, Option<StarRating>, Millis),
) -> Result<usize, ImportError> {
    use std::io::BufRead;
    let path = find_one(dir, "inter", true)?.ok_or_else(|| file_err(dir, "no *.inter file"))?;
    let name = path.display().to_string();
    let file = std::fs::File::open(&path).map_err(|e| file_err(&path, e.to_string()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    let err = |number: usize, message: String| ImportError::Line {
        file: name.clone(),
        line: number,
        message,
    };
    let read = |reader: &mut std::io::BufReader<std::fs::File>, line: &mut String| {
        line.clear();
        reader
            .read_line(line)
            .map_err(|e| file_err(&path, e.to_string()))
    };
    if read(&mut reader, &mut line)? == 0 {
        return Err(file_err(&path, "empty file, expected a header line"));
    }
    let columns: Vec<&str> = line
        .trim_end()
        .split('\t')
        .map(|c| c.split(':').next().unwrap_or(c).trim())
        .collect();
    let position = |col: &str| columns.iter().position(|c| *c == col);
    let need = |col: &str| {
        position(col).ok_or_else(|| err(1, format!("missing column {col:?} in the header")))
    };
    let (user, item, ts) = (need("user_id")?, need("item_id")?, need("timestamp")?);
    let rating = position("rating");
    let width = columns.len();
    let mut number = 1;
    let mut count = 0;
    let mut text = String::new();
    loop {
        if read(&mut reader, &mut text)? == 0 {
            break;
        }
        number += 1;
        let row = text.trim_end_matches(['\n', '\r']);
        if row.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = row.split('\t').map(str::trim).collect();
        if fields.len() < width {
            return Err(err(
                number,
                format!("expected {width} columns, found {}", fields.len()),
            ));
        }
        let at = parse_timestamp(fields[ts]).map_err(|e| err(number, e.0))?;
        let stars = match rating {
            None => None,
            Some(c) => Some(parse_rating(fields[c]).map_err(|e| err(number, e.0))?),
        };
        f(fields[user], fields[item], stars, at);
        count += 1;
    }
    Ok(count)
}

fn read_items(f: &AtomicFile, warnings: &mut Vec<String>) -> Result<Vec<Title>, ImportError> {
    let id = f.column("item_id")?;
    let name = f.column("movie_title")?;
    let year = f.columns.get("release_year").copied();
    let class = f.columns.get("class").copied();
    let countries = f.columns.get("countries").copied();
    let overview = f.columns.get("overview").copied();
    let mut seen = std::collections::HashSet::new();
    let mut titles = Vec::with_capacity(f.rows.len());
    for (line, row) in &f.rows {
        let line = *line;
        let raw_id = f.field(line, row, id, "item_id")?;
        let title_id = TitleId::parse(raw_id).map_err(|e| f.err(line, e.0))?;
        if !seen.insert(title_id.clone()) {
            return Err(f.err(line, format!("duplicate item_id {raw_id}")));
        }
        let title_name = f.field(line, row, name, "movie_title")?;
        if title_name.is_empty() {
            return Err(f.err(line, "empty movie_title"));
        }
        // Release years are metadata, not structure: MovieLens itself has "unkonwn" and "V"
        // here. Fall back to a "(1995)" suffix of the name, else record the year as unknown
        // and say so, rather than refusing the whole dataset.
        let year = match year
            .map(|c| f.field(line, row, c, "release_year"))
            .transpose()?
        {
            None | Some("") => None,
            Some(y) => match parse_year(y).or_else(|| year_suffix(title_name)) {
                Some(y) => Some(y),
                None => {
                    warnings.push(format!(
                        "{}:{line}: release_year {y:?} is not a year; recorded as unknown",
                        f.name()
                    ));
                    None
                }
            },
        };
        let genres = match class {
            Some(c) => f
                .field(line, row, c, "class")?
                .split_whitespace()
                // MovieLens' "unknown" genre flag means no genre information.
                .filter(|g| *g != "unknown")
                .map(str::to_owned)
                .collect(),
            None => Vec::new(),
        };
        let countries = match countries {
            Some(c) => {
                let list = f.field(line, row, c, "countries")?;
                if list.is_empty() {
                    None
                } else {
                    Some(
                        list.split_whitespace()
                            .map(Country::parse)
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|e| f.err(line, e.0))?,
                    )
                }
            }
            None => None,
        };
        let overview = match overview {
            Some(c) => {
                Some(f.field(line, row, c, "overview")?.to_owned()).filter(|s| !s.is_empty())
            }
            None => None,
        };
        titles.push(Title {
            id: title_id,
            name: title_name.to_owned(),
            year,
            genres,
            maturity: None,
            overview,
            added_at: 0,
            countries,
            details: None,
        });
    }
    Ok(titles)
}

fn read_users(
    f: &AtomicFile,
    default_country: Option<&Country>,
) -> Result<Vec<UserRecord>, ImportError> {
    let id = f.column("user_id")?;
    let country = f.columns.get("country").copied();
    let mut seen = std::collections::HashSet::new();
    f.rows
        .iter()
        .map(|(line, row)| {
            let line = *line;
            let raw = f.field(line, row, id, "user_id")?;
            let user = ProfileId::parse(raw).map_err(|e| f.err(line, e.0))?;
            if user.as_str().ends_with("-kids") {
                return Err(f.err(
                    line,
                    "user ids ending in \"-kids\" are reserved for kids profiles",
                ));
            }
            if !seen.insert(user.clone()) {
                return Err(f.err(line, format!("duplicate user_id {raw}")));
            }
            let country = match country {
                Some(c) => match f.field(line, row, c, "country")? {
                    "" => default_country.cloned(),
                    code => Some(Country::parse(code).map_err(|e| f.err(line, e.0))?),
                },
                None => default_country.cloned(),
            };
            Ok(UserRecord { id: user, country })
        })
        .collect()
}

/// An `.inter` timestamp: Unix seconds (fractions allowed), as milliseconds.
fn parse_timestamp(t: &str) -> Result<Millis, ParseError> {
    t.parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 1e11)
        .map(|s| (s * 1000.0).round() as Millis)
        .ok_or_else(|| ParseError(format!("timestamp {t:?} is not Unix seconds")))
}

fn parse_rating(r: &str) -> Result<StarRating, ParseError> {
    let stars: f64 = r
        .parse()
        .map_err(|_| ParseError(format!("rating {r:?} is not a number")))?;
    StarRating::new(stars)
}

fn read_interactions(f: &AtomicFile) -> Result<Vec<InteractionRecord>, ImportError> {
    let user = f.column("user_id")?;
    let item = f.column("item_id")?;
    let ts = f.column("timestamp")?;
    let rating = f.columns.get("rating").copied();
    f.rows
        .iter()
        .map(|(line, row)| {
            let line = *line;
            let u = f.field(line, row, user, "user_id")?;
            let i = f.field(line, row, item, "item_id")?;
            let t = f.field(line, row, ts, "timestamp")?;
            let at = parse_timestamp(t).map_err(|e| f.err(line, e.0))?;
            let rating = match rating {
                None => None,
                Some(c) => {
                    let r = f.field(line, row, c, "rating")?;
                    Some(parse_rating(r).map_err(|e| f.err(line, e.0))?)
                }
            };
            let user = ProfileId::parse(u).map_err(|e| f.err(line, e.0))?;
            if user.as_str().ends_with("-kids") {
                return Err(f.err(
                    line,
                    "user ids ending in \"-kids\" are reserved for kids profiles",
                ));
            }
            Ok(InteractionRecord {
                user,
                item: TitleId::parse(i).map_err(|e| f.err(line, e.0))?,
                rating,
                at,
            })
        })
        .collect()
}

/// `item_id` → knowledge-graph entity of the film.
fn read_links(f: &AtomicFile) -> Result<HashMap<String, Vec<TitleId>>, ImportError> {
    let item = f.column("item_id")?;
    let entity = f.column("entity_id")?;
    let mut seen = std::collections::HashSet::new();
    let mut films: HashMap<String, Vec<TitleId>> = HashMap::new();
    for (line, row) in &f.rows {
        let line = *line;
        let raw = f.field(line, row, item, "item_id")?;
        let id = TitleId::parse(raw).map_err(|e| f.err(line, e.0))?;
        let e = f.field(line, row, entity, "entity_id")?;
        if e.is_empty() {
            return Err(f.err(line, "empty entity_id"));
        }
        if !seen.insert(id.clone()) {
            return Err(f.err(line, format!("duplicate item_id {raw}")));
        }
        films.entry(e.to_owned()).or_default().push(id);
    }
    Ok(films)
}

/// The role a knowledge-graph relation gives the non-film side, and whether the film is the
/// head. Freebase states most of them both ways (`film.film.directed_by` and
/// `film.director.film`); relations to things that are not people (genre, language, awards …)
/// and between films (sequel, prequel) are not used.
pub fn person_relation(relation: &str) -> Option<(&'static str, bool)> {
    Some(match relation {
        "film.film.actor" => ("actor", true),
        "film.actor.film" => ("actor", false),
        "film.film.directed_by" => ("director", true),
        "film.director.film" => ("director", false),
        "film.film.written_by" => ("writer", true),
        "film.writer.film" => ("writer", false),
        "film.film.produced_by" => ("producer", true),
        "film.producer.film" => ("producer", false),
        "film.film.cinematography" => ("cinematographer", true),
        "film.cinematographer.film" => ("cinematographer", false),
        _ => return None,
    })
}

/// Triples `head_id relation_id tail_id` whose relation links a linked film to a person.
fn read_kg(
    f: &AtomicFile,
    films: &HashMap<String, Vec<TitleId>>,
) -> Result<Vec<TitleEntity>, ImportError> {
    let head = f.column("head_id")?;
    let relation = f.column("relation_id")?;
    let tail = f.column("tail_id")?;
    let mut out = Vec::new();
    for (line, row) in &f.rows {
        let line = *line;
        let h = f.field(line, row, head, "head_id")?;
        let r = f.field(line, row, relation, "relation_id")?;
        let t = f.field(line, row, tail, "tail_id")?;
        for (name, value) in [("head_id", h), ("relation_id", r), ("tail_id", t)] {
            if value.is_empty() {
                return Err(f.err(line, format!("empty {name}")));
            }
        }
        let Some((role, film_is_head)) = person_relation(r) else {
            continue;
        };
        let (film, person) = if film_is_head { (h, t) } else { (t, h) };
        for title in films.get(film).into_iter().flatten() {
            out.push(TitleEntity {
                title: title.clone(),
                relation: role.to_owned(),
                entity: person.to_owned(),
            });
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn parse_year(s: &str) -> Option<i32> {
    s.parse::<i32>().ok().filter(|y| (1870..=2100).contains(y))
}

/// "Land Before Time III (1995)" → 1995.
fn year_suffix(name: &str) -> Option<i32> {
    let inner = name.trim_end().strip_suffix(')')?;
    parse_year(&inner[inner.rfind('(')? + 1..])
}

#[derive(Debug, Deserialize)]
struct VegaMovie {
    #[serde(rename = "Title")]
    title: Option<serde_json::Value>,
    #[serde(rename = "Release Date")]
    release_date: Option<String>,
    #[serde(rename = "MPAA Rating")]
    mpaa: Option<String>,
}

/// "Usual Suspects, The" and "The Usual Suspects" both become "the usual suspects"; alternative
/// titles in parentheses are dropped.
fn match_key(name: &str) -> String {
    let base = match name.find(" (") {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    };
    let base = base.trim();
    for article in [
        "The", "A", "An", "Les", "La", "Le", "Il", "L'", "Das", "Der", "Die", "El",
    ] {
        let suffix = format!(", {article}");
        if let Some(stem) = base.strip_suffix(&suffix) {
            return search_key(&format!("{article} {stem}"));
        }
    }
    search_key(base)
}

/// Sets `maturity` on titles found in vega-datasets' `movies.json` (same normalised name,
/// release year within one year). Returns how many titles got a rating.
pub fn join_maturity(titles: &mut [Title], movies_json: &Path) -> Result<usize, ImportError> {
    let text =
        std::fs::read_to_string(movies_json).map_err(|e| file_err(movies_json, e.to_string()))?;
    let movies: Vec<VegaMovie> = serde_json::from_str(&text).map_err(|e| ImportError::Line {
        file: movies_json.display().to_string(),
        line: e.line(),
        message: e.to_string(),
    })?;
    let mut ratings: HashMap<String, Vec<(Option<i32>, MaturityRating)>> = HashMap::new();
    for m in movies {
        let (Some(serde_json::Value::String(title)), Some(mpaa)) = (m.title, m.mpaa) else {
            continue;
        };
        // "Not Rated" and "Open" are not ratings: the title stays unrated.
        let Ok(rating) = mpaa.parse::<MaturityRating>() else {
            continue;
        };
        let year = m
            .release_date
            .as_deref()
            .and_then(|d| {
                d.split(|c: char| !c.is_ascii_digit())
                    .rfind(|p| p.len() == 4)
            })
            .and_then(|y| y.parse().ok());
        ratings
            .entry(match_key(&title))
            .or_default()
            .push((year, rating));
    }
    let mut matched = 0;
    for t in titles.iter_mut() {
        let Some(candidates) = ratings.get(&match_key(&t.name)) else {
            continue;
        };
        let hit = candidates.iter().find(|(year, _)| match (year, t.year) {
            (Some(a), Some(b)) => (a - b).abs() <= 1,
            _ => false,
        });
        if let Some((_, rating)) = hit {
            t.maturity = Some(*rating);
            matched += 1;
        }
    }
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_keys_move_trailing_articles() {
        assert_eq!(match_key("Usual Suspects, The"), "the usual suspects");
        assert_eq!(match_key("The Usual Suspects"), "the usual suspects");
        assert_eq!(match_key("Seven (Se7en)"), "seven");
        assert_eq!(year_suffix("Land Before Time III (1995)"), Some(1995));
        assert_eq!(year_suffix("Seven (Se7en)"), None);
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x.inter"),
            "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t3\t100\n1\t3\tseven\t100\n",
        )
        .unwrap();
        let err = read_dir(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.ends_with("x.inter:3: rating \"seven\" is not a number"),
            "{err}"
        );
    }

    #[test]
    fn reads_people_from_the_knowledge_graph() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.item"),
            "item_id:token\tmovie_title:token_seq\n1\tA\n2\tB\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("d.inter"),
            "user_id:token\titem_id:token\ttimestamp:float\n7\t1\t881250949\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("d.link"),
            "item_id:token\tentity_id:token\n1\tm.a\n2\tm.b\n3\tm.c\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("d.kg"),
            "head_id:token\trelation_id:token\ttail_id:token\n\
             m.a\tfilm.film.directed_by\tm.dir\n\
             m.dir\tfilm.director.film\tm.a\n\
             m.dir\tfilm.director.film\tm.b\n\
             m.a\tfilm.film.genre\tm.drama\n\
             m.a\tfilm.film.sequel\tm.b\n\
             m.c\tfilm.film.actor\tm.x\n\
             m.zzz\tfilm.film.actor\tm.x\n",
        )
        .unwrap();
        let d = read_dir(dir.path(), None).unwrap();
        let got: Vec<(&str, &str, &str)> = d
            .entities
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.title.as_str(), e.relation.as_str(), e.entity.as_str()))
            .collect();
        // Both directions of the director relation, once; genres and sequels are not people;
        // item 3 is not in the .item file.
        assert_eq!(
            got,
            vec![("1", "director", "m.dir"), ("2", "director", "m.dir")]
        );
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);

        std::fs::write(
            dir.path().join("d.kg"),
            "head_id:token\trelation_id:token\ttail_id:token\nm.a\tfilm.film.actor\n",
        )
        .unwrap();
        let err = read_dir(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.ends_with("d.kg:2: missing field \"tail_id\" (expected 3 columns, found 2)"),
            "{err}"
        );
        std::fs::remove_file(dir.path().join("d.kg")).unwrap();
        let d = read_dir(dir.path(), None).unwrap();
        assert!(d.entities.is_none());
    }

    #[test]
    fn reads_items_users_and_interactions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.item"),
            "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n1\tToy Story\t1995\tAnimation Children's Comedy\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("d.user"),
            "user_id:token\tage:token\n7\t30\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("d.inter"),
            "user_id:token\titem_id:token\trating:float\ttimestamp:float\n7\t1\t4\t881250949\n7\t9\t5\t881250950\n",
        )
        .unwrap();
        let us = Country::parse("US").unwrap();
        let d = read_dir(dir.path(), Some(&us)).unwrap();
        assert_eq!(
            d.titles[0].genres,
            vec!["Animation", "Children's", "Comedy"]
        );
        assert_eq!(d.titles[0].added_at, 881_250_949_000);
        assert_eq!(d.users[0].country, Some(us));
        assert_eq!(d.interactions.len(), 2);
        assert_eq!(d.external_items.len(), 1);
        assert_eq!(d.external_items[0].0.as_str(), "9");
    }
}
