//! The counting maps, seen from userspace.
//!
//! The collector (scrape time) and the watcher (refresh loop) each get their own
//! handles, made from duplicates of the probe's map fds: neither needs the `Probe`
//! (which attaching keeps busy) nor a lock shared with the other. Reads sum the per-CPU
//! values; nothing here runs per packet.

use std::collections::{HashMap, HashSet};

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuHashMap};
use vethscope_common::{
    DropKey, IfaceKey, LinkCounters, LinkKey, class, direction,
    names::map::{DROP_COUNTERS, DROP_WATCH, LINK_COUNTERS, TRACE_STATS},
};

use super::{LinkId, MetricsError};
use crate::probe::{CounterHandles, TraceStatsHandle};

pub struct CounterMaps {
    links: PerCpuHashMap<MapData, LinkKey, LinkCounters>,
    drops: PerCpuHashMap<MapData, DropKey, u64>,
    watch: BpfHashMap<MapData, IfaceKey, u8>,
}

impl CounterMaps {
    pub fn open(handles: CounterHandles) -> Self {
        Self {
            links: handles.links,
            drops: handles.drops,
            watch: handles.watch,
        }
    }

    /// Packets and bytes per key, summed over CPUs, for the links in `wanted`.
    ///
    /// Values are stored, not added: if an entry is deleted while we iterate, the
    /// kernel restarts the walk from the first key, and a key seen twice must not count
    /// twice.
    pub fn link_totals(&self, wanted: impl Fn(&LinkId) -> bool) -> HashMap<LinkKey, LinkCounters> {
        let mut out = HashMap::new();
        for item in self.links.iter() {
            match item {
                Ok((key, values)) => {
                    if !wanted(&(key.netns_cookie, key.ifindex)) {
                        continue;
                    }
                    let mut sum = LinkCounters::default();
                    for v in values.iter() {
                        sum.packets = sum.packets.wrapping_add(v.packets);
                        sum.bytes = sum.bytes.wrapping_add(v.bytes);
                    }
                    out.insert(key, sum);
                }
                // An entry deleted between "next key" and "lookup": skip it.
                Err(e) => tracing::debug!("{LINK_COUNTERS}: {e}"),
            }
        }
        out
    }

    /// Drops per (link, reason), summed over CPUs, for the links in `wanted`.
    pub fn drop_totals(&self, wanted: impl Fn(&LinkId) -> bool) -> HashMap<DropKey, u64> {
        let mut out = HashMap::new();
        for item in self.drops.iter() {
            match item {
                Ok((key, values)) => {
                    if wanted(&(key.netns_cookie, key.ifindex)) {
                        out.insert(key, values.iter().fold(0u64, |a, v| a.wrapping_add(*v)));
                    }
                }
                Err(e) => tracing::debug!("{DROP_COUNTERS}: {e}"),
            }
        }
        out
    }

    /// Starts counting drops on a link.
    pub fn watch(&mut self, id: LinkId) -> Result<(), MetricsError> {
        self.watch
            .insert(iface_key(id), 1u8, 0)
            .map_err(|e| MetricsError::map(DROP_WATCH, e))
    }

    /// Stops counting on links that are gone and deletes their entries, so the maps do
    /// not fill up over a long `serve` while labs come and go.
    pub fn forget(&mut self, gone: &HashSet<LinkId>) {
        if gone.is_empty() {
            return;
        }
        for id in gone {
            let _ = self.watch.remove(&iface_key(*id));
            // Every key a link can have is known: no walk over the whole map.
            for dir in [direction::INGRESS, direction::EGRESS] {
                for c in 0..class::COUNT as u8 {
                    let _ = self.links.remove(&LinkKey {
                        netns_cookie: id.0,
                        ifindex: id.1,
                        direction: dir,
                        class: c,
                        _pad: [0; 2],
                    });
                }
            }
        }
        // Drop reasons are not known in advance: collect the keys, then delete.
        let stale: Vec<DropKey> = self
            .drops
            .keys()
            .filter_map(Result::ok)
            .filter(|k| gone.contains(&(k.netns_cookie, k.ifindex)))
            .collect();
        for k in stale {
            let _ = self.drops.remove(&k);
        }
    }
}

fn iface_key(id: LinkId) -> IfaceKey {
    IfaceKey {
        netns_cookie: id.0,
        ifindex: id.1,
        _pad: [0; 4],
    }
}

/// The tracer's "events lost" slot, when tracing runs in the same probe.
pub struct TraceStats(TraceStatsHandle);

impl TraceStats {
    pub fn open(handle: TraceStatsHandle) -> Self {
        Self(handle)
    }

    pub fn lost(&self) -> u64 {
        self.0.lost().unwrap_or_else(|e| {
            tracing::debug!("{TRACE_STATS}: {}", crate::errors::Chain(&e));
            0
        })
    }
}
