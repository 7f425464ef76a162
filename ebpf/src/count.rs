//! Counting programs: packets and bytes per (netns, ifindex, direction, class) in a
//! per-CPU hash; nothing is sent to userspace per packet.

use aya_ebpf::{
    bindings::tcx_action_base::TCX_NEXT,
    macros::{classifier, map},
    maps::PerCpuHashMap,
    programs::TcContext,
};
use vethscope_common::{
    LinkCounters, LinkKey, direction,
    names::{map, program},
};

use crate::{kernel::skb_netns_cookie, parse::classify};

/// Sized for thousands of links × 2 directions × 6 classes.
#[map]
static LINK_COUNTERS: PerCpuHashMap<LinkKey, LinkCounters> =
    PerCpuHashMap::with_max_entries(65536, 0);
named!(LINK_COUNTERS, map::LINK_COUNTERS);
named!(count_ingress, program::COUNT_INGRESS);
named!(count_egress, program::COUNT_EGRESS);

#[classifier]
pub fn count_ingress(ctx: TcContext) -> i32 {
    match try_count(&ctx, direction::INGRESS) {
        Ok(r) | Err(r) => r,
    }
}

#[classifier]
pub fn count_egress(ctx: TcContext) -> i32 {
    match try_count(&ctx, direction::EGRESS) {
        Ok(r) | Err(r) => r,
    }
}

#[inline(always)]
fn try_count(ctx: &TcContext, dir: u8) -> Result<i32, i32> {
    let key = LinkKey {
        netns_cookie: skb_netns_cookie(ctx.skb.skb as u64),
        // SAFETY: reading a field of the context the kernel passed us.
        ifindex: unsafe { (*ctx.skb.skb).ifindex },
        direction: dir,
        class: classify(ctx),
        _pad: [0; 2],
    };
    let len = u64::from(ctx.len());
    match LINK_COUNTERS.get_ptr_mut(key) {
        // SAFETY: per-CPU value, no concurrent writer on this CPU.
        Some(v) => unsafe {
            (*v).packets += 1;
            (*v).bytes += len;
        },
        None => {
            let _ = LINK_COUNTERS.insert(
                key,
                LinkCounters {
                    packets: 1,
                    bytes: len,
                },
                0,
            );
        }
    }
    Ok(TCX_NEXT)
}
