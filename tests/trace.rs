//! `vethscope trace` against real labs, and the in-kernel parser through BPF_PROG_TEST_RUN.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::Value;

/// A running `vethscope trace --json`, started and attached.
struct Tracer {
    child: Child,
    /// Everything the tracer wrote to stderr, collected by a thread (a closed pipe
    /// would kill it with SIGPIPE).
    stderr: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Tracer {
    fn start(lab: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(bin())
            .args([
                "trace",
                lab,
                "--json",
                "--proto",
                "arp,icmp",
                "--duration",
                "5",
            ])
            .args(extra)
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn trace");
        // The tracer says "tracing N interfaces" on stderr once its programs are attached.
        let stderr = wait_until_tracing(&mut child);
        Tracer {
            child,
            stderr: Some(stderr),
        }
    }

    /// Waits for the trace to end (its --duration) and returns its NDJSON lines.
    fn finish(self) -> Vec<Value> {
        self.finish_with_stderr().0
    }

    fn finish_with_stderr(mut self) -> (Vec<Value>, Vec<String>) {
        let stdout = self.child.stdout.take().expect("stdout");
        let lines: Vec<Value> = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "trace exited with {status}");
        let stderr = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        (lines, stderr)
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ebpf_log_forwards_the_programs_messages() {
    let lab = Lab::up("direct", "te");
    let tracer = Tracer::start(&lab.name, &["--ebpf-log"]);
    assert!(ping(&lab.ns("ns1"), "10.1.1.3", &[]));
    let (lines, stderr) = tracer.finish_with_stderr();
    assert!(
        lines.iter().any(|l| l["type"] == "path"),
        "tracing still works"
    );
    assert!(
        stderr
            .iter()
            .any(|l| l.contains("vethscope_ebpf") && l.contains("traced proto")),
        "the eBPF programs' log lines reach the terminal: {stderr:?}"
    );
}

fn hops(path: &Value, leg: &str) -> Vec<String> {
    path[leg]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| {
                    format!(
                        "{}/{} {}",
                        h["netns"].as_str().unwrap_or("?"),
                        h["ifname"].as_str().unwrap_or("?"),
                        h["dir"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn path_of<'a>(lines: &'a [Value], proto: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["type"] == "path" && l["proto"] == proto && l["verdict"] == "answered")
        .unwrap_or_else(|| panic!("no answered {proto} path in {lines:#?}"))
}

/// Traces one ping and checks the exact hop sequence of request and reply.
fn traced_ping(
    spec: &str,
    tag: &str,
    ping_extra: &[&str],
    request: &[&str],
    reply: &[&str],
) -> Vec<Value> {
    let lab = Lab::up(spec, tag);
    let expand = |s: &&str| {
        let (place, dir) = s.split_once(' ').unwrap_or((s, ""));
        let (ns, ifname) = place.split_once('/').unwrap_or(("host", place));
        if ns == "host" {
            format!("host/{} {dir}", lab.host_if(ifname))
        } else if ifname.starts_with("tap") {
            format!("{}/{} {dir}", lab.ns(ns), lab.host_if(ifname))
        } else {
            format!("{}/{ifname} {dir}", lab.ns(ns))
        }
    };
    let tracer = Tracer::start(&lab.name, &[]);
    assert!(
        ping(&lab.ns("ns1"), "10.1.1.3", ping_extra),
        "{spec}: ping under trace"
    );
    let lines = tracer.finish();
    let icmp = path_of(&lines, "icmp");
    assert_eq!(
        hops(icmp, "request"),
        request.iter().map(expand).collect::<Vec<_>>(),
        "{spec} request: {icmp}"
    );
    assert_eq!(
        hops(icmp, "reply"),
        reply.iter().map(expand).collect::<Vec<_>>(),
        "{spec} reply: {icmp}"
    );
    assert_eq!(icmp["seq"], 1);
    let summary = lines.last().expect("lines");
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["lost"], 0);
    lines
}

#[test]
fn direct_path() {
    let lines = traced_ping(
        "direct",
        "td",
        &[],
        &["ns1/veth0 egress", "ns2/veth1 ingress"],
        &["ns2/veth1 egress", "ns1/veth0 ingress"],
    );
    // A fresh lab has an empty neighbour cache: the ARP exchange comes first.
    let arp = path_of(&lines, "arp");
    assert_eq!(
        hops(arp, "request").first().map(String::as_str),
        Some("vsttd-ns1/veth0 egress")
    );
    assert!(!hops(arp, "reply").is_empty(), "ARP reply seen: {arp}");
}

#[test]
fn bridge_path() {
    traced_ping(
        "bridge",
        "tb",
        &[],
        &[
            "ns1/veth0 egress",
            "br-veth0 ingress",
            "br-veth1 egress",
            "ns2/veth1 ingress",
        ],
        &[
            "ns2/veth1 egress",
            "br-veth1 ingress",
            "br-veth0 egress",
            "ns1/veth0 ingress",
        ],
    );
}

#[test]
fn ovs_path() {
    traced_ping(
        "ovs",
        "to",
        &[],
        &[
            "ns1/veth0 egress",
            "ovs-veth0 ingress",
            "ovs-veth1 egress",
            "ns2/veth1 ingress",
        ],
        &[
            "ns2/veth1 egress",
            "ovs-veth1 ingress",
            "ovs-veth0 egress",
            "ns1/veth0 ingress",
        ],
    );
}

#[test]
fn ovs_internal_path() {
    traced_ping(
        "ovs-internal",
        "ti",
        &[],
        &["ns1/tap1 egress", "ns2/tap2 ingress"],
        &["ns2/tap2 egress", "ns1/tap1 ingress"],
    );
}

#[test]
fn same_ns_reply_comes_back_over_lo() {
    let lines = traced_ping(
        "same-ns",
        "ts",
        &["-I", "veth0"],
        &["ns1/veth0 egress", "ns1/veth1 ingress"],
        &["ns1/lo egress", "ns1/lo ingress"],
    );
    let icmp = path_of(&lines, "icmp");
    assert_eq!(icmp["reply_via_lo"], true);
    assert!(
        icmp["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("over lo")),
        "{icmp}"
    );
}

/// Every line must match docs/trace-json-schema.json.
fn assert_schema(lines: &[Value]) {
    let validator = published_schema("trace-json-schema.json");
    for line in lines {
        assert_valid(&validator, "a trace --json line", line);
    }
}

#[test]
fn json_output_matches_the_published_schema_and_pcap_reads_back() {
    let lab = Lab::up("bridge", "tj");
    let pcap = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tj.pcapng");
    let tracer = Tracer::start(&lab.name, &["--pcap", pcap.to_str().unwrap_or_default()]);
    assert!(ping(&lab.ns("ns1"), "10.1.1.3", &[]));
    let lines = tracer.finish();
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "hop" && l["proto"] == "arp"),
        "ARP hops present"
    );
    assert_schema(&lines);
    let out = Command::new("tcpdump")
        .args(["-r", pcap.to_str().unwrap_or_default(), "-nn"])
        .output()
        .expect("tcpdump");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tcpdump -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("ICMP echo request"), "{text}");
    assert!(text.contains("ARP, Request who-has 10.1.1.3"), "{text}");
    // Each hop is one packet in the capture.
    let hops = lines.iter().filter(|l| l["type"] == "hop").count();
    assert_eq!(text.lines().count(), hops, "{text}");
}

mod parser {
    //! The in-kernel parser on crafted frames, through BPF_PROG_TEST_RUN.
    use vethscope::probe::{LoadOptions, Probe};
    use vethscope_common::{PacketEvent, event_flags, proto};

