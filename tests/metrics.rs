//! `vethscope serve` and `trace --metrics` against real labs, the real kernel and a
//! real Prometheus server (Debian's `prometheus` package).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test prints what it measured or left out"
)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------
// Helpers: a `serve` child, a tiny HTTP client, a parser of the exposition format.

/// A port nobody listens on right now (the kernel picks it; released before use).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

fn sigterm(child: &Child) {
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

/// Waits up to `limit` for a child to exit; SIGKILL after that.
fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// A running `vethscope serve`; SIGTERM (then SIGKILL) when dropped.
struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(args: &[&str]) -> Self {
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(bin())
            .arg("serve")
            .args(args)
            .args(["--listen", &addr])
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn vethscope serve: {e}"));
        let mut serve = Serve { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("vethscope serve {args:?} exited early with {status}");
            }
            if get(&serve.addr, "/healthz", &[]).is_some_and(|r| r.status == 200) {
                return serve;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not answer /healthz in 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn metrics(&self) -> Vec<Sample> {
        let r = get(&self.addr, "/metrics", &[])
            .unwrap_or_else(|| panic!("no answer from http://{}/metrics", self.addr));
        assert_eq!(r.status, 200, "GET /metrics: {}", r.body);
        parse_samples(&r.body)
    }

    /// Polls /metrics until `ok` holds (or panics with `what` after `limit`).
    fn wait_for(&self, what: &str, limit: Duration, ok: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.metrics();
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and the exit status (`serve` must exit cleanly on it).
    fn stop(mut self) -> ExitStatus {
        sigterm(&self.child);
        wait_or_kill(&mut self.child, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("serve did not exit within 10 s of SIGTERM"))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            sigterm(&self.child);
            wait_or_kill(&mut self.child, Duration::from_secs(5));
        }
    }
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), or None when
/// nothing answers.
fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<Reply> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut reply = Reply {
        status,
        headers: head.to_string(),
        body: body.to_string(),
    };
    // Prometheus answers large query results in chunks.
    if reply
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        reply.body = dechunk(body)?;
    }
    Some(reply)
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}

fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> Option<Reply> {
    request(addr, "GET", path, headers)
}

/// One sample of the Prometheus text format.
#[derive(Clone, Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Sample {
    fn l(&self, k: &str) -> &str {
        self.labels.get(k).map(String::as_str).unwrap_or_default()
    }
}

/// Parses `name{a="b",...} value` lines (with `\\`, `\"`, `\n` escapes).
fn parse_samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => (&line[..i], &line[i..]),
            None => panic!("bad sample line: {line}"),
        };
        let mut labels = BTreeMap::new();
        let mut rest = rest;
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices();
            let mut key = String::new();
            let end = loop {
                let Some((i, c)) = chars.next() else {
                    panic!("unterminated labels: {line}")
                };
                match c {
                    '}' => break i + 1,
                    ',' => {}
                    '=' => {
                        let mut value = String::new();
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                        loop {
                            match chars.next() {
                                Some((_, '\\')) => match chars.next() {
                                    Some((_, 'n')) => value.push('\n'),
                                    Some((_, c)) => value.push(c),
                                    None => panic!("bad escape: {line}"),
                                },
                                Some((_, '"')) => break,
                                Some((_, c)) => value.push(c),
                                None => panic!("unterminated value: {line}"),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    c => key.push(c),
                }
            };
            rest = &r[end..];
        }
        let value = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad value: {line}"));
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

/// Sum of `name` over the samples whose labels include all of `want`.
fn sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && want.iter().all(|(k, v)| s.l(k) == *v))
        .map(|s| s.value)
        .sum()
}

fn links_gauge(samples: &[Sample], lab: &str) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == "vethscope_links" && s.l("lab") == lab)
        .map(|s| s.value)
}

