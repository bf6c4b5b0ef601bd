//! Experiment reports: an experiment's definition next to its analysed outcomes, and the
//! report as a person reads it in a terminal.

use anyhow::Result;

use crate::domain::Millis;
use crate::store::Store;

/// An experiment's definition next to its analysed outcomes.
#[derive(Debug, Clone)]
pub struct ExperimentReport {
    pub experiment: crate::experiments::ExperimentSummary,
    /// Draft, running or stopped; phases; the winner.
    pub state: crate::experiments::console::ExperimentState,
    /// The phase reported on: the current one (a new phase re-randomises, so earlier phases
    /// are not mixed in).
    pub phase: usize,
    pub analysis: crate::experiments::stats::Analysis,
    /// Profiles exposed to more than one variation, left out of the analysis.
    pub excluded_profiles: usize,
}

/// How long after a weight change a first exposure may still have been assigned by the old
/// weights: replicas follow a change within a second (`console::POLL` is 250 ms). Such
/// profiles are left out of the sample-ratio check.
pub const EPOCH_SETTLE: Millis = 1_000;

/// The report of experiment `key` for its current phase, from the outcome counters the writes
/// keep up to date (one row per exposed profile), or with `recompute` from a full scan of
/// exposures, page views and events (slow; a check of the counters). The sample ratio is
/// checked per weight epoch of the phase, derived from the revision history.
pub async fn experiment_report(
    store: &Store,
    config: &crate::experiments::console::Config,
    key: &str,
    recompute: bool,
) -> Result<Option<ExperimentReport>> {
    let Some((experiment, state)) = config.summaries().into_iter().find(|(e, _)| e.key == key)
    else {
        return Ok(None);
    };
    let phase = state.phase().unwrap_or(0);
    let outcomes = if recompute {
        store
            .experiment_outcomes_full_scan(key, phase as i64)
            .await?
    } else {
        store.experiment_outcomes(key, phase as i64).await?
    };
    let weights: Vec<f64> = experiment.variations.iter().map(|v| v.weight).collect();
    let epochs = weight_epochs(store, &experiment, &state, phase).await?;
    let analysis =
        crate::experiments::stats::analyse(&outcomes.profiles, &weights, &epochs, EPOCH_SETTLE);
    Ok(Some(ExperimentReport {
        experiment,
        state,
        phase,
        analysis,
        excluded_profiles: outcomes.contaminated,
    }))
}

/// The weight epochs of `phase`, from the revisions made since it started (a revision that
/// does not parse is skipped: it was never served either).
async fn weight_epochs(
    store: &Store,
    experiment: &crate::experiments::ExperimentSummary,
    state: &crate::experiments::console::ExperimentState,
    phase: usize,
) -> Result<Vec<crate::experiments::stats::WeightEpoch>> {
    let Some(started) = state.phases.get(phase).map(|p| p.started_at) else {
        return Ok(Vec::new());
    };
    let revisions = store
        .experiment_revisions_since(started, &experiment.feature_key, &experiment.key)
        .await?;
    let configs: Vec<(Millis, crate::experiments::console::Config)> = revisions
        .iter()
        .filter_map(|r| Some((r.created_at, serde_json::from_str(&r.config).ok()?)))
        .collect();
    Ok(crate::experiments::console::weight_epochs(
        &configs,
        &experiment.key,
        phase,
    ))
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
        "experiment {} (feature {}, hash {}), phase {}",
        e.key, e.feature_key, e.hash_attribute, r.phase
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
    for e in r
        .analysis
        .srm_epochs
        .iter()
        .filter(|_| r.analysis.srm_epochs.len() > 1)
    {
        let _ = writeln!(
            out,
            "  weights {:?} from {}: first exposed {:?}, p={}",
            e.weights,
            crate::clock::format_rfc3339(e.from),
            e.profiles,
            e.p_value
                .map_or("— (too few to test)".to_owned(), |p| format!("{p:.4}"))
        );
    }
    let _ = writeln!(
        out,
        "  sample ratio (per weight epoch): p={} {}",
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

/// A pre-launch estimate: how many exposed profiles an experiment needs to detect a relative
/// change `mde` in conversion (two-sided 5%, 80% power), and how long that takes at the
/// traffic of the last week.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentPlan {
    pub mde: f64,
    /// Distinct profiles served a page in the last 7 days.
    pub weekly_profiles: i64,
    /// Share of them who played a title from a page: the control's expected conversion.
    pub baseline_conversion: Option<f64>,
    pub profiles_per_variation: Option<u64>,
    /// All variations, divided by the experiment's coverage.
    pub profiles_needed: Option<u64>,
    /// At the last week's reach (each profile counted once, as exposures are).
    pub estimated_days: Option<f64>,
}

/// The plan of experiment `key` for a minimum detectable (relative) effect `mde`.
pub async fn experiment_plan(
    store: &Store,
    config: &crate::experiments::console::Config,
    key: &str,
    mde: f64,
    now: crate::domain::Millis,
) -> Result<Option<ExperimentPlan>> {
    let Some((experiment, _)) = config.summaries().into_iter().find(|(e, _)| e.key == key) else {
        return Ok(None);
    };
    let traffic = store.traffic(now - 7 * crate::domain::DAY_MS, now).await?;
    let baseline =
        (traffic.profiles > 0).then(|| traffic.converted as f64 / traffic.profiles as f64);
    let per_variation =
        baseline.and_then(|b| crate::experiments::stats::sample_size_per_variation(b, mde));
    // The smallest variation sets the pace: n per variation at its weight.
    let smallest = experiment
        .variations
        .iter()
        .map(|v| v.weight)
        .fold(f64::INFINITY, f64::min);
    let needed = per_variation
        .filter(|_| smallest > 0.0 && experiment.coverage > 0.0)
        .map(|n| (n as f64 / smallest / experiment.coverage).ceil() as u64);
    let estimated_days = needed
        .filter(|_| traffic.profiles > 0)
        .map(|n| n as f64 / traffic.profiles as f64 * 7.0);
    Ok(Some(ExperimentPlan {
        mde,
        weekly_profiles: traffic.profiles,
        baseline_conversion: baseline,
        profiles_per_variation: per_variation,
        profiles_needed: needed,
        estimated_days,
    }))
}
