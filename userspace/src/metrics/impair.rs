//! `vethscope_impair_packets_total{lab,netns,ifname,action}`: what the impairment
//! program did on each impaired end (action = drop | duplicate | corrupt). Read at
//! scrape time from the lab's record (which end has which counter key) and the pinned
//! per-CPU counters; no namespace is entered.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use prometheus::{
    core::{Collector, Desc},
    proto::{Counter, LabelPair, Metric, MetricFamily, MetricType},
};

use super::{LinkTable, MetricsError};

pub const IMPAIR_PACKETS: &str = "vethscope_impair_packets_total";
const HELP: &str = "Packets dropped, duplicated or corrupted by an impairment (vethscope impair), per interface end and action.";
const LABELS: [&str; 4] = ["lab", "netns", "ifname", "action"];

pub struct ImpairCollector {
    desc: Desc,
    table: Arc<RwLock<LinkTable>>,
}

impl ImpairCollector {
    pub fn new(table: Arc<RwLock<LinkTable>>) -> Result<Self, MetricsError> {
        let desc = Desc::new(
            IMPAIR_PACKETS.to_string(),
            HELP.to_string(),
            LABELS.iter().map(|l| l.to_string()).collect(),
            HashMap::new(),
        )
        .map_err(|e| MetricsError::prometheus(IMPAIR_PACKETS, e))?;
        Ok(Self { desc, table })
    }
}

fn metric(values: [&str; 4], n: u64) -> Metric {
    let mut m = Metric::default();
    m.set_label(
        LABELS
            .iter()
            .zip(values)
            .map(|(k, v)| {
                let mut l = LabelPair::default();
                l.set_name(k.to_string());
                l.set_value(v.to_string());
                l
            })
            .collect(),
    );
    let mut c = Counter::default();
    c.set_value(n as f64);
    m.set_counter(c);
    m
}

impl Collector for ImpairCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let labs = match self.table.read() {
            Ok(t) => t.labs(),
            Err(_) => return Vec::new(),
        };
        let mut metrics = Vec::new();
        for lab in labs {
            let Ok(rec) = crate::impair::record::read(&lab) else {
                continue;
            };
            if !rec.ends.iter().any(|e| e.ebpf) {
                continue;
            }
            let counters = crate::impair::counters(&lab);
            for e in rec.ends.iter().filter(|e| e.ebpf) {
                let c = counters
                    .get(&crate::impair::key(e.netns_cookie, e.ifindex))
                    .copied()
                    .unwrap_or_default();
                for (action, n) in [
                    ("drop", c.dropped),
                    ("duplicate", c.duplicated),
                    ("corrupt", c.corrupted),
                ] {
                    metrics.push(metric([&lab, &e.netns, &e.ifname, action], n));
                }
            }
        }
        if metrics.is_empty() {
            return Vec::new();
        }
        let mut family = MetricFamily::default();
        family.set_name(IMPAIR_PACKETS.to_string());
        family.set_help(HELP.to_string());
        family.set_field_type(MetricType::COUNTER);
        family.set_metric(metrics);
        vec![family]
    }
}
