//! `cargo xtask setup`: make this machine able to build and test vethscope.
//!
//! Every step checks first and only acts on what is missing, printing what it does.
//! The checks are also used by `build` and `lint`, which need no root.

mod apt;
mod bpf_linker;
mod mounts;
mod rust;

use anyhow::{Result, bail};

use crate::util;

/// `cargo xtask setup`.
pub fn run() -> Result<()> {
    run_for("setup")
}

/// Full setup on behalf of `cargo xtask <task>` (named in the root-needed message).
pub fn run_for(task: &str) -> Result<()> {
    require_root(task)?;
    apt::ensure()?;
    rust::ensure()?;
    bpf_linker::ensure()?;
    mounts::ensure()?;
    println!("setup: done");
    Ok(())
}

fn require_root(task: &str) -> Result<()> {
    if !util::is_root()? {
        bail!(
            "`cargo xtask {task}` must run as root, since setup installs packages and mounts \
             bpffs/tracefs (try `sudo -E env \"PATH=$PATH\" cargo xtask {task}`)"
        );
    }
    Ok(())
}

/// Fails with one sentence unless nightly + rust-src and a working bpf-linker are present:
/// userspace/build.rs needs them to build the eBPF programs.
pub fn require_ebpf_toolchain() -> Result<()> {
    let mut missing = rust::missing_names(&[rust::NIGHTLY_RUST_SRC])?;
    missing.extend(bpf_linker::problem());
    require(missing, "build the eBPF programs")
}

/// Fails with one sentence unless rustfmt and clippy (default toolchain and nightly) exist.
pub fn require_lint_tools() -> Result<()> {
    let missing = rust::missing_names(&[rust::RUSTFMT, rust::CLIPPY, rust::NIGHTLY_CLIPPY])?;
    require(missing, "lint")
}

fn require(missing: Vec<String>, purpose: &str) -> Result<()> {
    if !missing.is_empty() {
        bail!(
            "cannot {purpose}: missing {}; run `cargo xtask setup` (as root) first",
            missing.join(", ")
        );
    }
    Ok(())
}
