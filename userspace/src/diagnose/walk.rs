//! Follows a packet through the live lab the way the kernel would: the route the
//! kernel picks in each namespace (`RTM_GETROUTE` from inside it), the wire and bridge
//! behind the output interface, the namespace on the far side that owns the next hop —
//! the destination, or a router where the walk continues. Checks run on every object
//! the walk touches; the walk stops at the first fault that explains a failure.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::inspect::LinkView;
use crate::netlink::{Netlink, RouteAnswer};
use crate::topology::{Cidr, HOST};

use super::checks::{link, sysctl};
use super::finding::{Code, Finding, Findings, Fix};
use super::live::Live;
use super::{DiagnoseError, subnet};

/// Routers a packet may cross before the walk gives up (a routing loop).
const MAX_HOPS: usize = 16;

/// One interface a packet crosses, as `ns/ifname`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IfRef {
    pub netns: String,
    pub ifname: String,
}

impl IfRef {
    fn of(l: &LinkView) -> Self {
        Self {
            netns: l.netns.clone(),
            ifname: l.name.clone(),
        }
    }
}

impl std::fmt::Display for IfRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.netns, self.ifname)
    }
}

/// What a walk found.
#[derive(Debug, Default, Clone)]
pub struct Walk {
    pub hops: Vec<IfRef>,
    /// The interface that owns the destination, once reached.
    pub reached: Option<IfRef>,
    /// The source address the kernel picks in the first namespace.
    pub src: Option<IpAddr>,
    /// The smallest MTU on the way.
    pub mtu: Option<u32>,
    /// The destination is an address of the first namespace itself.
    pub local: bool,
}

/// The static verdict for one (from, to) pair, and what the probe needs.
#[derive(Debug, Default, Clone)]
pub struct PathPlan {
    pub forward: Walk,
    pub back: Walk,
    /// Same-namespace pair: the probe leaves through this interface (SO_BINDTODEVICE).
    pub bind_dev: Option<String>,
    /// Same-namespace pair: the reply comes back over lo.
    pub same_ns_pair: bool,
}

impl PathPlan {
    /// Every interface on the way there and back, and lo of both ends: where the probe
    /// attaches its observers.
    pub fn interfaces(&self, from: &str) -> Vec<IfRef> {
        let mut out: Vec<IfRef> = Vec::new();
        let mut add = |r: &IfRef| {
            if !out.contains(r) {
                out.push(r.clone());
            }
        };
        for h in self.forward.hops.iter().chain(self.back.hops.iter()) {
            add(h);
        }
        let mut spaces = vec![from.to_string()];
        if let Some(r) = &self.forward.reached {
            spaces.push(r.netns.clone());
        }
        for ns in spaces {
            if ns != HOST {
                add(&IfRef {
                    netns: ns,
                    ifname: "lo".into(),
                });
            }
        }
        out
    }
}

/// Routing questions to the kernel, one netlink socket per namespace.
pub struct Engine<'a> {
    pub live: &'a Live,
    sockets: HashMap<String, Netlink>,
}

impl<'a> Engine<'a> {
    pub fn new(live: &'a Live) -> Self {
        Self {
            live,
            sockets: HashMap::new(),
        }
    }

    async fn route(&mut self, netns: &str, dst: IpAddr) -> Result<RouteAnswer, DiagnoseError> {
        if !self.sockets.contains_key(netns) {
            let nl = Netlink::open(netns).await?;
            self.sockets.insert(netns.to_string(), nl);
        }
        let nl = &self.sockets[netns];
        Ok(nl.route_get(dst, None).await?)
    }

