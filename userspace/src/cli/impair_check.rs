//! `impair LAB NS/IFNAME --check`: a bounded probe across the impaired end — pings
//! for loss, duplication and corruption (and delay), a short TCP run for rate —
//! printing configured vs achieved, and failing when they disagree beyond 5σ.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::{
    impair::{self, EndRef, Impairment},
    inspect::{self, LabView},
    netns,
};

const PINGS: u32 = 2000;
const TCP_SECONDS: f64 = 3.0;
/// How far the TBF rate may be off (the acceptance bound).
const RATE_TOLERANCE: f64 = 0.15;
const SIGMAS: f64 = 5.0;

fn ipv4_of(addrs: &[String]) -> Option<(Ipv4Addr, u8)> {
    addrs.iter().find_map(|a| {
        let (ip, len) = a.split_once('/')?;
        Some((ip.parse().ok()?, len.parse().ok()?))
    })
}

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    };
    u32::from(a) & mask == u32::from(b) & mask
}

/// (source namespace, destination address): a path whose packets leave `end`.
fn path(view: &LabView, end: &EndRef) -> anyhow::Result<(String, Ipv4Addr)> {
    let link = view.link(&end.netns, &end.ifname).ok_or_else(|| {
        anyhow::anyhow!("lab {}: {end} is not an interface of this lab", view.lab)
    })?;
    let peer_addr = link
        .peer
        .as_ref()
        .and_then(|p| view.link(&p.netns, &p.name))
        .and_then(|p| ipv4_of(&p.addresses).map(|a| (p.netns.clone(), a)));
    let own = ipv4_of(&link.addresses);
    // Another namespace's address in `subnet`, other than in `not_ns`.
    let other = |ip: Ipv4Addr, len: u8, not_ns: &str| {
        view.links.iter().find_map(|l| {
            let (a, _) = ipv4_of(&l.addresses)?;
            (l.netns != not_ns && l.netns != end.netns && a != ip && same_subnet(a, ip, len))
                .then(|| (l.netns.clone(), a))
        })
    };
    match (own, peer_addr) {
        (Some(_), Some((_, (dst, _)))) => Ok((end.netns.clone(), dst)),
        (Some((ip, len)), None) => other(ip, len, &end.netns)
            .map(|(_, dst)| (end.netns.clone(), dst))
            .ok_or_else(|| anyhow::anyhow!("lab {}: {end}: no IPv4 address across this link to probe (fix: give the far end an address)", view.lab)),
        (None, Some((peer_ns, (dst, len)))) => other(dst, len, &peer_ns)
            .map(|(src_ns, _)| (src_ns, dst))
            .ok_or_else(|| anyhow::anyhow!("lab {}: {end}: no other namespace with an address in {dst}/{len} to send from", view.lab)),
        (None, None) => anyhow::bail!(
            "lab {}: {end}: neither it nor its peer has an IPv4 address, so there is nothing to probe (fix: add addresses to the lab file)",
            view.lab
        ),
    }
}

struct PingResult {
    sent: u64,
    received: u64,
    duplicates: u64,
    avg_rtt_ms: Option<f64>,
}

