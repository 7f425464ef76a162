//! The eBPF fast path: TC programs on the host-side veth ends of a bridged lab hand
//! unicast frames straight to the destination namespace with `bpf_redirect_peer`.
//!
//! The forwarding table is keyed by (bridge, VLAN, destination MAC) and holds only
//! ports the bridge forwards to (see plan.rs), so a frame is never carried between
//! bridges or VLANs, nor to a port the bridge would not send it to.
//!
//! Pinned under `/sys/fs/bpf/vethscope/LAB/` (LAB encoded by [`bpf_name`]): the maps
//! `FASTPATH_FDB`, `FASTPATH_PORTS` (ingress ifindex → bridge and VLAN) and
//! `FASTPATH_STATS` (per-CPU: ingress ifindex → FastpathCounters). The programs are
//! legacy TC filters (clsact + cls_bpf direct-action) at [`TC_PRIORITY`]: attaching one
//! is a netlink round trip, where a TCX link costs an RCU grace period (15–35 ms; a
//! thousand ports would take half a minute — BENCHMARKS.md). Legacy filters run after
//! every TCX program, so observers (`trace`, `serve`) still see each frame first. They
//! stay attached after the command exits, and go with their interface.
//!
//! What was changed outside bpffs (TC filters and qdiscs, OVS flows, checksum offload)
//! is recorded in `/run/vethscope/fastpath/LAB.json` *before* it is changed, so
//! `disable` (also after a crash) undoes exactly that. `enable` and `disable` hold the
//! lab's lock, the one `up` and `down` take.

mod error;
mod fault;
mod ovs_flows;
mod plan;
mod record;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use vethscope_common::{
    FASTPATH_ISOLATED, FASTPATH_VLAN_AWARE, FastpathCounters, FastpathPort, FdbEntry, FdbKey,
    names::{map, program},
};

pub use crate::safefs::bpf_name;
pub use error::FastpathError;

use crate::errors::ErrorList;
pub use fault::ENV as FAULT_ENV;
pub use plan::{Plan, Port, domain_of};

use crate::netlink::Netlink;
use crate::probe::{FastpathStats, LoadOptions, PinnableMap, Probe};
use crate::topology::HOST;

const PROGRAM: &str = program::FASTPATH_INGRESS;
/// Our filters' TC priority on the ingress hook: high, so that other legacy filters
/// (lower numbers run first) see a frame before we redirect it.
pub const TC_PRIORITY: u16 = 0xfa57;
pub const TC_HANDLE: u32 = 0xfa57;

/// Where a lab's fast-path maps are pinned (the lab's name encoded for bpffs).
pub fn pin_dir(lab: &str) -> PathBuf {
    Path::new(crate::safefs::BPF_ROOT)
        .join(crate::safefs::BPF_DIR)
        .join(bpf_name(lab))
}

pub fn is_enabled(lab: &str) -> bool {
    pin_dir(lab).join(map::FASTPATH_FDB).exists()
}

/// What `enable` did.
#[derive(Debug)]
pub struct Enabled {
    pub ports: usize,
    /// Ports that got the program now (new, recreated, or never attached).
    pub attached: usize,
    pub entries: usize,
    /// OVS bridges that got drop flows (userspace datapath).
    pub ovs_bridges: Vec<String>,
    /// True when it was already enabled and only the table was refreshed.
    pub refreshed: bool,
}

fn lock(lab: &str) -> Result<crate::wire::state::Lock, FastpathError> {
    crate::wire::state::lab_lock(lab).map_err(|e| FastpathError::Lock {
        lab: lab.to_string(),
        source: Box::new(e),
    })
}

/// Attaches the redirect programs to every host-side veth end of `lab`'s bridges that
/// the bridge forwards from, and fills the forwarding table from live state. Running
/// it again refreshes the table (links that came or went, changed MACs, port states)
/// and attaches to ports that lack the program — checked on the live interface, so a
/// port deleted and recreated gets it again. On failure everything this run attached
/// is removed again (and, when the fast path was off before, everything of it).
pub async fn enable(lab: &str) -> Result<Enabled, FastpathError> {
    fault::start_clock();
    let _lock = lock(lab)?;
    let refreshed = is_enabled(lab) || record::exists(lab);
    let mut attached_now: Vec<u32> = Vec::new();
    match enable_locked(lab, refreshed, &mut attached_now).await {
        Ok(e) => Ok(e),
        Err(e) => {
            let undo = if refreshed {
                detach_ports(lab, &attached_now).await
            } else {
                disable_locked(lab).await.map(|_| ())
            };
            match undo {
                Ok(()) => Err(e),
                Err(u) => Err(FastpathError::Teardown {
                    lab: lab.to_string(),
                    errors: [e, FastpathError::Undo(Box::new(u))].into_iter().collect(),
                }),
            }
        }
    }
}