/// UDP datagrams and TCP connection attempts to closed ports of `dst` from `ns`: the
/// receiving namespace drops them with reason `no_socket`.
fn closed_port_traffic(ns: &str, dst: &str, n: usize) {
    let dst = dst.to_string();
    vethscope::netns::run_in(ns, move || {
        let udp = std::net::UdpSocket::bind("0.0.0.0:0").expect("UDP socket");
        for i in 0..n {
            let _ = udp.send_to(b"anyone?", format!("{dst}:{}", 9 + i));
            let _ = TcpStream::connect_timeout(
                &format!("{dst}:{}", 9 + i).parse().expect("address"),
                Duration::from_secs(1),
            );
        }
    })
    .expect("enter namespace");
}

// ---------------------------------------------------------------------------------
// 1. A real Prometheus scrapes `serve`; every dashboard query returns data.

/// A throw-away Prometheus server scraping one target every second.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    addr: String,
}

impl Prometheus {
    fn start(tag: &str, target: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("prometheus-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the Prometheus dir");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: vethscope\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        // A private port: 19090 + an offset, or any free port if that one is taken.
        let port = (0..50)
            .map(|i| 19090 + (std::process::id() as u16 % 500) + i * 7)
            .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .unwrap_or_else(free_port);
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start /usr/bin/prometheus (Debian package `prometheus`): {e}")
            });
        let mut p = Prometheus { child, dir, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(&p.addr, "/-/ready", &[]).is_none_or(|r| r.status != 200) {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("prometheus exited with {status}");
            }
            assert!(Instant::now() < deadline, "prometheus not ready in 30 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    fn api(&self, path_and_query: &str) -> Value {
        let r = get(&self.addr, path_and_query, &[])
            .unwrap_or_else(|| panic!("no answer from Prometheus for {path_and_query}"));
        let v: Value = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("Prometheus answered non-JSON ({e}): {}", r.body));
        assert_eq!(v["status"], "success", "{path_and_query}: {v}");
        v
    }

    /// The result vector of an instant query.
    fn query(&self, promql: &str) -> Vec<Value> {
        self.api(&format!("/api/v1/query?query={}", urlencode(promql)))["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn scalar(&self, promql: &str) -> Option<f64> {
        self.query(promql)
            .first()
            .and_then(|r| r["value"][1].as_str())
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        sigterm(&self.child);
        wait_or_kill(&mut self.child, Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// (panel title or variable name, query).
type Queries = Vec<(String, String)>;

/// Every `targets[].expr` of a dashboard (rows and nested panels included), with the
/// panel title, and its template variables' queries.
fn dashboard_queries(file: &str) -> (Queries, Queries) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../dashboards")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let json: Value = serde_json::from_str(&text).expect("dashboard JSON");
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((
                        p["title"].as_str().unwrap_or("?").to_string(),
                        e.to_string(),
                    ));
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut exprs = Vec::new();
    walk(&json["panels"], &mut exprs);
    let vars = json["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let q = v["query"]["query"].as_str().or(v["query"].as_str())?;
            q.starts_with("label_values(")
                .then(|| (v["name"].as_str().unwrap_or("?").to_string(), q.to_string()))
        })
        .collect();
    (exprs, vars)
}

fn substitute(expr: &str, lab: &str, netns: &str, ifname: &str) -> String {
    let e = expr
        .replace("$__rate_interval", "10s")
        .replace("${lab}", lab)
        .replace("$lab", lab)
        .replace("${netns}", netns)
        .replace("$netns", netns)
        .replace("${ifname}", ifname)
        .replace("$ifname", ifname);
    assert!(
        !e.contains('$'),
        "a dashboard variable the test does not know: {e}"
    );
    e
}

#[test]
fn prometheus_scrapes_serve_and_every_dashboard_query_returns_data() {
    let lab = Lab::up("bridge", "ma");
    let (ns1, ns2) = (lab.ns("ns1"), lab.ns("ns2"));
    let serve = Serve::start(&[&lab.name, "--refresh", "1"]);
    serve.wait_for("6 links of the bridge lab", Duration::from_secs(15), |s| {
        links_gauge(s, &lab.name) == Some(6.0)
    });

    let prom = Prometheus::start("ma", &serve.addr);
    // Traffic while Prometheus scrapes: pings both ways, and packets to closed ports,
    // which the receiving namespace drops (reason no_socket).
    for _ in 0..3 {
        assert!(ping(&ns1, "10.1.1.3", &[]), "ping ns1 → ns2");
        assert!(ping(&ns2, "10.1.1.2", &[]), "ping ns2 → ns1");
        closed_port_traffic(&ns1, "10.1.1.3", 3);
        std::thread::sleep(Duration::from_millis(700));
    }
    let s = serve.metrics();
    let no_socket = sum(
        &s,
        "vethscope_drops_total",
        &[
            ("netns", &ns2),
            ("ifname", "veth1"),
            ("reason", "no_socket"),
        ],
    );
    assert!(
        no_socket >= 9.0,
        "drops for 9 UDP/TCP packets to closed ports: {no_socket}"
    );

    // Enough samples for rate() over 10 s: wait for 5 successful scrapes.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let scrapes = prom.scalar(&format!(
            "count_over_time(vethscope_links{{lab=\"{}\"}}[1m])",
            lab.name
        ));
        if scrapes.is_some_and(|n| n >= 5.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape serve 5 times in 30 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        prom.scalar("up{job=\"vethscope\"}"),
        Some(1.0),
        "scrape target up"
    );
    assert!(
        !prom
            .query(&format!(
                "vethscope_drops_total{{lab=\"{}\", netns=\"{ns2}\", ifname=\"veth1\", reason=\"no_socket\"}}",
                lab.name
            ))
            .is_empty(),
        "Prometheus stored the no_socket drops"
    );

    let mut checked = 0;
    let mut empty = Vec::new();
    for file in ["vethscope-overview.json", "vethscope-link.json"] {
        let (exprs, vars) = dashboard_queries(file);
        assert!(
            exprs.len() >= 8,
            "{file}: only {} queries found",
            exprs.len()
        );
        // A concrete link (the one with drops), and "All" (`.*`) as Grafana sends it.
        for (l, n, i) in [
            (lab.name.as_str(), ns2.as_str(), "veth1"),
            (".*", ".*", ".*"),
        ] {
            for (title, expr) in &exprs {
                let q = substitute(expr, l, n, i);
                if prom.query(&q).is_empty() {
                    empty.push(format!("{file} / {title}: {q}"));
                }
                checked += 1;
            }
        }
        // Template variables: label_values(SELECTOR, LABEL) through the labels API.
        for (name, q) in &vars {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{file}: variable {name}: {q}"));
            let (selector, label) = inner
                .rsplit_once(',')
                .unwrap_or_else(|| panic!("{file}: variable {name}: {q}"));
            let selector = substitute(selector.trim(), &lab.name, &ns2, "veth1");
            let v = prom.api(&format!(
                "/api/v1/label/{}/values?match[]={}",
                label.trim(),
                urlencode(&selector)
            ));
            let values: Vec<&str> = v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let want = match label.trim() {
                "lab" => lab.name.clone(),
                "netns" => ns2.clone(),
                _ => "veth1".to_string(),
            };
            assert!(
                values.contains(&want.as_str()),
                "{file}: variable {name} ({q}) offers {values:?}, not {want}"
            );
        }
    }
    assert!(
        empty.is_empty(),
        "{} of {checked} dashboard queries returned no data:\n{}",
        empty.len(),
        empty.join("\n")
    );
    drop(prom);
    let status = serve.stop();
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");
}

