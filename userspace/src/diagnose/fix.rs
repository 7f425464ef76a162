//! `--fix`: run the fix commands of the findings, after showing them, only for objects
//! the lab owns (its namespaces; root-namespace interfaces that carry its mark).

use std::io::{BufRead, Write};
use std::process::ExitCode;

use super::Report;
use crate::topology::HOST;

/// Whether a finding's object belongs to the lab: a lab namespace, or a root-namespace
/// interface marked with the lab's alias.
fn owned(report: &Report, netns: &str, ifname: &str) -> bool {
    if netns != HOST {
        return crate::netns::exists(netns);
    }
    let alias =
        std::fs::read_to_string(format!("/sys/class/net/{ifname}/ifalias")).unwrap_or_default();
    !ifname.is_empty()
        && !ifname.contains('/')
        && alias.trim() == crate::wire::mark::alias(&report.lab)
}

pub fn apply(report: &Report, yes: bool, json: bool) -> anyhow::Result<ExitCode> {
    let mut todo: Vec<(String, Vec<String>)> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for p in &report.pairs {
        for f in &p.findings {
            let Some(cmd) = &f.fix else { continue };
            if f.fix_argv.is_empty() {
                skipped.push(format!(
                    "{} {}: not one command ({cmd})",
                    f.code,
                    f.object()
                ));
                continue;
            }
            if !owned(report, &f.netns, &f.ifname) {
                skipped.push(format!(
                    "{} {}: not an object of lab {}",
                    f.code,
                    f.object(),
                    report.lab
                ));
                continue;
            }
            if !todo.iter().any(|(c, _)| c == cmd) {
                todo.push((cmd.clone(), f.fix_argv.clone()));
            }
        }
    }
    // Messages go to stderr so --json output stays one document.
    let mut err = std::io::stderr().lock();
    for s in &skipped {
        writeln!(err, "vethscope: not fixing {s}")?;
    }
    if todo.is_empty() {
        writeln!(err, "vethscope: nothing to fix automatically")?;
        return Ok(ExitCode::from(1));
    }
    writeln!(err, "fixes:")?;
    for (cmd, _) in &todo {
        writeln!(err, "  {cmd}")?;
    }
    if !yes {
        write!(err, "apply them? [y/N] ")?;
        err.flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            writeln!(err, "vethscope: nothing changed")?;
            return Ok(ExitCode::from(1));
        }
    }
    let mut failed = 0;
    for (cmd, argv) in &todo {
        let status = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => writeln!(err, "  done: {cmd}")?,
            Ok(s) => {
                failed += 1;
                writeln!(err, "  FAILED ({s}): {cmd}")?;
            }
            Err(e) => {
                failed += 1;
                writeln!(err, "  FAILED ({e}): {cmd}")?;
            }
        }
    }
    let _ = json;
    writeln!(err, "vethscope: run diagnose again to check the result")?;
    Ok(ExitCode::from(if failed == 0 { 0 } else { 1 }))
}
