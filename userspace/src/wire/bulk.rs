//! The batched part of `up`, for labs of hundreds of namespaces: namespaces, Linux
//! bridges, veth pairs whose ends sit in namespaces or on Linux bridges, addresses,
//! sysctls and routes. (Anything touching Open vSwitch stays in apply.rs.)
//!
//! How it stays fast:
//! - a pool of threads makes the namespaces; each thread opens one blocking netlink
//!   socket inside every namespace it makes and keeps it for the later phases;
//! - a veth pair is one request made from the namespace of one end, the peer placed
//!   straight into its namespace (`IFLA_NET_NS_FD`), with name, mtu, MAC and master set
//!   in that same request;
//! - requests go out in batches (many messages per `sendmsg`, the ACKs read after);
//! - nothing is looked up one by one: each namespace is dumped once for ifindexes.
//!
//! Ownership marks keep the order apply.rs has always kept: a namespace's `lo` is
//! marked right after the namespace exists, a root-namespace interface right after the
//! request that made it was acknowledged (never by name before that: the name might be
//! someone else's).

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rtnetlink::packet_route::link::LinkAttribute;

use super::{WireError, teardown::Created};
use crate::{
    fault,
    netlink::{
        NetlinkError,
        batch::{BatchSocket, Request},
        msg::{self, NewEnd},
    },
    netns::{self, NetnsError},
    progress::Progress,
    topology::{BridgeKind, End, HOST, Link, Topology},
};

/// A netlink error as `up` reports it: a name already taken is a conflict.
pub(super) fn nl_err(lab: &str, source: NetlinkError) -> WireError {
    if source.errno() == Some(libc::EEXIST)
        && let NetlinkError::Op { object, netns, .. } = &source
    {
        return WireError::Conflict {
            object: format!("interface {object}"),
            netns: netns.clone(),
            lab: lab.to_string(),
        };
    }
    WireError::Netlink {
        lab: lab.to_string(),
        source,
    }
}

pub(super) fn ns_err(lab: &str, source: NetnsError) -> WireError {
    match source {
        NetnsError::Exists { name } => WireError::Conflict {
            object: format!("namespace {name}"),
            netns: name,
            lab: lab.to_string(),
        },
        source => WireError::Netns {
            lab: lab.to_string(),
            source,
        },
    }
}

/// The first error of a batch, if any.
fn first_err(lab: &str, results: Vec<Result<(), NetlinkError>>) -> Result<(), WireError> {
    match results.into_iter().find_map(Result::err) {
        Some(e) => Err(nl_err(lab, e)),
        None => Ok(()),
    }
}

/// The creating end comes up in its creating request unless it has sysctls, which
/// are written before an interface comes up (as apply.rs always did).
fn up_at_creation(end: &End) -> bool {
    end.sysctls.is_empty()
}

/// A veth pair made in bulk: no end on an OVS bridge.
pub(super) fn is_bulk_veth(t: &Topology, link: &Link) -> bool {
    match link {
        Link::Veth { ends, .. } => ends.iter().all(|e| {
            e.bridge()
                .and_then(|b| t.bridge(b))
                .is_none_or(|b| b.kind == BridgeKind::Linux)
        }),
        Link::OvsInternal { .. } => false,
    }
}

/// The end whose namespace sends the request, and the peer: a bridge port when there
/// is one (it takes its master in the same request), else the root-namespace end, else
/// the first.
fn creator_and_peer(ends: &[End; 2]) -> (&End, &End) {
    let [a, b] = ends;
    let port = |e: &End| e.bridge().is_some();
    if (port(b) && !port(a)) || (!port(a) && b.netns() == HOST && a.netns() != HOST) {
        (b, a)
    } else {
        (a, b)
    }
}

/// What is left to do on one end after the veth pair exists.
struct Todo<'t> {
    end: &'t End,
    /// A peer placed in another namespace: marked there.
    mark: bool,
    /// Still down (a peer, or an end with sysctls).
    up: bool,
}

