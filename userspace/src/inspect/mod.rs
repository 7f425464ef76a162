//! The live view of a lab, read from the kernel (netlink in every lab namespace and the
//! root namespace) and OVSDB — never from the topology file. Feeds `show` and `graph`.

mod gather;
pub mod graph;
pub mod render;
pub mod sysctls;
mod tables;

pub use gather::{InspectError, lab_links, lab_view};

use std::collections::BTreeMap;

/// Where a link is attached: a Linux bridge (master) or an OVS bridge (port).
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct MasterView {
    pub name: String,
    /// "linux" or "ovs".
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ofport: Option<i64>,
}

#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct PeerView {
    pub netns: String,
    pub name: String,
    pub ifindex: u32,
}

#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct LinkView {
    pub netns: String,
    pub name: String,
    /// veth, bridge, ovs-bridge, ovs-internal, lo, or the kernel's kind.
    pub kind: String,
    pub ifindex: u32,
    pub mac: Option<String>,
    pub mtu: u32,
    pub state: crate::netlink::LinkState,
    pub addresses: Vec<String>,
    pub peer: Option<PeerView>,
    pub master: Option<MasterView>,
    /// Administratively up (`link LAB NS/IFNAME down` clears it on both ends).
    pub admin_up: bool,
    /// Impairment of packets leaving this end (`impair`), when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impair: Option<crate::impair::Impairment>,
    /// Forwarding-related sysctls of this interface (`ipv4.rp_filter`, …; see
    /// [`sysctls::INTERFACE_KEYS`]); empty for `lo`.
    pub sysctls: BTreeMap<String, String>,
}

#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct NamespaceView {
    pub name: String,
    pub inode: u64,
    /// Namespace-wide forwarding sysctls (full keys, [`sysctls::NAMESPACE_KEYS`]).
    pub sysctls: BTreeMap<String, String>,
    /// The main table's unicast routes, IPv4 then IPv6.
    pub routes: Vec<RouteView>,
    /// ARP and NDP entries.
    pub neighbours: Vec<NeighbourView>,
}

#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct RouteView {
    /// "ipv4" or "ipv6".
    pub family: String,
    /// "default" or a CIDR.
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// Who made it: "kernel" (connected subnets), "static" (vethscope, `ip route add`), …
    pub protocol: String,
    /// "universe", "link", "host".
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
}

#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct NeighbourView {
    pub dev: String,
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// "reachable", "stale", "delay", "probe", "failed", "incomplete", "permanent".
    pub state: String,
}

/// One entry of a bridge's forwarding table (Linux FDB or OVS MAC learning table).
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct FdbView {
    pub mac: String,
    /// The port (interface name) the MAC is reached through; the bridge's own name
    /// for its local port.
    pub port: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Linux: "permanent" (the bridge's own MACs), "static", "reachable" (learned),
    /// "stale". OVS: "learned" or "static".
    pub state: String,
    /// OVS only: seconds since the MAC was last seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age: Option<u32>,
}

#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct BridgeView {
    pub name: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datapath: Option<String>,
    pub ports: Vec<String>,
    /// The namespace the bridge device lives in (`host` = the root namespace).
    pub netns: String,
    /// The forwarding table: where each MAC was learned.
    pub fdb: Vec<FdbView>,
}

#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct LabView {
    /// Version of this JSON layout (docs/show-json.md); bumped on incompatible change.
    pub schema_version: u32,
    pub lab: String,
    /// "up", "creating" (an `up` is running or died), or "unrecorded" (marks only).
    pub status: String,
    pub namespaces: Vec<NamespaceView>,
    pub bridges: Vec<BridgeView>,
    pub links: Vec<LinkView>,
}

/// The `schema_version` of `show --json` this build writes.
pub const SCHEMA_VERSION: u32 = 1;

impl LinkView {
    /// Administratively up. `nocarrier` counts as up here: the carrier follows the
    /// veth peer (which is then itself down) and the kernel reports it with a delay
    /// (linkwatch), so right after `up` a healthy end can still read `nocarrier`.
    pub fn state_is_up(&self) -> bool {
        self.state != crate::netlink::LinkState::Down
    }
}

impl LabView {
    pub fn link(&self, netns: &str, name: &str) -> Option<&LinkView> {
        self.links
            .iter()
            .find(|l| l.netns == netns && l.name == name)
    }
}
