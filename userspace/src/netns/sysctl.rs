//! Sysctls inside a namespace: /proc/sys/net resolves to the namespace of the thread
//! that opens it, so the write happens on a thread inside the namespace.

use std::path::{Component, Path, PathBuf};

use super::{NetnsError, run_in};

fn key_path(key: &str) -> PathBuf {
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

/// Last line of defence (the topology check refuses such keys first): a sysctl write
/// stays under /proc/sys/net, never walks out of it with `..`.
fn check_net_path(path: &Path) -> Result<(), NetnsError> {
    let inside = path.starts_with("/proc/sys/net/")
        && !path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir));
    if inside {
        Ok(())
    } else {
        Err(NetnsError::Io {
            what: format!("refusing to write {}", path.display()),
            source: std::io::Error::other("not a network sysctl under /proc/sys/net"),
        })
    }
}

pub fn write_sysctl_in(netns: &str, path: PathBuf, value: &str) -> Result<(), NetnsError> {
    check_net_path(&path)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_stay_under_proc_sys_net() {
        let walk = iface_key_path("ipv4", "e0", "../../../../kernel/printk_ratelimit");
        assert!(check_net_path(&walk).is_err());
        assert!(check_net_path(&key_path("kernel.core_pattern")).is_err());
        assert!(check_net_path(&iface_key_path("ipv4", "e0", "rp_filter")).is_ok());
    }
}
