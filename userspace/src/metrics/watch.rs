//! Keeping the counting programs on exactly the links that exist.
//!
//! Every refresh lists the links of the watched labs (or of the whole host) from live
//! state and brings the attached set to match: new links get both programs (a lab
//! brought up later is picked up), links that vanished are forgotten. Each TCX link is
//! owned here, so forgetting a link closes its fd: that detaches the program, or, when
//! the interface is already gone (the kernel detached it then), frees the kernel's link.

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
    probe::{self, Observer, ObserverLinks, Position, Probe, ProbeError, Target, TargetFilter},
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

struct Attached {
    lab: String,
    /// Ingress and egress; dropping them detaches.
    _links: ObserverLinks,
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
    attached: HashMap<LinkId, Attached>,
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
            attached: HashMap::new(),
            warned: HashSet::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.attached.len()
    }

    pub fn is_empty(&self) -> bool {
        self.attached.is_empty()
    }

    /// Brings the attached set to `listing`. `stop` is checked between attaches, so a
    /// Ctrl-C during a large first attach is not kept waiting.
    pub fn sync(&mut self, probe: &mut Probe, listing: Listing, stop: &AtomicBool) -> SyncReport {
        let mut report = SyncReport::default();
        let desired: HashMap<LinkId, Target> = listing
            .targets
            .into_iter()
            .map(|t| (id_of(&t), t))
            .collect();

        let gone: HashSet<LinkId> = self
            .attached
            .iter()
            .filter(|(id, a)| !desired.contains_key(id) && !listing.unsure.contains(&a.lab))
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
                self.attached.remove(id);
                self.warned.remove(id);
            }
            self.maps.forget(&gone);
            report.removed = gone.len();
        }

        for (id, target) in desired {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let labels = LinkLabels::of(&target);
            if self.attached.contains_key(&id) {
                // Same interface; its name or peer may have changed (a peer is only
                // known once both ends exist).
                let changed = self
                    .table
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&id)
                    != Some(&labels);
                if changed {
                    self.table
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id, labels);
                }
                continue;
            }
            // In the table before attaching: the series start at 0, so the first
            // packets count in rate() too.
            self.table
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, labels);
            match attach_both(probe, &target) {
                Ok(links) => {
                    if let Err(e) = self.maps.watch(id) {
                        tracing::warn!(
                            "drops on {}/{} will not be counted: {}",
                            target.netns,
                            target.ifname,
                            crate::errors::Chain(&e)
                        );
                    }
                    self.attached.insert(
                        id,
                        Attached {
                            lab: target.lab.clone(),
                            _links: links,
                        },
                    );
                    report.added += 1;
                }
                Err(e) => {
                    self.table
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                    report.failed += 1;
                    // Usually an interface that vanished since the listing; retried
                    // next refresh, reported once.
                    if self.warned.insert(id) {
                        tracing::warn!("{} (will retry)", crate::errors::Chain(&e));
                    } else {
                        tracing::debug!("{}", crate::errors::Chain(&e));
                    }
                }
            }
        }
        report
    }
}

fn attach_both(probe: &mut Probe, t: &Target) -> Result<ObserverLinks, ProbeError> {
    probe.attach_observer_owned(Observer::Count, t, Position::First)
}
