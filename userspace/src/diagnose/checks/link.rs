//! Per-interface checks on the path: administrative state (a down end shows as
//! NO-CARRIER on its peer), `lo` of a namespace whose replies use it, MTU of the two
//! ends of a wire.

use crate::diagnose::finding::{Code, Finding, Findings, Fix};
use crate::diagnose::live::Live;
use crate::inspect::LinkView;
use crate::netlink::LinkState;

/// LINK_DOWN for an interface that is administratively down.
pub fn state(live: &Live, link: &LinkView, out: &mut Findings) -> bool {
    if link.state != LinkState::Down {
        return true;
    }
    let peer_note = link
        .peer
        .as_ref()
        .and_then(|p| live.link(&p.netns, &p.name))
        .filter(|p| p.state == LinkState::NoCarrier)
        .map(|p| format!("; its peer {}/{} shows NO-CARRIER", p.netns, p.name))
        .unwrap_or_default();
    out.push(Finding::new(
        Code::LinkDown,
        &link.netns,
        &link.name,
        format!("interface {}/{} is down", link.netns, link.name),
        format!("state down{peer_note}"),
        Some(Fix::in_ns(
            &link.netns,
            &["ip", "link", "set", &link.name, "up"],
        )),
    ));
    false
}

/// LO_DOWN when `lo` of `netns` is down and the path needs it (`why` says for what).
pub fn lo(live: &Live, netns: &str, why: &str, out: &mut Findings) -> bool {
    let Some(lo) = live.link(netns, "lo") else {
        return true;
    };
    if lo.state != LinkState::Down {
        return true;
    }
    out.push(Finding::new(
        Code::LoDown,
        netns,
        "lo",
        format!("lo is down in namespace {netns}, and {why}"),
        "lo state down".to_string(),
        Some(Fix::in_ns(netns, &["ip", "link", "set", "lo", "up"])),
    ));
    false
}

/// MTU_MISMATCH when the two ends of one wire disagree: frames the larger end sends
/// that exceed the smaller MTU are dropped by the receiving veth.
pub fn mtu(a: &LinkView, b: &LinkView, out: &mut Findings) -> bool {
    if a.mtu == b.mtu || a.mtu == 0 || b.mtu == 0 {
        return true;
    }
    let (small, large) = if a.mtu < b.mtu { (a, b) } else { (b, a) };
    out.push(Finding::new(
        Code::MtuMismatch,
        &small.netns,
        &small.name,
        format!(
            "{}/{} has MTU {} but {}/{} sends up to {}: larger frames are dropped",
            small.netns, small.name, small.mtu, large.netns, large.name, large.mtu
        ),
        format!(
            "mtu {} on {}/{}, {} on {}/{}",
            small.mtu, small.netns, small.name, large.mtu, large.netns, large.name
        ),
        Some(Fix::in_ns(
            &small.netns,
            &[
                "ip",
                "link",
                "set",
                &small.name,
                "mtu",
                &large.mtu.to_string(),
            ],
        )),
    ));
    false
}
