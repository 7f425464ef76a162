//! In-kernel parser: Ethernet (with up to two 802.1Q / 802.1ad tags), ARP, IPv4 ICMP,
//! ICMPv6 echo and neighbour discovery. A frame that is truncated or not one of these
//! yields `None` ("not ours"); nothing is ever guessed from a partial header.

use aya_ebpf::programs::TcContext;
use vethscope_common::{class, event_flags, proto};

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
    let mut ethertype = read_be16(ctx, 12)?;
    let mut offset = ETH_HLEN;
    let mut vlan_id = 0u16;
    let mut tagged = false;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        // Tag: TCI (2 bytes) then the inner ethertype (2 bytes).
        let tci = read_be16(ctx, offset)?;
        if !tagged {
            vlan_id = tci & 0x0fff;
            tagged = true;
        }
        ethertype = read_be16(ctx, offset + 2)?;
        offset += 4;
    }
    Some(L3 {
        ethertype,
        offset,
        vlan_id,
        tagged,
    })
}

/// Cheap classification for the counters: no event, just a [`class`] value.
#[inline(always)]
pub fn classify(ctx: &TcContext) -> u8 {
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
    let l3 = l3(ctx)?;
    let mut out = Parsed::new();
    out.dst_mac = read::<[u8; 6]>(ctx, 0)?;
    out.src_mac = read::<[u8; 6]>(ctx, 6)?;
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
    // htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4.
    let fixed = read::<[u8; 6]>(ctx, off)?;
    if fixed != [0, 1, 0x08, 0x00, 6, 4] {
        return None;
    }
    // Reading the last byte first proves the body is complete before we fill anything.
    read::<[u8; 4]>(ctx, off + 24)?;
    out.arp_op = read_be16(ctx, off + 6)?;
    out.src_mac = read::<[u8; 6]>(ctx, off + 8)?;
    let spa = read::<[u8; 4]>(ctx, off + 14)?;
    out.dst_mac = read::<[u8; 6]>(ctx, off + 18)?;
    let tpa = read::<[u8; 4]>(ctx, off + 24)?;
    out.src[..4].copy_from_slice(&spa);
    out.dst[..4].copy_from_slice(&tpa);
    out.proto = proto::ARP;
    Some(())
}

#[inline(always)]
fn parse_ipv4(ctx: &TcContext, off: usize, out: &mut Parsed) -> Option<()> {
    let ver_ihl = read::<u8>(ctx, off)?;
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
    if read::<u8>(ctx, off + 9)? != IPPROTO_ICMP {
        return None;
    }
    // A non-first fragment carries no ICMP header.
    if read_be16(ctx, off + 6)? & 0x1fff != 0 {
        return None;
    }
    let src = read::<[u8; 4]>(ctx, off + 12)?;
    let dst = read::<[u8; 4]>(ctx, off + 16)?;
    let l4 = off + ihl;
    out.icmp_type = read::<u8>(ctx, l4)?;
    out.icmp_code = read::<u8>(ctx, l4 + 1)?;
    // Echo request (8) / reply (0): identifier and sequence follow the checksum.
    if out.icmp_type == 8 || out.icmp_type == 0 {
        out.icmp_id = read_be16(ctx, l4 + 4)?;
        out.icmp_seq = read_be16(ctx, l4 + 6)?;
    }
    out.src[..4].copy_from_slice(&src);
    out.dst[..4].copy_from_slice(&dst);
    out.proto = proto::ICMP;
    Some(())
}

#[inline(always)]
fn parse_ipv6(ctx: &TcContext, off: usize, out: &mut Parsed) -> Option<()> {
    if read::<u8>(ctx, off)? >> 4 != 6 {
        return None;
    }
    // Only ICMPv6 directly after the fixed header; extension headers are not followed.
    if read::<u8>(ctx, off + 6)? != IPPROTO_ICMPV6 {
        return None;
    }
    let l4 = off + 40;
    let icmp_type = read::<u8>(ctx, l4)?;
    match icmp_type {
        // Echo request / reply.
        128 | 129 => {
            out.icmp_id = read_be16(ctx, l4 + 4)?;
            out.icmp_seq = read_be16(ctx, l4 + 6)?;
        }
        // Neighbour solicitation / advertisement: the target follows 4 reserved bytes.
        135 | 136 => out.nd_target = read::<[u8; 16]>(ctx, l4 + 8)?,
        _ => return None,
    }
    out.icmp_type = icmp_type;
    out.icmp_code = read::<u8>(ctx, l4 + 1)?;
    out.src = read::<[u8; 16]>(ctx, off + 8)?;
    out.dst = read::<[u8; 16]>(ctx, off + 24)?;
    out.proto = proto::ICMPV6;
    Some(())
}
