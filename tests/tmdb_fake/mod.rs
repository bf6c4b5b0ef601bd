//! A fake TMDb for the tests: an axum server on a free loopback port, serving the documented
//! response shapes of `GET /3/configuration`, `GET /3/search/movie`, `GET /3/movie/{id}`
//! (with `append_to_response=credits,release_dates`) and images under `/t/p/{size}/{file}`.
//!
//! Its movies are generated deterministically from a catalogue's (id, name, year, genres) —
//! the test fixture, or MovieLens-100K's item file — with a realistic mix: exact names,
//! festival years one off, TMDb titles that are MovieLens' parenthesised alternate, slightly
//! different names, remakes and spin-offs as decoys, a few ambiguous and unmatched titles, and
//! partial details. With faults on, it also answers with 429 bursts (`Retry-After`), 500s, slow
//! responses and malformed JSON. Every title's expected outcome is recorded as it is
//! generated (the ground truth the import's report is checked against), and every request is
//! logged (the rate, concurrency and retry checks).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub const API_KEY: &str = "fake0123456789abcdef0123456789ab";
/// A v4 read access token (JWT-shaped).
pub const ACCESS_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJmYWtlLXRtZGItdGVzdHMiLCJzY29wZXMiOlsiYXBpX3JlYWQiXX0.c2lnbmF0dXJlLW9mLWEtZmFrZQ";

/// What a title should come out as.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Matched { tmdb_id: u64 },
    Ambiguous,
    Unmatched,
    Failed,
}

/// How a movie's requests misbehave (faults on only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    None,
    /// The first details request gets 429 with `Retry-After: 1`.
    RateLimitedOnce,
    ServerErrorOnce,
    ServerErrorAlways,
    /// The first details request answers after the client's timeout.
    SlowOnce,
    SlowAlways,
    /// Details are cut off mid-JSON.
    Malformed,
}

#[derive(Debug, Clone)]
pub struct Movie {
    pub id: u64,
    pub title: String,
    pub original_title: String,
    pub year: i32,
    pub popularity: f64,
    pub overview: String,
    pub tagline: Option<String>,
    pub runtime: Option<u32>,
    pub language: String,
    pub poster: bool,
    pub credits: bool,
    pub genres: Vec<&'static str>,
    pub cast: Vec<(u64, String, String)>,
    pub director: (u64, String),
    /// US certification ("" for none).
    pub certification: &'static str,
    pub fault: Fault,
}

/// One catalogue title the universe is built from.
#[derive(Debug, Clone)]
pub struct Source {
    pub id: String,
    pub name: String,
    pub year: Option<i32>,
    pub genres: Vec<String>,
}

pub struct Universe {
    pub movies: Vec<Movie>,
    /// Per movie: its title's and original title's words (see `index`).
    words: Vec<[Vec<String>; 2]>,
    pub by_id: HashMap<u64, usize>,
    pub expect: BTreeMap<String, Expect>,
    /// Titles whose search always fails with 500 (faults on).
    pub search_broken: HashSet<String>,
}

/// Deterministic hash of a string (FNV-1a, 64 bit) mixed with a salt.
fn h(s: &str, salt: u64) -> u64 {
    let mut x = 0xcbf2_9ce4_8422_2325u64 ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in s.bytes() {
        x ^= u64::from(b);
        x = x.wrapping_mul(0x0100_0000_01b3);
    }
    x ^ (x >> 29)
}

const ARTICLES: [&str; 17] = [
    "The", "A", "An", "La", "Le", "Les", "L'", "Il", "Das", "Der", "Die", "Det", "El", "Los",
    "Las", "Un", "Une",
];

/// "Usual Suspects, The" → "The Usual Suspects" (the test's own version of the idea).
fn fronted(name: &str) -> String {
    for a in ARTICLES {
        if let Some(stem) = name.strip_suffix(&format!(", {a}")) {
            return if a.ends_with('\'') {
                format!("{a}{stem}")
            } else {
                format!("{a} {stem}")
            };
        }
    }
    name.to_owned()
}

