//! Which ports the fast path serves, from the lab's live state: every host-side veth
//! end that is a port of a Linux or OVS bridge, whose peer sits in a lab namespace,
//! and that the bridge forwards from and to. Each port carries its forwarding domain
//! (its bridge) and VLAN, so a frame is only ever redirected where the bridge itself
//! would send it.

use crate::inspect::DeviceKind;
use crate::topology::BridgeKind;
use std::collections::BTreeMap;

use crate::{
    inspect::{self, LabView},
    netlink::{Netlink, bridge::BridgeFacts},
    ovs, wire,
};

use super::FastpathError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub bridge: String,
    pub bridge_kind: BridgeKind,
    pub ifname: String,
    pub ifindex: u32,
    pub peer_netns: String,
    pub peer_ifname: String,
    pub peer_mac: [u8; 6],
    /// The bridge's forwarding domain number (see [`domain_of`]).
    pub domain: u32,
    /// The VLAN untagged frames from this port belong to (0 without VLANs).
    pub ingress_vlan: u16,
    /// The VLANs whose frames leave this port untagged: where it can be a destination.
    pub egress_vlans: Vec<u16>,
    pub isolated: bool,
    /// The bridge classifies frames by their 802.1Q tag.
    pub vlan_aware: bool,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub ports: Vec<Port>,
    /// OVS bridges among the ports' bridges, with their datapath type.
    pub ovs_bridges: Vec<(String, String)>,
    /// What the fast path cannot serve, and why — said instead of pretended.
    pub not_applicable: Vec<String>,
}

/// What the bridges say about their ports, gathered before planning.
#[derive(Debug, Default)]
pub struct Facts {
    pub linux: BridgeFacts,
    /// OVS port name → VLAN settings.
    pub ovs: BTreeMap<String, ovs::PortVlan>,
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    crate::topology::parse_mac(s)
}

