//! Results: per-round samples, per-wiring summaries (median, min, max), ratios, the
//! table on stdout and the JSON document (docs/bench.md).

use std::fmt::Write as _;

use super::{
    iperf::{TcpResult, UdpResult},
    pingpong::Rtt,
    plan::Wiring,
    stats::Summary,
};

/// Version of the JSON document's layout.
pub const SCHEMA: &str = "vethscope-bench/1";

/// Everything measured on one lab in one round.
#[derive(Clone, Debug, Default, serde::Serialize, schemars::JsonSchema)]
pub struct Sample {
    pub round: u32,
    /// Why this round's measurement stopped early (the fields before it may be set).
    pub error: Option<String>,
    pub tcp_1: Option<TcpResult>,
    pub tcp_n: Option<TcpResult>,
    pub rtt_udp: Option<Rtt>,
    pub rtt_tcp: Option<Rtt>,
    pub udp: Option<UdpResult>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct RttSummary {
    pub p50_us: Summary,
    pub p90_us: Summary,
    pub p99_us: Summary,
}

impl RttSummary {
    fn of<'a>(rtts: impl Iterator<Item = &'a Rtt> + Clone) -> Option<Self> {
        let pick = |f: fn(&Rtt) -> f64| Summary::of(&rtts.clone().map(f).collect::<Vec<_>>());
        Some(RttSummary {
            p50_us: pick(|r| r.p50_us)?,
            p90_us: pick(|r| r.p90_us)?,
            p99_us: pick(|r| r.p99_us)?,
        })
    }
}

/// Summaries over the rounds; `null` in JSON where nothing was measured.
#[derive(Clone, Debug, Default, serde::Serialize, schemars::JsonSchema)]
pub struct Measures {
    pub tcp_1_gbps: Option<Summary>,
    pub tcp_n_gbps: Option<Summary>,
    /// Whole-machine CPU use during the 1-stream run, % of all CPUs.
    pub cpu_percent_1: Option<Summary>,
    pub cpu_percent_n: Option<Summary>,
    /// CPU % per Gbit/s, per round, then summarised.
    pub cpu_percent_per_gbps_1: Option<Summary>,
    pub cpu_percent_per_gbps_n: Option<Summary>,
    pub retransmits_1: Option<Summary>,
    pub rtt_udp_us: Option<RttSummary>,
    pub rtt_tcp_us: Option<RttSummary>,
    pub udp_received_pps: Option<Summary>,
    pub udp_loss_percent: Option<Summary>,
}

