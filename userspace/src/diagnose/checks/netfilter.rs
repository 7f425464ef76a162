//! BRIDGE_NETFILTER: with `br_netfilter`, frames a Linux bridge forwards go through
//! iptables' FORWARD chain when `net.bridge.bridge-nf-call-iptables` (ip6tables for
//! IPv6) is 1 in the bridge's namespace; a rule there that drops them stops a path that
//! every link-level check passes. The rules are read with `iptables-save` and evaluated
//! in order for the path's packet, conservatively: a rule with a match this check does
//! not understand is skipped, so only rules that certainly match are reported.
//!
//! Without `br_netfilter` (no /proc/sys/net/bridge) bridged frames never see iptables:
//! nothing to check. Nothing here loads a module.

use std::net::IpAddr;

use crate::diagnose::finding::{Code, Finding, Findings, Fix};
use crate::diagnose::live::Live;
use crate::diagnose::walk::PathPlan;
use crate::topology::{Cidr, HOST};

/// The packet a chain is evaluated for.
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    pub bridge: &'a str,
    /// Bridge ports it enters and leaves by (physdev).
    pub ports: &'a [String],
    pub src: IpAddr,
    pub dst: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub chain: String,
    /// The rule's text as iptables-save prints it, after `-A CHAIN`.
    pub spec: String,
}

/// Chains and their rules from `iptables-save -t filter` output.
#[derive(Debug, Default)]
pub struct Table {
    pub policies: Vec<(String, String)>,
    pub rules: Vec<Rule>,
}

pub fn parse(save: &str) -> Table {
    let mut t = Table::default();
    for line in save.lines() {
        if let Some(rest) = line.strip_prefix(':') {
            let mut w = rest.split_whitespace();
            if let (Some(chain), Some(policy)) = (w.next(), w.next()) {
                t.policies.push((chain.to_string(), policy.to_string()));
            }
        } else if let Some(rest) = line.strip_prefix("-A ")
            && let Some((chain, spec)) = rest.split_once(' ')
        {
            t.rules.push(Rule {
                chain: chain.to_string(),
                spec: spec.to_string(),
            });
        }
    }
    t
}

enum Verdict {
    Accept,
    Drop(String),
    /// Fell off a user chain: back to the caller.
    Return,
}

/// Whether a rule certainly matches the packet: Some(true) yes, Some(false) certainly
/// not, None when it has a match this check does not evaluate.
fn matches(spec: &str, p: &Packet<'_>) -> Option<bool> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let mut i = 0;
    let mut all = true;
    while i < words.len() {
        let negate = words[i] == "!";
        if negate {
            i += 1;
        }
        let opt = *words.get(i)?;
        let val = words.get(i + 1).copied();
        let hit = match opt {
            "-j" | "-g" => break,
            "-i" | "-o" => iface(val?, p.bridge),
            "--physdev-in" | "--physdev-out" => {
                let v = val?;
                p.ports.iter().any(|port| iface(v, port))
            }
            "-s" => net(val?, p.src)?,
            "-d" => net(val?, p.dst)?,
            "-p" => matches!(val?, "icmp" | "all" | "1" | "ipv6-icmp" | "icmpv6" | "58"),
            "-m" if matches!(val?, "physdev" | "comment") => {
                i += 2;
                continue;
            }
            "--comment" => {
                // A quoted comment may hold spaces: skip to its closing quote.
                i += 1;
                if words.get(i).is_some_and(|w| w.starts_with('"')) {
                    while i < words.len() && !(words[i].ends_with('"') && words[i].len() > 1) {
                        i += 1;
                    }
                }
                i += 1;
                continue;
            }
            _ => return None,
        };
        all &= hit != negate;
        i += 2;
    }
    Some(all)
}

