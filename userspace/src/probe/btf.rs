//! Facts about the running kernel from its BTF (/sys/kernel/btf/vmlinux): the struct
//! offsets the programs need, and the names of `enum skb_drop_reason`.
//!
//! Read with [`crate::kbtf`], which scans only the types asked for: a full BTF parse
//! of vmlinux was most of the start-up time of `trace` and `diagnose`.

use std::collections::HashMap;

use vethscope_common::KernelOffsets;

use super::ProbeError;
use crate::kbtf::KernelBtf;

fn btf() -> Result<KernelBtf, ProbeError> {
    KernelBtf::open().map_err(ProbeError::Btf)
}

fn offset(btf: &KernelBtf, st: &str, member: &str) -> Result<u32, ProbeError> {
    btf.offset(st, member).map_err(ProbeError::Btf)
}

pub fn kernel_offsets() -> Result<KernelOffsets, ProbeError> {
    let btf = btf()?;
    Ok(KernelOffsets {
        skb_dev: offset(&btf, "sk_buff", "dev")?,
        dev_ifindex: offset(&btf, "net_device", "ifindex")?,
        dev_nd_net: offset(&btf, "net_device", "nd_net")? + offset(&btf, "possible_net_t", "net")?,
        net_cookie: offset(&btf, "net", "net_cookie")?,
        valid: 1,
        skb_ip_summed_bits: btf
            .bit_offset("sk_buff", "ip_summed")
            .map_err(ProbeError::Btf)?,
    })
}

/// `enum skb_drop_reason` of this kernel: value → lower-case name without prefix
/// (`SKB_DROP_REASON_NO_SOCKET` → `no_socket`).
pub fn drop_reasons() -> Result<HashMap<u32, String>, ProbeError> {
    crate::kbtf::drop_reasons(&btf()?).map_err(ProbeError::Btf)
}
