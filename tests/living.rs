//! Living labs: `show` tables, `exec`, startup commands, `save`, drift and diff-apply,
//! against real namespaces, bridges and Open vSwitch. Tags start with `L` (upper case)
//! so they never collide with other test files' lower-case tags.

mod common;

use common::*;
use serde_json::Value;

fn show_json(lab: &str) -> Value {
    serde_json::from_str(&ok(&["show", lab, "--json"])).expect("show --json is JSON")
}

fn assert_schema(v: &Value) {
    assert_valid(&published_schema("show-json-schema.json"), "show --json", v);
}

fn namespace<'a>(show: &'a Value, ns: &str) -> &'a Value {
    show["namespaces"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == ns))
        .unwrap_or_else(|| panic!("namespace {ns} in {show}"))
}

fn link<'a>(show: &'a Value, ns: &str, name: &str) -> &'a Value {
    show["links"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["netns"] == ns && l["name"] == name))
        .unwrap_or_else(|| panic!("link {ns}/{name} in {show}"))
}

/// Writes a topology file for the test and gives its path as text, for `up` arguments.
fn file_path(tag: &str, text: &str) -> String {
    topology_file(tag, text)
        .to_str()
        .unwrap_or_default()
        .to_string()
}

fn bridge<'a>(show: &'a Value, name: &str) -> &'a Value {
    show["bridges"]
        .as_array()
        .and_then(|a| a.iter().find(|b| b["name"] == name))
        .unwrap_or_else(|| panic!("bridge {name} in {show}"))
}

#[test]
fn show_has_routes_neighbours_sysctls_and_the_linux_fdb() {
    let prefix = prefix("La");
    {
        let lab = Lab::up("bridge", "La");
        assert!(ping(&lab.ns("ns1"), "10.1.1.3", &[]));
        let show = show_json(&lab.name);
        assert_schema(&show);
        assert_eq!(show["schema_version"], 1);
        let ns1 = namespace(&show, &lab.ns("ns1"));
        let routes = ns1["routes"].as_array().expect("routes");
        assert!(
            routes.iter().any(|r| r["family"] == "ipv4"
                && r["to"] == "10.1.1.0/24"
                && r["dev"] == "veth0"
                && r["protocol"] == "kernel"),
            "connected route of veth0: {routes:?}"
        );
        assert!(
            routes
                .iter()
                .any(|r| r["family"] == "ipv6" && r["to"] == "fe80::/64"),
            "IPv6 link-local route: {routes:?}"
        );
        let mac_ns2 = link(&show, &lab.ns("ns2"), "veth1")["mac"].clone();
        let neigh = ns1["neighbours"].as_array().expect("neighbours");
        assert!(
            neigh
                .iter()
                .any(|n| n["address"] == "10.1.1.3" && n["dev"] == "veth0" && n["mac"] == mac_ns2),
            "ns1 resolved 10.1.1.3 to {mac_ns2} after the ping: {neigh:?}"
        );
        assert_eq!(ns1["sysctls"]["net.ipv4.ip_forward"], "0", "{ns1}");
        assert!(ns1["sysctls"]["net.ipv4.conf.all.rp_filter"].is_string());
        let veth0 = link(&show, &lab.ns("ns1"), "veth0");
        assert!(veth0["sysctls"]["ipv4.rp_filter"].is_string(), "{veth0}");
        assert!(veth0["sysctls"]["ipv4.arp_ignore"].is_string(), "{veth0}");
        // The bridge learned ns2's MAC on the port that leads to ns2.
        let br = bridge(&show, &lab.host_if("br0"));
        assert_eq!(br["netns"], "host");
        let fdb = br["fdb"].as_array().expect("fdb");
        assert!(
            fdb.iter()
                .any(|e| e["mac"] == mac_ns2 && e["port"] == lab.host_if("br-veth1").as_str()),
            "fdb has {mac_ns2} on br-veth1: {fdb:?}"
        );
        let text = ok(&["show", &lab.name]);
        assert!(
            text.contains("route ipv4 10.1.1.0/24 dev veth0 proto kernel"),
            "{text}"
        );
        assert!(text.contains("neighbour 10.1.1.3 dev veth0"), "{text}");
        assert!(text.contains("fdb "), "{text}");
    }
    assert_clean(&prefix);
}

/// Every test of this file that uses Open vSwitch is in this one function, so they run
/// one after the other: the last OVS lab's `down` stops the daemons vethscope started.
#[test]
fn ovs_mac_table_in_show_and_ovs_internal_round_trip() {
    show_has_the_ovs_mac_table_and_same_ns_sysctls();
    round_trip("ovs-internal", "Lg", "ovs-internal", "ns1", "10.1.1.3");
    up_on_a_running_ovs_lab_adds_and_removes_ports_and_internal_ports();
}

const OVS_A: &str = "name: ovsc\nnamespaces: [{name: ns1}, {name: ns2}]\nbridges: [{name: ovs0, kind: ovs}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: ns1, name: eth0, addresses: [10.4.1.2/24]}\n      - {bridge: ovs0, name: o-ns1}\n  - kind: veth\n    ends:\n      - {ns: ns2, name: eth0, addresses: [10.4.1.3/24]}\n      - {bridge: ovs0, name: o-ns2}\n";

