//! up / down / show / graph against the real kernel and Open vSwitch.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Ping both ways, check `show --json` peers, then down leaves nothing.
fn scenario(
    spec: &str,
    tag: &str,
    ns_a: &str,
    ns_b: &str,
    expect_peer: &[(&str, &str, &str, &str)],
) {
    let prefix = prefix(tag);
    {
        let lab = Lab::up(spec, tag);
        assert!(
            ping(&lab.ns(ns_a), "10.1.1.3", &[]),
            "{spec}: ping 10.1.1.3 from {ns_a}"
        );
        assert!(
            ping(&lab.ns(ns_b), "10.1.1.2", &[]),
            "{spec}: ping 10.1.1.2 from {ns_b}"
        );
        let show: Value =
            serde_json::from_str(&ok(&["show", &lab.name, "--json"])).expect("show --json is JSON");
        for (ns, name, peer_ns, peer_name) in expect_peer {
            let ns = if *ns == "host" {
                "host".to_string()
            } else {
                lab.ns(ns)
            };
            let name = if ns == "host" {
                lab.host_if(name)
            } else {
                name.to_string()
            };
            let link = show["links"]
                .as_array()
                .and_then(|l| {
                    l.iter()
                        .find(|l| l["netns"] == ns.as_str() && l["name"] == name.as_str())
                })
                .unwrap_or_else(|| panic!("{spec}: show lists {ns}/{name}: {show}"));
            let want_ns = if *peer_ns == "host" {
                "host".to_string()
            } else {
                lab.ns(peer_ns)
            };
            let want_name = if *peer_ns == "host" {
                lab.host_if(peer_name)
            } else {
                peer_name.to_string()
            };
            assert_eq!(
                link["peer"]["netns"],
                want_ns.as_str(),
                "{spec}: peer of {ns}/{name}: {link}"
            );
            assert_eq!(
                link["peer"]["name"],
                want_name.as_str(),
                "{spec}: peer of {ns}/{name}: {link}"
            );
        }
    }
    assert_clean(&prefix);
}

#[test]
fn direct_pair_pings_and_cleans_up() {
    scenario(
        "direct",
        "wd",
        "ns1",
        "ns2",
        &[
            ("ns1", "veth0", "ns2", "veth1"),
            ("ns2", "veth1", "ns1", "veth0"),
        ],
    );
}

#[test]
fn bridge_pings_and_cleans_up() {
    scenario(
        "bridge",
        "wb",
        "ns1",
        "ns2",
        &[
            ("ns1", "veth0", "host", "br-veth0"),
            ("host", "br-veth1", "ns2", "veth1"),
        ],
    );
}

#[test]
fn ovs_veth_ports_ping_and_carry_tcp() {
    let prefix = prefix("wo");
    {
        let lab = Lab::up("ovs", "wo");
        assert!(ping(&lab.ns("ns1"), "10.1.1.3", &[]));
        assert!(ping(&lab.ns("ns2"), "10.1.1.2", &[]));
        let show: Value = serde_json::from_str(&ok(&["show", &lab.name, "--json"])).expect("JSON");
        let port = show["links"]
            .as_array()
            .and_then(|l| {
                l.iter()
                    .find(|l| l["name"] == lab.host_if("ovs-veth0").as_str())
            })
            .unwrap_or_else(|| panic!("ovs-veth0 in {show}"));
        assert_eq!(port["peer"]["name"], "veth0");
        assert_eq!(port["master"]["kind"], "ovs");
        assert!(
            port["master"]["ofport"].as_i64().unwrap_or(-1) > 0,
            "ofport: {port}"
        );
        tcp_transfer(&lab.ns("ns2"), &lab.ns("ns1"), "10.1.1.3", 4 << 20);
    }
    assert_clean(&prefix);
}

#[test]
fn ovs_internal_ports_ping_and_carry_tcp() {
    let prefix = prefix("wi");
    {
        let lab = Lab::up("ovs-internal", "wi");
        assert!(ping(&lab.ns("ns1"), "10.1.1.3", &[]));
        assert!(ping(&lab.ns("ns2"), "10.1.1.2", &[]));
        let show: Value = serde_json::from_str(&ok(&["show", &lab.name, "--json"])).expect("JSON");
        let tap = show["links"]
            .as_array()
            .and_then(|l| {
                l.iter()
                    .find(|l| l["netns"] == lab.ns("ns1").as_str() && l["kind"] == "ovs-internal")
            })
            .unwrap_or_else(|| panic!("an ovs-internal port in ns1: {show}"));
        assert_eq!(tap["name"], lab.host_if("tap1").as_str());
        assert_eq!(tap["master"]["kind"], "ovs");
        tcp_transfer(&lab.ns("ns2"), &lab.ns("ns1"), "10.1.1.3", 4 << 20);
    }
    assert_clean(&prefix);
}

