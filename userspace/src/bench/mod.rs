//! `vethscope bench`: throughput, latency and CPU of each wiring, side by side.
//!
//! For round 1..=R, for each wiring (interleaved: A B C A B C, so drift of the machine
//! hits every wiring alike): make the lab from its built-in scenario under a prefix
//! (plus the eBPF fast path for `fast-path` / `ovs-fast-path`), check that the client
//! namespace reaches the server, measure, remove the lab. One measurement is:
//! - latency: UDP and TCP ping-pong of small messages ([`pingpong`]), p50/p90/p99;
//! - iperf3 TCP, one stream and N streams ([`iperf`]), with whole-machine CPU use
//!   from /proc/stat during each run ([`cpu`]);
//! - with `udp`: iperf3 UDP with 64-byte datagrams at unlimited rate (packets/s).
//!
//! A wiring that fails (its lab cannot be made, the fast path is not available, iperf3
//! fails) is reported with its error; the others still run. Results: medians, min and
//! max per wiring, ratios to `direct` ([`report`]), a table, JSON and an SVG chart
//! ([`svg`]); `overhead` adds tracing and counting cost on the bridge wiring
//! ([`overhead`]). Method and JSON layout: docs/bench.md.

mod cpu;
mod error;
mod iperf;
mod lab;
mod overhead;
mod pingpong;
mod plan;
mod report;
mod stats;
pub mod svg;

use std::path::Path;
use std::time::Duration;

pub use error::BenchError;
pub use pingpong::probe_cpu;
pub use plan::{BenchConfig, Wiring};
pub use report::{BenchReport, Status, table};

use iperf::IperfSpec;
use lab::{Endpoints, LabGuard};
use pingpong::{Cancel, CancelOnDrop, PingSpec, Proto};
use report::{Environment, ReportConfig, Sample, WiringResult};

/// Receives one progress line (the CLI prints them on stderr).
pub type Progress<'a> = dyn Fn(&str) + Sync + 'a;

/// Round trips per latency probe, after [`WARMUP`] untimed ones.
pub const ROUND_TRIPS: u32 = 10_000;
pub const WARMUP: u32 = 200;
/// Bytes per latency probe message.
pub const MESSAGE_BYTES: usize = 64;

/// The tools the bench needs, with their Debian packages.
pub fn preflight() -> Result<(), BenchError> {
    if !on_path("iperf3") {
        return Err(BenchError::MissingTool {
            tool: "iperf3",
            package: "iperf3",
        });
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

async fn environment() -> Environment {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    };
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let iperf3 = tokio::process::Command::new("iperf3")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown".into());
    let before = cpu::CpuSnapshot::now().ok();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline_cpu_percent = before
        .zip(cpu::CpuSnapshot::now().ok())
        .and_then(|(a, b)| a.percent_until(&b));
    Environment {
        load_average: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok())),
        baseline_cpu_percent,
        date: report::utc_date(started_unix),
        started_unix,
        kernel: read("/proc/sys/kernel/osrelease"),
        hostname: read("/proc/sys/kernel/hostname"),
        cpus: cpu::cpu_count(),
        iperf3,
        vethscope: env!("CARGO_PKG_VERSION"),
    }
}

/// Removes labs a killed earlier bench with the same prefix may have left.
async fn remove_leftovers(cfg: &BenchConfig, progress: &Progress<'_>) {
    let mut labs: Vec<(String, bool)> = cfg
        .wirings
        .iter()
        .map(|w| (cfg.lab_name(*w), w.fast_path()))
        .collect();
    if cfg.overhead {
        labs.push((cfg.lab_name(Wiring::Bridge), false));
    }
    labs.sort();
    labs.dedup_by(|a, b| {
        if a.0 == b.0 {
            b.1 |= a.1;
            true
        } else {
            false
        }
    });
    for (lab, fast_path) in labs {
        if fast_path && let Err(e) = crate::fastpath::disable(&lab).await {
            tracing::debug!("fast path of {lab}: {}", crate::errors::Chain(&e));
        }
        match crate::wire::down(&lab).await {
            Ok(r) if !r.was_absent => {
                progress(&format!("removed lab {lab} left by an earlier run"))
            }
            Ok(_) => {}
            Err(e) => progress(&format!(
                "could not remove leftover lab {lab}: {}",
                crate::errors::Chain(&e)
            )),
        }
    }
}

/// Runs the whole bench. Labs are always removed, also when this future is dropped
/// (Ctrl-C). Errors are only those that stop everything (settings, missing tools);
/// a failing wiring is a result.
pub async fn run(
    cfg: &BenchConfig,
    exe: &Path,
    progress: &Progress<'_>,
) -> Result<BenchReport, BenchError> {
    cfg.check()?;
    preflight()?;
    let environment = environment().await;
    if let Some(busy) = environment.baseline_cpu_percent.filter(|b| *b > 10.0) {
        progress(&format!(
            "the machine is busy ({busy:.0} % CPU before the start): the numbers will be noisy"
        ));
    }
    remove_leftovers(cfg, progress).await;

    let mut samples: Vec<(Wiring, Vec<Sample>)> =
        cfg.wirings.iter().map(|w| (*w, Vec::new())).collect();
    for (round, wiring) in cfg.schedule() {
        progress(&format!(
            "[round {round}/{}] {wiring}: lab up, measuring",
            cfg.rounds
        ));
        let sample = measure_wiring(cfg, wiring, round).await;
        progress(&format!(
            "[round {round}/{}] {wiring}: {}",
            cfg.rounds,
            sample_line(&sample)
        ));
        if let Some((_, s)) = samples.iter_mut().find(|(w, _)| *w == wiring) {
            s.push(sample);
        }
    }
    let mut results: Vec<WiringResult> = samples
        .into_iter()
        .map(|(w, s)| WiringResult::new(w, cfg.lab_name(w), s))
        .collect();
    report::add_ratios(&mut results);

    let overhead = if cfg.overhead {
        Some(overhead::run(cfg, exe, progress).await)
    } else {
        None
    };
    Ok(BenchReport {
        schema: report::SCHEMA,
        config: ReportConfig {
            bench: cfg.clone(),
            iperf_seconds: cfg.iperf_seconds(),
            order: "interleaved",
            environment,
        },
        results,
        overhead,
    })
}

