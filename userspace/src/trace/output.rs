//! Rendering hops and paths: a live text line per hop and a summary per path, or
//! NDJSON (schema in docs/trace-json-schema.json).

use super::{
    event::{Hop, Proto, icmp_type_name, is_echo},
    paths::{Exchange, Path, Verdict},
    tree,
};
use crate::netlink::link::format_mac;

/// One hop line, serialised from a struct (no intermediate JSON tree: a flood of
/// events has to be cheap).
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "hop", transform = crate::schemas::trace::hop_rules)]
pub(crate) struct HopLine<'a> {
    #[serde(rename = "type")]
    #[schemars(extend("const" = "hop"))]
    kind: &'static str,
    /// CLOCK_MONOTONIC nanoseconds at the hook (bpf_ktime_get_ns): time since boot.
    ts_ns: u64,
    #[schemars(with = "crate::schemas::wire::Netns")]
    netns: &'a str,
    /// Inode of the namespace: tells apart two namespaces that had the same name.
    #[schemars(range(min = 1, max = 4_294_967_295_u64))]
    netns_inode: u64,
    #[schemars(with = "crate::schemas::wire::Ifname")]
    ifname: &'a str,
    /// Interface index inside its namespace.
    #[schemars(range(min = 1, max = 2_147_483_647))]
    ifindex: u32,
    #[schemars(with = "crate::schemas::wire::Dir")]
    dir: &'static str,
    #[schemars(with = "crate::schemas::wire::Proto")]
    proto: &'static str,
    /// Frame length at the hook, Ethernet header included (skb->len).
    len: u32,
    /// 802.1Q VLAN id, present only when the frame carries a tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 4095))]
    vlan: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::IcmpType>")]
    icmp_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    /// Echo identifier (echo-request / echo-reply only).
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u16>,
    /// Echo sequence number (echo-request / echo-reply only).
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u16>,
    /// Source address of the IP header carrying the ICMP message.
    #[serde(skip_serializing_if = "Option::is_none")]
    src: Option<std::net::IpAddr>,
    /// Destination address of the IP header carrying the ICMP message.
    #[serde(skip_serializing_if = "Option::is_none")]
    dst: Option<std::net::IpAddr>,
    /// Target address of a neighbor solicitation / advertisement.
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<std::net::Ipv6Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::ArpOp>")]
    op: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_ip: Option<std::net::Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_ip: Option<std::net::Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::Mac>")]
    sender_mac: Option<String>,
    /// 00:00:00:00:00:00 in a request, as on the wire.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::Mac>")]
    target_mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::ImpairAction>")]
    impair: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::ImpairReason>")]
    reason: Option<&'a str>,
}

pub fn write_hop_json<W: std::io::Write>(out: &mut W, h: &Hop) -> std::io::Result<()> {
    let mut line = HopLine {
        kind: "hop",
        ts_ns: h.ts_ns,
        netns: &h.netns,
        netns_inode: h.netns_inode,
        ifname: &h.ifname,
        ifindex: h.ifindex,
        dir: h.dir(),
        proto: h.proto_name(),
        len: h.len,
        vlan: h.vlan,
        icmp_type: None,
        icmp_code: None,
        id: None,
        seq: None,
        src: None,
        dst: None,
        target: None,
        op: None,
        sender_ip: None,
        target_ip: None,
        sender_mac: None,
        target_mac: None,
        impair: h.impaired.as_ref().map(|i| i.action),
        reason: h.impaired.as_ref().map(|i| i.reason.as_str()),
    };
    match &h.proto {
        Proto::Arp {
            op,
            sender_ip,
            target_ip,
            sender_mac,
            target_mac,
        } => {
            line.op = Some(if *op == 1 { "request" } else { "reply" });
            line.sender_ip = Some(*sender_ip);
            line.target_ip = Some(*target_ip);
            line.sender_mac = Some(format_mac(sender_mac));
            line.target_mac = Some(format_mac(target_mac));
        }
        Proto::Icmp {
            v6,
            icmp_type,
            code,
            id,
            seq,
            src,
            dst,
            nd_target,
        } => {
            line.icmp_type = Some(icmp_type_name(*v6, *icmp_type));
            line.icmp_code = Some(*code);
            if is_echo(*v6, *icmp_type) {
                line.id = Some(*id);
                line.seq = Some(*seq);
            }
            line.src = Some(*src);
            line.dst = Some(*dst);
            line.target = *nd_target;
        }
    }
    serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

/// One hook a request or reply was seen at (`last_seen`: without `ts_ns`).
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "path_hop", transform = crate::schemas::trace::impair_with_reason)]
struct HopRef<'a> {
    #[schemars(with = "crate::schemas::wire::Netns")]
    netns: &'a str,
    #[schemars(with = "crate::schemas::wire::Ifname")]
    ifname: &'a str,
    #[schemars(with = "crate::schemas::wire::Dir")]
    dir: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts_ns: Option<u64>,
    /// Index, in the same array, of the hop this one came from (absent on the first):
    /// siblings are the copies of a flood.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::ImpairAction>")]
    impair: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::ImpairReason>")]
    reason: Option<&'a str>,
}

