//! A minimal pcapng writer: one capture file for a whole lab.
//!
//! Layout of the file this module produces (all integers little-endian; the byte-order
//! magic in the Section Header Block tells readers so, and every pcapng reader handles
//! either order):
//!
//! ```text
//! SHB  (shb_userappl = "vethscope")
//! IDB  #0  if_name = "ns1/veth0", if_tsresol = 9 (ns), linktype 1 (Ethernet), snaplen 128
//! EPB      iface 0, ts, caplen, orig_len, bytes, epb_flags = direction
//! IDB  #1  if_name = "host/br0", ...        (written lazily, the first time it is seen)
//! EPB      iface 1, ...
//! ...
//! ```
//!
//! One Interface Description Block is written per `(netns, ifname)` pair, the first time
//! [`PcapngWriter::interface`] is asked for it; its interface id is its index among the
//! IDBs of the section, which is what the Enhanced Packet Blocks refer to. Root-namespace
//! interfaces are named by the caller like the others (`host/eth0`: the root namespace is
//! called `host`, as in the `--json` output).
//!
//! # Timestamps
//!
//! The eBPF programs stamp packets with `bpf_ktime_get_ns()`, i.e. `CLOCK_MONOTONIC`
//! nanoseconds, which mean nothing to Wireshark or tcpdump. The caller converts them to
//! `CLOCK_REALTIME` nanoseconds since the Unix epoch *before* calling
//! [`PcapngWriter::packet`]: read [`monotonic_to_realtime_offset_ns`] once when the trace
//! starts and use [`monotonic_to_realtime_ns`] (or add the offset itself) for each event.
//! `packet()` writes the value it is given as is, with nanosecond resolution
//! (`if_tsresol = 9` on every IDB).
//!
//! # Direction
//!
//! Each EPB carries an `epb_flags` option whose low two bits are the direction:
//! `01` inbound (TC ingress), `10` outbound (TC egress).
//!
//! # Readers
//!
//! Wireshark / tshark (checked with 4.0) show everything: the interface name
//! (`frame.interface_name`), the direction (`frame.packet_flags_direction`), ns
//! timestamps, `shb_userappl` (`capinfos`). tcpdump 4.99 / libpcap 1.10 (Debian 12)
//! read the file and decode every packet, but ignore `if_name` and `epb_flags`: they
//! print neither the interface nor In/Out, `-Q in|out` has no effect on a file, and the
//! `inbound`/`outbound` filters are refused for Ethernet savefiles. Use
//! `tcpdump --time-stamp-precision=nano` to see the full timestamps.
//!
//! No function here panics; every I/O error from the underlying writer is returned.

use std::collections::HashMap;
use std::io::{self, Write};

/// Block type of the Section Header Block.
const BT_SHB: u32 = 0x0A0D_0D0A;
/// Block type of the Interface Description Block.
const BT_IDB: u32 = 0x0000_0001;
/// Block type of the Enhanced Packet Block.
const BT_EPB: u32 = 0x0000_0006;
/// Byte-order magic, written little-endian.
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// `opt_endofopt`.
const OPT_ENDOFOPT: u16 = 0;
/// `shb_userappl`: name of the application that wrote the section.
const OPT_SHB_USERAPPL: u16 = 4;
/// `if_name`.
const OPT_IF_NAME: u16 = 2;
/// `if_tsresol`: a single byte; 9 = 10^-9 s.
const OPT_IF_TSRESOL: u16 = 9;
/// `epb_flags`: a 32-bit word; bits 0-1 are the direction.
const OPT_EPB_FLAGS: u16 = 2;

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// Bytes of each packet kept in the file unless [`PcapngWriter::with_snaplen`] says otherwise.
pub const DEFAULT_SNAPLEN: u32 = 128;
/// The `shb_userappl` string.
pub const USER_APPL: &str = "vethscope";

