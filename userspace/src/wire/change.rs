//! Applying a planned change (`diff.rs`) to a running lab.
//!
//! Crash safety: before the first action the state file says `changing`, holds the new
//! definition (what `down` falls back on for objects not marked yet) and keeps the one
//! before it (`previous`). Every action is idempotent — an object that already exists
//! and carries the lab's mark counts as made, one already gone as removed — so after a
//! kill `up FILE` plans from both definitions and finishes, and `down` removes the lab
//! by its marks. Only the namespaces an action names are opened.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{
    WireError,
    apply::{SETTLE_TIMEOUT, UpOptions, UpOutcome},
    bulk,
    diff::{self, Action},
    ethtool, mark, preflight,
    state::{self, LabState, Status},
};
use crate::{
    fault,
    impair::{self, EndRef},
    inspect,
    netlink::{LinkInfo, Netlink, NetlinkError, RouteEntry},
    netns, ovs,
    topology::{Bridge, BridgeKind, End, HOST, Link, Place, Topology},
};

/// `up FILE` on a lab that is up (or whose change was interrupted).
pub(super) async fn update(
    existing: LabState,
    t: &Topology,
    opts: &UpOptions,
) -> Result<UpOutcome, WireError> {
    let started = Instant::now();
    let resuming = existing.status == Status::Changing;
    let mut actions = if resuming {
        let before = existing.previous.as_ref().unwrap_or(&existing.topology);
        diff::merge(
            diff::plan_files(before, t),
            diff::plan_files(&existing.topology, t),
        )
    } else {
        diff::plan_files(&existing.topology, t)
    };
    // The unchanged file: drift repair, which reads the whole live lab. (Compared only
    // when the files plan nothing: a plan with actions means the files differ.)
    let same = actions.is_empty() && diff::same_definition(&existing.topology, t);
    if same && !resuming {
        actions = diff::plan_repair(&existing.topology, t).await?;
    }
    tracing::debug!(
        "planned {} actions at {:?}",
        actions.len(),
        started.elapsed()
    );
    let shown: Vec<String> = actions.iter().map(|a| a.to_string()).collect();
    if opts.dry_run {
        return Ok(UpOutcome::Planned { actions: shown });
    }
    if actions.is_empty() && same && !resuming {
        return Ok(UpOutcome::AlreadyUp);
    }
    let uses_ovs = t.uses_ovs()
        || existing.topology.uses_ovs()
        || existing.previous.as_ref().is_some_and(Topology::uses_ovs);
    let ovs_lock = if uses_ovs {
        Some(state::ovs_lock()?)
    } else {
        None
    };
    let mut run = Runner::new(t, existing.ovs_datapath.clone());
    // Names the change adds must be free (or already the lab's): checked before
    // anything is touched.
    run.check_free(&actions, resuming).await?;

    // Record first: from here on a kill leaves `changing` with both definitions.
    let previous = if resuming {
        existing.previous.clone()
    } else {
        Some(existing.topology.clone())
    };
    let mut st = LabState {
        status: Status::Changing,
        topology: t.clone(),
        previous,
        ..existing
    };
    state::write(&st)?;
    tracing::debug!("state recorded at {:?}", started.elapsed());
    fault::point("change recorded");
    for a in &actions {
        tracing::info!("lab {}: {a}", t.name);
        run.apply(a, resuming)
            .await
            .map_err(|e| unfinished(t, a, e))?;
        fault::point("change applied");
    }
    run.settle(&actions).await?;
    st.status = Status::Up;
    st.previous = None;
    if let Some(o) = &run.ovs {
        st.ovs_datapath = Some(o.datapath.to_string());
    }
    drop(run);
    tracing::debug!("actions applied at {:?}", started.elapsed());
    state::write(&st)?;
    fault::point("change done");
    if ovs_lock.is_some() && !t.uses_ovs() {
        drop(ovs_lock);
        super::teardown::stop_ovs_if_unused();
    }
    let new_namespaces = actions
        .iter()
        .filter_map(|a| match a {
            Action::AddNamespace { netns } => Some(netns.clone()),
            _ => None,
        })
        .collect();
    Ok(UpOutcome::Changed {
        actions: shown,
        new_namespaces,
        elapsed: started.elapsed(),
    })
}

