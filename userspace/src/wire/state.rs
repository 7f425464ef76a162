//! The state file of a lab: `/run/vethscope/labs/LAB.json`, written before the first
//! object is made (so an interrupted `up` still leaves the plan behind for `down`), and
//! a per-lab lock so two commands never work on one lab at once.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use nix::fcntl::{Flock, FlockArg};

use super::{RUN_DIR, WireError};
use crate::{
    safefs,
    topology::{
        Topology,
        names::{self, NameKind},
    },
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `up` is (or was, if it died) making objects.
    Creating,
    Up,
    /// `up FILE` on a running lab is (or was, if it died) applying a change: `up` with a
    /// file finishes it, `down` removes the lab.
    Changing,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LabState {
    pub lab: String,
    pub status: Status,
    /// The topology as applied (after any prefix), the plan `down` falls back on.
    pub topology: Topology,
    /// While `changing`: the definition before the change (its objects carry marks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Topology>,
    /// True when this lab's `up` started ovs-vswitchd itself.
    #[serde(default)]
    pub ovs_datapath: Option<String>,
    pub created_unix: u64,
}

/// `/run/vethscope/labs`, walked safely (see `safefs`).
fn labs_dir(create: bool) -> Result<Option<safefs::Dir>, safefs::SafeFsError> {
    match safefs::Dir::run(create)? {
        Some(run) => run.subdir("labs", create),
        None => Ok(None),
    }
}

fn file_name(lab: &str) -> String {
    format!("{lab}.json")
}

/// Where the state of `lab` is kept (for messages; access goes through `safefs`).
pub fn path(lab: &str) -> PathBuf {
    Path::new(RUN_DIR).join("labs").join(file_name(lab))
}

/// The state of a lab, if it has one. A name that is not a valid lab name never
/// reaches the filesystem.
pub fn read(lab: &str) -> Option<LabState> {
    names::check(NameKind::Lab, lab).ok()?;
    let dir = labs_dir(false).ok()??;
    let bytes = dir.read(&file_name(lab)).ok()??;
    serde_json::from_slice(&bytes).ok()
}

fn safefs_err(lab: &str, what: &str, e: safefs::SafeFsError) -> WireError {
    WireError::Fs {
        lab: lab.to_string(),
        what: what.to_string(),
        source: e,
    }
}

fn check_lab(lab: &str) -> Result<(), WireError> {
    names::check(NameKind::Lab, lab).map_err(|source| WireError::BadName {
        lab: lab.escape_debug().to_string(),
        source,
    })
}

pub fn write(state: &LabState) -> Result<(), WireError> {
    check_lab(&state.lab)?;
    let dir = labs_dir(true)
        .and_then(|d| {
            d.ok_or_else(|| safefs::SafeFsError::BadName {
                name: "labs".into(),
            })
        })
        .map_err(|e| safefs_err(&state.lab, "create the state directory", e))?;
    // Compact: a large lab's state is written twice per change (`changing`, then `up`).
    let text = serde_json::to_string(state).map_err(|source| WireError::EncodeState {
        lab: state.lab.clone(),
        source,
    })?;
    // Written to a fresh file then renamed, so a crash never leaves a torn state file.
    dir.write_atomic(&file_name(&state.lab), text.as_bytes())
        .map_err(|e| safefs_err(&state.lab, "write the state file", e))
}

pub fn remove(lab: &str) {
    if names::check(NameKind::Lab, lab).is_err() {
        return;
    }
    if let Ok(Some(dir)) = labs_dir(false)
        && let Err(e) = dir.remove_file(&file_name(lab))
    {
        tracing::warn!("lab {lab}: could not remove its state file: {e}");
    }
}

/// Labs that have a state file (names that are not valid lab names are skipped: they
/// were not written by us).
pub fn labs() -> Vec<String> {
    let Ok(Some(dir)) = labs_dir(false) else {
        return Vec::new();
    };
    dir.list()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .filter(|n| names::check(NameKind::Lab, n).is_ok())
        .collect()
}

/// An exclusive lock, released on drop. A lab's lock file is removed on release when
/// the lab has no state (it was only looked up, or it was just taken down), so names
/// that were only looked up leave nothing behind.
pub struct Lock {
    file: Option<Flock<File>>,
    dir: Option<safefs::Dir>,
    name: String,
    /// The lab whose state decides whether the file stays.
    lab: Option<String>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Unlink while still holding the lock; `lock` re-checks after taking it that the
        // file it locked is still the one in the directory, so nobody can hold a lock
        // on a removed file while another takes a new one.
        if let (Some(lab), Some(dir)) = (&self.lab, &self.dir)
            && read(lab).is_none()
        {
            let _ = dir.remove_file(&self.name);
        }
        drop(self.file.take());
    }
}

/// The lock of one lab.
pub fn lab_lock(lab: &str) -> Result<Lock, WireError> {
    check_lab(lab)?;
    let mut lock = lock(&format!("lab-{lab}"))?;
    lock.lab = Some(lab.to_string());
    Ok(lock)
}

/// The lock around starting, using and stopping the shared Open vSwitch daemons.
/// (Its name cannot collide with a lab's: those start with `lab-`.)
pub fn ovs_lock() -> Result<Lock, WireError> {
    lock("ovs-daemons")
}

/// Takes the lock named `name`, waiting for another vethscope process that holds it.
fn lock(name: &str) -> Result<Lock, WireError> {
    use std::os::fd::AsFd;
    let dir = safefs::Dir::run(true)
        .and_then(|run| match run {
            Some(run) => run.subdir("locks", true),
            None => Ok(None),
        })
        .and_then(|d| {
            d.ok_or_else(|| safefs::SafeFsError::BadName {
                name: "locks".into(),
            })
        })
        .map_err(|e| safefs_err(name, "open the lock directory", e))?;
    let file_name = format!("{name}.lock");
    loop {
        let file = dir
            .open_lock(&file_name)
            .map_err(|e| safefs_err(name, "open the lock file", e))?;
        let locked = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| {
            safefs_err(
                name,
                "take the lock",
                safefs::SafeFsError::Sys {
                    what: "flock",
                    path: file_name.clone(),
                    errno: e,
                },
            )
        })?;
        // The holder before us may have removed the file while we waited: then our lock
        // is on a file nobody else will find; take the lock again on the current one.
        let held = nix::sys::stat::fstat(locked.as_fd()).ok();
        let current = dir.stat(&file_name).ok().flatten();
        if let (Some(h), Some(c)) = (held, current)
            && h.st_dev == c.st_dev
            && h.st_ino == c.st_ino
        {
            return Ok(Lock {
                file: Some(locked),
                dir: Some(dir),
                name: file_name,
                lab: None,
            });
        }
    }
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
