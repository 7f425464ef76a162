//! `cargo xtask bench scale [--sizes 200,1000] [--no-mininet] [--vethscope-only]
//! [--against OLD_BINARY]`: stars of N namespaces on
//! one Linux bridge, built and removed side by side in one run by vethscope, a bash
//! script of `ip` commands, `ip -batch`, and Mininet (`--switch lxbr`); each proves its
//! star with a ping from the first namespace to the last. Prints seconds and the cost
//! per namespace (= per link: a star has one link per namespace).
//!
//! As root, on a machine (or `scripts/simhost`) where nothing is named `vsb*`,
//! `h1`… or `s1`. "down" is timed until the root namespace is clean (no port of the
//! star left), for every tool alike: `ip netns del` returns before the kernel has
//! removed the veths. `--vethscope-only` leaves out the other tools; `--against BIN`
//! also runs the read-only commands (show, show --json, graph, diagnose, show --drift)
//! with an older vethscope binary on the same star, alternating, and prints wall and
//! CPU time (user + system of the child) side by side: on a shared, noisy machine
//! only a comparison in one run says anything.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::star::{Ipv6, Star, load_average, timed, timed_cpu, utc_now};
use crate::{build, util};

/// The star: namespaces vsbI, bridge vsbbr, root-side ports vsbpI, lab vsbstar.
const STAR: Star = Star {
    ns: "vsb",
    bridge: "vsbbr",
    port: "vsbp",
    subnet: 213,
};
const NS: &str = STAR.ns;
const BRIDGE: &str = STAR.bridge;
const PORT: &str = STAR.port;

struct Options {
    sizes: Vec<usize>,
    mininet: bool,
    peers: bool,
    against: Option<PathBuf>,
}

fn parse(args: &[OsString]) -> Result<Options> {
    let mut o = Options {
        sizes: vec![200, 1000],
        mininet: true,
        peers: true,
        against: None,
    };
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sizes" => {
                let v = it.next().context("--sizes needs a list, e.g. 200,1000")?;
                o.sizes = v
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .with_context(|| format!("--sizes {v}: not a list of numbers"))?;
                if let Some(n) = o.sizes.iter().find(|&&n| !(2..=1023).contains(&n)) {
                    bail!("--sizes: {n} is outside 2..=1023 (one Linux bridge holds 1,023 ports)");
                }
            }
            "--no-mininet" => o.mininet = false,
            "--vethscope-only" => o.peers = false,
            "--against" => {
                let bin = PathBuf::from(it.next().context("--against needs a vethscope binary")?);
                if !bin.is_file() {
                    bail!("--against {}: no such file", bin.display());
                }
                o.against = Some(bin);
            }
            other => bail!(
                "unknown argument {other} (usage: bench scale [--sizes 200,1000] [--no-mininet] [--vethscope-only] [--against OLD_BINARY])"
            ),
        }
    }
    Ok(o)
}

/// One tool's figures on one star.
struct Row {
    tool: &'static str,
    up: Duration,
    down: Duration,
    ping: bool,
}

pub fn run(args: &[OsString]) -> Result<()> {
    let opts = parse(args)?;
    if !util::is_root()? {
        bail!("bench scale needs root (run it in scripts/simhost or on a scratch machine)");
    }
    build::cargo_build(&["--package", "vethscope", "--release"])?;
    let vethscope = util::target_dir().join("release/vethscope");
    let dir = util::target_dir().join("bench-scale");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    ensure_clean()?;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "bench scale, {} UTC, load average at start {}",
        utc_now(),
        load_average()
    );
    for &n in &opts.sizes {
        let mut rows = Vec::new();
        let mut extra = String::new();
        rows.push(bench_vethscope(
            &vethscope,
            opts.against.as_deref(),
            &dir,
            n,
            &mut extra,
        )?);
        extra.push_str(&first_show_by_ipv6(&vethscope, &dir, n)?);
        if opts.peers {
            rows.push(bench_ip_script(&dir, n)?);
            rows.push(bench_ip_batch(&dir, n)?);
        }
        if opts.peers && opts.mininet {
            rows.push(bench_mininet(n)?);
        }
        report.push_str(&table(n, &rows, &extra));
    }
    print!("{report}");
    let out = dir.join("report.txt");
    std::fs::write(&out, &report).with_context(|| format!("write {}", out.display()))?;
    println!("(also in {})", out.display());
    Ok(())
}

