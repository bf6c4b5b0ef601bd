//! `marquee bench`: latency of page assembly for random profiles on the loaded data, and
//! (`--training DIR`) training time, memory and ANN retrieval at scale.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::clock::Clock;
use crate::domain::Millis;
use crate::engine::Engine;
use crate::engine::catalog::{Catalog, TitleIdx};
use crate::engine::model::ann;
use crate::engine::model::{self, EmbeddingArtifact, Model, ModelArtifact, TrainParams};
use crate::engine::page::{CandidateLists, PageTimings};
use crate::engine::segments::{Segment, SegmentKey, Segments};
use crate::engine::training_set::{ImportedSignals, TrainingSet, TrainingSetBuilder};
use crate::experiments::{self, FeatureSet};
use crate::ingest::movielens;
use crate::rng::SplitMix64;
use crate::store::Store;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(label: &str, mut micros: Vec<f64>) {
    micros.sort_by(f64::total_cmp);
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    println!(
        "{label:<28} n={:<6} p50={:>8.1}µs  p90={:>8.1}µs  p99={:>8.1}µs  max={:>8.1}µs  mean={:>8.1}µs",
        micros.len(),
        percentile(&micros, 50.0),
        percentile(&micros, 90.0),
        percentile(&micros, 99.0),
        micros.last().copied().unwrap_or(f64::NAN),
        mean
    );
}

pub async fn run(
    store: &Store,
    engine: &Engine,
    features: &FeatureSet,
    clock: &Clock,
    requests: usize,
    seed: u64,
    segments: bool,
) -> Result<()> {
    let ids = store.profile_ids().await?;
    if ids.is_empty() || requests == 0 {
        bail!("nothing to measure: no profiles (or --requests 0)");
    }
    let mut rng = SplitMix64(seed);
    let now = clock.now();
    let mut assembly = Vec::with_capacity(requests);
    let mut with_reads = Vec::with_capacity(requests);
    let mut experiments_us = Vec::with_capacity(requests);
    let mut stages = PageTimings::default();
    let mut rows = 0usize;
    let mut items = 0usize;
    // Segment lists kept across pages (`--segment-cache`, on by default), as a replica's near
    // cache keeps them.
    let mut kept: HashMap<SegmentKey, Arc<Segment>> = HashMap::new();
    let (mut segment_hits, mut segment_misses) = (0usize, 0usize);
    let wall = Instant::now();
    for _ in 0..requests {
        let (id, _) = &ids[(rng.next_u64() % ids.len() as u64) as usize];
        let start = Instant::now();
        let Some(profile) = store.profile(id).await? else {
            continue;
        };
        let history = store.history(id).await?;
        let read = Instant::now();
        // As serving does: every feature evaluated, the page variant assembled.
        let variant = experiments::page_variant(
            features,
            experiments::attributes(&profile, &Default::default()),
            HashMap::new(),
        );
        let assembled = Instant::now();
        let page = if segments {
            // As serving does with its near cache: the page's segment lists named, those kept
            // from earlier pages handed in, those it computed kept.
            let keys =
                engine.segment_keys(&variant.overrides, &profile, &history, now, &HashMap::new());
            let found: HashMap<_, _> = keys
                .into_iter()
                .filter_map(|k| kept.get(&k).map(|s| (k, s.clone())))
                .collect();
            segment_hits += found.len();
            let mut lists = CandidateLists {
                segments: Segments::new(found),
                ..Default::default()
            };
            let page = engine
                .home_page_lists(
                    &variant.overrides,
                    &profile,
                    &history,
                    now,
                    &mut stages,
                    &mut lists,
                )
                .unwrap_or_else(|_| engine.home_page_timed(&profile, &history, now, &mut stages));
            let computed = lists.segments.take_computed();
            segment_misses += computed.len();
            kept.extend(computed);
            page
        } else {
            engine
                .home_page_with_timed(&variant.overrides, &profile, &history, now, &mut stages)
                .unwrap_or_else(|_| engine.home_page_timed(&profile, &history, now, &mut stages))
        };
        let done = Instant::now();
        experiments_us.push((assembled - read).as_secs_f64() * 1e6);
        assembly.push((done - assembled).as_secs_f64() * 1e6);
        with_reads.push((done - start).as_secs_f64() * 1e6);
        rows += page.rows.len();
        items += page.rows.iter().map(|r| r.items.len()).sum::<usize>();
    }
    let n = assembly.len().max(1);
    println!(
        "marquee bench: {} titles, {} profiles, model {}, {:?} backend, {} features, {n} pages in {:.2}s (one thread)",
        engine.catalog.len(),
        ids.len(),
        engine.model.version,
        store.backend(),
        features.features.len(),
        wall.elapsed().as_secs_f64()
    );
    println!(
        "average page: {:.1} rows, {:.1} items",
        rows as f64 / n as f64,
        items as f64 / n as f64
    );
    if segments {
        println!(
            "segment lists kept across pages: {segment_hits} used, {segment_misses} computed ({} kept)",
            kept.len()
        );
    } else {
        println!("segment lists computed on every page (--segment-cache false)");
    }
    report("experiment evaluation", experiments_us);
    report("page assembly (engine)", assembly);
    report("read+experiments+assembly", with_reads);
    let mean = |d: std::time::Duration| d.as_secs_f64() * 1e6 / n as f64;
    let mut by_row: Vec<(String, std::time::Duration)> = Vec::new();
    for (row, d) in &stages.sources {
        match by_row.iter_mut().find(|(r, _)| r == row) {
            Some((_, total)) => *total += *d,
            None => by_row.push((row.clone(), *d)),
        }
    }
    println!("assembly stages, mean per page:");
    for (row, d) in &by_row {
        println!("  source {row:<24} {:>8.1}µs", mean(*d));
    }
    println!(
        "  filters {:>32.1}µs\n  dedupe {:>33.1}µs\n  rerank {:>33.1}µs",
        mean(stages.filters),
        mean(stages.dedupe),
        mean(stages.rerank)
    );
    Ok(())
}

