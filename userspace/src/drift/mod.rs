//! Drift: where a running lab differs from the topology file it was made from (the
//! plan `up` recorded in the lab's state file). `show LAB --drift` lists it; `up FILE`
//! on the running lab repairs it.
//!
//! Compared: namespaces, bridges, every end of every link (present, up, addresses,
//! MTU, MAC, sysctls, bridge membership), namespace sysctls and routes, and foreign
//! interfaces on a lab bridge. IPv6 link-local addresses and kernel routes are the
//! kernel's own and are never drift.

use std::collections::BTreeMap;

use crate::{
    inspect::{self, LabView, LinkView},
    netns,
    topology::{BridgeKind, End, HOST, Route, Topology},
};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Drift {
    /// What kind of difference: missing-namespace, missing-bridge, missing-interface,
    /// interface-down, missing-address, extra-address, mtu, mac, sysctl,
    /// missing-route, not-on-bridge, foreign-interface.
    pub kind: String,
    /// The namespace of the object (`host` = root namespace).
    pub netns: String,
    /// The object: an interface, bridge, route or sysctl key.
    pub object: String,
    pub expected: String,
    pub actual: String,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} in namespace {}: expected {}, found {}",
            self.kind, self.object, self.netns, self.expected, self.actual
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error(transparent)]
    Inspect(#[from] inspect::InspectError),
    #[error(
        "lab {lab} has no recorded topology file (it was not made by `up`, or its state is lost), so there is nothing to compare with"
    )]
    NoPlan { lab: String },
}

/// Live sysctl values of the keys a topology sets: (netns, key) → value, where key is
/// the full key for namespace sysctls and `IFNAME/KEY` for interface ones.
pub type LiveSysctls = BTreeMap<(String, String), String>;

/// Reads the lab, its recorded plan and the sysctls the plan sets, and compares.
pub async fn drift(lab: &str) -> Result<Vec<Drift>, DriftError> {
    let view = inspect::lab_view(lab).await?;
    let plan = crate::wire::state::read(lab)
        .map(|s| s.topology)
        .ok_or_else(|| DriftError::NoPlan {
            lab: lab.to_string(),
        })?;
    let live = read_sysctls(&plan);
    Ok(compare(&plan, &view, &live))
}

/// Reads every sysctl the plan sets, in its namespace; unreadable ones are left out
/// (and then show as drift, value "unreadable").
pub fn read_sysctls(t: &Topology) -> LiveSysctls {
    let mut out = LiveSysctls::new();
    for ns in &t.namespaces {
        if !netns::exists(&ns.name) {
            continue;
        }
        for s in &ns.sysctls {
            if let Ok(v) = netns::read_sysctl(&ns.name, &s.key) {
                out.insert((ns.name.clone(), s.key.clone()), v);
            }
        }
    }
    for end in t.ends() {
        let ns = end.netns();
        if !netns::exists(ns) {
            continue;
        }
        for s in &end.sysctls {
            let key = iface_key(&s.key);
            let path = inspect::sysctls::iface_path(&end.name, &key);
            if let Ok(Ok(v)) = netns::run_in(ns, || std::fs::read_to_string(&path)) {
                out.insert(
                    (ns.to_string(), format!("{}/{key}", end.name)),
                    v.trim().to_string(),
                );
            }
        }
    }
    out
}

/// `accept_local` → `ipv4.accept_local`; `ipv6.x` and `ipv4.x` stay.
pub fn iface_key(key: &str) -> String {
    if key.starts_with("ipv4.") || key.starts_with("ipv6.") {
        key.to_string()
    } else {
        format!("ipv4.{key}")
    }
}

fn d(
    kind: &str,
    netns: &str,
    object: impl Into<String>,
    expected: impl Into<String>,
    actual: impl Into<String>,
) -> Drift {
    Drift {
        kind: kind.into(),
        netns: netns.into(),
        object: object.into(),
        expected: expected.into(),
        actual: actual.into(),
    }
}

