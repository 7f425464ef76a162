//! A self-contained SVG bar chart of a bench report, hand-written (no dependency):
//! throughput (top panel) and whole-machine CPU use (bottom panel) per wiring, one bar
//! per TCP run (1 stream, N streams) at the median, whiskers from min to max, value
//! labels, axes with gridlines, legend, and a title naming date, kernel and CPUs.
//!
//! Each wiring's bars sit in one `<g class="wiring" data-wiring="NAME">`; a failed
//! wiring's group holds a "failed" label whose tooltip is the error.

use std::fmt::Write as _;

use super::report::{BenchReport, Status, WiringResult};
use super::stats::Summary;

const SERIES: [(&str, &str); 2] = [("#4e79a7", "1 TCP stream"), ("#f28e2b", "TCP streams")];
const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const LEFT: f64 = 84.0;
const RIGHT: f64 = 24.0;

/// A "nice" axis top and tick step for values up to `max`: steps of 1, 2, 2.5 or 5
/// times a power of ten, about five ticks.
pub fn nice_scale(max: f64) -> (f64, f64) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 0.2);
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let pick = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|p| *p >= norm - 1e-9)
        .unwrap_or(10.0);
    let step = pick * mag;
    let top = ((max / step) - 1e-9).ceil().max(1.0) * step;
    (top, step)
}

/// A vertical value axis mapped onto pixels.
#[derive(Clone, Copy, Debug)]
pub struct Axis {
    /// Pixel row of the axis top (value `top`).
    pub y0: f64,
    pub height: f64,
    pub top: f64,
    pub step: f64,
}

impl Axis {
    pub fn new(y0: f64, height: f64, max: f64) -> Self {
        let (top, step) = nice_scale(max);
        Axis {
            y0,
            height,
            top,
            step,
        }
    }

    /// Pixel row of value `v` (clamped to the axis).
    pub fn y(&self, v: f64) -> f64 {
        let v = if v.is_finite() {
            v.clamp(0.0, self.top)
        } else {
            0.0
        };
        self.y0 + self.height * (1.0 - v / self.top)
    }

    pub fn bottom(&self) -> f64 {
        self.y0 + self.height
    }

    fn ticks(&self) -> Vec<f64> {
        let n = (self.top / self.step).round() as usize;
        (0..=n).map(|i| i as f64 * self.step).collect()
    }

    fn label(&self, v: f64) -> String {
        let decimals = if self.step >= 1.0 {
            0
        } else if self.step >= 0.1 {
            1
        } else {
            2
        };
        format!("{v:.decimals$}")
    }
}

/// Escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn max_of(results: &[WiringResult], f: impl Fn(&WiringResult) -> [Option<&Summary>; 2]) -> f64 {
    results
        .iter()
        .flat_map(|r| f(r).into_iter().flatten().map(|s| s.max.max(s.median)))
        .fold(0.0, f64::max)
}

struct Panel<'a> {
    axis: Axis,
    title: &'a str,
    unit: &'a str,
    decimals: usize,
}

/// The whole chart: a header, one group of bars per wiring in both panels, a footer.
pub fn render(report: &BenchReport) -> String {
    let results = &report.results;
    let n = results.len().max(1);
    let width = (LEFT + RIGHT + 120.0 * n as f64).max(760.0);
    let plot_w = width - LEFT - RIGHT;
    let slot = plot_w / n as f64;
    let height = 660.0;
    let streams = report.config.bench.streams;
    let [thr, cpu] = panels(results);

    let mut s = String::new();
    header(&mut s, report, width, height);
    legend(&mut s, width, streams);
    for p in [&thr, &cpu] {
        axes(&mut s, p, width);
    }
    for (i, r) in results.iter().enumerate() {
        let cx = LEFT + slot * (i as f64 + 0.5);
        wiring_group(&mut s, r, cx, slot, [&thr, &cpu], streams);
    }
    footer(&mut s, report, width, height, &cpu);
    s.push_str("</svg>\n");
    s
}