/// `marquee bench --url`: home pages over HTTP from `concurrency` clients, then the server's
/// impression-log counters — the check that logging keeps up (no drops) under this load.
/// The profiles of accounts 1–100 (MovieLens users), each with a viewer token of its account
/// from the server's development issuer (`data_dir`'s keys): what the HTTP benches request.
pub async fn dev_signed_in_profiles(
    url: &str,
    data_dir: &Path,
) -> Result<Vec<(String, std::sync::Arc<str>)>> {
    use crate::auth::{DEFAULT_AUDIENCE, DEV_ISSUER_PATH, DevIssuer, Role};
    use serde_json::{Value, json};
    let url = url.trim_end_matches('/');
    let http = reqwest::Client::new();
    let issuer = DevIssuer::load(data_dir)?;
    let mut profiles: Vec<(String, std::sync::Arc<str>)> = Vec::new();
    for account in 1..=100 {
        let token: std::sync::Arc<str> = issuer
            .token(
                &format!("{url}{DEV_ISSUER_PATH}"),
                DEFAULT_AUDIENCE,
                &crate::domain::AccountId::parse(&account.to_string())?,
                Role::Viewer,
            )?
            .into();
        let mine: Value = http
            .post(format!("{url}/graphql"))
            .bearer_auth(&*token)
            .json(&json!({"query": "{ profiles(first: 10) { id } }"}))
            .send()
            .await?
            .json()
            .await?;
        for p in mine["data"]["profiles"].as_array().into_iter().flatten() {
            if let Some(id) = p["id"].as_str() {
                profiles.push((id.to_owned(), token.clone()));
            }
        }
    }
    if profiles.is_empty() {
        bail!(
            "{url} has no profiles for accounts 1–100 (or does not run the development issuer of {})",
            data_dir.display()
        );
    }
    Ok(profiles)
}

pub async fn run_http(
    url: &str,
    data_dir: &Path,
    requests: usize,
    concurrency: usize,
    seed: u64,
) -> Result<()> {
    use serde_json::{Value, json};
    let url = url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::new();
    let gql = {
        let (http, url) = (http.clone(), url.clone());
        move |token: std::sync::Arc<str>, query: &'static str, variables: Value| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let resp: Value = http
                    .post(format!("{url}/graphql"))
                    .bearer_auth(&*token)
                    .json(&json!({"query": query, "variables": variables}))
                    .send()
                    .await?
                    .json()
                    .await?;
                anyhow::Ok(resp)
            }
        }
    };
    let profiles = dev_signed_in_profiles(&url, data_dir).await?;
    let profiles = std::sync::Arc::new(profiles);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let wall = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency.max(1) {
        let (profiles, next, gql) = (profiles.clone(), next.clone(), gql.clone());
        let mut rng = SplitMix64(seed ^ (w as u64).wrapping_mul(0x9e37_79b9));
        workers.push(tokio::spawn(async move {
            let mut micros = Vec::new();
            let mut errors = 0usize;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < requests {
                let (p, token) = &profiles[(rng.next_u64() % profiles.len() as u64) as usize];
                let start = Instant::now();
                match gql(
                    token.clone(),
                    "query($p: ID!) { home(profileId: $p) { requestId rows { id items { title { id name } } } } }",
                    json!({"p": p}),
                )
                .await
                {
                    Ok(v) if v.get("errors").is_none() => micros.push(start.elapsed().as_secs_f64() * 1e6),
                    _ => errors += 1,
                }
            }
            (micros, errors)
        }));
    }
    let mut all = Vec::with_capacity(requests);
    let mut errors = 0;
    for w in workers {
        let (m, e) = w.await?;
        all.extend(m);
        errors += e;
    }
    let secs = wall.elapsed().as_secs_f64();
    println!(
        "marquee bench --url {url}: {} pages, {concurrency} clients, {:.0} pages/s, {errors} errors",
        all.len(),
        all.len() as f64 / secs
    );
    report("home over HTTP (GraphQL)", all);
    // Let the writer drain, then read its counters.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let metrics = scrape_request(&http, &url).send().await?.text().await?;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("marquee_impressions"))
    {
        println!("{line}");
    }
    Ok(())
}

/// The full home page a client renders: every row, every item with its title metadata and
/// the evidence behind it, and the experiments that shaped the page.
pub const HOME_QUERY: &str = "query Home($p: ID!) { home(profileId: $p) { requestId generatedAt modelVersion \
  assignments { experimentKey variationKey } \
  rows { id kind title modelVersion items { position score reason \
    title { id name year genres maturityRating overview addedAt posterUrl backdropUrl runtime tagline director } \
    evidence { id name } } } } }";