/// ("Seven", Some("Se7en")) from "Seven (Se7en)"; a "(1995)" suffix dropped.
fn parts(name: &str) -> (String, Option<String>) {
    let Some(open) = name.find(" (") else {
        return (name.trim().to_owned(), None);
    };
    let main = name[..open].trim().to_owned();
    let rest = name[open + 2..].trim_end_matches(')');
    let alt = rest.split(") (").next().unwrap_or("").trim().to_owned();
    if alt.len() == 4 && alt.chars().all(|c| c.is_ascii_digit()) || alt.is_empty() {
        (main, None)
    } else {
        (main, Some(alt))
    }
}

/// Lower-case alphanumeric words without a leading article: the fake's search index.
pub fn words(s: &str) -> Vec<String> {
    let mut w: Vec<String> = s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    if w.len() > 1
        && ARTICLES
            .iter()
            .any(|a| a.trim_end_matches('\'').eq_ignore_ascii_case(&w[0]))
    {
        w.remove(0);
    }
    w
}

const TMDB_GENRES: [(&str, &str); 18] = [
    ("Action", "Action"),
    ("Adventure", "Adventure"),
    ("Animation", "Animation"),
    ("Children's", "Family"),
    ("Comedy", "Comedy"),
    ("Crime", "Crime"),
    ("Documentary", "Documentary"),
    ("Drama", "Drama"),
    ("Fantasy", "Fantasy"),
    ("Film-Noir", "Mystery"),
    ("Horror", "Horror"),
    ("Musical", "Music"),
    ("Mystery", "Mystery"),
    ("Romance", "Romance"),
    ("Sci-Fi", "Science Fiction"),
    ("Thriller", "Thriller"),
    ("War", "War"),
    ("Western", "Western"),
];

const WORDS: [&str; 24] = [
    "heist",
    "journey",
    "island",
    "betrayal",
    "orphan",
    "detective",
    "desert",
    "wedding",
    "robot",
    "spy",
    "winter",
    "revenge",
    "circus",
    "river",
    "haunted",
    "election",
    "submarine",
    "vampire",
    "boxer",
    "lighthouse",
    "treasure",
    "mafia",
    "astronaut",
    "jazz",
];

/// How one catalogue title shows up on the fake TMDb.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Case {
    #[default]
    Exact,
    /// Not on TMDb at all.
    Missing,
    /// TMDb's year is one off (festival premiere / US release).
    YearOff,
    /// TMDb lists it under MovieLens' parenthesised alternate title.
    Alternate,
    /// TMDb's title lacks the last word of a long name.
    Similar,
    /// Another movie of the same name and year.
    Ambiguous,
    /// Two movies of the same name, one year either side of the catalogue's.
    AmbiguousYears,
}

/// The fate of one title; `Plan::default()` is a well-behaved exact match.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub case: Case,
    pub fault: Option<Fault>,
    /// The movie's details lack credits, poster and runtime.
    pub partial: bool,
    /// Searches for its name fail with 500, always.
    pub broken_search: bool,
    pub certification: Option<&'static str>,
    pub overview: Option<String>,
    /// The same director and cast as this other catalogue title's movie.
    pub people_like: Option<String>,
}

impl Plan {
    /// A random plan for big catalogues: the mix the README's report describes.
    fn random(key: u64, faults: bool) -> Plan {
        let roll = key % 1000;
        let case = match roll {
            0..15 => Case::Missing,
            15..75 => Case::YearOff,
            75..105 => Case::Similar,
            105..110 => Case::Ambiguous,
            110..115 => Case::AmbiguousYears,
            _ if key % 10 < 3 => Case::Alternate,
            _ => Case::Exact,
        };
        let fault = match (key >> 20) % 1000 {
            _ if !faults => None,
            0..30 => Some(Fault::RateLimitedOnce),
            30..50 => Some(Fault::ServerErrorOnce),
            50..54 => Some(Fault::ServerErrorAlways),
            54..64 => Some(Fault::SlowOnce),
            64..66 => Some(Fault::SlowAlways),
            66..69 => Some(Fault::Malformed),
            _ => None,
        };
        Plan {
            case,
            fault,
            partial: (120..140).contains(&((key >> 30) % 1000)),
            broken_search: faults && (115..118).contains(&roll),
            ..Plan::default()
        }
    }
}

