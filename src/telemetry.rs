//! Metrics: the one place that names every metric family Marquee exports, installs the
//! Prometheus recorder (`metrics` + `metrics-exporter-prometheus`) and renders `/metrics`.
//!
//! Recording is cheap by construction: the handles of fixed series are registered once
//! (`PageMetrics`), so recording a stage is one atomic bucket update — no registry lookup and
//! no string formatting on the request path. Series labelled by a row definition id are
//! looked up in a small read-mostly map (the ids come from `rows/*.toml`, so the label set is
//! bounded). Without an installed recorder (in-process tools, unit tests) every handle is a
//! no-op.
//!
//! Invariant: a `_total` family only ever goes up. Counters kept elsewhere (the impression
//! log's atomics) are exported with `Counter::absolute` from values that are themselves
//! monotonic; levels that go down (the impression backlog) are gauges.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, OnceLock, RwLock};
use std::time::Duration;

use metrics::{Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram};
use metrics::{gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds, 10 µs to 10 s: page stages take microseconds, whole requests
/// milliseconds, and an impression batch under an outage seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// GraphQL requests by operation (`query home`, `mutation recordEvents`; see
/// `api::metrics`) and outcome (`ok`, `error`): the time from the request body to the
/// executed response, before JSON encoding.
pub const GRAPHQL_DURATION: &str = "marquee_graphql_request_duration_seconds";
/// Where a home page's time goes, by `stage`; see `Stage`.
pub const PAGE_STAGE_DURATION: &str = "marquee_page_stage_duration_seconds";
/// Time in each row definition's candidate source, by `row` (the definition id).
pub const PAGE_SOURCE_DURATION: &str = "marquee_page_source_duration_seconds";
/// Home pages served (each also counted in the stage histograms).
pub const PAGES_TOTAL: &str = "marquee_pages_total";
/// Home queries answered by their compiled plan, written straight to JSON instead of by the
/// executor (`api::graphql::direct`); `rate(this) / rate(marquee_pages_total)` is the share.
pub const DIRECT_ANSWERS_TOTAL: &str = "marquee_graphql_direct_answers_total";
/// One impression-log batch transaction (exposures, page views, impressions, outcomes).
pub const IMPRESSION_BATCH_DURATION: &str = "marquee_impression_batch_write_duration_seconds";
/// Cache lookups by `cache` and `outcome` (`hit`, `miss`): the hit ratio is
/// `rate(hit) / rate(hit + miss)`. Reserved for the serving caches (issue 12); `cache_lookup`
/// records one.
pub const CACHE_LOOKUPS_TOTAL: &str = "marquee_cache_lookups_total";

/// Segment list lookups (lists shared by every profile of an audience: `engine::segments`) by
/// `list` (`new-releases`, `genre`) and `outcome`: `near` (this replica's near cache),
/// `shared` (Redis, or the in-process list cache in the embedded default), `miss` (computed
/// by the page, then kept), `error` (the shared cache did not answer; computed).
pub const SEGMENT_LOOKUPS_TOTAL: &str = "marquee_segment_lookups_total";

/// The sample-ratio-mismatch check of each running experiment, by `experiment` (keys of the
/// console's experiments: a bounded set): the chi-square p-value of exposed profiles against
/// the weights, and 1 when it is below `stats::SRM_ALPHA` (assignment is broken).
pub const EXPERIMENT_SRM_P_VALUE: &str = "marquee_experiment_srm_p_value";
pub const EXPERIMENT_SRM_FLAGGED: &str = "marquee_experiment_srm_flagged";

/// The stages of a home page, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The profile and its watch state from the store (`AppState::viewer`).
    ProfileRead,
    /// GrowthBook evaluation of every feature for the request (`experiments::page_variant`).
    Experiments,
    /// All candidate sources of the page together (each one alone: `PAGE_SOURCE_DURATION`).
    /// Sources consult the policy filters (`eligible`) while they fill their pools; that time
    /// is here.
    Sources,
    /// The policy filters applied to every candidate a source returned.
    Filters,
    /// Dedupe against the rows above and within the row.
    Dedupe,
    /// The diversity rerank (MMR).
    Rerank,
    /// The whole assembly in the engine (sources + filters + dedupe + rerank + bookkeeping).
    Assemble,
    /// Building the impression record and handing it to the impression log's queue (the
    /// database write itself happens off the request path: `IMPRESSION_BATCH_DURATION`).
    ImpressionEnqueue,
    /// The whole `AppState::home_page`, from profile read to enqueued impressions.
    Page,
    /// Encoding the GraphQL response to JSON (every GraphQL request, not only `home`; a home
    /// page answered directly, `api::graphql::direct`, is timed while it is written, which
    /// is then within the request's `GRAPHQL_DURATION`).
    Serialization,
}

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::ProfileRead,
        Stage::Experiments,
        Stage::Sources,
        Stage::Filters,
        Stage::Dedupe,
        Stage::Rerank,
        Stage::Assemble,
        Stage::ImpressionEnqueue,
        Stage::Page,
        Stage::Serialization,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Stage::ProfileRead => "profile_read",
            Stage::Experiments => "experiments",
            Stage::Sources => "sources",
            Stage::Filters => "filters",
            Stage::Dedupe => "dedupe",
            Stage::Rerank => "rerank",
            Stage::Assemble => "assemble",
            Stage::ImpressionEnqueue => "impression_enqueue",
            Stage::Page => "page",
            Stage::Serialization => "serialization",
        }
    }
}

