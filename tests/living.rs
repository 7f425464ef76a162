//! Living labs: `show` tables, `exec`, startup commands, `save`, drift and diff-apply,
//! against real namespaces, bridges and Open vSwitch. Tags start with `L` (upper case)
//! so they never collide with other test files' lower-case tags.

mod common;

use common::*;
use serde_json::Value;

fn show_json(lab: &str) -> Value {
    serde_json::from_str(&ok(&["show", lab, "--json"])).expect("show --json is JSON")
}

fn schema_validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/show-json-schema.json"
    ))
    .expect("schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("valid schema")
}

fn assert_schema(v: &Value) {
    let validator = schema_validator();
    let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "show --json does not match the schema: {errors:?}\n{v}"
    );
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

#[test]
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