    const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn eth(ethertype: u16, vlan: &[(u16, u16)], payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&DST_MAC);
        f.extend_from_slice(&SRC_MAC);
        for (tpid, vid) in vlan {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ipv4_icmp_echo(options: usize, id: u16, seq: u16) -> Vec<u8> {
        let ihl = 5 + options / 4;
        let mut ip = vec![
            (4 << 4) | ihl as u8,
            0,
            0,
            0,
            0,
            0,
            0x40,
            0,
            64,
            1,
            0,
            0,
            10,
            1,
            1,
            2,
            10,
            1,
            1,
            3,
        ];
        ip.extend(std::iter::repeat_n(1u8, options)); // NOP options
        let total = ip.len() + 8 + 8;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip.extend_from_slice(&[8, 0, 0, 0]);
        ip.extend_from_slice(&id.to_be_bytes());
        ip.extend_from_slice(&seq.to_be_bytes());
        ip.extend_from_slice(&[0xab; 8]);
        ip
    }

    fn arp_request() -> Vec<u8> {
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
        a.extend_from_slice(&SRC_MAC);
        a.extend_from_slice(&[10, 1, 1, 2]);
        a.extend_from_slice(&[0; 6]);
        a.extend_from_slice(&[10, 1, 1, 3]);
        a
    }

    fn run(frame: &[u8]) -> Vec<PacketEvent> {
        let mut probe = Probe::load(LoadOptions::default()).expect("load the eBPF object");
        let (_, ret) = probe.test_run("trace_ingress", frame, 1).expect("test run");
        assert_eq!(
            ret, -1,
            "an observer always returns TC_ACT_UNSPEC (next program)"
        );
        probe.drain_trace_events().expect("events")
    }

    #[test]
    fn vlan_tagged_icmp_echo() {
        let ev = run(&eth(0x0800, &[(0x8100, 42)], &ipv4_icmp_echo(0, 0x1234, 7)));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].proto, proto::ICMP);
        assert_eq!(
            (ev[0].icmp_type, ev[0].icmp_id, ev[0].icmp_seq),
            (8, 0x1234, 7)
        );
        assert_eq!(ev[0].vlan_id, 42);
        assert!(ev[0].flags & event_flags::VLAN != 0);
        assert_eq!(&ev[0].src[..4], &[10, 1, 1, 2]);
    }

