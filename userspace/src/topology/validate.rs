//! Cross-object rules, checked on the whole file before anything is touched. Every
//! problem of a file is reported in one run (not one per run), in file order.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::{
    BridgeKind, Cidr, End, HOST, Link, Place, Pos, Topology, TopologyError,
    names::{self, NameKind},
    sysctl_keys::{self, Catalog},
    yaml::Errors,
};

/// More objects than this is a mistake or an attack, not a lab (a Linux bridge takes at
/// most 1024 ports; each namespace costs kernel memory).
const NAMESPACES_MAX: usize = 4096;
const BRIDGES_MAX: usize = 1024;
const LINKS_MAX: usize = 8192;

/// Pure checks: names, references, uniqueness, addresses, routes, sysctl key shapes.
pub fn validate(t: &Topology) -> Result<(), TopologyError> {
    let errs = Errors { file: &t.source };
    let mut out = Vec::new();
    // Thousands of objects would give thousands of follow-up errors: stop here.
    check_sizes(t, &errs)?;
    check_lab_name(t, &errs, &mut out);
    let namespaces = check_namespaces(t, &errs, &mut out);
    let bridges = check_bridges(t, &namespaces, &errs, &mut out);
    // Interface names per namespace, starting with the bridges.
    let mut ifnames: HashMap<&str, HashMap<&str, Pos>> = HashMap::new();
    for b in &t.bridges {
        ifnames.entry(b.netns()).or_default().insert(&b.name, b.pos);
    }
    let mut addresses: HashMap<IpAddr, &End> = HashMap::new();
    for link in &t.links {
        if let Link::OvsInternal { bridge, end, pos } = link {
            match bridges.get(bridge.as_str()) {
                None => out.push(unknown_bridge(&errs, *pos, bridge, t)),
                Some(BridgeKind::Linux) => out.push(errs.hint(
                    *pos,
                    format!("interface {} in namespace {}", end.name, end.netns()),
                    format!(
                        "bridge {bridge} is a Linux bridge; ovs-internal ports need an OVS bridge"
                    ),
                    format!("declare `{{name: {bridge}, kind: ovs}}` or use a veth link"),
                )),
                Some(BridgeKind::Ovs) => {}
            }
            if end.bridge().is_some() {
                out.push(errs.hint(
                    end.pos,
                    format!("interface {}", end.name),
                    "an ovs-internal end sits in a namespace, not on a bridge",
                    "write `end: {ns: NS, name: IFNAME}`",
                ));
            }
            // OVS creates the port in the root namespace before it is moved.
            if end.netns() != HOST {
                claim_name(
                    &mut ifnames,
                    HOST,
                    end,
                    &errs,
                    "while OVS creates it",
                    &mut out,
                );
            }
        }
        for end in link.ends() {
            check_end(end, &namespaces, &bridges, &errs, t, &mut out);
            claim_name(&mut ifnames, end.netns(), end, &errs, "", &mut out);
            for cidr in &end.addresses {
                if let Some(first) = addresses.get(&cidr.addr) {
                    out.push(errs.hint(
                        end.pos,
                        describe(end),
                        format!(
                            "address {} is already used by {}",
                            cidr.addr,
                            describe(first)
                        ),
                        "give each interface its own address",
                    ));
                } else {
                    addresses.insert(cidr.addr, end);
                }
            }
        }
    }
    check_routes(t, &ifnames, &errs, &mut out);
    check_sysctl_shapes(t, &errs, &mut out);
    TopologyError::from_list(out)
}

/// Checks that need the running kernel: sysctl keys must be in its list.
pub fn validate_environment(t: &Topology) -> Result<(), TopologyError> {
    validate_environment_with(t, sysctl_keys::catalog())
}

