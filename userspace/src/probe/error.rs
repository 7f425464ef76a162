/// Errors of loading and attaching eBPF programs; each names the program, interface and namespace.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot load vethscope's eBPF object: {0}")]
    Load(String),
    #[error("the eBPF object has no program {0}")]
    NoProgram(&'static str),
    #[error("the eBPF object has no map {0}")]
    NoMap(&'static str),
    #[error("the kernel rejected eBPF program {program}: {message}")]
    Verifier { program: String, message: String },
    #[error("cannot attach {program} to interface {ifname} in namespace {netns}: {message}")]
    Attach {
        program: String,
        ifname: String,
        netns: String,
        message: String,
    },
    #[error("cannot attach {program} to tracepoint {tracepoint}: {message}")]
    AttachTracepoint {
        program: &'static str,
        tracepoint: &'static str,
        message: String,
    },
    #[error("kernel BTF: {0}")]
    Btf(String),
    #[error("eBPF map {map}: {message}")]
    Map { map: String, message: String },
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error(transparent)]
    Inspect(#[from] crate::inspect::InspectError),
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NetlinkError),
}

impl ProbeError {
    pub(crate) fn map(map: &str, e: impl std::fmt::Display) -> Self {
        Self::Map {
            map: map.to_string(),
            message: e.to_string(),
        }
    }
}
