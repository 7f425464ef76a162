//! `down`: remove exactly one lab's objects — found by their ownership marks (and the
//! state file's plan, for objects an interrupted `up` had not marked yet). Keeps going
//! after an error and reports every error together. Absent objects are success.

use std::collections::BTreeSet;

use super::{
    WireError, mark,
    state::{self},
};
use crate::{
    fault,
    netlink::Netlink,
    netns, ovs,
    topology::{
        BridgeKind, HOST,
        names::{self, NameKind},
    },
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

/// What a failed `up` made itself before marking it: the only unmarked objects its
/// undo removes.
#[derive(Debug, Default)]
pub(super) struct Created {
    pub namespaces: Vec<String>,
    pub bridges: Vec<String>,
}

pub async fn down(lab: &str) -> Result<DownReport, WireError> {
    let _lock = state::lab_lock(lab)?;
    remove_lab(lab, None).await
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
    // Marks are kernel aliases anyone with CAP_NET_ADMIN can set: a "lab" whose name is
    // not a valid lab name is not ours and never reaches a path.
    labs.retain(|l| {
        let ok = names::check(NameKind::Lab, l).is_ok();
        if !ok {
            tracing::warn!("ignoring a vethscope mark with an invalid lab name {:?}", l);
        }
        ok
    });
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
/// `undo` lists what that `up` made; without it (a `down`), unmarked objects of the
/// state file's plan are removed when they look like an interrupted `up` left them.
pub(super) async fn remove_lab(lab: &str, undo: Option<&Created>) -> Result<DownReport, WireError> {
    let undoing = undo.is_some();
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
    fault::point("fast path removed");

    // 1. OVS first: deleting a port closes vswitchd's tap of an internal port, which
    //    would otherwise be recreated; and OVS must let go of the veth ends.
    let uses_ovs = plan.as_ref().is_none_or(|p| p.topology.uses_ovs());
    if uses_ovs {
        let (n, ovs_errors) = remove_ovs(lab, undoing).await;
        report.ovs_objects = n;
        errors.extend(ovs_errors);
    }

    // 2. Root-namespace interfaces carrying our mark; plus planned bridges an interrupted
    //    `up` made but had not marked yet (they carry no mark at all — never someone
    //    else's, whose bridge would have failed our preflight).
    match Netlink::open(HOST).await {
        Ok(host) => match host.links().await {
            Ok(links) => {
                let planned: Vec<String> = match undo {
                    Some(created) => created.bridges.clone(),
                    None => plan
                        .as_ref()
                        .map(|p| {
                            p.topology
                                .bridges
                                .iter()
                                .filter(|b| b.kind == BridgeKind::Linux)
                                .map(|b| b.name.clone())
                                .collect()
                        })
                        .unwrap_or_default(),
                };
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
                        fault::point("host interface removed");
                    }
                }
            }
            Err(e) => errors.push(e.to_string()),
        },
        Err(e) => errors.push(e.to_string()),
    }

    // 3. Namespaces: marked ones (their interfaces and veth peers go with them), and
    //    planned ones that are still bare (made, killed before the mark was set).
    let planned_ns: Vec<String> = match undo {
        Some(created) => created.namespaces.clone(),
        None => plan
            .as_ref()
            .map(|p| p.topology.netns_names().map(str::to_string).collect())
            .unwrap_or_default(),
    };
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
            fault::point("namespace removed");
        }
    }

    // 3b. The host ends of veths whose namespace was just deleted vanish a moment
    //     later (the kernel cleans namespaces up asynchronously). An `up` killed
    //     before it marked such an end leaves it unmarked: wait (bounded) until the
    //     planned ones are gone, so that `down` returning means gone and an immediate
    //     `up` finds the names free.
    if report.namespaces > 0
        && let Some(p) = &plan
    {
        wait_for_host_ends(&p.topology).await;
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

/// Waits up to 5 s until no unmarked root-namespace veth end of the plan exists.
async fn wait_for_host_ends(t: &crate::topology::Topology) {
    let names: Vec<&str> = t
        .links
        .iter()
        .filter_map(|l| match l {
            crate::topology::Link::Veth { ends, .. } => Some(ends),
            _ => None,
        })
        .flat_map(|ends| ends.iter())
        .filter(|e| e.netns() == HOST)
        .map(|e| e.name.as_str())
        .collect();
    if names.is_empty() {
        return;
    }
    let Ok(host) = Netlink::open(HOST).await else {
        return;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut lingering = Vec::new();
        for n in &names {
            if let Ok(Some(link)) = host.link_by_name(n).await
                && link.alias.is_none()
                && link.kind.as_deref() == Some("veth")
            {
                lingering.push(*n);
            }
        }
        if lingering.is_empty() {
            return;
        }
        if std::time::Instant::now() > deadline {
            tracing::warn!(
                "veth ends {} are still there 5 s after their namespaces were removed",
                lingering.join(", ")
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
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

/// Removes the lab's OVS ports and bridges, going on after an error; returns how many
/// were removed and every error.
async fn remove_ovs(lab: &str, undoing: bool) -> (usize, Vec<String>) {
    // The lock first, then the daemons: a concurrent `down` of another lab may stop
    // them in between otherwise. When undoing a failed `up`, that `up` already holds
    // the lock (and flock is per open file, so taking it again would wait forever).
    let _lock = if undoing {
        None
    } else {
        match state::ovs_lock() {
            Ok(l) => Some(l),
            Err(e) => return (0, vec![e.to_string()]),
        }
    };
    let Some(ep) = ovs::find_running(&super::ovs_run_dir()) else {
        return (0, Vec::new());
    };
    let mut db = match ovs::Ovsdb::connect(&ep) {
        Ok(db) => db,
        Err(e) => return (0, vec![e.to_string()]),
    };
    let owned = match db.owned(mark::OVS_KEY, lab) {
        Ok(o) => o,
        Err(e) => return (0, vec![e.to_string()]),
    };
    let mut n = 0;
    let mut errors = Vec::new();
    for (bridge, port) in &owned.ports {
        match db.del_port(bridge, port) {
            Ok(()) => n += 1,
            Err(e) => errors.push(e.to_string()),
        }
        fault::point("OVS port removed");
    }
    for bridge in &owned.bridges {
        match db.del_bridge(bridge) {
            Ok(()) => n += 1,
            Err(e) => errors.push(e.to_string()),
        }
        fault::point("OVS bridge removed");
    }
    (n, errors)
}

/// Stops the OVS daemons vethscope started when no lab owns anything in them any more.
/// The caller must not hold the OVS lock.
pub(super) fn stop_ovs_if_unused() {
    let run_dir = super::ovs_run_dir();
    let Ok(_lock) = state::ovs_lock() else {
        return;
    };
    let Some(ep) = ovs::find_running(&run_dir) else {
        return;
    };
    if !ep.started_by_us {
        return;
    }
    let in_use = ovs::Ovsdb::connect(&ep)
        .and_then(|mut db| db.any_owned(mark::OVS_KEY))
        .unwrap_or(true);
    if !in_use && let Err(e) = ovs::stop_ours(&run_dir) {
        tracing::warn!("could not stop the Open vSwitch daemons vethscope started: {e}");
    }
}
