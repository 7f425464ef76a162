//! Names on bpffs. bpffs refuses any name containing `.` (EPERM), yet interface and
//! lab names may contain dots (`eth0.10` is the usual name of a VLAN interface). Every
//! name that becomes a bpffs path goes through [`bpf_name`].
//!
//! (A shared `safefs::bpf_name` is planned; this one is meant to be swapped for it.)

/// Percent-encodes every byte outside `[A-Za-z0-9_-]` (`.` → `%2E`, `%` → `%25`,
/// `/` → `%2F`), so the result is one path segment bpffs accepts, distinct names stay
/// distinct, and `.`/`..` can never walk out of a directory.
pub fn bpf_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        // An empty segment would name the parent directory itself.
        out.push_str("%00");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::bpf_name;

    #[test]
    fn dots_and_walks_are_encoded() {
        assert_eq!(bpf_name("bridge"), "bridge");
        assert_eq!(bpf_name("eth0.10"), "eth0%2E10");
        assert_eq!(bpf_name(".."), "%2E%2E");
        assert_eq!(bpf_name("a/b"), "a%2Fb");
        assert_eq!(bpf_name("50%"), "50%25");
        assert_eq!(bpf_name(""), "%00");
        // Injective: the encodings of distinct names differ.
        assert_ne!(bpf_name("a.b"), bpf_name("a%2Eb"));
        for n in ["x.y", "..", "a b", "ü"] {
            assert!(!bpf_name(n).contains(['.', '/', ' ']), "{n}");
        }
    }
}
