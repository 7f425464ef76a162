//! Rendering hops and paths: a live text line per hop and a summary per path, or
//! NDJSON (schema in docs/trace-json-schema.json).

use serde_json::{Value, json};

use super::{
    event::{Hop, Proto, icmp_type_name, is_echo},
    paths::{Path, Verdict},
};
use crate::netlink::link::format_mac;

pub fn hop_json(h: &Hop) -> Value {
    let mut v = json!({
        "type": "hop",
        "ts_ns": h.ts_ns,
        "netns": h.netns,
        "netns_inode": h.netns_inode,
        "ifname": h.ifname,
        "ifindex": h.ifindex,
        "dir": h.dir(),
        "proto": h.proto_name(),
        "len": h.len,
    });
    let Some(m) = v.as_object_mut() else {
        return v;
    };
    if let Some(vlan) = h.vlan {
        m.insert("vlan".into(), json!(vlan));
    }
    match &h.proto {
        Proto::Arp {
            op,
            sender_ip,
            target_ip,
            sender_mac,
            target_mac,
        } => {
            m.insert(
                "op".into(),
                json!(if *op == 1 { "request" } else { "reply" }),
            );
            m.insert("sender_ip".into(), json!(sender_ip.to_string()));
            m.insert("target_ip".into(), json!(target_ip.to_string()));
            m.insert("sender_mac".into(), json!(format_mac(sender_mac)));
            m.insert("target_mac".into(), json!(format_mac(target_mac)));
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
            m.insert("icmp_type".into(), json!(icmp_type_name(*v6, *icmp_type)));
            m.insert("icmp_code".into(), json!(code));
            if is_echo(*v6, *icmp_type) {
                m.insert("id".into(), json!(id));
                m.insert("seq".into(), json!(seq));
            }
            m.insert("src".into(), json!(src.to_string()));
            m.insert("dst".into(), json!(dst.to_string()));
            if let Some(t) = nd_target {
                m.insert("target".into(), json!(t.to_string()));
            }
        }
    }
    v
}

fn hop_ref(h: &Hop) -> Value {
    json!({"netns": h.netns, "ifname": h.ifname, "dir": h.dir(), "ts_ns": h.ts_ns})
}

pub fn path_json(p: &Path) -> Value {
    let mut v = json!({
        "type": "path",
        "proto": p.proto,
        "src": p.src.to_string(),
        "dst": p.dst.to_string(),
        "request": p.request.iter().map(hop_ref).collect::<Vec<_>>(),
        "reply": p.reply.iter().map(hop_ref).collect::<Vec<_>>(),
        "reply_via_lo": p.reply_via_lo(),
        "verdict": if p.verdict == Verdict::Answered { "answered" } else { "unanswered" },
        "rtt_ns": p.rtt_ns(),
    });
    if let Some(m) = v.as_object_mut() {
        if let (Some(id), Some(seq)) = (p.id, p.seq) {
            m.insert("id".into(), json!(id));
            m.insert("seq".into(), json!(seq));
        }
        if p.verdict == Verdict::Unanswered
            && let Some(h) = p.last_seen()
        {
            m.insert(
                "last_seen".into(),
                json!({"netns": h.netns, "ifname": h.ifname, "dir": h.dir()}),
            );
        }
        if let Some(e) = explanation(p) {
            m.insert("explanation".into(), json!(e));
        }
    }
    v
}

/// Why the path looks the way it does, when that is not obvious.
pub fn explanation(p: &Path) -> Option<String> {
    if p.reply_via_lo() {
        let ns = p
            .reply
            .iter()
            .find(|h| h.ifname == "lo")
            .map(|h| h.netns.as_str())
            .unwrap_or("?");
        return Some(format!(
            "local delivery: {} and {} are both addresses of namespace {ns}, so the kernel answers over lo, not over the veth",
            p.src, p.dst
        ));
    }
    None
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
    format!(
        "{rel:>10.6}  {:<22} {:<7} {}{vlan} len {}",
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
    if let Some(e) = explanation(p) {
        line.push_str(&format!("\n      {e}"));
    }
    line
}
