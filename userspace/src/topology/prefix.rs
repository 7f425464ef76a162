//! Renaming a topology with a prefix, so copies of one scenario can run side by side.
//! Interfaces inside lab namespaces keep their names (each namespace is its own
//! name space); everything global gets the prefix: the lab, namespace names, bridges,
//! root-namespace interfaces and OVS internal ports (OVS port names are global).

use super::{HOST, Link, Place, Topology};

pub fn apply(t: &Topology, prefix: &str) -> Topology {
    let mut out = t.clone();
    let p = |s: &str| format!("{prefix}{s}");
    out.name = p(&t.name);
    for ns in &mut out.namespaces {
        ns.name = p(&ns.name);
    }
    // A bridge inside a lab namespace keeps its name there (like the namespace's
    // interfaces); only its namespace's name gets the prefix.
    for b in &mut out.bridges {
        match &mut b.netns {
            Some(ns) => *ns = p(ns),
            None => b.name = p(&b.name),
        }
    }
    let in_netns: Vec<&str> = t
        .bridges
        .iter()
        .filter(|b| b.netns.is_some())
        .map(|b| b.name.as_str())
        .collect();
    for link in &mut out.links {
        let internal = matches!(link, Link::OvsInternal { .. });
        match link {
            Link::Veth { ends, .. } => ends.iter_mut().for_each(|e| {
                if !matches!(&e.place, Place::Bridge(b) if in_netns.contains(&b.as_str())) {
                    rename_end(e, prefix, false)
                }
            }),
            Link::OvsInternal { bridge, end, .. } => {
                *bridge = p(bridge);
                rename_end(end, prefix, internal);
            }
        }
    }
    for ns in &mut out.namespaces {
        // Route devices inside a lab namespace keep their names, except OVS internal
        // ports, which were renamed above.
        for r in &mut ns.routes {
            if let Some(dev) = &mut r.dev
                && t.links
                    .iter()
                    .any(|l| matches!(l, Link::OvsInternal { end, .. } if &end.name == dev))
            {
                *dev = p(dev);
            }
        }
    }
    out.place_bridge_ports();
    out
}

fn rename_end(end: &mut super::End, prefix: &str, global_name: bool) {
    match &mut end.place {
        Place::Netns(ns) if ns == HOST => end.name = format!("{prefix}{}", end.name),
        Place::Netns(ns) => {
            *ns = format!("{prefix}{ns}");
            if global_name {
                end.name = format!("{prefix}{}", end.name);
            }
        }
        Place::Bridge(b) => {
            *b = format!("{prefix}{b}");
            end.name = format!("{prefix}{}", end.name);
        }
    }
}
