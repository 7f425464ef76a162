//! The links being counted and the labels their series carry.
//!
//! Counter keys from the kernel name an interface by (namespace cookie, ifindex); this
//! table turns that into the bounded label set of the exported series. Only links in
//! the table are exported, so a link the watcher forgot drops out of /metrics at once.
//! Each link's label block (`lab="…",netns="…",…`) is rendered once, when the link
//! enters the table or its labels change, not on every scrape.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use crate::{
    probe::{LinkKind, Target},
    topology::HOST,
};

/// An interface as the kernel names it in counter keys: (namespace cookie, ifindex).
pub type LinkId = (u64, u32);

/// The labels of one link's series (never addresses: every value here is bounded by
/// the number of interfaces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkLabels {
    /// Empty for interfaces outside any lab (`serve --all`).
    pub lab: String,
    /// `host` for the root namespace.
    pub netns: String,
    pub ifname: String,
    pub peer_netns: String,
    pub peer_ifname: String,
    pub kind: LinkKind,
}

impl LinkLabels {
    pub fn of(target: &Target) -> Self {
        Self {
            lab: target.lab.clone(),
            netns: target.netns.clone(),
            ifname: target.ifname.clone(),
            peer_netns: target.peer_netns.clone(),
            peer_ifname: target.peer_ifname.clone(),
            kind: target.kind,
        }
    }

    /// A host-side port of a bridge: where the fast path (if enabled) counts frames.
    pub fn is_fastpath_port(&self) -> bool {
        !self.lab.is_empty() && self.netns == HOST && self.kind.is_bridge_port()
    }
}

pub fn id_of(target: &Target) -> LinkId {
    (target.cookie, target.ifindex)
}

/// A link of the table: its labels, their rendered block, and whether its programs
/// are attached yet (a link enters the table just before, so its series start at 0).
#[derive(Debug)]
pub(super) struct Entry {
    pub labels: LinkLabels,
    /// Every label of the link's packet and byte series, rendered.
    pub block: Arc<str>,
    /// `lab`, `netns` and `ifname` alone: the labels of its drop and fast-path series.
    pub short: Arc<str>,
    counting: bool,
}

#[derive(Debug, Default)]
pub struct LinkTable {
    links: HashMap<LinkId, Entry>,
    /// Labs named on the command line: `vethscope_links{lab}` is exported for them even
    /// while they are down (0), so "not up yet" is visible rather than absent.
    named_labs: BTreeSet<String>,
    /// Bumped on every change of the set of links or of their labels: the renderer
    /// rebuilds its sorted layout only when this moved.
    generation: u64,
}

impl LinkTable {
    /// Every lab in the table: those with links and those named on the command line.
    pub fn labs(&self) -> BTreeSet<String> {
        let mut labs = self.named_labs.clone();
        labs.extend(
            self.links
                .values()
                .filter(|e| !e.labels.lab.is_empty())
                .map(|e| e.labels.lab.clone()),
        );
        labs
    }

    pub fn new(named_labs: impl IntoIterator<Item = String>) -> Self {
        Self {
            links: HashMap::new(),
            named_labs: named_labs.into_iter().collect(),
            generation: 0,
        }
    }

    /// Adds a link (not counting yet), or changes its labels (keeping whether it counts).
    pub fn insert(&mut self, id: LinkId, labels: LinkLabels) {
        if self.links.get(&id).is_some_and(|e| e.labels == labels) {
            return;
        }
        let block: Arc<str> = label_block(&labels).into();
        let short: Arc<str> = block_of(&[
            ("lab", &labels.lab),
            ("netns", &labels.netns),
            ("ifname", &labels.ifname),
        ])
        .into();
        let counting = self.links.get(&id).is_some_and(|e| e.counting);
        self.links.insert(
            id,
            Entry {
                labels,
                block,
                short,
                counting,
            },
        );
        self.generation += 1;
    }

    /// The link's programs are attached: from now on it counts in `vethscope_links`.
    pub fn set_counting(&mut self, id: &LinkId) {
        if let Some(e) = self.links.get_mut(id) {
            e.counting = true;
        }
    }

