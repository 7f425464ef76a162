use std::collections::HashMap;

use super::{BridgeView, DeviceKind, LabView, LinkView, MasterView, NamespaceView, PeerView};
use crate::{
    netlink::{LinkInfo, Netlink, NetlinkError},
    netns, ovs,
    topology::{BridgeKind, Cidr, HOST},
    wire::{self, census::NsFacts, mark, state},
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

/// How much of a lab to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Detail {
    /// Namespaces, links, addresses, peers, masters, bridges and their ports.
    Links,
    /// Also every namespace's routes, neighbours and sysctls and every bridge's
    /// forwarding table (what `show`, `save` and `drift` print or compare).
    Tables,
}

/// The whole live view of a lab, as `show` prints it.
pub async fn lab_view(lab: &str) -> Result<LabView, InspectError> {
    read(lab, Detail::Tables).await
}

/// The lab's namespaces, links and bridges without the per-namespace tables (routes,
/// neighbours and sysctls stay empty, so does every bridge's `fdb`): for `graph`,
/// `fastpath` and `diagnose`, which do not use them. On a 1,000-namespace lab this
/// skips a second pass over every namespace.
pub async fn lab_links(lab: &str) -> Result<LabView, InspectError> {
    read(lab, Detail::Links).await
}

async fn read(lab: &str, detail: Detail) -> Result<LabView, InspectError> {
    let alias = mark::alias(lab);
    let plan = state::read(lab);
    let started = std::time::Instant::now();
    let facts = lab_namespaces(lab, plan.as_ref())?;
    tracing::debug!("lab namespaces read in {:?}", started.elapsed());
    let host = Netlink::open(HOST).await?;
    let host_links: Vec<LinkInfo> = host.links().await?;
    let host_addrs = host.addresses().await?;
    let ours_in_host: Vec<&LinkInfo> = host_links
        .iter()
        .filter(|l| l.alias.as_deref() == Some(alias.as_str()))
        .collect();
    if facts.is_empty() && ours_in_host.is_empty() && plan.is_none() {
        return Err(no_such_lab(lab).await);
    }

    let mut raws: Vec<Raw> = Vec::new();
    let mut namespaces = Vec::new();
    for f in facts {
        namespaces.push(NamespaceView {
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
    tracing::debug!("links gathered at {:?}", started.elapsed());

    let (ovs_ports, ovs_bridges) = ovs_facts(lab);
    let links = link_views(lab, &raws, &host_links, &ovs_ports, &ovs_bridges).await?;
    let mut bridges = linux_bridges(&alias, &host_links);
    bridges.extend(namespace_bridges(&alias, &raws));
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
        namespaces,
        bridges,
        links,
    };
    if detail == Detail::Tables {
        super::tables::fill(&mut view).await?;
        tracing::debug!("tables read at {:?}", started.elapsed());
    }
    Ok(view)
}

/// The lab's namespaces (marked as the lab's, or planned by its state file), each read
/// once on the thread pool: one link dump (which also carries the owner mark on `lo`)
/// and one address dump for the lab's own.
fn lab_namespaces(lab: &str, plan: Option<&state::LabState>) -> Result<Vec<NsFacts>, InspectError> {
    let planned = |ns: &str| plan.is_some_and(|p| p.topology.netns_names().any(|n| n == ns));
    let all = netns::list();
    let census = wire::census::read(&all, |f| planned(&f.name) || f.owner() == Some(lab));
    let mut facts = Vec::new();
    for (ns, r) in all.iter().zip(census) {
        match r {
            Ok(f) if f.mounted && (planned(ns) || f.owner() == Some(lab)) => facts.push(f),
            Ok(_) => {}
            // A planned namespace that cannot be read is an error worth showing; an
            // unrelated one (someone else's, vanishing meanwhile) is not ours to report.
            Err(e) if planned(ns) => return Err(e.into()),
            Err(_) => {}
        }
    }
    Ok(facts)
}

async fn no_such_lab(lab: &str) -> InspectError {
    let known: Vec<String> = wire::known_labs().await.into_iter().collect();
    InspectError::NoSuchLab {
        lab: lab.to_string(),
        known: if known.is_empty() {
            "none".into()
        } else {
            known.join(", ")
        },
    }
}

/// One link of the lab as read, with the namespace it sits in.
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

/// Every raw link as the view shows it: kind, master, peer, impairment, sysctls. Lab
/// namespaces first, the root namespace last.
async fn link_views(
    lab: &str,
    raws: &[Raw],
    host_links: &[LinkInfo],
    ovs_ports: &HashMap<String, OvsPort>,
    ovs_bridges: &[BridgeView],
) -> Result<Vec<LinkView>, InspectError> {
    // What `impair` set on the lab's ends (an unreadable record shows as none here;
    // `vethscope impair LAB` reports it).
    let impairs = crate::impair::record::read(lab).unwrap_or_default();
    let host_by_index: HashMap<u32, &LinkInfo> = host_links.iter().map(|l| (l.index, l)).collect();
    // Linux bridges inside lab namespaces: (namespace, ifindex) → bridge.
    let ns_bridges = bridges_in_namespaces(raws);
    let peers = resolve_peers(raws, &index_raws(raws)).await?;
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
                    // From the link dump (IFLA_AF_SPEC), not from eight files per interface.
                    sysctls: if r.link.name == "lo" {
                        Default::default()
                    } else {
                        r.link
                            .ip_conf
                            .iter()
                            .map(|(k, v)| ((*k).to_string(), v.to_string()))
                            .collect()
                    },
                }
            })
            .collect();
    links.sort_by(|a, b| {
        (a.netns == HOST, &a.netns, a.ifindex).cmp(&(b.netns == HOST, &b.netns, b.ifindex))
    });
    Ok(links)
}

