//! The tables `show` reads besides links and addresses: routes, IP neighbours and the
//! Linux bridge forwarding database, plus the matching deletions `up` needs to
//! apply a changed topology.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::{
    AddressFamily, RouteNetlinkMessage,
    neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
    },
    route::{
        RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
        RouteType,
    },
};

use super::{Netlink, NetlinkError, batch::BatchSocket, error};
use crate::topology::Cidr;

/// A route of the main table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteEntry {
    /// `None` = default route (of the route's family).
    pub to: Option<Cidr>,
    pub v6: bool,
    pub via: Option<IpAddr>,
    pub oif: Option<u32>,
    /// "kernel" (connected routes), "static" (ours, `ip route add`), "boot", "ra", …
    pub protocol: String,
    /// "universe", "link", "host", …
    pub scope: String,
    pub metric: Option<u32>,
}

/// An ARP / NDP entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighbourEntry {
    pub ifindex: u32,
    pub address: IpAddr,
    pub mac: Option<[u8; 6]>,
    /// "reachable", "stale", "permanent", "failed", …
    pub state: String,
}

/// An entry of a Linux bridge's forwarding database (`bridge fdb`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdbEntry {
    /// The port the MAC sits behind.
    pub ifindex: u32,
    /// The bridge (master) of the port; `None` for the port's own (`self`) entries.
    pub master: Option<u32>,
    pub mac: [u8; 6],
    pub vlan: Option<u16>,
    /// "permanent" (the bridge's own MACs), "static", "reachable" (learned), "stale", …
    pub state: String,
}

fn state_name(s: NeighbourState) -> String {
    match s {
        NeighbourState::Other(n) => format!("state-{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn protocol_name(p: RouteProtocol) -> String {
    match p {
        RouteProtocol::Other(n) => format!("proto-{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn scope_name(s: RouteScope) -> String {
    match s {
        RouteScope::Other(n) => format!("scope-{n}"),
        RouteScope::NoWhere => "nowhere".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route_entry(m: &RouteMessage) -> Option<RouteEntry> {
    let table = m
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table));
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) || m.header.kind != RouteType::Unicast {
        return None;
    }
    let v6 = m.header.address_family == AddressFamily::Inet6;
    let mut e = RouteEntry {
        to: None,
        v6,
        via: None,
        oif: None,
        protocol: protocol_name(m.header.protocol),
        scope: scope_name(m.header.scope),
        metric: None,
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => {
                e.to = route_ip(d).map(|addr| Cidr {
                    addr,
                    prefix: m.header.destination_prefix_length,
                })
            }
            RouteAttribute::Gateway(g) => e.via = route_ip(g),
            RouteAttribute::Oif(i) => e.oif = Some(*i),
            RouteAttribute::Priority(p) => e.metric = Some(*p),
            _ => {}
        }
    }
    Some(e)
}

impl Netlink {
    /// The main table's unicast routes, IPv4 then IPv6.
    pub async fn routes(&self) -> Result<Vec<RouteEntry>, NetlinkError> {
        let mut out = Vec::new();
        for query in [
            rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
            rtnetlink::RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
        ] {
            let msgs: Vec<RouteMessage> = self
                .handle
                .route()
                .get(query)
                .execute()
                .try_collect()
                .await
                .map_err(|e| self.fail("list routes", "", e))?;
            out.extend(msgs.iter().filter_map(route_entry));
        }
        Ok(out)
    }

    /// Deletes a route this namespace has (as listed by [`routes`](Self::routes)).
    /// Absent is success.
    pub async fn delete_route(&self, r: &RouteEntry) -> Result<(), NetlinkError> {
        let msg = route_message(r.to, r.v6, r.via, r.oif);
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if error::errno_of(&e) == Some(libc::ESRCH) => Ok(()),
            Err(e) => Err(self.fail("delete route", route_text(r.to, r.via), e)),
        }
    }

    pub async fn delete_address(
        &self,
        index: u32,
        name: &str,
        cidr: &Cidr,
    ) -> Result<(), NetlinkError> {
        let mut msg = rtnetlink::packet_route::address::AddressMessage::default();
        msg.header.family = if cidr.addr.is_ipv6() {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        msg.header.prefix_len = cidr.prefix;
        msg.header.index = index;
        msg.attributes
            .push(rtnetlink::packet_route::address::AddressAttribute::Local(
                cidr.addr,
            ));
        msg.attributes
            .push(rtnetlink::packet_route::address::AddressAttribute::Address(
                cidr.addr,
            ));
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if error::errno_of(&e) == Some(libc::EADDRNOTAVAIL) => Ok(()),
            Err(e) => Err(self.fail("delete address", format!("{cidr} from {name}"), e)),
        }
    }

    /// ARP and NDP entries (not the bridge FDB).
    pub async fn neighbours(&self) -> Result<Vec<NeighbourEntry>, NetlinkError> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let msgs: Vec<NeighbourMessage> = self
                .handle
                .neighbours()
                .get()
                .set_address_family(family)
                .execute()
                .try_collect()
                .await
                .map_err(|e| self.fail("list neighbours", "", e))?;
            out.extend(msgs.iter().filter_map(neighbour_entry));
        }
        Ok(out)
    }

    /// The forwarding database entries of every bridge of this namespace
    /// (entries the bridge holds, not the ports' own `self` lists).
    pub async fn bridge_fdb(&self) -> Result<Vec<FdbEntry>, NetlinkError> {
        let msgs: Vec<NeighbourMessage> = self
            .handle
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Bridge)
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.fail("list the bridge forwarding database", "", e))?;
        Ok(msgs.iter().filter_map(fdb_entry).collect())
    }
}

