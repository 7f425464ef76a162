//! `cargo xtask …`: vethscope's developer and CI tasks (see `cargo xtask --help`).
//!
//! One module per command; `setup` holds the machine checks the other commands reuse.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a developer tool: its output is what it prints"
)]

mod bench;
mod bench_scale;
mod bench_serve;
mod build;
mod demo;
mod fuzz;
mod interrupt;
mod leftovers;
mod lint;
mod schemas;
mod setup;
mod star;
mod test;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Developer and CI tasks for vethscope"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what builds and tests need (as root, idempotent): apt packages, nightly
    /// rust-src, bpf-linker, and the bpffs/tracefs mounts
    Setup,
    /// Release build of the workspace (userspace's build.rs builds the eBPF programs)
    Build,
    /// setup, fmt check, clippy, the test suite (as root), then a check for leftovers
    Test,
    /// Bring each built-in scenario up, trace a ping through it, show it, bring it down
    Demo(demo::Args),
    /// fmt check, clippy for the workspace and for the eBPF crate on its real target
    Lint,
    /// Release build, then `vethscope bench ARGS…`; `bench scale [--sizes 200,1000]
    /// [--no-mininet] [--vethscope-only] [--against OLD_BINARY]`: stars of namespaces
    /// built by vethscope, ip, ip -batch, Mininet
    Bench(bench::Args),
    /// Run a fuzz target (topology, exporter, parser) for a time and print executions per second
    Fuzz(fuzz::Args),
    /// Regenerate the JSON Schemas in docs/ (trace, show, diagnose, bench --json) from the
    /// Rust types; the `schemas` test fails while a committed one is out of date
    Schemas,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup => setup::run(),
        Task::Build => build::run(),
        Task::Test => test::run(),
        Task::Demo(args) => demo::run(&args),
        Task::Lint => lint::run(),
        Task::Bench(args) => bench::run(&args),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::Schemas => schemas::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the context chain on one line; Debug would add a backtrace
            // (RUST_BACKTRACE=1 is set on these machines).
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