impl<'a> HopRef<'a> {
    /// The hops of one leg, each with its parent in the leg.
    fn leg(hops: &'a [Hop]) -> Vec<Self> {
        hops.iter()
            .zip(tree::parents(hops))
            .map(|(h, parent)| HopRef {
                parent,
                ..HopRef::of(h, true)
            })
            .collect()
    }

    fn of(h: &'a Hop, with_ts: bool) -> Self {
        HopRef {
            netns: &h.netns,
            ifname: &h.ifname,
            dir: h.dir(),
            ts_ns: with_ts.then_some(h.ts_ns),
            parent: None,
            impair: h.impaired.as_ref().map(|i| i.action),
            reason: h.impaired.as_ref().map(|i| i.reason.as_str()),
        }
    }
}

/// One path line (struct-serialised, like hops: cheap under a flood).
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "path", transform = crate::schemas::trace::path_rules)]
pub(crate) struct PathLine<'a> {
    #[serde(rename = "type")]
    #[schemars(extend("const" = "path"))]
    kind: &'static str,
    #[schemars(with = "crate::schemas::wire::Proto")]
    proto: &'static str,
    /// `echo`, `arp` or `nd`.
    #[schemars(extend("enum" = ["echo", "arp", "nd"]))]
    exchange: &'static str,
    /// 1, or the retry's number for an ARP/ND request sent again.
    #[schemars(range(min = 1))]
    attempt: u32,
    /// Requester's address (ARP: sender IP of the request).
    src: std::net::IpAddr,
    /// Address asked for (ARP: target IP of the request).
    dst: std::net::IpAddr,
    /// Echo identifier (echo paths only).
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u16>,
    /// Echo sequence number (echo paths only).
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u16>,
    #[schemars(length(min = 1))]
    request: Vec<HopRef<'a>>,
    /// Hops of the reply; empty when no reply was seen (or it crossed only untraced interfaces).
    reply: Vec<HopRef<'a>>,
    /// The reply came back over `lo` (the requester's address is local to the responder).
    reply_via_lo: bool,
    #[schemars(with = "crate::schemas::wire::Verdict")]
    verdict: &'static str,
    /// First request hop to last reply hop; null when unanswered.
    rtt_ns: Option<u64>,
    /// Unanswered: the last hook the request (or the started reply) was seen at.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen: Option<HopRef<'a>>,
    /// Why the path looks the way it does (a reply over `lo`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::NonEmpty>")]
    explanation: Option<String>,
    /// Unanswered paths of a lab: diagnose's findings for this path (as in diagnose --json).
    #[serde(skip_serializing_if = "<[crate::diagnose::Finding]>::is_empty")]
    findings: &'a [crate::diagnose::Finding],
    /// Unanswered paths of a lab: the path's packets the kernel freed (skb:kfree_skb in
    /// the lab's namespaces) since its first hop, once per place and reason, in words
    /// (as in diagnose --json probe.drops).
    #[serde(skip_serializing_if = "<[crate::diagnose::probe::DropReport]>::is_empty")]
    drops: &'a [crate::diagnose::probe::DropReport],
}

