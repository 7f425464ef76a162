//! The active probe: a ping (ARP/ND first when the neighbour is unresolved) from the
//! source namespace, traced with the same TC programs as `trace` on every interface
//! the static walk put on the path, plus `skb:kfree_skb` in the lab's namespaces (drop
//! reasons named from the kernel's BTF). Then: where the probe was last seen, which
//! neighbour request went unanswered and where, and what the kernel dropped, and why.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use vethscope_common::{DropEvent, TraceConfig, proto_mask};

use crate::kbtf::{self, KernelBtf};
use crate::probe::{
    DropRing, LoadOptions, Observer, Position, Probe, ProbeError, Target, TraceRing,
};
use crate::trace::event::{self, Hop};
use crate::trace::paths::{Correlator, Path, Verdict};

use super::DiagnoseError;
use super::finding::{Code, Finding, Findings};
use super::live::Live;
use super::ping::{self, Echo};
use super::walk::{IfRef, PathPlan};

/// Default size of the first echo (IP packet), as `ping`'s 56 bytes of data.
const SMALL_PACKET: usize = 84;
/// Quiet time after the probe before the rings are read (events of the last hop).
const SETTLE: Duration = Duration::from_millis(5);

/// A neighbour exchange (ARP or ND) seen during the probe.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NeighbourReport {
    /// "arp" or "nd".
    #[schemars(with = "crate::schemas::wire::NeighbourProto")]
    pub proto: &'static str,
    pub asker: IpAddr,
    pub target: IpAddr,
    pub answered: bool,
    /// Attempts (a retried request is a separate attempt).
    #[schemars(range(min = 1))]
    pub attempts: usize,
    #[schemars(with = "Vec<crate::schemas::wire::HookRef>")]
    pub request: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::HookRef>")]
    pub last_seen: Option<String>,
}