/// Direction of a packet relative to the interface it was seen on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received by the interface (TC ingress).
    Inbound,
    /// Sent by the interface (TC egress).
    Outbound,
}

impl Direction {
    /// The value of the `epb_flags` option for this direction (bits 0-1: 01 inbound, 10 outbound).
    #[must_use]
    pub const fn epb_flags(self) -> u32 {
        match self {
            Direction::Inbound => 0b01,
            Direction::Outbound => 0b10,
        }
    }
}

/// Writes a pcapng stream: a Section Header Block, then Interface Description Blocks and
/// Enhanced Packet Blocks as interfaces and packets are added.
///
/// Writes go straight to `out` one block at a time (a block is assembled in memory first,
/// so a failed write never leaves a half-built block *in this writer*; what the underlying
/// writer kept of it is up to that writer). Wrap a `File` in a `BufWriter`.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
    snaplen: u32,
    /// netns -> ifname -> interface id (nested so lookups need no allocation).
    interfaces: HashMap<String, HashMap<String, u32>>,
    /// Number of IDBs written so far; the next IDB gets this id.
    next_id: u32,
    /// Scratch buffer reused for each block.
    buf: Vec<u8>,
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a capture with the default snaplen ([`DEFAULT_SNAPLEN`], 128 bytes): writes
    /// the Section Header Block.
    ///
    /// # Errors
    /// Any error from writing to `out`.
    pub fn new(out: W) -> io::Result<Self> {
        Self::with_snaplen(out, DEFAULT_SNAPLEN)
    }

    /// Starts a capture keeping at most `snaplen` bytes of each packet (0 = no limit, as
    /// in pcapng): writes the Section Header Block. The snaplen is recorded in every IDB.
    ///
    /// # Errors
    /// Any error from writing to `out`.
    pub fn with_snaplen(out: W, snaplen: u32) -> io::Result<Self> {
        let mut w = PcapngWriter {
            out,
            snaplen,
            interfaces: HashMap::new(),
            next_id: 0,
            buf: Vec::with_capacity(256),
        };
        w.write_shb()?;
        Ok(w)
    }

    /// The snaplen recorded in every IDB and applied to every packet.
    #[must_use]
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Number of interfaces (IDBs) written so far.
    #[must_use]
    pub fn interface_count(&self) -> u32 {
        self.next_id
    }

    /// Returns the interface id for `(netns, ifname)`, writing an IDB named `netns/ifname`
    /// the first time the pair is seen. Ids are 0, 1, 2, … in order of first appearance.
    ///
    /// # Errors
    /// Any error from writing the IDB (the pair is then not remembered, and a later call
    /// tries again); `InvalidInput` if the name is longer than 65535 bytes.
    pub fn interface(&mut self, netns: &str, ifname: &str) -> io::Result<u32> {
        if let Some(&id) = self.interfaces.get(netns).and_then(|m| m.get(ifname)) {
            return Ok(id);
        }
        let id = self.next_id;
        let next = id
            .checked_add(1)
            .ok_or_else(|| invalid_input("too many interfaces for one pcapng section"))?;
        let name = format!("{netns}/{ifname}");

        self.buf.clear();
        begin_block(&mut self.buf, BT_IDB);
        self.buf.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        self.buf.extend_from_slice(&0u16.to_le_bytes()); // reserved
        self.buf.extend_from_slice(&self.snaplen.to_le_bytes());
        push_option(&mut self.buf, OPT_IF_NAME, name.as_bytes())?;
        push_option(&mut self.buf, OPT_IF_TSRESOL, &[9])?;
        push_end_of_options(&mut self.buf);
        finish_block(&mut self.buf)?;
        self.out.write_all(&self.buf)?;

        // Only remember the interface once its IDB is out, so a failed write does not
        // leave EPBs pointing at an IDB that was never written.
        self.interfaces
            .entry(netns.to_owned())
            .or_default()
            .insert(ifname.to_owned(), id);
        self.next_id = next;
        Ok(id)
    }

    /// Writes one Enhanced Packet Block.
    ///
    /// * `iface_id` — a value returned by [`interface`](Self::interface); anything else is
    ///   an `InvalidInput` error.
    /// * `ts_ns` — **`CLOCK_REALTIME` nanoseconds since the Unix epoch**, already
    ///   converted from the kernel's `CLOCK_MONOTONIC` stamp by the caller (see
    ///   [`monotonic_to_realtime_offset_ns`]).
    /// * `orig_len` — length of the packet on the wire; raised to the number of captured
    ///   bytes if it is smaller, so the block stays valid.
    /// * `data` — the bytes captured, starting at the Ethernet header; cut to the snaplen.
    /// * `dir` — written as `epb_flags` (inbound = 1, outbound = 2).
    ///
    /// # Errors
    /// Any error from writing the block; `InvalidInput` for an unknown `iface_id`.
    pub fn packet(
        &mut self,
        iface_id: u32,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
        dir: Direction,
    ) -> io::Result<()> {
        if iface_id >= self.next_id {
            return Err(invalid_input(format!(
                "pcapng: unknown interface id {iface_id} ({} interfaces written)",
                self.next_id
            )));
        }
        let data = match self.snaplen {
            0 => data,
            n => &data[..data.len().min(n as usize)],
        };
        let cap_len = u32::try_from(data.len())
            .map_err(|_| invalid_input("pcapng: packet larger than 4 GiB"))?;
        let orig_len = orig_len.max(cap_len);

        self.buf.clear();
        begin_block(&mut self.buf, BT_EPB);
        self.buf.extend_from_slice(&iface_id.to_le_bytes());
        // pcapng splits the 64-bit timestamp into a high and a low 32-bit word.
        let (ts_high, ts_low) = ((ts_ns >> 32) as u32, (ts_ns & 0xFFFF_FFFF) as u32);
        self.buf.extend_from_slice(&ts_high.to_le_bytes());
        self.buf.extend_from_slice(&ts_low.to_le_bytes());
        self.buf.extend_from_slice(&cap_len.to_le_bytes());
        self.buf.extend_from_slice(&orig_len.to_le_bytes());
        self.buf.extend_from_slice(data);
        pad_to_32(&mut self.buf);
        push_option(&mut self.buf, OPT_EPB_FLAGS, &dir.epb_flags().to_le_bytes())?;
        push_end_of_options(&mut self.buf);
        finish_block(&mut self.buf)?;
        self.out.write_all(&self.buf)
    }

    /// Flushes the underlying writer.
    ///
    /// # Errors
    /// Any error from the underlying writer's `flush`.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Gives back the underlying writer (not flushed: call [`flush`](Self::flush) first
    /// if it buffers).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// A reference to the underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    fn write_shb(&mut self) -> io::Result<()> {
        self.buf.clear();
        begin_block(&mut self.buf, BT_SHB);
        self.buf.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        self.buf.extend_from_slice(&1u16.to_le_bytes()); // major version
        self.buf.extend_from_slice(&0u16.to_le_bytes()); // minor version
        self.buf.extend_from_slice(&(-1i64).to_le_bytes()); // section length: unknown
        push_option(&mut self.buf, OPT_SHB_USERAPPL, USER_APPL.as_bytes())?;
        push_end_of_options(&mut self.buf);
        finish_block(&mut self.buf)?;
        self.out.write_all(&self.buf)
    }
}