/// `marquee bench --url … --rate R`: open-loop load at a fixed rate.
#[derive(Debug, Clone)]
pub struct OpenLoopArgs {
    pub url: String,
    /// Pages per second, scheduled whatever the server's pace.
    pub rate: f64,
    pub duration: std::time::Duration,
    /// Profiles to choose from at random, each with the bearer token its requests carry.
    pub profiles: Vec<(String, Option<std::sync::Arc<str>>)>,
    pub seed: u64,
    /// A request that has not answered this long after its scheduled time is an error.
    pub timeout: std::time::Duration,
}

/// `GET <url>/metrics`, with the scrape token from `MARQUEE_METRICS_TOKEN` when it is set (a
/// production-mode server shows its metrics only to admins and the scraper).
fn scrape_request(http: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    let request = http.get(format!("{url}/metrics"));
    match std::env::var("MARQUEE_METRICS_TOKEN") {
        Ok(token) if !token.is_empty() => request.bearer_auth(token),
        _ => request,
    }
}

/// What one scrape of the server's `/metrics` says about its CPU and pages.
#[derive(Debug, Clone, Copy, Default)]
struct ServerCounters {
    cpu_seconds: f64,
    pages: f64,
}

impl ServerCounters {
    /// Reads `process_cpu_seconds_total` and `marquee_pages_total` from an exposition body.
    fn parse(text: &str) -> Option<Self> {
        let read = |name: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
        };
        Some(Self {
            cpu_seconds: read("process_cpu_seconds_total")?,
            pages: read("marquee_pages_total").unwrap_or(0.0),
        })
    }
}

