//! Labs of hundreds of namespaces: the batched `up`, `show`, `graph` and `down` on real
//! objects, and the undo of a failed `up` at that size. No timing assertions: the
//! speed is measured by `cargo xtask bench scale` (see BENCHMARKS.md).

mod common;

use common::*;

/// A star of `n` namespaces on one Linux bridge: namespace sI holds eth0 10.77.x.y/16,
/// its peer spI is a port of sbr0. `extra` is appended to the last namespace's entry.
fn star(name: &str, n: usize, last_ns_extra: &str) -> String {
    let mut t = format!("name: {name}\nnamespaces:\n");
    for i in 0..n {
        t.push_str(&format!("  - name: s{i}\n"));
    }
    t.push_str(last_ns_extra);
    t.push_str("bridges:\n  - {name: sbr0, kind: linux}\nlinks:\n");
    for i in 0..n {
        t.push_str(&format!(
            "  - kind: veth\n    ends:\n      - {{ns: s{i}, name: eth0, addresses: [{}/16]}}\n      - {{bridge: sbr0, name: sp{i}}}\n",
            star_addr(i)
        ));
    }
    t
}

fn star_addr(i: usize) -> String {
    format!("10.77.{}.{}", (i + 2) / 256, (i + 2) % 256)
}

#[test]
fn star_of_300_namespaces_pings_shows_and_leaves_nothing() {
    const N: usize = 300;
    let file = topology_file("sc", &star("star", N, ""));
    let prefix = prefix("sc");
    let lab = Lab::up(file.to_str().unwrap_or_default(), "sc");
    let up = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(up, N, "every namespace exists");

    // Across the star, both ways, from namespaces made early and late.
    for (from, to) in [(0, N - 1), (N - 1, 0), (N / 2, 1)] {
        assert!(
            ping(&lab.ns(&format!("s{from}")), &star_addr(to), &[]),
            "s{from} pings s{to} across the bridge"
        );
    }

    // show --json: every namespace, each eth0 addressed, up, and paired with its port.
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["show", &lab.name, "--json"])).expect("show --json");
    let namespaces = json["namespaces"].as_array().expect("namespaces");
    assert_eq!(namespaces.len(), N);
    let links = json["links"].as_array().expect("links");
    for i in [0, N / 2, N - 1] {
        let ns = lab.ns(&format!("s{i}"));
        let eth0 = links
            .iter()
            .find(|l| l["netns"] == ns.as_str() && l["name"] == "eth0")
            .unwrap_or_else(|| panic!("eth0 of {ns} in {json}"));
        assert_eq!(eth0["state"], "up", "{eth0}");
        assert!(
            eth0["addresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| *x == format!("{}/16", star_addr(i)))),
            "{eth0}"
        );
        assert_eq!(eth0["peer"]["netns"], "host", "{eth0}");
        assert_eq!(
            eth0["peer"]["name"],
            lab.host_if(&format!("sp{i}")).as_str()
        );
        let port = links
            .iter()
            .find(|l| l["netns"] == "host" && l["name"] == lab.host_if(&format!("sp{i}")).as_str())
            .unwrap_or_else(|| panic!("port sp{i}"));
        assert_eq!(port["master"]["name"], lab.host_if("sbr0").as_str());
    }
    let bridge = json["bridges"]
        .as_array()
        .and_then(|b| b.first())
        .expect("the bridge");
    assert_eq!(bridge["ports"].as_array().map(Vec::len), Some(N));

    // graph: one veth edge per pair.
    let dot = ok(&["graph", &lab.name]);
    assert_eq!(dot.matches("[label=\"veth\"]").count(), N, "{dot}");

    let out = ok(&["down", &lab.name]);
    assert!(
        out.contains(&format!(
            "{N} namespaces, {} root-namespace interfaces",
            N + 1
        )),
        "{out}"
    );
    drop(lab);
    assert_clean(&prefix);
}

#[test]
fn a_failure_late_in_a_large_up_removes_exactly_what_it_made() {
    const N: usize = 300;
    let prefix = prefix("sf");
    // Objects that look like the lab's but are not its own: they must survive the undo.
    let foreign_ns = format!("{prefix}s{N}");
    let foreign_if = format!("{prefix}sp{N}");
    let run = |args: &[&str]| {
        let status = std::process::Command::new("ip")
            .args(args)
            .status()
            .expect("ip");
        assert!(status.success(), "ip {args:?}");
    };
    run(&["netns", "add", &foreign_ns]);
    run(&["link", "add", &foreign_if, "type", "bridge"]);

    // The last namespace turns IPv6 off for new interfaces and its eth0 also asks for
    // an IPv6 address: the kernel refuses it once every namespace and veth exists.
    let sysctls = "    sysctls: {net.ipv6.conf.default.disable_ipv6: 1}\n";
    let text = star("fail", N, sysctls).replace(
        &format!("addresses: [{}/16]", star_addr(N - 1)),
        &format!("addresses: [{}/16, fd00:77::1/64]", star_addr(N - 1)),
    );
    let file = topology_file("sf", &text);
    let out = vethscope(&["up", file.to_str().unwrap_or_default(), "--prefix", &prefix]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "up must fail: {err}");
    assert!(
        err.contains("add address fd00:77::1/64 to eth0")
            && err.contains(&format!("namespace {prefix}s{}", N - 1)),
        "names the address, the interface and its namespace: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // Before anything was made, a warning about the 300-port bridge: the IPv6
    // autoconfiguration of the namespaces behind it is flooded to every port.
    assert!(
        err.contains(&format!(
            "bridge {prefix}sbr0 has {N} ports and {N} namespaces behind them keep IPv6 on"
        )) && err.contains("net.ipv6.conf.all.disable_ipv6: 1"),
        "warns about IPv6 autoconfiguration on a large bridge: {err}"
    );

    let mut left = leftovers(&prefix);
    left.sort();
    assert_eq!(
        left,
        vec![
            format!("interface {foreign_if}"),
            format!("namespace {foreign_ns}"),
        ],
        "only the foreign objects remain"
    );
    run(&["link", "del", &foreign_if]);
    run(&["netns", "del", &foreign_ns]);
    assert_clean(&prefix);
}

#[test]
fn a_linux_bridge_with_more_ports_than_the_kernel_allows_is_refused_up_front() {
    const N: usize = 1024;
    let prefix = prefix("sm");
    let file = topology_file("sm", &star("many", N, ""));
    let out = vethscope(&["up", file.to_str().unwrap_or_default(), "--prefix", &prefix]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("has 1024 ports, but a Linux bridge holds at most 1023"),
        "{err}"
    );
    assert!(
        err.contains(&file.display().to_string()),
        "names the file: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one message: {err}");
    assert_clean(&prefix);
}