/// iptables interface names match exactly, or by prefix with a trailing `+`.
fn iface(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('+') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn net(text: &str, addr: IpAddr) -> Option<bool> {
    let cidr: Cidr = if text.contains('/') {
        text.parse().ok()?
    } else {
        format!("{text}/{}", if addr.is_ipv4() { 32 } else { 128 })
            .parse()
            .ok()?
    };
    Some(crate::diagnose::subnet::contains(&cidr, addr))
}

fn target(spec: &str) -> Option<&str> {
    let mut w = spec.split_whitespace();
    while let Some(x) = w.next() {
        if x == "-j" || x == "-g" {
            return w.next();
        }
    }
    None
}

fn eval(t: &Table, chain: &str, p: &Packet<'_>, depth: usize) -> Verdict {
    if depth > 16 {
        return Verdict::Return;
    }
    for r in t.rules.iter().filter(|r| r.chain == chain) {
        if matches(&r.spec, p) != Some(true) {
            continue;
        }
        match target(&r.spec) {
            Some("ACCEPT") => return Verdict::Accept,
            Some("DROP") | Some("REJECT") => {
                return Verdict::Drop(format!("-A {} {}", r.chain, r.spec));
            }
            Some("RETURN") => return Verdict::Return,
            Some(user)
                if t.rules.iter().any(|x| x.chain == user)
                    || t.policies.iter().any(|(c, _)| c == user) =>
            {
                match eval(t, user, p, depth + 1) {
                    Verdict::Return => {}
                    v => return v,
                }
            }
            _ => {}
        }
    }
    Verdict::Return
}

/// What FORWARD does with the packet: the rule (or policy) that drops it, if any.
pub fn forward_drops(t: &Table, p: &Packet<'_>) -> Option<String> {
    match eval(t, "FORWARD", p, 0) {
        Verdict::Accept => None,
        Verdict::Drop(rule) => Some(rule),
        Verdict::Return => t
            .policies
            .iter()
            .find(|(c, policy)| c == "FORWARD" && policy == "DROP")
            .map(|_| "FORWARD policy DROP (no rule accepts it first)".to_string()),
    }
}

fn sysctl_path(v6: bool) -> &'static str {
    if v6 {
        "/proc/sys/net/bridge/bridge-nf-call-ip6tables"
    } else {
        "/proc/sys/net/bridge/bridge-nf-call-iptables"
    }
}

