//! Whether this kernel has `sch_netem`: built in (its symbols are in /proc/kallsyms,
//! or /sys/module/sch_netem exists) or as a module the kernel can load on demand.
//! Asked before anything is changed, so a missing netem fails cleanly.

use std::io::{BufRead, BufReader};
use std::path::Path;

pub fn available() -> bool {
    if Path::new("/sys/module/sch_netem").exists() || module_file() {
        return true;
    }
    kallsyms_has("netem_enqueue")
}

/// `/lib/modules/$(uname -r)/kernel/net/sched/sch_netem.ko*`, on a kernel that loads modules.
fn module_file() -> bool {
    if !Path::new("/proc/modules").exists() {
        return false;
    }
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let dir = Path::new("/lib/modules")
        .join(release.trim())
        .join("kernel/net/sched");
    [
        "sch_netem.ko",
        "sch_netem.ko.xz",
        "sch_netem.ko.zst",
        "sch_netem.ko.gz",
    ]
    .iter()
    .any(|f| dir.join(f).exists())
}

fn kallsyms_has(symbol: &str) -> bool {
    let Ok(f) = std::fs::File::open("/proc/kallsyms") else {
        return false;
    };
    BufReader::new(f).lines().map_while(Result::ok).any(|line| {
        // "ffffffff81234567 t netem_enqueue" (optionally followed by "\t[module]").
        line.split_whitespace().nth(2) == Some(symbol)
    })
}
