use std::collections::HashMap;

use super::{BridgeView, DeviceKind, LabView, LinkView, MasterView, NamespaceView, PeerView};
use crate::{
    netlink::{LinkInfo, Netlink, NetlinkError},
    netns, ovs,
    topology::{BridgeKind, HOST},
    wire::{self, mark, state},
};

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("no lab named {lab} is up (labs: {known})")]
    NoSuchLab { lab: String, known: String },
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
}

impl From<wire::census::CensusError> for InspectError {
    fn from(e: wire::census::CensusError) -> Self {
        match e {
            wire::census::CensusError::Netns(e) => InspectError::Netns(e),
            wire::census::CensusError::Netlink(e) => InspectError::Netlink(e),
        }
    }
}

struct Raw {
    netns: String,
    link: LinkInfo,
    addresses: Vec<String>,
}

/// OVS port facts by interface name.
struct OvsPort {
    bridge: String,
    ofport: Option<i64>,
    internal: bool,
}

pub async fn lab_view(lab: &str) -> Result<LabView, InspectError> {
    let alias = mark::alias(lab);
    let plan = state::read(lab);
    // Every namespace read once, on the thread pool: one link dump (which also
    // carries the owner mark on `lo`), and one address dump for the lab's own.
    let planned = |ns: &str| {
        plan.as_ref()
            .is_some_and(|p| p.topology.netns_names().any(|n| n == ns))
    };
    let started = std::time::Instant::now();
    let all = netns::list();
    let census = wire::census::read(&all, |f| planned(&f.name) || f.owner() == Some(lab));
    let mut facts = Vec::new();
    for (ns, r) in all.iter().zip(census) {
        let ours_or_planned = |f: &wire::census::NsFacts| planned(ns) || f.owner() == Some(lab);
        match r {
            Ok(f) if f.mounted && ours_or_planned(&f) => facts.push(f),
            Ok(_) => {}
            // A planned namespace that cannot be read is an error worth showing; an
            // unrelated one (someone else's, vanishing meanwhile) is not ours to report.
            Err(e) if planned(ns) => return Err(e.into()),
            Err(_) => {}
        }
    }
    tracing::debug!("{} namespaces read in {:?}", all.len(), started.elapsed());
    let host = Netlink::open(HOST).await?;
    let host_links: Vec<LinkInfo> = host.links().await?;
    let host_addrs = host.addresses().await?;
    let ours_in_host: Vec<&LinkInfo> = host_links
        .iter()
        .filter(|l| l.alias.as_deref() == Some(alias.as_str()))
        .collect();
    if facts.is_empty() && ours_in_host.is_empty() && plan.is_none() {
        let known: Vec<String> = wire::known_labs().await.into_iter().collect();
        return Err(InspectError::NoSuchLab {
            lab: lab.to_string(),
            known: if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            },
        });
    }

    // What `impair` set on the lab's ends (an unreadable record shows as none here;
    // `vethscope impair LAB` reports it).
    let impairs = crate::impair::record::read(lab).unwrap_or_default();
    let mut raws: Vec<Raw> = Vec::new();
    let mut ns_views = Vec::new();
    for f in facts {
        ns_views.push(NamespaceView {
            name: f.name.clone(),
            inode: netns::inode(&f.name)?,
            sysctls: Default::default(),
            routes: Vec::new(),
            neighbours: Vec::new(),
        });
        for link in f.links {
            raws.push(Raw {
                netns: f.name.clone(),
                addresses: addresses_of(&f.addresses, link.index),
                link,
            });
        }
    }
    for link in &ours_in_host {
        raws.push(Raw {
            netns: HOST.to_string(),
            addresses: addresses_of(&host_addrs, link.index),
            link: (*link).clone(),
        });
    }
    let by_index = index_raws(&raws);

    tracing::debug!("links gathered at {:?}", started.elapsed());
    let (ovs_ports, ovs_bridges) = ovs_facts(lab);
    let host_by_index: HashMap<u32, &LinkInfo> = host_links.iter().map(|l| (l.index, l)).collect();
    // Linux bridges inside lab namespaces: (namespace, ifindex) → bridge.
    let ns_bridges: HashMap<(&str, u32), &LinkInfo> = raws
        .iter()
        .filter(|r| r.netns != HOST && r.link.kind.as_deref() == Some("bridge"))
        .map(|r| ((r.netns.as_str(), r.link.index), &r.link))
        .collect();
    let peers = resolve_peers(&raws, &by_index).await?;
    let mut links: Vec<LinkView> =
        raws.iter()
            .zip(peers)
            .map(|(r, peer)| {
                let ovs = ovs_ports.get(&r.link.name);
                let kind = match ovs {
                    Some(p) if p.internal => DeviceKind::OvsInternal,
                    _ if r.link.name == "lo" => DeviceKind::Lo,
                    _ if ovs_bridges.iter().any(|b| b.name == r.link.name) => DeviceKind::OvsBridge,
                    _ => DeviceKind::of_kernel(r.link.kind.as_deref()),
                };
                let master = match ovs {
                    Some(p) => Some(MasterView {
                        name: p.bridge.clone(),
                        kind: BridgeKind::Ovs,
                        ofport: p.ofport,
                    }),
                    None if r.netns == HOST => r
                        .link
                        .master
                        .and_then(|m| host_by_index.get(&m))
                        .map(|m| MasterView {
                            name: m.name.clone(),
                            kind: BridgeKind::Linux,
                            ofport: None,
                        }),
                    None => r
                        .link
                        .master
                        .and_then(|m| ns_bridges.get(&(r.netns.as_str(), m)))
                        .map(|m| MasterView {
                            name: m.name.clone(),
                            kind: BridgeKind::Linux,
                            ofport: None,
                        }),
                };
                LinkView {
                    netns: r.netns.clone(),
                    name: r.link.name.clone(),
                    kind,
                    ifindex: r.link.index,
                    mac: if r.link.name == "lo" {
                        None
                    } else {
                        r.link.mac_string()
                    },
                    mtu: r.link.mtu,
                    state: r.link.state,
                    addresses: r.addresses.clone(),
                    peer,
                    master,
                    admin_up: r.link.admin_up,
                    impair: impairs
                        .end(&r.netns, &r.link.name)
                        .map(|e| e.impairment.clone()),
                    sysctls: Default::default(),
                }
            })
            .collect();
    // Lab namespaces first, the root namespace last.
    links.sort_by(|a, b| {
        (a.netns == HOST, &a.netns, a.ifindex).cmp(&(b.netns == HOST, &b.netns, b.ifindex))
    });

    let mut bridges: Vec<BridgeView> = host_links
        .iter()
        .filter(|l| {
            l.alias.as_deref() == Some(alias.as_str()) && l.kind.as_deref() == Some("bridge")
        })
        .map(|b| BridgeView {
            name: b.name.clone(),
            kind: BridgeKind::Linux,
            datapath: None,
            ports: host_links
                .iter()
                .filter(|p| p.master == Some(b.index))
                .map(|p| p.name.clone())
                .collect(),
            netns: HOST.to_string(),
            fdb: Vec::new(),
        })
        .collect();
    // Bridges inside the lab's namespaces (marked like every lab interface).
    for ((ns, index), b) in &ns_bridges {
        if b.alias.as_deref() != Some(alias.as_str()) {
            continue;
        }
        bridges.push(BridgeView {
            name: b.name.clone(),
            kind: BridgeKind::Linux,
            datapath: None,
            ports: raws
                .iter()
                .filter(|p| p.netns == *ns && p.link.master == Some(*index))
                .map(|p| p.link.name.clone())
                .collect(),
            netns: ns.to_string(),
            fdb: Vec::new(),
        });
    }
    bridges.sort_by(|a, b| {
        (a.netns == HOST, &a.netns, &a.name).cmp(&(b.netns == HOST, &b.netns, &b.name))
    });
    bridges.extend(ovs_bridges);

    let mut view = LabView {
        schema_version: super::SCHEMA_VERSION,
        lab: lab.to_string(),
        status: match plan.map(|p| p.status) {
            Some(state::Status::Up) => "up".into(),
            Some(state::Status::Creating) => "creating".into(),
            Some(state::Status::Changing) => "changing".into(),
            None => "unrecorded".into(),
        },
        namespaces: ns_views,
        bridges,
        links,
    };
    super::tables::fill(&mut view).await?;
    Ok(view)
}

