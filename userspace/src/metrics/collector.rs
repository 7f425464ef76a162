//! The Prometheus collector: reads the kernel's counters at scrape time and turns them
//! into metric families. Userspace does no per-packet work; a scrape costs one walk
//! over the counting maps.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, RwLock},
};

use prometheus::{
    core::{Collector, Desc},
    proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType},
};
use vethscope_common::{LinkCounters, LinkKey, class, direction};

use super::{
    LinkTable, MetricsError,
    links::LinkLabels,
    maps::{CounterMaps, TraceStats},
};

pub const LINK_PACKETS: &str = "vethscope_link_packets_total";
pub const LINK_BYTES: &str = "vethscope_link_bytes_total";
pub const DROPS: &str = "vethscope_drops_total";
pub const FASTPATH_REDIRECTS: &str = "vethscope_fastpath_redirects_total";
pub const FASTPATH_PASSED: &str = "vethscope_fastpath_passed_total";
pub const TRACE_LOST: &str = "vethscope_trace_events_lost_total";
pub const LINKS: &str = "vethscope_links";
pub const BUILD_INFO: &str = "vethscope_build_info";

const LINK_LABELS: [&str; 8] = [
    "lab",
    "netns",
    "ifname",
    "peer_netns",
    "peer_ifname",
    "kind",
    "direction",
    "class",
];

/// `class` label values, indexed by the class number the programs store.
pub const CLASS_NAMES: [&str; class::COUNT] = ["arp", "icmp", "icmpv6", "ipv4", "ipv6", "other"];
const DIRECTIONS: [(u8, &str); 2] = [
    (direction::INGRESS, "ingress"),
    (direction::EGRESS, "egress"),
];

pub struct LinkCollector {
    descs: Vec<Desc>,
    table: Arc<RwLock<LinkTable>>,
    maps: CounterMaps,
    /// `enum skb_drop_reason` value → name, from this kernel's BTF.
    reasons: HashMap<u32, String>,
    /// Present when a tracer shares the probe (`trace --metrics`).
    trace: Option<TraceStats>,
}

impl LinkCollector {
    pub fn new(
        table: Arc<RwLock<LinkTable>>,
        maps: CounterMaps,
        reasons: HashMap<u32, String>,
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
            d(LINK_PACKETS, HELP_PACKETS, &LINK_LABELS)?,
            d(LINK_BYTES, HELP_BYTES, &LINK_LABELS)?,
            d(DROPS, HELP_DROPS, &["lab", "netns", "ifname", "reason"])?,
            d(
                FASTPATH_REDIRECTS,
                HELP_REDIRECTS,
                &["lab", "netns", "ifname"],
            )?,
            d(FASTPATH_PASSED, HELP_PASSED, &["lab", "netns", "ifname"])?,
            d(TRACE_LOST, HELP_LOST, &[])?,
            d(LINKS, HELP_LINKS, &["lab"])?,
            d(BUILD_INFO, HELP_BUILD, &["version"])?,
        ];
        Ok(Self {
            descs,
            table,
            maps,
            reasons,
            trace,
        })
    }

    fn reason_name(&self, reason: u32) -> String {
        self.reasons
            .get(&reason)
            .cloned()
            .unwrap_or_else(|| format!("reason_{reason}"))
    }
}

const HELP_PACKETS: &str =
    "Packets seen by the TC programs on a link, by direction and traffic class.";
const HELP_BYTES: &str =
    "Bytes seen by the TC programs on a link (skb->len at the hook, Ethernet header included).";
const HELP_DROPS: &str =
    "Packets the kernel dropped (kfree_skb) while on a watched link, by drop reason.";
const HELP_REDIRECTS: &str =
    "Frames the fast path handed to the destination namespace (bpf_redirect_peer).";
const HELP_PASSED: &str = "Frames the fast path left to the bridge.";
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

