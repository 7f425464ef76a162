//! Correlating hops into paths: an ICMP echo (src, dst, id, seq) collects its request
//! hops and reply hops in time order; an ARP request is paired with its reply; an
//! ICMPv6 neighbour solicitation with its advertisement.
//!
//! A path is complete once its reply has been quiet for [`SETTLE_NS`] (the reply's
//! last hop has arrived), and `unanswered` when no reply came within the timeout.
//!
//! One path per attempt: an ARP/ND request sent again (the kernel retries an unresolved
//! neighbour every second) starts a new path numbered `attempt` 2, 3, …; no hop is
//! listed on two attempts and an attempt is reported once.

use std::collections::HashMap;
use std::net::IpAddr;

use super::event::{Hop, Proto, is_echo, is_echo_request};

/// Quiet time after the last reply hop before a path is reported.
pub const SETTLE_NS: u64 = 100_000_000;

/// A request seen again this soon after an unanswered attempt of the same exchange was
/// reported is that exchange's next attempt (the kernel's neighbour retries come every
/// second; `arping` and `ndisc6` retry about as often).
pub const RETRY_WINDOW_NS: u64 = 5_000_000_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Echo {
        v6: bool,
        a: IpAddr,
        b: IpAddr,
        id: u16,
        seq: u16,
    },
    Arp {
        asker: IpAddr,
        target: IpAddr,
    },
    /// The solicitation's source asks; the advertisement answers to it (its
    /// destination), so two namespaces resolving one address are two paths.
    Nd {
        asker: IpAddr,
        target: IpAddr,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Answered,
    Unanswered,
}

/// What kind of exchange a path follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// ICMP or ICMPv6 echo request and reply (ping).
    Echo,
    /// ARP request and reply (IPv4 neighbour resolution).
    Arp,
    /// ICMPv6 neighbour solicitation and advertisement (IPv6 neighbour resolution).
    Nd,
}

impl Exchange {
    /// `echo`, `arp`, `nd` (the JSON `exchange`).
    pub fn as_str(self) -> &'static str {
        match self {
            Exchange::Echo => "echo",
            Exchange::Arp => "arp",
            Exchange::Nd => "nd",
        }
    }

    /// How a person reads it at the start of a path line: `ARP`, `ND`, `ICMP`, `ICMPv6`.
    pub fn label(self, v6: bool) -> &'static str {
        match (self, v6) {
            (Exchange::Arp, _) => "ARP",
            (Exchange::Nd, _) => "ND",
            (Exchange::Echo, false) => "ICMP",
            (Exchange::Echo, true) => "ICMPv6",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Path {
    /// "icmp", "icmpv6" or "arp".
    pub proto: &'static str,
    pub exchange: Exchange,
    /// 1 for a request's first attempt, 2 for its first retry, … (always 1 for echoes:
    /// ping retries with a new seq, which is a new path).
    pub attempt: u32,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: Option<u16>,
    pub seq: Option<u16>,
    pub request: Vec<Hop>,
    pub reply: Vec<Hop>,
    pub verdict: Verdict,
    /// For an unanswered path in a lab: what the diagnose engine finds on its way.
    pub findings: Vec<crate::diagnose::Finding>,
    /// For an unanswered path in a lab: its packets the kernel dropped, and why.
    pub drops: Vec<crate::diagnose::probe::DropReport>,
}

impl Path {
    /// The reply travelled over a loopback device: the destination address is local to
    /// the sender's namespace (both veth ends in one namespace).
    pub fn reply_via_lo(&self) -> bool {
        self.reply.iter().any(|h| &*h.ifname == "lo")
    }

    /// The request left through an interface other than `lo` (a veth, a port): with
    /// [`Self::reply_via_lo`], the classic same-namespace case.
    pub fn request_left_lo(&self) -> bool {
        self.request
            .iter()
            .any(|h| h.egress && &*h.ifname != "lo" && h.impaired.is_none())
    }

    pub fn rtt_ns(&self) -> Option<u64> {
        let first = self.request.first()?.ts_ns;
        let last = self.reply.last()?.ts_ns;
        last.checked_sub(first)
    }

    pub fn last_seen(&self) -> Option<&Hop> {
        self.reply.last().or(self.request.last())
    }

    fn last_ts(&self) -> u64 {
        self.last_seen().map_or(0, |h| h.ts_ns)
    }
}

/// Paths open at once (waiting for a reply or for their reply to settle). Beyond
/// it, new requests are counted in [`Bounds::paths_dropped`] and not followed: a flood
/// of distinct requests must not grow memory without limit.
pub const MAX_OPEN_PATHS: usize = 16_384;
/// Hops kept per direction of one path; further hops are counted, not kept.
pub const MAX_HOPS_PER_PATH: usize = 64;

/// What the bounds made the correlator leave out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Requests not followed because [`MAX_OPEN_PATHS`] paths were open.
    pub paths_dropped: u64,
    /// Hops not kept because their path had [`MAX_HOPS_PER_PATH`] already.
    pub hops_dropped: u64,
}

