//! The live view of a lab, read from the kernel (netlink in every lab namespace and the
//! root namespace) and OVSDB — never from the topology file. Feeds `show` and `graph`.

mod gather;
pub mod graph;
pub mod render;
pub mod sysctls;
mod tables;

pub use gather::{InspectError, lab_links, lab_view};
pub use tables::fill_routes;

use std::collections::BTreeMap;

use crate::topology::BridgeKind;

/// What a live interface is: one of the kinds vethscope makes and tells apart, or the
/// kernel's name for any other (`vxlan`, `tun`, …). Serialized as that name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    Veth,
    /// A Linux bridge.
    Bridge,
    /// An OVS bridge's own port.
    OvsBridge,
    OvsInternal,
    Lo,
    /// Any other kind, by the kernel's name (`other` when the kernel gives none).
    Kernel(String),
}

impl DeviceKind {
    /// The kind of a device the kernel calls `kind` (its IFLA_INFO_KIND).
    pub fn of_kernel(kind: Option<&str>) -> Self {
        match kind {
            Some("veth") => DeviceKind::Veth,
            Some("bridge") => DeviceKind::Bridge,
            Some(k) => DeviceKind::Kernel(k.to_string()),
            None => DeviceKind::Kernel("other".to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            DeviceKind::Veth => "veth",
            DeviceKind::Bridge => "bridge",
            DeviceKind::OvsBridge => "ovs-bridge",
            DeviceKind::OvsInternal => "ovs-internal",
            DeviceKind::Lo => "lo",
            DeviceKind::Kernel(k) => k,
        }
    }

    /// A veth end or an OVS internal port: what impairments and link state apply to.
    pub fn is_end(&self) -> bool {
        matches!(self, DeviceKind::Veth | DeviceKind::OvsInternal)
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for DeviceKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where a link is attached: a Linux bridge (master) or an OVS bridge (port).
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct MasterView {
    pub name: String,
    /// "linux" or "ovs".
    #[schemars(with = "crate::schemas::wire::BridgeKind")]
    pub kind: BridgeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ofport: Option<i64>,
}

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct PeerView {
    #[schemars(with = "crate::schemas::wire::Netns")]
    pub netns: String,
    #[schemars(with = "crate::schemas::wire::Ifname")]
    pub name: String,
    #[schemars(range(min = 1))]
    pub ifindex: u32,
}

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct LinkView {
    #[schemars(with = "crate::schemas::wire::Netns")]
    pub netns: String,
    #[schemars(with = "crate::schemas::wire::Ifname")]
    pub name: String,
    /// veth, bridge, ovs-bridge, ovs-internal, lo, or the kernel's kind.
    #[schemars(with = "String")]
    pub kind: DeviceKind,
    #[schemars(range(min = 1))]
    pub ifindex: u32,
    #[schemars(with = "Option<crate::schemas::wire::Mac>")]
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

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct NamespaceView {
    #[schemars(with = "crate::schemas::wire::Netns")]
    pub name: String,
    pub inode: u64,
    /// Namespace-wide forwarding sysctls (full keys, [`sysctls::NAMESPACE_KEYS`]).
    pub sysctls: BTreeMap<String, String>,
    /// The main table's unicast routes, IPv4 then IPv6.
    pub routes: Vec<RouteView>,
    /// ARP and NDP entries.
    pub neighbours: Vec<NeighbourView>,
}

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct RouteView {
    /// "ipv4" or "ipv6".
    #[schemars(with = "crate::schemas::wire::Family")]
    pub family: String,
    /// "default" or a CIDR.
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::Ifname>")]
    pub dev: Option<String>,
    /// Who made it: "kernel" (connected subnets), "static" (vethscope, `ip route add`), …
    pub protocol: String,
    /// "universe", "link", "host".
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
}

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct NeighbourView {
    #[schemars(with = "crate::schemas::wire::Ifname")]
    pub dev: String,
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::schemas::wire::Mac>")]
    pub mac: Option<String>,
    /// "reachable", "stale", "delay", "probe", "failed", "incomplete", "permanent".
    pub state: String,
}

/// One entry of a bridge's forwarding table (Linux FDB or OVS MAC learning table).
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct FdbView {
    #[schemars(with = "crate::schemas::wire::Mac")]
    pub mac: String,
    /// The port (interface name) the MAC is reached through; the bridge's own name
    /// for its local port.
    pub port: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 4095))]
    pub vlan: Option<u16>,
    /// Linux: "permanent" (the bridge's own MACs), "static", "reachable" (learned),
    /// "stale". OVS: "learned" or "static".
    pub state: String,
    /// OVS only: seconds since the MAC was last seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age: Option<u32>,
}

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct BridgeView {
    #[schemars(with = "crate::schemas::wire::Ifname")]
    pub name: String,
    #[schemars(with = "crate::schemas::wire::BridgeKind")]
    pub kind: BridgeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datapath: Option<String>,
    pub ports: Vec<String>,
    /// The namespace the bridge device lives in (`host` = the root namespace).
    #[schemars(with = "crate::schemas::wire::Netns")]
    pub netns: String,
    /// The forwarding table: where each MAC was learned.
    pub fdb: Vec<FdbView>,
}

#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct LabView {
    /// Version of this JSON layout (docs/show-json.md); bumped on incompatible change.
    #[schemars(extend("const" = SCHEMA_VERSION))]
    pub schema_version: u32,
    #[schemars(with = "crate::schemas::wire::NonEmpty")]
    pub lab: String,
    /// "up", "creating" (an `up` is running or died), "changing" (an `up FILE` on the
    /// running lab is applying a change, or died), or "unrecorded" (marks only).
    #[schemars(with = "crate::schemas::wire::LabStatus")]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `show --json` writes kinds as the text it always wrote (docs/show-json-schema.json).
    #[test]
    fn kinds_serialize_as_their_names() {
        let kinds = [
            (DeviceKind::of_kernel(Some("veth")), "veth"),
            (DeviceKind::of_kernel(Some("bridge")), "bridge"),
            (DeviceKind::OvsBridge, "ovs-bridge"),
            (DeviceKind::OvsInternal, "ovs-internal"),
            (DeviceKind::Lo, "lo"),
            (DeviceKind::of_kernel(Some("vxlan")), "vxlan"),
            (DeviceKind::of_kernel(None), "other"),
        ];
        for (kind, name) in kinds {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
            assert_eq!(kind.to_string(), name);
        }
        assert_eq!(serde_json::to_string(&BridgeKind::Ovs).unwrap(), "\"ovs\"");
        assert_eq!(
            serde_json::to_string(&BridgeKind::Linux).unwrap(),
            "\"linux\""
        );
    }
}
