//! The one rule for names that reach the kernel, the filesystem, OVS or a child process:
//! lab names, namespace names, interface and bridge names, and the `--prefix`.
//!
//! Used by the YAML check and by the clap value parser of every command that takes a
//! name, so `down ..`, `fastpath disable ../x` or `up --prefix ../` never get further
//! than argument parsing. The characters are the ones every consumer accepts as they are:
//! paths under /run and /sys/fs/bpf (no `/`, never `.` or `..`), OpenFlow match strings
//! and DOT/Mermaid (no `,` `=` `"` or spaces), child process arguments (no leading `-`).

/// Linux limit for interface names (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// Lab names become file names (state, locks, bpffs pins) and interface aliases.
pub const LAB_MAX: usize = 48;
/// Namespace names become files under /run/netns.
pub const NETNS_MAX: usize = 64;
/// A prefix must leave room in a 15-byte interface name.
pub const PREFIX_MAX: usize = 8;

/// What kind of name, for messages and limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    Lab,
    Netns,
    Interface,
    Prefix,
}

impl NameKind {
    fn what(self) -> &'static str {
        match self {
            NameKind::Lab => "lab name",
            NameKind::Netns => "namespace name",
            NameKind::Interface => "interface name",
            NameKind::Prefix => "prefix",
        }
    }

    fn max(self) -> usize {
        match self {
            NameKind::Lab => LAB_MAX,
            NameKind::Netns => NETNS_MAX,
            NameKind::Interface => IFNAME_MAX,
            NameKind::Prefix => PREFIX_MAX,
        }
    }
}

/// Why a name was refused: one sentence, with the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} `{shown}` {reason} (fix: {fix})")]
pub struct NameError {
    pub what: &'static str,
    /// The name with control characters escaped, so the message stays one line.
    pub shown: String,
    pub reason: String,
    pub fix: String,
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Checks a name of `kind`. Empty is refused except for a prefix.
pub fn check(kind: NameKind, name: &str) -> Result<(), NameError> {
    let fail = |reason: String, fix: &str| NameError {
        what: kind.what(),
        shown: name.escape_debug().to_string(),
        reason,
        fix: fix.to_string(),
    };
    if name.is_empty() {
        return if kind == NameKind::Prefix {
            Ok(())
        } else {
            Err(fail("is empty".into(), "give it a name"))
        };
    }
    if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
        return Err(fail(
            format!("contains {:?}", bad),
            "use only letters, digits, '-', '_' and '.'",
        ));
    }
    if name.len() > kind.max() {
        let fix = match kind {
            NameKind::Interface => "Linux allows at most 15 bytes; shorten it",
            NameKind::Prefix => "use a prefix of at most 8 bytes",
            _ => "shorten it",
        };
        return Err(fail(
            format!("is {} bytes, more than {}", name.len(), kind.max()),
            fix,
        ));
    }
    if name.starts_with('.') {
        // `.` and `..` walk the filesystem; other leading dots make hidden files.
        return Err(fail(
            "starts with '.'".into(),
            "start it with a letter or digit",
        ));
    }
    if name.starts_with('-') {
        // A child process (ip, ovs-vsctl, ovs-ofctl) would read it as an option.
        return Err(fail(
            "starts with '-'".into(),
            "start it with a letter or digit",
        ));
    }
    Ok(())
}

/// clap value parser for lab names.
pub fn parse_lab(s: &str) -> Result<String, NameError> {
    check(NameKind::Lab, s).map(|()| s.to_string())
}

/// clap value parser for namespace names (`host` is allowed: the root namespace).
pub fn parse_netns(s: &str) -> Result<String, NameError> {
    check(NameKind::Netns, s).map(|()| s.to_string())
}

/// clap value parser for interface names.
pub fn parse_ifname(s: &str) -> Result<String, NameError> {
    check(NameKind::Interface, s).map(|()| s.to_string())
}

/// clap value parser for `--prefix`.
pub fn parse_prefix(s: &str) -> Result<String, NameError> {
    check(NameKind::Prefix, s).map(|()| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_walks_and_separators_are_refused() {
        for kind in [NameKind::Lab, NameKind::Netns, NameKind::Interface] {
            for bad in [
                ".", "..", "../x", "a/b", "/", "", ".hidden", "-rf", "a\0b", "a b", "a,b", "a=b",
                "a\"b", "a:b", "a\nb", "ä", "a%b",
            ] {
                assert!(check(kind, bad).is_err(), "{kind:?} {bad:?} accepted");
            }
            for good in ["a", "ns1", "br-0", "eth0.10", "x_y", "A9"] {
                assert!(check(kind, good).is_ok(), "{kind:?} {good:?} refused");
            }
        }
    }

    #[test]
    fn limits() {
        assert!(check(NameKind::Interface, "abcdefghijklmno").is_ok());
        let e = check(NameKind::Interface, "abcdefghijklmnop").unwrap_err();
        assert!(e.to_string().contains("16 bytes"), "{e}");
        assert!(check(NameKind::Lab, &"a".repeat(48)).is_ok());
        assert!(check(NameKind::Lab, &"a".repeat(49)).is_err());
        assert!(check(NameKind::Prefix, "").is_ok());
        assert!(check(NameKind::Prefix, "t1-").is_ok());
        assert!(check(NameKind::Prefix, "../").is_err());
        assert!(check(NameKind::Prefix, "123456789").is_err());
    }

    #[test]
    fn message_is_one_line_with_a_fix() {
        let e = check(NameKind::Lab, "a\nb").unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains("fix:"), "{e}");
    }
}