/// Turns a stream of hops into completed paths.
pub struct Correlator {
    open: HashMap<Key, Path>,
    /// Attempts closed by a retry of the same request, waiting to be reported.
    closed: Vec<Path>,
    /// Unanswered ARP/ND attempts already reported: their number and last hop's time, so
    /// a retry that comes after the report is numbered as the next attempt. Pruned
    /// after [`RETRY_WINDOW_NS`] and bounded like the open paths.
    reported: HashMap<Key, (u32, u64)>,
    /// How long a request waits for its reply.
    timeout_ns: u64,
    bounds: Bounds,
}

impl Correlator {
    pub fn new(timeout_ns: u64) -> Self {
        Self {
            open: HashMap::new(),
            closed: Vec::new(),
            reported: HashMap::new(),
            timeout_ns,
            bounds: Bounds::default(),
        }
    }

    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// Adds a hop to its path (creating the path for a request).
    pub fn push(&mut self, hop: Hop) {
        let Some((key, is_request)) = classify(&hop) else {
            return;
        };
        if is_request {
            // A retry (an ARP/ND request sent again, seen again where the first attempt
            // started, with no answer yet) is a new attempt: the old one is reported
            // on its own, and no hop is listed twice. An impairment's hop is the same
            // attempt, reported by the program after the trace's own hook there; an
            // echo is retried with a new seq, so the same echo seen again is a copy
            // (a duplicating impairment), part of the same path.
            if hop.impaired.is_none()
                && !matches!(key, Key::Echo { .. })
                && let Some(p) = self.open.get(&key)
                && p.reply.is_empty()
                && p.request.first().is_some_and(|f| {
                    f.impaired.is_none()
                        && f.ifindex == hop.ifindex
                        && f.egress == hop.egress
                        && f.netns == hop.netns
                })
                && let Some(old) = self.open.remove(&key)
            {
                self.reported.insert(key.clone(), (old.attempt, hop.ts_ns));
                self.closed.push(old);
            }
            if !self.open.contains_key(&key) && self.open.len() >= MAX_OPEN_PATHS {
                self.bounds.paths_dropped += 1;
                return;
            }
            let attempt = match self.reported.remove(&key) {
                Some((n, ts)) if hop.ts_ns.saturating_sub(ts) <= RETRY_WINDOW_NS => n + 1,
                _ => 1,
            };
            let path = self.open.entry(key).or_insert_with(|| {
                let mut p = new_path(&hop);
                p.attempt = attempt;
                p
            });
            if path.request.len() >= MAX_HOPS_PER_PATH {
                self.bounds.hops_dropped += 1;
                return;
            }
            path.request.push(hop);
        } else if let Some(path) = self.open.get_mut(&key) {
            if path.reply.len() >= MAX_HOPS_PER_PATH {
                self.bounds.hops_dropped += 1;
                return;
            }
            path.reply.push(hop);
        }
    }

    /// Paths that are complete at time `now_ns` (monotonic), removed from the open set.
    pub fn ready(&mut self, now_ns: u64) -> Vec<Path> {
        self.ready_at_most(now_ns, usize::MAX)
    }

    /// The same, at most `most` of them: the rest stay open (and count against the
    /// bound) until the next call, so reporting a flood's paths comes in slices.
    pub fn ready_at_most(&mut self, now_ns: u64, most: usize) -> Vec<Path> {
        self.reported
            .retain(|_, (_, ts)| now_ns.saturating_sub(*ts) <= RETRY_WINDOW_NS);
        let timeout = self.timeout_ns;
        let done: Vec<Key> = self
            .open
            .iter()
            .filter(|(_, p)| {
                let quiet = now_ns.saturating_sub(p.last_ts());
                (!p.reply.is_empty() && quiet >= SETTLE_NS)
                    || (p.reply.is_empty() && quiet >= timeout)
            })
            .map(|(k, _)| k.clone())
            .take(most)
            .collect();
        self.take(done)
    }