    pub fn remove(&mut self, id: &LinkId) -> Option<LinkLabels> {
        let e = self.links.remove(id)?;
        self.generation += 1;
        Some(e.labels)
    }

    pub fn get(&self, id: &LinkId) -> Option<&LinkLabels> {
        self.links.get(id).map(|e| &e.labels)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&LinkId, &LinkLabels)> {
        self.links.iter().map(|(id, e)| (id, &e.labels))
    }

    /// Every link with its labels rendered.
    pub(super) fn entries(&self) -> impl Iterator<Item = (&LinkId, &Entry)> {
        self.links.iter()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Links with the programs attached, per lab, with 0 for named labs that have none.
    /// A link waiting for its attach is not counted: "4 links" means all 4 count.
    pub fn per_lab(&self) -> Vec<(String, usize)> {
        // Borrowed names: one clone per lab, not one per link (3,000 at every scrape).
        let mut counts: std::collections::BTreeMap<&str, usize> =
            self.named_labs.iter().map(|l| (l.as_str(), 0)).collect();
        for e in self.links.values() {
            let n = counts.entry(e.labels.lab.as_str()).or_default();
            if e.counting {
                *n += 1;
            }
        }
        counts
            .into_iter()
            .map(|(l, n)| (l.to_string(), n))
            .collect()
    }
}

/// The labels a link's series share, in the exporter's order, values escaped.
pub fn label_block(l: &LinkLabels) -> String {
    block_of(&[
        ("lab", l.lab.as_str()),
        ("netns", &l.netns),
        ("ifname", &l.ifname),
        ("peer_netns", &l.peer_netns),
        ("peer_ifname", &l.peer_ifname),
        ("kind", l.kind.as_str()),
    ])
}

/// `k1="v1",k2="v2",…`, values escaped.
pub fn block_of(pairs: &[(&str, &str)]) -> String {
    let mut s = String::with_capacity(96);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        escape_into(v, &mut s);
        s.push('"');
    }
    s
}

/// Escapes `\`, `"` and newline, as both text formats require in label values
/// (interface names outside a lab may hold any of them).
pub fn escape_into(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(lab: &str, netns: &str, kind: &str) -> LinkLabels {
        LinkLabels {
            lab: lab.into(),
            netns: netns.into(),
            ifname: "x".into(),
            peer_netns: String::new(),
            peer_ifname: String::new(),
            kind: kind.parse().expect("a link kind"),
        }
    }

    #[test]
    fn named_labs_count_zero_until_their_links_appear() {
        let mut t = LinkTable::new(["a".to_string(), "b".to_string()]);
        t.insert((1, 2), labels("a", "ns", "veth"));
        t.insert((1, 3), labels("a", "ns", "lo"));
        // In the table (exported at 0) but not attached yet: not counted.
        assert_eq!(t.per_lab(), vec![("a".into(), 0), ("b".into(), 0)]);
        t.set_counting(&(1, 2));
        t.set_counting(&(1, 3));
        assert_eq!(t.per_lab(), vec![("a".into(), 2), ("b".into(), 0)]);
        // New labels keep the link counting.
        t.insert((1, 2), labels("a", "ns", "bridge-port"));
        assert_eq!(t.per_lab(), vec![("a".into(), 2), ("b".into(), 0)]);
        t.remove(&(1, 2));
        t.remove(&(1, 3));
        assert_eq!(t.per_lab(), vec![("a".into(), 0), ("b".into(), 0)]);
    }

    #[test]
    fn only_host_side_bridge_ports_of_a_lab_have_fast_path_series() {
        assert!(labels("a", HOST, "bridge-port").is_fastpath_port());
        assert!(labels("a", HOST, "ovs-port").is_fastpath_port());
        assert!(!labels("a", "ns1", "veth").is_fastpath_port());
        assert!(!labels("", HOST, "bridge-port").is_fastpath_port());
    }
}
