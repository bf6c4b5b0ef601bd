//! Statistics for experiment reports: relative lift with 95% confidence intervals and
//! p-values, and the sample-ratio-mismatch check. Plain numerical code, no dependencies.
//!
//! Rates that are counted per impression (plays per impression, completions per play) are
//! ratio metrics whose units are not independent — one profile sees many impressions — so
//! their variance comes from the delta method over per-profile sums, not a binomial formula.
//!
//! The sample-ratio check is per weight epoch: with sticky bucketing a weight change inside a
//! phase leaves exposed profiles where they are, so the mix of all exposures matches no single
//! set of weights. Only the profiles FIRST exposed while a set of weights was in force were
//! assigned by it; each epoch's newcomers are tested against its weights (`srm_by_epoch`).

use crate::domain::Millis;

/// One exposed profile's behaviour in an experiment, counted from its first exposure on.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProfileOutcome {
    pub variation: usize,
    /// When the profile was first exposed in the phase: the weight epoch it was assigned in.
    pub first_exposed_at: Millis,
    pub impressions: u64,
    /// PLAY events attributed to an impression (same request id and title).
    pub plays: u64,
    /// COMPLETE events attributed to an impression.
    pub completes: u64,
}

/// 1.96: the two-sided 95% normal quantile.
const Z95: f64 = 1.959_963_984_540_054;
/// A sample ratio mismatch is flagged below this p-value (the common, conservative choice).
pub const SRM_ALPHA: f64 = 0.001;

/// Complementary error function, |error| < 1.2e-7 (Numerical Recipes' Chebyshev fit).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// P(Z ≤ z) for a standard normal Z.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Two-sided p-value of a z statistic.
pub fn two_sided_p(z: f64) -> f64 {
    if z.is_nan() {
        return 1.0;
    }
    (2.0 * (1.0 - normal_cdf(z.abs()))).clamp(0.0, 1.0)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the approximation in its accurate range.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = C[1..]
        .iter()
        .enumerate()
        .fold(C[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Regularised upper incomplete gamma Q(a, x) (series below a + 1, continued fraction above).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let log_prefix = -x + a * x.ln() - ln_gamma(a);
    if x < a + 1.0 {
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..500 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (1.0 - sum * log_prefix.exp()).clamp(0.0, 1.0)
    } else {
        // Lentz's method for the continued fraction.
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..500 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (log_prefix.exp() * h).clamp(0.0, 1.0)
    }
}

/// P(χ²(df) ≥ x).
pub fn chi_square_sf(x: f64, df: f64) -> f64 {
    gamma_q(df / 2.0, x / 2.0)
}

/// χ² statistic and degrees of freedom of observed counts against weights; `None` when there
/// is nothing to test. A count in a variation of weight 0 (nobody should be assigned there)
/// is a certain mismatch: an infinite statistic.
fn srm_chi_square(observed: &[u64], weights: &[f64]) -> Option<(f64, usize)> {
    let total: u64 = observed.iter().sum();
    let weight_sum: f64 = weights.iter().sum();
    if observed.len() < 2 || observed.len() != weights.len() || total == 0 || weight_sum <= 0.0 {
        return None;
    }
    if observed
        .iter()
        .zip(weights)
        .any(|(o, w)| *o > 0 && *w <= 0.0)
    {
        return Some((f64::INFINITY, 1));
    }
    let positive = weights.iter().filter(|w| **w > 0.0).count();
    if positive < 2 {
        return None;
    }
    let chi2: f64 = observed
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(o, w)| {
            let expected = total as f64 * w / weight_sum;
            (*o as f64 - expected).powi(2) / expected
        })
        .sum();
    Some((chi2, positive - 1))
}

/// Sample ratio mismatch: χ² of observed counts against the configured weights.
/// Returns the p-value; `None` when there is nothing to test.
pub fn srm_p_value(observed: &[u64], weights: &[f64]) -> Option<f64> {
    srm_chi_square(observed, weights).map(|(chi2, df)| srm_tail(chi2, df))
}

/// P(χ²(df) ≥ x), with an infinite statistic (a certain mismatch) at 0.
fn srm_tail(chi2: f64, df: usize) -> f64 {
    if chi2.is_infinite() {
        0.0
    } else {
        chi_square_sf(chi2, df as f64)
    }
}

/// A span of a phase under one set of weights: profiles first exposed from `from` on (until
/// the next epoch) were assigned by `weights`.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightEpoch {
    pub from: Millis,
    pub weights: Vec<f64>,
}

