//! The sysctls that decide whether a packet is forwarded, answered or dropped, read
//! inside each lab namespace (one thread per namespace reads them all).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::netns::{self, NetnsError};

/// Namespace-wide keys `show` reports (full sysctl names).
pub const NAMESPACE_KEYS: &[&str] = &[
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.all.accept_local",
    "net.ipv4.conf.all.arp_ignore",
    "net.ipv4.conf.all.arp_filter",
    "net.ipv4.conf.all.arp_announce",
    "net.ipv4.conf.default.forwarding",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.conf.default.accept_local",
    "net.ipv4.conf.default.arp_ignore",
    "net.ipv4.conf.default.arp_filter",
    "net.ipv4.conf.default.arp_announce",
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.conf.default.forwarding",
];

/// Per-interface keys, as a topology file writes them (`ipv4.` may be left out there).
pub const INTERFACE_KEYS: &[&str] = &[
    "ipv4.forwarding",
    "ipv4.rp_filter",
    "ipv4.accept_local",
    "ipv4.arp_ignore",
    "ipv4.arp_filter",
    "ipv4.arp_announce",
    "ipv6.forwarding",
    "ipv6.disable_ipv6",
];

fn ns_key_path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}

/// `net.ipv4.conf.IF.KEY` for `ipv4.KEY`; the interface name stays whole.
pub fn iface_path(ifname: &str, key: &str) -> PathBuf {
    let (family, k) = key.split_once('.').unwrap_or(("ipv4", key));
    netns::iface_key_path(family, ifname, k)
}

/// The key an interface inherits from at creation: `net.ipv4.conf.default.KEY`.
pub fn default_key_of(iface_key: &str) -> String {
    let (family, k) = iface_key.split_once('.').unwrap_or(("ipv4", iface_key));
    format!("net.{family}.conf.default.{k}")
}

fn read(path: &PathBuf) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The namespace-wide keys of the calling thread's namespace. `/proc/sys/net` is opened
/// once and each key relative to it (`openat`), read with one `read` into a small
/// buffer: three system calls per key instead of a path walk through /proc/sys and a
/// `statx` for each (`show` of 1,000 namespaces reads 15,000 of them).
pub(super) fn namespace_keys_here() -> BTreeMap<String, String> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut out = BTreeMap::new();
    // SAFETY: open(2) of a constant path; the result is checked before use.
    let raw = unsafe {
        libc::open(
            c"/proc/sys/net".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return out;
    }
    // SAFETY: a fresh descriptor we own.
    let dir = unsafe { OwnedFd::from_raw_fd(raw) };
    for key in NAMESPACE_KEYS {
        // Constant keys: "net.ipv4.conf.all.rp_filter" → "ipv4/conf/all/rp_filter".
        let rel = key.strip_prefix("net.").unwrap_or(key).replace('.', "/");
        let Ok(rel) = std::ffi::CString::new(rel) else {
            continue;
        };
        // SAFETY: openat(2) relative to our directory fd, with a NUL-terminated path.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                rel.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            )
        };
        if fd < 0 {
            continue;
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut buf = [0u8; 64];
        // SAFETY: reading into our own buffer of the given length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            let v = String::from_utf8_lossy(&buf[..n as usize])
                .trim()
                .to_string();
            out.insert((*key).to_string(), v);
        }
    }
    out
}

/// Values read in one namespace: namespace-wide keys, and per interface name.
#[derive(Debug, Default)]
pub struct Readings {
    pub namespace: BTreeMap<String, String>,
    pub interfaces: BTreeMap<String, BTreeMap<String, String>>,
}

pub(super) fn read_here(ifnames: &[String], with_namespace_keys: bool) -> Readings {
    let mut r = Readings::default();
    if with_namespace_keys {
        r.namespace = namespace_keys_here();
    }
    for ifname in ifnames {
        let mut m = BTreeMap::new();
        for key in INTERFACE_KEYS {
            // Missing files (IPv6 disabled, or an interface without IP config) are left out.
            if let Some(v) = read(&iface_path(ifname, key)) {
                m.insert((*key).to_string(), v);
            }
        }
        r.interfaces.insert(ifname.clone(), m);
    }
    r
}

/// Reads the namespace-wide keys (unless `netns` is the root namespace, which is not
/// the lab's) and the interface keys of `ifnames`, on one thread inside `netns`.
pub fn read_in(netns: &str, ifnames: &[String]) -> Result<Readings, NetnsError> {
    let with_ns = netns != crate::topology::HOST;
    netns::run_in(netns, || read_here(ifnames, with_ns))
}

/// The namespace-wide values of a brand-new namespace on this host (what `up` starts
/// from): an anonymous namespace made on a thread, read, and gone when the thread ends.
/// `save` writes only the values a lab changed from these.
pub fn fresh_namespace_values() -> Result<BTreeMap<String, String>, NetnsError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                NetnsError::Sys {
                    what: "create a scratch namespace".into(),
                    errno: e,
                }
            })?;
            Ok(read_here(&[], true).namespace)
        })
        .join()
        .unwrap_or_else(|_| {
            Err(NetnsError::Io {
                what: "scratch namespace thread".into(),
                source: std::io::Error::other("panicked"),
            })
        })
    })
}

/// What a new interface in `netns` gets for each of [`INTERFACE_KEYS`]: the values of
/// `net.ipv4.conf.default.KEY` (and ipv6), keyed like the interface keys.
pub fn interface_defaults_in(netns: &str) -> Result<BTreeMap<String, String>, NetnsError> {
    netns::run_in(netns, || {
        INTERFACE_KEYS
            .iter()
            .filter_map(|k| {
                let v = read(&ns_key_path(&default_key_of(k)))?;
                Some(((*k).to_string(), v))
            })
            .collect()
    })
}
