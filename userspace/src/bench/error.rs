//! The one error type of `bench`: each variant names what was being measured.

use crate::{fastpath::FastpathError, netns::NetnsError, topology::TopologyError, wire::WireError};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{tool} is not installed (fix: install the Debian package `{package}`)")]
    MissingTool {
        tool: &'static str,
        package: &'static str,
    },
    #[error("unknown wiring '{name}' (known: {known})")]
    UnknownWiring { name: String, known: String },
    #[error("invalid bench settings: {0}")]
    Config(String),
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Fastpath(#[from] FastpathError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("lab {lab}: {message}")]
    Lab { lab: String, message: String },
    #[error("cannot start {what}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: iperf3 reported: {message}")]
    Iperf { what: String, message: String },
    #[error("{what}: cannot read iperf3's JSON output: {detail}")]
    IperfOutput { what: String, detail: String },
    #[error("{what} did not finish within {secs:.0} s")]
    Timeout { what: String, secs: f64 },
    #[error("{what}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: {detail}")]
    Probe { what: String, detail: String },
    #[error("interrupted")]
    Interrupted,
}

impl BenchError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        BenchError::Io {
            what: what.into(),
            source,
        }
    }
}