/// OVS_A without ns2's port, plus an OVS internal port in a new namespace ns3.
fn ovs_b() -> String {
    OVS_A
        .replace("{name: ns2}]", "{name: ns2}, {name: ns3}]")
        .replace(
            "  - kind: veth\n    ends:\n      - {ns: ns2, name: eth0, addresses: [10.4.1.3/24]}\n      - {bridge: ovs0, name: o-ns2}\n",
            "  - kind: ovs-internal\n    bridge: ovs0\n    end: {ns: ns3, name: int3, addresses: [10.4.1.4/24]}\n",
        )
}

fn up_on_a_running_ovs_lab_adds_and_removes_ports_and_internal_ports() {
    let prefix = prefix("Ln");
    let a = file_path("Ln-a", OVS_A);
    let b = file_path("Ln-b", &ovs_b());
    let lab = format!("{prefix}ovsc");
    let ns1 = format!("{prefix}ns1");
    {
        let _guard = LabGuard(lab.clone());
        ok(&["up", &a, "--prefix", &prefix]);
        assert!(ping(&ns1, "10.4.1.3", &[]), "ns1 reaches ns2 over OVS");
        let applied = ok(&["up", &b, "--prefix", &prefix]);
        assert!(
            applied.contains("add link ovs-internal port") && applied.contains("remove link veth"),
            "{applied}"
        );
        assert!(
            ping(&ns1, "10.4.1.4", &[]),
            "ns1 reaches ns3's internal port"
        );
        assert!(!ping(&ns1, "10.4.1.3", &[]), "ns2's port is gone");
        let show = show_json(&lab);
        let ovs = bridge(&show, &format!("{prefix}ovs0"));
        let ports = ovs["ports"].as_array().expect("ports");
        assert!(
            !ports.iter().any(|p| p == format!("{prefix}o-ns2").as_str()),
            "{ovs}"
        );
        assert!(vethscope(&["show", &lab, "--drift"]).status.success());
        ok(&["up", &a, "--prefix", &prefix]);
        // ns2's interface was made anew (another MAC): ns1 forgets the old one first.
        assert!(
            in_ns(&ns1, &["ip", "neigh", "flush", "all"])
                .status
                .success()
        );
        assert!(ping(&ns1, "10.4.1.3", &[]), "back: ns1 reaches ns2");
        assert!(!netns_exists(&format!("{prefix}ns3")));
        assert!(vethscope(&["show", &lab, "--drift"]).status.success());
    }
    assert_clean(&prefix);
}

fn show_has_the_ovs_mac_table_and_same_ns_sysctls() {
    let prefix = prefix("Lb");
    {
        let lab = Lab::up("ovs", "Lb");
        assert!(ping(&lab.ns("ns1"), "10.1.1.3", &[]));
        let show = show_json(&lab.name);
        assert_schema(&show);
        let mac_ns2 = link(&show, &lab.ns("ns2"), "veth1")["mac"].clone();
        let br = show["bridges"]
            .as_array()
            .and_then(|a| a.iter().find(|b| b["kind"] == "ovs"))
            .unwrap_or_else(|| panic!("an OVS bridge in {show}"));
        let fdb = br["fdb"].as_array().expect("fdb");
        assert!(
            fdb.iter().any(|e| e["mac"] == mac_ns2
                && e["port"] == lab.host_if("ovs-veth1").as_str()
                && e["state"] == "learned"),
            "OVS learned {mac_ns2} on ovs-veth1: {fdb:?}"
        );
    }
    {
        let lab = Lab::up("same-ns", "Lb");
        let show = show_json(&lab.name);
        assert_schema(&show);
        let veth0 = link(&show, &lab.ns("ns1"), "veth0");
        assert_eq!(veth0["sysctls"]["ipv4.accept_local"], "1", "{veth0}");
        assert_eq!(veth0["sysctls"]["ipv4.rp_filter"], "0", "{veth0}");
    }
    assert_clean(&prefix);
}

fn fails(args: &[&str]) -> String {
    let out = vethscope(args);
    assert!(!out.status.success(), "vethscope {args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("internal error"),
        "{args:?}: {stderr}"
    );
    stderr
}

#[test]
fn exec_runs_inside_the_namespace_and_returns_the_exit_code() {
    let prefix = prefix("Lc");
    {
        let lab = Lab::up("direct", "Lc");
        let ns1 = lab.ns("ns1");
        let links = ok(&["exec", &lab.name, &ns1, "--", "ip", "-o", "link"]);
        assert!(links.contains("veth0"), "{links}");
        assert!(
            !links.contains("veth1"),
            "ns2's interface seen from ns1: {links}"
        );
        // /sys belongs to the namespace too.
        let mtu = ok(&[
            "exec",
            &lab.name,
            &ns1,
            "--",
            "cat",
            "/sys/class/net/veth0/mtu",
        ]);
        assert_eq!(mtu.trim(), "1500");
        let pinged = vethscope(&[
            "exec", &lab.name, &ns1, "--", "ping", "-c1", "-W2", "10.1.1.3",
        ]);
        assert!(pinged.status.success(), "ping through exec");
        let out = vethscope(&["exec", &lab.name, &ns1, "--", "sh", "-c", "exit 7"]);
        assert_eq!(out.status.code(), Some(7), "exit code passed through");

        // Bad input: one clear error each, nothing run.
        let e = fails(&["exec", "Lc-no-such-lab", "ns1", "--", "true"]);
        assert!(e.contains("no lab named Lc-no-such-lab"), "{e}");
        for bad in ["host", "../../etc", "ns1", "", "lo\u{7}"] {
            let e = fails(&["exec", &lab.name, bad, "--", "true"]);
            assert!(e.contains("is not a namespace of lab"), "{bad:?}: {e}");
            assert!(e.contains(&ns1), "lists the lab's namespaces: {e}");
        }
        let e = fails(&["exec", &lab.name, &ns1, "--", "/nonexistent/program"]);
        assert!(e.contains("cannot run") && e.contains(&ns1), "{e}");
    }
    assert_clean(&prefix);
}

