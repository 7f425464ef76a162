//! `RTM_GETROUTE` for one destination: the kernel's own routing decision, as
//! `ip route get ADDR` shows it, asked from inside the namespace of this socket.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};

use super::{Netlink, NetlinkError, error};

/// The kernel's answer for one destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteAnswer {
    /// Sent out `oif` to `gateway` (None: the destination is on the link).
    Unicast {
        oif: u32,
        gateway: Option<IpAddr>,
        src: Option<IpAddr>,
    },
    /// An address of this namespace: delivered locally (over lo).
    Local { src: Option<IpAddr> },
    /// No route (the kernel's error, e.g. "Network is unreachable"), or a
    /// blackhole/unreachable/prohibit route.
    None { reason: String },
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

impl Netlink {
    /// Asks the kernel where a packet to `dst` would go (optionally forced out `oif`).
    pub async fn route_get(
        &self,
        dst: IpAddr,
        oif: Option<u32>,
    ) -> Result<RouteAnswer, NetlinkError> {
        let mut msg: RouteMessage = match dst {
            IpAddr::V4(a) => {
                let mut b = rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                    .destination_prefix(a, 32);
                if let Some(i) = oif {
                    b = b.output_interface(i);
                }
                b.build()
            }
            IpAddr::V6(a) => {
                let mut b = rtnetlink::RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                    .destination_prefix(a, 128);
                if let Some(i) = oif {
                    b = b.output_interface(i);
                }
                b.build()
            }
        };
        // A query, not a route to add: the kernel ignores these for RTM_GETROUTE
        // without strict checking, but clear them so the message says what it asks.
        msg.header.table = 0;
        msg.header.protocol = Default::default();
        let res: Result<Vec<RouteMessage>, _> =
            self.handle.route().get(msg).execute().try_collect().await;
        let msgs = match res {
            Ok(m) => m,
            Err(e) => {
                return match error::errno_of(&e) {
                    Some(errno) => Ok(RouteAnswer::None {
                        reason: std::io::Error::from_raw_os_error(errno).to_string(),
                    }),
                    None => Err(self.fail("look up the route to", dst.to_string(), e)),
                };
            }
        };
        let Some(m) = msgs.first() else {
            return Ok(RouteAnswer::None {
                reason: "the kernel returned no route".into(),
            });
        };
        let mut oif_out = None;
        let mut gateway = None;
        let mut src = None;
        for a in &m.attributes {
            match a {
                RouteAttribute::Oif(i) => oif_out = Some(*i),
                RouteAttribute::Gateway(g) => gateway = addr(g),
                RouteAttribute::PrefSource(s) => src = addr(s),
                _ => {}
            }
        }
        Ok(match m.header.kind {
            RouteType::Local => RouteAnswer::Local { src },
            RouteType::Unicast => match oif_out {
                Some(oif) => RouteAnswer::Unicast { oif, gateway, src },
                None => RouteAnswer::None {
                    reason: "the route has no output interface".into(),
                },
            },
            other => RouteAnswer::None {
                reason: format!("{other:?} route").to_lowercase(),
            },
        })
    }
}
