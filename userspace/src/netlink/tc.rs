//! Legacy TC through netlink: the clsact qdisc and cls_bpf filters in direct-action
//! mode. Attaching such a filter costs a netlink round trip (~tens of µs); a TCX link
//! waits for an RCU grace period under RTNL (15–35 ms), which on a thousand ports is
//! half a minute (see benches/fastpath_attach.rs). All requests go over this
//! namespace's one socket and name interfaces by ifindex, never by name.

use std::collections::HashSet;

use futures::StreamExt;
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::{
    RouteNetlinkMessage,
    tc::{TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption},
};

use super::{Netlink, NetlinkError, batch::BatchSocket, error::errno_of};

const ETH_P_ALL: u16 = 0x0003;
/// The clsact qdisc's own handle (ffff:0) and parent (ffff:fff1).
const CLSACT_HANDLE: TcHandle = TcHandle {
    major: 0xffff,
    minor: 0,
};
const INGRESS_PARENT: TcHandle = TcHandle {
    major: 0xffff,
    minor: TcHandle::MIN_INGRESS,
};

/// A cls_bpf filter found on an interface's ingress hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfFilter {
    pub priority: u16,
    pub handle: u32,
    /// The program's name as given at attach time.
    pub name: String,
}

fn tc_info(priority: u16) -> u32 {
    (u32::from(priority) << 16) | u32::from(ETH_P_ALL.to_be())
}

impl Netlink {
    /// Sends one request and collects its replies; a NACK becomes the error.
    async fn tc_request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, rtnetlink::Error> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = flags;
        let mut handle = self.handle.clone();
        let mut replies = handle.request(req)?;
        let mut out = Vec::new();
        while let Some(m) = replies.next().await {
            match m.payload {
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(rtnetlink::Error::NetlinkError(e));
                }
                NetlinkPayload::InnerMessage(inner) => out.push(inner),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Interfaces (by ifindex) that carry a clsact qdisc: one dump for all of them.
    pub async fn clsact_ifindexes(&self) -> Result<HashSet<u32>, NetlinkError> {
        let replies = self
            .tc_request(
                RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default()),
                NLM_F_REQUEST | NLM_F_DUMP,
            )
            .await
            .map_err(|e| self.fail("list qdiscs", "", e))?;
        Ok(replies.iter().filter_map(clsact_index).collect())
    }

    /// Adds a clsact qdisc; one that is already there is success.
    pub async fn add_clsact(&self, ifindex: u32) -> Result<(), NetlinkError> {
        let mut m = TcMessage::with_index(ifindex as i32);
        m.header.handle = CLSACT_HANDLE;
        m.header.parent = TcHandle::CLSACT;
        m.attributes.push(TcAttribute::Kind("clsact".into()));
        match self
            .tc_request(
                RouteNetlinkMessage::NewQueueDiscipline(m),
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            )
            .await
        {
            Err(e) if errno_of(&e) == Some(libc::EEXIST) => Ok(()),
            r => r
                .map(|_| ())
                .map_err(|e| self.fail("add a clsact qdisc to", format!("ifindex {ifindex}"), e)),
        }
    }

    /// Removes the clsact qdisc (and with it every filter on it); absent is success.
    pub async fn del_clsact(&self, ifindex: u32) -> Result<(), NetlinkError> {
        let mut m = TcMessage::with_index(ifindex as i32);
        m.header.handle = CLSACT_HANDLE;
        m.header.parent = TcHandle::CLSACT;
        self.delete_if_present(
            RouteNetlinkMessage::DelQueueDiscipline(m),
            "remove the clsact qdisc of",
            ifindex,
        )
        .await
    }

