//! Benchmark of the eBPF side (issue 3), printed as a table:
//! 1. per-packet cost of each attached program via BPF_PROG_TEST_RUN (ns/packet) for an
//!    ICMP echo, an ARP request and a TCP segment (the common "not ours" case);
//! 2. a 5 s ping flood through the bridge lab under `vethscope trace`: events/s
//!    delivered and events lost.
//!
//! Run as root: `cargo bench -p vethscope --bench probe_cost`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark harness: the figures it prints are its output"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vethscope::probe::{LoadOptions, Probe};

const BATCH: u32 = 10_000;
const BATCHES: u32 = 50;

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0, 10, 1, 1, 2, 10, 1, 1, 3,
    ];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(l4);
    ip
}

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    icmp.extend_from_slice(&[0u8; 56]);
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 1, 1, 2];
    arp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 1, 1, 3]);
    let mut tcp = vec![
        0x9c, 0x40, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0,
    ];
    tcp.extend_from_slice(&[0u8; 1448]);
    vec![
        ("ICMP echo (98 B)", eth(0x0800, &ipv4(1, &icmp))),
        ("ARP request (42 B)", eth(0x0806, &arp)),
        ("TCP segment (1514 B)", eth(0x0800, &ipv4(6, &tcp))),
    ]
}

/// Mean ns per packet over BATCHES × BATCH runs, draining trace events between batches
/// so the ring buffer never fills (a full ring would measure the "lost" path instead).
fn cost(probe: &mut Probe, prog: &'static str, frame: &[u8]) -> f64 {
    let mut total = Duration::ZERO;
    for _ in 0..BATCHES {
        match probe.test_run(prog, frame, BATCH) {
            Ok((d, _)) => total += d,
            Err(e) => {
                eprintln!("{prog}: {}", vethscope::errors::Chain(&e));
                return f64::NAN;
            }
        }
        let _ = probe.drain_trace_events();
    }
    total.as_nanos() as f64 / f64::from(BATCHES)
}

fn per_packet_costs() {
    let mut probe = match Probe::load(LoadOptions::default()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "cannot load the eBPF object (run as root): {}",
                vethscope::errors::Chain(&e)
            );
            std::process::exit(1);
        }
    };
    println!(
        "## Per-packet cost (BPF_PROG_TEST_RUN, {} runs each, mean ns/packet)\n",
        BATCH * BATCHES
    );
    println!(
        "| frame | noop (test-run baseline) | trace_ingress | count_ingress | fastpath_ingress (empty table) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (name, frame) in frames() {
        let n = cost(&mut probe, "noop", &frame);
        let t = cost(&mut probe, "trace_ingress", &frame);
        let c = cost(&mut probe, "count_ingress", &frame);
        let f = cost(&mut probe, "fastpath_ingress", &frame);
        println!("| {name} | {n:.1} | {t:.1} | {c:.1} | {f:.1} |");
    }
    println!(
        "\nThe program's own cost is its column minus the noop baseline (the kernel's test-run loop)."
    );
    println!();
}

fn vethscope(args: &[&str]) -> bool {
    Command::new(env!("CARGO_BIN_EXE_vethscope"))
        .args(args)
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn ping_flood() {
    let prefix = "vsbpc-";
    let lab = format!("{prefix}bridge");
    if !vethscope(&["up", "bridge", "--prefix", prefix]) {
        eprintln!("cannot bring up the bridge lab");
        return;
    }
    let ns1 = format!("{prefix}ns1");
    // Resolve ARP first so the flood is all ICMP.
    let _ = Command::new("ip")
        .args(["netns", "exec", &ns1, "ping", "-c", "1", "10.1.1.3"])
        .output();
    let mut tracer = match Command::new(env!("CARGO_BIN_EXE_vethscope"))
        .args([
            "trace",
            &lab,
            "--json",
            "--proto",
            "icmp",
            "--duration",
            "8",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start trace: {e}");
            let _ = vethscope(&["down", &lab]);
            return;
        }
    };
    if let Some(err) = tracer.stderr.take() {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("tracing") {
                break;
            }
        }
    }
    // Read the tracer's output while the flood runs: a full pipe would stall it.
    let reader = tracer.stdout.take().map(|out| {
        std::thread::spawn(move || {
            BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .filter(|l| l.contains("\"summary\""))
                .last()
                .unwrap_or_default()
        })
    });
    let started = Instant::now();
    let flood = Command::new("ip")
        .args([
            "netns", "exec", &ns1, "ping", "-f", "-q", "-w", "5", "10.1.1.3",
        ])
        .output();
    let flood_secs = started.elapsed().as_secs_f64();
    let sent = flood
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .and_then(|t| {
            t.lines()
                .find(|l| l.contains("transmitted"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    let summary = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    let _ = tracer.wait();
    let _ = vethscope(&["down", &lab]);
    let v: serde_json::Value = serde_json::from_str(&summary).unwrap_or_default();
    let events = v["events"].as_u64().unwrap_or(0);
    let lost = v["lost"].as_u64().unwrap_or(0);
    println!("## Ping flood through the bridge lab under trace ({flood_secs:.1} s)\n");
    println!("- ping: {sent}");
    println!(
        "- events delivered: {events} ({:.0} events/s), lost: {lost}",
        events as f64 / flood_secs.max(0.001)
    );
    println!("- each echo crosses 4 hooks each way: 8 events per answered ping\n");
}

fn main() {
    // `cargo bench` passes --bench; there are no filters to honour.
    per_packet_costs();
    ping_flood();
}
