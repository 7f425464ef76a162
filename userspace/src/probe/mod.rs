//! The eBPF side, from userspace: load the embedded object once, attach its TC programs
//! (TCX) to interfaces in any namespace, read its maps.
//!
//! TCX attachments are bpf_links owned by file descriptors of this process: they vanish
//! when it exits (Ctrl-C, kill, crash), so an observer never outlives `trace`/`serve`.

pub mod btf;
mod error;
mod targets;
mod testrun;

use std::collections::HashMap;

use aya::{
    Ebpf, EbpfLoader,
    programs::{
        LinkOrder, SchedClassifier, TcAttachType,
        tc::{SchedClassifierLink, SchedClassifierLinkId, TcAttachOptions},
    },
};

pub use error::ProbeError;
pub use targets::{Target, TargetFilter, host_targets, lab_targets};

use crate::netns;

/// The programs, built by build.rs from ebpf/ and embedded in the binary.
static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vethscope-ebpf"));

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn attach_type(self) -> TcAttachType {
        match self {
            Direction::Ingress => TcAttachType::Ingress,
            Direction::Egress => TcAttachType::Egress,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// Where in an interface's TCX chain a program goes: observers first, so they see a
/// frame before a later program (the fast path) redirects it.
#[derive(Clone, Copy, Debug)]
pub enum Position {
    First,
    Last,
}

#[derive(Debug, Default, Clone)]
pub struct LoadOptions {
    /// Let the programs' aya-log statements through (`--ebpf-log`).
    pub ebpf_log: bool,
    /// Maps to pin (or reuse when already pinned): (map name, bpffs path).
    pub map_pins: Vec<(&'static str, std::path::PathBuf)>,
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
            loader.map_pin_path(map, path.as_path());
        }
        let ebpf = loader
            .load(EBPF_OBJECT)
            .map_err(|e| ProbeError::Load(e.to_string()))?;
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
        let map = self
            .ebpf
            .map_mut("KERNEL_OFFSETS")
            .ok_or_else(|| ProbeError::Map {
                map: "KERNEL_OFFSETS".into(),
                message: "missing".into(),
            })?;
        let mut array: aya::maps::Array<&mut aya::maps::MapData, vethscope_common::KernelOffsets> =
            aya::maps::Array::try_from(map).map_err(|e| ProbeError::Map {
                map: "KERNEL_OFFSETS".into(),
                message: e.to_string(),
            })?;
        array.set(0, offsets, 0).map_err(|e| ProbeError::Map {
            map: "KERNEL_OFFSETS".into(),
            message: e.to_string(),
        })
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    /// Loads (verifies) a program into the kernel; idempotent.
    pub fn load_program(&mut self, name: &str) -> Result<(), ProbeError> {
        let prog = self.classifier(name)?;
        if prog.fd().is_err() {
            prog.load().map_err(|e| ProbeError::Verifier {
                program: name.to_string(),
                message: e.to_string(),
            })?;
        }
        Ok(())
    }

    fn classifier(&mut self, name: &str) -> Result<&mut SchedClassifier, ProbeError> {
        self.ebpf
            .program_mut(name)
            .ok_or_else(|| ProbeError::NoProgram(name.to_string()))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| ProbeError::Load(e.to_string()))
    }

    /// Attaches program `name` to `target` in `dir`. The interface name is resolved
    /// inside the target's namespace (on a thread that entered it). The link stays with
    /// the program (detached when the probe is dropped).
    pub fn attach(
        &mut self,
        name: &str,
        target: &Target,
        dir: Direction,
        pos: Position,
    ) -> Result<(), ProbeError> {
        self.attach_id(name, target, dir, pos).map(|_| ())
    }

    /// Attaches like [`Probe::attach`] but hands the TCX link to the caller, for
    /// observers whose set of interfaces changes while they run (`serve`): dropping the
    /// link detaches the program, or, when the interface is already gone (the kernel
    /// then detached it itself), releases the kernel's link object and our fd.
    pub fn attach_owned(
        &mut self,
        name: &str,
        target: &Target,
        dir: Direction,
        pos: Position,
    ) -> Result<SchedClassifierLink, ProbeError> {
        let id = self.attach_id(name, target, dir, pos)?;
        self.classifier(name)?
            .take_link(id)
            .map_err(|e| ProbeError::Attach {
                program: name.to_string(),
                ifname: target.ifname.clone(),
                netns: target.netns.clone(),
                message: e.to_string(),
            })
    }

    fn attach_id(
        &mut self,
        name: &str,
        target: &Target,
        dir: Direction,
        pos: Position,
    ) -> Result<SchedClassifierLinkId, ProbeError> {
        self.load_program(name)?;
        self.cookies.insert(target.cookie, target.netns.clone());
        let prog = self.classifier(name)?;
        let order = match pos {
            Position::First => LinkOrder::first(),
            Position::Last => LinkOrder::last(),
        };
        let ifname = target.ifname.clone();
        netns::run_in(&target.netns, move || {
            prog.attach_with_options(&ifname, dir.attach_type(), TcAttachOptions::TcxOrder(order))
        })?
        .map_err(|e| ProbeError::Attach {
            program: name.to_string(),
            ifname: target.ifname.clone(),
            netns: target.netns.clone(),
            message: e.to_string(),
        })
    }

    /// Attaches program `name` to `target` and pins the TCX link at `pin`, so the
    /// attachment outlives this process (removing the pin file detaches it).
    pub fn attach_pinned(
        &mut self,
        name: &str,
        target: &Target,
        dir: Direction,
        pos: Position,
        pin: &std::path::Path,
    ) -> Result<(), ProbeError> {
        self.load_program(name)?;
        let prog = self.classifier(name)?;
        let order = match pos {
            Position::First => LinkOrder::first(),
            Position::Last => LinkOrder::last(),
        };
        let attach_err = |message: String| ProbeError::Attach {
            program: name.to_string(),
            ifname: target.ifname.clone(),
            netns: target.netns.clone(),
            message,
        };
        let ifname = target.ifname.clone();
        let id = netns::run_in(&target.netns, || {
            prog.attach_with_options(&ifname, dir.attach_type(), TcAttachOptions::TcxOrder(order))
        })?
        .map_err(|e| attach_err(e.to_string()))?;
        let link = prog.take_link(id).map_err(|e| attach_err(e.to_string()))?;
        let fd_link =
            aya::programs::links::FdLink::try_from(link).map_err(|e| attach_err(e.to_string()))?;
        fd_link
            .pin(pin)
            .map(|_| ())
            .map_err(|e| attach_err(format!("pin at {}: {e}", pin.display())))
    }

    /// Attaches an ingress/egress program pair to every target.
    pub fn attach_pair(
        &mut self,
        base: &str,
        targets: &[Target],
        pos: Position,
    ) -> Result<usize, ProbeError> {
        let mut n = 0;
        for t in targets {
            self.attach(&format!("{base}_ingress"), t, Direction::Ingress, pos)?;
            self.attach(&format!("{base}_egress"), t, Direction::Egress, pos)?;
            n += 2;
        }
        Ok(n)
    }

    pub fn netns_of_cookie(&self, cookie: u64) -> Option<&str> {
        self.cookies.get(&cookie).map(String::as_str)
    }
}