pub fn write_path_json<W: std::io::Write>(out: &mut W, p: &Path) -> std::io::Result<()> {
    let echo = p.id.zip(p.seq);
    let unanswered = p.verdict == Verdict::Unanswered;
    let line = PathLine {
        kind: "path",
        proto: p.proto,
        exchange: p.exchange.as_str(),
        attempt: p.attempt,
        src: p.src,
        dst: p.dst,
        id: echo.map(|(id, _)| id),
        seq: echo.map(|(_, seq)| seq),
        request: HopRef::leg(&p.request),
        reply: HopRef::leg(&p.reply),
        reply_via_lo: p.reply_via_lo(),
        verdict: if unanswered { "unanswered" } else { "answered" },
        rtt_ns: p.rtt_ns(),
        last_seen: if unanswered {
            p.last_seen().map(|h| HopRef::of(h, false))
        } else {
            None
        },
        explanation: explanation(p),
        findings: &p.findings,
        drops: &p.drops,
    };
    serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

/// Why the path looks the way it does, when that is not obvious: a reply that came
/// back over `lo`.
pub fn explanation(p: &Path) -> Option<String> {
    // Unanswered paths of a lab: what the diagnose engine concludes.
    let Some(lo) = p.reply.iter().find(|h| &*h.ifname == "lo") else {
        return crate::diagnose::explain::summary(p);
    };
    let ns = &*lo.netns;
    if p.request_left_lo() {
        // The classic lesson: both ends of a veth pair in one namespace.
        let mut crossed: Vec<String> = Vec::new();
        for h in p.request.iter().filter(|h| h.impaired.is_none()) {
            let place = h.place();
            if crossed.last() != Some(&place) {
                crossed.push(place);
            }
        }
        Some(format!(
            "local delivery: {} and {} are both addresses of namespace {ns}; the request crossed {}, but the kernel answered over lo, not back over the veth (put the two ends in different namespaces to see the reply on the wire)",
            p.src,
            p.dst,
            crossed.join(" → ")
        ))
    } else {
        Some(format!(
            "{} is an address of namespace {ns} itself: the request and its reply went over lo and never touched a veth (ping -I IFNAME sends it out of an interface)",
            p.dst
        ))
    }
}

/// The summary line of `--json`: the last line of a trace, what it saw and what it could
/// not keep.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "summary")]
pub struct SummaryLine {
    #[serde(rename = "type")]
    #[schemars(extend("const" = "summary"))]
    kind: &'static str,
    /// Packet events received from the kernel (one per packet per hook).
    pub events: u64,
    /// Events the kernel could not deliver (ring buffer full): some hops and paths are missing.
    pub lost: u64,
    /// Number of path lines printed.
    pub paths: u64,
    /// Requests not followed because 16,384 paths were open at once (memory bound).
    pub paths_dropped: u64,
    /// Hops not kept on a path that already had 64 in that direction (memory bound).
    pub hops_dropped: u64,
    /// Events still in the ring when the trace was told to stop and left unread, so
    /// that it stops within about a quarter of a second (only after a flood).
    pub unread: u64,
}

impl SummaryLine {
    pub fn new(summary: &super::TraceSummary, bounds: super::paths::Bounds) -> Self {
        Self {
            kind: "summary",
            events: summary.events,
            lost: summary.lost,
            paths: summary.paths,
            paths_dropped: bounds.paths_dropped,
            hops_dropped: bounds.hops_dropped,
            unread: summary.unread,
        }
    }

    pub fn write_json<W: std::io::Write>(&self, out: &mut W) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, self).map_err(std::io::Error::other)?;
        out.write_all(b"\n")
    }

    /// `38 events, 0 lost, 5 paths`, and what the bounds left out, if anything.
    pub fn text(&self) -> String {
        let mut line = format!(
            "{} events, {} lost, {} paths",
            self.events, self.lost, self.paths
        );
        if self.paths_dropped + self.hops_dropped > 0 {
            line.push_str(&format!(
                " ({} requests and {} hops not followed: at most {} open paths of {} hops each)",
                self.paths_dropped,
                self.hops_dropped,
                super::paths::MAX_OPEN_PATHS,
                super::paths::MAX_HOPS_PER_PATH
            ));
        }
        if self.unread > 0 {
            line.push_str(&format!(
                " ({} events left unread when stopping: more than {} ms of work)",
                self.unread,
                super::STOP_DRAIN.as_millis()
            ));
        }
        line
    }
}

pub fn hop_text(h: &Hop, t0_ns: u64) -> String {
    let rel = h.ts_ns.saturating_sub(t0_ns) as f64 / 1e9;
    let vlan = h.vlan.map(|v| format!(" vlan {v}")).unwrap_or_default();
    let reason = h
        .impaired
        .as_ref()
        .map(|i| format!(" — {}", i.reason))
        .unwrap_or_default();
    format!(
        "{rel:>10.6}  {:<22} {:<7} {}{vlan} len {}{reason}",
        h.place(),
        h.dir(),
        h.summary(),
        h.len
    )
}

