//! `marquee bench`: latency of page assembly for random profiles on the loaded data.

use std::time::Instant;

use anyhow::{Result, bail};

use crate::clock::Clock;
use crate::engine::Engine;
use crate::store::Store;

/// SplitMix64: a few lines of well-known arithmetic, enough to pick profiles reproducibly.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

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
    let mut rng = SplitMix(seed);
    let now = clock.now();
    let mut assembly = Vec::with_capacity(requests);
    let mut with_reads = Vec::with_capacity(requests);
    let mut rows = 0usize;
    let mut items = 0usize;
    let wall = Instant::now();
    for _ in 0..requests {
        let (id, _) = &ids[(rng.next() % ids.len() as u64) as usize];
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
