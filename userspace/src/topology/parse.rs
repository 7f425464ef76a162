//! YAML → [`Topology`]: shape only (keys, types, values that parse). Cross-object rules
//! (references, uniqueness, limits) are in `validate`.

use super::{
    Bridge, BridgeKind, Cidr, End, ExecLine, Link, Namespace, Place, Pos, Route, Sysctl, Topology,
    TopologyError,
    names::{self, NameKind},
    yaml::{self, Errors, Node},
};

pub fn parse(text: &str, file: &str) -> Result<Topology, TopologyError> {
    let root = yaml::load(text, file)?;
    let errs = Errors { file };
    let top = yaml::entries(&root, &errs, "lab")?;
    yaml::check_keys(
        &top,
        &["name", "namespaces", "bridges", "links"],
        &errs,
        "lab",
    )?;

    let mut name = None;
    let mut topo = Topology {
        name: String::new(),
        source: file.to_string(),
        namespaces: Vec::new(),
        bridges: Vec::new(),
        links: Vec::new(),
    };
    // Every item is parsed even after one failed, so a file's errors come in one run.
    let mut errors = Vec::new();
    for (key, value, _) in &top {
        match key.as_str() {
            "name" => match lab_name(value, &errs) {
                Ok(n) => name = Some(n),
                Err(e) => {
                    errors.push(e);
                    name = Some(String::new());
                }
            },
            "namespaces" => {
                for item in yaml::sequence(value, &errs, "namespaces")? {
                    match namespace(item, &errs) {
                        Ok(ns) => topo.namespaces.push(ns),
                        Err(e) => errors.push(e),
                    }
                }
            }
            "bridges" => {
                for item in yaml::sequence(value, &errs, "bridges")? {
                    match bridge(item, &errs) {
                        Ok(b) => topo.bridges.push(b),
                        Err(e) => errors.push(e),
                    }
                }
            }
            "links" => {
                for (i, item) in yaml::sequence(value, &errs, "links")?
                    .into_iter()
                    .enumerate()
                {
                    match link(item, i + 1, &errs) {
                        Ok(l) => topo.links.push(l),
                        Err(e) => errors.push(e),
                    }
                }
            }
            _ => {}
        }
    }
    if name.is_none() {
        errors.push(errs.hint(
            Pos { line: 1, col: 1 },
            "lab",
            "the lab has no `name`",
            "add a line `name: mylab` at the top",
        ));
    }
    TopologyError::from_list(errors)?;
    topo.name = name.unwrap_or_default();
    topo.place_bridge_ports();
    Ok(topo)
}

/// The lab name, checked where it is written (it becomes file names under /run and
/// /sys/fs/bpf).
fn lab_name(node: &Node<'_>, errs: &Errors<'_>) -> Result<String, TopologyError> {
    let name = yaml::string(node, errs, "lab", "name")?;
    names::check(NameKind::Lab, &name).map_err(|e| {
        errs.at(
            yaml::pos(node),
            format!("lab {}", name.escape_debug()),
            e.to_string(),
        )
    })?;
    Ok(name)
}

fn namespace(node: &Node<'_>, errs: &Errors<'_>) -> Result<Namespace, TopologyError> {
    let at = yaml::pos(node);
    let fields = yaml::entries(node, errs, "namespace")?;
    let name = required(&fields, "name", at, errs, "namespace")?;
    let object = format!("namespace {name}");
    yaml::check_keys(
        &fields,
        &["name", "sysctls", "routes", "exec"],
        errs,
        &object,
    )?;
    let mut ns = Namespace {
        name,
        sysctls: Vec::new(),
        routes: Vec::new(),
        exec: Vec::new(),
        pos: at,
    };
    for (key, value, _) in &fields {
        match key.as_str() {
            "sysctls" => ns.sysctls = sysctls(value, errs, &object)?,
            "routes" => {
                for item in yaml::sequence(value, errs, &object)? {
                    ns.routes.push(route(item, errs, &object)?);
                }
            }
            "exec" => {
                for item in yaml::sequence(value, errs, &object)? {
                    ns.exec.push(exec_line(item, errs, &object)?);
                }
            }
            _ => {}
        }
    }
    Ok(ns)
}