    #[test]
    fn qinq_tagged_icmp_echo() {
        let ev = run(&eth(
            0x0800,
            &[(0x88a8, 100), (0x8100, 42)],
            &ipv4_icmp_echo(0, 1, 2),
        ));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].vlan_id, 100, "outermost tag");
    }

    #[test]
    fn ipv4_with_options() {
        let ev = run(&eth(0x0800, &[], &ipv4_icmp_echo(8, 99, 3)));
        assert_eq!(ev.len(), 1);
        assert!(ev[0].flags & event_flags::IP_OPTIONS != 0);
        assert_eq!(
            (ev[0].icmp_id, ev[0].icmp_seq),
            (99, 3),
            "ICMP found after the options"
        );
    }

    #[test]
    fn arp_request_and_truncated_arp() {
        let ev = run(&eth(0x0806, &[], &arp_request()));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].proto, proto::ARP);
        assert_eq!(ev[0].arp_op, 1);
        assert_eq!(&ev[0].dst[..4], &[10, 1, 1, 3]);
        let mut short = eth(0x0806, &[], &arp_request());
        short.truncate(14 + 20);
        assert!(
            run(&short).is_empty(),
            "a truncated ARP body yields no event"
        );
    }

    #[test]
    fn non_ip_and_tcp_yield_nothing() {
        assert!(run(&eth(0x88cc, &[], &[0u8; 46])).is_empty(), "LLDP");
        let mut tcp = ipv4_icmp_echo(0, 0, 0);
        tcp[9] = 6;
        assert!(run(&eth(0x0800, &[], &tcp)).is_empty(), "TCP");
    }

    #[test]
    fn icmpv6_neighbour_solicitation() {
        let target: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 32, 58, 255];
        ip6.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        ip6.extend_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 3]);
        ip6.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
        ip6.extend_from_slice(&target);
        ip6.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 1]);
        let ev = run(&eth(0x86dd, &[], &ip6));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].proto, proto::ICMPV6);
        assert_eq!(ev[0].icmp_type, 135);
        assert_eq!(ev[0].nd_target, target);
    }
}

