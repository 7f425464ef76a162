//! The ABI between vethscope's eBPF programs and its userspace.
//!
//! Every type here is `#[repr(C)]`, explicitly padded (no implicit holes, so map keys
//! hash the same on both sides) and plain data. Both sides compile against this one
//! definition; the `user` feature adds `aya::Pod` so userspace can read maps.
#![no_std]

pub mod names;

/// Bytes of the frame copied into each trace event (for pcap output).
pub const CAPTURE_LEN: usize = 128;

/// Direction of a packet relative to the interface a program is attached to.
pub mod direction {
    pub const INGRESS: u8 = 0;
    pub const EGRESS: u8 = 1;
}

/// What a traced packet is. `NONE` means "not ours": no event is produced.
pub mod proto {
    pub const NONE: u8 = 0;
    pub const ARP: u8 = 1;
    pub const ICMP: u8 = 2;
    pub const ICMPV6: u8 = 3;
}

/// Traffic classes for the per-link counters (`class` label).
pub mod class {
    pub const ARP: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const ICMPV6: u8 = 2;
    pub const IPV4: u8 = 3;
    pub const IPV6: u8 = 4;
    pub const OTHER: u8 = 5;
    pub const COUNT: usize = 6;
}

/// Bits of [`PacketEvent::flags`].
pub mod event_flags {
    /// The frame carried at least one 802.1Q / 802.1ad tag.
    pub const VLAN: u8 = 1 << 0;
    /// The IPv4 header had options (IHL > 5).
    pub const IP_OPTIONS: u8 = 1 << 1;
    /// Emitted by the impairment program: it dropped this packet.
    pub const IMPAIR_DROP: u8 = 1 << 2;
    /// Emitted by the impairment program: it sent a second copy of this packet.
    pub const IMPAIR_DUPLICATE: u8 = 1 << 3;
    /// Emitted by the impairment program: it flipped a bit of this packet.
    pub const IMPAIR_CORRUPT: u8 = 1 << 4;
}

/// Bits of the trace filter (`TRACE_CONFIG.proto_mask`): which protocols produce events.
pub mod proto_mask {
    pub const ARP: u32 = 1 << 0;
    pub const ICMP: u32 = 1 << 1;
    pub const ICMPV6: u32 = 1 << 2;
    pub const ALL: u32 = ARP | ICMP | ICMPV6;
}

/// One traced packet, as the TC programs emit it through the ring buffer.
///
/// Addresses are in network byte order exactly as they appear on the wire; IPv4
/// addresses occupy the first 4 bytes of `src`/`dst`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketEvent {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    /// `bpf_get_netns_cookie()` of the namespace the interface lives in.
    pub netns_cookie: u64,
    pub ifindex: u32,
    /// Length of the whole frame (skb->len).
    pub pkt_len: u32,
    /// How many bytes of `frame` are valid.
    pub cap_len: u16,
    /// Outermost VLAN id, 0 when untagged.
    pub vlan_id: u16,
    /// [`direction`] value.
    pub direction: u8,
    /// [`proto`] value.
    pub proto: u8,
    /// [`event_flags`] bits.
    pub flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub _pad0: [u8; 1],
    /// ARP opcode (1 request, 2 reply); 0 for IP.
    pub arp_op: u16,
    /// ICMP echo identifier / sequence, host byte order (0 when not an echo).
    pub icmp_id: u16,
    pub icmp_seq: u16,
    pub _pad1: [u8; 2],
    /// ARP: sender / target hardware address. IP: Ethernet source / destination.
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// ARP: sender / target protocol address. IP: source / destination address.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// ICMPv6 neighbour solicitation / advertisement: the target address.
    pub nd_target: [u8; 16],
    pub frame: [u8; CAPTURE_LEN],
    /// Tail padding to a multiple of 8 (the struct's alignment), made explicit.
    pub _pad2: [u8; 2],
}

impl PacketEvent {
    pub const fn zeroed() -> Self {
        Self {
            ts_ns: 0,
            netns_cookie: 0,
            ifindex: 0,
            pkt_len: 0,
            cap_len: 0,
            vlan_id: 0,
            direction: 0,
            proto: 0,
            flags: 0,
            icmp_type: 0,
            icmp_code: 0,
            _pad0: [0; 1],
            arp_op: 0,
            icmp_id: 0,
            icmp_seq: 0,
            _pad1: [0; 2],
            src_mac: [0; 6],
            dst_mac: [0; 6],
            src: [0; 16],
            dst: [0; 16],
            nd_target: [0; 16],
            frame: [0; CAPTURE_LEN],
            _pad2: [0; 2],
        }
    }
}

