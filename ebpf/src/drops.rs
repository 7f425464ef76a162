//! Drop accounting from the `skb:kfree_skb` raw tracepoint, for watched interfaces only.
//! Kernel struct offsets come from userspace (read from the running kernel's BTF).

use aya_ebpf::{
    macros::{map, raw_tracepoint},
    maps::{HashMap, PerCpuHashMap},
    programs::RawTracePointContext,
};
use vethscope_common::{
    DropKey, IfaceKey,
    names::{map, program},
};

use crate::kernel::{KERNEL_OFFSETS, dev_netns_cookie, read_kernel};

/// Interfaces whose drops are counted (lab links and lo of lab namespaces).
#[map]
static DROP_WATCH: HashMap<IfaceKey, u8> = HashMap::with_max_entries(16384, 0);

#[map]
static DROP_COUNTERS: PerCpuHashMap<DropKey, u64> = PerCpuHashMap::with_max_entries(16384, 0);
named!(DROP_WATCH, map::DROP_WATCH);
named!(DROP_COUNTERS, map::DROP_COUNTERS);
named!(drops_kfree_skb, program::DROPS_KFREE_SKB);

#[raw_tracepoint(tracepoint = "kfree_skb")]
pub fn drops_kfree_skb(ctx: RawTracePointContext) -> i32 {
    // A raw tracepoint's return value is ignored; 0 by convention.
    match try_drops(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

#[inline(always)]
fn try_drops(ctx: &RawTracePointContext) -> Result<i32, i32> {
    let off = KERNEL_OFFSETS.get(0).ok_or(0)?;
    if off.valid == 0 {
        return Err(0);
    }
    // TP_PROTO(struct sk_buff *skb, void *location, enum skb_drop_reason reason, ...)
    let skb: u64 = ctx.arg(0);
    let reason: u64 = ctx.arg(2);
    let dev: u64 = read_kernel(skb + u64::from(off.skb_dev)).ok_or(0)?;
    if dev == 0 {
        return Ok(0);
    }
    let ifindex: u32 = read_kernel(dev + u64::from(off.dev_ifindex)).ok_or(0)?;
    let cookie = dev_netns_cookie(off, dev).ok_or(0)?;
    let watch = IfaceKey {
        netns_cookie: cookie,
        ifindex,
        _pad: [0; 4],
    };
    // SAFETY: plain lookup in a map we own.
    if unsafe { DROP_WATCH.get(watch) }.is_none() {
        return Ok(0);
    }
    let key = DropKey {
        netns_cookie: cookie,
        ifindex,
        reason: reason as u32,
    };
    match DROP_COUNTERS.get_ptr_mut(key) {
        // SAFETY: per-CPU value, no concurrent writer on this CPU.
        Some(c) => unsafe { *c += 1 },
        None => {
            let _ = DROP_COUNTERS.insert(key, 1u64, 0);
        }
    }
    Ok(0)
}
