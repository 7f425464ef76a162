//! Keeping the counting programs on exactly the links that exist.
//!
//! Every refresh lists the links of the watched labs (or of the whole host) from live
//! state and brings the attached set to match: new links get both programs (a lab
//! brought up later is picked up), links that vanished are forgotten. Lab links get
//! legacy TC filters, attached and removed in one batch per namespace
//! (`probe::TcObservers`); links outside any lab get TCX links owned here, so
//! forgetting one closes its fd: that detaches the program, or, when the interface is
//! already gone (the kernel detached it then), frees the kernel's link.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use super::{
    LinkTable, MetricsError,
    links::{LinkId, LinkLabels, id_of},
    maps::CounterMaps,
};
use crate::{
    inspect::InspectError,
    probe::{
        self, Observer, ObserverLinks, Position, Probe, ProbeError, Target, TargetFilter,
        TcObservers,
    },
};

/// What `serve` watches.
#[derive(Clone, Debug)]
pub enum Scope {
    /// These labs, whether up yet or not.
    Labs(Vec<String>),
    /// Every lab, plus every veth of the host and `lo` of every named namespace.
    All,
}

/// One listing of the links to count. `unsure` names the labs (`""`: links outside
/// any lab) whose listing failed this round — typically a lab half torn down or half
/// built; their links are left as they are until a listing succeeds.
#[derive(Debug, Default)]
pub struct Listing {
    pub targets: Vec<Target>,
    pub unsure: HashSet<String>,
}

pub async fn list(scope: &Scope) -> Listing {
    let mut out = Listing::default();
    let labs: Vec<String> = match scope {
        Scope::Labs(labs) => labs.clone(),
        Scope::All => crate::wire::known_labs().await.into_iter().collect(),
    };
    let mut seen: HashSet<LinkId> = HashSet::new();
    for lab in labs {
        match probe::lab_targets(&lab, &TargetFilter::default()).await {
            Ok(targets) => {
                for t in targets {
                    if seen.insert(id_of(&t)) {
                        out.targets.push(t);
                    }
                }
            }
            // Not up (yet, or any more): nothing to count, not an error.
            Err(ProbeError::Inspect(InspectError::NoSuchLab { .. })) => {}
            Err(e) => {
                tracing::debug!(
                    "cannot list the links of lab {lab} (will retry): {}",
                    crate::errors::Chain(&e)
                );
                out.unsure.insert(lab);
            }
        }
    }
    if matches!(scope, Scope::All) {
        match probe::host_targets(&TargetFilter::default()).await {
            Ok(targets) => {
                // Lab links were listed above with their lab, kind and peer.
                for t in targets {
                    if seen.insert(id_of(&t)) {
                        out.targets.push(t);
                    }
                }
            }
            Err(e) => {
                tracing::debug!(
                    "cannot list the host's links (will retry): {}",
                    crate::errors::Chain(&e)
                );
                out.unsure.insert(String::new());
            }
        }
    }
    out
}

/// What one sync changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    pub added: usize,
    pub removed: usize,
    pub failed: usize,
}

/// The counting programs' attachments and the table the collector exports from.
pub struct Counting {
    maps: CounterMaps,
    table: Arc<RwLock<LinkTable>>,
    /// Lab of every attached link (`""` outside any lab).
    labs: HashMap<LinkId, String>,
    /// Lab links: legacy TC filters, removed by us (see `probe::TcObservers`).
    tc: TcObservers,
    /// Links outside any lab: TCX links, detached when dropped.
    tcx: HashMap<LinkId, ObserverLinks>,
    /// Links whose attach failed and was reported once (later failures log at debug).
    warned: HashSet<LinkId>,
}

