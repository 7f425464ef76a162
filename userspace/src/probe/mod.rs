//! The eBPF side, from userspace, and the only module that uses aya: load the embedded
//! object once, attach its programs to interfaces in any namespace, and hand out typed
//! handles on its maps. Callers name programs by role ([`Observer`], the fast path,
//! the drop counter) and maps by what they hold, never by string.
//!
//! TCX attachments are bpf_links owned by file descriptors of this process: they vanish
//! when it exits (Ctrl-C, kill, crash), so an observer never outlives `trace`/`serve`.

mod attach;
pub mod btf;
mod dropwatch;
mod error;
mod maps;
mod targets;
mod testrun;

use std::collections::HashMap;
use std::os::fd::AsFd;

use aya::{
    Ebpf, EbpfLoader,
    maps::{Map, MapData, MapError},
};
use vethscope_common::names::map;

pub use attach::{Direction, FastpathTcxLink, Observer, ObserverLinks, Position};
pub use dropwatch::DropRing;
pub use error::ProbeError;
pub use maps::{
    CounterHandles, FastpathStats, ImpairConfigPinned, ImpairStats, KernelLog, TraceRing,
    TraceStatsHandle,
};
pub use targets::{LinkKind, Target, TargetFilter, host_targets, lab_targets};

/// The programs, built by build.rs from ebpf/ and embedded in the binary.
static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vethscope-ebpf"));

/// A map of the object that can be pinned (or reused when already pinned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinnableMap {
    FastpathFdb,
    FastpathPorts,
    FastpathStats,
    ImpairConfig,
    ImpairStats,
    ImpairEvents,
}

