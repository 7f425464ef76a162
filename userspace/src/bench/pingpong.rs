//! Request/response latency: an echo server on a dedicated thread inside the server
//! namespace, a client on a dedicated thread inside the client namespace, N round trips
//! of small messages (UDP datagrams, or TCP with TCP_NODELAY), each timed on the client.
//!
//! Blocking sockets with short timeouts on plain OS threads: the measurement does not
//! include any async runtime's wake-ups. A [`Cancel`] flag stops both sides early.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};

use super::{BenchError, stats};
use crate::{netns, topology::HOST};

/// Shared stop flag; [`CancelOnDrop`] sets it when the measuring future is dropped.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

pub struct CancelOnDrop(pub Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Udp,
    Tcp,
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
        })
    }
}

#[derive(Clone, Debug)]
pub struct PingSpec {
    pub server_ns: String,
    pub client_ns: String,
    pub server_ip: Ipv4Addr,
    pub proto: Proto,
    /// Timed round trips (after `warmup` untimed ones).
    pub round_trips: u32,
    pub warmup: u32,
    /// Bytes per message (at least 8: the sequence number).
    pub message_bytes: usize,
    /// Run client and server threads on this one CPU. Unpinned, a round trip costs
    /// either a same-CPU switch or a cross-CPU wake-up (an IPI, slow in a VM), and the
    /// median jumps between the two from run to run.
    pub cpu: Option<usize>,
}

/// Round-trip times in microseconds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Rtt {
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub min_us: f64,
    pub max_us: f64,
    /// Timed round trips that got their answer.
    pub round_trips: u32,
    /// Requests that got no answer within the per-message timeout (UDP only).
    pub lost: u32,
}

impl Rtt {
    pub fn from_samples(us: &[f64], lost: u32) -> Option<Self> {
        let mut v: Vec<f64> = us.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        Some(Rtt {
            p50_us: stats::percentile_sorted(&v, 50.0)?,
            p90_us: stats::percentile_sorted(&v, 90.0)?,
            p99_us: stats::percentile_sorted(&v, 99.0)?,
            min_us: *v.first()?,
            max_us: *v.last()?,
            round_trips: u32::try_from(v.len()).unwrap_or(u32::MAX),
            lost,
        })
    }
}

/// How long one answer may take before a UDP request counts as lost.
const ANSWER_TIMEOUT: Duration = Duration::from_millis(200);
/// Consecutive losses after which the peer counts as unreachable.
const MAX_LOST_IN_A_ROW: u32 = 25;
/// Hard limit for one probe; the server thread also gives up after it.
const PROBE_LIMIT: Duration = Duration::from_secs(60);

/// Spawns `f` on a new OS thread that first enters namespace `ns` and, with `cpu`,
/// binds itself to that CPU.
fn spawn_in<R: Send + 'static>(
    ns: &str,
    cpu: Option<usize>,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<std::thread::JoinHandle<Result<R, BenchError>>, BenchError> {
    // Our own namespace needs no setns (and so no privileges).
    let fd = if ns == HOST {
        None
    } else {
        Some(netns::open(ns)?)
    };
    let name = ns.to_string();
    std::thread::Builder::new()
        .name(format!("bench-{ns}"))
        .spawn(move || {
            if let Some(fd) = fd {
                setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|e| BenchError::Probe {
                    what: format!("enter namespace {name}"),
                    detail: e.to_string(),
                })?;
            }
            if let Some(cpu) = cpu {
                pin_to(cpu).map_err(|e| BenchError::Probe {
                    what: format!("bind a thread to CPU {cpu}"),
                    detail: e.to_string(),
                })?;
            }
            Ok(f())
        })
        .map_err(|e| BenchError::io("start a thread", e))
}

/// Binds the calling thread to one CPU.
fn pin_to(cpu: usize) -> nix::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
}

/// The CPU both ends of the latency probe run on: the last one this process may use
/// (CPU 0 tends to take more interrupts). `None` when the affinity cannot be read.
pub fn probe_cpu() -> Option<usize> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
    (0..nix::sched::CpuSet::count())
        .rev()
        .find(|c| set.is_set(*c).unwrap_or(false))
}

fn join<R>(h: std::thread::JoinHandle<Result<R, BenchError>>, what: &str) -> Result<R, BenchError> {
    h.join().unwrap_or_else(|_| {
        Err(BenchError::Probe {
            what: what.to_string(),
            detail: "thread panicked".into(),
        })
    })
}

