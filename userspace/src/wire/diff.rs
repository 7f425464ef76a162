//! `up FILE` on a running lab: the difference between the lab as recorded and the
//! file, as a list of small actions — namespaces, bridges and links added or removed,
//! bridge membership, addresses, routes, MTU, MAC, sysctls and impairments changed —
//! applied touching nothing else (a ping across a link that did not change keeps running).
//!
//! Planning is pure: the recorded definition (what the last `up` applied) against the new
//! file, so its cost does not grow with the lab; only the namespaces an action touches are
//! read, when it is applied (`change.rs`). Running `up` with the unchanged file is drift
//! repair instead: then the live lab is read in full and compared (`drift`).
//!
//! Crash safety: see `change.rs` — the state file says `changing` and keeps the previous
//! definition until the last action is done; every action is idempotent.

use std::collections::{BTreeMap, BTreeSet};

use super::WireError;
use crate::{
    drift::{self, Drift},
    impair::Impairment,
    inspect,
    topology::{Bridge, BridgeKind, Cidr, End, Link, Route, Topology},
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create, mark `lo` and bring it up, write the namespace's sysctls.
    AddNamespace {
        netns: String,
    },
    /// Delete a namespace of the lab (its interfaces and veth peers go with it).
    DelNamespace {
        netns: String,
    },
    AddBridge {
        bridge: Bridge,
    },
    DelBridge {
        bridge: Bridge,
    },
    /// Create a link and configure its ends completely (mark, MAC, MTU, addresses,
    /// sysctls, bridge port, up).
    AddLink {
        link: Link,
    },
    DelLink {
        link: Link,
        /// (bridge, port) of its ends that are Open vSwitch ports (from the definition
        /// the link was made by): OVS lets go of them first.
        ovs_ports: Vec<(String, String)>,
    },
    /// Attach an interface to a Linux bridge, or (`None`) detach it.
    SetMaster {
        netns: String,
        ifname: String,
        bridge: Option<String>,
    },
    /// Set (or, `None`, clear) the impairment of an end.
    SetImpair {
        netns: String,
        ifname: String,
        impair: Option<Impairment>,
    },
    AddAddress {
        netns: String,
        ifname: String,
        cidr: Cidr,
    },
    DelAddress {
        netns: String,
        ifname: String,
        cidr: Cidr,
    },
    SetMtu {
        netns: String,
        ifname: String,
        mtu: u32,
    },
    SetMac {
        netns: String,
        ifname: String,
        mac: [u8; 6],
    },
    SetUp {
        netns: String,
        ifname: String,
    },
    /// `key` is a full sysctl key (namespace) or `IFNAME/ipv4.KEY` (interface).
    SetSysctl {
        netns: String,
        key: String,
        value: String,
    },
    AddRoute {
        netns: String,
        route: Route,
    },
    DelRoute {
        netns: String,
        route: Route,
    },
}

fn end_text(e: &End) -> String {
    match e.bridge() {
        Some(b) => format!("{}/{} (port of bridge {b})", e.netns(), e.name),
        None => format!("{}/{}", e.netns(), e.name),
    }
}

