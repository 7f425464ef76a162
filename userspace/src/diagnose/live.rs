//! The live state diagnose reasons about: the lab view `show` uses (links, peers,
//! masters, addresses), plus what only diagnose needs — sysctls of every lab namespace,
//! bridge port STP states, OVS interface errors — and the lab's plan (state file).

use crate::inspect::DeviceKind;
use crate::topology::BridgeKind;
use std::collections::HashMap;
use std::net::IpAddr;

use crate::{
    inspect::{self, LabView, LinkView},
    netns, ovs,
    topology::{Cidr, HOST, Topology},
    wire,
};

use super::DiagnoseError;

/// Per-interface IPv4 keys diagnose reads (plus `all` and `default`).
const CONF_KEYS: &[&str] = &[
    "accept_local",
    "rp_filter",
    "arp_ignore",
    "arp_filter",
    "arp_announce",
    "forwarding",
];

/// Sysctls of one namespace.
#[derive(Debug, Default, Clone)]
pub struct NsSysctls {
    /// (conf name: `all`, `default` or an interface, key) → value, from net.ipv4.conf.
    pub v4: HashMap<(String, String), i64>,
    /// net.ipv6.conf.all.forwarding.
    pub v6_forwarding: Option<i64>,
}

impl NsSysctls {
    pub fn get(&self, conf: &str, key: &str) -> Option<i64> {
        self.v4.get(&(conf.to_string(), key.to_string())).copied()
    }

    /// What the kernel applies for keys combined as the maximum of `all` and the interface
    /// (rp_filter, arp_ignore, arp_announce).
    pub fn max_conf(&self, ifname: &str, key: &str) -> i64 {
        self.get("all", key)
            .unwrap_or(0)
            .max(self.get(ifname, key).unwrap_or(0))
    }

    /// Keys combined with OR (accept_local, arp_filter).
    pub fn or_conf(&self, ifname: &str, key: &str) -> bool {
        self.get("all", key).unwrap_or(0) != 0 || self.get(ifname, key).unwrap_or(0) != 0
    }
}

/// An OVS interface of the lab as OVSDB reports it.
#[derive(Debug, Clone)]
pub struct OvsIface {
    pub bridge: String,
    pub port: String,
    pub ofport: Option<i64>,
    pub error: Option<String>,
    pub internal: bool,
}

pub struct Live {
    pub lab: String,
    pub view: LabView,
    /// The topology as applied (from the state file), when there is one.
    pub plan: Option<Topology>,
    /// Read on first use, per namespace: a walk touches few of a large lab's namespaces.
    sysctls: std::cell::RefCell<HashMap<String, NsSysctls>>,
    /// Root-namespace bridge port → /sys/class/net/PORT/brport/state.
    pub brport_state: HashMap<String, u8>,
    pub ovs: HashMap<String, OvsIface>,
}

/// An address of the lab: where it lives.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    pub link: &'a LinkView,
    pub cidr: Cidr,
}

impl Live {
    pub async fn gather(lab: &str) -> Result<Self, DiagnoseError> {
        // Without routes, neighbours and sysctls of every namespace: read on first use.
        let mut view = inspect::lab_links(lab).await?;
        let plan = wire::state::read(lab).map(|s| s.topology);
        // The drift check compares routes the file sets: read those namespaces' routes.
        if let Some(t) = &plan {
            let routed: Vec<String> = t
                .namespaces
                .iter()
                .filter(|n| !n.routes.is_empty())
                .map(|n| n.name.clone())
                .collect();
            inspect::fill_routes(&mut view, &routed)?;
        }
        let mut brport_state = HashMap::new();
        for l in view.links.iter().filter(|l| l.netns == HOST) {
            if l.master
                .as_ref()
                .is_some_and(|m| m.kind == BridgeKind::Linux)
            {
                // Root-namespace sysfs: vethscope runs in the root namespace.
                let p = format!("/sys/class/net/{}/brport/state", l.name);
                if let Ok(s) = std::fs::read_to_string(p)
                    && let Ok(v) = s.trim().parse::<u8>()
                {
                    brport_state.insert(l.name.clone(), v);
                }
            }
        }
        let uses_ovs = plan.as_ref().is_some_and(Topology::uses_ovs)
            || view.bridges.iter().any(|b| b.kind == BridgeKind::Ovs);
        let ovs = if uses_ovs {
            ovs_interfaces(lab)
        } else {
            HashMap::new()
        };
        Ok(Self {
            lab: lab.to_string(),
            view,
            plan,
            sysctls: Default::default(),
            brport_state,
            ovs,
        })
    }

    pub fn link(&self, netns: &str, ifname: &str) -> Option<&LinkView> {
        self.view.link(netns, ifname)
    }

    pub fn sysctls(&self, netns: &str) -> NsSysctls {
        if let Some(s) = self.sysctls.borrow().get(netns) {
            return s.clone();
        }
        let ifnames: Vec<String> = self
            .view
            .links
            .iter()
            .filter(|l| l.netns == netns)
            .map(|l| l.name.clone())
            .collect();
        let s = read_sysctls(netns, &ifnames).unwrap_or_else(|e| {
            tracing::debug!("sysctls of {netns}: {}", crate::errors::Chain(&e));
            NsSysctls::default()
        });
        self.sysctls
            .borrow_mut()
            .insert(netns.to_string(), s.clone());
        s
    }

    pub fn has_netns(&self, netns: &str) -> bool {
        netns == HOST || self.view.namespaces.iter().any(|n| n.name == netns)
    }

