//! `down`: remove exactly one lab's objects — found by their ownership marks (and the
//! state file's plan, for objects an interrupted `up` had not marked yet). Keeps going
//! after an error and reports every error together. Absent objects are success.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{
    WireError, census, mark,
    state::{self},
};
use crate::{
    errors::ErrorList,
    fault,
    netlink::{LinkInfo, Netlink, batch::BatchSocket, batch::Request, msg},
    netns, ovs,
    progress::Progress,
    topology::{
        BridgeKind, HOST,
        names::{self, NameKind},
    },
};

/// How long `down` waits for the kernel to remove the veths of deleted namespaces
/// before deleting what is left one by one (a namespace kept alive by a process).
const NETNS_CLEANUP_WAIT: Duration = Duration::from_secs(10);

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
    labs.extend(census::owners(&netns::list()).into_iter().flatten());
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
    let mut errors = ErrorList::new();
    for lab in known_labs().await {
        match down(&lab).await {
            Ok(r) => reports.push(r),
            Err(e) => errors.push(e),
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
    let mut errors = ErrorList::new();

    // 0. The fast path: its pinned programs and maps, OVS flows and offload changes.
    if let Err(e) = crate::fastpath::disable_locked(lab).await {
        errors.extend(e.into_list());
    }
    // Impairments: pinned programs and maps, and the record. Their qdiscs and link
    // states go with the interfaces below.
    if let Err(e) = crate::impair::remove_lab(lab) {
        errors.extend(e.into_list());
    }
    fault::point("fast path removed");

    // 1. OVS first: deleting a port closes vswitchd's tap of an internal port, which
    //    would otherwise be recreated; and OVS must let go of the veth ends.
    let uses_ovs = plan
        .as_ref()
        .is_none_or(|p| p.topology.uses_ovs() || p.previous.as_ref().is_some_and(|q| q.uses_ovs()));
    if uses_ovs {
        let (n, ovs_errors) = remove_ovs(lab, undoing).await;
        report.ovs_objects = n;
        errors.extend(ovs_errors);
    }

    // 2. Root-namespace interfaces carrying our mark; plus planned bridges an interrupted
    //    `up` made but had not marked yet (they carry no mark at all — never someone
    //    else's, whose bridge would have failed our preflight). Listed before the
    //    namespaces go (step 4 removes them): a veth whose peer sits in a namespace goes
    //    with that namespace, and is waited for once, for all of them, instead of
    //    deleted one by one (one RCU grace period apiece).
    let planned_bridges: Vec<String> = match undo {
        Some(created) => created.bridges.clone(),
        None => plan
            .as_ref()
            .map(|p| {
                p.topology
                    .bridges
                    .iter()
                    // A bridge in a lab namespace goes with the namespace.
                    .filter(|b| b.kind == BridgeKind::Linux && b.netns.is_none())
                    .map(|b| b.name.clone())
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut host = match BatchSocket::open_here(HOST) {
        Ok(h) => Some(h),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let root_links = match host.as_mut().map(|h| h.links()) {
        Some(Ok(links)) => ours_in_root(links, &alias, &planned_bridges),
        Some(Err(e)) => {
            errors.push(e);
            Vec::new()
        }
        None => Vec::new(),
    };

    // 3. Namespaces: marked ones (their interfaces and veth peers go with them, in one
    //    batched cleanup in the kernel), and planned ones that are still bare (made,
    //    killed before the mark was set). Each namespace is read once, on the pool.
    let planned_ns: Vec<String> = match undo {
        Some(created) => created.namespaces.clone(),
        None => plan
            .as_ref()
            .map(|p| p.topology.netns_names().map(str::to_string).collect())
            .unwrap_or_default(),
    };
    let started = Instant::now();
    let names = netns::list();
    let mut ours = Vec::new();
    for (ns, facts) in names.iter().zip(census::read(&names, |_| false)) {
        let mine = match &facts {
            Ok(f) => match f.owner() {
                Some(owner) => owner == lab,
                // An unmarked planned namespace is ours only if `up` died before
                // marking it: it is still empty, or its file was never mounted.
                None => planned_ns.contains(ns) && (!f.mounted || f.is_bare()),
            },
            Err(_) => false,
        };
        if mine {
            ours.push(ns.clone());
        }
    }
    tracing::debug!("{} namespaces read at {:?}", names.len(), started.elapsed());
    // On the pool: each unmount waits for an RCU grace period after the mount lock is
    // released, so several threads overlap those waits.
    let progress = std::sync::Mutex::new(Progress::new(ours.len() + 1, undo.is_none()));
    let deleted = netns::pool::map(&ours, |ns| {
        let r = netns::delete(ns);
        if let Ok(mut p) = progress.lock() {
            p.step(&format!("namespace {ns}"));
        }
        fault::point("namespace removed");
        r
    });
    let mut progress = progress
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for r in deleted {
        match r {
            Ok(()) => report.namespaces += 1,
            Err(e) => errors.push(e),
        }
    }
    tracing::debug!(
        "{} namespaces deleted at {:?}",
        ours.len(),
        started.elapsed()
    );

    // 4. What is left of ours in the root namespace.
    progress.step("root namespace");
    if let Some(host) = host.as_mut() {
        match remove_root_links(host, root_links) {
            Ok(n) => report.interfaces += n,
            Err(e) => errors.extend(e),
        }
        // The host ends of veths whose namespace was just deleted vanish a moment
        // later. An `up` killed before it marked such an end leaves it unmarked: wait
        // (bounded) until the planned ones are gone, so that `down` returning means
        // gone and an immediate `up` finds the names free.
        if report.namespaces > 0
            && let Some(p) = &plan
        {
            wait_for_host_ends(host, &p.topology);
        }
    }
    progress.finish();

    // 5. Stop the OVS daemons if we started them and no lab uses OVS any more.
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

/// Waits up to 5 s until no unmarked root-namespace veth end of the plan exists
/// (one dump per look, however many ends the plan has).
fn wait_for_host_ends(host: &mut BatchSocket, t: &crate::topology::Topology) {
    let names: std::collections::HashSet<&str> = t
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
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let Ok(links) = host.links() else {
            return;
        };
        let lingering: Vec<String> = links
            .into_iter()
            .filter(|l| l.alias.is_none() && l.is_veth() && names.contains(l.name.as_str()))
            .map(|l| l.name)
            .collect();
        if lingering.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            tracing::warn!(
                "veth ends {} are still there 5 s after their namespaces were removed",
                lingering.join(", ")
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes the lab's OVS ports and bridges, going on after an error; returns how many
/// were removed and every error.
async fn remove_ovs(lab: &str, undoing: bool) -> (usize, ErrorList) {
    // The lock first, then the daemons: a concurrent `down` of another lab may stop
    // them in between otherwise. When undoing a failed `up`, that `up` already holds
    // the lock (and flock is per open file, so taking it again would wait forever).
    let _lock = if undoing {
        None
    } else {
        match state::ovs_lock() {
            Ok(l) => Some(l),
            Err(e) => return (0, ErrorList::one(e)),
        }
    };
    let Some(ep) = ovs::find_running(&super::ovs_run_dir()) else {
        return (0, ErrorList::new());
    };
    let mut db = match ovs::Ovsdb::connect(&ep) {
        Ok(db) => db,
        Err(e) => return (0, ErrorList::one(e)),
    };
    let owned = match db.owned(mark::OVS_KEY, lab) {
        Ok(o) => o,
        Err(e) => return (0, ErrorList::one(e)),
    };
    let mut n = 0;
    let mut errors = ErrorList::new();
    for (bridge, port) in &owned.ports {
        match db.del_port(bridge, port) {
            Ok(()) => n += 1,
            Err(e) => errors.push(e),
        }
        fault::point("OVS port removed");
    }
    for bridge in &owned.bridges {
        match db.del_bridge(bridge) {
            Ok(()) => n += 1,
            Err(e) => errors.push(e),
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
        tracing::warn!(
            "could not stop the Open vSwitch daemons vethscope started: {}",
            crate::errors::Chain(&e)
        );
    }
}

/// Our links among the root namespace's.
fn ours_in_root(links: Vec<LinkInfo>, alias: &str, planned_bridges: &[String]) -> Vec<LinkInfo> {
    links
        .into_iter()
        .filter(|link| {
            link.alias.as_deref() == Some(alias)
                || (link.alias.is_none()
                    && planned_bridges.contains(&link.name)
                    && link.kind.as_deref() == Some("bridge"))
        })
        .collect()
}

/// Removes our root-namespace links (listed before the namespaces were deleted);
/// returns how many. Links that go with a deleted namespace are waited for, then
/// deleted if still there after [`NETNS_CLEANUP_WAIT`].
fn remove_root_links(host: &mut BatchSocket, ours: Vec<LinkInfo>) -> Result<usize, ErrorList> {
    let (with_netns, local): (Vec<&LinkInfo>, Vec<&LinkInfo>) = ours
        .iter()
        .partition(|l| l.is_veth() && l.peer_netnsid.is_some());
    let mut errors = ErrorList::new();
    // The kernel's cleanup of the deleted namespaces removes these. A bridge goes
    // after its ports: removing a port waits for an RCU grace period, and deleting the
    // bridge first would do those one by one before the kernel's cleanup could.
    let mut waiting: Vec<LinkInfo> = with_netns.into_iter().cloned().collect();
    let started = Instant::now();
    let deadline = started + NETNS_CLEANUP_WAIT;
    while !waiting.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        match host.links() {
            Ok(now) => {
                waiting.retain(|w| now.iter().any(|l| l.index == w.index && l.name == w.name))
            }
            Err(e) => {
                errors.push(e);
                break;
            }
        }
    }
    tracing::debug!(
        "veths of deleted namespaces gone after {:?}",
        started.elapsed()
    );
    let left: Vec<&LinkInfo> = waiting.iter().collect();
    if !left.is_empty() {
        tracing::info!(
            "{} veths of deleted namespaces are still there after {:?}; deleting them",
            left.len(),
            NETNS_CLEANUP_WAIT
        );
    }
    errors.extend(delete_links(host, &left));
    errors.extend(delete_links(host, &local));
    fault::point("host interfaces removed");
    if errors.is_empty() {
        Ok(ours.len())
    } else {
        Err(errors)
    }
}

/// Deletes links in one batch; a link already gone (its veth peer went first) is fine.
fn delete_links(host: &mut BatchSocket, links: &[&LinkInfo]) -> ErrorList {
    if links.is_empty() {
        return ErrorList::new();
    }
    let requests = links
        .iter()
        .map(|l| Request::new(msg::del_link(l.index), "delete interface", &l.name))
        .collect();
    host.execute(requests)
        .into_iter()
        .filter_map(Result::err)
        .filter(|e| e.errno() != Some(libc::ENODEV))
        .collect()
}
