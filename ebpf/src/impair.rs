//! Impairments on TC egress of one interface end: loss, duplication, corruption.
//!
//! Settings per end live in `IMPAIR_CONFIG`, keyed by (namespace cookie, ifindex) —
//! ifindexes repeat across namespaces. Each decision draws its own
//! `bpf_get_prandom_u32()` and compares it with a threshold userspace computed, so 0%
//! never acts and 100% always acts. Every action is counted in `IMPAIR_STATS`, and for
//! traced protocols (ARP, ICMP, ICMPv6) an event goes to `IMPAIR_EVENTS` so `trace`
//! can show the hop that ate or changed a packet.

use aya_ebpf::{
    bindings::tcx_action_base::TCX_NEXT,
    helpers::{bpf_get_prandom_u32, bpf_redirect},
    macros::{classifier, map},
    maps::{HashMap, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::TcContext,
};
use vethscope_common::{
    CHECKSUM_PARTIAL, IfaceKey, ImpairConfig, ImpairCounters, PacketEvent, direction, event_flags,
    names::{map, program},
};

use crate::{
    kernel::{KERNEL_OFFSETS, read_kernel, skb_netns_cookie},
    packet::{read, read_be16},
    parse::{l3, parse},
};

/// No interface has index 0: a redirect there is a silent loss.
///
/// Why not TC_ACT_SHOT: a shot packet on egress makes the sender's `sendmsg` fail with
/// ENOBUFS (ping then simply sends again), while a packet lost on a wire is gone without
/// a word. TCX ignores TC_ACT_STOLEN (it means "next program" there). A redirect that
/// fails in `skb_do_redirect` frees the packet and reports success to the stack, as
/// netem's loss does; the kernel counts it in `skb:kfree_skb` like a qdisc drop.
const NO_IFINDEX: u32 = 0;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;

named!(IMPAIR_CONFIG, map::IMPAIR_CONFIG);
named!(IMPAIR_STATS, map::IMPAIR_STATS);
named!(IMPAIR_EVENTS, map::IMPAIR_EVENTS);
named!(IMPAIR_CLONING, map::IMPAIR_CLONING);
named!(impair_egress, program::IMPAIR_EGRESS);

#[map]
static IMPAIR_CONFIG: HashMap<IfaceKey, ImpairConfig> = HashMap::with_max_entries(4096, 0);

#[map]
static IMPAIR_STATS: PerCpuHashMap<IfaceKey, ImpairCounters> =
    PerCpuHashMap::with_max_entries(4096, 0);

/// Impaired ARP / ICMP packets for `trace`. Small: without a reader it just fills up
/// and further events are skipped (the counters stay exact).
#[map]
static IMPAIR_EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// Set on this CPU while `bpf_clone_redirect` runs: the clone passes TC egress of the
/// same interface synchronously inside the helper, and must not be impaired (or
/// duplicated again) a second time.
#[map]
static IMPAIR_CLONING: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

#[classifier]
pub fn impair_egress(ctx: TcContext) -> i32 {
    match try_impair(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

#[inline(always)]
fn chance(threshold: u64) -> bool {
    // SAFETY: helper without arguments.
    threshold != 0 && u64::from(unsafe { bpf_get_prandom_u32() }) < threshold
}

#[inline(always)]
fn cloning() -> bool {
    IMPAIR_CLONING.get(0).is_some_and(|v| *v != 0)
}

#[inline(always)]
fn set_cloning(on: bool) {
    if let Some(v) = IMPAIR_CLONING.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, and TC programs do not migrate between CPUs.
        unsafe { *v = u32::from(on) };
    }
}

#[inline(always)]
fn try_impair(ctx: &TcContext) -> Result<i32, i32> {
    if cloning() {
        return Ok(TCX_NEXT);
    }
    // SAFETY: reading a field of the context the kernel passed us.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    let key = IfaceKey {
        netns_cookie: skb_netns_cookie(ctx.skb.skb as u64),
        ifindex,
        _pad: [0; 4],
    };
    // SAFETY: plain lookup; the value is copied out at once.
    let Some(cfg) = (unsafe { IMPAIR_CONFIG.get(key) }).copied() else {
        return Ok(TCX_NEXT);
    };
    let mut c = ImpairCounters {
        seen: 1,
        ..ImpairCounters::default()
    };
    if chance(cfg.loss) {
        c.dropped = 1;
        count(key, &c);
        emit(ctx, key, event_flags::IMPAIR_DROP);
        // SAFETY: helper without pointers; returns TC_ACT_REDIRECT.
        return Ok(unsafe { bpf_redirect(NO_IFINDEX, 0) } as i32);
    }
    if chance(cfg.corrupt)
        && let Some(at) = corrupt_offset(ctx)
    {
        // The event first: a flipped bit must not change what `trace` reads.
        emit(ctx, key, event_flags::IMPAIR_CORRUPT);
        if flip(ctx, at) {
            c.corrupted = 1;
        }
    }
    if chance(cfg.duplicate) {
        set_cloning(true);
        // SAFETY: helper on our own skb; the clone is sent out of this same interface.
        let ok = unsafe { aya_ebpf::helpers::bpf_clone_redirect(ctx.skb.skb, ifindex, 0) } == 0;
        set_cloning(false);
        if ok {
            c.duplicated = 1;
            emit(ctx, key, event_flags::IMPAIR_DUPLICATE);
        }
    }
    count(key, &c);
    Ok(TCX_NEXT)
}

#[inline(always)]
fn count(key: IfaceKey, c: &ImpairCounters) {
    match IMPAIR_STATS.get_ptr_mut(key) {
        // SAFETY: per-CPU value, no concurrent writer on this CPU.
        Some(p) => unsafe {
            (*p).seen += c.seen;
            (*p).dropped += c.dropped;
            (*p).duplicated += c.duplicated;
            (*p).corrupted += c.corrupted;
        },
        None => {
            let _ = IMPAIR_STATS.insert(key, *c, 0);
        }
    }
}

/// `skb->ip_summed`, read through the bit offset userspace took from BTF.
#[inline(always)]
fn ip_summed(ctx: &TcContext) -> u8 {
    let Some(off) = KERNEL_OFFSETS.get(0) else {
        return 0;
    };
    if off.valid == 0 {
        return 0;
    }
    let bits = off.skb_ip_summed_bits;
    let byte: Option<u8> = read_kernel(ctx.skb.skb as u64 + u64::from(bits / 8));
    byte.map_or(0, |b| (b >> (bits % 8)) & 3)
}

/// Where to flip one bit so the receiver's checksum check fails. Only IPv4 and IPv6 packets
/// are corrupted (a bad ARP frame would go unnoticed by everyone).
///
/// Normally the last byte of the IP payload is flipped: the transport checksum no
/// longer matches and the receiver drops the packet (e.g. `Icmp: InCsumErrors`). A
/// `CHECKSUM_PARTIAL` packet (TCP/UDP from a local socket on a veth, which "offloads"
/// the checksum) is trusted by the receiver without a check, so for IPv4 we flip a bit
/// of the header's identification instead: every receiver verifies the IPv4 header
/// checksum (`Ip: InCsumErrors`).
#[inline(always)]
fn corrupt_offset(ctx: &TcContext) -> Option<usize> {
    let l3 = l3(ctx)?;
    let at = match l3.ethertype {
        ETH_P_IP if ip_summed(ctx) == CHECKSUM_PARTIAL => l3.offset + 4,
        ETH_P_IP => {
            let total = usize::from(read_be16(ctx, l3.offset + 2)?);
            let ihl = usize::from(read::<u8>(ctx, l3.offset)? & 0x0f) * 4;
            if total <= ihl {
                return None;
            }
            l3.offset + total - 1
        }
        ETH_P_IPV6 => {
            let payload = usize::from(read_be16(ctx, l3.offset + 4)?);
            if payload == 0 {
                return None;
            }
            l3.offset + 40 + payload - 1
        }
        _ => return None,
    };
    Some(at)
}

#[inline(always)]
fn flip(ctx: &TcContext, at: usize) -> bool {
    let Some(b) = read::<u8>(ctx, at) else {
        return false;
    };
    ctx.store(at, &(b ^ 0x01), 0).is_ok()
}

#[inline(always)]
fn emit(ctx: &TcContext, key: IfaceKey, action: u8) {
    let Some(p) = parse(ctx) else {
        return;
    };
    let Some(mut entry) = IMPAIR_EVENTS.reserve::<PacketEvent>(0) else {
        return;
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points to reserved ring-buffer memory of the right size; every
    // field is written before submit.
    unsafe {
        p.write_into(
            ev,
            (key.netns_cookie, key.ifindex),
            ctx.len(),
            direction::EGRESS,
            action,
        );
    }
    entry.submit(0);
}
