use std::collections::{HashMap, HashSet};

use super::tables::{self, NsTables};
use super::{BridgeView, DeviceKind, LabView, LinkView, MasterView, NamespaceView, PeerView};
use crate::{
    netlink::{LinkInfo, Netlink, NetlinkError, batch::BatchSocket},
    netns, ovs,
    topology::{BridgeKind, Cidr, HOST},
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
    let (spaces, host) = read_spaces(lab, &alias, plan.as_ref(), detail)?;
    tracing::debug!("namespaces read in {:?}", started.elapsed());
    let ours_in_host: Vec<&LinkInfo> = host
        .links
        .iter()
        .filter(|l| l.alias.as_deref() == Some(alias.as_str()))
        .collect();
    if spaces.is_empty() && ours_in_host.is_empty() && plan.is_none() {
        return Err(no_such_lab(lab).await);
    }

    let mut raws: Vec<Raw> = Vec::new();
    let mut namespaces = Vec::new();
    let mut tables = Vec::new();
    for s in spaces {
        namespaces.push(NamespaceView {
            name: s.name.clone(),
            inode: s.inode,
            sysctls: Default::default(),
            routes: Vec::new(),
            neighbours: Vec::new(),
        });
        let mut addresses = addresses_by_index(&s.addresses);
        for link in s.links {
            raws.push(Raw {
                netns: s.name.clone(),
                addresses: addresses.remove(&link.index).unwrap_or_default(),
                link,
            });
        }
        tables.extend(s.tables.map(|t| (s.name, t)));
    }
    let mut host_addresses = addresses_by_index(&host.addresses);
    for link in &ours_in_host {
        raws.push(Raw {
            netns: HOST.to_string(),
            addresses: host_addresses.remove(&link.index).unwrap_or_default(),
            link: (*link).clone(),
        });
    }
    tables.extend(host.tables.map(|t| (HOST.to_string(), t)));
    tracing::debug!("links gathered at {:?}", started.elapsed());

    let (ovs_ports, ovs_bridges) = ovs_facts(lab);
    let links = link_views(lab, &raws, &host.links, &ovs_ports, &ovs_bridges).await?;
    let mut bridges = linux_bridges(&alias, &host.links);
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
        super::tables::fill(&mut view, tables);
        tracing::debug!("tables filled at {:?}", started.elapsed());
    }
    Ok(view)
}

/// One namespace as one pool thread read it, with one socket: what `lab_links` needs,
/// and with [`Detail::Tables`] also its routes, neighbours, sysctls and bridge FDBs.
struct Space {
    name: String,
    inode: u64,
    links: Vec<LinkInfo>,
    addresses: Vec<(u32, Cidr)>,
    tables: Option<NsTables>,
}

/// Where reading a namespace failed: before its tables (a namespace that is not
/// planned is then skipped, as someone else's or vanishing), or in them.
enum ReadFailure {
    Census(InspectError),
    Tables(InspectError),
}

/// Every named namespace and the root one, each read once on the thread pool by one
/// thread with one socket (links first, for the owner mark on `lo`; the rest only for
/// the lab's own), and the root namespace alongside them. Returns the lab's
/// namespaces (marked as the lab's, or planned by its state file) and the root's read.
fn read_spaces(
    lab: &str,
    alias: &str,
    plan: Option<&state::LabState>,
    detail: Detail,
) -> Result<(Vec<Space>, Space), InspectError> {
    let planned: HashSet<&str> = plan
        .map(|p| p.topology.netns_names().collect())
        .unwrap_or_default();
    let names = netns::list();
    let items: Vec<Option<&str>> = names
        .iter()
        .map(|n| Some(n.as_str()))
        .chain([None])
        .collect();
    // `None` is the root namespace: read alongside the others, not after them.
    let reads = netns::pool::map(&items, |item| match item {
        None => read_host(alias, detail).map(Some),
        Some(ns) => read_namespace(ns, lab, alias, planned.contains(ns), detail),
    });
    let mut spaces = Vec::new();
    let mut host = None;
    for (item, r) in items.iter().zip(reads) {
        let planned_here = item.is_some_and(|ns| planned.contains(ns));
        match r {
            Ok(Some(s)) if item.is_none() => host = Some(s),
            Ok(Some(s)) => spaces.push(s),
            Ok(None) => {}
            Err(ReadFailure::Tables(e)) => return Err(e),
            // A planned namespace that cannot be read is an error worth showing; an
            // unrelated one (someone else's, vanishing meanwhile) is not ours to report.
            Err(ReadFailure::Census(e)) if item.is_none() || planned_here => return Err(e),
            Err(ReadFailure::Census(_)) => {}
        }
    }
    // The root namespace is the last item and its read never yields `None`.
    let host = host.ok_or_else(|| netns::NetnsError::Missing {
        name: HOST.to_string(),
    })?;
    Ok((spaces, host))
}

/// One lab namespace, on a pool thread: `None` when it holds no namespace or is not
/// the lab's.
fn read_namespace(
    ns: &str,
    lab: &str,
    alias: &str,
    planned: bool,
    detail: Detail,
) -> Result<Option<Space>, ReadFailure> {
    let census = ReadFailure::Census;
    if !netns::is_mounted(ns) {
        return Ok(None);
    }
    let inode = enter(ns).map_err(|e| census(e.into()))?;
    let mut sock = BatchSocket::open_here(ns).map_err(|e| census(e.into()))?;
    let links = sock.links().map_err(|e| census(e.into()))?;
    let owner = links
        .iter()
        .find(|l| l.name == "lo")
        .and_then(|lo| mark::lab_of(lo.alias.as_deref()));
    if !planned && owner != Some(lab) {
        return Ok(None);
    }
    let addresses = sock.addresses().map_err(|e| census(e.into()))?;
    let tables = match detail {
        Detail::Links => None,
        Detail::Tables => {
            let bridges = marked_bridges(alias, &links);
            Some(tables::read_here(&mut sock, &bridges, true).map_err(ReadFailure::Tables)?)
        }
    };
    Ok(Some(Space {
        name: ns.to_string(),
        inode,
        links,
        addresses,
        tables,
    }))
}

