/// Netlink errors, each naming the object and the namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a netlink socket in namespace {netns}")]
    Socket {
        netns: String,
        source: std::io::Error,
    },
    #[error("interface {name} does not exist in namespace {netns}")]
    Missing { name: String, netns: String },
    #[error("cannot {op} {object} in namespace {netns}")]
    Op {
        op: &'static str,
        object: String,
        netns: String,
        source: OpFailure,
    },
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
}

impl NetlinkError {
    pub fn from_rtnetlink(
        op: &'static str,
        object: String,
        netns: &str,
        e: rtnetlink::Error,
    ) -> Self {
        let source = match errno_of(&e) {
            Some(n) => OpFailure::of_errno(n),
            None => OpFailure::Netlink(Box::new(e)),
        };
        NetlinkError::Op {
            op,
            object,
            netns: netns.to_string(),
            source,
        }
    }

    /// A kernel NACK with its positive errno, as a batch collects it.
    pub fn from_errno(op: &'static str, object: String, netns: &str, errno: i32) -> Self {
        NetlinkError::Op {
            op,
            object,
            netns: netns.to_string(),
            source: OpFailure::of_errno(errno),
        }
    }

    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Op { source, .. } => source.errno(),
            _ => None,
        }
    }
}

/// Why the kernel refused a request, kept typed so callers can match on it.
#[derive(Debug, thiserror::Error)]
pub enum OpFailure {
    #[error("it already exists")]
    Exists,
    /// An errno from the kernel, or from the socket (sending or receiving).
    #[error(transparent)]
    Kernel(std::io::Error),
    /// rtnetlink failed without an errno (an unexpected answer, a bad attribute).
    #[error(transparent)]
    Netlink(Box<rtnetlink::Error>),
}

impl OpFailure {
    fn of_errno(errno: i32) -> Self {
        match errno {
            libc::EEXIST => OpFailure::Exists,
            n => OpFailure::Kernel(std::io::Error::from_raw_os_error(n)),
        }
    }

    /// The positive errno, when there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            OpFailure::Exists => Some(libc::EEXIST),
            OpFailure::Kernel(e) => e.raw_os_error(),
            OpFailure::Netlink(_) => None,
        }
    }
}

/// The positive errno of a kernel NACK.
pub fn errno_of(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}