fn link_text(l: &Link) -> String {
    match l {
        Link::Veth { ends, .. } => {
            format!("veth {} — {}", end_text(&ends[0]), end_text(&ends[1]))
        }
        Link::OvsInternal { bridge, end, .. } => {
            format!("ovs-internal port {} of bridge {bridge}", end_text(end))
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::AddNamespace { netns } => write!(f, "{netns}: add namespace"),
            Action::DelNamespace { netns } => write!(f, "{netns}: remove namespace"),
            Action::AddBridge { bridge } => write!(
                f,
                "{}: add {} bridge {}",
                bridge_netns(bridge),
                kind_text(bridge.kind),
                bridge.name
            ),
            Action::DelBridge { bridge } => write!(
                f,
                "{}: remove {} bridge {}",
                bridge_netns(bridge),
                kind_text(bridge.kind),
                bridge.name
            ),
            Action::AddLink { link } => write!(f, "add link {}", link_text(link)),
            Action::DelLink { link, .. } => write!(f, "remove link {}", link_text(link)),
            Action::SetMaster {
                netns,
                ifname,
                bridge,
            } => match bridge {
                Some(b) => write!(f, "{netns}: attach {ifname} to bridge {b}"),
                None => write!(f, "{netns}: detach {ifname} from its bridge"),
            },
            Action::SetImpair {
                netns,
                ifname,
                impair,
            } => match impair {
                Some(i) => write!(f, "{netns}: impair {ifname}: {i}"),
                None => write!(f, "{netns}: clear the impairment of {ifname}"),
            },
            Action::AddAddress {
                netns,
                ifname,
                cidr,
            } => write!(f, "{netns}: add address {cidr} to {ifname}"),
            Action::DelAddress {
                netns,
                ifname,
                cidr,
            } => write!(f, "{netns}: remove address {cidr} from {ifname}"),
            Action::SetMtu { netns, ifname, mtu } => {
                write!(f, "{netns}: set mtu of {ifname} to {mtu}")
            }
            Action::SetMac { netns, ifname, mac } => write!(
                f,
                "{netns}: set MAC of {ifname} to {}",
                crate::netlink::link::format_mac(mac)
            ),
            Action::SetUp { netns, ifname } => write!(f, "{netns}: bring {ifname} up"),
            Action::SetSysctl { netns, key, value } => write!(f, "{netns}: set {key} = {value}"),
            Action::AddRoute { netns, route } => {
                write!(f, "{netns}: add route {}", route_text(route))
            }
            Action::DelRoute { netns, route } => {
                write!(f, "{netns}: remove route {}", route_text(route))
            }
        }
    }
}

fn kind_text(k: BridgeKind) -> &'static str {
    match k {
        BridgeKind::Linux => "linux",
        BridgeKind::Ovs => "ovs",
    }
}

/// The namespace a bridge lives in.
pub fn bridge_netns(b: &Bridge) -> &str {
    b.netns()
}

impl Action {
    /// The order actions run in: removals first (routes, links, bridges, namespaces),
    /// then additions in dependency order; addresses before routes, so a gateway is
    /// reachable before its route is added. Within a phase, plan order is kept.
    fn phase(&self) -> u8 {
        match self {
            Action::DelRoute { .. } => 0,
            Action::DelLink { .. } => 1,
            Action::DelBridge { .. } => 2,
            Action::DelNamespace { .. } => 3,
            Action::AddNamespace { .. } => 4,
            Action::AddBridge { .. } => 5,
            Action::SetMaster { .. } => 6,
            Action::DelAddress { .. } => 7,
            Action::SetMac { .. } | Action::SetMtu { .. } => 8,
            Action::SetSysctl { .. } => 9,
            Action::AddLink { .. } => 10,
            Action::AddAddress { .. } => 11,
            Action::SetUp { .. } => 12,
            Action::SetImpair { .. } => 13,
            Action::AddRoute { .. } => 14,
        }
    }

    /// The namespaces this action reads or changes (for messages and tests).
    pub fn namespaces(&self) -> Vec<String> {
        match self {
            Action::AddNamespace { netns }
            | Action::DelNamespace { netns }
            | Action::SetMaster { netns, .. }
            | Action::SetImpair { netns, .. }
            | Action::AddAddress { netns, .. }
            | Action::DelAddress { netns, .. }
            | Action::SetMtu { netns, .. }
            | Action::SetMac { netns, .. }
            | Action::SetUp { netns, .. }
            | Action::SetSysctl { netns, .. }
            | Action::AddRoute { netns, .. }
            | Action::DelRoute { netns, .. } => vec![netns.clone()],
            Action::AddBridge { bridge } | Action::DelBridge { bridge } => {
                vec![bridge_netns(bridge).to_string()]
            }
            Action::AddLink { link } | Action::DelLink { link, .. } => {
                link.ends().iter().map(|e| e.netns().to_string()).collect()
            }
        }
    }
}

