//! Following a running trace: events from the rings become hops (printed as they come),
//! hops become paths (printed when complete), and the summary closes the output.

use std::io::{BufWriter, Write};

use vethscope_common::proto_mask;

use super::{
    TraceOptions, TraceSummary, event, monotonic_ns, output,
    paths::{Correlator, Path},
    pcapng,
    resolve::Resolver,
};
use crate::probe::TraceRing;

/// Events taken from a ring before the follower looks at its other sources again (the
/// stop signal among them): a few milliseconds of work.
const BATCH_EVENTS: u32 = 1024;
/// Paths reported per tick at most (each unanswered one gets findings and drop reasons):
/// under a flood thousands are ready at once, and the follower must get back to its
/// rings and to the stop signal.
const REPORT_PER_TICK: usize = 1024;
/// Events a stopping trace takes from a ring at most: more than the 16 MiB ring holds.
const STOP_DRAIN_EVENTS: u32 = 1 << 20;

/// Which ring events come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// The trace's own TC programs: every event is a hop.
    Trace,
    /// The lab's impairment program: events of the traced protocols newer than the
    /// trace, each an impaired hop.
    Impair { since_ns: u64 },
}

/// A pcapng file being written, and the offset from monotonic to wall-clock time.
pub(super) type PcapOut = (pcapng::PcapngWriter<BufWriter<std::fs::File>>, i128);

/// Where output goes: text or NDJSON on `out`, and optionally a pcapng file.
pub(super) struct Sink<'w, W: Write> {
    /// Buffered: a flood of hops must not cost a write(2) per line; flushed every tick.
    pub(super) out: BufWriter<&'w mut W>,
    json: bool,
    hops: bool,
    t0: u64,
    pcap: Option<PcapOut>,
}

impl<'w, W: Write> Sink<'w, W> {
    /// `t0_ns`: when tracing started (hop times in text are relative to it).
    pub(super) fn new(
        out: &'w mut W,
        opts: &TraceOptions,
        pcap: Option<PcapOut>,
        t0_ns: u64,
    ) -> Self {
        Sink {
            out: BufWriter::with_capacity(1 << 16, out),
            json: opts.json,
            hops: opts.hops,
            t0: t0_ns,
            pcap,
        }
    }

    fn hop(&mut self, h: &event::Hop) -> std::io::Result<()> {
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
            output::write_path_json(&mut self.out, p)
        } else {
            writeln!(self.out, "{}", output::path_text(p))
        }
    }
}

/// The state of a running trace between the rings and the output.
pub(super) struct Follower<'o, 'w, W: Write> {
    opts: &'o TraceOptions,
    resolver: Resolver,
    pub(super) sink: Sink<'w, W>,
    correlator: Correlator,
    /// Unanswered paths of a lab get the diagnose engine's findings.
    explainer: Option<crate::diagnose::explain::Explainer>,
    pub(super) summary: TraceSummary,
}

impl<'o, 'w, W: Write> Follower<'o, 'w, W> {
    pub(super) fn new(opts: &'o TraceOptions, resolver: Resolver, sink: Sink<'w, W>) -> Self {
        Follower {
            opts,
            resolver,
            sink,
            correlator: Correlator::new(opts.reply_timeout.as_nanos() as u64),
            explainer: opts
                .lab
                .as_deref()
                .map(crate::diagnose::explain::Explainer::new),
            summary: TraceSummary::default(),
        }
    }

    /// The kernel's drop reasons for unanswered paths (a lab trace's drop watcher).
    pub(super) fn set_drops(&mut self, drops: Option<crate::diagnose::explain::DropWatch>) {
        if let Some(x) = self.explainer.as_mut() {
            x.set_drops(drops);
        }
    }

    /// Takes up to [`BATCH_EVENTS`] events waiting in a ring: each becomes a hop, printed
    /// and correlated. `true`: the ring is empty (else the caller comes back for more, after
    /// looking at its other sources: under a flood the ring never empties, and a drain
    /// that went on until it did would not see a stop signal for seconds).
    pub(super) fn drain(&mut self, ring: &mut TraceRing, source: Source) -> std::io::Result<bool> {
        self.drain_inner(ring, source, None, BATCH_EVENTS)
    }

    /// The same until `until`; events still there after it are taken and counted as
    /// unread (the trace is stopping).
    pub(super) fn drain_until(
        &mut self,
        ring: &mut TraceRing,
        source: Source,
        until: std::time::Instant,
    ) -> std::io::Result<()> {
        // Bounded even while the programs still write: reading an event to count it is far
        // quicker than a packet making one, but a stop must end whatever the producers do.
        self.drain_inner(ring, source, Some(until), STOP_DRAIN_EVENTS)
            .map(|_| ())
    }