fn validate_environment_with(t: &Topology, cat: &Catalog) -> Result<(), TopologyError> {
    let errs = Errors { file: &t.source };
    let mut out = Vec::new();
    for ns in &t.namespaces {
        for s in &ns.sysctls {
            // Malformed keys were reported by `validate`; never look them up.
            if sysctl_keys::namespace_key_shape(&s.key).is_err() || cat.has_namespace_key(&s.key) {
                continue;
            }
            let object = format!("namespace {}", ns.name);
            let msg = format!("unknown sysctl `{}`", s.key);
            out.push(match cat.suggest_namespace_key(&s.key) {
                Some(best) => errs.hint(s.pos, object, msg, format!("did you mean `{best}`?")),
                None => errs.hint(
                    s.pos,
                    object,
                    msg,
                    "see `sysctl -a -N | grep ^net.` for the keys of a network namespace",
                ),
            });
        }
    }
    for end in t.ends() {
        for s in &end.sysctls {
            if sysctl_keys::interface_key_shape(&s.key).is_err() || cat.has_interface_key(&s.key) {
                continue;
            }
            let (family, _) = sysctl_keys::split_interface_key(&s.key);
            let msg = format!("unknown interface sysctl `{}`", s.key);
            out.push(match cat.suggest_interface_key(&s.key) {
                Some(best) => errs.hint(s.pos, describe(end), msg, format!("did you mean `{best}`?")),
                None => errs.hint(
                    s.pos,
                    describe(end),
                    msg,
                    format!("keys are those under net.{family}.conf.IFNAME, e.g. accept_local, rp_filter"),
                ),
            });
        }
    }
    TopologyError::from_list(out)
}

/// Checks a `--prefix` against the topology it will be applied to: a name that fits
/// in the file but not with the prefix gets an error that says to shorten the prefix.
pub fn check_prefix(t: &Topology, prefix: &str) -> Result<(), TopologyError> {
    let errs = Errors { file: &t.source };
    if let Err(e) = names::check(NameKind::Prefix, prefix) {
        return Err(errs.at(
            Pos { line: 1, col: 1 },
            format!("lab {}", t.name),
            e.to_string(),
        ));
    }
    let mut out = Vec::new();
    let mut too_long = |name: &str, max: usize, pos: Pos, object: String| {
        let total = prefix.len() + name.len();
        if name.len() <= max && total > max {
            out.push(errs.hint(
                pos,
                object,
                format!(
                    "with prefix `{prefix}` the name `{prefix}{name}` is {total} bytes, more than {max}"
                ),
                format!(
                    "shorten the prefix to at most {} bytes",
                    max.saturating_sub(name.len())
                ),
            ));
        }
    };
    too_long(
        &t.name,
        names::LAB_MAX,
        Pos { line: 1, col: 1 },
        format!("lab {}", t.name),
    );
    for ns in &t.namespaces {
        too_long(
            &ns.name,
            names::NETNS_MAX,
            ns.pos,
            format!("namespace {}", ns.name),
        );
    }
    // A bridge inside a lab namespace keeps its name (see prefix.rs).
    for b in t.bridges.iter().filter(|b| b.netns.is_none()) {
        too_long(
            &b.name,
            names::IFNAME_MAX,
            b.pos,
            format!("bridge {}", b.name),
        );
    }
    for link in &t.links {
        let internal = matches!(link, Link::OvsInternal { .. });
        for end in link.ends() {
            // Names that get the prefix: root-namespace ends, bridge ports, OVS internal ports.
            if end.netns() == HOST || internal {
                too_long(&end.name, names::IFNAME_MAX, end.pos, describe(end));
            }
        }
    }
    TopologyError::from_list(out)
}

fn describe(end: &End) -> String {
    match &end.place {
        Place::Netns(ns) => format!("interface {} in namespace {ns}", end.name),
        Place::Bridge(b) => format!("interface {} on bridge {b} (namespace host)", end.name),
    }
}

fn check_sizes(t: &Topology, errs: &Errors<'_>) -> Result<(), TopologyError> {
    for (what, n, max) in [
        ("namespaces", t.namespaces.len(), NAMESPACES_MAX),
        ("bridges", t.bridges.len(), BRIDGES_MAX),
        ("links", t.links.len(), LINKS_MAX),
    ] {
        if n > max {
            return Err(errs.hint(
                Pos { line: 1, col: 1 },
                format!("lab {}", t.name),
                format!("{n} {what}; vethscope builds at most {max}"),
                "split the lab into several",
            ));
        }
    }
    Ok(())
}

fn check_lab_name(t: &Topology, errs: &Errors<'_>, out: &mut Vec<TopologyError>) {
    if let Err(e) = names::check(NameKind::Lab, &t.name) {
        out.push(errs.at(
            Pos { line: 1, col: 1 },
            format!("lab {}", t.name.escape_debug()),
            e.to_string(),
        ));
    }
}

