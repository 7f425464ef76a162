//! Fast path: on ingress of a host-side veth end, unicast frames to a known MAC of the
//! same bridge (and VLAN) are handed straight to the destination namespace with
//! `bpf_redirect_peer`, bypassing the bridge. Everything else (broadcast, multicast,
//! unknown, tagged frames on a VLAN-aware bridge, isolated-to-isolated) falls through
//! unchanged to the bridge, which decides as it always does.

use aya_ebpf::{
    bindings::tcx_action_base::TCX_NEXT,
    helpers::bpf_redirect_peer,
    macros::{classifier, map},
    maps::{HashMap, PerCpuHashMap},
    programs::TcContext,
};
use vethscope_common::{
    FASTPATH_ISOLATED, FASTPATH_VLAN_AWARE, FastpathCounters, FastpathPort, FdbEntry, FdbKey,
    names::{map, program},
};

use crate::packet::{read, read_be16};

/// (bridge, VLAN, destination MAC) → host-side veth end whose peer owns that MAC.
/// Filled by userspace only with ports the bridge forwards to.
#[map]
static FASTPATH_FDB: HashMap<FdbKey, FdbEntry> = HashMap::with_max_entries(8192, 0);

/// Ingress ifindex → its bridge and VLAN. A port missing here is not served.
#[map]
static FASTPATH_PORTS: HashMap<u32, FastpathPort> = HashMap::with_max_entries(4096, 0);

/// Per ingress ifindex: frames redirected and frames passed to the bridge.
#[map]
static FASTPATH_STATS: PerCpuHashMap<u32, FastpathCounters> =
    PerCpuHashMap::with_max_entries(4096, 0);
named!(FASTPATH_FDB, map::FASTPATH_FDB);
named!(FASTPATH_PORTS, map::FASTPATH_PORTS);
named!(FASTPATH_STATS, map::FASTPATH_STATS);
named!(fastpath_ingress, program::FASTPATH_INGRESS);

const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

#[classifier]
pub fn fastpath_ingress(ctx: TcContext) -> i32 {
    match try_fastpath(&ctx) {
        Ok(r) | Err(r) => r,
    }
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
fn try_fastpath(ctx: &TcContext) -> Result<i32, i32> {
    // SAFETY: reading a field of the context the kernel passed us.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    // SAFETY: plain lookup in a map we own; the value is copied out at once.
    let Some(port) = (unsafe { FASTPATH_PORTS.get(ifindex) }).copied() else {
        // A port the bridge does not forward from (blocked, excluded): not ours to judge.
        return Ok(TCX_NEXT);
    };
    let Some(dst) = read::<[u8; 6]>(ctx, 0) else {
        return Ok(TCX_NEXT);
    };
    // Group bit set: broadcast or multicast (ARP requests, ND) go through the bridge.
    if dst[0] & 1 != 0 {
        count(ifindex, false);
        return Ok(TCX_NEXT);
    }
    if port.flags & FASTPATH_VLAN_AWARE != 0 {
        // The bridge would classify a tagged frame by its tag: leave it to the bridge.
        match read_be16(ctx, 12) {
            Some(ETH_P_8021Q) | Some(ETH_P_8021AD) | None => {
                count(ifindex, false);
                return Ok(TCX_NEXT);
            }
            Some(_) => {}
        }
    }
    let key = FdbKey {
        domain: port.domain,
        vlan: port.vlan,
        mac: dst,
    };
    // SAFETY: plain lookup in a map we own; the value is copied out at once.
    let target = unsafe { FASTPATH_FDB.get(key) }.copied();
    match target {
        Some(e)
            if e.ifindex != ifindex
                && e.ifindex != 0
                // The bridge forwards nothing between two isolated ports.
                && !(port.flags & FASTPATH_ISOLATED != 0
                    && e.flags & u32::from(FASTPATH_ISOLATED) != 0) =>
        {
            count(ifindex, true);
            // SAFETY: helper call; returns TCX_REDIRECT (TC_ACT_REDIRECT) on success.
            Ok(unsafe { bpf_redirect_peer(e.ifindex, 0) as i32 })
        }
        _ => {
            count(ifindex, false);
            Ok(TCX_NEXT)
        }
    }
}