/// Handles of the page series, registered once.
struct PageMetrics {
    stages: [Histogram; Stage::ALL.len()],
    /// Row definition id → its source's histogram.
    sources: RwLock<HashMap<String, Histogram>>,
    pages: metrics::Counter,
}

static PAGE: LazyLock<PageMetrics> = LazyLock::new(|| PageMetrics {
    stages: Stage::ALL.map(|s| histogram!(PAGE_STAGE_DURATION, "stage" => s.label())),
    sources: RwLock::new(HashMap::new()),
    pages: counter!(PAGES_TOTAL),
});

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls do nothing). Call it
/// before serving: handles taken before it stay no-ops.
pub fn install() -> anyhow::Result<()> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .install_recorder()?;
    let _ = HANDLE.set(handle);
    describe();
    LazyLock::force(&PAGE);
    LazyLock::force(&SERVING);
    LazyLock::force(&SEGMENTS);
    Ok(())
}

/// Whether `install` ran: the exporter then keeps histograms, which need periodic upkeep.
pub fn upkeep() {
    if let Some(h) = HANDLE.get() {
        h.run_upkeep();
    }
}

fn describe() {
    describe_histogram!(
        GRAPHQL_DURATION,
        Unit::Seconds,
        "GraphQL requests by operation (type and root fields) and outcome, before JSON encoding."
    );
    describe_histogram!(
        PAGE_STAGE_DURATION,
        Unit::Seconds,
        "Home page time by stage: profile_read, experiments, sources, filters, dedupe, rerank, assemble, impression_enqueue, page (all of it), serialization."
    );
    describe_histogram!(
        PAGE_SOURCE_DURATION,
        Unit::Seconds,
        "Time in each row definition's candidate source, by row."
    );
    describe_counter!(PAGES_TOTAL, "Home pages served.");
    describe_counter!(
        DIRECT_ANSWERS_TOTAL,
        "Home queries answered by their compiled plan, without the GraphQL executor."
    );
    describe_gauge!(
        DEPENDENCY_UP,
        "1 while a serving dependency (redis, nats, database) answered its last request, 0 after a failure."
    );
    describe_counter!(
        DEGRADED_PAGES_TOTAL,
        "Home pages served degraded (a fallback), by the dependency skipped."
    );
    describe_counter!(
        OUTBOX_PUBLISHED_TOTAL,
        "Accepted events the event stream confirmed."
    );
    describe_counter!(
        OUTBOX_PUBLISH_FAILURES_TOTAL,
        "Outbox relay rounds stopped by a failure of the stream or the database (events wait)."
    );
    describe_gauge!(
        EXPERIMENT_SRM_P_VALUE,
        "Sample ratio check of a running experiment: chi-square p-value of exposed profiles against the weights."
    );
    describe_gauge!(
        EXPERIMENT_SRM_FLAGGED,
        "1 when a running experiment's sample ratio mismatches its weights (p < 0.001): its results are not trustworthy."
    );
    describe_histogram!(
        IMPRESSION_BATCH_DURATION,
        Unit::Seconds,
        "One impression-log batch transaction, successful or not."
    );
    describe_counter!(
        CACHE_LOOKUPS_TOTAL,
        "Cache lookups by cache and outcome (hit, miss)."
    );
    describe_counter!(
        SEGMENT_LOOKUPS_TOTAL,
        "Segment list lookups (shared by an audience) by list and outcome (near, shared, miss, error)."
    );
    describe_counter!(
        "marquee_impressions_queued_total",
        "Row items handed to the impression log."
    );
    describe_counter!(
        "marquee_impressions_written_total",
        "Row items written to the database."
    );
    describe_counter!(
        "marquee_impressions_dropped_total",
        "Row items not logged (queue full, a batch failing with a defect, or the database down through shutdown)."
    );
    describe_counter!(
        "marquee_impressions_write_failures_total",
        "Failed attempts to write a batch of impressions (retried)."
    );
    describe_gauge!(
        "marquee_impressions_backlog",
        "Row items queued and not yet written (queued - written - given up)."
    );
    describe_gauge!(
        "marquee_model_info",
        "The active model version (label version), 1 for the active one."
    );
    describe_gauge!(
        "marquee_model_trained_at_seconds",
        "When the active model was trained (Unix seconds)."
    );
    describe_gauge!("marquee_catalog_titles", "Titles in the served catalogue.");
    describe_counter!(
        CONNECTIONS_REFUSED_TOTAL,
        "Connections closed on accept because the connection cap was reached."
    );
    describe_counter!(
        HEADER_TIMEOUTS_TOTAL,
        "Connections closed because a request's headers did not arrive within the header read timeout."
    );
}

