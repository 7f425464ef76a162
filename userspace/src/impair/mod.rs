//! Link impairments and failures: loss, duplication, corruption, rate, delay/jitter on
//! packets *leaving* an interface end, and link down/up/flap.
//!
//! Engines (one per kind of impairment, chosen for what this kind of kernel has):
//! - loss, duplicate, corrupt: the eBPF program `impair_egress` on TC egress of the end
//!   (exact per-action counters; no qdisc needed);
//! - rate: a TBF root qdisc (or netem's own rate when delay is set too);
//! - delay, jitter: a netem root qdisc, only when the kernel has `sch_netem` — checked
//!   before anything is changed.
//!
//! What is set where is recorded in `/run/vethscope/impair/LAB.json` ([`record`]).

pub mod engine;
mod error;
pub mod link_state;
pub mod netem;
pub mod paths;
mod qdisc;
pub mod record;
pub mod spec;

use crate::inspect::DeviceKind;
use std::fmt;

use vethscope_common::ImpairCounters;

pub use engine::{counters, events_pin, key};
pub use error::ImpairError;
pub use record::{EndRecord, Record};
pub use spec::{Impairment, SpecError};

use crate::{
    inspect::{self, LabView},
    netlink::Netlink,
    netns,
    probe::Target,
    topology::{IFNAME_MAX, Topology},
};

/// Which engine does what, for `--help` and errors.
pub const ENGINES: &str = "loss, duplicate, corrupt: eBPF program on TC egress (exact counts); \
rate: TBF qdisc; delay, jitter: netem qdisc (needs sch_netem in the kernel; with delay set, \
netem also does the rate)";

/// `NS/IFNAME` (`host/IFNAME` for the root namespace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndRef {
    pub netns: String,
    pub ifname: String,
}

impl fmt::Display for EndRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.netns, self.ifname)
    }
}

impl std::str::FromStr for EndRef {
    type Err = ImpairError;

    fn from_str(text: &str) -> Result<Self, ImpairError> {
        let invalid = |why: &str| ImpairError::Invalid {
            message: format!(
                "`{}` is not NS/IFNAME: {why} (fix: write it like ns1/veth0, or host/br-veth0 for the root namespace)",
                text.escape_debug()
            ),
        };
        let (ns, ifname) = text.split_once('/').ok_or_else(|| invalid("no `/`"))?;
        let name_ok = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        if !name_ok(ns, 64) {
            return Err(invalid(
                "the namespace name must be 1–64 letters, digits, `-`, `_` or `.`",
            ));
        }
        if !name_ok(ifname, IFNAME_MAX) {
            return Err(invalid(
                "the interface name must be 1–15 letters, digits, `-`, `_` or `.`",
            ));
        }
        Ok(EndRef {
            netns: ns.to_string(),
            ifname: ifname.to_string(),
        })
    }
}

/// An end of a live lab, resolved.
pub(crate) struct LiveEnd {
    pub target: Target,
    /// The other end of the veth (netns, ifname, ifindex); `None` for OVS internal ports.
    pub peer: Option<(String, String, u32)>,
}

pub(crate) fn resolve_in(view: &LabView, lab: &str, end: &EndRef) -> Result<LiveEnd, ImpairError> {
    let Some(link) = view.link(&end.netns, &end.ifname) else {
        let ends: Vec<String> = view
            .links
            .iter()
            .filter(|l| l.kind == DeviceKind::Veth || l.kind == DeviceKind::OvsInternal)
            .map(|l| format!("{}/{}", l.netns, l.name))
            .collect();
        return Err(ImpairError::end(
            lab,
            &end.netns,
            &end.ifname,
            format!(
                "not an interface of this lab (fix: use one of {})",
                if ends.is_empty() {
                    "its veth ends — it has none".to_string()
                } else {
                    ends.join(", ")
                }
            ),
        ));
    };
    if link.kind != DeviceKind::Veth && link.kind != DeviceKind::OvsInternal {
        return Err(ImpairError::end(
            lab,
            &end.netns,
            &end.ifname,
            format!(
                "it is a {}; impairments and link state apply to veth ends and OVS internal ports",
                link.kind
            ),
        ));
    }
    Ok(LiveEnd {
        target: Target {
            lab: lab.to_string(),
            netns: end.netns.clone(),
            ifname: end.ifname.clone(),
            ifindex: link.ifindex,
            kind: crate::probe::LinkKind::of_view(link).unwrap_or(crate::probe::LinkKind::Veth),
            peer_netns: link
                .peer
                .as_ref()
                .map(|p| p.netns.clone())
                .unwrap_or_default(),
            peer_ifname: link
                .peer
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            cookie: netns::cookie(&end.netns)?,
        },
        peer: link
            .peer
            .as_ref()
            .map(|p| (p.netns.clone(), p.name.clone(), p.ifindex)),
    })
}