fn bridge(node: &Node<'_>, errs: &Errors<'_>) -> Result<Bridge, TopologyError> {
    let at = yaml::pos(node);
    let fields = yaml::entries(node, errs, "bridge")?;
    let name = required(&fields, "name", at, errs, "bridge")?;
    let object = format!("bridge {name}");
    yaml::check_keys(&fields, &["name", "kind", "mtu", "ns"], errs, &object)?;
    let mut bridge = Bridge {
        name,
        kind: BridgeKind::Linux,
        mtu: None,
        netns: None,
        pos: at,
    };
    for (key, value, kpos) in &fields {
        match key.as_str() {
            "kind" => {
                bridge.kind = match yaml::string(value, errs, &object, "kind")?.as_str() {
                    "linux" => BridgeKind::Linux,
                    "ovs" => BridgeKind::Ovs,
                    other => {
                        return Err(errs.hint(
                            *kpos,
                            &object,
                            format!("unknown bridge kind `{other}`"),
                            "use `linux` or `ovs`",
                        ));
                    }
                }
            }
            "mtu" => bridge.mtu = Some(mtu(value, errs, &object)?),
            // `ns: host` is the root namespace, as on an end.
            "ns" => match yaml::string(value, errs, &object, "ns")? {
                n if n == super::HOST => bridge.netns = None,
                n => bridge.netns = Some(n),
            },
            _ => {}
        }
    }
    Ok(bridge)
}

fn link(node: &Node<'_>, index: usize, errs: &Errors<'_>) -> Result<Link, TopologyError> {
    let at = yaml::pos(node);
    let object = format!("link {index}");
    let fields = yaml::entries(node, errs, &object)?;
    let kind = required(&fields, "kind", at, errs, &object)?;
    match kind.as_str() {
        "veth" => {
            yaml::check_keys(&fields, &["kind", "ends"], errs, &object)?;
            let ends_node = field(&fields, "ends").ok_or_else(|| {
                errs.hint(
                    at,
                    &object,
                    "a veth link needs `ends:`",
                    "list its two ends under `ends:`",
                )
            })?;
            let items = yaml::sequence(ends_node, errs, &object)?;
            if items.len() != 2 {
                return Err(errs.hint(
                    yaml::pos(ends_node),
                    &object,
                    format!("a veth pair has exactly two ends, found {}", items.len()),
                    "list two ends",
                ));
            }
            let a = end(items[0], errs, &object)?;
            let b = end(items[1], errs, &object)?;
            Ok(Link::Veth {
                ends: [a, b],
                pos: at,
            })
        }
        "ovs-internal" => {
            yaml::check_keys(&fields, &["kind", "bridge", "end"], errs, &object)?;
            let bridge = required(&fields, "bridge", at, errs, &object)?;
            let end_node = field(&fields, "end").ok_or_else(|| {
                errs.hint(
                    at,
                    &object,
                    "an ovs-internal link needs `end:`",
                    "add `end: {ns: NS, name: IFNAME}`",
                )
            })?;
            let end = end(end_node, errs, &object)?;
            Ok(Link::OvsInternal {
                bridge,
                end,
                pos: at,
            })
        }
        other => Err(errs.hint(
            at,
            &object,
            format!("unknown link kind `{other}`"),
            "use `veth` or `ovs-internal`",
        )),
    }
}