/// One epoch's sample-ratio check.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochSrm {
    pub from: Millis,
    pub weights: Vec<f64>,
    /// Profiles first exposed in the epoch (after its settling time), per variation.
    pub profiles: Vec<u64>,
    /// `None` when the epoch has too little traffic to test (`SRM_MIN_EXPECTED`).
    pub p_value: Option<f64>,
}

/// An epoch is tested when every variation with weight expects at least this many profiles:
/// the usual validity condition of the χ² approximation.
pub const SRM_MIN_EXPECTED: f64 = 5.0;

/// The sample-ratio check of a phase whose weights changed at the starts of `epochs` (in time
/// order; the first covers everything before the second). A profile counts in the epoch of
/// its first exposure; profiles first exposed within `settle` of an epoch's start (but the
/// first's) are left out: replicas follow a change within that time, so they may have been
/// assigned by either set of weights.
///
/// The epochs' χ² statistics are added up into one test (Σχ² is χ² with Σdf degrees of freedom:
/// the epochs hold disjoint profiles, so their statistics are independent). One p-value keeps
/// the alarm at `SRM_ALPHA` without a multiple-testing correction that grows with the number
/// of weight changes, and a skew in any tested epoch still raises the sum. Each epoch's own
/// p-value is kept for the reader.
pub fn srm_by_epoch(
    outcomes: &[ProfileOutcome],
    epochs: &[WeightEpoch],
    settle: Millis,
) -> (Vec<EpochSrm>, Option<f64>) {
    let mut checks: Vec<EpochSrm> = epochs
        .iter()
        .map(|e| EpochSrm {
            from: e.from,
            weights: e.weights.clone(),
            profiles: vec![0; e.weights.len()],
            p_value: None,
        })
        .collect();
    for o in outcomes {
        // The last epoch that started at or before the first exposure (the first epoch takes
        // anything earlier).
        let i = epochs
            .iter()
            .rposition(|e| e.from <= o.first_exposed_at)
            .unwrap_or(0);
        if i > 0 && o.first_exposed_at < epochs[i].from.saturating_add(settle) {
            continue;
        }
        if let Some(n) = checks
            .get_mut(i)
            .and_then(|c| c.profiles.get_mut(o.variation))
        {
            *n += 1;
        }
    }
    let (mut chi2, mut df, mut tested) = (0.0, 0usize, false);
    for c in &mut checks {
        let total: u64 = c.profiles.iter().sum();
        let weight_sum: f64 = c.weights.iter().sum();
        let enough = weight_sum > 0.0
            && c.weights
                .iter()
                .filter(|w| **w > 0.0)
                .all(|w| total as f64 * w / weight_sum >= SRM_MIN_EXPECTED);
        if !enough {
            continue;
        }
        if let Some((x, d)) = srm_chi_square(&c.profiles, &c.weights) {
            c.p_value = Some(srm_tail(x, d));
            chi2 += x;
            df += d;
            tested = true;
        }
    }
    let combined = tested.then(|| srm_tail(chi2, df));
    (checks, combined)
}

/// A treatment-vs-control comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lift {
    /// treatment / control − 1.
    pub relative: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Fixed-horizon p-value: valid for one look at a sample size chosen in advance.
    pub p_value: f64,
    /// Always-valid p-value (mSPRT, `always_valid_p`): valid however often the report is
    /// looked at and whenever the experiment is stopped.
    pub always_valid_p: f64,
}

impl Lift {
    /// Significant at a single look (the fixed-horizon test).
    pub fn significant(&self) -> bool {
        self.p_value < 0.05
    }

    /// Significant under continuous monitoring (the sequential test).
    pub fn significant_sequential(&self) -> bool {
        self.always_valid_p < 0.05
    }

    /// Significant at one look only: reading it as a result now is peeking.
    pub fn peeking(&self) -> bool {
        self.significant() && !self.significant_sequential()
    }
}

/// The mixing scale of the sequential test, relative to the control's rate: effects of about
/// 10% are what experiments on a home page look for.
pub const MSPRT_TAU_RELATIVE: f64 = 0.1;

