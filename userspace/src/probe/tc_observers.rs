//! Observers (count, trace) as legacy TC filters: a clsact qdisc and one direct-action
//! cls_bpf filter per hook, added through netlink in one batch per namespace, the
//! namespaces worked through on the pool (`netns::pool`).
//!
//! Why not TCX: each TCX attach and detach waits for an RCU grace period under RTNL
//! (15–35 ms here), so 1,000 namespaces (3,000 interfaces, 6,000 programs) took half a
//! minute to start and as long to stop. A filter costs a netlink message.
//!
//! Order with the others on a hook: every observer filter has a priority below the
//! fast path's (`fastpath::TC_PRIORITY`), so it runs first and, answering
//! `TC_ACT_UNSPEC`, passes the frame on to the next filter. TCX programs (the
//! impairment on egress, anyone else's) run before all legacy filters.
//!
//! Ownership: unlike a TCX link, a filter outlives the process that added it. Each is
//! named `vethscope/PID/START/PROGRAM` (START: the process's start time, so a reused
//! pid is no owner); a later attach on the same interface removes filters whose owner
//! is gone (a crash), and `down` removes the interfaces. On exit only our own filters
//! go (by priority and handle, in the namespace we attached in), and a clsact qdisc
//! only when we added it and no filter is left on it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::{Observer, Probe, ProbeError, Target};
use crate::netlink::{
    NetlinkError,
    batch::{BatchSocket, Request},
    tc::{Hook, HookFilter, is_absent, request},
};
use crate::{netns, progress::Progress};

/// The handle of every observer filter; the priority tells processes apart.
pub const OBSERVER_HANDLE: u32 = 0x0b5e;
/// Priorities observers take, all below the fast path's 0xfa57: an observer sees a
/// frame before the fast path redirects it.
const PRIO_FIRST: u16 = 0xf000;
const PRIO_COUNT: u16 = 0x0a00;
const NAME_PREFIX: &str = "vethscope/";
const HOOKS: [Hook; 2] = [Hook::Ingress, Hook::Egress];
/// Interfaces per pool job (a namespace with more is split).
const CHUNK: usize = 64;

/// An interface as counter keys name it: (namespace cookie, ifindex).
pub type IfaceId = (u64, u32);

/// One observer's two filters on one interface.
#[derive(Clone, Debug)]
struct Attached {
    netns: String,
    cookie: u64,
    ifindex: u32,
    /// Ingress, egress.
    priority: [u16; 2],
    /// We added the clsact qdisc (none was there).
    clsact_ours: bool,
}

/// An observer's filters on many interfaces, owned by this process: removed by
/// [`TcObservers::detach`] or when dropped.
#[derive(Default)]
pub struct TcObservers {
    links: HashMap<IfaceId, Attached>,
}

/// Whether observers attach to `target` as legacy TC filters (else TCX). TCX stays for
/// interfaces outside any lab (`serve --all`, `trace` without a lab): a host's other
/// veths are not ours to put a qdisc on, and a TCX link leaves nothing behind. Setting
/// `VETHSCOPE_OBSERVER_ATTACH=tcx` forces TCX everywhere (the old path; the scale
/// benchmark compares both).
pub fn observer_uses_tc(target: &Target) -> bool {
    !target.lab.is_empty()
        && std::env::var_os("VETHSCOPE_OBSERVER_ATTACH").is_none_or(|v| v != "tcx")
}

/// Start time of process `pid` in clock ticks since boot (field 22 of its stat).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields count from after the command name, which may hold spaces or parentheses.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split(' ').nth(19)?.parse().ok()
}

/// The name of our filter for `program`: owner and program, see the module doc.
fn filter_name(program: &str) -> String {
    let pid = std::process::id();
    let start = process_start(pid).unwrap_or(0);
    format!("{NAME_PREFIX}{pid}/{start}/{program}")
}