/// An ARP / NDP entry of a neighbour message; `None` for pseudo-entries.
fn neighbour_entry(m: &NeighbourMessage) -> Option<NeighbourEntry> {
    if m.header.state == NeighbourState::Noarp {
        return None; // multicast / loopback pseudo-entries
    }
    let mut address = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                address = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                address = Some(IpAddr::V6(*v6))
            }
            NeighbourAttribute::LinkLayerAddress(l) => mac = to_mac(l),
            _ => {}
        }
    }
    Some(NeighbourEntry {
        ifindex: m.header.ifindex,
        address: address?,
        mac,
        state: state_name(m.header.state),
    })
}

/// A bridge FDB entry the bridge holds (not a port's own `self` entry).
fn fdb_entry(m: &NeighbourMessage) -> Option<FdbEntry> {
    if m.header.flags.contains(NeighbourFlags::Own) {
        return None;
    }
    let mut mac = None;
    let mut master = None;
    let mut vlan = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::LinkLayerAddress(l) => mac = to_mac(l),
            NeighbourAttribute::Controller(c) => master = Some(*c),
            NeighbourAttribute::Vlan(v) => vlan = Some(*v),
            _ => {}
        }
    }
    Some(FdbEntry {
        ifindex: m.header.ifindex,
        master,
        mac: mac?,
        vlan,
        state: state_name(m.header.state),
    })
}

/// The same tables from a blocking socket, for reading many namespaces on the pool.
impl BatchSocket {
    /// IPv4 then IPv6 routes: one dump per family. Not one dump of every family: the
    /// kernel's all-families dump (`rtnl_dump_all`) holds RTNL, the per-family ones
    /// do not, and right after a large `up` RTNL is busy with the kernel's own work.
    pub fn routes(&mut self) -> Result<Vec<RouteEntry>, NetlinkError> {
        let mut out = Vec::new();
        for query in [
            rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
            rtnetlink::RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
        ] {
            for m in self.dump(RouteNetlinkMessage::GetRoute(query), "list routes")? {
                if let RouteNetlinkMessage::NewRoute(r) = m {
                    out.extend(route_entry(&r));
                }
            }
        }
        Ok(out)
    }

