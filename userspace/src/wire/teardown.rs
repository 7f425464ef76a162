//! `down`: remove exactly one lab's objects — found by their ownership marks (and the
//! state file's plan, for objects an interrupted `up` had not marked yet). Keeps going
//! after an error and reports every error together. Absent objects are success.

use std::collections::BTreeSet;

use super::{
    WireError, mark,
    state::{self},
};
use crate::{
    netlink::Netlink,
    netns, ovs,
    topology::{BridgeKind, HOST},
};

#[derive(Debug, Default)]
pub struct DownReport {
    pub lab: String,
    pub namespaces: usize,
    pub interfaces: usize,
    pub ovs_objects: usize,
    /// True when nothing of the lab existed.
    pub was_absent: bool,
}

pub async fn down(lab: &str) -> Result<DownReport, WireError> {
    let _lock = state::lab_lock(lab)?;
    remove_lab(lab, false).await
}

/// Every lab vethscope knows of: state files plus marks found on live objects.
pub async fn known_labs() -> BTreeSet<String> {
    let mut labs: BTreeSet<String> = state::labs().into_iter().collect();
    for ns in netns::list() {
        if let Some(owner) = super::preflight::owner_of_netns(&ns).await {
            labs.insert(owner);
        }
    }
    if let Ok(host) = Netlink::open(HOST).await
        && let Ok(links) = host.links().await
    {
        labs.extend(
            links
                .iter()
                .filter_map(|l| mark::lab_of(l.alias.as_deref()).map(str::to_string)),
        );
    }
    if let Some(ep) = ovs::find_running(&super::ovs_run_dir())
        && let Ok(mut db) = ovs::Ovsdb::connect(&ep)
        && let Ok(bridges) = db.bridges()
    {
        for b in bridges {
            if let Some(lab) = b.external_ids.get(mark::OVS_KEY) {
                labs.insert(lab.clone());
            }
        }
    }
    labs
}

pub async fn down_all() -> Result<Vec<DownReport>, WireError> {
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for lab in known_labs().await {
        match down(&lab).await {
            Ok(r) => reports.push(r),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(reports)
    } else {
        Err(WireError::Teardown {
            lab: "*".into(),
            errors,
        })
    }
}

/// The work of `down`, also used to undo a failed `up` (the caller holds the lab lock).
pub(super) async fn remove_lab(lab: &str, undoing: bool) -> Result<DownReport, WireError> {
    let alias = mark::alias(lab);
    let plan = state::read(lab);
    let mut report = DownReport {
        lab: lab.to_string(),
        ..Default::default()
    };
    let mut errors: Vec<String> = Vec::new();

    // 0. The fast path: its pinned programs and maps, OVS flows and offload changes.
    if let Err(e) = crate::fastpath::disable(lab).await {
        errors.push(e.to_string());
    }
    // Impairments: pinned programs and maps, and the record. Their qdiscs and link
    // states go with the interfaces below.
    if let Err(e) = crate::impair::remove_lab(lab) {
        errors.push(e.to_string());
    }

    // 1. OVS first: deleting a port closes vswitchd's tap of an internal port, which
    //    would otherwise be recreated; and OVS must let go of the veth ends.
    let uses_ovs = plan.as_ref().is_none_or(|p| p.topology.uses_ovs());
    if uses_ovs {
        match remove_ovs(lab, undoing).await {
            Ok(n) => report.ovs_objects = n,
            Err(e) => errors.push(e),
        }
    }

    // 2. Root-namespace interfaces carrying our mark; plus planned bridges an interrupted
    //    `up` made but had not marked yet (they carry no mark at all — never someone
    //    else's, whose bridge would have failed our preflight).
    match Netlink::open(HOST).await {
        Ok(host) => match host.links().await {
            Ok(links) => {
                let planned: Vec<String> = plan
                    .as_ref()
                    .map(|p| {
                        p.topology
                            .bridges
                            .iter()
                            .filter(|b| b.kind == BridgeKind::Linux)
                            .map(|b| b.name.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                for link in &links {
                    let ours = link.alias.as_deref() == Some(alias.as_str())
                        || (link.alias.is_none()
                            && planned.contains(&link.name)
                            && link.kind.as_deref() == Some("bridge"));
                    if ours {
                        match host.delete(link).await {
                            Ok(()) => report.interfaces += 1,
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                }
            }
            Err(e) => errors.push(e.to_string()),
        },
        Err(e) => errors.push(e.to_string()),
    }

    // 3. Namespaces: marked ones (their interfaces and veth peers go with them), and
    //    planned ones that are still bare (made, killed before the mark was set).
    let planned_ns: Vec<String> = plan
        .as_ref()
        .map(|p| p.topology.netns_names().map(str::to_string).collect())
        .unwrap_or_default();
    for ns in netns::list() {
        let ours = match super::preflight::owner_of_netns(&ns).await {
            Some(owner) => owner == lab,
            // An unmarked planned namespace is ours only if `up` died before marking
            // it: it is still empty, or its file was never mounted.
            None => planned_ns.contains(&ns) && (!netns::is_mounted(&ns) || is_bare(&ns).await),
        };
        if ours {
            match netns::delete(&ns) {
                Ok(()) => report.namespaces += 1,
                Err(e) => errors.push(e.to_string()),
            }
        }
    }

    // 4. Stop the OVS daemons if we started them and no lab uses OVS any more.
    if uses_ovs && !undoing {
        stop_ovs_if_unused();
    }

    if errors.is_empty() {
        state::remove(lab);
        report.was_absent =
            report.namespaces + report.interfaces + report.ovs_objects == 0 && plan.is_none();
        Ok(report)
    } else {
        Err(WireError::Teardown {
            lab: lab.to_string(),
            errors,
        })
    }
}

/// A namespace holding nothing but `lo`: what `up` leaves if killed right after creating it.
async fn is_bare(ns: &str) -> bool {
    match Netlink::open(ns).await {
        Ok(nl) => nl
            .links()
            .await
            .is_ok_and(|l| l.iter().all(|l| l.name == "lo")),
        Err(_) => false,
    }
}

async fn remove_ovs(lab: &str, undoing: bool) -> Result<usize, String> {
    let Some(ep) = ovs::find_running(&super::ovs_run_dir()) else {
        return Ok(0);
    };
    // When undoing a failed `up`, that `up` already holds the OVS lock (and flock is
    // per open file, so taking it again here would wait forever).
    let _lock = if undoing {
        None
    } else {
        Some(state::ovs_lock().map_err(|e| e.to_string())?)
    };
    let mut db = ovs::Ovsdb::connect(&ep).map_err(|e| e.to_string())?;
    let owned = db.owned(mark::OVS_KEY, lab).map_err(|e| e.to_string())?;
    let mut n = 0;
    for (bridge, port) in &owned.ports {
        db.del_port(bridge, port).map_err(|e| e.to_string())?;
        n += 1;
    }
    for bridge in &owned.bridges {
        db.del_bridge(bridge).map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}

fn stop_ovs_if_unused() {
    let run_dir = super::ovs_run_dir();
    let Some(ep) = ovs::find_running(&run_dir) else {
        return;
    };
    if !ep.started_by_us {
        return;
    }
    let Ok(_lock) = state::ovs_lock() else {
        return;
    };
    let in_use = ovs::Ovsdb::connect(&ep)
        .and_then(|mut db| db.any_owned(mark::OVS_KEY))
        .unwrap_or(true);
    if !in_use && let Err(e) = ovs::stop_ours(&run_dir) {
        tracing::warn!("could not stop the Open vSwitch daemons vethscope started: {e}");
    }
}
