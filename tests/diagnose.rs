//! `vethscope diagnose` on real broken labs: each lab of the catalogue in
//! docs/diagnose.md is built, broken the way its entry says, and diagnosed; the test
//! checks the finding (code and object), that no other finding appears, and that the
//! active probe agrees. A healthy lab of each built-in scenario gives exit 0.
//!
//! Tags `q0`…`qz` (prefix `vstqX-`), one per test, so tests run in parallel.

mod common;

use std::process::Command;

use common::{Lab, assert_valid, in_ns, published_schema, topology_file, vethscope};
use serde_json::Value;

/// Checks a document against docs/diagnose-json-schema.json.
fn assert_schema(v: &Value) {
    assert_schema_of("diagnose-json-schema.json", v);
}

/// Checks a document against docs/FILE.
fn assert_schema_of(file: &str, v: &Value) {
    assert_valid(&published_schema(file), file, v);
}

/// Runs `diagnose LAB --from FROM --to TO --json`; returns the exit code and the JSON
/// (checked against the published schema).
fn diagnose(lab: &Lab, from: &str, to: &str, extra: &[&str]) -> (i32, Value) {
    let from = if from == "host" {
        from.to_string()
    } else {
        lab.ns(from)
    };
    let mut args = vec!["diagnose", &lab.name, "--from", &from, "--to", to, "--json"];
    args.extend_from_slice(extra);
    let out = vethscope(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "diagnose {args:?}: not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_schema(&json);
    (out.status.code().unwrap_or(-1), json)
}

/// (code, netns, ifname) of every finding.
fn findings(v: &Value) -> Vec<(String, String, String)> {
    v["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["code"].as_str().unwrap_or_default().to_string(),
                        f["netns"].as_str().unwrap_or_default().to_string(),
                        f["ifname"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Exactly one finding, `code` on `netns/ifname`, with a fix; the probe failed and agrees.
fn expect_one(v: &Value, code: &str, netns: &str, ifname: &str) {
    let f = findings(v);
    assert_eq!(
        f,
        vec![(code.to_string(), netns.to_string(), ifname.to_string())],
        "findings of {v:#}"
    );
    assert_eq!(v["ok"], false);
    let first = &v["findings"][0];
    for field in ["message", "evidence"] {
        assert!(
            first[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} of {first}"
        );
    }
}

fn probe_agrees(v: &Value) {
    assert_eq!(v["agreement"], "agree", "{v:#}");
}

fn sh(ns: &str, cmd: &[&str]) {
    let out = if ns == "host" {
        Command::new(cmd[0])
            .args(&cmd[1..])
            .output()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
    } else {
        in_ns(ns, cmd)
    };
    assert!(
        out.status.success(),
        "{cmd:?} in {ns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Both ends of one veth pair in one namespace, with the given sysctls on the pair.
fn same_ns_file(tag: &str, accept_local: u8, rp_filter: u8) -> std::path::PathBuf {
    topology_file(
        tag,
        &format!(
            "name: sn{tag}\nnamespaces:\n  - name: ns1\n    sysctls: {{net.ipv4.conf.all.rp_filter: 0, net.ipv4.conf.all.accept_local: 0}}\nlinks:\n  - kind: veth\n    ends:\n      - {{ns: ns1, name: veth0, addresses: [10.1.1.2/24], sysctls: {{accept_local: {accept_local}, rp_filter: {rp_filter}}}}}\n      - {{ns: ns1, name: veth1, addresses: [10.1.1.3/24], sysctls: {{accept_local: {accept_local}, rp_filter: {rp_filter}}}}}\n"
        ),
    )
}

/// ns1 — rtr — ns2 over two direct veth pairs; `routes` says which of ns1/ns2 get a
/// route through rtr; `forward` turns on IPv4 forwarding in rtr.
fn routed_file(tag: &str, ns1_route: bool, ns2_route: bool, forward: bool) -> std::path::PathBuf {
    let route = |on: bool, via: &str| {
        if on {
            format!("\n    routes: [{{to: default, via: {via}}}]")
        } else {
            String::new()
        }
    };
    topology_file(
        tag,
        &format!(
            "name: rt{tag}\nnamespaces:\n  - name: ns1{}\n  - name: rtr\n    sysctls: {{net.ipv4.ip_forward: {}}}\n  - name: ns2{}\nlinks:\n  - kind: veth\n    ends:\n      - {{ns: ns1, name: eth0, addresses: [10.1.1.2/24]}}\n      - {{ns: rtr, name: eth1, addresses: [10.1.1.1/24]}}\n  - kind: veth\n    ends:\n      - {{ns: rtr, name: eth2, addresses: [10.1.2.1/24]}}\n      - {{ns: ns2, name: eth0, addresses: [10.1.2.3/24]}}\n",
            route(ns1_route, "10.1.1.1"),
            u8::from(forward),
            route(ns2_route, "10.1.2.1"),
        ),
    )
}

#[test]
fn same_ns_pair_without_accept_local() {
    let f = same_ns_file("q1", 0, 0);
    let lab = Lab::up(f.to_str().unwrap_or_default(), "q1");
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "ACCEPT_LOCAL", &lab.ns("ns1"), "veth1");
    assert!(
        v["findings"][0]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("net.ipv4.conf.veth1.accept_local=1")),
        "{v:#}"
    );
    probe_agrees(&v);
    assert_eq!(
        v["probe"]["bound_to"], "veth0",
        "the probe leaves through the pair"
    );
}

#[test]
fn same_ns_pair_with_rp_filter_only() {
    let f = same_ns_file("q2", 1, 1);
    let lab = Lab::up(f.to_str().unwrap_or_default(), "q2");
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "RP_FILTER", &lab.ns("ns1"), "veth1");
    probe_agrees(&v);
}

#[test]
fn peer_end_down() {
    let lab = Lab::up("direct", "q3");
    sh(&lab.ns("ns2"), &["ip", "link", "set", "veth1", "down"]);
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "LINK_DOWN", &lab.ns("ns2"), "veth1");
    probe_agrees(&v);
}

#[test]
fn lo_down_with_a_same_ns_pair() {
    let lab = Lab::up("same-ns", "q4");
    sh(&lab.ns("ns1"), &["ip", "link", "set", "lo", "down"]);
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "LO_DOWN", &lab.ns("ns1"), "lo");
    probe_agrees(&v);
}

#[test]
fn destination_in_another_subnet() {
    let f = topology_file(
        "q5",
        "name: subnet\nnamespaces:\n  - name: ns1\n  - name: ns2\nbridges:\n  - {name: br0, kind: linux}\nlinks:\n  - kind: veth\n    ends:\n      - {ns: ns1, name: veth0, addresses: [10.1.1.2/24]}\n      - {bridge: br0, name: bv0}\n  - kind: veth\n    ends:\n      - {ns: ns2, name: veth1, addresses: [10.1.2.3/24]}\n      - {bridge: br0, name: bv1}\n",
    );
    let lab = Lab::up(f.to_str().unwrap_or_default(), "q5");
    let (code, v) = diagnose(&lab, "ns1", "10.1.2.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "WRONG_SUBNET", &lab.ns("ns1"), "veth0");
    probe_agrees(&v);
}

#[test]
fn missing_route_through_a_router() {
    let f = routed_file("q6", false, true, true);
    let lab = Lab::up(f.to_str().unwrap_or_default(), "q6");
    let (code, v) = diagnose(&lab, "ns1", "10.1.2.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "NO_ROUTE", &lab.ns("ns1"), "");
    assert!(
        v["findings"][0]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("ip route add 10.1.2.0/24 via 10.1.1.1")),
        "the fix names the router: {v:#}"
    );
    probe_agrees(&v);
}

#[test]
fn missing_return_route_through_a_router() {
    let f = routed_file("q7", true, false, true);
    let lab = Lab::up(f.to_str().unwrap_or_default(), "q7");
    let (code, v) = diagnose(&lab, "ns1", "10.1.2.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "NO_RETURN_ROUTE", &lab.ns("ns2"), "");
    probe_agrees(&v);
}

#[test]
fn router_without_forwarding() {
    let f = routed_file("q8", true, true, false);
    let lab = Lab::up(f.to_str().unwrap_or_default(), "q8");
    let (code, v) = diagnose(&lab, "ns1", "10.1.2.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "FORWARDING_OFF", &lab.ns("rtr"), "");
    probe_agrees(&v);
    // The kernel's own reason for the drop, in words.
    assert!(
        v["probe"]["drops"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["netns"] == lab.ns("rtr").as_str())),
        "a drop in rtr: {v:#}"
    );
}

#[test]
fn healthy_routed_lab_and_every_pair() {
    let f = routed_file("q9", true, true, true);
    let lab = Lab::up(f.to_str().unwrap_or_default(), "q9");
    let (code, v) = diagnose(&lab, "ns1", "10.1.2.3", &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(findings(&v), vec![]);
    let out = vethscope(&["diagnose", &lab.name, "--json", "--no-probe"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let all: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(all["ok"], true, "{all:#}");
    assert_schema(&all);
    assert!(
        all["pairs_checked"].as_u64().is_some_and(|n| n >= 3),
        "{all:#}"
    );
    assert_eq!(all["pairs_checked"], all["pairs_total"]);
}

#[test]
fn duplicate_address() {
    let f = topology_file(
        "qa",
        "name: dup\nnamespaces:\n  - name: ns1\n  - name: ns2\n  - name: ns3\nbridges:\n  - {name: br0, kind: linux}\nlinks:\n  - kind: veth\n    ends:\n      - {ns: ns1, name: veth0, addresses: [10.1.1.2/24]}\n      - {bridge: br0, name: bv0}\n  - kind: veth\n    ends:\n      - {ns: ns2, name: veth1, addresses: [10.1.1.3/24]}\n      - {bridge: br0, name: bv1}\n  - kind: veth\n    ends:\n      - {ns: ns3, name: veth2, addresses: [10.1.1.4/24]}\n      - {bridge: br0, name: bv2}\n",
    );
    let lab = Lab::up(f.to_str().unwrap_or_default(), "qa");
    sh(
        &lab.ns("ns3"),
        &["ip", "addr", "add", "10.1.1.3/24", "dev", "veth2"],
    );
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &["--no-probe"]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "DUPLICATE_ADDRESS", &lab.ns("ns3"), "veth2");
}

#[test]
fn mtu_mismatch() {
    let f = topology_file(
        "qb",
        "name: mtu\nnamespaces:\n  - name: ns1\n  - name: ns2\nlinks:\n  - kind: veth\n    ends:\n      - {ns: ns1, name: veth0, addresses: [10.1.1.2/24]}\n      - {ns: ns2, name: veth1, addresses: [10.1.1.3/24], mtu: 1400}\n",
    );
    let lab = Lab::up(f.to_str().unwrap_or_default(), "qb");
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "MTU_MISMATCH", &lab.ns("ns2"), "veth1");
    // The small probe passes, the full-size one with DF does not.
    assert_eq!(v["probe"]["answered"], true, "{v:#}");
    assert_eq!(v["probe"]["mtu_probe"]["answered"], false, "{v:#}");
    probe_agrees(&v);
}

#[test]
fn bridge_port_detached() {
    let lab = Lab::up("bridge", "qc");
    let port = lab.host_if("br-veth1");
    sh("host", &["ip", "link", "set", &port, "nomaster"]);
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "BRIDGE_PORT_DETACHED", "host", &port);
    probe_agrees(&v);
}

#[test]
fn ovs_port_whose_interface_was_deleted() {
    let lab = Lab::up("ovs", "qd");
    let port = lab.host_if("ovs-veth1");
    sh("host", &["ip", "link", "del", &port]);
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    let f = findings(&v);
    assert!(
        f.contains(&(
            "OVS_PORT_ERROR".to_string(),
            "host".to_string(),
            port.clone()
        )),
        "{v:#}"
    );
    // Deleting one end of a veth deletes its peer: ns2/veth1 is really gone too.
    for (code, ns, ifname) in &f {
        assert!(
            code == "OVS_PORT_ERROR"
                || (code == "MISSING_INTERFACE" && *ns == lab.ns("ns2") && ifname == "veth1"),
            "unexpected finding {code} {ns}/{ifname}: {v:#}"
        );
    }
    probe_agrees(&v);
}

#[test]
fn arp_ignore_8_on_the_destination() {
    let lab = Lab::up("direct", "qe");
    sh(
        &lab.ns("ns2"),
        &["sysctl", "-w", "net.ipv4.conf.veth1.arp_ignore=8"],
    );
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "ARP_IGNORE", &lab.ns("ns2"), "veth1");
    probe_agrees(&v);
    // The probe saw the unanswered ARP request and where it ended.
    let arp = &v["probe"]["neighbour"][0];
    assert_eq!(arp["proto"], "arp", "{v:#}");
    assert_eq!(arp["answered"], false, "{v:#}");
}

/// A healthy copy of a built-in scenario: exit 0, no findings, the probe answered.
fn healthy(spec: &str, tag: &str) {
    let lab = Lab::up(spec, tag);
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &[]);
    assert_eq!(code, 0, "{spec}: {v:#}");
    assert_eq!(findings(&v), vec![], "{spec}");
    assert_eq!(v["probe"]["answered"], true, "{spec}: {v:#}");
    probe_agrees(&v);
    // The text face says the same.
    let out = vethscope(&[
        "diagnose",
        &lab.name,
        "--from",
        &lab.ns("ns1"),
        "--to",
        "10.1.1.3",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("verdict: healthy"));
}

#[test]
fn healthy_direct() {
    healthy("direct", "qf");
}

#[test]
fn healthy_bridge() {
    healthy("bridge", "qg");
}

#[test]
fn healthy_ovs() {
    healthy("ovs", "qh");
}

#[test]
fn healthy_ovs_internal() {
    healthy("ovs-internal", "qi");
}

#[test]
fn healthy_same_ns() {
    healthy("same-ns", "qj");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec![
            "diagnose",
            "vstqk-nolab",
            "--from",
            "ns1",
            "--to",
            "10.1.1.3",
        ],
        vec!["diagnose", "..", "--from", "ns1", "--to", "10.1.1.3"],
        vec!["diagnose", "vstqk-nolab", "--from", "ns1"],
        vec![
            "diagnose",
            "vstqk-nolab",
            "--from",
            "ns1",
            "--to",
            "not-an-ip",
        ],
        vec!["diagnose", "vstqk-nolab", "--timeout", "1e19"],
    ] {
        let out = vethscope(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("vethscope: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Runs `trace LAB` (NDJSON, or text with `json` false) while `ping -c1 DST` runs in
/// namespace `from`; returns the output once the trace has stopped.
fn trace_while_pinging(
    lab: &Lab,
    from: &str,
    dst: &str,
    json: bool,
    reply_timeout: &str,
) -> String {
    use std::io::Read;
    let mut args = vec![
        "trace",
        lab.name.as_str(),
        "--duration",
        "7",
        "--reply-timeout",
        reply_timeout,
    ];
    if json {
        args.push("--json");
    }
    let mut child = Command::new(common::bin())
        .args(&args)
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start trace");
    // The "tracing" line comes once every program is attached.
    let stderr = common::wait_until_tracing(&mut child);
    assert!(!common::ping(&lab.ns(from), dst, &[]), "the ping must fail");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read trace output");
    let _ = child.wait();
    let err = stderr.join().unwrap_or_default();
    assert!(
        !err.iter().any(|l| l.contains("not traced")),
        "drop reasons must be traced: {err:?}"
    );
    out
}

/// The first unanswered path line of `proto` towards `dst`.
fn unanswered_path(out: &str, proto: &str, dst: &str) -> Value {
    let path = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "path" && v["proto"] == proto && v["dst"] == dst)
        .unwrap_or_else(|| panic!("no {proto} path to {dst} in {out}"));
    assert_eq!(path["verdict"], "unanswered", "{path:#}");
    assert_schema_of("trace-json-schema.json", &path);
    path
}

/// ns1 — br1 — rtr — br2 — ns2: a router namespace between two Linux bridges (the lab
/// of issue 11's report). `ns1_prefix` is the netmask of ns1's address.
fn two_bridges_file(tag: &str, forward: bool, ns1_prefix: u8) -> std::path::PathBuf {
    topology_file(
        tag,
        &format!(
            "name: tb{tag}\nnamespaces:\n  - name: ns1\n    routes: [{{to: default, via: 10.1.1.1}}]\n  - name: rtr\n    sysctls: {{net.ipv4.ip_forward: {}}}\n  - name: ns2\n    routes: [{{to: default, via: 10.1.2.1}}]\nbridges:\n  - {{name: br1, kind: linux}}\n  - {{name: br2, kind: linux}}\nlinks:\n  - kind: veth\n    ends:\n      - {{ns: ns1, name: eth0, addresses: [10.1.1.2/{ns1_prefix}]}}\n      - {{bridge: br1, name: b1n1}}\n  - kind: veth\n    ends:\n      - {{ns: rtr, name: eth1, addresses: [10.1.1.1/24]}}\n      - {{bridge: br1, name: b1r}}\n  - kind: veth\n    ends:\n      - {{ns: rtr, name: eth2, addresses: [10.1.2.1/24]}}\n      - {{bridge: br2, name: b2r}}\n  - kind: veth\n    ends:\n      - {{ns: ns2, name: eth0, addresses: [10.1.2.3/24]}}\n      - {{bridge: br2, name: b2n2}}\n",
            u8::from(forward)
        ),
    )
}

fn codes_on(path: &Value) -> Vec<(String, String, String)> {
    findings(path)
}

/// Issue 11, first case: the destination's interface is down. The echo dies at the
/// router (waiting for an ARP answer), but the trace names the namespace at fault.
#[test]
fn trace_points_at_the_namespace_whose_interface_is_down() {
    let f = two_bridges_file("d1", true, 24);
    let lab = Lab::up(f.to_str().unwrap_or_default(), "d1");
    sh(&lab.ns("ns2"), &["ip", "link", "set", "eth0", "down"]);
    let out = trace_while_pinging(&lab, "ns1", "10.1.2.3", true, "1");
    let echo = unanswered_path(&out, "icmp", "10.1.2.3");
    assert_eq!(
        echo["last_seen"]["netns"],
        lab.ns("rtr").as_str(),
        "the echo gets as far as the router: {echo:#}"
    );
    // Taking eth0 down made the kernel drop ns2's default route too: bringing the link
    // up will not restore it, so the drift from the lab's file is said as well.
    let expected = vec![
        ("LINK_DOWN".to_string(), lab.ns("ns2"), "eth0".to_string()),
        ("DRIFT".to_string(), lab.ns("ns2"), String::new()),
    ];
    assert_eq!(codes_on(&echo), expected, "{echo:#}");
    assert!(
        echo["findings"][1]["fix"]
            .as_str()
            .is_some_and(|f| f.ends_with("ip route add default via 10.1.2.1")),
        "{echo:#}"
    );
    let why = echo["explanation"].as_str().unwrap_or_default();
    assert!(
        why.contains(&format!("the cause is in {}", lab.ns("ns2"))) && why.contains("is down"),
        "the explanation names the right namespace: {why}"
    );
    // The router's ARP request for 10.1.2.3 is unanswered for the same reason.
    let arp = unanswered_path(&out, "arp", "10.1.2.3");
    assert_eq!(codes_on(&arp), expected, "{arp:#}");
}

/// Issue 11, second case: forwarding off on the router. The kernel's drop reason
/// (ip_inaddrerrors) appears on the path, in words, with the fix — text and JSON.
#[test]
fn trace_gives_the_kernel_drop_reason_of_a_router_without_forwarding() {
    let f = two_bridges_file("d2", false, 24);
    let lab = Lab::up(f.to_str().unwrap_or_default(), "d2");
    let rtr = lab.ns("rtr");
    let out = trace_while_pinging(&lab, "ns1", "10.1.2.3", true, "1");
    let echo = unanswered_path(&out, "icmp", "10.1.2.3");
    assert_eq!(
        codes_on(&echo),
        vec![("FORWARDING_OFF".to_string(), rtr.clone(), String::new())],
        "{echo:#}"
    );
    let drops = echo["drops"].as_array().cloned().unwrap_or_default();
    let d = drops
        .iter()
        .find(|d| d["reason"] == "ip_inaddrerrors")
        .unwrap_or_else(|| panic!("the kernel's drop reason on the path: {echo:#}"));
    assert_eq!(d["netns"], rtr.as_str(), "{d:#}");
    assert_eq!(d["ifname"], "eth1", "{d:#}");
    assert!(
        d["meaning"].as_str().is_some_and(
            |m| m.contains(&format!("IPv4 forwarding is off in router namespace {rtr}"))
        ),
        "{d:#}"
    );
    assert_eq!(
        d["fix"],
        format!("ip netns exec {rtr} sysctl -w net.ipv4.ip_forward=1").as_str(),
        "{d:#}"
    );
    // The text face says the same.
    let text = trace_while_pinging(&lab, "ns1", "10.1.2.3", false, "1");
    assert!(
        text.contains(&format!(
            "dropped at {rtr}/eth1: IPv4 forwarding is off in router namespace {rtr}"
        )) && text.contains("(ip_inaddrerrors;")
            && text.contains(&format!(
                "— fix: ip netns exec {rtr} sysctl -w net.ipv4.ip_forward=1"
            )),
        "{text}"
    );
}

/// Issue 11, third case: a wrong netmask on the source puts the destination on its
/// own link; its ARP request goes unanswered, and the trace says the address lives
/// behind the other bridge.
#[test]
fn trace_says_a_wrong_netmask_puts_the_address_behind_the_other_bridge() {
    let f = two_bridges_file("d3", true, 16);
    let lab = Lab::up(f.to_str().unwrap_or_default(), "d3");
    let out = trace_while_pinging(&lab, "ns1", "10.1.2.3", true, "1");
    let arp = unanswered_path(&out, "arp", "10.1.2.3");
    assert_eq!(
        codes_on(&arp),
        vec![(
            "WRONG_SUBNET".to_string(),
            lab.ns("ns1"),
            "eth0".to_string()
        )],
        "{arp:#}"
    );
    let msg = arp["findings"][0]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&format!("behind bridge {}", lab.host_if("br2")))
            && msg.contains(&format!("on bridge {}", lab.host_if("br1")))
            && msg.contains("netmask"),
        "{msg}"
    );
    assert!(
        msg.contains("(check the netmask of") && msg.contains(": 10.1.1.2/16)"),
        "{msg}"
    );
    // The request was flooded on br1 up to the router; the cause is ns1's netmask.
    assert!(
        arp["explanation"].as_str().is_some_and(
            |e| e.ends_with(msg) && e.contains(&format!("the cause is in {}", lab.ns("ns1")))
        ),
        "{arp:#}"
    );
}

/// Issue 11, fourth case (what docs/trace-json.md promises): an ARP request for an
/// address nobody has, on the built-in bridge lab, is explained in JSON and in text.
#[test]
fn trace_explains_an_unanswered_path() {
    let lab = Lab::up("bridge", "ql");
    let out = trace_while_pinging(&lab, "ns1", "10.1.1.9", true, "0.5");
    let path = unanswered_path(&out, "arp", "10.1.1.9");
    let codes: Vec<&str> = path["findings"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["code"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(codes, vec!["NO_SUCH_ADDRESS"], "{path:#}");
    assert_eq!(
        path["explanation"],
        format!(
            "the request was flooded to every port of {} and no namespace answered: no interface in the lab has 10.1.1.9",
            lab.host_if("br0")
        )
        .as_str(),
        "{path:#}"
    );
    let text = trace_while_pinging(&lab, "ns1", "10.1.1.9", false, "0.5");
    assert!(
        text.contains("no namespace answered: no interface in the lab has 10.1.1.9"),
        "{text}"
    );
}

/// Removes a root-namespace interface or firewall rule a test added by hand, even when
/// the test panics (the lab's `down` removes only what `up` made).
struct Undo(Vec<&'static str>, Vec<String>);

impl Drop for Undo {
    fn drop(&mut self) {
        let mut argv: Vec<String> = self.0.iter().map(|s| s.to_string()).collect();
        argv.extend(self.1.iter().cloned());
        let _ = Command::new(&argv[0]).args(&argv[1..]).output();
    }
}

/// DRIFT: the destination lost its address since `up`; the finding says what the file
/// wanted (instead of NO_SUCH_ADDRESS, which saw only the effect) and puts it back.
#[test]
fn drift_lost_destination_address() {
    let lab = Lab::up("direct", "d4");
    let ns2 = lab.ns("ns2");
    sh(&ns2, &["ip", "addr", "del", "10.1.1.3/24", "dev", "veth1"]);
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "DRIFT", &ns2, "veth1");
    assert_eq!(
        v["findings"][0]["fix"],
        format!("ip netns exec {ns2} ip addr add 10.1.1.3/24 dev veth1").as_str(),
        "{v:#}"
    );
    probe_agrees(&v);
}

/// DRIFT: a route of the file is gone; `--fix --yes` puts it back and the path works.
#[test]
fn drift_lost_route_is_found_and_fixed() {
    let f = routed_file("d5", true, true, true);
    let lab = Lab::up(f.to_str().unwrap_or_default(), "d5");
    let ns1 = lab.ns("ns1");
    sh(&ns1, &["ip", "route", "del", "default"]);
    let (code, v) = diagnose(&lab, "ns1", "10.1.2.3", &[]);
    assert_eq!(code, 1, "{v:#}");
    expect_one(&v, "DRIFT", &ns1, "");
    assert_eq!(
        v["findings"][0]["fix"],
        format!("ip netns exec {ns1} ip route add default via 10.1.1.1").as_str(),
        "{v:#}"
    );
    probe_agrees(&v);
    let out = vethscope(&[
        "diagnose",
        &lab.name,
        "--from",
        &ns1,
        "--to",
        "10.1.2.3",
        "--no-probe",
        "--fix",
        "--yes",
    ]);
    assert!(out.status.code().is_some(), "{out:?}");
    let (code, v) = diagnose(&lab, "ns1", "10.1.2.3", &[]);
    assert_eq!(code, 0, "fixed: {v:#}");
}

/// DRIFT: an interface the file does not have is a port of the lab's bridge. The path
/// still works, so the finding is advisory: exit 0, the probe answered, and it is listed.
#[test]
fn drift_foreign_interface_on_a_lab_bridge() {
    let lab = Lab::up("bridge", "d6");
    let (fx0, fx1) = (lab.host_if("fx0"), lab.host_if("fx1"));
    sh(
        "host",
        &[
            "ip", "link", "add", &fx0, "type", "veth", "peer", "name", &fx1,
        ],
    );
    let _undo = Undo(vec!["ip", "link", "del"], vec![fx0.clone()]);
    sh(
        "host",
        &[
            "ip",
            "link",
            "set",
            &fx0,
            "master",
            &lab.host_if("br0"),
            "up",
        ],
    );
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &[]);
    assert_eq!(code, 0, "advisory only: {v:#}");
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(
        findings(&v),
        vec![("DRIFT".to_string(), "host".to_string(), fx0.clone())],
        "{v:#}"
    );
    assert_eq!(v["probe"]["answered"], true, "{v:#}");
    probe_agrees(&v);
    let text = vethscope(&[
        "diagnose",
        &lab.name,
        "--from",
        &lab.ns("ns1"),
        "--to",
        "10.1.1.3",
    ]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("healthy, with 1 advisory finding"),
        "{text:?}"
    );
}

/// FASTPATH_MISSING_MAC: the fast path is on, then the destination's MAC changes; its
/// table lacks the new MAC (frames take the bridge: advisory, the path works).
#[test]
fn fastpath_table_missing_the_destination_mac() {
    let lab = Lab::up_with("bridge", "d7", &["--fast-path"]);
    let ns2 = lab.ns("ns2");
    sh(
        &ns2,
        &["ip", "link", "set", "veth1", "address", "02:00:5e:11:22:33"],
    );
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &[]);
    assert_eq!(code, 0, "advisory only: {v:#}");
    assert_eq!(
        findings(&v),
        vec![(
            "FASTPATH_MISSING_MAC".to_string(),
            ns2.clone(),
            "veth1".to_string()
        )],
        "{v:#}"
    );
    assert!(
        v["findings"][0]["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("02:00:5e:11:22:33")),
        "{v:#}"
    );
    probe_agrees(&v);
    // Refreshing the table, as the fix says, clears it.
    common::ok(&["fastpath", "enable", &lab.name]);
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &["--no-probe"]);
    assert_eq!((code, findings(&v)), (0, vec![]), "{v:#}");
}

/// BRIDGE_NETFILTER: with br_netfilter's bridge-nf-call-iptables=1, an iptables rule
/// (scoped to this lab's bridge) drops the bridged echo. Without br_netfilter in the
/// kernel, or with the sysctl 0, bridged frames never meet iptables: the same rule then
/// changes nothing and no finding may appear — the test checks whichever holds here.
#[test]
fn bridge_netfilter_rule_that_drops() {
    // The rule goes into a FORWARD chain: the host's firewall is not ours to change, so
    // the test runs again in a simulated host of its own (own network namespace, hence
    // own iptables tables and bridge-nf sysctls) and passes only if that run passes.
    if !common::in_own_host() {
        common::run_in_own_host("bridge_netfilter_rule_that_drops");
        return;
    }
    let lab = Lab::up("bridge", "d8");
    let br = lab.host_if("br0");
    let rule = ["FORWARD", "-i", br.as_str(), "-p", "icmp", "-j", "DROP"];
    let mut add = vec!["iptables", "-I"];
    add.extend(rule);
    sh("host", &add);
    let _undo = Undo(
        vec!["iptables", "-D"],
        rule.iter().map(|s| s.to_string()).collect(),
    );
    let nf = std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .map(|s| s.trim().to_string());
    let (code, v) = diagnose(&lab, "ns1", "10.1.1.3", &[]);
    match nf.as_deref() {
        Ok("1") => {
            assert_eq!(code, 1, "{v:#}");
            expect_one(&v, "BRIDGE_NETFILTER", "host", &br);
            assert!(
                v["findings"][0]["evidence"]
                    .as_str()
                    .is_some_and(|e| e.contains(&format!("-A FORWARD -i {br} -p icmp -j DROP"))),
                "{v:#}"
            );
            probe_agrees(&v);
            let drops = v["probe"]["drops"].as_array().cloned().unwrap_or_default();
            assert!(
                drops.iter().any(|d| d["reason"] == "netfilter_drop"
                    && d["meaning"]
                        .as_str()
                        .is_some_and(|m| m.contains("go through iptables"))),
                "the kernel's reason, explained by the finding: {v:#}"
            );
        }
        other => {
            eprintln!(
                "br_netfilter: bridge-nf-call-iptables is {other:?} here, so bridged frames skip iptables"
            );
            assert_eq!((code, findings(&v)), (0, vec![]), "{v:#}");
        }
    }
}
