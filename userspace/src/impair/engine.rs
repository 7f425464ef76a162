//! The eBPF engine: the `impair_egress` program pinned on each end that needs loss,
//! duplication or corruption, with its settings and counters in maps pinned under
//! `/sys/fs/bpf/vethscope/LAB/impair/`.

use std::collections::HashMap;
use std::path::PathBuf;

use aya::maps::{HashMap as BpfHashMap, Map, MapData, PerCpuHashMap};
use vethscope_common::{IfaceKey, ImpairConfig, ImpairCounters};

use super::{ImpairError, paths, spec::Impairment};
use crate::probe::{Direction, LoadOptions, Position, Probe, Target};

pub const PROGRAM: &str = "impair_egress";
pub const CONFIG: &str = "IMPAIR_CONFIG";
pub const STATS: &str = "IMPAIR_STATS";
pub const EVENTS: &str = "IMPAIR_EVENTS";

pub fn key(cookie: u64, ifindex: u32) -> IfaceKey {
    IfaceKey {
        netns_cookie: cookie,
        ifindex,
        _pad: [0; 4],
    }
}

pub fn config(imp: &Impairment) -> ImpairConfig {
    ImpairConfig {
        loss: imp.loss.map_or(0, |p| p.threshold()),
        duplicate: imp.duplicate.map_or(0, |p| p.threshold()),
        corrupt: imp.corrupt.map_or(0, |p| p.threshold()),
    }
}

fn map_path(lab: &str, map: &str) -> PathBuf {
    paths::pin_dir(lab).join(map)
}

/// Puts `cfg` in the lab's settings map and attaches the program to the end (once).
/// The settings go in first, so the first packet the program sees is already judged.
pub fn attach(lab: &str, target: &Target, cfg: ImpairConfig) -> Result<(), ImpairError> {
    let dir = paths::pin_dir(lab);
    paths::ensure_dir(&dir)
        .map_err(|e| ImpairError::io(lab, format!("create {}", dir.display()), e))?;
    let mut probe = Probe::load(LoadOptions {
        ebpf_log: false,
        map_pins: [CONFIG, STATS, EVENTS]
            .into_iter()
            .map(|m| (m, map_path(lab, m)))
            .collect(),
    })
    .map_err(|e| ImpairError::probe(lab, e))?;
    let k = key(target.cookie, target.ifindex);
    {
        let map = probe
            .ebpf_mut()
            .map_mut(CONFIG)
            .ok_or_else(|| ImpairError::map(lab, CONFIG, "missing"))?;
        let mut settings: BpfHashMap<&mut MapData, IfaceKey, ImpairConfig> =
            BpfHashMap::try_from(map).map_err(|e| ImpairError::map(lab, CONFIG, e))?;
        settings
            .insert(k, cfg, 0)
            .map_err(|e| ImpairError::map(lab, CONFIG, e))?;
    }
    let pin = paths::link_pin(lab, &target.netns, &target.ifname);
    if std::fs::symlink_metadata(&pin).is_ok() {
        return Ok(());
    }
    // Last in the egress chain: observers (trace, serve) attach first and still see a
    // packet this program drops.
    probe
        .attach_pinned(PROGRAM, target, Direction::Egress, Position::Last, &pin)
        .map_err(|e| ImpairError::probe(lab, e))
}

/// Replaces the settings of an end whose program is already attached.
pub fn update(lab: &str, k: IfaceKey, cfg: ImpairConfig) -> Result<(), ImpairError> {
    let mut settings = open_config(lab)?;
    settings
        .insert(k, cfg, 0)
        .map_err(|e| ImpairError::map(lab, CONFIG, e))
}

fn open_config(lab: &str) -> Result<BpfHashMap<MapData, IfaceKey, ImpairConfig>, ImpairError> {
    let data =
        MapData::from_pin(map_path(lab, CONFIG)).map_err(|e| ImpairError::map(lab, CONFIG, e))?;
    let map = Map::from_map_data(data).map_err(|e| ImpairError::map(lab, CONFIG, e))?;
    BpfHashMap::try_from(map).map_err(|e| ImpairError::map(lab, CONFIG, e))
}

/// Detaches the program from one end and forgets its settings and counters.
pub fn detach(
    lab: &str,
    netns: &str,
    ifname: &str,
    k: Option<IfaceKey>,
) -> Result<(), ImpairError> {
    let pin = paths::link_pin(lab, netns, ifname);
    paths::remove_file(&pin)
        .map_err(|e| ImpairError::io(lab, format!("remove {}", pin.display()), e))?;
    if let Some(k) = k {
        if let Ok(mut settings) = open_config(lab) {
            let _ = settings.remove(&k);
        }
        if let Ok(mut stats) = open_stats(lab) {
            let _ = stats.remove(&k);
        }
    }
    Ok(())
}

fn open_stats(lab: &str) -> Result<PerCpuHashMap<MapData, IfaceKey, ImpairCounters>, ImpairError> {
    let data =
        MapData::from_pin(map_path(lab, STATS)).map_err(|e| ImpairError::map(lab, STATS, e))?;
    let map = Map::from_map_data(data).map_err(|e| ImpairError::map(lab, STATS, e))?;
    PerCpuHashMap::try_from(map).map_err(|e| ImpairError::map(lab, STATS, e))
}

/// Counters per end, summed over CPUs. Empty when nothing was ever attached.
pub fn counters(lab: &str) -> HashMap<IfaceKey, ImpairCounters> {
    let Ok(stats) = open_stats(lab) else {
        return HashMap::new();
    };
    stats
        .iter()
        .filter_map(Result::ok)
        .map(|(k, per_cpu)| {
            let sum = per_cpu
                .iter()
                .fold(ImpairCounters::default(), |a, c| ImpairCounters {
                    seen: a.seen + c.seen,
                    dropped: a.dropped + c.dropped,
                    duplicated: a.duplicated + c.duplicated,
                    corrupted: a.corrupted + c.corrupted,
                });
            (k, sum)
        })
        .collect()
}

/// The pinned event ring buffer of `lab`, for `trace`.
pub fn events_pin(lab: &str) -> PathBuf {
    map_path(lab, EVENTS)
}

/// Removes every pin of `lab` (links first, detaching the programs, then the maps).
pub fn remove_all(lab: &str) -> Vec<String> {
    let dir = paths::pin_dir(lab);
    let mut errors = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return errors;
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort_by_key(|p| {
        !p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("egress_"))
    });
    for p in files {
        if let Err(e) = paths::remove_file(&p) {
            errors.push(format!("remove {}: {e}", p.display()));
        }
    }
    if let Err(e) = std::fs::remove_dir(&dir) {
        errors.push(format!("remove {}: {e}", dir.display()));
    }
    // The lab's and our root directory go when nothing else (the fast path) uses them.
    let _ = std::fs::remove_dir(paths::lab_pin_dir(lab));
    let _ = std::fs::remove_dir("/sys/fs/bpf/vethscope");
    errors
}
