//! The fast path on OVS's userspace datapath.
//!
//! ovs-vswitchd (netdev datapath) reads its ports through AF_PACKET, which sees every
//! frame before TC ingress: a frame the fast path redirected would also be forwarded
//! by OVS — a duplicate. So for every fast-pathed port and every destination MAC the
//! fast path serves, an OpenFlow rule above NORMAL drops the OVS copy. With the rules
//! in place the namespace ends can keep TX checksum offload (the fast path hands the
//! frame to the peer veth, which copes with CHECKSUM_PARTIAL), which is where the
//! throughput comes from. The kernel datapath runs after TC ingress and never sees a
//! redirected frame, so it needs none of this.

use super::{FastpathError, Plan, record::Record};
use crate::{netlink::link::format_mac, netns, ovs, wire};

/// "vethscop" in ASCII: the cookie that marks our flows.
pub const COOKIE: u64 = 0x7665_7468_7363_6f70;

fn endpoint(lab: &str) -> Result<ovs::OvsEndpoint, FastpathError> {
    ovs::find_running(&wire::ovs_run_dir()).ok_or_else(|| FastpathError::NoOvs {
        lab: lab.to_string(),
    })
}

pub fn install(lab: &str, plan: &Plan, record: &mut Record) -> Result<Vec<String>, FastpathError> {
    let netdev: Vec<&String> = plan
        .ovs_bridges
        .iter()
        .filter(|(_, dp)| dp == ovs::DATAPATH_NETDEV)
        .map(|(b, _)| b)
        .collect();
    if netdev.is_empty() {
        return Ok(Vec::new());
    }
    let ep = endpoint(lab)?;
    for bridge in &netdev {
        let ports: Vec<_> = plan.ports.iter().filter(|p| &&p.bridge == bridge).collect();
        // Port names come from live state (a foreign interface may sit on a lab bridge):
        // one with `,` `=` or spaces would change the match, so it is refused.
        if let Some(bad) = ports.iter().find(|p| {
            crate::topology::names::check(crate::topology::names::NameKind::Interface, &p.ifname)
                .is_err()
        }) {
            return Err(FastpathError::OpenFlowName {
                lab: lab.to_string(),
                bridge: (*bridge).clone(),
                ifname: bad.ifname.clone(),
            });
        }
        let mut flows = Vec::new();
        for inp in &ports {
            for dst in &ports {
                // Only what the fast path redirects: the same VLAN, the destination
                // untagged there. Anything else OVS must still forward itself.
                if inp.ifname == dst.ifname || !dst.egress_vlans.contains(&inp.ingress_vlan) {
                    continue;
                }
                flows.push(format!(
                    "cookie={COOKIE:#x},priority=40000,in_port={},vlan_tci=0x0000,dl_dst={},actions=drop",
                    inp.ifname,
                    format_mac(&dst.peer_mac)
                ));
            }
        }
        // Recorded before the change: a kill right after it leaves nothing unrecorded.
        if !record.ovs_flow_bridges.contains(bridge) {
            record.ovs_flow_bridges.push((*bridge).clone());
            super::record::write(lab, record)?;
        }
        // Replace, not add: a refresh after MACs changed must not keep old rules.
        ovs::ofctl_del_flows_cookie(&ep, bridge, COOKIE).map_err(|e| FastpathError::ovs(lab, e))?;
        ovs::ofctl_add_flows(&ep, bridge, &flows).map_err(|e| FastpathError::ovs(lab, e))?;
        super::fault::point("OVS drop flows added")?;
        // The fast-pathed ends may checksum in hardware again (see the module docs).
        for p in ports {
            let key = (p.peer_netns.clone(), p.peer_ifname.clone());
            if record.tx_checksum_on.contains(&key) {
                continue;
            }
            record.tx_checksum_on.push(key);
            super::record::write(lab, record)?;
            set_tx_checksum(lab, &p.peer_netns, &p.peer_ifname, true)?;
        }
    }
    Ok(netdev.into_iter().cloned().collect())
}

pub fn remove(lab: &str, record: &Record) -> Result<(), FastpathError> {
    // Checksums in software again before OVS carries TCP again.
    for (ns, ifname) in &record.tx_checksum_on {
        if netns::exists(ns) {
            set_tx_checksum(lab, ns, ifname, false)?;
        }
    }
    if record.ovs_flow_bridges.is_empty() {
        return Ok(());
    }
    let Some(ep) = ovs::find_running(&wire::ovs_run_dir()) else {
        return Ok(());
    };
    for bridge in &record.ovs_flow_bridges {
        // The bridge went with its lab already: nothing to remove.
        if let Ok(false) = ovs::Ovsdb::connect(&ep).and_then(|mut db| db.bridge_exists(bridge)) {
            continue;
        }
        ovs::ofctl_del_flows_cookie(&ep, bridge, COOKIE).map_err(|e| FastpathError::ovs(lab, e))?;
    }
    Ok(())
}

fn set_tx_checksum(lab: &str, ns: &str, ifname: &str, on: bool) -> Result<(), FastpathError> {
    let name = ifname.to_string();
    netns::run_in(ns, || wire::set_tx_checksum(&name, on))
        .map_err(|source| FastpathError::EnterNetns {
            lab: lab.to_string(),
            netns: ns.to_string(),
            source,
        })?
        .map_err(|e| {
            FastpathError::io(
                lab,
                format!("set TX checksum offload of {ifname} in namespace {ns}"),
                e,
            )
        })
}
