//! `up FILE` on a running lab: the difference between the live lab and the file,
//! as a list of small actions (add/remove an address or route, set MTU, MAC, a sysctl,
//! bring an interface up), applied touching nothing else — a ping across a link that
//! did not change keeps running.
//!
//! The same comparison serves drift repair: the actions are computed from the live
//! state against the new file (plus routes the old file had and the new one drops), so
//! `up` with the unchanged file repairs a lost address or route.
//!
//! Crash safety: the new file is recorded before the first action, and every action is
//! idempotent, so after a kill `up FILE` again computes and applies what is left, and
//! `down` still removes the lab by its marks.
//!
//! Adding or removing namespaces, bridges or links on a running lab is not done here
//! yet: such a file is refused with a clear message (`down` first).

use std::collections::BTreeSet;

use super::WireError;
use crate::{
    drift::{self, Drift},
    inspect,
    netlink::{Netlink, RouteEntry},
    netns,
    topology::{Cidr, End, Link, Route, Topology},
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
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

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
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

fn route_text(r: &Route) -> String {
    let mut s = r.to.map_or("default".to_string(), |c| c.to_string());
    if let Some(v) = r.via {
        s.push_str(&format!(" via {v}"));
    }
    if let Some(d) = &r.dev {
        s.push_str(&format!(" dev {d}"));
    }
    s
}

/// What makes up a lab's shape: namespaces, bridges, and each link's ends by place.
fn structure(t: &Topology) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    for ns in &t.namespaces {
        s.insert(format!("namespace {}", ns.name));
    }
    for b in &t.bridges {
        s.insert(format!("bridge {} {:?}", b.name, b.kind));
    }
    let end_id = |e: &End| format!("{:?}/{}", e.place, e.name);
    for l in &t.links {
        match l {
            Link::Veth { ends, .. } => {
                let mut ids = [end_id(&ends[0]), end_id(&ends[1])];
                ids.sort();
                s.insert(format!("veth {} {}", ids[0], ids[1]));
            }
            Link::OvsInternal { bridge, end, .. } => {
                s.insert(format!("ovs-internal {bridge} {}", end_id(end)));
            }
        }
    }
    s
}

/// The shape differences between two versions of a lab (empty: same shape).
pub fn structural_changes(old: &Topology, new: &Topology) -> Vec<String> {
    let (a, b) = (structure(old), structure(new));
    let mut out: Vec<String> = a.difference(&b).map(|x| format!("remove {x}")).collect();
    out.extend(b.difference(&a).map(|x| format!("add {x}")));
    out
}

fn same_route(a: &Route, b: &Route) -> bool {
    a.to == b.to && a.via == b.via && a.dev == b.dev
}

/// The actions that turn the live lab into `new` (`old` = the recorded file).
pub async fn plan(old: &Topology, new: &Topology) -> Result<Vec<Action>, WireError> {
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
    // Addresses before routes: a gateway must be reachable before its route is added.
    actions.sort_by_key(|a| match a {
        Action::DelRoute { .. } => 0,
        Action::DelAddress { .. } => 1,
        Action::SetMac { .. } | Action::SetMtu { .. } => 2,
        Action::SetSysctl { .. } => 3,
        Action::AddAddress { .. } => 4,
        Action::SetUp { .. } => 5,
        Action::AddRoute { .. } => 6,
    });
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

/// Applies the actions in order; the first failure stops and is returned.
pub async fn apply(lab: &str, actions: &[Action]) -> Result<(), WireError> {
    let nl_err = |source| WireError::Netlink {
        lab: lab.to_string(),
        source,
    };
    let ns_err = |source| WireError::Netns {
        lab: lab.to_string(),
        source,
    };
    let mut sockets: std::collections::HashMap<String, Netlink> = Default::default();
    for a in actions {
        let ns = match a {
            Action::AddAddress { netns, .. }
            | Action::DelAddress { netns, .. }
            | Action::SetMtu { netns, .. }
            | Action::SetMac { netns, .. }
            | Action::SetUp { netns, .. }
            | Action::SetSysctl { netns, .. }
            | Action::AddRoute { netns, .. }
            | Action::DelRoute { netns, .. } => netns.clone(),
        };
        if !sockets.contains_key(&ns) {
            sockets.insert(ns.clone(), Netlink::open(&ns).await.map_err(nl_err)?);
        }
        let nl = &sockets[&ns];
        tracing::info!("lab {lab}: {a}");
        match a {
            Action::AddAddress { ifname, cidr, .. } => {
                let link = nl.require(ifname).await.map_err(nl_err)?;
                match nl.add_address(&link, cidr).await {
                    Err(e) if e.errno() == Some(libc::EEXIST) => {}
                    r => r.map_err(nl_err)?,
                }
            }
            Action::DelAddress { ifname, cidr, .. } => {
                let link = nl.require(ifname).await.map_err(nl_err)?;
                nl.delete_address(link.index, ifname, cidr)
                    .await
                    .map_err(nl_err)?;
            }
            Action::SetMtu { ifname, mtu, .. } => {
                let link = nl.require(ifname).await.map_err(nl_err)?;
                nl.set_mtu(&link, *mtu).await.map_err(nl_err)?;
            }
            Action::SetMac { ifname, mac, .. } => {
                let link = nl.require(ifname).await.map_err(nl_err)?;
                nl.set_mac(&link, *mac).await.map_err(nl_err)?;
            }
            Action::SetUp { ifname, .. } => {
                let link = nl.require(ifname).await.map_err(nl_err)?;
                nl.set_up(&link).await.map_err(nl_err)?;
            }
            Action::SetSysctl { key, value, .. } => match key.split_once('/') {
                Some((ifname, k)) => {
                    netns::write_sysctl_in(&ns, inspect::sysctls::iface_path(ifname, k), value)
                        .map_err(ns_err)?
                }
                None => netns::write_sysctl(&ns, key, value).map_err(ns_err)?,
            },
            Action::AddRoute { route, .. } => {
                let dev = match &route.dev {
                    Some(d) => Some(nl.require(d).await.map_err(nl_err)?),
                    None => None,
                };
                match nl.add_route(route, dev.as_ref()).await {
                    Err(e) if e.errno() == Some(libc::EEXIST) => {}
                    r => r.map_err(nl_err)?,
                }
            }
            Action::DelRoute { route, .. } => {
                let oif = match &route.dev {
                    Some(d) => nl.link_by_name(d).await.map_err(nl_err)?.map(|l| l.index),
                    None => None,
                };
                let v6 = route
                    .to
                    .map(|c| c.addr.is_ipv6())
                    .or(route.via.map(|v| v.is_ipv6()))
                    .unwrap_or(false);
                let entry = RouteEntry {
                    to: route.to,
                    v6,
                    via: route.via,
                    oif,
                    protocol: String::new(),
                    scope: String::new(),
                    metric: None,
                };
                nl.delete_route(&entry).await.map_err(nl_err)?;
            }
        }
    }
    Ok(())
}
