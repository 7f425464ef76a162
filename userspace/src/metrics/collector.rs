//! The Prometheus collector of the small families: links per lab, trace events lost,
//! build info. Every family with a series per link (packets, bytes, drops, fast path:
//! ~78,000 series at 3,000 links) is written as text directly (`render`), not here:
//! through the registry, 4,000 drop and fast-path series alone cost 8 ms a scrape.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use prometheus::{
    core::{Collector, Desc},
    proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType},
};
use vethscope_common::class;

use super::{LinkTable, MetricsError, maps::TraceStats};

pub const LINK_PACKETS: &str = "vethscope_link_packets_total";
pub const LINK_BYTES: &str = "vethscope_link_bytes_total";
pub const DROPS: &str = "vethscope_drops_total";
pub const FASTPATH_REDIRECTS: &str = "vethscope_fastpath_redirects_total";
pub const FASTPATH_PASSED: &str = "vethscope_fastpath_passed_total";
pub const TRACE_LOST: &str = "vethscope_trace_events_lost_total";
pub const LINKS: &str = "vethscope_links";
pub const BUILD_INFO: &str = "vethscope_build_info";

/// `class` label values, indexed by the class number the programs store.
pub const CLASS_NAMES: [&str; class::COUNT] = ["arp", "icmp", "icmpv6", "ipv4", "ipv6", "other"];

pub struct LinkCollector {
    descs: Vec<Desc>,
    table: Arc<RwLock<LinkTable>>,
    /// Present when a tracer shares the probe (`trace --metrics`).
    trace: Option<TraceStats>,
}

impl LinkCollector {
    pub fn new(
        table: Arc<RwLock<LinkTable>>,
        trace: Option<TraceStats>,
    ) -> Result<Self, MetricsError> {
        let d = |name: &str, help: &str, labels: &[&str]| {
            Desc::new(
                name.to_string(),
                help.to_string(),
                labels.iter().map(|l| l.to_string()).collect(),
                HashMap::new(),
            )
            .map_err(|e| MetricsError::prometheus(name, e))
        };
        let descs = vec![
            d(TRACE_LOST, HELP_LOST, &[])?,
            d(LINKS, HELP_LINKS, &["lab"])?,
            d(BUILD_INFO, HELP_BUILD, &["version"])?,
        ];
        Ok(Self {
            descs,
            table,
            trace,
        })
    }
}

pub(super) const HELP_PACKETS: &str =
    "Packets seen by the TC programs on a link, by direction and traffic class.";
pub(super) const HELP_BYTES: &str =
    "Bytes seen by the TC programs on a link (skb->len at the hook, Ethernet header included).";
pub(super) const HELP_DROPS: &str =
    "Packets the kernel dropped (kfree_skb) while on a watched link, by drop reason.";
pub(super) const HELP_REDIRECTS: &str =
    "Frames the fast path handed to the destination namespace (bpf_redirect_peer).";
pub(super) const HELP_PASSED: &str = "Frames the fast path left to the bridge.";
const HELP_LOST: &str = "Trace events the kernel could not queue to userspace (ring buffer full).";
const HELP_LINKS: &str = "Links (interfaces) with the counting programs attached.";
const HELP_BUILD: &str = "The vethscope build serving these metrics (always 1).";

fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_string());
    l.set_value(value.to_string());
    l
}

fn counter(labels: Vec<LabelPair>, value: u64) -> Metric {
    let mut c = Counter::default();
    c.set_value(value as f64);
    let mut m = Metric::from_label(labels);
    m.set_counter(c);
    m
}

fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::from_label(labels);
    m.set_gauge(g);
    m
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

impl Collector for LinkCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // A writer that panicked cannot leave the table half-updated in a way that
        // matters to a reader (each update is one insert or remove), so keep serving.
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        let links: Vec<Metric> = table
            .per_lab()
            .into_iter()
            .map(|(lab, n)| gauge(vec![label("lab", &lab)], n as f64))
            .collect();
        drop(table);

        let lost = self.trace.as_ref().map_or(0, TraceStats::lost);
        vec![
            family(
                TRACE_LOST,
                HELP_LOST,
                MetricType::COUNTER,
                vec![counter(vec![], lost)],
            ),
            family(LINKS, HELP_LINKS, MetricType::GAUGE, links),
            family(
                BUILD_INFO,
                HELP_BUILD,
                MetricType::GAUGE,
                vec![gauge(
                    vec![label("version", env!("CARGO_PKG_VERSION"))],
                    1.0,
                )],
            ),
        ]
    }
}