fn number_before(text: &str, word: &str) -> Option<u64> {
    let i = text.find(word)?;
    text[..i]
        .trim_end()
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn run_ping(ns: &str, dst: Ipv4Addr, count: u32) -> anyhow::Result<PingResult> {
    let out = netns::run_in(ns, || {
        std::process::Command::new("ping")
            .args([
                "-q",
                "-n",
                "-c",
                &count.to_string(),
                "-i",
                "0.001",
                "-W",
                "1",
            ])
            .arg(dst.to_string())
            .stdin(std::process::Stdio::null())
            .output()
    })?
    .map_err(|e| {
        anyhow::anyhow!("cannot run ping in namespace {ns}: {e} (fix: install iputils-ping)")
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let sent = number_before(&text, "packets transmitted")
        .ok_or_else(|| anyhow::anyhow!("ping in namespace {ns} printed no summary: {text}"))?;
    let received = number_before(&text, "received").unwrap_or(0);
    let duplicates = number_before(&text, "duplicates").unwrap_or(0);
    let avg_rtt_ms = text
        .lines()
        .find(|l| l.starts_with("rtt") || l.starts_with("round-trip"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok());
    Ok(PingResult {
        sent,
        received,
        duplicates,
        avg_rtt_ms,
    })
}

/// Bytes per second of one TCP stream from `src_ns` to `dst` for [`TCP_SECONDS`].
fn run_tcp(src_ns: &str, dst: Ipv4Addr, dst_ns: &str) -> anyhow::Result<f64> {
    let listener = netns::run_in(dst_ns, || TcpListener::bind(SocketAddrV4::new(dst, 0)))?
        .map_err(|e| anyhow::anyhow!("cannot listen on {dst} in namespace {dst_ns}: {e}"))?;
    let port = listener.local_addr()?.port();
    let server = std::thread::spawn(move || -> std::io::Result<(u64, Duration)> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        let mut start = None;
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            start.get_or_insert_with(Instant::now);
            total += n as u64;
        }
        Ok((total, start.map(|s| s.elapsed()).unwrap_or_default()))
    });
    let sent = netns::run_in(src_ns, || -> std::io::Result<()> {
        let mut s = TcpStream::connect_timeout(
            &SocketAddrV4::new(dst, port).into(),
            Duration::from_secs(3),
        )?;
        let buf = vec![0x5au8; 1 << 16];
        let end = Instant::now() + Duration::from_secs_f64(TCP_SECONDS);
        while Instant::now() < end {
            s.write_all(&buf)?;
        }
        s.shutdown(std::net::Shutdown::Write)
    })?;
    sent.map_err(|e| anyhow::anyhow!("TCP from namespace {src_ns} to {dst}: {e}"))?;
    let (bytes, elapsed) = server
        .join()
        .map_err(|_| anyhow::anyhow!("TCP receiver failed"))?
        .map_err(|e| anyhow::anyhow!("TCP receiver in namespace {dst_ns}: {e}"))?;
    Ok(bytes as f64 / elapsed.as_secs_f64().max(1e-3))
}

/// A count out of `n` trials against probability `p`: (low, high) at [`SIGMAS`].
fn binomial_bounds(n: u64, p: f64) -> (f64, f64) {
    let n = n as f64;
    let sd = (n * p * (1.0 - p)).sqrt();
    // +2: the first packets may wait for ARP, which the impairment also affects.
    let slack = SIGMAS * sd + 2.0;
    ((n * p - slack).max(0.0), (n * p + slack).min(n))
}

struct Row {
    what: &'static str,
    configured: String,
    expected: String,
    achieved: String,
    bounds: String,
    ok: Option<bool>,
}

fn pct(v: f64) -> String {
    format!("{:.3}%", v * 100.0)
}

pub async fn check(lab: &str, end: &EndRef) -> anyhow::Result<ExitCode> {
    let view = inspect::lab_view(lab).await?;
    let imp: Impairment = impair::recorded(lab, &end.netns, &end.ifname).ok_or_else(|| {
        anyhow::anyhow!("lab {lab}: {end} has no impairment to check (fix: set one with `vethscope impair {lab} {end} --loss 1%`)")
    })?;
    let (src_ns, dst) = path(&view, end)?;
    let dst_ns = view
        .links
        .iter()
        .find(|l| ipv4_of(&l.addresses).is_some_and(|(a, _)| a == dst))
        .map(|l| l.netns.clone())
        .unwrap_or_default();
    println!("lab {lab}: checking {end} ({imp}): from namespace {src_ns} to {dst}, {PINGS} pings");
    let mut rows = Vec::new();
    let l = imp.loss.map_or(0.0, |p| p.fraction());
    let c = imp.corrupt.map_or(0.0, |p| p.fraction());
    let d = imp.duplicate.map_or(0.0, |p| p.fraction());
    let ping = {
        let src = src_ns.clone();
        tokio::task::spawn_blocking(move || run_ping(&src, dst, PINGS)).await??
    };
    // A corrupted echo request fails the receiver's checksum and is dropped: it looks
    // like loss to ping.
    let p_lost = 1.0 - (1.0 - l) * (1.0 - c);
    let lost = ping.sent.saturating_sub(ping.received);
    let (lo, hi) = binomial_bounds(ping.sent, p_lost);
    let configured = match (imp.loss, imp.corrupt) {
        (Some(l), Some(c)) => format!("loss {l} + corrupt {c}"),
        (Some(l), None) => format!("loss {l}"),
        (None, Some(c)) => format!("corrupt {c}"),
        (None, None) => "0%".into(),
    };
    rows.push(Row {
        what: "loss",
        configured,
        expected: pct(p_lost),
        achieved: format!(
            "{} ({lost}/{})",
            pct(lost as f64 / ping.sent.max(1) as f64),
            ping.sent
        ),
        bounds: format!("{:.0}–{:.0} lost", lo.ceil(), hi.floor()),
        ok: Some((lo..=hi).contains(&(lost as f64))),
    });
    if let Some(dup) = imp.duplicate {
        // A duplicated request gets two replies: ping counts one "DUP!".
        let p_dup = (1.0 - l) * (1.0 - c) * d;
        let (lo, hi) = binomial_bounds(ping.sent, p_dup);
        rows.push(Row {
            what: "duplicate",
            configured: dup.to_string(),
            expected: pct(p_dup),
            achieved: format!(
                "{} ({}/{})",
                pct(ping.duplicates as f64 / ping.sent.max(1) as f64),
                ping.duplicates,
                ping.sent
            ),
            bounds: format!("{:.0}–{:.0} duplicates", lo.ceil(), hi.floor()),
            ok: Some((lo..=hi).contains(&(ping.duplicates as f64))),
        });
    }
    if let Some(delay) = imp.delay {
        let jitter = imp.jitter.map_or(0.0, |j| j.0 as f64 / 1e6);
        let want = delay.0 as f64 / 1e6;
        let got = ping.avg_rtt_ms;
        rows.push(Row {
            what: "delay",
            configured: format!(
                "{delay}{}",
                imp.jitter.map(|j| format!(" ± {j}")).unwrap_or_default()
            ),
            expected: format!("≥ {want:.1} ms RTT"),
            achieved: got.map_or("no replies".into(), |g| format!("{g:.2} ms RTT")),
            bounds: format!("{:.1}–{:.1} ms", want - jitter, want + jitter + 5.0),
            ok: got.map(|g| g >= want - jitter && g <= want + jitter + 5.0),
        });
    }
    if let Some(rate) = imp.rate {
        let src = src_ns.clone();
        let dns = dst_ns.clone();
        let bytes_per_s = tokio::task::spawn_blocking(move || run_tcp(&src, dst, &dns)).await??;
        let want = rate.0 as f64;
        let got = bytes_per_s * 8.0;
        let lossy = l > 0.0 || c > 0.0;
        rows.push(Row {
            what: "rate",
            configured: rate.to_string(),
            expected: rate.to_string(),
            achieved: format!("{:.2} mbit/s ({:.3}×)", got / 1e6, got / want),
            bounds: if lossy {
                "not judged: loss slows TCP".into()
            } else {
                format!(
                    "{:.1}–{:.1} mbit/s",
                    want * (1.0 - RATE_TOLERANCE) / 1e6,
                    want * (1.0 + RATE_TOLERANCE) / 1e6
                )
            },
            ok: (!lossy).then(|| (got - want).abs() <= want * RATE_TOLERANCE),
        });
    }
    println!(
        "{:<10} {:<26} {:<14} {:<26} {:<24} verdict",
        "", "configured", "expected", "achieved", "bounds (5σ)"
    );
    let mut failed = false;
    for r in &rows {
        let verdict = match r.ok {
            Some(true) => "ok",
            Some(false) => {
                failed = true;
                "OUTSIDE"
            }
            None => "-",
        };
        println!(
            "{:<10} {:<26} {:<14} {:<26} {:<24} {verdict}",
            r.what, r.configured, r.expected, r.achieved, r.bounds
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summary() {
        let t = "--- 10.1.1.3 ping statistics ---\n2000 packets transmitted, 1978 received, +9 duplicates, 1.1% packet loss, time 2403ms\nrtt min/avg/max/mdev = 0.011/0.032/0.410/0.012 ms\n";
        assert_eq!(number_before(t, "packets transmitted"), Some(2000));
        assert_eq!(number_before(t, "received"), Some(1978));
        assert_eq!(number_before(t, "duplicates"), Some(9));
        let (lo, hi) = binomial_bounds(2000, 0.01);
        assert!(lo < 20.0 && hi > 20.0 && hi < 45.0);
        assert_eq!(binomial_bounds(2000, 0.0), (0.0, 2.0));
        assert!(same_subnet(
            "10.1.1.2".parse().unwrap(),
            "10.1.1.3".parse().unwrap(),
            24
        ));
    }
}