#[test]
fn startup_commands_run_in_order_and_a_failing_one_fails_up() {
    let prefix = prefix("Ld");
    let good = topology_file(
        "Ld-good",
        "name: startup\nnamespaces:\n  - name: ns1\n    exec:\n      - ip addr add 10.9.9.9/32 dev lo\n      - echo hello from $(ip -o addr show dev lo | grep -c 10.9.9.9)\n  - name: ns2\nlinks:\n  - kind: veth\n    ends:\n      - {ns: ns1, name: veth0, addresses: [10.1.1.2/24]}\n      - {ns: ns2, name: veth1, addresses: [10.1.1.3/24]}\n",
    );
    {
        let out = vethscope(&["up", good.to_str().unwrap_or_default(), "--prefix", &prefix]);
        let lab = format!("{prefix}startup");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let guard = LabGuard(lab.clone());
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The second command saw what the first did: they ran in order.
        assert!(stdout.contains("hello from 1"), "{stdout}");
        assert!(stdout.contains("(exit 0)"), "{stdout}");
        let show = show_json(&lab);
        let lo = link(&show, &format!("{prefix}ns1"), "lo");
        assert!(
            lo["addresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "10.9.9.9/32")),
            "{lo}"
        );
        drop(guard);
    }
    let bad = topology_file(
        "Ld-bad",
        "name: startfail\nnamespaces:\n  - name: ns1\n    exec:\n      - echo before\n      - sh -c 'echo oops >&2; exit 3'\n      - echo never-runs\n",
    );
    {
        let lab = format!("{prefix}startfail");
        let guard = LabGuard(lab.clone());
        let out = vethscope(&["up", bad.to_str().unwrap_or_default(), "--prefix", &prefix]);
        assert!(!out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stdout.contains("before"), "{stdout}");
        assert!(
            !stdout.contains("never-runs"),
            "stopped at the failure: {stdout}"
        );
        assert!(
            stderr.contains("sh -c 'echo oops >&2; exit 3'")
                && stderr.contains("exit code 3")
                && stderr.contains("oops")
                && stderr.contains(&format!("{prefix}ns1"))
                && stderr.contains(":6:"),
            "names the command, namespace, file line and output: {stderr}"
        );
        // Documented: the lab stays up as made.
        let show = show_json(&lab);
        assert_eq!(show["status"], "up");
        drop(guard);
    }
    assert_clean(&prefix);
}

#[test]
fn malformed_exec_lines_are_rejected_before_anything_is_made() {
    let prefix = prefix("Le");
    for (i, (body, want)) in [
        ("      - ''\n", "empty"),
        ("      - \"echo a\\u0007\"\n", "control character"),
        ("      - {cmd: x}\n", "must be a string"),
    ]
    .iter()
    .enumerate()
    {
        let f = topology_file(
            &format!("Le-{i}"),
            &format!("name: badexec\nnamespaces:\n  - name: ns1\n    exec:\n{body}"),
        );
        let e = fails(&["up", f.to_str().unwrap_or_default(), "--prefix", &prefix]);
        assert!(e.contains(want), "{body}: {e}");
        assert!(e.contains(":5:"), "names the line: {e}");
    }
    let f = topology_file(
        "Le-x",
        "name: badexec\nnamespaces:\n  - name: ns1\n    exec: echo not-a-list\n",
    );
    let e = fails(&["up", f.to_str().unwrap_or_default(), "--prefix", &prefix]);
    assert!(e.contains("exec") || e.contains("list"), "{e}");
    assert_clean(&prefix);
}

/// Brings a lab down on drop (for labs made by a file with extra checks on `up`).
struct LabGuard(String);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = vethscope(&["down", &self.0]);
    }
}

/// A router namespace between a Linux bridge and a direct link, IPv4 and IPv6, with
/// routes, namespace and interface sysctls, MTU, MAC and a startup command.
const ROUTER_LAB: &str = r#"name: rt
namespaces:
  - name: ns1
    routes: [{to: default, via: 10.1.1.1}, {to: default, via: "2001:db8:1::1"}]
  - name: r1
    sysctls: {net.ipv4.ip_forward: 1, net.ipv6.conf.all.forwarding: 1}
    exec: ["echo router ready"]
  - name: ns2
    routes: [{to: 10.1.1.0/24, via: 10.1.2.1}, {to: "2001:db8:1::/64", via: "2001:db8:2::1"}]
bridges:
  - {name: br0, kind: linux}
