//! iperf3 inside the lab's namespaces: the server in one namespace (`iperf3 -s -1 -J`,
//! bound to the server address), the client in the other, whole-machine CPU sampled
//! around the client, and the client's JSON parsed.
//!
//! Processes enter their namespace with `setns(2)` between fork and exec (`pre_exec`),
//! on a descriptor opened beforehand with [`crate::netns::open`]: the same mechanism the
//! library uses for threads, no dependency on `ip netns exec`, and nothing else changes
//! (`ip netns exec` also remounts /sys, which iperf3 does not need).

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use super::{BenchError, cpu::CpuSnapshot};
use crate::netns;

/// The port the iperf3 server listens on (each lab has namespaces of its own).
pub const PORT: u16 = 5201;

/// A command that runs inside namespace `ns`; killed if dropped before it ends.
pub fn command_in(ns: &str, program: &str) -> Result<Command, BenchError> {
    let fd: OwnedFd = netns::open(ns)?;
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    // SAFETY: the closure runs in the forked child before exec and only makes the
    // setns system call, which is async-signal-safe; `fd` stays open in the parent
    // for as long as the Command (and so the closure) lives.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// What one iperf3 run should do.
#[derive(Clone, Debug)]
pub struct IperfSpec {
    pub server_ns: String,
    pub client_ns: String,
    pub server_ip: std::net::Ipv4Addr,
    pub seconds: u64,
    /// Parallel streams (`-P`).
    pub streams: u32,
    /// UDP with 64-byte datagrams at unlimited rate instead of TCP.
    pub udp: bool,
    /// For messages: "lab vsb-bridge, TCP 4 streams".
    pub what: String,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct TcpResult {
    pub gbps: f64,
    pub retransmits: Option<u64>,
    /// Whole-machine CPU use while the client ran, % of all CPUs.
    pub cpu_percent: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct UdpResult {
    /// Datagrams per second that arrived at the server.
    pub received_pps: f64,
    /// Datagrams per second the client sent.
    pub sent_pps: f64,
    pub loss_percent: f64,
    pub cpu_percent: Option<f64>,
}

/// Why iperf3's JSON gave no number.
#[derive(Debug, PartialEq)]
pub enum ParseError {
    /// iperf3 itself reported an error (`"error": "..."`).
    Reported(String),
    /// Not the JSON we expect.
    Malformed(String),
}

fn to_bench_error(what: &str, e: ParseError) -> BenchError {
    match e {
        ParseError::Reported(message) => BenchError::Iperf {
            what: what.to_string(),
            message,
        },
        ParseError::Malformed(detail) => BenchError::IperfOutput {
            what: what.to_string(),
            detail,
        },
    }
}

fn parse_json(text: &str) -> Result<Value, ParseError> {
    let v: Value = serde_json::from_str(text.trim())
        .map_err(|e| ParseError::Malformed(format!("not JSON ({e})")))?;
    if let Some(err) = v.get("error").and_then(Value::as_str) {
        return Err(ParseError::Reported(err.to_string()));
    }
    Ok(v)
}

fn number(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_f64()
}

/// TCP: the receiver's rate, `end.sum_received.bits_per_second`, in Gbit/s.
pub fn parse_tcp(text: &str) -> Result<TcpResult, ParseError> {
    let v = parse_json(text)?;
    let bps = number(&v, &["end", "sum_received", "bits_per_second"])
        .ok_or_else(|| ParseError::Malformed("no end.sum_received.bits_per_second".into()))?;
    Ok(TcpResult {
        gbps: bps / 1e9,
        retransmits: v
            .pointer("/end/sum_sent/retransmits")
            .and_then(Value::as_u64),
        cpu_percent: None,
    })
}

/// UDP: datagrams that arrived per second, from `end.sum_received` (or `end.sum`).
pub fn parse_udp(text: &str) -> Result<UdpResult, ParseError> {
    let v = parse_json(text)?;
    let sum = ["sum_received", "sum"]
        .iter()
        .find_map(|k| {
            v.get("end")
                .and_then(|e| e.get(*k))
                .filter(|s| s.get("packets").is_some())
        })
        .ok_or_else(|| ParseError::Malformed("no end.sum_received.packets".into()))?;
    let packets = number(sum, &["packets"]).unwrap_or(0.0);
    let lost = number(sum, &["lost_packets"]).unwrap_or(0.0).max(0.0);
    let seconds = number(sum, &["seconds"])
        .filter(|s| *s > 0.0)
        .ok_or_else(|| ParseError::Malformed("no end.sum_received.seconds".into()))?;
    Ok(UdpResult {
        received_pps: (packets - lost).max(0.0) / seconds,
        sent_pps: packets / seconds,
        loss_percent: if packets > 0.0 {
            100.0 * lost / packets
        } else {
            0.0
        },
        cpu_percent: None,
    })
}

pub async fn run_tcp(spec: &IperfSpec) -> Result<TcpResult, BenchError> {
    let (out, cpu) = run(spec).await?;
    let mut r = parse_tcp(&out).map_err(|e| to_bench_error(&spec.what, e))?;
    r.cpu_percent = cpu;
    Ok(r)
}

pub async fn run_udp(spec: &IperfSpec) -> Result<UdpResult, BenchError> {
    let (out, cpu) = run(spec).await?;
    let mut r = parse_udp(&out).map_err(|e| to_bench_error(&spec.what, e))?;
    r.cpu_percent = cpu;
    Ok(r)
}

/// Runs server and client; returns the client's stdout and the CPU use during it.
async fn run(spec: &IperfSpec) -> Result<(String, Option<f64>), BenchError> {
    let ip = spec.server_ip.to_string();
    let port = PORT.to_string();
    let mut server = command_in(&spec.server_ns, "iperf3")?;
    server
        .args(["-s", "-1", "-J", "-B", &ip, "-p", &port])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut server = server.spawn().map_err(|source| BenchError::Spawn {
        what: format!("the iperf3 server in namespace {}", spec.server_ns),
        source,
    })?;
    wait_listening(&mut server, &spec.what).await?;

    let mut client = command_in(&spec.client_ns, "iperf3")?;
    client
        .args([
            "-c",
            &ip,
            "-p",
            &port,
            "-J",
            "-t",
            &spec.seconds.to_string(),
        ])
        .args(["-P", &spec.streams.max(1).to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if spec.udp {
        client.args(["-u", "-l", "64", "-b", "0"]);
    }
    let before = CpuSnapshot::now()?;
    let client = client.spawn().map_err(|source| BenchError::Spawn {
        what: format!("the iperf3 client in namespace {}", spec.client_ns),
        source,
    })?;
    let limit = spec.seconds as f64 + 30.0;
    let out = tokio::time::timeout(Duration::from_secs_f64(limit), client.wait_with_output())
        .await
        .map_err(|_| BenchError::Timeout {
            what: format!("{}: the iperf3 client", spec.what),
            secs: limit,
        })?
        .map_err(|e| BenchError::io(format!("{}: the iperf3 client", spec.what), e))?;
    let after = CpuSnapshot::now()?;

    // `-1`: the server ends after its one test; give it a moment, then stop it.
    if tokio::time::timeout(Duration::from_secs(5), server.wait())
        .await
        .is_err()
    {
        let _ = server.start_kill();
        let _ = server.wait().await;
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if stdout.trim().is_empty() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(BenchError::Iperf {
            what: spec.what.clone(),
            message: format!(
                "no output ({}){}",
                out.status,
                last_line(&stderr)
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default()
            ),
        });
    }
    Ok((stdout, before.percent_until(&after)))
}

fn last_line(s: &str) -> Option<&str> {
    s.lines().map(str::trim).rfind(|l| !l.is_empty())
}

/// Waits until the server has a TCP socket listening on [`PORT`] in its namespace
/// (`/proc/PID/net/tcp` shows the sockets of the process's namespace), or fails when
/// it exits first. A test connection is no option: `-1` servers count it as their test.
async fn wait_listening(server: &mut Child, what: &str) -> Result<(), BenchError> {
    let Some(pid) = server.id() else {
        return Err(BenchError::Iperf {
            what: what.to_string(),
            message: "the server exited at once".into(),
        });
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if listening(pid, PORT) {
            return Ok(());
        }
        if let Ok(Some(status)) = server.try_wait() {
            let mut stderr = String::new();
            if let Some(mut e) = server.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut stderr).await;
            }
            return Err(BenchError::Iperf {
                what: what.to_string(),
                message: format!(
                    "the server exited ({status}) before listening{}",
                    last_line(&stderr)
                        .map(|l| format!(": {l}"))
                        .unwrap_or_default()
                ),
            });
        }
        if tokio::time::Instant::now() > deadline {
            return Err(BenchError::Timeout {
                what: format!("{what}: the iperf3 server's start"),
                secs: 10.0,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn listening(pid: u32, port: u16) -> bool {
    ["tcp", "tcp6"].iter().any(|f| {
        std::fs::read_to_string(format!("/proc/{pid}/net/{f}"))
            .is_ok_and(|text| proc_net_tcp_listens(&text, port))
    })
}

/// True when a `/proc/net/tcp`-format table has a socket in LISTEN (0A) on `port`.
pub fn proc_net_tcp_listens(table: &str, port: u16) -> bool {
    let want = format!("{port:04X}");
    table.lines().skip(1).any(|line| {
        let mut f = line.split_whitespace();
        let local = f.nth(1);
        let state = f.nth(1);
        state == Some("0A")
            && local
                .and_then(|l| l.rsplit(':').next())
                .is_some_and(|p| p.eq_ignore_ascii_case(&want))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_sample_parses() {
        let r = parse_tcp(include_str!("testdata/iperf3-tcp.json")).expect("parses");
        assert!((r.gbps - 17.086_891_137_884_016).abs() < 1e-9, "{r:?}");
        assert_eq!(r.retransmits, Some(14907));
    }

    #[test]
    fn udp_sample_parses() {
        let r = parse_udp(include_str!("testdata/iperf3-udp.json")).expect("parses");
        // 253540 sent, 1898 lost in 1.000096 s.
        assert!(
            (r.received_pps - 251_642.0 / 1.000_096).abs() < 1e-6,
            "{r:?}"
        );
        assert!((r.sent_pps - 253_540.0 / 1.000_096).abs() < 1e-6);
        assert!((r.loss_percent - 0.748_599_8).abs() < 1e-4);
    }

    #[test]
    fn reported_errors_and_garbage() {
        assert_eq!(
            parse_tcp(include_str!("testdata/iperf3-error.json")),
            Err(ParseError::Reported(
                "unable to connect to server: Connection refused".into()
            ))
        );
        assert!(matches!(
            parse_tcp("iperf3: oops"),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_udp("{\"end\": {}}"),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn listen_detection() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0301010A:1451 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n   1: 0301010A:9C40 0201010A:1451 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n";
        assert!(proc_net_tcp_listens(table, 5201));
        assert!(!proc_net_tcp_listens(table, 40000));
        assert!(!proc_net_tcp_listens("header only\n", 5201));
    }
}
