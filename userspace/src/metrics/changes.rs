//! Whether the refresh loop of `serve` needs to list the links again.
//!
//! A full listing reads every namespace of the watched labs (a link dump and a cookie
//! each): ~0.1–0.3 s of CPU at 1,000 namespaces, every few seconds, to find nothing
//! new almost always. So each tick first looks, cheaply, at what a change would touch:
//! - the kernel's link announcements (`RTNLGRP_LINK`) of the host's namespace and of
//!   every namespace that has an id in it (`NETLINK_LISTEN_ALL_NSID`): a veth with one
//!   end on the host gives its namespace an id, so every star, bridge and OVS lab is
//!   covered — links made, deleted, renamed, moved or brought up and down;
//! - the entries of `/run/netns` (namespaces made or deleted, even with the same name)
//!   and of the lab state files (`up FILE` changing a lab, `down`);
//! - and, whatever they say, a full listing every [`FULL_LISTING_EVERY`], for changes
//!   none of these sees (a link between two namespaces that have no id on the host,
//!   an OVS port moved by `ovs-vsctl`).
//!
//! The netlink socket holds no reference on the other namespaces (a socket opened
//! inside each would keep a deleted namespace, and its veths, alive).

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::fs::MetadataExt,
    },
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// Longest time between two full listings, whatever the cheap checks say.
pub const FULL_LISTING_EVERY: Duration = Duration::from_secs(30);

pub struct Changes {
    /// Link announcements; `None` when the socket could not be made (then every tick
    /// lists, as before).
    links: Option<OwnedFd>,
    /// The directories looked at, and their fingerprint at the last listing.
    watched: Vec<PathBuf>,
    dirs: Option<u64>,
    last_listing: Option<Instant>,
    /// The last listing left something to retry (a lab it could not read, a link whose
    /// attach failed).
    retry: bool,
}

impl Changes {
    pub fn new() -> Self {
        let links = link_announcements().map_or_else(
            |e| {
                tracing::warn!(
                    "cannot listen for link changes ({e}); the links are listed on every refresh"
                );
                None
            },
            Some,
        );
        Self {
            links,
            watched: vec![
                Path::new(crate::netns::NETNS_RUN_DIR).to_path_buf(),
                Path::new(crate::wire::RUN_DIR).join("labs"),
            ],
            dirs: None,
            last_listing: None,
            retry: false,
        }
    }

    /// Whether to list now. Called before listing: what happens during the listing
    /// stays queued for the next tick.
    pub fn due(&mut self) -> bool {
        let announced = match &self.links {
            Some(fd) => drain(fd),
            None => true,
        };
        let dirs = fingerprint(&self.watched);
        let moved = self.dirs != Some(dirs);
        self.dirs = Some(dirs);
        let stale = self
            .last_listing
            .is_none_or(|t| t.elapsed() >= FULL_LISTING_EVERY);
        let due = announced || moved || stale || self.retry;
        if due {
            tracing::debug!(
                "listing the links (announced {announced}, directories {moved}, periodic {stale}, retry {})",
                self.retry
            );
            self.last_listing = Some(Instant::now());
            self.retry = false;
        }
        due
    }

    /// The listing just made left something to try again at the next tick.
    pub fn retry(&mut self) {
        self.retry = true;
    }
}

/// A non-blocking netlink socket on `RTNLGRP_LINK` that also hears every namespace
/// with an id in this one.
fn link_announcements() -> std::io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the fd is owned right away.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh fd nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads one c_int from a live local.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_NETLINK,
            libc::NETLINK_LISTEN_ALL_NSID,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: an all-zero sockaddr_nl is valid; family and groups are set below.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = libc::RTMGRP_LINK as u32;
    // SAFETY: bind(2) with a sockaddr_nl of the stated size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Reads every queued announcement; whether there was any (an overflowed queue,