pub(super) fn route_text(r: &Route) -> String {
    let mut s = r.to.map_or("default".to_string(), |c| c.to_string());
    if let Some(v) = r.via {
        s.push_str(&format!(" via {v}"));
    }
    if let Some(d) = &r.dev {
        s.push_str(&format!(" dev {d}"));
    }
    s
}

/// An end's identity: where it is and what it is called, plus the OVS bridge it is a
/// port of (moving a port into or out of OVS re-makes the link; moving it between
/// Linux bridges, or on/off one, only changes its master).
fn end_key(t: &Topology, e: &End) -> String {
    let ovs = e
        .bridge()
        .and_then(|b| t.bridge(b))
        .filter(|b| b.kind == BridgeKind::Ovs)
        .map(|b| format!(" ovs:{}", b.name))
        .unwrap_or_default();
    format!("{}/{}{ovs}", e.netns(), e.name)
}

/// The ends of a link that are Open vSwitch ports, as (bridge, port).
fn ovs_ports(t: &Topology, l: &Link) -> Vec<(String, String)> {
    match l {
        Link::OvsInternal { bridge, end, .. } => vec![(bridge.clone(), end.name.clone())],
        Link::Veth { ends, .. } => ends
            .iter()
            .filter_map(|e| {
                let b = t.bridge(e.bridge()?)?;
                (b.kind == BridgeKind::Ovs).then(|| (b.name.clone(), e.name.clone()))
            })
            .collect(),
    }
}

/// A link's identity: its kind and its ends' identities.
fn link_key(t: &Topology, l: &Link) -> String {
    match l {
        Link::Veth { ends, .. } => {
            let mut ids = [end_key(t, &ends[0]), end_key(t, &ends[1])];
            ids.sort();
            format!("veth {} {}", ids[0], ids[1])
        }
        Link::OvsInternal { bridge, end, .. } => {
            format!("ovs-internal {bridge} {}", end_key(t, end))
        }
    }
}

fn bridge_key(b: &Bridge) -> String {
    format!("{} {} {}", bridge_netns(b), b.name, kind_text(b.kind))
}

/// The shape differences between two versions of a lab (empty: same shape), as text.
pub fn structural_changes(old: &Topology, new: &Topology) -> Vec<String> {
    plan_files(old, new)
        .into_iter()
        .filter(|a| {
            matches!(
                a,
                Action::AddNamespace { .. }
                    | Action::DelNamespace { .. }
                    | Action::AddBridge { .. }
                    | Action::DelBridge { .. }
                    | Action::AddLink { .. }
                    | Action::DelLink { .. }
            )
        })
        .map(|a| a.to_string())
        .collect()
}

fn same_route(a: &Route, b: &Route) -> bool {
    a.to == b.to && a.via == b.via && a.dev == b.dev
}

/// Same lab definition, ignoring where in the file things were written.
pub fn same_definition(a: &Topology, b: &Topology) -> bool {
    fn canonical(t: &Topology) -> serde_json::Value {
        let mut v = serde_json::to_value(t).unwrap_or_default();
        strip(&mut v);
        v
    }
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("pos");
                m.remove("source");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    canonical(a) == canonical(b)
}

