//! The diagnose engine inside `trace`: an unanswered path gets the findings of the
//! static checks for its (first namespace, destination) pair and the kernel's drop
//! reasons (`skb:kfree_skb`, restricted to the lab's namespaces) seen for its packets,
//! each in words and, when a finding explains it, with that finding's fix — one engine,
//! two faces.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use vethscope_common::DropEvent;

use super::finding::{Code, Finding, Findings};
use super::live::Live;
use super::probe::{self, DropReport};
use super::walk::Engine;
use crate::kbtf::{self, KernelBtf};
use crate::probe::{DropRing, Probe, ProbeError, Target};
use crate::trace::paths::{Path, Verdict};

/// Live state is read again when older than this (the lab may be fixed meanwhile).
const REFRESH: Duration = Duration::from_secs(2);
/// Drop events kept for paths still waiting for their verdict: a flood of drops must
/// not grow memory without limit (the oldest go first).
const MAX_RECENT_DROPS: usize = 4096;

pub struct Explainer {
    lab: String,
    live: Option<(Instant, Live)>,
    drops: Option<DropWatch>,
    /// Static findings per (first namespace, destination) for the current `live`: a
    /// flood's thousands of unanswered paths share a handful of pairs, and the checks
    /// of one pair cost ~0.1 ms on a 1,000-namespace lab.
    checked: HashMap<(String, IpAddr), Vec<Finding>>,
}

impl Explainer {
    pub fn new(lab: &str) -> Self {
        Self {
            lab: lab.to_string(),
            live: None,
            drops: None,
            checked: HashMap::new(),
        }
    }

    /// Hands the explainer the trace's drop watcher (see [`DropWatch::start_for_trace`]).
    pub fn set_drops(&mut self, drops: Option<DropWatch>) {
        self.drops = drops;
    }

    /// Moves waiting drop events out of the kernel's ring (called every tick, so the
    /// ring never fills while paths wait for their verdict).
    pub fn poll_drops(&mut self) {
        if let Some(w) = self.drops.as_mut() {
            w.poll();
        }
    }

    /// Fills in the findings and drop reasons of an unanswered path (nothing for
    /// answered ones, or when the lab's state cannot be read: the trace goes on).
    pub async fn explain(&mut self, p: &mut Path) {
        if p.verdict != Verdict::Unanswered {
            return;
        }
        p.findings = self.findings(p).await;
        let Some((_, live)) = &self.live else {
            return;
        };
        if let Some(w) = self.drops.as_mut() {
            w.poll();
            p.drops = w.for_path(p, live);
            words_for_drops(&mut p.drops, &p.findings);
        }
    }

    /// Findings for an unanswered path.
    pub async fn findings(&mut self, p: &Path) -> Vec<Finding> {
        if p.verdict != Verdict::Unanswered {
            return Vec::new();
        }
        let Some(first) = p.request.first() else {
            return Vec::new();
        };
        let stale = self
            .live
            .as_ref()
            .is_none_or(|(t, _)| t.elapsed() >= REFRESH);
        if stale {
            match Live::gather(&self.lab).await {
                Ok(l) => {
                    self.live = Some((Instant::now(), l));
                    self.checked.clear();
                }
                Err(e) => {
                    tracing::debug!("no diagnosis for the path: {}", crate::errors::Chain(&e));
                    return Vec::new();
                }
            }
        }
        let Some((_, live)) = &self.live else {
            return Vec::new();
        };
        let pair = (first.netns.to_string(), p.dst);
        let mut findings = match self.checked.get(&pair) {
            Some(f) => f.clone(),
            None => {
                let mut out = Findings::default();
                let mut engine = Engine::new(live);
                if let Err(e) = super::static_checks(&mut engine, &pair.0, p.dst, &mut out).await {
                    tracing::debug!("no diagnosis for the path: {}", crate::errors::Chain(&e));
                }
                let f = out.into_vec();
                self.checked.insert(pair, f.clone());
                f
            }
        };
        if p.proto == "arp" || p.id.is_none() {
            flooded_request(live, p, &mut findings);
        }
        findings
    }
}

/// An ARP/ND request for an address nobody has: say where it was flooded.
fn flooded_request(live: &Live, p: &Path, findings: &mut [Finding]) {
    let mut bridges: Vec<String> = Vec::new();
    for h in &p.request {
        if let Some(m) = live
            .link(&h.netns, &h.ifname)
            .and_then(|l| l.master.as_ref())
            && !bridges.contains(&m.name)
        {
            bridges.push(m.name.clone());
        }
    }
    for f in findings
        .iter_mut()
        .filter(|f| f.code == Code::NoSuchAddress)
    {
        f.message = if bridges.is_empty() {
            format!("no namespace answered: {}", f.message)
        } else {
            format!(
                "the request was flooded to every port of {} and no namespace answered: {}",
                bridges.join(", "),
                f.message
            )
        };
    }
}

