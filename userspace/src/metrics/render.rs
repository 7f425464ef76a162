//! The per-link families, written as text straight from batched map reads: packets and
//! bytes (`vethscope_link_packets_total`, `..._bytes_total`: 24 series per link, ~12 MB
//! at 3,000 links, nearly all of a scrape), drops per reason and the fast path's
//! counters per bridge port:
//! - the label block of each link is rendered when the link list changes (`LinkTable`),
//!   and the sorted order of links is kept until it changes again (`Layout`);
//! - a scrape only reads the map into one array of counters per link (`Snapshot`,
//!   ~200 bytes a link, one instant for every series);
//! - the text is made while it is sent (`SnapshotBody`), 64 KiB at a time, each line
//!   four copies and a number: the whole body never exists at once, and its exact
//!   length is known beforehand (a `Content-Length`, not chunked);
//! - the drop and fast-path families (a few series per link) are written whole at
//!   scrape time, ahead of the registry's small families.
//!
//! The map is read with `BPF_MAP_LOOKUP_BATCH` (thousands of keys per syscall) instead
//! of one "next key" and one lookup syscall per key.

use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    os::fd::{AsRawFd, OwnedFd},
    pin::Pin,
    sync::{Arc, RwLock},
    task::{Context, Poll},
};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use vethscope_common::{
    FastpathCounters, LinkCounters, LinkCounts, LinkKey, class,
    names::map::{DROP_COUNTERS, LINK_COUNTERS},
};

use super::{
    LinkTable, MetricsError,
    collector::{
        CLASS_NAMES, DROPS, FASTPATH_PASSED, FASTPATH_REDIRECTS, HELP_BYTES, HELP_DROPS,
        HELP_PACKETS, HELP_PASSED, HELP_REDIRECTS, LINK_BYTES, LINK_PACKETS,
    },
    links::{LinkId, escape_into},
    openmetrics::Format,
};

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
/// Keys per batch call, at most; at least a hash bucket's worth (else ENOSPC).
const BATCH: usize = 4096;
/// Bytes of values per batch call, at most: a link's value is 192 bytes per CPU, so on a
/// host with many CPUs fewer keys fit in one call.
const BATCH_VALUE_BYTES: usize = 1 << 20;
/// Bytes of text made per step of the body: large enough that a step's overhead
/// does not count, small enough that a slow client holds little.
const CHUNK: usize = 64 * 1024;
const DIRECTIONS: [&str; 2] = ["ingress", "egress"];

/// `union bpf_attr` for the `BPF_MAP_*_BATCH` commands.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Counters of one link: [direction][class] (the map's value, summed over CPUs).
type LinkSlots = [[LinkCounters; class::COUNT]; 2];

/// The links of the table in exposition order (by label block), with where each
/// one's counters go; rebuilt only when the table's generation moves.
struct Layout {
    generation: u64,
    /// All labels of each link, and `lab`/`netns`/`ifname` alone.
    blocks: Vec<Arc<str>>,
    shorts: Vec<Arc<str>>,
    index: HashMap<LinkId, usize>,
    /// Host-side bridge ports of each lab (position, ifindex): every one gets both
    /// fast-path series, 0 while the fast path is off, so dashboards can tell "off"
    /// from "not monitored".
    fastpath: BTreeMap<String, Vec<(usize, u32)>>,
}

impl Layout {
    fn of(table: &LinkTable) -> Self {
        let mut links: Vec<_> = table.entries().collect();
        links.sort_unstable_by(|a, b| a.1.block.cmp(&b.1.block));
        let mut fastpath: BTreeMap<String, Vec<(usize, u32)>> = BTreeMap::new();
        for (i, (id, e)) in links.iter().enumerate() {
            if e.labels.is_fastpath_port() {
                fastpath
                    .entry(e.labels.lab.clone())
                    .or_default()
                    .push((i, id.1));
            }
        }
        Self {
            generation: table.generation(),
            index: links
                .iter()
                .enumerate()
                .map(|(i, (id, _))| (**id, i))
                .collect(),
            blocks: links.iter().map(|(_, e)| e.block.clone()).collect(),
            shorts: links.iter().map(|(_, e)| e.short.clone()).collect(),
            fastpath,
        }
    }
}

/// What one family's lines share: `NAME{` and, per (direction, class), the end of the
/// label set up to the value: `,direction="…",class="…"} `.
struct Family {
    open: String,
    header: String,
    tails: [[String; class::COUNT]; 2],
    bytes: bool,
}