links:
  - kind: veth
    ends:
      - {ns: ns1, name: eth0, addresses: [10.1.1.2/24, "2001:db8:1::2/64"], mtu: 1400}
      - {bridge: br0, name: br0-ns1}
  - kind: veth
    ends:
      - {ns: r1, name: eth0, addresses: [10.1.1.1/24, "2001:db8:1::1/64"], sysctls: {rp_filter: 2}}
      - {bridge: br0, name: br0-r1}
  - kind: veth
    ends:
      - {ns: r1, name: eth1, addresses: [10.1.2.1/24, "2001:db8:2::1/64"], mac: "02:00:00:00:02:01"}
      - {ns: ns2, name: eth0, addresses: [10.1.2.2/24, "2001:db8:2::2/64"]}
"#;

/// save → down → up (the saved file, no prefix) → save: the same file, a working lab.
fn round_trip(spec: &str, tag: &str, lab_name: &str, from: &str, to: &str) {
    let prefix = prefix(tag);
    let lab = format!("{prefix}{lab_name}");
    {
        let _guard = LabGuard(lab.clone());
        ok(&["up", spec, "--prefix", &prefix]);
        assert!(
            ping(&format!("{prefix}{from}"), to, &[]),
            "{spec}: ping before save"
        );
        let first = ok(&["save", &lab]);
        ok(&["down", &lab]);
        assert_clean(&prefix);
        let saved = topology_file(&format!("{tag}-saved"), &first);
        ok(&["up", saved.to_str().unwrap_or_default()]);
        assert!(
            ping(&format!("{prefix}{from}"), to, &[]),
            "{spec}: ping after up of the saved file:\n{first}"
        );
        let second = ok(&["save", &lab]);
        assert_eq!(first, second, "save → down → up → save differs");
    }
    assert_clean(&prefix);
}

#[test]
fn save_down_up_save_gives_the_same_file_for_a_router_lab() {
    let f = topology_file("Lf", ROUTER_LAB);
    round_trip(
        f.to_str().unwrap_or_default(),
        "Lf",
        "rt",
        "ns1",
        "10.1.2.2",
    );
}

#[test]
fn save_rejects_unknown_and_malformed_lab_names() {
    for bad in ["Lh-no-such-lab", "../../etc/passwd", "", "a\nb"] {
        let e = fails(&["save", bad]);
        assert!(
            e.contains("no lab named") || e.contains("lab name"),
            "{bad:?}: {e}"
        );
    }
}

#[test]
fn drift_lists_a_lost_address_route_a_down_interface_and_a_foreign_port() {
    let prefix = prefix("Li");
    let f = topology_file("Li", ROUTER_LAB);
    let lab = format!("{prefix}rt");
    {
        let _guard = LabGuard(lab.clone());
        ok(&["up", f.to_str().unwrap_or_default(), "--prefix", &prefix]);
        let clean = vethscope(&["show", &lab, "--drift"]);
        assert!(
            clean.status.success(),
            "a fresh lab has no drift: {}",
            String::from_utf8_lossy(&clean.stdout)
        );
        let ns1 = format!("{prefix}ns1");
        let ns2 = format!("{prefix}ns2");
        let r1 = format!("{prefix}r1");
        assert!(
            in_ns(
                &ns2,
                &["ip", "addr", "del", "2001:db8:2::2/64", "dev", "eth0"]
            )
            .status
            .success()
        );
        assert!(
            in_ns(&ns1, &["ip", "route", "del", "default", "via", "10.1.1.1"])
                .status
                .success()
        );
        assert!(
            in_ns(&ns1, &["ip", "link", "set", "eth0", "mtu", "1300"])
                .status
                .success()
        );
        assert!(
            in_ns(&r1, &["ip", "link", "set", "eth1", "down"])
                .status
                .success()
        );
        // A foreign interface on the lab's bridge (made by hand in the root namespace,
        // which the test's simulated host owns).
        let foreign = format!("{prefix}fx");
        let _foreign_guard = HostLinkGuard(foreign.clone());
        let br = format!("{prefix}br0");
        assert!(
            std::process::Command::new("ip")
                .args([
                    "link",
                    "add",
                    &foreign,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &format!("{prefix}fy")
                ])
                .status()
                .is_ok_and(|s| s.success())
        );
        assert!(
            std::process::Command::new("ip")
                .args(["link", "set", &foreign, "master", &br])
                .status()
                .is_ok_and(|s| s.success())
        );
        let out = vethscope(&["show", &lab, "--drift", "--json"]);
        assert_eq!(out.status.code(), Some(1), "drift found → exit 1");
        let v: Value = serde_json::from_slice(&out.stdout).expect("drift JSON");
        let found = v["drift"].as_array().expect("drift list");
        let has = |kind: &str, netns: &str, needle: &str| {
            found.iter().any(|d| {
                d["kind"] == kind
                    && d["netns"] == netns
                    && d["object"].as_str().is_some_and(|o| o.contains(needle))
            })
        };
        assert!(
            has("missing-address", &ns2, "2001:db8:2::2/64"),
            "{found:?}"
        );
        assert!(
            has("missing-route", &ns1, "default via 10.1.1.1"),
            "{found:?}"
        );
        assert!(has("mtu", &ns1, "eth0"), "{found:?}");
        assert!(has("interface-down", &r1, "eth1"), "{found:?}");
        assert!(has("foreign-interface", "host", &foreign), "{found:?}");
        let text = vethscope(&["show", &lab, "--drift"]);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("missing-route"), "{text}");
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &foreign])
            .status();
    }
    assert_clean(&prefix);
    let e = fails(&["show", "Li-no-such-lab", "--drift"]);
    assert!(e.contains("Li-no-such-lab"), "{e}");
}

