/// Errors of the fast path, each naming the lab and, where it applies, the port.
#[derive(Debug, thiserror::Error)]
pub enum FastpathError {
    #[error("lab {lab}: {reason}")]
    NotApplicable { lab: String, reason: String },
    #[error(transparent)]
    Inspect(Box<crate::inspect::InspectError>),
    #[error("lab {lab}: {source}")]
    Probe {
        lab: String,
        source: Box<crate::probe::ProbeError>,
    },
    #[error("lab {lab}: eBPF map {map}: {message}")]
    Map {
        lab: String,
        map: String,
        message: String,
    },
    #[error("lab {lab}: {source}")]
    Netlink {
        lab: String,
        source: Box<crate::netlink::NetlinkError>,
    },
    #[error("fault injected at fault point {point} ({})", super::fault::ENV)]
    Injected { point: String },
    #[error("lab {lab}: cannot take the lab's lock: {message}")]
    Lock { lab: String, message: String },
    #[error("lab {lab}: Open vSwitch: {message}")]
    Ovs { lab: String, message: String },
    #[error("lab {lab}: cannot {what}: {source}")]
    Io {
        lab: String,
        what: String,
        source: std::io::Error,
    },
    #[error("lab {lab}: the fast path was not removed completely:\n  - {}", errors.join("\n  - "))]
    Teardown { lab: String, errors: Vec<String> },
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

    pub fn map(lab: &str, map: &str, e: impl std::fmt::Display) -> Self {
        Self::Map {
            lab: lab.to_string(),
            map: map.to_string(),
            message: e.to_string(),
        }
    }

    pub fn io(lab: &str, what: String, source: std::io::Error) -> Self {
        Self::Io {
            lab: lab.to_string(),
            what,
            source,
        }
    }
}
