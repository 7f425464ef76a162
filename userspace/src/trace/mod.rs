//! `vethscope trace`: TC programs on every link of a lab follow each ARP and ICMP
//! packet hop by hop; userspace correlates hops into paths and writes them out.
//!
//! [`Session::start`] attaches everything; [`Session::run`] follows until told to stop.
//! Nothing here prints to the terminal: output goes to the writer the caller passes,
//! and the caller says when tracing has started (the command line does it on stderr).

pub mod event;
mod follow;
pub mod output;
pub mod paths;
pub mod pcapng;
mod resolve;
pub mod tree;

use std::{future::Future, io::Write, path::PathBuf, time::Duration};

use tokio::io::unix::AsyncFd;
use vethscope_common::{TraceConfig, names, proto_mask};

use crate::probe::{
    self, KernelLog, LoadOptions, Observer, Probe, ProbeError, Target, TargetFilter, TraceRing,
};
use follow::{Follower, PcapOut, Sink, Source};

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("nothing to trace: {0}")]
    NoTargets(String),
    #[error("cannot write the trace output")]
    Output(#[from] std::io::Error),
    #[error("unknown protocol `{0}` (use arp, icmp, icmpv6)")]
    UnknownProto(String),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
}

#[derive(Debug, Clone)]
pub struct TraceOptions {
    pub lab: Option<String>,
    pub json: bool,
    pub pcap: Option<PathBuf>,
    pub duration: Option<Duration>,
    /// Stop after this many completed paths.
    pub count: Option<usize>,
    pub proto_mask: u32,
    pub filter: TargetFilter,
    pub ebpf_log: bool,
    /// How long a request waits for its reply before it is reported unanswered.
    pub reply_timeout: Duration,
    /// Print a line per hop (text mode); paths are always printed.
    pub hops: bool,
    /// Also count on the traced links and serve the counters here (as `serve` does).
    pub metrics: Option<std::net::SocketAddr>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TraceSummary {
    pub events: u64,
    pub lost: u64,
    pub paths: u64,
    /// Events left in the rings, unread, when stopping took longer than [`STOP_DRAIN`].
    pub unread: u64,
}

/// How long the trace goes on reading events already in its rings once told to stop:
/// after a flood the 16 MiB ring holds ~100,000 events, a second or more of work, and a
/// trace asked to stop should stop; what is left is counted (`unread`), not shown.
pub const STOP_DRAIN: Duration = Duration::from_millis(250);

/// A protocol `trace` can follow (`--proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    Arp,
    Icmp,
    Icmpv6,
}

impl Proto {
    /// The trace programs' filter for these protocols; none means all.
    pub fn mask_of(protos: &[Proto]) -> u32 {
        let mask = protos.iter().fold(0, |m, p| {
            m | match p {
                Proto::Arp => proto_mask::ARP,
                Proto::Icmp => proto_mask::ICMP,
                Proto::Icmpv6 => proto_mask::ICMPV6,
            }
        });
        if mask == 0 { proto_mask::ALL } else { mask }
    }
}

/// CLOCK_MONOTONIC in ns: the clock of `bpf_ktime_get_ns`, so event times compare.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Registers a map's fd (trace ring, kernel log) with the runtime for readiness.
fn readable<T: std::os::fd::AsRawFd>(inner: T) -> std::io::Result<AsyncFd<T>> {
    // SAFETY: the fd belongs to `inner`, which the AsyncFd owns from here on, so it stays
    // open and unchanged for the AsyncFd's whole life.
    unsafe { AsyncFd::register(inner) }.map_err(|e| e.into_parts().1)
}

/// The impairment program's events of a lab (its pinned ring). `None` when no end of the
/// lab has the program yet: nothing to read (retried while the trace runs, since an
/// impairment can be set later).
fn open_impair_ring(lab: &str) -> Option<AsyncFd<TraceRing>> {
    let pin = crate::impair::events_pin(lab);
    // Ours or nothing: a symlink planted in its place is not followed.
    if std::fs::symlink_metadata(&pin)
        .ok()?
        .file_type()
        .is_symlink()
    {
        tracing::warn!(
            "{} is a symlink: impairment events not traced",
            pin.display()
        );
        return None;
    }
    match TraceRing::open_pinned(&pin)
        .and_then(|r| readable(r).map_err(|e| ProbeError::ring(names::map::IMPAIR_EVENTS, e)))
    {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(
                "impairment events of lab {lab} not traced: {}",
                crate::errors::Chain(&e)
            );
            None
        }
    }
}

/// A trace with every program attached, ready to follow.
pub struct Session {
    opts: TraceOptions,
    /// Counting programs and the HTTP server of `--metrics`, as long as the trace.
    _exporter: Option<crate::metrics::Exporter>,
    /// The trace programs' TC filters on lab interfaces: removed when dropped.
    _observers: probe::TcObservers,
    ring: AsyncFd<TraceRing>,
    logger: Option<AsyncFd<KernelLog>>,
    /// Packets an impairment drops, duplicates or corrupts, reported by its own program.
    impair: Option<AsyncFd<TraceRing>>,
    targets: Vec<Target>,
    programs: usize,
    /// Just before the attach: impairment events older than this were left in the lab's
    /// ring by earlier traffic, and hop times in text count from it.
    started_ns: u64,
    pcap: Option<PcapOut>,
    /// The kernel's drop reasons for unanswered paths of a lab (skb:kfree_skb).
    drops: Option<crate::diagnose::explain::DropWatch>,
    /// Last: dropping it detaches the programs, after the rings and counters are gone.
    probe: Probe,
}