async fn enable_locked(
    lab: &str,
    refreshed: bool,
    attached_now: &mut Vec<u32>,
) -> Result<Enabled, FastpathError> {
    let plan = plan::build(lab).await?;
    fault::point("plan built")?;
    let dir = pin_dir(lab);
    make_pin_dir(lab, &dir)?;
    fault::point("pin directory created")?;
    let mut probe = Probe::load(LoadOptions {
        ebpf_log: false,
        map_pins: [
            PinnableMap::FastpathFdb,
            PinnableMap::FastpathPorts,
            PinnableMap::FastpathStats,
        ]
        .into_iter()
        .map(|m| (m, dir.join(m.name())))
        .collect(),
    })
    .map_err(|e| FastpathError::probe(lab, e))?;
    fault::point("maps pinned")?;
    let entries = fill_tables(lab, &mut probe, &plan)?;
    fault::point("tables filled")?;

    let nl = Netlink::open(HOST)
        .await
        .map_err(|e| FastpathError::netlink(lab, e))?;
    let mut record = record::read(lab).unwrap_or_default();
    let clsacts = nl
        .clsact_ifindexes()
        .await
        .map_err(|e| FastpathError::netlink(lab, e))?;
    let attached = attached_set(lab, &nl, plan.ports.iter().map(|p| p.ifindex)).await?;
    let mut missing = Vec::new();
    for port in &plan.ports {
        if !attached.contains(&port.ifindex) {
            record.note_port(&port.ifname, port.ifindex, !clsacts.contains(&port.ifindex));
            missing.push(port);
        }
    }
    // The intent, before any change: a kill from here on leaves a complete record.
    record::write(lab, &record)?;
    fault::point("record written")?;

    if !missing.is_empty() {
        let prog_fd = probe
            .fastpath_program_fd()
            .map_err(|e| FastpathError::probe(lab, e))?;
        for port in missing {
            if !clsacts.contains(&port.ifindex) {
                nl.add_clsact(port.ifindex)
                    .await
                    .map_err(|e| FastpathError::netlink(lab, e))?;
                fault::point("clsact added")?;
            }
            nl.add_ingress_bpf(port.ifindex, TC_PRIORITY, TC_HANDLE, prog_fd, PROGRAM)
                .await
                .map_err(|e| FastpathError::netlink(lab, e))?;
            attached_now.push(port.ifindex);
            fault::point("filter attached")?;
        }
    }
    // OVS's userspace datapath reads ports through AF_PACKET, which sees a frame before
    // TC ingress: without these flows OVS would forward what we already redirected.
    let ovs_bridges = ovs_flows::install(lab, &plan, &mut record)?;
    record::write(lab, &record)?;
    fault::point("enable done")?;
    Ok(Enabled {
        ports: plan.ports.len(),
        attached: attached_now.len(),
        entries,
        ovs_bridges,
        refreshed,
    })
}

/// Our filter on the live interface `ifindex` (by priority, handle and program name).
async fn has_our_filter(lab: &str, nl: &Netlink, ifindex: u32) -> Result<bool, FastpathError> {
    Ok(nl
        .tc_filters(ifindex, false)
        .await
        .map_err(|e| FastpathError::netlink(lab, e))?
        .iter()
        .any(|(f, bpf)| *bpf && is_ours(f)))
}

/// Which of `ifindexes` carry our filter now: one dump per interface, one after the
/// other (a netlink socket runs one dump at a time; a second one in flight is EBUSY).
async fn attached_set(
    lab: &str,
    nl: &Netlink,
    ifindexes: impl Iterator<Item = u32>,
) -> Result<std::collections::HashSet<u32>, FastpathError> {
    let mut out = std::collections::HashSet::new();
    for i in ifindexes {
        if has_our_filter(lab, nl, i).await? {
            out.insert(i);
        }
    }
    Ok(out)
}

fn is_ours(f: &crate::netlink::tc::BpfFilter) -> bool {
    f.priority == TC_PRIORITY && f.handle == TC_HANDLE && f.name == PROGRAM
}

