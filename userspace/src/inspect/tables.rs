//! Fills a [`LabView`] with what `show` adds beyond links: routes, neighbours and
//! forwarding sysctls of every lab namespace, and the forwarding table of every bridge.

use crate::topology::BridgeKind;
use std::collections::HashMap;

use super::{FdbView, InspectError, LabView, NeighbourView, RouteView, sysctls};
use crate::{
    netlink::{FdbEntry, NeighbourEntry, RouteEntry, batch::BatchSocket, link::format_mac},
    netns, ovs,
    topology::HOST,
    wire,
};

/// Puts what each namespace's read brought (`tables`: namespace name → its tables,
/// read on the pool together with its links) into the view.
pub(super) fn fill(view: &mut LabView, tables: Vec<(String, NsTables)>) {
    let mut by_ns: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, l) in view.links.iter().enumerate() {
        by_ns.entry(l.netns.clone()).or_default().push(i);
    }
    let ns_position: HashMap<String, usize> = view
        .namespaces
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.clone(), i))
        .collect();
    for (ns, read) in tables {
        let NsTables {
            routes,
            neighbours,
            fdb,
            mut readings,
        } = read;
        let in_ns: &[usize] = by_ns.get(&ns).map(Vec::as_slice).unwrap_or_default();
        let names: HashMap<u32, String> = in_ns
            .iter()
            .map(|&i| (view.links[i].ifindex, view.links[i].name.clone()))
            .collect();
        let position = if ns == HOST {
            None
        } else {
            ns_position.get(&ns).copied()
        };
        if let Some(p) = position {
            let nv = &mut view.namespaces[p];
            nv.routes = routes.iter().map(|r| route_view(r, &names)).collect();
            nv.neighbours = neighbours
                .iter()
                .filter_map(|n| {
                    Some(NeighbourView {
                        dev: names.get(&n.ifindex)?.clone(),
                        address: n.address.to_string(),
                        mac: n.mac.as_ref().map(format_mac),
                        state: n.state.clone(),
                    })
                })
                .collect();
        }
        let linux_bridges: Vec<(usize, u32)> = view
            .bridges
            .iter()
            .enumerate()
            .filter(|(_, b)| b.netns == ns && b.kind == BridgeKind::Linux)
            .filter_map(|(i, b)| {
                let idx = in_ns
                    .iter()
                    .map(|&j| &view.links[j])
                    .find(|l| l.name == b.name)
                    .map(|l| l.ifindex);
                Some((i, idx?))
            })
            .collect();
        for (i, bridge_index) in linux_bridges {
            let mut entries: Vec<FdbView> = fdb
                .iter()
                .filter(|e| e.master == Some(bridge_index) || e.ifindex == bridge_index)
                .map(|e| FdbView {
                    mac: format_mac(&e.mac),
                    port: names
                        .get(&e.ifindex)
                        .cloned()
                        .unwrap_or_else(|| format!("ifindex {}", e.ifindex)),
                    vlan: e.vlan,
                    state: e.state.clone(),
                    age: None,
                })
                .collect();
            entries.sort_by(|a, b| (&a.port, &a.mac).cmp(&(&b.port, &b.mac)));
            entries.dedup();
            view.bridges[i].fdb = entries;
        }
        if let Some(p) = ns_position.get(&ns) {
            view.namespaces[*p].sysctls = std::mem::take(&mut readings.namespace);
        }
    }
    fill_ovs_fdb(view);
}