/// A stable number for a bridge (FNV-1a of kind and name): the same on every
/// `enable`, so a refresh never briefly gives one bridge's number to another.
pub fn domain_of(kind: &str, name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in kind.bytes().chain([b'/']).chain(name.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

/// How the bridge treats one port, or why the fast path must leave it alone.
#[derive(Debug)]
struct PortRule {
    ingress_vlan: u16,
    egress_vlans: Vec<u16>,
    isolated: bool,
    vlan_aware: bool,
}

fn linux_rule(facts: &Facts, bridge_ifindex: u32, port_ifindex: u32) -> Result<PortRule, String> {
    let Some(br) = facts.linux.bridges.get(&bridge_ifindex) else {
        return Err("its bridge's settings could not be read".into());
    };
    if br.stp {
        // Port states then change at any moment; a redirect would skip a blocked port.
        return Err("its bridge runs STP, whose port states can change at any time".into());
    }
    let Some(p) = facts.linux.ports.get(&port_ifindex) else {
        return Err("its bridge port settings could not be read".into());
    };
    if !p.forwarding {
        return Err("the bridge port is not in the forwarding state".into());
    }
    if p.locked {
        return Err("the bridge port is locked (802.1X)".into());
    }
    if !br.vlan_filtering {
        return Ok(PortRule {
            ingress_vlan: 0,
            egress_vlans: vec![0],
            isolated: p.isolated,
            vlan_aware: false,
        });
    }
    let vlans = facts
        .linux
        .vlans
        .get(&port_ifindex)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(pvid) = vlans.iter().find(|v| v.pvid) else {
        return Err("the bridge filters VLANs and the port has no PVID".into());
    };
    Ok(PortRule {
        ingress_vlan: pvid.vid,
        egress_vlans: vlans.iter().filter(|v| v.untagged).map(|v| v.vid).collect(),
        isolated: p.isolated,
        vlan_aware: true,
    })
}

fn ovs_rule(facts: &Facts, port: &str) -> Result<PortRule, String> {
    let v = facts.ovs.get(port).cloned().unwrap_or_default();
    if !v.trunks.is_empty() {
        return Err(format!("the OVS port trunks VLANs {:?}", v.trunks));
    }
    let vlan = match (v.vlan_mode.as_deref(), v.tag) {
        // An access port: untagged frames are in VLAN `tag`, and leave untagged.
        (None | Some("access"), Some(tag)) => u16::try_from(tag).map_err(|_| "bad tag")?,
        // No tag, no trunks: a trunk of every VLAN whose untagged frames are VLAN 0.
        (None | Some("trunk"), None) => 0,
        (mode, tag) => {
            return Err(format!(
                "the OVS port's vlan_mode {} with tag {tag:?} is not served",
                mode.unwrap_or("(default)")
            ));
        }
    };
    Ok(PortRule {
        ingress_vlan: vlan,
        egress_vlans: vec![vlan],
        isolated: false,
        vlan_aware: true,
    })
}

pub fn from_view(view: &LabView, facts: &Facts) -> Plan {
    let mut plan = Plan::default();
    let bridge_ifindex = |name: &str| {
        view.links
            .iter()
            .find(|l| l.netns == crate::topology::HOST && l.name == name)
            .map(|l| l.ifindex)
    };
    for l in &view.links {
        match (&l.kind, &l.master, &l.peer) {
            (DeviceKind::Veth, Some(_), Some(_))
                if l.netns == crate::topology::HOST && l.impair.is_some() =>
            {
                // A frame redirected to the peer would skip this port's egress, and with
                // it the impairment set there.
                plan.not_applicable.push(format!(
                    "{}: it is impaired (`vethscope impair`), and the fast path would bypass that",
                    l.name
                ));
            }
            (DeviceKind::Veth, Some(master), Some(peer)) if l.netns == crate::topology::HOST => {
                let mac = view
                    .link(&peer.netns, &peer.name)
                    .and_then(|p| p.mac.as_deref())
                    .and_then(parse_mac);
                let Some(peer_mac) = mac else {
                    plan.not_applicable.push(format!(
                        "{}: the MAC of its peer {}/{} is unknown",
                        l.name, peer.netns, peer.name
                    ));
                    continue;
                };
                let rule = if master.kind == BridgeKind::Ovs {
                    ovs_rule(facts, &l.name)
                } else {
                    match bridge_ifindex(&master.name) {
                        Some(b) => linux_rule(facts, b, l.ifindex),
                        None => Err("its bridge is not in the root namespace".into()),
                    }
                };
                let rule = match rule {
                    Ok(r) => r,
                    Err(why) => {
                        plan.not_applicable
                            .push(format!("{} (bridge {}): {why}", l.name, master.name));
                        continue;
                    }
                };
                plan.ports.push(Port {
                    bridge: master.name.clone(),
                    bridge_kind: master.kind,
                    ifname: l.name.clone(),
                    ifindex: l.ifindex,
                    peer_netns: peer.netns.clone(),
                    peer_ifname: peer.name.clone(),
                    peer_mac,
                    domain: domain_of(master.kind.as_str(), &master.name),
                    ingress_vlan: rule.ingress_vlan,
                    egress_vlans: rule.egress_vlans,
                    isolated: rule.isolated,
                    vlan_aware: rule.vlan_aware,
                });
            }
            (DeviceKind::OvsInternal, _, _) => plan.not_applicable.push(format!(
                "{}/{}: an OVS internal port is not a veth, so there is no peer to redirect to",
                l.netns, l.name
            )),
            // A namespace-to-namespace pair (direct or same-ns): reported once per pair.
            (DeviceKind::Veth, None, Some(peer))
                if l.netns != crate::topology::HOST
                    && peer.netns != crate::topology::HOST
                    && (l.netns.as_str(), l.name.as_str())
                        < (peer.netns.as_str(), peer.name.as_str()) =>
            {
                plan.not_applicable.push(format!(
                    "{}/{} — {}/{}: a veth pair between namespaces has no bridge to bypass",
                    l.netns, l.name, peer.netns, peer.name
                ));
            }
            _ => {}
        }
    }
    // Two bridges with one number would share a table: serve neither rather than mix them.
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    let mut clash = Vec::new();
    for p in &plan.ports {
        if let Some(other) = seen.insert(p.domain, &p.bridge)
            && other != p.bridge
        {
            clash.push(p.domain);
        }
    }
    if !clash.is_empty() {
        plan.ports.retain(|p| {
            let keep = !clash.contains(&p.domain);
            if !keep {
                plan.not_applicable.push(format!(
                    "{} (bridge {}): its bridge's table number clashes with another bridge's",
                    p.ifname, p.bridge
                ));
            }
            keep
        });
    }
    for b in &view.bridges {
        if b.kind == BridgeKind::Ovs && plan.ports.iter().any(|p| p.bridge == b.name) {
            plan.ovs_bridges
                .push((b.name.clone(), b.datapath.clone().unwrap_or_default()));
        }
    }
    plan
}

/// The plan, or an error when there is nothing the fast path could serve.
pub async fn build(lab: &str) -> Result<Plan, FastpathError> {
    let plan = build_lenient(lab).await?;
    if plan.ports.is_empty() {
        let why = if plan.not_applicable.is_empty() {
            "no namespaces meet at a bridge through veth pairs".to_string()
        } else {
            plan.not_applicable.join("; ")
        };
        return Err(FastpathError::NotApplicable {
            lab: lab.to_string(),
            reason: format!("the fast path does not apply: {why}"),
        });
    }
    Ok(plan)
}

pub async fn build_lenient(lab: &str) -> Result<Plan, FastpathError> {
    let view = inspect::lab_view(lab).await?;
    let facts = gather_facts(lab, &view).await?;
    Ok(from_view(&view, &facts))
}

async fn gather_facts(lab: &str, view: &LabView) -> Result<Facts, FastpathError> {
    let mut facts = Facts::default();
    let has = |kind: BridgeKind| {
        view.links
            .iter()
            .any(|l| l.master.as_ref().is_some_and(|m| m.kind == kind))
    };
    if has(BridgeKind::Linux) || view.links.iter().any(|l| l.master.is_some()) {
        let nl = Netlink::open(crate::topology::HOST)
            .await
            .map_err(|e| FastpathError::netlink(lab, e))?;
        facts.linux = nl
            .bridge_facts()
            .await
            .map_err(|e| FastpathError::netlink(lab, e))?;
    }
    if has(BridgeKind::Ovs)
        && let Some(ep) = ovs::find_running(&wire::ovs_run_dir())
    {
        facts.ovs = ovs::Ovsdb::connect(&ep)
            .and_then(|mut db| db.port_vlans())
            .map_err(|e| FastpathError::ovs(lab, e))?;
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_stable_and_distinct() {
        assert_eq!(domain_of("linux", "br0"), domain_of("linux", "br0"));
        assert_ne!(domain_of("linux", "br0"), domain_of("linux", "br1"));
        assert_ne!(domain_of("linux", "br0"), domain_of("ovs", "br0"));
        assert_ne!(domain_of("linux", ""), 0);
    }

    fn linux_facts() -> Facts {
        use crate::netlink::bridge::{BridgeSettings, PortSettings, PortVlan as V};
        let mut f = Facts::default();
        let fwd = PortSettings {
            forwarding: true,
            ..Default::default()
        };
        f.linux.bridges.insert(1, BridgeSettings::default());
        f.linux.bridges.insert(
            2,
            BridgeSettings {
                stp: true,
                ..Default::default()
            },
        );
        f.linux.bridges.insert(
            3,
            BridgeSettings {
                vlan_filtering: true,
                ..Default::default()
            },
        );
        f.linux.ports.insert(10, fwd.clone());
        f.linux.ports.insert(11, PortSettings::default());
        f.linux.ports.insert(
            12,
            PortSettings {
                locked: true,
                ..fwd.clone()
            },
        );
        f.linux.ports.insert(
            13,
            PortSettings {
                isolated: true,
                ..fwd.clone()
            },
        );
        f.linux.ports.insert(14, fwd.clone());
        f.linux.ports.insert(15, fwd);
        let v = |vid, pvid, untagged| V {
            vid,
            pvid,
            untagged,
        };
        f.linux.vlans.insert(
            14,
            vec![v(10, true, true), v(20, false, true), v(30, false, false)],
        );
        f.linux.vlans.insert(15, vec![v(10, false, false)]);
        f
    }

    #[test]
    fn linux_ports_are_served_only_where_the_bridge_forwards() {
        let f = linux_facts();
        let plain = linux_rule(&f, 1, 10).expect("forwarding port");
        assert_eq!((plain.ingress_vlan, plain.egress_vlans), (0, vec![0]));
        assert!(!plain.vlan_aware && !plain.isolated);
        assert!(linux_rule(&f, 2, 10).unwrap_err().contains("STP"));
        assert!(
            linux_rule(&f, 1, 11)
                .unwrap_err()
                .contains("forwarding state")
        );
        assert!(linux_rule(&f, 1, 12).unwrap_err().contains("locked"));
        assert!(linux_rule(&f, 1, 13).expect("isolated is served").isolated);
        assert!(linux_rule(&f, 9, 10).is_err(), "unknown bridge");
        // VLAN filtering: ingress by PVID, a destination only where it egresses untagged.
        let v = linux_rule(&f, 3, 14).expect("port with a PVID");
        assert_eq!((v.ingress_vlan, v.egress_vlans), (10, vec![10, 20]));
        assert!(v.vlan_aware);
        assert!(linux_rule(&f, 3, 15).unwrap_err().contains("no PVID"));
    }

    #[test]
    fn ovs_ports_with_trunks_or_odd_modes_are_left_alone() {
        let mut facts = Facts::default();
        let set = |f: &mut Facts, name: &str, v: ovs::PortVlan| {
            f.ovs.insert(name.to_string(), v);
        };
        set(
            &mut facts,
            "acc",
            ovs::PortVlan {
                tag: Some(10),
                ..Default::default()
            },
        );
        set(
            &mut facts,
            "trk",
            ovs::PortVlan {
                trunks: vec![10, 20],
                ..Default::default()
            },
        );
        set(
            &mut facts,
            "nat",
            ovs::PortVlan {
                tag: Some(10),
                vlan_mode: Some("native-untagged".into()),
                ..Default::default()
            },
        );
        let acc = ovs_rule(&facts, "acc").expect("access port served");
        assert_eq!((acc.ingress_vlan, acc.egress_vlans), (10, vec![10]));
        let plain = ovs_rule(&facts, "none").expect("untagged port served");
        assert_eq!((plain.ingress_vlan, plain.egress_vlans), (0, vec![0]));
        assert!(ovs_rule(&facts, "trk").is_err());
        assert!(ovs_rule(&facts, "nat").is_err());
    }
}