const CONNECTIONS_REFUSED_TOTAL: &str = "marquee_connections_refused_total";
const HEADER_TIMEOUTS_TOTAL: &str = "marquee_header_read_timeouts_total";

/// Counts a connection closed at the connection cap.
pub fn connection_refused() {
    counter!(CONNECTIONS_REFUSED_TOTAL).increment(1);
}

/// Counts a connection closed by the header read timeout.
pub fn header_timeout() {
    counter!(HEADER_TIMEOUTS_TOTAL).increment(1);
}

/// Records one stage of one home page.
pub fn record_stage(stage: Stage, took: Duration) {
    PAGE.stages[stage as usize].record(took);
}

/// Counts a served page.
/// The latest sample ratio check of `experiment` (a console experiment key).
pub fn record_srm(experiment: &str, p_value: Option<f64>, flagged: bool) {
    if let Some(p) = p_value {
        gauge!(EXPERIMENT_SRM_P_VALUE, "experiment" => experiment.to_owned()).set(p);
    }
    gauge!(EXPERIMENT_SRM_FLAGGED, "experiment" => experiment.to_owned()).set(if flagged {
        1.0
    } else {
        0.0
    });
}

pub fn count_page() {
    PAGE.pages.increment(1);
}

/// Records the time of row definition `row`'s source.
pub fn record_source(row: &str, took: Duration) {
    labelled(
        &PAGE.sources,
        row,
        || histogram!(PAGE_SOURCE_DURATION, "row" => row.to_owned()),
    )
    .record(took);
}

/// The handle of a labelled series from `map`, registered on first use: after that, one
/// read-locked lookup and no allocation.
fn labelled(
    map: &RwLock<HashMap<String, Histogram>>,
    key: &str,
    register: impl FnOnce() -> Histogram,
) -> Histogram {
    if let Ok(m) = map.read()
        && let Some(h) = m.get(key)
    {
        return h.clone();
    }
    let h = register();
    if let Ok(mut m) = map.write() {
        m.insert(key.to_owned(), h.clone());
    }
    h
}

/// Records one cache lookup (`cache` is a fixed name such as `top_picks`).
pub fn cache_lookup(cache: &'static str, hit: bool) {
    counter!(CACHE_LOOKUPS_TOTAL, "cache" => cache, "outcome" => if hit { "hit" } else { "miss" })
        .increment(1);
}

/// Where a segment list lookup was answered (`SEGMENT_LOOKUPS_TOTAL`'s `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentOutcome {
    Near,
    Shared,
    Miss,
    Error,
}

impl SegmentOutcome {
    const ALL: [SegmentOutcome; 4] = [
        SegmentOutcome::Near,
        SegmentOutcome::Shared,
        SegmentOutcome::Miss,
        SegmentOutcome::Error,
    ];

    fn label(self) -> &'static str {
        match self {
            SegmentOutcome::Near => "near",
            SegmentOutcome::Shared => "shared",
            SegmentOutcome::Miss => "miss",
            SegmentOutcome::Error => "error",
        }
    }
}

