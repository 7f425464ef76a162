//! `cargo xtask fuzz topology [--seconds N] [--seed S]`: the topology fuzz target of
//! tests/fuzz_topology.rs run for a time instead of CI's bounded count, in release
//! mode; it prints executions per second and findings (recorded in BENCHMARKS.md).

use anyhow::Result;

use crate::util;

#[derive(clap::ValueEnum, Clone, Copy)]
pub enum Target {
    /// The YAML loader and validator (parse → validate → prefix → sysctl keys)
    Topology,
}

#[derive(clap::Args)]
pub struct Args {
    /// What to fuzz
    #[arg(value_enum)]
    target: Target,
    /// How long to run
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: u64,
    /// Seed of the mutation generator (the same seed repeats the same inputs)
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run(args: &Args) -> Result<()> {
    let Target::Topology = args.target;
    let mut cmd = util::cargo();
    cmd.args([
        "test",
        "--release",
        "--package",
        "vethscope",
        "--test",
        "fuzz_topology",
        "--",
        "--nocapture",
    ])
    .env("VETHSCOPE_FUZZ_SECONDS", args.seconds.to_string());
    if let Some(seed) = args.seed {
        cmd.env("VETHSCOPE_FUZZ_SEED", seed.to_string());
    }
    util::run(&mut cmd)
}
