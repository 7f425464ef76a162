//! A plain blocking route-netlink socket for work at scale: many requests written in
//! one `sendmsg`, their ACKs collected afterwards, and dumps parsed in one pass.
//!
//! The kernel handles a request inside the `sendmsg` that carries it, so what a batch
//! saves is the round trip per object (and the async machinery per request), not the
//! kernel's own work. The socket is bound to the namespace of the thread that opened it
//! and can then be used from any thread.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::{
    AddressFamily, RouteNetlinkMessage,
    address::AddressMessage,
    link::{LinkAttribute, LinkExtentMask, LinkMessage},
};

use super::{LinkInfo, NetlinkError};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NETLINK_CAP_ACK: libc::c_int = 10;
/// Requests per `sendmsg`: their ACKs must fit the receive buffer until read.
const CHUNK: usize = 128;
const RCVBUF: libc::c_int = 8 << 20;

/// One request of a batch: the message and what to call it in an error.
pub struct Request {
    pub message: RouteNetlinkMessage,
    pub op: &'static str,
    pub object: String,
}

impl Request {
    pub fn new(message: RouteNetlinkMessage, op: &'static str, object: impl Into<String>) -> Self {
        Self {
            message,
            op,
            object: object.into(),
        }
    }
}

/// A blocking NETLINK_ROUTE socket in one namespace.
pub struct BatchSocket {
    fd: OwnedFd,
    seq: u32,
    netns: String,
    buf: Vec<u8>,
}

