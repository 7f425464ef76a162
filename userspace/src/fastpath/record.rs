//! What `enable` changed outside bpffs, so `disable` undoes exactly that:
//! `/run/vethscope/fastpath/LAB.json`. Written *before* each change (an intent log):
//! a process killed between two steps leaves a record that covers everything it may
//! have done.

use std::path::PathBuf;

use super::FastpathError;

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// OVS bridges that carry our drop flows (by cookie).
    pub ovs_flow_bridges: Vec<String>,
    /// Namespace ends whose TX checksum offload we turned back on: (netns, ifname).
    pub tx_checksum_on: Vec<(String, String)>,
    /// Root-namespace ports that may carry our TC filter.
    #[serde(default)]
    pub ports: Vec<PortRecord>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortRecord {
    pub ifname: String,
    pub ifindex: u32,
    /// The clsact qdisc was not there before us: remove it when it is left empty.
    pub clsact_ours: bool,
}

impl Record {
    /// Notes that we are about to attach to `ifindex`; a port recreated under the same
    /// name replaces the entry of its old self (whose filter went with it).
    pub fn note_port(&mut self, ifname: &str, ifindex: u32, clsact_ours: bool) {
        if let Some(p) = self.ports.iter_mut().find(|p| p.ifindex == ifindex) {
            p.clsact_ours |= clsact_ours;
            p.ifname = ifname.to_string();
            return;
        }
        self.ports.push(PortRecord {
            ifname: ifname.to_string(),
            ifindex,
            clsact_ours,
        });
    }
}

fn path(lab: &str) -> PathBuf {
    PathBuf::from(crate::wire::RUN_DIR)
        .join("fastpath")
        .join(format!("{}.json", crate::safefs::bpf_name(lab)))
}

pub fn read(lab: &str) -> Option<Record> {
    serde_json::from_str(&std::fs::read_to_string(path(lab)).ok()?).ok()
}

pub fn write(lab: &str, r: &Record) -> Result<(), FastpathError> {
    let p = path(lab);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| FastpathError::io(lab, format!("create {}", dir.display()), e))?;
    }
    let text = serde_json::to_string_pretty(r).unwrap_or_default();
    // Write then rename: a kill mid-write never leaves a torn record behind.
    let tmp = p.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &p))
        .map_err(|e| FastpathError::io(lab, format!("write {}", p.display()), e))
}

pub fn remove(lab: &str) {
    let p = path(lab);
    let _ = std::fs::remove_file(p.with_extension("json.tmp"));
    let _ = std::fs::remove_file(p);
}

pub fn exists(lab: &str) -> bool {
    path(lab).exists()
}
