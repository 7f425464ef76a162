/// Errors of the Prometheus exporter; each is one sentence that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot listen on {addr}: {reason} (fix: {flag} 127.0.0.1:PORT)")]
    Listen {
        addr: std::net::SocketAddr,
        reason: String,
        /// The option that sets the address (`--listen` for serve, `--metrics` for trace).
        flag: &'static str,
    },
    #[error(transparent)]
    Probe(#[from] crate::probe::ProbeError),
    #[error("eBPF map {map}: {message}")]
    Map { map: String, message: String },
    #[error("cannot start the metrics server")]
    Io(#[from] std::io::Error),
}

impl MetricsError {
    pub(crate) fn map(map: &str, e: impl std::fmt::Display) -> Self {
        MetricsError::Map {
            map: map.to_string(),
            message: e.to_string(),
        }
    }

    /// A bind error as a short reason ("address in use") rather than the OS's wording.
    pub(crate) fn listen(
        addr: std::net::SocketAddr,
        flag: &'static str,
        e: &std::io::Error,
    ) -> Self {
        let reason = match e.kind() {
            std::io::ErrorKind::AddrInUse => "address in use".to_string(),
            std::io::ErrorKind::AddrNotAvailable => {
                "no interface of this host has that address".to_string()
            }
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        MetricsError::Listen { addr, reason, flag }
    }
}