impl BatchSocket {
    /// Opens a socket in the calling thread's namespace, which the caller names `netns`.
    pub fn open_here(netns: &str) -> Result<Self, NetlinkError> {
        let err = |source| NetlinkError::Socket {
            netns: netns.to_string(),
            source,
        };
        // SAFETY: plain socket(2); the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        // ACKs without a copy of the request; a larger receive buffer (root may force it)
        // so the ACKs of a whole chunk never overflow it.
        setsockopt(&fd, libc::SOL_NETLINK, NETLINK_CAP_ACK, one);
        if !setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF) {
            setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF);
        }
        // SAFETY: a zeroed sockaddr_nl (pid 0: the kernel picks one) is valid for bind.
        let rc = unsafe {
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        Ok(Self {
            fd,
            seq: 0,
            netns: netns.to_string(),
            buf: vec![0u8; 1 << 16],
        })
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    fn io_fail(&self, op: &'static str, object: &str, e: std::io::Error) -> NetlinkError {
        NetlinkError::Op {
            op,
            object: object.to_string(),
            netns: self.netns.clone(),
            source: super::error::OpFailure::Kernel(e),
        }
    }

    fn encode(&mut self, message: RouteNetlinkMessage, flags: u16, out: &mut Vec<u8>) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        let mut m = NetlinkMessage::from(message);
        m.header.flags = flags;
        m.header.sequence_number = self.seq;
        m.finalize();
        let start = out.len();
        out.resize(start + m.buffer_len(), 0);
        m.serialize(&mut out[start..]);
        self.seq
    }

    fn send(&self, bytes: &[u8]) -> std::io::Result<()> {
        // SAFETY: sending from a valid buffer of `bytes.len()` bytes; the kernel is the
        // default destination of a netlink socket.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads one datagram (possibly several messages) into `self.buf`; its length.
    fn recv(&mut self) -> std::io::Result<usize> {
        loop {
            // SAFETY: receiving into our own buffer of the given length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Sends every request (in chunks, one `sendmsg` each) and collects the ACKs.
    /// Returns one result per request, in order: the kernel goes on after a failed
    /// request, so the caller sees every failure and decides.
    pub fn execute(&mut self, requests: Vec<Request>) -> Vec<Result<(), NetlinkError>> {
        let mut results = Vec::with_capacity(requests.len());
        let mut iter = requests.into_iter().peekable();
        while iter.peek().is_some() {
            let chunk: Vec<Request> = iter.by_ref().take(CHUNK).collect();
            results.extend(self.execute_chunk(chunk));
        }
        results
    }

    fn execute_chunk(&mut self, chunk: Vec<Request>) -> Vec<Result<(), NetlinkError>> {
        let mut bytes = Vec::with_capacity(chunk.len() * 128);
        let mut pending: Vec<(u32, &'static str, String)> = Vec::with_capacity(chunk.len());
        for r in chunk {
            let create = matches!(
                r.message,
                RouteNetlinkMessage::NewLink(_)
                    | RouteNetlinkMessage::NewAddress(_)
                    | RouteNetlinkMessage::NewRoute(_)
                    | RouteNetlinkMessage::NewQueueDiscipline(_)
                    | RouteNetlinkMessage::NewTrafficFilter(_)
            );
            let flags = if create {
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
            } else {
                NLM_F_REQUEST | NLM_F_ACK
            };
            let seq = self.encode(r.message, flags, &mut bytes);
            pending.push((seq, r.op, r.object));
        }
        let first = pending.first().map_or(0, |p| p.0);
        let mut codes: Vec<Option<i32>> = vec![None; pending.len()];
        if let Err(e) = self.send(&bytes) {
            return pending
                .iter()
                .map(|(_, op, object)| Err(self.io_fail(op, object, copy_err(&e))))
                .collect();
        }
        let mut missing = pending.len();
        while missing > 0 {
            let n = match self.recv() {
                Ok(n) => n,
                Err(e) => {
                    return pending
                        .iter()
                        .zip(&codes)
                        .map(|((_, op, object), code)| match code {
                            Some(0) => Ok(()),
                            Some(c) => Err(self.errno_fail(op, object, *c)),
                            None => Err(self.io_fail(op, object, copy_err(&e))),
                        })
                        .collect();
                }
            };
            for (ty, seq, payload) in Messages::new(&self.buf[..n]) {
                if ty != NLMSG_ERROR || payload.len() < 4 {
                    continue;
                }
                let i = seq.wrapping_sub(first) as usize;
                if i < codes.len() && codes[i].is_none() {
                    let code = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    codes[i] = Some(-code);
                    missing -= 1;
                }
            }
        }
        pending
            .iter()
            .zip(codes)
            .map(|((_, op, object), code)| match code {
                Some(0) | None => Ok(()),
                Some(c) => Err(self.errno_fail(op, object, c)),
            })
            .collect()
    }

    fn errno_fail(&self, op: &'static str, object: &str, errno: i32) -> NetlinkError {
        NetlinkError::from_errno(op, object.to_string(), &self.netns, errno)
    }

    /// Runs one dump request and returns every message it yields.
    pub(super) fn dump(
        &mut self,
        message: RouteNetlinkMessage,
        what: &'static str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let mut out = Vec::new();
        self.dump_each(message, what, |raw| {
            match NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw) {
                Ok(m) => {
                    if let NetlinkPayload::InnerMessage(inner) = m.payload {
                        out.push(inner);
                    }
                }
                Err(e) => tracing::debug!("skipping an undecodable {what} message: {e}"),
            }
        })?;
        Ok(out)
    }

    /// Runs one dump request and hands each message it yields, undecoded (header
    /// included), to `each`.
    fn dump_each(
        &mut self,
        message: RouteNetlinkMessage,
        what: &'static str,
        each: impl FnMut(&[u8]),
    ) -> Result<(), NetlinkError> {
        let mut bytes = Vec::new();
        let seq = self.encode(message, NLM_F_REQUEST | NLM_F_DUMP, &mut bytes);
        self.dump_bytes(&bytes, seq, what, each)
    }

    /// Sends an encoded dump request (sequence number `seq`) and hands each answer,
    /// undecoded (header included), to `each` until the kernel says it is done.
    fn dump_bytes(
        &mut self,
        bytes: &[u8],
        seq: u32,
        what: &'static str,
        mut each: impl FnMut(&[u8]),
    ) -> Result<(), NetlinkError> {
        self.send(bytes).map_err(|e| self.io_fail(what, "", e))?;
        loop {
            let n = self.recv().map_err(|e| self.io_fail(what, "", e))?;
            let mut done = false;
            let mut offset = 0;
            for (ty, s, payload) in Messages::new(&self.buf[..n]) {
                let len = 16 + payload.len();
                let start = offset;
                offset += (len + 3) & !3;
                if s != seq {
                    continue;
                }
                match ty {
                    NLMSG_DONE => done = true,
                    NLMSG_ERROR => {
                        let code = payload
                            .get(..4)
                            .map(|b| -i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(0);
                        if code != 0 {
                            return Err(self.errno_fail(what, "", code));
                        }
                        done = true;
                    }
                    _ => each(&self.buf[start..start + len]),
                }
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Runs one dump of a message type the route-netlink crate does not model
    /// (`ty`, with the family header `body`) and returns each answer's type and payload.
    pub(super) fn dump_raw(
        &mut self,
        ty: u16,
        body: &[u8],
        what: &'static str,
    ) -> Result<Vec<(u16, Vec<u8>)>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let len = 16 + body.len();
        let mut bytes = Vec::with_capacity((len + 3) & !3);
        bytes.extend_from_slice(&(len as u32).to_ne_bytes());
        bytes.extend_from_slice(&ty.to_ne_bytes());
        bytes.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        bytes.extend_from_slice(&seq.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes.extend_from_slice(body);
        bytes.resize((len + 3) & !3, 0);
        let mut out = Vec::new();
        self.dump_bytes(&bytes, seq, what, |raw| {
            let ty = u16::from_ne_bytes([raw[4], raw[5]]);
            out.push((ty, raw[16..].to_vec()));
        })?;
        Ok(out)
    }

    /// Every link of the namespace, from one dump. Without their statistics
    /// (`RTEXT_FILTER_SKIP_STATS`): [`LinkInfo`] has none, and filling and parsing
    /// them was a good part of a dump of a thousand links.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>, NetlinkError> {
        let mut query = LinkMessage::default();
        query
            .attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let msgs = self.dump(RouteNetlinkMessage::GetLink(query), "list interfaces")?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(LinkInfo::from_message(l)),
                _ => None,
            })
            .collect())
    }

    /// Every link of the namespace, from one dump, with only what `down` decides on:
    /// index, name, kind, alias, up or not, master, and a veth's peer index and
    /// namespace id (the rest stays empty: no MAC, MTU, state, IP settings or port
    /// state). Read straight from the kernel's messages, statistics left out by the
    /// kernel: decoding every attribute of a link (~1.9 KB with its per-family settings
    /// and statistics) costs tens of microseconds, tens of milliseconds for a
    /// thousand-port bridge, on the CPU the kernel's own cleanup needs during `down`.
    pub fn links_brief(&mut self) -> Result<Vec<LinkInfo>, NetlinkError> {
        let mut req = LinkMessage::default();
        req.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let mut out = Vec::new();
        self.dump_each(
            RouteNetlinkMessage::GetLink(req),
            "list interfaces",
            |raw| {
                if let Some(l) = brief_link(raw) {
                    out.push(l);
                }
            },
        )?;
        Ok(out)
    }

    /// Every address of the namespace, IPv4 then IPv6: (ifindex, address). One dump
    /// per family: the all-families dump (`rtnl_dump_all`) holds RTNL, the IPv4 and
    /// IPv6 ones do not (and answer in the same order).
    pub fn addresses(&mut self) -> Result<Vec<(u32, crate::topology::Cidr)>, NetlinkError> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut query = AddressMessage::default();
            query.header.family = family;
            let msgs = self.dump(RouteNetlinkMessage::GetAddress(query), "list addresses")?;
            out.extend(msgs.iter().filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => super::cidr_of(a),
                _ => None,
            }));
        }
        Ok(out)
    }

    /// Links looked up by name, one request each (not a dump), sent in chunks: `None`
    /// for a name the namespace does not have. The kernel answers a single-link request
    /// only after it has processed that device's pending carrier change (the
    /// link-watch work `rtnl_getlink` syncs), so the state returned is the one the
    /// device forwards with — and asking is what puts a fresh veth into service
    /// without waiting for the deferred link-watch run.
    pub fn links_by_name(&mut self, names: &[&str]) -> Result<Vec<Option<LinkInfo>>, NetlinkError> {
        let mut out = Vec::with_capacity(names.len());
        for chunk in names.chunks(CHUNK) {
            let mut bytes = Vec::with_capacity(chunk.len() * 48);
            let mut first = None;
            for name in chunk {
                let mut req = LinkMessage::default();
                req.attributes.push(LinkAttribute::IfName(name.to_string()));
                let seq = self.encode(RouteNetlinkMessage::GetLink(req), NLM_F_REQUEST, &mut bytes);
                first.get_or_insert(seq);
            }
            let first = first.unwrap_or(0);
            let what = "look up interfaces";
            self.send(&bytes).map_err(|e| self.io_fail(what, "", e))?;
            let mut answers: Vec<Option<Option<LinkInfo>>> = vec![None; chunk.len()];
            let mut missing = chunk.len();
            while missing > 0 {
                let n = self.recv().map_err(|e| self.io_fail(what, "", e))?;
                let mut offset = 0;
                for (ty, s, payload) in Messages::new(&self.buf[..n]) {
                    let len = 16 + payload.len();
                    let start = offset;
                    offset += (len + 3) & !3;
                    let i = s.wrapping_sub(first) as usize;
                    if i >= answers.len() || answers[i].is_some() {
                        continue;
                    }
                    let answer = if ty == NLMSG_ERROR {
                        let code = payload
                            .get(..4)
                            .map(|b| -i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(0);
                        match code {
                            libc::ENODEV => None,
                            c => return Err(self.errno_fail(what, chunk[i], c)),
                        }
                    } else {
                        let raw = &self.buf[start..start + len];
                        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw) {
                            Ok(NetlinkMessage {
                                payload:
                                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)),
                                ..
                            }) => Some(LinkInfo::from_message(&l)),
                            _ => continue,
                        }
                    };
                    answers[i] = Some(answer);
                    missing -= 1;
                }
            }
            out.extend(answers.into_iter().flatten());
        }
        Ok(out)
    }

    /// One link looked up by name (a single request, not a dump).
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<LinkInfo>, NetlinkError> {
        let mut req = LinkMessage::default();
        req.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.get_link(req, name, full_link)
    }

    /// [`link_by_name`](Self::link_by_name) with only the fields
    /// [`links_brief`](Self::links_brief) fills.
    pub fn link_brief_by_name(&mut self, name: &str) -> Result<Option<LinkInfo>, NetlinkError> {
        let mut req = LinkMessage::default();
        req.attributes.push(LinkAttribute::IfName(name.to_string()));
        req.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        self.get_link(req, name, brief_link)
    }

    /// The link `index` of the namespace this socket's namespace numbers `nsid`
    /// (`IFLA_TARGET_NETNSID`): a veth's peer, read through the veth's own namespace.
    pub fn link_in(&mut self, nsid: i32, index: u32) -> Result<Option<LinkInfo>, NetlinkError> {
        let mut req = LinkMessage::default();
        req.header.index = index;
        req.attributes.push(LinkAttribute::IfNetnsId(nsid));
        self.get_link(
            req,
            &format!("ifindex {index} in namespace id {nsid}"),
            full_link,
        )
    }

    /// One `RTM_GETLINK` request (not a dump), its answer read with `decode`; `None`
    /// when there is no such link.
    fn get_link(
        &mut self,
        req: LinkMessage,
        name: &str,
        decode: impl Fn(&[u8]) -> Option<LinkInfo>,
    ) -> Result<Option<LinkInfo>, NetlinkError> {
        let mut bytes = Vec::new();
        let seq = self.encode(RouteNetlinkMessage::GetLink(req), NLM_F_REQUEST, &mut bytes);
        self.send(&bytes)
            .map_err(|e| self.io_fail("look up interface", name, e))?;
        loop {
            let n = self
                .recv()
                .map_err(|e| self.io_fail("look up interface", name, e))?;
            let mut offset = 0;
            for (ty, s, payload) in Messages::new(&self.buf[..n]) {
                let len = 16 + payload.len();
                let start = offset;
                offset += (len + 3) & !3;
                if s != seq {
                    continue;
                }
                if ty == NLMSG_ERROR {
                    let code = payload
                        .get(..4)
                        .map(|b| -i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(0);
                    return match code {
                        libc::ENODEV => Ok(None),
                        c => Err(self.errno_fail("look up interface", name, c)),
                    };
                }
                if let Some(l) = decode(&self.buf[start..start + len]) {
                    return Ok(Some(l));
                }
            }
        }
    }
}

