//! Bounds-checked access to the packet: the only place that reads packet bytes.
//!
//! Every read goes through `bpf_skb_load_bytes`, which checks the range against the
//! whole skb (linear and paged parts) and fails cleanly on a short frame. Direct
//! `data`/`data_end` access would save a helper call per read, but LLVM rewrites the
//! variable-offset bounds checks (VLAN tags, IPv4 options) into forms the verifier
//! cannot follow, and it misses headers that sit in paged fragments.

use aya_ebpf::programs::TcContext;

/// Reads a `T` at `offset`, or `None` when the frame is too short.
#[inline(always)]
pub fn read<T: Copy>(ctx: &TcContext, offset: usize) -> Option<T> {
    ctx.load::<T>(offset).ok()
}

/// Reads a big-endian u16 (ethertypes, ARP opcodes, ICMP id/seq).
#[inline(always)]
pub fn read_be16(ctx: &TcContext, offset: usize) -> Option<u16> {
    read::<[u8; 2]>(ctx, offset).map(u16::from_be_bytes)
}