fn save(v6: bool) -> Result<String, String> {
    let bin = if v6 {
        "ip6tables-save"
    } else {
        "iptables-save"
    };
    let out = std::process::Command::new(bin)
        .args(["-t", "filter"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{bin}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{bin}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// BRIDGE_NETFILTER for the Linux bridges (in the root namespace) the path crosses.
pub fn bridges_on_path(live: &Live, plan: &PathPlan, out: &mut Findings) {
    let (Some(src), Some(reached)) = (plan.forward.src, plan.forward.reached.as_ref()) else {
        return;
    };
    let Some(dst) = live.link(&reached.netns, &reached.ifname).and_then(|l| {
        Live::cidrs(l)
            .into_iter()
            .map(|c| c.addr)
            .find(|a| a.is_ipv4() == src.is_ipv4())
    }) else {
        return;
    };
    // Bridges and the ports the path enters and leaves each by.
    let mut crossed: Vec<(String, Vec<String>)> = Vec::new();
    for h in plan.forward.hops.iter().filter(|h| h.netns == HOST) {
        let Some(m) = live
            .link(&h.netns, &h.ifname)
            .and_then(|l| l.master.as_ref())
        else {
            continue;
        };
        if m.kind != crate::topology::BridgeKind::Linux {
            continue;
        }
        match crossed.iter_mut().find(|(b, _)| *b == m.name) {
            Some((_, ports)) => ports.push(h.ifname.clone()),
            None => crossed.push((m.name.clone(), vec![h.ifname.clone()])),
        }
    }
    if crossed.is_empty() {
        return;
    }
    let v6 = src.is_ipv6();
    // Root-namespace procfs: vethscope runs in the root namespace.
    let on = match std::fs::read_to_string(sysctl_path(v6)) {
        Ok(v) => v.trim() == "1",
        Err(_) => {
            tracing::debug!("br_netfilter is not loaded: bridged frames do not pass iptables");
            return;
        }
    };
    if !on {
        return;
    }
    let table = match save(v6) {
        Ok(s) => parse(&s),
        Err(e) => {
            tracing::debug!("cannot read the FORWARD chain: {e}");
            return;
        }
    };
    let key = if v6 {
        "net.bridge.bridge-nf-call-ip6tables"
    } else {
        "net.bridge.bridge-nf-call-iptables"
    };
    for (bridge, ports) in &crossed {
        // Both ways: the request, and the reply coming back.
        for (a, b) in [(src, dst), (dst, src)] {
            let p = Packet {
                bridge,
                ports,
                src: a,
                dst: b,
            };
            let Some(rule) = forward_drops(&table, &p) else {
                continue;
            };
            out.push(Finding::new(
                Code::BridgeNetfilter,
                HOST,
                bridge,
                format!(
                    "frames bridged by {bridge} go through iptables ({key}=1), and its FORWARD chain drops {a} > {b}"
                ),
                format!("{key}=1; {rule}"),
                // Host firewall rules are not the lab's: advice, never run by --fix.
                Some(Fix::advice(match rule.strip_prefix("-A ") {
                    Some(spec) => format!(
                        "{} -D {spec} (or sysctl -w {key}=0, which applies to every bridge of the host)",
                        if v6 { "ip6tables" } else { "iptables" },
                    ),
                    None => format!(
                        "{} -I FORWARD -i {bridge} -o {bridge} -j ACCEPT (or sysctl -w {key}=0, which applies to every bridge of the host)",
                        if v6 { "ip6tables" } else { "iptables" }
                    ),
                })),
            ));
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVE: &str = "# Generated by iptables-save\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:LAB - [0:0]\n-A FORWARD -i docker0 -j DROP\n-A FORWARD -i br0 -m comment --comment \"keep out\" -j LAB\n-A LAB -s 10.1.1.2/32 -p icmp -j DROP\nCOMMIT\n";

    fn packet<'a>(bridge: &'a str, ports: &'a [String], src: &str, dst: &str) -> Packet<'a> {
        Packet {
            bridge,
            ports,
            src: src.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            dst: dst.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        }
    }

    #[test]
    fn a_rule_in_a_user_chain_drops_only_what_it_matches() {
        let t = parse(SAVE);
        let ports = vec!["br-veth0".to_string()];
        assert_eq!(
            forward_drops(&t, &packet("br0", &ports, "10.1.1.2", "10.1.1.3")).as_deref(),
            Some("-A LAB -s 10.1.1.2/32 -p icmp -j DROP")
        );
        // The reply's source is another address; another bridge is not concerned.
        assert_eq!(
            forward_drops(&t, &packet("br0", &ports, "10.1.1.3", "10.1.1.2")),
            None
        );
        assert_eq!(
            forward_drops(&t, &packet("br1", &ports, "10.1.1.2", "10.1.1.3")),
            None
        );
    }

    #[test]
    fn policy_drop_and_unknown_matches() {
        let t = parse(
            "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -i br+ -o br+ -j ACCEPT\nCOMMIT\n",
        );
        let ports = Vec::new();
        // The conntrack rule is not understood (skipped); br+ matches br0.
        assert_eq!(
            forward_drops(&t, &packet("br0", &ports, "10.1.1.2", "10.1.1.3")),
            None
        );
        assert_eq!(
            forward_drops(&t, &packet("lab0", &ports, "10.1.1.2", "10.1.1.3")).as_deref(),
            Some("FORWARD policy DROP (no rule accepts it first)")
        );
        let neg = parse("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD ! -i br0 -j DROP\nCOMMIT\n");
        assert_eq!(
            forward_drops(&neg, &packet("br0", &ports, "10.1.1.2", "10.1.1.3")),
            None
        );
    }
}
