//! Fast path: on ingress of a host-side veth end, unicast frames to a known MAC are
//! handed straight to the destination namespace with `bpf_redirect_peer`, bypassing
//! the bridge. Everything else (broadcast, multicast, unknown) falls through unchanged.

use aya_ebpf::{
    helpers::bpf_redirect_peer,
    macros::{classifier, map},
    maps::{HashMap, PerCpuHashMap},
    programs::TcContext,
};
use vethscope_common::{
    FastpathCounters, FdbEntry, FdbKey,
    names::{map, program},
};

use crate::{packet::read, trace::TC_NEXT};

/// Destination MAC → host-side veth end whose peer owns that MAC. Filled by userspace.
#[map]
static FASTPATH_FDB: HashMap<FdbKey, FdbEntry> = HashMap::with_max_entries(4096, 0);

/// Per ingress ifindex: frames redirected and frames passed to the bridge.
#[map]
static FASTPATH_STATS: PerCpuHashMap<u32, FastpathCounters> =
    PerCpuHashMap::with_max_entries(4096, 0);
named!(FASTPATH_FDB, map::FASTPATH_FDB);
named!(FASTPATH_STATS, map::FASTPATH_STATS);
named!(fastpath_ingress, program::FASTPATH_INGRESS);

#[classifier]
pub fn fastpath_ingress(ctx: TcContext) -> i32 {
    try_fastpath(&ctx)
}

#[inline(always)]
fn count(ifindex: u32, redirected: bool) {
    match FASTPATH_STATS.get_ptr_mut(ifindex) {
        // SAFETY: per-CPU value, no concurrent writer on this CPU.
        Some(c) => unsafe {
            if redirected {
                (*c).redirected += 1;
            } else {
                (*c).passed += 1;
            }
        },
        None => {
            let init = FastpathCounters {
                redirected: u64::from(redirected),
                passed: u64::from(!redirected),
            };
            let _ = FASTPATH_STATS.insert(ifindex, init, 0);
        }
    }
}

#[inline(always)]
fn try_fastpath(ctx: &TcContext) -> i32 {
    // SAFETY: reading a field of the context the kernel passed us.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    let Some(dst) = read::<[u8; 6]>(ctx, 0) else {
        return TC_NEXT;
    };
    // Group bit set: broadcast or multicast (ARP requests, ND) go through the bridge.
    if dst[0] & 1 != 0 {
        count(ifindex, false);
        return TC_NEXT;
    }
    let key = FdbKey {
        mac: dst,
        _pad: [0; 2],
    };
    // SAFETY: plain lookup in a map we own; the value is copied out at once.
    let target = unsafe { FASTPATH_FDB.get(key) }.map(|e| e.ifindex);
    match target {
        Some(target) if target != ifindex && target != 0 => {
            count(ifindex, true);
            // SAFETY: helper call; returns TC_ACT_REDIRECT on success.
            unsafe { bpf_redirect_peer(target, 0) as i32 }
        }
        _ => {
            count(ifindex, false);
            TC_NEXT
        }
    }
}
