//! In-kernel parser: Ethernet (with up to two 802.1Q / 802.1ad tags), ARP, IPv4 ICMP,
//! ICMPv6 echo and neighbour discovery. A frame that is truncated or not one of these
//! yields `None` ("not ours"); nothing is ever guessed from a partial header.

use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::TcContext};
use vethscope_common::{PacketEvent, class, event_flags, proto};

use crate::packet::{read, read_be16};

pub const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;
/// How many VLAN tags we look through (QinQ).
const MAX_VLAN_TAGS: usize = 2;

/// The protocol fields of a traced packet; copied into the ring-buffer event.
pub struct Parsed {
    pub proto: u8,
    pub flags: u8,
    pub vlan_id: u16,
    pub arp_op: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub icmp_id: u16,
    pub icmp_seq: u16,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub nd_target: [u8; 16],
}

impl Parsed {
    #[inline(always)]
    const fn new() -> Self {
        Self {
            proto: proto::NONE,
            flags: 0,
            vlan_id: 0,
            arp_op: 0,
            icmp_type: 0,
            icmp_code: 0,
            icmp_id: 0,
            icmp_seq: 0,
            src_mac: [0; 6],
            dst_mac: [0; 6],
            src: [0; 16],
            dst: [0; 16],
            nd_target: [0; 16],
        }
    }
}

impl Parsed {
    /// Fills a reserved ring-buffer event: zeroes it, then writes the time, the
    /// interface, the packet's length and direction, and every protocol field. The
    /// trace and impairment emitters share this so both rings carry the same event.
    ///
    /// # Safety
    /// `ev` must point to reserved, writable ring-buffer memory of a `PacketEvent`.
    #[inline(always)]
    pub unsafe fn write_into(
        &self,
        ev: *mut PacketEvent,
        iface: (u64, u32),
        pkt_len: u32,
        direction: u8,
        extra_flags: u8,
    ) {
        // SAFETY: the caller passes reserved memory of the right size and alignment.
        unsafe {
            (*ev) = PacketEvent::zeroed();
            (*ev).ts_ns = bpf_ktime_get_ns();
            (*ev).netns_cookie = iface.0;
            (*ev).ifindex = iface.1;
            (*ev).pkt_len = pkt_len;
            (*ev).direction = direction;
            (*ev).proto = self.proto;
            (*ev).flags = self.flags | extra_flags;
            (*ev).vlan_id = self.vlan_id;
            (*ev).arp_op = self.arp_op;
            (*ev).icmp_type = self.icmp_type;
            (*ev).icmp_code = self.icmp_code;
            (*ev).icmp_id = self.icmp_id;
            (*ev).icmp_seq = self.icmp_seq;
            (*ev).src_mac = self.src_mac;
            (*ev).dst_mac = self.dst_mac;
            (*ev).src = self.src;
            (*ev).dst = self.dst;
            (*ev).nd_target = self.nd_target;
        }
    }
}

/// The layer-3 start of a frame: its ethertype and offset after any VLAN tags.
pub struct L3 {
    pub ethertype: u16,
    pub offset: usize,
    pub vlan_id: u16,
    pub tagged: bool,
}

/// Walks the Ethernet header and up to [`MAX_VLAN_TAGS`] tags.
#[inline(always)]
pub fn l3(ctx: &TcContext) -> Option<L3> {
    l3_after(ctx, read_be16(ctx, 12)?)
}

#[inline(always)]
fn l3_after(ctx: &TcContext, first_ethertype: u16) -> Option<L3> {
    let mut ethertype = first_ethertype;
    let mut offset = ETH_HLEN;
    let mut vlan_id = 0u16;
    let mut tagged = false;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        // Tag: TCI (2 bytes) then the inner ethertype (2 bytes), in one read.
        let tag = read::<[u8; 4]>(ctx, offset)?;
        if !tagged {
            vlan_id = u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff;
            tagged = true;
        }
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        offset += 4;
    }
    Some(L3 {
        ethertype,
        offset,
        vlan_id,
        tagged,
    })
}

/// What the first bytes of an untagged frame say, read with direct packet access at
/// constant offsets (no helper call): most traffic (TCP, UDP) is decided here.
pub enum Quick {
    /// IPv4 or IPv6 that is not ICMP: (class).
    NotOurs(u8),
    /// Needs the full parse (ARP, ICMP, VLAN tags, short frames, anything else).
    Parse,
}

#[inline(always)]
pub fn quick(ctx: &TcContext) -> Quick {
    let data = ctx.data();
    // 14 (Ethernet) + 10 reaches both the IPv4 protocol byte (23) and the IPv6 next
    // header (20). Constant offsets after one bounds check keep the verifier happy.
    if data + 24 > ctx.data_end() {
        return Quick::Parse;
    }
    let p = data as *const u8;
    // SAFETY: the 24 bytes from `data` were just checked against `data_end`.
    let (et0, et1, v4proto, v6next) = unsafe { (*p.add(12), *p.add(13), *p.add(23), *p.add(20)) };
    match u16::from_be_bytes([et0, et1]) {
        ETH_P_IP if v4proto != IPPROTO_ICMP => Quick::NotOurs(class::IPV4),
        ETH_P_IPV6 if v6next != IPPROTO_ICMPV6 => Quick::NotOurs(class::IPV6),
        _ => Quick::Parse,
    }
}