    /// Every interface of the lab that carries `addr`.
    pub fn owners(&self, addr: IpAddr) -> Vec<Owner<'_>> {
        let mut out = Vec::new();
        for l in &self.view.links {
            for a in &l.addresses {
                if let Ok(c) = a.parse::<Cidr>()
                    && c.addr == addr
                {
                    out.push(Owner { link: l, cidr: c });
                }
            }
        }
        out
    }

    /// Addresses of an interface.
    pub fn cidrs(link: &LinkView) -> Vec<Cidr> {
        link.addresses
            .iter()
            .filter_map(|a| a.parse::<Cidr>().ok())
            .collect()
    }

    /// The planned interface that should carry `addr`, if any.
    pub fn planned_owner(&self, addr: IpAddr) -> Option<(String, String)> {
        self.plan.as_ref()?.ends().find_map(|e| {
            e.addresses
                .iter()
                .any(|c| c.addr == addr)
                .then(|| (e.netns().to_string(), e.name.clone()))
        })
    }

    /// Interfaces on the same L2 segment as `link`: its veth peer, and when the peer
    /// (or the link itself) is a bridge/OVS port, every other port of that bridge and
    /// their peers. Returned as the far ends packets from `link` can reach.
    pub fn segment(&self, link: &LinkView) -> Vec<&LinkView> {
        let mut out: Vec<&LinkView> = Vec::new();
        let mut bridges: Vec<String> = Vec::new();
        let entry = match &link.peer {
            Some(p) => self.link(&p.netns, &p.name),
            None => None,
        };
        if let Some(m) = &link.master {
            bridges.push(m.name.clone());
        }
        if link.kind == DeviceKind::OvsInternal
            && let Some(o) = self.ovs.get(&link.name)
        {
            bridges.push(o.bridge.clone());
        }
        if let Some(peer) = entry {
            match &peer.master {
                Some(m) => bridges.push(m.name.clone()),
                None => out.push(peer),
            }
        }
        for b in &bridges {
            for port in self.ports_of(b) {
                if std::ptr::eq(port, link) || entry.is_some_and(|e| std::ptr::eq(e, port)) {
                    continue;
                }
                match &port.peer {
                    Some(p) => {
                        if let Some(far) = self.link(&p.netns, &p.name)
                            && !std::ptr::eq(far, link)
                        {
                            out.push(far);
                        }
                    }
                    // OVS internal ports are endpoints themselves.
                    None => out.push(port),
                }
            }
        }
        out
    }

    /// The bridge an interface is wired to: its own master, its veth peer's master, or
    /// the OVS bridge of an internal port.
    pub fn bridge_behind(&self, link: &LinkView) -> Option<String> {
        if let Some(m) = &link.master {
            return Some(m.name.clone());
        }
        if link.kind == DeviceKind::OvsInternal {
            return self.ovs.get(&link.name).map(|o| o.bridge.clone());
        }
        let peer = link.peer.as_ref()?;
        self.link(&peer.netns, &peer.name)?
            .master
            .as_ref()
            .map(|m| m.name.clone())
    }

    /// Live ports of a bridge (Linux master or OVS), including OVS internal ports moved
    /// into namespaces.
    pub fn ports_of(&self, bridge: &str) -> Vec<&LinkView> {
        self.view
            .links
            .iter()
            .filter(|l| {
                l.master.as_ref().is_some_and(|m| m.name == bridge)
                    || (l.kind == DeviceKind::OvsInternal
                        && self.ovs.get(&l.name).is_some_and(|o| o.bridge == bridge))
            })
            .collect()
    }
}

/// Reads net.ipv4.conf.{all,default,IF}.KEY and IPv6 forwarding on one thread inside `ns`.
fn read_sysctls(ns: &str, ifnames: &[String]) -> Result<NsSysctls, DiagnoseError> {
    let mut confs: Vec<String> = vec!["all".into(), "default".into()];
    confs.extend(ifnames.iter().cloned());
    netns::run_in(ns, move || {
        let mut out = NsSysctls::default();
        for conf in &confs {
            for key in CONF_KEYS {
                let path = netns::iface_key_path("ipv4", conf, key);
                if let Some(v) = read_int(&path) {
                    out.v4.insert((conf.clone(), (*key).to_string()), v);
                }
            }
        }
        out.v6_forwarding = read_int(&netns::iface_key_path("ipv6", "all", "forwarding"));
        out
    })
    .map_err(DiagnoseError::from)
}

fn read_int(path: &std::path::Path) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// OVS interfaces of the lab's bridges (also ports whose kernel interface is gone).
fn ovs_interfaces(lab: &str) -> HashMap<String, OvsIface> {
    let mut out = HashMap::new();
    let Some(ep) = ovs::find_running(&wire::ovs_run_dir()) else {
        return out;
    };
    let Ok(mut db) = ovs::Ovsdb::connect(&ep) else {
        return out;
    };
    let Ok(bridges) = db.bridges() else {
        return out;
    };
    for b in bridges {
        if b.external_ids.get(wire::mark::OVS_KEY).map(String::as_str) != Some(lab) {
            continue;
        }
        for p in &b.ports {
            if p.name == b.name {
                continue;
            }
            for i in &p.interfaces {
                out.insert(
                    i.name.clone(),
                    OvsIface {
                        bridge: b.name.clone(),
                        port: p.name.clone(),
                        ofport: i.ofport,
                        error: i.error.clone(),
                        internal: i.iface_type == "internal",
                    },
                );
            }
        }
    }
    out
}
