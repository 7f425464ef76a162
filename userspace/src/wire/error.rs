use crate::{
    errors::ErrorList, netlink::NetlinkError, netns::NetnsError, ovs::OvsError,
    topology::TopologyError,
};

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
    #[error("lab {lab}")]
    Netlink { lab: String, source: NetlinkError },
    #[error("lab {lab}")]
    Netns { lab: String, source: NetnsError },
    #[error("lab {lab}: Open vSwitch")]
    Ovs { lab: String, source: OvsError },
    #[error("lab {lab}: {what}")]
    Fs {
        lab: String,
        what: String,
        source: crate::safefs::SafeFsError,
    },
    #[error("lab {lab}: {what}")]
    Io {
        lab: String,
        what: String,
        source: std::io::Error,
    },
    #[error("lab {lab}: could not remove everything:{errors}")]
    Teardown { lab: String, errors: ErrorList },
    #[error(
        "lab {lab}: the change stopped at `{action}`; the lab is partly changed (fix: remove the cause and run `vethscope up` with a file again to finish, or `vethscope down {lab}`)"
    )]
    ChangeStopped {
        lab: String,
        action: String,
        source: Box<WireError>,
    },
    #[error(
        "lab {lab}: {object} does not carry the lab's mark, so the change leaves it alone (fix: remove it by hand if it is a leftover)"
    )]
    NotMarked { lab: String, object: String },
    #[error("lab {lab}: impairment")]
    Impair {
        lab: String,
        source: Box<crate::impair::ImpairError>,
    },
    #[error("lab {lab}")]
    BadName {
        lab: String,
        source: crate::topology::names::NameError,
    },
    #[error("lab {lab}: cannot encode the state")]
    EncodeState {
        lab: String,
        source: serde_json::Error,
    },
    #[error("lab {lab}")]
    Inspect {
        lab: String,
        source: Box<crate::inspect::InspectError>,
    },
    #[error("lab {lab}: namespace {netns} was not opened before use")]
    NotOpened { lab: String, netns: String },
    #[error("lab {lab}: bridge {bridge} was not made before its port {port}")]
    BridgeNotMade {
        lab: String,
        bridge: String,
        port: String,
    },
    #[error("lab {lab}: a worker thread failed while holding a netlink socket")]
    Poisoned { lab: String },
}