impl Measures {
    pub fn of(samples: &[Sample]) -> Self {
        let col = |f: &dyn Fn(&Sample) -> Option<f64>| {
            Summary::of(&samples.iter().filter_map(f).collect::<Vec<_>>())
        };
        let per_gbps = |t: &Option<TcpResult>| {
            t.as_ref()
                .and_then(|t| Some(t.cpu_percent? / t.gbps).filter(|v| v.is_finite()))
        };
        Measures {
            tcp_1_gbps: col(&|s| s.tcp_1.as_ref().map(|t| t.gbps)),
            tcp_n_gbps: col(&|s| s.tcp_n.as_ref().map(|t| t.gbps)),
            cpu_percent_1: col(&|s| s.tcp_1.as_ref().and_then(|t| t.cpu_percent)),
            cpu_percent_n: col(&|s| s.tcp_n.as_ref().and_then(|t| t.cpu_percent)),
            cpu_percent_per_gbps_1: col(&|s| per_gbps(&s.tcp_1)),
            cpu_percent_per_gbps_n: col(&|s| per_gbps(&s.tcp_n)),
            retransmits_1: col(&|s| {
                s.tcp_1
                    .as_ref()
                    .and_then(|t| t.retransmits.map(|r| r as f64))
            }),
            rtt_udp_us: RttSummary::of(samples.iter().filter_map(|s| s.rtt_udp.as_ref())),
            rtt_tcp_us: RttSummary::of(samples.iter().filter_map(|s| s.rtt_tcp.as_ref())),
            udp_received_pps: col(&|s| s.udp.as_ref().map(|u| u.received_pps)),
            udp_loss_percent: col(&|s| s.udp.as_ref().map(|u| u.loss_percent)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every round measured everything.
    Ok,
    /// Some rounds or some measurements failed.
    Partial,
    /// No throughput number at all.
    Failed,
}

fn status_of(samples: &[Sample], headline: Option<&Summary>) -> (Status, Option<String>) {
    let error = samples.iter().find_map(|s| s.error.clone());
    let status = match (&error, headline) {
        (_, None) => Status::Failed,
        (None, Some(_)) => Status::Ok,
        (Some(_), Some(_)) => Status::Partial,
    };
    (status, error)
}

/// Median of a wiring divided by the median of `direct` (or of the bare variant).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Ratios {
    pub tcp_1: Option<f64>,
    pub tcp_n: Option<f64>,
}

impl Ratios {
    fn of(m: &Measures, base: &Measures) -> Self {
        let r = |a: &Option<Summary>, b: &Option<Summary>| match (a, b) {
            (Some(a), Some(b)) if b.median > 0.0 => Some(a.median / b.median),
            _ => None,
        };
        Ratios {
            tcp_1: r(&m.tcp_1_gbps, &base.tcp_1_gbps),
            tcp_n: r(&m.tcp_n_gbps, &base.tcp_n_gbps),
        }
    }
}

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct WiringResult {
    pub wiring: Wiring,
    pub scenario: &'static str,
    pub lab: String,
    pub fast_path: bool,
    pub status: Status,
    /// The first error of any round (every round's error is in `samples`).
    pub error: Option<String>,
    #[serde(flatten)]
    pub measures: Measures,
    /// `null` when `direct` was not measured (or failed).
    pub ratio_to_direct: Option<Ratios>,
    pub samples: Vec<Sample>,
}

impl WiringResult {
    pub fn new(wiring: Wiring, lab: String, samples: Vec<Sample>) -> Self {
        let measures = Measures::of(&samples);
        let (status, error) = status_of(&samples, measures.tcp_1_gbps.as_ref());
        WiringResult {
            wiring,
            scenario: wiring.scenario(),
            lab,
            fast_path: wiring.fast_path(),
            status,
            error,
            measures,
            ratio_to_direct: None,
            samples,
        }
    }
}

/// Fills `ratio_to_direct` of every result from the `direct` one.
pub fn add_ratios(results: &mut [WiringResult]) {
    let Some(direct) = results
        .iter()
        .find(|r| r.wiring == Wiring::Direct && r.measures.tcp_1_gbps.is_some())
        .map(|r| r.measures.clone())
    else {
        return;
    };
    for r in results.iter_mut() {
        r.ratio_to_direct = Some(Ratios::of(&r.measures, &direct));
    }
}

/// Tracing and counting cost on the bridge wiring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Nothing attached.
    Bare,
    /// `vethscope trace LAB --json` running (TC programs on every lab interface).
    Trace,
    /// `vethscope serve LAB` running (in-kernel counting).
    Count,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::Trace => "trace",
            Variant::Count => "count",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Variant::Bare => "nothing attached",
            Variant::Trace => "`vethscope trace LAB --json > /dev/null` running",
            Variant::Count => "`vethscope serve LAB` running (per-link counters)",
        }
    }
}

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct VariantResult {
    pub variant: Variant,
    pub description: &'static str,
    pub status: Status,
    /// Why this variant was not measured at all (e.g. `serve` not available).
    pub skipped: Option<String>,
    pub error: Option<String>,
    #[serde(flatten)]
    pub measures: Measures,
    pub ratio_to_bare: Option<Ratios>,
    pub samples: Vec<Sample>,
}