/// The actions that turn the lab made from `old` into the lab of `new`, from the two
/// definitions alone (pure: nothing is read; cost in proportion to the files, not to
/// the live lab).
pub fn plan_files(old: &Topology, new: &Topology) -> Vec<Action> {
    let mut actions = Vec::new();
    // Namespaces.
    let old_ns: BTreeSet<&str> = old.netns_names().collect();
    let new_ns: BTreeSet<&str> = new.netns_names().collect();
    for ns in old_ns.difference(&new_ns) {
        actions.push(Action::DelNamespace {
            netns: ns.to_string(),
        });
    }
    for ns in &new.namespaces {
        if !old_ns.contains(ns.name.as_str()) {
            actions.push(Action::AddNamespace {
                netns: ns.name.clone(),
            });
        }
    }
    // Bridges.
    let old_br: BTreeMap<String, &Bridge> =
        old.bridges.iter().map(|b| (bridge_key(b), b)).collect();
    let new_br: BTreeMap<String, &Bridge> =
        new.bridges.iter().map(|b| (bridge_key(b), b)).collect();
    for (k, b) in &old_br {
        if !new_br.contains_key(k) {
            actions.push(Action::DelBridge {
                bridge: (*b).clone(),
            });
        }
    }
    for b in &new.bridges {
        match old_br.get(&bridge_key(b)) {
            None => actions.push(Action::AddBridge { bridge: b.clone() }),
            Some(o) if o.mtu != b.mtu => {
                if let Some(mtu) = b.mtu {
                    actions.push(Action::SetMtu {
                        netns: bridge_netns(b).to_string(),
                        ifname: b.name.clone(),
                        mtu,
                    });
                }
            }
            Some(_) => {}
        }
    }
    // Links: by identity; kept ones compared end by end.
    let old_links: BTreeMap<String, &Link> =
        old.links.iter().map(|l| (link_key(old, l), l)).collect();
    let new_keys: BTreeSet<String> = new.links.iter().map(|l| link_key(new, l)).collect();
    // Namespaces whose routes may need adding again: a link there was made or removed.
    let mut reroute: BTreeSet<String> = BTreeSet::new();
    for (k, l) in &old_links {
        if !new_keys.contains(k) {
            reroute.extend(l.ends().iter().map(|e| e.netns().to_string()));
            // A namespace being removed takes its links with it; the others go first.
            actions.push(Action::DelLink {
                link: (*l).clone(),
                ovs_ports: ovs_ports(old, l),
            });
        }
    }
    for l in &new.links {
        match old_links.get(&link_key(new, l)) {
            None => {
                reroute.extend(l.ends().iter().map(|e| e.netns().to_string()));
                actions.push(Action::AddLink { link: l.clone() });
                for e in l.ends() {
                    if let Some(imp) = &e.impair {
                        actions.push(Action::SetImpair {
                            netns: e.netns().to_string(),
                            ifname: e.name.clone(),
                            impair: Some(imp.clone()),
                        });
                    }
                }
            }
            Some(o) => {
                for n in l.ends() {
                    let key = end_key(new, n);
                    if let Some(oe) = o.ends().iter().find(|oe| end_key(old, oe) == key) {
                        end_changes(oe, n, &mut actions);
                    }
                }
            }
        }
    }
    // Namespace sysctls and routes.
    for ns in &new.namespaces {
        let netns = ns.name.clone();
        let Some(ons) = old.namespaces.iter().find(|o| o.name == ns.name) else {
            // A new namespace: AddNamespace writes its sysctls; all its routes are added.
            for r in &ns.routes {
                actions.push(Action::AddRoute {
                    netns: netns.clone(),
                    route: r.clone(),
                });
            }
            continue;
        };
        for s in &ns.sysctls {
            if !ons
                .sysctls
                .iter()
                .any(|o| o.key == s.key && o.value == s.value)
            {
                actions.push(Action::SetSysctl {
                    netns: netns.clone(),
                    key: s.key.clone(),
                    value: s.value.clone(),
                });
            }
        }
        for r in &ons.routes {
            if !ns.routes.iter().any(|n| same_route(n, r)) {
                actions.push(Action::DelRoute {
                    netns: netns.clone(),
                    route: r.clone(),
                });
            }
        }
        for r in &ns.routes {
            let new_route = !ons.routes.iter().any(|o| same_route(o, r));
            // A link made or removed here may have taken routes with it (or made a
            // gateway reachable): add them again (adding an existing route is no change).
            if new_route || reroute.contains(&ns.name) {
                actions.push(Action::AddRoute {
                    netns: netns.clone(),
                    route: r.clone(),
                });
            }
        }
    }
    actions.sort_by_key(Action::phase);
    actions
}

