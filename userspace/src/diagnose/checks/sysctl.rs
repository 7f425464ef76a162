//! Sysctl checks: the same-namespace pair (accept_local, effective rp_filter), reverse
//! path filtering elsewhere, forwarding in routers, and the ARP knobs that silence a
//! destination (arp_ignore, arp_filter, arp_announce).

use std::net::IpAddr;

use crate::diagnose::finding::{Code, Finding, Findings, Fix};
use crate::diagnose::live::Live;
use crate::topology::Cidr;

/// rp_filter values (Documentation/networking/ip-sysctl.rst).
const RP_STRICT: i64 = 1;
/// arp_ignore=8: never reply.
const ARP_IGNORE_ALL: i64 = 8;
/// arp_ignore=2: reply only when the sender is in the target address's subnet.
const ARP_IGNORE_SUBNET: i64 = 2;

fn key(ifname: &str, k: &str) -> String {
    format!("net.ipv4.conf.{ifname}.{k}")
}

/// A fix that sets `k` to `value` on both `all` and the interface (needed for keys the
/// kernel combines with max/or: changing only one side may not be enough).
fn set_both(netns: &str, ifname: &str, k: &str, value: &str) -> Fix {
    Fix::in_ns(
        netns,
        &[
            "sysctl",
            "-w",
            &format!("{}={value}", key("all", k)),
            &format!("{}={value}", key(ifname, k)),
        ],
    )
}

/// A veth pair with both ends in one namespace: the receiving end `rx` sees packets
/// whose source is a local address. Needs accept_local=1 and a non-strict rp_filter.
pub fn same_ns_receiver(live: &Live, netns: &str, rx: &str, out: &mut Findings) -> bool {
    let s = live.sysctls(netns);
    let mut ok = true;
    if !s.or_conf(rx, "accept_local") {
        out.push(Finding::new(
            Code::AcceptLocal,
            netns,
            rx,
            format!(
                "{netns}/{rx} drops packets whose source is an address of {netns} (both ends of the pair are in one namespace), so ARP and pings over the pair are never answered"
            ),
            format!(
                "{}={}, {}={}",
                key("all", "accept_local"),
                s.get("all", "accept_local").unwrap_or(0),
                key(rx, "accept_local"),
                s.get(rx, "accept_local").unwrap_or(0)
            ),
            Some(Fix::sysctl(netns, &key(rx, "accept_local"), "1")),
        ));
        ok = false;
    }
    if s.max_conf(rx, "rp_filter") == RP_STRICT {
        out.push(rp_finding(
            live,
            netns,
            rx,
            "its source is a local address reached over another interface",
        ));
        ok = false;
    }
    ok
}

fn rp_finding(live: &Live, netns: &str, ifname: &str, why: &str) -> Finding {
    let s = live.sysctls(netns);
    Finding::new(
        Code::RpFilter,
        netns,
        ifname,
        format!("strict reverse-path filtering on {netns}/{ifname} drops the packets: {why}"),
        format!(
            "effective rp_filter = max({}={}, {}={}) = 1",
            key("all", "rp_filter"),
            s.get("all", "rp_filter").unwrap_or(0),
            key(ifname, "rp_filter"),
            s.get(ifname, "rp_filter").unwrap_or(0)
        ),
        Some(set_both(netns, ifname, "rp_filter", "0")),
    )
}

/// Strict rp_filter on `ifname` when the route back to `src` leaves by another
/// interface (`back_oif`: the ifindex the kernel chose, None = no route back).
pub fn rp_filter(
    live: &Live,
    netns: &str,
    ifname: &str,
    ifindex: u32,
    src: IpAddr,
    back_oif: Option<u32>,
    out: &mut Findings,
) -> bool {
    if !src.is_ipv4() || live.sysctls(netns).max_conf(ifname, "rp_filter") != RP_STRICT {
        return true;
    }
    match back_oif {
        Some(oif) if oif != ifindex => {
            let via = live
                .view
                .links
                .iter()
                .find(|l| l.netns == netns && l.ifindex == oif)
                .map_or(format!("ifindex {oif}"), |l| l.name.clone());
            out.push(rp_finding(
                live,
                netns,
                ifname,
                &format!("the route back to {src} leaves by {via}, not by {ifname}"),
            ));
            false
        }
        _ => true,
    }
}

