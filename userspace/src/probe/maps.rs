//! Typed handles on the object's maps: each method knows its map's name, key and value
//! types, so callers never look a map up by string or convert it themselves.

use std::{
    collections::HashMap,
    os::fd::{AsRawFd, RawFd},
    path::Path,
};

use aya::maps::{Array, HashMap as BpfHashMap, Map, MapData, PerCpuArray, PerCpuHashMap, RingBuf};
use vethscope_common::{
    DropKey, FastpathCounters, FastpathPort, FdbEntry, FdbKey, IfaceKey, ImpairConfig,
    ImpairCounters, LinkCounts, LinkKey, TRACE_STAT_LOST, TraceConfig, names::map,
};

use super::{Probe, ProbeError};

/// The trace programs' ring buffer, taken out of the probe so the caller can register
/// its fd with the async runtime.
pub struct TraceRing(RingBuf<MapData>);

impl TraceRing {
    /// The next event's bytes (a [`vethscope_common::PacketEvent`]), or `None` when
    /// the ring is empty. The item is released when dropped.
    pub fn next_event(&mut self) -> Option<impl std::ops::Deref<Target = [u8]> + '_> {
        self.0.next()
    }
}

impl TraceRing {
    /// Opens a ring buffer pinned by another object (the impairment program's events of
    /// a lab). A pinned ring has one consumer position: two readers split its events.
    pub fn open_pinned(path: &Path) -> Result<Self, ProbeError> {
        let name = map::IMPAIR_EVENTS;
        let data = MapData::from_pin(path).map_err(|e| ProbeError::map(name, e))?;
        let map = Map::from_map_data(data).map_err(|e| ProbeError::map(name, e))?;
        map.try_into()
            .map(Self)
            .map_err(|e| ProbeError::map(name, e))
    }
}

