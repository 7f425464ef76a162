//! Which interfaces a lab's observers attach to: every veth end (in namespaces and on
//! the host side), bridge and OVS ports, OVS internal ports, and `lo` of every lab
//! namespace — the interfaces a packet of the lab can cross.

use crate::inspect::DeviceKind;
use crate::topology::BridgeKind;
use crate::{inspect, netlink::Netlink, netns, topology::HOST};

/// What an observed interface is in its lab's wiring: the `kind` of a trace target and
/// the `kind` label of the per-link metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkKind {
    /// A veth end that is not a bridge port.
    Veth,
    /// A veth end enslaved to a Linux bridge.
    BridgePort,
    /// A veth end that is a port of an OVS bridge.
    OvsPort,
    /// An OVS internal port.
    OvsInternal,
    /// `lo` of a lab namespace.
    Lo,
}

impl LinkKind {
    /// What a link of `show`'s view is to an observer; `None` for links nothing
    /// attaches to (bridges, the root namespace's `lo`).
    pub fn of_view(l: &crate::inspect::LinkView) -> Option<LinkKind> {
        Some(match (&l.kind, &l.master) {
            (DeviceKind::Lo, _) if l.netns != HOST => LinkKind::Lo,
            (DeviceKind::Veth, Some(m)) if m.kind == BridgeKind::Ovs => LinkKind::OvsPort,
            (DeviceKind::Veth, Some(_)) => LinkKind::BridgePort,
            (DeviceKind::Veth, None) => LinkKind::Veth,
            (DeviceKind::OvsInternal, _) => LinkKind::OvsInternal,
            _ => return None,
        })
    }

    pub const ALL: [LinkKind; 5] = [
        LinkKind::Veth,
        LinkKind::BridgePort,
        LinkKind::OvsPort,
        LinkKind::OvsInternal,
        LinkKind::Lo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Veth => "veth",
            LinkKind::BridgePort => "bridge-port",
            LinkKind::OvsPort => "ovs-port",
            LinkKind::OvsInternal => "ovs-internal",
            LinkKind::Lo => "lo",
        }
    }

    /// A port of a Linux or OVS bridge.
    pub fn is_bridge_port(self) -> bool {
        matches!(self, LinkKind::BridgePort | LinkKind::OvsPort)
    }
}

impl std::fmt::Display for LinkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LinkKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown link kind `{s}`"))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub lab: String,
    pub netns: String,
    pub ifname: String,
    pub ifindex: u32,
    pub kind: LinkKind,
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
        let Some(kind) = LinkKind::of_view(l) else {
            continue;
        };
        if !filter.keeps(&l.netns, &l.name) {
            continue;
        }
        out.push(Target {
            lab: lab.to_string(),
            netns: l.netns.clone(),
            ifname: l.name.clone(),
            ifindex: l.ifindex,
            kind,
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
                LinkKind::Veth
            } else if l.name == "lo" && ns != HOST {
                LinkKind::Lo
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
                kind,
                peer_netns: String::new(),
                peer_ifname: String::new(),
                cookie,
            });
        }
    }
    Ok(out)
}
