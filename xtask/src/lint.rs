//! `cargo xtask lint`: fmt check, clippy for the workspace, clippy of the eBPF crate for
//! bpfel-unknown-none. Runs all three and reports which failed.

use std::process::Command;

use anyhow::{Result, bail};

use crate::{setup, util};

pub fn run() -> Result<()> {
    setup::require_lint_tools()?;
    // Workspace clippy runs userspace/build.rs, which builds the eBPF programs.
    setup::require_ebpf_toolchain()?;
    let mut failed = Vec::new();
    for (name, mut cmd) in steps() {
        if let Err(err) = util::run(&mut cmd) {
            eprintln!("lint: {name}: {err:#}");
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        bail!("lint failed: {}", failed.join(", "));
    }
    println!("xtask lint: all clean");
    Ok(())
}

/// The checks, in order; `test` runs them too, so CI lints the eBPF crate for its real target.
pub fn steps() -> [(&'static str, Command); 3] {
    let mut fmt = util::cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    let mut clippy = util::cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    let mut ebpf = util::cargo();
    ebpf.args(["+nightly", "clippy", "-p", "vethscope-ebpf"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .args(["--", "-D", "warnings"]);
    [("fmt", fmt), ("clippy", clippy), ("clippy (eBPF)", ebpf)]
}
