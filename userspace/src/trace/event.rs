//! Decoding ring-buffer events into hops: one packet seen on one interface in one direction.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use vethscope_common::{CAPTURE_LEN, PacketEvent, direction, event_flags, proto};

use crate::netlink::link::format_mac;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proto {
    Arp {
        op: u16,
        sender_ip: Ipv4Addr,
        target_ip: Ipv4Addr,
        sender_mac: [u8; 6],
        target_mac: [u8; 6],
    },
    Icmp {
        v6: bool,
        icmp_type: u8,
        code: u8,
        id: u16,
        seq: u16,
        src: IpAddr,
        dst: IpAddr,
        nd_target: Option<Ipv6Addr>,
    },
}

#[derive(Clone, Debug)]
pub struct Hop {
    pub ts_ns: u64,
    /// Shared with the resolver: a flood of events must not allocate names per hop.
    pub netns: Arc<str>,
    pub netns_inode: u64,
    pub ifname: Arc<str>,
    pub ifindex: u32,
    pub egress: bool,
    pub len: u32,
    pub vlan: Option<u16>,
    pub proto: Proto,
    /// The captured bytes; empty unless the trace writes a pcap file.
    pub frame: Vec<u8>,
    /// Set when the impairment program, not a TC hook of the trace, reported this hop.
    pub impaired: Option<Impaired>,
    /// The other end of this interface's veth pair (namespace, name), when the trace
    /// knows it: what links an egress hop to the ingress hop that follows it.
    pub peer: Option<(Arc<str>, Arc<str>)>,
}

/// What an impairment did to a packet at an end, and why (the end's configured setting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Impaired {
    /// "drop", "duplicate" or "corrupt".
    pub action: &'static str,
    /// "dropped by impairment: loss 1%".
    pub reason: String,
}

impl Impaired {
    /// The action an impairment event's flags carry; `None` for a trace event.
    pub fn action_of(flags: u8) -> Option<&'static str> {
        if flags & event_flags::IMPAIR_DROP != 0 {
            Some("drop")
        } else if flags & event_flags::IMPAIR_DUPLICATE != 0 {
            Some("duplicate")
        } else if flags & event_flags::IMPAIR_CORRUPT != 0 {
            Some("corrupt")
        } else {
            None
        }
    }

    /// The reason for `action`, naming the setting recorded for the end (when the record
    /// still has one: the impairment may have been cleared since the packet passed).
    pub fn new(action: &'static str, setting: Option<&crate::impair::Impairment>) -> Self {
        let (verb, key, value) = match action {
            "drop" => ("dropped", "loss", setting.and_then(|s| s.loss)),
            "duplicate" => ("duplicated", "duplicate", setting.and_then(|s| s.duplicate)),
            _ => ("corrupted", "corrupt", setting.and_then(|s| s.corrupt)),
        };
        let reason = match value {
            Some(p) => format!("{verb} by impairment: {key} {p}"),
            None => format!("{verb} by impairment: {key} (setting since cleared)"),
        };
        Self { action, reason }
    }
}

impl Hop {
    pub fn dir(&self) -> &'static str {
        if self.egress { "egress" } else { "ingress" }
    }

    /// `ns1/veth0`, and `host/br-veth0` for the root namespace (as `show` writes it).
    pub fn place(&self) -> String {
        format!("{}/{}", self.netns, self.ifname)
    }

    /// The same interface (namespace and name) as `other`.
    pub fn same_place(&self, other: &Hop) -> bool {
        self.ifname == other.ifname && self.netns == other.netns
    }

    pub fn proto_name(&self) -> &'static str {
        match &self.proto {
            Proto::Arp { .. } => "arp",
            Proto::Icmp { v6: false, .. } => "icmp",
            Proto::Icmp { v6: true, .. } => "icmpv6",
        }
    }

    /// One-line description, tcpdump style.
    pub fn summary(&self) -> String {
        match &self.proto {
            Proto::Arp {
                op,
                sender_ip,
                target_ip,
                sender_mac,
                ..
            } => match op {
                1 => format!("ARP who-has {target_ip} tell {sender_ip}"),
                2 => format!("ARP reply {sender_ip} is-at {}", format_mac(sender_mac)),
                _ => format!("ARP op {op} {sender_ip} > {target_ip}"),
            },
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
                let name = icmp_type_name(*v6, *icmp_type);
                let family = if *v6 { "ICMPv6" } else { "ICMP" };
                match (is_echo(*v6, *icmp_type), nd_target) {
                    (true, _) => format!(
                        "{family} {} {src} > {dst} id {id} seq {seq}",
                        name.replace('-', " ")
                    ),
                    (false, Some(t)) => format!(
                        "{family} {} {src} > {dst} target {t}",
                        name.replace('-', " ")
                    ),
                    _ => format!(
                        "{family} {} (type {icmp_type} code {code}) {src} > {dst}",
                        name.replace('-', " ")
                    ),
                }
            }
        }
    }
}