/// Deletes a root-namespace interface the test made by hand, even when the test fails.
struct HostLinkGuard(String);

impl Drop for HostLinkGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn up_on_a_running_lab_applies_only_the_difference_and_repairs_drift() {
    let prefix = prefix("Lj");
    let f = file_path("Lj", ROUTER_LAB);
    let changed = ROUTER_LAB
        .replace(
            "{ns: ns1, name: eth0, addresses: [10.1.1.2/24, \"2001:db8:1::2/64\"], mtu: 1400}",
            "{ns: ns1, name: eth0, addresses: [10.1.1.2/24, 10.1.1.20/24], mtu: 1450, mac: \"02:00:00:00:01:02\"}",
        )
        .replace("sysctls: {rp_filter: 2}", "sysctls: {rp_filter: 1}")
        .replace(
            "routes: [{to: default, via: 10.1.1.1}, {to: default, via: \"2001:db8:1::1\"}]",
            "routes: [{to: default, via: 10.1.1.1}]",
        )
        .replace(
            "{to: \"2001:db8:1::/64\", via: \"2001:db8:2::1\"}",
            "{to: 10.1.9.0/24, via: 10.1.2.1}",
        );
    assert_ne!(changed, ROUTER_LAB, "the edit applied");
    let g = file_path("Lj-changed", &changed);
    let lab = format!("{prefix}rt");
    let (ns1, ns2) = (format!("{prefix}ns1"), format!("{prefix}ns2"));
    {
        let _guard = LabGuard(lab.clone());
        ok(&["up", &f, "--prefix", &prefix]);
        assert!(ping(&ns2, "10.1.2.1", &[]), "the untouched link works");

        // --dry-run: the plan, nothing touched.
        let plan = ok(&["up", &g, "--prefix", &prefix, "--dry-run"]);
        assert!(
            plan.contains("would: ") && plan.contains("add address 10.1.1.20/24 to eth0"),
            "{plan}"
        );
        assert!(
            plan.contains("remove address 2001:db8:1::2/64 from eth0"),
            "{plan}"
        );
        assert!(plan.contains("set mtu of eth0 to 1450"), "{plan}");
        assert!(
            plan.contains("remove route 2001:db8:1::/64 via 2001:db8:2::1"),
            "{plan}"
        );
        assert!(
            plan.contains("add route 10.1.9.0/24 via 10.1.2.1"),
            "{plan}"
        );
        assert!(
            !plan.contains("eth1"),
            "nothing on the unchanged link: {plan}"
        );
        let before = show_json(&lab);
        assert_eq!(
            link(&before, &ns1, "eth0")["mtu"],
            1400,
            "dry run changed nothing"
        );

        // A ping across the unchanged link r1/eth1 — ns2/eth0 runs through the change.
        let pinger = {
            let ns2 = ns2.clone();
            std::thread::spawn(move || {
                in_ns(
                    &ns2,
                    &["ping", "-c", "60", "-i", "0.05", "-W", "1", "10.1.2.1"],
                )
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(500));
        let applied = ok(&["up", &g, "--prefix", &prefix]);
        assert!(applied.contains("updated"), "{applied}");
        let pinged = pinger.join().expect("ping thread");
        let summary = String::from_utf8_lossy(&pinged.stdout).into_owned();
        assert!(
            pinged.status.success() && summary.contains(" 0% packet loss"),
            "ping across the untouched link lost packets: {summary}"
        );

        let after = show_json(&lab);
        let eth0 = link(&after, &ns1, "eth0");
        assert_eq!(eth0["mtu"], 1450);
        assert_eq!(eth0["mac"], "02:00:00:00:01:02");
        let addrs = eth0["addresses"].as_array().expect("addresses");
        assert!(addrs.iter().any(|a| a == "10.1.1.20/24"), "{eth0}");
        assert!(!addrs.iter().any(|a| a == "2001:db8:1::2/64"), "{eth0}");
        assert_eq!(
            link(&after, &format!("{prefix}r1"), "eth0")["sysctls"]["ipv4.rp_filter"],
            "1"
        );
        // Same ifindex: the interface was changed, not re-made.
        assert_eq!(
            link(&after, &ns1, "eth0")["ifindex"],
            link(&before, &ns1, "eth0")["ifindex"]
        );
        let clean = vethscope(&["show", &lab, "--drift"]);
        assert!(
            clean.status.success(),
            "{}",
            String::from_utf8_lossy(&clean.stdout)
        );

        // Drift repair: an address and a route removed by hand come back with `up`.
        assert!(
            in_ns(&ns1, &["ip", "addr", "del", "10.1.1.20/24", "dev", "eth0"])
                .status
                .success()
        );
        assert!(
            in_ns(&ns2, &["ip", "route", "del", "10.1.9.0/24"])
                .status
                .success()
        );
        assert_eq!(vethscope(&["show", &lab, "--drift"]).status.code(), Some(1));
        let repaired = ok(&["up", &g, "--prefix", &prefix]);
        assert!(repaired.contains("add address 10.1.1.20/24"), "{repaired}");
        assert!(
            vethscope(&["show", &lab, "--drift"]).status.success(),
            "repaired"
        );
        let again = ok(&["up", &g, "--prefix", &prefix]);
        assert!(again.contains("already up"), "nothing left to do: {again}");

        // A change that would take a name someone else holds is refused before
        // anything is touched.
        let grown = topology_file(
            "Lj-grown",
            &changed.replace("namespaces:\n", "namespaces:\n  - name: ns3\n"),
        );
        let foreign = format!("{prefix}ns3");
        assert!(
            std::process::Command::new("ip")
                .args(["netns", "add", &foreign])
                .status()
                .is_ok_and(|s| s.success())
        );
        let e = fails(&[
            "up",
            grown.to_str().unwrap_or_default(),
            "--prefix",
            &prefix,
        ]);
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &foreign])
            .status();
        assert!(e.contains(&foreign) && e.contains("not part of lab"), "{e}");
        assert!(vethscope(&["show", &lab, "--drift"]).status.success());
    }
    assert_clean(&prefix);
}