/// Announcements of removed links (the RTNLGRP_LINK multicast group) in the namespace of
/// the thread that opened it: lets `down` wait for the kernel's cleanup of a thousand
/// veths without dumping the link table again and again.
pub struct LinkRemovals {
    fd: OwnedFd,
    buf: Vec<u8>,
}

/// The receive buffer overflowed: some announcements were lost; re-read the table.
#[derive(Debug)]
pub struct Overflowed;

const RTM_DELLINK: u16 = 17;
const RTMGRP_LINK: u32 = 1;

impl LinkRemovals {
    /// Subscribes before the removals start (an announcement sent earlier is not seen).
    pub fn open_here() -> std::io::Result<Self> {
        // SAFETY: plain socket(2); the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if !setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF) {
            setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF);
        }
        // SAFETY: a zeroed sockaddr_nl with the link group set is valid for bind.
        let rc = unsafe {
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            addr.nl_groups = RTMGRP_LINK;
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self {
            fd,
            buf: vec![0u8; 1 << 16],
        })
    }

    /// Removes from `waiting` every ifindex whose device the kernel announces removed,
    /// until `waiting` is empty or `until` passes. A bridge port's detachment is
    /// announced as an AF_BRIDGE deletion and is not a removal.
    pub fn wait(&mut self, waiting: &mut HashSet<u32>, until: Instant) -> Result<(), Overflowed> {
        while !waiting.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, 1000) as libc::c_int;
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc <= 0 {
                continue;
            }
            // SAFETY: receiving into our own buffer of the given length, not waiting.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                match std::io::Error::last_os_error().raw_os_error() {
                    Some(libc::ENOBUFS) => return Err(Overflowed),
                    _ => continue,
                }
            }
            for (ty, _, payload) in Messages::new(&self.buf[..n as usize]) {
                // struct ifinfomsg: family (1), pad (1), type (2), index (4), …
                if ty == RTM_DELLINK
                    && payload.len() >= 8
                    && i32::from(payload[0]) == libc::AF_UNSPEC
                {
                    let index =
                        u32::from_ne_bytes([payload[4], payload[5], payload[6], payload[7]]);
                    waiting.remove(&index);
                }
            }
        }
        Ok(())
    }
}