fn fill_tables(lab: &str, probe: &mut Probe, plan: &Plan) -> Result<usize, FastpathError> {
    let wanted_fdb: Vec<(FdbKey, FdbEntry)> = plan
        .ports
        .iter()
        .flat_map(|p| {
            p.egress_vlans.iter().map(|vlan| {
                (
                    FdbKey {
                        domain: p.domain,
                        vlan: *vlan,
                        mac: p.peer_mac,
                    },
                    FdbEntry {
                        ifindex: p.ifindex,
                        flags: if p.isolated {
                            u32::from(FASTPATH_ISOLATED)
                        } else {
                            0
                        },
                    },
                )
            })
        })
        .collect();
    let wanted_ports: Vec<(u32, FastpathPort)> = plan
        .ports
        .iter()
        .map(|p| {
            let mut flags = 0;
            if p.isolated {
                flags |= FASTPATH_ISOLATED;
            }
            if p.vlan_aware {
                flags |= FASTPATH_VLAN_AWARE;
            }
            (
                p.ifindex,
                FastpathPort {
                    domain: p.domain,
                    vlan: p.ingress_vlan,
                    flags,
                },
            )
        })
        .collect();
    probe
        .sync_fastpath_tables(&wanted_ports, &wanted_fdb)
        .map_err(|e| FastpathError::probe(lab, e))?;
    Ok(wanted_fdb.len())
}

/// Removes our filters from `ifindexes` (and a clsact qdisc we added there, once
/// empty), and forgets them in the record.
async fn detach_ports(lab: &str, ifindexes: &[u32]) -> Result<(), FastpathError> {
    if ifindexes.is_empty() {
        return Ok(());
    }
    let nl = Netlink::open(HOST)
        .await
        .map_err(|e| FastpathError::netlink(lab, e))?;
    let mut record = record::read(lab).unwrap_or_default();
    let mut errors = ErrorList::new();
    let ports: Vec<record::PortRecord> = record
        .ports
        .iter()
        .filter(|p| ifindexes.contains(&p.ifindex))
        .cloned()
        .collect();
    for p in &ports {
        match detach_port(&nl, p).await {
            Ok(()) => record.ports.retain(|r| r.ifindex != p.ifindex),
            Err(e) => errors.push(e),
        }
    }
    record::write(lab, &record)?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(FastpathError::Teardown {
            lab: lab.to_string(),
            errors,
        })
    }
}

async fn detach_port(
    nl: &Netlink,
    p: &record::PortRecord,
) -> Result<(), crate::netlink::NetlinkError> {
    let filters = nl.tc_filters(p.ifindex, false).await?;
    for (f, _) in filters.iter().filter(|(f, bpf)| *bpf && is_ours(f)) {
        nl.del_ingress_filter(p.ifindex, f.priority, f.handle)
            .await?;
    }
    let _ = fault::point("filter removed");
    if p.clsact_ours
        && nl.tc_filters(p.ifindex, false).await?.is_empty()
        && nl.tc_filters(p.ifindex, true).await?.is_empty()
    {
        nl.del_clsact(p.ifindex).await?;
        let _ = fault::point("clsact removed");
    }
    Ok(())
}

/// Detaches the programs and removes everything pinned or changed for `lab`. Absent is
/// success. Takes the lab's lock.
pub async fn disable(lab: &str) -> Result<bool, FastpathError> {
    fault::start_clock();
    let _lock = lock(lab)?;
    disable_locked(lab).await
}

