//! Which interfaces a lab's observers attach to: every veth end (in namespaces and on
//! the host side), bridge and OVS ports, OVS internal ports, and `lo` of every lab
//! namespace — the interfaces a packet of the lab can cross.

use crate::{inspect, netlink::Netlink, netns, topology::HOST};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub lab: String,
    pub netns: String,
    pub ifname: String,
    pub ifindex: u32,
    /// veth, bridge-port, ovs-port, ovs-internal, lo.
    pub kind: String,
    pub peer_netns: String,
    pub peer_ifname: String,
    /// Namespace cookie, as the programs see it.
    pub cookie: u64,
}

/// `--ns` / `--iface` restrictions.
#[derive(Clone, Debug, Default)]
pub struct TargetFilter {
    pub netns: Option<String>,
    pub ifname: Option<String>,
}

impl TargetFilter {
    fn keeps(&self, netns: &str, ifname: &str) -> bool {
        self.netns.as_deref().is_none_or(|n| n == netns)
            && self.ifname.as_deref().is_none_or(|i| i == ifname)
    }
}

pub async fn lab_targets(
    lab: &str,
    filter: &TargetFilter,
) -> Result<Vec<Target>, super::ProbeError> {
    let view = inspect::lab_view(lab).await?;
    let mut out = Vec::new();
    // One cookie read per namespace, not per link: each read enters the namespace on a
    // fresh thread, and `serve` re-lists labs of hundreds of links every few seconds.
    let mut cookies: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for l in &view.links {
        let kind = match (l.kind.as_str(), &l.master) {
            ("lo", _) if l.netns != HOST => "lo",
            ("veth", Some(m)) if m.kind == "ovs" => "ovs-port",
            ("veth", Some(_)) => "bridge-port",
            ("veth", None) => "veth",
            ("ovs-internal", _) => "ovs-internal",
            _ => continue,
        };
        if !filter.keeps(&l.netns, &l.name) {
            continue;
        }
        out.push(Target {
            lab: lab.to_string(),
            netns: l.netns.clone(),
            ifname: l.name.clone(),
            ifindex: l.ifindex,
            kind: kind.to_string(),
            peer_netns: l.peer.as_ref().map(|p| p.netns.clone()).unwrap_or_default(),
            peer_ifname: l.peer.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
            cookie: match cookies.get(&l.netns) {
                Some(c) => *c,
                None => {
                    let c = netns::cookie(&l.netns)?;
                    cookies.insert(l.netns.clone(), c);
                    c
                }
            },
        });
    }
    Ok(out)
}

/// Without a lab: every veth in the root namespace and in every named namespace, and
/// `lo` of every named namespace.
pub async fn host_targets(filter: &TargetFilter) -> Result<Vec<Target>, super::ProbeError> {
    let mut out = Vec::new();
    let mut spaces = vec![HOST.to_string()];
    spaces.extend(netns::list());
    for ns in spaces {
        let nl = Netlink::open(&ns).await?;
        let cookie = netns::cookie(&ns)?;
        for l in nl.links().await? {
            let kind = if l.is_veth() {
                "veth"
            } else if l.name == "lo" && ns != HOST {
                "lo"
            } else {
                continue;
            };
            if !filter.keeps(&ns, &l.name) {
                continue;
            }
            out.push(Target {
                lab: String::new(),
                netns: ns.clone(),
                ifname: l.name.clone(),
                ifindex: l.index,
                kind: kind.to_string(),
                peer_netns: String::new(),
                peer_ifname: String::new(),
                cookie,
            });
        }
    }
    Ok(out)
}
