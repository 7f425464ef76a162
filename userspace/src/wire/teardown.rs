//! `down`: remove exactly one lab's objects — found by their ownership marks (and the
//! state file's plan, for objects an interrupted `up` had not marked yet). Keeps going
//! after an error and reports every error together. Absent objects are success.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use super::{
    WireError, census, mark,
    state::{self},
};
use crate::{
    errors::ErrorList,
    fault,
    netlink::{
        LinkInfo, Netlink,
        batch::{BatchSocket, LinkRemovals, Request},
        msg,
    },
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
///
/// The order: the fast path and impairments; OVS; the root namespace's links listed;
/// the namespaces deleted (their veths go with them, in the kernel's batched cleanup);
/// what is left of ours in the root namespace, once the kernel's cleanup is done.
pub(super) async fn remove_lab(lab: &str, undo: Option<&Created>) -> Result<DownReport, WireError> {
    let undoing = undo.is_some();
    let t0 = Instant::now();
    let at = |what: &str| tracing::debug!("down {lab}: {what} at {:?}", t0.elapsed());
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
    at("fast path and impairments removed");

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

    // 2. Our root-namespace links, listed before the namespaces go: a veth whose peer
    //    sits in a namespace goes with that namespace, and is waited for once, for all
    //    of them, instead of deleted one by one (one RCU grace period apiece).
    let mut host = match BatchSocket::open_here(HOST) {
        Ok(h) => Some(h),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let bridges = planned_bridges(undo, plan.as_ref());
    let root_links = match host.as_mut().map(|h| h.links_brief()) {
        Some(Ok(links)) => ours_in_root(links, &mark::alias(lab), &bridges),
        Some(Err(e)) => {
            errors.push(e);
            Vec::new()
        }
        None => Vec::new(),
    };
    at("root namespace listed");

    // Our Linux bridges down before their ports go (see `bridges_down`).
    if let Some(h) = host.as_mut() {
        bridges_down(h, &root_links);
    }
    fault::point("bridges down");
    at("bridges down");

    // 3. Our namespaces: their interfaces and veth peers go with them. Subscribed to
    //    link removals first, to count the kernel's cleanup of those veths.
    let removals = LinkRemovals::open_here()
        .inspect_err(|e| tracing::debug!("no link announcements ({e}); polling instead"))
        .ok();
    let names = netns::list();
    let mut progress = Progress::new(names.len() + 1, !undoing);
    let planned = planned_namespaces(undo, plan.as_ref());
    let (deleted, ns_errors) = delete_namespaces(lab, &names, &planned, &mut progress);
    report.namespaces = deleted;
    errors.extend(ns_errors);
    at("namespaces deleted");

    // 4. What is left of ours in the root namespace.
    progress.step("root namespace");
    if let Some(host) = host.as_mut() {
        match remove_root_links(host, removals, root_links) {
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
    at("root namespace clean");

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

/// Linux bridges this `up` made (undo), or the plan's (down): an interrupted `up` may
/// have made one without marking it yet. Such a bridge carries no mark at all and is
/// never someone else's (whose bridge would have failed our preflight).
fn planned_bridges(undo: Option<&Created>, plan: Option<&state::LabState>) -> Vec<String> {
    match undo {
        Some(created) => created.bridges.clone(),
        None => plan
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
    }
}

/// Namespaces this `up` made (undo), or the plan's (down).
fn planned_namespaces(undo: Option<&Created>, plan: Option<&state::LabState>) -> Vec<String> {
    match undo {
        Some(created) => created.namespaces.clone(),
        None => plan
            .map(|p| p.topology.netns_names().map(str::to_string).collect())
            .unwrap_or_default(),
    }
}

/// Deletes the lab's namespaces among `names` on the pool: each namespace is read
/// (its owner mark) and, when it is the lab's, unmounted in the same job, so the
/// kernel starts cleaning up the first namespaces while the others are still read.
/// How many were deleted, and every error.
///
/// Ours: marked as the lab's, or planned and still bare (made by an `up` killed before
/// it set the mark). Each unmount waits for an RCU grace period after the mount lock is
/// released; several threads overlap those waits.
fn delete_namespaces(
    lab: &str,
    names: &[String],
    planned: &[String],
    progress: &mut Progress,
) -> (usize, ErrorList) {
    let started = Instant::now();
    let progress = std::sync::Mutex::new(progress);
    let deleted = netns::pool::map(names, |ns| {
        let mine = is_ours(ns, lab, planned);
        if let Ok(mut p) = progress.lock() {
            p.step(&format!("namespace {ns}"));
        }
        if !mine {
            return None;
        }
        let r = netns::delete(ns);
        fault::point("namespace removed");
        Some(r)
    });
    let deleted: Vec<_> = deleted.into_iter().flatten().collect();
    let tried = deleted.len();
    let mut n = 0;
    let mut errors = ErrorList::new();
    for r in deleted {
        match r {
            Ok(()) => n += 1,
            Err(e) => errors.push(e),
        }
    }
    tracing::debug!(
        "{} namespaces read, {} deleted in {:?}",
        names.len(),
        tried,
        started.elapsed()
    );
    (n, errors)
}

/// Whether namespace `ns` is the lab's, read on a pool thread: the mark on its `lo`,
/// looked up alone: one small request instead of a dump of every link, since the
/// kernel is already cleaning up the namespaces deleted before and needs the CPU (a
/// link dump also waits for RTNL, which that cleanup holds for long stretches). A
/// namespace that cannot be read is not ours. The thread leaves the namespace
/// afterwards: while it is inside, the namespace cannot be cleaned up.
fn is_ours(ns: &str, lab: &str, planned: &[String]) -> bool {
    if !netns::is_mounted(ns) {
        // A file `up` made and was killed before mounting the namespace on it.
        return planned.iter().any(|p| p == ns);
    }
    let read = || -> Result<bool, census::CensusError> {
        netns::enter(ns)?;
        let mut sock = BatchSocket::open_here(ns)?;
        let lo = sock.link_brief_by_name("lo")?;
        Ok(
            match mark::lab_of(lo.as_ref().and_then(|l| l.alias.as_deref())) {
                Some(owner) => owner == lab,
                // An unmarked planned namespace is ours only if `up` died before marking
                // it: it is still empty.
                None => {
                    planned.iter().any(|p| p == ns)
                        && sock.links_brief()?.iter().all(|l| l.name == "lo")
                }
            },
        )
    };
    let mine = read().unwrap_or_else(|e| {
        tracing::debug!(
            "namespace {ns} could not be read ({}); not the lab's",
            crate::errors::Chain(&e)
        );
        false
    });
    if let Err(e) = netns::enter(HOST) {
        tracing::debug!("{}", crate::errors::Chain(&e));
    }
    mine
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
        let Ok(links) = host.links_brief() else {
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
fn remove_root_links(
    host: &mut BatchSocket,
    removals: Option<LinkRemovals>,
    ours: Vec<LinkInfo>,
) -> Result<usize, ErrorList> {
    let (with_netns, local): (Vec<&LinkInfo>, Vec<&LinkInfo>) = ours
        .iter()
        .partition(|l| l.is_veth() && l.peer_netnsid.is_some());
    let mut errors = ErrorList::new();
    // The kernel's cleanup of the deleted namespaces removes these. A bridge goes
    // after its ports: removing a port waits for an RCU grace period, and deleting the
    // bridge first would do those one by one before the kernel's cleanup could.
    let started = Instant::now();
    let left = match wait_for_cleanup(host, removals, &with_netns) {
        Ok(left) => left,
        Err(e) => {
            errors.push(e);
            with_netns.clone()
        }
    };
    tracing::debug!(
        "veths of deleted namespaces gone after {:?}",
        started.elapsed()
    );
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

/// Waits (up to [`NETNS_CLEANUP_WAIT`]) until the kernel has removed `links`; those
/// still there. The kernel announces each removal: they are counted off as they come,
/// and a dump every quarter second (or every 5 ms without announcements) confirms —
/// instead of dumping a thousand links every few milliseconds on a busy machine.
fn wait_for_cleanup<'a>(
    host: &mut BatchSocket,
    mut removals: Option<LinkRemovals>,
    links: &[&'a LinkInfo],
) -> Result<Vec<&'a LinkInfo>, crate::netlink::NetlinkError> {
    let mut waiting: Vec<&LinkInfo> = links.to_vec();
    let deadline = Instant::now() + NETNS_CLEANUP_WAIT;
    while !waiting.is_empty() && Instant::now() < deadline {
        match removals.as_mut() {
            Some(r) => {
                let mut indexes: HashSet<u32> = waiting.iter().map(|l| l.index).collect();
                let slice = (Instant::now() + Duration::from_millis(250)).min(deadline);
                if r.wait(&mut indexes, slice).is_err() {
                    removals = None;
                }
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
        let now = host.links_brief()?;
        waiting.retain(|w| now.iter().any(|l| l.index == w.index && l.name == w.name));
    }
    Ok(waiting)
}

/// Sets our root-namespace Linux bridges down, in one batch, before the namespaces go.
///
/// The kernel's cleanup of those namespaces detaches each of the bridge's ports in
/// turn; while the bridge is up, every detached port makes it re-run its port-state
/// selection over all remaining ports, re-arming each one's multicast timers
/// (`br_stp_disable_port` → `br_port_state_selection` → `br_multicast_enable_port`):
/// work growing with the square of the ports, a third of the cleanup's CPU at 1,000
/// ports. On a bridge that is down, the ports are already disabled and none of that
/// runs. The bridge is deleted afterwards anyway; a failure here only costs time.
fn bridges_down(host: &mut BatchSocket, ours: &[LinkInfo]) {
    let requests = ours
        .iter()
        .filter(|l| l.kind.as_deref() == Some("bridge"))
        .map(|l| Request::new(msg::set_down(l.index), "set down", &l.name))
        .collect::<Vec<_>>();
    if requests.is_empty() {
        return;
    }
    for e in host
        .execute(requests)
        .into_iter()
        .filter_map(Result::err)
        .filter(|e| e.errno() != Some(libc::ENODEV))
    {
        tracing::warn!(
            "{} (the bridge is removed anyway, only more slowly)",
            crate::errors::Chain(&e)
        );
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
