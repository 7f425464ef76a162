//! bpf-linker 0.13.0, linked against rustc's own LLVM 22 (Debian 12 has no LLVM 22).
//!
//! The binary loads libLLVM through an rpath to a lasting prefix,
//! `${XDG_DATA_HOME:-$HOME/.local/share}/vethscope/llvm`, whose `lib/` holds symlinks into
//! nightly's sysroot: `libLLVM.so` (used when linking it) and the library's own soname
//! `libLLVM.so.22.1-rust-…` (what the dynamic loader looks for when it runs).

use std::{
    env,
    ffi::OsString,
    fs, io,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::util;

const VERSION: &str = "0.13.0";

enum State {
    Ok,
    Missing,
    /// Runs, but `--version` printed this.
    WrongVersion(String),
    /// Installed but does not run (typically libLLVM not found); holds its stderr.
    Broken(String),
}

/// Runs `bpf-linker --version` as a plain shell would: without the LD_LIBRARY_PATH rustup
/// sets for `cargo run` (which may point into a toolchain and hide a broken rpath).
fn probe() -> State {
    let mut cmd = Command::new("bpf-linker");
    cmd.arg("--version").env_remove("LD_LIBRARY_PATH");
    let output = match util::capture(&mut cmd) {
        Ok(output) => output,
        Err(_) => return State::Missing,
    };
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return State::Broken(stderr);
    }
    // `bpf-linker 0.13.0`
    if stdout.split_whitespace().nth(1) == Some(VERSION) {
        State::Ok
    } else {
        State::WrongVersion(stdout)
    }
}

/// Why bpf-linker cannot be used, or `None` when it can.
pub fn problem() -> Option<String> {
    match probe() {
        State::Ok => None,
        State::Missing => Some(format!("bpf-linker {VERSION}")),
        State::WrongVersion(found) => Some(format!("bpf-linker {VERSION} (found `{found}`)")),
        State::Broken(stderr) => Some(format!("a working bpf-linker {VERSION} ({stderr})")),
    }
}

/// Skips a working bpf-linker 0.13.0; repairs the prefix of one that no longer finds
/// libLLVM; otherwise installs it (about 3 minutes).
pub fn ensure() -> Result<()> {
    let state = probe();
    if let State::Ok = state {
        println!("setup: bpf-linker {VERSION}: present");
        return Ok(());
    }
    let prefix = llvm_prefix()?;
    link_rust_llvm(&prefix)?;
    if let State::Broken(stderr) = &state
        && let State::Ok = probe()
    {
        println!("setup: bpf-linker {VERSION}: repaired (it failed with: {stderr})");
        return Ok(());
    }
    install(&prefix, !matches!(state, State::Missing))?;
    match problem() {
        None => Ok(()),
        Some(problem) => bail!(
            "installed bpf-linker, but the `bpf-linker` on PATH is still not {problem}; is \
             cargo's bin directory (usually ~/.cargo/bin) on PATH, ahead of other copies?"
        ),
    }
}

fn install(prefix: &Path, force: bool) -> Result<()> {
    println!("setup: bpf-linker {VERSION}: installing against rustc's LLVM (takes a few minutes)");
    let mut cmd = util::cargo();
    cmd.env("LLVM_PREFIX", prefix)
        .args(["install", "bpf-linker", "--version", VERSION])
        .args(["--no-default-features", "--features", "llvm-22"]);
    if force {
        cmd.arg("--force");
    }
    util::run(&mut cmd)
}

/// `${XDG_DATA_HOME:-$HOME/.local/share}/vethscope/llvm`
fn llvm_prefix() -> Result<PathBuf> {
    let data_home = match env::var_os("XDG_DATA_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = env::var_os("HOME").context("neither XDG_DATA_HOME nor HOME is set")?;
            PathBuf::from(home).join(".local/share")
        }
    };
    Ok(data_home.join("vethscope/llvm"))
}

/// Makes `<prefix>/lib/{libLLVM.so, <soname>}` point at nightly's `libLLVM.so.22.*-rust-*`.
fn link_rust_llvm(prefix: &Path) -> Result<()> {
    let library = nightly_libllvm()?;
    let lib_dir = prefix.join("lib");
    fs::create_dir_all(&lib_dir)
        .with_context(|| format!("could not create {}", lib_dir.display()))?;
    let soname = library
        .file_name()
        .context("libLLVM path has no file name")?
        .to_owned();
    for name in [OsString::from("libLLVM.so"), soname] {
        ensure_symlink(&lib_dir.join(name), &library)?;
    }
    Ok(())
}

/// `$(rustc +nightly --print sysroot)/lib/libLLVM.so.22.*-rust-*`
fn nightly_libllvm() -> Result<PathBuf> {
    let mut rustc = Command::new("rustc");
    rustc.args(["+nightly", "--print", "sysroot"]);
    let sysroot = PathBuf::from(util::stdout_of(&mut rustc)?.trim());
    let lib_dir = sysroot.join("lib");
    let entries =
        fs::read_dir(&lib_dir).with_context(|| format!("could not read {}", lib_dir.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| is_rust_llvm22(path))
        .collect();
    found.sort();
    found
        .pop()
        .with_context(|| format!("no libLLVM.so.22.*-rust-* in {}", lib_dir.display()))
}

fn is_rust_llvm22(path: &Path) -> bool {
    let name = path.file_name().map(|name| name.to_string_lossy());
    name.is_some_and(|name| name.starts_with("libLLVM.so.22.") && name.contains("-rust-"))
}

/// Creates (or re-points) the symlink `link` → `target`; leaves a correct one alone.
fn ensure_symlink(link: &Path, target: &Path) -> Result<()> {
    match fs::read_link(link) {
        Ok(current) if current == target => return Ok(()),
        Ok(_) => fs::remove_file(link)
            .with_context(|| format!("could not replace {}", link.display()))?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(err)
                .with_context(|| format!("{} exists and is not a symlink", link.display()));
        }
    }
    println!("setup: linking {} -> {}", link.display(), target.display());
    symlink(target, link).with_context(|| format!("could not create {}", link.display()))
}
