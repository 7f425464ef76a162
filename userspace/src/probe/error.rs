use aya::{
    maps::MapError,
    pin::PinError,
    programs::{ProgramError, links::LinkError},
};

/// Errors of loading and attaching eBPF programs; each names the program, interface and
/// namespace. Messages do not repeat their source (see [`crate::errors`]).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot load vethscope's eBPF object")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("the eBPF object has no program {0}")]
    NoProgram(&'static str),
    #[error("the eBPF object has no map {0}")]
    NoMap(&'static str),
    #[error("eBPF program {program} is not of the expected type")]
    ProgramType {
        program: &'static str,
        source: Box<ProgramError>,
    },
    #[error("the kernel rejected eBPF program {program}")]
    Verifier {
        program: &'static str,
        source: Box<ProgramError>,
    },
    #[error("cannot attach {program} to interface {ifname} in namespace {netns}")]
    Attach {
        program: &'static str,
        ifname: String,
        netns: String,
        source: Box<ProgramError>,
    },
    #[error("cannot pin the link of {program} on interface {ifname} in namespace {netns}")]
    Link {
        program: &'static str,
        ifname: String,
        netns: String,
        source: Box<LinkError>,
    },
    #[error("cannot pin the link of {program} at {}", path.display())]
    Pin {
        program: &'static str,
        path: std::path::PathBuf,
        source: Box<PinError>,
    },
    #[error("cannot attach {program} to tracepoint {tracepoint}")]
    AttachTracepoint {
        program: &'static str,
        tracepoint: &'static str,
        source: Box<ProgramError>,
    },
    #[error("test run of {program}")]
    TestRun {
        program: &'static str,
        source: Box<ProgramError>,
    },
    #[error("cannot read the eBPF programs' log")]
    KernelLog(#[source] Box<aya_log::Error>),
    #[error("kernel BTF")]
    Btf(#[from] crate::kbtf::BtfError),
    #[error("cannot watch eBPF ring buffer {map}")]
    Ring {
        map: &'static str,
        source: std::io::Error,
    },
    #[error("eBPF map {0} cannot have a second handle (not a hash or array map)")]
    NotShareable(&'static str),
    #[error("cannot duplicate the fd of eBPF map {map}")]
    Dup {
        map: &'static str,
        source: std::io::Error,
    },
    #[error("eBPF map {map}")]
    Map {
        map: &'static str,
        source: Box<MapError>,
    },
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error(transparent)]
    Inspect(#[from] crate::inspect::InspectError),
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NetlinkError),
}

impl ProbeError {
    pub(crate) fn map(map: &'static str, source: MapError) -> Self {
        Self::Map {
            map,
            source: Box::new(source),
        }
    }

    pub(crate) fn ring(map: &'static str, source: std::io::Error) -> Self {
        Self::Ring { map, source }
    }
}