/// The lab's (marked) Linux bridges in the root namespace, with their ports.
fn linux_bridges(alias: &str, host_links: &[LinkInfo]) -> Vec<BridgeView> {
    let mut ports: HashMap<u32, Vec<String>> = HashMap::new();
    for p in host_links {
        if let Some(m) = p.master {
            ports.entry(m).or_default().push(p.name.clone());
        }
    }
    host_links
        .iter()
        .filter(|l| l.alias.as_deref() == Some(alias) && l.kind.as_deref() == Some("bridge"))
        .map(|b| BridgeView {
            name: b.name.clone(),
            kind: BridgeKind::Linux,
            datapath: None,
            ports: ports.remove(&b.index).unwrap_or_default(),
            netns: HOST.to_string(),
            fdb: Vec::new(),
        })
        .collect()
}

/// Linux bridges inside lab namespaces, by (namespace, ifindex).
fn bridges_in_namespaces(raws: &[Raw]) -> HashMap<(&str, u32), &LinkInfo> {
    raws.iter()
        .filter(|r| r.netns != HOST && r.link.kind.as_deref() == Some("bridge"))
        .map(|r| ((r.netns.as_str(), r.link.index), &r.link))
        .collect()
}

/// The lab's (marked) Linux bridges inside its namespaces, with their ports.
fn namespace_bridges(alias: &str, raws: &[Raw]) -> Vec<BridgeView> {
    bridges_in_namespaces(raws)
        .into_iter()
        .filter(|(_, b)| b.alias.as_deref() == Some(alias))
        .map(|((ns, index), b)| BridgeView {
            name: b.name.clone(),
            kind: BridgeKind::Linux,
            datapath: None,
            ports: raws
                .iter()
                .filter(|p| p.netns == ns && p.link.master == Some(index))
                .map(|p| p.link.name.clone())
                .collect(),
            netns: ns.to_string(),
            fdb: Vec::new(),
        })
        .collect()
}

fn addresses_of(addrs: &[(u32, Cidr)], index: u32) -> Vec<String> {
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