/// Open-loop load (no coordinated omission): request `i` is due at `start + i / rate` and is
/// sent then whether or not earlier ones have answered, and its latency counts from that
/// due time — a server that stalls makes every request due during the stall late, as real
/// clients would see it. Reports latency percentiles, errors, the achieved rate, and the
/// server's CPU per page from its own `/metrics` (CPU seconds delta ÷ pages delta).
pub async fn run_open_loop(args: OpenLoopArgs) -> Result<()> {
    use serde_json::{Value, json};
    use std::sync::Arc;
    use tokio::time::Instant as TokioInstant;
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        bail!("--rate must be a positive number of pages per second");
    }
    if args.profiles.is_empty() {
        bail!("{} has no profiles", args.url);
    }
    let url = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(args.timeout)
        .build()?;
    let scrape = |http: reqwest::Client, url: String| async move {
        let text = scrape_request(&http, &url).send().await?.text().await?;
        anyhow::Ok(ServerCounters::parse(&text))
    };
    // A server without the process collector (an older Marquee) is still measured.
    let before = scrape(http.clone(), url.clone()).await.ok().flatten();
    let total = (args.rate * args.duration.as_secs_f64()).round() as u64;
    let period = std::time::Duration::from_secs_f64(1.0 / args.rate);
    let profiles = Arc::new(args.profiles);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<f64, String>>();
    let mut rng = SplitMix64(args.seed);
    let start = TokioInstant::now();
    for i in 0..total {
        let due = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let (profile, token) = profiles[(rng.next_u64() % profiles.len() as u64) as usize].clone();
        let (http, url, tx) = (http.clone(), url.clone(), tx.clone());
        tokio::spawn(async move {
            let mut request = http
                .post(format!("{url}/graphql"))
                .json(&json!({"query": HOME_QUERY, "variables": {"p": profile}}));
            if let Some(token) = token {
                request = request.bearer_auth(&*token);
            }
            let outcome = async {
                let resp = request.send().await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let body: Value = resp.json().await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!("HTTP {status}"));
                }
                match body.get("errors") {
                    Some(e) => Err(e[0]["extensions"]["code"]
                        .as_str()
                        .unwrap_or("GraphQL error")
                        .to_owned()),
                    None => Ok(()),
                }
            }
            .await;
            // From the due time, not from when the request left.
            let micros = due.elapsed().as_secs_f64() * 1e6;
            let _ = tx.send(outcome.map(|()| micros));
        });
    }
    let sent_in = start.elapsed().as_secs_f64();
    drop(tx);
    let mut micros = Vec::with_capacity(total as usize);
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    while let Some(r) = rx.recv().await {
        match r {
            Ok(m) => micros.push(m),
            Err(e) => *errors.entry(e).or_default() += 1,
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let after = scrape(http.clone(), url.clone()).await.ok().flatten();
    let failed: usize = errors.values().sum();
    println!(
        "marquee bench --url {url} --rate {} --duration {:.0}s: {total} pages scheduled, sent over {sent_in:.1}s, all answered after {wall:.1}s",
        args.rate,
        args.duration.as_secs_f64()
    );
    println!(
        "achieved {:.0} pages/s ({} ok, {failed} errors{})",
        micros.len() as f64 / sent_in.max(f64::MIN_POSITIVE),
        micros.len(),
        if errors.is_empty() {
            String::new()
        } else {
            format!(": {errors:?}")
        }
    );
    micros.sort_by(f64::total_cmp);
    println!(
        "latency from the scheduled send: p50={:.2}ms  p90={:.2}ms  p99={:.2}ms  p99.9={:.2}ms  max={:.2}ms",
        percentile(&micros, 50.0) / 1e3,
        percentile(&micros, 90.0) / 1e3,
        percentile(&micros, 99.0) / 1e3,
        percentile(&micros, 99.9) / 1e3,
        micros.last().copied().unwrap_or(f64::NAN) / 1e3,
    );
    let Some((before, after)) = before.zip(after) else {
        println!("server CPU: {url}/metrics has no process_cpu_seconds_total");
        return Ok(());
    };
    let pages = after.pages - before.pages;
    let cpu = after.cpu_seconds - before.cpu_seconds;
    if pages > 0.0 {
        println!(
            "server CPU: {cpu:.2}s for {pages:.0} pages = {:.0}µs per page (process_cpu_seconds_total ÷ marquee_pages_total, 10 ms resolution; includes GraphQL, HTTP and impression writes)",
            cpu / pages * 1e6
        );
    } else {
        println!("server CPU: {cpu:.2}s; the server counted no pages");
    }
    Ok(())
}

/// Peak resident set size of this process so far (Linux `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// `marquee bench --training DIR`: trains every model straight from the atomic files in `dir`
/// (no database: importing 50M interactions is not what is being measured), then measures
/// the artifact and ANN retrieval for folded-in profiles against exact search.
pub fn run_training(
    dir: &Path,
    params: &TrainParams,
    queries: usize,
    seed: u64,
    model_cache: Option<&Path>,
) -> Result<()> {
    let started = Instant::now();
    let TrainingFiles {
        catalog,
        data,
        latest,
        read,
        unknown,
    } = read_training_set(dir)?;
    println!(
        "read {read} interactions ({} profiles, {} titles, {unknown} of unknown titles) in {:.1}s",
        data.profiles(),
        catalog.len(),
        started.elapsed().as_secs_f64()
    );
    let artifact = match model_cache.filter(|p| p.exists()) {
        Some(path) => cached_model(path, params)?,
        None => {
            let artifact = train_and_report(&catalog, &data, latest, params);
            if let Some(path) = model_cache {
                std::fs::write(path, artifact.encode()?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            artifact
        }
    };
    measure_encoding(&artifact)?;
    measure_ann(&artifact, &catalog, &data, params, queries, seed)?;
    if let Some(peak) = peak_rss_bytes() {
        println!("peak RSS {:.2} GiB", gib(peak));
    }
    println!("total {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// What `bench --training` reads from the atomic files.
struct TrainingFiles {
    catalog: Catalog,
    data: TrainingSet,
    /// The newest interaction's time: training's "now".
    latest: Millis,
    /// Interaction lines read, and how many of them name a title the catalogue lacks.
    read: usize,
    unknown: usize,
}

/// The catalogue and the compact training set from the atomic files in `dir`.
fn read_training_set(dir: &Path) -> Result<TrainingFiles> {
    let catalog = Catalog::new(movielens::read_titles(dir)?);
    let by_id: HashMap<&str, TitleIdx> = catalog
        .titles()
        .map(|(t, title)| (title.id.as_str(), t))
        .collect();
    let mut builder = TrainingSetBuilder::default();
    // A line is one imported interaction, and its row what `marquee train` would learn from
    // the watch state it leaves (a profile's repeated lines for one title stay separate rows
    // here, where the importer would merge them; generated data has few).
    let mut signals = ImportedSignals::default();
    let mut unknown = 0usize;
    let mut latest: Millis = 0;
    let read = movielens::for_each_interaction(dir, |user, item, rating, at| {
        let Some(&t) = by_id.get(item) else {
            unknown += 1;
            return;
        };
        latest = latest.max(at);
        if let Some(signal) = signals.get(&catalog.title(t).id, rating, at) {
            builder.push(user, t, signal, None);
        }
    })?;
    drop(by_id);
    Ok(TrainingFiles {
        catalog,
        data: builder.finish(),
        latest,
        read,
        unknown,
    })
}

/// A model kept by an earlier run (`--model-cache`); its ANN index is rebuilt when the ANN
/// params differ from the ones it was built with.
fn cached_model(path: &Path, params: &TrainParams) -> Result<ModelArtifact> {
    let mut artifact = ModelArtifact::decode(&std::fs::read(path)?)
        .with_context(|| format!("{}", path.display()))?;
    println!("reusing the model in {} (no training)", path.display());
    if artifact.params.ann != params.ann
        && let Some(e) = artifact.embeddings.take()
    {
        let t = Instant::now();
        artifact.embeddings = Some(EmbeddingArtifact::build(e.titles, e.factors, &params.ann));
        artifact.params.ann = params.ann.clone();
        println!(
            "  rebuilt the ANN index in {:.1}s",
            t.elapsed().as_secs_f64()
        );
    }
    Ok(artifact)
}

/// Trains as `marquee train` does, printing the time of each stage.
fn train_and_report(
    catalog: &Catalog,
    data: &TrainingSet,
    latest: Millis,
    params: &TrainParams,
) -> ModelArtifact {
    let (artifact, times) = model::train_timed(catalog, data, &[], latest, params);
    let train_total: f64 = times.0.iter().map(|(_, s)| s).sum();
    for (stage, seconds) in &times.0 {
        println!("  train {stage:<26} {seconds:>8.1}s");
    }
    println!("  train total                      {train_total:>8.1}s");
    // Local EASE leaves a title without weights when it has no co-watched titles or its
    // approximated system is not positive-definite.
    println!(
        "  EASE weights for {} of {} titles",
        artifact.item_weights.len(),
        catalog.len()
    );
    if artifact.content_neighbors.is_empty() {
        println!(
            "  (content neighbours skipped: more than {} titles)",
            params.content.max_titles
        );
    }
    artifact
}

/// The artifact's size and the time to encode and decode it.
fn measure_encoding(artifact: &ModelArtifact) -> Result<()> {
    let t = Instant::now();
    let bytes = artifact.encode()?;
    let encode = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let decoded = ModelArtifact::decode(&bytes)?;
    let decode = t.elapsed().as_secs_f64();
    drop(decoded);
    println!(
        "artifact {:.1} MB: encode {encode:.2}s, decode {decode:.2}s",
        bytes.len() as f64 / 1e6
    );
    Ok(())
}

/// ANN retrieval against exact search for `queries` real profiles' histories, folded in as
/// serving does: recall@10, the inner product it keeps, and latency.
fn measure_ann(
    artifact: &ModelArtifact,
    catalog: &Catalog,
    data: &TrainingSet,
    params: &TrainParams,
    queries: usize,
    seed: u64,
) -> Result<()> {
    let Some(embeddings) = &artifact.embeddings else {
        bail!("the model has no embeddings (als.factors = 0?)");
    };
    let mut rng = SplitMix64(seed);
    let chosen: HashMap<u32, usize> = (0..queries)
        .map(|k| (rng.below(data.profiles() as u64) as u32, k))
        .collect();
    let mut histories: Vec<Vec<(TitleIdx, f32)>> = vec![Vec::new(); queries];
    for r in data.rows() {
        if let Some(k) = chosen.get(&r.profile) {
            histories[*k].push((r.title, r.affinity));
        }
    }
    let model = Model::load("bench", artifact, catalog);
    let t = Instant::now();
    let vectors: Vec<Vec<f32>> = histories.iter().filter_map(|h| model.fold_in(h)).collect();
    let fold_in = t.elapsed().as_secs_f64() * 1e6 / vectors.len().max(1) as f64;
    let index = &embeddings.index;
    let factors = &embeddings.factors;
    let mut ann_micros = Vec::with_capacity(vectors.len());
    let mut exact_micros = Vec::with_capacity(vectors.len());
    let mut hits = 0usize;
    let (mut found_score, mut exact_score) = (0f64, 0f64);
    for q in &vectors {
        let t = Instant::now();
        let found: Vec<u32> = index.search(q, 10).into_iter().map(|(r, _)| r).collect();
        ann_micros.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        let exact = ann::exact_search(factors, q, 10);
        exact_micros.push(t.elapsed().as_secs_f64() * 1e6);
        hits += exact.iter().filter(|r| found.contains(r)).count();
        let score = |rows: &[u32]| -> f64 {
            rows.iter()
                .map(|r| ann::dot(factors.row(*r as usize), q) as f64)
                .sum()
        };
        found_score += score(&found);
        exact_score += score(&exact);
    }
    println!(
        "ANN over {} title embeddings (dim {}, ef_construction {}, ef_search {}, {} per norm band), {} folded-in profiles:",
        index.len(),
        factors.dim,
        params.ann.ef_construction,
        params.ann.ef_search,
        params.ann.band_size,
        vectors.len()
    );
    println!(
        "  recall@10 vs exact: {:.4}; inner product summed over the top 10, ANN / exact: {:.4}; fold-in {fold_in:.0}µs/profile",
        hits as f64 / (10 * vectors.len()).max(1) as f64,
        found_score / exact_score
    );
    report("ANN search (1 thread)", ann_micros);
    report("exact search (1 thread)", exact_micros);
    Ok(())
}

/// What `run_report` builds and measures.
pub struct ReportBenchArgs {
    /// Row items to log (pages of 100).
    pub impressions: u64,
    pub seed: u64,
}

/// `marquee bench --report`: builds a database with `impressions` row items through the
/// store's real write paths — pages of 100 items with their exposures to two experiments
/// (written like the impression log writes them), then attributed plays and completions
/// (written like `recordEvents`) — and times the experiment report: the counters it reads
/// now, and the full scan it used to do. `store` must be empty.
pub async fn run_report(store: &Store, args: &ReportBenchArgs) -> Result<()> {
    use crate::domain::{EventAction, EventKind, ProfileId, Title, TitleId};
    use crate::ingest::movielens::{Dataset, UserRecord};
    use crate::store::ImportOptions;
    use crate::store::logging::{ExposureRecord, ItemImpression, PageImpressions};
    use crate::store::records::NewEvent;

    const ITEMS_PER_PAGE: u64 = 100;
    const TITLES: u64 = 2_000;
    /// Pages per profile, on average: a few visits each.
    const PAGES_PER_PROFILE: u64 = 5;
    const PAGES_PER_BATCH: usize = 200;
    /// Experiments and their variation counts.
    const EXPERIMENTS: [(&str, u64); 2] = [("bench-two-way", 2), ("bench-three-way", 3)];

    if store.count(crate::store::Table::Titles).await? > 0 {
        bail!(
            "bench --report builds its own data and needs an empty database: give --database-url an empty one"
        );
    }
    let pages = args.impressions.div_ceil(ITEMS_PER_PAGE).max(1);
    let profiles = (pages / PAGES_PER_PROFILE).max(10);
    let base: Millis = 1_700_000_000_000;
    let mut rng = SplitMix64(args.seed);

    let started = Instant::now();
    let titles: Vec<Title> = (1..=TITLES)
        .map(|t| {
            Ok(Title::new(
                TitleId::parse(&t.to_string())?,
                format!("Title {t}"),
            ))
        })
        .collect::<Result<_>>()?;
    let users: Vec<UserRecord> = (1..=profiles)
        .map(|p| {
            Ok(UserRecord {
                id: ProfileId::parse(&p.to_string())?,
                country: None,
            })
        })
        .collect::<Result<_>>()?;
    let data = Dataset {
        titles,
        users,
        interactions: vec![],
        external_items: vec![],
        entities: None,
        warnings: vec![],
    };
    let options = ImportOptions {
        kids_every: 0,
        received_at: base,
    };
    store.import(&data, &options, &|_, _, _| {}).await?;
    println!(
        "catalogue: {TITLES} titles, {profiles} profiles ({:.1}s)",
        started.elapsed().as_secs_f64()
    );

    // Pages, each profile exposed on its first one, written in the impression log's batches.
    let started = Instant::now();
    let mut exposed = vec![false; profiles as usize + 1];
    let mut plays: HashMap<u64, Vec<NewEvent>> = HashMap::new();
    let mut batch: Vec<PageImpressions> = Vec::with_capacity(PAGES_PER_BATCH);
    let mut written = 0u64;
    let mut event_id = 0u64;
    for page in 0..pages {
        let profile = 1 + rng.below(profiles);
        let profile_id = ProfileId::parse(&profile.to_string())?;
        let served_at = base + page as Millis * 1_000;
        let variations: Vec<(&str, u64)> = EXPERIMENTS
            .iter()
            .map(|(key, n)| (*key, (profile * 7_919 + key.len() as u64) % n))
            .collect();
        let exposures = if std::mem::replace(&mut exposed[profile as usize], true) {
            vec![]
        } else {
            variations
                .iter()
                .map(|(key, v)| ExposureRecord {
                    experiment_key: (*key).to_owned(),
                    phase: 0,
                    profile_id: profile_id.clone(),
                    variation_index: *v as i64,
                    variation_key: format!("v{v}"),
                    feature_key: format!("{key}-feature"),
                    at: served_at,
                })
                .collect()
        };
        let items: Vec<ItemImpression> = (0..ITEMS_PER_PAGE)
            .map(|i| {
                Ok(ItemImpression {
                    title_id: TitleId::parse(&(1 + rng.below(TITLES)).to_string())?,
                    row_id: format!("row-{}", i / 20),
                    row_position: (i / 20) as i64,
                    item_position: (i % 20) as i64,
                })
            })
            .collect::<Result<_>>()?;
        let request_id = format!("bench-{page:010}");
        // One page in five leads to a play of one of its titles, half of those to the end.
        if rng.below(5) == 0 {
            let title = items[rng.below(ITEMS_PER_PAGE) as usize].title_id.clone();
            let events = plays.entry(profile).or_default();
            for kind in [EventKind::Play, EventKind::Complete] {
                if kind == EventKind::Complete && rng.below(2) == 0 {
                    break;
                }
                event_id += 1;
                events.push(NewEvent {
                    title_id: title.clone(),
                    action: EventAction::from_parts(kind, None)?,
                    occurred_at: served_at + 60_000,
                    client_event_id: format!("bench-{event_id}"),
                    request_id: Some(request_id.clone()),
                });
            }
        }
        let assignments = variations
            .iter()
            .map(|(key, v)| ((*key).to_owned(), *v as usize))
            .collect();
        batch.push(PageImpressions {
            request_id,
            profile_id,
            served_at,
            model_version: "bench".into(),
            assignments,
            items,
            exposures,
        });
        if batch.len() == PAGES_PER_BATCH || page + 1 == pages {
            written += store.write_impressions(&batch).await?;
            batch.clear();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "impression log: {pages} pages, {written} items written with their counters in {seconds:.1}s ({:.0} pages/s)",
        pages as f64 / seconds
    );

    let started = Instant::now();
    let mut events = 0usize;
    for (profile, list) in &plays {
        let id = ProfileId::parse(&profile.to_string())?;
        events += store
            .record_events(&id, list, base + pages as Millis * 1_000)
            .await?
            .accepted;
    }
    println!(
        "events: {events} attributed plays and completions for {} profiles in {:.1}s",
        plays.len(),
        started.elapsed().as_secs_f64()
    );

    for (key, variations) in EXPERIMENTS {
        let weights = vec![1.0 / variations as f64; variations as usize];
        let mut times = Vec::new();
        let mut outcomes = None;
        for _ in 0..5 {
            let t = Instant::now();
            let o = store.experiment_outcomes(key, 0).await?;
            let analysis = crate::experiments::stats::analyse(&o.profiles, &weights, &[], 0);
            times.push(t.elapsed().as_secs_f64() * 1e3);
            outcomes = Some((o, analysis));
        }
        times.sort_by(f64::total_cmp);
        let Some((counted, analysis)) = outcomes else {
            continue;
        };
        let t = Instant::now();
        let scanned = store.experiment_outcomes_full_scan(key, 0).await?;
        let scan_ms = t.elapsed().as_secs_f64() * 1e3;
        let impressions: u64 = analysis.variations.iter().map(|v| v.impressions).sum();
        let plays: u64 = analysis.variations.iter().map(|v| v.plays).sum();
        println!(
            "report {key}: {} profiles, {impressions} impressions, {plays} plays — from the counters median {:.1} ms (min {:.1} ms, 5 runs); full scan {:.0} ms; {}",
            counted.profiles.len(),
            times[times.len() / 2],
            times[0],
            scan_ms,
            if counted == scanned {
                "they agree"
            } else {
                "THEY DISAGREE"
            }
        );
        if counted != scanned {
            bail!("the outcome counters of {key} disagree with the full scan");
        }
    }
    Ok(())
}

/// CPU time this thread has run, from Linux's scheduler statistics (nanoseconds on CPU);
/// `None` elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `marquee bench --auth`: the cost of authenticating a request. An issuer (a fresh RSA key,
/// discovery + JWKS) is served over loopback HTTP; the first validation pays for discovery,
/// the JWKS fetch and key parsing; every later one is a signature check and the claims against
/// the cached key — measured as CPU time per request on one thread, so that other load on the
/// machine does not count.
pub fn run_auth(requests: usize) -> Result<()> {
    use crate::auth::dev_issuer::discovery_document;
    use crate::auth::{DevIssuer, Role, TokenValidator, ValidatorConfig};
    use crate::domain::AccountId;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let keys = DevIssuer::generate()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let issuer = format!("http://{}", listener.local_addr()?);
        let discovery = discovery_document(&issuer);
        let jwks = keys.jwks();
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || async move { axum::Json(jwks) }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let validator = TokenValidator::new(ValidatorConfig::new(&issuer, "marquee"))?;
        // Distinct tokens (a signature check each) and one client's token again and again.
        let fresh = requests.clamp(1, 500);
        let tokens: Vec<String> = (0..=fresh)
            .map(|a| {
                keys.token(
                    &issuer,
                    "marquee",
                    &AccountId::parse(&a.to_string())?,
                    Role::Viewer,
                )
            })
            .collect::<Result<_>>()?;

        let start = Instant::now();
        validator.validate(&tokens[0]).await?;
        let first = start.elapsed();

        let timed = async |label: &str, tokens: &[String], n: usize| -> Result<String> {
            let mut micros = Vec::with_capacity(n);
            let cpu_start = thread_cpu_ns();
            for i in 0..n {
                let t = Instant::now();
                let caller = validator.validate(&tokens[i % tokens.len()]).await?;
                micros.push(t.elapsed().as_secs_f64() * 1e6);
                std::hint::black_box(caller);
            }
            let cpu = match (cpu_start, thread_cpu_ns()) {
                (Some(a), Some(b)) => format!("{:.1}µs", (b - a) as f64 / 1e3 / n.max(1) as f64),
                _ => "n/a (no /proc/thread-self/schedstat)".to_owned(),
            };
            report(label, micros);
            Ok(cpu)
        };
        let verify_cpu = timed("new token (RS256 verify)", &tokens[1..], fresh).await?;
        let repeat_cpu = timed("same token again", &tokens[1..2], requests).await?;
        println!(
            "marquee bench --auth: RS256 access tokens, JWKS over loopback HTTP\n\
             first use (discovery + JWKS fetch + first validation): {:.1} ms\n\
             cached JWKS, CPU per request: a token's first request {verify_cpu} (signature + claims), \
             its later requests {repeat_cpu} (verified-token cache) — target < 20µs",
            first.as_secs_f64() * 1e3,
        );
        anyhow::Ok(())
    })
}

/// `bench --freshness`: how long after replica A acknowledged an event replica B's next page
/// reflects it. Each trial takes a profile's page on B, gives its first title a thumbs-down on
/// A, and asks B again until the title is gone; the time counts from A's acknowledgement.
/// Writes real events (thumbs-down): run it against a test deployment.
pub async fn run_freshness(
    url_a: &str,
    url_b: &str,
    data_dir: &Path,
    trials: usize,
    seed: u64,
) -> Result<()> {
    use serde_json::{Value, json};
    const HOME: &str = "query($p: ID!) { home(profileId: $p) { rows { items { title { id } } } } }";
    const RECORD: &str = "mutation($p: ID!, $e: [EventInput!]!) { recordEvents(profileId: $p, events: $e) { accepted } }";
    let (a, b) = (url_a.trim_end_matches('/'), url_b.trim_end_matches('/'));
    // Tokens from the development issuer of the data directory, which both replicas share;
    // each replica's tokens name it as their issuer.
    let profiles = dev_signed_in_profiles(b, data_dir).await?;
    let tokens_a: HashMap<String, std::sync::Arc<str>> = dev_signed_in_profiles(a, data_dir)
        .await?
        .into_iter()
        .collect();
    let http = reqwest::Client::new();
    let gql = |url: String, token: std::sync::Arc<str>, query: &'static str, vars: Value| {
        let http = http.clone();
        async move {
            let r: Value = http
                .post(format!("{url}/graphql"))
                .bearer_auth(&*token)
                .json(&json!({"query": query, "variables": vars}))
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(r)
        }
    };
    let first_title = |page: &Value| -> Option<String> {
        page["data"]["home"]["rows"]
            .as_array()?
            .iter()
            .flat_map(|r| r["items"].as_array().into_iter().flatten())
            .find_map(|i| i["title"]["id"].as_str().map(str::to_owned))
    };
    let shows = |page: &Value, title: &str| {
        page["data"]["home"]["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["items"].as_array().into_iter().flatten())
            .any(|i| i["title"]["id"].as_str() == Some(title))
    };
    let mut rng = SplitMix64(seed);
    let run = Clock::System.now();
    let mut micros = Vec::with_capacity(trials);
    let mut polls = 0usize;
    for trial in 0..trials {
        let (profile, token) = &profiles[rng.below(profiles.len() as u64) as usize];
        let Some(token_a) = tokens_a.get(profile) else {
            continue;
        };
        let page = gql(b.to_owned(), token.clone(), HOME, json!({"p": profile})).await?;
        let Some(title) = first_title(&page) else {
            continue;
        };
        let events = json!([{"clientEventId": format!("freshness-{run}-{trial}"), "titleId": title, "kind": "THUMBS_DOWN"}]);
        let r = gql(
            a.to_owned(),
            token_a.clone(),
            RECORD,
            json!({"p": profile, "e": events}),
        )
        .await?;
        if r["data"]["recordEvents"]["accepted"] != json!(1) {
            bail!("replica A did not accept the event: {r}");
        }
        let acked = Instant::now();
        loop {
            polls += 1;
            let page = gql(b.to_owned(), token.clone(), HOME, json!({"p": profile})).await?;
            if !shows(&page, &title) {
                break;
            }
            if acked.elapsed() > std::time::Duration::from_secs(10) {
                bail!(
                    "replica B still shows title {title} to {profile} 10 s after the thumbs-down on A"
                );
            }
        }
        micros.push(acked.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "freshness: event acknowledged on {a} → next page on {b} without the title ({} trials, {polls} pages asked of B)",
        micros.len()
    );
    report("A ack → B page changed", micros);
    Ok(())
}

/// `marquee bench --sticky`: the per-page cost of sticky bucketing in serving — reading the
/// profile's sticky-bucket document, and writing it when the profile is first assigned — with
/// the embedded store (the database alone) and, when `redis` is given (`REDIS_URL`), with
/// Redis in front of it. `profiles` fresh identities (unique to this run) each take a first
/// page (read: nothing yet; write: the new document) and `returning` later pages (read). With
/// Redis, a third pass reads them as after a Redis restart (nothing in Redis: the database
/// answers and Redis is refilled). The keys it wrote to Redis are deleted at the end.
pub async fn run_sticky(
    store: &Store,
    redis: Option<&crate::app::serving::cache::Redis>,
    profiles: usize,
    returning: usize,
) -> Result<()> {
    use crate::app::serving::sticky::{DatabaseSticky, RedisSticky, StickyStore};

    // Makes this run's identities unique.
    let run = Clock::System.now();
    let document = |identity: &str| {
        serde_json::json!({
            "attributeName": "id",
            "attributeValue": identity,
            "assignments": {"console-ab__0": "trending-first", "row-order__0": "control"}
        })
        .to_string()
    };
    let mut stores: Vec<(String, Box<dyn StickyStore>)> =
        vec![("embedded (database)".into(), Box::new(DatabaseSticky))];
    if let Some(redis) = redis {
        stores.push((
            "redis + database".into(),
            Box::new(RedisSticky::new(redis.clone())),
        ));
    }
    for (mode, (label, sticky)) in stores.iter().enumerate() {
        let identities: Vec<String> = (0..profiles)
            .map(|i| format!("id||bench-sticky-{run}-{mode}-{i}"))
            .collect();
        let (mut first_read, mut first_write, mut again) = (vec![], vec![], vec![]);
        for identity in &identities {
            let one = std::slice::from_ref(identity);
            let t = Instant::now();
            let read = sticky.load(store, one, true).await;
            first_read.push(t.elapsed().as_secs_f64() * 1e6);
            if read.docs.is_none_or(|d| !d.is_empty()) || !read.skipped.is_empty() {
                bail!("{label}: a fresh identity's read failed or found a document");
            }
            let t = Instant::now();
            let failed = sticky
                .save(store, &[(identity.clone(), document(identity))], 0)
                .await;
            first_write.push(t.elapsed().as_secs_f64() * 1e6);
            if !failed.is_empty() {
                bail!("{label}: writing a document failed ({failed:?})");
            }
        }
        for _ in 0..returning {
            for identity in &identities {
                let t = Instant::now();
                let read = sticky
                    .load(store, std::slice::from_ref(identity), true)
                    .await;
                again.push(t.elapsed().as_secs_f64() * 1e6);
                if read.docs.is_none_or(|d| d.len() != 1) {
                    bail!("{label}: a stored document was not found");
                }
            }
        }
        println!("{label}:");
        report("  first page: read (none)", first_read);
        report("  first page: write", first_write);
        report("  returning page: read", again);
        if let Some(redis) = redis.filter(|_| mode == 1) {
            // As after a Redis restart: the documents are gone from Redis only.
            let keys: Vec<String> = identities
                .iter()
                .map(|i| redis.key(&format!("sticky:{i}")))
                .collect();
            delete_keys(redis, &keys).await?;
            let mut refill = vec![];
            for identity in &identities {
                let t = Instant::now();
                let read = sticky
                    .load(store, std::slice::from_ref(identity), true)
                    .await;
                refill.push(t.elapsed().as_secs_f64() * 1e6);
                if read.docs.is_none_or(|d| d.len() != 1) {
                    bail!("{label}: a document was not read back from the database");
                }
            }
            report("  after a Redis restart: read", refill);
            delete_keys(redis, &keys).await?;
        }
    }
    Ok(())
}

async fn delete_keys(redis: &crate::app::serving::cache::Redis, keys: &[String]) -> Result<()> {
    use deadpool_redis::redis as r;
    for chunk in keys.chunks(500) {
        let mut pipe = r::pipe();
        pipe.cmd("DEL").arg(chunk).ignore();
        redis
            .query::<()>(&pipe)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}