fn link_labels(l: &LinkLabels) -> Vec<LabelPair> {
    vec![
        label("lab", &l.lab),
        label("netns", &l.netns),
        label("ifname", &l.ifname),
        label("peer_netns", &l.peer_netns),
        label("peer_ifname", &l.peer_ifname),
        label("kind", l.kind.as_str()),
    ]
}

fn short_labels(l: &LinkLabels) -> Vec<LabelPair> {
    vec![
        label("lab", &l.lab),
        label("netns", &l.netns),
        label("ifname", &l.ifname),
    ]
}

impl Collector for LinkCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // A writer that panicked cannot leave the table half-updated in a way that
        // matters to a reader (each update is one insert or remove), so keep serving.
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        let totals = self.maps.link_totals(|id| table.get(id).is_some());

        // Every (direction, class) of every attached link is exported, 0 until a packet
        // of that kind passes: a series that appears only with its first packet would
        // lose that packet's increase in rate(), and a quiet link would vanish.
        let mut packets = Vec::with_capacity(table.len() * 12);
        let mut bytes = Vec::with_capacity(table.len() * 12);
        for (id, l) in table.iter() {
            let base = link_labels(l);
            for (dir, dir_name) in DIRECTIONS {
                for (c, class_name) in CLASS_NAMES.iter().enumerate() {
                    let key = LinkKey {
                        netns_cookie: id.0,
                        ifindex: id.1,
                        direction: dir,
                        class: c as u8,
                        _pad: [0; 2],
                    };
                    let v = totals.get(&key).copied().unwrap_or(LinkCounters::default());
                    let mut labels = base.clone();
                    labels.push(label("direction", dir_name));
                    labels.push(label("class", class_name));
                    packets.push(counter(labels.clone(), v.packets));
                    bytes.push(counter(labels, v.bytes));
                }
            }
        }

        let drops: Vec<Metric> = self
            .maps
            .drop_totals(|id| table.get(id).is_some())
            .into_iter()
            .filter_map(|(k, n)| {
                let l = table.get(&(k.netns_cookie, k.ifindex))?;
                let mut labels = short_labels(l);
                labels.push(label("reason", &self.reason_name(k.reason)));
                Some(counter(labels, n))
            })
            .collect();

        // Fast path: every host-side bridge port of a lab gets both series (0 while the
        // fast path is off), so dashboards can tell "off" from "not monitored".
        let mut ports: BTreeMap<&str, Vec<(&u32, &LinkLabels)>> = BTreeMap::new();
        for ((_, ifindex), l) in table.iter() {
            if l.is_fastpath_port() {
                ports.entry(l.lab.as_str()).or_default().push((ifindex, l));
            }
        }
        let mut redirects = Vec::new();
        let mut passed = Vec::new();
        for (lab, ports) in ports {
            let stats = crate::fastpath::read_counters(lab).unwrap_or_default();
            for (ifindex, l) in ports {
                let v = stats.get(ifindex).copied().unwrap_or_default();
                redirects.push(counter(short_labels(l), v.redirected));
                passed.push(counter(short_labels(l), v.passed));
            }
        }

        let links: Vec<Metric> = table
            .per_lab()
            .into_iter()
            .map(|(lab, n)| gauge(vec![label("lab", &lab)], n as f64))
            .collect();
        drop(table);

        let lost = self.trace.as_ref().map_or(0, TraceStats::lost);
        vec![
            family(LINK_PACKETS, HELP_PACKETS, MetricType::COUNTER, packets),
            family(LINK_BYTES, HELP_BYTES, MetricType::COUNTER, bytes),
            family(DROPS, HELP_DROPS, MetricType::COUNTER, drops),
            family(
                FASTPATH_REDIRECTS,
                HELP_REDIRECTS,
                MetricType::COUNTER,
                redirects,
            ),
            family(FASTPATH_PASSED, HELP_PASSED, MetricType::COUNTER, passed),
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
