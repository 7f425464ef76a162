//! Files vethscope keeps under `/run/vethscope` and `/sys/fs/bpf/vethscope`: ours alone.
//!
//! vethscope runs as root; anyone who can write to `/run` or `/sys/fs/bpf` could plant
//! `vethscope/LAB -> /etc` and have `down LAB` remove files there. So every path is
//! walked one component at a time from a checked directory fd: `openat` with
//! `O_NOFOLLOW | O_DIRECTORY`, each directory created with mode 0700 and required to be
//! owned by us with no access for group or others; files are opened with `O_NOFOLLOW`
//! and removed with `unlinkat` only after their owner was checked. A directory of ours
//! with wider permissions (left by an older vethscope) is tightened, never trusted as is
//! when someone else owns it.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, geteuid, unlinkat};

/// The bpffs directory of vethscope's pins.
pub const BPF_ROOT: &str = "/sys/fs/bpf";
/// Directory (under [`BPF_ROOT`]) holding one directory per lab.
pub const BPF_DIR: &str = "vethscope";

#[derive(Debug, thiserror::Error)]
pub enum SafeFsError {
    #[error("refusing to use {path}: {reason} (fix: remove it, as root, if it is not vethscope's)")]
    Untrusted { path: String, reason: String },
    #[error("`{name}` is not a plain file name (no '/', not '.' or '..', no NUL)")]
    BadName { name: String },
    #[error("{what} {path}: {errno}")]
    Sys {
        what: &'static str,
        path: String,
        errno: Errno,
    },
}

/// A directory opened safely; every operation is relative to its fd.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_RDONLY);

/// One path component: not empty, no `/`, not `.` or `..`, no NUL.
pub fn check_component(name: &str) -> Result<(), SafeFsError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(SafeFsError::BadName {
            name: name.escape_debug().to_string(),
        });
    }
    Ok(())
}

/// A name as bpffs accepts it: bpffs refuses names containing `.` (and vethscope's
/// names may hold dots, `eth0.10`), so every byte outside `[A-Za-z0-9_-]` is written
/// `%XX`. Reversible and unambiguous (`%` itself is encoded).
pub fn bpf_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sys<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> SafeFsError + 'a {
    move |errno| SafeFsError::Sys {
        what,
        path: path.display().to_string(),
        errno,
    }
}

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

fn is_file(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
}

