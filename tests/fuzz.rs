//! Fuzzing (proptest, stable toolchain) of the two parsers that see hostile input:
//!
//! - `exporter`: the HTTP server of `serve` (hyper, our routes and format negotiation),
//!   in-process on loopback, fed random bytes and mutated requests. Every input must
//!   end in a well-formed answer with an expected status or a closed connection — never
//!   a hang or a panic — and the server must keep answering.
//! - `parser`: the in-kernel packet parser (ebpf/src/parse.rs), run by the real kernel
//!   with BPF_PROG_TEST_RUN on random, structured and mutated frames. No verifier or
//!   runtime failure, and a trace event exactly when an independent parser (the
//!   etherparse crate) finds ARP / ICMP / ICMPv6 of a traced kind, with the same fields;
//!   the counter's traffic class is checked too.
//!
//! In CI each runs a fixed number of cases from a fixed seed. `cargo xtask fuzz
//! exporter|parser --seconds N` runs one for N seconds from a random seed
//! (VETHSCOPE_FUZZ_SECONDS, VETHSCOPE_FUZZ_SEED) and prints executions per second and
//! findings; a finding is printed with its shrunk input and fails the run.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test prints what it measured or left out"
)]

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

// ---------------------------------------------------------------------------------
// The driver: fixed cases (CI) or a time budget (xtask), batches of seeded runs.

enum Budget {
    Cases(u32),
    Time(Duration),
}

fn budget(ci_cases: u32) -> Budget {
    match std::env::var("VETHSCOPE_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(s) if s > 0 => Budget::Time(Duration::from_secs(s)),
        _ => Budget::Cases(ci_cases),
    }
}