#[test]
fn same_ns_pings_over_lo_with_the_classic_sysctls() {
    let prefix = prefix("ws");
    {
        let lab = Lab::up("same-ns", "ws");
        assert!(
            ping(&lab.ns("ns1"), "10.1.1.3", &["-I", "veth0"]),
            "with accept_local=1 / rp_filter=0"
        );
        let show: Value = serde_json::from_str(&ok(&["show", &lab.name, "--json"])).expect("JSON");
        let veth0 = show["links"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["name"] == "veth0"))
            .unwrap_or_else(|| panic!("veth0 in {show}"));
        assert_eq!(
            veth0["peer"]["netns"],
            lab.ns("ns1").as_str(),
            "both ends in one namespace"
        );
        assert_eq!(veth0["peer"]["name"], "veth1");
    }
    assert_clean(&prefix);
}

#[test]
fn same_ns_without_the_sysctls_does_not_ping() {
    let file = topology_file(
        "wn",
        "name: plain\nnamespaces:\n  - name: ns1\n    sysctls: {net.ipv4.conf.all.accept_local: 0}\nlinks:\n  - kind: veth\n    ends:\n      - {ns: ns1, name: veth0, addresses: [10.1.1.2/24]}\n      - {ns: ns1, name: veth1, addresses: [10.1.1.3/24]}\n",
    );
    let prefix = prefix("wn");
    {
        let lab = Lab::up(file.to_str().unwrap_or_default(), "wn");
        assert!(
            !ping(&lab.ns("ns1"), "10.1.1.3", &["-I", "veth0"]),
            "without accept_local the reply's source is local and the kernel drops it"
        );
    }
    assert_clean(&prefix);
}

#[test]
fn up_twice_is_a_no_op_and_down_of_absent_lab_succeeds() {
    let lab = Lab::up("direct", "wt");
    let again = ok(&["up", "direct", "--prefix", &lab.prefix]);
    assert!(again.contains("already up"), "{again}");
    drop(lab);
    let out = ok(&["down", "vstwt-direct"]);
    assert!(out.contains("not up"), "{out}");
    assert_clean(&prefix("wt"));
}

#[test]
fn a_foreign_interface_is_reported_and_left_alone() {
    let prefix = prefix("wf");
    // Someone else's interface with the name the lab wants.
    let foreign = format!("{prefix}br0");
    let status = std::process::Command::new("ip")
        .args(["link", "add", &foreign, "type", "bridge"])
        .status()
        .expect("ip link add");
    assert!(status.success());
    let out = vethscope(&["up", "bridge", "--prefix", &prefix]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("interface {foreign} already exists in namespace host and is not part of lab {prefix}bridge")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one message: {err}");
    assert!(
        std::path::Path::new(&format!("/sys/class/net/{foreign}")).exists(),
        "foreign interface untouched"
    );
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &foreign])
        .status();
    assert_clean(&prefix);
}

#[test]
fn bad_files_fail_with_one_clear_message_and_create_nothing() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "b1",
            "name: b1\nnamespaces: [{name: vstb1-a}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: vstb1-a, name: averyveryverylongname}\n      - {ns: vstb1-a, name: b}\n",
            ":6:9: interface averyveryverylongname in namespace vstb1-a: interface name `averyveryverylongname` is 21 bytes",
        ),
        (
            "b2",
            "name: b2\nnamespaces: [{name: vstb2-a}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: vstb2-a, name: x}\n      - {ns: vstb2-a, name: x}\n",
            "interface name x is used twice in namespace vstb2-a",
        ),
        (
            "b3",
            "name: b3\nnamespaces: [{name: vstb3-a}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: vstb3-a, name: x}\n      - {bridge: nosuch, name: y}\n",
            "bridge nosuch is not declared",
        ),
        (
            "b4",
            "name: b4\nnamespaces: [{name: vstb4-a}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: vstb4-a, name: x, addresses: [10.1.1.300/24]}\n      - {ns: vstb4-a, name: y}\n",
            "bad address: '10.1.1.300' is not an IPv4 or IPv6 address",
        ),
        (
            "b5",
            "name: b5\nnamespaces: [{name: vstb5-a}\nlinks: []\n",
            "YAML syntax error",
        ),
    ];
    for (tag, text, want) in cases {
        let file = topology_file(tag, text);
        let out = vethscope(&["up", file.to_str().unwrap_or_default()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{tag} must fail");
        assert!(err.contains(want), "{tag}: {err}");
        assert!(
            err.contains(&file.display().to_string()),
            "{tag}: names the file: {err}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{tag}: one message: {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{tag}: {err}"
        );
        assert_clean(&format!("vst{tag}-"));
    }
}

#[test]
fn down_cleans_up_after_up_was_killed_half_way() {
    // A lab big enough that `up` is still working when we kill it.
    let mut text = String::from("name: big\nnamespaces:\n");
    for i in 0..150 {
        text.push_str(&format!("  - name: n{i}\n"));
    }
    text.push_str("links:\n");
    for i in 0..149 {
        text.push_str(&format!(
            "  - kind: veth\n    ends:\n      - {{ns: n{i}, name: a{i}}}\n      - {{ns: n{}, name: b{i}}}\n",
            i + 1
        ));
    }
    let file = topology_file("wk", &text);
    let prefix = prefix("wk");
    let mut child = std::process::Command::new(bin())
        .args(["up", file.to_str().unwrap_or_default(), "--prefix", &prefix])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn up");
    // SIGKILL as soon as the first namespace exists.
    let first = format!("/run/netns/{prefix}n0");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(&first).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !leftovers(&prefix).is_empty(),
        "up had made something before it was killed"
    );
    let out = ok(&["down", &format!("{prefix}big")]);
    assert!(out.contains("removed"), "{out}");
    assert_clean(&prefix);
}

