//! The eBPF fast path: TC programs on the host-side veth ends of a bridged lab hand
//! unicast frames straight to the destination namespace with `bpf_redirect_peer`.
//!
//! Pinned under `/sys/fs/bpf/vethscope/LAB/`: the maps `FASTPATH_FDB` and
//! `FASTPATH_STATS` (per-CPU hash: host-side ingress ifindex → FastpathCounters) and one
//! TCX link per port (`link-IFNAME`), so the fast path outlives the command.

/// Where a lab's fast-path objects are pinned.
pub fn pin_dir(lab: &str) -> std::path::PathBuf {
    std::path::Path::new("/sys/fs/bpf/vethscope").join(lab)
}
