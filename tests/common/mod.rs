//! Shared helpers of the integration tests: they run the real `vethscope` binary as
//! root against the real kernel. Every test passes its own two-letter tag, so names
//! never collide between tests running in parallel (`vst` + tag + `-`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vethscope")
}

/// The prefix of one test's objects: `vstXY-`.
pub fn prefix(tag: &str) -> String {
    assert_eq!(tag.len(), 2, "tags are two characters");
    format!("vst{tag}-")
}

pub fn vethscope(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap_or_else(|e| panic!("cannot run vethscope: {e}"))
}

pub fn ok(args: &[&str]) -> String {
    let out = vethscope(args);
    assert!(
        out.status.success(),
        "vethscope {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command inside a namespace (`ip netns exec`).
pub fn in_ns(ns: &str, cmd: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} in {ns}: {e}"))
}

/// One ping; true when answered.
pub fn ping(ns: &str, dst: &str, extra: &[&str]) -> bool {
    let mut cmd = vec!["ping", "-c", "1", "-W", "2"];
    cmd.extend_from_slice(extra);
    cmd.push(dst);
    in_ns(ns, &cmd).status.success()
}

/// A lab brought up for one test and always brought down, even when the test panics.
pub struct Lab {
    pub name: String,
    pub prefix: String,
}

impl Lab {
    pub fn up(spec: &str, tag: &str) -> Self {
        Self::up_with(spec, tag, &[])
    }

    /// `up` with extra arguments (e.g. `--fast-path`).
    pub fn up_with(spec: &str, tag: &str, extra: &[&str]) -> Self {
        let prefix = prefix(tag);
        let lab = Lab {
            name: format!("{prefix}{}", lab_name_of(spec)),
            prefix: prefix.clone(),
        };
        let mut args = vec!["up", spec, "--prefix", &prefix];
        args.extend_from_slice(extra);
        ok(&args);
        lab
    }

    /// A namespace of the lab by its unprefixed name.
    pub fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn host_if(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

impl Drop for Lab {
    #[allow(
        clippy::print_stderr,
        reason = "a test's leftover shows in its output; a drop cannot fail the test"
    )]
    fn drop(&mut self) {
        let out = vethscope(&["down", &self.name]);
        if !out.status.success() {
            eprintln!(
                "down {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Lab name of a built-in scenario or a file (its `name:` line).
fn lab_name_of(spec: &str) -> String {
    match std::fs::read_to_string(spec) {
        Ok(text) => text
            .lines()
            .find_map(|l| l.strip_prefix("name:"))
            .map(|n| n.trim().to_string())
            .unwrap_or_default(),
        Err(_) => spec.to_string(),
    }
}

/// Everything that could be left of a prefix: namespaces, root links, OVS rows, state.
pub fn leftovers(prefix: &str) -> Vec<String> {
    let mut left = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/run/netns") {
        for e in dir.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(prefix) {
                left.push(format!("namespace {n}"));
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        for e in dir.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(prefix) {
                left.push(format!("interface {n}"));
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/run/vethscope/labs") {
        for e in dir.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(prefix) {
                left.push(format!("state file {n}"));
            }
        }
    }
    for db in ["/run/vethscope/ovs/db.sock", "/var/run/openvswitch/db.sock"] {
        if std::path::Path::new(db).exists() {
            let out = Command::new("ovs-vsctl")
                .args([format!("--db=unix:{db}").as_str(), "--timeout=5", "list-br"])
                .output();
            if let Ok(out) = out {
                for br in String::from_utf8_lossy(&out.stdout).lines() {
                    if br.starts_with(prefix) {
                        left.push(format!("OVS bridge {br}"));
                    }
                }
            }
            let out = Command::new("ovs-vsctl")
                .args([
                    format!("--db=unix:{db}").as_str(),
                    "--timeout=5",
                    "--columns=name",
                    "--bare",
                    "list",
                    "Port",
                ])
                .output();
            if let Ok(out) = out {
                for p in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if p.starts_with(prefix) {
                        left.push(format!("OVS port {p}"));
                    }
                }
            }
        }
    }
    left
}

pub fn assert_clean(prefix: &str) {
    let left = leftovers(prefix);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Writes a topology file for one test under the target dir's tmp.
pub fn topology_file(tag: &str, text: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("topology-{tag}.yaml"));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// Sends `bytes` over TCP from `client_ns` to a listener in `server_ns` at `addr`:5201 and
/// checks that all of them arrived (TCP across OVS's userspace datapath needs the
/// checksum-offload fix, so this is the test that proves it).
pub fn tcp_transfer(server_ns: &str, client_ns: &str, addr: &str, bytes: usize) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server_ns = server_ns.to_string();
    let bind = format!("{addr}:5201");
    let server = std::thread::spawn(move || {
        vethscope::netns::run_in(&server_ns, move || {
            let listener = std::net::TcpListener::bind(&bind).expect("bind");
            let _ = ready_tx.send(());
            let (mut conn, _) = listener.accept().expect("accept");
            conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let mut total = 0usize;
            let mut buf = vec![0u8; 65536];
            loop {
                match conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => total += n,
                    Err(e) => panic!("server read: {e}"),
                }
            }
            total
        })
        .expect("enter server namespace")
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("server ready");
    let target = format!("{addr}:5201");
    vethscope::netns::run_in(client_ns, move || {
        let mut conn = std::net::TcpStream::connect_timeout(
            &target.parse().expect("addr"),
            Duration::from_secs(5),
        )
        .expect("connect");
        conn.set_write_timeout(Some(Duration::from_secs(10))).ok();
        let chunk = vec![7u8; 65536];
        let mut sent = 0;
        while sent < bytes {
            let n = (bytes - sent).min(chunk.len());
            conn.write_all(&chunk[..n])
                .expect("TCP send (checksum offload?)");
            sent += n;
        }
    })
    .expect("enter client namespace");
    let got = server.join().expect("server thread");
    assert_eq!(got, bytes, "all bytes arrived over TCP");
}

/// Waits until a spawned `vethscope trace` says on stderr that its programs are attached
/// ("tracing N interfaces"); a fixed sleep instead misses packets on a loaded machine.
/// Returns the thread that keeps reading stderr (joined: every line it saw).
pub fn wait_until_tracing(child: &mut std::process::Child) -> std::thread::JoinHandle<Vec<String>> {
    use std::io::BufRead;
    let stderr = child
        .stderr
        .take()
        .expect("trace spawned with stderr piped");
    let (attached_tx, attached_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("tracing") {
                let _ = attached_tx.send(());
            }
            seen.push(line);
        }
        seen
    });
    if attached_rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        let lines = reader.join().unwrap_or_default();
        panic!("trace did not attach within 30 s: {lines:?}");
    }
    reader
}

/// Set in the environment of a test run again in a simulated host of its own.
const OWN_HOST: &str = "VETHSCOPE_TEST_OWN_HOST";

/// True inside the run [`run_in_own_host`] started.
pub fn in_own_host() -> bool {
    std::env::var_os(OWN_HOST).is_some()
}

/// Runs `test` of this test binary again in a simulated host of its own — new mount,
/// network and PID namespaces with private /run/netns, /run/vethscope,
/// /run/openvswitch, /var/run/openvswitch, sysfs and bpffs, as scripts/simhost makes —
/// and fails unless that run passes. For tests that must change what belongs to the
/// host's root namespace (its firewall, its Open vSwitch daemons).
#[allow(
    clippy::print_stderr,
    reason = "the inner run's output, for a failing test's log"
)]
pub fn run_in_own_host(test: &str) {
    assert!(!in_own_host(), "{test}: already in its own simulated host");
    let exe = std::env::current_exe().expect("the test binary");
    let script = "set -e; \
        mkdir -p /run/netns /run/vethscope /run/openvswitch; \
        mount -t tmpfs -o mode=0755 tmpfs /run/netns; \
        mount -t tmpfs -o mode=0700 tmpfs /run/vethscope; \
        mount -t tmpfs -o mode=0755 tmpfs /run/openvswitch; \
        if [ -d /var/run/openvswitch ] && [ ! -L /var/run/openvswitch ]; then \
          mount -t tmpfs -o mode=0755 tmpfs /var/run/openvswitch; fi; \
        mount -t sysfs sysfs /sys; mount -t bpf -o mode=0700 bpffs /sys/fs/bpf; \
        ip link set lo up; \
        exec \"$0\" --exact \"$1\" --test-threads=1 --nocapture";
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--net",
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
        ])
        .arg(&exe)
        .arg(test)
        .env(OWN_HOST, "1")
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in its own simulated host: {}\n{stdout}\n{stderr}",
        out.status
    );
}

/// The published JSON schema docs/FILE (generated from the types by `cargo xtask
/// schemas`), ready to validate documents with format checking on.
pub fn published_schema(file: &str) -> jsonschema::Validator {
    let path = format!("{}/../docs/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{path} is not a valid schema: {e}"))
}

/// Fails, naming every violation, unless `doc` matches `validator`.
pub fn assert_valid(validator: &jsonschema::Validator, what: &str, doc: &serde_json::Value) {
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its published schema: {errors:?}\n{doc:#}"
    );
}

/// A benchmark's knob: the environment variable `name` as a number, else `default`.
pub fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