/// Always-valid p-value of a difference `diff` with variance `variance` (mSPRT with a normal
/// mixture N(0, τ²) over the effect, Johari et al. 2017): the likelihood ratio
/// Λ = √(V/(V+τ²)) · exp(diff² τ² / (2V(V+τ²))) is a martingale under no effect, so by Ville's
/// inequality P(Λ ever ≥ 1/α) ≤ α and p = min(1, 1/Λ) is valid at any look.
pub fn always_valid_p(diff: f64, variance: f64, tau2: f64) -> f64 {
    if variance <= 0.0 || tau2 <= 0.0 || !diff.is_finite() {
        return 1.0;
    }
    let log_lambda = 0.5 * (variance / (variance + tau2)).ln()
        + diff * diff * tau2 / (2.0 * variance * (variance + tau2));
    (-log_lambda).exp().min(1.0)
}

/// Profiles needed per variation to detect a relative change `mde` of a proportion
/// `baseline` with a two-sided 5% test at 80% power (normal approximation).
pub fn sample_size_per_variation(baseline: f64, mde: f64) -> Option<u64> {
    const Z_POWER80: f64 = 0.841_621_233_572_914_3;
    let p1 = baseline;
    let p2 = baseline * (1.0 + mde);
    if !(0.0..1.0).contains(&p1) || p1 <= 0.0 || !(0.0..1.0).contains(&p2) || mde == 0.0 {
        return None;
    }
    let n = (Z95 + Z_POWER80).powi(2) * (p1 * (1.0 - p1) + p2 * (1.0 - p2)) / (p2 - p1).powi(2);
    Some(n.ceil() as u64)
}

/// Mean and variance of a ratio of sums Σy/Σx over units, by the delta method.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioEstimate {
    pub ratio: f64,
    pub variance: f64,
}

pub fn ratio_estimate(units: &[(f64, f64)]) -> Option<RatioEstimate> {
    let n = units.len() as f64;
    let (sx, sy): (f64, f64) = units
        .iter()
        .fold((0.0, 0.0), |a, (x, y)| (a.0 + x, a.1 + y));
    if units.len() < 2 || sx <= 0.0 {
        return None;
    }
    let (mx, my) = (sx / n, sy / n);
    let ratio = sy / sx;
    let (mut vx, mut vy, mut cxy) = (0.0, 0.0, 0.0);
    for (x, y) in units {
        vx += (x - mx).powi(2);
        vy += (y - my).powi(2);
        cxy += (x - mx) * (y - my);
    }
    let (vx, vy, cxy) = (vx / (n - 1.0), vy / (n - 1.0), cxy / (n - 1.0));
    let variance = (vy - 2.0 * ratio * cxy + ratio * ratio * vx) / (n * mx * mx);
    Some(RatioEstimate {
        ratio,
        variance: variance.max(0.0),
    })
}

/// Relative lift of `treatment` over `control` with a CI from the delta method on the log
/// ratio, and a two-sided z-test on the difference.
pub fn lift(control: RatioEstimate, treatment: RatioEstimate) -> Option<Lift> {
    if control.ratio <= 0.0 || treatment.ratio <= 0.0 {
        return None;
    }
    let se_diff = (control.variance + treatment.variance).sqrt();
    let z = (treatment.ratio - control.ratio) / se_diff;
    let log_ratio = (treatment.ratio / control.ratio).ln();
    let se_log = (control.variance / control.ratio.powi(2)
        + treatment.variance / treatment.ratio.powi(2))
    .sqrt();
    let tau = MSPRT_TAU_RELATIVE * control.ratio;
    Some(Lift {
        relative: log_ratio.exp() - 1.0,
        ci_low: (log_ratio - Z95 * se_log).exp() - 1.0,
        ci_high: (log_ratio + Z95 * se_log).exp() - 1.0,
        p_value: if se_diff > 0.0 { two_sided_p(z) } else { 1.0 },
        always_valid_p: always_valid_p(
            treatment.ratio - control.ratio,
            se_diff * se_diff,
            tau * tau,
        ),
    })
}

