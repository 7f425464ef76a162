//! Request messages for [`batch`](super::batch): the same messages the async
//! [`Netlink`](super::Netlink) methods send, built without a connection.

use std::net::IpAddr;
use std::os::fd::RawFd;

use rtnetlink::packet_route::{
    RouteNetlinkMessage,
    link::{InfoData, InfoKind, InfoVeth, LinkAttribute},
    route::RouteMessage,
};
use rtnetlink::{LinkMessageBuilder, LinkUnspec};

use crate::topology::{Cidr, Route};

/// Settings of one interface that can go straight into the request creating it.
#[derive(Clone, Debug, Default)]
pub struct NewEnd<'a> {
    pub name: &'a str,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    /// Master (bridge) index, in the namespace where the request is sent. Only for the
    /// first end: the kernel ignores a master on the peer.
    pub master: Option<u32>,
    /// Namespace to create this end in (an fd of it); `None` = where the request is sent.
    pub netns_fd: Option<RawFd>,
    /// Bring it up in the same request. Only for the first end: the kernel refuses
    /// IFF_UP on a peer placed in another namespace.
    pub up: bool,
}

fn end_builder(
    mut b: LinkMessageBuilder<LinkUnspec>,
    e: &NewEnd,
) -> LinkMessageBuilder<LinkUnspec> {
    b = b.name(e.name.to_string());
    if let Some(mtu) = e.mtu {
        b = b.mtu(mtu);
    }
    if let Some(mac) = e.mac {
        b = b.address(mac.to_vec());
    }
    if let Some(m) = e.master {
        b = b.controller(m);
    }
    if let Some(fd) = e.netns_fd {
        b = b.setns_by_fd(fd);
    }
    if e.up {
        b = b.up();
    }
    // One queue each way, asked for explicitly. Without it the kernel allocates one
    // queue per possible CPU and then shrinks the registered device to one
    // (veth_init_queues → netif_set_real_num_tx_queues), which waits for an RCU
    // grace period under RTNL: two per veth pair, most of the veth phase of a large
    // `up`. The device ends up the same (one real queue); only `ethtool -L` can no
    // longer raise the count later.
    b.append_extra_attribute(LinkAttribute::NumTxQueues(1))
        .append_extra_attribute(LinkAttribute::NumRxQueues(1))
}

/// A veth pair in one request: both ends named, placed, with mtu, MAC and master set
/// (and the first end up when asked); the peer is brought up once addressed.
pub fn new_veth(a: &NewEnd, b: &NewEnd) -> RouteNetlinkMessage {
    let peer = end_builder(LinkMessageBuilder::<LinkUnspec>::new(), b).build();
    let main = end_builder(
        LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth),
        a,
    )
    .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
    .build();
    RouteNetlinkMessage::NewLink(main)
}

/// A Linux bridge, down, with its mtu.
pub fn new_bridge(name: &str, mtu: Option<u32>) -> RouteNetlinkMessage {
    let mut b = rtnetlink::LinkBridge::new(name);
    if let Some(mtu) = mtu {
        b = b.mtu(mtu);
    }
    RouteNetlinkMessage::NewLink(b.build())
}

/// Changes of one link, found by index (or by name when `index` is 0 and `name` given).
pub fn set_link(
    index: u32,
    name: Option<&str>,
    attrs: Vec<LinkAttribute>,
    up: bool,
) -> RouteNetlinkMessage {
    let mut b = match (index, name) {
        (0, Some(n)) => LinkUnspec::new_with_name(n),
        _ => LinkUnspec::new_with_index(index),
    };
    for a in attrs {
        b = b.append_extra_attribute(a);
    }
    if up {
        b = b.up();
    }
    RouteNetlinkMessage::SetLink(b.build())
}

/// The ownership mark on a link found by name.
pub fn mark_by_name(name: &str, alias: &str) -> RouteNetlinkMessage {
    set_link(
        0,
        Some(name),
        vec![LinkAttribute::IfAlias(alias.to_string())],
        false,
    )
}

/// Sets a link down (`ip link set DEV down`), found by index.
pub fn set_down(index: u32) -> RouteNetlinkMessage {
    RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(index).down().build())
}

pub fn del_link(index: u32) -> RouteNetlinkMessage {
    RouteNetlinkMessage::DelLink(LinkUnspec::new_with_index(index).build())
}

pub fn new_address(index: u32, cidr: &Cidr) -> RouteNetlinkMessage {
    let m = match cidr.addr {
        IpAddr::V4(a) => rtnetlink::AddressMessageBuilder::<std::net::Ipv4Addr>::new()
            .index(index)
            .address(a, cidr.prefix)
            .build(),
        IpAddr::V6(a) => rtnetlink::AddressMessageBuilder::<std::net::Ipv6Addr>::new()
            .index(index)
            .address(a, cidr.prefix)
            .build(),
    };
    RouteNetlinkMessage::NewAddress(m)
}

/// How a route is named in errors: `10.0.0.0/8 via 10.1.1.1`.
pub fn route_object(route: &Route) -> String {
    format!(
        "{} {}",
        route.to.map_or("default".to_string(), |c| c.to_string()),
        route.via.map_or(String::new(), |v| format!("via {v}"))
    )
}

/// A route (IPv4 or IPv6 by its destination or gateway), through `dev` when given.
pub fn route(route: &Route, dev: Option<u32>) -> RouteMessage {
    let family_v6 = route
        .to
        .map(|c| c.addr.is_ipv6())
        .or(route.via.map(|v| v.is_ipv6()))
        .unwrap_or(false);
    if family_v6 {
        let mut b = rtnetlink::RouteMessageBuilder::<std::net::Ipv6Addr>::new();
        if let Some(Cidr {
            addr: IpAddr::V6(a),
            prefix,
        }) = route.to
        {
            b = b.destination_prefix(a, prefix);
        }
        if let Some(IpAddr::V6(g)) = route.via {
            b = b.gateway(g);
        }
        if let Some(d) = dev {
            b = b.output_interface(d);
        }
        b.build()
    } else {
        let mut b = rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new();
        if let Some(Cidr {
            addr: IpAddr::V4(a),
            prefix,
        }) = route.to
        {
            b = b.destination_prefix(a, prefix);
        }
        if let Some(IpAddr::V4(g)) = route.via {
            b = b.gateway(g);
        }
        if let Some(d) = dev {
            b = b.output_interface(d);
        }
        b.build()
    }
}