/// Runs one latency probe (blocking: call it from a blocking context).
pub fn measure(spec: &PingSpec, cancel: &Cancel) -> Result<Rtt, BenchError> {
    let what = format!(
        "{} latency probe from {} to {}",
        spec.proto, spec.client_ns, spec.server_ns
    );
    let probe_err = |detail: String| BenchError::Probe {
        what: what.clone(),
        detail,
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<u16, String>>();
    let stop = Cancel::default();
    let server = {
        let (ip, size, proto, stop, outer) = (
            spec.server_ip,
            spec.message_bytes,
            spec.proto,
            stop.clone(),
            cancel.clone(),
        );
        spawn_in(&spec.server_ns, spec.cpu, move || {
            let is_stopped = || stop.is_cancelled() || outer.is_cancelled();
            match proto {
                Proto::Udp => udp_echo(ip, size, &ready_tx, &is_stopped),
                Proto::Tcp => tcp_echo(ip, size, &ready_tx, &is_stopped),
            }
        })?
    };
    let port = match ready_rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(port)) => port,
        Ok(Err(e)) => {
            stop.cancel();
            let _ = join(server, &what);
            return Err(probe_err(format!("echo server: {e}")));
        }
        Err(_) => {
            stop.cancel();
            let _ = join(server, &what);
            return Err(probe_err("echo server did not start".into()));
        }
    };
    let client = {
        let (ip, spec2, cancel2) = (spec.server_ip, spec.clone(), cancel.clone());
        spawn_in(&spec.client_ns, spec.cpu, move || match spec2.proto {
            Proto::Udp => udp_client(SocketAddrV4::new(ip, port), &spec2, &cancel2),
            Proto::Tcp => tcp_client(SocketAddrV4::new(ip, port), &spec2, &cancel2),
        })?
    };
    let result = join(client, &what);
    stop.cancel();
    let _ = join(server, &what);
    let (samples, lost) = result?.map_err(&probe_err)?;
    Rtt::from_samples(&samples, lost).ok_or_else(|| probe_err("no round trip completed".into()))
}

/// Waits until one UDP round trip succeeds (ARP resolved, ports forwarding), up to `limit`.
pub fn wait_reachable(
    client_ns: &str,
    server_ns: &str,
    server_ip: Ipv4Addr,
    limit: Duration,
    cancel: &Cancel,
) -> Result<(), BenchError> {
    let started = Instant::now();
    let spec = PingSpec {
        server_ns: server_ns.to_string(),
        client_ns: client_ns.to_string(),
        server_ip,
        proto: Proto::Udp,
        round_trips: 1,
        warmup: 0,
        message_bytes: 8,
        cpu: None,
    };
    loop {
        match measure(&spec, cancel) {
            Ok(r) if r.round_trips > 0 => return Ok(()),
            Ok(_) => {}
            Err(e) if started.elapsed() >= limit || cancel.is_cancelled() => {
                return Err(BenchError::Probe {
                    what: format!("{client_ns} cannot reach {server_ip} in {server_ns}"),
                    detail: e.to_string(),
                });
            }
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

type Ready = std::sync::mpsc::Sender<Result<u16, String>>;

/// Binds the echo server's socket and tells the client its port (or why it failed).
fn bind_reporting<T>(ready: &Ready, bind: impl FnOnce() -> std::io::Result<(T, u16)>) -> Option<T> {
    match bind() {
        Ok((sock, port)) => {
            let _ = ready.send(Ok(port));
            Some(sock)
        }
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            None
        }
    }
}

fn udp_echo(ip: Ipv4Addr, size: usize, ready: &Ready, stopped: &dyn Fn() -> bool) {
    let Some(sock) = bind_reporting(ready, || {
        let s = UdpSocket::bind(SocketAddrV4::new(ip, 0))?;
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        let port = s.local_addr()?.port();
        Ok((s, port))
    }) else {
        return;
    };
    let started = Instant::now();
    let mut buf = vec![0u8; size.max(64)];
    while !stopped() && started.elapsed() < PROBE_LIMIT {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&buf[..n], from);
        }
    }
}

