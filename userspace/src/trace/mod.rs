//! `vethscope trace`: TC programs on every link of a lab follow each ARP and ICMP
//! packet hop by hop; userspace correlates hops into paths and prints them.

pub mod event;
pub mod output;
pub mod paths;
pub mod pcapng;

use std::{
    collections::HashMap,
    io::{BufWriter, Write},
    path::PathBuf,
    time::Duration,
};

use std::sync::Arc;

use tokio::io::unix::AsyncFd;
use vethscope_common::{TraceConfig, names, proto_mask};

use crate::probe::{
    self, LoadOptions, Observer, Position, Probe, ProbeError, Target, TargetFilter, TraceRing,
};
use event::Hop;
use paths::{Correlator, Path};

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
}

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

/// Interface names by (namespace cookie, ifindex), plus namespace inodes.
struct Resolver {
    names: HashMap<(u64, u32), (Arc<str>, Arc<str>)>,
    inodes: HashMap<Arc<str>, u64>,
}

impl Resolver {
    fn new(targets: &[Target]) -> Self {
        let mut inodes: HashMap<Arc<str>, u64> = HashMap::new();
        let mut names = HashMap::new();
        for t in targets {
            let netns: Arc<str> = match inodes.get_key_value(t.netns.as_str()) {
                Some((k, _)) => Arc::clone(k),
                None => {
                    let k: Arc<str> = Arc::from(t.netns.as_str());
                    inodes.insert(Arc::clone(&k), crate::netns::inode(&t.netns).unwrap_or(0));
                    k
                }
            };
            names.insert((t.cookie, t.ifindex), (netns, Arc::from(t.ifname.as_str())));
        }
        Self { names, inodes }
    }

    fn hop(&self, bytes: &[u8]) -> Option<Hop> {
        let ev = event::parse_event(bytes)?;
        let Some((netns, ifname)) = self.names.get(&(ev.netns_cookie, ev.ifindex)) else {
            tracing::debug!(
                "event from unknown interface: cookie {} ifindex {} dir {}",
                ev.netns_cookie,
                ev.ifindex,
                ev.direction
            );
            return None;
        };
        event::to_hop(
            &ev,
            netns,
            self.inodes.get(netns).copied().unwrap_or(0),
            ifname,
        )
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

/// Where output goes: text or NDJSON on `out`, and optionally a pcapng file.
struct Sink<'w, W: Write> {
    /// Buffered: a flood of hops must not cost a write(2) per line; flushed every tick.
    out: BufWriter<&'w mut W>,
    json: bool,
    hops: bool,
    t0: u64,
    pcap: Option<(
        pcapng::PcapngWriter<std::io::BufWriter<std::fs::File>>,
        i128,
    )>,
}

impl<W: Write> Sink<'_, W> {
    fn hop(&mut self, h: &Hop) -> std::io::Result<()> {
        if self.json {
            output::write_hop_json(&mut self.out, h)?;
        } else if self.hops {
            writeln!(self.out, "{}", output::hop_text(h, self.t0))?;
        }
        if let Some((w, offset)) = &mut self.pcap {
            let id = w.interface(&h.netns, &h.ifname)?;
            let dir = if h.egress {
                pcapng::Direction::Outbound
            } else {
                pcapng::Direction::Inbound
            };
            w.packet(
                id,
                pcapng::monotonic_to_realtime_ns(h.ts_ns, *offset),
                h.len,
                &h.frame,
                dir,
            )?;
        }
        Ok(())
    }

