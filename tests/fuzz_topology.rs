//! Fuzzing the topology loader and validator (issue 8): mutated and spliced topology
//! files (seeds: examples/ and tests/hostile/) go through parse → validate →
//! check_prefix → validate_environment. Properties:
//! - never a panic;
//! - every rejection names the file and a position (line and column ≥ 1), one line
//!   per error, no control characters;
//! - every accepted file is safe: each name passes the name rule and each sysctl key
//!   has the plain shape, so nothing that reaches a path can walk.
//!
//! CI runs a bounded number of executions. `cargo xtask fuzz topology --seconds N`
//! runs this test with `VETHSCOPE_FUZZ_SECONDS=N` in release mode and prints
//! executions per second (recorded in BENCHMARKS.md).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test prints what it measured or left out"
)]

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use vethscope::topology::{
    self, Topology, TopologyError,
    names::{self, NameKind},
    sysctl_keys,
};

/// Executions in CI: enough to reach deep mutations, a few seconds in debug mode.
const CI_EXECS: u64 = 20_000;

/// xorshift64*: deterministic, no dependency; the seed is printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Fragments that YAML and our checks care about.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    ":",
    ": ",
    ",",
    "-",
    "- ",
    "\n",
    "\n  ",
    "\n    - ",
    "\"",
    "'",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "? ",
    "|",
    ">",
    "#",
    "..",
    "/",
    "../",
    "\\0",
    "\\e",
    "\0",
    "\u{1b}[31m",
    "~",
    "null",
    "true",
    "1e400",
    "-1",
    "99999999999999999999",
    "0x10",
    "name",
    "ns",
    "bridge",
    "kind",
    "veth",
    "ovs-internal",
    "ovs",
    "linux",
    "links",
    "namespaces",
    "bridges",
    "ends",
    "end",
    "addresses",
    "routes",
    "via",
    "dev",
    "to",
    "default",
    "sysctls",
    "mtu",
    "mac",
    "host",
    "lo",
    "10.1.1.1/24",
    "fe80::1",
    "::/0",
    "net.ipv4.ip_forward",
    "accept_local",
    "ipv6.disable_ipv6",
    "kernel.core_pattern",
    "abcdefghijklmnopq",
    "a,b=c",
    "eth0.10",
    "-rf",
    "%2E",
    "é",
    "\t",
    "---\n",
    "...\n",
];

fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                out.splice(at..at, t.iter().copied());
            }
            1 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            2 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            3 if !out.is_empty() => {
                // Duplicate a slice (repeated keys, nested copies).
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(64)).min(out.len());
                let piece: Vec<u8> = out[start..end].to_vec();
                out.splice(at..at, piece);
            }
            4 => {
                // Splice in part of another seed.
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = (start + 1 + rng.below(200)).min(other.len());
                    out.splice(at..at, other[start..end].iter().copied());
                }
            }
            5 => {
                let n = 1 + rng.below(40);
                out.splice(at..at, std::iter::repeat_n(b'[', n));
            }
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                out.splice(at..at, t.iter().copied());
                out.splice(at..at, b": ".iter().copied());
            }
        }
    }
    out.truncate(64 * 1024);
    out
}

fn check_rejection(e: &TopologyError, input: &str) {
    for one in e.all() {
        let text = one.to_string();
        assert!(
            !text.contains('\n') && !text.chars().any(char::is_control),
            "error is not one plain line: {text:?}\ninput: {input:?}"
        );
        match one {
            TopologyError::Syntax {
                file, line, col, ..
            } => {
                assert_eq!(file, "fuzz.yaml");
                assert!(*line >= 1 && *col >= 1, "{text}\ninput: {input:?}");
            }
            TopologyError::Invalid { at, .. } => {
                assert_eq!(at.file, "fuzz.yaml");
                assert!(at.line >= 1 && at.col >= 1, "{text}\ninput: {input:?}");
            }
            other => panic!("rejection without a position: {other}\ninput: {input:?}"),
        }
    }
}

