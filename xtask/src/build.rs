//! `cargo xtask build`: release build of the workspace.

use anyhow::Result;

use crate::{setup, util};

pub fn run() -> Result<()> {
    cargo_build(&["--workspace", "--release"])
}

/// `cargo build ARGS…` after checking what userspace/build.rs (aya-build) needs to build
/// the eBPF programs: nightly with rust-src, and bpf-linker.
pub fn cargo_build(args: &[&str]) -> Result<()> {
    setup::require_ebpf_toolchain()?;
    util::run(util::cargo().arg("build").args(args))
}
