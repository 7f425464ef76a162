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
    // Links, peers and masters are all an observer needs: not the routes, neighbours
    // and sysctls of every namespace (a second pass, ~3.7 s of a 1,000-namespace lab).
    let view = inspect::lab_links(lab).await?;
    let kept: Vec<(&inspect::LinkView, LinkKind)> = view
        .links
        .iter()
        .filter_map(|l| Some((l, LinkKind::of_view(l)?)))
        .filter(|(l, _)| filter.keeps(&l.netns, &l.name))
        .collect();
    // One cookie read per namespace, on the pool: `serve` re-lists labs of thousands
    // of links every few seconds, and one thread per namespace in turn was most of it.
    let mut names: Vec<&str> = kept.iter().map(|(l, _)| l.netns.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let read = netns::pool::map(&names, |name| {
        netns::enter(name)?;
        netns::cookie_here().map_err(|source| netns::NetnsError::Io {
            what: format!("read the cookie of namespace {name}"),
            source,
        })
    });
    let mut cookies: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for (name, cookie) in names.iter().zip(read) {
        cookies.insert(name, cookie?);
    }
    Ok(kept
        .into_iter()
        .map(|(l, kind)| Target {
            lab: lab.to_string(),
            netns: l.netns.clone(),
            ifname: l.name.clone(),
            ifindex: l.ifindex,
            kind,
            peer_netns: l.peer.as_ref().map(|p| p.netns.clone()).unwrap_or_default(),
            peer_ifname: l.peer.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
            cookie: cookies[l.netns.as_str()],
        })
        .collect())
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