impl AsRawFd for TraceRing {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// The programs' aya-log messages (`trace --ebpf-log`), forwarded to `tracing`.
pub struct KernelLog(Box<dyn LogBuffer>);

/// aya-log's logger, whose type names the `log` crate's trait: erased here.
trait LogBuffer: AsRawFd + Send {
    fn flush(&mut self);
}

impl<T: log::Log + Send> LogBuffer for aya_log::EbpfLogger<T> {
    fn flush(&mut self) {
        aya_log::EbpfLogger::flush(self);
    }
}

impl KernelLog {
    /// Forwards every message waiting in the kernel's log buffer.
    pub fn flush(&mut self) {
        self.0.flush();
    }
}

impl AsRawFd for KernelLog {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Second handles on the counting maps (dups of the probe's fds), for readers that
/// run apart from the probe: the exporter's collector (scrape time) and watcher
/// (refresh loop) each get their own.
pub struct CounterHandles {
    /// Packets and bytes per link, by direction and class (per CPU).
    pub links: PerCpuHashMap<MapData, LinkKey, LinkCounts>,
    /// Drops per link and reason (per CPU).
    pub drops: PerCpuHashMap<MapData, DropKey, u64>,
    /// The links whose drops are counted.
    pub watch: BpfHashMap<MapData, IfaceKey, u8>,
}

/// A second handle on the trace programs' statistics (events lost when the ring was full).
pub struct TraceStatsHandle(PerCpuArray<MapData, u64>);

impl TraceStatsHandle {
    /// Events the kernel could not put into the trace ring, summed over CPUs.
    pub fn lost(&self) -> Result<u64, ProbeError> {
        let values = self
            .0
            .get(&TRACE_STAT_LOST, 0)
            .map_err(|e| ProbeError::map(map::TRACE_STATS, e))?;
        Ok(values.iter().fold(0u64, |a, v| a.wrapping_add(*v)))
    }
}

impl Probe {
    /// A duplicate fd of the per-link counters map, for batched reads
    /// (`BPF_MAP_LOOKUP_BATCH`, which aya 0.14 does not offer).
    pub fn link_counters_fd(&self) -> Result<std::os::fd::OwnedFd, ProbeError> {
        self.per_cpu_map_fd(map::LINK_COUNTERS)
    }

    /// The same for the per-link drop counters.
    pub fn drop_counters_fd(&self) -> Result<std::os::fd::OwnedFd, ProbeError> {
        self.per_cpu_map_fd(map::DROP_COUNTERS)
    }

    fn per_cpu_map_fd(&self, name: &'static str) -> Result<std::os::fd::OwnedFd, ProbeError> {
        use std::os::fd::AsFd;
        let data = match self.ebpf.map(name).ok_or(ProbeError::NoMap(name))? {
            aya::maps::Map::PerCpuHashMap(d) => d,
            _ => return Err(ProbeError::NotShareable(name)),
        };
        data.fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| ProbeError::Dup { map: name, source })
    }

    /// Second handles on the counting maps.
    pub fn counter_handles(&self) -> Result<CounterHandles, ProbeError> {
        Ok(CounterHandles {
            links: self.dup_map(map::LINK_COUNTERS)?,
            drops: self.dup_map(map::DROP_COUNTERS)?,
            watch: self.dup_map(map::DROP_WATCH)?,
        })
    }

    /// A second handle on the trace statistics.
    pub fn trace_stats_handle(&self) -> Result<TraceStatsHandle, ProbeError> {
        self.dup_map(map::TRACE_STATS).map(TraceStatsHandle)
    }

    /// Takes the trace ring out of the probe (once).
    pub fn take_trace_ring(&mut self) -> Result<TraceRing, ProbeError> {
        self.take_map(map::TRACE_EVENTS).map(TraceRing)
    }

    /// The programs' log, when they were loaded with `ebpf_log` (once).
    pub fn take_kernel_log(&mut self) -> Result<KernelLog, ProbeError> {
        aya_log::EbpfLogger::init(&mut self.ebpf)
            .map(|l| KernelLog(Box::new(l)))
            .map_err(|e| ProbeError::KernelLog(Box::new(e)))
    }

    /// Sets what the trace programs report.
    pub fn set_trace_config(&mut self, config: TraceConfig) -> Result<(), ProbeError> {
        let mut array: Array<&mut MapData, TraceConfig> = self.map_mut(map::TRACE_CONFIG)?;
        array
            .set(0, config, 0)
            .map_err(|e| ProbeError::map(map::TRACE_CONFIG, e))
    }

    /// Events the kernel could not put into the trace ring (it was full), summed over CPUs.
    pub fn trace_events_lost(&self) -> Result<u64, ProbeError> {
        let stats: PerCpuArray<&MapData, u64> = self.map_ref(map::TRACE_STATS)?;
        let values = stats
            .get(&TRACE_STAT_LOST, 0)
            .map_err(|e| ProbeError::map(map::TRACE_STATS, e))?;
        Ok(values.iter().fold(0u64, |a, v| a.wrapping_add(*v)))
    }

    /// Makes the fast path's port map and forwarding table exactly `ports` and `fdb`:
    /// stale entries (a MAC that changed, a port that went or that the bridge stopped
    /// forwarding to) would send frames where the bridge would not. Stale ports go
    /// first (a port that left stops looking up) and new ports last (a new port starts
    /// only once its destinations are in the table).
    pub fn sync_fastpath_tables(
        &mut self,
        ports: &[(u32, FastpathPort)],
        fdb: &[(FdbKey, FdbEntry)],
    ) -> Result<(), ProbeError> {
        self.sync_hash(map::FASTPATH_PORTS, ports, true)?;
        self.sync_hash(map::FASTPATH_FDB, fdb, false)?;
        self.sync_hash(map::FASTPATH_PORTS, ports, false)
    }

    /// Makes hash map `name` hold exactly `wanted` (with `only_remove`, just drops the
    /// entries not in `wanted`).
    fn sync_hash<K, V>(
        &mut self,
        name: &'static str,
        wanted: &[(K, V)],
        only_remove: bool,
    ) -> Result<(), ProbeError>
    where
        K: aya::Pod + Eq + std::hash::Hash,
        V: aya::Pod,
    {
        let mut table: BpfHashMap<&mut MapData, K, V> = self.map_mut(name)?;
        let keep: std::collections::HashSet<K> = wanted.iter().map(|(k, _)| *k).collect();
        let stale: Vec<K> = table
            .keys()
            .filter_map(Result::ok)
            .filter(|k| !keep.contains(k))
            .collect();
        for k in stale {
            let _ = table.remove(&k);
        }
        if !only_remove {
            for (k, v) in wanted {
                table
                    .insert(k, v, 0)
                    .map_err(|e| ProbeError::map(name, e))?;
            }
        }
        Ok(())
    }
}

/// The fast path's counters, opened from where a lab pinned them (no probe needed).
pub struct FastpathStats(PerCpuHashMap<MapData, u32, FastpathCounters>);

impl FastpathStats {
    /// Opens the map pinned in `dir` (a lab's pin directory).
    pub fn open_pinned(dir: &Path) -> Result<Self, ProbeError> {
        let name = map::FASTPATH_STATS;
        let data = MapData::from_pin(dir.join(name)).map_err(|e| ProbeError::map(name, e))?;
        let map = Map::from_map_data(data).map_err(|e| ProbeError::map(name, e))?;
        map.try_into()
            .map(Self)
            .map_err(|e| ProbeError::map(name, e))
    }