fn addresses_of(addrs: &[(u32, crate::topology::Cidr)], index: u32) -> Vec<String> {
    addrs
        .iter()
        .filter(|(i, _)| *i == index)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// Positions in `raws` by ifindex (indexes repeat across namespaces), so a peer is
/// found without scanning every link of a thousand namespaces.
fn index_raws(raws: &[Raw]) -> HashMap<u32, Vec<usize>> {
    let mut m: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, r) in raws.iter().enumerate() {
        m.entry(r.link.index).or_default().push(i);
    }
    m
}

/// Every veth's peer (`None` for other links), in the order of `all`.
async fn resolve_peers(
    all: &[Raw],
    by_index: &HashMap<u32, Vec<usize>>,
) -> Result<Vec<Option<PeerView>>, InspectError> {
    let mut sockets: HashMap<String, Netlink> = HashMap::new();
    let mut out = Vec::with_capacity(all.len());
    for r in all {
        let candidates = peer_candidates(r, all, by_index);
        let found = match candidates.as_slice() {
            [] => None,
            [one] => Some(*one),
            // Interface indexes repeat across namespaces: several veths can name us as
            // their peer by index. The peer's namespace id, as our namespace numbers
            // it, tells which one is really ours.
            many => {
                let wanted = r.link.peer_netnsid;
                if !sockets.contains_key(&r.netns) {
                    sockets.insert(r.netns.clone(), Netlink::open(&r.netns).await?);
                }
                let nl = &sockets[&r.netns];
                let mut hit = None;
                for c in many {
                    let fd = netns::open(&c.netns)?;
                    if nl.nsid_of(&fd).await? == wanted {
                        hit = Some(*c);
                        break;
                    }
                }
                hit
            }
        };
        out.push(found.map(|o| PeerView {
            netns: o.netns.clone(),
            name: o.link.name.clone(),
            ifindex: o.link.index,
        }));
    }
    Ok(out)
}