impl VariantResult {
    pub fn new(variant: Variant, samples: Vec<Sample>, skipped: Option<String>) -> Self {
        let measures = Measures::of(&samples);
        let (status, error) = status_of(&samples, measures.tcp_1_gbps.as_ref());
        VariantResult {
            variant,
            description: variant.description(),
            status,
            skipped,
            error,
            measures,
            ratio_to_bare: None,
            samples,
        }
    }
}

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct OverheadResult {
    pub wiring: Wiring,
    pub lab: String,
    /// Variant order alternates by round (bare, trace, count; then reversed).
    pub variants: Vec<VariantResult>,
}

impl OverheadResult {
    pub fn new(lab: String, mut variants: Vec<VariantResult>) -> Self {
        if let Some(bare) = variants
            .iter()
            .find(|v| v.variant == Variant::Bare && v.measures.tcp_1_gbps.is_some())
            .map(|v| v.measures.clone())
        {
            for v in &mut variants {
                v.ratio_to_bare = Some(Ratios::of(&v.measures, &bare));
            }
        }
        OverheadResult {
            wiring: Wiring::Bridge,
            lab,
            variants,
        }
    }
}

/// Where and when the bench ran.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Environment {
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: String,
    pub started_unix: u64,
    pub kernel: String,
    pub hostname: String,
    pub cpus: usize,
    pub iperf3: String,
    pub vethscope: &'static str,
    /// 1-minute load average when the bench started.
    pub load_average: Option<f64>,
    /// Whole-machine CPU use during one second before the bench: other load that
    /// makes the numbers noisy.
    pub baseline_cpu_percent: Option<f64>,
}

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ReportConfig {
    #[serde(flatten)]
    pub bench: super::BenchConfig,
    /// iperf3 `-t` (whole seconds).
    pub iperf_seconds: u64,
    #[schemars(extend("const" = "interleaved"))]
    pub order: &'static str,
    #[serde(flatten)]
    pub environment: Environment,
}

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct BenchReport {
    #[schemars(extend("const" = SCHEMA))]
    pub schema: &'static str,
    pub config: ReportConfig,
    pub results: Vec<WiringResult>,
    pub overhead: Option<OverheadResult>,
}

