//! Benchmark of `up FILE` on a running lab that changes one link (diff-apply), against
//! the real kernel (run as root, inside the simulated host for development):
//!
//!     cargo bench -p vethscope --bench diff_apply
//!
//! For labs of 20 and 200 namespaces (veth pairs between neighbours), alternately
//! applies two files that differ in one link's address and MTU, and prints the time
//! `up` reports for the change (plan + apply, in-process) and the whole command's wall
//! time (process start, validation, lock, plan, apply), median of the rounds.
//!
//! Knobs (environment): VETHSCOPE_BENCH_SIZES ("20,200"), VETHSCOPE_BENCH_ROUNDS (6).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark harness: the figures it prints are its output"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{ok, topology_file, vethscope};

fn lab_file(n: usize, variant: bool) -> String {
    let mut s = String::from("name: diffbench\nnamespaces:\n");
    for i in 0..n {
        s.push_str(&format!("  - name: d{i}\n"));
    }
    s.push_str("links:\n");
    for p in 0..n / 2 {
        let (a, b) = (2 * p, 2 * p + 1);
        let (x, y) = (p / 250, p % 250);
        let (addr_a, mtu) = if p == 0 && variant {
            (format!("10.{x}.{y}.20/24"), 1400)
        } else {
            (format!("10.{x}.{y}.2/24"), 1500)
        };
        s.push_str(&format!(
            "  - kind: veth\n    ends:\n      - {{ns: d{a}, name: e0, addresses: [{addr_a}], mtu: {mtu}}}\n      - {{ns: d{b}, name: e0, addresses: [10.{x}.{y}.3/24]}}\n"
        ));
    }
    s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("VETHSCOPE_BENCH_SIZES")
        .unwrap_or_else(|_| "20,200".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rounds: usize = std::env::var("VETHSCOPE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    println!(
        "{:>10} {:>8} {:>16} {:>16} {:>14}",
        "namespaces", "rounds", "up reports (ms)", "wall (ms)", "make lab (ms)"
    );
    for n in sizes {
        let prefix = "vsdb-";
        let lab = format!("{prefix}diffbench");
        let _ = vethscope(&["down", &lab]);
        let a = topology_file(&format!("diffbench-{n}-a"), &lab_file(n, false));
        let b = topology_file(&format!("diffbench-{n}-b"), &lab_file(n, true));
        let (a, b) = (
            a.to_str().unwrap_or_default().to_string(),
            b.to_str().unwrap_or_default().to_string(),
        );
        let t0 = Instant::now();
        ok(&["up", &a, "--prefix", prefix]);
        let make_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let mut reported = Vec::new();
        let mut wall = Vec::new();
        for r in 0..rounds {
            let file = if r % 2 == 0 { &b } else { &a };
            let t = Instant::now();
            let out = ok(&["up", file, "--prefix", prefix]);
            wall.push(t.elapsed().as_secs_f64() * 1000.0);
            let ms = out
                .lines()
                .find_map(|l| l.split(" changes in ").nth(1))
                .and_then(|rest| rest.trim_end_matches(" ms").trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no timing in: {out}"));
            assert!(out.contains("d0: "), "only the changed link: {out}");
            reported.push(ms);
        }
        ok(&["down", &lab]);
        println!(
            "{n:>10} {rounds:>8} {:>16.1} {:>16.1} {make_ms:>14.0}",
            median(reported),
            median(wall)
        );
    }
}
