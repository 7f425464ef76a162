//! `show` as text: one block per namespace, one line per interface.

use std::collections::HashMap;
use std::fmt::Write;

use super::{LabView, LinkView, NamespaceView};
use crate::topology::HOST;

pub fn text(view: &LabView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "lab {} ({})", view.lab, view.status);
    let mut groups: Vec<&str> = view.namespaces.iter().map(|n| n.name.as_str()).collect();
    if view.links.iter().any(|l| l.netns == HOST) {
        groups.push(HOST);
    }
    // Links and namespaces by namespace name, in their order: a lookup per group, not
    // a scan of every link of a thousand namespaces for each of them.
    let mut links_of: HashMap<&str, Vec<&LinkView>> = HashMap::new();
    for l in &view.links {
        links_of.entry(l.netns.as_str()).or_default().push(l);
    }
    let namespace_of: HashMap<&str, &NamespaceView> = view
        .namespaces
        .iter()
        .rev()
        .map(|n| (n.name.as_str(), n))
        .collect();
    for ns in groups {
        let nv = namespace_of.get(ns).copied();
        let inode = nv
            .map(|n| format!(" (inode {})", n.inode))
            .unwrap_or_default();
        let _ = writeln!(out, "  namespace {ns}{inode}");
        for l in links_of.get(ns).map(Vec::as_slice).unwrap_or_default() {
            let state = format!("{:?}", l.state).to_lowercase();
            let mut line = format!(
                "    {:<15} {:<12} idx {:<4} {:<9} mtu {:<6}",
                l.name, l.kind, l.ifindex, state, l.mtu
            );
            if let Some(mac) = &l.mac {
                let _ = write!(line, " {mac}");
            }
            if !l.addresses.is_empty() {
                let _ = write!(line, "  {}", l.addresses.join(" "));
            }
            if let Some(p) = &l.peer {
                let _ = write!(line, "  peer {}/{}", p.netns, p.name);
            }
            if let Some(m) = &l.master {
                let _ = write!(line, "  on {} bridge {}", m.kind, m.name);
                if let Some(ofport) = m.ofport {
                    let _ = write!(line, " (ofport {ofport})");
                }
            }
            if let Some(imp) = &l.impair {
                let _ = write!(line, "  impair {imp}");
            }
            let _ = writeln!(out, "{}", line.trim_end());
            // Interface sysctls only where they are not 0, the common case.
            let set = pairs(&l.sysctls, |k, v| v != "0" && !k.contains("disable_ipv6"));
            if !set.is_empty() {
                let _ = writeln!(out, "      sysctls {set}");
            }
        }
        if let Some(nv) = nv {
            // `default.*` only matters for interfaces made later; --json has it.
            let set = pairs(&nv.sysctls, |k, _| !k.contains(".default."));
            if !set.is_empty() {
                let _ = writeln!(out, "    sysctls {set}");
            }
            for r in &nv.routes {
                let mut line = format!("    route {} {}", r.family, r.to);
                if let Some(via) = &r.via {
                    let _ = write!(line, " via {via}");
                }
                if let Some(dev) = &r.dev {
                    let _ = write!(line, " dev {dev}");
                }
                let _ = write!(line, " proto {} scope {}", r.protocol, r.scope);
                let _ = writeln!(out, "{line}");
            }
            for n in &nv.neighbours {
                let _ = writeln!(
                    out,
                    "    neighbour {} dev {} {} {}",
                    n.address,
                    n.dev,
                    n.mac.as_deref().unwrap_or("(no MAC)"),
                    n.state
                );
            }
        }
    }
    for b in &view.bridges {
        let dp = b
            .datapath
            .as_ref()
            .map(|d| format!(", datapath {d}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  bridge {} ({}{dp}): ports {}",
            b.name,
            b.kind,
            b.ports.join(", ")
        );
        for e in &b.fdb {
            let vlan = e.vlan.map(|v| format!(" vlan {v}")).unwrap_or_default();
            let age = e.age.map(|a| format!(" age {a}s")).unwrap_or_default();
            let _ = writeln!(
                out,
                "    fdb {} port {}{vlan} {}{age}",
                e.mac, e.port, e.state
            );
        }
    }
    out
}

/// `key=value` pairs with the common `net.` / `conf.` prefixes shortened for reading.
fn pairs(
    m: &std::collections::BTreeMap<String, String>,
    keep: impl Fn(&str, &str) -> bool,
) -> String {
    m.iter()
        .filter(|(k, v)| keep(k, v))
        .map(|(k, v)| {
            let k = k.strip_prefix("net.").unwrap_or(k).replace(".conf.", ".");
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}
