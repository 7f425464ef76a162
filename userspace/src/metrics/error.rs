/// Errors of the Prometheus exporter; each is one sentence that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(
        "cannot listen on {addr}: {} (fix: {flag} 127.0.0.1:PORT)",
        short_reason(error)
    )]
    Listen {
        addr: std::net::SocketAddr,
        /// Shown (shortened) inside the message, before the fix: not a `#[source]`.
        error: std::io::Error,
        /// The option that sets the address (`--listen` for serve, `--metrics` for trace).
        flag: &'static str,
    },
    #[error(transparent)]
    Probe(#[from] crate::probe::ProbeError),
    #[error("eBPF map {map}")]
    Map {
        map: &'static str,
        source: Box<aya::maps::MapError>,
    },
    #[error("metric {name}")]
    Prometheus {
        name: String,
        source: prometheus::Error,
    },
    #[error("cannot start the metrics server")]
    Io(#[from] std::io::Error),
}

impl MetricsError {
    pub(crate) fn map(map: &'static str, source: aya::maps::MapError) -> Self {
        MetricsError::Map {
            map,
            source: Box::new(source),
        }
    }

    pub(crate) fn prometheus(name: &str, source: prometheus::Error) -> Self {
        MetricsError::Prometheus {
            name: name.to_string(),
            source,
        }
    }

    pub(crate) fn listen(
        addr: std::net::SocketAddr,
        flag: &'static str,
        error: std::io::Error,
    ) -> Self {
        MetricsError::Listen { addr, error, flag }
    }
}

/// A bind error as a short reason ("address in use") rather than the OS's wording.
fn short_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "address in use".to_string(),
        std::io::ErrorKind::AddrNotAvailable => {
            "no interface of this host has that address".to_string()
        }
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}