impl Universe {
    /// Builds the movies for `sources`: titles in `plans` follow their plan; the others a
    /// random one when `random` (big catalogues), else the default exact match.
    pub fn generate(
        sources: &[Source],
        plans: &HashMap<String, Plan>,
        random: bool,
        faults: bool,
    ) -> Universe {
        let mut u = Universe {
            movies: Vec::new(),
            words: Vec::new(),
            by_id: HashMap::new(),
            expect: BTreeMap::new(),
            search_broken: HashSet::new(),
        };
        // (name words, catalogue year) → outcome: the same film listed twice in the catalogue
        // (MovieLens does, 18 times, sometimes once under its original title: "Maybe, Maybe
        // Not (Bewegte Mann, Der)" and "Bewegte Mann, Der") is one TMDb movie. Outcomes here
        // leave broken searches out: those depend on the title searched, see the end.
        let mut known: HashMap<(String, i32), Expect> = HashMap::new();
        let mut next_decoy = 900_000u64;
        // Decoys never come within a year of a catalogue title of the same name: that would
        // make a title ambiguous that the ground truth calls matched.
        let names: HashSet<(Vec<String>, i32)> = sources
            .iter()
            .filter_map(|s| Some((words(&fronted(&parts(&s.name).0)), s.year?)))
            .collect();
        let clear =
            |title: &str, year: i32| (-1..=1).all(|d| !names.contains(&(words(title), year + d)));
        let mut people_like: Vec<(u64, String)> = Vec::new();
        for s in sources {
            let key = h(&s.id, 1);
            let plan = match plans.get(&s.id) {
                Some(p) => p.clone(),
                None if random => Plan::random(key, faults),
                None => Plan::default(),
            };
            let (main, alt) = parts(&s.name);
            let main = fronted(&main);
            let Some(year) = s.year else {
                u.expect.insert(s.id.clone(), Expect::Unmatched);
                continue;
            };
            if words(&main).is_empty()
                || main.eq_ignore_ascii_case("unknown")
                || plan.case == Case::Missing
            {
                u.expect.insert(s.id.clone(), Expect::Unmatched);
                continue;
            }
            let alt = alt.map(|a| fronted(&a));
            let aliases: Vec<(String, i32)> = std::iter::once(&main)
                .chain(alt.as_ref())
                .map(|n| (words(n).join(" "), year))
                .collect();
            if let Some(expect) = aliases.iter().find_map(|a| known.get(a)) {
                u.expect.insert(s.id.clone(), expect.clone());
                continue;
            }
            if plan.broken_search {
                u.search_broken.insert(words(&main).join(" "));
            }
            let (mut title, mut original) = (main.clone(), main.clone());
            if let Some(a) = &alt {
                if plan.case == Case::Alternate {
                    title = a.clone();
                }
                original = a.clone();
            }
            let mut tmdb_year = year;
            if plan.case == Case::YearOff {
                tmdb_year = if key.is_multiple_of(2) {
                    year - 1
                } else {
                    year + 1
                };
            }
            if plan.case == Case::Similar && alt.is_none() {
                // Only where the names stay close: "Escape from L.A." minus "L.A." is another
                // film's name, not a slightly different spelling.
                let shorter = title
                    .rsplit_once(' ')
                    .map(|(a, _)| a.to_owned())
                    .unwrap_or_default();
                let (long, short) = (words(&title).len(), words(&shorter).len());
                if short >= 3 && long == short + 1 {
                    title = shorter;
                    original = title.clone();
                }
            }
            if plan.case == Case::AmbiguousYears {
                tmdb_year = year - 1;
            }
            let id = 10_000 + s.id.parse::<u64>().unwrap_or(key % 100_000);
            let mut movie = Self::movie(
                id,
                &title,
                &original,
                tmdb_year,
                s,
                plan.fault.unwrap_or(Fault::None),
            );
            if plan.partial {
                movie.credits = false;
                movie.poster = false;
                movie.runtime = None;
            }
            if let Some(c) = plan.certification {
                movie.certification = c;
            }
            if let Some(o) = &plan.overview {
                movie.overview = o.clone();
            }
            if let Some(other) = &plan.people_like {
                people_like.push((id, other.clone()));
            }
            u.push(movie);
            let expect = match plan.case {
                Case::Ambiguous | Case::AmbiguousYears => {
                    let other_year = if plan.case == Case::Ambiguous {
                        year
                    } else {
                        year + 1
                    };
                    next_decoy += 1;
                    let decoy = Self::movie(next_decoy, &title, &title, other_year, s, Fault::None);
                    u.push(decoy);
                    Expect::Ambiguous
                }
                _ => match plan.fault {
                    Some(Fault::ServerErrorAlways | Fault::SlowAlways | Fault::Malformed) => {
                        Expect::Failed
                    }
                    _ => Expect::Matched { tmdb_id: id },
                },
            };
            // Decoys that must not match: a remake decades later (≈20%), a spin-off whose
            // name contains this one (≈10%).
            let remake_year = year + 12 + (key % 20) as i32;
            if key.is_multiple_of(5) && clear(&title, remake_year) {
                next_decoy += 1;
                let d = Self::movie(next_decoy, &title, &title, remake_year, s, Fault::None);
                u.push(d);
            }
            if key % 10 == 3 {
                next_decoy += 1;
                let name = format!("{title}: The Animated Series Special");
                let d = Self::movie(next_decoy, &name, &name, year, s, Fault::None);
                u.push(d);
            }
            for a in aliases {
                known.insert(a, expect.clone());
            }
            u.expect.insert(s.id.clone(), expect);
        }
        // A broken search breaks every title that searches the same words first.
        for s in sources {
            let main = words(&fronted(&parts(&s.name).0)).join(" ");
            if u.search_broken.contains(&main) && s.year.is_some() {
                u.expect.insert(s.id.clone(), Expect::Failed);
            }
        }
        for (id, other) in people_like {
            let Some(other_id) = u.expect.get(&other).and_then(|e| match e {
                Expect::Matched { tmdb_id } => Some(*tmdb_id),
                _ => None,
            }) else {
                continue;
            };
            let (cast, director) = {
                let o = &u.movies[u.by_id[&other_id]];
                (o.cast.clone(), o.director.clone())
            };
            let m = &mut u.movies[u.by_id[&id]];
            m.cast = cast;
            m.director = director;
        }
        u.index();
        u
    }

