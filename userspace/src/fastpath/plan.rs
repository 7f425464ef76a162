//! Which ports the fast path serves, from the lab's live state: every host-side veth
//! end that is a port of a Linux or OVS bridge and whose peer sits in a lab namespace.

use crate::inspect::{self, LabView};

use super::FastpathError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub bridge: String,
    /// "linux" or "ovs".
    pub bridge_kind: String,
    pub ifname: String,
    pub ifindex: u32,
    pub peer_netns: String,
    pub peer_ifname: String,
    pub peer_mac: [u8; 6],
}

#[derive(Debug, Default)]
pub struct Plan {
    pub ports: Vec<Port>,
    /// OVS bridges among the ports' bridges, with their datapath type.
    pub ovs_bridges: Vec<(String, String)>,
    /// What the fast path cannot serve, and why — said instead of pretended.
    pub not_applicable: Vec<String>,
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    crate::topology::parse_mac(s)
}

pub fn from_view(view: &LabView) -> Plan {
    let mut plan = Plan::default();
    for l in &view.links {
        match (l.kind.as_str(), &l.master, &l.peer) {
            ("veth", Some(_), Some(_))
                if l.netns == crate::topology::HOST && l.impair.is_some() =>
            {
                // A frame redirected to the peer would skip this port's egress, and with
                // it the impairment set there.
                plan.not_applicable.push(format!(
                    "{}: it is impaired (`vethscope impair`), and the fast path would bypass that",
                    l.name
                ));
            }
            ("veth", Some(master), Some(peer)) if l.netns == crate::topology::HOST => {
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
                plan.ports.push(Port {
                    bridge: master.name.clone(),
                    bridge_kind: master.kind.clone(),
                    ifname: l.name.clone(),
                    ifindex: l.ifindex,
                    peer_netns: peer.netns.clone(),
                    peer_ifname: peer.name.clone(),
                    peer_mac,
                });
            }
            ("ovs-internal", _, _) => plan.not_applicable.push(format!(
                "{}/{}: an OVS internal port is not a veth, so there is no peer to redirect to",
                l.netns, l.name
            )),
            // A namespace-to-namespace pair (direct or same-ns): reported once per pair.
            ("veth", None, Some(peer))
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
    for b in &view.bridges {
        if b.kind == "ovs" && plan.ports.iter().any(|p| p.bridge == b.name) {
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
    Ok(from_view(&view))
}
