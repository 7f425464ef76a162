//! The probe's drop watcher: one event per packet the kernel frees through
//! `skb:kfree_skb` in a watched namespace, with the reason and the addresses, so
//! `diagnose` (and `trace`) can say which probe packet died where and why.
//!
//! Separate from `drops.rs` (per-interface counters for metrics): this one emits the
//! packet's addresses, and watches namespaces rather than interfaces, because a packet
//! dropped while routing may already sit on another device of the namespace.

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{map, raw_tracepoint},
    maps::{Array, HashMap, RingBuf},
    programs::RawTracePointContext,
};
use vethscope_common::{
    DropEvent, diag_offset,
    names::{map, program},
};

use crate::kernel::{KERNEL_OFFSETS, dev_netns_cookie, read_kernel};

/// Namespaces (cookies) whose drops are reported.
#[map]
static DIAG_NETNS: HashMap<u64, u8> = HashMap::with_max_entries(4096, 0);

/// sk_buff offsets, see [`diag_offset`].
#[map]
static DIAG_OFFSETS: Array<u32> = Array::with_max_entries(diag_offset::COUNT, 0);

#[map]
static DIAG_DROPS: RingBuf = RingBuf::with_byte_size(1 << 18, 0);

named!(DIAG_NETNS, map::DIAG_NETNS);
named!(DIAG_OFFSETS, map::DIAG_OFFSETS);
named!(DIAG_DROPS, map::DIAG_DROPS);
named!(diag_kfree_skb, program::DIAG_KFREE_SKB);

const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;

#[raw_tracepoint(tracepoint = "kfree_skb")]
pub fn diag_kfree_skb(ctx: RawTracePointContext) -> i32 {
    let _ = try_diag(&ctx);
    0
}

#[inline(always)]
fn offset(slot: u32) -> Option<u64> {
    DIAG_OFFSETS.get(slot).map(|v| u64::from(*v))
}

#[inline(always)]
fn try_diag(ctx: &RawTracePointContext) -> Option<()> {
    let off = KERNEL_OFFSETS.get(0)?;
    if off.valid == 0 || offset(diag_offset::VALID)? == 0 {
        return None;
    }
    // TP_PROTO(struct sk_buff *skb, void *location, enum skb_drop_reason reason, ...)
    let skb: u64 = ctx.arg(0);
    let reason: u64 = ctx.arg(2);
    let dev: u64 = read_kernel(skb + u64::from(off.skb_dev))?;
    if dev == 0 {
        return None;
    }
    let cookie = dev_netns_cookie(off, dev)?;
    // SAFETY: plain lookup in a map we own.
    unsafe { DIAG_NETNS.get(cookie) }?;
    let ifindex: u32 = read_kernel(dev + u64::from(off.dev_ifindex))?;
    let head: u64 = read_kernel(skb + offset(diag_offset::SKB_HEAD)?)?;
    let nh: u16 = read_kernel(skb + offset(diag_offset::SKB_NETWORK_HEADER)?)?;
    let proto_be: u16 = read_kernel(skb + offset(diag_offset::SKB_PROTOCOL)?)?;
    let protocol = u16::from_be(proto_be);
    let l3 = head + u64::from(nh);
    let mut ev = DropEvent {
        ts_ns: 0,
        netns_cookie: cookie,
        ifindex,
        reason: reason as u32,
        protocol,
        ip_proto: 0,
        icmp_type: 0,
        _pad: [0; 4],
        src: [0; 16],
        dst: [0; 16],
    };
    match protocol {
        ETH_P_IP => {
            let vihl: u8 = read_kernel(l3)?;
            ev.ip_proto = read_kernel(l3 + 9)?;
            let s: [u8; 4] = read_kernel(l3 + 12)?;
            let d: [u8; 4] = read_kernel(l3 + 16)?;
            ev.src[..4].copy_from_slice(&s);
            ev.dst[..4].copy_from_slice(&d);
            if ev.ip_proto == IPPROTO_ICMP {
                ev.icmp_type = read_kernel(l3 + u64::from(vihl & 0x0f) * 4).unwrap_or(0);
            }
        }
        ETH_P_ARP => {
            let op: [u8; 2] = read_kernel(l3 + 6)?;
            ev.icmp_type = op[1];
            let s: [u8; 4] = read_kernel(l3 + 14)?;
            let d: [u8; 4] = read_kernel(l3 + 24)?;
            ev.src[..4].copy_from_slice(&s);
            ev.dst[..4].copy_from_slice(&d);
        }
        ETH_P_IPV6 => {
            ev.ip_proto = read_kernel(l3 + 6)?;
            ev.src = read_kernel(l3 + 8)?;
            ev.dst = read_kernel(l3 + 24)?;
            if ev.ip_proto == IPPROTO_ICMPV6 {
                ev.icmp_type = read_kernel(l3 + 40).unwrap_or(0);
            }
        }
        _ => return None,
    }
    // SAFETY: helper without preconditions.
    ev.ts_ns = unsafe { bpf_ktime_get_ns() };
    let _ = DIAG_DROPS.output::<DropEvent>(&ev, 0);
    Some(())
}
