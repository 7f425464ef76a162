//! Checks against the live system before `up` touches anything: every name the lab
//! will take must be free (or already ours, for a re-run).

use std::collections::HashMap;

use super::{WireError, mark};
use crate::{
    netlink::{LinkInfo, Netlink},
    netns, ovs,
    topology::{BridgeKind, HOST, Link, Location, Topology, TopologyError},
};

/// Ports one Linux bridge can hold (the kernel's BR_MAX_PORTS, 1 << 10, port 0 unused).
pub const LINUX_BRIDGE_MAX_PORTS: usize = 1023;

/// A Linux bridge with more ports than the kernel allows would fail half-way through
/// `up` (EXFULL on port 1,024); refuse it before anything is made.
pub fn check_bridge_ports(t: &Topology) -> Result<(), WireError> {
    for br in t.bridges.iter().filter(|b| b.kind == BridgeKind::Linux) {
        let ports = t
            .ends()
            .filter(|e| e.bridge() == Some(br.name.as_str()))
            .count();
        if ports > LINUX_BRIDGE_MAX_PORTS {
            return Err(WireError::Topology(TopologyError::Invalid {
                at: Location {
                    file: t.source.clone(),
                    line: br.pos.line,
                    col: br.pos.col,
                    object: format!("bridge {} (namespace {})", br.name, br.netns()),
                },
                message: format!(
                    "has {ports} ports, but a Linux bridge holds at most {LINUX_BRIDGE_MAX_PORTS} (kernel limit BR_MAX_PORTS)"
                ),
                hint: Some(
                    "split the ports over several bridges joined by a veth pair, or use an OVS bridge (kind: ovs)"
                        .into(),
                ),
            }));
        }
    }
    Ok(())
}

/// Ports of one Linux bridge above which `up` warns about IPv6 autoconfiguration: each
/// namespace behind a port sends router solicitations, DAD and MLD reports, and the
/// bridge floods every one of them to every other port. On this project's 2-core test
/// machine, a 1,000-port star kept the kernel busy for seconds after `up` (the first
/// `show` took 1.7–2.4 s with IPv6 on, 0.3–0.4 s with it off; BENCHMARKS.md).
pub const IPV6_FLOOD_PORTS: usize = 256;

/// One line per Linux bridge with more than [`IPV6_FLOOD_PORTS`] ports whose namespaces
/// keep IPv6 on (no `net.ipv6.conf.all.disable_ipv6: 1` among their sysctls): what it
/// costs and how to turn it off when the lab has no use for IPv6.
pub fn ipv6_flood_warnings(t: &Topology) -> Vec<String> {
    let ipv6_off = |ns: &str| {
        t.namespaces.iter().any(|n| {
            n.name == ns
                && n.sysctls
                    .iter()
                    .any(|s| s.key == "net.ipv6.conf.all.disable_ipv6" && s.value.trim() == "1")
        })
    };
    let mut warnings = Vec::new();
    for br in t.bridges.iter().filter(|b| b.kind == BridgeKind::Linux) {
        let (mut ports, mut with_ipv6) = (0usize, 0usize);
        for link in &t.links {
            let Link::Veth { ends, .. } = link else {
                continue;
            };
            for (port, peer) in [(&ends[0], &ends[1]), (&ends[1], &ends[0])] {
                if port.bridge() == Some(br.name.as_str()) {
                    ports += 1;
                    if peer.bridge().is_none() && peer.netns() != HOST && !ipv6_off(peer.netns()) {
                        with_ipv6 += 1;
                    }
                }
            }
        }
        if ports > IPV6_FLOOD_PORTS && with_ipv6 > 0 {
            warnings.push(format!(
                "{}:{}:{}: bridge {} has {ports} ports and {with_ipv6} namespaces behind them keep IPv6 on: \
                 their IPv6 autoconfiguration (router solicitations, DAD, MLD) is flooded to every port, \
                 seconds of kernel CPU after up; if the lab has no use for IPv6, add \
                 `sysctls: {{net.ipv6.conf.all.disable_ipv6: 1, net.ipv6.conf.default.disable_ipv6: 1}}` to those namespaces",
                t.source, br.pos.line, br.pos.col, br.name
            ));
        }
    }
    warnings
}

/// Root-namespace interface names the lab will create.
pub fn host_names(t: &Topology) -> Vec<String> {
    let mut names: Vec<String> = t
        .bridges
        .iter()
        .filter(|b| b.netns.is_none())
        .map(|b| b.name.clone())
        .collect();
    for link in &t.links {
        match link {
            Link::Veth { ends, .. } => names.extend(
                ends.iter()
                    .filter(|e| e.netns() == HOST)
                    .map(|e| e.name.clone()),
            ),
            Link::OvsInternal { end, .. } => names.push(end.name.clone()),
        }
    }
    names
}