fn setsockopt(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: passes a pointer to an int of the stated size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

fn copy_err(e: &std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(n) => std::io::Error::from_raw_os_error(n),
        None => std::io::Error::new(e.kind(), e.to_string()),
    }
}

/// The netlink messages in one datagram: (type, sequence number, payload).
struct Messages<'a> {
    buf: &'a [u8],
}

impl<'a> Messages<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = (u16, u32, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes(self.buf[0..4].try_into().ok()?) as usize;
        if len < 16 || len > self.buf.len() {
            return None;
        }
        let ty = u16::from_ne_bytes(self.buf[4..6].try_into().ok()?);
        let seq = u32::from_ne_bytes(self.buf[8..12].try_into().ok()?);
        let payload = &self.buf[16..len];
        let aligned = ((len + 3) & !3).min(self.buf.len());
        self.buf = &self.buf[aligned..];
        Some((ty, seq, payload))
    }
}

/// A whole `RTM_NEWLINK` message decoded by the route-netlink crate.
fn full_link(raw: &[u8]) -> Option<LinkInfo> {
    match NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw).map(|m| m.payload) {
        Ok(NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l))) => {
            Some(LinkInfo::from_message(&l))
        }
        _ => None,
    }
}

/// One RTM_NEWLINK message (header included) reduced as [`BatchSocket::links_brief`]
/// says; `None` when it is not one or is cut short.
fn brief_link(raw: &[u8]) -> Option<LinkInfo> {
    const RTM_NEWLINK: u16 = 16;
    const IFF_UP: u32 = 1;
    const IFLA_LINK: u16 = 5;
    const IFLA_IFNAME: u16 = 3;
    const IFLA_MASTER: u16 = 10;
    const IFLA_LINKINFO: u16 = 18;
    const IFLA_INFO_KIND: u16 = 1;
    const IFLA_IFALIAS: u16 = 20;
    const IFLA_LINK_NETNSID: u16 = 37;
    if u16::from_ne_bytes(raw.get(4..6)?.try_into().ok()?) != RTM_NEWLINK {
        return None;
    }
    // struct ifinfomsg: family, pad, type (u16), index (i32), flags (u32), change (u32).
    let ifi = raw.get(16..32)?;
    let index = u32::from_ne_bytes(ifi[4..8].try_into().ok()?);
    let flags = u32::from_ne_bytes(ifi[8..12].try_into().ok()?);
    let admin_up = flags & IFF_UP != 0;
    let u32_of = |v: &[u8]| {
        v.get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
    };
    let text = |v: &[u8]| {
        let v = v.split(|&b| b == 0).next().unwrap_or_default();
        std::str::from_utf8(v).ok().map(str::to_string)
    };
    let state = if admin_up {
        super::LinkState::Unknown
    } else {
        super::LinkState::Down
    };
    let mut info = LinkInfo::bare(index, admin_up, state);
    for (ty, v) in attributes(&raw[32..]) {
        match ty {
            IFLA_IFNAME => info.name = text(v)?,
            IFLA_IFALIAS => info.alias = text(v).filter(|a| !a.is_empty()),
            IFLA_MASTER => info.master = u32_of(v),
            IFLA_LINK => info.peer_index = u32_of(v),
            IFLA_LINK_NETNSID => info.peer_netnsid = u32_of(v).map(|n| n as i32),
            IFLA_LINKINFO => {
                info.kind = attributes(v)
                    .find(|(t, _)| *t == IFLA_INFO_KIND)
                    .and_then(|(_, k)| text(k));
            }
            _ => {}
        }
    }
    Some(info)
}

