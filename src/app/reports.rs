//! Experiment reports: an experiment's definition next to its analysed outcomes, and the
//! report as a person reads it in a terminal.

use anyhow::Result;

use crate::store::Store;

/// An experiment's definition next to its analysed outcomes.
#[derive(Debug, Clone)]
pub struct ExperimentReport {
    pub experiment: crate::experiments::ExperimentSummary,
    pub analysis: crate::experiments::stats::Analysis,
    /// Profiles exposed to more than one variation, left out of the analysis.
    pub excluded_profiles: usize,
}

/// The report of experiment `key`, from the outcome counters the writes keep up to date
/// (one row per exposed profile), or with `recompute` from a full scan of exposures, page
/// views and events (slow; a check of the counters).
pub async fn experiment_report(
    store: &Store,
    features: &crate::experiments::FeatureSet,
    key: &str,
    recompute: bool,
) -> Result<Option<ExperimentReport>> {
    let Some(experiment) = features.experiments().into_iter().find(|e| e.key == key) else {
        return Ok(None);
    };
    let outcomes = if recompute {
        store.experiment_outcomes_full_scan(key).await?
    } else {
        store.experiment_outcomes(key).await?
    };
    let weights: Vec<f64> = experiment.variations.iter().map(|v| v.weight).collect();
    let analysis = crate::experiments::stats::analyse(&outcomes.profiles, &weights);
    Ok(Some(ExperimentReport {
        experiment,
        analysis,
        excluded_profiles: outcomes.contaminated,
    }))
}

/// The report as a person reads it in a terminal.
pub fn format_report(r: &ExperimentReport) -> String {
    use std::fmt::Write;
    let pct = |x: Option<f64>| x.map_or("—".to_owned(), |v| format!("{:.2}%", v * 100.0));
    let lift = |l: Option<crate::experiments::stats::Lift>| {
        l.map_or("—".to_owned(), |l| {
            format!(
                "{:+.1}% [{:+.1}%, {:+.1}%] p={:.3}{}",
                l.relative * 100.0,
                l.ci_low * 100.0,
                l.ci_high * 100.0,
                l.p_value,
                if l.significant() { " *" } else { "" }
            )
        })
    };
    let mut out = String::new();
    let e = &r.experiment;
    let _ = writeln!(
        out,
        "experiment {} (feature {}, hash {})",
        e.key, e.feature_key, e.hash_attribute
    );
    for (v, def) in r.analysis.variations.iter().zip(&e.variations) {
        let _ = writeln!(
            out,
            "  {:<16} weight {:>4.0}%  profiles {:>6}  impressions {:>8}  plays {:>6}  play/impr {:>7}  completion {:>7}  conversion {:>7}",
            def.key,
            def.weight * 100.0,
            v.profiles,
            v.impressions,
            v.plays,
            pct(v.play_rate.map(|x| x.ratio)),
            pct(v.completion_rate.map(|x| x.ratio)),
            pct(v.conversion.map(|x| x.ratio)),
        );
        if v.index > 0 {
            let _ = writeln!(
                out,
                "      vs control: play/impr {}",
                lift(v.play_rate_lift)
            );
            let _ = writeln!(
                out,
                "                  completion {}",
                lift(v.completion_rate_lift)
            );
            let _ = writeln!(
                out,
                "                  conversion {}",
                lift(v.conversion_lift)
            );
        }
    }
    let _ = writeln!(
        out,
        "  sample ratio: p={} {}",
        r.analysis
            .srm_p_value
            .map_or("—".to_owned(), |p| format!("{p:.4}")),
        if r.analysis.srm_flagged {
            "MISMATCH: assignment is broken, do not trust these results"
        } else {
            "ok"
        }
    );
    if r.excluded_profiles > 0 {
        let _ = writeln!(
            out,
            "  {} profiles saw more than one variation and are left out",
            r.excluded_profiles
        );
    }
    out
}