pub async fn check_free(t: &Topology, host: &Netlink) -> Result<(), WireError> {
    let lab = &t.name;
    for ns in t.netns_names() {
        if netns::exists(ns) {
            return Err(match owner_of_netns(ns).await {
                Some(owner) if owner != *lab => WireError::OwnedByOther {
                    object: format!("namespace {ns}"),
                    owner,
                    lab: lab.clone(),
                },
                Some(_) => WireError::HalfMade { lab: lab.clone() },
                None => WireError::Conflict {
                    object: format!("namespace {ns}"),
                    netns: ns.to_string(),
                    lab: lab.clone(),
                },
            });
        }
    }
    check_bridge_ports(t)?;
    // One dump of the root namespace, not one request per name: a large lab has
    // a thousand names to check.
    let host_links: HashMap<String, LinkInfo> = host
        .links()
        .await
        .map_err(|source| WireError::Netlink {
            lab: lab.clone(),
            source,
        })?
        .into_iter()
        .map(|l| (l.name.clone(), l))
        .collect();
    for name in host_names(t) {
        if let Some(link) = host_links.get(&name) {
            return Err(match mark::lab_of(link.alias.as_deref()) {
                Some(owner) if owner != lab => WireError::OwnedByOther {
                    object: format!("interface {name}"),
                    owner: owner.to_string(),
                    lab: lab.clone(),
                },
                _ => WireError::Conflict {
                    object: format!("interface {name}"),
                    netns: HOST.to_string(),
                    lab: lab.clone(),
                },
            });
        }
    }
    if t.uses_ovs()
        && let Some(ep) = ovs::find_running(&super::ovs_run_dir())
    {
        let ovs_err = |source| WireError::Ovs {
            lab: lab.clone(),
            source,
        };
        let mut db = ovs::Ovsdb::connect(&ep).map_err(ovs_err)?;
        for b in t
            .bridges
            .iter()
            .filter(|b| b.kind == crate::topology::BridgeKind::Ovs)
        {
            if db.bridge_exists(&b.name).map_err(ovs_err)? {
                return Err(WireError::Conflict {
                    object: format!("OVS bridge {}", b.name),
                    netns: HOST.to_string(),
                    lab: lab.clone(),
                });
            }
        }
        for name in host_names(t) {
            if db.port_exists(&name).map_err(ovs_err)? {
                return Err(WireError::Conflict {
                    object: format!("OVS port {name}"),
                    netns: HOST.to_string(),
                    lab: lab.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The lab named by the mark on a namespace's `lo`, if any.
pub async fn owner_of_netns(ns: &str) -> Option<String> {
    let nl = Netlink::open(ns).await.ok()?;
    let lo = nl.link_by_name("lo").await.ok()??;
    mark::lab_of(lo.alias.as_deref()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A star of `n` namespaces on bridge `br`, IPv6 off in the first `off` of them.
    fn star(n: usize, off: usize) -> Topology {
        let mut y = String::from("name: t\nnamespaces:\n");
        for i in 0..n {
            y.push_str(&format!("  - name: n{i}\n"));
            if i < off {
                y.push_str("    sysctls: {net.ipv6.conf.all.disable_ipv6: 1}\n");
            }
        }
        y.push_str("bridges:\n  - {name: br, kind: linux}\nlinks:\n");
        for i in 0..n {
            y.push_str(&format!(
                "  - kind: veth\n    ends:\n      - {{ns: n{i}, name: eth0}}\n      - {{bridge: br, name: p{i}}}\n"
            ));
        }
        Topology::from_yaml(&y, "star.yaml").expect("a valid star")
    }

    #[test]
    fn a_large_bridge_with_ipv6_behind_its_ports_gets_one_warning_naming_it_and_the_fix() {
        let w = ipv6_flood_warnings(&star(IPV6_FLOOD_PORTS + 1, 10));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("star.yaml:"), "{}", w[0]);
        assert!(
            w[0].contains("bridge br has 257 ports and 247 namespaces"),
            "{}",
            w[0]
        );
        assert!(
            w[0].contains("net.ipv6.conf.all.disable_ipv6: 1"),
            "{}",
            w[0]
        );
    }

    #[test]
    fn small_bridges_and_labs_without_ipv6_get_none() {
        assert!(ipv6_flood_warnings(&star(IPV6_FLOOD_PORTS, 0)).is_empty());
        let n = IPV6_FLOOD_PORTS + 1;
        assert!(ipv6_flood_warnings(&star(n, n)).is_empty());
    }
}