/// What `vethscope trace … -- CMD` did: its status and both outputs.
struct Run {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

/// Runs `vethscope ARGS` to its end. It must end by itself (the traced command's
/// exit stops it); a hang guard kills it after two minutes so a bug fails the test
/// instead of stalling the suite.
fn run_to_end(args: &[&str]) -> Run {
    let mut child = Command::new(bin())
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vethscope");
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    };
    use std::io::Read as _;
    let out = read(child.stdout.take().map(|p| Box::new(p) as _));
    let err = read(child.stderr.take().map(|p| Box::new(p) as _));
    let mut waited = 0;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if waited >= 1200 {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "vethscope {args:?} did not stop by itself: {}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    };
    Run {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn paths<'a>(lines: &'a [Value], exchange: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["type"] == "path" && l["exchange"] == exchange)
        .collect()
}

#[test]
fn command_runs_once_attached_and_its_status_is_the_trace_s() {
    let lab = Lab::up("direct", "tc");
    let ns1 = lab.ns("ns1");
    let ok = run_to_end(&[
        "trace", &lab.name, "--json", "--", "ip", "netns", "exec", &ns1, "ping", "-c1", "-W2",
        "10.1.1.3",
    ]);
    assert!(ok.status.success(), "ping's status 0: {}", ok.stderr);
    // The "tracing" line, then the command's own output (its stdout comes on stderr,
    // so that stdout is the trace alone).
    let tracing = ok.stderr.find("vethscope: tracing").expect("tracing line");
    let ping = ok
        .stderr
        .find("PING 10.1.1.3")
        .expect("ping's output on stderr");
    assert!(
        tracing < ping,
        "attached before the command ran: {}",
        ok.stderr
    );
    let lines = ok.json();
    // The very first packets of the command were traced: the ARP exchange of a fresh
    // lab and the echo, both answered.
    let arp = paths(&lines, "arp");
    assert!(arp.iter().any(|p| p["verdict"] == "answered"), "{lines:#?}");
    assert!(
        paths(&lines, "echo")
            .iter()
            .any(|p| p["verdict"] == "answered" && p["seq"] == 1),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(|l| l["type"].clone()),
        Some("summary".into())
    );

    // The command's failure is the trace's exit status, and the trace still ends.
    let unanswered = run_to_end(&[
        "trace", &lab.name, "--json", "--proto", "icmp", "--", "ip", "netns", "exec", &ns1, "ping",
        "-c1", "-W1", "10.1.1.9",
    ]);
    assert_eq!(unanswered.status.code(), Some(1), "{}", unanswered.stderr);
    assert_eq!(
        unanswered.json().last().map(|l| l["type"].clone()),
        Some("summary".into())
    );
    let seven = run_to_end(&[
        "trace",
        &lab.name,
        "--paths-only",
        "--",
        "ip",
        "netns",
        "exec",
        &ns1,
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(seven.status.code(), Some(7), "{}", seven.stderr);

    // A command that cannot run: the shell's 127/126, before anything is attached.
    for (cmd, code) in [("/nonexistent/vethscope-test", 127), ("/etc/passwd", 126)] {
        let bad = run_to_end(&["trace", &lab.name, "--", cmd, "arg"]);
        assert_eq!(bad.status.code(), Some(code), "{cmd}: {}", bad.stderr);
        assert!(
            bad.stderr.contains(cmd) && bad.stderr.contains("nothing traced"),
            "{}",
            bad.stderr
        );
        assert!(
            !bad.stderr.contains("tracing"),
            "nothing attached: {}",
            bad.stderr
        );
        assert!(bad.stdout.is_empty(), "{}", bad.stdout);
    }
    // --duration and --count make no sense with a command that ends the trace.
    let both = vethscope(&["trace", &lab.name, "--duration", "1", "--", "true"]);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn arp_retries_are_numbered_attempts_without_repeated_hops() {
    let lab = Lab::up("bridge", "ta");
    let run = run_to_end(&[
        "trace",
        &lab.name,
        "--json",
        "--proto",
        "arp",
        "--",
        "ip",
        "netns",
        "exec",
        &lab.ns("ns1"),
        "ping",
        "-c1",
        "-W4",
        "10.1.1.9",
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let lines = run.json();
    assert_schema(&lines);
    let attempts: Vec<&Value> = paths(&lines, "arp")
        .into_iter()
        .filter(|p| p["dst"] == "10.1.1.9")
        .collect();
    // The kernel asks again every second; ping waited four.
    assert!(attempts.len() >= 2, "retries seen: {lines:#?}");
    let numbers: Vec<u64> = attempts
        .iter()
        .filter_map(|p| p["attempt"].as_u64())
        .collect();
    assert_eq!(
        numbers,
        (1..=attempts.len() as u64).collect::<Vec<_>>(),
        "{attempts:#?}"
    );
    let mut seen = std::collections::HashSet::new();
    for p in &attempts {
        assert_eq!(p["verdict"], "unanswered");
        assert_eq!(p["proto"], "arp");
        let hops = hops(p, "request");
        assert_eq!(
            hops,
            [
                format!("{}/veth0 egress", lab.ns("ns1")),
                format!("host/{} ingress", lab.host_if("br-veth0")),
                format!("host/{} egress", lab.host_if("br-veth1")),
                format!("{}/veth1 ingress", lab.ns("ns2")),
            ],
            "one attempt, each hop once: {p}"
        );
        for h in p["request"].as_array().into_iter().flatten() {
            assert!(seen.insert(h.to_string()), "hop on two attempts: {h}");
        }
    }
}

/// A bridge with three ports, IPv4 and IPv6 on each namespace's end.
const FLOOD_LAB: &str = "name: flood
namespaces:
  - name: ns1
  - name: ns2
  - name: ns3
bridges:
  - {name: br0, kind: linux}
links:
  - kind: veth
    ends:
      - {ns: ns1, name: veth0, addresses: [10.1.1.2/24, \"fd00:1::2/64\"]}
      - {bridge: br0, name: br-veth0}
  - kind: veth
    ends:
      - {ns: ns2, name: veth1, addresses: [10.1.1.3/24, \"fd00:1::3/64\"]}
      - {bridge: br0, name: br-veth1}
  - kind: veth
    ends:
      - {ns: ns3, name: veth2, addresses: [10.1.1.4/24, \"fd00:1::4/64\"]}
      - {bridge: br0, name: br-veth2}
";

/// Waits (bounded) until no IPv6 address of the namespace is still tentative (duplicate
/// address detection), so a ping6 has a source address.
fn wait_for_dad(ns: &str) {
    for _ in 0..100 {
        let out = in_ns(ns, &["ip", "-6", "addr", "show", "tentative"]);
        if out.status.success() && out.stdout.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("IPv6 addresses of {ns} still tentative after 10 s");
}

#[test]
fn a_bridge_flood_is_a_fan_out_and_arp_nd_are_labelled() {
    let file = topology_file("tf", FLOOD_LAB);
    let lab = Lab::up(file.to_str().unwrap_or_default(), "tf");
    let (ns1, ns2, ns3) = (lab.ns("ns1"), lab.ns("ns2"), lab.ns("ns3"));
    for ns in [&ns1, &ns2, &ns3] {
        wait_for_dad(ns);
    }
    let port = |p: &str| format!("host/{}", lab.host_if(p));

    // JSON: the two copies the bridge sends out share one parent, the bridge's ingress.
    let run = run_to_end(&[
        "trace",
        &lab.name,
        "--json",
        "--",
        "ip",
        "netns",
        "exec",
        &ns1,
        "sh",
        "-c",
        "ping -c1 -W2 10.1.1.3 && ping -c1 -W2 fd00:1::3",
    ]);
    assert!(run.status.success(), "{}", run.stderr);
    let lines = run.json();
    assert_schema(&lines);
    for exchange in ["arp", "nd"] {
        let p = paths(&lines, exchange)
            .into_iter()
            .find(|p| {
                p["src"]
                    == if exchange == "arp" {
                        "10.1.1.2"
                    } else {
                        "fd00:1::2"
                    }
            })
            .unwrap_or_else(|| panic!("no {exchange} path from ns1: {lines:#?}"));
        assert_eq!(p["verdict"], "answered", "{p}");
        let req = p["request"].as_array().expect("request");
        let at = |place: &str, dir: &str| {
            req.iter()
                .position(|h| {
                    format!(
                        "{}/{}",
                        h["netns"].as_str().unwrap_or(""),
                        h["ifname"].as_str().unwrap_or("")
                    ) == place
                        && h["dir"] == dir
                })
                .unwrap_or_else(|| panic!("{place} {dir} not in {p}"))
        };
        let ingress = at(&port("br-veth0"), "ingress");
        let out1 = at(&port("br-veth1"), "egress");
        let out2 = at(&port("br-veth2"), "egress");
        assert_eq!(req[out1]["parent"], ingress, "{exchange} fan-out: {p}");
        assert_eq!(req[out2]["parent"], ingress, "{exchange} fan-out: {p}");
        assert_eq!(
            req[at(&format!("{ns2}/veth1"), "ingress")]["parent"],
            out1,
            "{p}"
        );
        assert_eq!(
            req[at(&format!("{ns3}/veth2"), "ingress")]["parent"],
            out2,
            "{p}"
        );
        assert_eq!(p["attempt"], 1);
    }

    // Text: the fan-out drawn, ARP and ND named, root-namespace ports as host/IFNAME.
    let text = run_to_end(&[
        "trace",
        &lab.name,
        "--paths-only",
        "--",
        "ip",
        "netns",
        "exec",
        &ns1,
        "sh",
        "-c",
        "ping -c1 -W2 10.1.1.4 && ping -c1 -W2 fd00:1::4",
    ]);
    assert!(text.status.success(), "{}", text.stderr);
    let out = &text.stdout;
    for (label, dst) in [("ARP 10.1.1.2", "10.1.1.4"), ("ND fd00:1::2", "fd00:1::4")] {
        let head = format!(
            "path {label} → {dst}: {ns1}/veth0 → {}, flooded to 2 ports:",
            port("br-veth0")
        );
        let at = out
            .find(&head)
            .unwrap_or_else(|| panic!("no `{head}` in:\n{out}"));
        let branches: Vec<&str> = out[at..].lines().skip(1).take(2).map(str::trim).collect();
        let mut want = [
            format!("{} → {ns2}/veth1", port("br-veth1")),
            format!("{} → {ns3}/veth2", port("br-veth2")),
        ];
        let mut got: Vec<String> = branches
            .iter()
            .map(|b| b.trim_start_matches(['├', '└', '─', ' ']).to_string())
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "branches under `{head}`:\n{out}");
        assert!(
            branches[0].starts_with("├─ ") && branches[1].starts_with("└─ "),
            "{out}"
        );
    }
    let echo = format!(
        "path ICMP 10.1.1.2 → 10.1.1.4 seq 1: {ns1}/veth0 → {} → {} → {ns3}/veth2; reply",
        port("br-veth0"),
        port("br-veth2")
    );
    assert!(out.contains(&echo), "no `{echo}` in:\n{out}");
    assert!(
        out.contains("path ICMPv6 fd00:1::2 → fd00:1::4 seq 1: "),
        "{out}"
    );
}

#[test]
fn the_lo_explanation_only_when_a_veth_was_crossed() {
    let lab = Lab::up("same-ns", "tl");
    let ns1 = lab.ns("ns1");
    let echo = |run: &Run| -> Value {
        assert!(run.status.success(), "{}", run.stderr);
        let lines = run.json();
        paths(&lines, "echo")
            .into_iter()
            .find(|p| p["verdict"] == "answered")
            .cloned()
            .unwrap_or_else(|| panic!("no answered echo: {lines:#?}"))
    };
    // Sent out of veth0: the reply comes back over lo, the classic lesson.
    let crossed = echo(&run_to_end(&[
        "trace", &lab.name, "--json", "--", "ip", "netns", "exec", &ns1, "ping", "-c1", "-W2",
        "-I", "veth0", "10.1.1.3",
    ]));
    assert_eq!(crossed["reply_via_lo"], true);
    let e = crossed["explanation"].as_str().unwrap_or_default();
    assert!(
        e.starts_with("local delivery: 10.1.1.2 and 10.1.1.3 are both addresses of namespace")
            && e.contains(&format!("the request crossed {ns1}/veth0 → {ns1}/veth1"))
            && e.contains("answered over lo"),
        "{crossed}"
    );
    // A plain ping of the namespace's own address never leaves lo: said as such.
    let local = echo(&run_to_end(&[
        "trace", &lab.name, "--json", "--", "ip", "netns", "exec", &ns1, "ping", "-c1", "-W2",
        "10.1.1.3",
    ]));
    assert_eq!(
        hops(&local, "request"),
        [format!("{ns1}/lo egress"), format!("{ns1}/lo ingress")]
    );
    let e = local["explanation"].as_str().unwrap_or_default();
    assert!(
        !e.contains("local delivery") && e.contains("never touched a veth"),
        "{local}"
    );
}

#[test]
fn ctrl_c_goes_to_the_command_and_the_trace_ends_with_it() {
    use std::io::Read as _;
    let lab = Lab::up("direct", "tg");
    let mut child = Command::new(bin())
        .args(["trace", &lab.name, "--json", "--proto", "icmp", "--"])
        .args([
            "ip",
            "netns",
            "exec",
            &lab.ns("ns1"),
            "ping",
            "-i",
            "0.2",
            "10.1.1.3",
        ])
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn trace");
    // ping (its stdout comes on our stderr) has had a reply: the command is running.
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("bytes from 10.1.1.3") {
                let _ = tx.send(());
            }
            seen.push(line);
        }
        seen
    });
    if rx.recv_timeout(std::time::Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("ping never answered: {:?}", reader.join());
    }
    // SIGINT to vethscope alone, as `kill -INT` would: it reaches ping, which prints
    // its statistics and exits 0; the trace stops then.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("kill -INT");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    let status = child.wait().expect("wait");
    let err = reader.join().unwrap_or_default();
    assert!(
        status.success(),
        "ping's status after SIGINT: {status} {err:?}"
    );
    assert!(
        err.iter().any(|l| l.contains("packets transmitted")),
        "ping got the signal and printed its statistics: {err:?}"
    );
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "path" && l["verdict"] == "answered"),
        "{out}"
    );
    assert_eq!(
        lines.last().map(|l| l["type"].clone()),
        Some("summary".into())
    );
}
