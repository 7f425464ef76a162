//! `show` as text: one block per namespace, one line per interface.

use std::fmt::Write;

use super::LabView;
use crate::topology::HOST;

pub fn text(view: &LabView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "lab {} ({})", view.lab, view.status);
    let mut groups: Vec<&str> = view.namespaces.iter().map(|n| n.name.as_str()).collect();
    if view.links.iter().any(|l| l.netns == HOST) {
        groups.push(HOST);
    }
    for ns in groups {
        let inode = view
            .namespaces
            .iter()
            .find(|n| n.name == ns)
            .map(|n| format!(" (inode {})", n.inode))
            .unwrap_or_default();
        let _ = writeln!(out, "  namespace {ns}{inode}");
        for l in view.links.iter().filter(|l| l.netns == ns) {
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
    }
    out
}