#[test]
fn down_finds_a_lab_by_its_marks_when_the_state_file_is_lost() {
    let prefix = prefix("wl");
    let lab = Lab::up("bridge", "wl");
    std::fs::remove_file(format!("/run/vethscope/labs/{}.json", lab.name))
        .expect("state file exists");
    let listed = ok(&["list"]);
    assert!(
        listed.contains(&lab.name),
        "list finds it by its marks: {listed}"
    );
    drop(lab);
    assert_clean(&prefix);
}

#[test]
fn graph_draws_the_live_topology() {
    let lab = Lab::up("bridge", "wg");
    let dot = ok(&["graph", &lab.name]);
    assert!(dot.starts_with("graph"), "{dot}");
    assert!(
        dot.contains("n_vstwg_2Dns1__veth0 -- ") || dot.contains("-- n_vstwg_2Dns1__veth0"),
        "veth edge: {dot}"
    );
    let mermaid = ok(&["graph", &lab.name, "--format", "mermaid"]);
    assert!(mermaid.starts_with("flowchart LR"), "{mermaid}");
    assert!(mermaid.contains("|veth|"), "{mermaid}");
}

#[test]
fn without_capabilities_one_sentence_names_what_is_missing() {
    // An empty bounding set: even root runs the binary without capabilities.
    let out = Command::new("setpriv")
        .args([
            "--bounding-set=-all",
            bin(),
            "up",
            "direct",
            "--prefix",
            &prefix("wc"),
        ])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("setpriv");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(
        err.trim_end(),
        "vethscope: `up` needs CAP_NET_ADMIN and CAP_SYS_ADMIN, which this process lacks (fix: run vethscope as root, e.g. `sudo vethscope up ...`)"
    );
    assert_clean(&prefix("wc"));
}

/// Interface indexes repeat across namespaces: in a lab of namespace pairs every
/// `veth0` has index 2 and names index 2 as its peer, so the index alone matches every
/// pair. Each end's peer must still be the other end of its own cable — told apart by
/// the peer's MAC, and where the MACs are equal too (pairs 1 and 2 here), by namespace
/// id.
#[test]
fn show_tells_apart_veths_whose_indexes_repeat_across_namespaces() {
    let mut text = String::from("name: pairs\nnamespaces:\n");
    for i in 0..3 {
        text.push_str(&format!("  - name: a{i}\n  - name: b{i}\n"));
    }
    text.push_str("links:\n");
    for i in 0..3 {
        let mac = if i == 0 {
            String::new()
        } else {
            ", mac: \"02:00:00:00:00:b1\"".to_string()
        };
        text.push_str(&format!(
            "  - kind: veth\n    ends:\n      - {{ns: a{i}, name: veth0, addresses: [10.1.{i}.2/24]}}\n      - {{ns: b{i}, name: veth0, addresses: [10.1.{i}.3/24]{mac}}}\n"
        ));
    }
    let file = topology_file("wp", &text);
    let prefix = prefix("wp");
    {
        let lab = Lab::up(file.to_str().unwrap_or_default(), "wp");
        let show: Value = serde_json::from_str(&ok(&["show", &lab.name, "--json"])).expect("JSON");
        let links = show["links"].as_array().cloned().unwrap_or_default();
        for i in 0..3 {
            for (ns, other) in [
                (format!("a{i}"), format!("b{i}")),
                (format!("b{i}"), format!("a{i}")),
            ] {
                let end = links
                    .iter()
                    .find(|l| l["netns"] == lab.ns(&ns).as_str() && l["name"] == "veth0")
                    .unwrap_or_else(|| panic!("{ns}/veth0 in {show}"));
                assert_eq!(
                    end["peer"]["netns"],
                    lab.ns(&other).as_str(),
                    "peer of {ns}/veth0: {end}"
                );
                assert_eq!(end["peer"]["name"], "veth0", "peer of {ns}/veth0: {end}");
            }
        }
    }
    assert_clean(&prefix);
}