/// A vethscope observer filter whose process is gone (it crashed or was killed).
fn is_orphan(f: &HookFilter) -> bool {
    if !f.is_bpf || f.filter.handle != OBSERVER_HANDLE {
        return false;
    }
    let Some(rest) = f.filter.name.strip_prefix(NAME_PREFIX) else {
        return false;
    };
    let mut parts = rest.split('/');
    let (Some(pid), Some(start)) = (parts.next(), parts.next()) else {
        return false;
    };
    match (pid.parse::<u32>(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => process_start(pid) != Some(start),
        _ => false,
    }
}

/// The priority this process prefers for `observer` (pid-derived, so two processes
/// rarely start on the same one).
fn preferred_priority(observer: Observer) -> u16 {
    let slot = (std::process::id() as u64 * 2 + observer as u64) % u64::from(PRIO_COUNT);
    PRIO_FIRST + slot as u16
}

/// The first priority from `from` (within our range) not in `used`.
fn free_priority(from: u16, used: &HashSet<u16>) -> u16 {
    (0..PRIO_COUNT)
        .map(|i| PRIO_FIRST + (from - PRIO_FIRST + i) % PRIO_COUNT)
        .find(|p| !used.contains(p))
        .unwrap_or(from)
}

/// What attaching in one namespace needs.
struct Programs {
    fds: [i32; 2],
    /// Filter names (with the owner), and the programs' own names.
    names: [String; 2],
    programs: [&'static str; 2],
    preferred: u16,
}

impl Probe {
    /// Attaches `observer` to both hooks of every target as legacy TC filters, one
    /// netlink batch per namespace on the pool. Returns the attachments and the targets
    /// that failed, each with its error. `progress`: one line per namespace on a
    /// terminal.
    pub fn attach_observer_tc(
        &mut self,
        observer: Observer,
        targets: &[Target],
        progress: bool,
    ) -> Result<(TcObservers, Vec<(Target, ProbeError)>), ProbeError> {
        let mut fds = [0; 2];
        let mut names = [String::new(), String::new()];
        let mut programs = [""; 2];
        for (i, (name, _)) in observer.programs().into_iter().enumerate() {
            fds[i] = self.program_fd(name)?;
            programs[i] = name;
            names[i] = filter_name(name);
        }
        let programs = Programs {
            fds,
            names,
            programs,
            preferred: preferred_priority(observer),
        };
        let mut by_netns: HashMap<&str, Vec<&Target>> = HashMap::new();
        for t in targets {
            self.cookies.insert(t.cookie, t.netns.clone());
            by_netns.entry(t.netns.as_str()).or_default().push(t);
        }
        // A namespace with many interfaces (the root one of a large star: every bridge
        // port) is split, so its dumps and batches overlap on the pool too.
        let jobs: Vec<(&str, &[&Target])> = by_netns
            .iter()
            .flat_map(|(ns, ts)| ts.chunks(CHUNK).map(move |c| (*ns, c)))
            .collect();
        let shown = Mutex::new(Progress::new(2 * jobs.len(), progress));
        let step = |what: &str, ns: &str| {
            if let Ok(mut p) = shown.lock() {
                p.step(&format!("{what} in namespace {ns}"));
            }
        };
        // Two passes over every namespace: clsact qdiscs first, filters after. The first
        // filter on a fresh clsact hook waits for an RCU grace period (expedited, under
        // RTNL) unless one has passed since the qdisc was made; the first pass takes
        // long enough for that, so the filters go in without waiting.
        let prepared = netns::pool::map(&jobs, |(ns, ts)| {
            let r = prepare_in(ns, ts, &programs);
            step("clsact", ns);
            r
        });
        let work: Vec<PassTwo> = jobs
            .iter()
            .zip(prepared)
            .map(|((ns, ts), p)| (*ns, *ts, p))
            .collect();
        let results = netns::pool::map(&work, |(ns, ts, prep)| {
            let r = add_filters_in(ns, ts, prep, &programs);
            step("filters", ns);
            r
        });
        if let Ok(mut p) = shown.lock() {
            p.finish();
        }
        let mut out = TcObservers {
            links: HashMap::new(),
        };
        let mut failed = Vec::new();
        for ((_, ts, _), rs) in work.iter().zip(results) {
            for (t, r) in ts.iter().zip(rs) {
                match r {
                    Ok(a) => {
                        out.links.insert((t.cookie, t.ifindex), a);
                    }
                    Err(e) => failed.push(((*t).clone(), e)),
                }
            }
        }
        Ok((out, failed))
    }
}

impl Probe {
    /// Attaches `observer` to both hooks of every target for the life of the returned
    /// set: lab interfaces as legacy TC filters (batched), the others as TCX links that
    /// stay with the probe. The first failure is the error, and nothing stays attached
    /// then. Returns the set and how many programs were attached.
    pub fn attach_observer_everywhere(
        &mut self,
        observer: Observer,
        targets: &[Target],
    ) -> Result<(TcObservers, usize), ProbeError> {
        let (tc, tcx): (Vec<Target>, Vec<Target>) =
            targets.iter().cloned().partition(observer_uses_tc);
        let (set, failed) = self.attach_observer_tc(observer, &tc, true)?;
        if let Some((_, e)) = failed.into_iter().next() {
            return Err(e);
        }
        let n = self.attach_observer(observer, &tcx, super::Position::First)?;
        Ok((set, 2 * tc.len() + n))
    }
}

fn attach_error(t: &Target, program: &'static str, source: NetlinkError) -> ProbeError {
    ProbeError::AttachFilter {
        program,
        ifname: t.ifname.clone(),
        netns: t.netns.clone(),
        source: Box::new(source),
    }
}

/// A job of the second pass: namespace, its targets, what the first pass made of each.
type PassTwo<'a> = (&'a str, &'a [&'a Target], Vec<Result<Prepared, ProbeError>>);