/// Configuration of the trace programs, one entry in an array map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceConfig {
    /// [`proto_mask`] bits; 0 means everything.
    pub proto_mask: u32,
    /// Non-zero: copy the first [`CAPTURE_LEN`] bytes of each frame into the event
    /// (only `--pcap` needs them; skipping the copy makes tracing cheaper).
    pub capture: u32,
}

/// Index of the "events lost" slot in the per-CPU stats array of the tracer.
pub const TRACE_STAT_LOST: u32 = 0;
/// Index of the "events emitted" slot.
pub const TRACE_STAT_EMITTED: u32 = 1;
pub const TRACE_STAT_COUNT: u32 = 2;

/// Key of the per-link counters map: one entry per link (a scrape reads 3,000 links
/// as 3,000 entries, not 36,000 as with one entry per direction and class).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LinkKey {
    pub netns_cookie: u64,
    pub ifindex: u32,
    pub _pad: [u8; 4],
}

/// Packets and bytes of one (direction, class) of a link.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub packets: u64,
    pub bytes: u64,
}

/// Value of the per-link counters map (per CPU): `by[direction][class]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounts {
    pub by: [[LinkCounters; class::COUNT]; 2],
}

/// Key of the drop counters map filled from `skb:kfree_skb`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DropKey {
    pub netns_cookie: u64,
    pub ifindex: u32,
    /// `enum skb_drop_reason` value of the running kernel.
    pub reason: u32,
}

/// An interface whose drops are counted: the watch list of the drop program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IfaceKey {
    pub netns_cookie: u64,
    pub ifindex: u32,
    pub _pad: [u8; 4],
}

/// Offsets into kernel structures, read from the running kernel's BTF by userspace
/// (aya has no CO-RE relocations for Rust programs, so the drop program reads through
/// these instead of hard-coded offsets).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `struct sk_buff` → `dev` (pointer to `struct net_device`).
    pub skb_dev: u32,
    /// `struct net_device` → `ifindex`.
    pub dev_ifindex: u32,
    /// `struct net_device` → `nd_net.net` (pointer to `struct net`).
    pub dev_nd_net: u32,
    /// `struct net` → `net_cookie`.
    pub net_cookie: u32,
    /// Non-zero once userspace filled the offsets; the program does nothing before.
    pub valid: u32,
    /// `struct sk_buff` → `ip_summed`, in *bits* (it is a 2-bit bitfield).
    pub skb_ip_summed_bits: u32,
}

/// Key of the fast-path forwarding table: a destination MAC address within one
/// forwarding domain (a bridge) and VLAN. Keying by bridge keeps the fast path from
/// carrying a frame across bridges that the kernel would keep apart.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FdbKey {
    /// Forwarding domain: a number userspace gives each bridge of the lab.
    pub domain: u32,
    /// VLAN within the domain (0 when the bridge does not filter VLANs).
    pub vlan: u16,
    pub mac: [u8; 6],
}

/// Where the fast path sends a frame: the host-side veth end whose peer is the
/// destination (the program calls `bpf_redirect_peer` on it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdbEntry {
    pub ifindex: u32,
    /// `FASTPATH_ISOLATED` when the destination port is isolated.
    pub flags: u32,
}

/// What the fast path knows of a port it runs on: the forwarding domain and VLAN its
/// untagged frames belong to, and how the bridge treats it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastpathPort {
    pub domain: u32,
    pub vlan: u16,
    /// `FASTPATH_ISOLATED`, `FASTPATH_VLAN_AWARE`.
    pub flags: u16,
}

/// The port is isolated: the bridge forwards nothing between two isolated ports.
pub const FASTPATH_ISOLATED: u16 = 1;
/// The bridge classifies frames by VLAN tag: tagged frames go through the bridge.
pub const FASTPATH_VLAN_AWARE: u16 = 2;

/// Fast-path counters per ingress interface (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastpathCounters {
    /// Frames handed to `bpf_redirect_peer`.
    pub redirected: u64,
    /// Frames left to the bridge (broadcast, multicast, unknown destination).
    pub passed: u64,
}