/// `SEGMENT_LOOKUPS_TOTAL` by list kind × outcome, registered once.
static SEGMENTS: LazyLock<[[metrics::Counter; 4]; 2]> = LazyLock::new(|| {
    crate::engine::segments::SegmentKind::ALL.map(|kind| {
        SegmentOutcome::ALL.map(|outcome| {
            counter!(SEGMENT_LOOKUPS_TOTAL, "list" => kind.label(), "outcome" => outcome.label())
        })
    })
});

pub fn segment_lookup(kind: crate::engine::segments::SegmentKind, outcome: SegmentOutcome) {
    SEGMENTS[kind as usize][outcome as usize].increment(1);
}

/// A dependency of production serving, as the metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Redis,
    Nats,
    Database,
    /// The active model's artifact (unusable: a popularity fallback serves).
    Model,
}

impl Dependency {
    pub fn label(self) -> &'static str {
        match self {
            Dependency::Redis => "redis",
            Dependency::Nats => "nats",
            Dependency::Database => "database",
            Dependency::Model => "model",
        }
    }
}

/// Handles of the serving series (issue 12), registered once.
struct ServingMetrics {
    up: [metrics::Gauge; 4],
    degraded: [metrics::Counter; 4],
    published: metrics::Counter,
    publish_failures: metrics::Counter,
}

static SERVING: LazyLock<ServingMetrics> = LazyLock::new(|| {
    let deps = [
        Dependency::Redis,
        Dependency::Nats,
        Dependency::Database,
        Dependency::Model,
    ];
    ServingMetrics {
        up: deps.map(|d| gauge!(DEPENDENCY_UP, "dependency" => d.label())),
        degraded: deps.map(|d| counter!(DEGRADED_PAGES_TOTAL, "skipped" => d.label())),
        published: counter!(OUTBOX_PUBLISHED_TOTAL),
        publish_failures: counter!(OUTBOX_PUBLISH_FAILURES_TOTAL),
    }
});

/// `1` while the dependency answered its last request, `0` after a failure.
pub const DEPENDENCY_UP: &str = "marquee_dependency_up";
/// Pages served degraded, by the dependency skipped (`home { degraded }`).
pub const DEGRADED_PAGES_TOTAL: &str = "marquee_degraded_pages_total";
/// Outbox rows the stream confirmed.
pub const OUTBOX_PUBLISHED_TOTAL: &str = "marquee_outbox_published_total";
/// Relay rounds that stopped on a failure (the rows wait).
pub const OUTBOX_PUBLISH_FAILURES_TOTAL: &str = "marquee_outbox_publish_failures_total";

pub fn dependency_up(dependency: Dependency, up: bool) {
    SERVING.up[dependency as usize].set(if up { 1.0 } else { 0.0 });
}

pub fn degraded_page(skipped: Dependency) {
    SERVING.degraded[skipped as usize].increment(1);
}

pub fn outbox_published(n: u64) {
    SERVING.published.increment(n);
}

pub fn outbox_publish_failed() {
    SERVING.publish_failures.increment(1);
}

/// Records a GraphQL request (`operation` is bounded by the schema: see `api::metrics`).
pub fn record_graphql(operation: &str, ok: bool, took: Duration) {
    static BY_OUTCOME: LazyLock<[RwLock<HashMap<String, Histogram>>; 2]> =
        LazyLock::new(|| [RwLock::default(), RwLock::default()]);
    let outcome = if ok { "ok" } else { "error" };
    labelled(
        &BY_OUTCOME[usize::from(ok)],
        operation,
        || histogram!(GRAPHQL_DURATION, "operation" => operation.to_owned(), "outcome" => outcome),
    )
    .record(took);
}

/// Counts a home query answered by its compiled plan (`DIRECT_ANSWERS_TOTAL`).
pub fn record_direct_answer() {
    static DIRECT: LazyLock<metrics::Counter> = LazyLock::new(|| counter!(DIRECT_ANSWERS_TOTAL));
    DIRECT.increment(1);
}

/// Records an impression batch write.
pub fn record_impression_batch(took: Duration) {
    histogram!(IMPRESSION_BATCH_DURATION).record(took);
}

/// The impression log's counters, read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImpressionCounters {
    pub queued: u64,
    pub written: u64,
    pub dropped: u64,
    pub write_failures: u64,
    pub backlog: u64,
}

