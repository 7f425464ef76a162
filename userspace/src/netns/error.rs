use nix::errno::Errno;

/// Errors of namespace handling; each names the namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("namespace {name} already exists")]
    Exists { name: String },
    #[error("namespace {name} does not exist")]
    Missing { name: String },
    #[error("cannot {what}: {errno}")]
    Sys { what: String, errno: Errno },
    #[error("cannot {what}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}