async fn resolve(lab: &str, end: &EndRef) -> Result<LiveEnd, ImpairError> {
    let view = inspect::lab_view(lab).await?;
    resolve_in(&view, lab, end)
}

/// Fails when an impairment needs something this kernel lacks. Call before changing anything.
pub fn preflight(imp: &Impairment) -> Result<(), ImpairError> {
    if imp.needs_netem() && !netem::available() {
        return Err(ImpairError::NoNetem);
    }
    Ok(())
}

/// Replaces the impairment of one end of a live lab.
pub async fn set(lab: &str, end: &EndRef, imp: &Impairment) -> Result<EndRecord, ImpairError> {
    imp.validate().map_err(|source| ImpairError::Spec {
        lab: lab.to_string(),
        netns: end.netns.clone(),
        ifname: end.ifname.clone(),
        source,
    })?;
    preflight(imp)?;
    let live = resolve(lab, end).await?;
    let mut rec = record::read(lab)?;
    let old = rec.end(&end.netns, &end.ifname).cloned();
    let nl = Netlink::open(&end.netns).await?;
    let t = &live.target;

    // 1. The qdisc (rate, delay): the part most likely to be refused by the kernel.
    let new_qdisc = qdisc::plan(imp);
    match &new_qdisc {
        Some((kind, options)) => {
            nl.replace_root_qdisc(
                &t.ifname,
                t.ifindex,
                qdisc::HANDLE_MAJOR,
                kind,
                options.clone(),
            )
            .await?
        }
        None if old.as_ref().is_some_and(|o| o.qdisc.is_some()) => {
            nl.delete_root_qdisc(&t.ifname, t.ifindex).await?
        }
        None => {}
    }

    // 2. The eBPF program (loss, duplication, corruption).
    let k = engine::key(t.cookie, t.ifindex);
    let attached = std::fs::symlink_metadata(paths::link_pin(lab, &t.netns, &t.ifname)).is_ok();
    let ebpf_result = if imp.needs_ebpf() {
        if attached {
            engine::update(lab, k, engine::config(imp))
        } else {
            engine::attach(lab, t, engine::config(imp))
        }
    } else if attached {
        engine::detach(lab, &t.netns, &t.ifname, Some(k))
    } else {
        Ok(())
    };
    if let Err(e) = ebpf_result {
        // Put the qdisc back as it was, so a failure changes nothing.
        let _ = restore_qdisc(&nl, t, old.as_ref()).await;
        return Err(e);
    }

    let entry = EndRecord {
        netns: end.netns.clone(),
        ifname: end.ifname.clone(),
        impairment: imp.clone(),
        qdisc: new_qdisc.map(|(k, _)| k.to_string()),
        ebpf: imp.needs_ebpf(),
        netns_cookie: t.cookie,
        ifindex: t.ifindex,
    };
    rec.upsert(entry.clone());
    record::write(lab, &rec)?;
    Ok(entry)
}

async fn restore_qdisc(
    nl: &Netlink,
    t: &Target,
    old: Option<&EndRecord>,
) -> Result<(), ImpairError> {
    match old.and_then(|o| qdisc::plan(&o.impairment)) {
        Some((kind, options)) => {
            nl.replace_root_qdisc(&t.ifname, t.ifindex, qdisc::HANDLE_MAJOR, kind, options)
                .await?
        }
        None => nl.delete_root_qdisc(&t.ifname, t.ifindex).await?,
    }
    Ok(())
}

/// Removes the impairment of one end. True when there was one.
pub async fn clear(lab: &str, end: &EndRef) -> Result<bool, ImpairError> {
    let mut rec = record::read(lab)?;
    let old = rec.end(&end.netns, &end.ifname).cloned();
    let live = resolve(lab, end).await?;
    let t = &live.target;
    if old.as_ref().is_some_and(|o| o.qdisc.is_some()) {
        let nl = Netlink::open(&end.netns).await?;
        // Only our own qdisc: anything else on the end was not made by us.
        if nl
            .root_qdisc(t.ifindex)
            .await?
            .is_some_and(|q| q.handle >> 16 == u32::from(qdisc::HANDLE_MAJOR))
        {
            nl.delete_root_qdisc(&t.ifname, t.ifindex).await?;
        }
    }
    engine::detach(
        lab,
        &t.netns,
        &t.ifname,
        Some(engine::key(t.cookie, t.ifindex)),
    )?;
    rec.remove(&end.netns, &end.ifname);
    record::write(lab, &rec)?;
    Ok(old.is_some())
}