fn check_namespaces<'t>(
    t: &'t Topology,
    errs: &Errors<'_>,
    out: &mut Vec<TopologyError>,
) -> HashSet<&'t str> {
    let mut seen: HashMap<&str, Pos> = HashMap::new();
    for ns in &t.namespaces {
        let object = format!("namespace {}", ns.name.escape_debug());
        if ns.name == HOST {
            out.push(errs.hint(
                ns.pos,
                object,
                "`host` is the reserved name of the root namespace",
                "don't declare it; use `ns: host` on an end",
            ));
            continue;
        }
        if let Err(e) = names::check(NameKind::Netns, &ns.name) {
            out.push(errs.at(ns.pos, object, e.to_string()));
            continue;
        }
        if let Some(first) = seen.get(ns.name.as_str()) {
            out.push(errs.hint(
                ns.pos,
                object,
                format!(
                    "namespace {} is declared twice (first at line {})",
                    ns.name, first.line
                ),
                "remove one",
            ));
        } else {
            seen.insert(&ns.name, ns.pos);
        }
    }
    seen.into_keys().collect()
}

fn check_bridges<'t>(
    t: &'t Topology,
    namespaces: &HashSet<&str>,
    errs: &Errors<'_>,
    out: &mut Vec<TopologyError>,
) -> HashMap<&'t str, BridgeKind> {
    let mut seen: HashMap<&str, BridgeKind> = HashMap::new();
    for b in &t.bridges {
        let object = format!(
            "bridge {} (namespace {})",
            b.name.escape_debug(),
            b.netns().escape_debug()
        );
        if !check_ifname(&b.name, b.pos, &object, errs, out) {
            continue;
        }
        if let Some(ns) = &b.netns {
            if !namespaces.contains(ns.as_str()) {
                let known: Vec<&str> = t.netns_names().collect();
                out.push(errs.hint(
                    b.pos,
                    &object,
                    format!("namespace {} is not declared", ns.escape_debug()),
                    format!(
                        "add `- name: {}` under `namespaces:`, or drop `ns:` for the root namespace (declared: {})",
                        ns.escape_debug(),
                        known.join(", ")
                    ),
                ));
            }
            if b.kind == BridgeKind::Ovs {
                out.push(errs.hint(
                    b.pos,
                    &object,
                    "an OVS bridge inside a lab namespace is not supported: Open vSwitch's daemons and datapath live in the root namespace",
                    "use `kind: linux` for a bridge inside a namespace, or drop `ns:`",
                ));
            }
        }
        if seen.contains_key(b.name.as_str()) {
            out.push(errs.hint(
                b.pos,
                object,
                format!("bridge {} is declared twice", b.name),
                "remove one",
            ));
        } else {
            seen.insert(&b.name, b.kind);
        }
    }
    seen
}