/// One progress line for a finished sample.
fn sample_line(s: &Sample) -> String {
    let mut parts = Vec::new();
    if let Some(r) = &s.rtt_udp {
        parts.push(format!("UDP RTT p50 {:.0} µs", r.p50_us));
    }
    if let Some(t) = &s.tcp_1 {
        parts.push(format!("1 stream {:.2} Gbit/s", t.gbps));
        if let Some(c) = t.cpu_percent {
            parts.push(format!("CPU {c:.0} %"));
        }
    }
    if let Some(t) = &s.tcp_n {
        parts.push(format!("N streams {:.2} Gbit/s", t.gbps));
    }
    if let Some(u) = &s.udp {
        parts.push(format!("UDP {:.0} kpps", u.received_pps / 1000.0));
    }
    if let Some(e) = &s.error {
        parts.push(format!("failed: {e}"));
    }
    parts.join(", ")
}

async fn measure_wiring(cfg: &BenchConfig, wiring: Wiring, round: u32) -> Sample {
    let mut sample = Sample {
        round,
        ..Default::default()
    };
    if let Err(e) = measure_wiring_into(cfg, wiring, &mut sample).await {
        sample.error = Some(crate::errors::Chain(&e).to_string());
    }
    sample
}

async fn measure_wiring_into(
    cfg: &BenchConfig,
    wiring: Wiring,
    sample: &mut Sample,
) -> Result<(), BenchError> {
    let topo = crate::topology::Topology::load(wiring.scenario())?.with_prefix(&cfg.prefix);
    let ep = lab::endpoints(&topo)?;
    let guard = LabGuard::up(&topo, wiring.fast_path()).await?;
    let measured = measure_lab(cfg, &ep, sample, true).await;
    let removed = guard.release().await;
    measured?;
    removed
}

/// Measures a lab that is up. `full`: everything; otherwise (overhead variants) UDP
/// latency and the 1-stream TCP run only. Fills `sample` as it goes.
pub(crate) async fn measure_lab(
    cfg: &BenchConfig,
    ep: &Endpoints,
    sample: &mut Sample,
    full: bool,
) -> Result<(), BenchError> {
    reachable(ep).await?;
    sample.rtt_udp = Some(latency(cfg, ep, Proto::Udp).await?);
    if full {
        sample.rtt_tcp = Some(latency(cfg, ep, Proto::Tcp).await?);
    }
    let spec = |streams: u32, udp: bool, what: &str| IperfSpec {
        server_ns: ep.server_ns.clone(),
        client_ns: ep.client_ns.clone(),
        server_ip: ep.server_ip,
        seconds: cfg.iperf_seconds(),
        streams,
        udp,
        what: format!("{} → {}: {what}", ep.client_ns, ep.server_ns),
    };
    sample.tcp_1 = Some(iperf::run_tcp(&spec(1, false, "iperf3 TCP, 1 stream")).await?);
    if full {
        let what = format!("iperf3 TCP, {} streams", cfg.streams);
        sample.tcp_n = Some(iperf::run_tcp(&spec(cfg.streams, false, &what)).await?);
        if cfg.udp {
            sample.udp =
                Some(iperf::run_udp(&spec(1, true, "iperf3 UDP, 64-byte datagrams")).await?);
        }
    }
    Ok(())
}

/// Runs blocking probe code off the async workers; a dropped future cancels it.
async fn blocking<R: Send + 'static>(
    what: &str,
    f: impl FnOnce(&Cancel) -> Result<R, BenchError> + Send + 'static,
) -> Result<R, BenchError> {
    let cancel = Cancel::default();
    let _on_drop = CancelOnDrop(cancel.clone());
    tokio::task::spawn_blocking(move || f(&cancel))
        .await
        .map_err(|e| BenchError::Probe {
            what: what.to_string(),
            detail: e.to_string(),
        })?
}

async fn reachable(ep: &Endpoints) -> Result<(), BenchError> {
    let ep = ep.clone();
    blocking("reachability check", move |cancel| {
        pingpong::wait_reachable(
            &ep.client_ns,
            &ep.server_ns,
            ep.server_ip,
            Duration::from_secs(10),
            cancel,
        )
    })
    .await
}

async fn latency(
    cfg: &BenchConfig,
    ep: &Endpoints,
    proto: Proto,
) -> Result<pingpong::Rtt, BenchError> {
    let spec = PingSpec {
        server_ns: ep.server_ns.clone(),
        client_ns: ep.client_ns.clone(),
        server_ip: ep.server_ip,
        proto,
        round_trips: cfg.round_trips,
        warmup: WARMUP,
        message_bytes: cfg.message_bytes,
        cpu: cfg.latency_cpu,
    };
    blocking("latency probe", move |cancel| {
        pingpong::measure(&spec, cancel)
    })
    .await
}
