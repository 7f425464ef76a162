//! The links being counted and the labels their series carry.
//!
//! Counter keys from the kernel name an interface by (namespace cookie, ifindex); this
//! table turns that into the bounded label set of the exported series. Only links in
//! the table are exported, so a link the watcher forgot drops out of /metrics at once.

use std::collections::{BTreeSet, HashMap};

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

#[derive(Debug, Default)]
pub struct LinkTable {
    links: HashMap<LinkId, LinkLabels>,
    /// Labs named on the command line: `vethscope_links{lab}` is exported for them even
    /// while they are down (0), so "not up yet" is visible rather than absent.
    named_labs: BTreeSet<String>,
}

impl LinkTable {
    /// Every lab in the table: those with links and those named on the command line.
    pub fn labs(&self) -> BTreeSet<String> {
        let mut labs = self.named_labs.clone();
        labs.extend(
            self.links
                .values()
                .filter(|l| !l.lab.is_empty())
                .map(|l| l.lab.clone()),
        );
        labs
    }

    pub fn new(named_labs: impl IntoIterator<Item = String>) -> Self {
        Self {
            links: HashMap::new(),
            named_labs: named_labs.into_iter().collect(),
        }
    }

    pub fn insert(&mut self, id: LinkId, labels: LinkLabels) {
        self.links.insert(id, labels);
    }

    pub fn remove(&mut self, id: &LinkId) -> Option<LinkLabels> {
        self.links.remove(id)
    }

    pub fn get(&self, id: &LinkId) -> Option<&LinkLabels> {
        self.links.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&LinkId, &LinkLabels)> {
        self.links.iter()
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Attached links per lab, with 0 for named labs that have none.
    pub fn per_lab(&self) -> Vec<(String, usize)> {
        let mut counts: std::collections::BTreeMap<String, usize> =
            self.named_labs.iter().map(|l| (l.clone(), 0)).collect();
        for l in self.links.values() {
            *counts.entry(l.lab.clone()).or_default() += 1;
        }
        counts.into_iter().collect()
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