/// One end in `impair LAB` and `show`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EndStatus {
    pub netns: String,
    pub ifname: String,
    pub impairment: Impairment,
    /// "ebpf", "tbf", "netem": what carries it out.
    pub engines: Vec<String>,
    /// Packets the eBPF program saw / dropped / duplicated / corrupted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters: Option<Counters>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub seen: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub corrupted: u64,
}

impl From<ImpairCounters> for Counters {
    fn from(c: ImpairCounters) -> Self {
        Self {
            seen: c.seen,
            dropped: c.dropped,
            duplicated: c.duplicated,
            corrupted: c.corrupted,
        }
    }
}

/// The impairments of a lab with their counters, from the record and the live view.
pub fn status_in(view: &LabView) -> Result<Vec<EndStatus>, ImpairError> {
    let lab = &view.lab;
    let rec = record::read(lab)?;
    if rec.ends.is_empty() {
        return Ok(Vec::new());
    }
    let counters = engine::counters(lab);
    let mut cookies = std::collections::HashMap::new();
    let mut out = Vec::new();
    for e in &rec.ends {
        let mut engines = Vec::new();
        if e.ebpf {
            engines.push("ebpf".to_string());
        }
        if let Some(q) = &e.qdisc {
            engines.push(q.clone());
        }
        let c = match view.link(&e.netns, &e.ifname) {
            Some(link) if e.ebpf => {
                let cookie = match cookies.get(&e.netns) {
                    Some(c) => *c,
                    None => {
                        let c = netns::cookie(&e.netns)?;
                        cookies.insert(e.netns.clone(), c);
                        c
                    }
                };
                Some(
                    counters
                        .get(&engine::key(cookie, link.ifindex))
                        .copied()
                        .unwrap_or_default()
                        .into(),
                )
            }
            _ => None,
        };
        out.push(EndStatus {
            netns: e.netns.clone(),
            ifname: e.ifname.clone(),
            impairment: e.impairment.clone(),
            engines,
            counters: c,
        });
    }
    Ok(out)
}

pub async fn status(lab: &str) -> Result<Vec<EndStatus>, ImpairError> {
    let view = inspect::lab_view(lab).await?;
    status_in(&view)
}

/// Every impairment a topology declares, as (end, impairment).
pub fn declared(t: &Topology) -> Vec<(EndRef, Impairment)> {
    t.ends()
        .filter_map(|e| {
            e.impair.as_ref().map(|imp| {
                (
                    EndRef {
                        netns: e.netns().to_string(),
                        ifname: e.name.clone(),
                    },
                    imp.clone(),
                )
            })
        })
        .collect()
}

/// Checks every impairment of a topology against the kernel, before `up` touches anything.
pub fn preflight_topology(t: &Topology) -> Result<(), ImpairError> {
    for (_, imp) in declared(t) {
        preflight(&imp)?;
    }
    Ok(())
}

/// Applies the impairments a topology declares (after `up` built it). Returns how many.
pub async fn apply_topology(t: &Topology) -> Result<usize, ImpairError> {
    let all = declared(t);
    for (end, imp) in &all {
        set(&t.name, end, imp).await?;
    }
    Ok(all.len())
}

/// `down`: removes the pinned programs and maps of `lab` and its record. Qdiscs and link
/// states go with the interfaces, which `down` deletes.
pub fn remove_lab(lab: &str) -> Result<(), ImpairError> {
    let mut errors = engine::remove_all(lab);
    if let Err(e) = paths::remove_record(lab) {
        errors.push(e);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ImpairError::Teardown {
            lab: lab.to_string(),
            errors,
        })
    }
}

/// The impairment recorded for an end, if any (for `trace`'s reasons).
pub fn recorded(lab: &str, netns: &str, ifname: &str) -> Option<Impairment> {
    record::read(lab)
        .ok()?
        .end(netns, ifname)
        .map(|e| e.impairment.clone())
}
