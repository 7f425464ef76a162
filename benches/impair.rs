//! Benchmark of the impairment program (issue 12), printed as a table:
//! 1. per-packet cost of `impair_egress` via BPF_PROG_TEST_RUN for an ICMP echo, per
//!    setting, next to the empty program `noop`;
//! 2. accuracy: the program's own decisions over 1,000,000 runs per setting against the
//!    configured probability (in standard deviations of the binomial).
//!
//! Run as root, in a scratch network namespace (duplication really sends the clone
//! out of `lo`): `cargo bench -p vethscope --bench impair`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark harness: the figures it prints are its output"
)]

use std::path::PathBuf;

use vethscope::impair::{Impairment, engine};
use vethscope::probe::{ImpairStats, LoadOptions, PinnableMap, Probe};
use vethscope_common::names::program;

const RUNS: u32 = 1_000_000;

fn icmp_frame() -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let mut ip = vec![
        0x45, 0, 0, 84, 0, 0, 0x40, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
    ];
    ip.extend_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1]);
    ip.extend_from_slice(&[0u8; 56]);
    f.extend_from_slice(&ip);
    f
}

fn main() {
    let dir = PathBuf::from("/sys/fs/bpf/vethscope-impair-bench");
    let _ = std::fs::create_dir(&dir);
    let mut probe = Probe::load(LoadOptions {
        ebpf_log: false,
        map_pins: [PinnableMap::ImpairConfig, PinnableMap::ImpairStats]
            .into_iter()
            .map(|m| (m, dir.join(m.name())))
            .collect(),
    })
    .expect("load the eBPF object (root, CAP_BPF)");
    // BPF_PROG_TEST_RUN runs the program on `lo` (ifindex 1) of this namespace.
    let cookie = vethscope::netns::cookie("host").expect("netns cookie");
    let key = engine::key(cookie, 1);
    let frame = icmp_frame();
    let (noop, _) = probe.test_run(program::NOOP, &frame, RUNS).expect("noop");
    println!("impair_egress per packet (ICMP echo, {RUNS} runs each), BPF_PROG_TEST_RUN");
    println!(
        "{:<26} {:>10} {:>12} {:>12} {:>12} {:>8}",
        "setting", "ns/packet", "configured", "achieved", "runs", "σ off"
    );
    println!("{:<26} {:>10.1}", "noop (baseline)", noop.as_nanos() as f64);
    for (label, key_name, value) in [
        ("no impairment (0%)", "loss", "0%"),
        ("loss 1%", "loss", "1%"),
        ("loss 100%", "loss", "100%"),
        ("corrupt 1%", "corrupt", "1%"),
        ("corrupt 100%", "corrupt", "100%"),
        ("duplicate 1%", "duplicate", "1%"),
        ("duplicate 100%", "duplicate", "100%"),
    ] {
        let mut imp = Impairment::default();
        imp.set(key_name, value).expect("setting");
        probe
            .set_impair_config(key, engine::config(&imp))
            .expect("set config");
        let mut stats = ImpairStats::open_pinned(&dir).expect("stats");
        stats.remove(key);
        let runs = if key_name == "duplicate" {
            RUNS / 10
        } else {
            RUNS
        };
        let (d, _) = probe
            .test_run(program::IMPAIR_EGRESS, &frame, runs)
            .expect("run");
        let c = stats.totals().get(&key).copied().unwrap_or_default();
        let acted = match key_name {
            "loss" => c.dropped,
            "corrupt" => c.corrupted,
            _ => c.duplicated,
        };
        let p = imp
            .loss
            .or(imp.corrupt)
            .or(imp.duplicate)
            .map_or(0.0, |p| p.fraction());
        let n = c.seen as f64;
        let sd = (n * p * (1.0 - p)).sqrt();
        let sigma = if sd > 0.0 {
            (acted as f64 - n * p) / sd
        } else {
            0.0
        };
        println!(
            "{label:<26} {:>10.1} {:>12} {:>11.4}% {:>12} {:>+8.2}",
            d.as_nanos() as f64,
            value,
            100.0 * acted as f64 / n.max(1.0),
            c.seen,
            sigma
        );
    }
    drop(probe);
    for m in [PinnableMap::ImpairConfig, PinnableMap::ImpairStats] {
        let _ = std::fs::remove_file(dir.join(m.name()));
    }
    let _ = std::fs::remove_dir(&dir);
}
