//! `cargo xtask fuzz exporter|parser [--seconds N] [--seed S]`: a long fuzz run of one
//! target of tests/fuzz.rs (the same code CI runs for a fixed number of cases), from a
//! random seed unless one is given. It prints executions per second and findings; a
//! finding fails the command and shows the shrunk input and the seed to replay it.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::util;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Target {
    /// The HTTP server of `serve` (random and mutated requests, in-process)
    Exporter,
    /// The in-kernel packet parser through BPF_PROG_TEST_RUN, against etherparse (root)
    Parser,
}

#[derive(clap::Args)]
pub struct Args {
    target: Target,
    /// How long to run
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seed of the input sequence (default: from the clock; printed either way)
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run(args: &Args) -> Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let name = match args.target {
        Target::Exporter => "exporter",
        Target::Parser => "parser",
    };
    util::run(
        util::cargo()
            .args([
                "test",
                "--package",
                "vethscope",
                "--test",
                "fuzz",
                "--",
                name,
            ])
            .args(["--exact", "--nocapture", "--test-threads=1"])
            .env("VETHSCOPE_FUZZ_SECONDS", args.seconds.max(1).to_string())
            .env("VETHSCOPE_FUZZ_SEED", seed.to_string())
            .env("RUST_BACKTRACE", "0"),
    )
}
