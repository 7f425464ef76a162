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

    /// Takes every event waiting in a ring: each becomes a hop, printed and correlated.
    pub(super) fn drain(&mut self, ring: &mut TraceRing, source: Source) -> std::io::Result<()> {
        // Read at most once per batch: the settings can change while the trace runs.
        let mut record: Option<crate::impair::Record> = None;
        while let Some(item) = ring.next_event() {
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
        Ok(())
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
        let ready = self.correlator.ready(monotonic_ns());
        self.report(ready).await
    }

    async fn report(&mut self, paths: Vec<Path>) -> std::io::Result<bool> {
        for mut p in paths {
            if self.count_reached() {
                break;
            }
            if let Some(x) = self.explainer.as_mut() {
                p.findings = x.findings(&p).await;
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
        let open = self.correlator.drain();
        self.report(open).await?;
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
