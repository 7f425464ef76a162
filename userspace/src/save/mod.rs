//! `vethscope save LAB`: the live lab as a topology file that `up` accepts and that
//! brings back the same lab. Everything comes from live state (`show`'s data), except
//! what the kernel does not keep: the `exec:` lines, taken from the lab's recorded file.
//!
//! What is written, and what is left out on purpose:
//! - namespaces with the namespace sysctls whose value differs from a brand-new
//!   namespace's on this host, and their `static`/`boot` routes (not the kernel's
//!   connected routes, not router advertisements);
//! - bridges (Linux and OVS) with an MTU other than 1500;
//! - every veth pair and OVS internal port with names, addresses (not IPv6 link-local
//!   `fe80::/10`, which the kernel makes itself), MTU other than 1500, MAC, and the
//!   interface sysctls that differ from the namespace's `default` value;
//! - anything a topology file cannot express (another kind of interface, addresses on
//!   `lo`) is listed in a comment at the end, never dropped silently.

mod yaml_out;

use crate::inspect::DeviceKind;
use std::collections::{BTreeMap, HashSet};

use crate::{
    inspect::{self, LabView, LinkView, sysctls},
    netns::NetnsError,
    topology::{HOST, Topology},
};

pub use yaml_out::quote;

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Inspect(#[from] inspect::InspectError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// Reads the lab and renders it as a topology file.
pub async fn save(lab: &str) -> Result<String, SaveError> {
    // Only a known lab's name is ever turned into a state-file path.
    let known = crate::wire::known_labs().await;
    if !known.contains(lab) {
        return Err(inspect::InspectError::NoSuchLab {
            lab: lab.escape_debug().to_string(),
            known: if known.is_empty() {
                "none".into()
            } else {
                known.into_iter().collect::<Vec<_>>().join(", ")
            },
        }
        .into());
    }
    let view = inspect::lab_view(lab).await?;
    let fresh = sysctls::fresh_namespace_values()?;
    let mut defaults = BTreeMap::new();
    let mut spaces: Vec<&str> = view.namespaces.iter().map(|n| n.name.as_str()).collect();
    spaces.push(HOST);
    for ns in spaces {
        defaults.insert(ns.to_string(), sysctls::interface_defaults_in(ns)?);
    }
    let plan = crate::wire::state::read(lab).map(|s| s.topology);
    Ok(render(&view, plan.as_ref(), &fresh, &defaults))
}

/// The file for `view`. `fresh`: namespace sysctls of a new namespace; `defaults`: per
/// namespace, the `conf.default` value of each interface key (what a new interface gets).
pub fn render(
    view: &LabView,
    plan: Option<&Topology>,
    fresh: &BTreeMap<String, String>,
    defaults: &BTreeMap<String, BTreeMap<String, String>>,
) -> String {
    let mut out = yaml_out::Out::default();
    let mut not_saved: Vec<String> = Vec::new();
    out.line(
        0,
        &format!(
            "# vethscope save {}: the live lab as a topology file",
            view.lab
        ),
    );
    out.line(0, &format!("name: {}", quote(&view.lab)));

    if !view.namespaces.is_empty() {
        out.line(0, "namespaces:");
    }
    for ns in &view.namespaces {
        out.line(2, &format!("- name: {}", quote(&ns.name)));
        let changed: Vec<(&String, &String)> = ns
            .sysctls
            .iter()
            .filter(|(k, v)| fresh.get(*k).is_some_and(|f| f != *v))
            .collect();
        if !changed.is_empty() {
            out.line(4, "sysctls:");
            for (k, v) in changed {
                out.line(6, &format!("{k}: {}", quote(v)));
            }
        }
        let routes: Vec<&inspect::RouteView> = ns
            .routes
            .iter()
            .filter(|r| r.protocol == "static" || r.protocol == "boot")
            .collect();
        if !routes.is_empty() {
            out.line(4, "routes:");
            for r in routes {
                let mut fields = vec![format!("to: {}", quote(&r.to))];
                if let Some(via) = &r.via {
                    fields.push(format!("via: {}", quote(via)));
                }
                if let Some(dev) = &r.dev {
                    fields.push(format!("dev: {}", quote(dev)));
                }
                out.line(6, &format!("- {{{}}}", fields.join(", ")));
            }
        }
        let exec = plan
            .and_then(|p| p.namespaces.iter().find(|n| n.name == ns.name))
            .map(|n| n.exec.as_slice())
            .unwrap_or_default();
        if !exec.is_empty() {
            out.line(4, "exec:");
            for e in exec {
                out.line(6, &format!("- {}", quote(&e.command)));
            }
        }
        for l in view
            .links
            .iter()
            .filter(|l| l.netns == ns.name && l.kind == DeviceKind::Lo)
        {
            for a in l.addresses.iter().filter(|a| !is_loopback_default(a)) {
                not_saved.push(format!("address {a} on {}/lo", ns.name));
            }
        }
    }

    if !view.bridges.is_empty() {
        out.line(0, "bridges:");
    }
    for b in &view.bridges {
        let mut fields = vec![
            format!("name: {}", quote(&b.name)),
            format!("kind: {}", b.kind),
        ];
        if b.netns != HOST {
            fields.push(format!("ns: {}", quote(&b.netns)));
        }
        let mtu = view
            .links
            .iter()
            .find(|l| l.netns == b.netns && l.name == b.name)
            .map(|l| l.mtu);
        if let Some(m) = mtu.filter(|m| *m != 1500) {
            fields.push(format!("mtu: {m}"));
        }
        out.line(2, &format!("- {{{}}}", fields.join(", ")));
    }

    let bridge_names: HashSet<(&str, &str)> = view
        .bridges
        .iter()
        .map(|b| (b.netns.as_str(), b.name.as_str()))
        .collect();
    let mut done: HashSet<(&str, &str)> = HashSet::new();
    let mut links_out = yaml_out::Out::default();
    for l in &view.links {
        if done.contains(&(l.netns.as_str(), l.name.as_str())) || l.kind == DeviceKind::Lo {
            continue;
        }
        if bridge_names.contains(&(l.netns.as_str(), l.name.as_str()))
            || l.kind == DeviceKind::OvsBridge
        {
            continue;
        }
        match (&l.kind, &l.peer) {
            (DeviceKind::Veth, Some(p)) => {
                let Some(peer) = view.link(&p.netns, &p.name) else {
                    not_saved.push(format!(
                        "veth {}/{} (its peer is not in the lab)",
                        l.netns, l.name
                    ));
                    continue;
                };
                done.insert((l.netns.as_str(), l.name.as_str()));
                done.insert((peer.netns.as_str(), peer.name.as_str()));
                links_out.line(2, "- kind: veth");
                links_out.line(4, "ends:");
                for e in [l, peer] {
                    links_out.line(6, &format!("- {}", end(e, defaults)));
                }
            }
            (DeviceKind::OvsInternal, _) => {
                done.insert((l.netns.as_str(), l.name.as_str()));
                let bridge = l
                    .master
                    .as_ref()
                    .map(|m| m.name.clone())
                    .unwrap_or_default();
                links_out.line(2, "- kind: ovs-internal");
                links_out.line(4, &format!("bridge: {}", quote(&bridge)));
                links_out.line(4, &format!("end: {}", end(l, defaults)));
            }
            (kind, _) => not_saved.push(format!("interface {}/{} (kind {kind})", l.netns, l.name)),
        }
    }
    if !links_out.is_empty() {
        out.line(0, "links:");
        out.append(links_out);
    }
    if !not_saved.is_empty() {
        out.line(0, "# not saved (a topology file cannot express them):");
        for n in not_saved {
            out.line(0, &format!("#   {n}"));
        }
    }
    out.finish()
}

fn is_loopback_default(a: &str) -> bool {
    a == "127.0.0.1/8" || a == "::1/128"
}

/// One end as a flow mapping: where it sits, name, addresses, mtu, mac, sysctls.
fn end(l: &LinkView, defaults: &BTreeMap<String, BTreeMap<String, String>>) -> String {
    let mut fields = Vec::new();
    match &l.master {
        Some(m) if l.kind != DeviceKind::OvsInternal => {
            fields.push(format!("bridge: {}", quote(&m.name)))
        }
        _ => fields.push(format!("ns: {}", quote(&l.netns))),
    }
    fields.push(format!("name: {}", quote(&l.name)));
    let addrs: Vec<String> = l
        .addresses
        .iter()
        .filter(|a| !a.to_ascii_lowercase().starts_with("fe80:"))
        .map(|a| quote(a))
        .collect();
    if !addrs.is_empty() {
        fields.push(format!("addresses: [{}]", addrs.join(", ")));
    }
    if l.mtu != 1500 {
        fields.push(format!("mtu: {}", l.mtu));
    }
    if let Some(mac) = &l.mac {
        fields.push(format!("mac: {}", quote(mac)));
    }
    let ns_defaults = defaults.get(&l.netns);
    let changed: Vec<String> = l
        .sysctls
        .iter()
        .filter(|(k, v)| ns_defaults.and_then(|d| d.get(*k)).is_some_and(|d| d != *v))
        .map(|(k, v)| format!("{k}: {}", quote(v)))
        .collect();
    if !changed.is_empty() {
        fields.push(format!("sysctls: {{{}}}", changed.join(", ")));
    }
    format!("{{{}}}", fields.join(", "))
}