/// Cheap classification for the counters: no event, just a [`class`] value.
#[inline(always)]
pub fn classify(ctx: &TcContext) -> u8 {
    if let Quick::NotOurs(c) = quick(ctx) {
        return c;
    }
    let Some(l3) = l3(ctx) else {
        return class::OTHER;
    };
    match l3.ethertype {
        ETH_P_ARP => class::ARP,
        ETH_P_IP => match read::<u8>(ctx, l3.offset + 9) {
            Some(IPPROTO_ICMP) => class::ICMP,
            _ => class::IPV4,
        },
        ETH_P_IPV6 => match read::<u8>(ctx, l3.offset + 6) {
            Some(IPPROTO_ICMPV6) => class::ICMPV6,
            _ => class::IPV6,
        },
        _ => class::OTHER,
    }
}

/// Full parse for tracing. `None` means the frame is not ARP / ICMP / ICMPv6 of a kind
/// we trace, or is truncated.
#[inline(always)]
pub fn parse(ctx: &TcContext) -> Option<Parsed> {
    if let Quick::NotOurs(_) = quick(ctx) {
        return None;
    }
    let eth = read::<[u8; ETH_HLEN]>(ctx, 0)?;
    let l3 = l3_after(ctx, u16::from_be_bytes([eth[12], eth[13]]))?;
    let mut out = Parsed::new();
    out.dst_mac.copy_from_slice(&eth[0..6]);
    out.src_mac.copy_from_slice(&eth[6..12]);
    if l3.tagged {
        out.flags |= event_flags::VLAN;
        out.vlan_id = l3.vlan_id;
    }
    match l3.ethertype {
        ETH_P_ARP => parse_arp(ctx, l3.offset, &mut out)?,
        ETH_P_IP => parse_ipv4(ctx, l3.offset, &mut out)?,
        ETH_P_IPV6 => parse_ipv6(ctx, l3.offset, &mut out)?,
        _ => return None,
    }
    Some(out)
}

/// ARP for IPv4 over Ethernet: the whole 28-byte body must be present.
#[inline(always)]
fn parse_arp(ctx: &TcContext, off: usize, out: &mut Parsed) -> Option<()> {
    // The whole 28-byte body in one read: a truncated body fails here, before we fill anything.
    let a = read::<[u8; 28]>(ctx, off)?;
    // htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4.
    if a[0..6] != [0, 1, 0x08, 0x00, 6, 4] {
        return None;
    }
    out.arp_op = u16::from_be_bytes([a[6], a[7]]);
    out.src_mac.copy_from_slice(&a[8..14]);
    out.src[..4].copy_from_slice(&a[14..18]);
    out.dst_mac.copy_from_slice(&a[18..24]);
    out.dst[..4].copy_from_slice(&a[24..28]);
    out.proto = proto::ARP;
    Some(())
}

#[inline(always)]
fn parse_ipv4(ctx: &TcContext, off: usize, out: &mut Parsed) -> Option<()> {
    let h = read::<[u8; 20]>(ctx, off)?;
    let ver_ihl = h[0];
    if ver_ihl >> 4 != 4 {
        return None;
    }
    // IHL is 4 bits, so the header is at most 60 bytes: a bound the verifier can see.
    let ihl = usize::from(ver_ihl & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    if ihl > 20 {
        out.flags |= event_flags::IP_OPTIONS;
    }
    // The ICMP header must lie inside the IP packet: a short packet padded to
    // Ethernet's 60-byte minimum would otherwise show its padding as ICMP (found by
    // tests/fuzz.rs). Bytes past the end of a truncated frame fail the read below.
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total_len < ihl + 8 {
        return None;
    }
    if h[9] != IPPROTO_ICMP {
        return None;
    }
    // A non-first fragment carries no ICMP header.
    if u16::from_be_bytes([h[6], h[7]]) & 0x1fff != 0 {
        return None;
    }
    let icmp = read::<[u8; 8]>(ctx, off + ihl)?;
    out.icmp_type = icmp[0];
    out.icmp_code = icmp[1];
    // Echo request (8) / reply (0): identifier and sequence follow the checksum.
    if out.icmp_type == 8 || out.icmp_type == 0 {
        out.icmp_id = u16::from_be_bytes([icmp[4], icmp[5]]);
        out.icmp_seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    }
    out.src[..4].copy_from_slice(&h[12..16]);
    out.dst[..4].copy_from_slice(&h[16..20]);
    out.proto = proto::ICMP;
    Some(())
}

#[inline(always)]
fn parse_ipv6(ctx: &TcContext, off: usize, out: &mut Parsed) -> Option<()> {
    let h = read::<[u8; 40]>(ctx, off)?;
    if h[0] >> 4 != 6 {
        return None;
    }
    // Only ICMPv6 directly after the fixed header; extension headers are not followed.
    if h[6] != IPPROTO_ICMPV6 {
        return None;
    }
    // As for IPv4: ICMPv6 only within the payload length, never in Ethernet padding.
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    if payload_len < 8 {
        return None;
    }
    let l4 = off + 40;
    let icmp = read::<[u8; 8]>(ctx, l4)?;
    match icmp[0] {
        // Echo request / reply.
        128 | 129 => {
            out.icmp_id = u16::from_be_bytes([icmp[4], icmp[5]]);
            out.icmp_seq = u16::from_be_bytes([icmp[6], icmp[7]]);
        }
        // Neighbour solicitation / advertisement: the target follows 4 reserved bytes.
        135 | 136 if payload_len >= 24 => out.nd_target = read::<[u8; 16]>(ctx, l4 + 8)?,
        _ => return None,
    }
    out.icmp_type = icmp[0];
    out.icmp_code = icmp[1];
    out.src.copy_from_slice(&h[8..24]);
    out.dst.copy_from_slice(&h[24..40]);
    out.proto = proto::ICMPV6;
    Some(())
}