fn base_seed() -> u64 {
    std::env::var("VETHSCOPE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs `check` on values of `strategy` until the budget is spent; prints the rate and
/// fails with the shrunk input of the first finding.
fn fuzz<S: Strategy>(
    name: &str,
    strategy: S,
    ci_cases: u32,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let budget = budget(ci_cases);
    let seed = base_seed();
    let execs = Cell::new(0u64);
    let counted = |v: S::Value| {
        execs.set(execs.get() + 1);
        check(v)
    };
    let t0 = Instant::now();
    let mut finding = None;
    for batch in 0u64.. {
        let cases = match budget {
            Budget::Cases(n) => n,
            Budget::Time(d) if t0.elapsed() < d => 256,
            Budget::Time(_) => break,
        };
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&batch.to_le_bytes());
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 2048,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
        match runner.run(&strategy, counted) {
            Ok(()) => {}
            Err(TestError::Fail(reason, input)) => {
                finding = Some(format!(
                    "{reason}\n  minimal input: {input:?}\n  seed {seed} batch {batch}"
                ));
                break;
            }
            Err(TestError::Abort(reason)) => {
                finding = Some(format!("aborted: {reason}"));
                break;
            }
        }
        if matches!(budget, Budget::Cases(_)) {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "fuzz {name}: {} executions in {secs:.1} s ({:.0}/s), seed {seed}, {} findings",
        execs.get(),
        execs.get() as f64 / secs.max(1e-9),
        usize::from(finding.is_some())
    );
    if let Some(f) = finding {
        panic!("fuzz {name} found: {f}");
    }
}

// ---------------------------------------------------------------------------------
// exporter

mod exporter {
    use super::*;
    use prometheus::{IntCounterVec, Opts, Registry};

    /// Statuses the server may answer with; anything else is a finding.
    const STATUSES: [u16; 11] = [200, 400, 404, 405, 408, 413, 414, 431, 501, 503, 505];

    /// A server on loopback, serving a registry with awkward label values.
    pub struct Server {
        pub addr: String,
        _rt: tokio::runtime::Runtime,
    }

    pub fn start() -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let registry = Registry::new();
        let c = IntCounterVec::new(
            Opts::new("fuzz_total", "quotes \" and \\ and\nnewlines"),
            &["l"],
        )
        .expect("counter");
        c.with_label_values(&["a\"b\\c\nd"]).inc();
        registry.register(Box::new(c)).expect("register");
        let addr = rt.block_on(async {
            let listener =
                vethscope::metrics::http::bind("127.0.0.1:0".parse().expect("addr"), "--listen")
                    .await
                    .expect("bind");
            let addr = listener.local_addr().expect("addr").to_string();
            vethscope::metrics::http::spawn(listener, registry).expect("spawn");
            addr
        });
        Server { addr, _rt: rt }
    }

    /// Sends `bytes`, half-closes, and reads everything the server answers.
    pub fn exchange(addr: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        s.set_write_timeout(Some(Duration::from_secs(30))).ok();
        // The server may close early (e.g. after a 431): a failed write is not a finding.
        let _ = s.write_all(bytes);
        let _ = s.shutdown(Shutdown::Write);
        let mut out = Vec::new();
        match s.read_to_end(&mut out) {
            Ok(_) => Ok(out),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(out),
            Err(e) => Err(format!(
                "no end to the answer: {e} (after {} bytes)",
                out.len()
            )),
        }
    }

    /// Every answer on the connection is `HTTP/1.x NNN` with a known status and a
    /// body of its Content-Length (none for HEAD), with label values escaped.
    pub fn check_answers(request: &[u8], raw: &[u8]) -> Result<(), String> {
        // Answers to HEAD carry the length of the body they leave out.
        let head_request = request.starts_with(b"HEAD ");
        let text = String::from_utf8_lossy(raw);
        let mut rest: &str = &text;
        while !rest.is_empty() {
            let (head, after) = rest
                .split_once("\r\n\r\n")
                .ok_or_else(|| format!("an answer without a complete head: {rest:?}"))?;
            let mut status_line = head.lines().next().unwrap_or_default().split(' ');
            let version = status_line.next().unwrap_or_default();
            if version != "HTTP/1.1" && version != "HTTP/1.0" {
                return Err(format!("status line {head:?}"));
            }
            let status: u16 = status_line
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("no status in {head:?}"))?;
            if !STATUSES.contains(&status) {
                return Err(format!("unexpected status {status}: {head:?}"));
            }
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .ok_or_else(|| format!("no content-length in {head:?}"))?;
            let len = if head_request { 0 } else { len };
            let body = after
                .get(..len)
                .ok_or_else(|| format!("body shorter than {len}"))?;
            if status == 200
                && body.contains("fuzz_total")
                && !body.contains("fuzz_total{l=\"a\\\"b\\\\c\\nd\"} 1")
            {
                return Err(format!("label value not escaped: {body:?}"));
            }
            rest = &after[len..];
        }
        Ok(())
    }

    fn token(choices: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => proptest::sample::select(choices).prop_map(|s| s.as_bytes().to_vec()),
            1 => proptest::collection::vec(any::<u8>(), 0..40),
            1 => "[ -~]{0,40}".prop_map(String::into_bytes),
        ]
    }

    fn header() -> impl Strategy<Value = Vec<u8>> {
        (
            token(&["Accept", "Connection", "Content-Length", "Transfer-Encoding", "Host", "Expect", "Upgrade", "X-A"]),
            prop_oneof![
                Just(b": ".to_vec()),
                Just(b":".to_vec()),
                Just(b" : ".to_vec()),
                Just(Vec::new()),
            ],
            token(&[
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                "application/openmetrics-text; version=0.0.1; q=1e9",
                "text/plain;version=0.0.4",
                "text/*;q=-1, */*;q=NaN",
                "close",
                "keep-alive",
                "chunked",
                "0",
                "5",
                "18446744073709551616",
                "100-continue",
                "h2c",
            ]),
        )
            .prop_map(|(n, sep, v)| [n, sep, v].concat())
    }

    /// A request built from parts, each usually sensible and sometimes not.
    fn structured() -> impl Strategy<Value = Vec<u8>> {
        (
            token(&["GET", "POST", "HEAD", "PUT", "OPTIONS", "CONNECT", "get"]),
            token(&[
                "/metrics",
                "/healthz",
                "/",
                "*",
                "/metrics?x=1#y",
                "http://a/metrics",
                "/%00",
                "//..//metrics",
            ]),
            token(&[
                "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.9", "HTTP/0.9", "",
            ]),
            proptest::collection::vec(header(), 0..8),
            prop_oneof![
                Just(b"\r\n".to_vec()),
                Just(b"\n".to_vec()),
                Just(b"\r".to_vec())
            ],
            proptest::collection::vec(any::<u8>(), 0..64),
            1usize..4,
        )
            .prop_map(|(m, t, v, headers, eol, body, repeat)| {
                let mut one = [m, b" ".to_vec(), t, b" ".to_vec(), v, eol.clone()].concat();
                for h in headers {
                    one.extend_from_slice(&h);
                    one.extend_from_slice(&eol);
                }
                one.extend_from_slice(&eol);
                one.extend_from_slice(&body);
                one.repeat(repeat)
            })
    }

    /// A valid scrape with a few bytes overwritten, inserted or cut.
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let valid = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n".to_vec();
        proptest::collection::vec(
            (any::<proptest::sample::Index>(), any::<u8>(), 0u8..3),
            1..6,
        )
        .prop_map(move |edits| {
            let mut v = valid.clone();
            for (at, byte, op) in edits {
                let i = at.index(v.len() + 1);
                match op {
                    0 if i < v.len() => v[i] = byte,
                    1 => v.insert(i, byte),
                    _ => v.truncate(i.max(1)),
                }
            }
            v
        })
    }

    pub fn requests() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => structured(),
            3 => mutated(),
            2 => proptest::collection::vec(any::<u8>(), 0..512),
            // Long heads around the 16 KiB limit.
            1 => (1usize..24).prop_map(|kb| {
                let mut v = b"GET /metrics HTTP/1.1\r\nX-Long: ".to_vec();
                v.resize(v.len() + kb * 1024, b'a');
                v.extend_from_slice(b"\r\n\r\n");
                v
            }),
        ]
    }
}