    fn neighbour_dump(
        &mut self,
        family: AddressFamily,
        ifindex: u32,
        what: &'static str,
    ) -> Result<Vec<NeighbourMessage>, NetlinkError> {
        let mut q = NeighbourMessage::default();
        q.header.family = family;
        q.header.ifindex = ifindex;
        Ok(self
            .dump(RouteNetlinkMessage::GetNeighbour(q), what)?
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => Some(n),
                _ => None,
            })
            .collect())
    }

    /// ARP then NDP entries, from one dump of both tables (the kernel walks them in
    /// that order; the neighbour dump is one handler for every family, without RTNL).
    pub fn neighbours(&mut self) -> Result<Vec<NeighbourEntry>, NetlinkError> {
        let msgs = self.neighbour_dump(AddressFamily::Unspec, 0, "list neighbours")?;
        Ok(msgs
            .iter()
            .filter(|m| matches!(m.header.family, AddressFamily::Inet | AddressFamily::Inet6))
            .filter_map(neighbour_entry)
            .collect())
    }

    /// The forwarding database of one bridge. Asked of the bridge alone: a dump of
    /// every device walks the whole table once per port in the kernel, which takes
    /// seconds with a thousand ports.
    pub fn bridge_fdb_of(&mut self, bridge_index: u32) -> Result<Vec<FdbEntry>, NetlinkError> {
        let msgs = self.neighbour_dump(
            AddressFamily::Bridge,
            bridge_index,
            "list the bridge forwarding database",
        )?;
        Ok(msgs.iter().filter_map(fdb_entry).collect())
    }
}

fn to_mac(l: &[u8]) -> Option<[u8; 6]> {
    <[u8; 6]>::try_from(l).ok()
}

fn route_text(to: Option<Cidr>, via: Option<IpAddr>) -> String {
    format!(
        "{}{}",
        to.map_or("default".to_string(), |c| c.to_string()),
        via.map_or(String::new(), |v| format!(" via {v}"))
    )
}

/// A route message (main table, static) for `to` / `via` / output interface.
pub(super) fn route_message(
    to: Option<Cidr>,
    v6: bool,
    via: Option<IpAddr>,
    oif: Option<u32>,
) -> RouteMessage {
    if v6 {
        let mut b = rtnetlink::RouteMessageBuilder::<std::net::Ipv6Addr>::new();
        if let Some(Cidr {
            addr: IpAddr::V6(a),
            prefix,
        }) = to
        {
            b = b.destination_prefix(a, prefix);
        }
        if let Some(IpAddr::V6(g)) = via {
            b = b.gateway(g);
        }
        if let Some(i) = oif {
            b = b.output_interface(i);
        }
        b.build()
    } else {
        let mut b = rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new();
        if let Some(Cidr {
            addr: IpAddr::V4(a),
            prefix,
        }) = to
        {
            b = b.destination_prefix(a, prefix);
        }
        if let Some(IpAddr::V4(g)) = via {
            b = b.gateway(g);
        }
        if let Some(i) = oif {
            b = b.output_interface(i);
        }
        b.build()
    }
}

impl Netlink {
    /// The id this namespace gives the namespace open at `target` (what a veth's
    /// `IFLA_LINK_NETNSID` refers to), or `None` when it has given it none.
    pub async fn nsid_of(
        &self,
        target: &std::os::fd::OwnedFd,
    ) -> Result<Option<i32>, NetlinkError> {
        use futures::StreamExt;
        use rtnetlink::packet_core::{NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
        use rtnetlink::packet_route::{
            RouteNetlinkMessage,
            nsid::{NsidAttribute, NsidMessage},
        };
        use std::os::fd::AsRawFd;
        let mut msg = NsidMessage::default();
        msg.attributes
            .push(NsidAttribute::Fd(target.as_raw_fd() as u32));
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetNsId(msg));
        req.header.flags = NLM_F_REQUEST;
        let mut handle = self.handle.clone();
        let mut replies = handle
            .request(req)
            .map_err(|e| self.fail("look up namespace id", "", e))?;
        while let Some(reply) = replies.next().await {
            match reply.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNsId(m)) => {
                    return Ok(m.attributes.iter().find_map(|a| match a {
                        NsidAttribute::Id(id) if *id >= 0 => Some(*id),
                        _ => None,
                    }));
                }
                NetlinkPayload::Error(e) => {
                    return Err(self.fail(
                        "look up namespace id",
                        "",
                        rtnetlink::Error::NetlinkError(e),
                    ));
                }
                _ => {}
            }
        }
        Ok(None)
    }
}