/// An interface ready for its filters: the priorities to use, and whether we added
/// its clsact.
struct Prepared {
    priority: [u16; 2],
    clsact_ours: bool,
}

fn copy_error(
    t: &Target,
    program: &'static str,
    ns: &str,
    op: &'static str,
    e: &NetlinkError,
) -> ProbeError {
    let cause = NetlinkError::from_errno(
        op,
        format!("ifindex {}", t.ifindex),
        ns,
        e.errno().unwrap_or(libc::EIO),
    );
    attach_error(t, program, cause)
}

/// Enters `ns` on this pool thread and opens a socket there.
fn socket_in(ns: &str) -> Result<BatchSocket, NetlinkError> {
    netns::enter(ns)?;
    BatchSocket::open_here(ns)
}

/// First pass in namespace `ns`: removes orphans of a dead vethscope, picks free
/// priorities where filters exist, adds the missing clsact qdiscs (one batch).
fn prepare_in(ns: &str, targets: &[&Target], p: &Programs) -> Vec<Result<Prepared, ProbeError>> {
    let program = p.programs[0];
    let fail_all = |e: NetlinkError| {
        targets
            .iter()
            .map(|t| Err(copy_error(t, program, ns, "attach observers to", &e)))
            .collect()
    };
    let mut sock = match socket_in(ns) {
        Ok(s) => s,
        Err(e) => return fail_all(e),
    };
    let clsacts = match sock.clsact_ifindexes() {
        Ok(c) => c,
        Err(e) => return fail_all(e),
    };
    let mut out: Vec<Result<Prepared, ProbeError>> = Vec::with_capacity(targets.len());
    let mut orphans = Vec::new();
    let mut adds = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        if !clsacts.contains(&t.ifindex) {
            adds.push((i, request::add_clsact(t.ifindex)));
            out.push(Ok(Prepared {
                priority: [p.preferred; 2],
                clsact_ours: true,
            }));
            continue;
        }
        // A clsact is there: clear orphans and keep off the priorities in use.
        let mut prio = [p.preferred; 2];
        let mut failed = None;
        for (h, hook) in HOOKS.into_iter().enumerate() {
            match sock.hook_filters(t.ifindex, hook) {
                Ok(filters) => {
                    let mut used = HashSet::new();
                    for f in filters {
                        if is_orphan(&f) {
                            orphans.push(request::del_filter(
                                t.ifindex,
                                hook,
                                f.filter.priority,
                                f.filter.handle,
                            ));
                        } else {
                            used.insert(f.filter.priority);
                        }
                    }
                    prio[h] = free_priority(p.preferred, &used);
                }
                Err(e) => failed = Some(copy_error(t, program, ns, "list TC filters of", &e)),
            }
        }
        out.push(match failed {
            Some(e) => Err(e),
            None => Ok(Prepared {
                priority: prio,
                clsact_ours: false,
            }),
        });
    }
    if !orphans.is_empty() {
        tracing::info!(
            "removing {} TC filters of an earlier vethscope that is gone, in namespace {ns}",
            orphans.len()
        );
        for r in sock.execute(orphans) {
            if let Err(e) = r.as_ref()
                && !is_absent(e)
            {
                tracing::warn!("{}", crate::errors::Chain(e));
            }
        }
    }
    let (which, requests): (Vec<usize>, Vec<Request>) = adds.into_iter().unzip();
    for (i, r) in which.into_iter().zip(sock.execute(requests)) {
        match r {
            Ok(()) => {}
            // Someone added one since our dump: theirs, not ours to remove.
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                if let Ok(prep) = out[i].as_mut() {
                    prep.clsact_ours = false;
                }
            }
            Err(e) => out[i] = Err(attach_error(targets[i], program, e)),
        }
    }
    out
}