/// A probe packet the kernel freed, and why.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct DropReport {
    pub netns: String,
    pub ifname: String,
    /// `enum skb_drop_reason` name, lower case (`ip_inaddrerrors`).
    pub reason: String,
    /// The reason in words.
    pub meaning: String,
    /// What was dropped (`ARP who-has 10.1.1.3`, `ICMP echo request 10.1.1.2 > 10.1.1.3`).
    pub packet: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MtuProbe {
    /// IP packet size, Don't Fragment set.
    #[schemars(range(min = 1))]
    pub size: usize,
    pub answered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ProbeReport {
    /// "icmp echo" or "icmpv6 echo".
    #[schemars(with = "crate::schemas::wire::ProbeKind")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    /// Same-namespace pair: the interface the probe was sent out of (`ping -I`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_to: Option<String>,
    pub answered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub rtt_ms: Option<f64>,
    /// Hops of the echo request and reply, `ns/if direction`.
    #[schemars(with = "Vec<crate::schemas::wire::HookRef>")]
    pub request: Vec<String>,
    #[schemars(with = "Vec<crate::schemas::wire::HookRef>")]
    pub reply: Vec<String>,
    pub reply_via_lo: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::HookRef>")]
    pub last_seen: Option<String>,
    pub neighbour: Vec<NeighbourReport>,
    pub drops: Vec<DropReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu_probe: Option<MtuProbe>,
    /// Interfaces the observers were attached to.
    pub observed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Loaded programs, kept across the pairs of one run.
pub struct Session {
    probe: Probe,
    ring: TraceRing,
    drops: DropRing,
    reasons: HashMap<u32, String>,
    cookies: HashMap<String, u64>,
    attached: HashSet<(String, String)>,
    names: HashMap<(u64, u32), (Arc<str>, Arc<str>)>,
    next_id: u16,
}

fn btf_err(e: kbtf::BtfError) -> ProbeError {
    ProbeError::Btf(e)
}

impl Session {
    pub fn start(live: &Live) -> Result<Self, DiagnoseError> {
        let t = std::time::Instant::now();
        let mut probe = Probe::load(LoadOptions::default())?;
        tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "eBPF object loaded");
        probe.set_trace_config(TraceConfig {
            proto_mask: proto_mask::ALL,
            capture: 0,
        })?;
        probe.load_observer(Observer::Trace)?;
        let btf = KernelBtf::open().map_err(btf_err)?;
        let reasons = kbtf::drop_reasons(&btf).map_err(btf_err)?;
        let mut cookies = HashMap::new();
        let spaces = live
            .view
            .namespaces
            .iter()
            .map(|n| n.name.clone())
            .chain(std::iter::once(crate::topology::HOST.to_string()));
        for ns in spaces {
            let c = crate::netns::cookie(&ns)?;
            cookies.insert(ns, c);
        }
        let watched: Vec<u64> = cookies.values().copied().collect();
        let drops = probe.start_drop_watch(&btf, &watched)?;
        let ring = probe.take_trace_ring()?;
        Ok(Self {
            probe,
            ring,
            drops,
            reasons,
            cookies,
            attached: HashSet::new(),
            names: HashMap::new(),
            next_id: (std::process::id() as u16) | 1,
        })
    }

    /// Observers on every interface of the path not yet observed.
    fn observe(&mut self, live: &Live, ifaces: &[IfRef]) -> Result<(), DiagnoseError> {
        for r in ifaces {
            let key = (r.netns.clone(), r.ifname.clone());
            if self.attached.contains(&key) {
                continue;
            }
            let Some(l) = live.link(&r.netns, &r.ifname) else {
                continue;
            };
            let cookie = match self.cookies.get(&r.netns) {
                Some(c) => *c,
                None => {
                    let c = crate::netns::cookie(&r.netns)?;
                    self.cookies.insert(r.netns.clone(), c);
                    c
                }
            };
            let target = Target {
                lab: live.lab.clone(),
                netns: r.netns.clone(),
                ifname: r.ifname.clone(),
                ifindex: l.ifindex,
                kind: crate::probe::LinkKind::of_view(l).unwrap_or(crate::probe::LinkKind::Veth),
                peer_netns: String::new(),
                peer_ifname: String::new(),
                cookie,
            };
            // Egress only: what leaves one end of a veth enters its peer (where the
            // drop watcher sees it die if it does); each TCX attach waits for an RCU
            // grace period, so half the attachments is half the probe's start-up.
            self.probe.attach_observer_egress(
                Observer::Trace,
                std::slice::from_ref(&target),
                Position::First,
            )?;
            self.names.insert(
                (cookie, l.ifindex),
                (Arc::from(r.netns.as_str()), Arc::from(r.ifname.as_str())),
            );
            self.attached.insert(key);
        }
        Ok(())
    }

    fn name_of(&self, cookie: u64, ifindex: u32, live: &Live) -> (String, String) {
        if let Some((n, i)) = self.names.get(&(cookie, ifindex)) {
            return (n.to_string(), i.to_string());
        }
        let ns = self
            .cookies
            .iter()
            .find(|(_, c)| **c == cookie)
            .map_or("?".to_string(), |(n, _)| n.clone());
        let ifname = live
            .view
            .links
            .iter()
            .find(|l| l.netns == ns && l.ifindex == ifindex)
            .map_or(format!("ifindex {ifindex}"), |l| l.name.clone());
        (ns, ifname)
    }

    /// Throws away what the rings hold (events of earlier pairs or other traffic).
    fn clear(&mut self) {
        while self.ring.next_event().is_some() {}
        while self.drops.next_event().is_some() {}
    }

    fn hops(&mut self) -> Vec<Hop> {
        let mut out = Vec::new();
        while let Some(item) = self.ring.next_event() {
            let Some(ev) = event::parse_event(&item) else {
                continue;
            };
            let Some((ns, ifname)) = self.names.get(&(ev.netns_cookie, ev.ifindex)) else {
                continue;
            };
            if let Some(h) = event::to_hop(&ev, ns, 0, ifname) {
                out.push(h);
            }
        }
        out
    }

    fn drop_events(&mut self) -> Vec<DropEvent> {
        let mut out = Vec::new();
        while let Some(ev) = self.drops.next_event() {
            out.push(ev);
        }
        out
    }

    /// Sends the probe for one pair and reports what happened to it.
    pub fn run(
        &mut self,
        live: &Live,
        from: &str,
        to: IpAddr,
        plan: &PathPlan,
        timeout: Duration,
    ) -> Result<ProbeReport, DiagnoseError> {
        let ifaces = plan.interfaces(from);
        let t = std::time::Instant::now();
        self.observe(live, &ifaces)?;
        tracing::debug!(
            ms = t.elapsed().as_secs_f64() * 1e3,
            n = ifaces.len(),
            "observers attached"
        );
        self.clear();
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(2);
        let src = plan.forward.src;
        let small = Echo {
            dst: to,
            src: plan.bind_dev.as_ref().and(src),
            bind_dev: plan.bind_dev.clone(),
            ip_len: SMALL_PACKET,
            dont_fragment: false,
            id,
            seq: 1,
            timeout,
        };
        let outcome = crate::netns::run_in(from, || ping::echo(&small))?;
        let (answered, rtt, error) = match outcome {
            Ok(r) => (r.is_some(), r, None),
            Err(e) => (false, None, Some(e.to_string())),
        };
        // The full-size probe with DF: does the path carry what the source may send?
        let mut mtu_probe = None;
        if answered
            && let Some(mtu) = source_mtu(live, plan).or(plan.forward.mtu)
            && mtu as usize > SMALL_PACKET
        {
            let big = Echo {
                ip_len: mtu as usize,
                dont_fragment: true,
                seq: 2,
                ..small.clone()
            };
            let r = crate::netns::run_in(from, || ping::echo(&big))?;
            mtu_probe = Some(MtuProbe {
                size: mtu as usize,
                answered: matches!(r, Ok(Some(_))),
                error: r.err().map(|e| e.to_string()),
            });
        }
        std::thread::sleep(SETTLE);
        let hops = self.hops();
        let drops = self.drop_events();
        let mut correlator = Correlator::new(u64::MAX);
        for h in hops {
            correlator.push(h);
        }
        let paths = correlator.drain();
        let v6 = to.is_ipv6();
        let echo_path = paths
            .iter()
            .find(|p| p.id == Some(id) && p.seq == Some(1) && p.dst == to);
        let neighbour: Vec<NeighbourReport> = paths
            .iter()
            .filter(|p| p.id.is_none() && (p.proto == "arp" || p.proto == "icmpv6"))
            .map(neighbour_report)
            .collect();
        let mut drop_reports: Vec<DropReport> = Vec::new();
        for d in &drops {
            if !relevant_drop(d, to, src) {
                continue;
            }
            let (netns, ifname) = self.name_of(d.netns_cookie, d.ifindex, live);
            let reason = self
                .reasons
                .get(&d.reason)
                .cloned()
                .unwrap_or_else(|| format!("reason {}", d.reason));
            // An echo reply reaches our raw socket as a copy; the kernel's own ICMP
            // handler then frees the original for want of a ping socket. Not a fault.
            if reason == "no_socket" && is_echo_reply(d) {
                continue;
            }
            let r = DropReport {
                netns,
                ifname,
                meaning: reason_in_words(&reason),
                reason,
                packet: describe_drop(d),
            };
            if !drop_reports.contains(&r) {
                drop_reports.push(r);
            }
        }
        Ok(ProbeReport {
            kind: if v6 { "icmpv6 echo" } else { "icmp echo" },
            src,
            bound_to: plan.bind_dev.clone(),
            answered,
            rtt_ms: rtt.map(|d| d.as_secs_f64() * 1000.0),
            request: echo_path.map(|p| hop_list(&p.request)).unwrap_or_default(),
            reply: echo_path.map(|p| hop_list(&p.reply)).unwrap_or_default(),
            reply_via_lo: echo_path.is_some_and(Path::reply_via_lo),
            last_seen: echo_path
                .and_then(|p| p.last_seen())
                .map(|h| format!("{}/{} {}", h.netns, h.ifname, h.dir())),
            neighbour,
            drops: drop_reports,
            mtu_probe,
            observed: self.attached.len(),
            error,
        })
    }
}

fn source_mtu(live: &Live, plan: &PathPlan) -> Option<u32> {
    let first = plan.forward.hops.first()?;
    live.link(&first.netns, &first.ifname).map(|l| l.mtu)
}

fn hop_list(hops: &[Hop]) -> Vec<String> {
    hops.iter()
        .map(|h| format!("{}/{} {}", h.netns, h.ifname, h.dir()))
        .collect()
}

fn neighbour_report(p: &Path) -> NeighbourReport {
    // Retries of one request show as the first hop repeating.
    let attempts = p
        .request
        .first()
        .map_or(0, |first| {
            p.request
                .iter()
                .filter(|h| {
                    h.netns == first.netns && h.ifname == first.ifname && h.egress == first.egress
                })
                .count()
        })
        .max(1);
    let mut seen: Vec<String> = Vec::new();
    for h in &p.request {
        let s = format!("{}/{} {}", h.netns, h.ifname, h.dir());
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    NeighbourReport {
        proto: if p.proto == "arp" { "arp" } else { "nd" },
        asker: p.src,
        target: p.dst,
        answered: p.verdict == Verdict::Answered,
        attempts,
        last_seen: (p.verdict == Verdict::Unanswered)
            .then(|| {
                p.last_seen()
                    .map(|h| format!("{}/{} {}", h.netns, h.ifname, h.dir()))
            })
            .flatten(),
        request: seen,
    }
}

fn addr_of(b: &[u8; 16], v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(*b))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

/// A drop belongs to the probe when it carries the probe's addresses (either way) or
/// is an ARP/ND exchange about them.
fn relevant_drop(d: &DropEvent, to: IpAddr, src: Option<IpAddr>) -> bool {
    let v6 = d.protocol == 0x86dd;
    let s = addr_of(&d.src, v6);
    let t = addr_of(&d.dst, v6);
    let ours = |a: IpAddr| a == to || Some(a) == src;
    match d.protocol {
        0x0806 => ours(s) || ours(t),
        0x0800 | 0x86dd => (ours(s) && ours(t)) || (d.ip_proto == 58 && (ours(s) || ours(t))),
        _ => false,
    }
}

fn is_echo_reply(d: &DropEvent) -> bool {
    matches!((d.ip_proto, d.icmp_type), (1, 0) | (58, 129))
}

fn describe_drop(d: &DropEvent) -> String {
    let v6 = d.protocol == 0x86dd;
    let s = addr_of(&d.src, v6);
    let t = addr_of(&d.dst, v6);
    match d.protocol {
        0x0806 if d.icmp_type == 2 => format!("ARP reply {s} > {t}"),
        0x0806 => format!("ARP who-has {t} tell {s}"),
        _ => {
            let what = match (d.ip_proto, d.icmp_type) {
                (1, 8) | (58, 128) => "echo request".to_string(),
                (1, 0) | (58, 129) => "echo reply".to_string(),
                (58, 135) => "neighbour solicitation".to_string(),
                (58, 136) => "neighbour advertisement".to_string(),
                (1 | 58, t) => format!("type {t}"),
                (p, _) => format!("protocol {p}"),
            };
            format!("{} {what} {s} > {t}", if v6 { "ICMPv6" } else { "ICMP" })
        }
    }
}

/// The kernel's drop reasons in words, for the ones a lab runs into; others are shown
/// by name.
pub fn reason_in_words(reason: &str) -> String {
    let words = match reason {
        "ip_inaddrerrors" => "no route for it, or IPv4 forwarding is off in this namespace",
        "ip_local_source" => "its source is an address of this namespace, and accept_local is off",
        "no_tx_target" => "no port to send it out of (the bridge port or its peer is down)",
        "ip_invalid_source" => {
            "its source address is invalid here (a local address without accept_local, or martian)"
        }
        "ip_rpfilter" => "reverse-path filtering (rp_filter) rejected its source",
        "ip_noproto" => "no handler for its protocol",
        "ip_outnoroutes" => "no route to send it",
        "neigh_failed" => "the neighbour (ARP/ND) never answered",
        "neigh_queuefull" => "too many packets waiting for an ARP/ND answer",
        "neigh_dead" => "the neighbour entry was removed",
        "pkt_too_big" => "larger than the MTU",
        "dev_ready" => "the interface is down",
        "netfilter_drop" => "a netfilter rule dropped it",
        "otherhost" => "addressed to another host's MAC",
        "not_specified" => "the kernel gave no reason",
        "no_socket" => "no socket to deliver it to",
        "ipv6disabled" => "IPv6 is disabled on the interface",
        "unicast_in_l2_multicast" => "unicast IP in a link-layer multicast frame",
        "arp_pvlan_disable" => "ARP proxying rules dropped it",
        "mac_is_martian" | "ip_martian" => "martian address",
        _ => "",
    };
    if words.is_empty() {
        reason.replace('_', " ")
    } else {
        words.to_string()
    }
}

/// Whether the probe and the static checks agree; adds PROBE_* findings where the
/// probe shows what the static checks missed.
pub fn agree(static_ok: bool, r: &ProbeReport, out: &mut Findings, from: &str) -> String {
    let mtu_failed = r.mtu_probe.as_ref().is_some_and(|m| !m.answered);
    let only_mtu = !static_ok && out.iter().all(|f| f.code == Code::MtuMismatch);
    let where_ = r
        .last_seen
        .clone()
        .or_else(|| {
            r.neighbour
                .iter()
                .find(|n| !n.answered)
                .and_then(|n| n.last_seen.clone())
        })
        .unwrap_or_else(|| "nowhere (not even leaving the source)".into());
    let drops: Vec<String> = r
        .drops
        .iter()
        .map(|d| {
            format!(
                "{} dropped at {}/{}: {}",
                d.packet, d.netns, d.ifname, d.meaning
            )
        })
        .collect();
    if static_ok {
        if !r.answered {
            out.push(Finding::new(
                Code::ProbeUnanswered,
                from,
                "",
                format!(
                    "the probe from {from} was not answered, though no static check explains it"
                ),
                format!(
                    "last seen at {where_}{}{}",
                    if drops.is_empty() { "" } else { "; " },
                    drops.join("; ")
                ),
                None,
            ));
            return "disagree: the static checks found nothing, but the probe was not answered"
                .into();
        }
        if mtu_failed {
            let size = r.mtu_probe.as_ref().map_or(0, |m| m.size);
            out.push(Finding::new(
                Code::ProbeMtu,
                from,
                "",
                format!("a {size}-byte probe with Don't Fragment was not answered, though a small one was"),
                r.mtu_probe
                    .as_ref()
                    .and_then(|m| m.error.clone())
                    .unwrap_or_else(|| "no reply to the full-size probe".into()),
                None,
            ));
            return "disagree: the static checks found nothing, but full-size packets do not pass"
                .into();
        }
        return "agree".into();
    }
    if only_mtu {
        return if r.answered && mtu_failed {
            "agree".into()
        } else {
            "disagree: the MTU mismatch did not stop the full-size probe".into()
        };
    }
    if r.answered {
        "disagree: the probe was answered despite the findings".into()
    } else {
        "agree".into()
    }
}