fn tcp_echo(ip: Ipv4Addr, size: usize, ready: &Ready, stopped: &dyn Fn() -> bool) {
    let Some(listener) = bind_reporting(ready, || {
        let l = TcpListener::bind(SocketAddrV4::new(ip, 0))?;
        l.set_nonblocking(true)?;
        let port = l.local_addr()?.port();
        Ok((l, port))
    }) else {
        return;
    };
    let started = Instant::now();
    let mut conn = None;
    while conn.is_none() && !stopped() && started.elapsed() < PROBE_LIMIT {
        match listener.accept() {
            Ok((s, _)) => conn = Some(s),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    let Some(mut s) = conn else { return };
    if s.set_nonblocking(false).is_err()
        || s.set_nodelay(true).is_err()
        || s.set_read_timeout(Some(Duration::from_millis(100)))
            .is_err()
    {
        return;
    }
    let mut buf = vec![0u8; size];
    let mut have = 0;
    while !stopped() && started.elapsed() < PROBE_LIMIT {
        match s.read(&mut buf[have..]) {
            Ok(0) => return,
            Ok(n) => {
                have += n;
                if have == size {
                    if s.write_all(&buf).is_err() {
                        return;
                    }
                    have = 0;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

type Samples = Result<(Vec<f64>, u32), String>;

fn udp_client(to: SocketAddrV4, spec: &PingSpec, cancel: &Cancel) -> Samples {
    let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| {
            s.connect(to)?;
            s.set_read_timeout(Some(ANSWER_TIMEOUT))?;
            Ok(s)
        })
        .map_err(|e| format!("client socket: {e}"))?;
    let size = spec.message_bytes.max(8);
    let mut msg = vec![0u8; size];
    let mut buf = vec![0u8; size.max(64)];
    let mut samples = Vec::with_capacity(spec.round_trips as usize);
    let (mut lost, mut lost_in_a_row) = (0u32, 0u32);
    let started = Instant::now();
    for seq in 0..u64::from(spec.warmup + spec.round_trips) {
        if cancel.is_cancelled() {
            return Err("cancelled".into());
        }
        if started.elapsed() > PROBE_LIMIT {
            return Err(format!("took longer than {} s", PROBE_LIMIT.as_secs()));
        }
        msg[..8].copy_from_slice(&seq.to_le_bytes());
        let t0 = Instant::now();
        sock.send(&msg).map_err(|e| format!("send: {e}"))?;
        let answered = loop {
            match sock.recv(&mut buf) {
                // A late answer to an earlier request: keep waiting for ours.
                Ok(n) if n >= 8 && buf[..8] == msg[..8] => break true,
                Ok(_) => {
                    if t0.elapsed() > ANSWER_TIMEOUT {
                        break false;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break false;
                }
                // ECONNREFUSED (ICMP port unreachable) and the like: not answered.
                Err(_) => break false,
            }
        };
        let rtt = t0.elapsed();
        if answered {
            lost_in_a_row = 0;
            if seq >= u64::from(spec.warmup) {
                samples.push(rtt.as_secs_f64() * 1e6);
            }
        } else {
            lost_in_a_row += 1;
            if seq >= u64::from(spec.warmup) {
                lost += 1;
            }
            if lost_in_a_row >= MAX_LOST_IN_A_ROW.min(spec.warmup + spec.round_trips) {
                return Err(format!("{lost_in_a_row} requests in a row got no answer"));
            }
        }
    }
    Ok((samples, lost))
}

fn tcp_client(to: SocketAddrV4, spec: &PingSpec, cancel: &Cancel) -> Samples {
    let mut s = TcpStream::connect_timeout(&to.into(), Duration::from_secs(3))
        .and_then(|s| {
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            Ok(s)
        })
        .map_err(|e| format!("connect to {to}: {e}"))?;
    let size = spec.message_bytes.max(8);
    let mut msg = vec![0u8; size];
    let mut buf = vec![0u8; size];
    let mut samples = Vec::with_capacity(spec.round_trips as usize);
    let started = Instant::now();
    for seq in 0..u64::from(spec.warmup + spec.round_trips) {
        if cancel.is_cancelled() {
            return Err("cancelled".into());
        }
        if started.elapsed() > PROBE_LIMIT {
            return Err(format!("took longer than {} s", PROBE_LIMIT.as_secs()));
        }
        msg[..8].copy_from_slice(&seq.to_le_bytes());
        let t0 = Instant::now();
        s.write_all(&msg).map_err(|e| format!("send: {e}"))?;
        s.read_exact(&mut buf)
            .map_err(|e| format!("receive: {e}"))?;
        let rtt = t0.elapsed();
        if buf[..8] != msg[..8] {
            return Err("the echo did not match the request".into());
        }
        if seq >= u64::from(spec.warmup) {
            samples.push(rtt.as_secs_f64() * 1e6);
        }
    }
    Ok((samples, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_percentiles() {
        let us: Vec<f64> = (1..=1000).map(f64::from).collect();
        let r = Rtt::from_samples(&us, 3).expect("samples");
        assert_eq!((r.p50_us, r.p90_us, r.p99_us), (500.0, 900.0, 990.0));
        assert_eq!(
            (r.min_us, r.max_us, r.round_trips, r.lost),
            (1.0, 1000.0, 1000, 3)
        );
        assert!(Rtt::from_samples(&[], 0).is_none());
    }

    /// Both ends in our own namespace over loopback: the protocol itself works.
    #[test]
    fn echo_round_trips_over_loopback() {
        for proto in [Proto::Udp, Proto::Tcp] {
            let spec = PingSpec {
                server_ns: HOST.into(),
                client_ns: HOST.into(),
                server_ip: Ipv4Addr::LOCALHOST,
                proto,
                round_trips: 200,
                warmup: 10,
                message_bytes: 64,
                cpu: probe_cpu(),
            };
            let r = measure(&spec, &Cancel::default()).expect("loopback echo");
            assert_eq!(r.round_trips + r.lost, 200, "{proto}: {r:?}");
            assert!(r.p50_us <= r.p99_us);
        }
    }
}