pub(super) struct Bulk<'t> {
    t: &'t Topology,
    lab: String,
    mark: String,
    host: Mutex<BatchSocket>,
    /// One socket per lab namespace, opened inside it when it was made.
    sockets: HashMap<String, Mutex<BatchSocket>>,
    /// Open namespace files, for placing veth peers.
    fds: HashMap<String, OwnedFd>,
    /// Linux bridges made by this lab: name → ifindex.
    bridges: HashMap<String, u32>,
}

impl<'t> Bulk<'t> {
    pub(super) fn new(t: &'t Topology, mark: &str) -> Result<Self, WireError> {
        raise_fd_limit();
        let lab = t.name.clone();
        let host = BatchSocket::open_here(HOST).map_err(|e| nl_err(&lab, e))?;
        Ok(Self {
            t,
            lab,
            mark: mark.to_string(),
            host: Mutex::new(host),
            sockets: HashMap::new(),
            fds: HashMap::new(),
            bridges: HashMap::new(),
        })
    }

    fn socket(&self, ns: &str) -> Result<&Mutex<BatchSocket>, WireError> {
        if ns == HOST {
            return Ok(&self.host);
        }
        self.sockets.get(ns).ok_or_else(|| WireError::NotOpened {
            lab: self.lab.clone(),
            netns: ns.to_string(),
        })
    }

