//! The built-in scenarios: the classic veth experiments, shipped as the YAML files in
//! `examples/` (compiled in, so `vethscope up bridge` works from anywhere).

pub const NAMES: [&str; 5] = ["direct", "bridge", "ovs", "ovs-internal", "same-ns"];

pub fn get(name: &str) -> Option<&'static str> {
    Some(match name {
        "direct" => include_str!("../../../examples/direct.yaml"),
        "bridge" => include_str!("../../../examples/bridge.yaml"),
        "ovs" => include_str!("../../../examples/ovs.yaml"),
        "ovs-internal" => include_str!("../../../examples/ovs-internal.yaml"),
        "same-ns" => include_str!("../../../examples/same-ns.yaml"),
        _ => return None,
    })
}

/// One line per scenario for `vethscope scenarios`.
pub fn describe(name: &str) -> &'static str {
    match name {
        "direct" => "ns1/veth0 — ns2/veth1: one veth pair, the cable with two ends",
        "bridge" => "ns1 and ns2 through Linux bridge br0",
        "ovs" => "ns1 and ns2 through an Open vSwitch bridge with veth ports",
        "ovs-internal" => "ns1/tap1 and ns2/tap2 as OVS internal ports",
        "same-ns" => "both veth ends in one namespace; the reply returns over lo",
        _ => "",
    }
}
