//! The drop watcher of `diagnose` (ebpf/src/dropwatch.rs): every packet freed through
//! `skb:kfree_skb` in a watched namespace, with its drop reason and addresses.

use aya::maps::{Array, HashMap as BpfHashMap, MapData, RingBuf};
use vethscope_common::{
    DropEvent, diag_offset,
    names::{map, program},
};

use super::{Probe, ProbeError};
use crate::kbtf::KernelBtf;

/// The drop events' ring, taken out of the probe.
pub struct DropRing(RingBuf<MapData>);

impl DropRing {
    pub fn next_event(&mut self) -> Option<DropEvent> {
        let item = self.0.next()?;
        if item.len() < std::mem::size_of::<DropEvent>() {
            return Some(DropEvent::default());
        }
        // SAFETY: length checked; DropEvent is plain data (any bit pattern is valid).
        Some(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<DropEvent>()) })
    }
}

impl Probe {
    /// Starts the drop watcher for the namespaces with these cookies: fills its
    /// `sk_buff` offsets from `btf`, attaches it to `kfree_skb` (the link stays with the
    /// probe) and hands out its ring.
    pub fn start_drop_watch(
        &mut self,
        btf: &KernelBtf,
        cookies: &[u64],
    ) -> Result<DropRing, ProbeError> {
        let off = |member: &str| btf.offset("sk_buff", member).map_err(ProbeError::Btf);
        let slots = [
            (diag_offset::SKB_HEAD, off("head")?),
            (diag_offset::SKB_NETWORK_HEADER, off("network_header")?),
            (diag_offset::SKB_PROTOCOL, off("protocol")?),
            (diag_offset::VALID, 1),
        ];
        {
            let mut arr: Array<&mut MapData, u32> = self.map_mut(map::DIAG_OFFSETS)?;
            for (slot, v) in slots {
                arr.set(slot, v, 0)
                    .map_err(|e| ProbeError::map(map::DIAG_OFFSETS, e))?;
            }
        }
        {
            let mut watch: BpfHashMap<&mut MapData, u64, u8> = self.map_mut(map::DIAG_NETNS)?;
            for c in cookies {
                watch
                    .insert(c, 1, 0)
                    .map_err(|e| ProbeError::map(map::DIAG_NETNS, e))?;
            }
        }
        self.attach_kfree_skb(program::DIAG_KFREE_SKB)?;
        self.take_map(map::DIAG_DROPS).map(DropRing)
    }
}
