//! `cargo xtask bench scale --serve [--sizes 200,1000] [--tcx-sizes 200] [--scrapes 100]
//! [--ipv6-off] [--old-bin PATH]`: `serve` and `trace` on stars of N namespaces on one Linux bridge
//! (3 links per namespace: its veth end, its `lo`, the bridge port), side by side for
//! the old observer attach (TCX, one RCU grace period per program:
//! `VETHSCOPE_OBSERVER_ATTACH=tcx`), the new one (legacy TC filters, one netlink batch
//! per namespace), and, with `--old-bin`, an older build of vethscope on the same star
//! in the same run (a build of an earlier commit, to compare under the same load).
//!
//! Per run: time from start until every link is counted (serve) or "tracing" (trace),
//! scrape p50/p99 and size, RSS after the scrapes, exit time after SIGTERM; for trace,
//! its RSS (peak) while 8 namespaces flood pings across the star, and the events the
//! kernel could not queue. As root, in `scripts/simhost` or on a scratch machine
//! where nothing is named `vss*`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::star::{Ipv6, Star, utc_now};
use crate::{build, util};

const STAR: Star = Star {
    ns: "vss",
    bridge: "vssbr",
    port: "vssp",
    subnet: 214,
};
const NS: &str = STAR.ns;
const LAB: &str = "vssstar";

struct Options {
    sizes: Vec<usize>,
    tcx_sizes: Vec<usize>,
    scrapes: usize,
    /// serve's --refresh (seconds): how often it re-lists every link.
    refresh: u64,
    build: bool,
    /// Another vethscope binary measured in the same run (e.g. a build of e9af938).
    old_bin: Option<std::path::PathBuf>,
    /// IPv6 in the star's namespaces. On, the kernel floods their autoconfiguration
    /// multicast to every bridge port for seconds after `up`, and whichever build runs
    /// first pays for it: `--ipv6-off` compares the builds without that.
    ipv6: Ipv6,
}

fn sizes(v: Option<String>, what: &str) -> Result<Vec<usize>> {
    let v = v.with_context(|| format!("{what} needs a list, e.g. 200,1000"))?;
    let out: Vec<usize> = v
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{what} {v}: not a list of numbers"))?;
    if let Some(n) = out.iter().find(|&&n| !(2..=1023).contains(&n)) {
        bail!("{what}: {n} is outside 2..=1023 (one Linux bridge holds 1,023 ports)");
    }
    Ok(out)
}

fn parse(args: &[OsString]) -> Result<Options> {
    let mut o = Options {
        sizes: vec![200, 1000],
        tcx_sizes: vec![200],
        scrapes: 100,
        refresh: 5,
        build: true,
        old_bin: None,
        ipv6: Ipv6::On,
    };
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sizes" => o.sizes = sizes(it.next(), "--sizes")?,
            "--tcx-sizes" => o.tcx_sizes = sizes(it.next().or(Some(String::new())), "--tcx-sizes")?,
            "--scrapes" => {
                o.scrapes = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n: &usize| n >= 2)
                    .context("--scrapes needs a number ≥ 2")?
            }
            "--refresh" => {
                o.refresh = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n: &u64| n >= 1)
                    .context("--refresh needs whole seconds ≥ 1")?
            }
            // Reuse target/release/vethscope as it is (figures of a build just made).
            "--no-build" => o.build = false,
            "--ipv6-off" => o.ipv6 = Ipv6::Off,
            "--old-bin" => {
                let p = std::path::PathBuf::from(it.next().context("--old-bin needs a path")?);
                if !p.is_file() {
                    bail!("--old-bin {}: no such file", p.display());
                }
                o.old_bin = Some(p);
            }
            other => bail!(
                "unknown argument {other} (usage: bench scale --serve [--sizes 200,1000] [--tcx-sizes 200] [--scrapes 100] [--refresh 5] [--no-build] [--ipv6-off] [--old-bin PATH])"
            ),
        }
    }
    Ok(o)
}

