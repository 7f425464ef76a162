//! rtnetlink, one socket per namespace. The socket is opened on a thread inside the
//! namespace (sockets stay bound to the namespace they were created in) and then used
//! from the async runtime like any other.

pub mod batch;
pub mod bridge;
mod error;
pub mod link;
pub mod msg;
mod netconf;
mod qdisc;
mod route_get;
mod tables;
pub mod tc;

use std::os::fd::{AsRawFd, OwnedFd};

use futures::TryStreamExt;
use rtnetlink::packet_route::{
    address::{AddressAttribute, AddressMessage},
    link::{LinkAttribute, LinkMessage},
};

pub use error::{NetlinkError, OpFailure};
pub use link::{LinkInfo, LinkState};
pub use netconf::Netconf;
pub use qdisc::RootQdisc;
pub use route_get::RouteAnswer;
pub use tables::{FdbEntry, NeighbourEntry, RouteEntry};

use crate::{
    netns,
    topology::{Cidr, Route},
};

/// Netlink access to one namespace.
pub struct Netlink {
    handle: rtnetlink::Handle,
    netns: String,
}

impl Netlink {
    /// Opens a route-netlink socket inside `netns` (`host` = our own namespace).
    pub async fn open(netns: &str) -> Result<Self, NetlinkError> {
        let runtime = tokio::runtime::Handle::current();
        let (conn, handle, _) = netns::run_in(netns, || {
            // The socket registers with the runtime's reactor; the thread only needs
            // the runtime context, not to run it.
            let _guard = runtime.enter();
            rtnetlink::new_connection()
        })?
        .map_err(|source| NetlinkError::Socket {
            netns: netns.to_string(),
            source,
        })?;
        tokio::spawn(conn);
        Ok(Self {
            handle,
            netns: netns.to_string(),
        })
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    fn fail(
        &self,
        op: &'static str,
        object: impl Into<String>,
        e: rtnetlink::Error,
    ) -> NetlinkError {
        NetlinkError::from_rtnetlink(op, object.into(), &self.netns, e)
    }

    pub async fn links(&self) -> Result<Vec<LinkInfo>, NetlinkError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.fail("list interfaces", "", e))?;
        Ok(msgs.iter().map(LinkInfo::from_message).collect())
    }

    pub async fn link_by_name(&self, name: &str) -> Result<Option<LinkInfo>, NetlinkError> {
        let res: Result<Vec<LinkMessage>, _> = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_collect()
            .await;
        match res {
            Ok(msgs) => Ok(msgs.first().map(LinkInfo::from_message)),
            Err(e) if error::errno_of(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(self.fail("look up interface", name, e)),
        }
    }

    /// Like [`link_by_name`](Self::link_by_name) but a missing interface is an error.
    pub async fn require(&self, name: &str) -> Result<LinkInfo, NetlinkError> {
        self.link_by_name(name)
            .await?
            .ok_or_else(|| NetlinkError::Missing {
                name: name.to_string(),
                netns: self.netns.clone(),
            })
    }

    /// Creates a veth pair `name` (here) — `peer` (in the namespace `peer_ns`, or here).
    /// Both ends are created in their final namespace in one request, so no name ever
    /// appears in a namespace it was not meant for.
    pub async fn create_veth(
        &self,
        name: &str,
        peer: &str,
        peer_ns: Option<&OwnedFd>,
    ) -> Result<(), NetlinkError> {
        use rtnetlink::packet_route::link::{InfoData, InfoVeth};
        let mut peer_msg =
            rtnetlink::LinkMessageBuilder::<rtnetlink::LinkUnspec>::new().name(peer.to_string());
        if let Some(fd) = peer_ns {
            peer_msg = peer_msg.setns_by_fd(fd.as_raw_fd());
        }
        let msg = rtnetlink::LinkMessageBuilder::<rtnetlink::LinkUnspec>::new_with_info_kind(
            rtnetlink::packet_route::link::InfoKind::Veth,
        )
        .name(name.to_string())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())))
        .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| self.fail("create veth pair", format!("{name} (peer {peer})"), e))
    }

    pub async fn create_bridge(&self, name: &str) -> Result<(), NetlinkError> {
        let msg = rtnetlink::LinkBridge::new(name).build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| self.fail("create bridge", name, e))
    }

    async fn set(
        &self,
        op: &'static str,
        object: &str,
        index: u32,
        attrs: Vec<LinkAttribute>,
        up: bool,
    ) -> Result<(), NetlinkError> {
        let mut b = rtnetlink::LinkUnspec::new_with_index(index);
        for a in attrs {
            b = b.append_extra_attribute(a);
        }
        if up {
            b = b.up();
        }
        self.handle
            .link()
            .set(b.build())
            .execute()
            .await
            .map_err(|e| self.fail(op, object, e))
    }

    /// The ownership mark: `ip link` shows it as `alias vethscope:LAB`.
    pub async fn set_alias(&self, link: &LinkInfo, alias: &str) -> Result<(), NetlinkError> {
        self.set(
            "mark",
            &link.name,
            link.index,
            vec![LinkAttribute::IfAlias(alias.to_string())],
            false,
        )
        .await
    }

    pub async fn set_master(&self, link: &LinkInfo, master: &LinkInfo) -> Result<(), NetlinkError> {
        let object = format!("{} to bridge {}", link.name, master.name);
        self.set(
            "attach",
            &object,
            link.index,
            vec![LinkAttribute::Controller(master.index)],
            false,
        )
        .await
    }

    /// Detaches an interface from its bridge (`ip link set IF nomaster`).
    pub async fn set_nomaster(&self, link: &LinkInfo) -> Result<(), NetlinkError> {
        self.set(
            "detach",
            &link.name,
            link.index,
            vec![LinkAttribute::Controller(0)],
            false,
        )
        .await
    }

    pub async fn set_up(&self, link: &LinkInfo) -> Result<(), NetlinkError> {
        self.set("bring up", &link.name, link.index, Vec::new(), true)
            .await
    }

    pub async fn set_mtu(&self, link: &LinkInfo, mtu: u32) -> Result<(), NetlinkError> {
        self.set(
            "set the mtu of",
            &link.name,
            link.index,
            vec![LinkAttribute::Mtu(mtu)],
            false,
        )
        .await
    }

    pub async fn set_mac(&self, link: &LinkInfo, mac: [u8; 6]) -> Result<(), NetlinkError> {
        self.set(
            "set the MAC of",
            &link.name,
            link.index,
            vec![LinkAttribute::Address(mac.to_vec())],
            false,
        )
        .await
    }

    /// Moves an interface into another namespace.
    pub async fn set_netns(
        &self,
        link: &LinkInfo,
        target: &OwnedFd,
        target_name: &str,
    ) -> Result<(), NetlinkError> {
        let object = format!("{} to namespace {target_name}", link.name);
        self.set(
            "move",
            &object,
            link.index,
            vec![LinkAttribute::NetNsFd(target.as_raw_fd())],
            false,
        )
        .await
    }

    pub async fn delete(&self, link: &LinkInfo) -> Result<(), NetlinkError> {
        match self.handle.link().del(link.index).execute().await {
            Ok(()) => Ok(()),
            // Already gone (e.g. its veth peer was deleted first): deletion is idempotent.
            Err(e) if error::errno_of(&e) == Some(libc::ENODEV) => Ok(()),
            Err(e) => Err(self.fail("delete interface", &link.name, e)),
        }
    }

    pub async fn add_address(&self, link: &LinkInfo, cidr: &Cidr) -> Result<(), NetlinkError> {
        self.handle
            .address()
            .add(link.index, cidr.addr, cidr.prefix)
            .execute()
            .await
            .map_err(|e| self.fail("add address", format!("{cidr} to {}", link.name), e))
    }

    /// Every address of this namespace: (ifindex, address).
    pub async fn addresses(&self) -> Result<Vec<(u32, Cidr)>, NetlinkError> {
        let msgs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.fail("list addresses", "", e))?;
        Ok(msgs.iter().filter_map(cidr_of).collect())
    }

    pub async fn add_route(
        &self,
        route: &Route,
        dev: Option<&LinkInfo>,
    ) -> Result<(), NetlinkError> {
        let object = msg::route_object(route);
        let msg = msg::route(route, dev.map(|d| d.index));
        self.handle
            .route()
            .add(msg)
            .execute()
            .await
            .map_err(|e| self.fail("add route", object, e))
    }
}

/// (ifindex, address) of an address message; `None` without an address attribute.
pub fn cidr_of(m: &AddressMessage) -> Option<(u32, Cidr)> {
    let addr = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    })?;
    Some((
        m.header.index,
        Cidr {
            addr,
            prefix: m.header.prefix_len,
        },
    ))
}