/// The kernel's drop reasons of one trace: events from the drop watcher, kept for a
/// while so a path can collect those of its packets when its verdict is given.
pub struct DropWatch {
    ring: DropRing,
    reasons: HashMap<u32, String>,
    /// (namespace cookie, ifindex) → (namespace, interface) of the traced interfaces.
    names: HashMap<(u64, u32), (String, String)>,
    spaces: HashMap<u64, String>,
    recent: VecDeque<DropEvent>,
}

impl DropWatch {
    /// Starts watching `skb:kfree_skb` in the namespaces of the traced interfaces. A
    /// failure is logged and the trace goes on without drop reasons.
    pub fn start_for_trace(probe: &mut Probe, targets: &[Target]) -> Option<Self> {
        let t = Instant::now();
        match Self::start(probe, targets) {
            Ok(w) => {
                tracing::debug!(
                    ms = t.elapsed().as_secs_f64() * 1e3,
                    "drop watcher attached"
                );
                Some(w)
            }
            Err(e) => {
                tracing::warn!(
                    "kernel drop reasons not traced: {}",
                    crate::errors::Chain(&e)
                );
                None
            }
        }
    }

    pub fn start(probe: &mut Probe, targets: &[Target]) -> Result<Self, ProbeError> {
        let btf = KernelBtf::open()?;
        let reasons = kbtf::drop_reasons(&btf)?;
        let mut names = HashMap::new();
        let mut spaces = HashMap::new();
        for t in targets {
            names.insert((t.cookie, t.ifindex), (t.netns.clone(), t.ifname.clone()));
            spaces.insert(t.cookie, t.netns.clone());
        }
        let cookies: Vec<u64> = spaces.keys().copied().collect();
        let ring = probe.start_drop_watch(&btf, &cookies)?;
        Ok(Self {
            ring,
            reasons,
            names,
            spaces,
            recent: VecDeque::new(),
        })
    }

    fn poll(&mut self) {
        while let Some(ev) = self.ring.next_event() {
            if self.recent.len() >= MAX_RECENT_DROPS {
                self.recent.pop_front();
            }
            self.recent.push_back(ev);
        }
    }

    /// Drops of the path's packets since its first hop, once per place and reason.
    fn for_path(&self, p: &Path, live: &Live) -> Vec<DropReport> {
        let Some(since) = p.request.first().map(|h| h.ts_ns) else {
            return Vec::new();
        };
        let mut out: Vec<DropReport> = Vec::new();
        for d in self.recent.iter().filter(|d| d.ts_ns >= since) {
            if !belongs_to(d, p) {
                continue;
            }
            let reason = self
                .reasons
                .get(&d.reason)
                .cloned()
                .unwrap_or_else(|| format!("reason {}", d.reason));
            let (netns, ifname) = match self.names.get(&(d.netns_cookie, d.ifindex)) {
                Some((n, i)) => (n.clone(), i.clone()),
                None => {
                    let netns = self
                        .spaces
                        .get(&d.netns_cookie)
                        .cloned()
                        .unwrap_or_else(|| "?".into());
                    let ifname = live
                        .view
                        .links
                        .iter()
                        .find(|l| l.netns == netns && l.ifindex == d.ifindex)
                        .map_or_else(|| format!("ifindex {}", d.ifindex), |l| l.name.clone());
                    (netns, ifname)
                }
            };
            let r = DropReport {
                netns,
                ifname,
                meaning: probe::reason_in_words(&reason),
                reason,
                packet: probe::describe_drop(d),
                fix: None,
            };
            if !out
                .iter()
                .any(|o| o.netns == r.netns && o.ifname == r.ifname && o.reason == r.reason)
            {
                out.push(r);
            }
        }
        out
    }
}

fn addr(b: &[u8; 16], v6: bool) -> IpAddr {
    probe::addr_of(b, v6)
}

/// Whether a dropped packet is one of the path's: its request or reply (by addresses
/// and ICMP type), or for ARP/ND the request or answer about its target.
fn belongs_to(d: &DropEvent, p: &Path) -> bool {
    let v6 = d.protocol == 0x86dd;
    let (s, t) = (addr(&d.src, v6), addr(&d.dst, v6));
    let forward = s == p.src && t == p.dst;
    let backward = s == p.dst && t == p.src;
    match (p.proto, d.protocol) {
        ("arp", 0x0806) => (d.icmp_type == 1 && forward) || (d.icmp_type == 2 && backward),
        ("icmp", 0x0800) if p.id.is_some() => {
            d.ip_proto == 1 && ((d.icmp_type == 8 && forward) || (d.icmp_type == 0 && backward))
        }
        ("icmpv6", 0x86dd) if p.id.is_some() => {
            d.ip_proto == 58
                && ((d.icmp_type == 128 && forward) || (d.icmp_type == 129 && backward))
        }
        // Neighbour discovery: the solicitation goes to a multicast address, the
        // advertisement back to the asker.
        ("icmpv6", 0x86dd) => {
            d.ip_proto == 58
                && ((d.icmp_type == 135 && s == p.src) || (d.icmp_type == 136 && t == p.src))
        }
        _ => false,
    }
}

