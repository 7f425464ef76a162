//! Without --from/--to: the pairs of endpoints the lab implies — every namespace to
//! every address of another namespace, and the two ends of each same-namespace pair.

use std::net::IpAddr;

use super::checks::placement::is_link_local;
use super::live::Live;

/// (from namespace, to address) pairs, at most `max`, and how many there are in all.
pub fn endpoint_pairs(live: &Live, max: usize) -> (Vec<(String, IpAddr)>, usize) {
    // Endpoints: (namespace, interface, address), lab namespaces only (not host, not lo).
    let mut ends: Vec<(String, String, IpAddr)> = Vec::new();
    for l in &live.view.links {
        if l.name == "lo" || l.netns == crate::topology::HOST {
            continue;
        }
        for c in Live::cidrs(l) {
            if !is_link_local(c.addr) && !c.addr.is_loopback() {
                ends.push((l.netns.clone(), l.name.clone(), c.addr));
            }
        }
    }
    let mut all = Vec::new();
    for (i, a) in ends.iter().enumerate() {
        for b in ends.iter().skip(i + 1) {
            if a.2.is_ipv4() != b.2.is_ipv4() || a.2 == b.2 {
                continue;
            }
            let wanted = if a.0 != b.0 {
                true
            } else {
                // Same namespace: only the two ends of one veth pair.
                live.link(&a.0, &a.1)
                    .and_then(|l| l.peer.as_ref())
                    .is_some_and(|p| p.netns == b.0 && p.name == b.1)
            };
            if wanted && !all.contains(&(a.0.clone(), b.2)) {
                all.push((a.0.clone(), b.2));
            }
        }
    }
    let total = all.len();
    all.truncate(max);
    (all, total)
}
