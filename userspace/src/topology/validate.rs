//! Cross-object rules, checked on the whole file before anything is touched.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{
    BridgeKind, End, HOST, IFNAME_MAX, Link, Place, Pos, Topology, TopologyError, yaml::Errors,
};

/// Pure checks: names, references, uniqueness, addresses.
pub fn validate(t: &Topology) -> Result<(), TopologyError> {
    let errs = Errors { file: &t.source };
    check_lab_name(t, &errs)?;
    let namespaces = check_namespaces(t, &errs)?;
    let bridges = check_bridges(t, &errs)?;
    // Interface names per namespace; the root namespace starts with the bridges.
    let mut ifnames: HashMap<&str, HashMap<&str, Pos>> = HashMap::new();
    for b in &t.bridges {
        ifnames.entry(HOST).or_default().insert(&b.name, b.pos);
    }
    let mut addresses: HashMap<std::net::IpAddr, (&End, Pos)> = HashMap::new();
    for link in &t.links {
        if let Link::OvsInternal { bridge, end, pos } = link {
            match bridges.get(bridge.as_str()) {
                None => return Err(unknown_bridge(&errs, *pos, bridge, t)),
                Some(BridgeKind::Linux) => {
                    return Err(errs.hint(
                        *pos,
                        format!("interface {} in namespace {}", end.name, end.netns()),
                        format!("bridge {bridge} is a Linux bridge; ovs-internal ports need an OVS bridge"),
                        format!("declare `{{name: {bridge}, kind: ovs}}` or use a veth link"),
                    ));
                }
                Some(BridgeKind::Ovs) => {}
            }
            if end.bridge().is_some() {
                return Err(errs.hint(
                    end.pos,
                    format!("interface {}", end.name),
                    "an ovs-internal end sits in a namespace, not on a bridge",
                    "write `end: {ns: NS, name: IFNAME}`",
                ));
            }
            // OVS creates the port in the root namespace before it is moved.
            if end.netns() != HOST {
                claim_name(&mut ifnames, HOST, end, &errs, "while OVS creates it")?;
            }
        }
        for end in link.ends() {
            check_end(end, &namespaces, &bridges, &errs, t)?;
            claim_name(&mut ifnames, end.netns(), end, &errs, "")?;
            for cidr in &end.addresses {
                if let Some((first, _)) = addresses.get(&cidr.addr) {
                    return Err(errs.hint(
                        end.pos,
                        describe(end),
                        format!(
                            "address {} is already used by {}",
                            cidr.addr,
                            describe(first)
                        ),
                        "give each interface its own address",
                    ));
                }
                addresses.insert(cidr.addr, (end, end.pos));
            }
        }
    }
    check_routes(t, &ifnames, &errs)
}

/// Checks that need the running system: sysctl keys must exist.
pub fn validate_environment(t: &Topology) -> Result<(), TopologyError> {
    validate_environment_at(t, Path::new("/proc/sys"))
}

fn validate_environment_at(t: &Topology, proc_sys: &Path) -> Result<(), TopologyError> {
    let errs = Errors { file: &t.source };
    for ns in &t.namespaces {
        for s in &ns.sysctls {
            let object = format!("namespace {}", ns.name);
            // Only net.* sysctls are per network namespace; anything else would change the host.
            if !s.key.starts_with("net.") {
                return Err(errs.hint(
                    s.pos,
                    object,
                    format!("sysctl `{}` is not a network-namespace setting", s.key),
                    "only net.* keys can be set per namespace",
                ));
            }
            if !proc_sys.join(s.key.replace('.', "/")).exists() {
                return Err(errs.at(s.pos, object, format!("unknown sysctl `{}`", s.key)));
            }
        }
    }
    for end in t.ends() {
        for s in &end.sysctls {
            let (family, key) = match s.key.strip_prefix("ipv6.") {
                Some(k) => ("ipv6", k),
                None => ("ipv4", s.key.strip_prefix("ipv4.").unwrap_or(&s.key)),
            };
            if !proc_sys
                .join(format!("net/{family}/conf/all/{key}"))
                .exists()
            {
                return Err(errs.hint(
                    s.pos,
                    describe(end),
                    format!("unknown interface sysctl `{}`", s.key),
                    format!("keys are those under net.{family}.conf.IFNAME, e.g. accept_local, rp_filter"),
                ));
            }
        }
    }
    Ok(())
}