/// The differences between the plan `t` and the live `view` (pure; tested directly).
pub fn compare(t: &Topology, view: &LabView, live: &LiveSysctls) -> Vec<Drift> {
    let mut out = Vec::new();
    for ns in &t.namespaces {
        let Some(nv) = view.namespaces.iter().find(|n| n.name == ns.name) else {
            out.push(d(
                "missing-namespace",
                &ns.name,
                format!("namespace {}", ns.name),
                "present",
                "absent",
            ));
            continue;
        };
        for s in &ns.sysctls {
            let actual = live
                .get(&(ns.name.clone(), s.key.clone()))
                .cloned()
                .unwrap_or_else(|| "unreadable".into());
            if actual != s.value {
                out.push(d(
                    "sysctl",
                    &ns.name,
                    s.key.clone(),
                    s.value.clone(),
                    actual,
                ));
            }
        }
        for r in &ns.routes {
            if !nv.routes.iter().any(|lr| route_matches(r, lr)) {
                out.push(d(
                    "missing-route",
                    &ns.name,
                    format!("route {}", route_text(r)),
                    "present",
                    "absent",
                ));
            }
        }
    }
    for b in &t.bridges {
        if !view.bridges.iter().any(|vb| vb.name == b.name) {
            out.push(d(
                "missing-bridge",
                b.netns(),
                format!("bridge {}", b.name),
                "present",
                "absent",
            ));
        }
    }
    for end in t.ends() {
        compare_end(end, t, view, live, &mut out);
    }
    // Foreign interfaces on a lab bridge: ports the file does not put there.
    for vb in &view.bridges {
        let Some(b) = t.bridge(&vb.name) else {
            continue;
        };
        for port in &vb.ports {
            let expected = t.ends().any(|e| e.bridge() == Some(b.name.as_str()) && &e.name == port)
                || t.links.iter().any(|l| matches!(l, crate::topology::Link::OvsInternal { bridge, end, .. } if bridge == &b.name && &end.name == port));
            if !expected {
                out.push(d(
                    "foreign-interface",
                    &vb.netns,
                    format!("{port} on bridge {}", b.name),
                    "not attached",
                    "attached",
                ));
            }
        }
    }
    out
}

fn compare_end(end: &End, t: &Topology, view: &LabView, live: &LiveSysctls, out: &mut Vec<Drift>) {
    let ns = end.netns();
    if ns != HOST && !view.namespaces.iter().any(|n| n.name == ns) {
        return; // reported as a missing namespace
    }
    let Some(l) = view.link(ns, &end.name) else {
        out.push(d(
            "missing-interface",
            ns,
            end.name.clone(),
            "present",
            "absent",
        ));
        return;
    };
    if !l.state_is_up() {
        out.push(d(
            "interface-down",
            ns,
            end.name.clone(),
            "up",
            format!("{:?}", l.state).to_lowercase(),
        ));
    }
    for a in &end.addresses {
        let want = a.to_string();
        if !l.addresses.contains(&want) {
            out.push(d(
                "missing-address",
                ns,
                format!("{want} on {}", end.name),
                "present",
                "absent",
            ));
        }
    }
    for a in &l.addresses {
        let ours = end.addresses.iter().any(|c| &c.to_string() == a);
        if !ours && !a.to_ascii_lowercase().starts_with("fe80:") {
            out.push(d(
                "extra-address",
                ns,
                format!("{a} on {}", end.name),
                "absent",
                "present",
            ));
        }
    }
    if let Some(mtu) = end.mtu
        && mtu != l.mtu
    {
        out.push(d(
            "mtu",
            ns,
            end.name.clone(),
            mtu.to_string(),
            l.mtu.to_string(),
        ));
    }
    if let Some(mac) = end.mac {
        let want = crate::netlink::link::format_mac(&mac);
        if l.mac.as_deref() != Some(want.as_str()) {
            out.push(d(
                "mac",
                ns,
                end.name.clone(),
                want,
                l.mac.clone().unwrap_or_default(),
            ));
        }
    }
    for s in &end.sysctls {
        let key = iface_key(&s.key);
        let actual = live
            .get(&(ns.to_string(), format!("{}/{key}", end.name)))
            .cloned()
            .unwrap_or_else(|| "unreadable".into());
        if actual != s.value {
            out.push(d(
                "sysctl",
                ns,
                format!("{key} of {}", end.name),
                s.value.clone(),
                actual,
            ));
        }
    }
    if let Some(br) = end.bridge() {
        let kind = t.bridge(br).map_or(BridgeKind::Linux, |b| b.kind);
        let on = l.master.as_ref().map(|m| (m.name.as_str(), m.kind));
        if on != Some((br, kind)) {
            out.push(d(
                "not-on-bridge",
                ns,
                end.name.clone(),
                format!("on {kind} bridge {br}"),
                master_text(l),
            ));
        }
    }
}

fn master_text(l: &LinkView) -> String {
    match &l.master {
        Some(m) => format!("on {} bridge {}", m.kind, m.name),
        None => "on no bridge".into(),
    }
}

fn route_text(r: &Route) -> String {
    let mut s = r.to.map_or("default".to_string(), |c| c.to_string());
    if let Some(v) = r.via {
        s.push_str(&format!(" via {v}"));
    }
    if let Some(dev) = &r.dev {
        s.push_str(&format!(" dev {dev}"));
    }
    s
}

fn route_matches(r: &Route, live: &inspect::RouteView) -> bool {
    let v6 =
        r.to.map(|c| c.addr.is_ipv6())
            .or(r.via.map(|v| v.is_ipv6()))
            .unwrap_or(false);
    let family_ok = live.family == if v6 { "ipv6" } else { "ipv4" };
    let to_ok = live.to == r.to.map_or("default".to_string(), |c| c.to_string());
    let via_ok = r
        .via
        .is_none_or(|v| live.via.as_deref() == Some(v.to_string().as_str()));
    let dev_ok = r.dev.as_ref().is_none_or(|d| live.dev.as_ref() == Some(d));
    family_ok && to_ok && via_ok && dev_ok
}
