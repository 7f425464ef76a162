//! Every filesystem path of impairments, and the rules for touching them, in one place
//! (so switching to the shared `safefs` module later is a change here only):
//! directories root-owned, mode 0700, never through a symlink; files written with
//! `O_NOFOLLOW` to a temporary name and renamed; bpffs names without dots.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

const BPF_ROOT: &str = "/sys/fs/bpf/vethscope";

/// A name as bpffs accepts it: bpffs refuses names with dots, so `.` becomes `%2e`
/// (and `%`, `+`, `/` are escaped the same way, keeping distinct names distinct).
pub fn bpf_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '.' | '%' | '+' | '/' => out.push_str(&format!("%{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The lab's directory in bpffs (shared with the fast path, whose names it matches).
pub fn lab_pin_dir(lab: &str) -> PathBuf {
    Path::new(BPF_ROOT).join(bpf_name(lab))
}

/// Where the impairment maps and links of `lab` are pinned.
pub fn pin_dir(lab: &str) -> PathBuf {
    lab_pin_dir(lab).join("impair")
}

/// The pinned TCX link of one end: removing it detaches the program.
pub fn link_pin(lab: &str, netns: &str, ifname: &str) -> PathBuf {
    pin_dir(lab).join(format!("egress_{}+{}", bpf_name(netns), bpf_name(ifname)))
}

pub fn record_dir() -> PathBuf {
    Path::new(crate::wire::RUN_DIR).join("impair")
}

pub fn record_path(lab: &str) -> PathBuf {
    record_dir().join(format!("{}.json", bpf_name(lab)))
}

/// Creates `dir` and its missing parents with mode 0700. An existing component that is
/// a symlink, not a directory, or (below `/run` and `/sys/fs/bpf`) not owned by root
/// is refused: these are paths only we write.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    let mut cur = PathBuf::new();
    for comp in dir.components() {
        cur.push(comp);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(io::Error::other(format!(
                    "{} is a symlink; vethscope does not follow symlinks here (remove it)",
                    cur.display()
                )));
            }
            Ok(m) if !m.is_dir() => {
                return Err(io::Error::other(format!(
                    "{} exists and is not a directory (remove it)",
                    cur.display()
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new().mode(0o700).create(&cur)?;
                fs::set_permissions(&cur, fs::Permissions::from_mode(0o700))?;
            }
            Err(e) => return Err(e),
        }
    }
    let m = fs::symlink_metadata(dir)?;
    if m.uid() != 0 && nix::unistd::geteuid().is_root() {
        return Err(io::Error::other(format!(
            "{} is not owned by root; vethscope keeps its state only in its own directories (remove it)",
            dir.display()
        )));
    }
    Ok(())
}

/// Writes `bytes` to `path` (mode 0600) without following symlinks, atomically.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path without a directory"))?;
    ensure_dir(dir)?;
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// Reads `path` without following a symlink; `None` when absent.
pub fn read_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(mut f) => {
            let mut out = Vec::new();
            f.read_to_end(&mut out)?;
            Ok(Some(out))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes a file we made; absent is fine. Never follows a symlink (unlink doesn't).
pub fn remove_file(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_names_have_no_dots_and_stay_distinct() {
        assert_eq!(bpf_name("ns1"), "ns1");
        assert_eq!(bpf_name("a.b"), "a%2eb");
        assert_eq!(bpf_name("t1-ns"), "t1-ns");
        assert_ne!(bpf_name("a%2e"), bpf_name("a."));
        assert!(
            !link_pin("lab.x", "n.s", "if.0").to_string_lossy()[BPF_ROOT.len()..].contains('.')
        );
    }
}
