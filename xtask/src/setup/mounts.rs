//! bpffs (pinning) and tracefs (tracepoints through perf events), mounted only when missing.

use std::{fs, process::Command};

use anyhow::{Context as _, Result};

use crate::util;

struct Filesystem {
    fstype: &'static str,
    target: &'static str,
    /// Mount options; bpffs is root's alone (mode 0700), so nobody else can plant pins
    /// or symlinks where vethscope pins its programs.
    options: &'static str,
}

const FILESYSTEMS: [Filesystem; 2] = [
    Filesystem {
        fstype: "bpf",
        target: "/sys/fs/bpf",
        options: "mode=0700",
    },
    Filesystem {
        fstype: "tracefs",
        target: "/sys/kernel/tracing",
        options: "defaults",
    },
];

pub fn ensure() -> Result<()> {
    let mounts =
        fs::read_to_string("/proc/self/mounts").context("could not read /proc/self/mounts")?;
    for fs in FILESYSTEMS {
        if is_mounted(&mounts, &fs) {
            println!("setup: {} at {}: mounted", fs.fstype, fs.target);
        } else {
            println!("setup: {} at {}: mounting", fs.fstype, fs.target);
            util::run(
                Command::new("mount")
                    .args(["-t", fs.fstype, "-o", fs.options, fs.fstype, fs.target]),
            )?;
        }
    }
    Ok(())
}

/// /proc/self/mounts lines: `source target fstype options 0 0`.
fn is_mounted(mounts: &str, fs: &Filesystem) -> bool {
    mounts.lines().any(|line| {
        let mut fields = line.split_whitespace().skip(1);
        fields.next() == Some(fs.target) && fields.next() == Some(fs.fstype)
    })
}