/// Second pass in namespace `ns`: both filters of every prepared target (one batch);
/// a target half attached is taken back. One result per target.
fn add_filters_in(
    ns: &str,
    targets: &[&Target],
    prepared: &[Result<Prepared, ProbeError>],
    p: &Programs,
) -> Vec<Result<Attached, ProbeError>> {
    let program = p.programs[0];
    let mut sock = match socket_in(ns) {
        Ok(s) => s,
        Err(e) => {
            return targets
                .iter()
                .map(|t| Err(copy_error(t, program, ns, "attach observers to", &e)))
                .collect();
        }
    };
    let mut requests: Vec<Request> = Vec::new();
    for (t, prep) in targets.iter().zip(prepared) {
        if let Ok(prep) = prep {
            for (h, hook) in HOOKS.into_iter().enumerate() {
                requests.push(request::add_bpf(
                    t.ifindex,
                    hook,
                    prep.priority[h],
                    OBSERVER_HANDLE,
                    p.fds[h],
                    &p.names[h],
                ));
            }
        }
    }
    let mut results = sock.execute(requests).into_iter();
    let mut out = Vec::with_capacity(targets.len());
    let mut undo = Vec::new();
    for (t, prep) in targets.iter().zip(prepared) {
        let prep = match prep {
            Ok(prep) => prep,
            Err(e) => {
                out.push(Err(match e {
                    ProbeError::AttachFilter { source, .. } => {
                        copy_error(t, program, ns, "attach observers to", source)
                    }
                    _ => copy_error(
                        t,
                        program,
                        ns,
                        "attach observers to",
                        &NetlinkError::from_errno("attach", String::new(), ns, libc::EIO),
                    ),
                }));
                continue;
            }
        };
        let filters = [results.next(), results.next()];
        let mut first_err = None;
        let mut added = Vec::new();
        for (h, r) in filters.into_iter().enumerate() {
            match r {
                Some(Ok(())) => added.push(h),
                Some(Err(e)) => {
                    first_err.get_or_insert(attach_error(t, p.programs[h], e));
                }
                None => {
                    first_err.get_or_insert(copy_error(
                        t,
                        p.programs[h],
                        ns,
                        "attach a TC filter to",
                        &NetlinkError::from_errno("attach", String::new(), ns, libc::EIO),
                    ));
                }
            }
        }
        match first_err {
            None => out.push(Ok(Attached {
                netns: ns.to_string(),
                cookie: t.cookie,
                ifindex: t.ifindex,
                priority: prep.priority,
                clsact_ours: prep.clsact_ours,
            })),
            Some(e) => {
                // Half attached: take back what went in (and a clsact we added).
                for h in added {
                    undo.push(request::del_filter(
                        t.ifindex,
                        HOOKS[h],
                        prep.priority[h],
                        OBSERVER_HANDLE,
                    ));
                }
                if prep.clsact_ours {
                    undo.push(request::del_clsact(t.ifindex));
                }
                out.push(Err(e));
            }
        }
    }
    for r in sock.execute(undo) {
        if let Err(e) = r.as_ref()
            && !is_absent(e)
        {
            tracing::warn!("{}", crate::errors::Chain(e));
        }
    }
    out
}

impl TcObservers {
    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    pub fn contains(&self, id: &IfaceId) -> bool {
        self.links.contains_key(id)
    }

    /// Adds the attachments of `other` (a later attach) to this set.
    pub fn merge(&mut self, mut other: TcObservers) {
        self.links.extend(other.links.drain());
    }

    /// Removes our filters from the interfaces `ids` (all when `None`), one batch per
    /// namespace on the pool. Returns how many interfaces were detached. Failures are
    /// logged: an interface that is gone took its filters with it.
    pub fn detach(&mut self, ids: Option<&HashSet<IfaceId>>, progress: bool) -> usize {
        let taken: Vec<Attached> = match ids {
            None => self.links.drain().map(|(_, a)| a).collect(),
            Some(ids) => ids.iter().filter_map(|id| self.links.remove(id)).collect(),
        };
        if taken.is_empty() {
            return 0;
        }
        let n = taken.len();
        let mut by_netns: HashMap<(String, u64), Vec<Attached>> = HashMap::new();
        for a in taken {
            by_netns
                .entry((a.netns.clone(), a.cookie))
                .or_default()
                .push(a);
        }
        let jobs: Vec<(&(String, u64), &[Attached])> = by_netns
            .iter()
            .flat_map(|(key, items)| items.chunks(CHUNK).map(move |c| (key, c)))
            .collect();
        let shown = Mutex::new(Progress::new(jobs.len(), progress));
        netns::pool::map(&jobs, |((ns, cookie), items)| {
            if let Err(e) = detach_in(ns, *cookie, items) {
                tracing::warn!("detaching in namespace {ns}: {}", crate::errors::Chain(&e));
            }
            if let Ok(mut p) = shown.lock() {
                p.step(&format!("detaching in namespace {ns}"));
            }
        });
        if let Ok(mut p) = shown.lock() {
            p.finish();
        }
        n
    }
}