/// IPv4 forwarding (per ingress interface) or IPv6 forwarding (all) in a router.
pub fn forwarding(live: &Live, netns: &str, ingress: &str, v6: bool, out: &mut Findings) -> bool {
    let s = live.sysctls(netns);
    if v6 {
        if s.v6_forwarding.unwrap_or(0) != 0 {
            return true;
        }
        out.push(Finding::new(
            Code::ForwardingOff,
            netns,
            "",
            format!("IPv6 forwarding is off in router namespace {netns}"),
            "net.ipv6.conf.all.forwarding=0".to_string(),
            Some(Fix::sysctl(netns, "net.ipv6.conf.all.forwarding", "1")),
        ));
        return false;
    }
    let on_iface = s.get(ingress, "forwarding").unwrap_or(0) != 0;
    if on_iface {
        return true;
    }
    let all = s.get("all", "forwarding").unwrap_or(0);
    if all == 0 {
        out.push(Finding::new(
            Code::ForwardingOff,
            netns,
            "",
            format!(
                "IPv4 forwarding is off in router namespace {netns}, so packets arriving on {ingress} are dropped"
            ),
            "net.ipv4.ip_forward=0".to_string(),
            Some(Fix::sysctl(netns, "net.ipv4.ip_forward", "1")),
        ));
    } else {
        out.push(Finding::new(
            Code::ForwardingOff,
            netns,
            ingress,
            format!(
                "IPv4 forwarding is off on {netns}/{ingress}, so packets arriving there are dropped"
            ),
            format!("{}=0", key(ingress, "forwarding")),
            Some(Fix::sysctl(netns, &key(ingress, "forwarding"), "1")),
        ));
    }
    false
}

/// Whether the destination interface answers ARP for `target` from `sender`.
/// `back_oif`: where the destination's route to `sender` leaves (for arp_filter).
#[allow(clippy::too_many_arguments)]
pub fn arp_destination(
    live: &Live,
    netns: &str,
    ifname: &str,
    ifindex: u32,
    target: IpAddr,
    sender: Option<IpAddr>,
    back_oif: Option<u32>,
    out: &mut Findings,
) -> bool {
    if !target.is_ipv4() {
        return true;
    }
    let s = live.sysctls(netns);
    let ignore = s.max_conf(ifname, "arp_ignore");
    let evidence = format!(
        "effective arp_ignore = max({}={}, {}={}) = {ignore}",
        key("all", "arp_ignore"),
        s.get("all", "arp_ignore").unwrap_or(0),
        key(ifname, "arp_ignore"),
        s.get(ifname, "arp_ignore").unwrap_or(0)
    );
    if ignore == ARP_IGNORE_ALL {
        out.push(Finding::new(
            Code::ArpIgnore,
            netns,
            ifname,
            format!("{netns}/{ifname} never answers ARP (arp_ignore=8), so nobody learns the MAC of {target}"),
            evidence,
            Some(set_both(netns, ifname, "arp_ignore", "0")),
        ));
        return false;
    }
    if ignore == ARP_IGNORE_SUBNET
        && let Some(sender) = sender
    {
        let in_subnet = live
            .link(netns, ifname)
            .map(Live::cidrs)
            .unwrap_or_default()
            .iter()
            .any(|c: &Cidr| c.addr == target && crate::diagnose::subnet::contains(c, sender));
        if !in_subnet {
            out.push(Finding::new(
                Code::ArpIgnore,
                netns,
                ifname,
                format!("{netns}/{ifname} answers ARP only from its own subnet (arp_ignore=2), and the request comes from {sender}"),
                evidence,
                Some(set_both(netns, ifname, "arp_ignore", "0")),
            ));
            return false;
        }
    }
    if s.or_conf(ifname, "arp_filter")
        && let Some(oif) = back_oif
        && oif != ifindex
    {
        out.push(Finding::new(
            Code::ArpFilter,
            netns,
            ifname,
            format!("{netns}/{ifname} does not answer ARP (arp_filter=1): its route back to the sender leaves by another interface"),
            format!(
                "arp_filter all={} {ifname}={}, route back via ifindex {oif}",
                s.get("all", "arp_filter").unwrap_or(0),
                s.get(ifname, "arp_filter").unwrap_or(0)
            ),
            Some(set_both(netns, ifname, "arp_filter", "0")),
        ));
        return false;
    }
    true
}

/// The sender's ARP requests carry a source address from another interface
/// (arp_announce=0) and the destination answers only its own subnet (arp_ignore=2).
pub fn arp_announce(
    live: &Live,
    netns: &str,
    ifname: &str,
    src: IpAddr,
    dest_ignore_subnet: bool,
    out: &mut Findings,
) -> bool {
    if !src.is_ipv4() || !dest_ignore_subnet {
        return true;
    }
    let on_link = live
        .link(netns, ifname)
        .map(Live::cidrs)
        .unwrap_or_default()
        .iter()
        .any(|c| c.addr == src);
    if on_link || live.sysctls(netns).max_conf(ifname, "arp_announce") >= 1 {
        return true;
    }
    out.push(Finding::new(
        Code::ArpAnnounce,
        netns,
        ifname,
        format!("ARP requests from {netns}/{ifname} carry {src}, an address of another interface, which the destination ignores"),
        format!("{}=0", key(ifname, "arp_announce")),
        Some(set_both(netns, ifname, "arp_announce", "2")),
    ));
    false
}
