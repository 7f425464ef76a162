//! Attaching the object's programs: observers (trace, count) on pairs of TC hooks, the
//! fast path's program fd for a legacy TC filter (attached by `netlink::tc`), the drop
//! counter on `skb:kfree_skb`.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;

use aya::programs::{
    LinkOrder, RawTracePoint, SchedClassifier, TcAttachType,
    links::FdLink,
    tc::{SchedClassifierLink, SchedClassifierLinkId, TcAttachOptions},
};
use vethscope_common::names::program;

use super::{Probe, ProbeError, Target};
use crate::netns;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn attach_type(self) -> TcAttachType {
        match self {
            Direction::Ingress => TcAttachType::Ingress,
            Direction::Egress => TcAttachType::Egress,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// Where in an interface's TCX chain a program goes: observers first, so they see a
/// frame before a later program (the fast path) redirects it.
#[derive(Clone, Copy, Debug)]
pub enum Position {
    First,
    Last,
}

impl Position {
    fn order(self) -> LinkOrder {
        match self {
            Position::First => LinkOrder::first(),
            Position::Last => LinkOrder::last(),
        }
    }
}

/// A pair of programs that watch both directions of an interface and never change a
/// packet's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observer {
    /// One event per ARP / ICMP / ICMPv6 packet into the trace ring.
    Trace,
    /// Packets and bytes per link, direction and class into the link counters.
    Count,
}

impl Observer {
    pub(super) fn programs(self) -> [(&'static str, Direction); 2] {
        match self {
            Observer::Trace => [
                (program::TRACE_INGRESS, Direction::Ingress),
                (program::TRACE_EGRESS, Direction::Egress),
            ],
            Observer::Count => [
                (program::COUNT_INGRESS, Direction::Ingress),
                (program::COUNT_EGRESS, Direction::Egress),
            ],
        }
    }
}

/// The fast path's TCX link on one interface (benchmark only); dropping it detaches.
pub struct FastpathTcxLink {
    _link: SchedClassifierLink,
}

/// An observer's two TCX links on one interface, owned by the caller: dropping them
/// detaches the programs, or, when the interface is already gone (the kernel then
/// detached them itself), releases the kernel's link objects and our fds.
pub struct ObserverLinks {
    _links: [SchedClassifierLink; 2],
}

impl Probe {
    /// Loads (verifies) an observer's programs without attaching them, so a verifier
    /// rejection shows once, up front, not per interface.
    pub fn load_observer(&mut self, observer: Observer) -> Result<(), ProbeError> {
        for (name, _) in observer.programs() {
            self.load_program(name)?;
        }
        Ok(())
    }

    /// Attaches `observer` to both directions of every target; the links stay with the
    /// probe (detached when it is dropped). Returns how many programs were attached.
    pub fn attach_observer(
        &mut self,
        observer: Observer,
        targets: &[Target],
        pos: Position,
    ) -> Result<usize, ProbeError> {
        let mut n = 0;
        for t in targets {
            for (name, dir) in observer.programs() {
                self.attach_tc(name, t, dir, pos)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Attaches only the egress program of `observer` to every target (`diagnose`: what
    /// leaves one end of a veth enters its peer, and each TCX attachment waits for an
    /// RCU grace period). Links stay with the probe.
    pub fn attach_observer_egress(
        &mut self,
        observer: Observer,
        targets: &[Target],
        pos: Position,
    ) -> Result<usize, ProbeError> {
        let [_, (name, dir)] = observer.programs();
        for t in targets {
            self.attach_tc(name, t, dir, pos)?;
        }
        Ok(targets.len())
    }

    /// Attaches `observer` to both directions of `target` and hands the links to the
    /// caller, for observers whose set of interfaces changes while they run (`serve`).
    pub fn attach_observer_owned(
        &mut self,
        observer: Observer,
        target: &Target,
        pos: Position,
    ) -> Result<ObserverLinks, ProbeError> {
        let [(in_name, in_dir), (out_name, out_dir)] = observer.programs();
        let ingress = self.attach_owned(in_name, target, in_dir, pos)?;
        // If egress fails, `ingress` is dropped here, which detaches it again.
        let egress = self.attach_owned(out_name, target, out_dir, pos)?;
        Ok(ObserverLinks {
            _links: [ingress, egress],
        })
    }

    /// The fast-path program, loaded (verified), as a raw fd for a legacy TC filter
    /// (`netlink::tc`): the fast path attaches through netlink because a TCX link per
    /// port costs an RCU grace period (BENCHMARKS.md). Valid while the probe lives; an
    /// attached filter holds its own reference to the program.
    pub fn fastpath_program_fd(&mut self) -> Result<RawFd, ProbeError> {
        self.program_fd(program::FASTPATH_INGRESS)
    }

    /// The fd of classifier `name`, loaded into the kernel first if it is not yet.
    pub(super) fn program_fd(&mut self, name: &'static str) -> Result<RawFd, ProbeError> {
        self.load_program(name)?;
        let fd = self
            .classifier(name)?
            .fd()
            .map_err(|source| ProbeError::ProgramType {
                program: name,
                source: Box::new(source),
            })?
            .as_fd()
            .as_raw_fd();
        Ok(fd)
    }

    /// Attaches the fast-path program to `target`'s ingress as a TCX link, last in the
    /// chain; dropping the handle detaches it. Only for the attach benchmark, which
    /// measures TCX against legacy TC.
    pub fn attach_fastpath_tcx(&mut self, target: &Target) -> Result<FastpathTcxLink, ProbeError> {
        let name = program::FASTPATH_INGRESS;
        let link = self.attach_owned(name, target, Direction::Ingress, Position::Last)?;
        Ok(FastpathTcxLink { _link: link })
    }

    /// Attaches the impairment program to `target`'s egress, last in the chain
    /// (observers see a packet before it is dropped), and pins the TCX link at `pin`.
    pub fn attach_impair(&mut self, target: &Target, pin: &Path) -> Result<(), ProbeError> {
        let name = program::IMPAIR_EGRESS;
        let link = self.attach_owned(name, target, Direction::Egress, Position::Last)?;
        let fd_link = FdLink::try_from(link).map_err(|source| ProbeError::Link {
            program: name,
            ifname: target.ifname.clone(),
            netns: target.netns.clone(),
            source: Box::new(source),
        })?;
        fd_link
            .pin(pin)
            .map(|_| ())
            .map_err(|source| ProbeError::Pin {
                program: name,
                path: pin.to_path_buf(),
                source: Box::new(source),
            })
    }

    /// The drop counter on the `kfree_skb` raw tracepoint; its link stays with the
    /// program (detached when the probe goes). It only counts interfaces put on its
    /// watch list.
    pub fn attach_drop_counter(&mut self) -> Result<(), ProbeError> {
        self.attach_kfree_skb(program::DROPS_KFREE_SKB)
    }

    /// Loads raw-tracepoint program `name` and attaches it to `skb:kfree_skb`; the link
    /// stays with the program (detached when the probe goes).
    pub(super) fn attach_kfree_skb(&mut self, name: &'static str) -> Result<(), ProbeError> {
        let prog: &mut RawTracePoint = self
            .ebpf
            .program_mut(name)
            .ok_or(ProbeError::NoProgram(name))?
            .try_into()
            .map_err(|source| ProbeError::ProgramType {
                program: name,
                source: Box::new(source),
            })?;
        prog.load().map_err(|source| ProbeError::Verifier {
            program: name,
            source: Box::new(source),
        })?;
        prog.attach("kfree_skb")
            .map_err(|source| ProbeError::AttachTracepoint {
                program: name,
                tracepoint: "kfree_skb",
                source: Box::new(source),
            })?;
        Ok(())
    }

    /// Loads (verifies) a program into the kernel; idempotent.
    pub(super) fn load_program(&mut self, name: &'static str) -> Result<(), ProbeError> {
        let prog = self.classifier(name)?;
        if prog.fd().is_err() {
            prog.load().map_err(|source| ProbeError::Verifier {
                program: name,
                source: Box::new(source),
            })?;
        }
        Ok(())
    }

    pub(super) fn classifier(
        &mut self,
        name: &'static str,
    ) -> Result<&mut SchedClassifier, ProbeError> {
        self.ebpf
            .program_mut(name)
            .ok_or(ProbeError::NoProgram(name))?
            .try_into()
            .map_err(|source| ProbeError::ProgramType {
                program: name,
                source: Box::new(source),
            })
    }

    /// Attaches like [`Probe::attach_tc`] but takes the TCX link from the program.
    fn attach_owned(
        &mut self,
        name: &'static str,
        target: &Target,
        dir: Direction,
        pos: Position,
    ) -> Result<SchedClassifierLink, ProbeError> {
        let id = self.attach_tc(name, target, dir, pos)?;
        self.classifier(name)?
            .take_link(id)
            .map_err(|source| attach_error(name, target, source))
    }

    /// The one place a TC program is attached. The interface name is resolved inside
    /// the target's namespace (on a thread that entered it). The link stays with the
    /// program unless a caller takes it.
    fn attach_tc(
        &mut self,
        name: &'static str,
        target: &Target,
        dir: Direction,
        pos: Position,
    ) -> Result<SchedClassifierLinkId, ProbeError> {
        self.load_program(name)?;
        self.cookies.insert(target.cookie, target.netns.clone());
        let prog = self.classifier(name)?;
        let ifname = target.ifname.clone();
        netns::run_in(&target.netns, move || {
            prog.attach_with_options(
                &ifname,
                dir.attach_type(),
                TcAttachOptions::TcxOrder(pos.order()),
            )
        })?
        .map_err(|source| attach_error(name, target, source))
    }
}

fn attach_error(
    program: &'static str,
    target: &Target,
    source: aya::programs::ProgramError,
) -> ProbeError {
    ProbeError::Attach {
        program,
        ifname: target.ifname.clone(),
        netns: target.netns.clone(),
        source: Box::new(source),
    }
}