/// The veths that could be `r`'s peer: index is our peer index and peer index is ours,
/// in the same namespace when the kernel reports no peer namespace id, else in another.
fn peer_candidates<'a>(
    r: &Raw,
    all: &'a [Raw],
    by_index: &HashMap<u32, Vec<usize>>,
) -> Vec<&'a Raw> {
    if !r.link.is_veth() {
        return Vec::new();
    }
    let Some(peer_index) = r.link.peer_index else {
        return Vec::new();
    };
    let same_ns = r.link.peer_netnsid.is_none();
    let Some(positions) = by_index.get(&peer_index) else {
        return Vec::new();
    };
    positions
        .iter()
        .map(|&i| &all[i])
        .filter(|o| {
            o.link.is_veth()
                && o.link.index == peer_index
                && o.link.peer_index == Some(r.link.index)
                && (o.netns == r.netns) == same_ns
                && !(o.netns == r.netns && o.link.name == r.link.name)
        })
        .collect()
}

fn ovs_facts(lab: &str) -> (HashMap<String, OvsPort>, Vec<BridgeView>) {
    let mut ports = HashMap::new();
    let mut bridges = Vec::new();
    let Some(ep) = ovs::find_running(&wire::ovs_run_dir()) else {
        return (ports, bridges);
    };
    let Ok(mut db) = ovs::Ovsdb::connect(&ep) else {
        return (ports, bridges);
    };
    let Ok(all) = db.bridges() else {
        return (ports, bridges);
    };
    for b in all {
        let ours = b.external_ids.get(mark::OVS_KEY).is_some_and(|v| v == lab);
        if !ours {
            continue;
        }
        let mut names = Vec::new();
        for p in &b.ports {
            if p.name == b.name {
                continue;
            }
            names.push(p.name.clone());
            for i in &p.interfaces {
                ports.insert(
                    i.name.clone(),
                    OvsPort {
                        bridge: b.name.clone(),
                        ofport: i.ofport,
                        internal: i.iface_type == "internal",
                    },
                );
            }
        }
        bridges.push(BridgeView {
            name: b.name.clone(),
            kind: BridgeKind::Ovs,
            datapath: Some(b.datapath_type.clone()),
            ports: names,
            netns: HOST.to_string(),
            fdb: Vec::new(),
        });
    }
    (ports, bridges)
}
