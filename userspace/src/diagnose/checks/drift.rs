//! DRIFT: where the live lab differs from the file it was made from (the drift module
//! behind `show --drift`, issue 13), on the objects of one path. A lost address or
//! route that explains the failure replaces the finding that only saw its effect
//! (NO_SUCH_ADDRESS, NO_ROUTE): the drift says what the file wanted and how to put it
//! back. A foreign interface on a bridge the path crosses is reported as advisory (the
//! path may still work). An interface that is down is LINK_DOWN already.

use std::net::IpAddr;

use crate::diagnose::finding::{Code, Finding, Findings, Fix};
use crate::diagnose::live::Live;
use crate::diagnose::walk::PathPlan;
use crate::drift::{self, Drift, LiveSysctls};
use crate::topology::{Cidr, HOST};

/// Namespaces and bridges a path touches.
struct Touched {
    spaces: Vec<String>,
    bridges: Vec<String>,
    /// The pair's addresses: a lost route that covers one of them is one the path needs.
    addrs: Vec<IpAddr>,
}

fn touched(live: &Live, plan: &PathPlan, from: &str, to: IpAddr) -> Touched {
    let mut spaces = vec![from.to_string()];
    let mut bridges: Vec<String> = Vec::new();
    for h in plan.forward.hops.iter().chain(&plan.back.hops) {
        if !spaces.contains(&h.netns) {
            spaces.push(h.netns.clone());
        }
        if let Some(b) = live
            .link(&h.netns, &h.ifname)
            .and_then(|l| live.bridge_behind(l))
            && !bridges.contains(&b)
        {
            bridges.push(b);
        }
    }
    if let Some((ns, _)) = live.planned_owner(to)
        && !spaces.contains(&ns)
    {
        spaces.push(ns);
    }
    let addrs = std::iter::once(to).chain(plan.forward.src).collect();
    Touched {
        spaces,
        bridges,
        addrs,
    }
}

/// DRIFT findings for the pair (from, to), after the walk.
pub fn on_path(live: &Live, plan: &PathPlan, from: &str, to: IpAddr, out: &mut Findings) {
    let Some(t) = &live.plan else {
        return;
    };
    // Sysctls are checked by diagnose's own checks where they matter (and reading every
    // one the file sets would cost a namespace entry each): not compared here.
    let drifts: Vec<Drift> = drift::compare(t, &live.view, &LiveSysctls::new())
        .into_iter()
        .filter(|d| d.kind != "sysctl")
        .collect();
    if drifts.is_empty() {
        return;
    }
    let touched = touched(live, plan, from, to);
    for d in &drifts {
        match d.kind.as_str() {
            "missing-address" => lost_address(d, to, &touched, out),
            "missing-route" => lost_route(d, &touched, out),
            "foreign-interface" => foreign(live, d, &touched, out),
            _ => {}
        }
    }
}

fn lost_address(d: &Drift, to: IpAddr, touched: &Touched, out: &mut Findings) {
    let Some((addr, ifname)) = d.object.split_once(" on ") else {
        return;
    };
    let Ok(cidr) = addr.parse::<Cidr>() else {
        return;
    };
    let is_destination = cidr.addr == to;
    if !is_destination && !touched.spaces.contains(&d.netns) {
        return;
    }
    // The walk saw only the effect: nobody has the address, or no route to it.
    let explained = if is_destination {
        out.remove_where(|f| matches!(f.code, Code::NoSuchAddress | Code::NoRoute))
    } else {
        // The source's own address (spaces[0] is the source namespace).
        touched.spaces.first() == Some(&d.netns)
            && out.remove_where(|f| f.code == Code::NoSourceAddress)
    };
    let f = Finding::new(
        Code::Drift,
        &d.netns,
        ifname,
        format!(
            "{addr} is on {}/{ifname} in the lab's file, but not on the interface (lost since `up`)",
            d.netns
        ),
        format!(
            "drift missing-address: {} in namespace {}: expected present, found absent",
            d.object, d.netns
        ),
        Some(Fix::in_ns(
            &d.netns,
            &["ip", "addr", "add", addr, "dev", ifname],
        )),
    );
    out.push(if explained || is_destination {
        f
    } else {
        f.advisory()
    });
}

fn lost_route(d: &Drift, touched: &Touched, out: &mut Findings) {
    if !touched.spaces.contains(&d.netns) {
        return;
    }
    let Some(route) = d.object.strip_prefix("route ") else {
        return;
    };
    let explained = out.remove_where(|f| {
        f.netns == d.netns && matches!(f.code, Code::NoRoute | Code::NoReturnRoute)
    });
    // A route the pair needs (it covers one of its addresses) fails the path even when
    // the walk stopped earlier — e.g. at the interface whose going down made the kernel
    // remove the route: bringing it up does not bring the route back.
    let needed = explained
        || route.split_whitespace().next().is_some_and(|to| {
            to == "default"
                || to.parse::<Cidr>().is_ok_and(|c| {
                    touched
                        .addrs
                        .iter()
                        .any(|a| crate::diagnose::subnet::contains(&c, *a))
                })
        });
    let down_here = out
        .iter()
        .any(|f| f.code == Code::LinkDown && f.netns == d.netns);
    let mut argv = vec!["ip", "route", "add"];
    argv.extend(route.split_whitespace());
    let f = Finding::new(
        Code::Drift,
        &d.netns,
        "",
        format!(
            "the route {route} of namespace {} in the lab's file is gone (lost since `up`){}",
            d.netns,
            if down_here {
                "; the kernel removes the routes through an interface that goes down, and bringing it up does not restore them"
            } else {
                ""
            }
        ),
        format!(
            "drift missing-route: {} in namespace {}: expected present, found absent",
            d.object, d.netns
        ),
        Some(Fix::in_ns(&d.netns, &argv)),
    );
    out.push(if needed { f } else { f.advisory() });
}

fn foreign(live: &Live, d: &Drift, touched: &Touched, out: &mut Findings) {
    let Some((port, bridge)) = d.object.split_once(" on bridge ") else {
        return;
    };
    if !touched.bridges.iter().any(|b| b == bridge) {
        return;
    }
    let ovs = live
        .view
        .bridges
        .iter()
        .any(|b| b.name == bridge && b.kind == crate::topology::BridgeKind::Ovs);
    let fix = if ovs {
        Fix::in_ns(HOST, &["ovs-vsctl", "del-port", bridge, port])
    } else {
        Fix::in_ns(&d.netns, &["ip", "link", "set", port, "nomaster"])
    };
    out.push(
        Finding::new(
            Code::Drift,
            &d.netns,
            port,
            format!(
                "{port} is a port of bridge {bridge} on the path, but the lab's file does not put it there: frames of the path are flooded to it, and its traffic enters the lab"
            ),
            format!("drift foreign-interface: {} in namespace {}: expected not attached, found attached", d.object, d.netns),
            Some(fix),
        )
        .advisory(),
    );
}
