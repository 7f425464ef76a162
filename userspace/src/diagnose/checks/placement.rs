//! Lab-wide checks against the plan: interfaces that are missing, veth peers that are
//! not where the lab puts them, bridge ports detached or on another bridge, STP states
//! that block, OVS ports OVS cannot use, addresses configured twice.

use crate::inspect::DeviceKind;
use std::collections::HashMap;
use std::net::IpAddr;

use crate::diagnose::finding::{Code, Finding, Findings, Fix};
use crate::diagnose::live::Live;
use crate::topology::{HOST, Link, Place};

/// Linux bridge port states (include/uapi/linux/if_bridge.h).
const BR_STATE_LISTENING: u8 = 1;
const BR_STATE_LEARNING: u8 = 2;
const BR_STATE_BLOCKING: u8 = 4;

fn recreate(live: &Live) -> Fix {
    Fix::advice(format!(
        "vethscope down {lab} && vethscope up <the lab's file or scenario> (recreates it)",
        lab = live.lab
    ))
}

pub fn missing_and_misplaced(live: &Live, out: &mut Findings) {
    let Some(plan) = &live.plan else { return };
    for ns in plan.netns_names() {
        if !live.has_netns(ns) {
            out.push(Finding::new(
                Code::MissingInterface,
                ns,
                "",
                format!("namespace {ns} of lab {} does not exist", live.lab),
                format!("/run/netns/{ns} is missing"),
                Some(recreate(live)),
            ));
        }
    }
    for link in &plan.links {
        for end in link.ends() {
            let ns = end.netns();
            if !live.has_netns(ns) {
                continue;
            }
            // An OVS port whose interface is gone is reported by the OVS check.
            if ns == HOST && live.ovs.contains_key(&end.name) {
                continue;
            }
            if live.link(ns, &end.name).is_none() {
                let addrs: Vec<String> = end.addresses.iter().map(|c| c.to_string()).collect();
                out.push(Finding::new(
                    Code::MissingInterface,
                    ns,
                    &end.name,
                    format!(
                        "interface {} of lab {} is missing from namespace {ns}{}",
                        end.name,
                        live.lab,
                        if addrs.is_empty() {
                            String::new()
                        } else {
                            format!(", so {} is nowhere", addrs.join(", "))
                        }
                    ),
                    format!("no interface {} in namespace {ns}", end.name),
                    Some(recreate(live)),
                ));
            }
        }
        if let Link::Veth { ends, .. } = link
            && let Some(a) = live.link(ends[0].netns(), &ends[0].name)
            && live.link(ends[1].netns(), &ends[1].name).is_some()
        {
            let want = (ends[1].netns(), ends[1].name.as_str());
            match &a.peer {
                Some(p) if (p.netns.as_str(), p.name.as_str()) == want => {}
                other => out.push(Finding::new(
                    Code::WrongPlacement,
                    ends[0].netns(),
                    &ends[0].name,
                    format!(
                        "the peer of {}/{} should be {}/{}",
                        ends[0].netns(),
                        ends[0].name,
                        want.0,
                        want.1
                    ),
                    match other {
                        Some(p) => format!("its peer is {}/{}", p.netns, p.name),
                        None => "its peer is outside the lab".into(),
                    },
                    Some(recreate(live)),
                )),
            }
        }
    }
}