impl Session {
    /// Finds the lab's interfaces, loads the programs and attaches them all; when it
    /// returns, every packet of the lab is traced.
    pub async fn start(opts: TraceOptions) -> Result<Self, TraceError> {
        let targets = match &opts.lab {
            Some(lab) => probe::lab_targets(lab, &opts.filter).await?,
            None => probe::host_targets(&opts.filter).await?,
        };
        if targets.is_empty() {
            return Err(TraceError::NoTargets(match &opts.lab {
                Some(lab) => format!("lab {lab} has no interface matching the filters"),
                None => "no veth interfaces on this host".into(),
            }));
        }
        // Before attaching: a path that cannot be written fails at once.
        let pcap = match &opts.pcap {
            Some(path) => {
                let f = crate::safefs::create_output(path)?;
                Some((
                    pcapng::PcapngWriter::new(std::io::BufWriter::new(f))?,
                    pcapng::monotonic_to_realtime_offset_ns(),
                ))
            }
            None => None,
        };
        let mut probe = Probe::load(LoadOptions {
            ebpf_log: opts.ebpf_log,
            ..Default::default()
        })?;
        probe.set_trace_config(TraceConfig {
            proto_mask: opts.proto_mask,
            capture: u32::from(opts.pcap.is_some()),
        })?;
        let logger = if opts.ebpf_log {
            probe.take_kernel_log().ok().and_then(|l| readable(l).ok())
        } else {
            None
        };
        let started_ns = monotonic_ns();
        // Lab interfaces get legacy TC filters (batched; removed when the session goes),
        // others TCX links (see probe::observer_uses_tc).
        let (observers, attached) = probe.attach_observer_everywhere(Observer::Trace, &targets)?;
        let ring = readable(probe.take_trace_ring()?)
            .map_err(|e| ProbeError::ring(vethscope_common::names::map::TRACE_EVENTS, e))?;
        let exporter = match opts.metrics {
            Some(addr) => Some(
                crate::metrics::Exporter::start(&mut probe, &targets, opts.lab.as_deref(), addr)
                    .await?,
            ),
            None => None,
        };
        let impair = opts.lab.as_deref().and_then(open_impair_ring);
        // Attached here, before the caller says "tracing": drops from the first packet on.
        let drops = match &opts.lab {
            Some(_) => crate::diagnose::explain::DropWatch::start_for_trace(&mut probe, &targets),
            None => None,
        };
        Ok(Session {
            drops,
            opts,
            _exporter: exporter,
            _observers: observers,
            ring,
            logger,
            impair,
            targets,
            programs: attached,
            started_ns,
            pcap,
            probe,
        })
    }

    /// Interfaces traced.
    pub fn interfaces(&self) -> usize {
        self.targets.len()
    }

    /// TC programs attached.
    pub fn programs(&self) -> usize {
        self.programs
    }

    /// Follows the lab, writing hops and paths to `out`, until `stop` completes (or
    /// `--duration` / `--count` ends it); then reports every open path and the summary.
    pub async fn run<W: Write>(
        mut self,
        out: &mut W,
        stop: impl Future<Output = ()>,
    ) -> Result<TraceSummary, TraceError> {
        // Hops between the attach and this call (the caller announced the trace,
        // started a command) are timed from the attach, not shown before zero.
        let sink = Sink::new(out, &self.opts, self.pcap.take(), self.started_ns);
        let opts = self.opts.clone();
        let mut follower = Follower::new(&opts, resolve::Resolver::new(&self.targets), sink);
        follower.set_drops(self.drops.take());
        let impair_source = Source::Impair {
            since_ns: self.started_ns,
        };
        let deadline = opts.duration.map(|d| tokio::time::Instant::now() + d);
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut ticks: u64 = 0;
        tokio::pin!(stop);
        loop {
            // In this order, not at random: under a flood the ring is always ready, and
            // a stop (or a tick's reporting) must not wait behind a string of batches
            // on a CPU the flood keeps busy.
            tokio::select! {
                biased;
                () = &mut stop => break,
                guard = async { match self.impair.as_mut() { Some(r) => r.readable_mut().await, None => std::future::pending().await } } => {
                    let mut guard = guard?;
                    if follower.drain(guard.get_inner_mut(), impair_source)? {
                        guard.clear_ready();
                    }
                }
                guard = async { match self.logger.as_mut() { Some(l) => l.readable_mut().await, None => std::future::pending().await } } => {
                    let mut guard = guard?;
                    guard.get_inner_mut().flush();
                    guard.clear_ready();
                }
                _ = tick.tick() => {
                    follower.sink.out.flush()?;
                    ticks += 1;
                    // An impairment set after the trace started brings its ring along.
                    if self.impair.is_none() && ticks.is_multiple_of(20) {
                        self.impair = opts.lab.as_deref().and_then(open_impair_ring);
                    }
                    if follower.report_ready().await? {
                        break;
                    }
                    if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                        break;
                    }
                }
                // Readiness is cleared only once a ring is empty: a batch that left
                // events behind comes straight back, after the other branches had a turn.
                guard = self.ring.readable_mut() => {
                    let mut guard = guard?;
                    if follower.drain(guard.get_inner_mut(), Source::Trace)? {
                        guard.clear_ready();
                    }
                }
            }
        }
        // Events still in the rings (for at most STOP_DRAIN), then every open path.
        tracing::debug!("trace: stopping");
        let until = std::time::Instant::now() + STOP_DRAIN;
        follower.drain_until(self.ring.get_mut(), Source::Trace, until)?;
        if let Some(r) = self.impair.as_mut() {
            follower.drain_until(r.get_mut(), impair_source, until)?;
        }
        tracing::debug!("trace: rings drained");
        let lost = self.probe.trace_events_lost()?;
        Ok(follower.finish(lost).await?)
    }
}
