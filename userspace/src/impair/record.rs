//! What is set on which end of a lab, and by which engine:
//! `/run/vethscope/impair/LAB.json`. The record is the source of truth for `impair
//! LAB` (list), `show`, `trace` and `down`; the kernel state follows it.

use super::{ImpairError, paths, spec::Impairment};

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub ends: Vec<EndRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EndRecord {
    pub netns: String,
    pub ifname: String,
    pub impairment: Impairment,
    /// Root qdisc we installed (`tbf` or `netem`), to remove it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qdisc: Option<String>,
    /// True while the eBPF program is attached to this end.
    #[serde(default)]
    pub ebpf: bool,
    /// The end's namespace cookie and ifindex: the key of its counters in the kernel,
    /// so the exporter reads them without entering namespaces.
    #[serde(default)]
    pub netns_cookie: u64,
    #[serde(default)]
    pub ifindex: u32,
}

impl Record {
    pub fn end(&self, netns: &str, ifname: &str) -> Option<&EndRecord> {
        self.ends
            .iter()
            .find(|e| e.netns == netns && e.ifname == ifname)
    }

    pub fn upsert(&mut self, end: EndRecord) {
        self.ends
            .retain(|e| !(e.netns == end.netns && e.ifname == end.ifname));
        self.ends.push(end);
        self.ends
            .sort_by(|a, b| (&a.netns, &a.ifname).cmp(&(&b.netns, &b.ifname)));
    }

    pub fn remove(&mut self, netns: &str, ifname: &str) {
        self.ends
            .retain(|e| !(e.netns == netns && e.ifname == ifname));
    }
}

pub fn read(lab: &str) -> Result<Record, ImpairError> {
    match paths::read_record(lab)? {
        None => Ok(Record::default()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| ImpairError::Record {
            lab: lab.to_string(),
            path: paths::record_path(lab).display().to_string(),
            error: e,
        }),
    }
}

pub fn write(lab: &str, r: &Record) -> Result<(), ImpairError> {
    if r.ends.is_empty() {
        return paths::remove_record(lab);
    }
    let text = serde_json::to_vec_pretty(r).unwrap_or_default();
    paths::write_record(lab, &text)
}
