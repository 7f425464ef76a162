//! Root queueing disciplines (TBF, netem) of one interface, for impairments.
//!
//! rtnetlink's request builders cannot carry qdisc options, so the messages are built
//! here; the option payloads come ready-encoded from `impair::qdisc`.

use futures::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::{
    DefaultNla, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage,
    NetlinkPayload,
};
use rtnetlink::packet_route::{
    RouteNetlinkMessage,
    tc::{TcAttribute, TcHandle, TcMessage},
};

use super::{Netlink, NetlinkError};

/// `TCA_OPTIONS`: the qdisc's own parameters.
const TCA_OPTIONS: u16 = 2;

/// A root qdisc as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootQdisc {
    pub kind: String,
    pub handle: u32,
}

impl Netlink {
    /// Creates or replaces the root qdisc of interface `index` with `kind` and the raw
    /// `TCA_OPTIONS` payload `options`, under handle `major:0`.
    pub async fn replace_root_qdisc(
        &self,
        ifname: &str,
        index: u32,
        major: u16,
        kind: &str,
        options: Vec<u8>,
    ) -> Result<(), NetlinkError> {
        let mut msg = TcMessage::with_index(index as i32);
        msg.header.parent = TcHandle::ROOT;
        msg.header.handle = TcHandle { major, minor: 0 };
        msg.attributes.push(TcAttribute::Kind(kind.to_string()));
        msg.attributes
            .push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, options)));
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewQueueDiscipline(msg));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        self.ack(req, "set the queueing discipline of", ifname)
            .await
    }

    /// Deletes the root qdisc of interface `index` (the device's default comes back).
    /// Absent is success.
    pub async fn delete_root_qdisc(&self, ifname: &str, index: u32) -> Result<(), NetlinkError> {
        let mut msg = TcMessage::with_index(index as i32);
        msg.header.parent = TcHandle::ROOT;
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::DelQueueDiscipline(msg));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        match self
            .ack(req, "remove the queueing discipline of", ifname)
            .await
        {
            Err(e) if matches!(e.errno(), Some(libc::ENOENT | libc::EINVAL | libc::ENODEV)) => {
                Ok(())
            }
            r => r,
        }
    }

    /// The root qdisc of interface `index`, if it has one other than the default.
    pub async fn root_qdisc(&self, index: u32) -> Result<Option<RootQdisc>, NetlinkError> {
        let msgs: Vec<TcMessage> = self
            .handle
            .qdisc()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.fail("list the queueing disciplines", "", e))?;
        Ok(msgs
            .into_iter()
            .filter(|m| m.header.index == index as i32 && m.header.parent == TcHandle::ROOT)
            .find_map(|m| {
                let kind = m.attributes.iter().find_map(|a| match a {
                    TcAttribute::Kind(k) => Some(k.clone()),
                    _ => None,
                })?;
                Some(RootQdisc {
                    kind,
                    handle: u32::from(m.header.handle),
                })
            }))
    }

    /// Sets an interface administratively down (`up == false`) or up.
    pub async fn set_admin(&self, ifname: &str, index: u32, up: bool) -> Result<(), NetlinkError> {
        let mut b = rtnetlink::LinkUnspec::new_with_index(index);
        b = if up { b.up() } else { b.down() };
        self.handle
            .link()
            .set(b.build())
            .execute()
            .await
            .map_err(|e| self.fail(if up { "bring up" } else { "take down" }, ifname, e))
    }

    async fn ack(
        &self,
        req: NetlinkMessage<RouteNetlinkMessage>,
        op: &'static str,
        object: &str,
    ) -> Result<(), NetlinkError> {
        let mut handle = self.handle.clone();
        let mut response = handle.request(req).map_err(|e| self.fail(op, object, e))?;
        while let Some(msg) = response.next().await {
            if let NetlinkPayload::Error(err) = msg.payload
                && err.code.is_some()
            {
                return Err(self.fail(op, object, rtnetlink::Error::NetlinkError(err)));
            }
        }
        Ok(())
    }
}