fn families(format: Format) -> [Family; 2] {
    [
        (LINK_PACKETS, HELP_PACKETS, false),
        (LINK_BYTES, HELP_BYTES, true),
    ]
    .map(|(name, help, bytes)| {
        let mut header = String::new();
        push_header(format, name, help, &mut header);
        Family {
            open: format!("{name}{{"),
            header,
            tails: std::array::from_fn(|d| {
                std::array::from_fn(|c| {
                    format!(
                        ",direction=\"{}\",class=\"{}\"}} ",
                        DIRECTIONS[d], CLASS_NAMES[c]
                    )
                })
            }),
            bytes,
        }
    })
}

impl Family {
    fn value(&self, v: &LinkCounters) -> u64 {
        if self.bytes { v.bytes } else { v.packets }
    }
}

/// Decimal digits of `v`.
fn digits(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// One scrape's counters of every link, read at one instant, and the small families
/// after them (`tail`, from the registry); rendered by [`SnapshotBody`].
pub struct Snapshot {
    families: Arc<[Family; 2]>,
    layout: Arc<Layout>,
    slots: Vec<LinkSlots>,
    tail: Bytes,
    len: u64,
}

impl Snapshot {
    /// Exact length of the text: the headers and, per line, its fixed parts and the
    /// digits of its value.
    fn length(families: &[Family; 2], layout: &Layout, slots: &[LinkSlots], tail: usize) -> u64 {
        let mut len = tail;
        for f in families {
            len += f.header.len();
            for (block, s) in layout.blocks.iter().zip(slots) {
                for (d, tails) in f.tails.iter().enumerate() {
                    for (c, t) in tails.iter().enumerate() {
                        len += f.open.len() + block.len() + t.len() + digits(f.value(&s[d][c])) + 1;
                    }
                }
            }
        }
        len as u64
    }

    /// Length of the whole text in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The body that writes this snapshot as text (each asker of a scrape gets one).
    pub fn body(self: &Arc<Self>) -> SnapshotBody {
        SnapshotBody {
            snap: self.clone(),
            family: 0,
            link: None,
            left: self.len,
        }
    }
}

/// The text of a [`Snapshot`], made a chunk at a time as the connection sends it.
pub struct SnapshotBody {
    snap: Arc<Snapshot>,
    /// 0 and 1: the two families; 2: the tail; 3: done.
    family: usize,
    /// Next link of the family; `None` while its header is still to be written.
    link: Option<usize>,
    left: u64,
}

impl SnapshotBody {
    /// The next piece of text, `None` at the end.
    fn next_chunk(&mut self) -> Option<Bytes> {
        let snap = &*self.snap;
        if self.family == 2 {
            self.family = 3;
            return (!snap.tail.is_empty()).then(|| snap.tail.clone());
        }
        if self.family > 2 {
            return None;
        }
        let mut out: Vec<u8> = Vec::with_capacity(CHUNK + 4096);
        let mut num = itoa::Buffer::new();
        while self.family < 2 && out.len() < CHUNK {
            let f = &snap.families[self.family];
            let i = match self.link {
                None => {
                    out.extend_from_slice(f.header.as_bytes());
                    0
                }
                Some(i) => i,
            };
            let Some(block) = snap.layout.blocks.get(i) else {
                self.family += 1;
                self.link = None;
                continue;
            };
            let s = &snap.slots[i];
            for (d, tails) in f.tails.iter().enumerate() {
                for (c, t) in tails.iter().enumerate() {
                    out.extend_from_slice(f.open.as_bytes());
                    out.extend_from_slice(block.as_bytes());
                    out.extend_from_slice(t.as_bytes());
                    out.extend_from_slice(num.format(f.value(&s[d][c])).as_bytes());
                    out.push(b'\n');
                }
            }
            self.link = Some(i + 1);
        }
        if out.is_empty() {
            // Both families empty (no links): the tail is next.
            return self.next_chunk();
        }
        Some(Bytes::from(out))
    }
}

impl Body for SnapshotBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let chunk = self.next_chunk();
        if let Some(c) = &chunk {
            self.left = self.left.saturating_sub(c.len() as u64);
        }
        Poll::Ready(chunk.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.family > 2
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// Reads the counting map for scrapes: owned by the one scrape thread, which keeps
/// its buffers and the current layout between scrapes.
pub struct LinkRender {
    table: Arc<RwLock<LinkTable>>,
    map: OwnedFd,
    drops: OwnedFd,
    /// `enum skb_drop_reason` value → name, from this kernel's BTF, escaped.
    reasons: HashMap<u32, String>,
    cpus: usize,
    keys: Vec<u8>,
    values: Vec<u8>,
    layout: Option<Arc<Layout>>,
    families: [Option<Arc<[Family; 2]>>; 2],
}

impl LinkRender {
    /// `map`, `drops`: duplicate fds of the probe's per-link counters and drop
    /// counters maps; `reasons`: the names of drop reasons.
    pub fn open(
        map: OwnedFd,
        drops: OwnedFd,
        reasons: HashMap<u32, String>,
        table: Arc<RwLock<LinkTable>>,
    ) -> Result<Self, MetricsError> {
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| MetricsError::Io(e))?;
        let reasons = reasons
            .into_iter()
            .map(|(k, v)| {
                let mut escaped = String::with_capacity(v.len());
                escape_into(&v, &mut escaped);
                (k, escaped)
            })
            .collect();
        Ok(Self {
            table,
            map,
            drops,
            reasons,
            cpus,
            keys: Vec::new(),
            values: Vec::new(),
            layout: None,
            families: [None, None],
        })
    }

    /// The counters of every link of the table at one instant, to be written in
    /// `format` followed by `tail`: every (direction, class) of every link, 0 until a
    /// packet of that kind passed (a series that appeared with its first packet would
    /// lose that packet's increase in rate()).
    pub fn snapshot(&mut self, format: Format, tail: Bytes) -> Result<Arc<Snapshot>, String> {
        let layout = {
            let table = self.table.read().unwrap_or_else(|e| e.into_inner());
            match &self.layout {
                Some(l) if l.generation == table.generation() => l.clone(),
                _ => {
                    let l = Arc::new(Layout::of(&table));
                    self.layout = Some(l.clone());
                    l
                }
            }
        };
        let mut slots = vec![LinkSlots::default(); layout.blocks.len()];
        self.read(&layout, &mut slots)
            .map_err(|e| format!("read {LINK_COUNTERS}: {e}"))?;
        let drops = self
            .read_drops(&layout)
            .map_err(|e| format!("read {DROP_COUNTERS}: {e}"))?;
        let mut text = String::new();
        write_drops(&self.reasons, format, &layout, &drops, &mut text);
        write_fastpath(format, &layout, &mut text);
        let tail = if text.is_empty() {
            tail
        } else {
            let mut t = text.into_bytes();
            t.extend_from_slice(&tail);
            Bytes::from(t)
        };
        let which = usize::from(format == Format::OpenMetrics);
        let families = self.families[which]
            .get_or_insert_with(|| Arc::new(families(format)))
            .clone();
        let len = Snapshot::length(&families, &layout, &slots, tail.len());
        Ok(Arc::new(Snapshot {
            families,
            layout,
            slots,
            tail,
            len,
        }))
    }

    /// Every entry of the counting map (one per link), summed over CPUs, into the slots
    /// of its link (entries of links not in the layout are skipped).
    fn read(&mut self, layout: &Layout, slots: &mut [LinkSlots]) -> std::io::Result<()> {
        let value_size = std::mem::size_of::<LinkCounts>().next_multiple_of(8);
        let cpus = self.cpus;
        lookup_batch(
            &self.map,
            std::mem::size_of::<LinkKey>(),
            value_size * cpus,
            &mut self.keys,
            &mut self.values,
            |k, values| {
                let cookie = u64::from_ne_bytes(k[0..8].try_into().unwrap_or_default());
                let ifindex = u32::from_ne_bytes(k[8..12].try_into().unwrap_or_default());
                let Some(&at) = layout.index.get(&(cookie, ifindex)) else {
                    return;
                };
                // Stored, not added: a walk restarted by a concurrent delete may
                // return a key twice.
                let mut sum = LinkSlots::default();
                for cpu in values.chunks_exact(value_size).take(cpus) {
                    // `by[direction][class]`: packets then bytes, 16 bytes each.
                    let mut fields = cpu
                        .chunks_exact(8)
                        .map(|v| u64::from_ne_bytes(v.try_into().unwrap_or_default()));
                    for slot in sum.iter_mut().flatten() {
                        let (packets, bytes) = (fields.next(), fields.next());
                        slot.packets = slot.packets.wrapping_add(packets.unwrap_or(0));
                        slot.bytes = slot.bytes.wrapping_add(bytes.unwrap_or(0));
                    }
                }
                slots[at] = sum;
            },
        )
    }

    /// Drops of the links in the layout: (position, reason, total over CPUs), sorted.
    fn read_drops(&mut self, layout: &Layout) -> std::io::Result<Vec<(usize, u32, u64)>> {
        let cpus = self.cpus;
        let mut found: HashMap<(usize, u32), u64> = HashMap::new();
        lookup_batch(
            &self.drops,
            std::mem::size_of::<vethscope_common::DropKey>(),
            8 * cpus,
            &mut self.keys,
            &mut self.values,
            |k, values| {
                let cookie = u64::from_ne_bytes(k[0..8].try_into().unwrap_or_default());
                let ifindex = u32::from_ne_bytes(k[8..12].try_into().unwrap_or_default());
                let reason = u32::from_ne_bytes(k[12..16].try_into().unwrap_or_default());
                let Some(&at) = layout.index.get(&(cookie, ifindex)) else {
                    return;
                };
                let total = values
                    .chunks_exact(8)
                    .take(cpus)
                    .map(|v| u64::from_ne_bytes(v.try_into().unwrap_or_default()))
                    .fold(0u64, u64::wrapping_add);
                // Stored, not added (a key returned twice by a restarted walk).
                found.insert((at, reason), total);
            },
        )?;
        let mut out: Vec<(usize, u32, u64)> =
            found.into_iter().map(|((at, r), n)| (at, r, n)).collect();
        out.sort_unstable();
        Ok(out)
    }
}

/// `vethscope_drops_total` (nothing when no watched link dropped anything).
fn write_drops(
    reasons: &HashMap<u32, String>,
    format: Format,
    layout: &Layout,
    drops: &[(usize, u32, u64)],
    out: &mut String,
) {
    if drops.is_empty() {
        return;
    }
    push_header(format, DROPS, HELP_DROPS, out);
    let mut num = itoa::Buffer::new();
    for &(at, reason, n) in drops {
        out.push_str(DROPS);
        out.push('{');
        out.push_str(&layout.shorts[at]);
        out.push_str(",reason=\"");
        match reasons.get(&reason) {
            Some(name) => out.push_str(name),
            None => {
                out.push_str("reason_");
                out.push_str(num.format(reason));
            }
        }
        out.push_str("\"} ");
        out.push_str(num.format(n));
        out.push('\n');
    }
}

/// `vethscope_fastpath_passed_total` and `..._redirects_total` of every host-side
/// bridge port of a lab, from the lab's pinned statistics map (0 without one).
fn write_fastpath(format: Format, layout: &Layout, out: &mut String) {
    if layout.fastpath.is_empty() {
        return;
    }
    let mut ports: Vec<(usize, FastpathCounters)> = Vec::new();
    for (lab, lab_ports) in &layout.fastpath {
        let stats = crate::fastpath::read_counters(lab).unwrap_or_default();
        for (at, ifindex) in lab_ports {
            ports.push((*at, stats.get(ifindex).copied().unwrap_or_default()));
        }
    }
    ports.sort_unstable_by_key(|(at, _)| *at);
    let mut num = itoa::Buffer::new();
    for (name, help, redirected) in [
        (FASTPATH_PASSED, HELP_PASSED, false),
        (FASTPATH_REDIRECTS, HELP_REDIRECTS, true),
    ] {
        push_header(format, name, help, out);
        for (at, v) in &ports {
            out.push_str(name);
            out.push('{');
            out.push_str(&layout.shorts[*at]);
            out.push_str("} ");
            out.push_str(num.format(if redirected { v.redirected } else { v.passed }));
            out.push('\n');
        }
    }
}

/// Walks a whole hash map with `BPF_MAP_LOOKUP_BATCH` (up to 4,096 entries a call), handing
/// each key and its value bytes (`value_size`: all CPUs' values of a per-CPU map) to
/// `each`. `keys` and `values` are buffers kept between calls.
fn lookup_batch(
    map: &OwnedFd,
    key_size: usize,
    value_size: usize,
    keys: &mut Vec<u8>,
    values: &mut Vec<u8>,
    mut each: impl FnMut(&[u8], &[u8]),
) -> std::io::Result<()> {
    let batch = (BATCH_VALUE_BYTES / value_size).clamp(64, BATCH);
    keys.resize(batch * key_size, 0);
    values.resize(batch * value_size, 0);
    let mut token: u64 = 0;
    let mut first = true;
    loop {
        let mut next: u64 = 0;
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                &token as *const u64 as u64
            },
            out_batch: &mut next as *mut u64 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: batch as u32,
            map_fd: map.as_raw_fd() as u32,
            ..Default::default()
        };
        // SAFETY: bpf(2) with an attr of the stated size whose pointers point at
        // buffers of BATCH keys and BATCH values of the map's sizes, alive for the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &mut attr as *mut BatchAttr,
                std::mem::size_of::<BatchAttr>() as u32,
            )
        };
        let done = if rc < 0 {
            let e = std::io::Error::last_os_error();
            // ENOENT: the walk is over; this last call may still have filled some.
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
            true
        } else {
            false
        };
        for i in 0..(attr.count as usize).min(batch) {
            each(
                &keys[i * key_size..(i + 1) * key_size],
                &values[i * value_size..(i + 1) * value_size],
            );
        }
        if done {
            return Ok(());
        }
        token = next;
        first = false;
    }
}