fn table(n: usize, rows: &[Row], extra: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nstar of {n} namespaces on one Linux bridge ({n} veth pairs)"
    );
    let _ = writeln!(
        t,
        "| tool | up s | down s | up+down s | ping | per namespace (= per link) up / down ms |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---|---:|");
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {:.2} | {:.2} | {:.2} | {} | {:.2} / {:.2} |",
            r.tool,
            r.up.as_secs_f64(),
            r.down.as_secs_f64(),
            (r.up + r.down).as_secs_f64(),
            if r.ping { "ok" } else { "FAILED" },
            r.up.as_secs_f64() * 1000.0 / n as f64,
            r.down.as_secs_f64() * 1000.0 / n as f64,
        );
    }
    t.push_str(extra);
    if let Some(v) = rows.first().filter(|_| rows.len() > 1) {
        let ours = (v.up + v.down).as_secs_f64();
        let mut parts = Vec::new();
        for r in &rows[1..] {
            parts.push(format!(
                "{:.1}x vs {}",
                (r.up + r.down).as_secs_f64() / ours,
                r.tool
            ));
        }
        let _ = writeln!(t, "vethscope up+down speed-up: {}", parts.join(", "));
    }
    t
}

fn ping_across(n: usize) -> bool {
    Command::new("ip")
        .args(["netns", "exec", &format!("{NS}0")])
        .args(["ping", "-c", "1", "-W", "3", &STAR.addr(n - 1)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Names of the star (or of Mininet) still present.
fn leftovers() -> Vec<String> {
    let mut left = Vec::new();
    for (dir, what) in [("/run/netns", "namespace"), ("/sys/class/net", "interface")] {
        if let Ok(d) = std::fs::read_dir(dir) {
            for e in d.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let mininet = name == "s1" || name.starts_with("s1-eth");
                if name.starts_with(NS) || mininet {
                    left.push(format!("{what} {name}"));
                }
            }
        }
    }
    left
}

fn ensure_clean() -> Result<()> {
    let left = leftovers();
    if !left.is_empty() {
        bail!(
            "objects of an earlier run are present: {} (remove them first)",
            left.join(", ")
        );
    }
    Ok(())
}

/// Waits (up to 60 s) until nothing of the star is left; the time it took.
fn wait_clean() -> Result<Duration> {
    let started = Instant::now();
    while !leftovers().is_empty() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("still there 60 s after down: {}", leftovers().join(", "));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(started.elapsed())
}

fn bench_vethscope(
    bin: &Path,
    against: Option<&Path>,
    dir: &Path,
    n: usize,
    extra: &mut String,
) -> Result<Row> {
    let lab = STAR.lab();
    let up = STAR.up(bin, dir, n)?;
    let ping = ping_across(n);
    let show = timed(Command::new(bin).args(["show", &lab]))?;
    let show_json = timed(Command::new(bin).args(["show", &lab, "--json"]))?;
    let graph = timed(Command::new(bin).args(["graph", &lab]))?;
    // One pair across the star: static checks alone, then with the traced probe.
    let (first, last) = (format!("{NS}0"), STAR.addr(n - 1));
    let pair = ["diagnose", &lab, "--from", &first, "--to", &last];
    let diagnose_static = timed(Command::new(bin).args(pair).arg("--no-probe"))?;
    let diagnose = timed(Command::new(bin).args(pair))?;
    let drift = timed(Command::new(bin).args(["show", &lab, "--drift"]))?;
    if let Some(old) = against {
        extra.push_str(&read_commands_side_by_side(bin, old, &lab, n)?);
    }
    let fastpath_on = timed(Command::new(bin).args(["fastpath", "enable", &lab]))?;
    let fastpath_off = timed(Command::new(bin).args(["fastpath", "disable", &lab]))?;
    let down = timed(Command::new(bin).args(["down", &lab]))? + wait_clean()?;
    let per_ns = |d: Duration| d.as_secs_f64() * 1000.0 / n as f64;
    let _ = writeln!(
        extra,
        "vethscope show {:.3} s, show --json {:.3} s, graph {:.3} s, show --drift {:.3} s ({:.3} / {:.3} / {:.3} / {:.3} ms per namespace)",
        show.as_secs_f64(),
        show_json.as_secs_f64(),
        graph.as_secs_f64(),
        drift.as_secs_f64(),
        per_ns(show),
        per_ns(show_json),
        per_ns(graph),
        per_ns(drift),
    );
    let _ = writeln!(
        extra,
        "vethscope diagnose of one pair {:.3} s static, {:.3} s with probe; fastpath enable {:.3} s, disable {:.3} s ({:.3} / {:.3} ms per port)",
        diagnose_static.as_secs_f64(),
        diagnose.as_secs_f64(),
        fastpath_on.as_secs_f64(),
        fastpath_off.as_secs_f64(),
        per_ns(fastpath_on),
        per_ns(fastpath_off),
    );
    Ok(Row {
        tool: "vethscope",
        up,
        down,
        ping,
    })
}

/// `show` right after `up`, with IPv6 on and then off in the namespaces: how much of the
/// first `show`'s time is the kernel's IPv6 autoconfiguration flooding the bridge.
fn first_show_by_ipv6(bin: &Path, dir: &Path, n: usize) -> Result<String> {
    let lab = STAR.lab();
    let mut t = format!(
        "\n`show` right after `up` at {n}, and 3 s later, by IPv6 in the namespaces\n| IPv6 in the namespaces | up s | first show s | show 3 s later s | down s |\n|---|---:|---:|---:|---:|\n"
    );
    for (ipv6, name) in [
        (Ipv6::On, "on (the default)"),
        (Ipv6::Off, "off (`disable_ipv6: 1`)"),
    ] {
        let up = STAR.up_with(bin, dir, n, ipv6)?;
        if !ping_across(n) {
            bail!("star of {n} with IPv6 {name}: the ping across failed");
        }
        let first = timed(Command::new(bin).args(["show", &lab]))?;
        std::thread::sleep(Duration::from_secs(3));
        let later = timed(Command::new(bin).args(["show", &lab]))?;
        let down = timed(Command::new(bin).args(["down", &lab]))? + wait_clean()?;
        let _ = writeln!(
            t,
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
            up.as_secs_f64(),
            first.as_secs_f64(),
            later.as_secs_f64(),
            down.as_secs_f64()
        );
    }
    Ok(t)
}

/// The read-only commands with `new` and `old` on the same star, alternating, three
/// rounds: a table of the median wall and CPU time of each.
fn read_commands_side_by_side(new: &Path, old: &Path, lab: &str, n: usize) -> Result<String> {
    const ROUNDS: usize = 3;
    let first = format!("{NS}0");
    let last = STAR.addr(n - 1);
    let commands: [(&str, Vec<&str>); 5] = [
        ("show", vec!["show", lab]),
        ("show --json", vec!["show", lab, "--json"]),
        ("graph", vec!["graph", lab]),
        (
            "diagnose --no-probe",
            vec![
                "diagnose",
                lab,
                "--from",
                &first,
                "--to",
                &last,
                "--no-probe",
            ],
        ),
        ("show --drift", vec!["show", lab, "--drift"]),
    ];
    let mut t = format!(
        "\nread-only commands at {n}, {ROUNDS} rounds alternating, median wall / CPU (user+sys) s\n| command | {} | {} |\n|---|---:|---:|\n",
        old.display(),
        new.display()
    );
    for (name, args) in &commands {
        let mut runs: [Vec<(Duration, Duration)>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..ROUNDS {
            for (i, bin) in [old, new].into_iter().enumerate() {
                runs[i].push(timed_cpu(Command::new(bin).args(args))?);
            }
        }
        let median = |v: &[(Duration, Duration)]| {
            let mut wall: Vec<Duration> = v.iter().map(|r| r.0).collect();
            let mut cpu: Vec<Duration> = v.iter().map(|r| r.1).collect();
            wall.sort();
            cpu.sort();
            format!(
                "{:.3} / {:.3}",
                wall[wall.len() / 2].as_secs_f64(),
                cpu[cpu.len() / 2].as_secs_f64()
            )
        };
        let _ = writeln!(
            t,
            "| {name} | {} | {} |",
            median(&runs[0]),
            median(&runs[1])
        );
    }
    Ok(t)
}

/// What a person would write: one `ip` command per step.
fn bench_ip_script(dir: &Path, n: usize) -> Result<Row> {
    let mut up = format!("set -e\nip link add {BRIDGE} type bridge\nip link set {BRIDGE} up\n");
    for i in 0..n {
        let _ = writeln!(
            up,
            "ip netns add {NS}{i}\n\
             ip link add {PORT}{i} master {BRIDGE} up type veth peer name eth0 netns {NS}{i}\n\
             ip -n {NS}{i} addr add {}/16 dev eth0\n\
             ip -n {NS}{i} link set eth0 up\n\
             ip -n {NS}{i} link set lo up",
            STAR.addr(i)
        );
    }
    let mut down = String::from("set -e\n");
    for i in 0..n {
        let _ = writeln!(down, "ip netns del {NS}{i}");
    }
    let _ = writeln!(down, "ip link del {BRIDGE}");
    run_scripts("bash ip script", dir, n, &up, &down)
}

/// The same with `ip -batch`: one process for the root namespace's part, one per
/// namespace for what must run inside it (an address cannot be added from outside).
fn bench_ip_batch(dir: &Path, n: usize) -> Result<Row> {
    let root = dir.join("ip-batch-up.txt");
    let mut b = format!("link add {BRIDGE} type bridge\nlink set {BRIDGE} up\n");
    for i in 0..n {
        let _ = writeln!(
            b,
            "netns add {NS}{i}\nlink add {PORT}{i} master {BRIDGE} up type veth peer name eth0 netns {NS}{i}"
        );
    }
    std::fs::write(&root, b)?;
    let mut up = format!("set -e\nip -batch {}\n", root.display());
    for i in 0..n {
        let _ = writeln!(
            up,
            "printf 'addr add {}/16 dev eth0\\nlink set eth0 up\\nlink set lo up\\n' | ip -n {NS}{i} -batch -",
            STAR.addr(i)
        );
    }
    let down_file = dir.join("ip-batch-down.txt");
    let mut d = String::new();
    for i in 0..n {
        let _ = writeln!(d, "netns del {NS}{i}");
    }
    let _ = writeln!(d, "link del {BRIDGE}");
    std::fs::write(&down_file, d)?;
    let down = format!("set -e\nip -batch {}\n", down_file.display());
    run_scripts("ip -batch", dir, n, &up, &down)
}

fn run_scripts(tool: &'static str, dir: &Path, n: usize, up: &str, down: &str) -> Result<Row> {
    let slug: String = tool.replace(' ', "-");
    let up_file: PathBuf = dir.join(format!("{slug}-up.sh"));
    let down_file: PathBuf = dir.join(format!("{slug}-down.sh"));
    std::fs::write(&up_file, up)?;
    std::fs::write(&down_file, down)?;
    let up = timed(Command::new("bash").arg(&up_file))?;
    let ping = ping_across(n);
    let down = timed(Command::new("bash").arg(&down_file))? + wait_clean()?;
    Ok(Row {
        tool,
        up,
        down,
        ping,
    })
}

/// `mn --topo single,N --switch lxbr --controller none`, its CLI fed one ping from h1 to
/// hN; up = until the CLI starts, down = from the CLI's end until mn exits and the
/// root namespace is clean.
fn bench_mininet(n: usize) -> Result<Row> {
    let started = Instant::now();
    let mut child = Command::new("mn")
        .args([
            "--topo",
            &format!("single,{n}"),
            "--switch",
            "lxbr",
            "--controller",
            "none",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("run mn (Debian package mininet; `cargo xtask setup` installs it)")?;
    let stderr = child.stderr.take().context("mn stderr")?;
    let stdout = child.stdout.take().context("mn stdout")?;
    // mn prints its progress on stderr.
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let mut up = None;
    let mut cli_done = None;
    let mut stdin = child.stdin.take();
    let mut log = String::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        log.push_str(&line);
        log.push('\n');
        if up.is_none() && line.contains("*** Starting CLI") {
            up = Some(started.elapsed());
            if let Some(mut s) = stdin.take() {
                // The CLI replaces a host name with its address.
                writeln!(s, "h1 ping -c1 -W3 h{n}")?;
                // Closing stdin ends the CLI, and mn tears the network down.
            }
        }
        if cli_done.is_none() && line.contains("*** Stopping") {
            cli_done = Some(Instant::now());
        }
    }
    let status = child.wait()?;
    let exited = Instant::now();
    let out = out_reader.join().unwrap_or_default();
    let down_end = wait_clean()?;
    let (Some(up), Some(cli_done)) = (up, cli_done) else {
        bail!("mn did not start its CLI ({status}):\n{log}");
    };
    if !status.success() {
        bail!("mn failed ({status}):\n{log}");
    }
    Ok(Row {
        tool: "Mininet (lxbr)",
        up,
        down: exited.duration_since(cli_done) + down_end,
        // The CLI's output goes to stdout or (as mn's log) to stderr.
        ping: out.contains(" 0% packet loss") || log.contains(" 0% packet loss"),
    })
}
