use std::path::PathBuf;

use crate::errors::ErrorList;

/// Errors of the fast path, each naming the lab and, where it applies, the port.
/// Messages do not repeat their source (see [`crate::errors`]).
#[derive(Debug, thiserror::Error)]
pub enum FastpathError {
    #[error("lab {lab}: {reason}")]
    NotApplicable { lab: String, reason: String },
    #[error(transparent)]
    Inspect(Box<crate::inspect::InspectError>),
    #[error("lab {lab}")]
    Probe {
        lab: String,
        source: Box<crate::probe::ProbeError>,
    },
    #[error("lab {lab}")]
    Netlink {
        lab: String,
        source: Box<crate::netlink::NetlinkError>,
    },
    #[error("fault injected at fault point {point} ({})", super::fault::ENV)]
    Injected { point: String },
    #[error("lab {lab}: cannot take the lab's lock")]
    Lock {
        lab: String,
        source: Box<crate::wire::WireError>,
    },
    #[error("lab {lab}: Open vSwitch: no running Open vSwitch answers")]
    NoOvs { lab: String },
    #[error(
        "lab {lab}: Open vSwitch: port {ifname:?} of bridge {bridge} has a name that cannot be used in an OpenFlow match"
    )]
    OpenFlowName {
        lab: String,
        bridge: String,
        ifname: String,
    },
    #[error("lab {lab}: Open vSwitch")]
    Ovs {
        lab: String,
        source: crate::ovs::OvsError,
    },
    #[error("lab {lab}: cannot create {}", path.display())]
    PinDir {
        lab: String,
        path: PathBuf,
        source: Option<crate::safefs::SafeFsError>,
    },
    #[error("{} has no lab directory name", path.display())]
    PinDirName { path: PathBuf },
    #[error("lab {lab}: cannot enter namespace {netns}")]
    EnterNetns {
        lab: String,
        netns: String,
        source: crate::netns::NetnsError,
    },
    #[error("lab {lab}: cannot {what}")]
    Io {
        lab: String,
        what: String,
        source: std::io::Error,
    },
    #[error("while undoing")]
    Undo(#[source] Box<FastpathError>),
    #[error("lab {lab}: the fast path was not removed completely:{errors}")]
    Teardown { lab: String, errors: ErrorList },
}

impl From<crate::inspect::InspectError> for FastpathError {
    fn from(e: crate::inspect::InspectError) -> Self {
        Self::Inspect(Box::new(e))
    }
}

impl FastpathError {
    pub fn probe(lab: &str, source: crate::probe::ProbeError) -> Self {
        Self::Probe {
            lab: lab.to_string(),
            source: Box::new(source),
        }
    }

    pub fn netlink(lab: &str, source: crate::netlink::NetlinkError) -> Self {
        Self::Netlink {
            lab: lab.to_string(),
            source: Box::new(source),
        }
    }

    pub fn ovs(lab: &str, source: crate::ovs::OvsError) -> Self {
        Self::Ovs {
            lab: lab.to_string(),
            source,
        }
    }

    pub fn io(lab: &str, what: String, source: std::io::Error) -> Self {
        Self::Io {
            lab: lab.to_string(),
            what,
            source,
        }
    }

    /// The failures of a teardown, each once: a caller's own teardown takes them over
    /// instead of nesting this list in its own.
    pub fn into_list(self) -> ErrorList {
        match self {
            Self::Teardown { errors, .. } => errors,
            other => ErrorList::one(other),
        }
    }
}
