//! Where each hop of a path came from, so a flood reads as a fan-out and not as a
//! straight line.
//!
//! A path's hops arrive in time order; when a bridge floods an ARP request to three
//! ports, the three egress hops (and their peers' ingress hops) are siblings, not a
//! chain. Each hop's parent is the latest earlier hop it can follow from:
//! - ingress on a veth end: the egress hop on its peer end (`lo`: egress on `lo`);
//! - egress: the latest ingress hop in the same namespace (a bridge's port, a router's
//!   interface; none when the packet starts there);
//! - a hop the impairment program reported: the hop on the same interface;
//! - otherwise (no such hop, an OVS internal port whose peer is not a veth): the hop
//!   just before it, as a straight line would have it.

use super::event::Hop;

/// For each hop of one leg (sorted by time), the index of the hop it came from; `None`
/// only for the first.
pub fn parents(hops: &[Hop]) -> Vec<Option<usize>> {
    (0..hops.len())
        .map(|i| {
            if i == 0 {
                return None;
            }
            let h = &hops[i];
            let earlier = || hops[..i].iter().enumerate().rev();
            let found = if h.impaired.is_some() {
                earlier().find(|(_, p)| p.same_place(h)).map(|(j, _)| j)
            } else if !h.egress {
                let from_lo = &*h.ifname == "lo";
                earlier()
                    .find(|(_, p)| {
                        p.egress
                            && p.impaired.is_none()
                            && if from_lo {
                                p.same_place(h)
                            } else {
                                h.peer
                                    .as_ref()
                                    .is_some_and(|(ns, ifn)| *ns == p.netns && *ifn == p.ifname)
                            }
                    })
                    .map(|(j, _)| j)
            } else {
                earlier()
                    .find(|(_, p)| !p.egress && p.netns == h.netns && p.impaired.is_none())
                    .map(|(j, _)| j)
            };
            Some(found.unwrap_or(i - 1))
        })
        .collect()
}

/// The hops nothing came from: where each branch of the leg was last seen.
pub fn ends(hops: &[Hop]) -> Vec<&Hop> {
    let kids = children(&parents(hops));
    hops.iter()
        .zip(&kids)
        .filter(|(_, k)| k.is_empty())
        .map(|(h, _)| h)
        .collect()
}

/// Children of each hop, in time order.
fn children(parents: &[Option<usize>]) -> Vec<Vec<usize>> {
    let mut kids = vec![Vec::new(); parents.len()];
    for (i, p) in parents.iter().enumerate() {
        if let Some(p) = p {
            kids[*p].push(i);
        }
    }
    kids
}

/// A leg drawn for a person: the straight part from the first hop, then, where the
/// packet was copied (a flood), one line per branch.
#[derive(Debug, PartialEq, Eq)]
pub struct Drawing {
    /// `ns1/veth0 → host/br-veth0`: the hops up to the first branch point (consecutive
    /// hops on one interface, such as egress and ingress of `lo`, written once).
    pub trunk: String,
    /// How the trunk ends when it branches: `flooded to 2 ports`.
    pub fork: Option<String>,
    /// One line per branch, already indented with the tree's characters.
    pub branches: Vec<String>,
}

impl Drawing {
    pub fn is_straight(&self) -> bool {
        self.branches.is_empty()
    }
}

/// Draws one leg (hops in time order).
pub fn draw(hops: &[Hop]) -> Drawing {
    if hops.is_empty() {
        return Drawing {
            trunk: String::new(),
            fork: None,
            branches: Vec::new(),
        };
    }
    let kids = children(&parents(hops));
    let (trunk, end) = chain(hops, &kids, 0);
    let mut branches = Vec::new();
    let fork = (kids[end].len() > 1).then(|| {
        branch_lines(hops, &kids, end, "", &mut branches);
        fork_words(hops, &kids[end])
    });
    Drawing {
        trunk,
        fork,
        branches,
    }
}

/// The straight run from `start` while each hop has one child: its text and last hop.
fn chain(hops: &[Hop], kids: &[Vec<usize>], start: usize) -> (String, usize) {
    let mut places = vec![hops[start].place()];
    let mut at = start;
    while let [only] = kids[at][..] {
        at = only;
        let place = hops[at].place();
        if places.last() != Some(&place) {
            places.push(place);
        }
    }
    (places.join(" → "), at)
}

fn branch_lines(hops: &[Hop], kids: &[Vec<usize>], at: usize, indent: &str, out: &mut Vec<String>) {
    let n = kids[at].len();
    for (k, &child) in kids[at].iter().enumerate() {
        let last = k + 1 == n;
        let (text, end) = chain(hops, kids, child);
        let fork = if kids[end].len() > 1 {
            format!(", {}:", fork_words(hops, &kids[end]))
        } else {
            String::new()
        };
        out.push(format!(
            "{indent}{}{text}{fork}",
            if last { "└─ " } else { "├─ " }
        ));
        if kids[end].len() > 1 {
            let deeper = format!("{indent}{}", if last { "   " } else { "│  " });
            branch_lines(hops, kids, end, &deeper, out);
        }
    }
}

/// `flooded to 3 ports` when a switch sent copies out of several interfaces, `copied
/// 2 times` otherwise (a duplicating impairment, a packet seen twice on one interface).
fn fork_words(hops: &[Hop], children: &[usize]) -> String {
    let mut places: Vec<String> = children.iter().map(|&c| hops[c].place()).collect();
    places.sort();
    places.dedup();
    if places.len() == children.len() && children.iter().all(|&c| hops[c].egress) {
        format!("flooded to {} ports", children.len())
    } else {
        format!("copied {} times", children.len())
    }
}