/// [`disable`] for a caller that holds the lab's lock (`down`).
pub async fn disable_locked(lab: &str) -> Result<bool, FastpathError> {
    let dir = pin_dir(lab);
    let record = record::read(lab);
    let dir_exists = std::fs::symlink_metadata(&dir).is_ok();
    if !dir_exists && record.is_none() && !record::exists(lab) {
        return Ok(false);
    }
    let mut errors = ErrorList::new();
    // Flows first: while they go, OVS forwards again alongside the fast path (a
    // duplicate at worst, never a loss).
    if let Some(rec) = &record
        && let Err(e) = ovs_flows::remove(lab, rec)
    {
        errors.push(e);
    }
    let _ = fault::point("OVS flows removed");
    // Then the filters (the programs stop), then the maps.
    if let Some(rec) = &record
        && !rec.ports.is_empty()
    {
        match Netlink::open(HOST).await {
            Ok(nl) => {
                for p in &rec.ports {
                    if let Err(e) = detach_port(&nl, p).await {
                        errors.push(e);
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    // Walked with safefs: a planted `vethscope/LAB -> /etc` is refused, never followed.
    if let Err(e) = remove_pins(&dir) {
        errors.push(e);
    }
    if errors.is_empty() {
        // Last: as long as it exists, a later `disable` knows what is left to undo.
        record::remove(lab);
        Ok(true)
    } else {
        Err(FastpathError::Teardown {
            lab: lab.to_string(),
            errors,
        })
    }
}

/// Creates `/sys/fs/bpf/vethscope/LAB` with mode 0700 through safefs: no symlink on the
/// way is followed, and an existing directory must be ours.
fn make_pin_dir(lab: &str, dir: &Path) -> Result<(), FastpathError> {
    let name =
        dir.file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| FastpathError::PinDirName {
                path: dir.to_path_buf(),
            })?;
    let pin_dir_err = |source| FastpathError::PinDir {
        lab: lab.to_string(),
        path: dir.to_path_buf(),
        source,
    };
    crate::safefs::Dir::bpf(true)
        .and_then(|root| match root {
            Some(root) => root.subdir(name, true),
            None => Ok(None),
        })
        .map_err(|e| pin_dir_err(Some(e)))?
        .map(|_| ())
        .ok_or_else(|| pin_dir_err(None))
}

/// Removes the pins in `dir` (links first: that detaches the programs, then the maps),
/// then `dir`, then the parent when no lab uses it any more. Nothing is followed: a
/// symlink on the way is an error, and each entry's owner is checked before unlinking.
fn remove_pins(dir: &Path) -> Result<(), ErrorList> {
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        return Err(ErrorList::one(FastpathError::PinDirName {
            path: dir.to_path_buf(),
        }));
    };
    let root = match crate::safefs::Dir::bpf(false) {
        Ok(Some(root)) => root,
        Ok(None) => return Ok(()),
        Err(e) => return Err(ErrorList::one(e)),
    };
    let lab_dir = match root.subdir(name, false) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(()),
        Err(e) => return Err(ErrorList::one(e)),
    };
    let mut names = lab_dir.list().map_err(ErrorList::one)?;
    names.sort_by_key(|n| !n.starts_with("link-"));
    let mut errors = ErrorList::new();
    for n in &names {
        // A subdirectory belongs to another feature (impairments): not ours to remove.
        if lab_dir
            .stat(n)
            .ok()
            .flatten()
            .is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        {
            continue;
        }
        if let Err(e) = lab_dir.remove_file(n) {
            errors.push(e);
        }
    }
    drop(lab_dir);
    // The lab's directory goes when no other feature still uses it.
    match root.remove_dir(name) {
        Err(crate::safefs::SafeFsError::Sys {
            errno: nix::errno::Errno::ENOTEMPTY,
            ..
        }) => {}
        Err(e) => errors.push(e),
        Ok(_) => {}
    }
    // The parent is ours too; it goes when empty (ENOTEMPTY otherwise: other labs).
    if let Ok(parent) = crate::safefs::Dir::system(Path::new(crate::safefs::BPF_ROOT)) {
        let _ = parent.remove_dir(crate::safefs::BPF_DIR);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// One port in `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PortStatus {
    pub bridge: String,
    pub ifname: String,
    pub peer: String,
    /// VLAN of the port's untagged frames (0 without VLANs).
    pub vlan: u16,
    /// Our program is attached to the live interface (checked in the kernel).
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
    let nl = Netlink::open(HOST)
        .await
        .map_err(|e| FastpathError::netlink(lab, e))?;
    let attached = attached_set(lab, &nl, plan.ports.iter().map(|p| p.ifindex)).await?;
    let mut ports = Vec::with_capacity(plan.ports.len());
    for p in &plan.ports {
        let c = counters.get(&p.ifindex).copied().unwrap_or_default();
        ports.push(PortStatus {
            bridge: p.bridge.clone(),
            ifname: p.ifname.clone(),
            peer: format!("{}/{}", p.peer_netns, p.peer_ifname),
            vlan: p.ingress_vlan,
            attached: attached.contains(&p.ifindex),
            redirected: c.redirected,
            passed: c.passed,
        });
    }
    Ok(Status {
        lab: lab.to_string(),
        enabled: is_enabled(lab),
        ports,
        not_applicable: plan.not_applicable,
    })
}

/// Per host-side ifindex counters, summed over CPUs, from the pinned map.
pub fn read_counters(lab: &str) -> Result<HashMap<u32, FastpathCounters>, FastpathError> {
    let stats =
        FastpathStats::open_pinned(&pin_dir(lab)).map_err(|e| FastpathError::probe(lab, e))?;
    Ok(stats.totals())
}
