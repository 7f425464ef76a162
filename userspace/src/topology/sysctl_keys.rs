//! Sysctl keys from topology files become paths under /proc/sys. A key is therefore
//! checked twice before anything is written:
//! - its shape (pure): namespace keys are `net.` followed by dot-separated segments of
//!   `[a-z0-9_]`; interface keys are one such segment (optionally after `ipv4.`/`ipv6.`).
//!   No `/`, no empty segment, so no `..` walk can leave /proc/sys/net;
//! - its existence: the key must be in the kernel's own list, read in a fresh,
//!   temporary network namespace (so neither the host's interfaces nor its settings
//!   matter), or from our own namespace when we may not create one. Unknown keys get a
//!   "did you mean".

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

/// Longest value we write: sysctl values are numbers or short words.
const VALUE_MAX: usize = 256;

fn segment_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Why a namespace key (`net.ipv4.ip_forward`) is malformed, if it is.
pub fn namespace_key_shape(key: &str) -> Result<(), String> {
    let Some(rest) = key.strip_prefix("net.") else {
        return Err(format!(
            "sysctl `{}` is not a network-namespace setting (only net.* keys can be set per namespace)",
            key.escape_debug()
        ));
    };
    if key.len() > 200 || !rest.split('.').all(segment_ok) {
        return Err(format!(
            "sysctl `{}` is not a plain key: each part between dots must be lowercase letters, digits or '_'",
            key.escape_debug()
        ));
    }
    Ok(())
}

/// An interface key split into its family (`ipv4`/`ipv6`) and name.
pub fn split_interface_key(key: &str) -> (&'static str, &str) {
    match key.strip_prefix("ipv6.") {
        Some(k) => ("ipv6", k),
        None => ("ipv4", key.strip_prefix("ipv4.").unwrap_or(key)),
    }
}

/// Why an interface key (`accept_local`, `ipv6.disable_ipv6`) is malformed, if it is.
pub fn interface_key_shape(key: &str) -> Result<(), String> {
    let (_, name) = split_interface_key(key);
    if segment_ok(name) {
        Ok(())
    } else {
        Err(format!(
            "interface sysctl `{}` is not a plain key: it must be one word of lowercase letters, digits or '_' (optionally after `ipv4.` or `ipv6.`)",
            key.escape_debug()
        ))
    }
}

/// Why a value cannot be written, if it cannot.
pub fn value_shape(value: &str) -> Result<(), String> {
    if value.len() > VALUE_MAX {
        return Err(format!(
            "sysctl value is {} bytes; at most {VALUE_MAX}",
            value.len()
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "sysctl value `{}` contains a control character",
            value.escape_debug()
        ));
    }
    Ok(())
}

/// The kernel's sysctl keys for a network namespace.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Full keys, `net.ipv4.ip_forward`.
    pub namespace: BTreeSet<String>,
    /// Per-interface keys of `net.ipv4.conf.default`.
    pub ipv4_conf: BTreeSet<String>,
    /// Per-interface keys of `net.ipv6.conf.default` (empty when IPv6 is off).
    pub ipv6_conf: BTreeSet<String>,
}

impl Catalog {
    pub fn has_namespace_key(&self, key: &str) -> bool {
        self.namespace.contains(key)
    }

    pub fn has_interface_key(&self, key: &str) -> bool {
        match split_interface_key(key) {
            ("ipv6", k) => self.ipv6_conf.contains(k),
            (_, k) => self.ipv4_conf.contains(k),
        }
    }

    /// The closest known namespace key, for "did you mean".
    pub fn suggest_namespace_key(&self, key: &str) -> Option<&str> {
        closest(key, self.namespace.iter().map(String::as_str))
    }

    pub fn suggest_interface_key(&self, key: &str) -> Option<String> {
        match split_interface_key(key) {
            ("ipv6", k) => {
                closest(k, self.ipv6_conf.iter().map(String::as_str)).map(|s| format!("ipv6.{s}"))
            }
            (_, k) => closest(k, self.ipv4_conf.iter().map(String::as_str)).map(str::to_string),
        }
    }

    /// Reads the list from a /proc/sys/net tree.
    pub fn read(proc_sys_net: &Path) -> Self {
        let mut cat = Catalog::default();
        walk(proc_sys_net, "net", 0, &mut cat.namespace);
        for (family, set) in [("ipv4", &mut cat.ipv4_conf), ("ipv6", &mut cat.ipv6_conf)] {
            if let Ok(dir) = std::fs::read_dir(proc_sys_net.join(family).join("conf/default")) {
                set.extend(
                    dir.filter_map(|e| e.ok())
                        .filter_map(|e| e.file_name().into_string().ok()),
                );
            }
        }
        cat
    }
}

/// Collects file paths below `dir` as dotted keys (bounded: /proc/sys/net is shallow).
fn walk(dir: &Path, prefix: &str, depth: usize, out: &mut BTreeSet<String>) {
    if depth > 8 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let key = format!("{prefix}.{name}");
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&e.path(), &key, depth + 1, out),
            Ok(t) if t.is_file() => {
                out.insert(key);
            }
            _ => {}
        }
    }
}

/// The kernel's list, read once per process: in a fresh network namespace when we may
/// make one (a thread that unshares and exits; the namespace dies with it), else ours.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let fresh = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .ok()
                .map(|()| Catalog::read(Path::new("/proc/sys/net")))
        })
        .join()
        .ok()
        .flatten();
        fresh.unwrap_or_else(|| Catalog::read(Path::new("/proc/sys/net")))
    })
}

/// The candidate within a small edit distance (scaled to the word), if any.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.len() / 5).clamp(1, 3);
    candidates
        .map(|c| (super::yaml::edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_and_slashes_are_malformed() {
        for bad in [
            "../../../../kernel/printk_ratelimit",
            "..",
            "a/b",
            "accept_local/../x",
            "ipv4.conf.all.x",
            "",
            "Accept_Local",
            "accept local",
            "x\0",
        ] {
            assert!(interface_key_shape(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["accept_local", "ipv4.rp_filter", "ipv6.disable_ipv6"] {
            assert!(interface_key_shape(good).is_ok(), "{good:?} refused");
        }
        for bad in [
            "kernel.core_pattern",
            "net.ipv4..ip_forward",
            "net.ipv4/../../kernel",
            "net.",
            "net.ipv4.conf.eth0/10.rp_filter",
        ] {
            assert!(namespace_key_shape(bad).is_err(), "{bad:?} accepted");
        }
        assert!(namespace_key_shape("net.ipv4.conf.all.rp_filter").is_ok());
        assert!(value_shape("1\n2").is_err());
        assert!(value_shape("1").is_ok());
    }

    #[test]
    fn kernel_list_has_the_common_keys_and_suggests() {
        let cat = catalog();
        assert!(cat.has_namespace_key("net.ipv4.ip_forward"), "{cat:?}");
        assert!(cat.has_interface_key("accept_local"));
        assert!(cat.has_interface_key("ipv4.rp_filter"));
        assert!(!cat.has_interface_key("acept_local"));
        assert_eq!(
            cat.suggest_interface_key("acept_local").as_deref(),
            Some("accept_local")
        );
        assert_eq!(
            cat.suggest_namespace_key("net.ipv4.ip_forwrd"),
            Some("net.ipv4.ip_forward")
        );
    }
}