    fn push(&mut self, m: Movie) {
        self.by_id.insert(m.id, self.movies.len());
        self.movies.push(m);
    }

    /// The search index: each movie's title and original title as words. Built once, after
    /// the movies are final.
    fn index(&mut self) {
        self.words = self
            .movies
            .iter()
            .map(|m| [words(&m.title), words(&m.original_title)])
            .collect();
    }

    fn movie(id: u64, title: &str, original: &str, year: i32, s: &Source, fault: Fault) -> Movie {
        let pick = |salt: u64, n: u64| h(&format!("{id}"), salt) % n;
        let genres: Vec<&'static str> = s
            .genres
            .iter()
            .filter_map(|g| TMDB_GENRES.iter().find(|(ml, _)| ml == g).map(|(_, t)| *t))
            .collect();
        let kids = s
            .genres
            .iter()
            .any(|g| g == "Children's" || g == "Animation");
        let certification = if kids {
            ["G", "PG", "G", ""][pick(2, 4) as usize]
        } else if s.genres.iter().any(|g| g == "Horror") {
            ["R", "R", "NC-17", "NR"][pick(2, 4) as usize]
        } else {
            ["R", "PG-13", "PG", "R", "", "NR", "PG-13", "G"][pick(2, 8) as usize]
        };
        let cast_size = 6 + pick(3, 8) as usize;
        let cast = (0..cast_size)
            .map(|i| {
                let pid = 1 + h(&format!("{id}-{i}"), 4) % 600;
                (pid, format!("Actor {pid}"), format!("Role {i} of {title}"))
            })
            .collect();
        let did = 5_000 + pick(5, 200);
        let w1 = WORDS[pick(6, WORDS.len() as u64) as usize];
        let w2 = WORDS[pick(7, WORDS.len() as u64) as usize];
        Movie {
            id,
            title: title.to_owned(),
            original_title: original.to_owned(),
            year,
            popularity: (h(title, 9) % 1000) as f64 / 10.0,
            overview: format!(
                "Fixture synopsis of {title} ({year}): a story of {w1} and {w2}, told in the fake TMDb."
            ),
            tagline: (pick(10, 4) != 0).then(|| format!("The tagline of {title}.")),
            runtime: Some(80 + pick(11, 70) as u32),
            language: ["en", "en", "en", "fr", "de", "it", "ja"][pick(12, 7) as usize].to_owned(),
            poster: true,
            credits: true,
            genres,
            cast,
            director: (did, format!("Director {did}")),
            certification,
            fault,
        }
    }