    /// Counters per host-side ingress ifindex, summed over CPUs.
    pub fn totals(&self) -> HashMap<u32, FastpathCounters> {
        self.0
            .iter()
            .filter_map(Result::ok)
            .map(|(ifindex, per_cpu)| {
                let sum =
                    per_cpu
                        .iter()
                        .fold(FastpathCounters::default(), |a, c| FastpathCounters {
                            redirected: a.redirected.wrapping_add(c.redirected),
                            passed: a.passed.wrapping_add(c.passed),
                        });
                (ifindex, sum)
            })
            .collect()
    }
}

/// Opens map `name` pinned in `dir`.
fn open_pinned<T: TryFrom<Map, Error = aya::maps::MapError>>(
    dir: &Path,
    name: &'static str,
) -> Result<T, ProbeError> {
    let data = MapData::from_pin(dir.join(name)).map_err(|e| ProbeError::map(name, e))?;
    let map = Map::from_map_data(data).map_err(|e| ProbeError::map(name, e))?;
    map.try_into().map_err(|e| ProbeError::map(name, e))
}

/// The impairment settings per end, opened from a lab's impairment pin directory.
pub struct ImpairConfigPinned(BpfHashMap<MapData, IfaceKey, ImpairConfig>);

impl ImpairConfigPinned {
    pub fn open_pinned(dir: &Path) -> Result<Self, ProbeError> {
        open_pinned(dir, map::IMPAIR_CONFIG).map(Self)
    }

    pub fn set(&mut self, key: IfaceKey, cfg: ImpairConfig) -> Result<(), ProbeError> {
        self.0
            .insert(key, cfg, 0)
            .map_err(|e| ProbeError::map(map::IMPAIR_CONFIG, e))
    }

    pub fn remove(&mut self, key: IfaceKey) {
        let _ = self.0.remove(&key);
    }
}

/// The impairment program's counters per end, opened from where a lab pinned them.
pub struct ImpairStats(PerCpuHashMap<MapData, IfaceKey, ImpairCounters>);

impl ImpairStats {
    pub fn open_pinned(dir: &Path) -> Result<Self, ProbeError> {
        open_pinned(dir, map::IMPAIR_STATS).map(Self)
    }

    pub fn remove(&mut self, key: IfaceKey) {
        let _ = self.0.remove(&key);
    }

    /// Counters per end, summed over CPUs.
    pub fn totals(&self) -> HashMap<IfaceKey, ImpairCounters> {
        self.0
            .iter()
            .filter_map(Result::ok)
            .map(|(k, per_cpu)| {
                let sum = per_cpu
                    .iter()
                    .fold(ImpairCounters::default(), |a, c| ImpairCounters {
                        seen: a.seen.wrapping_add(c.seen),
                        dropped: a.dropped.wrapping_add(c.dropped),
                        duplicated: a.duplicated.wrapping_add(c.duplicated),
                        corrupted: a.corrupted.wrapping_add(c.corrupted),
                    });
                (k, sum)
            })
            .collect()
    }
}

impl Probe {
    /// Sets the impairment of one end in this object's settings map (the pinned one
    /// when loaded with [`super::PinnableMap::ImpairConfig`]).
    pub fn set_impair_config(
        &mut self,
        key: IfaceKey,
        cfg: ImpairConfig,
    ) -> Result<(), ProbeError> {
        let mut m: BpfHashMap<&mut MapData, IfaceKey, ImpairConfig> =
            self.map_mut(map::IMPAIR_CONFIG)?;
        m.insert(key, cfg, 0)
            .map_err(|e| ProbeError::map(map::IMPAIR_CONFIG, e))
    }
}