#[test]
fn exporter() {
    let server = exporter::start();
    let n = Cell::new(0u32);
    let answered = Cell::new(0u32);
    fuzz("exporter", exporter::requests(), 400, |bytes| {
        let raw = exporter::exchange(&server.addr, &bytes).map_err(TestCaseError::fail)?;
        exporter::check_answers(&bytes, &raw).map_err(TestCaseError::fail)?;
        n.set(n.get() + 1);
        answered.set(answered.get() + u32::from(!raw.is_empty()));
        if n.get().is_multiple_of(50) {
            // The server still answers a plain scrape.
            let ok = exporter::exchange(&server.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .map_err(TestCaseError::fail)?;
            prop_assert!(
                ok.starts_with(b"HTTP/1.1 200 "),
                "scrape after fuzzing: {:?}",
                String::from_utf8_lossy(&ok)
            );
        }
        Ok(())
    });
    println!(
        "fuzz exporter: {} of {} inputs got an answer (the rest: connection closed)",
        answered.get(),
        n.get()
    );
    assert!(
        answered.get() > 0,
        "no input got an answer: the fuzzer reached nothing"
    );
    // Format negotiation on arbitrary Accept values never panics.
    fuzz("exporter-accept", "\\PC{0,200}", 2000, |accept| {
        let _ = vethscope::metrics::Format::negotiate(Some(&accept));
        Ok(())
    });
}

// ---------------------------------------------------------------------------------
// parser

mod parser {
    use super::*;
    use aya::maps::{MapData, PerCpuHashMap};
    use etherparse::{
        ArpPacketSlice, Ethernet2HeaderSlice, Icmpv4Slice, Icmpv6Slice, Ipv4HeaderSlice,
        Ipv6HeaderSlice, SingleVlanHeaderSlice,
    };
    use vethscope::probe::Probe;
    use vethscope_common::{LinkCounts, LinkKey, PacketEvent, class, event_flags, proto};

    const ETH_P_IP: u16 = 0x0800;
    const ETH_P_ARP: u16 = 0x0806;
    const ETH_P_IPV6: u16 = 0x86dd;
    const VLAN_TPIDS: [u16; 2] = [0x8100, 0x88a8];

    /// What the kernel should report for a frame, from etherparse's reading of it.
    #[derive(Debug, Default, PartialEq, Eq)]
    pub struct Expected {
        pub proto: u8,
        pub flags: u8,
        pub vlan_id: u16,
        pub arp_op: u16,
        pub icmp: (u8, u8, u16, u16),
        pub macs: ([u8; 6], [u8; 6]),
        pub addrs: ([u8; 16], [u8; 16]),
        pub nd_target: [u8; 16],
    }

    impl Expected {
        pub fn of_event(e: &PacketEvent) -> Self {
            Self {
                proto: e.proto,
                flags: e.flags,
                vlan_id: e.vlan_id,
                arp_op: e.arp_op,
                icmp: (e.icmp_type, e.icmp_code, e.icmp_id, e.icmp_seq),
                macs: (e.src_mac, e.dst_mac),
                addrs: (e.src, e.dst),
                nd_target: e.nd_target,
            }
        }
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut out = [0; 16];
        out[..4].copy_from_slice(&a);
        out
    }

    /// Ethernet and up to two 802.1Q/802.1ad tags: (ethertype, L3 bytes, first VLAN).
    fn link(frame: &[u8]) -> Option<(u16, &[u8], Option<u16>)> {
        let eth = Ethernet2HeaderSlice::from_slice(frame).ok()?;
        let mut ethertype = eth.ether_type().0;
        let mut rest = &frame[eth.slice().len()..];
        let mut vlan = None;
        for _ in 0..2 {
            if !VLAN_TPIDS.contains(&ethertype) {
                break;
            }
            let tag = SingleVlanHeaderSlice::from_slice(rest).ok()?;
            vlan.get_or_insert(tag.vlan_identifier().value());
            ethertype = tag.ether_type().0;
            rest = &rest[tag.slice().len()..];
        }
        Some((ethertype, rest, vlan))
    }

    /// The trace event the frame deserves, if any.
    pub fn expected(frame: &[u8]) -> Option<Expected> {
        let eth = Ethernet2HeaderSlice::from_slice(frame).ok()?;
        let (ethertype, l3, vlan) = link(frame)?;
        let mut out = Expected {
            flags: if vlan.is_some() { event_flags::VLAN } else { 0 },
            vlan_id: vlan.unwrap_or(0),
            macs: (eth.source(), eth.destination()),
            ..Default::default()
        };
        match ethertype {
            ETH_P_ARP => {
                let arp = ArpPacketSlice::from_slice(l3)
                    .ok()?
                    .to_packet()
                    .try_eth_ipv4()
                    .ok()?;
                out.proto = proto::ARP;
                out.arp_op = arp.operation.0;
                out.macs = (arp.sender_mac, arp.target_mac);
                out.addrs = (v4(arp.sender_ipv4), v4(arp.target_ipv4));
            }
            ETH_P_IP => {
                let ip = Ipv4HeaderSlice::from_slice(l3).ok()?;
                if ip.ihl() > 5 {
                    out.flags |= event_flags::IP_OPTIONS;
                }
                // Non-first fragments carry no ICMP header; the first one does.
                if ip.protocol().0 != 1 || ip.fragments_offset().value() != 0 {
                    return None;
                }
                // The IP packet ends at its total length (Ethernet padding follows) or
                // at the end of the frame, whichever is first.
                let end = usize::from(ip.total_len()).min(l3.len());
                let payload = l3.get(ip.slice().len()..end)?;
                let icmp = Icmpv4Slice::from_slice(payload).ok()?;
                let (t, c) = (icmp.type_u8(), icmp.code_u8());
                let b = icmp.bytes5to8();
                let (id, seq) = if t == 0 || t == 8 {
                    (
                        u16::from_be_bytes([b[0], b[1]]),
                        u16::from_be_bytes([b[2], b[3]]),
                    )
                } else {
                    (0, 0)
                };
                out.proto = proto::ICMP;
                out.icmp = (t, c, id, seq);
                out.addrs = (v4(ip.source()), v4(ip.destination()));
            }
            ETH_P_IPV6 => {
                let ip = Ipv6HeaderSlice::from_slice(l3).ok()?;
                if ip.next_header().0 != 58 {
                    return None;
                }
                let start = ip.slice().len();
                let end = (start + usize::from(ip.payload_length())).min(l3.len());
                let payload = l3.get(start..end)?;
                let icmp = Icmpv6Slice::from_slice(payload).ok()?;
                let (t, c) = (icmp.type_u8(), icmp.code_u8());
                let b = icmp.bytes5to8();
                match t {
                    128 | 129 => {
                        out.icmp = (
                            t,
                            c,
                            u16::from_be_bytes([b[0], b[1]]),
                            u16::from_be_bytes([b[2], b[3]]),
                        );
                    }
                    135 | 136 => {
                        out.icmp = (t, c, 0, 0);
                        out.nd_target = payload.get(8..24)?.try_into().ok()?;
                    }
                    _ => return None,
                }
                out.proto = proto::ICMPV6;
                out.addrs = (ip.source(), ip.destination());
            }
            _ => return None,
        }
        Some(out)
    }

    /// The counters' traffic class of the frame (by what its headers claim; lengths
    /// are not checked there).
    pub fn expected_class(frame: &[u8]) -> u8 {
        let Some((ethertype, l3, _)) = link(frame) else {
            return class::OTHER;
        };
        match ethertype {
            ETH_P_ARP => class::ARP,
            ETH_P_IP if l3.get(9) == Some(&1) => class::ICMP,
            ETH_P_IP => class::IPV4,
            ETH_P_IPV6 if l3.get(6) == Some(&58) => class::ICMPV6,
            ETH_P_IPV6 => class::IPV6,
            _ => class::OTHER,
        }
    }

    pub type Counters = PerCpuHashMap<MapData, LinkKey, LinkCounts>;

    /// A second handle on the probe's counter map (a dup of its fd), to read and clear it.
    pub fn counters(probe: &Probe) -> Counters {
        probe
            .counter_handles()
            .expect("second handles on the counting maps")
            .links
    }

    /// BPF_PROG_TEST_RUN itself refuses an skb whose outer ethertype is IPv4 or IPv6
    /// but which is too short for that header (EINVAL before the program runs).
    pub fn refused_by_test_run(frame: &[u8]) -> bool {
        match frame.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]])) {
            Some(ETH_P_IP) => frame.len() < 14 + 20,
            Some(ETH_P_IPV6) => frame.len() < 14 + 40,
            _ => false,
        }
    }

    /// Runs the trace and count programs on `frame`; compares with etherparse.
    /// `Ok(false)`: the kernel's test harness refused the frame (nothing to compare).
    pub fn check(probe: &mut Probe, counters: &mut Counters, frame: &[u8]) -> Result<bool, String> {
        let (_, ret) = match probe.test_run("trace_ingress", frame, 1) {
            Ok(r) => r,
            Err(_) if refused_by_test_run(frame) => return Ok(false),
            Err(e) => return Err(format!("trace_ingress: {e}")),
        };
        if ret != -1 {
            return Err(format!("trace_ingress returned {ret}, not TC_NEXT"));
        }
        let events = probe.drain_trace_events().map_err(|e| e.to_string())?;
        let got: Vec<Expected> = events.iter().map(Expected::of_event).collect();
        let want: Vec<Expected> = expected(frame).into_iter().collect();
        if got != want {
            return Err(format!("events {got:?}, etherparse says {want:?}"));
        }
        if let Some(e) = events.first()
            && usize::from(e.cap_len) > frame.len()
        {
            return Err(format!(
                "captured {} bytes of a {}-byte frame",
                e.cap_len,
                frame.len()
            ));
        }

        let (_, ret) = probe
            .test_run("count_ingress", frame, 1)
            .map_err(|e| format!("count_ingress: {e}"))?;
        if ret != -1 {
            return Err(format!("count_ingress returned {ret}, not TC_NEXT"));
        }
        let keys: Vec<LinkKey> = counters.keys().filter_map(Result::ok).collect();
        // The (ingress) classes that counted a packet, over every entry and CPU.
        let mut classes: Vec<u8> = Vec::new();
        for k in &keys {
            let per_cpu = counters
                .get(k, 0)
                .map_err(|e| format!("read the counter of {k:?}: {e}"))?;
            for counts in per_cpu.iter() {
                for (c, slot) in counts.by[0].iter().enumerate() {
                    for _ in 0..slot.packets {
                        classes.push(c as u8);
                    }
                }
                if counts.by[1].iter().any(|slot| slot.packets != 0) {
                    return Err(format!("count_ingress counted egress packets: {counts:?}"));
                }
            }
            let _ = counters.remove(k);
        }
        let want = expected_class(frame);
        if classes != [want] {
            return Err(format!("counted as class {classes:?}, expected [{want}]"));
        }
        Ok(true)
    }

    // --- frames -------------------------------------------------------------------

    fn be(v: u16) -> [u8; 2] {
        v.to_be_bytes()
    }

    /// IPv4 with ICMP (mostly), any header length, total length and fragment field.
    fn ipv4() -> impl Strategy<Value = (u16, Vec<u8>)> {
        (
            prop_oneof![8 => Just(4u8), 1 => 0u8..16],
            prop_oneof![6 => Just(5u8), 2 => 6u8..16, 1 => 0u8..5],
            prop_oneof![6 => Just(1u8), 1 => any::<u8>()],
            prop_oneof![4 => Just(0u16), 1 => Just(0x2000u16), 1 => any::<u16>()],
            prop_oneof![3 => Just(None), 1 => any::<u16>().prop_map(Some)],
            (
                any::<[u8; 8]>(),
                proptest::collection::vec(any::<u8>(), 0..48),
                any::<[u8; 8]>(),
            ),
            prop_oneof![4 => Just(8usize), 1 => 0usize..8],
        )
            .prop_map(
                |(version, ihl, protocol, frag, total, (icmp, payload, addrs), icmp_len)| {
                    let hl = usize::from(ihl) * 4;
                    let mut h = vec![0u8; hl.max(20)];
                    h[0] = version << 4 | ihl;
                    h[6..8].copy_from_slice(&be(frag));
                    h[8] = 64;
                    h[9] = protocol;
                    h[12..20].copy_from_slice(&addrs);
                    // ICMP header, possibly cut short (the total length then says so).
                    let body = if icmp_len == 8 {
                        [&icmp[..], &payload[..]].concat()
                    } else {
                        icmp[..icmp_len].to_vec()
                    };
                    let exact = (h.len() + body.len()) as u16;
                    h[2..4].copy_from_slice(&be(total.unwrap_or(exact)));
                    (0x0800, [h, body].concat())
                },
            )
    }

    fn ipv6() -> impl Strategy<Value = (u16, Vec<u8>)> {
        (
            prop_oneof![8 => Just(6u8), 1 => 0u8..16],
            prop_oneof![6 => Just(58u8), 1 => any::<u8>()],
            prop_oneof![4 => proptest::sample::select(&[128u8, 129, 135, 136][..]), 1 => any::<u8>()],
            prop_oneof![3 => Just(None), 1 => any::<u16>().prop_map(Some), 1 => (0u16..24).prop_map(Some)],
            (any::<[u8; 32]>(), any::<[u8; 7]>(), proptest::collection::vec(any::<u8>(), 0..40)),
        )
            .prop_map(|(version, next, icmp_type, plen, (addrs, icmp_rest, body))| {
                let mut h = vec![0u8; 40];
                h[0] = version << 4;
                h[6] = next;
                h[7] = 64;
                h[8..40].copy_from_slice(&addrs);
                let payload = [&[icmp_type][..], &icmp_rest, &body].concat();
                h[4..6].copy_from_slice(&be(plen.unwrap_or(payload.len() as u16)));
                (0x86dd, [h, payload].concat())
            })
    }

    fn arp() -> impl Strategy<Value = (u16, Vec<u8>)> {
        (
            prop_oneof![6 => Just([0u8, 1, 8, 0, 6, 4]), 1 => any::<[u8; 6]>()],
            prop_oneof![Just(1u16), Just(2u16), any::<u16>()],
            any::<[u8; 20]>(),
            0usize..30,
        )
            .prop_map(|(head, op, addrs, keep)| {
                let mut a = [&head[..], &be(op), &addrs].concat();
                // Sometimes cut short.
                if keep < 28 && keep % 3 == 0 {
                    a.truncate(keep);
                }
                (0x0806, a)
            })
    }

    fn other() -> impl Strategy<Value = (u16, Vec<u8>)> {
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..64))
    }

    /// Ethernet + tags (0–3, including the 0x9100 TPID we do not look through) + an
    /// L3 payload + Ethernet padding, sometimes truncated.
    fn structured() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<[u8; 12]>(),
            prop_oneof![
                3 => Just(Vec::new()),
                2 => proptest::collection::vec(
                    (prop_oneof![4 => Just(0x8100u16), 2 => Just(0x88a8u16), 1 => Just(0x9100u16)], any::<u16>()),
                    1..4,
                ),
            ],
            prop_oneof![4 => ipv4(), 3 => ipv6(), 2 => arp(), 1 => other()],
            prop_oneof![3 => Just(0usize), 2 => 0usize..40],
            prop_oneof![4 => Just(None), 1 => any::<proptest::sample::Index>().prop_map(Some)],
        )
            .prop_map(|(macs, tags, (ethertype, l3), pad, cut)| {
                let mut f = macs.to_vec();
                for (tpid, tci) in &tags {
                    f.extend_from_slice(&be(*tpid));
                    f.extend_from_slice(&be(*tci));
                }
                f.extend_from_slice(&be(ethertype));
                f.extend_from_slice(&l3);
                f.resize(f.len().max(60) + pad, 0);
                if let Some(cut) = cut {
                    f.truncate(14 + cut.index(f.len() - 13));
                }
                f
            })
    }

    /// A structured frame with a few bytes overwritten.
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        (
            structured(),
            proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
        )
            .prop_map(|(mut f, edits)| {
                for (at, b) in edits {
                    let i = at.index(f.len());
                    f[i] = b;
                }
                f
            })
    }

    pub fn frames() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            5 => structured(),
            3 => mutated(),
            // BPF_PROG_TEST_RUN needs at least an Ethernet header.
            1 => proptest::collection::vec(any::<u8>(), 14..128),
        ]
    }
}

#[test]
fn parser() {
    let probe = vethscope::probe::Probe::load(vethscope::probe::LoadOptions::default())
        .expect("load the eBPF object (needs root and CAP_BPF)");
    let counters = RefCell::new(parser::counters(&probe));
    let probe = RefCell::new(probe);
    let (events, refused) = (Cell::new(0u32), Cell::new(0u32));
    fuzz("parser", parser::frames(), 3000, |frame| {
        let ran = parser::check(&mut probe.borrow_mut(), &mut counters.borrow_mut(), &frame)
            .map_err(TestCaseError::fail)?;
        refused.set(refused.get() + u32::from(!ran));
        events.set(events.get() + u32::from(ran && parser::expected(&frame).is_some()));
        Ok(())
    });
    println!(
        "fuzz parser: {} frames traced (ARP/ICMP/ICMPv6), {} refused by BPF_PROG_TEST_RUN (IP ethertype, header too short)",
        events.get(),
        refused.get()
    );
    assert!(
        events.get() > 0,
        "no frame was traced: the fuzzer reached nothing"
    );
}
