//! The eBPF fast path: TC programs on the host-side veth ends of a bridged lab hand
//! unicast frames straight to the destination namespace with `bpf_redirect_peer`.
//!
//! Pinned under `/sys/fs/bpf/vethscope/LAB/`: the maps `FASTPATH_FDB` (destination
//! MAC → host-side port whose peer owns it) and `FASTPATH_STATS` (per-CPU hash:
//! host-side ingress ifindex → FastpathCounters), and one TCX link per port
//! (`link-IFNAME`), so the fast path outlives the command. What else was changed to
//! make it work (OVS flows, checksum offload) is recorded in
//! `/run/vethscope/fastpath/LAB.json`, so `disable` undoes exactly that.

mod error;
mod ovs_flows;
mod plan;
mod record;

use std::path::{Path, PathBuf};

use aya::maps::{HashMap as BpfHashMap, Map, MapData, PerCpuHashMap};
use vethscope_common::{FastpathCounters, FdbEntry, FdbKey};

pub use error::FastpathError;
pub use plan::{Plan, Port};

use crate::probe::{Direction, LoadOptions, Position, Probe, Target};

const FDB: &str = "FASTPATH_FDB";
const STATS: &str = "FASTPATH_STATS";

/// Where a lab's fast-path objects are pinned.
pub fn pin_dir(lab: &str) -> PathBuf {
    Path::new("/sys/fs/bpf/vethscope").join(lab)
}

fn link_pin(lab: &str, ifname: &str) -> PathBuf {
    pin_dir(lab).join(format!("link-{ifname}"))
}

pub fn is_enabled(lab: &str) -> bool {
    pin_dir(lab).join(FDB).exists()
}

/// What `enable` did.
#[derive(Debug)]
pub struct Enabled {
    pub ports: usize,
    pub entries: usize,
    /// OVS bridges that got drop flows (userspace datapath).
    pub ovs_bridges: Vec<String>,
    /// True when it was already enabled and only the table was refreshed.
    pub refreshed: bool,
}

/// Attaches the redirect programs to every host-side veth end of `lab`'s bridges and
/// fills the forwarding table from live state. Running it again refreshes the table
/// (links that came or went, changed MACs) and attaches to new ports.
pub async fn enable(lab: &str) -> Result<Enabled, FastpathError> {
    let plan = plan::build(lab).await?;
    let refreshed = is_enabled(lab);
    let dir = pin_dir(lab);
    std::fs::create_dir_all(&dir)
        .map_err(|e| FastpathError::io(lab, format!("create {}", dir.display()), e))?;
    let mut probe = Probe::load(LoadOptions {
        ebpf_log: false,
        map_pins: vec![(FDB, dir.join(FDB)), (STATS, dir.join(STATS))],
    })
    .map_err(|e| FastpathError::probe(lab, e))?;
    let entries = fill_fdb(lab, &mut probe, &plan)?;
    let mut record = record::read(lab).unwrap_or_default();
    for port in &plan.ports {
        let pin = link_pin(lab, &port.ifname);
        if pin.exists() {
            continue;
        }
        let target = Target {
            lab: lab.to_string(),
            netns: crate::topology::HOST.to_string(),
            ifname: port.ifname.clone(),
            ifindex: port.ifindex,
            kind: "bridge-port".into(),
            peer_netns: port.peer_netns.clone(),
            peer_ifname: port.peer_ifname.clone(),
            cookie: 0,
        };
        // Last in the chain: observers (trace, serve) attach first and still see the frame.
        probe
            .attach_pinned(
                "fastpath_ingress",
                &target,
                Direction::Ingress,
                Position::Last,
                &pin,
            )
            .map_err(|e| FastpathError::probe(lab, e))?;
    }
    // OVS's userspace datapath reads ports through AF_PACKET, which sees a frame before
    // TC ingress: without these flows OVS would forward what we already redirected.
    let ovs_bridges = ovs_flows::install(lab, &plan, &mut record)?;
    record::write(lab, &record)?;
    Ok(Enabled {
        ports: plan.ports.len(),
        entries,
        ovs_bridges,
        refreshed,
    })
}

