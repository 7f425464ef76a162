//! The live view of a lab, read from the kernel (netlink in every lab namespace and the
//! root namespace) and OVSDB — never from the topology file. Feeds `show` and `graph`.

mod gather;
pub mod graph;
pub mod render;

pub use gather::{InspectError, lab_view};

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
}

#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct NamespaceView {
    pub name: String,
    pub inode: u64,
}

#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct BridgeView {
    pub name: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datapath: Option<String>,
    pub ports: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct LabView {
    pub lab: String,
    /// "up", "creating" (an `up` is running or died), or "unrecorded" (marks only).
    pub status: String,
    pub namespaces: Vec<NamespaceView>,
    pub bridges: Vec<BridgeView>,
    pub links: Vec<LinkView>,
}

impl LabView {
    pub fn link(&self, netns: &str, name: &str) -> Option<&LinkView> {
        self.links
            .iter()
            .find(|l| l.netns == netns && l.name == name)
    }
}