fn describe(end: &End) -> String {
    match &end.place {
        Place::Netns(ns) => format!("interface {} in namespace {ns}", end.name),
        Place::Bridge(b) => format!("interface {} on bridge {b} (namespace host)", end.name),
    }
}

fn check_lab_name(t: &Topology, errs: &Errors<'_>) -> Result<(), TopologyError> {
    let ok = !t.name.is_empty()
        && t.name.len() <= 48
        && t.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        return Ok(());
    }
    Err(errs.hint(
        Pos { line: 1, col: 1 },
        format!("lab {}", t.name),
        "the lab name must be 1-48 characters of letters, digits, '-', '_' or '.'",
        "rename the lab",
    ))
}

fn check_namespaces<'t>(
    t: &'t Topology,
    errs: &Errors<'_>,
) -> Result<HashSet<&'t str>, TopologyError> {
    let mut seen: HashMap<&str, Pos> = HashMap::new();
    for ns in &t.namespaces {
        let object = format!("namespace {}", ns.name);
        if ns.name == HOST {
            return Err(errs.hint(
                ns.pos,
                object,
                "`host` is the reserved name of the root namespace",
                "don't declare it; use `ns: host` on an end",
            ));
        }
        let ok = !ns.name.is_empty()
            && ns.name.len() <= 64
            && ns
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !ns.name.starts_with('.');
        if !ok {
            return Err(errs.hint(
                ns.pos,
                object,
                "a namespace name must be 1-64 letters, digits, '-', '_' or '.'",
                "rename it",
            ));
        }
        if let Some(first) = seen.insert(&ns.name, ns.pos) {
            return Err(errs.hint(
                ns.pos,
                object,
                format!(
                    "namespace {} is declared twice (first at line {})",
                    ns.name, first.line
                ),
                "remove one",
            ));
        }
    }
    Ok(seen.into_keys().collect())
}

fn check_bridges<'t>(
    t: &'t Topology,
    errs: &Errors<'_>,
) -> Result<HashMap<&'t str, BridgeKind>, TopologyError> {
    let mut seen: HashMap<&str, BridgeKind> = HashMap::new();
    for b in &t.bridges {
        check_ifname(&b.name, b.pos, &format!("bridge {}", b.name), errs)?;
        if seen.insert(&b.name, b.kind).is_some() {
            return Err(errs.hint(
                b.pos,
                format!("bridge {}", b.name),
                format!("bridge {} is declared twice", b.name),
                "remove one",
            ));
        }
    }
    Ok(seen)
}

fn check_end(
    end: &End,
    namespaces: &HashSet<&str>,
    bridges: &HashMap<&str, BridgeKind>,
    errs: &Errors<'_>,
    t: &Topology,
) -> Result<(), TopologyError> {
    check_ifname(&end.name, end.pos, &describe(end), errs)?;
    match &end.place {
        Place::Netns(ns) if ns != HOST && !namespaces.contains(ns.as_str()) => {
            let known: Vec<&str> = t.netns_names().collect();
            return Err(errs.hint(
                end.pos,
                describe(end),
                format!("namespace {ns} is not declared"),
                format!(
                    "add `- name: {ns}` under `namespaces:` (declared: {})",
                    known.join(", ")
                ),
            ));
        }
        Place::Bridge(b) if !bridges.contains_key(b.as_str()) => {
            return Err(unknown_bridge(errs, end.pos, b, t));
        }
        Place::Bridge(b) if !end.addresses.is_empty() => {
            return Err(errs.hint(
                end.pos,
                describe(end),
                format!("a port of bridge {b} does not take addresses"),
                "put the address on the namespace end of the link",
            ));
        }
        _ => {}
    }
    if let Some(mac) = end.mac
        && mac[0] & 1 == 1
    {
        return Err(errs.hint(
            end.pos,
            describe(end),
            "the MAC address is a multicast address",
            "use a unicast address (first byte even), e.g. 02:00:00:00:00:01",
        ));
    }
    Ok(())
}