impl PinnableMap {
    /// The map's name, which is also its file name under a pin directory.
    pub fn name(self) -> &'static str {
        match self {
            PinnableMap::FastpathFdb => map::FASTPATH_FDB,
            PinnableMap::FastpathPorts => map::FASTPATH_PORTS,
            PinnableMap::FastpathStats => map::FASTPATH_STATS,
            PinnableMap::ImpairConfig => map::IMPAIR_CONFIG,
            PinnableMap::ImpairStats => map::IMPAIR_STATS,
            PinnableMap::ImpairEvents => map::IMPAIR_EVENTS,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct LoadOptions {
    /// Let the programs' aya-log statements through (`--ebpf-log`).
    pub ebpf_log: bool,
    /// Maps to pin (or reuse when already pinned) at these bpffs paths.
    pub map_pins: Vec<(PinnableMap, std::path::PathBuf)>,
}

pub struct Probe {
    ebpf: Ebpf,
    /// Netns cookie → namespace name, for decoding events and counter keys.
    cookies: HashMap<u64, String>,
}

impl Probe {
    pub fn load(opts: LoadOptions) -> Result<Self, ProbeError> {
        // aya-log level 0 disables every log statement in the kernel (one global load
        // per statement); 5 (trace) lets them all through.
        let level: u8 = if opts.ebpf_log { 5 } else { 0 };
        let mut loader = EbpfLoader::new();
        // No CO-RE relocations in these programs (kernel offsets come from
        // probe::btf): skip aya's full parse of the kernel's BTF, a large part of
        // start-up.
        loader.btf(None);
        loader.override_global("AYA_LOG_LEVEL", &level, true);
        for (map, path) in &opts.map_pins {
            loader.map_pin_path(map.name(), path.as_path());
        }
        let ebpf = loader
            .load(EBPF_OBJECT)
            .map_err(|e| ProbeError::Load(Box::new(e)))?;
        let mut probe = Self {
            ebpf,
            cookies: HashMap::new(),
        };
        probe.set_kernel_offsets()?;
        Ok(probe)
    }

    /// The programs find each packet's namespace through these offsets (see ebpf/src/kernel.rs).
    fn set_kernel_offsets(&mut self) -> Result<(), ProbeError> {
        let offsets = btf::kernel_offsets()?;
        let mut array: aya::maps::Array<&mut MapData, vethscope_common::KernelOffsets> =
            self.map_mut(map::KERNEL_OFFSETS)?;
        array
            .set(0, offsets, 0)
            .map_err(|e| ProbeError::map(map::KERNEL_OFFSETS, e))
    }

    /// The loaded object, for the metrics exporter's own map handles.
    /// A typed view of map `name`, borrowing the object.
    fn map_mut<'a, T>(&'a mut self, name: &'static str) -> Result<T, ProbeError>
    where
        T: TryFrom<&'a mut Map, Error = MapError>,
    {
        let map = self.ebpf.map_mut(name).ok_or(ProbeError::NoMap(name))?;
        T::try_from(map).map_err(|e| ProbeError::map(name, e))
    }

    /// A typed view of map `name`, read-only.
    fn map_ref<'a, T>(&'a self, name: &'static str) -> Result<T, ProbeError>
    where
        T: TryFrom<&'a Map, Error = MapError>,
    {
        let map = self.ebpf.map(name).ok_or(ProbeError::NoMap(name))?;
        T::try_from(map).map_err(|e| ProbeError::map(name, e))
    }

    /// A second handle on map `name` (a dup of its fd): it lives apart from the probe,
    /// so a reader needs neither the probe nor a lock shared with it.
    fn dup_map<T>(&self, name: &'static str) -> Result<T, ProbeError>
    where
        T: TryFrom<Map, Error = MapError>,
    {
        let data = match self.ebpf.map(name).ok_or(ProbeError::NoMap(name))? {
            Map::PerCpuHashMap(d) | Map::HashMap(d) | Map::PerCpuArray(d) | Map::Array(d) => d,
            _ => return Err(ProbeError::NotShareable(name)),
        };
        let fd = data
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| ProbeError::Dup { map: name, source })?;
        let data = MapData::from_fd(fd).map_err(|e| ProbeError::map(name, e))?;
        let map = Map::from_map_data(data).map_err(|e| ProbeError::map(name, e))?;
        T::try_from(map).map_err(|e| ProbeError::map(name, e))
    }

    /// Map `name` taken out of the object (for a handle that lives apart from the probe,
    /// e.g. the ring buffer registered with the async runtime). Once only.
    fn take_map<T>(&mut self, name: &'static str) -> Result<T, ProbeError>
    where
        T: TryFrom<Map, Error = MapError>,
    {
        let map = self.ebpf.take_map(name).ok_or(ProbeError::NoMap(name))?;
        T::try_from(map).map_err(|e| ProbeError::map(name, e))
    }

    pub fn netns_of_cookie(&self, cookie: u64) -> Option<&str> {
        self.cookies.get(&cookie).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use vethscope_common::names;

    /// Every name userspace looks up exists in the object it embeds (the eBPF crate
    /// checks the other direction at compile time).
    #[test]
    fn every_name_constant_is_in_the_object() {
        let obj = aya_obj::Object::parse(super::EBPF_OBJECT).expect("parse the eBPF object");
        for name in names::map::ALL {
            assert!(obj.maps.contains_key(*name), "no map {name} in the object");
        }
        for name in names::program::ALL {
            assert!(
                obj.programs.contains_key(*name),
                "no program {name} in the object"
            );
        }
    }

    #[test]
    fn every_map_and_program_of_the_object_has_a_constant() {
        let obj = aya_obj::Object::parse(super::EBPF_OBJECT).expect("parse the eBPF object");
        for name in obj.maps.keys() {
            // aya-log's own map, and the sections of globals (.rodata, .bss, .data).
            if name.starts_with('.') || name == "AYA_LOGS" {
                continue;
            }
            assert!(
                names::map::ALL.contains(&name.as_str()),
                "map {name} has no constant"
            );
        }
        for name in obj.programs.keys() {
            assert!(
                names::program::ALL.contains(&name.as_str()),
                "program {name} has no constant"
            );
        }
    }
}
