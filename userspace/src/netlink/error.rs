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
    #[error("cannot {op} {object} in namespace {netns}: {reason}")]
    Op {
        op: &'static str,
        object: String,
        netns: String,
        reason: String,
        errno: Option<i32>,
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
        let errno = errno_of(&e);
        let reason = match errno {
            Some(libc::EEXIST) => "it already exists".to_string(),
            Some(n) => std::io::Error::from_raw_os_error(n).to_string(),
            None => e.to_string(),
        };
        NetlinkError::Op {
            op,
            object,
            netns: netns.to_string(),
            reason,
            errno,
        }
    }

    /// A kernel NACK with its positive errno, as a batch collects it.
    pub fn from_errno(op: &'static str, object: String, netns: &str, errno: i32) -> Self {
        let reason = match errno {
            libc::EEXIST => "it already exists".to_string(),
            n => std::io::Error::from_raw_os_error(n).to_string(),
        };
        NetlinkError::Op {
            op,
            object,
            netns: netns.to_string(),
            reason,
            errno: Some(errno),
        }
    }

    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Op { errno, .. } => *errno,
            _ => None,
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