impl Drop for TcObservers {
    fn drop(&mut self) {
        self.detach(None, false);
    }
}

/// Removes `items` (all in namespace `ns`, whose cookie was `cookie`) from this pool
/// thread.
fn detach_in(ns: &str, cookie: u64, items: &[Attached]) -> Result<(), NetlinkError> {
    if netns::enter(ns).is_err() {
        // The namespace is gone, and our filters with its interfaces.
        return Ok(());
    }
    // A namespace of the same name made since (a lab brought down and up again) holds
    // other interfaces under the same indexes: never touch those.
    match netns::cookie_here() {
        Ok(c) if c == cookie => {}
        _ => return Ok(()),
    }
    let mut sock = BatchSocket::open_here(ns)?;
    let mut requests = Vec::with_capacity(items.len() * 2);
    for a in items {
        for (i, hook) in HOOKS.into_iter().enumerate() {
            requests.push(request::del_filter(
                a.ifindex,
                hook,
                a.priority[i],
                OBSERVER_HANDLE,
            ));
        }
    }
    for r in sock.execute(requests) {
        if let Err(e) = r
            && !is_absent(&e)
        {
            tracing::warn!("{}", crate::errors::Chain(&e));
        }
    }
    // A clsact we added goes once nothing is left on it (the fast path or someone
    // else may have added filters since).
    let mut empty = Vec::new();
    for a in items.iter().filter(|a| a.clsact_ours) {
        let mut left = 0;
        for hook in HOOKS {
            left += sock.hook_filters(a.ifindex, hook)?.len();
        }
        if left == 0 {
            empty.push(request::del_clsact(a.ifindex));
        }
    }
    for r in sock.execute(empty) {
        if let Err(e) = r
            && !is_absent(&e)
        {
            tracing::warn!("{}", crate::errors::Chain(&e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::tc::BpfFilter;

    fn filter(name: &str, handle: u32) -> HookFilter {
        HookFilter {
            filter: BpfFilter {
                priority: PRIO_FIRST,
                handle,
                name: name.to_string(),
            },
            is_bpf: true,
        }
    }

    #[test]
    fn a_filter_of_a_live_process_is_not_an_orphan() {
        let own = filter_name("count_ingress");
        assert!(own.starts_with(NAME_PREFIX));
        assert!(!is_orphan(&filter(&own, OBSERVER_HANDLE)));
        // The same pid with another start time is a process that is gone.
        let pid = std::process::id();
        let reused = format!("{NAME_PREFIX}{pid}/1/count_ingress");
        assert!(is_orphan(&filter(&reused, OBSERVER_HANDLE)));
        // Someone else's filters, and ours under another handle, are never orphans.
        assert!(!is_orphan(&filter("fastpath_ingress", OBSERVER_HANDLE)));
        assert!(!is_orphan(&filter(&reused, 0xfa57)));
        assert!(!is_orphan(&filter("vethscope/x/y/z", OBSERVER_HANDLE)));
    }

    #[test]
    fn priorities_stay_below_the_fast_path_and_skip_those_in_use() {
        let used: HashSet<u16> = [PRIO_FIRST + PRIO_COUNT - 1, PRIO_FIRST].into();
        assert_eq!(
            free_priority(PRIO_FIRST + PRIO_COUNT - 1, &used),
            PRIO_FIRST + 1
        );
        for o in [Observer::Count, Observer::Trace] {
            let p = preferred_priority(o);
            assert!((PRIO_FIRST..PRIO_FIRST + PRIO_COUNT).contains(&p));
            assert!(p < crate::fastpath::TC_PRIORITY);
        }
        assert_ne!(
            preferred_priority(Observer::Count),
            preferred_priority(Observer::Trace)
        );
    }
}