/// The finding that explains a drop, if any: same namespace, and a code that causes
/// that kernel reason (a failed neighbour lookup is explained by whatever keeps the
/// neighbour from answering, wherever it is).
fn explaining<'a>(d: &DropReport, findings: &'a [Finding]) -> Option<&'a Finding> {
    let here = |codes: &[Code]| {
        findings
            .iter()
            .find(|f| f.netns == d.netns && codes.contains(&f.code))
    };
    let anywhere = |codes: &[Code]| findings.iter().find(|f| codes.contains(&f.code));
    match d.reason.as_str() {
        "ip_inaddrerrors" | "ip_outnoroutes" => here(&[
            Code::ForwardingOff,
            Code::NoRoute,
            Code::NoReturnRoute,
            Code::WrongSubnet,
        ]),
        "ip_local_source" | "ip_invalid_source" => here(&[Code::AcceptLocal]),
        "ip_rpfilter" => here(&[Code::RpFilter]),
        "pkt_too_big" => anywhere(&[Code::MtuMismatch]),
        "netfilter_drop" => anywhere(&[Code::BridgeNetfilter]),
        "neigh_failed" | "neigh_queuefull" | "no_tx_target" | "dev_ready" => findings
            .iter()
            .find(|f| !f.advisory && f.code != Code::ProbeUnanswered),
        _ => None,
    }
}

/// Puts the explaining finding's sentence and fix on each drop it explains.
pub fn words_for_drops(drops: &mut [DropReport], findings: &[Finding]) {
    for d in drops.iter_mut() {
        if let Some(f) = explaining(d, findings) {
            d.meaning = if matches!(d.reason.as_str(), "neigh_failed" | "neigh_queuefull") {
                format!("{}: {}", d.meaning, f.message)
            } else {
                f.message.clone()
            };
            d.fix = f.fix.clone();
        }
    }
}

/// `dropped at rtr/eth1: IPv4 forwarding is off … (ip_inaddrerrors) — fix: …`
pub fn drop_line(d: &DropReport) -> String {
    let fix = d
        .fix
        .as_ref()
        .map(|f| format!(" — fix: {f}"))
        .unwrap_or_default();
    format!(
        "dropped at {}/{}: {} ({}; {}){fix}",
        d.netns, d.ifname, d.meaning, d.reason, d.packet
    )
}

/// One sentence for an unanswered path: the cause the findings point at (and where, when
/// that is not where the packet was last seen), else the kernel's drop reason.
pub fn summary(p: &Path) -> Option<String> {
    if p.verdict != Verdict::Unanswered {
        return None;
    }
    if let Some(f) = p.findings.iter().find(|f| !f.advisory) {
        let last = p.last_seen();
        return Some(match last {
            Some(h) if f.code != Code::NoSuchAddress && *h.netns != *f.netns => format!(
                "last seen at {}/{} {}, but the cause is in {}: {}",
                h.netns,
                h.ifname,
                h.dir(),
                f.netns,
                f.message
            ),
            _ => f.message.clone(),
        });
    }
    p.drops.first().map(drop_line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::finding::Fix;

    fn drop(netns: &str, reason: &str) -> DropReport {
        DropReport {
            netns: netns.into(),
            ifname: "eth1".into(),
            reason: reason.into(),
            meaning: probe::reason_in_words(reason),
            packet: "ICMP echo request 10.1.1.2 > 10.1.2.3".into(),
            fix: None,
        }
    }

    #[test]
    fn forwarding_off_explains_inaddrerrors_in_its_namespace_only() {
        let f = Finding::new(
            Code::ForwardingOff,
            "rtr",
            "",
            "IPv4 forwarding is off in router namespace rtr",
            "net.ipv4.ip_forward=0",
            Some(Fix::sysctl("rtr", "net.ipv4.ip_forward", "1")),
        );
        let mut drops = vec![
            drop("rtr", "ip_inaddrerrors"),
            drop("ns1", "ip_inaddrerrors"),
        ];
        words_for_drops(&mut drops, std::slice::from_ref(&f));
        assert_eq!(
            drop_line(&drops[0]),
            "dropped at rtr/eth1: IPv4 forwarding is off in router namespace rtr (ip_inaddrerrors; ICMP echo request 10.1.1.2 > 10.1.2.3) — fix: ip netns exec rtr sysctl -w net.ipv4.ip_forward=1"
        );
        assert_eq!(
            drops[1].fix, None,
            "another namespace's drop is not explained"
        );
    }

    #[test]
    fn a_failed_neighbour_is_explained_by_the_fault_behind_it() {
        let f = Finding::new(
            Code::LinkDown,
            "ns2",
            "eth0",
            "interface ns2/eth0 is down",
            "state down",
            Some(Fix::in_ns("ns2", &["ip", "link", "set", "eth0", "up"])),
        );
        let mut drops = vec![drop("rtr", "neigh_failed")];
        words_for_drops(&mut drops, std::slice::from_ref(&f));
        assert!(
            drops[0]
                .meaning
                .ends_with("never answered: interface ns2/eth0 is down"),
            "{:?}",
            drops[0]
        );
        assert_eq!(
            drops[0].fix.as_deref(),
            Some("ip netns exec ns2 ip link set eth0 up")
        );
    }
}
