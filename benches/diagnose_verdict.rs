//! Time to a verdict of `vethscope diagnose` (static checks + traced probe), against the
//! real kernel (run as root, e.g. inside the simulated host):
//!
//!     cargo bench -p vethscope --bench diagnose_verdict
//!
//! For each lab — the built-in `direct`, `bridge`, `ovs`, `ovs-internal` and `same-ns`, and a star of
//! 100 namespaces on one Linux bridge — one healthy path and one broken path (the
//! destination's interface down; for same-ns, accept_local off), each diagnosed
//! VETHSCOPE_BENCH_RUNS times (default 7). Printed side by side: wall time of the
//! whole command (process start to exit) median and min, the engine's own elapsed_ms,
//! and the same with --no-probe. The goal is under 1 s per pair, probe included.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark harness: the figures it prints are its output"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{Lab, bin, in_ns, knob, topology_file};

struct Figures {
    wall_median_ms: f64,
    wall_min_ms: f64,
    engine_median_ms: f64,
    exit: i32,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn measure(lab: &str, from: &str, to: &str, extra: &[&str], runs: u64) -> Figures {
    let mut wall = Vec::new();
    let mut engine = Vec::new();
    let mut exit = -1;
    for _ in 0..runs {
        let t = Instant::now();
        let mut args = vec!["diagnose", lab, "--from", from, "--to", to, "--json"];
        args.extend_from_slice(extra);
        let out = std::process::Command::new(bin())
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("run diagnose: {e}"));
        wall.push(t.elapsed().as_secs_f64() * 1e3);
        exit = out.status.code().unwrap_or(-1);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "diagnose {args:?}: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        engine.push(v["elapsed_ms"].as_f64().unwrap_or(f64::NAN));
    }
    Figures {
        wall_median_ms: median(&mut wall.clone()),
        wall_min_ms: wall.iter().copied().fold(f64::INFINITY, f64::min),
        engine_median_ms: median(&mut engine),
        exit,
    }
}

fn row(name: &str, lab: &str, from: &str, to: &str, runs: u64) {
    let p = measure(lab, from, to, &[], runs);
    let s = measure(lab, from, to, &["--no-probe"], runs);
    println!(
        "{name:<28} exit {}  with probe: wall median {:>6.0} ms (min {:>6.0}), engine {:>6.0} ms   static only: wall median {:>6.0} ms, engine {:>5.0} ms",
        p.exit,
        p.wall_median_ms,
        p.wall_min_ms,
        p.engine_median_ms,
        s.wall_median_ms,
        s.engine_median_ms
    );
}

fn star_file(n: usize) -> std::path::PathBuf {
    let mut y = String::from("name: star\nnamespaces:\n");
    for i in 0..n {
        y.push_str(&format!("  - name: n{i}\n"));
    }
    y.push_str("bridges:\n  - {name: br0, kind: linux}\nlinks:\n");
    for i in 0..n {
        y.push_str(&format!(
            "  - kind: veth\n    ends:\n      - {{ns: n{i}, name: eth0, addresses: [10.9.{}.{}/16]}}\n      - {{bridge: br0, name: p{i}}}\n",
            (i + 2) / 250,
            (i + 2) % 250 + 1
        ));
    }
    topology_file("qz", &y)
}

fn main() {
    let runs = knob("VETHSCOPE_BENCH_RUNS", 7);
    println!("diagnose time to verdict, {runs} runs each (healthy: exit 0; broken: exit 1)");
    for spec in ["direct", "bridge", "ovs", "ovs-internal"] {
        let lab = Lab::up(spec, "qy");
        let from = lab.ns("ns1");
        row(
            &format!("{spec} healthy"),
            &lab.name,
            &from,
            "10.1.1.3",
            runs,
        );
        let ns2 = lab.ns("ns2");
        // An OVS internal port is made in the root namespace, so it carries the
        // lab's prefix like every root-side name; a veth end made in ns2 does not.
        let dest_if = if spec == "ovs-internal" {
            lab.host_if("tap2")
        } else {
            "veth1".to_string()
        };
        let out = in_ns(&ns2, &["ip", "link", "set", &dest_if, "down"]);
        assert!(
            out.status.success(),
            "{spec}: cannot set {dest_if} down in {ns2}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        row(
            &format!("{spec} broken (link down)"),
            &lab.name,
            &from,
            "10.1.1.3",
            runs,
        );
    }
    {
        let lab = Lab::up("same-ns", "qy");
        let ns1 = lab.ns("ns1");
        row("same-ns healthy", &lab.name, &ns1, "10.1.1.3", runs);
        let _ = in_ns(
            &ns1,
            &[
                "sysctl",
                "-w",
                "net.ipv4.conf.all.accept_local=0",
                "net.ipv4.conf.veth1.accept_local=0",
            ],
        );
        row(
            "same-ns broken (accept_local)",
            &lab.name,
            &ns1,
            "10.1.1.3",
            runs,
        );
    }
    {
        let n = knob("VETHSCOPE_BENCH_STAR", 100) as usize;
        let file = star_file(n);
        let t = Instant::now();
        let lab = Lab::up(file.to_str().unwrap_or_default(), "qz");
        println!(
            "(star of {n} namespaces up in {:.0} ms)",
            t.elapsed().as_secs_f64() * 1e3
        );
        let from = lab.ns("n0");
        let last = n - 1;
        let to = format!("10.9.{}.{}", (last + 2) / 250, (last + 2) % 250 + 1);
        row(&format!("star {n} healthy"), &lab.name, &from, &to, runs);
        let _ = in_ns(
            &lab.ns(&format!("n{last}")),
            &["ip", "link", "set", "eth0", "down"],
        );
        row(
            &format!("star {n} broken (link down)"),
            &lab.name,
            &from,
            &to,
            runs,
        );
    }
}