/// ROUTER_LAB plus a namespace ns9 hanging off r1 (removed by the structural change).
fn router_lab_with_ns9() -> String {
    ROUTER_LAB.replace("  - name: ns2\n", "  - name: ns9\n  - name: ns2\n")
        + "  - kind: veth\n    ends:\n      - {ns: r1, name: eth9, addresses: [10.1.9.1/24]}\n      - {ns: ns9, name: eth0, addresses: [10.1.9.2/24]}\n"
}

/// The structural change: ns9 and its link go, a namespace ns3 and a bridge br1 come,
/// ns1's port moves from br0 to br1 and ns3 joins br1 (so ns1 reaches ns3, not r1).
fn router_lab_reshaped() -> String {
    ROUTER_LAB
        .replace(
            "  - name: ns2\n",
            "  - name: ns3\n    exec: [\"echo ns3 ready\"]\n  - name: ns2\n",
        )
        .replace(
            "  - {name: br0, kind: linux}\n",
            "  - {name: br0, kind: linux}\n  - {name: br1, kind: linux}\n",
        )
        .replace(
            "{bridge: br0, name: br0-ns1}",
            "{bridge: br1, name: br0-ns1}",
        )
        + "  - kind: veth\n    ends:\n      - {ns: ns3, name: eth0, addresses: [10.1.1.4/24]}\n      - {bridge: br1, name: br1-ns3}\n"
}

