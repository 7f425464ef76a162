//! What `enable` changed outside bpffs, so `disable` undoes exactly that:
//! `/run/vethscope/fastpath/LAB.json`.

use std::path::PathBuf;

use super::FastpathError;

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// OVS bridges that carry our drop flows (by cookie).
    pub ovs_flow_bridges: Vec<String>,
    /// Namespace ends whose TX checksum offload we turned back on: (netns, ifname).
    pub tx_checksum_on: Vec<(String, String)>,
}

fn path(lab: &str) -> PathBuf {
    PathBuf::from(crate::wire::RUN_DIR)
        .join("fastpath")
        .join(format!("{lab}.json"))
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
    std::fs::write(&p, text)
        .map_err(|e| FastpathError::io(lab, format!("write {}", p.display()), e))
}

pub fn remove(lab: &str) {
    let _ = std::fs::remove_file(path(lab));
}
