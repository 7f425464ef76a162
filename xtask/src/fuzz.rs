//! `cargo xtask fuzz topology|exporter|parser [--seconds N] [--seed S]`: one fuzz target
//! run for a time instead of CI's bounded count; it prints executions per second and
//! findings (recorded in BENCHMARKS.md). A finding fails the command and shows the
//! shrunk input and the seed that replays it.
//!
//! - topology: tests/fuzz_topology.rs (release build);
//! - exporter, parser: tests/fuzz.rs (the debug build the test suite already made; the
//!   parser target needs root for BPF_PROG_TEST_RUN). Without `--seed` these start from
//!   a seed taken from the clock, printed in the summary line.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::util;

#[derive(clap::ValueEnum, Clone, Copy)]
pub enum Target {
    /// The YAML loader and validator (parse → validate → prefix → sysctl keys)
    Topology,
    /// The HTTP server of `serve` (random and mutated requests, in-process)
    Exporter,
    /// The in-kernel packet parser through BPF_PROG_TEST_RUN, against etherparse (root)
    Parser,
}

#[derive(clap::Args)]
pub struct Args {
    /// What to fuzz
    #[arg(value_enum)]
    target: Target,
    /// How long to run
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: u64,
    /// Seed of the input generator (the same seed repeats the same inputs)
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run(args: &Args) -> Result<()> {
    let mut cmd = util::cargo();
    match args.target {
        Target::Topology => {
            cmd.args([
                "test",
                "--release",
                "--package",
                "vethscope",
                "--test",
                "fuzz_topology",
                "--",
                "--nocapture",
            ]);
            if let Some(seed) = args.seed {
                cmd.env("VETHSCOPE_FUZZ_SEED", seed.to_string());
            }
        }
        Target::Exporter | Target::Parser => {
            let name = if matches!(args.target, Target::Exporter) {
                "exporter"
            } else {
                "parser"
            };
            let seed = args.seed.unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_secs())
            });
            cmd.args([
                "test",
                "--package",
                "vethscope",
                "--test",
                "fuzz",
                "--",
                name,
            ])
            .args(["--exact", "--nocapture", "--test-threads=1"])
            .env("VETHSCOPE_FUZZ_SEED", seed.to_string())
            .env("RUST_BACKTRACE", "0");
        }
    }
    cmd.env("VETHSCOPE_FUZZ_SECONDS", args.seconds.to_string());
    util::run(&mut cmd)
}