    /// Everything still open (at the end of a trace).
    pub fn drain(&mut self) -> Vec<Path> {
        let all: Vec<Key> = self.open.keys().cloned().collect();
        self.take(all)
    }

    fn take(&mut self, keys: Vec<Key>) -> Vec<Path> {
        let closed = std::mem::take(&mut self.closed);
        let mut timed_out: Vec<Path> = Vec::new();
        for k in keys {
            let Some(p) = self.open.remove(&k) else {
                continue;
            };
            // Remembered so that the retry coming after this report gets the next number.
            if p.reply.is_empty()
                && !matches!(k, Key::Echo { .. })
                && self.reported.len() < MAX_OPEN_PATHS
            {
                self.reported.insert(k, (p.attempt, p.last_ts()));
            }
            timed_out.push(p);
        }
        let mut out: Vec<Path> = timed_out
            .into_iter()
            .chain(closed)
            .map(|mut p| {
                p.verdict = if p.reply.is_empty() {
                    Verdict::Unanswered
                } else {
                    Verdict::Answered
                };
                p.request.sort_by_key(|h| h.ts_ns);
                p.reply.sort_by_key(|h| h.ts_ns);
                p
            })
            .collect();
        out.sort_by_key(|p| p.request.first().map_or(0, |h| h.ts_ns));
        out
    }
}

fn new_path(hop: &Hop) -> Path {
    let (proto, exchange, src, dst, id, seq) = match &hop.proto {
        Proto::Arp {
            sender_ip,
            target_ip,
            ..
        } => (
            "arp",
            Exchange::Arp,
            IpAddr::V4(*sender_ip),
            IpAddr::V4(*target_ip),
            None,
            None,
        ),
        Proto::Icmp {
            v6,
            src,
            dst,
            id,
            seq,
            icmp_type,
            nd_target,
            ..
        } => {
            let echo = is_echo(*v6, *icmp_type);
            let dst = nd_target.map(IpAddr::V6).unwrap_or(*dst);
            (
                if *v6 { "icmpv6" } else { "icmp" },
                if echo { Exchange::Echo } else { Exchange::Nd },
                *src,
                dst,
                echo.then_some(*id),
                echo.then_some(*seq),
            )
        }
    };
    Path {
        proto,
        exchange,
        attempt: 1,
        src,
        dst,
        id,
        seq,
        request: Vec::new(),
        reply: Vec::new(),
        verdict: Verdict::Unanswered,
        findings: Vec::new(),
        drops: Vec::new(),
    }
}