impl Dir {
    /// Opens a system directory (`/run`, `/sys/fs/bpf`): it must be a real directory
    /// (no symlink anywhere on the path) owned by root or by us.
    pub fn system(path: &Path) -> Result<Dir, SafeFsError> {
        let fd = nix::fcntl::open(path, DIR_FLAGS, Mode::empty()).map_err(sys("open", path))?;
        let st = fstat(&fd).map_err(sys("stat", path))?;
        let me = geteuid().as_raw();
        if st.st_uid != 0 && st.st_uid != me {
            return Err(SafeFsError::Untrusted {
                path: path.display().to_string(),
                reason: format!("it is owned by uid {}", st.st_uid),
            });
        }
        // A world-writable system directory must be sticky (like /tmp), or anyone could
        // rename our directory away and put theirs in its place.
        if st.st_mode & 0o002 != 0 && st.st_mode & 0o1000 == 0 {
            return Err(SafeFsError::Untrusted {
                path: path.display().to_string(),
                reason: "it is writable by everyone and not sticky".into(),
            });
        }
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// `/run/vethscope` (created if `create`); `None` when absent.
    pub fn run(create: bool) -> Result<Option<Dir>, SafeFsError> {
        Dir::system(Path::new("/run"))?.subdir("vethscope", create)
    }

    /// `/sys/fs/bpf/vethscope` (created if `create`); `None` when absent.
    pub fn bpf(create: bool) -> Result<Option<Dir>, SafeFsError> {
        Dir::system(Path::new(BPF_ROOT))?.subdir(BPF_DIR, create)
    }

    /// Walks `components` from `self`, each one checked as [`Dir::subdir`] does.
    pub fn walk(&self, components: &[&str], create: bool) -> Result<Option<Dir>, SafeFsError> {
        let mut dir = match components.split_first() {
            None => return self.reopen().map(Some),
            Some((first, _)) => match self.subdir(first, create)? {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        for c in &components[1..] {
            dir = match dir.subdir(c, create)? {
                Some(d) => d,
                None => return Ok(None),
            };
        }
        Ok(Some(dir))
    }

    fn reopen(&self) -> Result<Dir, SafeFsError> {
        let fd = self.fd.try_clone().map_err(|e| SafeFsError::Sys {
            what: "duplicate",
            path: self.path.display().to_string(),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
        Ok(Dir {
            fd,
            path: self.path.clone(),
        })
    }

    /// Opens (and, if `create`, makes with mode 0700) the directory `name` inside this
    /// one. It must be a directory owned by us, without access for group or others; a
    /// symlink is refused. `None` when absent and not created.
    pub fn subdir(&self, name: &str, create: bool) -> Result<Option<Dir>, SafeFsError> {
        check_component(name)?;
        let path = self.path.join(name);
        if create {
            match mkdirat(&self.fd, name, Mode::S_IRWXU) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys("create", &path)(e)),
            }
        }
        let fd = match openat(&self.fd, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(None),
            // O_NOFOLLOW on a symlink: ELOOP; O_DIRECTORY on a file: ENOTDIR.
            Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                return Err(SafeFsError::Untrusted {
                    path: path.display().to_string(),
                    reason: "it is a symlink or not a directory".into(),
                });
            }
            Err(e) => return Err(sys("open", &path)(e)),
        };
        let st = fstat(&fd).map_err(sys("stat", &path))?;
        if !is_dir(&st) {
            return Err(SafeFsError::Untrusted {
                path: path.display().to_string(),
                reason: "it is not a directory".into(),
            });
        }
        if st.st_uid != geteuid().as_raw() {
            return Err(SafeFsError::Untrusted {
                path: path.display().to_string(),
                reason: format!("it is owned by uid {}, not by us", st.st_uid),
            });
        }
        if st.st_mode & 0o077 != 0 {
            // Ours, made by an older vethscope with the umask's mode: tighten it.
            fchmod(&fd, Mode::S_IRWXU).map_err(sys("chmod 0700", &path))?;
        }
        Ok(Some(Dir { fd, path }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The path of an entry, for messages and for APIs that take paths (aya's `pin`):
    /// through /proc/self/fd, so it resolves to this very directory, not to whatever
    /// the name points at now.
    pub fn fd_path(&self, name: &str) -> Result<PathBuf, SafeFsError> {
        check_component(name)?;
        Ok(PathBuf::from(format!(
            "/proc/self/fd/{}/{name}",
            self.fd.as_raw_fd()
        )))
    }

    /// The entry's status without following a symlink; `None` when absent.
    pub fn stat(&self, name: &str) -> Result<Option<FileStat>, SafeFsError> {
        check_component(name)?;
        match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(sys("stat", &self.path.join(name))(e)),
        }
    }

    fn check_owned_file(&self, name: &str, st: &FileStat) -> Result<(), SafeFsError> {
        if st.st_uid != geteuid().as_raw() {
            return Err(SafeFsError::Untrusted {
                path: self.path.join(name).display().to_string(),
                reason: format!("it is owned by uid {}, not by us", st.st_uid),
            });
        }
        Ok(())
    }

    /// Reads a regular file of ours; `None` when absent. A symlink is refused.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, SafeFsError> {
        use std::io::Read;
        check_component(name)?;
        let path = self.path.join(name);
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = match openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => {
                return Err(SafeFsError::Untrusted {
                    path: path.display().to_string(),
                    reason: "it is a symlink".into(),
                });
            }
            Err(e) => return Err(sys("open", &path)(e)),
        };
        let st = fstat(&fd).map_err(sys("stat", &path))?;
        if !is_file(&st) {
            return Err(SafeFsError::Untrusted {
                path: path.display().to_string(),
                reason: "it is not a regular file".into(),
            });
        }
        self.check_owned_file(name, &st)?;
        let mut out = Vec::new();
        File::from(fd)
            .read_to_end(&mut out)
            .map_err(|e| sys("read", &path)(io_errno(&e)))?;
        Ok(Some(out))
    }

    /// Writes a file atomically (a fresh `O_EXCL` temporary file, then rename), mode 0600.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), SafeFsError> {
        check_component(name)?;
        let path = self.path.join(name);
        let tmp = format!(".{name}.{}.tmp", std::process::id());
        // A leftover of a killed writer with our pid: ours, safe to replace.
        let _ = unlinkat(&self.fd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&self.fd, tmp.as_str(), flags, Mode::S_IRUSR | Mode::S_IWUSR)
            .map_err(sys("create", &path))?;
        let mut file = File::from(fd);
        let written = file.write_all(bytes).and_then(|()| file.sync_data());
        drop(file);
        if let Err(e) = written {
            let _ = unlinkat(&self.fd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
            return Err(sys("write", &path)(io_errno(&e)));
        }
        renameat(&self.fd, tmp.as_str(), &self.fd, name).map_err(|e| {
            let _ = unlinkat(&self.fd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
            sys("rename into place", &path)(e)
        })
    }

    /// Opens (creating, mode 0600) a lock file; a symlink is refused.
    pub fn open_lock(&self, name: &str) -> Result<File, SafeFsError> {
        check_component(name)?;
        let path = self.path.join(name);
        let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&self.fd, name, flags, Mode::S_IRUSR | Mode::S_IWUSR)
            .map_err(sys("open", &path))?;
        let st = fstat(&fd).map_err(sys("stat", &path))?;
        if !is_file(&st) {
            return Err(SafeFsError::Untrusted {
                path: path.display().to_string(),
                reason: "it is not a regular file".into(),
            });
        }
        self.check_owned_file(name, &st)?;
        Ok(File::from(fd))
    }

    /// Removes a file (or symlink: the link itself, never its target) after checking
    /// that we own it. Absent is success (`false`).
    pub fn remove_file(&self, name: &str) -> Result<bool, SafeFsError> {
        let Some(st) = self.stat(name)? else {
            return Ok(false);
        };
        self.check_owned_file(name, &st)?;
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(sys("remove", &self.path.join(name))(e)),
        }
    }

    /// Removes an empty directory of ours. Absent is success (`false`).
    pub fn remove_dir(&self, name: &str) -> Result<bool, SafeFsError> {
        let Some(st) = self.stat(name)? else {
            return Ok(false);
        };
        if !is_dir(&st) {
            return Err(SafeFsError::Untrusted {
                path: self.path.join(name).display().to_string(),
                reason: "it is not a directory".into(),
            });
        }
        self.check_owned_file(name, &st)?;
        match unlinkat(&self.fd, name, UnlinkatFlags::RemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(sys("remove", &self.path.join(name))(e)),
        }
    }

    /// Names in this directory (not `.`/`..`), sorted.
    pub fn list(&self) -> Result<Vec<String>, SafeFsError> {
        let proc = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        let mut names: Vec<String> = std::fs::read_dir(&proc)
            .map_err(|e| sys("list", &self.path)(io_errno(&e)))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_names_have_no_dots_and_stay_apart() {
        assert_eq!(bpf_name("eth0.10"), "eth0%2E10");
        assert_eq!(bpf_name("br-0_x"), "br-0_x");
        assert_ne!(bpf_name("a.b"), bpf_name("a%2Eb"));
        assert!(!bpf_name("../x").contains(['.', '/']));
    }

    #[test]
    fn components_are_single_names() {
        for bad in ["", ".", "..", "a/b", "/", "a\0"] {
            assert!(check_component(bad).is_err(), "{bad:?}");
        }
        assert!(check_component("lab-1.json").is_ok());
    }

    /// A private directory of one test under the system temp dir (sticky /tmp is accepted).
    fn scratch(test: &str) -> Dir {
        let tmp = Dir::system(&std::env::temp_dir()).unwrap();
        let name = format!("vethscope-safefs-{test}-{}", std::process::id());
        tmp.subdir(&name, true).unwrap().unwrap()
    }

    fn cleanup(d: &Dir) {
        let _ = std::fs::remove_dir_all(d.path());
    }

    #[test]
    fn symlinks_are_never_followed() {
        let d = scratch("symlink");
        let target = d.subdir("target", true).unwrap().unwrap();
        target.write_atomic("precious", b"keep").unwrap();
        std::os::unix::fs::symlink(target.path(), d.path().join("lab")).unwrap();
        std::os::unix::fs::symlink(target.path().join("precious"), d.path().join("file")).unwrap();
        // A planted directory symlink is refused, not walked through.
        let err = d.subdir("lab", false).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
        assert!(d.walk(&["lab", "x"], true).is_err());
        // A planted file symlink is neither read nor written through.
        assert!(d.read("file").is_err());
        assert!(d.open_lock("file").is_err());
        // Removing it removes the link, never the target.
        assert!(d.remove_file("file").unwrap());
        assert_eq!(
            target.read("precious").unwrap().as_deref(),
            Some(&b"keep"[..])
        );
        cleanup(&d);
    }

    #[test]
    fn directories_are_private_and_files_round_trip() {
        use std::os::unix::fs::PermissionsExt;
        let d = scratch("private");
        // An older, wider directory of ours is tightened to 0700.
        std::fs::create_dir(d.path().join("old")).unwrap();
        std::fs::set_permissions(d.path().join("old"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let old = d.subdir("old", false).unwrap().unwrap();
        let mode = std::fs::metadata(old.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let new = d.walk(&["a", "b"], true).unwrap().unwrap();
        let mode = std::fs::metadata(new.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        new.write_atomic("s.json", b"{}").unwrap();
        new.write_atomic("s.json", b"{\"a\":1}").unwrap();
        assert_eq!(
            new.read("s.json").unwrap().as_deref(),
            Some(&b"{\"a\":1}"[..])
        );
        assert_eq!(new.list().unwrap(), vec!["s.json".to_string()]);
        assert!(new.remove_file("s.json").unwrap());
        assert!(!new.remove_file("s.json").unwrap());
        assert_eq!(d.walk(&["a", "zz"], false).unwrap().map(|_| ()), None);
        assert!(d.subdir("..", true).is_err());
        cleanup(&d);
    }
}
