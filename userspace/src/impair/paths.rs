//! Every filesystem path of impairments, in one place, all through `safefs` (walked
//! from checked directory fds, mode 0700, ours alone, no symlink followed; bpffs names
//! encoded with `safefs::bpf_name`):
//! - `/sys/fs/bpf/vethscope/LAB/impair/` — the maps and one TCX link per end;
//! - `/run/vethscope/impair/LAB.json` — the record.

use std::path::{Path, PathBuf};

use super::ImpairError;
use crate::safefs::{self, Dir, SafeFsError, bpf_name};

const SUBDIR: &str = "impair";

fn fs_err(lab: &str) -> impl FnOnce(SafeFsError) -> ImpairError + '_ {
    move |source| ImpairError::Fs {
        lab: lab.to_string(),
        source,
    }
}

/// Where the impairment maps and links of `lab` are pinned.
pub fn pin_dir(lab: &str) -> PathBuf {
    Path::new(safefs::BPF_ROOT)
        .join(safefs::BPF_DIR)
        .join(bpf_name(lab))
        .join(SUBDIR)
}

/// File name of the pinned TCX link of one end (`+` cannot occur in an encoded name).
pub fn link_pin_name(netns: &str, ifname: &str) -> String {
    format!("egress_{}+{}", bpf_name(netns), bpf_name(ifname))
}

pub fn link_pin(lab: &str, netns: &str, ifname: &str) -> PathBuf {
    pin_dir(lab).join(link_pin_name(netns, ifname))
}

/// The pin directory, opened (and created when `create`); `None` when absent.
fn open_pin_dir(lab: &str, create: bool) -> Result<Option<Dir>, ImpairError> {
    let Some(root) = Dir::bpf(create).map_err(fs_err(lab))? else {
        return Ok(None);
    };
    let Some(lab_dir) = root.subdir(&bpf_name(lab), create).map_err(fs_err(lab))? else {
        return Ok(None);
    };
    lab_dir.subdir(SUBDIR, create).map_err(fs_err(lab))
}

/// Creates the pin directory (0700, ours) and returns its path for aya's pinning.
pub fn ensure_pin_dir(lab: &str) -> Result<PathBuf, ImpairError> {
    open_pin_dir(lab, true)?;
    Ok(pin_dir(lab))
}

/// Removes one pinned file (a link: this detaches the program). Absent is fine.
pub fn remove_pin(lab: &str, name: &str) -> Result<(), ImpairError> {
    if let Some(dir) = open_pin_dir(lab, false)? {
        dir.remove_file(name).map_err(fs_err(lab))?;
    }
    Ok(())
}

/// Removes every pin of `lab` — links first (detaching the programs), then the maps —
/// and the directories that are left empty. Returns the errors.
pub fn remove_pin_dir(lab: &str) -> crate::errors::ErrorList {
    let mut errors = crate::errors::ErrorList::new();
    let dir = match open_pin_dir(lab, false) {
        Ok(Some(d)) => d,
        Ok(None) => return errors,
        Err(e) => return crate::errors::ErrorList::one(e),
    };
    let mut names = dir.list().unwrap_or_default();
    names.sort_by_key(|n| !n.starts_with("egress_"));
    for n in &names {
        if let Err(e) = dir.remove_file(n) {
            errors.push(e);
        }
    }
    drop(dir);
    if let Ok(Some(root)) = Dir::bpf(false) {
        if let Ok(Some(lab_dir)) = root.subdir(&bpf_name(lab), false) {
            if let Err(e) = lab_dir.remove_dir(SUBDIR) {
                errors.push(e);
            }
            drop(lab_dir);
            // The lab's directory and ours go when nothing else (the fast path) uses them.
            let _ = root.remove_dir(&bpf_name(lab));
        }
        drop(root);
        if let Ok(parent) = Dir::system(Path::new(safefs::BPF_ROOT)) {
            let _ = parent.remove_dir(safefs::BPF_DIR);
        }
    }
    errors
}

fn record_name(lab: &str) -> String {
    format!("{}.json", bpf_name(lab))
}

fn records(lab: &str, create: bool) -> Result<Option<Dir>, ImpairError> {
    let Some(run) = Dir::run(create).map_err(fs_err(lab))? else {
        return Ok(None);
    };
    run.subdir(SUBDIR, create).map_err(fs_err(lab))
}

pub fn read_record(lab: &str) -> Result<Option<Vec<u8>>, ImpairError> {
    match records(lab, false)? {
        Some(dir) => dir.read(&record_name(lab)).map_err(fs_err(lab)),
        None => Ok(None),
    }
}

pub fn write_record(lab: &str, bytes: &[u8]) -> Result<(), ImpairError> {
    let dir = records(lab, true)?.ok_or_else(|| ImpairError::Invalid {
        message: format!("lab {lab}: /run/vethscope/impair could not be created"),
    })?;
    dir.write_atomic(&record_name(lab), bytes)
        .map_err(fs_err(lab))
}

/// Removes the record, and the records' directory when it is left empty.
pub fn remove_record(lab: &str) -> Result<(), ImpairError> {
    if let Some(dir) = records(lab, false)? {
        dir.remove_file(&record_name(lab)).map_err(fs_err(lab))?;
    }
    if let Ok(Some(run)) = Dir::run(false) {
        let _ = run.remove_dir(SUBDIR);
    }
    Ok(())
}

/// For messages: where the record lives.
pub fn record_path(lab: &str) -> PathBuf {
    Path::new(crate::wire::RUN_DIR)
        .join(SUBDIR)
        .join(record_name(lab))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_names_have_no_dots_and_stay_distinct() {
        assert_eq!(link_pin_name("ns1", "veth0"), "egress_ns1+veth0");
        assert_ne!(link_pin_name("a+b", "c"), link_pin_name("a", "b+c"));
        assert!(!link_pin_name("n.s", "eth0.10").contains('.'));
        assert!(!pin_dir("lab.x").to_string_lossy()["/sys/fs/bpf".len()..].contains('.'));
    }
}