    fn path(&mut self, p: &Path) -> std::io::Result<()> {
        if self.json {
            output::write_path_json(&mut self.out, p)?;
        } else {
            writeln!(self.out, "{}", output::path_text(p))?;
        }
        Ok(())
    }
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

/// Takes every event waiting in the impairment ring: each becomes an impaired hop.
fn drain_impair_ring<W: Write>(
    ring: &mut TraceRing,
    opts: &TraceOptions,
    since_ns: u64,
    resolver: &Resolver,
    sink: &mut Sink<'_, W>,
    correlator: &mut Correlator,
    summary: &mut TraceSummary,
) -> std::io::Result<()> {
    // Read once per batch: the settings can change while the trace runs.
    let mut record: Option<crate::impair::Record> = None;
    while let Some(item) = ring.next_event() {
        let Some(ev) = event::parse_event(&item) else {
            continue;
        };
        let Some(action) = event::Impaired::action_of(ev.flags) else {
            continue;
        };
        // The impairment program reports every traced protocol: `--proto` applies here.
        let mask = match ev.proto {
            vethscope_common::proto::ARP => proto_mask::ARP,
            vethscope_common::proto::ICMP => proto_mask::ICMP,
            vethscope_common::proto::ICMPV6 => proto_mask::ICMPV6,
            _ => 0,
        };
        if ev.ts_ns < since_ns || mask & opts.proto_mask == 0 {
            continue;
        }
        summary.events += 1;
        let Some(mut hop) = resolver.hop(&item) else {
            continue;
        };
        let rec = record.get_or_insert_with(|| {
            let lab = opts.lab.as_deref().unwrap_or_default();
            crate::impair::record::read(lab).unwrap_or_else(|e| {
                tracing::warn!("{}", crate::errors::Chain(&e));
                crate::impair::Record::default()
            })
        });
        let setting = rec.end(&hop.netns, &hop.ifname).map(|e| &e.impairment);
        hop.impaired = Some(event::Impaired::new(action, setting));
        sink.hop(&hop)?;
        correlator.push(hop);
    }
    Ok(())
}

/// Takes every event waiting in the ring: each becomes a hop, printed and correlated.
fn drain_ring<W: Write>(
    ring: &mut TraceRing,
    resolver: &Resolver,
    sink: &mut Sink<'_, W>,
    correlator: &mut Correlator,
    summary: &mut TraceSummary,
) -> std::io::Result<()> {
    while let Some(item) = ring.next_event() {
        summary.events += 1;
        if let Some(hop) = resolver.hop(&item) {
            sink.hop(&hop)?;
            correlator.push(hop);
        }
    }
    Ok(())
}

/// Runs a trace until Ctrl-C / SIGTERM, `duration`, or `count` paths.
pub async fn run<W: Write>(opts: &TraceOptions, out: &mut W) -> Result<TraceSummary, TraceError> {
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
    let mut probe = Probe::load(LoadOptions {
        ebpf_log: opts.ebpf_log,
        ..Default::default()
    })?;
    probe.set_trace_config(TraceConfig {
        proto_mask: opts.proto_mask,
        capture: u32::from(opts.pcap.is_some()),
    })?;
    let mut logger = if opts.ebpf_log {
        probe.take_kernel_log().ok().and_then(|l| readable(l).ok())
    } else {
        None
    };
    // Impairment events older than this were left in the lab's ring by earlier traffic.
    let started_ns = monotonic_ns();
    let attached = probe.attach_observer(Observer::Trace, &targets, Position::First)?;
    let mut ring = readable(probe.take_trace_ring()?)
        .map_err(|e| ProbeError::ring(vethscope_common::names::map::TRACE_EVENTS, e))?;
    // Counting programs and the HTTP server live as long as the trace (dropped on return).
    let _exporter = match opts.metrics {
        Some(addr) => Some(
            crate::metrics::Exporter::start(&mut probe, &targets, opts.lab.as_deref(), addr)
                .await?,
        ),
        None => None,
    };
    eprintln!(
        "vethscope: tracing {} interfaces ({attached} TC programs){}{} — Ctrl-C to stop",
        targets.len(),
        opts.lab
            .as_ref()
            .map(|l| format!(" of lab {l}"))
            .unwrap_or_default(),
        opts.metrics
            .map(|a| format!(", counters on http://{a}/metrics"))
            .unwrap_or_default()
    );

    // Packets an impairment drops, duplicates or corrupts, reported by its own program.
    let mut impair = opts.lab.as_deref().and_then(open_impair_ring);
    let mut ticks: u64 = 0;
    let resolver = Resolver::new(&targets);
    // Unanswered paths of a lab get the diagnose engine's findings.
    let mut explainer = opts
        .lab
        .as_deref()
        .map(crate::diagnose::explain::Explainer::new);
    let mut correlator = Correlator::new(opts.reply_timeout.as_nanos() as u64);
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
    let mut sink = Sink {
        out: BufWriter::with_capacity(1 << 16, out),
        json: opts.json,
        hops: opts.hops,
        t0: monotonic_ns(),
        pcap,
    };
    let mut summary = TraceSummary::default();
    let deadline = opts.duration.map(|d| tokio::time::Instant::now() + d);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;

    'main: loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                drain_ring(guard.get_inner_mut(), &resolver, &mut sink, &mut correlator, &mut summary)?;
                guard.clear_ready();
            }
            guard = async { match impair.as_mut() { Some(r) => r.readable_mut().await, None => std::future::pending().await } } => {
                let mut guard = guard?;
                drain_impair_ring(guard.get_inner_mut(), opts, started_ns, &resolver, &mut sink, &mut correlator, &mut summary)?;
                guard.clear_ready();
            }
            guard = async { match logger.as_mut() { Some(l) => l.readable_mut().await, None => std::future::pending().await } } => {
                let mut guard = guard?;
                guard.get_inner_mut().flush();
                guard.clear_ready();
            }
            _ = tick.tick() => {
                sink.out.flush()?;
                ticks += 1;
                if impair.is_none() && ticks.is_multiple_of(20) {
                    impair = opts.lab.as_deref().and_then(open_impair_ring);
                }
                for mut p in correlator.ready(monotonic_ns()) {
                    if let Some(x) = explainer.as_mut() {
                        p.findings = x.findings(&p).await;
                    }
                    sink.path(&p)?;
                    summary.paths += 1;
                    if opts.count.is_some_and(|c| summary.paths >= c as u64) {
                        break 'main;
                    }
                }
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    break 'main;
                }
            }
            _ = tokio::signal::ctrl_c() => break 'main,
            _ = sigterm.recv() => break 'main,
        }
    }
    // Events still in the rings, then every open path.
    drain_ring(
        ring.get_mut(),
        &resolver,
        &mut sink,
        &mut correlator,
        &mut summary,
    )?;
    if let Some(r) = impair.as_mut() {
        drain_impair_ring(
            r.get_mut(),
            opts,
            started_ns,
            &resolver,
            &mut sink,
            &mut correlator,
            &mut summary,
        )?;
    }
    if opts.count.is_none_or(|c| summary.paths < c as u64) {
        for mut p in correlator.drain() {
            if let Some(x) = explainer.as_mut() {
                p.findings = x.findings(&p).await;
            }
            sink.path(&p)?;
            summary.paths += 1;
        }
    }
    summary.lost = probe.trace_events_lost()?;
    let bounds = correlator.bounds();
    if let Some((w, _)) = &mut sink.pcap {
        w.flush()?;
    }
    if opts.json {
        writeln!(
            sink.out,
            "{}",
            serde_json::json!({"type": "summary", "events": summary.events, "lost": summary.lost, "paths": summary.paths, "paths_dropped": bounds.paths_dropped, "hops_dropped": bounds.hops_dropped})
        )?;
    } else {
        writeln!(
            sink.out,
            "{} events, {} lost, {} paths{}",
            summary.events,
            summary.lost,
            summary.paths,
            if bounds.paths_dropped + bounds.hops_dropped > 0 {
                format!(
                    " ({} requests and {} hops not followed: at most {} open paths of {} hops each)",
                    bounds.paths_dropped,
                    bounds.hops_dropped,
                    paths::MAX_OPEN_PATHS,
                    paths::MAX_HOPS_PER_PATH
                )
            } else {
                String::new()
            }
        )?;
    }
    sink.out.flush()?;
    Ok(summary)
}
