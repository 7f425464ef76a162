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

use vethscope_common::{FastpathCounters, FdbEntry, FdbKey, names::map};

pub use error::FastpathError;
pub use plan::{Plan, Port};

use crate::probe::{FastpathStats, LoadOptions, PinnableMap, Probe, Target};

/// Where a lab's fast-path objects are pinned.
pub fn pin_dir(lab: &str) -> PathBuf {
    Path::new("/sys/fs/bpf/vethscope").join(lab)
}

fn link_pin(lab: &str, ifname: &str) -> PathBuf {
    pin_dir(lab).join(format!("link-{ifname}"))
}

pub fn is_enabled(lab: &str) -> bool {
    pin_dir(lab).join(map::FASTPATH_FDB).exists()
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
    make_pin_dir(&dir).map_err(|e| {
        FastpathError::io(
            lab,
            format!("create {}", dir.display()),
            std::io::Error::other(e),
        )
    })?;
    let mut probe = Probe::load(LoadOptions {
        ebpf_log: false,
        map_pins: [PinnableMap::FastpathFdb, PinnableMap::FastpathStats]
            .into_iter()
            .map(|m| (m, dir.join(m.name())))
            .collect(),
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
            .attach_fastpath(&target, &pin)
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
    probe
        .sync_fastpath_table(&wanted)
        .map_err(|e| FastpathError::probe(lab, e))?;
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
    // Walked with safefs: a planted `vethscope/LAB -> /etc` is refused, never followed.
    if let Err(e) = remove_pins(&dir) {
        errors.push(e);
    }
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

/// Creates `/sys/fs/bpf/vethscope/LAB` with mode 0700 through safefs: no symlink on the
/// way is followed, and an existing directory must be ours.
fn make_pin_dir(dir: &Path) -> Result<(), String> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no lab directory name", dir.display()))?;
    crate::safefs::Dir::bpf(true)
        .and_then(|root| match root {
            Some(root) => root.subdir(name, true),
            None => Ok(None),
        })
        .map_err(|e| e.to_string())?
        .map(|_| ())
        .ok_or_else(|| format!("cannot create {}", dir.display()))
}

/// Removes the pins in `dir` (links first: that detaches the programs, then the maps),
/// then `dir`, then the parent when no lab uses it any more. Nothing is followed: a
/// symlink on the way is an error, and each entry's owner is checked before unlinking.
fn remove_pins(dir: &Path) -> Result<(), String> {
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        return Err(format!("{} has no lab directory name", dir.display()));
    };
    let root = match crate::safefs::Dir::bpf(false) {
        Ok(Some(root)) => root,
        Ok(None) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let lab_dir = match root.subdir(name, false) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let mut names = lab_dir.list().map_err(|e| e.to_string())?;
    names.sort_by_key(|n| !n.starts_with("link-"));
    let mut errors = Vec::new();
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
            errors.push(e.to_string());
        }
    }
    drop(lab_dir);
    // The lab's directory goes when no other feature still uses it.
    match root.remove_dir(name) {
        Err(crate::safefs::SafeFsError::Sys {
            errno: nix::errno::Errno::ENOTEMPTY,
            ..
        }) => {}
        Err(e) => errors.push(e.to_string()),
        Ok(_) => {}
    }
    // The parent is ours too; it goes when empty (ENOTEMPTY otherwise: other labs).
    if let Ok(parent) = crate::safefs::Dir::system(Path::new(crate::safefs::BPF_ROOT)) {
        let _ = parent.remove_dir(crate::safefs::BPF_DIR);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
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
    let stats =
        FastpathStats::open_pinned(&pin_dir(lab)).map_err(|e| FastpathError::probe(lab, e))?;
    Ok(stats.totals().into_iter().collect())
}
