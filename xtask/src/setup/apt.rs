//! Debian packages the features and tests use.

use std::process::Command;

use anyhow::{Context as _, Result};

use crate::util;

const PACKAGES: &[&str] = &[
    "iproute2",
    "iputils-ping",
    "openvswitch-switch",
    "iperf3",
    "tcpdump",
    "bpftool",
    "prometheus",
    "ethtool",
    // `cargo xtask bench scale` compares with Mininet on Linux bridges (lxbr needs brctl).
    "mininet",
    "bridge-utils",
    // diagnose reads the FORWARD chain bridged frames pass with bridge-nf-call-iptables=1
    // (iptables-save), and its test adds a rule scoped to the lab's bridge.
    "iptables",
];

/// Installs the missing packages (one `apt-get update` first), skips when all are present.
pub fn ensure() -> Result<()> {
    let missing = missing()?;
    if missing.is_empty() {
        println!("setup: apt packages: all {} present", PACKAGES.len());
        return Ok(());
    }
    println!("setup: apt packages: installing {}", missing.join(" "));
    util::run(Command::new("apt-get").arg("update"))?;
    util::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
    )
}

fn missing() -> Result<Vec<&'static str>> {
    let mut missing = Vec::new();
    for &package in PACKAGES {
        if !is_installed(package)? {
            missing.push(package);
        }
    }
    Ok(missing)
}

/// `dpkg-query -W -f='${Status}'` prints `install ok installed` for an installed package;
/// it fails or prints e.g. `unknown ok not-installed` / `deinstall ok config-files` otherwise.
fn is_installed(package: &str) -> Result<bool> {
    let output = util::capture(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .context("setup needs dpkg (Debian or Ubuntu)")?;
    let status = String::from_utf8_lossy(&output.stdout);
    Ok(output.status.success() && status.split_whitespace().last() == Some("installed"))
}