/// The two panels: throughput on top, CPU below, each scaled to its largest value.
fn panels(results: &[WiringResult]) -> [Panel<'static>; 2] {
    let thr = Panel {
        axis: Axis::new(108.0, 230.0, max_of(results, throughputs)),
        title: "Throughput (Gbit/s)",
        unit: "Gbit/s",
        decimals: 2,
    };
    let cpu = Panel {
        axis: Axis::new(410.0, 170.0, max_of(results, cpu_percents)),
        title: "CPU (% of all CPUs)",
        unit: "% CPU",
        decimals: 1,
    };
    [thr, cpu]
}

/// One stream and N streams: the two bars of a wiring in the throughput panel.
fn throughputs(r: &WiringResult) -> [Option<&Summary>; 2] {
    [
        r.measures.tcp_1_gbps.as_ref(),
        r.measures.tcp_n_gbps.as_ref(),
    ]
}

/// The two bars of a wiring in the CPU panel.
fn cpu_percents(r: &WiringResult) -> [Option<&Summary>; 2] {
    [
        r.measures.cpu_percent_1.as_ref(),
        r.measures.cpu_percent_n.as_ref(),
    ]
}

/// The `<svg>` element, its background, title and the subtitle saying how it was measured.
fn header(s: &mut String, report: &BenchReport, width: f64, height: f64) {
    let env = &report.config.environment;
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="{FONT}" font-size="12" role="img" aria-labelledby="chart-title">"##
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r##"<text id="chart-title" x="{:.1}" y="28" text-anchor="middle" font-size="17" font-weight="600" fill="#222">vethscope bench: throughput and CPU per wiring</text>"##,
        width / 2.0
    );
    let subtitle = format!(
        "{} · Linux {} · {} CPUs · iperf3 {} s per run, {} round(s) interleaved · bars: medians, whiskers: min–max",
        env.date.get(..10).unwrap_or(&env.date),
        env.kernel,
        env.cpus,
        report.config.iperf_seconds,
        report.config.bench.rounds,
    );
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="48" text-anchor="middle" font-size="12" fill="#555">{}</text>"##,
        width / 2.0,
        esc(&subtitle)
    );
}

/// A wiring's group: its name under each panel, then its bars, or why it has none.
fn wiring_group(
    s: &mut String,
    r: &WiringResult,
    cx: f64,
    slot: f64,
    [thr, cpu]: [&Panel<'_>; 2],
    streams: u32,
) {
    let name = r.wiring.name();
    let _ = writeln!(
        s,
        r##"<g class="wiring" data-wiring="{}" data-status="{}">"##,
        esc(name),
        match r.status {
            Status::Ok => "ok",
            Status::Partial => "partial",
            Status::Failed => "failed",
        }
    );
    for (p, values) in [(thr, throughputs(r)), (cpu, cpu_percents(r))] {
        let _ = writeln!(
            s,
            r##"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="12" fill="#222">{}</text>"##,
            p.axis.bottom() + 18.0,
            esc(name)
        );
        if values.iter().all(Option::is_none) {
            failed_slot(s, p, cx, slot, name, r.error.as_deref());
            continue;
        }
        if std::ptr::eq(p, thr)
            && let Some(ratio) = r.ratio_to_direct.as_ref().and_then(|x| x.tcp_1)
            && r.wiring != super::plan::Wiring::Direct
        {
            let _ = writeln!(
                s,
                r##"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#666">×{ratio:.2} vs direct</text>"##,
                p.axis.bottom() + 31.0
            );
        }
        let bar_w = (slot * 0.3).min(42.0);
        for (k, v) in values.iter().enumerate() {
            let Some(v) = v else { continue };
            let x = cx + if k == 0 { -bar_w - 2.0 } else { 2.0 };
            bar(s, p, x, bar_w, v, k, name, streams);
        }
    }
    let _ = writeln!(s, "</g>");
}

/// "failed" where a wiring's bars would be, with the reason wrapped under it (and in
/// full in a tooltip).
fn failed_slot(s: &mut String, p: &Panel<'_>, cx: f64, slot: f64, name: &str, error: Option<&str>) {
    let why = error.unwrap_or("no result");
    let _ = writeln!(
        s,
        r##"<text class="failed" x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="12" fill="#b22222">failed<title>{}</title></text>"##,
        p.axis.bottom() - 38.0,
        esc(&format!("{name}: {why}"))
    );
    let lines = wrap(reason(why), (slot / 5.8) as usize, 2);
    for (k, line) in lines.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#b22222">{}</text>"##,
            p.axis.bottom() - 10.0 - 12.0 * (lines.len() - 1 - k) as f64,
            esc(line)
        );
    }
}