/// Slots of the `DIAG_OFFSETS` array of the probe's drop watcher: offsets into
/// `struct sk_buff` read from the kernel's BTF by userspace.
pub mod diag_offset {
    /// `sk_buff.head` (pointer to the start of the buffer).
    pub const SKB_HEAD: u32 = 0;
    /// `sk_buff.network_header` (u16 offset of the L3 header from `head`).
    pub const SKB_NETWORK_HEADER: u32 = 1;
    /// `sk_buff.protocol` (__be16 ethertype).
    pub const SKB_PROTOCOL: u32 = 2;
    /// Non-zero once userspace filled the others.
    pub const VALID: u32 = 3;
    pub const COUNT: u32 = 4;
}

/// One packet freed through `skb:kfree_skb` in a watched namespace: what `diagnose`
/// and `trace` report as "dropped at ns/if: reason".
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropEvent {
    pub ts_ns: u64,
    pub netns_cookie: u64,
    pub ifindex: u32,
    /// `enum skb_drop_reason` value of the running kernel.
    pub reason: u32,
    /// Ethertype in host byte order (0x0800 IPv4, 0x0806 ARP, 0x86dd IPv6).
    pub protocol: u16,
    /// IP protocol (1 ICMP, 58 ICMPv6, …); 0 for ARP.
    pub ip_proto: u8,
    /// ICMP type when `ip_proto` is ICMP/ICMPv6; ARP opcode (low byte) for ARP.
    pub icmp_type: u8,
    pub _pad: [u8; 4],
    /// IP source / destination, or ARP sender / target protocol address;
    /// IPv4 in the first 4 bytes, network byte order.
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

/// One impaired interface end: the probabilities of the impairment program, each as a
/// threshold against a 32-bit random number (`rand < threshold`). 0 never acts;
/// 2^32 (100%) always acts, so 0% and 100% are exact.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImpairConfig {
    pub loss: u64,
    pub duplicate: u64,
    pub corrupt: u64,
}

/// What the impairment program did on one end (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImpairCounters {
    /// Packets the program saw (clones it made itself excluded).
    pub seen: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub corrupted: u64,
}

/// The kernel's `CHECKSUM_PARTIAL` value of `skb->ip_summed`.
pub const CHECKSUM_PARTIAL: u8 = 3;

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all of these are repr(C), made of integers and byte arrays, with explicit
    // padding, so every bit pattern is valid.
    unsafe impl aya::Pod for PacketEvent {}
    unsafe impl aya::Pod for TraceConfig {}
    unsafe impl aya::Pod for LinkKey {}
    unsafe impl aya::Pod for LinkCounters {}
    unsafe impl aya::Pod for LinkCounts {}
    unsafe impl aya::Pod for DropKey {}
    unsafe impl aya::Pod for IfaceKey {}
    unsafe impl aya::Pod for KernelOffsets {}
    unsafe impl aya::Pod for FdbKey {}
    unsafe impl aya::Pod for FdbEntry {}
    unsafe impl aya::Pod for FastpathPort {}
    unsafe impl aya::Pod for FastpathCounters {}
    unsafe impl aya::Pod for DropEvent {}
    unsafe impl aya::Pod for ImpairConfig {}
    unsafe impl aya::Pod for ImpairCounters {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn layouts_have_no_implicit_padding() {
        // Sum of field sizes == struct size means the compiler inserted no hidden bytes.
        assert_eq!(
            size_of::<PacketEvent>(),
            8 + 8 + 4 + 4 + 2 + 2 + 6 + 2 + 2 + 2 + 2 + 12 + 48 + CAPTURE_LEN + 2
        );
        assert_eq!(size_of::<PacketEvent>() % 8, 0);
        assert_eq!(size_of::<LinkKey>(), 16);
        assert_eq!(size_of::<LinkCounts>(), 2 * class::COUNT * 16);
        assert_eq!(size_of::<DropKey>(), 16);
        assert_eq!(size_of::<IfaceKey>(), 16);
        assert_eq!(size_of::<FdbKey>(), 4 + 2 + 6);
        assert_eq!(size_of::<FastpathPort>(), 8);
        assert_eq!(size_of::<DropEvent>(), 8 + 8 + 4 + 4 + 2 + 1 + 1 + 4 + 32);
    }
}
