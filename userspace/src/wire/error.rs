use crate::{netlink::NetlinkError, netns::NetnsError, ovs::OvsError, topology::TopologyError};

/// Errors of making and removing labs. Each names the object, its namespace and the lab.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(
        "{object} already exists in namespace {netns} and is not part of lab {lab} (fix: pick another name, or remove it if it is a leftover)"
    )]
    Conflict {
        object: String,
        netns: String,
        lab: String,
    },
    #[error(
        "{object} belongs to lab {owner}, not to lab {lab} (fix: `vethscope down {owner}` or pick another name)"
    )]
    OwnedByOther {
        object: String,
        owner: String,
        lab: String,
    },
    #[error(
        "lab {lab} is already up with a different definition (fix: `vethscope down {lab}` first)"
    )]
    DifferentDefinition { lab: String },
    #[error(
        "lab {lab} was left half-made by an interrupted `up` (fix: `vethscope down {lab}`, then try again)"
    )]
    HalfMade { lab: String },
    #[error("lab {lab}: {source}")]
    Netlink { lab: String, source: NetlinkError },
    #[error("lab {lab}: {source}")]
    Netns { lab: String, source: NetnsError },
    #[error("lab {lab}: Open vSwitch: {source}")]
    Ovs { lab: String, source: OvsError },
    #[error("lab {lab}: {what}: {source}")]
    Io {
        lab: String,
        what: String,
        source: std::io::Error,
    },
    #[error("lab {lab}: could not remove everything:\n  - {}", errors.join("\n  - "))]
    Teardown { lab: String, errors: Vec<String> },
    #[error("lab {lab}: {message}")]
    Other { lab: String, message: String },
}