    pub fn search(&self, query: &str, year: Option<i32>) -> Vec<&Movie> {
        let q = words(query);
        if q.is_empty() {
            return Vec::new();
        }
        let mut hits: Vec<&Movie> = self
            .movies
            .iter()
            .zip(&self.words)
            .filter(|(m, _)| year.is_none_or(|y| m.year == y))
            .filter(|(_, names)| {
                names.iter().any(|tw| {
                    let missing = q.iter().filter(|w| !tw.contains(w)).count();
                    // TMDb's search forgives a missing word in a long query.
                    missing == 0 || (q.len() >= 4 && missing == 1)
                })
            })
            .map(|(m, _)| m)
            .collect();
        hits.sort_by(|a, b| b.popularity.total_cmp(&a.popularity).then(a.id.cmp(&b.id)));
        hits
    }

    pub fn matched(&self) -> usize {
        self.expect
            .values()
            .filter(|e| matches!(e, Expect::Matched { .. }))
            .count()
    }

    pub fn count(&self, e: &Expect) -> usize {
        self.expect
            .values()
            .filter(|x| std::mem::discriminant(*x) == std::mem::discriminant(e))
            .count()
    }
}

/// What the fake saw.
#[derive(Default)]
pub struct Log {
    /// (when, path) of every request.
    pub requests: Vec<(Instant, String)>,
    /// Details requests per movie id.
    pub details: HashMap<u64, usize>,
    pub searches: usize,
    pub served_429: usize,
    pub served_500: usize,
    pub served_slow: usize,
    pub served_malformed: usize,
    pub unauthorized: usize,
    /// 404 answers (unknown movie ids).
    pub not_found: usize,
    /// Every query string and header value seen, to look for leaks elsewhere.
    pub max_in_flight: usize,
}

pub struct Fake {
    pub universe: Universe,
    pub faults: bool,
    pub log: Mutex<Log>,
    in_flight: AtomicUsize,
    total: AtomicU64,
    /// Every this many requests a one-second 429 burst starts (faults on).
    pub burst_every: u64,
    throttled_until: Mutex<Option<Instant>>,
    /// Details requests after this many hang (the interrupted-run test); `usize::MAX` off.
    pub hang_after_details: AtomicUsize,
    pub slow: Duration,
    base: Mutex<String>,
}

pub struct Running {
    pub fake: Arc<Fake>,
    pub url: String,
    pub addr: SocketAddr,
}

impl Running {
    /// The API root to pass as `--base-url`.
    pub fn api(&self) -> String {
        format!("{}/3", self.url)
    }

    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.fake.log.lock().unwrap()
    }

    /// Most requests seen in any window of `window`.
    pub fn max_in_window(&self, window: Duration) -> usize {
        let log = self.log();
        let times: Vec<Instant> = log.requests.iter().map(|(t, _)| *t).collect();
        let mut best = 0;
        let mut start = 0;
        for end in 0..times.len() {
            while times[end].duration_since(times[start]) >= window {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }
}

pub struct Options {
    /// Plans for some titles (see `Plan`).
    pub plans: HashMap<String, Plan>,
    /// Titles without a plan get a random one (else an exact match).
    pub random: bool,
    /// Random plans include faults, and 429 bursts happen every `burst_every` requests.
    pub faults: bool,
    pub burst_every: u64,
    /// How long a slow response takes.
    pub slow: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            plans: HashMap::new(),
            random: false,
            faults: false,
            burst_every: 300,
            slow: Duration::from_secs(3),
        }
    }
}

