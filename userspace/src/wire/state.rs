//! The state file of a lab: `/run/vethscope/labs/LAB.json`, written before the first
//! object is made (so an interrupted `up` still leaves the plan behind for `down`), and
//! a per-lab lock so two commands never work on one lab at once.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use nix::fcntl::{Flock, FlockArg};

use super::{RUN_DIR, WireError};
use crate::topology::Topology;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `up` is (or was, if it died) making objects.
    Creating,
    Up,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LabState {
    pub lab: String,
    pub status: Status,
    /// The topology as applied (after any prefix), the plan `down` falls back on.
    pub topology: Topology,
    /// True when this lab's `up` started ovs-vswitchd itself.
    #[serde(default)]
    pub ovs_datapath: Option<String>,
    pub created_unix: u64,
}

fn labs_dir() -> PathBuf {
    Path::new(RUN_DIR).join("labs")
}

pub fn path(lab: &str) -> PathBuf {
    labs_dir().join(format!("{lab}.json"))
}

pub fn read(lab: &str) -> Option<LabState> {
    let text = std::fs::read_to_string(path(lab)).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn write(state: &LabState) -> Result<(), WireError> {
    let io = |what: &str, source| WireError::Io {
        lab: state.lab.clone(),
        what: what.to_string(),
        source,
    };
    std::fs::create_dir_all(labs_dir()).map_err(|e| io("create the state directory", e))?;
    let text = serde_json::to_string_pretty(state).map_err(|e| WireError::Other {
        lab: state.lab.clone(),
        message: format!("cannot encode the state: {e}"),
    })?;
    // Write then rename, so a crash never leaves a torn state file.
    let final_path = path(&state.lab);
    let tmp = final_path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(|e| io("write the state file", e))?;
    std::fs::rename(&tmp, &final_path).map_err(|e| io("write the state file", e))
}

pub fn remove(lab: &str) {
    let _ = std::fs::remove_file(path(lab));
}

/// Labs that have a state file.
pub fn labs() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(labs_dir()) else {
        return Vec::new();
    };
    let mut labs: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    labs.sort();
    labs
}

/// An exclusive lock, released on drop.
pub struct Lock(#[allow(dead_code)] Flock<File>);

/// The lock of one lab.
pub fn lab_lock(lab: &str) -> Result<Lock, WireError> {
    lock(&format!("lab-{lab}"))
}

/// The lock around starting, using and stopping the shared Open vSwitch daemons.
/// (Its name cannot collide with a lab's: those start with `lab-`.)
pub fn ovs_lock() -> Result<Lock, WireError> {
    lock("ovs-daemons")
}

/// Takes the lock named `name`, waiting for another vethscope process that holds it.
fn lock(name: &str) -> Result<Lock, WireError> {
    let dir = Path::new(RUN_DIR).join("locks");
    let io = |what: &str, source| WireError::Io {
        lab: name.to_string(),
        what: what.to_string(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(|e| io("create the lock directory", e))?;
    let file =
        File::create(dir.join(format!("{name}.lock"))).map_err(|e| io("open the lock file", e))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map(Lock)
        .map_err(|(_, e)| io("take the lock", std::io::Error::from(e)))
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