/// A proportion (converted units / units) as a ratio estimate, so one `lift` serves both.
pub fn proportion(successes: u64, n: u64) -> Option<RatioEstimate> {
    if n < 2 {
        return None;
    }
    let p = successes as f64 / n as f64;
    Some(RatioEstimate {
        ratio: p,
        variance: p * (1.0 - p) / n as f64,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct VariationResult {
    pub index: usize,
    pub profiles: u64,
    pub impressions: u64,
    pub plays: u64,
    pub completes: u64,
    /// Attributed plays per impression.
    pub play_rate: Option<RatioEstimate>,
    /// Attributed completions per attributed play.
    pub completion_rate: Option<RatioEstimate>,
    /// Share of exposed profiles with at least one attributed play.
    pub conversion: Option<RatioEstimate>,
    /// Against variation 0; `None` for the control itself or when undefined.
    pub play_rate_lift: Option<Lift>,
    pub completion_rate_lift: Option<Lift>,
    pub conversion_lift: Option<Lift>,
    /// The guardrail metric (completion rate) is significantly worse than the control's,
    /// by the sequential test (safe to read at any time).
    pub guardrail_degraded: bool,
}

impl VariationResult {
    /// A lift that is significant at a single look but not sequentially.
    pub fn peeking(&self) -> bool {
        [
            self.play_rate_lift,
            self.completion_rate_lift,
            self.conversion_lift,
        ]
        .iter()
        .flatten()
        .any(Lift::peeking)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub variations: Vec<VariationResult>,
    /// The combined per-epoch sample-ratio test (`srm_by_epoch`).
    pub srm_p_value: Option<f64>,
    pub srm_flagged: bool,
    /// Each weight epoch's own check.
    pub srm_epochs: Vec<EpochSrm>,
}

/// Analyses the outcomes of `weights.len()` variations; variation 0 is the control. The
/// sample ratio is checked per weight epoch (`srm_by_epoch`); without `epochs`, against
/// `weights` alone.
pub fn analyse(
    outcomes: &[ProfileOutcome],
    weights: &[f64],
    epochs: &[WeightEpoch],
    settle: Millis,
) -> Analysis {
    let groups: Vec<Vec<&ProfileOutcome>> = (0..weights.len())
        .map(|v| outcomes.iter().filter(|o| o.variation == v).collect())
        .collect();
    let mut variations: Vec<VariationResult> = groups
        .iter()
        .enumerate()
        .map(|(index, g)| {
            let sum = |f: fn(&ProfileOutcome) -> u64| g.iter().map(|o| f(o)).sum::<u64>();
            let units = |x: fn(&ProfileOutcome) -> u64, y: fn(&ProfileOutcome) -> u64| {
                g.iter()
                    .map(|o| (x(o) as f64, y(o) as f64))
                    .collect::<Vec<_>>()
            };
            VariationResult {
                index,
                profiles: g.len() as u64,
                impressions: sum(|o| o.impressions),
                plays: sum(|o| o.plays),
                completes: sum(|o| o.completes),
                play_rate: ratio_estimate(&units(|o| o.impressions, |o| o.plays)),
                completion_rate: ratio_estimate(&units(|o| o.plays, |o| o.completes)),
                conversion: proportion(
                    g.iter().filter(|o| o.plays > 0).count() as u64,
                    g.len() as u64,
                ),
                play_rate_lift: None,
                completion_rate_lift: None,
                conversion_lift: None,
                guardrail_degraded: false,
            }
        })
        .collect();
    if let Some((control, rest)) = variations.split_first_mut() {
        for v in rest {
            v.play_rate_lift = control
                .play_rate
                .zip(v.play_rate)
                .and_then(|(c, t)| lift(c, t));
            v.completion_rate_lift = control
                .completion_rate
                .zip(v.completion_rate)
                .and_then(|(c, t)| lift(c, t));
            v.conversion_lift = control
                .conversion
                .zip(v.conversion)
                .and_then(|(c, t)| lift(c, t));
            v.guardrail_degraded = v
                .completion_rate_lift
                .is_some_and(|l| l.relative < 0.0 && l.significant_sequential());
        }
    }
    // Without a history, one epoch from the start of time (the first epoch takes every
    // earlier exposure anyway).
    let whole_phase = [WeightEpoch {
        from: 0,
        weights: weights.to_vec(),
    }];
    let epochs = if epochs.is_empty() {
        &whole_phase[..]
    } else {
        epochs
    };
    let (srm_epochs, srm_p_value) = srm_by_epoch(outcomes, epochs, settle);
    Analysis {
        variations,
        srm_p_value,
        srm_flagged: srm_p_value.is_some_and(|p| p < SRM_ALPHA),
        srm_epochs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() < tol
    }

    #[test]
    fn normal_and_chi_square_tails_match_tables() {
        assert!(close(normal_cdf(1.959_964), 0.975, 1e-6));
        assert!(close(normal_cdf(0.0), 0.5, 1e-7));
        assert!(close(two_sided_p(2.575_829), 0.01, 1e-6));
        assert!(close(chi_square_sf(3.841_459, 1.0), 0.05, 1e-6));
        assert!(close(chi_square_sf(5.991_465, 2.0), 0.05, 1e-6));
        assert!(close(chi_square_sf(10.827_566, 1.0), 0.001, 1e-6));
        assert!(close(chi_square_sf(0.0, 3.0), 1.0, 1e-12));
    }

    #[test]
    fn srm_flags_a_skewed_split_only() {
        // 5,000 vs 5,100 on 50/50: χ² = 0.990, p = 0.32.
        let p = srm_p_value(&[5_000, 5_100], &[0.5, 0.5]).unwrap();
        assert!(close(p, 0.3197, 1e-3), "{p}");
        // 5,000 vs 5,400: χ² = 15.38, p ≈ 8.8e-5.
        assert!(srm_p_value(&[5_000, 5_400], &[0.5, 0.5]).unwrap() < SRM_ALPHA);
    }

    /// `n` profiles per variation (`counts[v]`), first exposed at `at`.
    fn exposed(counts: &[u64], at: Millis) -> Vec<ProfileOutcome> {
        counts
            .iter()
            .enumerate()
            .flat_map(|(variation, n)| {
                (0..*n).map(move |_| ProfileOutcome {
                    variation,
                    first_exposed_at: at,
                    ..ProfileOutcome::default()
                })
            })
            .collect()
    }

    fn epochs(list: &[(Millis, [f64; 2])]) -> Vec<WeightEpoch> {
        list.iter()
            .map(|(from, w)| WeightEpoch {
                from: *from,
                weights: w.to_vec(),
            })
            .collect()
    }

    #[test]
    fn a_weight_change_inside_a_phase_is_no_sample_ratio_mismatch() {
        // 50/50 for the first 1,000 profiles, then 10/90 for the next 1,000: sticky bucketing
        // keeps the first ones where they are.
        let mut outcomes = exposed(&[498, 502], 1_000);
        outcomes.extend(exposed(&[104, 896], 20_000));
        let change = epochs(&[(0, [0.5, 0.5]), (10_000, [0.1, 0.9])]);
        // All exposures against today's weights: a false alarm (602 vs 1,398 on 10/90).
        let naive = analyse(&outcomes, &[0.1, 0.9], &[], 0);
        assert!(naive.srm_flagged, "{:?}", naive.srm_p_value);
        // Per epoch: each epoch's newcomers match its weights.
        let a = analyse(&outcomes, &[0.1, 0.9], &change, 1_000);
        assert!(!a.srm_flagged, "{:?}", a.srm_epochs);
        assert_eq!(a.srm_epochs[0].profiles, vec![498, 502]);
        assert_eq!(a.srm_epochs[1].profiles, vec![104, 896]);
        assert!(
            a.srm_epochs
                .iter()
                .all(|e| e.p_value.is_some_and(|p| p > 0.1))
        );
        // Σχ²: (0.016 + 0.178) on 2 df.
        let (x0, _) = srm_chi_square(&[498, 502], &[0.5, 0.5]).unwrap();
        let (x1, _) = srm_chi_square(&[104, 896], &[0.1, 0.9]).unwrap();
        assert!(close(
            a.srm_p_value.unwrap(),
            chi_square_sf(x0 + x1, 2.0),
            1e-12
        ));
    }

    #[test]
    fn a_skew_inside_one_epoch_is_flagged() {
        // The first epoch is fine; after the change to 10/90 one variation loses a third of
        // its newcomers (200 where 300 are due on 30/70).
        let mut outcomes = exposed(&[500, 500], 1_000);
        outcomes.extend(exposed(&[200, 700], 20_000));
        let change = epochs(&[(0, [0.5, 0.5]), (10_000, [0.3, 0.7])]);
        let a = analyse(&outcomes, &[0.3, 0.7], &change, 1_000);
        assert!(a.srm_flagged, "{:?}", a.srm_epochs);
        assert!(a.srm_epochs[0].p_value.unwrap() > 0.5);
        assert!(a.srm_epochs[1].p_value.unwrap() < SRM_ALPHA);
        // Newcomers in a variation of weight 0 are a certain mismatch.
        let mut outcomes = exposed(&[500, 500], 1_000);
        outcomes.extend(exposed(&[3, 400], 20_000));
        let off = epochs(&[(0, [0.5, 0.5]), (10_000, [0.0, 1.0])]);
        let a = analyse(&outcomes, &[0.0, 1.0], &off, 1_000);
        assert!(a.srm_flagged && a.srm_epochs[1].p_value == Some(0.0));
    }

    #[test]
    fn epochs_settle_and_need_traffic() {
        // Profiles first exposed within the settling time after a change may have been
        // assigned by the old weights on a replica that had not followed yet: left out.
        let mut outcomes = exposed(&[500, 500], 1_000);
        outcomes.extend(exposed(&[50, 50], 10_500));
        outcomes.extend(exposed(&[100, 900], 20_000));
        let change = epochs(&[(0, [0.5, 0.5]), (10_000, [0.1, 0.9])]);
        let a = analyse(&outcomes, &[0.1, 0.9], &change, 1_000);
        assert_eq!(a.srm_epochs[1].profiles, vec![100, 900]);
        assert!(!a.srm_flagged);
        // An epoch too small to test (4 expected in the 10% variation) is not tested, and
        // does not count.
        let outcomes = exposed(&[0, 40], 20_000);
        let a = analyse(&outcomes, &[0.1, 0.9], &change, 1_000);
        assert_eq!(a.srm_epochs[1].p_value, None);
        assert_eq!(a.srm_p_value, None);
    }

    #[test]
    fn proportion_lift_matches_hand_computation() {
        // 100/1000 vs 130/1000: lift 30%; z = 0.03 / sqrt(.09/1000 + .1131/1000) = 2.1047.
        let l = lift(
            proportion(100, 1000).unwrap(),
            proportion(130, 1000).unwrap(),
        )
        .unwrap();
        assert!(close(l.relative, 0.30, 1e-9));
        assert!(close(l.p_value, 0.0353, 5e-4), "{l:?}");
        // CI on the log ratio: se = sqrt(.9/100 + .87/130) = 0.12529.
        assert!(
            close(l.ci_low, (0.262_364 - Z95 * 0.125_29).exp() - 1.0, 1e-4),
            "{l:?}"
        );
        assert!(l.ci_low > 0.0 && l.ci_high > l.relative);
    }

    #[test]
    fn sequential_p_is_never_below_the_fixed_horizon_one_for_small_effects() {
        // No effect: Λ < 1, p = 1.
        assert_eq!(always_valid_p(0.0, 1e-4, 1e-4), 1.0);
        // 100/1000 vs 130/1000 (fixed-horizon p = 0.035) is not sequentially significant.
        let l = lift(
            proportion(100, 1000).unwrap(),
            proportion(130, 1000).unwrap(),
        )
        .unwrap();
        assert!(
            l.significant() && !l.significant_sequential() && l.peeking(),
            "{l:?}"
        );
        // Ten times the data: both agree.
        let l = lift(
            proportion(1000, 10_000).unwrap(),
            proportion(1300, 10_000).unwrap(),
        )
        .unwrap();
        assert!(l.always_valid_p < 1e-6, "{l:?}");
        // Hand computation: V = τ² = 1e-4, diff = 0.05 → log Λ = ½ln½ + 0.25e-6/(4e-8) = 5.903.
        let p = always_valid_p(0.05, 1e-4, 1e-4);
        assert!(close(p, (-(0.5f64.ln() / 2.0 + 6.25)).exp(), 1e-12), "{p}");
    }

    #[test]
    fn sample_size_matches_the_textbook_formula() {
        // 10% → 11%: (1.96 + 0.8416)² (0.09 + 0.0979) / 0.0001 = 14,740 (rounded up).
        let n = sample_size_per_variation(0.10, 0.10).unwrap();
        assert!((14_730..=14_760).contains(&n), "{n}");
        assert_eq!(sample_size_per_variation(0.0, 0.1), None);
    }

    #[test]
    fn ratio_variance_matches_the_delta_method() {
        // x = impressions, y = plays for three profiles.
        let r = ratio_estimate(&[(10.0, 1.0), (20.0, 4.0), (30.0, 4.0)]).unwrap();
        assert!(close(r.ratio, 9.0 / 60.0, 1e-12));
        // mx=20, vx=100, vy=3, cxy=15; var = (3 - 2·.15·15 + .0225·100) / (3·400) = 0.000625.
        assert!(close(r.variance, 0.000_625, 1e-12), "{r:?}");
    }
}