/// ENOBUFS, counts as one: announcements were lost).
fn drain(fd: &OwnedFd) -> bool {
    let mut buf = vec![0u8; 32 * 1024];
    let mut any = false;
    let mut messages = 0usize;
    // Bounded: a host changing links faster than this loop reads is "changed" anyway.
    for _ in 0..4096 {
        // SAFETY: recv(2) into a live buffer of the stated length.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            if !any && n as usize >= 16 + 16 {
                // nlmsghdr (type at 4) then ifinfomsg (index at 4): for the debug log.
                let kind = u16::from_ne_bytes([buf[4], buf[5]]);
                let ifindex = i32::from_ne_bytes([buf[20], buf[21], buf[22], buf[23]]);
                tracing::debug!("link announcement: type {kind}, ifindex {ifindex}");
            }
            any = true;
            messages += 1;
            continue;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) => {
                if any {
                    tracing::debug!("{messages} link announcements since the last look");
                }
                return any;
            }
            Some(libc::EINTR) => continue,
            Some(libc::ENOBUFS) => any = true,
            _ => {
                tracing::debug!("link announcements: {e}");
                return true;
            }
        }
    }
    true
}

/// What the directories of namespaces and of lab states hold: names, and per entry
/// its inode and change time (a namespace made again under the same name is another
/// nsfs inode and a new mount; a state file is replaced or rewritten). Symlinks are
/// not followed.
fn fingerprint(watched: &[PathBuf]) -> u64 {
    let mut h = DefaultHasher::new();
    for dir in watched {
        let Ok(meta) = std::fs::symlink_metadata(dir) else {
            0u8.hash(&mut h);
            continue;
        };
        (meta.ino(), meta.mtime(), meta.mtime_nsec()).hash(&mut h);
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut seen: Vec<(std::ffi::OsString, u64, i64, i64, u64)> = entries
            .flatten()
            .map(|e| {
                let m = std::fs::symlink_metadata(e.path()).ok();
                (
                    e.file_name(),
                    m.as_ref().map_or(0, |m| m.ino()),
                    m.as_ref().map_or(0, |m| m.ctime()),
                    m.as_ref().map_or(0, |m| m.ctime_nsec()),
                    m.as_ref().map_or(0, |m| m.size()),
                )
            })
            .collect();
        seen.sort_unstable();
        seen.hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink socket bound to no group: it hears nothing.
    fn deaf_socket() -> OwnedFd {
        // SAFETY: socket(2) with constant arguments; owned right away.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        assert!(raw >= 0, "{}", std::io::Error::last_os_error());
        // SAFETY: a fresh fd nothing else owns.
        unsafe { OwnedFd::from_raw_fd(raw) }
    }

    /// A directory of this test alone, removed at the end.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn changes(dir: &Path, links: Option<OwnedFd>) -> Changes {
        Changes {
            links,
            watched: vec![dir.to_path_buf()],
            dirs: None,
            last_listing: None,
            retry: false,
        }
    }

    #[test]
    fn without_the_socket_every_tick_lists() {
        let dir = Scratch(
            std::env::temp_dir().join(format!("vethscope-changes-a-{}", std::process::id())),
        );
        std::fs::create_dir_all(&dir.0).expect("scratch dir");
        let mut c = changes(&dir.0, None);
        assert!(c.due(), "nothing listed yet");
        assert!(c.due(), "no announcements to go by: list");
    }

    #[test]
    fn quiet_ticks_list_only_on_a_new_entry_a_retry_or_the_period() {
        let dir = Scratch(
            std::env::temp_dir().join(format!("vethscope-changes-b-{}", std::process::id())),
        );
        std::fs::create_dir_all(&dir.0).expect("scratch dir");
        let mut c = changes(&dir.0, Some(deaf_socket()));
        assert!(c.due(), "nothing listed yet");
        assert!(!c.due(), "nothing changed");
        // File times come from a coarse clock (a tick of 1–10 ms): let one pass so a
        // change is not hidden in the same tick as the look before it.
        let tick = || std::thread::sleep(Duration::from_millis(20));
        tick();
        std::fs::write(dir.0.join("ns1"), b"").expect("an entry");
        assert!(c.due(), "an entry appeared");
        assert!(!c.due(), "once");
        tick();
        std::fs::remove_file(dir.0.join("ns1")).expect("remove it");
        std::fs::write(dir.0.join("ns1"), b"").expect("the same name again");
        assert!(c.due(), "the same name made again is another inode");
        c.retry();
        assert!(c.due(), "a retry lists");
        assert!(!c.due(), "once");
        c.last_listing = Some(Instant::now() - FULL_LISTING_EVERY);
        assert!(c.due(), "the periodic full listing");
    }
}