#[test]
fn up_on_a_running_lab_adds_and_removes_namespaces_bridges_links_and_ports() {
    let prefix = prefix("Lk");
    let a = file_path("Lk-a", &router_lab_with_ns9());
    let b = file_path("Lk-b", &router_lab_reshaped());
    let lab = format!("{prefix}rt");
    let (ns1, ns2) = (format!("{prefix}ns1"), format!("{prefix}ns2"));
    {
        let _guard = LabGuard(lab.clone());
        ok(&["up", &a, "--prefix", &prefix]);
        assert!(ping(&ns1, "10.1.1.1", &[]), "ns1 reaches r1 over br0");
        assert!(ping(&format!("{prefix}ns9"), "10.1.9.1", &[]));

        let plan = ok(&["up", &b, "--prefix", &prefix, "--dry-run"]);
        for needle in [
            &format!("{prefix}ns3: add namespace"),
            &format!("{prefix}ns9: remove namespace"),
            &format!("add linux bridge {prefix}br1"),
            &format!("attach {prefix}br0-ns1 to bridge {prefix}br1"),
            &format!("add link veth {prefix}ns3/eth0"),
            &format!("remove link veth {prefix}r1/eth9"),
        ] {
            assert!(plan.contains(needle.as_str()), "{needle} in plan:\n{plan}");
        }
        assert!(
            !plan.contains("eth1"),
            "nothing on the unchanged link: {plan}"
        );
        assert!(
            netns_exists(&format!("{prefix}ns9")),
            "dry run removed nothing"
        );
        let before = show_json(&lab);

        let pinger = {
            let ns2 = ns2.clone();
            std::thread::spawn(move || {
                in_ns(
                    &ns2,
                    &["ping", "-c", "60", "-i", "0.05", "-W", "1", "10.1.2.1"],
                )
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(500));
        let applied = ok(&["up", &b, "--prefix", &prefix]);
        assert!(applied.contains("updated"), "{applied}");
        assert!(
            applied.contains("ns3 ready"),
            "ns3's startup command ran: {applied}"
        );
        let pinged = pinger.join().expect("ping thread");
        let summary = String::from_utf8_lossy(&pinged.stdout).into_owned();
        assert!(
            pinged.status.success() && summary.contains(" 0% packet loss"),
            "ping across the untouched link lost packets: {summary}"
        );

        assert!(!netns_exists(&format!("{prefix}ns9")), "ns9 removed");
        assert!(ping(&ns1, "10.1.1.4", &[]), "ns1 reaches ns3 over br1");
        assert!(!ping(&ns1, "10.1.1.1", &[]), "ns1 left br0");
        let after = show_json(&lab);
        assert_schema(&after);
        assert_eq!(
            link(&after, &ns1, "eth0")["ifindex"],
            link(&before, &ns1, "eth0")["ifindex"],
            "ns1's interface was moved, not re-made"
        );
        assert_eq!(
            link(&after, &ns2, "eth0")["ifindex"],
            link(&before, &ns2, "eth0")["ifindex"]
        );
        let drift = vethscope(&["show", &lab, "--drift"]);
        assert!(
            drift.status.success(),
            "{}",
            String::from_utf8_lossy(&drift.stdout)
        );
        let again = ok(&["up", &b, "--prefix", &prefix]);
        assert!(again.contains("already up"), "{again}");

        // And back: the first file undoes it all.
        ok(&["up", &a, "--prefix", &prefix]);
        assert!(ping(&ns1, "10.1.1.1", &[]), "ns1 back on br0");
        assert!(ping(&format!("{prefix}ns9"), "10.1.9.1", &[]));
        assert!(!netns_exists(&format!("{prefix}ns3")));
        assert!(vethscope(&["show", &lab, "--drift"]).status.success());
    }
    assert_clean(&prefix);
}

fn netns_exists(ns: &str) -> bool {
    std::path::Path::new("/run/netns").join(ns).exists()
}

/// Bridges that all live in lab namespaces: a router namespace holding the bridge.
const NS_BRIDGE_LAB: &str = "name: nsbr\nnamespaces:\n  - name: r1\n  - name: ns1\n  - name: ns2\nbridges:\n  - {name: br0, kind: linux, ns: r1, mtu: 1400}\nlinks:\n  - kind: veth\n    ends:\n      - {ns: ns1, name: eth0, addresses: [10.3.1.2/24], mtu: 1400}\n      - {bridge: br0, name: p1, mtu: 1400}\n  - kind: veth\n    ends:\n      - {bridge: br0, name: p2, mtu: 1400}\n      - {ns: ns2, name: eth0, addresses: [10.3.1.3/24], mtu: 1400}\n";

/// The root namespace as `ip` sees it: links with details, addresses, routes.
const ROOT_VIEW: &str = "ip -d -o link show; ip -o addr show; ip route show table all";

#[test]
fn a_lab_whose_bridges_live_in_namespaces_leaves_the_root_namespace_untouched() {
    let prefix = prefix("Ll");
    let f = topology_file("Ll", NS_BRIDGE_LAB);
    let f = f.to_str().unwrap_or_default();
    let lab = format!("{prefix}nsbr");
    let _guard = LabGuard(lab.clone());
    // vethscope runs in a fresh network namespace of its own, which is then its root
    // namespace: nothing else runs there, so before and after compare exactly.
    let bin = bin();
    let script = format!(
        "set -e; echo @@before; {ROOT_VIEW}; {bin} up {f} --prefix {prefix} >/dev/null; \
         echo @@up; {ROOT_VIEW}; ip netns exec {prefix}ns1 ping -c1 -W2 10.3.1.3 >/dev/null; \
         echo @@show; {bin} show {lab} --json; echo @@graph; {bin} graph {lab}; \
         echo @@save; {bin} save {lab}; {bin} show {lab} --drift >/dev/null; \
         {bin} down {lab} >/dev/null; echo @@down; {ROOT_VIEW}"
    );
    let out = std::process::Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Every step ran (`set -e`: the ping, `show --drift` with no drift, `down`).
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let section = |name: &str| -> String {
        stdout
            .split(&format!("@@{name}\n"))
            .nth(1)
            .and_then(|rest| rest.split("@@").next())
            .unwrap_or_else(|| panic!("no section {name} in {stdout}"))
            .to_string()
    };
    let before = section("before");
    assert!(before.contains("lo:"), "{before}");
    assert_eq!(before, section("up"), "up changed the root namespace");
    assert_eq!(before, section("down"), "down changed the root namespace");

    let show: Value = serde_json::from_str(&section("show")).expect("show --json");
    assert_schema(&show);
    let br = bridge(&show, "br0");
    assert_eq!(br["netns"], format!("{prefix}r1"), "{br}");
    let ports = br["ports"].as_array().expect("ports");
    assert!(
        ports.iter().any(|p| p == "p1") && ports.iter().any(|p| p == "p2"),
        "{br}"
    );
    assert_eq!(
        link(&show, &format!("{prefix}r1"), "p1")["master"]["name"],
        "br0"
    );
    let graph = section("graph");
    assert!(graph.contains("br0") && graph.contains("p1"), "{graph}");
    // save writes the bridge with its namespace; the saved file is a valid topology.
    let saved = section("save");
    assert!(
        saved.contains(&format!("name: br0, kind: linux, ns: {prefix}r1")),
        "{saved}"
    );
    let saved_file = topology_file("Ll-saved", &saved);
    ok(&["check", saved_file.to_str().unwrap_or_default()]);
    drop(_guard);
    assert_clean(&prefix);
}

#[test]
fn bridges_in_namespaces_are_checked_where_they_are_written() {
    let bad = |tag: &str, yaml: &str| {
        let f = topology_file(tag, yaml);
        let f = f.to_str().unwrap_or_default().to_string();
        let e = fails(&["check", &f]);
        assert!(e.contains(&format!("{f}:")), "{e}");
        e
    };
    let e = bad(
        "Lm-undeclared",
        "name: t\nnamespaces: [{name: r1}]\nbridges:\n  - {name: br0, kind: linux, ns: r2}\n",
    );
    assert!(
        e.contains(":4:") && e.contains("namespace r2 is not declared") && e.contains("fix:"),
        "{e}"
    );
    let e = bad(
        "Lm-ovs",
        "name: t\nnamespaces: [{name: r1}]\nbridges:\n  - {name: br0, kind: ovs, ns: r1}\n",
    );
    assert!(
        e.contains(":4:") && e.contains("not supported") && e.contains("kind: linux"),
        "{e}"
    );
    // The same interface name as the bridge, in the bridge's namespace.
    let e = bad(
        "Lm-clash",
        "name: t\nnamespaces: [{name: r1}, {name: a}]\nbridges:\n  - {name: br0, kind: linux, ns: r1}\nlinks:\n  - kind: veth\n    ends:\n      - {ns: r1, name: br0}\n      - {ns: a, name: x}\n",
    );
    assert!(e.contains("used twice in namespace r1"), "{e}");
}

#[test]
fn up_on_a_running_lab_sets_and_clears_impairments() {
    let prefix = prefix("Lo");
    let plain = "name: imp\nnamespaces: [{name: ns1}, {name: ns2}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: ns1, name: eth0, addresses: [10.5.1.2/24]}\n      - {ns: ns2, name: eth0, addresses: [10.5.1.3/24]}\n";
    let lossy = plain.replace(
        "addresses: [10.5.1.2/24]}",
        "addresses: [10.5.1.2/24], impair: {loss: 100%}}",
    );
    let a = file_path("Lo-a", plain);
    let b = file_path("Lo-b", &lossy);
    let lab = format!("{prefix}imp");
    let (ns1, ns2) = (format!("{prefix}ns1"), format!("{prefix}ns2"));
    {
        let _guard = LabGuard(lab.clone());
        ok(&["up", &a, "--prefix", &prefix]);
        assert!(ping(&ns1, "10.5.1.3", &[]));
        let before = show_json(&lab);
        let plan = ok(&["up", &b, "--prefix", &prefix, "--dry-run"]);
        assert!(plan.contains("impair eth0"), "{plan}");
        ok(&["up", &b, "--prefix", &prefix]);
        assert!(!ping(&ns1, "10.5.1.3", &[]), "100% loss leaving ns1");
        let after = show_json(&lab);
        assert!(!link(&after, &ns1, "eth0")["impair"].is_null(), "{after}");
        assert_eq!(
            link(&after, &ns1, "eth0")["ifindex"],
            link(&before, &ns1, "eth0")["ifindex"],
            "impaired in place"
        );
        let again = ok(&["up", &b, "--prefix", &prefix]);
        assert!(again.contains("already up"), "{again}");
        ok(&["up", &a, "--prefix", &prefix]);
        assert!(ping(&ns1, "10.5.1.3", &[]), "impairment cleared");
        assert!(ping(&ns2, "10.5.1.2", &[]));
        assert!(link(&show_json(&lab), &ns1, "eth0")["impair"].is_null());
    }
    assert_clean(&prefix);
}

/// Two namespaces on a Linux bridge; `with_ns2` keeps ns2's link in the file.
fn two_on_a_bridge(with_ns2: bool) -> String {
    let mut t = String::from(
        "name: mc\nnamespaces:\n  - name: ns1\n  - name: ns2\nbridges:\n  - {name: br0, kind: linux}\nlinks:\n  - kind: veth\n    ends:\n      - {ns: ns1, name: eth0, addresses: [10.7.1.2/24]}\n      - {bridge: br0, name: br0-ns1}\n",
    );
    if with_ns2 {
        t.push_str("  - kind: veth\n    ends:\n      - {ns: ns2, name: eth0, addresses: [10.7.1.3/24]}\n      - {bridge: br0, name: br0-ns2}\n");
    }
    t
}

#[test]
fn a_link_removed_and_made_again_keeps_its_mac_and_is_reached_at_once() {
    let prefix = prefix("Lm");
    let both = file_path("Lm-both", &two_on_a_bridge(true));
    let one = file_path("Lm-one", &two_on_a_bridge(false));
    let lab = format!("{prefix}mc");
    let (ns1, ns2) = (format!("{prefix}ns1"), format!("{prefix}ns2"));
    {
        let _guard = LabGuard(lab.clone());
        ok(&["up", &both, "--prefix", &prefix]);
        // ns1 learns ns2's MAC.
        assert!(ping(&ns1, "10.7.1.3", &[]), "ns1 reaches ns2");
        let mac = link(&show_json(&lab), &ns2, "eth0")["mac"].clone();
        assert!(mac.is_string(), "ns2/eth0 has a MAC: {mac}");

        // The link goes, and comes back: the same MAC, so ns1's cached neighbour entry
        // still holds and the first ping right after the change is answered (with a
        // random MAC it was lost 9 times in 10 until ARP noticed).
        ok(&["up", &one, "--prefix", &prefix]);
        ok(&["up", &both, "--prefix", &prefix]);
        assert_eq!(link(&show_json(&lab), &ns2, "eth0")["mac"], mac);
        assert!(
            ping(&ns1, "10.7.1.3", &["-W", "1"]),
            "ns1 reaches the re-made ns2/eth0 at once"
        );
        // The bridge ports are not pinned: the kernel's MACs, the file says nothing.
        let drift = vethscope(&["show", &lab, "--drift"]);
        assert!(
            drift.status.success(),
            "{}",
            String::from_utf8_lossy(&drift.stdout)
        );
    }
    assert_clean(&prefix);
}
