//! Errors of the topology family: one sentence each, naming file, line, column,
//! the object and its namespace, and the fix when we know it.

use std::fmt;

/// Where in which file an object was written, and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// e.g. "interface veth0 in namespace ns1", "bridge br0", "namespace ns2".
    pub object: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.object
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read topology file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("'{spec}' is neither a file nor a built-in scenario (built-ins: {builtins})")]
    UnknownSpec { spec: String, builtins: String },
    #[error("{file}:{line}:{col}: YAML syntax error: {message}")]
    Syntax {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{at}: {message}{}", hint.as_ref().map(|h| format!(" (fix: {h})")).unwrap_or_default())]
    Invalid {
        at: Location,
        message: String,
        hint: Option<String>,
    },
}