/// One observer attach mode's figures on one star.
#[derive(Default)]
struct Row {
    mode: String,
    counted: Duration,
    p50: Duration,
    p99: Duration,
    /// CPU time (user + system) of serve per scrape, and until all were counted: what
    /// the figures would be on an idle machine, where wall time is not.
    scrape_cpu: Duration,
    counted_cpu: Duration,
    scrape_bytes: usize,
    /// CPU share (1.0 = one core) of serve while idle: its refresh loop.
    idle_cpu: f64,
    rss_kib: u64,
    /// RSS once every link is counted, before any scrape; peak RSS of the whole run.
    rss_counted_kib: u64,
    hwm_kib: u64,
    serve_exit: Duration,
    tracing: Duration,
    trace_rss_kib: u64,
    trace_exit: Duration,
    trace_tail: String,
}

pub fn run(args: &[OsString]) -> Result<()> {
    let opts = parse(args)?;
    if !util::is_root()? {
        bail!("bench scale --serve needs root (run it in scripts/simhost or on a scratch machine)");
    }
    if opts.build {
        build::cargo_build(&["--package", "vethscope", "--release"])?;
    }
    let bin = util::target_dir().join("release/vethscope");
    let dir = util::target_dir().join("bench-scale");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    if Path::new(&format!("/run/netns/{NS}0")).exists() {
        bail!("namespace {NS}0 exists: an earlier run was interrupted (vethscope down {LAB})");
    }
    let mut report = format!(
        "bench scale --serve, {} UTC, load average at start {}, IPv6 in the namespaces: {}\n",
        utc_now(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim(),
        if opts.ipv6 == Ipv6::On { "on" } else { "off" }
    );
    for &n in &opts.sizes {
        STAR.up_with(&bin, &dir, n, opts.ipv6)?;
        let mut rows = Vec::new();
        let result = (|| -> Result<()> {
            if opts.tcx_sizes.contains(&n) {
                rows.push(bench_mode(&bin, n, "TCX (old)", Some("tcx"), &opts)?);
            }
            if let Some(old) = &opts.old_bin {
                let name = old.file_name().unwrap_or_default().to_string_lossy();
                rows.push(bench_mode(
                    old,
                    n,
                    &format!("{name} (before)"),
                    None,
                    &opts,
                )?);
            }
            rows.push(bench_mode(&bin, n, "this build", None, &opts)?);
            Ok(())
        })();
        let down = util::run(Command::new(&bin).args(["down", LAB]).stdout(Stdio::null()));
        result?;
        down?;
        report.push_str(&table(n, &rows));
    }
    print!("{report}");
    let out = dir.join("report-serve.txt");
    std::fs::write(&out, &report).with_context(|| format!("write {}", out.display()))?;
    println!("(also in {})", out.display());
    Ok(())
}

fn table(n: usize, rows: &[Row]) -> String {
    let links = 3 * n;
    let mut t = format!(
        "\nstar of {n} namespaces ({links} links: veth end, lo, bridge port each)\n\
         | attach | serve: all counted s (CPU s) | scrape p50 / p99 ms (CPU ms) | scrape MB | RSS MB | exit s | trace: tracing s | exit s | RSS under flood MB |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {:.2} ({:.2}) | {:.1} / {:.1} ({:.1}) | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} |",
            r.mode,
            r.counted.as_secs_f64(),
            r.counted_cpu.as_secs_f64(),
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.scrape_cpu.as_secs_f64() * 1e3,
            r.scrape_bytes as f64 / 1e6,
            r.rss_kib as f64 / 1024.0,
            r.serve_exit.as_secs_f64(),
            r.tracing.as_secs_f64(),
            r.trace_exit.as_secs_f64(),
            r.trace_rss_kib as f64 / 1024.0,
        );
    }
    for r in rows {
        let _ = writeln!(
            t,
            "{}: per link start {:.2} ms, exit {:.2} ms; idle CPU {:.1} % of a core; RSS when all counted {:.1} MB, peak {:.1} MB; trace's last words: {}",
            r.mode,
            r.counted.as_secs_f64() * 1e3 / links as f64,
            r.serve_exit.as_secs_f64() * 1e3 / links as f64,
            r.idle_cpu * 100.0,
            r.rss_counted_kib as f64 / 1024.0,
            r.hwm_kib as f64 / 1024.0,
            r.trace_tail
        );
    }
    t
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Spawns `bin ARGS` with stderr piped; returns the child and a channel of its stderr
/// lines (with the time each arrived).
fn spawn(
    bin: &Path,
    args: &[&str],
    attach: Option<&str>,
) -> Result<(Child, mpsc::Receiver<(Instant, String)>)> {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("VETHSCOPE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match attach {
        Some(mode) => cmd.env("VETHSCOPE_OBSERVER_ATTACH", mode),
        None => cmd.env_remove("VETHSCOPE_OBSERVER_ATTACH"),
    };
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawn {}", util::describe(&cmd)))?;
    let stderr = child.stderr.take().context("stderr piped")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    Ok((child, rx))
}

/// Waits (up to `limit`) for a stderr line containing `needle`; when it came.
fn wait_line(
    rx: &mpsc::Receiver<(Instant, String)>,
    needle: &str,
    limit: Duration,
    seen: &mut Vec<String>,
) -> Result<Instant> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((at, line)) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return Ok(at);
                }
            }
            Err(_) => bail!("no line with `{needle}` within {limit:?}: {seen:?}"),
        }
    }
}

