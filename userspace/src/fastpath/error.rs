/// Errors of the fast path, each naming the lab and the port.
#[derive(Debug, thiserror::Error)]
pub enum FastpathError {
    #[error("lab {0}: the fast path is not built yet")]
    NotReady(String),
}
