//! `graph`: the live topology as Graphviz dot or Mermaid. Namespaces are clusters,
//! interfaces are nodes, veth pairs are solid edges, bridge membership dashed.

use crate::inspect::DeviceKind;
use std::collections::BTreeSet;
use std::fmt::Write;

use super::LabView;
use crate::topology::HOST;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Dot,
    Mermaid,
}

/// A node id from live names (which may hold any byte the kernel allows): letters and
/// digits as they are, everything else as `_XX`, so ids never collide (`a.b` vs `a_b`),
/// never start with a digit, and need no quoting in DOT or Mermaid.
fn id(netns: &str, name: &str) -> String {
    fn enc(s: &str, out: &mut String) {
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() {
                out.push(b as char);
            } else {
                let _ = write!(out, "_{b:02X}");
            }
        }
    }
    let mut out = String::from("n_");
    enc(netns, &mut out);
    out.push_str("__");
    enc(name, &mut out);
    out
}

/// Text inside a DOT double-quoted string: `"` and `\` escaped, control characters
/// dropped (a name can never end the string or inject attributes).
fn dot_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text inside a Mermaid `["..."]` label or `|...|` edge label: quotes, pipes, angle
/// brackets and `#` as Mermaid entity codes.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '|' => out.push_str("#124;"),
            '#' => out.push_str("#35;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
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

/// The lines of a node's label, unescaped.
fn label_lines(l: &super::LinkView) -> Vec<String> {
    let mut lines = vec![format!("{} ({})", l.name, l.kind)];
    if !l.addresses.is_empty() {
        lines.push(l.addresses.join(" "));
    }
    lines
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
        dot_text(&view.lab)
    );
    for (i, ns) in groups(view).iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph cluster_{i} {{\n    label=\"namespace {}\";",
            dot_text(ns)
        );
        for l in view
            .links
            .iter()
            .filter(|l| &l.netns == ns && l.kind != DeviceKind::Lo)
        {
            let shape = if l.kind == DeviceKind::Bridge || l.kind == DeviceKind::OvsBridge {
                ", shape=component"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    {} [label=\"{}\"{shape}];",
                id(&l.netns, &l.name),
                label_lines(l)
                    .iter()
                    .map(|t| dot_text(t))
                    .collect::<Vec<_>>()
                    .join("\\n")
            );
        }
        let _ = writeln!(out, "  }}");
    }
    for (a, b) in pairs(view) {
        let _ = writeln!(out, "  {a} -- {b} [label=\"veth\"];");
    }
    for b in &view.bridges {
        for p in &b.ports {
            let port = view.links.iter().find(|l| {
                &l.name == p && (l.netns == b.netns || l.kind == DeviceKind::OvsInternal)
            });
            if let Some(port) = port {
                let _ = writeln!(
                    out,
                    "  {} -- {} [style=dashed, label=\"{}\"];",
                    id(&b.netns, &b.name),
                    id(&port.netns, &port.name),
                    dot_text(b.kind.as_str())
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
        let _ = writeln!(
            out,
            "  subgraph {}[\"namespace {}\"]",
            id("ns", &ns),
            mermaid_text(&ns)
        );
        for l in view
            .links
            .iter()
            .filter(|l| l.netns == ns && l.kind != DeviceKind::Lo)
        {
            let text = label_lines(l)
                .iter()
                .map(|t| mermaid_text(t))
                .collect::<Vec<_>>()
                .join("<br/>");
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
                .find(|l| &l.name == p && (l.netns == b.netns || l.kind == DeviceKind::OvsInternal))
            {
                let _ = writeln!(
                    out,
                    "  {} -.-|{}| {}",
                    id(&b.netns, &b.name),
                    mermaid_text(b.kind.as_str()),
                    id(&port.netns, &port.name)
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Live names may hold anything the kernel allows (a foreign interface on a lab
    /// bridge): they must not end a string, add attributes or collide. (Tested on the
    /// escaping functions, so the test does not depend on the view's fields.)
    #[test]
    fn hostile_names_are_escaped_and_ids_stay_apart() {
        let name = "a\"];x [label=\"pwn\\";
        let dot = format!("n [label=\"{}\"];", dot_text(name));
        assert_eq!(dot, "n [label=\"a\\\"];x [label=\\\"pwn\\\\\"];");
        assert_eq!(dot_text("a\nb"), "a b");
        let m = mermaid_text("a\"]|<b>#");
        assert!(!m.contains(['"', '|', '<', '>']), "{m}");
        assert_ne!(id("n", "a.b"), id("n", "a_b"));
        assert_ne!(id("a__b", "c"), id("a", "b__c"));
        assert!(id("1ns", "x").starts_with("n_"));
        assert!(
            id("n\"s", "x\" y")
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        );
    }
}