/// What the server is serving, read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Serving {
    pub model_version: String,
    /// Unix milliseconds.
    pub model_trained_at: i64,
    pub catalog_titles: usize,
}

/// The model version last exported, so that a swap zeroes the old series.
static LAST_MODEL: RwLock<Option<String>> = RwLock::new(None);

/// The `/metrics` body: everything the recorder holds, with the scrape-time values set first,
/// then the process collector.
pub fn render(impressions: ImpressionCounters, serving: &Serving) -> String {
    counter!("marquee_impressions_queued_total").absolute(impressions.queued);
    counter!("marquee_impressions_written_total").absolute(impressions.written);
    counter!("marquee_impressions_dropped_total").absolute(impressions.dropped);
    counter!("marquee_impressions_write_failures_total").absolute(impressions.write_failures);
    gauge!("marquee_impressions_backlog").set(impressions.backlog as f64);
    if let Ok(mut last) = LAST_MODEL.write()
        && last.as_deref() != Some(serving.model_version.as_str())
    {
        if let Some(old) = last.take() {
            gauge!("marquee_model_info", "version" => old).set(0.0);
        }
        gauge!("marquee_model_info", "version" => serving.model_version.clone()).set(1.0);
        *last = Some(serving.model_version.clone());
    }
    gauge!("marquee_model_trained_at_seconds").set(serving.model_trained_at as f64 / 1000.0);
    gauge!("marquee_catalog_titles").set(serving.catalog_titles as f64);
    let mut out = HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    process_metrics(&mut out);
    out
}

/// The standard process collector (`process_*`, as Prometheus' own client libraries name
/// them), read from `/proc/self` at scrape time; nothing on Linux-less systems.
fn process_metrics(out: &mut String) {
    let Some(p) = ProcessStat::read() else {
        return;
    };
    let mut family = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    family(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        p.cpu_seconds,
    );
    family(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        p.resident_bytes as f64,
    );
    family(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        p.virtual_bytes as f64,
    );
    family(
        "process_threads",
        "gauge",
        "Number of OS threads in the process.",
        p.threads as f64,
    );
    if let Some(start) = p.start_time_seconds {
        family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            start,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        family(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds.count() as f64,
        );
    }
}

/// The kernel's clock tick for `/proc` times: USER_HZ, fixed at 100 in Linux's user ABI.
const TICKS_PER_SECOND: f64 = 100.0;
const PAGE_BYTES: u64 = 4096;

/// What `/proc/self/stat` says about this process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStat {
    /// utime + stime, in seconds (10 ms resolution).
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub threads: u64,
    pub start_time_seconds: Option<f64>,
}

impl ProcessStat {
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
        Self::parse(&stat, boot)
    }

    /// Parses a `/proc/<pid>/stat` line; `boot` is `/proc/stat`'s `btime`.
    pub fn parse(stat: &str, boot: Option<f64>) -> Option<Self> {
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state): field n is f[n - 3].
        let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        let ticks = num(14)? + num(15)?;
        Some(Self {
            cpu_seconds: ticks as f64 / TICKS_PER_SECOND,
            threads: num(20)?,
            start_time_seconds: boot
                .zip(num(22))
                .map(|(b, s)| b + s as f64 / TICKS_PER_SECOND),
            virtual_bytes: num(23)?,
            resident_bytes: num(24)? * PAGE_BYTES,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_a_tricky_command_name() {
        let line = "4242 (mar quee) (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 7 0 1000 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let p = ProcessStat::parse(line, Some(1_700_000_000.0)).unwrap();
        assert_eq!(p.cpu_seconds, 3.25);
        assert_eq!(p.threads, 7);
        assert_eq!(p.virtual_bytes, 123_456_789);
        assert_eq!(p.resident_bytes, 2048 * 4096);
        assert_eq!(p.start_time_seconds, Some(1_700_000_010.0));
        assert!(ProcessStat::parse("garbage", None).is_none());
    }

    #[test]
    fn this_process_has_cpu_and_memory() {
        let p = ProcessStat::read().expect("/proc/self/stat");
        assert!(p.resident_bytes > 0 && p.threads >= 1);
    }

    #[test]
    fn stage_labels_are_distinct_and_indexed_in_order() {
        for (i, s) in Stage::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
        let mut labels: Vec<_> = Stage::ALL.iter().map(|s| s.label()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), Stage::ALL.len());
    }
}