fn sigterm_and_wait(child: &mut Child) -> Result<Duration> {
    let t0 = Instant::now();
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait()?;
    let took = t0.elapsed();
    if !status.success() {
        bail!("exited with {status} after SIGTERM");
    }
    Ok(took)
}

/// CPU time (user + system) `pid` has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // SAFETY: sysconf without pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(f.iter().sum::<u64>() as f64 / hz)
}

/// (VmRSS, VmHWM) of `pid` in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One GET of /metrics (a fresh connection, as Prometheus's first scrape): the time
/// from connecting until the last byte arrived, and the raw answer in `raw` (a buffer
/// kept between scrapes, so the client's own allocations stay out of the figure).
fn scrape(addr: &str, raw: &mut Vec<u8>) -> Result<Duration> {
    raw.clear();
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    s.read_to_end(raw)?;
    Ok(t0.elapsed())
}

/// The body of a scrape's raw answer, once its status is checked.
fn scrape_body(raw: &[u8]) -> Result<&str> {
    let text = std::str::from_utf8(raw).context("the answer is not UTF-8")?;
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("no HTTP answer");
    };
    if !head.starts_with("HTTP/1.1 200") {
        bail!("answer: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body)
}

fn ping(from: usize, to: usize, extra: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &format!("{NS}{from}"), "ping"])
        .args(extra)
        .arg(STAR.addr(to))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn bench_mode(
    bin: &Path,
    n: usize,
    mode: &str,
    attach: Option<&str>,
    opts: &Options,
) -> Result<Row> {
    let scrapes = opts.scrapes;
    let links = 3 * n;
    let mut row = Row {
        mode: mode.to_string(),
        ..Row::default()
    };
    let long = Duration::from_secs(600);

    // serve
    let listen = format!("127.0.0.1:{}", free_port()?);
    let started = Instant::now();
    let (mut serve, rx) = spawn(
        bin,
        &[
            "serve",
            LAB,
            "--listen",
            &listen,
            "--refresh",
            &opts.refresh.to_string(),
        ],
        attach,
    )?;
    let mut seen = Vec::new();
    let counted = wait_line(&rx, &format!("counting on {links} links"), long, &mut seen);
    let counted = match counted {
        Ok(at) => at,
        Err(e) => {
            let _ = serve.kill();
            let _ = serve.wait();
            return Err(e);
        }
    };
    row.counted = counted - started;
    row.counted_cpu = cpu_time(serve.id());
    row.rss_counted_kib = rss_kib(serve.id()).0;
    eprintln!(
        "bench serve {n} {mode}: all {links} links counted after {:.2?}",
        row.counted
    );
    let _ = ping(0, n - 1, &["-c", "3", "-i", "0.2", "-q"]).status();
    // Idle: only the refresh loop runs. Attaching makes the kernel announce a change
    // of every bridge port (RTM_NEWLINK, over several seconds), which makes a serve
    // that lists only on changes list once or twice more: let that pass first.
    std::thread::sleep(Duration::from_secs(2 * opts.refresh.min(10)));
    let idle_window = Duration::from_secs(2 * opts.refresh.min(10));
    let idle0 = cpu_time(serve.id());
    std::thread::sleep(idle_window);
    let idle_rate = (cpu_time(serve.id()) - idle0).as_secs_f64() / idle_window.as_secs_f64();
    row.idle_cpu = idle_rate;
    let mut times = Vec::with_capacity(scrapes);
    let cpu0 = cpu_time(serve.id());
    let wall0 = Instant::now();
    let mut raw = Vec::new();
    for _ in 0..scrapes {
        times.push(scrape(&listen, &mut raw)?);
        let body = scrape_body(&raw)?;
        row.scrape_bytes = body.len();
        if times.len() == 1 {
            let want = format!("netns=\"{NS}0\",ifname=\"eth0\"");
            let counted_icmp = body.lines().any(|l| {
                l.starts_with("vethscope_link_packets_total")
                    && l.contains(&want)
                    && l.contains("direction=\"egress\",class=\"icmp\"")
                    && !l.ends_with(" 0")
            });
            if !counted_icmp {
                bail!("{mode}: the pings from {NS}0 are not in the scrape");
            }
        }
    }
    // The refresh loop's share of that time taken out.
    let spent =
        (cpu_time(serve.id()) - cpu0).as_secs_f64() - idle_rate * wall0.elapsed().as_secs_f64();
    row.scrape_cpu = Duration::from_secs_f64(spent.max(0.0) / scrapes as f64);
    times.sort();
    row.p50 = times[times.len() / 2];
    row.p99 = times[(times.len() * 99).div_ceil(100) - 1];
    (row.rss_kib, row.hwm_kib) = rss_kib(serve.id());
    row.serve_exit = sigterm_and_wait(&mut serve)?;
    eprintln!(
        "bench serve {n} {mode}: p50 {:.2?} p99 {:.2?}, RSS {} KiB, exit {:.2?}",
        row.p50, row.p99, row.rss_kib, row.serve_exit
    );

    // trace, with a flood of pings from 8 namespaces across the star
    let started = Instant::now();
    let (mut trace, rx) = spawn(bin, &["trace", LAB, "--json"], attach)?;
    let mut seen = Vec::new();
    let at = match wait_line(&rx, "vethscope: tracing", long, &mut seen) {
        Ok(at) => at,
        Err(e) => {
            let _ = trace.kill();
            let _ = trace.wait();
            return Err(e);
        }
    };
    row.tracing = at - started;
    let floods: Vec<Child> = (0..8.min(n / 2))
        .filter_map(|i| ping(i, n - 1 - i, &["-f", "-w", "5", "-q"]).spawn().ok())
        .collect();
    let flood_end = Instant::now() + Duration::from_secs(6);
    let mut peak = 0;
    while Instant::now() < flood_end {
        peak = peak.max(rss_kib(trace.id()).0);
        std::thread::sleep(Duration::from_millis(100));
    }
    for mut f in floods {
        let _ = f.wait();
    }
    row.trace_rss_kib = peak.max(rss_kib(trace.id()).0);
    row.trace_exit = sigterm_and_wait(&mut trace)?;
    std::thread::sleep(Duration::from_millis(200));
    row.trace_tail = rx
        .try_iter()
        .map(|(_, l)| l)
        .filter(|l| !l.trim().is_empty())
        .last()
        .unwrap_or_default();
    eprintln!(
        "bench trace {n} {mode}: tracing after {:.2?}, peak RSS {} KiB under flood, exit {:.2?}",
        row.tracing, row.trace_rss_kib, row.trace_exit
    );
    Ok(row)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_lab_name_is_the_stars() {
        assert_eq!(super::STAR.lab(), super::LAB);
    }
}