/// `CLOCK_REALTIME − CLOCK_MONOTONIC`, in nanoseconds, as of now.
///
/// Add it to a `bpf_ktime_get_ns()` stamp to get nanoseconds since the Unix epoch
/// (see [`monotonic_to_realtime_ns`]). Read it once at the start of a trace: it only moves
/// if the wall clock is stepped or slewed while the trace runs.
///
/// The monotonic clock is read on both sides of the realtime read and the midpoint is
/// used, which keeps the error under the time between the reads. If `clock_gettime`
/// fails (it cannot for these two clocks on Linux) the failed reading counts as 0.
#[must_use]
pub fn monotonic_to_realtime_offset_ns() -> i128 {
    let mono_before = clock_ns(libc::CLOCK_MONOTONIC);
    let real = clock_ns(libc::CLOCK_REALTIME);
    let mono_after = clock_ns(libc::CLOCK_MONOTONIC);
    real - i128::midpoint(mono_before, mono_after)
}

/// Converts a `CLOCK_MONOTONIC` stamp to realtime nanoseconds with an offset from
/// [`monotonic_to_realtime_offset_ns`], clamped to `0..=u64::MAX`.
#[must_use]
pub fn monotonic_to_realtime_ns(mono_ns: u64, offset_ns: i128) -> u64 {
    let t = i128::from(mono_ns) + offset_ns;
    u64::try_from(t.max(0)).unwrap_or(u64::MAX)
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(clock, &raw mut ts) };
    if rc != 0 {
        return 0;
    }
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

