//! `up`: check everything, record the plan, make the objects in dependency order
//! (namespaces, bridges, links, routes); on any failure remove what was made.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{
    WireError,
    bulk::{self, Bulk},
    ethtool, mark, preflight,
    state::{self, LabState, Status},
    teardown,
};
use crate::{
    errors::Chain,
    fault,
    netlink::{LinkInfo, Netlink, NetlinkError},
    netns, ovs,
    progress::Progress,
    topology::{self, BridgeKind, End, HOST, Link, Place, Topology},
};

#[derive(Debug, Default)]
pub struct UpOptions {
    /// Show progress on a terminal.
    pub progress: bool,
    /// Only compute what would be done (`up --dry-run`).
    pub dry_run: bool,
}

#[derive(Debug)]
pub enum UpOutcome {
    Created {
        objects: usize,
        elapsed: Duration,
    },
    /// The same lab was already up: nothing was done.
    AlreadyUp,
    /// The lab was up: only the differences were applied (see `wire::diff`).
    Changed {
        actions: Vec<String>,
        /// Namespaces the change added (their `exec:` commands run next).
        new_namespaces: Vec<String>,
        elapsed: Duration,
    },
    /// `--dry-run`: what would be done; nothing was touched.
    Planned {
        actions: Vec<String>,
    },
}

/// How long `up` waits for the kernel to put the lab's links in service.
pub(super) const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn up(t: &Topology, opts: &UpOptions) -> Result<UpOutcome, WireError> {
    topology::validate(t)?;
    topology::validate_environment(t)?;
    let _lab_lock = state::lab_lock(&t.name)?;
    if let Some(existing) = state::read(&t.name) {
        return match existing.status {
            // The difference is applied (see `diff` and `change`); an interrupted
            // change is finished.
            Status::Up if still_up(&existing.topology) => {
                super::change::update(existing, t, opts).await
            }
            Status::Changing => super::change::update(existing, t, opts).await,
            Status::Up => Err(WireError::DifferentDefinition {
                lab: t.name.clone(),
            }),
            Status::Creating => Err(WireError::HalfMade {
                lab: t.name.clone(),
            }),
        };
    }
    if opts.dry_run {
        return Ok(UpOutcome::Planned {
            actions: vec![format!(
                "create lab {}: {} namespaces, {} bridges, {} links",
                t.name,
                t.namespaces.len(),
                t.bridges.len(),
                t.links.len()
            )],
        });
    }
    let lab = t.name.clone();
    let host = Netlink::open(HOST)
        .await
        .map_err(|source| WireError::Netlink {
            lab: lab.clone(),
            source,
        })?;
    // The OVS lock keeps a concurrent `down` of another lab from stopping the daemons
    // we are about to check (preflight) and use.
    let ovs_lock = if t.uses_ovs() {
        Some(state::ovs_lock()?)
    } else {
        None
    };
    preflight::check_free(t, &host).await?;
    for warning in preflight::ipv6_flood_warnings(t) {
        tracing::warn!("{warning}");
    }

    let started = Instant::now();
    let mut st = LabState {
        lab: lab.clone(),
        status: Status::Creating,
        topology: t.clone(),
        ovs_datapath: None,
        previous: None,
        created_unix: state::now_unix(),
    };
    state::write(&st)?;
    fault::point("state written");

    let total = t.namespaces.len() + t.bridges.len() + t.links.len();
    let mut builder = Builder {
        t,
        mark: mark::alias(&lab),
        host,
        nls: HashMap::new(),
        ovs: None,
        progress: Progress::new(total, opts.progress),
        created: teardown::Created::default(),
    };
    match builder.build().await {
        Ok(()) => {
            builder.progress.finish();
            st.status = Status::Up;
            st.ovs_datapath = builder.ovs.as_ref().map(|o| o.datapath.to_string());
            state::write(&st)?;
            fault::point("lab up");
            Ok(UpOutcome::Created {
                objects: total,
                elapsed: started.elapsed(),
            })
        }
        Err(e) => {
            builder.progress.finish();
            let created = std::mem::take(&mut builder.created);
            // Close our netlink sockets and namespace handles first: an open handle
            // keeps a deleted namespace (and the host ends of its veths) alive.
            drop(builder);
            tracing::warn!(
                "up of lab {lab} failed, removing what was made: {}",
                Chain(&e)
            );
            if let Err(undo) = teardown::remove_lab(&lab, Some(&created)).await {
                tracing::error!("undo of lab {lab} was incomplete: {}", Chain(&undo));
            }
            // Daemons this `up` started are stopped again when no lab uses them.
            if t.uses_ovs() {
                drop(ovs_lock);
                teardown::stop_ovs_if_unused();
            }
            Err(e)
        }
    }
}

fn still_up(t: &Topology) -> bool {
    t.netns_names().all(netns::exists)
}

struct OvsSession {
    db: ovs::Ovsdb,
    datapath: &'static str,
}

