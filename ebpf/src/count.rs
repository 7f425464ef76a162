//! Counting programs: packets and bytes per (netns, ifindex, direction, class) in a
//! per-CPU hash with one entry per link (all its directions and classes in one value,
//! so a scrape walks one entry per link); nothing is sent to userspace per packet.

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST, tcx_action_base::TCX_NEXT},
    macros::{classifier, map},
    maps::PerCpuHashMap,
    programs::TcContext,
};
use vethscope_common::{
    LinkCounts, LinkKey, direction,
    names::{map, program},
};

use crate::{kernel::skb_netns_cookie, parse::classify};

/// One entry per link, up to 16,384 links (as many as the drop watch list holds). Not
/// larger: a scrape's batch walk visits every bucket, counted or not (65,536 buckets
/// cost more than 3,000 entries). Not preallocated: an entry is 192 bytes per CPU, and
/// memory then follows the links actually seen.
#[map]
static LINK_COUNTERS: PerCpuHashMap<LinkKey, LinkCounts> =
    PerCpuHashMap::with_max_entries(16384, BPF_F_NO_PREALLOC);
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
        _pad: [0; 4],
    };
    let class = usize::from(classify(ctx));
    let len = u64::from(ctx.len());
    let mut counts = LINK_COUNTERS.get_ptr_mut(key);
    if counts.is_none() {
        // The first packet of this link: a zeroed entry (every CPU's copy), unless
        // another CPU made one meanwhile, which then serves this packet too.
        let _ = LINK_COUNTERS.insert(key, LinkCounts::default(), u64::from(BPF_NOEXIST));
        counts = LINK_COUNTERS.get_ptr_mut(key);
    }
    if let Some(counts) = counts {
        // SAFETY: this CPU's copy of the value; no other writer runs on this CPU.
        let slot = unsafe { (*counts).by.get_mut(usize::from(dir)) }.and_then(|d| d.get_mut(class));
        if let Some(slot) = slot {
            slot.packets += 1;
            slot.bytes += len;
        }
    }
    Ok(TCX_NEXT)
}
