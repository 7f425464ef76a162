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

mod error;

pub use error::FastpathError;

/// Attaches the redirect programs to every host-side veth end of `lab`'s bridges and
/// fills the forwarding table; pinned, so it stays after the command exits.
pub async fn enable(lab: &str) -> Result<(), FastpathError> {
    Err(FastpathError::NotReady(lab.to_string()))
}

/// Detaches the programs and removes everything pinned for `lab`. Absent is success.
pub async fn disable(lab: &str) -> Result<(), FastpathError> {
    Err(FastpathError::NotReady(lab.to_string()))
}