/// Hops for the tests of this module and of the output.
#[cfg(test)]
pub(crate) mod testing {
    use crate::trace::event::{Hop, Proto};
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    pub(crate) fn hop(
        ns: &str,
        ifname: &str,
        egress: bool,
        ts: u64,
        peer: Option<(&str, &str)>,
    ) -> Hop {
        Hop {
            ts_ns: ts,
            netns: ns.into(),
            netns_inode: 1,
            ifname: ifname.into(),
            ifindex: 2,
            egress,
            len: 42,
            vlan: None,
            proto: Proto::Arp {
                op: 1,
                sender_ip: Ipv4Addr::new(10, 1, 1, 2),
                target_ip: Ipv4Addr::new(10, 1, 1, 9),
                sender_mac: [2, 0, 0, 0, 0, 1],
                target_mac: [0; 6],
            },
            frame: Vec::new(),
            impaired: None,
            peer: peer.map(|(n, i)| (Arc::from(n), Arc::from(i))),
        }
    }

    /// An ARP broadcast through a three-port bridge, in the order the hooks saw it.
    pub(crate) fn flood() -> Vec<Hop> {
        vec![
            hop("ns1", "veth0", true, 1, Some(("host", "br-veth0"))),
            hop("host", "br-veth0", false, 2, Some(("ns1", "veth0"))),
            hop("host", "br-veth1", true, 3, Some(("ns2", "veth1"))),
            hop("host", "br-veth2", true, 4, Some(("ns3", "veth2"))),
            hop("ns3", "veth2", false, 5, Some(("host", "br-veth2"))),
            hop("ns2", "veth1", false, 6, Some(("host", "br-veth1"))),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{flood, hop};
    use super::*;

    #[test]
    fn a_bridge_flood_is_a_fan_out() {
        let hops = flood();
        assert_eq!(
            parents(&hops),
            [None, Some(0), Some(1), Some(1), Some(3), Some(2)]
        );
        let d = draw(&hops);
        assert_eq!(d.trunk, "ns1/veth0 → host/br-veth0");
        assert_eq!(d.fork.as_deref(), Some("flooded to 2 ports"));
        assert_eq!(
            d.branches,
            [
                "├─ host/br-veth1 → ns2/veth1",
                "└─ host/br-veth2 → ns3/veth2"
            ]
        );
        let ends: Vec<String> = ends(&hops).iter().map(|h| h.place()).collect();
        assert_eq!(ends, ["ns3/veth2", "ns2/veth1"]);
    }

    #[test]
    fn a_unicast_path_is_one_line_and_lo_is_written_once() {
        let hops = vec![
            hop("ns1", "veth0", true, 1, Some(("host", "br-veth0"))),
            hop("host", "br-veth0", false, 2, Some(("ns1", "veth0"))),
            hop("host", "br-veth1", true, 3, Some(("ns2", "veth1"))),
            hop("ns2", "veth1", false, 4, Some(("host", "br-veth1"))),
        ];
        let d = draw(&hops);
        assert!(d.is_straight());
        assert_eq!(
            d.trunk,
            "ns1/veth0 → host/br-veth0 → host/br-veth1 → ns2/veth1"
        );
        let lo = vec![
            hop("ns1", "lo", true, 1, None),
            hop("ns1", "lo", false, 2, None),
        ];
        assert_eq!(draw(&lo).trunk, "ns1/lo");
    }

    #[test]
    fn a_flood_through_two_bridges_branches_twice() {
        // br0 (host) floods to ns2 and to a bridge in namespace sw, which floods again.
        let hops = vec![
            hop("ns1", "veth0", true, 1, Some(("host", "p0"))),
            hop("host", "p0", false, 2, Some(("ns1", "veth0"))),
            hop("host", "p1", true, 3, Some(("ns2", "veth1"))),
            hop("host", "p2", true, 4, Some(("sw", "q0"))),
            hop("ns2", "veth1", false, 5, Some(("host", "p1"))),
            hop("sw", "q0", false, 6, Some(("host", "p2"))),
            hop("sw", "q1", true, 7, Some(("ns3", "veth3"))),
            hop("sw", "q2", true, 8, Some(("ns4", "veth4"))),
            hop("ns3", "veth3", false, 9, Some(("sw", "q1"))),
            hop("ns4", "veth4", false, 10, Some(("sw", "q2"))),
        ];
        let d = draw(&hops);
        assert_eq!(d.trunk, "ns1/veth0 → host/p0");
        assert_eq!(d.fork.as_deref(), Some("flooded to 2 ports"));
        assert_eq!(
            d.branches,
            [
                "├─ host/p1 → ns2/veth1",
                "└─ host/p2 → sw/q0, flooded to 2 ports:",
                "   ├─ sw/q1 → ns3/veth3",
                "   └─ sw/q2 → ns4/veth4",
            ]
        );
    }

    #[test]
    fn unknown_peers_fall_back_to_a_straight_line() {
        // OVS internal ports: no veth peer to follow.
        let hops = vec![
            hop("ns1", "tap1", true, 1, None),
            hop("ns2", "tap2", false, 2, None),
        ];
        assert_eq!(parents(&hops), [None, Some(0)]);
        assert_eq!(draw(&hops).trunk, "ns1/tap1 → ns2/tap2");
    }
}