    /// Every filter on the ingress (or egress) hook of `ifindex`: (priority, handle,
    /// bpf program name if it is a cls_bpf filter). No interface or no clsact: none.
    pub async fn tc_filters(
        &self,
        ifindex: u32,
        egress: bool,
    ) -> Result<Vec<(BpfFilter, bool)>, NetlinkError> {
        let mut m = TcMessage::with_index(ifindex as i32);
        m.header.parent = TcHandle {
            major: 0xffff,
            minor: if egress {
                TcHandle::MIN_EGRESS
            } else {
                TcHandle::MIN_INGRESS
            },
        };
        let replies = match self
            .tc_request(
                RouteNetlinkMessage::GetTrafficFilter(m),
                NLM_F_REQUEST | NLM_F_DUMP,
            )
            .await
        {
            Err(e)
                if matches!(
                    errno_of(&e),
                    Some(libc::ENODEV | libc::EINVAL | libc::ENOENT)
                ) =>
            {
                return Ok(Vec::new());
            }
            r => r.map_err(|e| self.fail("list TC filters of", format!("ifindex {ifindex}"), e))?,
        };
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewTrafficFilter(f) => filter_of(f),
                _ => None,
            })
            .map(|h| (h.filter, h.is_bpf))
            .collect())
    }

    /// Attaches program `prog_fd` as a direct-action cls_bpf filter on the ingress hook
    /// of `ifindex` at (`priority`, `handle`). A filter already there is an error.
    pub async fn add_ingress_bpf(
        &self,
        ifindex: u32,
        priority: u16,
        handle: u32,
        prog_fd: i32,
        name: &str,
    ) -> Result<(), NetlinkError> {
        let mut m = TcMessage::with_index(ifindex as i32);
        m.header.handle = handle.into();
        m.header.parent = INGRESS_PARENT;
        m.header.info = tc_info(priority);
        m.attributes.push(TcAttribute::Kind("bpf".into()));
        m.attributes.push(TcAttribute::Options(vec![
            TcOption::Bpf(TcFilterBpfOption::ProgFd(prog_fd as u32)),
            TcOption::Bpf(TcFilterBpfOption::ProgName(name.to_string())),
            TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
        ]));
        self.tc_request(
            RouteNetlinkMessage::NewTrafficFilter(m),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .await
        .map(|_| ())
        .map_err(|e| self.fail("attach a TC filter to", format!("ifindex {ifindex}"), e))
    }

    /// Removes the ingress filter at (`priority`, `handle`); absent is success.
    pub async fn del_ingress_filter(
        &self,
        ifindex: u32,
        priority: u16,
        handle: u32,
    ) -> Result<(), NetlinkError> {
        let mut m = TcMessage::with_index(ifindex as i32);
        m.header.handle = handle.into();
        m.header.parent = INGRESS_PARENT;
        m.header.info = tc_info(priority);
        self.delete_if_present(
            RouteNetlinkMessage::DelTrafficFilter(m),
            "remove a TC filter of",
            ifindex,
        )
        .await
    }

    /// Sends a delete; an object (or interface) already gone is success, as `down`
    /// and `disable` must be idempotent.
    async fn delete_if_present(
        &self,
        request: RouteNetlinkMessage,
        what: &'static str,
        ifindex: u32,
    ) -> Result<(), NetlinkError> {
        match self.tc_request(request, NLM_F_REQUEST | NLM_F_ACK).await {
            Err(e)
                if matches!(
                    errno_of(&e),
                    Some(libc::ENOENT | libc::ENODEV | libc::EINVAL)
                ) =>
            {
                Ok(())
            }
            r => r
                .map(|_| ())
                .map_err(|e| self.fail(what, format!("ifindex {ifindex}"), e)),
        }
    }
}

/// A TC hook of an interface (the clsact qdisc's two parents).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    Ingress,
    Egress,
}

impl Hook {
    fn parent(self) -> TcHandle {
        TcHandle {
            major: 0xffff,
            minor: match self {
                Hook::Ingress => TcHandle::MIN_INGRESS,
                Hook::Egress => TcHandle::MIN_EGRESS,
            },
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
        }
    }
}

/// A filter found on one hook by [`BatchSocket::hook_filters`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookFilter {
    pub filter: BpfFilter,
    pub is_bpf: bool,
}

/// Requests for a [`BatchSocket`] batch: many interfaces of one namespace in one
/// `sendmsg` (the blocking counterparts of the `Netlink` methods above, for work at
/// scale on the namespace pool).
pub mod request {
    use super::*;
    use crate::netlink::batch::Request;

    /// A clsact qdisc on `ifindex` (EEXIST when one is there).
    pub fn add_clsact(ifindex: u32) -> Request {
        let mut m = TcMessage::with_index(ifindex as i32);
        m.header.handle = CLSACT_HANDLE;
        m.header.parent = TcHandle::CLSACT;
        m.attributes.push(TcAttribute::Kind("clsact".into()));
        Request::new(
            RouteNetlinkMessage::NewQueueDiscipline(m),
            "add a clsact qdisc to",
            format!("ifindex {ifindex}"),
        )
    }

    /// Removes the clsact qdisc of `ifindex` and every filter on it.
    pub fn del_clsact(ifindex: u32) -> Request {
        let mut m = TcMessage::with_index(ifindex as i32);
        m.header.handle = CLSACT_HANDLE;
        m.header.parent = TcHandle::CLSACT;
        Request::new(
            RouteNetlinkMessage::DelQueueDiscipline(m),
            "remove the clsact qdisc of",
            format!("ifindex {ifindex}"),
        )
    }

