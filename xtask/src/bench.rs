//! `cargo xtask bench ARGS…`: release build, then `target/release/vethscope bench ARGS…`.

use std::{ffi::OsString, process::Command};

use anyhow::Result;

use crate::{build, util};

#[derive(clap::Args)]
pub struct Args {
    /// Arguments passed to `vethscope bench` unchanged
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

pub fn run(args: &Args) -> Result<()> {
    build::cargo_build(&["--package", "vethscope", "--release"])?;
    let vethscope = util::target_dir().join("release/vethscope");
    util::run(
        Command::new(vethscope)
            .current_dir(util::repo_root())
            .arg("bench")
            .args(&args.args),
    )
}
