//! Reading kernel structures the verifier does not expose to TC programs, through
//! offsets userspace read from the running kernel's BTF.
//!
//! Why: `bpf_get_netns_cookie(skb)` in TC answers with the namespace of the skb's
//! *socket* (or init_net when there is none), not the namespace of the device the
//! packet is on — a ping's echo request crossing a veth into the root namespace still
//! reports the sender's namespace. The device's own namespace is `skb->dev->nd_net`.

use aya_ebpf::{helpers::bpf_probe_read_kernel, macros::map, maps::Array};
use vethscope_common::KernelOffsets;

#[map]
pub static KERNEL_OFFSETS: Array<KernelOffsets> = Array::with_max_entries(1, 0);
named!(KERNEL_OFFSETS, vethscope_common::names::map::KERNEL_OFFSETS);

#[inline(always)]
pub fn read_kernel<T>(addr: u64) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel faults safely on a bad address and returns an error.
    unsafe { bpf_probe_read_kernel(addr as *const T).ok() }
}

/// The cookie of the namespace `dev` (a `struct net_device *`) lives in.
#[inline(always)]
pub fn dev_netns_cookie(off: &KernelOffsets, dev: u64) -> Option<u64> {
    let net: u64 = read_kernel(dev + u64::from(off.dev_nd_net))?;
    read_kernel(net + u64::from(off.net_cookie))
}

/// The cookie of the namespace of the device an skb is on. `skb` is the context
/// pointer of a TC program, which is the kernel's `struct sk_buff *`.
#[inline(always)]
pub fn skb_netns_cookie(skb: u64) -> u64 {
    let Some(off) = KERNEL_OFFSETS.get(0) else {
        return 0;
    };
    if off.valid == 0 {
        return 0;
    }
    let Some(dev) = read_kernel::<u64>(skb + u64::from(off.skb_dev)) else {
        return 0;
    };
    dev_netns_cookie(off, dev).unwrap_or(0)
}