pub fn bridge_ports(live: &Live, out: &mut Findings) {
    let Some(plan) = &live.plan else { return };
    for end in plan.ends() {
        let Place::Bridge(want) = &end.place else {
            continue;
        };
        let Some(link) = live.link(HOST, &end.name) else {
            continue;
        };
        let is_ovs = plan
            .bridge(want)
            .is_some_and(|b| b.kind == crate::topology::BridgeKind::Ovs);
        let attach = if is_ovs {
            Fix::in_ns(HOST, &["ovs-vsctl", "add-port", want, &end.name])
        } else {
            Fix::in_ns(HOST, &["ip", "link", "set", &end.name, "master", want])
        };
        match &link.master {
            None => out.push(Finding::new(
                Code::BridgePortDetached,
                HOST,
                &end.name,
                format!("bridge port {} is not attached to bridge {want}", end.name),
                format!("host/{} has no master", end.name),
                Some(attach),
            )),
            Some(m) if &m.name != want => out.push(Finding::new(
                Code::BridgePortWrongBridge,
                HOST,
                &end.name,
                format!(
                    "bridge port {} is on bridge {}, not on {want}",
                    end.name, m.name
                ),
                format!("master {}", m.name),
                Some(attach),
            )),
            Some(_) => {}
        }
        if let Some(&state) = live.brport_state.get(&end.name)
            && matches!(
                state,
                BR_STATE_LISTENING | BR_STATE_LEARNING | BR_STATE_BLOCKING
            )
        {
            let name = match state {
                BR_STATE_LISTENING => "listening",
                BR_STATE_LEARNING => "learning",
                _ => "blocking",
            };
            out.push(Finding::new(
                Code::StpBlocking,
                HOST,
                &end.name,
                format!(
                    "STP keeps bridge port {} from forwarding (state {name})",
                    end.name
                ),
                format!("/sys/class/net/{}/brport/state = {state}", end.name),
                Some(Fix::in_ns(
                    HOST,
                    &[
                        "ip",
                        "link",
                        "set",
                        want,
                        "type",
                        "bridge",
                        "stp_state",
                        "0",
                    ],
                )),
            ));
        }
    }
}

pub fn ovs_ports(live: &Live, out: &mut Findings) {
    let mut names: Vec<&String> = live.ovs.keys().collect();
    names.sort();
    for name in names {
        let o = &live.ovs[name];
        let bad_ofport = o.ofport == Some(-1);
        // vswitchd notices a vanished device late (or never, with the userspace
        // datapath): a port row whose kernel interface is gone is broken either way.
        let gone = !o.internal && live.link(HOST, name).is_none();
        if !bad_ofport && o.error.is_none() && !gone {
            continue;
        }
        let ns = if o.internal {
            live.view
                .links
                .iter()
                .find(|l| &l.name == name && l.kind == DeviceKind::OvsInternal)
                .map_or(HOST, |l| l.netns.as_str())
        } else {
            HOST
        };
        out.push(Finding::new(
            Code::OvsPortError,
            ns,
            name,
            format!(
                "OVS cannot use interface {name} of port {} on bridge {}{}",
                o.port,
                o.bridge,
                if gone {
                    " (the interface no longer exists)"
                } else {
                    ""
                }
            ),
            format!(
                "ofport {}{}{}",
                o.ofport.map_or("unset".to_string(), |p| p.to_string()),
                if gone {
                    format!(", no interface {name} in namespace host")
                } else {
                    String::new()
                },
                o.error
                    .as_ref()
                    .map(|e| format!(", error \"{e}\""))
                    .unwrap_or_default()
            ),
            Some(recreate(live)),
        ));
    }
}

/// An address on more than one interface of the lab (link-local and loopback excepted).
pub fn duplicates(live: &Live, out: &mut Findings, only: &[IpAddr]) {
    let mut seen: HashMap<IpAddr, Vec<(String, String)>> = HashMap::new();
    for l in &live.view.links {
        for c in Live::cidrs(l) {
            if c.addr.is_loopback() || is_link_local(c.addr) {
                continue;
            }
            seen.entry(c.addr)
                .or_default()
                .push((l.netns.clone(), l.name.clone()));
        }
    }
    let mut addrs: Vec<_> = seen.into_iter().filter(|(_, v)| v.len() > 1).collect();
    addrs.sort();
    for (addr, places) in addrs {
        if !only.is_empty() && !only.contains(&addr) {
            continue;
        }
        let list: Vec<String> = places.iter().map(|(n, i)| format!("{n}/{i}")).collect();
        // Reported on the second holder: the first one is usually the intended one.
        let (ns, ifname) = &places[1];
        out.push(Finding::new(
            Code::DuplicateAddress,
            ns,
            ifname,
            format!(
                "{addr} is configured on {} interfaces of the lab",
                places.len()
            ),
            format!("{addr} on {}", list.join(", ")),
            Some(Fix::in_ns(
                ns,
                &[
                    "ip",
                    "addr",
                    "del",
                    &live
                        .link(ns, ifname)
                        .and_then(|l| {
                            Live::cidrs(l)
                                .into_iter()
                                .find(|c| c.addr == addr)
                                .map(|c| c.to_string())
                        })
                        .unwrap_or_else(|| addr.to_string()),
                    "dev",
                    ifname,
                ],
            )),
        ));
    }
}

pub fn is_link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}