fn invalid_input(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// Starts a block: type and a placeholder for the total length.
fn begin_block(buf: &mut Vec<u8>, block_type: u32) {
    buf.extend_from_slice(&block_type.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
}

/// Ends the block started at the beginning of `buf`: appends the trailing total length
/// and patches the leading one. The body is already 32-bit aligned.
fn finish_block(buf: &mut Vec<u8>) -> io::Result<()> {
    let total = buf.len() + 4;
    let total = u32::try_from(total).map_err(|_| invalid_input("pcapng: block too large"))?;
    buf.extend_from_slice(&total.to_le_bytes());
    buf[4..8].copy_from_slice(&total.to_le_bytes());
    Ok(())
}

/// Appends one option: code, length, value, zero padding to 32 bits.
fn push_option(buf: &mut Vec<u8>, code: u16, value: &[u8]) -> io::Result<()> {
    let len = u16::try_from(value.len())
        .map_err(|_| invalid_input("pcapng: option value longer than 65535 bytes"))?;
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(value);
    pad_to_32(buf);
    Ok(())
}

fn push_end_of_options(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&OPT_ENDOFOPT.to_le_bytes());
    buf.extend_from_slice(&0u16.to_le_bytes());
}

fn pad_to_32(buf: &mut Vec<u8>) {
    let pad = (4 - buf.len() % 4) % 4;
    buf.extend(std::iter::repeat_n(0u8, pad));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One block as read back by the test reader.
    #[derive(Debug)]
    struct Block {
        block_type: u32,
        total_len: usize,
        body: Vec<u8>,
    }

    fn u16_at(b: &[u8], off: usize) -> u16 {
        u16::from_le_bytes([b[off], b[off + 1]])
    }

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
    }

    /// Splits a little-endian pcapng stream into blocks, checking each block's framing:
    /// leading length == trailing length, length a multiple of 4, at least 12 bytes.
    fn read_blocks(mut b: &[u8]) -> Vec<Block> {
        let mut out = Vec::new();
        while !b.is_empty() {
            assert!(b.len() >= 12, "truncated block header");
            let block_type = u32_at(b, 0);
            let len = u32_at(b, 4) as usize;
            assert!(len >= 12, "block too short: {len}");
            assert_eq!(len % 4, 0, "block length {len} not 32-bit aligned");
            assert!(len <= b.len(), "block length {len} runs past the end");
            assert_eq!(u32_at(b, len - 4) as usize, len, "trailing length differs");
            out.push(Block {
                block_type,
                total_len: len,
                body: b[8..len - 4].to_vec(),
            });
            b = &b[len..];
        }
        out
    }

    /// Parses an options list that must fill `b` exactly and end with opt_endofopt.
    /// Checks that padding bytes are zero.
    fn read_options(b: &[u8]) -> Vec<(u16, Vec<u8>)> {
        assert_eq!(b.len() % 4, 0, "options not 32-bit aligned");
        let mut off = 0;
        let mut opts = Vec::new();
        loop {
            assert!(off + 4 <= b.len(), "options end without opt_endofopt");
            let code = u16_at(b, off);
            let len = u16_at(b, off + 2) as usize;
            off += 4;
            if code == OPT_ENDOFOPT {
                assert_eq!(len, 0);
                assert_eq!(off, b.len(), "bytes after opt_endofopt");
                return opts;
            }
            let padded = len.div_ceil(4) * 4;
            assert!(off + padded <= b.len(), "option runs past the block");
            assert!(
                b[off + len..off + padded].iter().all(|&x| x == 0),
                "non-zero option padding"
            );
            opts.push((code, b[off..off + len].to_vec()));
            off += padded;
        }
    }

    fn opt(opts: &[(u16, Vec<u8>)], code: u16) -> Option<&[u8]> {
        opts.iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }

    #[derive(Debug, PartialEq)]
    struct Epb {
        iface: u32,
        ts: u64,
        cap_len: u32,
        orig_len: u32,
        data: Vec<u8>,
        flags: u32,
    }

    fn parse_epb(body: &[u8]) -> Epb {
        let iface = u32_at(body, 0);
        let ts = (u64::from(u32_at(body, 4)) << 32) | u64::from(u32_at(body, 8));
        let cap_len = u32_at(body, 12);
        let orig_len = u32_at(body, 16);
        let data_end = 20 + cap_len as usize;
        let padded_end = 20 + (cap_len as usize).div_ceil(4) * 4;
        assert!(padded_end <= body.len());
        assert!(
            body[data_end..padded_end].iter().all(|&x| x == 0),
            "non-zero data padding"
        );
        let opts = read_options(&body[padded_end..]);
        let flags = opt(&opts, OPT_EPB_FLAGS).expect("epb_flags present");
        assert_eq!(flags.len(), 4);
        Epb {
            iface,
            ts,
            cap_len,
            orig_len,
            data: body[20..data_end].to_vec(),
            flags: u32_at(flags, 0),
        }
    }

    fn frame(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn two_interfaces_three_packets_round_trip() {
        let mut w = PcapngWriter::new(Vec::new()).expect("shb");
        let a = w.interface("ns1", "veth0").expect("idb a");
        let b = w.interface("host", "br0").expect("idb b");
        assert_eq!((a, b), (0, 1));
        // Asking again gives the same id and writes nothing.
        assert_eq!(w.interface("ns1", "veth0").expect("idb a again"), 0);
        assert_eq!(w.interface_count(), 2);

        let p1 = frame(98, 1); // odd-ish length, needs 2 bytes of padding
        let p2 = frame(42, 7); // ARP-sized, needs 2 bytes of padding
        let p3 = frame(200, 3); // longer than the snaplen: cut to 128
        let t0 = 1_700_000_000_123_456_789u64;
        w.packet(a, t0, 98, &p1, Direction::Outbound).expect("p1");
        w.packet(b, t0 + 1_500, 42, &p2, Direction::Inbound)
            .expect("p2");
        w.packet(b, t0 + 9_000, 200, &p3, Direction::Outbound)
            .expect("p3");
        w.flush().expect("flush");
        let bytes = w.into_inner();
        assert_eq!(bytes.len() % 4, 0);

        let blocks = read_blocks(&bytes);
        let types: Vec<u32> = blocks.iter().map(|b| b.block_type).collect();
        assert_eq!(types, vec![BT_SHB, BT_IDB, BT_IDB, BT_EPB, BT_EPB, BT_EPB]);
        // The SHB type is a palindrome, so its byte order is checked via the magic.
        assert_eq!(&bytes[0..4], &[0x0A, 0x0D, 0x0D, 0x0A]);

        // SHB
        let shb = &blocks[0].body;
        assert_eq!(u32_at(shb, 0), BYTE_ORDER_MAGIC);
        assert_eq!(&shb[0..4], &[0x4D, 0x3C, 0x2B, 0x1A]);
        assert_eq!((u16_at(shb, 4), u16_at(shb, 6)), (1, 0));
        assert_eq!(&shb[8..16], &[0xFF; 8]);
        let opts = read_options(&shb[16..]);
        assert_eq!(opt(&opts, OPT_SHB_USERAPPL), Some(&b"vethscope"[..]));
        // 9-byte string -> 4 + 12 bytes, + 4 end-of-options; block = 8 + 16 + 20 + 4.
        assert_eq!(u32_at(&bytes, 4), 48);

        // IDBs
        for (blk, name) in blocks[1..3].iter().zip(["ns1/veth0", "host/br0"]) {
            let body = &blk.body;
            assert_eq!(u16_at(body, 0), LINKTYPE_ETHERNET);
            assert_eq!(u16_at(body, 2), 0);
            assert_eq!(u32_at(body, 4), 128);
            let opts = read_options(&body[8..]);
            assert_eq!(opt(&opts, OPT_IF_NAME), Some(name.as_bytes()));
            assert_eq!(opt(&opts, OPT_IF_TSRESOL), Some(&[9u8][..]));
        }

        // EPBs
        let e: Vec<Epb> = blocks[3..].iter().map(|b| parse_epb(&b.body)).collect();
        assert_eq!(
            e[0],
            Epb {
                iface: 0,
                ts: t0,
                cap_len: 98,
                orig_len: 98,
                data: p1.clone(),
                flags: 2
            }
        );
        assert_eq!(
            e[1],
            Epb {
                iface: 1,
                ts: t0 + 1_500,
                cap_len: 42,
                orig_len: 42,
                data: p2,
                flags: 1
            }
        );
        assert_eq!(
            e[2],
            Epb {
                iface: 1,
                ts: t0 + 9_000,
                cap_len: 128,
                orig_len: 200,
                data: p3[..128].to_vec(),
                flags: 2
            }
        );
        // Exact sizes: "ns1/veth0" (9 bytes) pads to 12, "host/br0" (8) needs no padding;
        // IDB = 12 framing + 8 fixed + (4 + name) + (4 + 4) tsresol + 4 end-of-options.
        let sizes: Vec<usize> = blocks.iter().map(|b| b.total_len).collect();
        assert_eq!(&sizes[1..3], &[12 + 8 + 16 + 8 + 4, 12 + 8 + 12 + 8 + 4]);
        // EPB = 12 framing + 20 fixed + padded data + 8 (epb_flags) + 4 (end-of-options):
        // 98 bytes pad to 100, 42 to 44, 128 stays.
        assert_eq!(
            &sizes[3..],
            &[12 + 20 + 100 + 12, 12 + 20 + 44 + 12, 12 + 20 + 128 + 12]
        );
        assert_eq!(sizes.iter().sum::<usize>(), bytes.len());
    }

    #[test]
    fn ids_are_per_namespace_and_interface() {
        let mut w = PcapngWriter::new(Vec::new()).expect("shb");
        assert_eq!(w.interface("ns1", "eth0").expect("a"), 0);
        assert_eq!(w.interface("ns2", "eth0").expect("b"), 1);
        assert_eq!(w.interface("ns1", "eth1").expect("c"), 2);
        assert_eq!(w.interface("ns2", "eth0").expect("b again"), 1);
        let blocks = read_blocks(&w.into_inner());
        assert_eq!(blocks.iter().filter(|b| b.block_type == BT_IDB).count(), 3);
    }

    #[test]
    fn unknown_interface_is_an_error() {
        let mut w = PcapngWriter::new(Vec::new()).expect("shb");
        let err = w
            .packet(0, 0, 10, &[0; 10], Direction::Inbound)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let id = w.interface("ns", "lo").expect("idb");
        let err = w
            .packet(id + 1, 0, 10, &[0; 10], Direction::Inbound)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn orig_len_never_below_captured_and_snaplen_zero_keeps_all() {
        let mut w = PcapngWriter::with_snaplen(Vec::new(), 0).expect("shb");
        let id = w.interface("ns", "veth1").expect("idb");
        let big = frame(300, 0);
        w.packet(id, 5, 10, &big, Direction::Inbound)
            .expect("packet");
        let blocks = read_blocks(&w.into_inner());
        assert_eq!(u32_at(&blocks[1].body, 4), 0, "snaplen 0 in the IDB");
        let e = parse_epb(&blocks[2].body);
        assert_eq!((e.cap_len, e.orig_len), (300, 300));
        assert_eq!(e.data, big);
    }

    #[test]
    fn empty_packet_and_aligned_lengths() {
        let mut w = PcapngWriter::new(Vec::new()).expect("shb");
        let id = w.interface("a", "b").expect("idb"); // "a/b": 3 bytes -> 1 pad byte
        w.packet(id, 1, 0, &[], Direction::Outbound).expect("empty");
        w.packet(id, 2, 64, &frame(64, 9), Direction::Inbound)
            .expect("aligned");
        let blocks = read_blocks(&w.into_inner());
        let e0 = parse_epb(&blocks[2].body);
        assert_eq!((e0.cap_len, e0.orig_len, e0.flags), (0, 0, 2));
        let e1 = parse_epb(&blocks[3].body);
        assert_eq!((e1.cap_len, e1.flags), (64, 1));
    }

    #[test]
    fn timestamp_split_into_high_and_low_words() {
        let mut w = PcapngWriter::new(Vec::new()).expect("shb");
        let id = w.interface("n", "i").expect("idb");
        let ts = 0x1234_5678_9ABC_DEF0u64;
        w.packet(id, ts, 4, &[1, 2, 3, 4], Direction::Inbound)
            .expect("packet");
        let blocks = read_blocks(&w.into_inner());
        let body = &blocks[2].body;
        assert_eq!(u32_at(body, 4), 0x1234_5678);
        assert_eq!(u32_at(body, 8), 0x9ABC_DEF0);
    }

    /// A writer that accepts `budget` bytes, then fails.
    struct Failing {
        budget: usize,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.budget);
            self.budget -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn io_errors_are_returned_not_panicked() {
        assert!(PcapngWriter::new(Failing { budget: 10 }).is_err());
        let mut w = PcapngWriter::new(Failing { budget: 48 }).expect("shb fits exactly");
        assert!(w.interface("ns1", "veth0").is_err());
        // The failed IDB is not remembered: packets for it are refused.
        assert_eq!(w.interface_count(), 0);
        assert!(w.packet(0, 0, 1, &[0], Direction::Inbound).is_err());
    }

    #[test]
    fn long_names_are_an_error_not_a_panic() {
        let mut w = PcapngWriter::new(Vec::new()).expect("shb");
        let long = "x".repeat(70_000);
        let err = w.interface(&long, "eth0").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(w.interface_count(), 0);
    }

    #[test]
    fn realtime_offset_is_plausible() {
        let off = monotonic_to_realtime_offset_ns();
        // Realtime is well after 2020 and monotonic is time since boot, so the offset is
        // at least 2020-01-01 minus a (generous) 20-year uptime.
        assert!(off > 1_000_000_000 * 1_000_000_000, "offset {off}");
        let now_mono = clock_ns(libc::CLOCK_MONOTONIC);
        let now_real = clock_ns(libc::CLOCK_REALTIME);
        let converted = monotonic_to_realtime_ns(u64::try_from(now_mono).unwrap_or(0), off);
        let diff = (i128::from(converted) - now_real).abs();
        assert!(diff < 50_000_000, "conversion off by {diff} ns");
        assert_eq!(monotonic_to_realtime_ns(5, -10), 0);
        assert_eq!(monotonic_to_realtime_ns(u64::MAX, 10), u64::MAX);
    }
}