/// An accepted topology: everything that reaches a path, netlink or a child is safe.
fn check_accepted(t: &Topology, input: &str) {
    let ok = |kind, n: &str| {
        assert!(
            names::check(kind, n).is_ok(),
            "accepted unsafe {kind:?} name {n:?}\ninput: {input:?}"
        )
    };
    ok(NameKind::Lab, &t.name);
    for ns in &t.namespaces {
        ok(NameKind::Netns, &ns.name);
        for s in &ns.sysctls {
            assert!(
                sysctl_keys::namespace_key_shape(&s.key).is_ok(),
                "{input:?}"
            );
        }
    }
    for b in &t.bridges {
        ok(NameKind::Interface, &b.name);
    }
    for e in t.ends() {
        ok(NameKind::Interface, &e.name);
        if e.netns() != topology::HOST {
            ok(NameKind::Netns, e.netns());
        }
        if let Some(b) = e.bridge() {
            ok(NameKind::Interface, b);
        }
        for s in &e.sysctls {
            assert!(
                sysctl_keys::interface_key_shape(&s.key).is_ok(),
                "{input:?}"
            );
        }
    }
}

/// One execution: load, validate, prefix, environment. Returns true when accepted.
fn execute(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let t = match Topology::from_yaml(text, "fuzz.yaml") {
        Ok(t) => t,
        Err(e) => {
            check_rejection(&e, text);
            return false;
        }
    };
    if let Err(e) = topology::validate(&t) {
        check_rejection(&e, text);
        return false;
    }
    check_accepted(&t, text);
    if let Err(e) = topology::check_prefix(&t, "fz-") {
        check_rejection(&e, text);
    } else {
        let p = t.with_prefix("fz-");
        if let Err(e) = topology::validate(&p) {
            panic!("check_prefix passed but the prefixed lab is invalid: {e}\ninput: {text:?}");
        }
    }
    if let Err(e) = topology::validate_environment(&t) {
        check_rejection(&e, text);
    }
    true
}

fn seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut seeds = Vec::new();
    for dir in ["examples", "tests/hostile"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        seeds.extend(files.iter().map(|p| std::fs::read(p).unwrap()));
    }
    seeds
}

#[test]
fn topology_loader_and_validator_survive_mutated_files() {
    let seeds = seeds();
    let seconds: Option<f64> = std::env::var("VETHSCOPE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let seed: u64 = std::env::var("VETHSCOPE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_1234_ABCD_0001);
    let mut rng = Rng(seed);
    // Warm the kernel's sysctl list once (a fresh namespace), outside the timing.
    let _ = sysctl_keys::catalog();
    let started = Instant::now();
    let deadline = seconds.map(|s| started + Duration::from_secs_f64(s));
    let mut execs: u64 = 0;
    let mut accepted: u64 = 0;
    // A small corpus of interesting inputs: accepted ones are mutated further.
    let mut pool: Vec<Vec<u8>> = seeds.clone();
    loop {
        match deadline {
            Some(d) if Instant::now() >= d => break,
            None if execs >= CI_EXECS => break,
            _ => {}
        }
        let base = &pool[rng.below(pool.len())];
        let input = mutate(&mut rng, base, &seeds);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| execute(&input)));
        match result {
            Ok(true) => {
                accepted += 1;
                if pool.len() < 4096 {
                    pool.push(input);
                }
            }
            Ok(false) => {}
            Err(_) => panic!(
                "panic on input (seed {seed:#x}, exec {execs}): {:?}",
                String::from_utf8_lossy(&input)
            ),
        }
        execs += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fuzz topology: {execs} executions in {secs:.1} s ({:.0}/s), {accepted} accepted, 0 findings (seed {seed:#x})",
        execs as f64 / secs.max(1e-9)
    );
}
