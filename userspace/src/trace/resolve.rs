//! Names for the kernel's events: (namespace cookie, ifindex) → namespace and interface,
//! plus each interface's veth peer (what links the hops of a path into a tree).

use std::{collections::HashMap, sync::Arc};

use super::event::{self, Hop};
use crate::probe::Target;

type Place = (Arc<str>, Arc<str>);

pub(super) struct Resolver {
    names: HashMap<(u64, u32), Interface>,
    inodes: HashMap<Arc<str>, u64>,
}

struct Interface {
    place: Place,
    peer: Option<Place>,
}

impl Resolver {
    pub(super) fn new(targets: &[Target]) -> Self {
        let mut inodes: HashMap<Arc<str>, u64> = HashMap::new();
        let mut netns_of = |ns: &str| -> Arc<str> {
            match inodes.get_key_value(ns) {
                Some((k, _)) => Arc::clone(k),
                None => {
                    let k: Arc<str> = Arc::from(ns);
                    inodes.insert(Arc::clone(&k), crate::netns::inode(ns).unwrap_or(0));
                    k
                }
            }
        };
        let mut names = HashMap::new();
        for t in targets {
            let netns = netns_of(&t.netns);
            // Peers are named like the targets (the root namespace is `host`), and a
            // peer namespace the trace does not watch still gets a name.
            let peer = (!t.peer_ifname.is_empty()).then(|| {
                let ns: Arc<str> = if t.peer_netns.is_empty() {
                    Arc::clone(&netns)
                } else {
                    Arc::from(t.peer_netns.as_str())
                };
                (ns, Arc::from(t.peer_ifname.as_str()))
            });
            names.insert(
                (t.cookie, t.ifindex),
                Interface {
                    place: (netns, Arc::from(t.ifname.as_str())),
                    peer,
                },
            );
        }
        Self { names, inodes }
    }

    /// The hop an event's bytes describe; `None` for an event this trace cannot name.
    pub(super) fn hop(&self, bytes: &[u8]) -> Option<Hop> {
        let ev = event::parse_event(bytes)?;
        let Some(iface) = self.names.get(&(ev.netns_cookie, ev.ifindex)) else {
            tracing::debug!(
                "event from unknown interface: cookie {} ifindex {} dir {}",
                ev.netns_cookie,
                ev.ifindex,
                ev.direction
            );
            return None;
        };
        let (netns, ifname) = &iface.place;
        let mut hop = event::to_hop(
            &ev,
            netns,
            self.inodes.get(netns).copied().unwrap_or(0),
            ifname,
        )?;
        hop.peer.clone_from(&iface.peer);
        Some(hop)
    }
}