/// `# HELP`/`# TYPE` of a counter family, as each format wants them (OpenMetrics
/// declares a counter without its `_total`).
fn push_header(format: Format, name: &str, help: &str, out: &mut String) {
    match format {
        Format::Text => {
            for s in ["# HELP ", name, " ", help, "\n# TYPE ", name, " counter\n"] {
                out.push_str(s);
            }
        }
        Format::OpenMetrics => {
            let family = name.strip_suffix("_total").unwrap_or(name);
            for s in [
                "# TYPE ",
                family,
                " counter\n# HELP ",
                family,
                " ",
                help,
                "\n",
            ] {
                out.push_str(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        metrics::links::{LinkLabels, label_block},
        probe::LinkKind,
        topology::HOST,
    };

    #[test]
    fn label_values_are_escaped_in_the_exporters_order() {
        let l = LinkLabels {
            lab: "a".into(),
            netns: "host".into(),
            ifname: "we\"ird\\".into(),
            peer_netns: String::new(),
            peer_ifname: String::new(),
            kind: LinkKind::Veth,
        };
        assert_eq!(
            label_block(&l),
            r#"lab="a",netns="host",ifname="we\"ird\\",peer_netns="",peer_ifname="",kind="veth""#
        );
    }

    #[test]
    fn openmetrics_declares_the_family_without_total() {
        let mut out = String::new();
        push_header(Format::OpenMetrics, LINK_PACKETS, "h", &mut out);
        assert_eq!(
            out,
            "# TYPE vethscope_link_packets counter\n# HELP vethscope_link_packets h\n"
        );
        out.clear();
        push_header(Format::Text, LINK_PACKETS, "h", &mut out);
        assert_eq!(
            out,
            "# HELP vethscope_link_packets_total h\n# TYPE vethscope_link_packets_total counter\n"
        );
    }

    fn labels(ns: &str) -> LinkLabels {
        LinkLabels {
            lab: "a".into(),
            netns: ns.into(),
            ifname: "eth0".into(),
            peer_netns: "host".into(),
            peer_ifname: "p".into(),
            kind: LinkKind::Veth,
        }
    }

    /// The whole text of a snapshot, chunk by chunk, as hyper would send it.
    fn text(snap: &Arc<Snapshot>) -> String {
        let mut body = snap.body();
        let mut out = Vec::new();
        while let Some(c) = body.next_chunk() {
            out.extend_from_slice(&c);
        }
        String::from_utf8(out).expect("utf-8")
    }

    fn snapshot(table: &LinkTable, format: Format, fill: impl Fn(usize) -> u64) -> Arc<Snapshot> {
        let layout = Arc::new(Layout::of(table));
        let slots: Vec<LinkSlots> = (0..layout.blocks.len())
            .map(|i| {
                let mut s = LinkSlots::default();
                for (d, dir) in s.iter_mut().enumerate() {
                    for (c, v) in dir.iter_mut().enumerate() {
                        let n = fill(i * 100 + d * 10 + c);
                        *v = LinkCounters {
                            packets: n,
                            bytes: n * 1000,
                        };
                    }
                }
                s
            })
            .collect();
        let families = Arc::new(families(format));
        let tail = Bytes::from_static(b"# EOF\n");
        let len = Snapshot::length(&families, &layout, &slots, tail.len());
        Arc::new(Snapshot {
            families,
            layout,
            slots,
            tail,
            len,
        })
    }

    #[test]
    fn the_body_is_every_series_sorted_by_labels_and_exactly_as_long_as_announced() {
        let mut table = LinkTable::new(["a".to_string()]);
        // Enough links for several chunks, inserted out of order.
        for i in (0..700u32).rev() {
            table.insert((7, i), labels(&format!("ns{i}")));
        }
        let snap = snapshot(&table, Format::Text, |k| k as u64);
        let text = text(&snap);
        assert_eq!(text.len() as u64, snap.len());
        assert!(snap.len() > 3 * CHUNK as u64, "several chunks");
        let lines: Vec<&str> = text.lines().collect();
        // 12 series per link in each family (direction × class).
        assert_eq!(lines.len(), 2 * (2 + 700 * 12) + 1);
        assert_eq!(
            lines[2],
            r#"vethscope_link_packets_total{lab="a",netns="ns0",ifname="eth0",peer_netns="host",peer_ifname="p",kind="veth",direction="ingress",class="arp"} 0"#
        );
        assert_eq!(
            lines[2 + 11],
            r#"vethscope_link_packets_total{lab="a",netns="ns0",ifname="eth0",peer_netns="host",peer_ifname="p",kind="veth",direction="egress",class="other"} 15"#
        );
        // ns1 < ns10 < ns100 < … by label block, each link's series together.
        assert!(lines[2 + 12].contains(r#"netns="ns1""#));
        assert!(lines[2 + 24].contains(r#"netns="ns10""#));
        let bytes_header = 2 + 700 * 12;
        assert!(lines[bytes_header].starts_with("# HELP vethscope_link_bytes_total"));
        assert!(lines[bytes_header + 2 + 11].ends_with("} 15000"));
        assert_eq!(*lines.last().expect("a line"), "# EOF");
    }

    #[test]
    fn an_empty_table_is_the_headers_and_the_tail() {
        let table = LinkTable::new(["a".to_string()]);
        let snap = snapshot(&table, Format::OpenMetrics, |_| 0);
        let text = text(&snap);
        assert_eq!(text.len() as u64, snap.len());
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 2);
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn drops_and_fast_path_ports_are_written_with_their_short_labels() {
        let mut table = LinkTable::new(["a".to_string()]);
        table.insert((7, 1), labels("ns1"));
        let mut port = labels(HOST);
        port.ifname = "we\"ird".into();
        port.kind = LinkKind::BridgePort;
        table.insert((1, 9), port);
        let layout = Layout::of(&table);
        let at = layout.index[&(7, 1)];
        let reasons = HashMap::from([(2, "NOT_SPECIFIED".to_string())]);
        let mut out = String::new();
        write_drops(
            &reasons,
            Format::Text,
            &layout,
            &[(at, 2, 5), (at, 77, 1)],
            &mut out,
        );
        // A lab nobody enabled the fast path on: no pinned map, both series at 0.
        write_fastpath(Format::Text, &layout, &mut out);
        let series: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            series,
            [
                r#"vethscope_drops_total{lab="a",netns="ns1",ifname="eth0",reason="NOT_SPECIFIED"} 5"#,
                r#"vethscope_drops_total{lab="a",netns="ns1",ifname="eth0",reason="reason_77"} 1"#,
                r#"vethscope_fastpath_passed_total{lab="a",netns="host",ifname="we\"ird"} 0"#,
                r#"vethscope_fastpath_redirects_total{lab="a",netns="host",ifname="we\"ird"} 0"#,
            ]
        );
        assert_eq!(out.lines().filter(|l| l.starts_with("# TYPE")).count(), 3);
        let mut none = String::new();
        write_drops(&reasons, Format::Text, &layout, &[], &mut none);
        assert!(none.is_empty(), "no drops: no family");
    }

    #[test]
    fn digits_are_counted_like_itoa_writes_them() {
        let mut b = itoa::Buffer::new();
        for v in [0, 1, 9, 10, 99, 100, 12345, u64::MAX / 3, u64::MAX] {
            assert_eq!(digits(v), b.format(v).len(), "{v}");
        }
    }
}