impl Counting {
    /// Loads the counting programs (a verifier rejection fails here, once, not per
    /// link) and attaches the drop counter to `kfree_skb`.
    pub fn new(probe: &mut Probe, table: Arc<RwLock<LinkTable>>) -> Result<Self, MetricsError> {
        probe.load_observer(Observer::Count)?;
        probe.attach_drop_counter()?;
        Ok(Self {
            maps: CounterMaps::open(probe.counter_handles()?),
            table,
            labs: HashMap::new(),
            tc: TcObservers::default(),
            tcx: HashMap::new(),
            warned: HashSet::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.labs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labs.is_empty()
    }

    /// Removes every filter we added (one batch per namespace, on the pool) and closes
    /// the TCX links; `progress` on a terminal.
    pub fn detach_all(&mut self, progress: bool) {
        self.tc.detach(None, progress);
        self.tcx.clear();
        self.labs.clear();
    }

    /// Brings the attached set to `listing`. `stop` is checked between TCX attaches
    /// (each waits for the kernel), so a Ctrl-C during a large first attach is not
    /// kept waiting; lab links attach in batches.
    pub fn sync(&mut self, probe: &mut Probe, listing: Listing, stop: &AtomicBool) -> SyncReport {
        let mut report = SyncReport::default();
        let desired: HashMap<LinkId, Target> = listing
            .targets
            .into_iter()
            .map(|t| (id_of(&t), t))
            .collect();

        let gone: HashSet<LinkId> = self
            .labs
            .iter()
            .filter(|(id, lab)| !desired.contains_key(id) && !listing.unsure.contains(*lab))
            .map(|(id, _)| *id)
            .collect();
        if !gone.is_empty() {
            // Out of the table first, so no scrape exports a link being torn down.
            {
                let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
                for id in &gone {
                    table.remove(id);
                }
            }
            for id in &gone {
                self.labs.remove(id);
                self.tcx.remove(id);
                self.warned.remove(id);
            }
            self.tc.detach(Some(&gone), false);
            self.maps.forget(&gone);
            report.removed = gone.len();
        }

        let mut new_tc = Vec::new();
        let mut new_tcx = Vec::new();
        {
            let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
            for (id, target) in desired {
                let labels = LinkLabels::of(&target);
                // Same interface; its name or peer may change (a peer is only known once
                // both ends exist). New ones go in before attaching: their series start
                // at 0, so the first packets count in rate() too.
                table.insert(id, labels);
                if self.labs.contains_key(&id) {
                    continue;
                }
                if probe::observer_uses_tc(&target) {
                    new_tc.push(target);
                } else {
                    new_tcx.push(target);
                }
            }
        }

        let mut failures = Vec::new();
        if !new_tc.is_empty() {
            match probe.attach_observer_tc(Observer::Count, &new_tc, new_tc.len() >= 100) {
                Ok((attached, failed)) => {
                    self.tc.merge(attached);
                    failures.extend(failed);
                }
                Err(e) => {
                    // Not per link (the programs themselves): reported, retried next refresh.
                    tracing::warn!("{} (will retry)", crate::errors::Chain(&e));
                    report.failed += new_tc.len();
                    let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
                    for t in &new_tc {
                        table.remove(&id_of(t));
                    }
                }
            }
            for t in &new_tc {
                let id = id_of(t);
                if self.tc.contains(&id) {
                    self.attached(id, t);
                    report.added += 1;
                }
            }
        }
        for target in new_tcx {
            if stop.load(Ordering::Relaxed) {
                self.table
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id_of(&target));
                continue;
            }
            match probe.attach_observer_owned(Observer::Count, &target, Position::First) {
                Ok(links) => {
                    let id = id_of(&target);
                    self.tcx.insert(id, links);
                    self.attached(id, &target);
                    report.added += 1;
                }
                Err(e) => failures.push((target, e)),
            }
        }
        for (target, e) in failures {
            let id = id_of(&target);
            self.table
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            report.failed += 1;
            // Usually an interface that vanished since the listing; retried next
            // refresh, reported once.
            if self.warned.insert(id) {
                tracing::warn!("{} (will retry)", crate::errors::Chain(&e));
            } else {
                tracing::debug!("{}", crate::errors::Chain(&e));
            }
        }
        report
    }

    /// Records a link whose programs are attached and starts counting its drops.
    fn attached(&mut self, id: LinkId, target: &Target) {
        if let Err(e) = self.maps.watch(id) {
            tracing::warn!(
                "drops on {}/{} will not be counted: {}",
                target.netns,
                target.ifname,
                crate::errors::Chain(&e)
            );
        }
        self.table
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .set_counting(&id);
        self.labs.insert(id, target.lab.clone());
    }
}