    /// Makes every namespace on the pool: create, open a socket inside, mark and bring
    /// up `lo`, write the namespace-wide sysctls (before any interface exists, so
    /// `default.*` keys apply).
    pub(super) fn namespaces(
        &mut self,
        progress: &mut Progress,
        created: &mut Created,
    ) -> Result<(), WireError> {
        let lab = self.lab.clone();
        let mark = self.mark.clone();
        let progress = Mutex::new(progress);
        let created = Mutex::new(created);
        let made = netns::pool::map(&self.t.namespaces, |ns| {
            let r = (|| -> Result<(BatchSocket, OwnedFd), WireError> {
                netns::create_here(&ns.name).map_err(|e| ns_err(&lab, e))?;
                if let Ok(mut c) = created.lock() {
                    c.namespaces.push(ns.name.clone());
                }
                fault::point("namespace created, not marked");
                let fd = netns::open(&ns.name).map_err(|e| ns_err(&lab, e))?;
                let mut sock = BatchSocket::open_here(&ns.name).map_err(|e| nl_err(&lab, e))?;
                // Mark first: from here on `down` recognises the namespace as ours.
                let lo = msg::set_link(
                    0,
                    Some("lo"),
                    vec![LinkAttribute::IfAlias(mark.clone())],
                    true,
                );
                first_err(
                    &lab,
                    sock.execute(vec![Request::new(lo, "mark and bring up", "lo")]),
                )?;
                for s in &ns.sysctls {
                    netns::write_sysctl_here(&ns.name, &netns::key_path(&s.key), &s.value)
                        .map_err(|e| ns_err(&lab, e))?;
                }
                fault::point("namespace made");
                Ok((sock, fd))
            })();
            if let Ok(mut p) = progress.lock() {
                p.step(&format!("namespace {}", ns.name));
            }
            r
        });
        let mut first = None;
        for (ns, r) in self.t.namespaces.iter().zip(made) {
            match r {
                Ok((sock, fd)) => {
                    self.sockets.insert(ns.name.clone(), Mutex::new(sock));
                    self.fds.insert(ns.name.clone(), fd);
                }
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Makes one Linux bridge: create, then (once the kernel said it made it) mark
    /// and bring it up.
    pub(super) fn linux_bridge(
        &mut self,
        br: &crate::topology::Bridge,
        created: &mut Created,
    ) -> Result<(), WireError> {
        let lab = self.lab.clone();
        // In its lab namespace (which goes with the namespace) or in the root one.
        let mut host = self
            .socket(br.netns())?
            .lock()
            .map_err(|_| poisoned(&lab))?;
        first_err(
            &lab,
            host.execute(vec![Request::new(
                msg::new_bridge(&br.name, br.mtu),
                "create bridge",
                &br.name,
            )]),
        )?;
        if br.netns.is_none() {
            created.bridges.push(br.name.clone());
        }
        fault::point("bridge created, not marked");
        let mark = msg::set_link(
            0,
            Some(&br.name),
            vec![LinkAttribute::IfAlias(self.mark.clone())],
            true,
        );
        first_err(
            &lab,
            host.execute(vec![Request::new(mark, "mark and bring up", &br.name)]),
        )?;
        let index = host
            .link_by_name(&br.name)
            .map_err(|e| nl_err(&lab, e))?
            .ok_or_else(|| {
                nl_err(
                    &lab,
                    NetlinkError::Missing {
                        name: br.name.clone(),
                        netns: br.netns().into(),
                    },
                )
            })?
            .index;
        drop(host);
        self.bridges.insert(br.name.clone(), index);
        Ok(())
    }

    fn new_end<'e>(&self, end: &'e End, creator_ns: &str) -> Result<NewEnd<'e>, WireError> {
        let master = match end.bridge() {
            Some(b) => Some(
                *self
                    .bridges
                    .get(b)
                    .ok_or_else(|| WireError::BridgeNotMade {
                        lab: self.lab.clone(),
                        bridge: b.to_string(),
                        port: end.name.clone(),
                    })?,
            ),
            None => None,
        };
        let netns_fd = if end.netns() == creator_ns {
            None
        } else {
            Some(
                self.fds
                    .get(end.netns())
                    .ok_or_else(|| WireError::NotOpened {
                        lab: self.lab.clone(),
                        netns: end.netns().to_string(),
                    })?
                    .as_raw_fd(),
            )
        };
        Ok(NewEnd {
            name: &end.name,
            mtu: end.mtu,
            mac: end.mac_to_set(&self.lab),
            master,
            netns_fd,
            up: false,
        })
    }

    /// Makes the bulk veth pairs, one batch per namespace that sends the requests;
    /// marks (and attaches) the ends that sit in that namespace once they exist.
    pub(super) fn veths(&self, progress: &mut Progress) -> Result<(), WireError> {
        let mut groups: BTreeMap<&str, Vec<&[End; 2]>> = BTreeMap::new();
        for link in &self.t.links {
            if let Link::Veth { ends, .. } = link
                && is_bulk_veth(self.t, link)
            {
                let (c, _) = creator_and_peer(ends);
                groups.entry(c.netns()).or_default().push(ends);
            }
        }
        for (ns, pairs) in groups {
            let mut requests = Vec::with_capacity(pairs.len());
            for ends in &pairs {
                let (c, p) = creator_and_peer(ends);
                let peer = self.new_end(p, ns)?;
                let mut main = self.new_end(c, ns)?;
                main.netns_fd = None;
                main.up = up_at_creation(c);
                requests.push(Request::new(
                    msg::new_veth(
                        &main,
                        &NewEnd {
                            master: None,
                            ..peer
                        },
                    ),
                    "create veth pair",
                    format!("{} (peer {} in namespace {})", c.name, p.name, p.netns()),
                ));
            }
            let mut sock = self.socket(ns)?.lock().map_err(|_| poisoned(&self.lab))?;
            let results = sock.execute(requests);
            fault::point("veths created, not marked");
            // Mark what was made (only that: a name whose create failed may be
            // someone else's), then report the first failure.
            let mut follow = Vec::new();
            let mut failed = None;
            for (ends, r) in pairs.iter().zip(results) {
                let (c, p) = creator_and_peer(ends);
                progress.step(&format!("veth {} — {}", c.name, p.name));
                if let Err(e) = r {
                    failed.get_or_insert(e);
                    continue;
                }
                follow.push(Request::new(
                    msg::mark_by_name(&c.name, &self.mark),
                    "mark",
                    &c.name,
                ));
                if p.netns() == ns {
                    let mut attrs = vec![LinkAttribute::IfAlias(self.mark.clone())];
                    if let Some(m) = self.new_end(p, ns)?.master {
                        attrs.push(LinkAttribute::Controller(m));
                    }
                    follow.push(Request::new(
                        msg::set_link(0, Some(&p.name), attrs, false),
                        "mark and attach",
                        &p.name,
                    ));
                }
            }
            let marked = first_err(&self.lab, sock.execute(follow));
            fault::point("veths made");
            if let Some(e) = failed {
                return Err(nl_err(&self.lab, e));
            }
            marked?;
        }
        Ok(())
    }

    /// Per namespace (on the pool): mark peers placed there, add addresses, write the
    /// interface sysctls, bring the interfaces up. One dump per namespace for indexes.
    pub(super) fn configure(&self) -> Result<(), WireError> {
        let mut per_ns: BTreeMap<&str, Vec<Todo>> = BTreeMap::new();
        for link in &self.t.links {
            if let Link::Veth { ends, .. } = link
                && is_bulk_veth(self.t, link)
            {
                let (c, p) = creator_and_peer(ends);
                per_ns.entry(c.netns()).or_default().push(Todo {
                    end: c,
                    mark: false,
                    up: !up_at_creation(c),
                });
                // A peer placed in another namespace is marked there.
                per_ns.entry(p.netns()).or_default().push(Todo {
                    end: p,
                    mark: p.netns() != c.netns(),
                    up: true,
                });
            }
        }
        // Nothing to do for an end that came up in its creating request, unaddressed.
        for todos in per_ns.values_mut() {
            todos.retain(|t| {
                t.mark || t.up || !t.end.addresses.is_empty() || !t.end.sysctls.is_empty()
            });
        }
        per_ns.retain(|_, todos| !todos.is_empty());
        let known = self.peer_indexes()?;
        let jobs: Vec<(&str, Vec<Todo>)> = per_ns.into_iter().collect();
        let results = netns::pool::map(&jobs, |(ns, ends)| self.configure_ns(ns, ends, &known));
        results
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    /// The ifindex of every peer the root namespace placed in a lab namespace, from
    /// one dump of the root namespace: a root-side veth end names its peer's index
    /// (IFLA_LINK). Saves a link dump per namespace, each waiting for RTNL.
    fn peer_indexes(&self) -> Result<HashMap<(&'t str, &'t str), u32>, WireError> {
        let mut wanted: HashMap<&str, &End> = HashMap::new();
        for link in &self.t.links {
            if let Link::Veth { ends, .. } = link
                && is_bulk_veth(self.t, link)
            {
                let (c, p) = creator_and_peer(ends);
                if c.netns() == HOST && p.netns() != HOST {
                    wanted.insert(c.name.as_str(), p);
                }
            }
        }
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let links = self
            .host
            .lock()
            .map_err(|_| poisoned(&self.lab))?
            .links()
            .map_err(|e| nl_err(&self.lab, e))?;
        // Only ends carrying our mark: the veths phase marked each one it made.
        Ok(links
            .iter()
            .filter(|l| l.is_veth() && l.alias.as_deref() == Some(self.mark.as_str()))
            .filter_map(|l| {
                let p = wanted.get(l.name.as_str())?;
                Some(((p.netns(), p.name.as_str()), l.peer_index?))
            })
            .collect())
    }

    fn configure_ns(
        &self,
        ns: &str,
        ends: &[Todo],
        known: &HashMap<(&str, &str), u32>,
    ) -> Result<(), WireError> {
        let lab = &self.lab;
        let has_sysctls = ends.iter().any(|t| !t.end.sysctls.is_empty());
        if has_sysctls {
            // /proc/sys/net is the namespace of the thread that opens it.
            netns::enter(ns).map_err(|e| ns_err(lab, e))?;
        }
        let mut sock = self.socket(ns)?.lock().map_err(|_| poisoned(lab))?;
        // Indexes from the root namespace's dump; this namespace is dumped only for
        // ends not found there (both ends in lab namespaces).
        let mut index: HashMap<String, u32> = ends
            .iter()
            .filter_map(|t| Some((t.end.name.clone(), *known.get(&(ns, t.end.name.as_str()))?)))
            .collect();
        if index.len() < ends.len() {
            index = sock
                .links()
                .map_err(|e| nl_err(lab, e))?
                .into_iter()
                .map(|l| (l.name, l.index))
                .collect();
        }
        let index_of = |end: &End| {
            index.get(&end.name).copied().ok_or_else(|| {
                nl_err(
                    lab,
                    NetlinkError::Missing {
                        name: end.name.clone(),
                        netns: ns.to_string(),
                    },
                )
            })
        };
        let mut requests = Vec::new();
        for Todo { end, mark, .. } in ends {
            let i = index_of(end)?;
            if *mark {
                // A peer that is a port of a bridge in its namespace joins it here.
                let mut attrs = vec![LinkAttribute::IfAlias(self.mark.clone())];
                if let Some(m) = end.bridge().and_then(|b| self.bridges.get(b)) {
                    attrs.push(LinkAttribute::Controller(*m));
                }
                requests.push(Request::new(
                    msg::set_link(i, None, attrs, false),
                    "mark",
                    &end.name,
                ));
            }
            for cidr in &end.addresses {
                requests.push(Request::new(
                    msg::new_address(i, cidr),
                    "add address",
                    format!("{cidr} to {}", end.name),
                ));
            }
        }
        // Without interface sysctls (written between addressing and bringing up) the
        // ends come up in the same batch: one round trip per namespace instead of two.
        if !has_sysctls {
            requests.extend(self.ups(ends, index_of)?);
            first_err(lab, sock.execute(requests))?;
            fault::point("namespace configured");
            return Ok(());
        }
        first_err(lab, sock.execute(requests))?;
        for Todo { end, .. } in ends {
            for s in &end.sysctls {
                let (family, key) = match s.key.strip_prefix("ipv6.") {
                    Some(k) => ("ipv6", k),
                    None => ("ipv4", s.key.strip_prefix("ipv4.").unwrap_or(&s.key)),
                };
                let path = netns::iface_key_path(family, &end.name, key);
                netns::write_sysctl_here(ns, &path, &s.value).map_err(|e| ns_err(lab, e))?;
            }
        }
        let ups = self.ups(ends, index_of)?;
        first_err(lab, sock.execute(ups))?;
        fault::point("namespace configured");
        Ok(())
    }

    /// The requests that bring up the ends still down.
    fn ups(
        &self,
        ends: &[Todo],
        index_of: impl Fn(&End) -> Result<u32, WireError>,
    ) -> Result<Vec<Request>, WireError> {
        ends.iter()
            .filter(|t| t.up)
            .map(|Todo { end, .. }| {
                Ok(Request::new(
                    msg::set_link(index_of(end)?, None, Vec::new(), true),
                    "bring up",
                    &end.name,
                ))
            })
            .collect()
    }

    /// Routes of every namespace (after all its interfaces are up and addressed).
    pub(super) fn routes(&self) -> Result<(), WireError> {
        let with_routes: Vec<&crate::topology::Namespace> = self
            .t
            .namespaces
            .iter()
            .filter(|n| !n.routes.is_empty())
            .collect();
        let results = netns::pool::map(&with_routes, |ns| {
            let lab = &self.lab;
            let mut sock = self.socket(&ns.name)?.lock().map_err(|_| poisoned(lab))?;
            let index: HashMap<String, u32> = if ns.routes.iter().any(|r| r.dev.is_some()) {
                sock.links()
                    .map_err(|e| nl_err(lab, e))?
                    .into_iter()
                    .map(|l| (l.name, l.index))
                    .collect()
            } else {
                HashMap::new()
            };
            let mut requests = Vec::new();
            for route in &ns.routes {
                let dev = match &route.dev {
                    Some(d) => Some(*index.get(d).ok_or_else(|| {
                        nl_err(
                            lab,
                            NetlinkError::Missing {
                                name: d.clone(),
                                netns: ns.name.clone(),
                            },
                        )
                    })?),
                    None => None,
                };
                requests.push(Request::new(
                    rtnetlink::packet_route::RouteNetlinkMessage::NewRoute(msg::route(route, dev)),
                    "add route",
                    msg::route_object(route),
                ));
            }
            first_err(lab, sock.execute(requests))?;
            fault::point("routes added");
            Ok(())
        });
        results
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }
}

/// A lab interface the kernel had not yet brought into service when `up` stopped
/// waiting (see `Bulk::settle`).
#[derive(Debug)]
pub(super) struct Unsettled {
    pub netns: String,
    pub name: String,
    /// What the kernel reported: its operational state, or that the bridge does not
    /// forward through it yet.
    pub why: String,
}

impl Unsettled {
    /// Not in service in time is a warning, not a failure: the lab is as the file says.
    pub(super) fn warn(&self, lab: &str, waited: Duration) {
        tracing::warn!(
            "{} in namespace {} is not in service {} s after it was made ({}); \
             check it with `vethscope show {lab}`",
            self.name,
            self.netns,
            waited.as_secs(),
            self.why,
        );
    }
}

impl Bulk<'_> {
    /// Waits, at most `timeout`, until every end of the bulk veths is operationally up
    /// and every one that is a Linux bridge port is forwarding.
    ///
    /// Why: a veth's carrier is taken into service by the kernel's link-watch work,
    /// which runs later and shares RTNL with everything else; until it has run, the
    /// device's queue drops what is sent and the bridge port stays disabled. On a busy
    /// host with hundreds of new veths that takes seconds, and a ping sent right after
    /// `up` returned was lost. Each end is asked for by name (`links_by_name`: the
    /// kernel processes that device's pending change before it answers), all of a
    /// namespace's ends in one batch, namespaces on the pool; a namespace leaves the
    /// poll as soon as all its ends are ready.
    pub(super) fn settle(&self, timeout: Duration) -> Result<Vec<Unsettled>, WireError> {
        let mut pending: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for link in &self.t.links {
            if let Link::Veth { ends, .. } = link
                && is_bulk_veth(self.t, link)
            {
                for end in ends {
                    pending.entry(end.netns()).or_default().push(&end.name);
                }
            }
        }
        let deadline = Instant::now() + timeout;
        let mut round = 0;
        loop {
            round += 1;
            let jobs: Vec<(&str, Vec<&str>)> = std::mem::take(&mut pending).into_iter().collect();
            let results = netns::pool::map(&jobs, |(ns, names)| self.unsettled_in(ns, names));
            let mut left = Vec::new();
            for ((ns, _), r) in jobs.iter().zip(results) {
                let unsettled = r?;
                if !unsettled.is_empty() {
                    pending.insert(ns, unsettled.iter().map(|(n, _)| *n).collect());
                    left.extend(unsettled.into_iter().map(|(name, why)| Unsettled {
                        netns: ns.to_string(),
                        name: name.to_string(),
                        why,
                    }));
                }
            }
            if left.is_empty() || Instant::now() >= deadline {
                tracing::debug!(
                    "settle: {} ends not in service after {round} rounds",
                    left.len()
                );
                return Ok(left);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The ends among `names` in namespace `ns` not yet in service, with the reason.
    fn unsettled_in<'n>(
        &self,
        ns: &str,
        names: &[&'n str],
    ) -> Result<Vec<(&'n str, String)>, WireError> {
        let links = self
            .socket(ns)?
            .lock()
            .map_err(|_| poisoned(&self.lab))?
            .links_by_name(names)
            .map_err(|e| nl_err(&self.lab, e))?;
        Ok(names
            .iter()
            .zip(links)
            .filter_map(|(&name, link)| not_in_service(link.as_ref()).map(|why| (name, why)))
            .collect())
    }
}

/// Why a new end (as the kernel just reported it) does not carry traffic yet: missing,
/// not operationally up, or a bridge port not forwarding; `None` once it does.
pub(super) fn not_in_service(link: Option<&crate::netlink::LinkInfo>) -> Option<String> {
    match link {
        None => Some("missing".to_string()),
        Some(l) if l.state != crate::netlink::LinkState::Up => {
            Some(format!("operational state {:?}", l.state).to_lowercase())
        }
        Some(l) if l.port_forwarding == Some(false) => {
            Some("bridge port not forwarding yet".to_string())
        }
        Some(_) => None,
    }
}

fn poisoned(lab: &str) -> WireError {
    WireError::Poisoned {
        lab: lab.to_string(),
    }
}

/// A large lab holds one namespace file and one socket per namespace open at once:
/// lift the soft limit on open files to the hard one.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
