//! Sysctls inside a namespace: /proc/sys/net resolves to the namespace of the thread
//! that opens it, so the write happens on a thread inside the namespace.

use std::path::PathBuf;

use super::{NetnsError, run_in};

pub fn key_path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}

/// Interface sysctls keep the interface name whole (it may contain dots).
pub fn iface_key_path(family: &str, ifname: &str, key: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/{family}/conf/{ifname}/{key}"))
}

/// Writes a full sysctl key (`net.ipv4.conf.all.rp_filter`) inside `netns`.
pub fn write_sysctl(netns: &str, key: &str, value: &str) -> Result<(), NetnsError> {
    write_sysctl_in(netns, key_path(key), value)
}

pub fn write_sysctl_in(netns: &str, path: PathBuf, value: &str) -> Result<(), NetnsError> {
    run_in(netns, || std::fs::write(&path, value))?.map_err(|source| NetnsError::Io {
        what: format!("set {} = {value} in namespace {netns}", path.display()),
        source,
    })
}

pub fn read_sysctl(netns: &str, key: &str) -> Result<String, NetnsError> {
    let path = key_path(key);
    run_in(netns, || std::fs::read_to_string(&path))?
        .map(|s| s.trim().to_string())
        .map_err(|source| NetnsError::Io {
            what: format!("read {key} in namespace {netns}"),
            source,
        })
}

/// Writes a sysctl from a thread that is already inside namespace `netns` (a pool job).
pub fn write_sysctl_here(
    netns: &str,
    path: &std::path::Path,
    value: &str,
) -> Result<(), NetnsError> {
    std::fs::write(path, value).map_err(|source| NetnsError::Io {
        what: format!("set {} = {value} in namespace {netns}", path.display()),
        source,
    })
}
