//! Fills a [`LabView`] with what `show` adds beyond links: routes, neighbours and
//! forwarding sysctls of every lab namespace, and the forwarding table of every bridge.

use std::collections::HashMap;

use super::{FdbView, InspectError, LabView, NeighbourView, RouteView, sysctls};
use crate::{
    netlink::{Netlink, RouteEntry, link::format_mac},
    ovs,
    topology::HOST,
    wire,
};

pub(super) async fn fill(view: &mut LabView) -> Result<(), InspectError> {
    let mut spaces: Vec<String> = view.namespaces.iter().map(|n| n.name.clone()).collect();
    if view.links.iter().any(|l| l.netns == HOST) || view.bridges.iter().any(|b| b.netns == HOST) {
        spaces.push(HOST.to_string());
    }
    for ns in spaces {
        let names: HashMap<u32, String> = view
            .links
            .iter()
            .filter(|l| l.netns == ns)
            .map(|l| (l.ifindex, l.name.clone()))
            .collect();
        let nl = Netlink::open(&ns).await?;
        if ns != HOST {
            let routes = nl.routes().await?;
            let neighbours = nl.neighbours().await?;
            if let Some(nv) = view.namespaces.iter_mut().find(|n| n.name == ns) {
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
        }
        let linux_bridges: Vec<(usize, u32)> = view
            .bridges
            .iter()
            .enumerate()
            .filter(|(_, b)| b.netns == ns && b.kind == "linux")
            .filter_map(|(i, b)| {
                let idx = view
                    .links
                    .iter()
                    .find(|l| l.netns == ns && l.name == b.name)
                    .map(|l| l.ifindex);
                Some((i, idx?))
            })
            .collect();
        if !linux_bridges.is_empty() {
            let fdb = nl.bridge_fdb().await?;
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
        }
        let ifnames: Vec<String> = view
            .links
            .iter()
            .filter(|l| l.netns == ns && l.name != "lo")
            .map(|l| l.name.clone())
            .collect();
        let mut readings = sysctls::read_in(&ns, &ifnames)?;
        if let Some(nv) = view.namespaces.iter_mut().find(|n| n.name == ns) {
            nv.sysctls = std::mem::take(&mut readings.namespace);
        }
        for l in view.links.iter_mut().filter(|l| l.netns == ns) {
            if let Some(m) = readings.interfaces.remove(&l.name) {
                l.sysctls = m;
            }
        }
    }
    fill_ovs_fdb(view);
    Ok(())
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
    if !view.bridges.iter().any(|b| b.kind == "ovs") {
        return;
    }
    let Some(ep) = ovs::find_running(&wire::ovs_run_dir()) else {
        return;
    };
    for i in 0..view.bridges.len() {
        if view.bridges[i].kind != "ovs" {
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
            Err(e) => tracing::warn!("cannot read the MAC table of OVS bridge {name}: {e}"),
        }
    }
}