impl BenchReport {
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

fn med(s: &Option<Summary>, prec: usize) -> String {
    s.as_ref()
        .map(|s| format!("{:.prec$}", s.median))
        .unwrap_or_else(|| "–".into())
}

fn med_range(s: &Option<Summary>, prec: usize) -> String {
    match s {
        Some(s) if s.samples.len() > 1 => {
            format!("{:.prec$} ({:.prec$}–{:.prec$})", s.median, s.min, s.max)
        }
        Some(s) => format!("{:.prec$}", s.median),
        None => "–".into(),
    }
}

fn ratio_pair(r: &Option<Ratios>) -> String {
    match r {
        Some(Ratios {
            tcp_1: Some(a),
            tcp_n: Some(b),
        }) => format!("{a:.2}/{b:.2}"),
        Some(Ratios {
            tcp_1: Some(a),
            tcp_n: None,
        }) => format!("{a:.2}"),
        _ => "–".into(),
    }
}

/// Renders rows as columns separated by two spaces: the first column left-aligned,
/// the others right-aligned. A row shorter than the header (a failure note) keeps its
/// first cell aligned and the rest as written.
fn columns(rows: &[Vec<String>]) -> String {
    let ncols = rows.first().map(Vec::len).unwrap_or(0);
    let mut widths = vec![0; ncols];
    for r in rows.iter().filter(|r| r.len() == ncols) {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    for r in rows.iter().filter(|r| r.len() != ncols) {
        if let (Some(w), Some(c)) = (widths.first_mut(), r.first()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i == 0 {
                let _ = write!(line, "{c:<w$}", w = widths.first().copied().unwrap_or(0));
            } else if r.len() != ncols {
                let _ = write!(line, "  {c}");
            } else {
                let _ = write!(line, "  {c:>w$}", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn short(e: &str) -> String {
    let e = e.lines().next().unwrap_or(e);
    if e.chars().count() > 110 {
        format!("{}…", e.chars().take(110).collect::<String>())
    } else {
        e.to_string()
    }
}

/// The table printed on stdout: one row per wiring, notes on partial results, how it
/// was measured, then the observers' overhead when it was measured.
pub fn table(r: &BenchReport) -> String {
    let udp = r.config.bench.udp;
    let mut rows = vec![table_head(r.config.bench.streams, udp)];
    rows.extend(r.results.iter().map(|w| wiring_row(w, udp)));
    let mut out = columns(&rows);
    for w in r.results.iter().filter(|w| w.status == Status::Partial) {
        let _ = writeln!(
            out,
            "  * {}: some rounds failed: {}",
            w.wiring,
            short(w.error.as_deref().unwrap_or(""))
        );
    }
    out.push_str(&how_measured(&r.config));
    if let Some(o) = &r.overhead {
        out.push('\n');
        out.push_str(&overhead_table(o));
    }
    out
}

fn table_head(streams: u32, udp: bool) -> Vec<String> {
    let mut head = vec![
        "wiring".to_string(),
        "Gbit/s 1 stream".into(),
        format!("Gbit/s {streams} streams"),
        "×direct 1/N".into(),
        "RTT p50 µs".into(),
        "RTT p99 µs".into(),
        "CPU %".into(),
        "CPU %/Gbit/s".into(),
    ];
    if udp {
        head.push("UDP kpps".into());
    }
    head
}

/// A wiring's row; a failed wiring gets its name and why (a short row).
fn wiring_row(w: &WiringResult, udp: bool) -> Vec<String> {
    if w.status == Status::Failed {
        return vec![
            w.wiring.to_string(),
            format!(
                "failed: {}",
                short(w.error.as_deref().unwrap_or("no result"))
            ),
        ];
    }
    let m = &w.measures;
    let rtt = |f: fn(&RttSummary) -> &Summary| {
        m.rtt_udp_us
            .as_ref()
            .map(|r| format!("{:.0}", f(r).median))
            .unwrap_or_else(|| "–".into())
    };
    let mut row = vec![
        if w.status == Status::Partial {
            format!("{}*", w.wiring)
        } else {
            w.wiring.to_string()
        },
        med_range(&m.tcp_1_gbps, 2),
        med_range(&m.tcp_n_gbps, 2),
        ratio_pair(&w.ratio_to_direct),
        rtt(|r| &r.p50_us),
        rtt(|r| &r.p99_us),
        med(&m.cpu_percent_1, 1),
        med(&m.cpu_percent_per_gbps_1, 2),
    ];
    if udp {
        row.push(
            m.udp_received_pps
                .as_ref()
                .map(|s| format!("{:.0}", s.median / 1000.0))
                .unwrap_or_else(|| "–".into()),
        );
    }
    row
}

/// The lines under the table: rounds, tools, the machine and how busy it was.
fn how_measured(c: &ReportConfig) -> String {
    format!(
        "Medians of {} round(s), (min–max) of throughput; TCP via iperf3, {} s per run, wirings interleaved.\n\
         RTT: UDP ping-pong of {}-byte messages, {} round trips{}. CPU: whole machine ({} CPUs, 100 % = all busy) during the 1-stream run.\n\
         Linux {} — {}; before the start: {} % CPU busy, load {}\n",
        c.bench.rounds,
        c.iperf_seconds,
        c.bench.message_bytes,
        c.bench.round_trips,
        c.bench
            .latency_cpu
            .map(|n| format!(", both ends on CPU {n}"))
            .unwrap_or_default(),
        c.environment.cpus,
        c.environment.kernel,
        c.environment.date,
        c.environment
            .baseline_cpu_percent
            .map(|v| format!("{v:.0}"))
            .unwrap_or_else(|| "?".into()),
        c.environment
            .load_average
            .map(|v| format!("{v:.2}"))
            .unwrap_or_else(|| "?".into()),
    )
}

fn overhead_table(o: &OverheadResult) -> String {
    let mut rows = vec![vec![
        "variant".to_string(),
        "Gbit/s 1 stream".into(),
        "×bare".into(),
        "RTT p50 µs".into(),
        "RTT p99 µs".into(),
        "CPU %".into(),
        "CPU %/Gbit/s".into(),
    ]];
    for v in &o.variants {
        if let Some(why) = &v.skipped {
            rows.push(vec![
                v.variant.name().into(),
                format!("skipped: {}", short(why)),
            ]);
            continue;
        }
        if v.status == Status::Failed {
            rows.push(vec![
                v.variant.name().into(),
                format!(
                    "failed: {}",
                    short(v.error.as_deref().unwrap_or("no result"))
                ),
            ]);
            continue;
        }
        let m = &v.measures;
        let rtt = |f: fn(&RttSummary) -> &Summary| {
            m.rtt_udp_us
                .as_ref()
                .map(|r| format!("{:.0}", f(r).median))
                .unwrap_or_else(|| "–".into())
        };
        rows.push(vec![
            v.variant.name().into(),
            med_range(&m.tcp_1_gbps, 2),
            v.ratio_to_bare
                .as_ref()
                .and_then(|r| r.tcp_1)
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "–".into()),
            rtt(|r| &r.p50_us),
            rtt(|r| &r.p99_us),
            med(&m.cpu_percent_1, 1),
            med(&m.cpu_percent_per_gbps_1, 2),
        ]);
    }
    let body = columns(&rows);
    format!(
        "Overhead on the {} wiring (lab {}), 1 TCP stream, variants alternating each round:\n{body}",
        o.wiring, o.lab
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (UTC, proleptic Gregorian).
pub fn utc_date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_date(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_date(1_795_850_922), "2026-11-28T07:28:42Z");
    }

    fn tcp(gbps: f64, cpu: f64) -> TcpResult {
        TcpResult {
            gbps,
            retransmits: Some(0),
            cpu_percent: Some(cpu),
        }
    }

    #[test]
    fn status_ratios_and_cpu_per_gbps() {
        let ok = |round, g| Sample {
            round,
            tcp_1: Some(tcp(g, 50.0)),
            tcp_n: Some(tcp(2.0 * g, 100.0)),
            ..Default::default()
        };
        let direct = WiringResult::new(
            Wiring::Direct,
            "d".into(),
            vec![ok(1, 20.0), ok(2, 10.0), ok(3, 30.0)],
        );
        assert_eq!(direct.status, Status::Ok);
        let m = &direct.measures;
        assert_eq!(m.tcp_1_gbps.as_ref().map(|s| s.median), Some(20.0));
        assert_eq!(
            m.cpu_percent_per_gbps_1.as_ref().map(|s| s.median),
            Some(2.5)
        );
        let mut broken = ok(2, 10.0);
        broken.tcp_n = None;
        broken.error = Some("iperf3 exploded".into());
        let bridge = WiringResult::new(Wiring::Bridge, "b".into(), vec![ok(1, 10.0), broken]);
        assert_eq!(bridge.status, Status::Partial);
        let failed = WiringResult::new(
            Wiring::FastPath,
            "f".into(),
            vec![Sample {
                round: 1,
                error: Some("lab vsb-bridge: the fast path is not built yet".into()),
                ..Default::default()
            }],
        );
        assert_eq!(failed.status, Status::Failed);
        let mut all = vec![direct, bridge, failed];
        add_ratios(&mut all);
        assert_eq!(
            all[1].ratio_to_direct.as_ref().and_then(|r| r.tcp_1),
            Some(0.5)
        );
        assert_eq!(all[2].ratio_to_direct.as_ref().and_then(|r| r.tcp_1), None);
    }
}