fn check_end(
    end: &End,
    namespaces: &HashSet<&str>,
    bridges: &HashMap<&str, BridgeKind>,
    errs: &Errors<'_>,
    t: &Topology,
    out: &mut Vec<TopologyError>,
) {
    check_ifname(&end.name, end.pos, &describe(end), errs, out);
    match &end.place {
        Place::Netns(ns) if ns != HOST && !namespaces.contains(ns.as_str()) => {
            let known: Vec<&str> = t.netns_names().collect();
            out.push(errs.hint(
                end.pos,
                describe(end),
                format!("namespace {} is not declared", ns.escape_debug()),
                format!(
                    "add `- name: {}` under `namespaces:` (declared: {})",
                    ns.escape_debug(),
                    known.join(", ")
                ),
            ));
        }
        Place::Bridge(b) if !bridges.contains_key(b.as_str()) => {
            out.push(unknown_bridge(errs, end.pos, b, t));
        }
        Place::Bridge(b) if !end.addresses.is_empty() => {
            out.push(errs.hint(
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
        out.push(errs.hint(
            end.pos,
            describe(end),
            "the MAC address is a multicast address",
            "use a unicast address (first byte even), e.g. 02:00:00:00:00:01",
        ));
    }
}

fn unknown_bridge(errs: &Errors<'_>, pos: Pos, name: &str, t: &Topology) -> TopologyError {
    let known: Vec<&str> = t.bridges.iter().map(|b| b.name.as_str()).collect();
    let name = name.escape_debug();
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

/// True when the name is usable; else records why not.
fn check_ifname(
    name: &str,
    pos: Pos,
    object: &str,
    errs: &Errors<'_>,
    out: &mut Vec<TopologyError>,
) -> bool {
    if let Err(e) = names::check(NameKind::Interface, name) {
        out.push(errs.at(pos, object, e.to_string()));
        return false;
    }
    if name == "lo" {
        out.push(errs.hint(
            pos,
            object,
            "`lo` is the loopback device of every namespace",
            "pick another name",
        ));
        return false;
    }
    true
}

fn claim_name<'t>(
    names: &mut HashMap<&'t str, HashMap<&'t str, Pos>>,
    netns: &'t str,
    end: &'t End,
    errs: &Errors<'_>,
    when: &str,
    out: &mut Vec<TopologyError>,
) {
    let slot = names.entry(netns).or_default();
    if let Some(first) = slot.get(end.name.as_str()) {
        let when = if when.is_empty() {
            String::new()
        } else {
            format!(" {when}")
        };
        out.push(errs.hint(
            end.pos,
            describe(end),
            format!(
                "interface name {} is used twice in namespace {netns}{when} (first at line {})",
                end.name, first.line
            ),
            "names must be unique per namespace",
        ));
    } else {
        slot.insert(&end.name, end.pos);
    }
}

fn check_routes(
    t: &Topology,
    ifnames: &HashMap<&str, HashMap<&str, Pos>>,
    errs: &Errors<'_>,
    out: &mut Vec<TopologyError>,
) {
    for ns in &t.namespaces {
        let object = format!("route in namespace {}", ns.name);
        for r in &ns.routes {
            if let Some(dev) = &r.dev
                && !ifnames
                    .get(ns.name.as_str())
                    .is_some_and(|m| m.contains_key(dev.as_str()))
            {
                out.push(errs.hint(
                    r.pos,
                    &object,
                    format!(
                        "device {} is not an interface of namespace {}",
                        dev.escape_debug(),
                        ns.name
                    ),
                    "name an interface of this namespace",
                ));
                continue;
            }
            if let Some(via) = r.via {
                check_gateway(t, &ns.name, r, via, errs, &object, out);
            }
        }
    }
}

/// The kernel refuses a gateway it cannot reach directly; say so before building.
fn check_gateway(
    t: &Topology,
    ns: &str,
    r: &super::Route,
    via: IpAddr,
    errs: &Errors<'_>,
    object: &str,
    out: &mut Vec<TopologyError>,
) {
    if let Some(to) = &r.to
        && to.addr.is_ipv4() != via.is_ipv4()
    {
        out.push(errs.hint(
            r.pos,
            object,
            format!("gateway {via} and destination {to} are of different IP versions"),
            "use a gateway of the destination's family",
        ));
        return;
    }
    let link_local = matches!(via, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
    if link_local {
        if r.dev.is_none() {
            out.push(errs.hint(
                r.pos,
                object,
                format!("link-local gateway {via} needs a device"),
                "add `dev: IFNAME`",
            ));
        }
        return;
    }
    let subnets: Vec<&Cidr> = t
        .ends()
        .filter(|e| e.netns() == ns && r.dev.as_ref().is_none_or(|d| *d == e.name))
        .flat_map(|e| e.addresses.iter())
        .collect();
    if subnets.iter().any(|c| contains(c, via)) {
        return;
    }
    let listed: Vec<String> = subnets.iter().map(|c| network(c).to_string()).collect();
    let on = match &r.dev {
        Some(dev) => format!("interface {dev} of namespace {ns}"),
        None => format!("namespace {ns}"),
    };
    out.push(errs.hint(
        r.pos,
        object,
        format!("gateway {via} is not on a connected subnet of {on}"),
        if listed.is_empty() {
            format!("give an interface of {ns} an address in the gateway's subnet")
        } else {
            format!(
                "use a gateway in {} or add an address in its subnet",
                listed.join(", ")
            )
        },
    ));
}

fn contains(c: &Cidr, ip: IpAddr) -> bool {
    match (c.addr, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(c.prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(c.prefix))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// The subnet of an address (10.1.1.2/24 → 10.1.1.0/24), for messages.
fn network(c: &Cidr) -> Cidr {
    let addr = match c.addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(c.prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(c.prefix))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    };
    Cidr {
        addr,
        prefix: c.prefix,
    }
}

fn check_sysctl_shapes(t: &Topology, errs: &Errors<'_>, out: &mut Vec<TopologyError>) {
    for ns in &t.namespaces {
        for s in &ns.sysctls {
            let object = format!("namespace {}", ns.name.escape_debug());
            if let Err(m) = sysctl_keys::namespace_key_shape(&s.key) {
                out.push(errs.at(s.pos, &object, m));
            }
            if let Err(m) = sysctl_keys::value_shape(&s.value) {
                out.push(errs.at(s.pos, &object, m));
            }
        }
    }
    for end in t.ends() {
        for s in &end.sysctls {
            if let Err(m) = sysctl_keys::interface_key_shape(&s.key) {
                out.push(errs.at(s.pos, describe(end), m));
            }
            if let Err(m) = sysctl_keys::value_shape(&s.value) {
                out.push(errs.at(s.pos, describe(end), m));
            }
        }
    }
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

    #[test]
    fn every_error_of_a_file_in_one_run() {
        let err = check(
            "name: t\nnamespaces: [{name: a}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: a, name: averyveryverylongname}\n      - {ns: b, name: y}\n  - kind: veth\n    ends:\n      - {ns: a, name: \"x/y\"}\n      - {ns: a, name: z}\n",
        )
        .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert!(
            lines[0].starts_with("t.yaml:6:") && lines[0].contains("21 bytes"),
            "{err}"
        );
        assert!(
            lines[1].starts_with("t.yaml:7:") && lines[1].contains("namespace b is not declared"),
            "{err}"
        );
        assert!(
            lines[2].starts_with("t.yaml:10:") && lines[2].contains("'/'"),
            "{err}"
        );
    }

    #[test]
    fn sysctl_path_walk_is_refused_with_position() {
        let err = check(
            "name: t\nnamespaces: [{name: ev1}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: ev1, name: e0, addresses: [10.9.9.1/24], sysctls: {\"../../../../kernel/printk_ratelimit\": 7}}\n      - {ns: ev1, name: e1}\n",
        )
        .unwrap_err();
        assert!(err.starts_with("t.yaml:6:"), "{err}");
        assert!(err.contains("not a plain key"), "{err}");
        let err = check("name: t\nnamespaces: [{name: a, sysctls: {kernel.core_pattern: x}}]\n")
            .unwrap_err();
        assert!(err.contains("not a network-namespace setting"), "{err}");
    }

    #[test]
    fn unknown_sysctl_gets_did_you_mean() {
        let t = Topology::from_yaml(
            "name: t\nnamespaces: [{name: a, sysctls: {net.ipv4.ip_forwrd: 1}}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: a, name: x, sysctls: {acept_local: 1}}\n      - {ns: a, name: y}\n",
            "t.yaml",
        )
        .unwrap();
        validate(&t).unwrap();
        let err = validate_environment(&t).unwrap_err().to_string();
        assert!(err.contains("did you mean `net.ipv4.ip_forward`?"), "{err}");
        assert!(err.contains("did you mean `accept_local`?"), "{err}");
    }

    #[test]
    fn gateway_must_be_on_a_connected_subnet() {
        let base = "name: t\nnamespaces:\n  - name: a\n    routes: [{to: default, via: VIA}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: a, name: x, addresses: [10.1.1.2/24]}\n      - {ns: host, name: y}\n";
        assert!(check(&base.replace("VIA", "10.1.1.1")).is_ok());
        let err = check(&base.replace("VIA", "10.2.0.1")).unwrap_err();
        assert!(err.starts_with("t.yaml:4:"), "{err}");
        assert!(
            err.contains("not on a connected subnet") && err.contains("10.1.1.0/24"),
            "{err}"
        );
    }

    #[test]
    fn prefix_that_makes_names_too_long_says_shorten_the_prefix() {
        let t = Topology::from_yaml(
            "name: t\nbridges: [{name: br-long-name1}]\nnamespaces: [{name: a}]\nlinks:\n  - kind: veth\n    ends:\n      - {ns: a, name: x}\n      - {bridge: br-long-name1, name: port-abcdefgh}\n",
            "t.yaml",
        )
        .unwrap();
        validate(&t).unwrap();
        let err = check_prefix(&t, "t123-").unwrap_err().to_string();
        assert!(
            err.contains("shorten the prefix to at most 2 bytes"),
            "{err}"
        );
        assert!(err.lines().count() == 2, "{err}");
        assert!(check_prefix(&t, "t-").is_ok());
    }

    #[test]
    fn yaml_limits_and_duplicate_keys() {
        let dup = check("name: t\nname: u\n").unwrap_err();
        assert!(
            dup.starts_with("t.yaml:2:1") && dup.contains("duplicate key `name`"),
            "{dup}"
        );
        let deep = format!("name: t\nlinks: {}{}\n", "[".repeat(100), "]".repeat(100));
        let e = check(&deep).unwrap_err();
        assert!(e.contains("nesting deeper than 32"), "{e}");
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            bomb.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n", p = i - 1));
        }
        let e = check(&bomb).unwrap_err();
        assert!(e.contains("more than 500000 YAML nodes"), "{e}");
        let e = check("name: \"a\\0b\"\n").unwrap_err();
        assert!(e.starts_with("t.yaml:1:7"), "{e}");
    }
}