/// The root namespace, on a pool thread: every link and address (the lab's root-side
/// ends are picked by their mark), and the FDB of the lab's bridges there.
fn read_host(alias: &str, detail: Detail) -> Result<Space, ReadFailure> {
    let census = ReadFailure::Census;
    netns::enter(HOST).map_err(|e| census(e.into()))?;
    let mut sock = BatchSocket::open_here(HOST).map_err(|e| census(e.into()))?;
    let links = sock.links().map_err(|e| census(e.into()))?;
    let addresses = sock.addresses().map_err(|e| census(e.into()))?;
    let bridges = marked_bridges(alias, &links);
    let tables = match detail {
        Detail::Tables if !bridges.is_empty() => {
            Some(tables::read_here(&mut sock, &bridges, false).map_err(ReadFailure::Tables)?)
        }
        _ => None,
    };
    Ok(Space {
        name: HOST.to_string(),
        inode: 0,
        links,
        addresses,
        tables,
    })
}

/// The lab's Linux bridges among `links` (of one namespace): their interface indexes.
fn marked_bridges(alias: &str, links: &[LinkInfo]) -> Vec<u32> {
    links
        .iter()
        .filter(|l| l.alias.as_deref() == Some(alias) && l.kind.as_deref() == Some("bridge"))
        .map(|l| l.index)
        .collect()
}

/// Enters namespace `ns` (this thread only) and returns its inode, from the same
/// descriptor (no second lookup of the path).
fn enter(ns: &str) -> Result<u64, netns::NetnsError> {
    let fd = netns::open(ns)?;
    let inode = nix::sys::stat::fstat(&fd)
        .map_err(|errno| netns::NetnsError::Sys {
            what: format!("stat namespace {ns}"),
            errno,
        })?
        .st_ino;
    nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|errno| {
        netns::NetnsError::Sys {
            what: format!("enter namespace {ns}"),
            errno,
        }
    })?;
    Ok(inode)
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

/// Addresses by interface index, in the order of the dump.
fn addresses_by_index(addrs: &[(u32, Cidr)]) -> HashMap<u32, Vec<String>> {
    let mut m: HashMap<u32, Vec<String>> = HashMap::new();
    for (i, c) in addrs {
        m.entry(*i).or_default().push(c.to_string());
    }
    m
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
///
/// Interface indexes repeat across namespaces, so several veths can name us as their
/// peer by index (in a lab of namespace pairs, every `veth0` has index 2). Those are
/// told apart by the peer's name and MAC as the kernel reports them through our own
/// namespace (`IFLA_TARGET_NETNSID`, one request per such veth, every namespace's on
/// the pool); only when that still leaves several, by asking our namespace's id for
/// each candidate's namespace. Asking that of every candidate was one netlink round
/// trip per candidate, ~N² for a lab of N namespace pairs.
async fn resolve_peers(
    all: &[Raw],
    by_index: &HashMap<u32, Vec<usize>>,
) -> Result<Vec<Option<PeerView>>, InspectError> {
    let candidates: Vec<Vec<&Raw>> = all
        .iter()
        .map(|r| peer_candidates(r, all, by_index))
        .collect();
    let seen = peers_as_seen(all, &candidates);
    let mut sockets: HashMap<String, Netlink> = HashMap::new();
    let mut out = Vec::with_capacity(all.len());
    for (i, r) in all.iter().enumerate() {
        let mut many: Vec<&Raw> = candidates[i].clone();
        if many.len() > 1
            && let Some(Some(peer)) = seen.get(&i)
        {
            let same: Vec<&Raw> = many
                .iter()
                .copied()
                .filter(|c| c.link.name == peer.name && c.link.mac == peer.mac)
                .collect();
            if !same.is_empty() {
                many = same;
            }
        }
        let found = match many.as_slice() {
            [] => None,
            [one] => Some(*one),
            // Still several (equal names and MACs): the peer's namespace id, as our
            // namespace numbers it, tells which one is really ours.
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

/// For each veth with several candidate peers (by position in `all`): its peer as the
/// kernel shows it through the veth's namespace, `None` when that could not be read.
/// Every namespace with such veths is read once, on the pool, with one socket.
fn peers_as_seen(all: &[Raw], candidates: &[Vec<&Raw>]) -> HashMap<usize, Option<LinkInfo>> {
    let mut by_ns: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in all.iter().enumerate() {
        if candidates[i].len() > 1 && r.link.peer_netnsid.is_some() {
            by_ns.entry(r.netns.as_str()).or_default().push(i);
        }
    }
    let work: Vec<(&str, Vec<usize>)> = by_ns.into_iter().collect();
    let reads = netns::pool::map(&work, |(ns, positions)| {
        let sock = netns::enter(ns)
            .ok()
            .and_then(|()| BatchSocket::open_here(ns).ok());
        let Some(mut sock) = sock else {
            return positions.iter().map(|&i| (i, None)).collect::<Vec<_>>();
        };
        positions
            .iter()
            .map(|&i| {
                let l = &all[i].link;
                let peer = match (l.peer_netnsid, l.peer_index) {
                    (Some(nsid), Some(index)) => sock.link_in(nsid, index).ok().flatten(),
                    _ => None,
                };
                (i, peer)
            })
            .collect()
    });
    reads.into_iter().flatten().collect()
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