/// Starts the fake on a free loopback port of the current tokio runtime.
pub async fn start(sources: &[Source], opts: Options) -> Running {
    let fake = Arc::new(Fake {
        universe: Universe::generate(sources, &opts.plans, opts.random, opts.faults),
        faults: opts.faults,
        log: Mutex::new(Log::default()),
        in_flight: AtomicUsize::new(0),
        total: AtomicU64::new(0),
        burst_every: opts.burst_every,
        throttled_until: Mutex::new(None),
        hang_after_details: AtomicUsize::new(usize::MAX),
        slow: opts.slow,
        base: Mutex::new(String::new()),
    });
    let app = Router::new()
        .route("/3/configuration", get(configuration))
        .route("/3/search/movie", get(search))
        .route("/3/movie/{id}", get(details))
        .route("/t/p/{size}/{file}", get(image))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}");
    *fake.base.lock().unwrap() = url.clone();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Running { fake, url, addr }
}

/// Starts the fake on its own thread and runtime, for tests without one (the browser test).
pub fn start_in_background(sources: Vec<Source>, opts: Options) -> (String, Arc<Fake>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let running = start(&sources, opts).await;
            tx.send((running.url.clone(), running.fake.clone()))
                .unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// TMDb's 429 (status_code 25), with `Retry-After: 1`.
fn rate_limited(fake: &Fake) -> Response {
    fake.log.lock().unwrap().served_429 += 1;
    let mut r = tmdb_error(
        StatusCode::TOO_MANY_REQUESTS,
        25,
        "Your request count (51) is over the allowed limit of 50.",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, "1".parse().unwrap());
    r
}

fn tmdb_error(status: StatusCode, code: u32, message: &str) -> Response {
    json_response(
        status,
        json!({"success": false, "status_code": code, "status_message": message}),
    )
}

/// Counts the request, checks the key, and applies the global 429 bursts.
struct Guard<'a>(&'a Fake);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn enter<'a>(
    fake: &'a Fake,
    path: &str,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> (Guard<'a>, Option<Response>) {
    let now = fake.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let guard = Guard(fake);
    let n = fake.total.fetch_add(1, Ordering::SeqCst) + 1;
    {
        let mut log = fake.log.lock().unwrap();
        log.requests.push((Instant::now(), path.to_owned()));
        log.max_in_flight = log.max_in_flight.max(now);
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let authorised =
        bearer == Some(ACCESS_TOKEN) || params.get("api_key").map(String::as_str) == Some(API_KEY);
    if !authorised {
        fake.log.lock().unwrap().unauthorized += 1;
        return (
            guard,
            Some(tmdb_error(
                StatusCode::UNAUTHORIZED,
                7,
                "Invalid API key: You must be granted a valid key.",
            )),
        );
    }
    if fake.faults {
        let mut until = fake.throttled_until.lock().unwrap();
        if n.is_multiple_of(fake.burst_every) {
            *until = Some(Instant::now() + Duration::from_millis(800));
        }
        if until.is_some_and(|t| t > Instant::now()) {
            drop(until);
            return (guard, Some(rate_limited(fake)));
        }
    }
    (guard, None)
}

async fn configuration(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (_g, early) = enter(&fake, "configuration", &headers, &params);
    if let Some(r) = early {
        return r;
    }
    let base = format!("{}/t/p/", fake.base.lock().unwrap());
    json_response(
        StatusCode::OK,
        json!({
            "change_keys": ["adult", "air_date", "also_known_as"],
            "images": {
                "base_url": base.replace("https:", "http:"),
                "secure_base_url": base,
                "backdrop_sizes": ["w300", "w780", "w1280", "original"],
                "logo_sizes": ["w45", "w92", "w154", "w185", "w300", "w500", "original"],
                "poster_sizes": ["w92", "w154", "w185", "w342", "w500", "w780", "original"],
                "profile_sizes": ["w45", "w185", "h632", "original"],
                "still_sizes": ["w92", "w185", "w300", "original"]
            }
        }),
    )
}

async fn search(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (_g, early) = enter(&fake, "search/movie", &headers, &params);
    if let Some(r) = early {
        return r;
    }
    fake.log.lock().unwrap().searches += 1;
    let query = params.get("query").cloned().unwrap_or_default();
    if fake
        .universe
        .search_broken
        .contains(&words(&query).join(" "))
    {
        fake.log.lock().unwrap().served_500 += 1;
        return tmdb_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            11,
            "Internal error: Something went wrong, contact TMDB.",
        );
    }
    let year = params
        .get("year")
        .or(params.get("primary_release_year"))
        .and_then(|y| y.parse().ok());
    let hits = fake.universe.search(&query, year);
    let results: Vec<Value> = hits
        .iter()
        .take(20)
        .map(|m| {
            json!({
                "adult": false,
                "backdrop_path": format!("/b{}.svg", m.id),
                "genre_ids": [18],
                "id": m.id,
                "original_language": m.language,
                "original_title": m.original_title,
                "overview": m.overview,
                "popularity": m.popularity,
                "poster_path": m.poster.then(|| format!("/p{}.svg", m.id)),
                "release_date": format!("{}-06-15", m.year),
                "title": m.title,
                "video": false,
                "vote_average": 6.5,
                "vote_count": 120
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "page": 1,
            "results": results,
            "total_pages": hits.len().div_ceil(20),
            "total_results": hits.len()
        }),
    )
}

async fn details(
    State(fake): State<Arc<Fake>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (_g, early) = enter(&fake, "movie", &headers, &params);
    if let Some(r) = early {
        return r;
    }
    let id: u64 = id.parse().unwrap_or(0);
    let Some(movie) = fake
        .universe
        .by_id
        .get(&id)
        .map(|i| &fake.universe.movies[*i])
    else {
        fake.log.lock().unwrap().not_found += 1;
        return tmdb_error(
            StatusCode::NOT_FOUND,
            34,
            "The resource you requested could not be found.",
        );
    };
    let (seen, total) = {
        let mut log = fake.log.lock().unwrap();
        let n = log.details.entry(id).or_default();
        *n += 1;
        let seen = *n;
        (seen, log.details.values().sum::<usize>())
    };
    if total > fake.hang_after_details.load(Ordering::SeqCst) {
        // The interrupted-run test kills the importer while it waits here.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    match movie.fault {
        Fault::RateLimitedOnce if seen == 1 => return rate_limited(&fake),
        Fault::ServerErrorOnce if seen == 1 => {
            fake.log.lock().unwrap().served_500 += 1;
            return tmdb_error(StatusCode::INTERNAL_SERVER_ERROR, 11, "Internal error.");
        }
        Fault::ServerErrorAlways => {
            fake.log.lock().unwrap().served_500 += 1;
            return (StatusCode::BAD_GATEWAY, "<html>502 Bad Gateway</html>").into_response();
        }
        Fault::SlowOnce if seen == 1 => {
            fake.log.lock().unwrap().served_slow += 1;
            tokio::time::sleep(fake.slow).await;
        }
        Fault::SlowAlways => {
            fake.log.lock().unwrap().served_slow += 1;
            tokio::time::sleep(fake.slow).await;
        }
        Fault::Malformed => {
            fake.log.lock().unwrap().served_malformed += 1;
            let body = format!(
                "{{\"id\": {id}, \"title\": \"{}\", \"overview\": \"cut off",
                movie.title
            );
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
        }
        _ => {}
    }
    let append = params
        .get("append_to_response")
        .cloned()
        .unwrap_or_default();
    let mut body = json!({
        "adult": false,
        "backdrop_path": format!("/b{}.svg", movie.id),
        "belongs_to_collection": null,
        "budget": 1_000_000,
        "genres": movie.genres.iter().enumerate().map(|(i, g)| json!({"id": i + 1, "name": g})).collect::<Vec<_>>(),
        "homepage": "",
        "id": movie.id,
        "imdb_id": format!("tt{:07}", movie.id),
        "original_language": movie.language,
        "original_title": movie.original_title,
        "overview": movie.overview,
        "popularity": movie.popularity,
        "poster_path": movie.poster.then(|| format!("/p{}.svg", movie.id)),
        "release_date": format!("{}-06-15", movie.year),
        "revenue": 0,
        "runtime": movie.runtime,
        "status": "Released",
        "tagline": movie.tagline.clone().unwrap_or_default(),
        "title": movie.title,
        "video": false,
        "vote_average": 6.5,
        "vote_count": 120
    });
    if append.split(',').any(|a| a == "credits") && movie.credits {
        body["credits"] = json!({
            "cast": movie.cast.iter().enumerate().map(|(i, (pid, name, role))| json!({
                "adult": false, "gender": 0, "id": pid, "known_for_department": "Acting",
                "name": name, "original_name": name, "popularity": 1.0, "profile_path": null,
                "cast_id": i, "character": role, "credit_id": format!("c{}-{}", movie.id, i), "order": i
            })).collect::<Vec<_>>(),
            "crew": [
                {"adult": false, "id": movie.director.0, "name": movie.director.1, "department": "Directing", "job": "Director", "credit_id": "d"},
                {"adult": false, "id": 77_777, "name": "Some Writer", "department": "Writing", "job": "Screenplay", "credit_id": "w"}
            ]
        });
    }
    if append.split(',').any(|a| a == "release_dates") {
        body["release_dates"] = json!({"results": [
            {"iso_3166_1": "GB", "release_dates": [{"certification": "15", "descriptors": [], "iso_639_1": "", "note": "", "release_date": format!("{}-07-01T00:00:00.000Z", movie.year), "type": 3}]},
            {"iso_3166_1": "US", "release_dates": [
                {"certification": "", "descriptors": [], "iso_639_1": "", "note": "Festival", "release_date": format!("{}-01-20T00:00:00.000Z", movie.year), "type": 1},
                {"certification": movie.certification, "descriptors": [], "iso_639_1": "", "note": "", "release_date": format!("{}-06-15T00:00:00.000Z", movie.year), "type": 3}
            ]}
        ]});
    }
    json_response(StatusCode::OK, body)
}

/// A poster: an SVG with the movie's title, so screenshots show where it came from.
async fn image(
    State(fake): State<Arc<Fake>>,
    Path((size, file)): Path<(String, String)>,
) -> Response {
    let id: u64 = file
        .trim_start_matches(['p', 'b'])
        .trim_end_matches(".svg")
        .parse()
        .unwrap_or(0);
    let Some(movie) = fake
        .universe
        .by_id
        .get(&id)
        .map(|i| &fake.universe.movies[*i])
    else {
        return (StatusCode::NOT_FOUND, "no such image").into_response();
    };
    let (w, hgt) = if file.starts_with('b') {
        (1280, 720)
    } else {
        (500, 750)
    };
    let esc = movie.title.replace('&', "&amp;").replace('<', "&lt;");
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{hgt}\" viewBox=\"0 0 {w} {hgt}\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#1b3a5c\"/>\
         <rect x=\"20\" y=\"20\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#f2c14e\" stroke-width=\"8\"/>\
         <text x=\"50%\" y=\"45%\" fill=\"#f2c14e\" font-family=\"sans-serif\" font-size=\"40\" text-anchor=\"middle\">{esc}</text>\
         <text x=\"50%\" y=\"55%\" fill=\"#ffffff\" font-family=\"sans-serif\" font-size=\"24\" text-anchor=\"middle\">fake TMDb {size}</text></svg>",
        w - 40,
        hgt - 40
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "image/svg+xml")],
        svg,
    )
        .into_response()
}

/// The catalogue of an atomic `.item` file.
pub fn sources_from_item_file(path: &std::path::Path) -> Vec<Source> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split('\t')
        .map(|c| c.split(':').next().unwrap())
        .collect();
    let col = |n: &str| header.iter().position(|c| *c == n).unwrap();
    let (id, name, year, class) = (
        col("item_id"),
        col("movie_title"),
        col("release_year"),
        col("class"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let name = f[name].trim().to_owned();
            // As the importer does: a "(1995)" suffix stands in for a missing year.
            let year = f[year].trim().parse().ok().or_else(|| {
                let inner = name.strip_suffix(')')?;
                inner[inner.rfind('(')? + 1..].parse().ok()
            });
            Source {
                id: f[id].trim().to_owned(),
                name,
                year,
                genres: f
                    .get(class)
                    .map(|c| c.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default(),
            }
        })
        .collect()
}
