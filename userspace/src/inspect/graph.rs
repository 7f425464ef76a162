//! `graph`: the live topology as Graphviz dot or Mermaid. Namespaces are clusters,
//! interfaces are nodes, veth pairs are solid edges, bridge membership dashed.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::LabView;
use crate::topology::HOST;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Dot,
    Mermaid,
}

fn id(netns: &str, name: &str) -> String {
    format!("{netns}__{name}").replace(|c: char| !c.is_ascii_alphanumeric(), "_")
}

fn groups(view: &LabView) -> Vec<String> {
    let mut g: Vec<String> = view.namespaces.iter().map(|n| n.name.clone()).collect();
    if view.links.iter().any(|l| l.netns == HOST) {
        g.push(HOST.to_string());
    }
    g
}

/// Each veth pair once (ordered by its two ends).
fn pairs(view: &LabView) -> BTreeSet<(String, String)> {
    view.links
        .iter()
        .filter_map(|l| {
            let p = l.peer.as_ref()?;
            let a = id(&l.netns, &l.name);
            let b = id(&p.netns, &p.name);
            Some(if a < b { (a, b) } else { (b, a) })
        })
        .collect()
}

fn label(l: &super::LinkView) -> String {
    let mut s = format!("{} ({})", l.name, l.kind);
    if !l.addresses.is_empty() {
        let _ = write!(s, "\\n{}", l.addresses.join(" "));
    }
    s
}

pub fn render(view: &LabView, format: Format) -> String {
    match format {
        Format::Dot => dot(view),
        Format::Mermaid => mermaid(view),
    }
}

fn dot(view: &LabView) -> String {
    let mut out = format!(
        "graph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        view.lab
    );
    for (i, ns) in groups(view).iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph cluster_{i} {{\n    label=\"namespace {ns}\";"
        );
        for l in view
            .links
            .iter()
            .filter(|l| &l.netns == ns && l.kind != "lo")
        {
            let shape = if l.kind == "bridge" || l.kind == "ovs-bridge" {
                ", shape=component"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    {} [label=\"{}\"{shape}];",
                id(&l.netns, &l.name),
                label(l)
            );
        }
        let _ = writeln!(out, "  }}");
    }
    for (a, b) in pairs(view) {
        let _ = writeln!(out, "  {a} -- {b} [label=\"veth\"];");
    }
    for b in &view.bridges {
        for p in &b.ports {
            let port = view
                .links
                .iter()
                .find(|l| &l.name == p && (l.netns == HOST || l.kind == "ovs-internal"));
            if let Some(port) = port {
                let _ = writeln!(
                    out,
                    "  {} -- {} [style=dashed, label=\"{}\"];",
                    id(HOST, &b.name),
                    id(&port.netns, &port.name),
                    b.kind
                );
            }
        }
    }
    out.push_str("}\n");
    out
}

fn mermaid(view: &LabView) -> String {
    let mut out = String::from("flowchart LR\n");
    for ns in groups(view) {
        let _ = writeln!(out, "  subgraph {}[\"namespace {ns}\"]", id("ns", &ns));
        for l in view
            .links
            .iter()
            .filter(|l| l.netns == ns && l.kind != "lo")
        {
            let text = label(l).replace("\\n", "<br/>");
            let _ = writeln!(out, "    {}[\"{text}\"]", id(&l.netns, &l.name));
        }
        let _ = writeln!(out, "  end");
    }
    for (a, b) in pairs(view) {
        let _ = writeln!(out, "  {a} ---|veth| {b}");
    }
    for b in &view.bridges {
        for p in &b.ports {
            if let Some(port) = view
                .links
                .iter()
                .find(|l| &l.name == p && (l.netns == HOST || l.kind == "ovs-internal"))
            {
                let _ = writeln!(
                    out,
                    "  {} -.-|{}| {}",
                    id(HOST, &b.name),
                    b.kind,
                    id(&port.netns, &port.name)
                );
            }
        }
    }
    out
}
