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
