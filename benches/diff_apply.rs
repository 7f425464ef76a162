//! Benchmark of `up FILE` on a running lab that changes one link (diff-apply), against
//! the real kernel (run as root, inside the simulated host for development):
//!
//!     cargo bench -p vethscope --bench diff_apply
//!
//! For labs of 20, 200 and 1,000 namespaces (veth pairs between neighbours), alternately
//! applies two files that differ in one link — its address and MTU ("attributes"), or
//! the link itself removed and a new one made in its place ("re-make") — and prints the
//! time `up` reports for the change (plan + apply, in-process) and the whole command's
//! wall time (process start, validation, lock, plan, apply), median of the rounds.
//!
//! Knobs (environment): VETHSCOPE_BENCH_SIZES ("20,200,1000"), VETHSCOPE_BENCH_ROUNDS (6).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark harness: the figures it prints are its output"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{ok, topology_file, vethscope};

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Base,
    /// Link 0: another address and MTU on one end.
    Attributes,
    /// Link 0: its second end renamed, so the link is removed and a new one made.
    Remake,
}

fn lab_file(n: usize, variant: Variant) -> String {
    let mut s = String::from("name: diffbench\nnamespaces:\n");
    for i in 0..n {
        s.push_str(&format!("  - name: d{i}\n"));
    }
    s.push_str("links:\n");
    for p in 0..n / 2 {
        let (a, b) = (2 * p, 2 * p + 1);
        let (x, y) = (p / 250, p % 250);
        let (addr_a, mtu) = if p == 0 && variant == Variant::Attributes {
            (format!("10.{x}.{y}.20/24"), 1400)
        } else {
            (format!("10.{x}.{y}.2/24"), 1500)
        };
        let peer = if p == 0 && variant == Variant::Remake {
            "e1"
        } else {
            "e0"
        };
        s.push_str(&format!(
            "  - kind: veth\n    ends:\n      - {{ns: d{a}, name: e0, addresses: [{addr_a}], mtu: {mtu}}}\n      - {{ns: d{b}, name: {peer}, addresses: [10.{x}.{y}.3/24]}}\n"
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
        .unwrap_or_else(|_| "20,200,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rounds: usize = std::env::var("VETHSCOPE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    println!(
        "{:>10} {:>11} {:>8} {:>16} {:>16} {:>14}",
        "namespaces", "change", "rounds", "up reports (ms)", "wall (ms)", "make lab (ms)"
    );
    for n in sizes {
        let prefix = "vsdb-";
        let lab = format!("{prefix}diffbench");
        let _ = vethscope(&["down", &lab]);
        let base = topology_file(&format!("diffbench-{n}-a"), &lab_file(n, Variant::Base));
        let base = base.to_str().unwrap_or_default().to_string();
        let t0 = Instant::now();
        ok(&["up", &base, "--prefix", prefix]);
        let make_ms = t0.elapsed().as_secs_f64() * 1000.0;
        for (name, variant) in [
            ("attributes", Variant::Attributes),
            ("re-make", Variant::Remake),
        ] {
            let changed = topology_file(&format!("diffbench-{n}-{name}"), &lab_file(n, variant));
            let changed = changed.to_str().unwrap_or_default().to_string();
            let mut reported = Vec::new();
            let mut wall = Vec::new();
            // An even number of rounds ends on the base file for the next variant.
            for r in 0..rounds.next_multiple_of(2) {
                let file = if r % 2 == 0 { &changed } else { &base };
                let t = Instant::now();
                let out = ok(&["up", file, "--prefix", prefix]);
                wall.push(t.elapsed().as_secs_f64() * 1000.0);
                let ms = out
                    .lines()
                    .find_map(|l| l.split(" changes in ").nth(1))
                    .and_then(|rest| rest.trim_end_matches(" ms").trim().parse::<f64>().ok())
                    .unwrap_or_else(|| panic!("no timing in: {out}"));
                assert!(
                    out.lines()
                        .filter(|l| !l.contains(" changes in "))
                        .all(|l| l.contains("d0") || l.contains("d1")),
                    "only the changed link: {out}"
                );
                reported.push(ms);
            }
            println!(
                "{n:>10} {name:>11} {:>8} {:>16.1} {:>16.1} {make_ms:>14.0}",
                reported.len(),
                median(reported),
                median(wall)
            );
        }
        ok(&["down", &lab]);
    }
}