fn fill_fdb(lab: &str, probe: &mut Probe, plan: &Plan) -> Result<usize, FastpathError> {
    let map = probe
        .ebpf_mut()
        .map_mut(FDB)
        .ok_or_else(|| FastpathError::map(lab, FDB, "missing"))?;
    let mut fdb: BpfHashMap<&mut MapData, FdbKey, FdbEntry> =
        BpfHashMap::try_from(map).map_err(|e| FastpathError::map(lab, FDB, e))?;
    let wanted: Vec<(FdbKey, FdbEntry)> = plan
        .ports
        .iter()
        .map(|p| {
            (
                FdbKey {
                    mac: p.peer_mac,
                    _pad: [0; 2],
                },
                FdbEntry {
                    ifindex: p.ifindex,
                    _pad: 0,
                },
            )
        })
        .collect();
    // Stale entries (a MAC that changed, a port that went) would send frames to the
    // wrong namespace: remove everything not in the live plan.
    let stale: Vec<FdbKey> = fdb
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !wanted.iter().any(|(w, _)| w == k))
        .collect();
    for k in stale {
        let _ = fdb.remove(&k);
    }
    for (k, v) in &wanted {
        fdb.insert(k, v, 0)
            .map_err(|e| FastpathError::map(lab, FDB, e))?;
    }
    Ok(wanted.len())
}

/// Detaches the programs and removes everything pinned or changed for `lab`. Absent is success.
pub async fn disable(lab: &str) -> Result<bool, FastpathError> {
    let dir = pin_dir(lab);
    let record = record::read(lab);
    if !dir.exists() && record.is_none() {
        return Ok(false);
    }
    let mut errors = Vec::new();
    // Flows first: while they go, OVS forwards again alongside the fast path (a
    // duplicate at worst, never a loss).
    if let Some(rec) = &record
        && let Err(e) = ovs_flows::remove(lab, rec)
    {
        errors.push(e.to_string());
    }
    if let Ok(entries) = std::fs::read_dir(&dir) {
        // Links first (detaching the programs), then the maps.
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort_by_key(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("link-"))
        });
        for p in paths {
            // Subdirectories belong to other features (impairments): not ours to remove.
            if p.is_dir() {
                continue;
            }
            if let Err(e) = std::fs::remove_file(&p) {
                errors.push(format!("remove {}: {e}", p.display()));
            }
        }
    }
    // The lab's directory goes when no other feature (impairments) still uses it.
    let _ = std::fs::remove_dir(&dir);
    // The parent is ours too; remove it when no lab uses it any more.
    let _ = std::fs::remove_dir(Path::new("/sys/fs/bpf/vethscope"));
    record::remove(lab);
    if errors.is_empty() {
        Ok(true)
    } else {
        Err(FastpathError::Teardown {
            lab: lab.to_string(),
            errors,
        })
    }
}

/// One port in `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PortStatus {
    pub bridge: String,
    pub ifname: String,
    pub peer: String,
    pub attached: bool,
    pub redirected: u64,
    pub passed: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub lab: String,
    pub enabled: bool,
    pub ports: Vec<PortStatus>,
    /// Parts of the lab the fast path cannot apply to, and why.
    pub not_applicable: Vec<String>,
}

pub async fn status(lab: &str) -> Result<Status, FastpathError> {
    let plan = plan::build_lenient(lab).await?;
    let counters = read_counters(lab).unwrap_or_default();
    let ports = plan
        .ports
        .iter()
        .map(|p| {
            let c = counters
                .iter()
                .find(|(i, _)| *i == p.ifindex)
                .map(|(_, c)| *c)
                .unwrap_or_default();
            PortStatus {
                bridge: p.bridge.clone(),
                ifname: p.ifname.clone(),
                peer: format!("{}/{}", p.peer_netns, p.peer_ifname),
                attached: link_pin(lab, &p.ifname).exists(),
                redirected: c.redirected,
                passed: c.passed,
            }
        })
        .collect();
    Ok(Status {
        lab: lab.to_string(),
        enabled: is_enabled(lab),
        ports,
        not_applicable: plan.not_applicable,
    })
}

/// Per host-side ifindex counters, summed over CPUs, from the pinned map.
pub fn read_counters(lab: &str) -> Result<Vec<(u32, FastpathCounters)>, FastpathError> {
    let path = pin_dir(lab).join(STATS);
    let data = MapData::from_pin(&path).map_err(|e| FastpathError::map(lab, STATS, e))?;
    let map = Map::from_map_data(data).map_err(|e| FastpathError::map(lab, STATS, e))?;
    let stats: PerCpuHashMap<MapData, u32, FastpathCounters> =
        PerCpuHashMap::try_from(map).map_err(|e| FastpathError::map(lab, STATS, e))?;
    Ok(stats
        .iter()
        .filter_map(Result::ok)
        .map(|(ifindex, per_cpu)| {
            let sum = per_cpu
                .iter()
                .fold(FastpathCounters::default(), |a, c| FastpathCounters {
                    redirected: a.redirected + c.redirected,
                    passed: a.passed + c.passed,
                });
            (ifindex, sum)
        })
        .collect())
}
