//! The eBPF engine: the `impair_egress` program pinned on each end that needs loss,
//! duplication or corruption, with its settings and counters in maps pinned under
//! `/sys/fs/bpf/vethscope/LAB/impair/`.

use std::collections::HashMap;
use std::path::PathBuf;

use vethscope_common::{IfaceKey, ImpairConfig, ImpairCounters, names::map};

use super::{ImpairError, paths, spec::Impairment};
use crate::probe::{ImpairConfigPinned, ImpairStats, LoadOptions, PinnableMap, Probe, Target};

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

/// Puts `cfg` in the lab's settings map and attaches the program to the end (once).
/// The settings go in first, so the first packet the program sees is already judged.
pub fn attach(lab: &str, target: &Target, cfg: ImpairConfig) -> Result<(), ImpairError> {
    let dir = paths::ensure_pin_dir(lab)?;
    let mut probe = Probe::load(LoadOptions {
        ebpf_log: false,
        map_pins: [
            PinnableMap::ImpairConfig,
            PinnableMap::ImpairStats,
            PinnableMap::ImpairEvents,
        ]
        .into_iter()
        .map(|m| (m, dir.join(m.name())))
        .collect(),
    })
    .map_err(|e| ImpairError::probe(lab, e))?;
    probe
        .set_impair_config(key(target.cookie, target.ifindex), cfg)
        .map_err(|e| ImpairError::probe(lab, e))?;
    let pin = paths::link_pin(lab, &target.netns, &target.ifname);
    if std::fs::symlink_metadata(&pin).is_ok() {
        return Ok(());
    }
    // Last in the egress chain: observers (trace, serve) attach first and still see a
    // packet this program drops.
    probe
        .attach_impair(target, &pin)
        .map_err(|e| ImpairError::probe(lab, e))
}

/// Replaces the settings of an end whose program is already attached.
pub fn update(lab: &str, k: IfaceKey, cfg: ImpairConfig) -> Result<(), ImpairError> {
    ImpairConfigPinned::open_pinned(&paths::pin_dir(lab))
        .and_then(|mut m| m.set(k, cfg))
        .map_err(|e| ImpairError::probe(lab, e))
}

/// Detaches the program from one end and forgets its settings and counters.
pub fn detach(
    lab: &str,
    netns: &str,
    ifname: &str,
    k: Option<IfaceKey>,
) -> Result<(), ImpairError> {
    paths::remove_pin(lab, &paths::link_pin_name(netns, ifname))?;
    if let Some(k) = k {
        let dir = paths::pin_dir(lab);
        if let Ok(mut settings) = ImpairConfigPinned::open_pinned(&dir) {
            settings.remove(k);
        }
        if let Ok(mut stats) = ImpairStats::open_pinned(&dir) {
            stats.remove(k);
        }
    }
    Ok(())
}

/// Counters per end, summed over CPUs. Empty when nothing was ever attached.
pub fn counters(lab: &str) -> HashMap<IfaceKey, ImpairCounters> {
    ImpairStats::open_pinned(&paths::pin_dir(lab))
        .map(|s| s.totals())
        .unwrap_or_default()
}

/// The pinned event ring buffer of `lab`, for `trace`.
pub fn events_pin(lab: &str) -> PathBuf {
    paths::pin_dir(lab).join(map::IMPAIR_EVENTS)
}

/// Removes every pin of `lab` (links first, detaching the programs, then the maps).
pub fn remove_all(lab: &str) -> crate::errors::ErrorList {
    paths::remove_pin_dir(lab)
}
