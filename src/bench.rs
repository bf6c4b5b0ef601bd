//! `marquee bench`: latency of page assembly for random profiles on the loaded data.

use std::time::Instant;

use anyhow::{Result, bail};

use crate::clock::Clock;
use crate::engine::Engine;
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
    clock: &Clock,
    requests: usize,
    seed: u64,
) -> Result<()> {
    let ids = store.profile_ids().await?;
    if ids.is_empty() || requests == 0 {
        bail!("nothing to measure: no profiles (or --requests 0)");
    }
    let mut rng = SplitMix64(seed);
    let now = clock.now();
    let mut assembly = Vec::with_capacity(requests);
    let mut with_reads = Vec::with_capacity(requests);
    let mut rows = 0usize;
    let mut items = 0usize;
    let wall = Instant::now();
    for _ in 0..requests {
        let (id, _) = &ids[(rng.next_u64() % ids.len() as u64) as usize];
        let start = Instant::now();
        let Some(profile) = store.profile(id).await? else {
            continue;
        };
        let history = store.history(id).await?;
        let assembled = Instant::now();
        let page = engine.home_page(&profile, &history, now);
        let done = Instant::now();
        assembly.push((done - assembled).as_secs_f64() * 1e6);
        with_reads.push((done - start).as_secs_f64() * 1e6);
        rows += page.rows.len();
        items += page.rows.iter().map(|r| r.items.len()).sum::<usize>();
    }
    let n = assembly.len().max(1);
    println!(
        "marquee bench: {} titles, {} profiles, model {}, {:?} backend, {n} pages in {:.2}s (one thread)",
        engine.catalog.len(),
        ids.len(),
        engine.model.version,
        store.backend(),
        wall.elapsed().as_secs_f64()
    );
    println!(
        "average page: {:.1} rows, {:.1} items",
        rows as f64 / n as f64,
        items as f64 / n as f64
    );
    report("page assembly (engine)", assembly);
    report("profile+history read+assembly", with_reads);
    Ok(())
}

/// `marquee bench --url`: home pages over HTTP from `concurrency` clients, then the server's
/// impression-log counters — the check that logging keeps up (no drops) under this load.
pub async fn run_http(url: &str, requests: usize, concurrency: usize, seed: u64) -> Result<()> {
    use serde_json::{Value, json};
    let url = url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::new();
    let gql = {
        let (http, url) = (http.clone(), url.clone());
        move |query: &'static str, variables: Value| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let resp: Value = http
                    .post(format!("{url}/graphql"))
                    .json(&json!({"query": query, "variables": variables}))
                    .send()
                    .await?
                    .json()
                    .await?;
                anyhow::Ok(resp)
            }
        }
    };
    let profiles: Vec<String> =
        gql("{ profiles(first: 100) { id } }", json!({})).await?["data"]["profiles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect();
    if profiles.is_empty() {
        bail!("{url} has no profiles");
    }
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
                let p = &profiles[(rng.next_u64() % profiles.len() as u64) as usize];
                let start = Instant::now();
                match gql(
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
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("marquee_impressions"))
    {
        println!("{line}");
    }
    Ok(())
}