fn end(node: &Node<'_>, errs: &Errors<'_>, link: &str) -> Result<End, TopologyError> {
    let at = yaml::pos(node);
    let fields = yaml::entries(node, errs, link)?;
    let name = required(&fields, "name", at, errs, link)?;
    let ns = field(&fields, "ns")
        .map(|v| yaml::string(v, errs, link, "ns"))
        .transpose()?;
    let bridge = field(&fields, "bridge")
        .map(|v| yaml::string(v, errs, link, "bridge"))
        .transpose()?;
    let where_ = ns
        .as_deref()
        .map(|n| format!(" in namespace {n}"))
        .unwrap_or_default();
    let object = format!("{link}, interface {name}{where_}");
    yaml::check_keys(
        &fields,
        &[
            "ns",
            "bridge",
            "name",
            "addresses",
            "mtu",
            "mac",
            "sysctls",
            "impair",
        ],
        errs,
        &object,
    )?;
    let place = match (ns, bridge) {
        (Some(ns), None) => Place::Netns(ns),
        (None, Some(br)) => Place::Bridge(br),
        (Some(_), Some(_)) => {
            return Err(errs.hint(
                at,
                &object,
                "an end has both `ns` and `bridge`",
                "keep one of them",
            ));
        }
        (None, None) => {
            return Err(errs.hint(
                at,
                &object,
                "an end needs `ns` (a namespace, or `host`) or `bridge`",
                "add `ns: NAME` or `bridge: NAME`",
            ));
        }
    };
    let mut end = End {
        place,
        name,
        addresses: Vec::new(),
        mtu: None,
        mac: None,
        sysctls: Vec::new(),
        impair: None,
        bridge_netns: None,
        pos: at,
    };
    for (key, value, _) in &fields {
        match key.as_str() {
            "addresses" => {
                for item in yaml::sequence(value, errs, &object)? {
                    let text = yaml::string(item, errs, &object, "addresses")?;
                    let cidr: Cidr = text.parse().map_err(|e: String| {
                        errs.at(yaml::pos(item), &object, format!("bad address: {e}"))
                    })?;
                    end.addresses.push(cidr);
                }
            }
            "mtu" => end.mtu = Some(mtu(value, errs, &object)?),
            "mac" => {
                let text = yaml::string(value, errs, &object, "mac")?;
                end.mac = Some(parse_mac(&text).ok_or_else(|| {
                    errs.hint(
                        yaml::pos(value),
                        &object,
                        format!("`{text}` is not a MAC address"),
                        "write six hex bytes like 02:00:00:00:00:01",
                    )
                })?);
            }
            "sysctls" => end.sysctls = sysctls(value, errs, &object)?,
            "impair" => end.impair = Some(impair(value, errs, &object)?),
            _ => {}
        }
    }
    Ok(end)
}

fn route(node: &Node<'_>, errs: &Errors<'_>, object: &str) -> Result<Route, TopologyError> {
    let at = yaml::pos(node);
    let fields = yaml::entries(node, errs, object)?;
    yaml::check_keys(&fields, &["to", "via", "dev"], errs, object)?;
    let mut route = Route {
        to: None,
        via: None,
        dev: None,
        pos: at,
    };
    for (key, value, _) in &fields {
        let text = yaml::string(value, errs, object, key)?;
        match key.as_str() {
            "to" if text == "default" => route.to = None,
            "to" => {
                route.to = Some(text.parse().map_err(|e: String| {
                    errs.at(yaml::pos(value), object, format!("bad route `to`: {e}"))
                })?)
            }
            "via" => {
                route.via = Some(text.parse().map_err(|_| {
                    errs.at(
                        yaml::pos(value),
                        object,
                        format!("route `via` `{text}` is not an IP address"),
                    )
                })?)
            }
            "dev" => route.dev = Some(text),
            _ => {}
        }
    }
    if field(&fields, "to").is_none() {
        return Err(errs.hint(
            at,
            object,
            "a route needs `to`",
            "write `to: default` or `to: 10.2.0.0/16`",
        ));
    }
    if route.via.is_none() && route.dev.is_none() {
        return Err(errs.hint(
            at,
            object,
            "a route needs `via` or `dev`",
            "add `via: GATEWAY` or `dev: IFNAME`",
        ));
    }
    Ok(route)
}

