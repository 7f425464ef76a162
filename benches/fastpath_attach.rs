//! Benchmark: what attaching the fast-path program costs per port, TCX (a bpf_link per
//! port) against legacy TC (clsact qdisc + cls_bpf direct-action filter through
//! netlink), side by side on the same N veth ends; then `vethscope fastpath
//! enable/status/disable` end to end on a star lab of M namespaces on one bridge, with
//! a ping across it to prove the fast path carries traffic.
//!
//! Run as root, in a simulated host or a scratch machine (it makes a namespace
//! `vsbfa-N`, a lab `vsbfa-star` and removes both):
//! `cargo bench -p vethscope --bench fastpath_attach` — sizes from
//! `FASTPATH_ATTACH_PORTS` (default 1000) and `FASTPATH_STAR` (default 1000; 0 skips).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark harness: the figures it prints are its output"
)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vethscope::netlink::Netlink;
use vethscope::netns;
use vethscope::probe::{LoadOptions, Probe, Target};
use vethscope_common::names::program;

const PROGRAM: &str = program::FASTPATH_INGRESS;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip -batch` from stdin, inside `ns` when given.
fn ip_batch(ns: Option<&str>, lines: &str) {
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("ip -batch");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(lines.as_bytes())
        .expect("write batch");
    assert!(child.wait().expect("ip -batch").success(), "ip -batch");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Row {
    method: &'static str,
    attach: Duration,
    detach: Duration,
}

fn attach_tcx(probe: &mut Probe, ns: &str, names: &[String]) -> Row {
    let target = |ifname: &str| Target {
        lab: String::new(),
        netns: ns.to_string(),
        ifname: ifname.to_string(),
        ifindex: 0,
        kind: vethscope::probe::LinkKind::BridgePort,
        peer_netns: String::new(),
        peer_ifname: String::new(),
        cookie: 0,
    };
    let t = Instant::now();
    let mut links = Vec::with_capacity(names.len());
    for n in names {
        links.push(
            probe
                .attach_fastpath_tcx(&target(n))
                .unwrap_or_else(|e| panic!("TCX attach to {n}: {e}")),
        );
    }
    let attach = t.elapsed();
    let t = Instant::now();
    // Dropping a TCX link detaches the program.
    drop(links);
    Row {
        method: "TCX (one bpf_link per port)",
        attach,
        detach: t.elapsed(),
    }
}

async fn attach_legacy(probe: &mut Probe, ns: &str, n: usize) -> Row {
    let fd = probe
        .fastpath_program_fd()
        .expect("load the fast-path program");
    let nl = Netlink::open(ns)
        .await
        .expect("netlink in the bench namespace");
    let links = nl.links().await.expect("links");
    let ifindexes: Vec<u32> = links
        .iter()
        .filter(|l| l.name.starts_with('a'))
        .map(|l| l.index)
        .take(n)
        .collect();
    assert_eq!(ifindexes.len(), n, "every bench port found");
    let t = Instant::now();
    for &i in &ifindexes {
        nl.add_clsact(i).await.expect("clsact");
        nl.add_ingress_bpf(i, 0xfa57, 0xfa57, fd, PROGRAM)
            .await
            .expect("cls_bpf attach");
    }
    let attach = t.elapsed();
    let t = Instant::now();
    for &i in &ifindexes {
        nl.del_ingress_filter(i, 0xfa57, 0xfa57).await.expect("del");
        nl.del_clsact(i).await.expect("del clsact");
    }
    Row {
        method: "legacy TC (clsact + cls_bpf, netlink)",
        attach,
        detach: t.elapsed(),
    }
}

fn star_yaml(m: usize) -> String {
    let mut y = String::from("name: star\nnamespaces:\n");
    for i in 0..m {
        y.push_str(&format!("  - name: s{i}\n"));
    }
    y.push_str("bridges:\n  - {name: br, kind: linux}\nlinks:\n");
    for i in 0..m {
        y.push_str(&format!(
            "  - kind: veth\n    ends:\n      - {{ns: s{i}, name: e0, addresses: [10.70.{}.{}/16]}}\n      - {{bridge: br, name: h{i}}}\n",
            (i + 1) / 250,
            (i + 1) % 250 + 1
        ));
    }
    y
}

fn timed(args: &[&str]) -> (Duration, String) {
    let t = Instant::now();
    let out = run(Command::new(env!("CARGO_BIN_EXE_vethscope")).args(args));
    (t.elapsed(), out)
}

fn star(m: usize) {
    let dir = std::env::temp_dir().join(format!("vsbfa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("star.yaml");
    std::fs::write(&file, star_yaml(m)).expect("write star");
    let file = file.display().to_string();
    let lab = "vsbfa-star";
    let (up, _) = timed(&["up", &file, "--prefix", "vsbfa-"]);
    let (enable, out) = timed(&["fastpath", "enable", lab]);
    print!("  {out}");
    let (status, _) = timed(&["fastpath", "status", lab, "--json"]);
    let (refresh, _) = timed(&["fastpath", "enable", lab]);
    // Proof that it works: a ping from the first to the last namespace, redirected.
    let last = format!("10.70.{}.{}", m / 250, m % 250 + 1);
    run(Command::new("ip").args([
        "netns", "exec", "vsbfa-s0", "ping", "-c", "2", "-W", "2", &last,
    ]));
    let st: serde_json::Value =
        serde_json::from_str(&timed(&["fastpath", "status", lab, "--json"]).1).expect("JSON");
    let redirected: u64 = st["ports"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["redirected"].as_u64()).sum())
        .unwrap_or(0);
    assert!(redirected >= 4, "the ping was redirected: {redirected}");
    let (disable, _) = timed(&["fastpath", "disable", lab]);
    let (down, _) = timed(&["down", lab]);
    let _ = std::fs::remove_dir_all(&dir);
    println!("\nvethscope on a star of {m} namespaces on one Linux bridge ({m} fast-path ports):");
    println!("  {:<34} {:>10}", "command", "seconds");
    for (what, d) in [
        ("up (for reference)", up),
        ("fastpath enable", enable),
        ("fastpath status --json", status),
        ("fastpath enable again (refresh)", refresh),
        ("fastpath disable", disable),
        ("down (for reference)", down),
    ] {
        println!("  {what:<34} {:>10.3}", d.as_secs_f64());
    }
    println!(
        "  per port: enable {:.3} ms, disable {:.3} ms; ping across the star redirected ({redirected} frames)",
        ms(enable) / m as f64,
        ms(disable) / m as f64
    );
}

#[tokio::main]
async fn main() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("fastpath_attach: needs root (run it in scripts/simhost or as root)");
        std::process::exit(1);
    }
    let n = env_usize("FASTPATH_ATTACH_PORTS", 1000);
    let m = env_usize("FASTPATH_STAR", 1000);
    let ns = format!("vsbfa-{}", std::process::id());
    netns::create(&ns).expect("create the bench namespace");
    // N veth pairs, both ends in the bench namespace; the programs go on the `a` ends.
    let mut batch = String::new();
    for i in 0..n {
        batch.push_str(&format!("link add a{i} type veth peer name b{i}\n"));
        batch.push_str(&format!("link set a{i} up\nlink set b{i} up\n"));
    }
    ip_batch(Some(&ns), &batch);
    let mut probe = Probe::load(LoadOptions::default()).expect("load the programs");
    let names: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
    let legacy = attach_legacy(&mut probe, &ns, n).await;
    let tcx = attach_tcx(&mut probe, &ns, &names);
    println!("fast-path program attach/detach on {n} veth ends (ingress), same run:");
    println!(
        "  {:<40} {:>12} {:>10} {:>12} {:>10}",
        "method", "attach (s)", "ms/port", "detach (s)", "ms/port"
    );
    for r in [&tcx, &legacy] {
        println!(
            "  {:<40} {:>12.3} {:>10.3} {:>12.3} {:>10.3}",
            r.method,
            r.attach.as_secs_f64(),
            ms(r.attach) / n as f64,
            r.detach.as_secs_f64(),
            ms(r.detach) / n as f64
        );
    }
    println!(
        "  legacy TC attaches {:.0}× faster, detaches {:.0}× faster",
        tcx.attach.as_secs_f64() / legacy.attach.as_secs_f64(),
        tcx.detach.as_secs_f64() / legacy.detach.as_secs_f64()
    );
    drop(probe);
    netns::delete(&ns).expect("delete the bench namespace");
    if m > 0 {
        star(m);
    }
}
