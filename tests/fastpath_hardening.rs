//! The fast path under hostile conditions (issue 8, items 3, 9, 10): names bpffs
//! refuses, two bridges in one lab, port settings the bridge obeys, interfaces deleted
//! and recreated, `enable`/`disable` killed or failing at every step, and `enable`
//! racing `down`. Real labs, real TC filters, real pins; nothing of ours may remain.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test prints what it measured or left out"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

const COOKIE: &str = "0x7665746873636f70";

fn status(lab: &str) -> Value {
    serde_json::from_str(&ok(&["fastpath", "status", lab, "--json"]))
        .expect("status --json is JSON")
}

fn port<'a>(st: &'a Value, ifname: &str) -> &'a Value {
    st["ports"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["ifname"] == ifname))
        .unwrap_or_else(|| panic!("port {ifname} in status: {st}"))
}

fn redirected(st: &Value) -> u64 {
    st["ports"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["redirected"].as_u64()).sum())
        .unwrap_or(0)
}

fn sh(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

fn sh_ok(args: &[&str]) {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn record_path(lab: &str) -> PathBuf {
    Path::new("/run/vethscope/fastpath")
        .join(format!("{}.json", vethscope::fastpath::bpf_name(lab)))
}

/// Everything the fast path of `lab` could leave on `ports` (root-namespace
/// interfaces) and `ovs_bridges`: pins, the record, TC filters, a clsact qdisc (none
/// of these ports has one before the fast path), OVS flows carrying our cookie.
fn fastpath_leftovers(lab: &str, ports: &[String], ovs_bridges: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    let dir = vethscope::fastpath::pin_dir(lab);
    if dir.exists() {
        left.push(format!("pin directory {}", dir.display()));
    }
    if record_path(lab).exists() {
        left.push(format!("record {}", record_path(lab).display()));
    }
    for p in ports {
        let filters = sh(&["tc", "filter", "show", "dev", p, "ingress"]);
        let text = String::from_utf8_lossy(&filters.stdout);
        if text.contains("fastpath_ingress") {
            left.push(format!("TC filter on {p}: {text}"));
        }
        let qdiscs = sh(&["tc", "qdisc", "show", "dev", p]);
        let text = String::from_utf8_lossy(&qdiscs.stdout);
        if text.contains("clsact") {
            left.push(format!("clsact qdisc on {p}"));
        }
    }
    if !ovs_bridges.is_empty() {
        let ep = vethscope::ovs::find_running(&vethscope::wire::ovs_run_dir())
            .expect("the lab's OVS runs");
        let dir = ep
            .run_dir
            .clone()
            .or_else(|| ep.socket.parent().map(Path::to_path_buf))
            .expect("OVS run dir");
        for br in ovs_bridges {
            let target = format!("unix:{}", dir.join(format!("{br}.mgmt")).display());
            let out = sh(&[
                "ovs-ofctl",
                "dump-flows",
                &target,
                &format!("cookie={COOKIE}/-1"),
            ]);
            assert!(out.status.success(), "dump-flows {br}");
            let text = String::from_utf8_lossy(&out.stdout);
            if text.contains("actions=drop") {
                left.push(format!("OVS flows on {br}: {text}"));
            }
        }
    }
    left
}

fn assert_no_fastpath(lab: &str, ports: &[String], ovs_bridges: &[String], when: &str) {
    let left = fastpath_leftovers(lab, ports, ovs_bridges);
    assert!(left.is_empty(), "{when}: left behind: {left:?}");
}

fn env_run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).env("RUST_BACKTRACE", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run vethscope")
}

fn killed(out: &Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal() == Some(9)
}

#[test]
fn dotted_lab_and_port_names_are_encoded_on_bpffs() {
    let p = prefix("fn");
    // Names without the prefix: `up --prefix` adds it to every one of them.
    let file = topology_file(
        "fn",
        "name: a.b\n\
         namespaces: [{name: n1}, {name: n2}]\n\
         bridges: [{name: br.0, kind: linux}]\n\
         links:\n\
         - kind: veth\n  ends:\n  - {ns: n1, name: e0.10, addresses: [10.61.0.1/24]}\n  - {bridge: br.0, name: p.1}\n\
         - kind: veth\n  ends:\n  - {ns: n2, name: e0.10, addresses: [10.61.0.2/24]}\n  - {bridge: br.0, name: p.2}\n",
    );
    let lab_name = format!("{p}a.b");
    let ports = vec![format!("{p}p.1"), format!("{p}p.2")];
    {
        let file = file.display().to_string();
        let lab = Lab::up(&file, "fn");
        assert_eq!(lab.name, lab_name);
        let out = ok(&["fastpath", "enable", &lab.name]);
        assert!(out.contains("2 ports (2 attached now)"), "{out}");
        let dir = vethscope::fastpath::pin_dir(&lab.name);
        assert!(
            dir.ends_with(format!("{p}a%2Eb")),
            "encoded: {}",
            dir.display()
        );
        assert!(dir.join("FASTPATH_FDB").exists());
        let st = status(&lab.name);
        for port_name in &ports {
            assert_eq!(port(&st, port_name)["attached"], true, "{st}");
        }
        let ns1 = format!("{p}n1");
        assert!(ping(&ns1, "10.61.0.2", &[]));
        assert!(redirected(&status(&lab.name)) >= 1, "redirected");
        ok(&["fastpath", "disable", &lab.name]);
        assert_no_fastpath(&lab.name, &ports, &[], "after disable");
        assert!(ping(&ns1, "10.61.0.2", &[]), "off again");
    }
    assert_clean(&p);
}

#[test]
fn two_bridges_in_one_lab_stay_apart() {
    let p = prefix("f2");
    // ns1 and ns2 on br0, ns3 on br1, all in one /24: only the bridges keep ns3 apart.
    let file = topology_file(
        "f2",
        "name: two\n\
         namespaces: [{name: n1}, {name: n2}, {name: n3}]\n\
         bridges: [{name: b0, kind: linux}, {name: b1, kind: linux}]\n\
         links:\n\
         - kind: veth\n  ends:\n  - {ns: n1, name: e0, addresses: [10.62.0.1/24], mac: \"02:62:00:00:00:01\"}\n  - {bridge: b0, name: p1}\n\
         - kind: veth\n  ends:\n  - {ns: n2, name: e0, addresses: [10.62.0.2/24], mac: \"02:62:00:00:00:02\"}\n  - {bridge: b0, name: p2}\n\
         - kind: veth\n  ends:\n  - {ns: n3, name: e0, addresses: [10.62.0.3/24], mac: \"02:62:00:00:00:03\"}\n  - {bridge: b1, name: p3}\n",
    );
    {
        let file = file.display().to_string();
        let lab = Lab::up(&file, "f2");
        let (n1, n3) = (format!("{p}n1"), format!("{p}n3"));
        // Static neighbours, so ns1 sends unicast frames to ns3's MAC without ARP
        // (which the bridge would keep on br0).
        let neigh = |ns: &str, ip: &str, mac: &str| {
            let out = in_ns(
                ns,
                &[
                    "ip",
                    "neigh",
                    "replace",
                    ip,
                    "lladdr",
                    mac,
                    "dev",
                    "e0",
                    "nud",
                    "permanent",
                ],
            );
            assert!(out.status.success(), "neigh in {ns}");
        };
        neigh(&n1, "10.62.0.3", "02:62:00:00:00:03");
        neigh(&n3, "10.62.0.1", "02:62:00:00:00:01");
        assert!(
            !ping(&n1, "10.62.0.3", &[]),
            "off: the bridges keep them apart"
        );
        ok(&["fastpath", "enable", &lab.name]);
        assert!(ping(&n1, "10.62.0.2", &[]), "on: same bridge answers");
        let before = redirected(&status(&lab.name));
        assert!(before >= 1, "same-bridge frames are redirected");
        assert!(
            !ping(&n1, "10.62.0.3", &[]),
            "on: a frame to a MAC behind the other bridge is never redirected there"
        );
        let st = status(&lab.name);
        assert_eq!(port(&st, &format!("{p}p3"))["bridge"], format!("{p}b1"));
    }
    assert_clean(&p);
}

#[test]
fn port_isolation_state_and_stp_are_respected() {
    let p = prefix("fp");
    {
        let lab = Lab::up("bridge", "fp");
        let (ns1, b0, b1) = (
            lab.ns("ns1"),
            lab.host_if("br-veth0"),
            lab.host_if("br-veth1"),
        );
        let br = lab.host_if("br0");
        // Both ports isolated: the bridge forwards nothing between them, nor may we.
        for port_name in [&b0, &b1] {
            sh_ok(&["bridge", "link", "set", "dev", port_name, "isolated", "on"]);
        }
        assert!(
            !ping(&ns1, "10.1.1.3", &[]),
            "isolated: no ping without fast path"
        );
        ok(&["fastpath", "enable", &lab.name]);
        assert!(
            !ping(&ns1, "10.1.1.3", &[]),
            "isolated: no ping with the fast path"
        );
        // One isolated port may talk to a non-isolated one; `enable` again refreshes.
        sh_ok(&["bridge", "link", "set", "dev", &b1, "isolated", "off"]);
        ok(&["fastpath", "enable", &lab.name]);
        assert!(ping(&ns1, "10.1.1.3", &[]), "one isolated: ping");
        assert!(redirected(&status(&lab.name)) >= 1);

        // A port not forwarding (without STP the kernel keeps every running port
        // forwarding; a port whose link is down is "disabled"): left out of the table.
        sh_ok(&["ip", "link", "set", &b1, "down"]);
        let out = ok(&["fastpath", "enable", &lab.name]);
        assert!(out.contains("1 ports"), "only br-veth0 served: {out}");
        let st = status(&lab.name);
        let why = st["not_applicable"].to_string();
        assert!(why.contains("not in the forwarding state"), "{st}");
        assert!(!ping(&ns1, "10.1.1.3", &[]), "port down: no ping");
        sh_ok(&["ip", "link", "set", &b1, "up"]);
        ok(&["fastpath", "enable", &lab.name]);
        assert!(ping(&ns1, "10.1.1.3", &[]), "forwarding again: ping");

        // STP: port states change on their own; the fast path stays off that bridge.
        sh_ok(&["ip", "link", "set", &br, "type", "bridge", "stp_state", "1"]);
        let out = vethscope(&["fastpath", "enable", &lab.name]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "STP bridge refused");
        assert!(err.contains("STP"), "{err}");
        sh_ok(&["ip", "link", "set", &br, "type", "bridge", "stp_state", "0"]);
        ok(&["fastpath", "disable", &lab.name]);
        assert_no_fastpath(&lab.name, &[b0, b1], &[], "after disable");
    }
    assert_clean(&p);
}

#[test]
fn recreated_or_detached_ports_are_attached_again() {
    let p = prefix("fr");
    {
        let lab = Lab::up("bridge", "fr");
        let (ns1, ns2) = (lab.ns("ns1"), lab.ns("ns2"));
        let (b0, b1, br) = (
            lab.host_if("br-veth0"),
            lab.host_if("br-veth1"),
            lab.host_if("br0"),
        );
        ok(&["fastpath", "enable", &lab.name]);
        // Delete br-veth1 (and its peer) and make the pair again under the same names.
        sh_ok(&["ip", "link", "del", &b1]);
        sh_ok(&[
            "ip", "link", "add", &b1, "type", "veth", "peer", "name", "veth1", "netns", &ns2,
        ]);
        sh_ok(&[
            "ip",
            "-n",
            &ns2,
            "addr",
            "add",
            "10.1.1.3/24",
            "dev",
            "veth1",
        ]);
        sh_ok(&["ip", "-n", &ns2, "link", "set", "veth1", "up"]);
        sh_ok(&["ip", "link", "set", &b1, "master", &br, "up"]);
        // The ownership mark `up` gives its interfaces, so the lab counts it as its own.
        let mark = vethscope::wire::mark::alias(&lab.name);
        sh_ok(&["ip", "link", "set", &b1, "alias", &mark]);
        let st = status(&lab.name);
        assert_eq!(
            port(&st, &b1)["attached"],
            false,
            "status reads the live interface: {st}"
        );
        assert_eq!(port(&st, &b0)["attached"], true, "{st}");
        let out = ok(&["fastpath", "enable", &lab.name]);
        assert!(out.contains("(1 attached now)"), "{out}");
        assert_eq!(port(&status(&lab.name), &b1)["attached"], true);

        // A filter removed behind our back is noticed too.
        sh_ok(&["tc", "filter", "del", "dev", &b0, "ingress"]);
        assert_eq!(port(&status(&lab.name), &b0)["attached"], false);
        let out = ok(&["fastpath", "enable", &lab.name]);
        assert!(out.contains("(1 attached now)"), "{out}");
        let before = redirected(&status(&lab.name));
        assert!(ping(&ns1, "10.1.1.3", &[]));
        let after = redirected(&status(&lab.name));
        assert!(
            after >= before + 2,
            "both directions redirected: {before} -> {after}"
        );
        ok(&["fastpath", "disable", &lab.name]);
        assert_no_fastpath(&lab.name, &[b0, b1], &[], "after disable");
    }
    assert_clean(&p);
}

/// Fault points `enable` passes on a two-port bridge lab (see fastpath/mod.rs): plan,
/// pin dir, maps, tables, record, (clsact, filter) × 2, done.
const ENABLE_POINTS: u32 = 10;
/// `disable`: flows, (filter, clsact) × 2 (the pins go in one safefs walk).
const DISABLE_POINTS: u32 = 5;

#[test]
fn failed_enable_rolls_back_at_every_step() {
    let p = prefix("fe");
    {
        let lab = Lab::up("bridge", "fe");
        let ports = vec![lab.host_if("br-veth0"), lab.host_if("br-veth1")];
        for n in 1..=ENABLE_POINTS {
            let n_text = n.to_string();
            let out = env_run(
                &["fastpath", "enable", &lab.name],
                &[
                    ("VETHSCOPE_FAULT_AFTER", n_text.as_str()),
                    ("VETHSCOPE_FAULT_ACTION", "error"),
                ],
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "point {n}: enable must fail");
            assert!(err.contains("fault injected"), "point {n}: {err}");
            assert!(!err.contains("panicked"), "point {n}: {err}");
            assert_no_fastpath(&lab.name, &ports, &[], &format!("rolled back at point {n}"));
        }
        ok(&["fastpath", "enable", &lab.name]);
        // A failing refresh keeps the working fast path and adds nothing.
        let out = env_run(
            &["fastpath", "enable", &lab.name],
            &[
                ("VETHSCOPE_FAULT_AFTER", "5"),
                ("VETHSCOPE_FAULT_ACTION", "error"),
            ],
        );
        assert!(!out.status.success());
        let st = status(&lab.name);
        assert!(
            st["ports"]
                .as_array()
                .is_some_and(|a| a.iter().all(|p| p["attached"] == true)),
            "{st}"
        );
        assert!(ping(&lab.ns("ns1"), "10.1.1.3", &[]));
    }
    assert_clean(&p);
}

#[test]
fn killed_enable_or_disable_leaves_nothing_after_disable_or_down() {
    let p = prefix("fk");
    {
        let lab = Lab::up("bridge", "fk");
        let ports = vec![lab.host_if("br-veth0"), lab.host_if("br-veth1")];
        let mut kills = 0;
        for n in 1..=ENABLE_POINTS + 1 {
            let n_text = n.to_string();
            let out = env_run(
                &["fastpath", "enable", &lab.name],
                &[("VETHSCOPE_FAULT_AFTER", n_text.as_str())],
            );
            if n <= ENABLE_POINTS {
                assert!(killed(&out), "enable killed at point {n}: {:?}", out.status);
                kills += 1;
            } else {
                assert!(out.status.success(), "past the last point enable completes");
            }
            ok(&["fastpath", "disable", &lab.name]);
            assert_no_fastpath(&lab.name, &ports, &[], &format!("enable killed at {n}"));
            assert!(ping(&lab.ns("ns1"), "10.1.1.3", &[]), "the lab still works");
        }
        for n in 1..=DISABLE_POINTS {
            ok(&["fastpath", "enable", &lab.name]);
            let n_text = n.to_string();
            let out = env_run(
                &["fastpath", "disable", &lab.name],
                &[("VETHSCOPE_FAULT_AFTER", n_text.as_str())],
            );
            assert!(
                killed(&out),
                "disable killed at point {n}: {:?}",
                out.status
            );
            kills += 1;
            ok(&["fastpath", "disable", &lab.name]);
            assert_no_fastpath(&lab.name, &ports, &[], &format!("disable killed at {n}"));
        }
        eprintln!("{kills} kills, nothing left after any of them");
    }
    assert_clean(&p);
    // Killed, then `down`: the lab's objects and the fast path go together.
    for n in [3, 5, 7] {
        let lab = Lab::up("bridge", "fk");
        let lab_name = lab.name.clone();
        let n_text = n.to_string();
        let out = env_run(
            &["fastpath", "enable", &lab.name],
            &[("VETHSCOPE_FAULT_AFTER", n_text.as_str())],
        );
        assert!(killed(&out));
        drop(lab);
        assert_no_fastpath(&lab_name, &[], &[], &format!("down after a kill at {n}"));
        assert_clean(&p);
        // A second `up` works.
    }
}

#[test]
fn killed_enable_on_ovs_leaves_no_flows() {
    let p = prefix("fv");
    {
        let lab = Lab::up("ovs", "fv");
        let ports = vec![lab.host_if("ovs-veth0"), lab.host_if("ovs-veth1")];
        let bridges = vec![lab.host_if("ovsbr0")];
        // One more point than a Linux bridge (the OVS drop flows), and one past the end.
        for n in 1..=ENABLE_POINTS + 2 {
            let n_text = n.to_string();
            let out = env_run(
                &["fastpath", "enable", &lab.name],
                &[("VETHSCOPE_FAULT_AFTER", n_text.as_str())],
            );
            assert!(
                killed(&out) || n > ENABLE_POINTS + 1,
                "enable killed at point {n}: {:?}",
                out.status
            );
            ok(&["fastpath", "disable", &lab.name]);
            assert_no_fastpath(
                &lab.name,
                &ports,
                &bridges,
                &format!("enable killed at {n}"),
            );
        }
        assert!(ping(&lab.ns("ns1"), "10.1.1.3", &[]), "the lab still works");
    }
    assert_clean(&p);
}

#[test]
fn enable_racing_down_leaves_nothing() {
    let p = prefix("fz");
    for round in 0..4 {
        let lab = Lab::up("bridge", "fz");
        let name = lab.name.clone();
        let enabler = {
            let name = name.clone();
            std::thread::spawn(move || vethscope(&["fastpath", "enable", &name]))
        };
        // Round 0..1: down first; 2..3: enable first (give it a head start).
        if round >= 2 {
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        drop(lab); // runs `down`
        let out = enabler.join().expect("enable thread");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "round {round}: {err}");
        // Enable after down finds no lab; before it, down removes the fast path too.
        if !out.status.success() {
            assert!(!err.is_empty(), "a failure says why");
        }
        assert_no_fastpath(&name, &[], &[], &format!("round {round}"));
        assert_clean(&p);
    }
}
