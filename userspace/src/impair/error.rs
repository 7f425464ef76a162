/// Errors of impairments and link state, each naming the lab and, where it applies,
/// the interface end and its namespace.
#[derive(Debug, thiserror::Error)]
pub enum ImpairError {
    #[error("lab {lab} is not up (fix: `vethscope up` it first)")]
    NoLab { lab: String },
    #[error("{message}")]
    Invalid { message: String },
    #[error("lab {lab}: interface {ifname} in namespace {netns}: {message}")]
    End {
        lab: String,
        netns: String,
        ifname: String,
        message: String,
    },
    #[error(
        "delay and jitter need the netem queueing discipline (sch_netem), which this kernel has neither built in nor as a module; a kernel built with CONFIG_NET_SCH_NETEM (any stock distribution kernel, e.g. Debian's linux-image) provides it — nothing was changed"
    )]
    NoNetem,
    #[error(transparent)]
    Inspect(Box<crate::inspect::InspectError>),
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NetlinkError),
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error("lab {lab}: interface {ifname} in namespace {netns}")]
    Spec {
        lab: String,
        netns: String,
        ifname: String,
        source: super::spec::SpecError,
    },
    #[error("lab {lab}")]
    Probe {
        lab: String,
        source: Box<crate::probe::ProbeError>,
    },
    #[error("lab {lab}")]
    Fs {
        lab: String,
        source: crate::safefs::SafeFsError,
    },
    #[error("lab {lab}: cannot {what}")]
    Io {
        lab: String,
        what: String,
        source: std::io::Error,
    },
    #[error(
        "lab {lab}: record {path} is unreadable ({error}) (fix: remove it; `vethscope down {lab}` does)"
    )]
    Record {
        lab: String,
        path: String,
        /// Shown inside the message, before the fix: not a `#[source]`, so the chain
        /// does not print it again.
        error: serde_json::Error,
    },
    #[error("lab {lab}: impairments were not removed completely:{errors}")]
    Teardown {
        lab: String,
        errors: crate::errors::ErrorList,
    },
}

impl From<crate::inspect::InspectError> for ImpairError {
    fn from(e: crate::inspect::InspectError) -> Self {
        Self::Inspect(Box::new(e))
    }
}

impl ImpairError {
    /// The failures of a teardown, each once: a caller's own teardown takes them over
    /// instead of nesting this list in its own.
    pub fn into_list(self) -> crate::errors::ErrorList {
        match self {
            Self::Teardown { errors, .. } => errors,
            other => crate::errors::ErrorList::one(other),
        }
    }

    pub fn io(lab: &str, what: String, source: std::io::Error) -> Self {
        Self::Io {
            lab: lab.to_string(),
            what,
            source,
        }
    }

    pub fn probe(lab: &str, source: crate::probe::ProbeError) -> Self {
        Self::Probe {
            lab: lab.to_string(),
            source: Box::new(source),
        }
    }

    pub fn end(lab: &str, netns: &str, ifname: &str, message: impl Into<String>) -> Self {
        Self::End {
            lab: lab.to_string(),
            netns: netns.to_string(),
            ifname: ifname.to_string(),
            message: message.into(),
        }
    }
}