/// What a step of `up` fails with, before [`Builder::build`] puts it in the lab's
/// context: steps use `?` on netlink, namespace and OVS calls directly.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    #[error(transparent)]
    Ovs(#[from] ovs::OvsError),
    /// Bulk steps and local checks already name the lab.
    #[error(transparent)]
    Wire(#[from] WireError),
}

impl StepError {
    /// The error in the lab's context; a name already taken is a conflict (preflight
    /// found nothing of ours by that name).
    fn in_lab(self, lab: &str) -> WireError {
        match self {
            StepError::Netlink(source) => bulk::nl_err(lab, source),
            StepError::Netns(source) => bulk::ns_err(lab, source),
            StepError::Ovs(source) => WireError::Ovs {
                lab: lab.to_string(),
                source,
            },
            StepError::Wire(e) => e,
        }
    }
}

struct Builder<'t> {
    t: &'t Topology,
    mark: String,
    host: Netlink,
    /// One netlink socket per lab namespace, opened once.
    nls: HashMap<String, Netlink>,
    ovs: Option<OvsSession>,
    progress: Progress,
    /// Objects this run made that carry no mark yet: the only unmarked objects an
    /// undo may remove (a same-named one made by someone else is never touched).
    created: teardown::Created,
}

impl Builder<'_> {
    fn lab(&self) -> String {
        self.t.name.clone()
    }

    /// The socket of a namespace. Lab namespaces are opened by open_nl before
    /// any Open vSwitch link uses them; a missing one is a bug, reported rather than silently
    /// falling back to another namespace.
    fn nl(&self, ns: &str) -> Result<&Netlink, StepError> {
        if ns == HOST {
            return Ok(&self.host);
        }
        let nl = self.nls.get(ns).ok_or_else(|| WireError::NotOpened {
            lab: self.lab(),
            netns: ns.to_string(),
        })?;
        Ok(nl)
    }

    /// Makes every object; the one place a step's error is put in the lab's context.
    async fn build(&mut self) -> Result<(), WireError> {
        let lab = self.lab();
        self.steps().await.map_err(|e| e.in_lab(&lab))
    }

    /// Namespaces, Linux bridges, their veths, addresses and routes in bulk (bulk.rs);
    /// Open vSwitch bridges and ports here, one by one, between the two.
    async fn steps(&mut self) -> Result<(), StepError> {
        let started = Instant::now();
        let mut bulk = Bulk::new(self.t, &self.mark)?;
        bulk.namespaces(&mut self.progress, &mut self.created)?;
        tracing::debug!("namespaces made at {:?}", started.elapsed());
        for br in &self.t.bridges {
            self.progress.step(&format!("bridge {}", br.name));
            match br.kind {
                BridgeKind::Linux => bulk.linux_bridge(br, &mut self.created)?,
                BridgeKind::Ovs => self.create_ovs_bridge(br).await?,
            }
            fault::point("bridge made");
        }
        bulk.veths(&mut self.progress)?;
        tracing::debug!("veths made at {:?}", started.elapsed());
        bulk.configure()?;
        tracing::debug!("interfaces configured at {:?}", started.elapsed());
        let ovs_links: Vec<&Link> = self
            .t
            .links
            .iter()
            .filter(|l| !bulk::is_bulk_veth(self.t, l))
            .collect();
        for link in ovs_links {
            for end in link.ends() {
                self.open_nl(end.netns()).await?;
            }
            match link {
                Link::Veth { ends, .. } => {
                    self.progress
                        .step(&format!("veth {} — {}", ends[0].name, ends[1].name));
                    self.create_veth(ends).await?;
                    fault::point("veth made");
                }
                Link::OvsInternal { bridge, end, .. } => {
                    self.progress.step(&format!("ovs-internal {}", end.name));
                    self.create_ovs_internal(bridge, end).await?;
                    fault::point("ovs-internal port made");
                }
            }
        }
        bulk.routes()?;
        // Return only once the kernel forwards on every new link: a ping sent right
        // after `up` must not be lost (see `Bulk::settle`). Not ready in time is a
        // warning, not a failure: the lab is built as the file says.
        for u in bulk.settle(SETTLE_TIMEOUT)? {
            u.warn(&self.t.name, SETTLE_TIMEOUT);
        }
        tracing::debug!("links in service at {:?}", started.elapsed());
        Ok(())
    }

    /// Opens the async socket of a lab namespace for the Open vSwitch steps.
    async fn open_nl(&mut self, ns: &str) -> Result<(), StepError> {
        if ns != HOST && !self.nls.contains_key(ns) {
            let nl = Netlink::open(ns).await?;
            self.nls.insert(ns.to_string(), nl);
        }
        Ok(())
    }

    fn ovs(&mut self) -> Result<&mut OvsSession, StepError> {
        let session = match self.ovs.take() {
            Some(session) => session,
            None => {
                let ep = ovs::ensure_running(&super::ovs_run_dir())?;
                let db = ovs::Ovsdb::connect(&ep)?;
                let datapath = ovs::preferred_datapath_type();
                tracing::info!("Open vSwitch datapath: {datapath}");
                OvsSession { db, datapath }
            }
        };
        Ok(self.ovs.insert(session))
    }

    /// Adds a port (marked with the lab) to an OVS bridge and waits until OVS has
    /// opened it; iface_type "" for a veth end, "internal" for an internal port.
    fn add_ovs_port(
        &mut self,
        bridge: &str,
        port: &str,
        iface_type: &str,
    ) -> Result<(), StepError> {
        let lab = self.lab();
        let session = self.ovs()?;
        session
            .db
            .add_port(bridge, port, iface_type, &[(mark::OVS_KEY, lab.as_str())])?;
        session.db.wait_ofport(port)?;
        Ok(())
    }

    async fn create_ovs_bridge(&mut self, br: &topology::Bridge) -> Result<(), StepError> {
        let lab = self.lab();
        let session = self.ovs()?;
        let datapath = session.datapath;
        session
            .db
            .add_bridge(&br.name, datapath, &[(mark::OVS_KEY, lab.as_str())])?;
        // The bridge's own port is a device too (a tap with netdev): mark it and bring it up.
        let link = wait_for_link(&self.host, &br.name).await?;
        self.host.set_alias(&link, &self.mark).await?;
        Ok(self.host.set_up(&link).await?)
    }

    async fn create_veth(&mut self, ends: &[End; 2]) -> Result<(), StepError> {
        let [a, b] = ends;
        let peer_ns = if a.netns() != b.netns() {
            Some(netns::open(b.netns())?)
        } else {
            None
        };
        self.nl(a.netns())?
            .create_veth(&a.name, &b.name, peer_ns.as_ref())
            .await?;
        fault::point("veth created, not marked");
        self.configure_end(a).await?;
        fault::point("first end configured");
        self.configure_end(b).await?;
        // OVS userspace datapath: the namespace end must checksum in software (see ethtool.rs).
        for (end, other) in [(a, b), (b, a)] {
            let other_on_netdev_ovs = other
                .bridge()
                .and_then(|br| self.t.bridge(br))
                .is_some_and(|br| br.kind == BridgeKind::Ovs)
                && self
                    .ovs
                    .as_ref()
                    .is_some_and(|o| o.datapath == ovs::DATAPATH_NETDEV);
            if other_on_netdev_ovs && end.bridge().is_none() {
                self.tx_checksum_off(end)?;
            }
        }
        Ok(())
    }

    fn tx_checksum_off(&self, end: &End) -> Result<(), StepError> {
        Ok(ethtool::tx_checksum_off(&self.lab(), end)?)
    }

    async fn create_ovs_internal(&mut self, bridge: &str, end: &End) -> Result<(), StepError> {
        self.add_ovs_port(bridge, &end.name, "internal")?;
        let link = wait_for_link(&self.host, &end.name).await?;
        if end.netns() != HOST {
            let fd = netns::open(end.netns())?;
            self.host.set_netns(&link, &fd, end.netns()).await?;
        }
        self.configure_end(end).await
    }

    /// Mark, address, tune and attach one interface, then bring it up.
    async fn configure_end(&mut self, end: &End) -> Result<(), StepError> {
        let ns = end.netns().to_string();
        let link = self.nl(&ns)?.require(&end.name).await?;
        let nl = self.nl(&ns)?;
        nl.set_alias(&link, &self.mark).await?;
        if let Some(mac) = end.mac_to_set(&self.t.name) {
            nl.set_mac(&link, mac).await?;
        }
        if let Some(mtu) = end.mtu {
            nl.set_mtu(&link, mtu).await?;
        }
        for cidr in &end.addresses {
            nl.add_address(&link, cidr).await?;
        }
        for s in &end.sysctls {
            let (family, key) = match s.key.strip_prefix("ipv6.") {
                Some(k) => ("ipv6", k),
                None => ("ipv4", s.key.strip_prefix("ipv4.").unwrap_or(&s.key)),
            };
            let path = netns::iface_key_path(family, &end.name, key);
            netns::write_sysctl_in(&ns, path, &s.value)?;
        }
        if let Place::Bridge(br) = &end.place {
            match self.t.bridge(br).map(|b| b.kind) {
                Some(BridgeKind::Ovs) => self.add_ovs_port(br, &end.name, "")?,
                _ => {
                    // The port lives in its bridge's namespace.
                    let nl = self.nl(&ns)?;
                    let master = nl.require(br).await?;
                    nl.set_master(&link, &master).await?;
                }
            }
        }
        Ok(self.nl(&ns)?.set_up(&link).await?)
    }
}

/// Devices OVS creates appear a moment after the transaction commits.
async fn wait_for_link(nl: &Netlink, name: &str) -> Result<LinkInfo, NetlinkError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(link) = nl.link_by_name(name).await? {
            return Ok(link);
        }
        if Instant::now() > deadline {
            return nl.require(name).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
