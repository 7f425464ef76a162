//! Named network namespaces (`/run/netns/NAME`, compatible with `ip netns`), and
//! running code inside one.
//!
//! Namespaces are per thread: code that must run inside a namespace gets a dedicated
//! OS thread that calls `setns` and exits afterwards, so no tokio worker ever changes
//! namespace.

mod error;
pub mod pool;
mod sysctl;

use std::{
    fs::File,
    os::fd::{AsFd, OwnedFd},
    path::{Path, PathBuf},
};

use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, setns, unshare},
};

pub use error::NetnsError;
pub use sysctl::{
    iface_key_path, key_path, read_sysctl, write_sysctl, write_sysctl_here, write_sysctl_in,
};

use crate::topology::HOST;

pub const NETNS_RUN_DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

pub fn exists(name: &str) -> bool {
    name == HOST || path(name).exists()
}

/// Names of all named namespaces.
pub fn list() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_RUN_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// False for a name whose file exists but holds no namespace: what `create` leaves
/// when it is killed between creating the file and bind-mounting the namespace on it.
pub fn is_mounted(name: &str) -> bool {
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    let p = path(name);
    // statfs follows symlinks; a symlink is never a namespace of ours.
    !std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink())
        && nix::sys::statfs::statfs(&p).is_ok_and(|s| s.filesystem_type().0 == NSFS_MAGIC)
}

/// Opens a namespace for `setns` or `IFLA_NET_NS_FD`; `host` is our own namespace.
pub fn open(name: &str) -> Result<OwnedFd, NetnsError> {
    let p = if name == HOST {
        PathBuf::from("/proc/self/ns/net")
    } else {
        path(name)
    };
    File::open(&p)
        .map(OwnedFd::from)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => NetnsError::Missing {
                name: name.to_string(),
            },
            _ => NetnsError::Io {
                what: format!("open namespace {name}"),
                source,
            },
        })
}

/// The namespace's inode number (what `ls -L -i /run/netns/NAME` and `lsns` show).
pub fn inode(name: &str) -> Result<u64, NetnsError> {
    use std::os::unix::fs::MetadataExt;
    let p = if name == HOST {
        PathBuf::from("/proc/self/ns/net")
    } else {
        path(name)
    };
    std::fs::metadata(&p)
        .map(|m| m.ino())
        .map_err(|source| NetnsError::Io {
            what: format!("stat namespace {name}"),
            source,
        })
}

/// Runs `f` on a fresh OS thread that has entered namespace `name`.
pub fn run_in<R: Send>(name: &str, f: impl FnOnce() -> R + Send) -> Result<R, NetnsError> {
    let fd = open(name)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::Sys {
                what: format!("enter namespace {name}"),
                errno: e,
            })?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| {
            Err(NetnsError::Io {
                what: format!("thread inside namespace {name}"),
                source: std::io::Error::other("panicked"),
            })
        })
    })
}

/// Creates `/run/netns/NAME` holding a new, empty network namespace, as `ip netns add`.
pub fn create(name: &str) -> Result<(), NetnsError> {
    std::thread::scope(|s| {
        s.spawn(|| create_here(name)).join().unwrap_or_else(|_| {
            Err(NetnsError::Io {
                what: format!("create namespace {name}"),
                source: std::io::Error::other("thread panicked"),
            })
        })
    })
}

/// Like [`create`], but the calling thread moves into the new namespace and stays
/// there: only for threads of [`pool::map`] (or others that exit afterwards).
pub fn create_here(name: &str) -> Result<(), NetnsError> {
    prepare_run_dir()?;
    let target = path(name);
    // create_new: fail if it exists, so we never take over someone else's namespace.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => NetnsError::Exists {
                name: name.to_string(),
            },
            _ => NetnsError::Io {
                what: format!("create {}", target.display()),
                source,
            },
        })?;
    let bind = unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetnsError::Sys {
            what: format!("create namespace {name}"),
            errno: e,
        })
        .and_then(|()| {
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| NetnsError::Sys {
                what: format!("bind-mount namespace {name}"),
                errno: e,
            })
        });
    if let Err(e) = bind {
        let _ = std::fs::remove_file(&target);
        return Err(e);
    }
    Ok(())
}

/// Moves the calling thread into namespace `name` (`host` = the process's own): only
/// for threads of [`pool::map`] (or others that exit afterwards).
pub fn enter(name: &str) -> Result<(), NetnsError> {
    let fd = open(name)?;
    setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::Sys {
        what: format!("enter namespace {name}"),
        errno: e,
    })
}

/// Deletes a named namespace (its interfaces go with it). Absent is success.
pub fn delete(name: &str) -> Result<(), NetnsError> {
    let target = path(name);
    let Ok(meta) = std::fs::symlink_metadata(&target) else {
        return Ok(());
    };
    // A symlink planted in /run/netns is never followed: unmounting through it could
    // detach any mount of the host. Only the link itself goes.
    if meta.file_type().is_symlink() {
        return std::fs::remove_file(&target).map_err(|source| NetnsError::Io {
            what: format!("remove {}", target.display()),
            source,
        });
    }
    match umount2(&target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(NetnsError::Sys {
                what: format!("unmount namespace {name}"),
                errno: e,
            });
        }
    }
    match std::fs::remove_file(&target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetnsError::Io {
            what: format!("remove {}", target.display()),
            source,
        }),
    }
}

/// Makes /run/netns a shared mount point (once per process: `up` of a large lab calls
/// this for every namespace), as iproute2 does, so namespaces mounted here
/// are visible to other mount namespaces (and `ip netns` treats them as its own).
fn prepare_run_dir() -> Result<(), NetnsError> {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if DONE.get().is_some() {
        return Ok(());
    }
    prepare_run_dir_once()?;
    let _ = DONE.set(());
    Ok(())
}

fn prepare_run_dir_once() -> Result<(), NetnsError> {
    let dir = Path::new(NETNS_RUN_DIR);
    std::fs::create_dir_all(dir).map_err(|source| NetnsError::Io {
        what: format!("create {NETNS_RUN_DIR}"),
        source,
    })?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(None::<&str>, dir, Some("none"), shared, None::<&str>) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then make it shared.
            mount(
                Some(dir),
                dir,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .and_then(|()| mount(None::<&str>, dir, Some("none"), shared, None::<&str>))
            .map_err(|e| NetnsError::Sys {
                what: format!("make {NETNS_RUN_DIR} a shared mount"),
                errno: e,
            })
        }
        Err(e) => Err(NetnsError::Sys {
            what: format!("make {NETNS_RUN_DIR} a shared mount"),
            errno: e,
        }),
    }
}

/// The namespace cookie (`SO_NETNS_COOKIE`), which eBPF programs see through
/// `bpf_get_netns_cookie`; read from a socket opened inside the namespace.
pub fn cookie(name: &str) -> Result<u64, NetnsError> {
    run_in(name, socket_netns_cookie)?.map_err(|source| NetnsError::Io {
        what: format!("read the cookie of namespace {name}"),
        source,
    })
}

/// The cookie of the calling thread's namespace (a thread of [`pool::map`] that
/// entered one): tells a namespace from a later one of the same name.
pub fn cookie_here() -> std::io::Result<u64> {
    socket_netns_cookie()
}

fn socket_netns_cookie() -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    // Any socket carries its namespace's cookie; an unbound AF_UNIX one needs no
    // address, so it works even while lo is down.
    let fd: OwnedFd = std::os::unix::net::UnixDatagram::unbound()?.into();
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cookie`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cookie)
}