/// The netlink attributes (type without its flag bits, value) packed in `buf`.
fn attributes(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16::from_ne_bytes(buf.get(0..2)?.try_into().ok()?) as usize;
        let ty = u16::from_ne_bytes(buf.get(2..4)?.try_into().ok()?) & 0x3fff;
        let value = buf.get(4..len)?;
        buf = buf.get(((len + 3) & !3).min(buf.len())..)?;
        Some((ty, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::NetlinkHeader;
    use rtnetlink::packet_route::link::{InfoKind, LinkFlags};

    fn encoded(link: LinkMessage) -> Vec<u8> {
        let mut m = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)),
        );
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        buf
    }

    /// The brief decoding agrees with the full one on every field it fills.
    #[test]
    fn brief_link_reads_what_the_full_decoder_reads() {
        let mut link = LinkMessage::default();
        link.header.index = 42;
        link.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
        link.attributes = vec![
            LinkAttribute::IfName("vsbp7".into()),
            LinkAttribute::Mtu(1500),
            LinkAttribute::IfAlias("vethscope:lab-a".into()),
            LinkAttribute::Controller(3),
            LinkAttribute::Link(2),
            LinkAttribute::LinkNetNsId(5),
            LinkAttribute::LinkInfo(vec![rtnetlink::packet_route::link::LinkInfo::Kind(
                InfoKind::Veth,
            )]),
        ];
        let full = LinkInfo::from_message(&link);
        let brief = brief_link(&encoded(link)).expect("a link");
        assert_eq!(brief.index, 42);
        assert_eq!(brief.name, full.name);
        assert_eq!(brief.kind.as_deref(), Some("veth"));
        assert_eq!(brief.kind, full.kind);
        assert_eq!(brief.alias, full.alias);
        assert_eq!(brief.master, Some(3));
        assert_eq!(brief.peer_index, full.peer_index);
        assert_eq!(brief.peer_netnsid, Some(5));
        assert!(brief.admin_up);
    }

    #[test]
    fn brief_link_of_a_bare_device_and_of_garbage() {
        let mut link = LinkMessage::default();
        link.header.index = 1;
        link.attributes = vec![LinkAttribute::IfName("lo".into())];
        let lo = brief_link(&encoded(link)).expect("a link");
        assert_eq!(
            (lo.name.as_str(), lo.kind, lo.alias, lo.admin_up),
            ("lo", None, None, false)
        );
        assert_eq!(lo.peer_netnsid, None);
        // Cut short, or not a link: nothing, and no panic.
        let mut link = LinkMessage::default();
        link.attributes = vec![LinkAttribute::IfName("x".into())];
        let raw = encoded(link);
        for n in 0..raw.len() {
            let _ = brief_link(&raw[..n]);
        }
        assert!(brief_link(&[0u8; 8]).is_none());
    }
}
