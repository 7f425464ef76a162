//! The two per-link families (`vethscope_link_packets_total`, `..._bytes_total`), which
//! are nearly all of a scrape (24 series per link), written straight as text from
//! batched map reads: no `MetricFamily` of 24 × links series with eight owned labels
//! each, no second pass to encode it. The other, small families still go through the
//! registry.
//!
//! The map is read with `BPF_MAP_LOOKUP_BATCH` (thousands of keys per syscall) instead
//! of one "next key" and one lookup syscall per key.

use std::{
    collections::HashMap,
    os::fd::{AsRawFd, OwnedFd},
    sync::{Arc, RwLock},
};

use vethscope_common::{LinkCounters, LinkKey, class, names::map::LINK_COUNTERS};

use super::{
    LinkTable, MetricsError,
    collector::{CLASS_NAMES, HELP_BYTES, HELP_PACKETS, LINK_BYTES, LINK_PACKETS},
    links::{LinkId, LinkLabels},
    openmetrics::Format,
};

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
/// Keys per batch call; at least a hash bucket's worth (else ENOSPC).
const BATCH: usize = 4096;

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

/// Counters of one link: [direction][class].
type LinkSlots = [[LinkCounters; class::COUNT]; 2];

pub struct LinkRender {
    table: Arc<RwLock<LinkTable>>,
    map: OwnedFd,
    cpus: usize,
}

impl LinkRender {
    /// `map`: a duplicate fd of the probe's per-link counters map.
    pub fn open(map: OwnedFd, table: Arc<RwLock<LinkTable>>) -> Result<Self, MetricsError> {
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| MetricsError::Io(e))?;
        Ok(Self { table, map, cpus })
    }

    /// Every entry of the map, summed over CPUs, by link.
    fn read(&self) -> std::io::Result<HashMap<LinkId, LinkSlots>> {
        let key_size = std::mem::size_of::<LinkKey>();
        let value_size = std::mem::size_of::<LinkCounters>().next_multiple_of(8);
        let mut keys = vec![0u8; BATCH * key_size];
        let mut values = vec![0u8; BATCH * value_size * self.cpus];
        let mut out: HashMap<LinkId, LinkSlots> = HashMap::new();
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
                count: BATCH as u32,
                map_fd: self.map.as_raw_fd() as u32,
                ..Default::default()
            };
            // SAFETY: bpf(2) with an attr of the stated size whose pointers point at
            // buffers of BATCH keys and BATCH × cpus values, alive for the call.
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
            for i in 0..attr.count as usize {
                let k = &keys[i * key_size..(i + 1) * key_size];
                let key = LinkKey {
                    netns_cookie: u64::from_ne_bytes(k[0..8].try_into().unwrap_or_default()),
                    ifindex: u32::from_ne_bytes(k[8..12].try_into().unwrap_or_default()),
                    direction: k[12],
                    class: k[13],
                    _pad: [0; 2],
                };
                let (dir, c) = (usize::from(key.direction), usize::from(key.class));
                if dir > 1 || c >= class::COUNT {
                    continue;
                }
                let mut sum = LinkCounters::default();
                let base = i * value_size * self.cpus;
                for cpu in 0..self.cpus {
                    let v = &values[base + cpu * value_size..][..16];
                    let packets = u64::from_ne_bytes(v[0..8].try_into().unwrap_or_default());
                    let bytes = u64::from_ne_bytes(v[8..16].try_into().unwrap_or_default());
                    sum.packets = sum.packets.wrapping_add(packets);
                    sum.bytes = sum.bytes.wrapping_add(bytes);
                }
                // Stored, not added: a walk restarted by a concurrent delete may
                // return a key twice.
                out.entry((key.netns_cookie, key.ifindex)).or_default()[dir][c] = sum;
            }
            if done {
                return Ok(out);
            }
            token = next;
            first = false;
        }
    }

    /// Appends both families in `format` to `out`: every (direction, class) of every
    /// link in the table, 0 until a packet of that kind passed (a series that appeared
    /// with its first packet would lose that packet's increase in rate()).
    pub fn render(&self, format: Format, out: &mut String) -> Result<(), String> {
        let counters = self
            .read()
            .map_err(|e| format!("read {LINK_COUNTERS}: {e}"))?;
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        let mut links: Vec<(&LinkLabels, String, Option<&LinkSlots>)> = table
            .iter()
            .map(|(id, l)| (l, label_block(l), counters.get(id)))
            .collect();
        links.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        out.reserve(links.len() * 24 * (links.first().map_or(0, |l| l.1.len()) + 96));
        let zero = LinkSlots::default();
        for (name, help, bytes) in [
            (LINK_PACKETS, HELP_PACKETS, false),
            (LINK_BYTES, HELP_BYTES, true),
        ] {
            header(format, name, help, out);
            for (_, labels, slots) in &links {
                let slots = slots.unwrap_or(&zero);
                for (d, dir) in ["ingress", "egress"].iter().enumerate() {
                    for (c, class_name) in CLASS_NAMES.iter().enumerate() {
                        let v = &slots[d][c];
                        out.push_str(name);
                        out.push('{');
                        out.push_str(labels);
                        out.push_str(",direction=\"");
                        out.push_str(dir);
                        out.push_str("\",class=\"");
                        out.push_str(class_name);
                        out.push_str("\"} ");
                        let mut buf = itoa::Buffer::new();
                        out.push_str(buf.format(if bytes { v.bytes } else { v.packets }));
                        out.push('\n');
                    }
                }
            }
        }
        Ok(())
    }
}

/// `# HELP`/`# TYPE` of a counter family, as each format wants them (OpenMetrics
/// declares a counter without its `_total`).
fn header(format: Format, name: &str, help: &str, out: &mut String) {
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

/// The labels a link's series share, in the exporter's order, values escaped.
fn label_block(l: &LinkLabels) -> String {
    let mut s = String::with_capacity(96);
    for (i, (k, v)) in [
        ("lab", l.lab.as_str()),
        ("netns", &l.netns),
        ("ifname", &l.ifname),
        ("peer_netns", &l.peer_netns),
        ("peer_ifname", &l.peer_ifname),
        ("kind", l.kind.as_str()),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        escape_into(v, &mut s);
        s.push('"');
    }
    s
}

/// Escapes `\`, `"` and newline, as both text formats require in label values
/// (interface names outside a lab may hold any of them).
fn escape_into(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::LinkKind;

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
        header(Format::OpenMetrics, LINK_PACKETS, "h", &mut out);
        assert_eq!(
            out,
            "# TYPE vethscope_link_packets counter\n# HELP vethscope_link_packets h\n"
        );
        out.clear();
        header(Format::Text, LINK_PACKETS, "h", &mut out);
        assert_eq!(
            out,
            "# HELP vethscope_link_packets_total h\n# TYPE vethscope_link_packets_total counter\n"
        );
    }
}