// ---------------------------------------------------------------------------------
// 2. The counters agree exactly with the kernel's interface statistics.

/// rx_packets, rx_bytes, tx_packets, tx_bytes of an interface, read inside its namespace.
fn kernel_stats(ns: &str, ifname: &str) -> [u64; 4] {
    let files: Vec<String> = ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes"]
        .iter()
        .map(|f| format!("/sys/class/net/{ifname}/statistics/{f}"))
        .collect();
    let mut cmd = vec!["cat"];
    cmd.extend(files.iter().map(String::as_str));
    // `ip netns exec` mounts the namespace's own /sys, so these are its counters.
    let out = in_ns(ns, &cmd);
    assert!(out.status.success(), "cat statistics of {ns}/{ifname}");
    let v: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().expect("a number"))
        .collect();
    [v[0], v[1], v[2], v[3]]
}

/// The same four numbers from /metrics (summed over classes): ingress ↔ rx, egress ↔ tx.
fn exported_stats(s: &[Sample], lab: &str, ns: &str, ifname: &str) -> [u64; 4] {
    let f = |name: &str, dir: &str| {
        sum(
            s,
            name,
            &[
                ("lab", lab),
                ("netns", ns),
                ("ifname", ifname),
                ("direction", dir),
            ],
        ) as u64
    };
    [
        f("vethscope_link_packets_total", "ingress"),
        f("vethscope_link_bytes_total", "ingress"),
        f("vethscope_link_packets_total", "egress"),
        f("vethscope_link_bytes_total", "egress"),
    ]
}