/// Longest `exec:` line accepted (a startup command, not a script).
const EXEC_LINE_MAX: usize = 4096;

fn exec_line(node: &Node<'_>, errs: &Errors<'_>, object: &str) -> Result<ExecLine, TopologyError> {
    let at = yaml::pos(node);
    let command = yaml::string(node, errs, object, "exec")?;
    let problem = if command.trim().is_empty() {
        Some("an `exec` command is empty".to_string())
    } else if command.len() > EXEC_LINE_MAX {
        Some(format!(
            "an `exec` command is {} bytes long (at most {EXEC_LINE_MAX})",
            command.len()
        ))
    } else {
        command
            .chars()
            .find(|c| c.is_control() && *c != '\t')
            .map(|c| format!("an `exec` command contains the control character {c:?}"))
    };
    match problem {
        Some(p) => Err(errs.hint(
            at,
            object,
            p,
            "write one shell command line per item, e.g. `- ip route add 10.2.0.0/16 via 10.1.1.1`",
        )),
        None => Ok(ExecLine { command, pos: at }),
    }
}

fn sysctls(node: &Node<'_>, errs: &Errors<'_>, object: &str) -> Result<Vec<Sysctl>, TopologyError> {
    yaml::entries(node, errs, object)?
        .into_iter()
        .map(|(key, value, pos)| {
            let value = yaml::scalar_text(value).ok_or_else(|| {
                errs.at(
                    yaml::pos(value),
                    object,
                    format!("sysctl `{key}` needs a plain value"),
                )
            })?;
            Ok(Sysctl { key, value, pos })
        })
        .collect()
}

/// `impair: {loss: 1%, rate: 100mbit, ...}`: each value checked where it is written.
fn impair(
    node: &Node<'_>,
    errs: &Errors<'_>,
    object: &str,
) -> Result<crate::impair::Impairment, TopologyError> {
    use crate::impair::spec::KEYS;
    let fields = yaml::entries(node, errs, object)?;
    yaml::check_keys(&fields, &KEYS, errs, object)?;
    let mut imp = crate::impair::Impairment::default();
    for (key, value, _) in &fields {
        let text = yaml::scalar_text(value).ok_or_else(|| {
            errs.at(
                yaml::pos(value),
                object,
                format!("impairment `{key}` needs a plain value like 1% or 100mbit"),
            )
        })?;
        imp.set(key, &text)
            .map_err(|e| errs.hint(yaml::pos(value), object, e.message, e.hint))?;
    }
    imp.validate()
        .map_err(|e| errs.hint(yaml::pos(node), object, e.message, e.hint))?;
    Ok(imp)
}

fn mtu(node: &Node<'_>, errs: &Errors<'_>, object: &str) -> Result<u32, TopologyError> {
    let v = yaml::integer(node, errs, object, "mtu")?;
    u32::try_from(v)
        .ok()
        .filter(|m| (68..=65535).contains(m))
        .ok_or_else(|| {
            errs.hint(
                yaml::pos(node),
                object,
                format!("mtu {v} is out of range"),
                "use 68..=65535",
            )
        })
}

fn field<'n, 'a>(fields: &[(String, &'n Node<'a>, Pos)], key: &str) -> Option<&'n Node<'a>> {
    fields.iter().find(|(k, _, _)| k == key).map(|(_, v, _)| *v)
}

fn required(
    fields: &[(String, &Node<'_>, Pos)],
    key: &str,
    at: Pos,
    errs: &Errors<'_>,
    object: &str,
) -> Result<String, TopologyError> {
    let node = field(fields, key).ok_or_else(|| {
        errs.hint(
            at,
            object,
            format!("missing `{key}`"),
            format!("add `{key}: ...`"),
        )
    })?;
    yaml::string(node, errs, object, key)
}

pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}