/// The x-axis title under the CPU panel and the provenance line at the bottom.
fn footer(s: &mut String, report: &BenchReport, width: f64, height: f64, cpu: &Panel<'_>) {
    let env = &report.config.environment;
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" fill="#444">wiring</text>"##,
        LEFT + (width - LEFT - RIGHT) / 2.0,
        cpu.axis.bottom() + 42.0
    );
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#777">{}</text>"##,
        width - RIGHT,
        height - 12.0,
        esc(&format!(
            "vethscope {} · CPU from /proc/stat during each iperf3 run · {}{}",
            env.vethscope,
            env.date,
            env.baseline_cpu_percent
                .filter(|b| *b > 10.0)
                .map(|b| format!(" · machine {b:.0} % busy before the start: noisy"))
                .unwrap_or_default()
        ))
    );
}

/// The part of an error after the lab name ("lab X: the fast path is not built yet").
fn reason(e: &str) -> &str {
    let first = e.lines().next().unwrap_or(e);
    match first.strip_prefix("lab ").and_then(|r| r.split_once(": ")) {
        Some((_, rest)) => rest,
        None => first,
    }
}

/// Word-wraps `s` into at most `lines` lines of at most `width` characters; the last
/// line ends in "…" when text was cut.
fn wrap(s: &str, width: usize, lines: usize) -> Vec<String> {
    let width = width.max(8);
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in s.split_whitespace() {
        let need = cur.chars().count() + usize::from(!cur.is_empty()) + word.chars().count();
        if !cur.is_empty() && need > width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    let cut = out.len() > lines;
    out.truncate(lines.max(1));
    for l in out.iter_mut() {
        if l.chars().count() > width {
            *l = format!("{}…", l.chars().take(width - 1).collect::<String>());
        }
    }
    if cut && let Some(last) = out.last_mut() {
        let keep = width.saturating_sub(1).min(last.chars().count());
        *last = format!("{}…", last.chars().take(keep).collect::<String>());
    }
    out
}

fn legend(s: &mut String, width: f64, streams: u32) {
    let y = 72.0;
    let mut x = width - RIGHT - 400.0;
    for (k, (color, label)) in SERIES.iter().enumerate() {
        let label = if k == 1 {
            format!("{streams} {label}")
        } else {
            (*label).to_string()
        };
        let _ = writeln!(
            s,
            r##"<rect x="{x:.1}" y="{:.1}" width="14" height="14" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#222">{}</text>"##,
            y - 11.0,
            x + 20.0,
            y,
            esc(&label)
        );
        x += 130.0;
    }
    let _ = writeln!(
        s,
        r##"<path d="M{:.1} {:.1} V{:.1} M{:.1} {:.1} H{:.1} M{:.1} {:.1} H{:.1}" stroke="#333" stroke-width="1.2" fill="none"/><text x="{:.1}" y="{y:.1}" font-size="12" fill="#222">min–max over rounds</text>"##,
        x + 7.0,
        y - 12.0,
        y + 2.0,
        x + 3.0,
        y - 12.0,
        x + 11.0,
        x + 3.0,
        y + 2.0,
        x + 11.0,
        x + 20.0,
    );
}

fn axes(s: &mut String, p: &Panel, width: f64) {
    let a = &p.axis;
    for t in a.ticks() {
        let y = a.y(t);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="1"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11" fill="#444">{}</text>"##,
            width - RIGHT,
            if t == 0.0 { "#444" } else { "#e3e3e3" },
            LEFT - 6.0,
            y + 4.0,
            a.label(t)
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT:.1}" y1="{:.1}" x2="{LEFT:.1}" y2="{:.1}" stroke="#444" stroke-width="1"/>"##,
        a.y0,
        a.bottom()
    );
    let mid = a.y0 + a.height / 2.0;
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{mid:.1}" transform="rotate(-90 {:.1} {mid:.1})" text-anchor="middle" font-size="12" fill="#222">{}</text>"##,
        LEFT - 52.0,
        LEFT - 52.0,
        esc(p.title)
    );
}

