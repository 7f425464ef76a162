//! How Linux bridges treat their ports, read in two dumps for all interfaces at once
//! (never one request per port): STP and VLAN filtering of each bridge; state,
//! isolation and 802.1X lock of each port; and, for VLAN-filtering bridges, each
//! port's VLANs. The fast path needs these to redirect only where the bridge would.

use std::collections::HashMap;

use futures::TryStreamExt;
use rtnetlink::packet_route::{
    AddressFamily,
    link::{
        AfSpecBridge, BridgePortState, BridgeStpState, BridgeVlanInfoFlags, InfoBridge,
        InfoBridgePort, InfoData, InfoPortData, LinkAttribute, LinkExtentMask, LinkInfo,
        LinkMessage,
    },
};

use super::{Netlink, NetlinkError};

/// A Linux bridge's settings that change what it forwards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeSettings {
    pub stp: bool,
    pub vlan_filtering: bool,
}

/// One bridge port's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSettings {
    /// STP port state is "forwarding".
    pub forwarding: bool,
    pub isolated: bool,
    /// 802.1X locked port: the bridge drops frames from unauthorized sources.
    pub locked: bool,
}

/// One VLAN of a port on a VLAN-filtering bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortVlan {
    pub vid: u16,
    /// Untagged frames arriving on the port belong to this VLAN.
    pub pvid: bool,
    /// Frames of this VLAN leave the port untagged.
    pub untagged: bool,
}

#[derive(Clone, Debug, Default)]
pub struct BridgeFacts {
    /// By bridge ifindex.
    pub bridges: HashMap<u32, BridgeSettings>,
    /// By port ifindex.
    pub ports: HashMap<u32, PortSettings>,
    /// By port ifindex; only read when some bridge filters VLANs.
    pub vlans: HashMap<u32, Vec<PortVlan>>,
}

impl Netlink {
    /// Bridges and bridge ports of this namespace and how they forward.
    pub async fn bridge_facts(&self) -> Result<BridgeFacts, NetlinkError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.fail("list bridges and bridge ports", "", e))?;
        let mut facts = BridgeFacts::default();
        for m in &msgs {
            let index = m.header.index;
            for info in m.attributes.iter().filter_map(|a| match a {
                LinkAttribute::LinkInfo(i) => Some(i),
                _ => None,
            }) {
                for i in info {
                    match i {
                        LinkInfo::Data(InfoData::Bridge(opts)) => {
                            facts.bridges.insert(index, bridge_settings(opts));
                        }
                        LinkInfo::PortData(InfoPortData::BridgePort(opts)) => {
                            facts.ports.insert(index, port_settings(opts));
                        }
                        _ => {}
                    }
                }
            }
        }
        if facts.bridges.values().any(|b| b.vlan_filtering) {
            facts.vlans = self.port_vlans().await?;
        }
        Ok(facts)
    }

    async fn port_vlans(&self) -> Result<HashMap<u32, Vec<PortVlan>>, NetlinkError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .set_filter_mask(AddressFamily::Bridge, vec![LinkExtentMask::Brvlan])
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.fail("list the VLANs of bridge ports", "", e))?;
        let mut out: HashMap<u32, Vec<PortVlan>> = HashMap::new();
        for m in &msgs {
            for a in &m.attributes {
                let LinkAttribute::AfSpecBridge(spec) = a else {
                    continue;
                };
                let vlans = out.entry(m.header.index).or_default();
                for s in spec {
                    if let AfSpecBridge::VlanInfo(v) = s {
                        vlans.push(PortVlan {
                            vid: v.vid,
                            pvid: v.flags.contains(BridgeVlanInfoFlags::Pvid),
                            untagged: v.flags.contains(BridgeVlanInfoFlags::Untagged),
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

fn bridge_settings(opts: &[InfoBridge]) -> BridgeSettings {
    let mut s = BridgeSettings::default();
    for o in opts {
        match o {
            InfoBridge::StpState(st) => s.stp = !matches!(st, BridgeStpState::Disabled),
            InfoBridge::VlanFiltering(on) => s.vlan_filtering = *on,
            _ => {}
        }
    }
    s
}

fn port_settings(opts: &[InfoBridgePort]) -> PortSettings {
    let mut s = PortSettings::default();
    for o in opts {
        match o {
            InfoBridgePort::State(st) => s.forwarding = matches!(st, BridgePortState::Forwarding),
            InfoBridgePort::Isolated(on) => s.isolated = *on,
            InfoBridgePort::Locked(on) => s.locked = *on,
            _ => {}
        }
    }
    s
}
