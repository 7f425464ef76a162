//! The star both host-scale benchmarks build (`bench scale`, `bench scale --serve`):
//! N namespaces on one Linux bridge, each with one veth (`eth0`, a /16 address) whose
//! other end is a port of the bridge, brought up by `vethscope up` from a file.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::util;

/// Names and addresses of one benchmark's star: namespaces `{ns}I`, bridge `bridge`,
/// root-side ports `{port}I`, lab `{ns}star`, addresses 10.`subnet`.0.0/16.
pub struct Star {
    pub ns: &'static str,
    pub bridge: &'static str,
    pub port: &'static str,
    pub subnet: u8,
}

/// Whether the star's namespaces keep IPv6. With it on, each new interface starts IPv6
/// autoconfiguration (router solicitations, DAD, MLD reports) whose multicast the one
/// bridge floods to every other port: at 1,000 ports, seconds of kernel CPU after `up`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ipv6 {
    On,
    Off,
}

impl Star {
    pub fn lab(&self) -> String {
        format!("{}star", self.ns)
    }

    /// Address of namespace `i` (from .0.2 on).
    pub fn addr(&self, i: usize) -> String {
        format!("10.{}.{}.{}", self.subnet, (i + 2) / 256, (i + 2) % 256)
    }

    /// The topology file of a star of `n` namespaces, IPv6 off in each when asked.
    pub fn yaml_with(&self, n: usize, ipv6: Ipv6) -> String {
        let mut t = format!("name: {}\nnamespaces:\n", self.lab());
        for i in 0..n {
            let _ = writeln!(t, "  - name: {}{i}", self.ns);
            if ipv6 == Ipv6::Off {
                t.push_str("    sysctls: {net.ipv6.conf.all.disable_ipv6: 1, net.ipv6.conf.default.disable_ipv6: 1}\n");
            }
        }
        let _ = writeln!(
            t,
            "bridges:\n  - {{name: {}, kind: linux}}\nlinks:",
            self.bridge
        );
        for i in 0..n {
            let _ = writeln!(
                t,
                "  - kind: veth\n    ends:\n      - {{ns: {}{i}, name: eth0, addresses: [{}/16]}}\n      - {{bridge: {}, name: {}{i}}}",
                self.ns,
                self.addr(i),
                self.bridge,
                self.port
            );
        }
        t
    }

    /// Writes the file of a star of `n` into `dir` and brings it up with `bin`; the time
    /// `up` took.
    pub fn up(&self, bin: &Path, dir: &Path, n: usize) -> Result<Duration> {
        self.up_with(bin, dir, n, Ipv6::On)
    }

    /// The same, with IPv6 on or off in the namespaces.
    pub fn up_with(&self, bin: &Path, dir: &Path, n: usize, ipv6: Ipv6) -> Result<Duration> {
        let file = dir.join(format!("{}-star-{n}.yaml", self.ns));
        std::fs::write(&file, self.yaml_with(n, ipv6))
            .with_context(|| format!("write {}", file.display()))?;
        timed(Command::new(bin).arg("up").arg(&file))
    }
}

/// Runs `cmd` (stdout discarded); its wall time, or its stderr when it fails.
pub fn timed(cmd: &mut Command) -> Result<Duration> {
    Ok(timed_cpu(cmd)?.0)
}

/// CPU time (user + system) of the children waited for so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage(2) fills the zeroed struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Wall time and CPU time (user + system, all its threads) of one command; its stderr
/// when it fails.
pub fn timed_cpu(cmd: &mut Command) -> Result<(Duration, Duration)> {
    let cpu_before = children_cpu();
    let started = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .output()
        .with_context(|| format!("run {}", util::describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            util::describe(cmd),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((started.elapsed(), children_cpu().saturating_sub(cpu_before)))
}

pub fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_file_names_every_namespace_port_and_address() {
        let star = Star {
            ns: "t",
            bridge: "tbr",
            port: "tp",
            subnet: 9,
        };
        let y = star.yaml_with(300, Ipv6::On);
        assert!(y.starts_with("name: tstar\n"));
        assert!(y.contains("  - name: t299\n"));
        assert!(y.contains("{ns: t299, name: eth0, addresses: [10.9.1.45/16]}"));
        assert!(y.contains("{bridge: tbr, name: tp0}"));
        assert!(!y.contains("disable_ipv6"));
        let off = star.yaml_with(2, Ipv6::Off);
        assert_eq!(off.matches("net.ipv6.conf.all.disable_ipv6: 1").count(), 2);
        assert_eq!(star.addr(0), "10.9.0.2");
        assert_eq!(star.addr(254), "10.9.1.0");
    }
}
