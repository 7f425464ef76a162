//! The sysctls that decide whether a packet is forwarded, answered or dropped, read
//! inside each lab namespace (one thread per namespace reads them all).

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use crate::netlink::{Netconf, batch::BatchSocket};
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

/// The namespace-wide keys of the calling thread's namespace, read through directory
/// descriptors opened one level at a time, each key one `openat` of a single name.
///
/// Why: every namespace has its own `/proc/sys/net` entries under the same names, and
/// the kernel finds an entry by comparing it with every same-named one of every other
/// namespace (`proc_sys_compare`): with 1,000 namespaces each path walk through
/// `net/ipv4/conf/all` costs ~1,000 comparisons per level. Walking each level once per
/// namespace instead of once per key (and no `statx` per file, as `read_to_string`
/// does) made this the difference between seconds and a fraction of one.
pub(super) fn namespace_keys_here() -> BTreeMap<String, String> {
    namespace_keys_from_files(&["ipv4", "ipv6"])
}

/// The namespace-wide keys of the calling thread's namespace, which `sock` is bound
/// to: the IPv6 ones (only `forwarding` of `all` and `default`) from one netconf dump
/// of the socket, the IPv4 ones from files as [`namespace_keys_here`] reads them.
///
/// Why: the lookup of `ipv6` under `/proc/sys/net` is one of the two path steps that
/// compare with every namespace's same-named entry (half of what `show` spent on a
/// 1,000-namespace lab went into those comparisons); netconf answers from the
/// namespace itself. The IPv4 keys `accept_local` and `arp_*` have no netlink form.
pub(super) fn namespace_keys_with(sock: &mut BatchSocket) -> BTreeMap<String, String> {
    let v6 = sock.netconf(libc::AF_INET6).ok().and_then(|entries| {
        let forwarding = |index| {
            entries
                .iter()
                .find(|c| c.ifindex == index)
                .and_then(|c| c.forwarding)
        };
        Some([
            ("net.ipv6.conf.all.forwarding", forwarding(Netconf::ALL)?),
            (
                "net.ipv6.conf.default.forwarding",
                forwarding(Netconf::DEFAULT)?,
            ),
        ])
    });
    match v6 {
        Some(keys) => {
            let mut out = namespace_keys_from_files(&["ipv4"]);
            out.extend(keys.map(|(k, v)| (k.to_string(), v.to_string())));
            out
        }
        // No IPv6 netconf (IPv6 off, or an older kernel): the files say what there is.
        None => namespace_keys_here(),
    }
}

/// [`NAMESPACE_KEYS`] of the given families (`ipv4`, `ipv6`), read from files.
fn namespace_keys_from_files(families: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(net) = open_at(libc::AT_FDCWD, c"/proc/sys/net", true) else {
        return out;
    };
    for &family in families {
        let Some(fam) = open_at(net.as_raw_fd(), &cstr(family), true) else {
            continue;
        };
        let conf = open_at(fam.as_raw_fd(), c"conf", true);
        let sets: Vec<(&str, Option<OwnedFd>)> = ["all", "default"]
            .into_iter()
            .map(|set| {
                let fd = conf
                    .as_ref()
                    .and_then(|c| open_at(c.as_raw_fd(), &cstr(set), true));
                (set, fd)
            })
            .collect();
        for key in NAMESPACE_KEYS {
            // Constant keys: net.FAMILY.KEY or net.FAMILY.conf.SET.KEY.
            let Some(rest) = key.strip_prefix(&format!("net.{family}.")) else {
                continue;
            };
            let (dir, name) = match rest.strip_prefix("conf.").and_then(|r| r.split_once('.')) {
                Some((set, name)) => match sets.iter().find(|(s, _)| *s == set) {
                    Some((_, Some(fd))) => (fd.as_raw_fd(), name),
                    _ => continue,
                },
                None => (fam.as_raw_fd(), rest),
            };
            if let Some(v) = open_at(dir, &cstr(name), false).and_then(|f| read_small(&f)) {
                out.insert((*key).to_string(), v);
            }
        }
    }
    out
}

fn cstr(s: &str) -> std::ffi::CString {
    // Constant names without NUL bytes.
    std::ffi::CString::new(s).unwrap_or_default()
}

/// `openat(dir, name)`, read-only, never following a symlink.
fn open_at(dir: RawFd, name: &std::ffi::CStr, directory: bool) -> Option<OwnedFd> {
    let mut flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    if directory {
        flags |= libc::O_DIRECTORY;
    }
    // SAFETY: openat(2) with a NUL-terminated name; the result is checked before use.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags) };
    // SAFETY: a fresh descriptor we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A sysctl value: one `read` into a small buffer, trimmed.
fn read_small(f: &OwnedFd) -> Option<String> {
    let mut buf = [0u8; 64];
    // SAFETY: reading into our own buffer of the given length.
    let n = unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    (n > 0).then(|| {
        String::from_utf8_lossy(&buf[..n as usize])
            .trim()
            .to_string()
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The directory-descriptor reader gives exactly what reading each file by its
    /// full path gives (this process's namespace; nothing is written).
    #[test]
    fn namespace_keys_read_through_dirfds_equal_the_files() {
        let fast = namespace_keys_here();
        for key in NAMESPACE_KEYS {
            assert_eq!(fast.get(*key), read(&ns_key_path(key)).as_ref(), "{key}");
        }
        assert!(fast.contains_key("net.ipv4.ip_forward"), "{fast:?}");
    }

    /// The IPv6 keys from netconf equal the files (this process's namespace, read only).
    #[test]
    fn namespace_keys_with_netconf_equal_the_files() {
        let mut sock = BatchSocket::open_here("host").expect("netlink socket");
        let with = namespace_keys_with(&mut sock);
        assert_eq!(with, namespace_keys_here());
        if std::path::Path::new("/proc/sys/net/ipv6").exists() {
            assert!(
                with.contains_key("net.ipv6.conf.all.forwarding"),
                "{with:?}"
            );
        }
    }
}