/// The path key of a hop and whether it belongs to the request direction.
fn classify(hop: &Hop) -> Option<(Key, bool)> {
    match &hop.proto {
        Proto::Arp {
            op,
            sender_ip,
            target_ip,
            ..
        } => match op {
            1 => Some((
                Key::Arp {
                    asker: IpAddr::V4(*sender_ip),
                    target: IpAddr::V4(*target_ip),
                },
                true,
            )),
            2 => Some((
                Key::Arp {
                    asker: IpAddr::V4(*target_ip),
                    target: IpAddr::V4(*sender_ip),
                },
                false,
            )),
            _ => None,
        },
        Proto::Icmp {
            v6,
            icmp_type,
            id,
            seq,
            src,
            dst,
            nd_target,
            ..
        } => {
            if is_echo(*v6, *icmp_type) {
                let request = is_echo_request(*v6, *icmp_type);
                let (a, b) = if request { (*src, *dst) } else { (*dst, *src) };
                Some((
                    Key::Echo {
                        v6: *v6,
                        a,
                        b,
                        id: *id,
                        seq: *seq,
                    },
                    request,
                ))
            } else if src.is_unspecified() {
                // Duplicate address detection: a solicitation from :: expects no answer,
                // so it is a hop but never an (unanswered) path.
                None
            } else {
                let solicitation = *icmp_type == 135;
                nd_target.map(|t| {
                    (
                        Key::Nd {
                            asker: if solicitation { *src } else { *dst },
                            target: IpAddr::V6(t),
                        },
                        solicitation,
                    )
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn hop(ns: &str, ifname: &str, egress: bool, ts: u64, t: u8) -> Hop {
        let (src, dst) = if t == 8 {
            ("10.1.1.2", "10.1.1.3")
        } else {
            ("10.1.1.3", "10.1.1.2")
        };
        Hop {
            ts_ns: ts,
            netns: ns.into(),
            netns_inode: 1,
            ifname: ifname.into(),
            ifindex: 2,
            egress,
            len: 98,
            vlan: None,
            proto: Proto::Icmp {
                v6: false,
                icmp_type: t,
                code: 0,
                id: 7,
                seq: 1,
                src: src
                    .parse::<Ipv4Addr>()
                    .map(IpAddr::V4)
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                dst: dst
                    .parse::<Ipv4Addr>()
                    .map(IpAddr::V4)
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                nd_target: None,
            },
            frame: Vec::new(),
            impaired: None,
            peer: None,
        }
    }

    #[test]
    fn echo_request_and_reply_make_one_path() {
        let mut c = Correlator::new(1_000_000_000);
        c.push(hop("ns1", "veth0", true, 10, 8));
        c.push(hop("ns2", "veth1", false, 20, 8));
        c.push(hop("ns2", "veth1", true, 30, 0));
        c.push(hop("ns1", "veth0", false, 40, 0));
        assert!(c.ready(40 + SETTLE_NS - 1).is_empty(), "not settled yet");
        let paths = c.ready(40 + SETTLE_NS);
        assert_eq!(paths.len(), 1);
        let p = &paths[0];
        assert_eq!(p.verdict, Verdict::Answered);
        assert_eq!(p.request.len(), 2);
        assert_eq!(p.reply.len(), 2);
        assert_eq!(p.rtt_ns(), Some(30));
        assert!(!p.reply_via_lo());
    }

    #[test]
    fn ready_paths_come_in_slices_and_the_rest_stay_open() {
        let mut c = Correlator::new(1000);
        for seq in 1..=3u16 {
            let mut h = hop("ns1", "veth0", true, 10 + u64::from(seq), 8);
            if let Proto::Icmp { seq: s, .. } = &mut h.proto {
                *s = seq;
            }
            c.push(h);
        }
        assert_eq!(c.ready_at_most(2000, 2).len(), 2);
        assert_eq!(c.ready_at_most(2000, 2).len(), 1, "the third stayed open");
        assert!(c.ready_at_most(2000, 2).is_empty());
    }

    #[test]
    fn lone_request_ends_unanswered_after_timeout() {
        let mut c = Correlator::new(1000);
        c.push(hop("ns1", "veth0", true, 10, 8));
        assert!(c.ready(500).is_empty());
        let paths = c.ready(1010);
        assert_eq!(paths.len(), 1);
        assert_eq!(paths[0].verdict, Verdict::Unanswered);
        assert_eq!(paths[0].last_seen().map(|h| &*h.ifname), Some("veth0"));
    }

    fn arp(ns: &str, ifname: &str, ifindex: u32, egress: bool, ts: u64) -> Hop {
        let mut h = hop(ns, ifname, egress, ts, 8);
        h.ifindex = ifindex;
        h.proto = Proto::Arp {
            op: 1,
            sender_ip: Ipv4Addr::new(10, 1, 1, 2),
            target_ip: Ipv4Addr::new(10, 1, 1, 9),
            sender_mac: [2, 0, 0, 0, 0, 1],
            target_mac: [0; 6],
        };
        h
    }

    #[test]
    fn impaired_and_copied_hops_stay_on_their_path() {
        let impaired = |mut h: Hop, action| {
            h.impaired = Some(crate::trace::event::Impaired::new(action, None));
            h
        };
        let mut c = Correlator::new(1_000_000_000);
        // An ARP request the impairment drops: its hop is no retry.
        c.push(arp("ns1", "veth0", 2, true, 10));
        c.push(impaired(arp("ns1", "veth0", 2, true, 11), "drop"));
        // An echo the impairment copies: original, copy and the report, one path.
        c.push(hop("ns1", "veth0", true, 20, 8));
        c.push(impaired(hop("ns1", "veth0", true, 22, 8), "duplicate"));
        c.push(hop("ns1", "veth0", true, 21, 8));
        c.push(hop("ns2", "veth1", false, 23, 8));
        let paths = c.drain();
        assert_eq!(paths.len(), 2);
        assert_eq!(paths[0].request.len(), 2);
        let last = paths[0].last_seen().and_then(|h| h.impaired.as_ref());
        assert_eq!(last.map(|i| i.action), Some("drop"));
        assert_eq!(paths[1].request.len(), 4);
        assert_eq!(
            paths[1].request[2]
                .impaired
                .as_ref()
                .map(|i| i.reason.as_str()),
            Some("duplicated by impairment: duplicate (setting since cleared)")
        );
    }

    #[test]
    fn each_arp_retry_is_its_own_attempt() {
        let mut c = Correlator::new(1_000_000_000);
        c.push(arp("ns1", "veth0", 2, true, 10));
        c.push(arp("ns2", "veth1", 3, false, 11));
        c.push(arp("ns1", "veth0", 2, true, 1_000_000_010));
        c.push(arp("ns2", "veth1", 3, false, 1_000_000_011));
        let paths = c.drain();
        assert_eq!(paths.len(), 2, "two attempts");
        for p in &paths {
            assert_eq!(p.request.len(), 2, "no hop listed twice: {:?}", p.request);
            assert_eq!(p.verdict, Verdict::Unanswered);
        }
        assert!(paths[0].request[0].ts_ns < paths[1].request[0].ts_ns);
        let attempts: Vec<u32> = paths.iter().map(|p| p.attempt).collect();
        assert_eq!(attempts, [1, 2]);
        assert!(paths.iter().all(|p| p.exchange == Exchange::Arp));
    }

    #[test]
    fn a_retry_after_the_report_is_the_next_attempt() {
        let mut c = Correlator::new(500_000_000);
        c.push(arp("ns1", "veth0", 2, true, 10));
        let first = c.ready(600_000_000);
        assert_eq!(first.len(), 1, "timed out and reported");
        assert_eq!(first[0].attempt, 1);
        c.push(arp("ns1", "veth0", 2, true, 1_000_000_010));
        let second = c.drain();
        assert_eq!(second.len(), 1, "the first attempt is not reported again");
        assert_eq!(second[0].attempt, 2);
        assert_eq!(second[0].request.len(), 1);
        // Long after: a new exchange, attempt 1 again.
        c.push(arp("ns1", "veth0", 2, true, 20_000_000_000));
        assert!(c.ready(20_600_000_000).iter().all(|p| p.attempt == 1));
    }

    #[test]
    fn memory_is_bounded_and_what_is_left_out_is_counted() {
        let mut c = Correlator::new(u64::MAX);
        // One path that loops through many hops (a broadcast storm).
        for i in 0..(MAX_HOPS_PER_PATH as u64 + 10) {
            c.push(arp("ns1", &format!("v{i}"), 100 + i as u32, false, i));
        }
        assert_eq!(c.bounds().hops_dropped, 10);
        // Distinct requests beyond the cap of open paths (one is open already).
        for seq in 0..(MAX_OPEN_PATHS as u64 - 1 + 5) {
            let mut h = hop("ns1", "veth0", true, seq, 8);
            if let Proto::Icmp { seq: s, id, .. } = &mut h.proto {
                *s = seq as u16;
                *id = (seq >> 16) as u16 + 1;
            }
            c.push(h);
        }
        assert_eq!(c.bounds().paths_dropped, 5);
        assert_eq!(c.drain().len(), MAX_OPEN_PATHS);
    }

    fn nd(ns: &str, icmp_type: u8, src: &str, dst: &str, ts: u64) -> Hop {
        let mut h = hop(ns, "veth0", icmp_type == 135, ts, 8);
        let ip = |a: &str| {
            a.parse::<IpAddr>()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        };
        h.proto = Proto::Icmp {
            v6: true,
            icmp_type,
            code: 0,
            id: 0,
            seq: 0,
            src: ip(src),
            dst: ip(dst),
            nd_target: "fd00::9".parse().ok(),
        };
        h
    }

    #[test]
    fn two_askers_of_one_address_are_two_nd_paths() {
        let mut c = Correlator::new(1_000_000_000);
        c.push(nd("ns1", 135, "fd00::1", "ff02::1:ff00:9", 10));
        c.push(nd("ns2", 135, "fd00::2", "ff02::1:ff00:9", 11));
        c.push(nd("ns9", 136, "fd00::9", "fd00::2", 20));
        let paths = c.drain();
        assert_eq!(paths.len(), 2);
        assert!(paths.iter().all(|p| p.exchange == Exchange::Nd));
        let answered: Vec<String> = paths
            .iter()
            .filter(|p| p.verdict == Verdict::Answered)
            .map(|p| p.src.to_string())
            .collect();
        assert_eq!(
            answered,
            ["fd00::2"],
            "the advertisement answers its asker only"
        );
    }

    #[test]
    fn reply_over_lo_is_recognised() {
        let mut c = Correlator::new(1_000_000_000);
        c.push(hop("ns1", "veth0", true, 10, 8));
        c.push(hop("ns1", "veth1", false, 20, 8));
        c.push(hop("ns1", "lo", true, 30, 0));
        c.push(hop("ns1", "lo", false, 31, 0));
        let p = c.drain().remove(0);
        assert!(p.reply_via_lo());
    }
}