    fn link_by_index(&self, netns: &str, ifindex: u32) -> Option<&'a LinkView> {
        self.live
            .view
            .links
            .iter()
            .find(|l| l.netns == netns && l.ifindex == ifindex)
    }

    /// The static checks of one pair. `from` must be a namespace of the lab.
    pub async fn check_pair(
        &mut self,
        from: &str,
        to: IpAddr,
        out: &mut Findings,
    ) -> Result<PathPlan, DiagnoseError> {
        let live = self.live;
        let mut plan = PathPlan::default();
        let owners = live.owners(to);
        if owners.is_empty() {
            if live.planned_owner(to).is_some_and(|(ns, ifname)| {
                out.has_on(Code::MissingInterface, &ns, &ifname)
                    || out.has_on(Code::MissingInterface, &ns, "")
            }) {
                // The interface that should carry it is missing: already said.
                return Ok(plan);
            }
            let all: Vec<String> = live
                .view
                .links
                .iter()
                .filter(|l| l.name != "lo")
                .flat_map(|l| {
                    Live::cidrs(l)
                        .into_iter()
                        .filter(|c| !super::checks::placement::is_link_local(c.addr))
                        .map(|c| format!("{}/{} {}", l.netns, l.name, c))
                        .collect::<Vec<_>>()
                })
                .collect();
            out.push(Finding::new(
                Code::NoSuchAddress,
                from,
                "",
                format!("no interface in the lab has {to}"),
                format!("addresses of the lab: {}", all.join(", ")),
                Some(Fix::advice(format!(
                    "ping one of the lab's addresses, or add {to} to the interface that should have it"
                ))),
            ));
            return Ok(plan);
        }
        let has_source = live.view.links.iter().any(|l| {
            l.netns == from
                && l.name != "lo"
                && Live::cidrs(l)
                    .iter()
                    .any(|c| c.addr.is_ipv4() == to.is_ipv4() && !c.addr.is_loopback())
        });
        if !has_source {
            out.push(Finding::new(
                Code::NoSourceAddress,
                from,
                "",
                format!(
                    "namespace {from} has no {} address to send from",
                    if to.is_ipv4() { "IPv4" } else { "IPv6" }
                ),
                format!("no address on any interface of {from} other than lo"),
                None,
            ));
            return Ok(plan);
        }
        plan.forward = self.walk(from, to, false, out).await?;
        if plan.forward.local {
            self.local_destination(from, to, &mut plan, out);
            return Ok(plan);
        }
        let (Some(reached), Some(src)) = (plan.forward.reached.clone(), plan.forward.src) else {
            return Ok(plan);
        };
        // The way back, from the destination's namespace to the source address.
        plan.back = self.walk(&reached.netns, src, true, out).await?;
        let back_oif = match self.route(&reached.netns, src).await? {
            RouteAnswer::Unicast { oif, .. } => Some(oif),
            _ => None,
        };
        if let Some(dest) = live.link(&reached.netns, &reached.ifname) {
            let sender = self.arp_sender(&plan.forward, src);
            sysctl::arp_destination(
                live,
                &dest.netns,
                &dest.name,
                dest.ifindex,
                to,
                Some(sender),
                back_oif,
                out,
            );
            sysctl::rp_filter(
                live,
                &dest.netns,
                &dest.name,
                dest.ifindex,
                src,
                back_oif,
                out,
            );
        }
        Ok(plan)
    }

    /// The sender address of the last ARP request on the way: the source itself, or
    /// the last router's address on the destination's link.
    fn arp_sender(&self, w: &Walk, src: IpAddr) -> IpAddr {
        let n = w.hops.len();
        if n >= 2 {
            // hops: ... router egress, [bridge ports], destination. The egress that
            // sent the last ARP is the last hop in a namespace other than host
            // before the destination.
            for h in w.hops[..n - 1].iter().rev() {
                if let Some(l) = self.live.link(&h.netns, &h.ifname)
                    && l.master.is_none()
                    && let Some(c) = Live::cidrs(l)
                        .into_iter()
                        .find(|c| c.addr.is_ipv4() == src.is_ipv4())
                {
                    return c.addr;
                }
            }
        }
        src
    }

    /// The destination is an address of the source namespace: either the far end of a
    /// veth pair whose both ends are here (the classic same-namespace lab), or a plain
    /// local address that the kernel answers over lo without touching any veth.
    fn local_destination(&self, from: &str, to: IpAddr, plan: &mut PathPlan, out: &mut Findings) {
        let live = self.live;
        let rx = live
            .owners(to)
            .into_iter()
            .find(|o| o.link.netns == from && o.link.name != "lo");
        let pair = rx.as_ref().and_then(|o| {
            let p = o.link.peer.as_ref()?;
            (p.netns == from)
                .then(|| live.link(&p.netns, &p.name))
                .flatten()
        });
        let (Some(rx), Some(tx)) = (rx, pair) else {
            plan.forward.hops.push(IfRef {
                netns: from.to_string(),
                ifname: "lo".into(),
            });
            link::lo(
                live,
                from,
                &format!("{to} is an address of {from} itself"),
                out,
            );
            return;
        };
        plan.same_ns_pair = true;
        plan.bind_dev = Some(tx.name.clone());
        plan.forward.hops = vec![IfRef::of(tx), IfRef::of(rx.link)];
        plan.forward.reached = Some(IfRef::of(rx.link));
        plan.forward.src = Live::cidrs(tx)
            .into_iter()
            .find(|c| c.addr.is_ipv4() == to.is_ipv4())
            .map(|c| c.addr);
        plan.forward.mtu = Some(tx.mtu.min(rx.link.mtu));
        plan.back.hops = vec![IfRef {
            netns: from.to_string(),
            ifname: "lo".into(),
        }];
        link::state(live, tx, out);
        link::state(live, rx.link, out);
        link::mtu(tx, rx.link, out);
        link::lo(
            live,
            from,
            &format!(
                "{}/{} and {}/{} are a pair in one namespace, so replies come back over lo",
                tx.netns, tx.name, rx.link.netns, rx.link.name
            ),
            out,
        );
        sysctl::same_ns_receiver(live, from, &rx.link.name, out);
        sysctl::arp_destination(
            live,
            from,
            &rx.link.name,
            rx.link.ifindex,
            to,
            plan.forward.src,
            None,
            out,
        );
    }

    /// Walks from `start` towards `dst`. `back`: this is the way back (a missing route
    /// is then NO_RETURN_ROUTE).
    async fn walk(
        &mut self,
        start: &str,
        dst: IpAddr,
        back: bool,
        out: &mut Findings,
    ) -> Result<Walk, DiagnoseError> {
        let live = self.live;
        let mut w = Walk::default();
        let mut ns = start.to_string();
        for step in 0..MAX_HOPS {
            let answer = self.route(&ns, dst).await?;
            let (oif, gateway, src) = match answer {
                RouteAnswer::Local { src } => {
                    if step == 0 {
                        w.local = true;
                        w.src = src;
                    }
                    return Ok(w);
                }
                RouteAnswer::None { reason } => {
                    self.no_route(&ns, dst, &reason, back, out);
                    return Ok(w);
                }
                RouteAnswer::Unicast { oif, gateway, src } => (oif, gateway, src),
            };
            if step == 0 {
                w.src = src;
            }
            let Some(egress) = self.link_by_index(&ns, oif) else {
                out.push(Finding::new(
                    if back {
                        Code::NoReturnRoute
                    } else {
                        Code::NoRoute
                    },
                    &ns,
                    "",
                    format!("the route from {ns} to {dst} leaves the lab (ifindex {oif})"),
                    format!("ip route get {dst}: dev ifindex {oif}"),
                    None,
                ));
                return Ok(w);
            };
            w.hops.push(IfRef::of(egress));
            let mut mtu = egress.mtu;
            if !link::state(live, egress, out) {
                return Ok(w);
            }
            let nexthop = gateway.unwrap_or(dst);
            // The wire: the veth peer, which may be a bridge port.
            let peer = egress
                .peer
                .as_ref()
                .and_then(|p| live.link(&p.netns, &p.name));
            if let Some(p) = peer {
                if !link::state(live, p, out) {
                    return Ok(w);
                }
                link::mtu(egress, p, out);
                if p.master.is_some() {
                    w.hops.push(IfRef::of(p));
                }
                mtu = mtu.min(p.mtu);
            }
            let far: Vec<&LinkView> = live.segment(egress);
            let Some(next) = far
                .iter()
                .copied()
                .find(|f| Live::cidrs(f).iter().any(|c| c.addr == nexthop))
            else {
                self.not_on_link(&ns, egress, nexthop, dst, back, out);
                return Ok(w);
            };
            // Through a bridge: the port whose wire leads to `next`.
            if let Some(np) = next
                .peer
                .as_ref()
                .and_then(|p| live.link(&p.netns, &p.name))
                && np.master.is_some()
            {
                w.hops.push(IfRef::of(np));
                if !link::state(live, np, out) {
                    return Ok(w);
                }
                link::mtu(np, next, out);
                mtu = mtu.min(np.mtu);
            }
            w.hops.push(IfRef::of(next));
            mtu = mtu.min(next.mtu);
            w.mtu = Some(w.mtu.map_or(mtu, |m| m.min(mtu)));
            if !link::state(live, next, out) {
                return Ok(w);
            }
            if nexthop == dst {
                w.reached = Some(IfRef::of(next));
                return Ok(w);
            }
            // A router: it must forward, then its own route decides.
            if !sysctl::forwarding(live, &next.netns, &next.name, dst.is_ipv6(), out) {
                return Ok(w);
            }
            ns = next.netns.clone();
        }
        out.push(Finding::new(
            if back {
                Code::NoReturnRoute
            } else {
                Code::NoRoute
            },
            &ns,
            "",
            format!("the route to {dst} loops: more than {MAX_HOPS} routers"),
            w.hops
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .join(" → "),
            None,
        ));
        Ok(w)
    }

    /// The kernel of `ns` has no route to `dst`: say where `dst` is and which route
    /// would reach it.
    fn no_route(&self, ns: &str, dst: IpAddr, reason: &str, back: bool, out: &mut Findings) {
        let live = self.live;
        let code = if back {
            Code::NoReturnRoute
        } else {
            Code::NoRoute
        };
        let owner = live.owners(dst).into_iter().next();
        let evidence = format!("ip route get {dst} in {ns}: {}", short_reason(reason));
        let Some(owner) = owner else {
            out.push(Finding::new(
                code,
                ns,
                "",
                format!("{ns} has no route to {dst}"),
                evidence,
                None,
            ));
            return;
        };
        let dst_net = subnet::network(&owner.cidr);
        // Same wire, other subnet?
        for l in live
            .view
            .links
            .iter()
            .filter(|l| l.netns == ns && l.name != "lo")
        {
            if live.segment(l).iter().any(|f| std::ptr::eq(*f, owner.link)) {
                let mine: Vec<String> = Live::cidrs(l).iter().map(|c| c.to_string()).collect();
                out.push(Finding::new(
                    Code::WrongSubnet,
                    ns,
                    &l.name,
                    format!(
                        "{dst} ({}/{}, {}) is on the same link as {ns}/{} but in another subnet, and {ns} has no route to it",
                        owner.link.netns, owner.link.name, owner.cidr, l.name
                    ),
                    format!(
                        "{ns}/{} has {}; {evidence}",
                        l.name,
                        if mine.is_empty() { "no address".to_string() } else { mine.join(", ") }
                    ),
                    Some(Fix::in_ns(ns, &["ip", "route", "add", &dst_net, "dev", &l.name])),
                ));
                return;
            }
        }
        // A router on one of our links that has an interface in the destination's subnet.
        let via = self.router_towards(ns, &owner.cidr);
        let (msg, fix) = match &via {
            Some((gw, router, dev)) => (
                format!(
                    "{ns} has no route to {dst} ({}/{}), which is reachable through router {router}",
                    owner.link.netns, owner.link.name
                ),
                Some(Fix::in_ns(
                    ns,
                    &[
                        "ip",
                        "route",
                        "add",
                        &dst_net,
                        "via",
                        &gw.to_string(),
                        "dev",
                        dev,
                    ],
                )),
            ),
            None => (
                format!(
                    "{ns} has no route to {dst} ({}/{})",
                    owner.link.netns, owner.link.name
                ),
                None,
            ),
        };
        out.push(Finding::new(code, ns, "", msg, evidence, fix));
    }

    /// (gateway address, router namespace, our interface) for a router on one of
    /// `ns`'s links that has an interface in `target`'s subnet.
    fn router_towards(&self, ns: &str, target: &Cidr) -> Option<(IpAddr, String, String)> {
        let live = self.live;
        for l in live
            .view
            .links
            .iter()
            .filter(|l| l.netns == ns && l.name != "lo")
        {
            let mine = Live::cidrs(l);
            for f in live.segment(l) {
                let in_target = live.view.links.iter().any(|r| {
                    r.netns == f.netns
                        && Live::cidrs(r)
                            .iter()
                            .any(|c| subnet::contains(c, target.addr) && c.prefix == target.prefix)
                });
                if !in_target || f.netns == ns {
                    continue;
                }
                if let Some(gw) = Live::cidrs(f)
                    .into_iter()
                    .find(|c| mine.iter().any(|m| subnet::contains(m, c.addr)))
                {
                    return Some((gw.addr, f.netns.clone(), l.name.clone()));
                }
            }
        }
        None
    }

    /// The route sends `nexthop` out `egress`, but nothing behind that link has it.
    fn not_on_link(
        &self,
        ns: &str,
        egress: &LinkView,
        nexthop: IpAddr,
        dst: IpAddr,
        back: bool,
        out: &mut Findings,
    ) {
        let live = self.live;
        // A detached or misplaced port on this wire already explains it.
        let on_wire = |f: &Finding| {
            matches!(
                f.code,
                Code::BridgePortDetached
                    | Code::BridgePortWrongBridge
                    | Code::MissingInterface
                    | Code::OvsPortError
                    | Code::WrongPlacement
                    | Code::StpBlocking
            )
        };
        if out.iter().any(on_wire) {
            return;
        }
        let owner = live.owners(nexthop).into_iter().next();
        let what = if nexthop == dst {
            dst.to_string()
        } else {
            format!("gateway {nexthop} (on the way to {dst})")
        };
        match owner {
            Some(o) => out.push(Finding::new(
                Code::WrongSubnet,
                ns,
                &egress.name,
                format!(
                    "{ns} sends {what} out {}, but {nexthop} is {}/{}, which is not on that link{}",
                    egress.name,
                    o.link.netns,
                    o.link.name,
                    match (live.bridge_behind(o.link), live.bridge_behind(egress)) {
                        (Some(theirs), Some(ours)) if theirs != ours => format!(
                            ": it lives behind bridge {theirs}, and {ns}/{} is on bridge {ours} (check the netmask of {ns}/{}: {})",
                            egress.name,
                            egress.name,
                            Live::cidrs(egress)
                                .iter()
                                .filter(|c| c.addr.is_ipv4() == dst.is_ipv4())
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        (Some(theirs), _) => format!(": it lives behind bridge {theirs}"),
                        _ => String::new(),
                    }
                ),
                format!(
                    "ip route get {dst} in {ns}: dev {}; {}/{} is behind another link",
                    egress.name, o.link.netns, o.link.name
                ),
                None,
            )),
            None => out.push(Finding::new(
                if back || nexthop != dst {
                    if back {
                        Code::NoReturnRoute
                    } else {
                        Code::NoRoute
                    }
                } else {
                    Code::NoSuchAddress
                },
                ns,
                &egress.name,
                format!(
                    "{ns} sends {what} out {}, but no interface in the lab has {nexthop}",
                    egress.name
                ),
                format!("ip route get {dst} in {ns}: dev {}", egress.name),
                None,
            )),
        }
    }
}

/// "Network is unreachable (os error 101)" → "Network is unreachable".
fn short_reason(reason: &str) -> &str {
    reason.split(" (os error").next().unwrap_or(reason)
}
