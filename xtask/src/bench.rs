//! `cargo xtask bench ARGS…`: release build, then `target/release/vethscope bench ARGS…`;
//! `cargo xtask bench scale …` is the host-scale benchmark (bench_scale.rs), and
//! `cargo xtask bench scale --serve …` its serve/trace part (bench_serve.rs).

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
    if args.args.first().is_some_and(|a| a == "scale")
        && args.args.get(1).is_some_and(|a| a == "--serve")
    {
        return crate::bench_serve::run(&args.args[2..]);
    }
    if args.args.first().is_some_and(|a| a == "scale") {
        return crate::bench_scale::run(&args.args[1..]);
    }
    build::cargo_build(&["--package", "vethscope", "--release"])?;
    let vethscope = util::target_dir().join("release/vethscope");
    util::run(
        Command::new(vethscope)
            .current_dir(util::repo_root())
            .arg("bench")
            .args(&args.args),
    )
}