pub fn is_echo(v6: bool, t: u8) -> bool {
    if v6 {
        t == 128 || t == 129
    } else {
        t == 8 || t == 0
    }
}

pub fn is_echo_request(v6: bool, t: u8) -> bool {
    if v6 { t == 128 } else { t == 8 }
}

pub fn icmp_type_name(v6: bool, t: u8) -> &'static str {
    match (v6, t) {
        (false, 8) | (true, 128) => "echo-request",
        (false, 0) | (true, 129) => "echo-reply",
        (false, 3) | (true, 1) => "dest-unreachable",
        (false, 11) | (true, 3) => "time-exceeded",
        (true, 135) => "neighbor-solicitation",
        (true, 136) => "neighbor-advertisement",
        _ => "other",
    }
}

/// Reads one event out of the ring buffer's bytes (which carry no alignment promise).
pub fn parse_event(bytes: &[u8]) -> Option<PacketEvent> {
    if bytes.len() < std::mem::size_of::<PacketEvent>() {
        return None;
    }
    // SAFETY: the length was checked; PacketEvent is plain old data (any bit pattern is
    // valid) and read_unaligned copes with the buffer's alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<PacketEvent>()) })
}

/// Turns an event into a hop, with names from the resolver.
pub fn to_hop(
    ev: &PacketEvent,
    netns: &Arc<str>,
    netns_inode: u64,
    ifname: &Arc<str>,
) -> Option<Hop> {
    let ip = |b: &[u8; 16], v6: bool| -> IpAddr {
        if v6 {
            IpAddr::V6(Ipv6Addr::from(*b))
        } else {
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
    };
    let proto = match ev.proto {
        // Only requests and replies make sense on a path (RARP/InARP ops are skipped).
        proto::ARP if ev.arp_op != 1 && ev.arp_op != 2 => return None,
        proto::ARP => Proto::Arp {
            op: ev.arp_op,
            sender_ip: Ipv4Addr::new(ev.src[0], ev.src[1], ev.src[2], ev.src[3]),
            target_ip: Ipv4Addr::new(ev.dst[0], ev.dst[1], ev.dst[2], ev.dst[3]),
            sender_mac: ev.src_mac,
            target_mac: ev.dst_mac,
        },
        proto::ICMP | proto::ICMPV6 => {
            let v6 = ev.proto == proto::ICMPV6;
            let nd = v6 && (ev.icmp_type == 135 || ev.icmp_type == 136);
            Proto::Icmp {
                v6,
                icmp_type: ev.icmp_type,
                code: ev.icmp_code,
                id: ev.icmp_id,
                seq: ev.icmp_seq,
                src: ip(&ev.src, v6),
                dst: ip(&ev.dst, v6),
                nd_target: nd.then(|| Ipv6Addr::from(ev.nd_target)),
            }
        }
        _ => return None,
    };
    let cap = usize::from(ev.cap_len).min(CAPTURE_LEN);
    Some(Hop {
        ts_ns: ev.ts_ns,
        netns: Arc::clone(netns),
        netns_inode,
        ifname: Arc::clone(ifname),
        ifindex: ev.ifindex,
        egress: ev.direction == direction::EGRESS,
        len: ev.pkt_len,
        vlan: (ev.flags & vethscope_common::event_flags::VLAN != 0).then_some(ev.vlan_id),
        proto,
        frame: if cap > 0 {
            ev.frame[..cap].to_vec()
        } else {
            Vec::new()
        },
        impaired: None,
        peer: None,
    })
}