    fn drain_inner(
        &mut self,
        ring: &mut TraceRing,
        source: Source,
        until: Option<std::time::Instant>,
        most: u32,
    ) -> std::io::Result<bool> {
        // Read at most once per batch: the settings can change while the trace runs.
        let mut record: Option<crate::impair::Record> = None;
        let (mut read, mut out_of_time) = (0u32, false);
        while read < most {
            let Some(item) = ring.next_event() else {
                return Ok(true);
            };
            // The clock is read every 256 events, not per event.
            read = read.wrapping_add(1);
            out_of_time = out_of_time
                || (read.is_multiple_of(256)
                    && until.is_some_and(|u| std::time::Instant::now() >= u));
            if out_of_time {
                self.summary.unread += 1;
                continue;
            }
            let hop = match source {
                Source::Trace => {
                    self.summary.events += 1;
                    self.resolver.hop(&item)
                }
                Source::Impair { since_ns } => {
                    let Some(action) = self.impaired_action(&item, since_ns) else {
                        continue;
                    };
                    self.summary.events += 1;
                    self.resolver.hop(&item).map(|mut hop| {
                        let rec = record.get_or_insert_with(|| self.impair_record());
                        let setting = rec.end(&hop.netns, &hop.ifname).map(|e| &e.impairment);
                        hop.impaired = Some(event::Impaired::new(action, setting));
                        hop
                    })
                }
            };
            if let Some(hop) = hop {
                self.sink.hop(&hop)?;
                self.correlator.push(hop);
            }
        }
        Ok(false)
    }

    /// What the impairment did to the packet of an impairment event, when the event is
    /// one to show: newer than the trace, of a protocol `--proto` asks for.
    fn impaired_action(&self, item: &[u8], since_ns: u64) -> Option<&'static str> {
        let ev = event::parse_event(item)?;
        let action = event::Impaired::action_of(ev.flags)?;
        // The impairment program reports every traced protocol: `--proto` applies here.
        let mask = match ev.proto {
            vethscope_common::proto::ARP => proto_mask::ARP,
            vethscope_common::proto::ICMP => proto_mask::ICMP,
            vethscope_common::proto::ICMPV6 => proto_mask::ICMPV6,
            _ => 0,
        };
        (ev.ts_ns >= since_ns && mask & self.opts.proto_mask != 0).then_some(action)
    }

    fn impair_record(&self) -> crate::impair::Record {
        let lab = self.opts.lab.as_deref().unwrap_or_default();
        crate::impair::record::read(lab).unwrap_or_else(|e| {
            tracing::warn!("{}", crate::errors::Chain(&e));
            crate::impair::Record::default()
        })
    }

    /// Prints the paths complete by now; true once `--count` paths were printed.
    pub(super) async fn report_ready(&mut self) -> std::io::Result<bool> {
        // Drop events leave the kernel's ring every tick, so it never fills while paths
        // wait for their verdict.
        if let Some(x) = self.explainer.as_mut() {
            x.poll_drops();
        }
        let ready = self
            .correlator
            .ready_at_most(monotonic_ns(), REPORT_PER_TICK);
        self.report(ready, None).await
    }

    /// Prints `paths`, each unanswered one with its findings and drop reasons; after
    /// `explain_until` (a stopping trace), without them.
    async fn report(
        &mut self,
        paths: Vec<Path>,
        explain_until: Option<std::time::Instant>,
    ) -> std::io::Result<bool> {
        let mut in_time = true;
        for (i, mut p) in paths.into_iter().enumerate() {
            if self.count_reached() {
                break;
            }
            if i % 64 == 0
                && let Some(until) = explain_until
            {
                in_time = std::time::Instant::now() < until;
            }
            if let Some(x) = self.explainer.as_mut().filter(|_| in_time) {
                x.explain(&mut p).await;
            }
            self.sink.path(&p)?;
            self.summary.paths += 1;
        }
        Ok(self.count_reached())
    }

    fn count_reached(&self) -> bool {
        self.opts
            .count
            .is_some_and(|c| self.summary.paths >= c as u64)
    }

    /// Every path still open (the trace is stopping), then the summary line.
    pub(super) async fn finish(mut self, lost: u64) -> std::io::Result<TraceSummary> {
        // A flood leaves thousands of paths open (replies not yet seen, or their events
        // lost): explaining each costs ~40 µs, so only those that fit in STOP_DRAIN are.
        let open = self.correlator.drain();
        tracing::debug!("trace: reporting {} open paths", open.len());
        let until = std::time::Instant::now() + super::STOP_DRAIN;
        self.report(open, Some(until)).await?;
        tracing::debug!("trace: open paths reported");
        self.summary.lost = lost;
        if let Some((w, _)) = &mut self.sink.pcap {
            w.flush()?;
        }
        let line = output::SummaryLine::new(&self.summary, self.correlator.bounds());
        if self.opts.json {
            line.write_json(&mut self.sink.out)?;
        } else {
            writeln!(self.sink.out, "{}", line.text())?;
        }
        self.sink.out.flush()?;
        Ok(self.summary)
    }
}
