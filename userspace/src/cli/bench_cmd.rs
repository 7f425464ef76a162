//! Handler of `bench`: settings from the command line, preflight, the run (removing
//! its labs on Ctrl-C / SIGTERM), then the table on stdout and the JSON / SVG files.
//! Progress lines go to stderr.

use std::process::ExitCode;

use anyhow::Context;

use super::BenchArgs;
use crate::{
    bench::{self, BenchConfig, Status, Wiring},
    privileges::{self, Cap},
};

pub async fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let cfg = BenchConfig {
        wirings: Wiring::unique(&args.wirings)?,
        duration_s: args.duration,
        streams: args.streams,
        rounds: args.rounds,
        udp: args.udp,
        overhead: args.overhead,
        prefix: args.prefix.clone(),
        round_trips: bench::ROUND_TRIPS,
        message_bytes: bench::MESSAGE_BYTES,
        latency_cpu: bench::probe_cpu(),
    };
    cfg.check()?;
    let mut caps = vec![Cap::NetAdmin, Cap::SysAdmin];
    if args.overhead || cfg.wirings.iter().any(|w| w.fast_path()) {
        caps.push(Cap::Bpf);
    }
    privileges::require("bench", &caps)?;
    bench::preflight()?;
    let exe = std::env::current_exe().context("cannot find the vethscope binary itself")?;

    let progress = |line: &str| eprintln!("vethscope bench: {line}");
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch for SIGTERM")?;
    // On a signal the run is dropped: each lab's guard removes it before we return.
    let report = tokio::select! {
        r = bench::run(&cfg, &exe, &progress) => r?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("vethscope bench: interrupted; its labs are removed");
            return Ok(ExitCode::from(130));
        }
        _ = sigterm.recv() => {
            eprintln!("vethscope bench: terminated; its labs are removed");
            return Ok(ExitCode::from(143));
        }
    };

    print!("{}", bench::table(&report));
    if let Some(path) = &args.json {
        let json = report.to_json().context("encoding the results as JSON")?;
        crate::safefs::write_output(path, (json + "\n").as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("vethscope bench: wrote {}", path.display());
    }
    if let Some(path) = &args.svg {
        crate::safefs::write_output(path, bench::svg::render(&report).as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("vethscope bench: wrote {}", path.display());
    }
    let failed: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Failed)
        .map(|r| r.wiring.name())
        .collect();
    if failed.len() == report.results.len() {
        anyhow::bail!("no wiring could be measured (see the table for each error)");
    }
    if !failed.is_empty() {
        eprintln!(
            "vethscope bench: not measured: {} (errors in the table)",
            failed.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
