//! Benchmark of the Prometheus exporter, against the real kernel (run as root):
//!
//!     cargo bench -p vethscope --bench metrics_scrape
//!
//! 1. A lab of 1,000 veth ends (500 pairs between two namespaces, plus their two `lo`):
//!    time for `serve` to attach, /metrics latency (median, p99) and size in both
//!    formats, RSS of the serve process, its idle CPU (re-listing links), time to exit.
//! 2. iperf3 TCP throughput ns1 → ns2 through the bridge lab, with `serve` counting on
//!    every link vs. without, in alternating rounds; the ratio is the cost of counting.
//!
//! Knobs (environment): VETHSCOPE_BENCH_PAIRS (500), VETHSCOPE_BENCH_SCRAPES (100),
//! VETHSCOPE_BENCH_ROUNDS (10), VETHSCOPE_BENCH_SECONDS (6).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark harness: the figures it prints are its output"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Lab, bin, in_ns, knob, topology_file};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// GET `path`; the body (or None when nothing answers / not 200).
fn get(addr: &str, path: &str, accept: Option<&str>) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

fn links_of(metrics: &str, lab: &str) -> Option<u64> {
    let prefix = format!("vethscope_links{{lab=\"{lab}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// A `vethscope serve` child; SIGTERM and wait when dropped.
struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    /// Starts serving `lab` and waits until `links` links are attached.
    fn start(lab: &str, links: u64) -> (Self, Duration) {
        let addr = format!("127.0.0.1:{}", free_port());
        let t0 = Instant::now();
        let child = Command::new(bin())
            .args(["serve", lab, "--listen", &addr, "--refresh", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn serve: {e}"));
        let serve = Serve { child, addr };
        let deadline = t0 + Duration::from_secs(600);
        loop {
            if get(&serve.addr, "/metrics", None).and_then(|m| links_of(&m, lab)) == Some(links) {
                return (serve, t0.elapsed());
            }
            assert!(
                Instant::now() < deadline,
                "serve did not attach {links} links in 600 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM; how long until it has exited (every TCX link detached).
    fn stop(mut self) -> Duration {
        let t0 = Instant::now();
        // SAFETY: kill(2) on our own unreaped child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
        t0.elapsed()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: as above.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = self.child.wait();
        }
    }
}

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may contain spaces) start after ')'.
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Scrape latency in ms (sorted) and body size of `n` sequential scrapes.
fn scrapes(addr: &str, n: u64, accept: Option<&str>) -> (Vec<f64>, usize) {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..n {
        let t0 = Instant::now();
        let body = get(addr, "/metrics", accept).unwrap_or_else(|| panic!("scrape failed"));
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        size = body.len();
    }
    times.sort_by(f64::total_cmp);
    (times, size)
}

fn scale() {
    let pairs = knob("VETHSCOPE_BENCH_PAIRS", 500);
    let n = knob("VETHSCOPE_BENCH_SCRAPES", 100);
    let mut yaml = String::from("name: scale\nnamespaces:\n  - name: ns1\n  - name: ns2\nlinks:\n");
    for i in 0..pairs {
        yaml.push_str(&format!(
            "  - kind: veth\n    ends:\n      - {{ns: ns1, name: a{i}}}\n      - {{ns: ns2, name: b{i}}}\n"
        ));
    }
    let file = topology_file("mz", &yaml);
    let t0 = Instant::now();
    let lab = Lab::up(file.to_str().unwrap_or_default(), "mz");
    let up = t0.elapsed();
    let links = pairs * 2 + 2;
    println!(
        "lab {}: {} veth ends + 2 lo = {links} links, up in {:.1} s",
        lab.name,
        pairs * 2,
        up.as_secs_f64()
    );

    let (serve, attach) = Serve::start(&lab.name, links);
    println!(
        "serve: all {links} links attached after {:.1} s ({:.1} ms per TCX program)",
        attach.as_secs_f64(),
        attach.as_secs_f64() * 1e3 / (links * 2) as f64
    );
    // Some traffic on every pair so the maps hold more than neighbour discovery.
    let _ = in_ns(
        &lab.ns("ns1"),
        &[
            "sh",
            "-c",
            "for i in $(seq 0 9); do ping -c1 -W1 -I a$i ff02::1%a$i >/dev/null 2>&1; done",
        ],
    );
    let _ = scrapes(&serve.addr, 3, None);

    let (text, text_size) = scrapes(&serve.addr, n, None);
    let (om, om_size) = scrapes(
        &serve.addr,
        n.div_ceil(4),
        Some("application/openmetrics-text;version=1.0.0"),
    );
    let series = get(&serve.addr, "/metrics", None)
        .map(|m| m.lines().filter(|l| !l.starts_with('#')).count())
        .unwrap_or(0);
    let rss = status_kb(serve.pid(), "VmRSS:");
    let hwm = status_kb(serve.pid(), "VmHWM:");
    let c0 = cpu_ticks(serve.pid());
    std::thread::sleep(Duration::from_secs(10));
    let idle_cpu = (cpu_ticks(serve.pid()) - c0) as f64 / 100.0 / 10.0 * 100.0;
    let exit = serve.stop();
    drop(lab);

    println!("/metrics with {links} links: {series} series");
    println!(
        "  text 0.0.4     {n:>4} scrapes: median {:.1} ms, p99 {:.1} ms, {:.2} MB",
        percentile(&text, 0.5),
        percentile(&text, 0.99),
        text_size as f64 / 1e6
    );
    println!(
        "  OpenMetrics    {:>4} scrapes: median {:.1} ms, p99 {:.1} ms, {:.2} MB",
        om.len(),
        percentile(&om, 0.5),
        percentile(&om, 0.99),
        om_size as f64 / 1e6
    );
    println!(
        "  serve RSS {:.1} MB (peak {:.1} MB)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!("  serve idle CPU (re-listing links every 2 s): {idle_cpu:.1} % of one core");
    println!(
        "  exit after SIGTERM (detach all): {:.1} s",
        exit.as_secs_f64()
    );
}

/// iperf3 client run from ns1 to ns2: received throughput in Gbit/s.
fn iperf(lab: &Lab, seconds: u64) -> f64 {
    let out = in_ns(
        &lab.ns("ns1"),
        &[
            "iperf3",
            "-c",
            "10.1.1.3",
            "-p",
            "5299",
            "-t",
            &seconds.to_string(),
            "-J",
        ],
    );
    assert!(
        out.status.success(),
        "iperf3: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 JSON");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no throughput in iperf3 output"))
        / 1e9
}

fn throughput() {
    let rounds = knob("VETHSCOPE_BENCH_ROUNDS", 10);
    let seconds = knob("VETHSCOPE_BENCH_SECONDS", 6);
    let lab = Lab::up("bridge", "my");
    let mut server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("ns2"),
            "iperf3",
            "-s",
            "-B",
            "10.1.1.3",
            "-p",
            "5299",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    std::thread::sleep(Duration::from_millis(500));
    let _ = iperf(&lab, 2); // warm-up
    let (mut plain, mut counted, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        // Alternate which goes first, so slow drift does not favour one side.
        let (mut without, mut with) = (0.0, 0.0);
        for counting in if r % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            // Both sides settle for a second first (serve has just attached).
            if counting {
                let (serve, _) = Serve::start(&lab.name, 6);
                std::thread::sleep(Duration::from_secs(1));
                with = iperf(&lab, seconds);
                serve.stop();
            } else {
                std::thread::sleep(Duration::from_secs(1));
                without = iperf(&lab, seconds);
            }
        }
        println!(
            "  round {}: without {without:.2} Gbit/s, with counting {with:.2} Gbit/s ({:.1} %)",
            r + 1,
            100.0 * with / without
        );
        plain.push(without);
        counted.push(with);
        ratios.push(with / without);
    }
    let _ = server.kill();
    let _ = server.wait();
    drop(lab);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let spread = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len().max(1) as f64).sqrt() / m
    };
    // Standard error of the mean per-round ratio: how far the run-to-run noise of this
    // machine lets the measurement pin the cost down.
    let r_mean = mean(&ratios);
    let r_se = (ratios
        .iter()
        .map(|x| (x - r_mean) * (x - r_mean))
        .sum::<f64>()
        / (ratios.len().max(2) - 1) as f64)
        .sqrt()
        / (ratios.len().max(1) as f64).sqrt();
    ratios.sort_by(f64::total_cmp);
    println!(
        "iperf3 TCP ns1 → ns2 through the bridge, {rounds} alternating rounds × {seconds} s: \
         without {:.2} Gbit/s (±{:.1} %), with counting on all 6 links {:.2} Gbit/s (±{:.1} %)",
        mean(&plain),
        100.0 * spread(&plain),
        mean(&counted),
        100.0 * spread(&counted)
    );
    println!(
        "  throughput ratio with/without: {:.1} % of the means; per-round ratios: median {:.1} %, mean {:.1} % ± {:.1} % (standard error)",
        100.0 * mean(&counted) / mean(&plain),
        100.0 * percentile(&ratios, 0.5),
        100.0 * r_mean,
        100.0 * r_se
    );
}

/// The counting program's own cost per packet, in the kernel, on a TCP segment.
fn program_cost() {
    let mut frame = vec![0u8; 14 + 20 + 20 + 1400];
    frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    frame[14] = 0x45;
    let ip_len = (frame.len() - 14) as u16;
    frame[16..18].copy_from_slice(&ip_len.to_be_bytes());
    frame[22] = 64;
    frame[23] = 6; // TCP
    let mut probe = match vethscope::probe::Probe::load(Default::default()) {
        Ok(p) => p,
        Err(e) => {
            println!(
                "count program cost: cannot load the probe: {}",
                vethscope::errors::Chain(&e)
            );
            return;
        }
    };
    for prog in ["count_ingress", "count_egress"] {
        match probe.test_run(prog, &frame, 1_000_000) {
            Ok((per_run, _)) => println!(
                "{prog}: {} ns per packet (BPF_PROG_TEST_RUN, 1,000,000 runs)",
                per_run.as_nanos()
            ),
            Err(e) => println!("{prog}: {}", vethscope::errors::Chain(&e)),
        }
    }
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("metrics_scrape: needs root (namespaces, eBPF); skipped");
        return;
    }
    for tool in ["iperf3", "ip"] {
        if Command::new(tool).arg("-v").output().is_err()
            && Command::new(tool).arg("-V").output().is_err()
        {
            println!("metrics_scrape: {tool} is not installed; skipped");
            return;
        }
    }
    println!("vethscope metrics benchmark (binary {})", bin());
    scale();
    program_cost();
    throughput();
}
