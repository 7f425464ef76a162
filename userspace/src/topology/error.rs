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
    #[error("cannot read topology file {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("'{spec}' is neither a file nor a built-in scenario (built-ins: {builtins})")]
    UnknownSpec { spec: String, builtins: String },
    #[error("{file}:{line}:{col}: YAML syntax error: {}", one_line(message))]
    Syntax {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{}", one_line(&format!("{at}: {message}{}", hint.as_ref().map(|h| format!(" (fix: {h})")).unwrap_or_default())))]
    Invalid {
        at: Location,
        message: String,
        hint: Option<String>,
    },
    /// Every problem of one file, one per line, in file order.
    #[error("{}", list(.0))]
    Many(Vec<TopologyError>),
}

/// Names from a hostile file may hold control characters (a newline, a terminal
/// escape): shown escaped, so every error stays one line of plain text.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Errors shown at most in one run; a file with more is mostly one mistake repeated.
const SHOWN_MAX: usize = 50;

fn list(errors: &[TopologyError]) -> String {
    let mut lines: Vec<String> = errors
        .iter()
        .take(SHOWN_MAX)
        .map(ToString::to_string)
        .collect();
    if errors.len() > SHOWN_MAX {
        lines.push(format!("... and {} more errors", errors.len() - SHOWN_MAX));
    }
    lines.join("\n")
}

impl TopologyError {
    /// `Ok` for no errors, the error itself for one, [`TopologyError::Many`] for more.
    pub fn from_list(mut errors: Vec<TopologyError>) -> Result<(), TopologyError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => {
                // Flatten, then order by position so the list reads like the file.
                let mut flat = Vec::new();
                for e in errors {
                    match e {
                        TopologyError::Many(inner) => flat.extend(inner),
                        e => flat.push(e),
                    }
                }
                flat.sort_by_key(|e| e.position());
                Err(TopologyError::Many(flat))
            }
        }
    }

    /// Line and column, for ordering (errors without a position come first).
    pub fn position(&self) -> (usize, usize) {
        match self {
            TopologyError::Syntax { line, col, .. } => (*line, *col),
            TopologyError::Invalid { at, .. } => (at.line, at.col),
            _ => (0, 0),
        }
    }

    /// Every single error (a [`TopologyError::Many`] flattened).
    pub fn all(&self) -> Vec<&TopologyError> {
        match self {
            TopologyError::Many(inner) => inner.iter().collect(),
            e => vec![e],
        }
    }
}