/// Attribute changes of one end that exists in both versions.
fn end_changes(old: &End, new: &End, out: &mut Vec<Action>) {
    let netns = new.netns().to_string();
    let ifname = new.name.clone();
    if old.bridge() != new.bridge() {
        out.push(Action::SetMaster {
            netns: netns.clone(),
            ifname: ifname.clone(),
            bridge: new.bridge().map(str::to_string),
        });
    }
    for c in &old.addresses {
        if !new.addresses.contains(c) {
            out.push(Action::DelAddress {
                netns: netns.clone(),
                ifname: ifname.clone(),
                cidr: *c,
            });
        }
    }
    for c in &new.addresses {
        if !old.addresses.contains(c) {
            out.push(Action::AddAddress {
                netns: netns.clone(),
                ifname: ifname.clone(),
                cidr: *c,
            });
        }
    }
    if old.mtu != new.mtu {
        out.push(Action::SetMtu {
            netns: netns.clone(),
            ifname: ifname.clone(),
            // Dropping `mtu:` goes back to the kernel's default for a veth.
            mtu: new.mtu.unwrap_or(1500),
        });
    }
    if let Some(mac) = new.mac
        && old.mac != new.mac
    {
        out.push(Action::SetMac {
            netns: netns.clone(),
            ifname: ifname.clone(),
            mac,
        });
    }
    for s in &new.sysctls {
        if !old
            .sysctls
            .iter()
            .any(|o| o.key == s.key && o.value == s.value)
        {
            out.push(Action::SetSysctl {
                netns: netns.clone(),
                key: format!("{ifname}/{}", drift::iface_key(&s.key)),
                value: s.value.clone(),
            });
        }
    }
    if old.impair != new.impair {
        out.push(Action::SetImpair {
            netns,
            ifname,
            impair: new.impair.clone(),
        });
    }
}

/// Both plans of an interrupted change (from the definition before it, and from the one
/// it was applying), without repeats: finishing with any file removes what either left.
pub fn merge(first: Vec<Action>, second: Vec<Action>) -> Vec<Action> {
    let mut out = first;
    for a in second {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out.sort_by_key(Action::phase);
    out
}

/// Drift repair (`up` with the unchanged file): the live lab is read in full and every
/// attribute that differs from the file is set again; impairments that differ from the
/// record are set again.
pub async fn plan_repair(old: &Topology, new: &Topology) -> Result<Vec<Action>, WireError> {
    let view = inspect::lab_view(&new.name)
        .await
        .map_err(|e| WireError::Inspect {
            lab: new.name.clone(),
            source: Box::new(e),
        })?;
    let live = drift::read_sysctls(new);
    let found = drift::compare(new, &view, &live);
    let mut actions = Vec::new();
    // Routes the old file had and the new one drops.
    for ons in &old.namespaces {
        let Some(nns) = new.namespaces.iter().find(|n| n.name == ons.name) else {
            continue;
        };
        for r in &ons.routes {
            if !nns.routes.iter().any(|n| same_route(n, r)) {
                actions.push(Action::DelRoute {
                    netns: ons.name.clone(),
                    route: r.clone(),
                });
            }
        }
    }
    for d in &found {
        if let Some(a) = action_for(d, new) {
            actions.push(a);
        }
    }
    let record = crate::impair::record::read(&new.name).unwrap_or_default();
    for e in new.ends() {
        let recorded = record.end(e.netns(), &e.name).map(|r| &r.impairment);
        if recorded != e.impair.as_ref() {
            actions.push(Action::SetImpair {
                netns: e.netns().to_string(),
                ifname: e.name.clone(),
                impair: e.impair.clone(),
            });
        }
    }
    actions.sort_by_key(Action::phase);
    Ok(actions)
}

fn end_of<'t>(t: &'t Topology, netns: &str, name: &str) -> Option<&'t End> {
    t.ends().find(|e| e.netns() == netns && e.name == name)
}