/// Indentation of the lines under a path's first line.
const MORE: &str = "      ";
/// Indentation of a flood's branches.
const BRANCH: &str = "        ";

/// A path for a person: `path ARP 10.1.1.2 → 10.1.1.9: ns1/veth0 → …; UNANSWERED, …`
/// on one line when the request went one way; a flood's branches on lines of their own.
pub fn path_text(p: &Path) -> String {
    let v6 = p.proto == "icmpv6";
    let mut what = format!("{} {} → {}", p.exchange.label(v6), p.src, p.dst);
    if let (Exchange::Echo, Some(seq)) = (p.exchange, p.seq) {
        what.push_str(&format!(" seq {seq}"));
    }
    if p.attempt > 1 {
        what.push_str(&format!(" attempt {}", p.attempt));
    }
    let request = tree::draw(&p.request);
    let mut line = format!("path {what}: {}", request.trunk);
    let outcome = match p.verdict {
        Verdict::Answered => {
            let rtt = p
                .rtt_ns()
                .map(|n| format!(" ({:.3} ms)", n as f64 / 1e6))
                .unwrap_or_default();
            let reply = tree::draw(&p.reply);
            let mut text = format!("reply {}", reply.trunk);
            match &reply.fork {
                Some(fork) => text.push_str(&format!(", {fork}:{rtt}")),
                None => text.push_str(&rtt),
            }
            for b in &reply.branches {
                text.push_str(&format!("\n{BRANCH}{b}"));
            }
            text
        }
        Verdict::Unanswered if request.fork.is_some() => {
            let ends: Vec<String> = tree::ends(&p.request)
                .iter()
                .map(|h| format!("{} {}", h.place(), h.dir()))
                .collect();
            format!(
                "UNANSWERED, last seen at the ends of the flood: {}",
                ends.join(", ")
            )
        }
        Verdict::Unanswered => {
            let last = p
                .last_seen()
                .map(|h| format!("{} {}", h.place(), h.dir()))
                .unwrap_or_else(|| "nowhere".into());
            format!("UNANSWERED, last seen at {last}")
        }
    };
    match &request.fork {
        None => line.push_str(&format!("; {outcome}")),
        Some(fork) => {
            line.push_str(&format!(", {fork}:"));
            for b in &request.branches {
                line.push_str(&format!("\n{BRANCH}{b}"));
            }
            line.push_str(&format!("\n{MORE}{outcome}"));
        }
    }
    // What impairments did on the way (once per end and reason).
    let mut impaired: Vec<String> = Vec::new();
    for h in p.request.iter().chain(&p.reply) {
        if let Some(i) = &h.impaired {
            let note = format!("{} at {} {}", i.reason, h.place(), h.dir());
            if !impaired.contains(&note) {
                impaired.push(note);
            }
        }
    }
    for note in impaired {
        line.push_str(&format!("\n{MORE}{note}"));
    }
    if let Some(e) = explanation(p) {
        line.push_str(&format!("\n{MORE}{e}"));
    }
    for f in &p.findings {
        line.push_str(&format!("\n{MORE}{} {}: {}", f.code, f.object(), f.message));
        if let Some(fix) = &f.fix {
            line.push_str(&format!(" — fix: {fix}"));
        }
    }
    for d in &p.drops {
        line.push_str(&format!(
            "\n{MORE}{}",
            crate::diagnose::explain::drop_line(d)
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{paths::Correlator, tree::testing::flood};

    #[test]
    fn an_unanswered_flood_names_every_end() {
        let mut c = Correlator::new(1_000);
        for h in flood() {
            c.push(h);
        }
        let p = c.drain().remove(0);
        let text = path_text(&p);
        assert_eq!(
            text.lines().take(4).collect::<Vec<_>>(),
            [
                "path ARP 10.1.1.2 → 10.1.1.9: ns1/veth0 → host/br-veth0, flooded to 2 ports:",
                "        ├─ host/br-veth1 → ns2/veth1",
                "        └─ host/br-veth2 → ns3/veth2",
                "      UNANSWERED, last seen at the ends of the flood: ns3/veth2 ingress, ns2/veth1 ingress",
            ],
            "{text}"
        );
        assert_eq!(explanation(&p), None);
    }
}