#[allow(clippy::too_many_arguments)]
fn bar(
    s: &mut String,
    p: &Panel,
    x: f64,
    w: f64,
    v: &Summary,
    series: usize,
    name: &str,
    streams: u32,
) {
    let a = &p.axis;
    let (color, label) = SERIES[series.min(1)];
    let label = if series == 1 {
        format!("{streams} {label}")
    } else {
        label.to_string()
    };
    let top = a.y(v.median);
    let h = (a.bottom() - top).max(0.0);
    let d = p.decimals;
    let tip = format!(
        "{name}, {label}: {:.d$} {} (min {:.d$}, max {:.d$}, {} round(s))",
        v.median,
        p.unit,
        v.min,
        v.max,
        v.samples.len()
    );
    let _ = writeln!(
        s,
        r##"<rect class="bar" x="{x:.1}" y="{top:.1}" width="{w:.1}" height="{h:.1}" fill="{color}"><title>{}</title></rect>"##,
        esc(&tip)
    );
    let cx = x + w / 2.0;
    let (ymin, ymax) = (a.y(v.min), a.y(v.max));
    if v.samples.len() > 1 {
        let _ = writeln!(
            s,
            r##"<path class="whisker" d="M{cx:.1} {ymin:.1} V{ymax:.1} M{:.1} {ymin:.1} H{:.1} M{:.1} {ymax:.1} H{:.1}" stroke="#333" stroke-width="1.2" fill="none"/>"##,
            cx - 4.0,
            cx + 4.0,
            cx - 4.0,
            cx + 4.0
        );
    }
    let label_y = ymax.min(top) - 5.0;
    let shown = if v.median >= 100.0 {
        format!("{:.0}", v.median)
    } else if v.median >= 10.0 {
        format!("{:.1}", v.median)
    } else {
        format!("{:.2}", v.median)
    };
    let _ = writeln!(
        s,
        r##"<text x="{cx:.1}" y="{label_y:.1}" text-anchor="middle" font-size="10" fill="#333">{shown}</text>"##
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_scales() {
        assert_eq!(nice_scale(23.4), (25.0, 5.0));
        assert_eq!(nice_scale(100.0), (100.0, 20.0));
        assert_eq!(nice_scale(0.0), (1.0, 0.2));
        assert_eq!(nice_scale(f64::NAN), (1.0, 0.2));
        let (top, step) = nice_scale(0.7);
        assert!(
            (top - 0.8).abs() < 1e-9 && (step - 0.2).abs() < 1e-9,
            "{top} {step}"
        );
        let (top, step) = nice_scale(37.0);
        assert!(
            (top - 40.0).abs() < 1e-9 && (step - 10.0).abs() < 1e-9,
            "{top} {step}"
        );
    }

    #[test]
    fn axis_maps_values_to_pixels() {
        let a = Axis::new(100.0, 200.0, 23.4);
        assert_eq!(a.top, 25.0);
        assert_eq!(a.y(25.0), 100.0);
        assert_eq!(a.y(0.0), 300.0);
        assert_eq!(a.y(12.5), 200.0);
        assert_eq!(a.y(-3.0), 300.0);
        assert_eq!(a.y(99.0), 100.0);
        assert_eq!(a.ticks(), [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]);
    }

    fn report() -> BenchReport {
        use super::super::{
            BenchConfig,
            iperf::TcpResult,
            plan::Wiring,
            report::{self, Environment, ReportConfig, Sample},
        };
        let tcp = |gbps| {
            Some(TcpResult {
                gbps,
                retransmits: None,
                cpu_percent: Some(50.0),
            })
        };
        let ok = |round, g| Sample {
            round,
            tcp_1: tcp(g),
            tcp_n: tcp(g * 1.5),
            ..Default::default()
        };
        let mut results = vec![
            WiringResult::new(
                Wiring::Direct,
                "vsb-direct".into(),
                vec![ok(1, 20.0), ok(2, 16.0)],
            ),
            WiringResult::new(
                Wiring::Bridge,
                "vsb-bridge".into(),
                vec![ok(1, 10.0), ok(2, 12.0)],
            ),
            WiringResult::new(
                Wiring::FastPath,
                "vsb-bridge".into(),
                vec![Sample {
                    round: 1,
                    error: Some("lab vsb-bridge: the fast path <is> not built yet".into()),
                    ..Default::default()
                }],
            ),
        ];
        report::add_ratios(&mut results);
        BenchReport {
            schema: report::SCHEMA,
            config: ReportConfig {
                bench: BenchConfig {
                    wirings: vec![Wiring::Direct, Wiring::Bridge, Wiring::FastPath],
                    duration_s: 1.0,
                    streams: 4,
                    rounds: 2,
                    udp: false,
                    overhead: false,
                    prefix: "vsb-".into(),
                    round_trips: 100,
                    message_bytes: 64,
                    latency_cpu: Some(1),
                },
                iperf_seconds: 1,
                order: "interleaved",
                environment: Environment {
                    date: "2026-01-02T03:04:05Z".into(),
                    started_unix: 0,
                    kernel: "6.18.0".into(),
                    hostname: "h".into(),
                    cpus: 2,
                    iperf3: "iperf 3.12".into(),
                    vethscope: "0.1.0",
                    load_average: None,
                    baseline_cpu_percent: None,
                },
            },
            results,
            overhead: None,
        }
    }

    #[test]
    fn chart_has_one_group_per_wiring_and_scaled_bars() {
        let svg = render(&report());
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches(r#"<g class="wiring""#).count(), 3);
        assert_eq!(svg.matches("<g ").count(), svg.matches("</g>").count());
        for w in ["direct", "bridge", "fast-path"] {
            assert!(svg.contains(&format!(r#"data-wiring="{w}""#)), "{w}");
        }
        assert!(svg.contains(r#"data-wiring="fast-path" data-status="failed""#));
        assert!(svg.contains("the fast path &lt;is&gt; not built yet"));
        assert!(!svg.contains("<is>"));
        // Throughput axis: max 27 (20 * 1.5 with min-max) → top 30; the panel is 230 px
        // from y=108, so direct's median 18 Gbit/s bar starts at 108 + 230 * (1 - 18/30).
        let top = 108.0 + 230.0 * (1.0 - 18.0 / 30.0);
        assert!(
            svg.contains(&format!(r#"y="{top:.1}""#)),
            "bar top {top:.1}"
        );
        assert!(svg.contains("×0.61 vs direct"), "ratio label");
        assert!(svg.contains("2026-01-02"));
    }

    #[test]
    fn wraps_failure_reasons() {
        assert_eq!(
            wrap("the fast path is not built yet", 20, 2),
            ["the fast path is not", "built yet"]
        );
        assert_eq!(wrap("short", 20, 2), ["short"]);
        let cut = wrap("one two three four five six seven eight nine ten", 10, 2);
        assert_eq!(cut.len(), 2);
        assert!(
            cut[1].ends_with('…') && cut[1].chars().count() <= 10,
            "{cut:?}"
        );
        assert_eq!(wrap("abcdefghijklmnop", 8, 2), ["abcdefg…"]);
    }

    #[test]
    fn escapes() {
        assert_eq!(esc(r#"a<b & "c"'"#), "a&lt;b &amp; &quot;c&quot;&apos;");
    }
}