fn unknown_bridge(errs: &Errors<'_>, pos: Pos, name: &str, t: &Topology) -> TopologyError {
    let known: Vec<&str> = t.bridges.iter().map(|b| b.name.as_str()).collect();
    errs.hint(
        pos,
        format!("bridge {name}"),
        format!("bridge {name} is not declared"),
        if known.is_empty() {
            format!("add `bridges: [{{name: {name}, kind: linux}}]`")
        } else {
            format!("declared bridges: {}", known.join(", "))
        },
    )
}

fn check_ifname(
    name: &str,
    pos: Pos,
    object: &str,
    errs: &Errors<'_>,
) -> Result<(), TopologyError> {
    if name.len() > IFNAME_MAX {
        return Err(errs.hint(
            pos,
            object,
            format!(
                "interface name `{name}` is {} bytes; Linux allows at most {IFNAME_MAX}",
                name.len()
            ),
            "shorten it",
        ));
    }
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if bad {
        return Err(errs.hint(
            pos,
            object,
            format!("`{name}` is not a valid interface name"),
            "use letters, digits, '-', '_' or '.'",
        ));
    }
    if name == "lo" {
        return Err(errs.hint(
            pos,
            object,
            "`lo` is the loopback device of every namespace",
            "pick another name",
        ));
    }
    Ok(())
}

fn claim_name<'t>(
    names: &mut HashMap<&'t str, HashMap<&'t str, Pos>>,
    netns: &'t str,
    end: &'t End,
    errs: &Errors<'_>,
    when: &str,
) -> Result<(), TopologyError> {
    if let Some(first) = names.entry(netns).or_default().insert(&end.name, end.pos) {
        let when = if when.is_empty() {
            String::new()
        } else {
            format!(" {when}")
        };
        return Err(errs.hint(
            end.pos,
            describe(end),
            format!(
                "interface name {} is used twice in namespace {netns}{when} (first at line {})",
                end.name, first.line
            ),
            "names must be unique per namespace",
        ));
    }
    Ok(())
}

fn check_routes(
    t: &Topology,
    ifnames: &HashMap<&str, HashMap<&str, Pos>>,
    errs: &Errors<'_>,
) -> Result<(), TopologyError> {
    for ns in &t.namespaces {
        for r in &ns.routes {
            if let Some(dev) = &r.dev
                && !ifnames
                    .get(ns.name.as_str())
                    .is_some_and(|m| m.contains_key(dev.as_str()))
            {
                return Err(errs.hint(
                    r.pos,
                    format!("route in namespace {}", ns.name),
                    format!("device {dev} is not an interface of namespace {}", ns.name),
                    "name an interface of this namespace",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<(), String> {
        let t = Topology::from_yaml(yaml, "t.yaml").map_err(|e| e.to_string())?;
        validate(&t).map_err(|e| e.to_string())
    }

    #[test]
    fn builtins_are_valid() {
        for name in super::super::scenarios::NAMES {
            let t = Topology::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            validate(&t).unwrap_or_else(|e| panic!("{name}: {e}"));
            validate_environment(&t).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn too_long_name_names_line_and_namespace() {
        let err = check(
            "name: t\nnamespaces: [{name: a}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: a, name: averyveryverylongname}\n      - {ns: a, name: b}\n",
        )
        .unwrap_err();
        assert!(err.starts_with("t.yaml:6:"), "{err}");
        assert!(
            err.contains("namespace a") && err.contains("at most 15"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_and_unknown_references() {
        let dup = check("name: t\nnamespaces: [{name: a}, {name: a}]\n").unwrap_err();
        assert!(dup.contains("declared twice"), "{dup}");
        let unknown = check(
            "name: t\nnamespaces: [{name: a}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: a, name: x}\n      - {bridge: nope, name: y}\n",
        )
        .unwrap_err();
        assert!(unknown.contains("bridge nope is not declared"), "{unknown}");
        let addr = check(
            "name: t\nnamespaces: [{name: a}, {name: b}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: a, name: x, addresses: [10.0.0.1/24]}\n      - {ns: b, name: y, addresses: [10.0.0.1/24]}\n",
        )
        .unwrap_err();
        assert!(addr.contains("already used"), "{addr}");
    }

    #[test]
    fn typo_gets_a_suggestion() {
        let err = check(
            "name: t\nnamespaces: [{name: a}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: a, name: x, adresses: [10.0.0.1/24]}\n      - {ns: a, name: y}\n",
        )
        .unwrap_err();
        assert!(err.contains("did you mean `addresses`"), "{err}");
    }
}
