//! `vethscope diagnose`: exit 0 healthy, 1 findings, 2 usage errors.

use std::io::Write;
use std::process::ExitCode;

use crate::diagnose::{self, DiagnoseOptions};
use crate::privileges::{self, Cap};

use super::DiagnoseArgs;

/// Exit code for findings.
const EXIT_FINDINGS: u8 = 1;
/// Exit code for usage errors (as clap's own).
const EXIT_USAGE: u8 = 2;

fn usage(msg: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("vethscope: {msg}");
    Ok(ExitCode::from(EXIT_USAGE))
}

pub async fn diagnose(args: DiagnoseArgs) -> anyhow::Result<ExitCode> {
    if !lab_name_ok(&args.lab) {
        return usage(format!(
            "lab name `{}`: 1-48 characters of letters, digits, '-', '_' or '.', not `.` or `..`",
            args.lab
        ));
    }
    if let Some(from) = &args.from
        && !netns_name_ok(from)
    {
        return usage(format!("--from `{from}` is not a namespace name"));
    }
    let pair = match (&args.from, &args.to) {
        (Some(from), Some(to)) => match to.parse::<std::net::IpAddr>() {
            Ok(addr) => Some((from.clone(), addr)),
            Err(_) => return usage(format!("--to {to}: not an IPv4 or IPv6 address")),
        },
        (None, None) => None,
        _ => return usage("--from and --to go together (or leave both out to check every pair)"),
    };
    if !(0.01..=30.0).contains(&args.timeout) {
        return usage(format!(
            "--timeout {}: give seconds between 0.01 and 30",
            args.timeout
        ));
    }
    if args.yes && !args.fix {
        return usage("--yes only makes sense with --fix");
    }
    let mut caps = vec![Cap::NetAdmin, Cap::SysAdmin];
    if !args.no_probe {
        caps.push(Cap::Bpf);
    }
    privileges::require("diagnose", &caps)?;
    let opts = DiagnoseOptions {
        lab: args.lab.clone(),
        pair,
        probe: !args.no_probe,
        probe_timeout: std::time::Duration::from_secs_f64(args.timeout),
        max_pairs: args.max_pairs,
    };
    let report = match diagnose::run(&opts).await {
        Ok(r) => r,
        Err(e) if e.is_usage() => return usage(e),
        Err(e) => return Err(e.into()),
    };
    let single = opts.pair.is_some();
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", diagnose::render::json(&report, single))?;
    } else {
        write!(out, "{}", diagnose::render::text(&report, single))?;
    }
    drop(out);
    if args.fix && !report.ok {
        return diagnose::fix::apply(&report, args.yes, args.json);
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    })
}

/// The rule of lab names in topology files; also keeps the name one path segment.
fn lab_name_ok(lab: &str) -> bool {
    !lab.is_empty()
        && lab.len() <= 48
        && lab != "."
        && lab != ".."
        && lab
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A namespace name becomes a path under /run/netns: one plain segment.
fn netns_name_ok(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 255
        && ns != "."
        && ns != ".."
        && !ns.contains('/')
        && !ns.contains('\0')
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert!(super::lab_name_ok("t1-bridge"));
        assert!(!super::lab_name_ok(".."));
        assert!(!super::lab_name_ok("a/b"));
        assert!(super::netns_name_ok("ns1"));
        assert!(!super::netns_name_ok("../x"));
    }
}