/// A failed action leaves the lab `changing`: say what failed and both ways out.
fn unfinished(t: &Topology, a: &Action, e: WireError) -> WireError {
    WireError::ChangeStopped {
        lab: t.name.clone(),
        action: a.to_string(),
        source: Box::new(e),
    }
}

struct OvsSession {
    db: ovs::Ovsdb,
    datapath: &'static str,
}

/// Runs actions; opens a namespace's netlink socket the first time an action needs it.
struct Runner<'t> {
    t: &'t Topology,
    lab: String,
    mark: String,
    nls: HashMap<String, Netlink>,
    ovs: Option<OvsSession>,
    /// The datapath the lab's OVS bridges already use.
    datapath: Option<String>,
}

impl<'t> Runner<'t> {
    fn new(t: &'t Topology, datapath: Option<String>) -> Self {
        Self {
            t,
            lab: t.name.clone(),
            mark: mark::alias(&t.name),
            nls: HashMap::new(),
            ovs: None,
            datapath,
        }
    }

    fn nl_err(&self, source: NetlinkError) -> WireError {
        super::bulk::nl_err(&self.lab, source)
    }

    fn ns_err(&self, source: netns::NetnsError) -> WireError {
        WireError::Netns {
            lab: self.lab.clone(),
            source,
        }
    }

    fn ovs_err(&self, source: ovs::OvsError) -> WireError {
        WireError::Ovs {
            lab: self.lab.clone(),
            source,
        }
    }

    async fn nl(&mut self, ns: &str) -> Result<&Netlink, WireError> {
        if !self.nls.contains_key(ns) {
            let nl = Netlink::open(ns).await.map_err(|e| self.nl_err(e))?;
            self.nls.insert(ns.to_string(), nl);
        }
        self.nls.get(ns).ok_or_else(|| WireError::NotOpened {
            lab: self.lab.clone(),
            netns: ns.to_string(),
        })
    }

    fn ovs(&mut self) -> Result<&mut OvsSession, WireError> {
        if self.ovs.is_none() {
            let ep = ovs::ensure_running(&super::ovs_run_dir()).map_err(|e| self.ovs_err(e))?;
            let db = ovs::Ovsdb::connect(&ep).map_err(|e| self.ovs_err(e))?;
            // Same datapath as the lab's other OVS bridges; else the best available.
            let datapath = match self.datapath.as_deref() {
                Some("system") => "system",
                Some("netdev") => "netdev",
                _ if ovs::kernel_datapath_available() => "system",
                _ => "netdev",
            };
            return Ok(self.ovs.insert(OvsSession { db, datapath }));
        }
        match &mut self.ovs {
            Some(o) => Ok(o),
            None => Err(WireError::NotOpened {
                lab: self.lab.clone(),
                netns: "Open vSwitch".into(),
            }),
        }
    }

    /// Whose a live interface is: `Ok(true)` ours, `Ok(false)` absent; someone else's
    /// (or, unless resuming an interrupted change, unmarked) is an error.
    async fn owned_link(
        &mut self,
        ns: &str,
        name: &str,
        resuming: bool,
    ) -> Result<Option<LinkInfo>, WireError> {
        let mark = self.mark.clone();
        let lab = self.lab.clone();
        let Some(link) = self
            .nl(ns)
            .await?
            .link_by_name(name)
            .await
            .map_err(|e| super::bulk::nl_err(&lab, e))?
        else {
            return Ok(None);
        };
        match link.alias.as_deref() {
            Some(a) if a == mark => Ok(Some(link)),
            None if resuming => Ok(Some(link)),
            other => Err(match mark::lab_of(other) {
                Some(owner) => WireError::OwnedByOther {
                    object: format!("interface {name} in namespace {ns}"),
                    owner: owner.to_string(),
                    lab,
                },
                None => WireError::Conflict {
                    object: format!("interface {name}"),
                    netns: ns.to_string(),
                    lab,
                },
            }),
        }
    }