    /// A direct-action cls_bpf filter running `prog_fd` at (`priority`, `handle`) on
    /// `hook` of `ifindex`, named `name` (EEXIST when that priority and handle are taken).
    pub fn add_bpf(
        ifindex: u32,
        hook: Hook,
        priority: u16,
        handle: u32,
        prog_fd: i32,
        name: &str,
    ) -> Request {
        let mut m = TcMessage::with_index(ifindex as i32);
        m.header.handle = handle.into();
        m.header.parent = hook.parent();
        m.header.info = tc_info(priority);
        m.attributes.push(TcAttribute::Kind("bpf".into()));
        m.attributes.push(TcAttribute::Options(vec![
            TcOption::Bpf(TcFilterBpfOption::ProgFd(prog_fd as u32)),
            TcOption::Bpf(TcFilterBpfOption::ProgName(name.to_string())),
            TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
        ]));
        Request::new(
            RouteNetlinkMessage::NewTrafficFilter(m),
            "attach a TC filter to",
            format!("ifindex {ifindex} {}", hook.as_str()),
        )
    }

    /// Removes the filter at (`priority`, `handle`) of `hook` of `ifindex`.
    pub fn del_filter(ifindex: u32, hook: Hook, priority: u16, handle: u32) -> Request {
        let mut m = TcMessage::with_index(ifindex as i32);
        m.header.handle = handle.into();
        m.header.parent = hook.parent();
        m.header.info = tc_info(priority);
        Request::new(
            RouteNetlinkMessage::DelTrafficFilter(m),
            "remove a TC filter of",
            format!("ifindex {ifindex} {}", hook.as_str()),
        )
    }
}

/// An error of a delete that means "already gone" (object, hook or interface).
pub fn is_absent(e: &NetlinkError) -> bool {
    matches!(e.errno(), Some(libc::ENOENT | libc::ENODEV | libc::EINVAL))
}

impl BatchSocket {
    /// Interfaces (by ifindex) of this namespace that carry a clsact qdisc: one dump.
    pub fn clsact_ifindexes(&mut self) -> Result<HashSet<u32>, NetlinkError> {
        let replies = self.dump(
            RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default()),
            "list qdiscs",
        )?;
        Ok(replies.iter().filter_map(clsact_index).collect())
    }

    /// Every filter on `hook` of `ifindex` (none when the interface or its clsact is
    /// gone). One dump: a socket runs one dump at a time.
    pub fn hook_filters(
        &mut self,
        ifindex: u32,
        hook: Hook,
    ) -> Result<Vec<HookFilter>, NetlinkError> {
        let mut m = TcMessage::with_index(ifindex as i32);
        m.header.parent = hook.parent();
        let replies = match self.dump(RouteNetlinkMessage::GetTrafficFilter(m), "list TC filters") {
            Err(e) if is_absent(&e) => return Ok(Vec::new()),
            r => r?,
        };
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewTrafficFilter(f) => filter_of(&f),
                _ => None,
            })
            .collect())
    }
}

/// A dumped filter; `None` for a priority's chain head (no handle).
fn filter_of(f: &TcMessage) -> Option<HookFilter> {
    if u32::from(f.header.handle) == 0 {
        return None;
    }
    let is_bpf = f
        .attributes
        .iter()
        .any(|a| matches!(a, TcAttribute::Kind(k) if k == "bpf"));
    let name = f
        .attributes
        .iter()
        .filter_map(|a| match a {
            TcAttribute::Options(o) => Some(o),
            _ => None,
        })
        .flatten()
        .find_map(|o| match o {
            TcOption::Bpf(TcFilterBpfOption::ProgName(n)) => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_default();
    Some(HookFilter {
        filter: BpfFilter {
            priority: (f.header.info >> 16) as u16,
            handle: f.header.handle.into(),
            name,
        },
        is_bpf,
    })
}

/// The interface index of a dumped qdisc when it is a clsact one.
fn clsact_index(m: &RouteNetlinkMessage) -> Option<u32> {
    match m {
        RouteNetlinkMessage::NewQueueDiscipline(q)
            if q.attributes
                .iter()
                .any(|a| matches!(a, TcAttribute::Kind(k) if k == "clsact")) =>
        {
            u32::try_from(q.header.index).ok()
        }
        _ => None,
    }
}
