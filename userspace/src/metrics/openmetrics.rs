//! Exposition formats: Prometheus text 0.0.4 (the prometheus crate's encoder) and
//! OpenMetrics 1.0.0 text (written here: the crate has no OpenMetrics encoder), chosen
//! from the scraper's `Accept` header. Prometheus itself asks for OpenMetrics first.

use std::fmt::Write;

use prometheus::{
    Encoder, TextEncoder,
    proto::{LabelPair, MetricFamily, MetricType},
};

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// The format an `Accept` header prefers: OpenMetrics when its media type has a
    /// higher quality than plain text (at equal quality the header's order decides,
    /// as Prometheus lists its preference first). No header, or none we know: text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut best: Option<(f32, Format)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let mut q = 1.0f32;
            let mut version: Option<String> = None;
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    let v = v.trim().trim_matches('"');
                    match k.trim().to_ascii_lowercase().as_str() {
                        "q" => q = v.parse().unwrap_or(0.0),
                        "version" => version = Some(v.to_string()),
                        _ => {}
                    }
                }
            }
            let format = match media.as_str() {
                // 0.0.1 is the pre-1.0 name of the same text format.
                "application/openmetrics-text"
                    if version
                        .as_deref()
                        .is_none_or(|v| v.starts_with("1.") || v == "0.0.1") =>
                {
                    Format::OpenMetrics
                }
                "text/plain" if version.as_deref().is_none_or(|v| v == "0.0.4") => Format::Text,
                "*/*" | "text/*" => Format::Text,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, format));
            }
        }
        best.map_or(Format::Text, |(_, f)| f)
    }

    pub fn encode(self, families: &[MetricFamily]) -> Result<String, String> {
        match self {
            Format::Text => {
                let mut buf = Vec::with_capacity(estimate(families));
                TextEncoder::new()
                    .encode(families, &mut buf)
                    .map_err(|e| e.to_string())?;
                String::from_utf8(buf).map_err(|e| e.to_string())
            }
            Format::OpenMetrics => Ok(openmetrics(families)),
        }
    }
}

/// A starting capacity: about 200 bytes per series.
fn estimate(families: &[MetricFamily]) -> usize {
    families
        .iter()
        .map(|f| f.get_metric().len() * 200 + 200)
        .sum()
}

/// OpenMetrics 1.0.0 text. Counters are declared under their name without `_total`
/// (their samples keep it), `*_info` gauges become `info` families, `# EOF` ends it.
pub fn openmetrics(families: &[MetricFamily]) -> String {
    let mut out = String::with_capacity(estimate(families));
    for f in families {
        let name = f.name();
        let (family, suffix, kind) = match f.get_field_type() {
            MetricType::COUNTER => match name.strip_suffix("_total") {
                Some(base) => (base, "_total", "counter"),
                None => (name, "_total", "counter"),
            },
            MetricType::GAUGE => match name.strip_suffix("_info") {
                Some(base) => (base, "_info", "info"),
                None => (name, "", "gauge"),
            },
            // The exporter only makes counters and gauges; anything else is skipped
            // rather than written in a form a parser would reject.
            _ => continue,
        };
        let _ = writeln!(out, "# TYPE {family} {kind}");
        if !f.help().is_empty() {
            let _ = writeln!(out, "# HELP {family} {}", escape(f.help()));
        }
        for m in f.get_metric() {
            let value = match f.get_field_type() {
                MetricType::COUNTER => m.get_counter().get_value(),
                _ => m.get_gauge().get_value(),
            };
            out.push_str(family);
            out.push_str(suffix);
            write_labels(&mut out, m.get_label());
            out.push(' ');
            write_value(&mut out, value);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}

fn write_labels(out: &mut String, labels: &[LabelPair]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(l.name());
        out.push_str("=\"");
        out.push_str(&escape(l.value()));
        out.push('"');
    }
    out.push('}');
}

fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Escapes `\`, `"` and newline, as OpenMetrics requires in label values and HELP.
fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::proto::{Counter, Gauge, Metric};

    fn lp(n: &str, v: &str) -> LabelPair {
        let mut l = LabelPair::default();
        l.set_name(n.into());
        l.set_value(v.into());
        l
    }

    fn families() -> Vec<MetricFamily> {
        let mut c = Counter::default();
        c.set_value(42.0);
        let mut m = Metric::from_label(vec![lp("ifname", "veth0"), lp("odd", "a\"b\\c\nd")]);
        m.set_counter(c);
        let mut packets = MetricFamily::default();
        packets.set_name("vethscope_link_packets_total".into());
        packets.set_help("Packets.".into());
        packets.set_field_type(MetricType::COUNTER);
        packets.set_metric(vec![m]);
        let mut g = Gauge::default();
        g.set_value(1.0);
        let mut m = Metric::from_label(vec![lp("version", "0.1.0")]);
        m.set_gauge(g);
        let mut info = MetricFamily::default();
        info.set_name("vethscope_build_info".into());
        info.set_help("Build.".into());
        info.set_field_type(MetricType::GAUGE);
        info.set_metric(vec![m]);
        vec![packets, info]
    }

    #[test]
    fn prometheus_accept_header_gets_openmetrics() {
        // What Prometheus 2.42 sends.
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.9, application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0.2, text/plain;q=0.9")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;version=2.0.0")),
            Format::Text
        );
        assert_eq!(Format::negotiate(Some("application/json")), Format::Text);
    }

    #[test]
    fn openmetrics_text_declares_counters_without_total_and_ends_with_eof() {
        let text = openmetrics(&families());
        assert_eq!(
            text,
            "# TYPE vethscope_link_packets counter\n\
             # HELP vethscope_link_packets Packets.\n\
             vethscope_link_packets_total{ifname=\"veth0\",odd=\"a\\\"b\\\\c\\nd\"} 42\n\
             # TYPE vethscope_build info\n\
             # HELP vethscope_build Build.\n\
             vethscope_build_info{version=\"0.1.0\"} 1\n\
             # EOF\n"
        );
    }

    #[test]
    fn text_format_keeps_total_in_the_type_line() {
        let text = Format::Text.encode(&families()).unwrap_or_default();
        assert!(
            text.contains("# TYPE vethscope_link_packets_total counter\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }
}
