//! The fast path (bpf_redirect_peer between bridge ports) against real labs.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn status(lab: &str) -> Value {
    serde_json::from_str(&ok(&["fastpath", "status", lab, "--json"]))
        .expect("status --json is JSON")
}

fn redirected(st: &Value) -> u64 {
    st["ports"]
        .as_array()
        .map(|p| {
            p.iter()
                .map(|p| p["redirected"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

fn pins(lab: &str) -> bool {
    std::path::Path::new(&format!("/sys/fs/bpf/vethscope/{lab}")).exists()
}

/// `ping -c N`; returns (received, duplicates).
fn ping_count(ns: &str, dst: &str, count: u32, interval: &str) -> (u32, u32) {
    let out = in_ns(
        ns,
        &[
            "ping",
            "-c",
            &count.to_string(),
            "-i",
            interval,
            "-W",
            "1",
            dst,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let received = text
        .lines()
        .find_map(|l| l.split(", ").find_map(|p| p.strip_suffix(" received")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let dups = text.lines().filter(|l| l.contains("DUP!")).count() as u32;
    (received, dups)
}

#[test]
fn bridge_fast_path_on_off_and_traced() {
    let prefix = prefix("fb");
    {
        let lab = Lab::up("bridge", "fb");
        let (ns1, ns2) = (lab.ns("ns1"), lab.ns("ns2"));
        assert!(ping(&ns1, "10.1.1.3", &[]), "off: ping");
        ok(&["fastpath", "enable", &lab.name]);
        assert!(pins(&lab.name));
        let before = redirected(&status(&lab.name));
        let (got, dups) = ping_count(&ns1, "10.1.1.3", 5, "0.2");
        assert_eq!((got, dups), (5, 0), "on: every ping answered once");
        tcp_transfer(&ns2, &ns1, "10.1.1.3", 8 << 20);
        let after = redirected(&status(&lab.name));
        assert!(
            after >= before + 10,
            "redirected counters rise: {before} -> {after}"
        );
        // The shortened path: the bridge's egress port drops out.
        let mut tracer = Command::new(bin())
            .args([
                "trace",
                &lab.name,
                "--json",
                "--proto",
                "icmp",
                "--duration",
                "4",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("trace");
        let _stderr = wait_until_tracing(&mut tracer);
        assert!(ping(&ns1, "10.1.1.3", &[]));
        let mut out = String::new();
        tracer
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read");
        let _ = tracer.wait();
        let path: Value = out
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["type"] == "path" && l["verdict"] == "answered")
            .unwrap_or_else(|| panic!("an answered path: {out}"));
        let hops: Vec<String> = path["request"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|h| {
                        format!(
                            "{}/{}",
                            h["netns"].as_str().unwrap_or(""),
                            h["ifname"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            hops,
            vec![
                format!("{ns1}/veth0"),
                format!("host/{prefix}br-veth0"),
                format!("{ns2}/veth1")
            ],
            "br-veth1 egress is skipped: {path}"
        );
        ok(&["fastpath", "disable", &lab.name]);
        assert!(!pins(&lab.name), "disable leaves nothing pinned");
        assert!(ping(&ns1, "10.1.1.3", &[]), "off again: ping");
        tcp_transfer(&ns2, &ns1, "10.1.1.3", 1 << 20);
        // Enabled at `up`, removed by `down`.
    }
    assert_clean(&prefix);
}

#[test]
fn a_running_ping_survives_toggles() {
    let prefix = prefix("ft");
    {
        let lab = Lab::up("bridge", "ft");
        let ns1 = lab.ns("ns1");
        assert!(ping(&ns1, "10.1.1.3", &[]));
        let pinger = std::thread::spawn(move || ping_count(&ns1, "10.1.1.3", 60, "0.05"));
        for _ in 0..2 {
            std::thread::sleep(Duration::from_millis(600));
            ok(&["fastpath", "enable", &lab.name]);
            std::thread::sleep(Duration::from_millis(600));
            ok(&["fastpath", "disable", &lab.name]);
        }
        let (got, dups) = pinger.join().expect("pinger");
        assert!(
            got >= 59,
            "at most one packet lost across 4 toggles: {got}/60"
        );
        assert_eq!(dups, 0);
    }
    assert_clean(&prefix);
}

#[test]
fn ovs_fast_path_has_no_duplicates_and_carries_tcp() {
    let prefix = prefix("fo");
    {
        let lab = Lab::up("ovs", "fo");
        let (ns1, ns2) = (lab.ns("ns1"), lab.ns("ns2"));
        assert!(ping(&ns1, "10.1.1.3", &[]));
        ok(&["fastpath", "enable", &lab.name]);
        let (got, dups) = ping_count(&ns1, "10.1.1.3", 5, "0.2");
        assert_eq!((got, dups), (5, 0), "no DUP! with the OVS drop flows");
        tcp_transfer(&ns2, &ns1, "10.1.1.3", 8 << 20);
        assert!(redirected(&status(&lab.name)) > 0);
    }
    // down removed the fast path with the lab
    assert!(!pins(&format!("{prefix}ovs")));
    assert_clean(&prefix);
}

#[test]
fn up_with_fast_path_and_where_it_does_not_apply() {
    let prefix = prefix("fu");
    {
        let _lab = Lab::up_with("bridge", "fu", &["--fast-path"]);
        assert!(
            pins(&format!("{prefix}bridge")),
            "--fast-path enables it at up"
        );
        let internal = Lab::up("ovs-internal", "fi");
        let out = vethscope(&["fastpath", "enable", &internal.name]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("does not apply") && err.contains("OVS internal port is not a veth"),
            "{err}"
        );
        let direct = Lab::up("direct", "fd");
        let out = vethscope(&["fastpath", "enable", &direct.name]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains("no bridge to bypass"), "{err}");
    }
    assert_clean(&prefix);
    assert_clean(&self::prefix("fi"));
    assert_clean(&self::prefix("fd"));
}
