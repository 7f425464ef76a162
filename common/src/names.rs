//! Names of the maps and programs in the eBPF object, shared by both sides.
//!
//! The eBPF crate checks at compile time that each `#[map]` static and each program
//! function is named as here (`named!` in ebpf/src/main.rs); userspace looks maps and
//! programs up only through these constants, and a unit test of `probe` checks that
//! every one of them exists in the embedded object.

/// Maps (the names of the `#[map]` statics).
pub mod map {
    /// Ring buffer of [`crate::PacketEvent`]s from the trace programs.
    pub const TRACE_EVENTS: &str = "TRACE_EVENTS";
    /// Per-CPU array: events lost / emitted by the trace programs.
    pub const TRACE_STATS: &str = "TRACE_STATS";
    /// One [`crate::TraceConfig`].
    pub const TRACE_CONFIG: &str = "TRACE_CONFIG";
    /// Per-CPU hash [`crate::LinkKey`] → [`crate::LinkCounts`].
    pub const LINK_COUNTERS: &str = "LINK_COUNTERS";
    /// Hash [`crate::IfaceKey`] → 1: interfaces whose drops are counted.
    pub const DROP_WATCH: &str = "DROP_WATCH";
    /// Per-CPU hash [`crate::DropKey`] → drops.
    pub const DROP_COUNTERS: &str = "DROP_COUNTERS";
    /// Hash [`crate::FdbKey`] (bridge, VLAN, MAC) → [`crate::FdbEntry`]: the fast path's
    /// forwarding table.
    pub const FASTPATH_FDB: &str = "FASTPATH_FDB";
    /// Hash ingress ifindex → [`crate::FastpathPort`]: the fast path's ports.
    pub const FASTPATH_PORTS: &str = "FASTPATH_PORTS";
    /// Per-CPU hash ingress ifindex → [`crate::FastpathCounters`].
    pub const FASTPATH_STATS: &str = "FASTPATH_STATS";
    /// One [`crate::KernelOffsets`], filled by userspace from the kernel's BTF.
    pub const KERNEL_OFFSETS: &str = "KERNEL_OFFSETS";
    /// Hash namespace cookie → 1: namespaces whose dropped packets `diagnose` sees.
    pub const DIAG_NETNS: &str = "DIAG_NETNS";
    /// Array of `sk_buff` offsets, slots in [`crate::diag_offset`].
    pub const DIAG_OFFSETS: &str = "DIAG_OFFSETS";
    /// Ring buffer of [`crate::DropEvent`]s.
    pub const DIAG_DROPS: &str = "DIAG_DROPS";
    /// Hash [`crate::IfaceKey`] → [`crate::ImpairConfig`]: impairment settings per end.
    pub const IMPAIR_CONFIG: &str = "IMPAIR_CONFIG";
    /// Per-CPU hash [`crate::IfaceKey`] → [`crate::ImpairCounters`].
    pub const IMPAIR_STATS: &str = "IMPAIR_STATS";
    /// Ring buffer of [`crate::PacketEvent`]s the impairment program dropped/duplicated/corrupted.
    pub const IMPAIR_EVENTS: &str = "IMPAIR_EVENTS";
    /// Per-CPU flag: set while the impairment program clones a packet.
    pub const IMPAIR_CLONING: &str = "IMPAIR_CLONING";

    pub const ALL: &[&str] = &[
        TRACE_EVENTS,
        TRACE_STATS,
        TRACE_CONFIG,
        LINK_COUNTERS,
        DROP_WATCH,
        DROP_COUNTERS,
        FASTPATH_FDB,
        FASTPATH_PORTS,
        FASTPATH_STATS,
        KERNEL_OFFSETS,
        DIAG_NETNS,
        DIAG_OFFSETS,
        DIAG_DROPS,
        IMPAIR_CONFIG,
        IMPAIR_STATS,
        IMPAIR_EVENTS,
        IMPAIR_CLONING,
    ];
}

/// Programs (the names of the entry-point functions).
pub mod program {
    /// Does nothing: the baseline of BPF_PROG_TEST_RUN's own cost in benchmarks.
    pub const NOOP: &str = "noop";
    pub const TRACE_INGRESS: &str = "trace_ingress";
    pub const TRACE_EGRESS: &str = "trace_egress";
    pub const COUNT_INGRESS: &str = "count_ingress";
    pub const COUNT_EGRESS: &str = "count_egress";
    pub const FASTPATH_INGRESS: &str = "fastpath_ingress";
    /// Loss, duplication, corruption on TC egress of an impaired end.
    pub const IMPAIR_EGRESS: &str = "impair_egress";
    /// Raw tracepoint on `skb:kfree_skb`.
    pub const DROPS_KFREE_SKB: &str = "drops_kfree_skb";
    /// Raw tracepoint on `skb:kfree_skb` reporting each dropped packet (`diagnose`).
    pub const DIAG_KFREE_SKB: &str = "diag_kfree_skb";

    pub const ALL: &[&str] = &[
        NOOP,
        TRACE_INGRESS,
        TRACE_EGRESS,
        COUNT_INGRESS,
        COUNT_EGRESS,
        FASTPATH_INGRESS,
        IMPAIR_EGRESS,
        DROPS_KFREE_SKB,
        DIAG_KFREE_SKB,
    ];
}

/// Whether two strings are equal, in a `const` context (the eBPF crate's name checks).
pub const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
