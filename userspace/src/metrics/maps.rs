//! The counting maps, seen from userspace.
//!
//! The collector (scrape time) and the watcher (refresh loop) each get their own
//! handles, made from duplicates of the probe's map fds: neither needs the `Probe`
//! (which attaching keeps busy) nor a lock shared with the other. Reads sum the per-CPU
//! values; nothing here runs per packet.

use std::collections::HashSet;

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuHashMap};
use vethscope_common::{
    DropKey, IfaceKey, LinkCounts, LinkKey,
    names::map::{DROP_WATCH, TRACE_STATS},
};

use super::{LinkId, MetricsError};
use crate::probe::{CounterHandles, TraceStatsHandle};

pub struct CounterMaps {
    links: PerCpuHashMap<MapData, LinkKey, LinkCounts>,
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
            // One entry per link: no walk over the whole map.
            let _ = self.links.remove(&LinkKey {
                netns_cookie: id.0,
                ifindex: id.1,
                _pad: [0; 4],
            });
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