/// Kernel and exported counters of every interface at one instant: the kernel's are
/// read before and after the scrape, and the snapshot is retried until nothing (an
/// IPv6 router solicitation, say) crossed in between.
fn snapshot(serve: &Serve, lab: &str, ifaces: &[(&str, &str)]) -> Vec<([u64; 4], [u64; 4])> {
    for _ in 0..50 {
        let before: Vec<[u64; 4]> = ifaces.iter().map(|(n, i)| kernel_stats(n, i)).collect();
        let s = serve.metrics();
        let after: Vec<[u64; 4]> = ifaces.iter().map(|(n, i)| kernel_stats(n, i)).collect();
        if before == after {
            return ifaces
                .iter()
                .zip(before)
                .map(|((n, i), k)| (k, exported_stats(&s, lab, n, i)))
                .collect();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the interfaces never stayed quiet for one scrape");
}

#[test]
fn counters_match_the_kernels_interface_statistics() {
    let lab = Lab::up("direct", "mb");
    let (ns1, ns2) = (lab.ns("ns1"), lab.ns("ns2"));
    let serve = Serve::start(&[&lab.name, "--refresh", "1"]);
    serve.wait_for("4 links of the direct lab", Duration::from_secs(15), |s| {
        links_gauge(s, &lab.name) == Some(4.0)
    });
    let ifaces = [(ns1.as_str(), "veth0"), (ns2.as_str(), "veth1")];
    let before = snapshot(&serve, &lab.name, &ifaces);

    // 50 small pings, 10 that need IPv4 fragments, 4 MiB of TCP (GSO super-packets on
    // veth), and packets to closed ports (received, counted, then dropped).
    let out = in_ns(&ns1, &["ping", "-c", "50", "-i", "0.01", "-q", "10.1.1.3"]);
    assert!(out.status.success(), "50 pings");
    let out = in_ns(
        &ns2,
        &[
            "ping", "-c", "10", "-i", "0.01", "-s", "3000", "-q", "10.1.1.2",
        ],
    );
    assert!(out.status.success(), "10 fragmented pings");
    tcp_transfer(&ns2, &ns1, "10.1.1.3", 4 << 20);
    closed_port_traffic(&ns1, "10.1.1.3", 5);
    std::thread::sleep(Duration::from_millis(300));

    let after = snapshot(&serve, &lab.name, &ifaces);
    let what = ["rx packets", "rx bytes", "tx packets", "tx bytes"];
    for (((ns, ifname), (k0, e0)), (k1, e1)) in ifaces.iter().zip(&before).zip(&after) {
        for i in 0..4 {
            let kernel = k1[i] - k0[i];
            let exported = e1[i] - e0[i];
            // Both sides count skb->len with the Ethernet header: TC pushes it back
            // before ingress programs run, and veth's rx counters are its peer's tx
            // counters, taken in veth_xmit on the whole frame. GSO super-packets count
            // once on both sides. So there is no systematic difference to allow for.
            assert_eq!(
                exported, kernel,
                "{ns}/{ifname} {}: exported delta {exported}, kernel delta {kernel}",
                what[i]
            );
        }
        assert!(k1[0] - k0[0] >= 60, "{ns}/{ifname}: the traffic crossed");
    }
    assert!(serve.stop().success(), "serve exits cleanly on SIGTERM");
}

// ---------------------------------------------------------------------------------
// 3. Labs that come up after `serve` started appear; labs brought down disappear.

fn bpf_link_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t.to_string_lossy().contains("bpf_link"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Waits until serve holds `want` bpf_link fds: the links gauge counts a lab's interfaces
/// as soon as they are seen, and the attach of their programs may finish a moment later.
fn wait_for_link_fds(pid: u32, want: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let have = bpf_link_fds(pid);
        if have == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: serve holds {have} bpf_link fds, expected {want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn labs_brought_up_later_appear_and_labs_brought_down_disappear() {
    let prefix = prefix("mc");
    let lab_name = format!("{prefix}direct");
    let serve = Serve::start(&[&lab_name, "--refresh", "1"]);
    let s = serve.metrics();
    assert_eq!(
        links_gauge(&s, &lab_name),
        Some(0.0),
        "a named lab that is not up: 0 links"
    );
    assert!(
        !s.iter()
            .any(|x| x.name.starts_with("vethscope_link_") && x.l("lab") == lab_name),
        "no link series before the lab exists"
    );
    let idle_links = bpf_link_fds(serve.pid());

    let lab = Lab::up("direct", "mc");
    assert_eq!(lab.name, lab_name);
    let ns1 = lab.ns("ns1");
    serve.wait_for("the new lab's 4 links", Duration::from_secs(10), |s| {
        links_gauge(s, &lab.name) == Some(4.0)
    });
    wait_for_link_fds(
        serve.pid(),
        idle_links + 8,
        "two TCX links per interface of the new lab",
    );
    assert!(ping(&ns1, "10.1.1.3", &[]), "ping across the new lab");
    let s = serve.wait_for("the ping counted", Duration::from_secs(5), |s| {
        sum(
            s,
            "vethscope_link_packets_total",
            &[
                ("lab", &lab_name),
                ("netns", &ns1),
                ("ifname", "veth0"),
                ("class", "icmp"),
                ("direction", "egress"),
            ],
        ) >= 1.0
    });
    let peer = s
        .iter()
        .find(|x| {
            x.name == "vethscope_link_packets_total"
                && x.l("netns") == ns1
                && x.l("ifname") == "veth0"
        })
        .map(|x| {
            (
                x.l("peer_netns").to_string(),
                x.l("peer_ifname").to_string(),
                x.l("kind").to_string(),
            )
        });
    assert_eq!(
        peer,
        Some((lab.ns("ns2"), "veth1".to_string(), "veth".to_string())),
        "peer and kind labels"
    );

    drop(lab);
    serve.wait_for(
        "the removed lab's series to go",
        Duration::from_secs(10),
        |s| {
            links_gauge(s, &lab_name) == Some(0.0)
                && !s
                    .iter()
                    .any(|x| x.name != "vethscope_links" && x.l("lab") == lab_name)
        },
    );
    // The kernel detached the programs with the interfaces; serve closed their links.
    wait_for_link_fds(
        serve.pid(),
        idle_links,
        "TCX links of the removed lab released",
    );
    assert!(serve.stop().success(), "serve exits cleanly on SIGTERM");
    assert_clean(&prefix);
}

// ---------------------------------------------------------------------------------
// 4. Formats, endpoints, errors.

/// What Prometheus 2.42 sends when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[test]
fn openmetrics_is_negotiated_and_healthz_and_errors_answer() {
    let lab = Lab::up("direct", "md");
    let serve = Serve::start(&[&lab.name]);
    serve.wait_for("4 links", Duration::from_secs(15), |s| {
        links_gauge(s, &lab.name) == Some(4.0)
    });

    let text = get(&serve.addr, "/metrics", &[]).expect("GET /metrics");
    assert_eq!(text.status, 200);
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        text.body
            .contains("# TYPE vethscope_link_packets_total counter\n")
    );
    assert!(text.body.contains("# TYPE vethscope_build_info gauge\n"));
    assert!(!text.body.contains("# EOF"));
    assert_eq!(
        text.header("content-length").and_then(|v| v.parse().ok()),
        Some(text.body.len())
    );
    let plain = get(
        &serve.addr,
        "/metrics",
        &[("Accept", "text/plain;version=0.0.4")],
    )
    .expect("GET /metrics as text");
    assert!(
        plain
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );

    let om = get(&serve.addr, "/metrics", &[("Accept", PROMETHEUS_ACCEPT)]).expect("GET /metrics");
    assert_eq!(om.status, 200);
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    for want in [
        "# TYPE vethscope_link_packets counter\n",
        "# TYPE vethscope_link_bytes counter\n",
        "# TYPE vethscope_trace_events_lost counter\n",
        "# TYPE vethscope_links gauge\n",
        "# TYPE vethscope_build info\n",
        "vethscope_trace_events_lost_total 0\n",
        "vethscope_build_info{version=\"",
    ] {
        assert!(
            om.body.contains(want),
            "OpenMetrics has {want:?}:\n{}",
            om.body
        );
    }
    assert!(om.body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert!(
        !om.body.contains("_total counter"),
        "no _total in OpenMetrics TYPE lines"
    );
    let n = parse_samples(&om.body)
        .iter()
        .filter(|s| s.name == "vethscope_link_packets_total" && s.l("lab") == lab.name)
        .count();
    // 4 links × 2 directions × 6 classes, all present from the start.
    assert_eq!(n, 48, "every link, direction and class has a series");

    let h = get(&serve.addr, "/healthz", &[]).expect("GET /healthz");
    assert_eq!((h.status, h.body.as_str()), (200, "ok"));
    assert_eq!(get(&serve.addr, "/nope", &[]).map(|r| r.status), Some(404));
    let post = request(&serve.addr, "POST", "/metrics", &[("Content-Length", "0")]).expect("POST");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET"));
    assert_eq!(
        request(&serve.addr, "HEAD", "/healthz", &[]).map(|r| r.status),
        Some(405)
    );

    // Keep-alive: two requests on one connection, as Prometheus reuses its connection.
    let mut c = TcpStream::connect(&serve.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).ok();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut raw = String::new();
    c.read_to_string(&mut raw).expect("read");
    assert_eq!(
        raw.matches("HTTP/1.1 200 OK").count(),
        2,
        "two answers: {raw}"
    );

    // A second exporter on the same address: one sentence, exit code 1.
    let out = vethscope(&["serve", &lab.name, "--listen", &serve.addr]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot listen on {}: address in use (fix: --listen 127.0.0.1:PORT)",
            serve.addr
        )),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(serve.stop().success(), "serve exits cleanly on SIGTERM");
}

#[test]
fn fast_path_counters_come_from_the_pinned_map_or_are_zero() {
    let lab = Lab::up("bridge", "mf");
    let serve = Serve::start(&[&lab.name]);
    let port0 = lab.host_if("br-veth0");
    let port1 = lab.host_if("br-veth1");
    let s = serve.wait_for("6 links", Duration::from_secs(15), |s| {
        links_gauge(s, &lab.name) == Some(6.0)
    });
    for name in [
        "vethscope_fastpath_redirects_total",
        "vethscope_fastpath_passed_total",
    ] {
        let ports: Vec<&str> = s
            .iter()
            .filter(|x| x.name == name && x.l("lab") == lab.name)
            .map(|x| x.l("ifname"))
            .collect();
        assert_eq!(
            ports.len(),
            2,
            "{name}: one series per bridge port: {ports:?}"
        );
        assert!(ports.contains(&port0.as_str()) && ports.contains(&port1.as_str()));
        assert_eq!(
            sum(&s, name, &[("lab", &lab.name)]),
            0.0,
            "0 while the fast path is off"
        );
    }

    // Pin a map shaped like the fast path's (u32 ifindex → {redirected, passed} per CPU)
    // and give port 0 some counts: bpftool writes the value on every CPU.
    let dir = vethscope::fastpath::pin_dir(&lab.name);
    std::fs::create_dir_all(&dir).expect("create the pin dir");
    struct Unpin(PathBuf);
    impl Drop for Unpin {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0.join("FASTPATH_STATS"));
            let _ = std::fs::remove_dir(&self.0);
            let _ = std::fs::remove_dir(Path::new("/sys/fs/bpf/vethscope"));
        }
    }
    let _unpin = Unpin(dir.clone());
    let pin = dir.join("FASTPATH_STATS");
    let pin = pin.to_str().expect("UTF-8 path");
    let ok = |args: &[&str]| {
        let out = Command::new("bpftool")
            .args(args)
            .output()
            .expect("run bpftool");
        assert!(
            out.status.success(),
            "bpftool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&[
        "map",
        "create",
        pin,
        "type",
        "percpu_hash",
        "key",
        "4",
        "value",
        "16",
        "entries",
        "64",
        "name",
        "FASTPATH_STATS",
    ]);
    let ifindex: u32 = std::fs::read_to_string(format!("/sys/class/net/{port0}/ifindex"))
        .expect("ifindex")
        .trim()
        .parse()
        .expect("a number");
    let mut args: Vec<String> = ["map", "update", "pinned", pin, "key"]
        .map(String::from)
        .to_vec();
    args.extend(ifindex.to_le_bytes().iter().map(|b| b.to_string()));
    args.push("value".into());
    args.extend(
        7u64.to_le_bytes()
            .iter()
            .chain(3u64.to_le_bytes().iter())
            .map(|b| b.to_string()),
    );
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let cpus = ok(&["map", "dump", "pinned", pin])
        .matches("value (CPU")
        .count() as f64;
    assert!(cpus >= 1.0);

    let s = serve.metrics();
    let get = |name: &str, port: &str| sum(&s, name, &[("lab", &lab.name), ("ifname", port)]);
    assert_eq!(
        get("vethscope_fastpath_redirects_total", &port0),
        7.0 * cpus
    );
    assert_eq!(get("vethscope_fastpath_passed_total", &port0), 3.0 * cpus);
    assert_eq!(get("vethscope_fastpath_redirects_total", &port1), 0.0);
    assert_eq!(get("vethscope_fastpath_passed_total", &port1), 0.0);
    assert!(serve.stop().success(), "serve exits cleanly on SIGTERM");
}

// ---------------------------------------------------------------------------------
// 5. `trace --metrics` serves the same counters while tracing.

#[test]
fn trace_with_metrics_serves_the_counters_while_tracing() {
    let lab = Lab::up("direct", "me");
    let ns1 = lab.ns("ns1");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(bin())
        .args([
            "trace",
            &lab.name,
            "--json",
            "--duration",
            "8",
            "--metrics",
            &addr,
        ])
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn trace");
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr = child.stderr.take().expect("stderr");
    let mut child = Kill(child);
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("tracing") => {
                assert!(l.contains(&format!("http://{addr}/metrics")), "{l}");
                break;
            }
            Some(Ok(l)) => eprintln!("trace: {l}"),
            _ => panic!("trace did not start"),
        }
    }
    assert!(ping(&ns1, "10.1.1.3", &[]));
    let r = get(&addr, "/metrics", &[]).expect("GET /metrics from trace");
    assert_eq!(r.status, 200);
    let s = parse_samples(&r.body);
    assert_eq!(links_gauge(&s, &lab.name), Some(4.0));
    assert!(
        sum(
            &s,
            "vethscope_link_packets_total",
            &[
                ("netns", &ns1),
                ("ifname", "veth0"),
                ("class", "icmp"),
                ("direction", "egress")
            ]
        ) >= 1.0
    );
    assert!(
        s.iter()
            .any(|x| x.name == "vethscope_trace_events_lost_total")
    );
    let status = child.0.wait().expect("wait for trace");
    assert!(status.success(), "trace exited with {status}");
    let mut out = String::new();
    child
        .0
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert!(
        out.contains("\"type\":\"summary\""),
        "the trace still printed its paths: {out}"
    );
}
