//! Rendering hops and paths: a live text line per hop and a summary per path, or
//! NDJSON (schema in docs/trace-json-schema.json).

use super::{
    event::{Hop, Proto, icmp_type_name, is_echo},
    paths::{Path, Verdict},
};
use crate::netlink::link::format_mac;

/// One hop line, serialised from a struct (no intermediate JSON tree: a flood of
/// events has to be cheap).
#[derive(serde::Serialize)]
struct HopLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    ts_ns: u64,
    netns: &'a str,
    netns_inode: u64,
    ifname: &'a str,
    ifindex: u32,
    dir: &'static str,
    proto: &'static str,
    len: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src: Option<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst: Option<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<std::net::Ipv6Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    op: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_ip: Option<std::net::Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_ip: Option<std::net::Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    impair: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
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

#[derive(serde::Serialize)]
struct HopRef<'a> {
    netns: &'a str,
    ifname: &'a str,
    dir: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    impair: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl<'a> HopRef<'a> {
    fn of(h: &'a Hop, with_ts: bool) -> Self {
        HopRef {
            netns: &h.netns,
            ifname: &h.ifname,
            dir: h.dir(),
            ts_ns: with_ts.then_some(h.ts_ns),
            impair: h.impaired.as_ref().map(|i| i.action),
            reason: h.impaired.as_ref().map(|i| i.reason.as_str()),
        }
    }
}

/// One path line (struct-serialised, like hops: cheap under a flood).
#[derive(serde::Serialize)]
struct PathLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    proto: &'static str,
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u16>,
    request: Vec<HopRef<'a>>,
    reply: Vec<HopRef<'a>>,
    reply_via_lo: bool,
    verdict: &'static str,
    rtt_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen: Option<HopRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<String>,
    #[serde(skip_serializing_if = "<[crate::diagnose::Finding]>::is_empty")]
    findings: &'a [crate::diagnose::Finding],
    #[serde(skip_serializing_if = "<[crate::diagnose::probe::DropReport]>::is_empty")]
    drops: &'a [crate::diagnose::probe::DropReport],
}

pub fn write_path_json<W: std::io::Write>(out: &mut W, p: &Path) -> std::io::Result<()> {
    let echo = p.id.zip(p.seq);
    let unanswered = p.verdict == Verdict::Unanswered;
    let line = PathLine {
        kind: "path",
        proto: p.proto,
        src: p.src,
        dst: p.dst,
        id: echo.map(|(id, _)| id),
        seq: echo.map(|(_, seq)| seq),
        request: p.request.iter().map(|h| HopRef::of(h, true)).collect(),
        reply: p.reply.iter().map(|h| HopRef::of(h, true)).collect(),
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

/// Why the path looks the way it does, when that is not obvious.
pub fn explanation(p: &Path) -> Option<String> {
    if p.reply_via_lo() {
        let ns = p
            .reply
            .iter()
            .find(|h| &*h.ifname == "lo")
            .map(|h| &*h.netns)
            .unwrap_or("?");
        return Some(format!(
            "local delivery: {} and {} are both addresses of namespace {ns}, so the kernel answers over lo, not over the veth",
            p.src, p.dst
        ));
    }
    crate::diagnose::explain::summary(p)
}

/// `ns1/veth0 → br-veth0 → …`: consecutive hops on one interface collapse into one.
fn route(hops: &[Hop]) -> String {
    let mut places: Vec<String> = Vec::new();
    for h in hops {
        let place = h.place();
        if places.last() != Some(&place) {
            places.push(place);
        }
    }
    places.join(" → ")
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

pub fn path_text(p: &Path) -> String {
    let what = match (p.proto, p.seq) {
        ("arp", _) => format!("ARP {} → {}", p.src, p.dst),
        (_, Some(seq)) => format!("{} → {} seq {seq}", p.src, p.dst),
        _ => format!("{} → {}", p.src, p.dst),
    };
    let mut line = format!("path {what}: {}", route(&p.request));
    match p.verdict {
        Verdict::Answered => {
            let rtt = p
                .rtt_ns()
                .map(|n| format!(" ({:.3} ms)", n as f64 / 1e6))
                .unwrap_or_default();
            line.push_str(&format!("; reply {}{rtt}", route(&p.reply)));
        }
        Verdict::Unanswered => {
            let last = p
                .last_seen()
                .map(|h| format!("{} {}", h.place(), h.dir()))
                .unwrap_or_else(|| "nowhere".into());
            line.push_str(&format!("; UNANSWERED, last seen at {last}"));
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
        line.push_str(&format!("\n      {note}"));
    }
    if let Some(e) = explanation(p) {
        line.push_str(&format!("\n      {e}"));
    }
    for f in &p.findings {
        line.push_str(&format!("\n      {} {}: {}", f.code, f.object(), f.message));
        if let Some(fix) = &f.fix {
            line.push_str(&format!(" — fix: {fix}"));
        }
    }
    for d in &p.drops {
        line.push_str(&format!(
            "\n      {}",
            crate::diagnose::explain::drop_line(d)
        ));
    }
    line
}
