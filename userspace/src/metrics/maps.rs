//! The counting maps, seen from userspace.
//!
//! The collector (scrape time) and the watcher (refresh loop) each get their own
//! handles, made from duplicates of the probe's map fds: neither needs the `Probe`
//! (which attaching keeps busy) nor a lock shared with the other. Reads sum the per-CPU
//! values; nothing here runs per packet.

use std::{
    collections::{HashMap, HashSet},
    os::fd::AsFd,
};

use aya::{
    Ebpf,
    maps::{HashMap as BpfHashMap, Map, MapData, PerCpuArray, PerCpuHashMap},
};
use vethscope_common::{
    DropKey, FastpathCounters, IfaceKey, LinkCounters, LinkKey, TRACE_STAT_LOST, class, direction,
    names::map::{DROP_COUNTERS, DROP_WATCH, FASTPATH_STATS, LINK_COUNTERS, TRACE_STATS},
};

use super::{LinkId, MetricsError};

/// A second handle on one of the probe's maps (a dup of its fd).
fn dup(ebpf: &Ebpf, name: &str) -> Result<Map, MetricsError> {
    let data = match ebpf.map(name) {
        Some(Map::PerCpuHashMap(d) | Map::HashMap(d) | Map::PerCpuArray(d)) => d,
        Some(_) => return Err(MetricsError::map(name, "unexpected map type")),
        None => return Err(MetricsError::map(name, "missing from the eBPF object")),
    };
    let fd = data
        .fd()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| MetricsError::map(name, e))?;
    let data = MapData::from_fd(fd).map_err(|e| MetricsError::map(name, e))?;
    Map::from_map_data(data).map_err(|e| MetricsError::map(name, e))
}

pub struct CounterMaps {
    links: PerCpuHashMap<MapData, LinkKey, LinkCounters>,
    drops: PerCpuHashMap<MapData, DropKey, u64>,
    watch: BpfHashMap<MapData, IfaceKey, u8>,
}

impl CounterMaps {
    pub fn open(ebpf: &Ebpf) -> Result<Self, MetricsError> {
        Ok(Self {
            links: dup(ebpf, LINK_COUNTERS)?
                .try_into()
                .map_err(|e| MetricsError::map(LINK_COUNTERS, e))?,
            drops: dup(ebpf, DROP_COUNTERS)?
                .try_into()
                .map_err(|e| MetricsError::map(DROP_COUNTERS, e))?,
            watch: dup(ebpf, DROP_WATCH)?
                .try_into()
                .map_err(|e| MetricsError::map(DROP_WATCH, e))?,
        })
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
pub struct TraceStats(PerCpuArray<MapData, u64>);

impl TraceStats {
    pub fn open(ebpf: &Ebpf) -> Result<Self, MetricsError> {
        Ok(Self(
            dup(ebpf, TRACE_STATS)?
                .try_into()
                .map_err(|e| MetricsError::map(TRACE_STATS, e))?,
        ))
    }

    pub fn lost(&self) -> u64 {
        match self.0.get(&TRACE_STAT_LOST, 0) {
            Ok(values) => values.iter().fold(0u64, |a, v| a.wrapping_add(*v)),
            Err(e) => {
                tracing::debug!("{TRACE_STATS}: {e}");
                0
            }
        }
    }
}

/// Fast-path counters of a lab by host-side ingress ifindex, from the map the fast
/// path pins; `None` when it is not pinned (fast path off).
pub fn fastpath_totals(lab: &str) -> Option<HashMap<u32, FastpathCounters>> {
    let path = crate::fastpath::pin_dir(lab).join(FASTPATH_STATS);
    let data = match MapData::from_pin(&path) {
        Ok(d) => d,
        Err(e) => {
            // Absent is the normal "fast path off"; anything else is worth a debug line.
            tracing::debug!("{}: {e}", path.display());
            return None;
        }
    };
    let map: PerCpuHashMap<MapData, u32, FastpathCounters> = Map::from_map_data(data)
        .and_then(TryInto::try_into)
        .map_err(|e| tracing::debug!("{}: {e}", path.display()))
        .ok()?;
    let mut out = HashMap::new();
    for (ifindex, values) in map.iter().filter_map(Result::ok) {
        let mut sum = FastpathCounters::default();
        for v in values.iter() {
            sum.redirected = sum.redirected.wrapping_add(v.redirected);
            sum.passed = sum.passed.wrapping_add(v.passed);
        }
        out.insert(ifindex, sum);
    }
    Some(out)
}
