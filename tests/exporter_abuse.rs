//! Slow and hostile HTTP clients against a real `vethscope serve` on a real lab:
//! clients that never read, oversized request heads, 1,000 idle connections and
//! slowloris clients. After (and during) each, a normal scrape must still get the
//! lab's real counters.
//!
//! The one time bound here ([`ANSWER_WITHIN`]) is generous on purpose: the old server
//! answered these floods with 503 or not at all, so what is checked is that the scrape
//! answers, correctly, not how fast.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test prints what it measured or left out"
)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU32, Ordering},
};
use std::time::{Duration, Instant};

use common::*;

/// Far above the ~1 ms a scrape of a small lab takes, far below the server's own
/// deadlines (5 s write stall, 20 s head timeout) that would otherwise free the slots.
const ANSWER_WITHIN: Duration = Duration::from_secs(4);
/// The server's connection cap (`metrics::http::MAX_CONNECTIONS`).
const CAP: usize = vethscope::metrics::http::MAX_CONNECTIONS;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Room for a thousand client sockets in this test process.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max.min(65536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// A `vethscope serve` of one lab; SIGTERM (then SIGKILL) when dropped.
struct Serve {
    child: Child,
    addr: String,
    /// Sockets held before any client connected (listener, netlink).
    baseline: usize,
}

impl Serve {
    /// Starts serving `lab` and waits until its `links` links are counted.
    fn start(lab: &str, links: u32) -> Self {
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(bin())
            .args(["serve", lab, "--listen", &addr])
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn vethscope serve: {e}"));
        let mut serve = Serve {
            child,
            addr,
            baseline: 0,
        };
        let want = format!("vethscope_links{{lab=\"{lab}\"}} {links}\n");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("serve exited early with {status}");
            }
            if scrape(&serve.addr)
                .is_some_and(|(status, body)| status == 200 && body.contains(&want))
            {
                std::thread::sleep(Duration::from_millis(100));
                serve.baseline = serve.sockets();
                return serve;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not count {links} links in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asserts that the server holds at most [`CAP`] client connections (and a few
    /// netlink sockets of a refresh that may be running).
    fn assert_capped(&self, during: &str) {
        let held = self.sockets().saturating_sub(self.baseline);
        assert!(
            held <= CAP + 8,
            "{during}: the server holds {held} connections, more than the cap of {CAP}"
        );
    }

    /// Sockets the serve process holds open.
    fn sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        std::fs::read_link(e.path())
                            .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// A normal scrape: answers 200 with the lab's link gauge, within [`ANSWER_WITHIN`].
    fn assert_scrape_answers(&self, lab: &str, links: u32, during: &str) {
        let t0 = Instant::now();
        let answer = scrape(&self.addr);
        let took = t0.elapsed();
        let (status, body) =
            answer.unwrap_or_else(|| panic!("no answer to a scrape {during} (after {took:?})"));
        assert_eq!(status, 200, "scrape {during}: {body}");
        let want = format!("vethscope_links{{lab=\"{lab}\"}} {links}\n");
        assert!(body.contains(&want), "scrape {during} has {want:?}");
        assert!(
            body.contains("# TYPE vethscope_link_packets_total counter\n"),
            "scrape {during} has the packet counters"
        );
        assert!(
            took < ANSWER_WITHIN,
            "scrape {during} answered only after {took:?}"
        );
        eprintln!("scrape {during}: {took:?}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET /metrics on a fresh connection: (status, body), or None if nothing answers
/// within [`ANSWER_WITHIN`] (plus slack, so the caller's assertion names the time).
fn scrape(addr: &str) -> Option<(u16, String)> {
    let limit = ANSWER_WITHIN * 2;
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, limit).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

fn connect(addr: &str) -> TcpStream {
    TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
}

/// The status line of whatever the server answered before closing, if anything.
fn status_of(mut s: TcpStream) -> Option<u16> {
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut raw = Vec::new();
    // A reset after the answer is fine: what was read before it counts.
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn clients_that_never_read_do_not_block_a_scrape() {
    let lab = Lab::up("direct", "e1");
    let serve = Serve::start(&lab.name, 4);
    // More clients than the cap, each asking for many scrapes it never reads: the
    // server's writes to them stall once their receive buffers are full.
    let mut hogs = Vec::new();
    let requests = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(200);
    for _ in 0..CAP + 72 {
        let s = connect(&serve.addr);
        // A tiny receive window, so the stall comes after a few KB.
        let _ = socket_rcvbuf(&s, 4096);
        s.set_write_timeout(Some(Duration::from_millis(200))).ok();
        let mut w = &s;
        // The server stops reading requests while its answer is stuck: ignore that.
        let _ = w.write_all(requests.as_bytes());
        hogs.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    serve.assert_scrape_answers(&lab.name, 4, "while clients never read");
    serve.assert_capped("while clients never read");
    drop(hogs);
    serve.assert_scrape_answers(&lab.name, 4, "after the non-readers left");
}

fn socket_rcvbuf(s: &TcpStream, bytes: libc::c_int) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt on a socket we own, with a pointer to a local int.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn oversized_request_heads_are_refused() {
    let lab = Lab::up("direct", "e2");
    let serve = Serve::start(&lab.name, 4);

    // Too many header fields in a small head: read whole, refused with 431.
    let mut s = connect(&serve.addr);
    let mut head = String::from("GET /metrics HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        head.push_str(&format!("X-Field-{i}: {i}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .expect("send a head of 200 fields");
    assert_eq!(status_of(s), Some(431), "200 header fields: 431");

    // A head that never ends: 431 or a reset once past the limit. Kernel buffers take
    // a few MB before the server's close shows, so keep sending up to 64 MiB.
    let s = connect(&serve.addr);
    s.set_write_timeout(Some(Duration::from_secs(10))).ok();
    let mut w = &s;
    let mut sent = 0usize;
    let _ = w.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ");
    let chunk = [b'a'; 16 * 1024];
    while sent < (64 << 20) {
        match w.write(&chunk) {
            Ok(n) => sent += n,
            // Closed by the server (reset/broken pipe) or no longer read: refused.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(_) => break,
        }
    }
    let status = status_of(s);
    assert!(
        status.is_none_or(|s| s == 431),
        "an endless head gets 431 or is cut off, not {status:?}"
    );
    assert!(
        sent < (64 << 20),
        "the server cut off an endless head (it took {sent} bytes)"
    );
    eprintln!("endless head cut off after {sent} bytes");
    serve.assert_scrape_answers(&lab.name, 4, "after oversized heads");
}

#[test]
fn a_thousand_idle_connections_do_not_lock_out_a_scrape() {
    raise_fd_limit();
    let lab = Lab::up("direct", "e3");
    let serve = Serve::start(&lab.name, 4);
    let idle: Vec<TcpStream> = (0..1000).map(|_| connect(&serve.addr)).collect();
    // Half of them even started a request and stopped mid-line.
    for s in idle.iter().step_by(2) {
        let mut w = s;
        let _ = w.write_all(b"GET /met");
    }
    std::thread::sleep(Duration::from_millis(300));
    serve.assert_scrape_answers(&lab.name, 4, "with 1,000 idle connections open");
    serve.assert_capped("with 1,000 idle connections");
    // The evicted ones were closed by the server: reading them ends (EOF or reset).
    let closed = idle
        .iter()
        .filter(|s| {
            s.set_read_timeout(Some(Duration::from_millis(50))).ok();
            let mut b = [0u8; 1];
            let mut r = *s;
            !matches!(r.read(&mut b), Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
        })
        .count();
    assert!(
        closed >= 1000 - CAP,
        "{closed} of 1,000 idle connections were closed by the server"
    );
    for s in &idle {
        let _ = s.shutdown(Shutdown::Both);
    }
}

#[test]
fn slowloris_clients_do_not_lock_out_a_scrape() {
    raise_fd_limit();
    let lab = Lab::up("direct", "e4");
    let serve = Serve::start(&lab.name, 4);
    // Twice the cap, each sending one more byte of a head that never ends.
    let mut conns: Vec<TcpStream> = (0..2 * CAP).map(|_| connect(&serve.addr)).collect();
    for s in &conns {
        s.set_nonblocking(true).ok();
        let mut w = s;
        let _ = w.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU32::new(0));
    let trickle = {
        let (stop, rounds) = (stop.clone(), rounds.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for s in &mut conns {
                    let _ = s.write(b"X");
                }
                rounds.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // Scrape only once the trickle is under way.
    while rounds.load(Ordering::Relaxed) < 3 {
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..5 {
        serve.assert_scrape_answers(&lab.name, 4, &format!("#{i} during a slowloris"));
        std::thread::sleep(Duration::from_millis(200));
    }
    serve.assert_capped("during a slowloris");
    stop.store(true, Ordering::Relaxed);
    trickle.join().expect("trickle thread");
}
