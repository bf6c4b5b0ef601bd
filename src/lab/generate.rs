//! `marquee generate`: synthetic data for scale runs, in the same RecBole atomic-file format
//! the importer reads. Deterministic for a seed. The data has the structure recommenders live
//! on: power-law popularity, latent taste clusters (expressed as genres), and per-profile
//! timelines, so that models trained on it have something real to find.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::rng::SplitMix64;

/// Taste clusters, named after MovieLens genres so the rest of the product treats them alike.
const CLUSTERS: [&str; 18] = [
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];
const MPAA: [&str; 5] = ["G", "PG", "PG-13", "R", "NC-17"];
/// Zipf exponent of title popularity (≈1 is what catalogues show).
const ZIPF: f64 = 1.0;
/// Share of a profile's events that follow its taste clusters; the rest follow global
/// popularity.
const IN_TASTE: f64 = 0.75;
/// Timelines span one year ending at `END_SECS` (2024-01-01T00:00:00Z).
const END_SECS: i64 = 1_704_067_200;
const SPAN_SECS: i64 = 365 * 86_400;

pub struct GenerateArgs {
    pub profiles: u64,
    pub titles: u64,
    pub events: u64,
    pub seed: u64,
}

/// Cumulative Zipf weights over `n` ranks, for sampling by binary search.
fn zipf_cdf(n: usize) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n)
        .map(|rank| {
            acc += 1.0 / (rank as f64).powf(ZIPF);
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

fn sample(cdf: &[f64], rng: &mut SplitMix64) -> usize {
    let u = rng.unit();
    cdf.partition_point(|c| *c < u)
        .min(cdf.len().saturating_sub(1))
}

/// Writes `gen.item`, `gen.user` and `gen.inter` (and movies.json with MPAA ratings) into
/// `out`, reporting progress as events written.
pub fn generate(out: &Path, args: &GenerateArgs, progress: &dyn Fn(u64)) -> Result<()> {
    if args.profiles == 0 || args.titles < CLUSTERS.len() as u64 || args.events == 0 {
        bail!(
            "need at least 1 profile, {} titles and 1 event",
            CLUSTERS.len()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut rng = SplitMix64(args.seed);
    let create = |name: &str| -> Result<BufWriter<File>> {
        let path = out.join(name);
        Ok(BufWriter::with_capacity(
            1 << 20,
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?,
        ))
    };

    // Titles: id = popularity rank (1 is the most popular), a cluster, sometimes a second genre.
    let n_titles = args.titles as usize;
    let mut cluster_of = Vec::with_capacity(n_titles);
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); CLUSTERS.len()];
    let mut items = create("gen.item")?;
    let mut movies = create("movies.json")?;
    writeln!(
        items,
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"
    )?;
    write!(movies, "[")?;
    for id in 1..=n_titles as u32 {
        let cluster = rng.below(CLUSTERS.len() as u64) as usize;
        cluster_of.push(cluster);
        members[cluster].push(id);
        let mut genres = CLUSTERS[cluster].to_owned();
        if rng.unit() < 0.4 {
            let other = rng.below(CLUSTERS.len() as u64) as usize;
            if other != cluster {
                genres = format!("{genres} {}", CLUSTERS[other]);
            }
        }
        let year = 1970 + rng.below(54);
        writeln!(items, "{id}\tSynthetic Title {id}\t{year}\t{genres}")?;
        let mpaa = MPAA[rng.below(MPAA.len() as u64) as usize];
        let sep = if id == 1 { "" } else { "," };
        write!(
            movies,
            "{sep}{{\"Title\":\"Synthetic Title {id}\",\"Release Date\":\"Jan 01 {year}\",\"MPAA Rating\":\"{mpaa}\"}}"
        )?;
    }
    writeln!(movies, "]")?;
    items.flush()?;
    movies.flush()?;

    let global = zipf_cdf(n_titles);
    // Within a cluster, members are in global popularity order already (ids are ranks).
    let per_cluster: Vec<Vec<f64>> = members.iter().map(|m| zipf_cdf(m.len().max(1))).collect();

    let mut users = create("gen.user")?;
    writeln!(users, "user_id:token\tcountry:token")?;
    let countries = ["US", "US", "US", "GB", "DE", "FR", "BR", "IN"];
    let mut inter = create("gen.inter")?;
    writeln!(
        inter,
        "user_id:token\titem_id:token\trating:float\ttimestamp:float"
    )?;
    let mut written = 0u64;
    for user in 1..=args.profiles {
        writeln!(
            users,
            "{user}\t{}",
            countries[rng.below(countries.len() as u64) as usize]
        )?;
        let tastes = [
            rng.below(CLUSTERS.len() as u64) as usize,
            rng.below(CLUSTERS.len() as u64) as usize,
        ];
        // Activity is skewed too: exponential around the mean of what is left, so the total
        // lands on the requested count without piling the remainder on the last profile.
        let remaining_profiles = args.profiles - user + 1;
        let remaining = args.events.saturating_sub(written);
        let n = if remaining_profiles == 1 {
            remaining
        } else {
            let mean = remaining as f64 / remaining_profiles as f64;
            let draw = (-(1.0 - rng.unit()).ln() * mean).round() as u64;
            draw.clamp(1, remaining.saturating_sub(remaining_profiles - 1).max(1))
        };
        let start = END_SECS - SPAN_SECS + rng.below(SPAN_SECS as u64 / 2) as i64;
        let step = ((END_SECS - start) / n.max(1) as i64).max(1);
        for k in 0..n {
            let title = if rng.unit() < IN_TASTE {
                let cluster = tastes[(k % 2) as usize];
                let m = &members[cluster];
                if m.is_empty() {
                    sample(&global, &mut rng) as u32 + 1
                } else {
                    m[sample(&per_cluster[cluster], &mut rng)]
                }
            } else {
                sample(&global, &mut rng) as u32 + 1
            };
            let liked = tastes.contains(&cluster_of[title as usize - 1]);
            let rating = if liked {
                3 + rng.below(3)
            } else {
                1 + rng.below(4)
            };
            let ts = start + k as i64 * step + rng.below(step as u64) as i64;
            writeln!(inter, "{user}\t{title}\t{rating}\t{ts}")?;
        }
        written += n;
        if user % 10_000 == 0 {
            progress(written);
        }
    }
    users.flush()?;
    inter.flush()?;
    progress(written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_a_distribution_skewed_to_the_top() {
        let cdf = zipf_cdf(1000);
        assert!((cdf[999] - 1.0).abs() < 1e-12);
        // With s = 1 over 1,000 ranks the top 10 hold ≈ 39% of the mass.
        assert!((cdf[9] - 0.3903).abs() < 1e-3, "{}", cdf[9]);
    }

    #[test]
    fn output_is_deterministic_and_importable() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let args = GenerateArgs {
            profiles: 50,
            titles: 200,
            events: 2_000,
            seed: 3,
        };
        generate(a.path(), &args, &|_| {}).unwrap();
        generate(b.path(), &args, &|_| {}).unwrap();
        for f in ["gen.item", "gen.user", "gen.inter", "movies.json"] {
            assert_eq!(
                std::fs::read(a.path().join(f)).unwrap(),
                std::fs::read(b.path().join(f)).unwrap(),
                "{f}"
            );
        }
        let data = crate::ingest::movielens::read_dir(a.path(), None).unwrap();
        assert_eq!(data.titles.len(), 200);
        assert_eq!(data.users.len(), 50);
        assert_eq!(data.interactions.len(), 2_000);
        // Popularity is skewed: the top 5% of titles draw far more than 5% of events.
        let top = data
            .interactions
            .iter()
            .filter(|i| i.item.as_str().parse::<u32>().unwrap() <= 10)
            .count();
        assert!(top > 300, "top-10 titles got only {top} of 2000 events");
    }
}