/// Only the routes of the lab namespaces `spaces`, read on the pool: what `diagnose`'s
/// drift check needs from a view read without tables ([`super::lab_links`]), without
/// a second pass over every namespace of a large lab.
pub fn fill_routes(view: &mut LabView, spaces: &[String]) -> Result<(), InspectError> {
    let spaces: Vec<String> = spaces.iter().filter(|ns| *ns != HOST).cloned().collect();
    let reads = netns::pool::map(&spaces, |ns| -> Result<Vec<RouteEntry>, InspectError> {
        netns::enter(ns)?;
        Ok(BatchSocket::open_here(ns)?.routes()?)
    });
    for (ns, routes) in spaces.iter().zip(reads) {
        let routes = routes?;
        let names: HashMap<u32, String> = view
            .links
            .iter()
            .filter(|l| &l.netns == ns)
            .map(|l| (l.ifindex, l.name.clone()))
            .collect();
        if let Some(nv) = view.namespaces.iter_mut().find(|n| &n.name == ns) {
            nv.routes = routes.iter().map(|r| route_view(r, &names)).collect();
        }
    }
    Ok(())
}

/// What one namespace adds to the view, read on a pool thread.
pub(super) struct NsTables {
    routes: Vec<RouteEntry>,
    neighbours: Vec<NeighbourEntry>,
    fdb: Vec<FdbEntry>,
    readings: sysctls::Readings,
}

/// Reads one namespace's tables on the pool thread that is inside it, with the socket
/// its links were read with: routes, neighbours and namespace sysctls of a lab
/// namespace (`lab_ns`; /proc/sys/net is the namespace of the reading thread), and the
/// FDB of the lab's Linux bridges in it (`bridges`: their indexes).
pub(super) fn read_here(
    sock: &mut BatchSocket,
    bridges: &[u32],
    lab_ns: bool,
) -> Result<NsTables, InspectError> {
    Ok(NsTables {
        routes: if lab_ns { sock.routes()? } else { Vec::new() },
        neighbours: if lab_ns {
            sock.neighbours()?
        } else {
            Vec::new()
        },
        fdb: {
            let mut fdb = Vec::new();
            for &b in bridges {
                fdb.extend(sock.bridge_fdb_of(b)?);
            }
            fdb
        },
        // Interface keys came with the link dump (LinkView::sysctls).
        readings: sysctls::Readings {
            namespace: if lab_ns {
                sysctls::namespace_keys_with(sock)
            } else {
                Default::default()
            },
            interfaces: Default::default(),
        },
    })
}

fn route_view(r: &RouteEntry, names: &HashMap<u32, String>) -> RouteView {
    RouteView {
        family: if r.v6 { "ipv6" } else { "ipv4" }.into(),
        to: r.to.map_or("default".to_string(), |c| c.to_string()),
        via: r.via.map(|v| v.to_string()),
        dev: r.oif.and_then(|i| names.get(&i).cloned()),
        protocol: r.protocol.clone(),
        scope: r.scope.clone(),
        metric: r.metric,
    }
}

/// OVS MAC tables, with OpenFlow port numbers turned into port names.
fn fill_ovs_fdb(view: &mut LabView) {
    if !view.bridges.iter().any(|b| b.kind == BridgeKind::Ovs) {
        return;
    }
    let Some(ep) = ovs::find_running(&wire::ovs_run_dir()) else {
        return;
    };
    for i in 0..view.bridges.len() {
        if view.bridges[i].kind != BridgeKind::Ovs {
            continue;
        }
        let name = view.bridges[i].name.clone();
        let ports: HashMap<String, String> = view
            .links
            .iter()
            .filter_map(|l| {
                let m = l.master.as_ref()?;
                (m.name == name).then_some((m.ofport?.to_string(), l.name.clone()))
            })
            .collect();
        match ovs::fdb_show(&ep, &name) {
            Ok(entries) => {
                view.bridges[i].fdb = entries
                    .into_iter()
                    .map(|e| FdbView {
                        mac: e.mac,
                        port: if e.port == "LOCAL" {
                            name.clone()
                        } else {
                            ports.get(&e.port).cloned().unwrap_or(e.port)
                        },
                        vlan: Some(e.vlan),
                        state: if e.age == "static" {
                            "static".into()
                        } else {
                            "learned".into()
                        },
                        age: e.age.parse().ok(),
                    })
                    .collect()
            }
            Err(e) => tracing::warn!(
                "cannot read the MAC table of OVS bridge {name}: {}",
                crate::errors::Chain(&e)
            ),
        }
    }
}