    /// Every name an `Add…` action takes is free or already the lab's.
    async fn check_free(&mut self, actions: &[Action], resuming: bool) -> Result<(), WireError> {
        let adding_ns: Vec<&str> = actions
            .iter()
            .filter_map(|a| match a {
                Action::AddNamespace { netns } => Some(netns.as_str()),
                _ => None,
            })
            .collect();
        for ns in &adding_ns {
            self.namespace_is_free_or_ours(ns, resuming).await?;
        }
        for a in actions {
            match a {
                Action::AddBridge { bridge } => {
                    self.owned_link(diff::bridge_netns(bridge), &bridge.name, resuming)
                        .await?;
                }
                Action::AddLink { link } => {
                    let internal = matches!(link, Link::OvsInternal { .. });
                    for e in link.ends() {
                        // Ends in namespaces this change makes are free by construction.
                        if !adding_ns.contains(&e.netns()) {
                            self.owned_link(e.netns(), &e.name, resuming).await?;
                        }
                        if internal && e.netns() != HOST {
                            self.owned_link(HOST, &e.name, resuming).await?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn namespace_is_free_or_ours(&self, ns: &str, resuming: bool) -> Result<(), WireError> {
        if !netns::exists(ns) {
            return Ok(());
        }
        match preflight::owner_of_netns(ns).await {
            Some(owner) if owner == self.lab => Ok(()),
            Some(owner) => Err(WireError::OwnedByOther {
                object: format!("namespace {ns}"),
                owner,
                lab: self.lab.clone(),
            }),
            None if resuming => Ok(()),
            None => Err(WireError::Conflict {
                object: format!("namespace {ns}"),
                netns: ns.to_string(),
                lab: self.lab.clone(),
            }),
        }
    }

    async fn apply(&mut self, a: &Action, resuming: bool) -> Result<(), WireError> {
        match a {
            Action::AddNamespace { netns } => self.add_namespace(netns, resuming).await,
            Action::DelNamespace { netns } => self.del_namespace(netns, resuming).await,
            Action::AddBridge { bridge } => self.add_bridge(bridge, resuming).await,
            Action::DelBridge { bridge } => self.del_bridge(bridge, resuming).await,
            Action::AddLink { link } => self.add_link(link, resuming).await,
            Action::DelLink { link, ovs_ports } => self.del_link(link, ovs_ports, resuming).await,
            Action::SetMaster {
                netns,
                ifname,
                bridge,
            } => self.set_master(netns, ifname, bridge.as_deref()).await,
            Action::SetImpair {
                netns,
                ifname,
                impair,
            } => self.set_impair(netns, ifname, impair.as_ref()).await,
            _ => self.set_attribute(a).await,
        }
    }

    async fn add_namespace(&mut self, ns: &str, resuming: bool) -> Result<(), WireError> {
        self.namespace_is_free_or_ours(ns, resuming).await?;
        if !netns::exists(ns) {
            netns::create(ns).map_err(|e| self.ns_err(e))?;
            fault::point("namespace created, not marked");
        }
        let mark = self.mark.clone();
        let nl = self.nl(ns).await?;
        let lo = nl.require("lo").await;
        let lo = lo.map_err(|e| self.nl_err(e))?;
        let nl = self.nl(ns).await?;
        let r = match nl.set_alias(&lo, &mark).await {
            Ok(()) => nl.set_up(&lo).await,
            Err(e) => Err(e),
        };
        r.map_err(|e| self.nl_err(e))?;
        let sysctls = self
            .t
            .namespaces
            .iter()
            .find(|n| n.name == ns)
            .map(|n| n.sysctls.clone())
            .unwrap_or_default();
        for s in &sysctls {
            netns::write_sysctl(ns, &s.key, &s.value).map_err(|e| self.ns_err(e))?;
        }
        Ok(())
    }

    async fn del_namespace(&mut self, ns: &str, resuming: bool) -> Result<(), WireError> {
        if !netns::exists(ns) {
            return Ok(());
        }
        match preflight::owner_of_netns(ns).await {
            Some(owner) if owner == self.lab => {}
            // Made by the interrupted change and killed before its mark: still bare.
            None if resuming && self.is_bare(ns).await? => {}
            _ => {
                return Err(WireError::NotMarked {
                    lab: self.lab.clone(),
                    object: format!("namespace {ns}"),
                });
            }
        }
        // An open socket would keep the namespace alive.
        self.nls.remove(ns);
        netns::delete(ns).map_err(|e| self.ns_err(e))
    }

    /// Only `lo` in it.
    async fn is_bare(&mut self, ns: &str) -> Result<bool, WireError> {
        let links = self.nl(ns).await?.links().await;
        let links = links.map_err(|e| self.nl_err(e))?;
        Ok(links.iter().all(|l| l.name == "lo"))
    }

    async fn add_bridge(&mut self, br: &Bridge, resuming: bool) -> Result<(), WireError> {
        let ns = diff::bridge_netns(br).to_string();
        match br.kind {
            BridgeKind::Linux => {
                if self.owned_link(&ns, &br.name, resuming).await?.is_none() {
                    let r = self.nl(&ns).await?.create_bridge(&br.name).await;
                    r.map_err(|e| self.nl_err(e))?;
                    fault::point("bridge created, not marked");
                }
            }
            BridgeKind::Ovs => {
                let lab = self.lab.clone();
                let session = self.ovs()?;
                if !session
                    .db
                    .bridge_exists(&br.name)
                    .map_err(|source| WireError::Ovs {
                        lab: lab.clone(),
                        source,
                    })?
                {
                    let datapath = session.datapath;
                    session
                        .db
                        .add_bridge(&br.name, datapath, &[(mark::OVS_KEY, lab.as_str())])
                        .map_err(|source| WireError::Ovs { lab, source })?;
                }
            }
        }
        let mark = self.mark.clone();
        let nl = self.nl(&ns).await?;
        let link = wait_for_link(nl, &br.name).await;
        let link = link.map_err(|e| self.nl_err(e))?;
        let nl = self.nl(&ns).await?;
        let mut r = nl.set_alias(&link, &mark).await;
        if let (Ok(()), Some(mtu)) = (&r, br.mtu) {
            r = nl.set_mtu(&link, mtu).await;
        }
        if r.is_ok() {
            r = nl.set_up(&link).await;
        }
        r.map_err(|e| self.nl_err(e))
    }

    async fn del_bridge(&mut self, br: &Bridge, resuming: bool) -> Result<(), WireError> {
        let ns = diff::bridge_netns(br).to_string();
        match br.kind {
            BridgeKind::Linux => {
                if let Some(link) = self.owned_link(&ns, &br.name, resuming).await? {
                    let r = self.nl(&ns).await?.delete(&link).await;
                    r.map_err(|e| self.nl_err(e))?;
                }
                Ok(())
            }
            BridgeKind::Ovs => {
                let lab = self.lab.clone();
                let db = &mut self.ovs()?.db;
                let owned = db
                    .owned(mark::OVS_KEY, &lab)
                    .map_err(|source| WireError::Ovs {
                        lab: lab.clone(),
                        source,
                    })?;
                if owned.bridges.contains(&br.name) {
                    db.del_bridge(&br.name)
                        .map_err(|source| WireError::Ovs { lab, source })?;
                }
                Ok(())
            }
        }
    }

    fn ovs_port_of(&self, e: &End) -> Option<String> {
        e.bridge()
            .and_then(|b| self.t.bridge(b))
            .filter(|b| b.kind == BridgeKind::Ovs)
            .map(|b| b.name.clone())
    }

    async fn del_link(
        &mut self,
        link: &Link,
        ovs_ports: &[(String, String)],
        resuming: bool,
    ) -> Result<(), WireError> {
        let lab = self.lab.clone();
        // OVS lets go of its ports first (an internal port's device goes with it).
        if !ovs_ports.is_empty() && ovs::find_running(&super::ovs_run_dir()).is_some() {
            let db = &mut self.ovs()?.db;
            let owned = db
                .owned(mark::OVS_KEY, &lab)
                .map_err(|source| WireError::Ovs {
                    lab: lab.clone(),
                    source,
                })?;
            for p in ovs_ports {
                if owned.ports.contains(p) {
                    db.del_port(&p.0, &p.1).map_err(|source| WireError::Ovs {
                        lab: lab.clone(),
                        source,
                    })?;
                }
            }
        }
        // Deleting one end of a veth pair deletes both; delete from an end that is still
        // there (the other may have gone with a namespace).
        for e in link.ends() {
            if e.netns() != HOST && !netns::exists(e.netns()) {
                continue;
            }
            if let Some(l) = self.owned_link(e.netns(), &e.name, resuming).await? {
                let r = self.nl(e.netns()).await?.delete(&l).await;
                r.map_err(|e| self.nl_err(e))?;
            }
            self.forget_impairment(e.netns(), &e.name)?;
        }
        Ok(())
    }

    /// An end that is gone takes its qdisc and program attachment with it; its pins
    /// and record entry go here.
    fn forget_impairment(&self, netns: &str, ifname: &str) -> Result<(), WireError> {
        let err = |e: impair::ImpairError| WireError::Impair {
            lab: self.lab.clone(),
            source: Box::new(e),
        };
        let mut rec = impair::record::read(&self.lab).map_err(err)?;
        if rec.end(netns, ifname).is_none() {
            return Ok(());
        }
        impair::engine::detach(&self.lab, netns, ifname, None).map_err(err)?;
        rec.remove(netns, ifname);
        impair::record::write(&self.lab, &rec).map_err(err)
    }

    async fn add_link(&mut self, link: &Link, resuming: bool) -> Result<(), WireError> {
        match link {
            Link::Veth { ends, .. } => {
                let [a, b] = ends;
                if self
                    .owned_link(a.netns(), &a.name, resuming)
                    .await?
                    .is_none()
                {
                    let peer_ns = if a.netns() != b.netns() {
                        Some(netns::open(b.netns()).map_err(|e| self.ns_err(e))?)
                    } else {
                        None
                    };
                    let r = self
                        .nl(a.netns())
                        .await?
                        .create_veth(&a.name, &b.name, peer_ns.as_ref())
                        .await;
                    r.map_err(|e| self.nl_err(e))?;
                    fault::point("veth created, not marked");
                }
                self.configure_end(a).await?;
                self.configure_end(b).await?;
                // OVS userspace datapath: the other end must checksum in software.
                for (end, other) in [(a, b), (b, a)] {
                    let netdev = self.ovs_port_of(other).is_some()
                        && self.ovs.as_ref().is_some_and(|o| o.datapath == "netdev");
                    if netdev && end.bridge().is_none() {
                        ethtool::tx_checksum_off(&self.lab, end)?;
                    }
                }
                Ok(())
            }
            Link::OvsInternal { bridge, end, .. } => {
                let lab = self.lab.clone();
                let in_place = self.owned_link(end.netns(), &end.name, resuming).await?;
                if in_place.is_none() {
                    let session = self.ovs()?;
                    if !session
                        .db
                        .port_exists(&end.name)
                        .map_err(|source| WireError::Ovs {
                            lab: lab.clone(),
                            source,
                        })?
                    {
                        session
                            .db
                            .add_port(
                                bridge,
                                &end.name,
                                "internal",
                                &[(mark::OVS_KEY, lab.as_str())],
                            )
                            .and_then(|()| session.db.wait_ofport(&end.name).map(|_| ()))
                            .map_err(|source| WireError::Ovs {
                                lab: lab.clone(),
                                source,
                            })?;
                    }
                    let host = self.nl(HOST).await?;
                    let dev = wait_for_link(host, &end.name).await;
                    let dev = dev.map_err(|e| self.nl_err(e))?;
                    if end.netns() != HOST {
                        let fd = netns::open(end.netns()).map_err(|e| self.ns_err(e))?;
                        let r = self.nl(HOST).await?.set_netns(&dev, &fd, end.netns()).await;
                        r.map_err(|e| self.nl_err(e))?;
                    }
                }
                self.configure_end(end).await
            }
        }
    }

    /// Mark, MAC, MTU, addresses, sysctls, bridge port, up: each a no-op when done.
    async fn configure_end(&mut self, end: &End) -> Result<(), WireError> {
        let ns = end.netns().to_string();
        let mark = self.mark.clone();
        let mac = end.mac_to_set(&self.t.name);
        let nl = self.nl(&ns).await?;
        let link = nl.require(&end.name).await;
        let link = link.map_err(|e| self.nl_err(e))?;
        let nl = self.nl(&ns).await?;
        let mut r = nl.set_alias(&link, &mark).await;
        if let (Ok(()), Some(mac)) = (&r, mac) {
            r = nl.set_mac(&link, mac).await;
        }
        if let (Ok(()), Some(mtu)) = (&r, end.mtu) {
            r = nl.set_mtu(&link, mtu).await;
        }
        for cidr in &end.addresses {
            if r.is_ok() {
                r = match nl.add_address(&link, cidr).await {
                    Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
                    other => other,
                };
            }
        }
        r.map_err(|e| self.nl_err(e))?;
        for s in &end.sysctls {
            let key = crate::drift::iface_key(&s.key);
            netns::write_sysctl_in(&ns, inspect::sysctls::iface_path(&end.name, &key), &s.value)
                .map_err(|e| self.ns_err(e))?;
        }
        if let Place::Bridge(br) = &end.place {
            match self.ovs_port_of(end) {
                Some(_) => {
                    let lab = self.lab.clone();
                    let session = self.ovs()?;
                    let exists =
                        session
                            .db
                            .port_exists(&end.name)
                            .map_err(|source| WireError::Ovs {
                                lab: lab.clone(),
                                source,
                            })?;
                    if !exists {
                        session
                            .db
                            .add_port(br, &end.name, "", &[(mark::OVS_KEY, lab.as_str())])
                            .and_then(|()| session.db.wait_ofport(&end.name).map(|_| ()))
                            .map_err(|source| WireError::Ovs { lab, source })?;
                    }
                }
                None => self.set_master(&ns, &end.name, Some(br)).await?,
            }
        }
        let nl = self.nl(&ns).await?;
        let r = nl.set_up(&link).await;
        r.map_err(|e| self.nl_err(e))
    }

    async fn set_master(
        &mut self,
        ns: &str,
        ifname: &str,
        bridge: Option<&str>,
    ) -> Result<(), WireError> {
        let nl = self.nl(ns).await?;
        let r = async {
            let link = nl.require(ifname).await?;
            match bridge {
                Some(b) => {
                    let master = nl.require(b).await?;
                    nl.set_master(&link, &master).await
                }
                None => nl.set_nomaster(&link).await,
            }
        }
        .await;
        r.map_err(|e| self.nl_err(e))
    }

    async fn set_impair(
        &mut self,
        ns: &str,
        ifname: &str,
        imp: Option<&impair::Impairment>,
    ) -> Result<(), WireError> {
        let end = EndRef {
            netns: ns.to_string(),
            ifname: ifname.to_string(),
        };
        let r = match imp {
            Some(i) => impair::set(&self.lab, &end, i).await.map(|_| ()),
            None => impair::clear(&self.lab, &end).await.map(|_| ()),
        };
        r.map_err(|e| WireError::Impair {
            lab: self.lab.clone(),
            source: Box::new(e),
        })
    }

    /// Addresses, MTU, MAC, up, sysctls, routes of interfaces that exist.
    async fn set_attribute(&mut self, a: &Action) -> Result<(), WireError> {
        let ns = a.namespaces().concat();
        if let Action::SetSysctl { key, value, .. } = a {
            return match key.split_once('/') {
                Some((ifname, k)) => {
                    netns::write_sysctl_in(&ns, inspect::sysctls::iface_path(ifname, k), value)
                }
                None => netns::write_sysctl(&ns, key, value),
            }
            .map_err(|e| self.ns_err(e));
        }
        let nl = self.nl(&ns).await?;
        let r = attribute(nl, a).await;
        r.map_err(|e| self.nl_err(e))
    }
}

async fn attribute(nl: &Netlink, a: &Action) -> Result<(), NetlinkError> {
    match a {
        Action::AddAddress { ifname, cidr, .. } => {
            let link = nl.require(ifname).await?;
            match nl.add_address(&link, cidr).await {
                Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
                r => r,
            }
        }
        Action::DelAddress { ifname, cidr, .. } => {
            let link = nl.require(ifname).await?;
            nl.delete_address(link.index, ifname, cidr).await
        }
        Action::SetMtu { ifname, mtu, .. } => {
            let link = nl.require(ifname).await?;
            nl.set_mtu(&link, *mtu).await
        }
        Action::SetMac { ifname, mac, .. } => {
            let link = nl.require(ifname).await?;
            nl.set_mac(&link, *mac).await
        }
        Action::SetUp { ifname, .. } => {
            let link = nl.require(ifname).await?;
            nl.set_up(&link).await
        }
        Action::AddRoute { route, .. } => {
            let dev = match &route.dev {
                Some(d) => Some(nl.require(d).await?),
                None => None,
            };
            match nl.add_route(route, dev.as_ref()).await {
                Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
                r => r,
            }
        }
        Action::DelRoute { route, .. } => {
            let oif = match &route.dev {
                Some(d) => nl.link_by_name(d).await?.map(|l| l.index),
                None => None,
            };
            let v6 = route
                .to
                .map(|c| c.addr.is_ipv6())
                .or(route.via.map(|v| v.is_ipv6()))
                .unwrap_or(false);
            let entry = RouteEntry {
                to: route.to,
                v6,
                via: route.via,
                oif,
                protocol: String::new(),
                scope: String::new(),
                metric: None,
            };
            nl.delete_route(&entry).await
        }
        _ => Ok(()),
    }
}

impl Runner<'_> {
    /// Returns once every end of the veth pairs this change added carries traffic, as a
    /// first `up` does (`Bulk::settle`): asking the kernel for a link by name runs its
    /// pending link-watch work, which would otherwise come up to a second later and
    /// drop what is sent meanwhile. Bounded; an end still not in service is a warning.
    async fn settle(&mut self, actions: &[Action]) -> Result<(), WireError> {
        let t = self.t;
        let mut pending: Vec<(String, String)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::AddLink { link } if bulk::is_bulk_veth(t, link) => Some(link.ends()),
                _ => None,
            })
            .flatten()
            .map(|e| (e.netns().to_string(), e.name.clone()))
            .collect();
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let mut left = Vec::new();
            for (ns, name) in pending {
                let nl = self.nl(&ns).await?;
                let link = nl.link_by_name(&name).await.map_err(|e| self.nl_err(e))?;
                if let Some(why) = bulk::not_in_service(link.as_ref()) {
                    left.push((ns, name, why));
                }
            }
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                for (netns, name, why) in left {
                    bulk::Unsettled { netns, name, why }.warn(&t.name, SETTLE_TIMEOUT);
                }
                return Ok(());
            }
            pending = left.into_iter().map(|(ns, name, _)| (ns, name)).collect();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
