//! Trace programs: one event per ARP / ICMP / ICMPv6 packet into a ring buffer.

use aya_ebpf::{
    bindings::tcx_action_base::TCX_NEXT,
    helpers::bpf_skb_load_bytes,
    macros::{classifier, map},
    maps::{Array, PerCpuArray, RingBuf},
    programs::TcContext,
};
use aya_log_ebpf::debug;
use vethscope_common::{
    CAPTURE_LEN, PacketEvent, TRACE_STAT_COUNT, TRACE_STAT_EMITTED, TRACE_STAT_LOST, TraceConfig,
    direction,
    names::{map, program},
    proto, proto_mask,
};

use crate::{kernel::skb_netns_cookie, parse::parse};

#[map]
static TRACE_EVENTS: RingBuf = RingBuf::with_byte_size(1 << 24, 0);

/// Per-CPU counters of the tracer: events lost (ring full) and events emitted.
#[map]
static TRACE_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(TRACE_STAT_COUNT, 0);

#[map]
static TRACE_CONFIG: Array<TraceConfig> = Array::with_max_entries(1, 0);
named!(TRACE_EVENTS, map::TRACE_EVENTS);
named!(TRACE_STATS, map::TRACE_STATS);
named!(TRACE_CONFIG, map::TRACE_CONFIG);
named!(noop, program::NOOP);
named!(trace_ingress, program::TRACE_INGRESS);
named!(trace_egress, program::TRACE_EGRESS);

/// Does nothing: the baseline of BPF_PROG_TEST_RUN's own cost in benchmarks.
#[classifier]
pub fn noop(_ctx: TcContext) -> i32 {
    TCX_NEXT
}

// Observers (trace, count) always answer TCX_NEXT (= TC_ACT_UNSPEC): they never change
// the fate of a packet and later programs (the fast path) still run. Every entry point
// has the same shape: `try_*` returns Ok(action), or Err(action) when it gave up.
#[classifier]
pub fn trace_ingress(ctx: TcContext) -> i32 {
    match try_trace(&ctx, direction::INGRESS) {
        Ok(r) | Err(r) => r,
    }
}

#[classifier]
pub fn trace_egress(ctx: TcContext) -> i32 {
    match try_trace(&ctx, direction::EGRESS) {
        Ok(r) | Err(r) => r,
    }
}

#[inline(always)]
fn bump(slot: u32) {
    if let Some(counter) = TRACE_STATS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *counter += 1 };
    }
}

/// Whether protocol `p` is traced, and whether frames are captured.
#[inline(always)]
fn wanted(p: u8) -> (bool, bool) {
    let (mask, capture) = TRACE_CONFIG
        .get(0)
        .map_or((0, 0), |c| (c.proto_mask, c.capture));
    let bit = match p {
        proto::ARP => proto_mask::ARP,
        proto::ICMP => proto_mask::ICMP,
        _ => proto_mask::ICMPV6,
    };
    (mask == 0 || mask & bit != 0, capture != 0)
}

#[inline(always)]
fn try_trace(ctx: &TcContext, dir: u8) -> Result<i32, i32> {
    // Not ARP / ICMP / ICMPv6, or not a traced protocol: nothing to report.
    let Some(p) = parse(ctx) else {
        return Ok(TCX_NEXT);
    };
    let (traced, capture) = wanted(p.proto);
    if !traced {
        return Ok(TCX_NEXT);
    }
    let Some(mut entry) = TRACE_EVENTS.reserve::<PacketEvent>(0) else {
        bump(TRACE_STAT_LOST);
        return Err(TCX_NEXT);
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` points to reserved ring-buffer memory of the right size; every
    // field is written before submit.
    unsafe {
        p.write_into(
            ev,
            (skb_netns_cookie(ctx.skb.skb as u64), (*ctx.skb.skb).ifindex),
            ctx.len(),
            dir,
            0,
        );
        let len = ctx.len();
        let cap = if len as usize > CAPTURE_LEN {
            CAPTURE_LEN as u32
        } else {
            len
        };
        // The size must be provably within 1..=CAPTURE_LEN for the verifier.
        if capture && cap > 0 && cap <= CAPTURE_LEN as u32 {
            let ret =
                bpf_skb_load_bytes(ctx.skb.skb.cast(), 0, (*ev).frame.as_mut_ptr().cast(), cap);
            if ret == 0 {
                (*ev).cap_len = cap as u16;
            }
        }
    }
    entry.submit(0);
    bump(TRACE_STAT_EMITTED);
    debug!(ctx, "traced proto {} on ifindex {}", p.proto, unsafe {
        (*ctx.skb.skb).ifindex
    });
    Ok(TCX_NEXT)
}