/// The repair of one difference, when it is an attribute of something that exists.
fn action_for(d: &Drift, t: &Topology) -> Option<Action> {
    let ns = d.netns.clone();
    let first = |s: &str| s.split(' ').next().unwrap_or_default().to_string();
    let last = |s: &str| s.rsplit(' ').next().unwrap_or_default().to_string();
    match d.kind.as_str() {
        "missing-address" | "extra-address" => {
            let cidr: Cidr = first(&d.object).parse().ok()?;
            let ifname = last(&d.object);
            Some(if d.kind == "missing-address" {
                Action::AddAddress {
                    netns: ns,
                    ifname,
                    cidr,
                }
            } else {
                Action::DelAddress {
                    netns: ns,
                    ifname,
                    cidr,
                }
            })
        }
        "mtu" => Some(Action::SetMtu {
            mtu: end_of(t, &ns, &d.object)?.mtu?,
            ifname: d.object.clone(),
            netns: ns,
        }),
        "mac" => Some(Action::SetMac {
            mac: end_of(t, &ns, &d.object)?.mac?,
            ifname: d.object.clone(),
            netns: ns,
        }),
        "interface-down" => Some(Action::SetUp {
            ifname: d.object.clone(),
            netns: ns,
        }),
        "sysctl" => {
            // Namespace keys are full keys; interface ones read "KEY of IFNAME".
            let key = match d.object.split_once(" of ") {
                Some((k, ifname)) => format!("{ifname}/{k}"),
                None => d.object.clone(),
            };
            Some(Action::SetSysctl {
                netns: ns,
                key,
                value: d.expected.clone(),
            })
        }
        "missing-route" => {
            let nsdef = t.namespaces.iter().find(|n| n.name == ns)?;
            let text = d.object.strip_prefix("route ")?;
            let route = nsdef.routes.iter().find(|r| route_text(r) == text)?;
            Some(Action::AddRoute {
                netns: ns,
                route: route.clone(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(yaml: &str) -> Topology {
        Topology::from_yaml(yaml, "t.yaml").expect("valid")
    }

    const A: &str = "name: t\nnamespaces: [{name: a}, {name: b}, {name: c}]\nbridges: [{name: br0}]\nlinks:\n  - kind: veth\n    ends: [{ns: a, name: x, addresses: [10.0.0.1/24]}, {bridge: br0, name: pa}]\n  - kind: veth\n    ends: [{ns: b, name: x}, {ns: c, name: y}]\n";

    #[test]
    fn the_plan_names_only_what_changed_in_dependency_order() {
        let old = topo(A);
        let new = topo(
            &(A.replace("{name: c}]", "{name: c}, {name: d}]")
                .replace("[{name: br0}]", "[{name: br0}, {name: br1, ns: d}]")
                .replace("10.0.0.1/24", "10.0.0.9/24")
                + "  - kind: veth\n    ends: [{ns: a, name: z}, {bridge: br1, name: pd}]\n"),
        );
        let plan: Vec<String> = plan_files(&old, &new)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            plan,
            [
                "d: add namespace",
                "d: add linux bridge br1",
                "a: remove address 10.0.0.1/24 from x",
                "add link veth a/z — d/pd (port of bridge br1)",
                "a: add address 10.0.0.9/24 to x",
            ],
            "{plan:#?}"
        );
        assert!(plan_files(&old, &old).is_empty());
        // Back again: the inverse, removals first.
        let back: Vec<String> = plan_files(&new, &old)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(back[0], "remove link veth a/z — d/pd (port of bridge br1)");
        assert!(
            back.contains(&"d: remove namespace".to_string()),
            "{back:?}"
        );
    }

    #[test]
    fn moving_a_port_between_linux_bridges_keeps_the_link() {
        let old = topo(&A.replace("[{name: br0}]", "[{name: br0}, {name: br1}]"));
        let new = topo(
            &A.replace("[{name: br0}]", "[{name: br0}, {name: br1}]")
                .replace("{bridge: br0, name: pa}", "{bridge: br1, name: pa}"),
        );
        let plan = plan_files(&old, &new);
        assert_eq!(
            plan,
            [Action::SetMaster {
                netns: HOST_NS.into(),
                ifname: "pa".into(),
                bridge: Some("br1".into())
            }]
        );
    }

    const HOST_NS: &str = crate::topology::HOST;
}
