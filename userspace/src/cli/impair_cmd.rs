//! Handlers of `impair` and `link`.

use std::process::ExitCode;

use anyhow::Context;

use super::{ImpairArgs, LinkAction, LinkArgs};
use crate::{
    impair::{self, EndRef, Impairment, link_state, spec},
    privileges::{self, Cap},
};

const CAPS: &[Cap] = &[Cap::NetAdmin, Cap::SysAdmin];

/// The settings given on the command line, checked like the topology file's.
fn settings(args: &ImpairArgs) -> anyhow::Result<Impairment> {
    let mut imp = Impairment::default();
    for (key, value) in [
        ("loss", &args.loss),
        ("duplicate", &args.duplicate),
        ("corrupt", &args.corrupt),
        ("rate", &args.rate),
        ("delay", &args.delay),
        ("jitter", &args.jitter),
    ] {
        if let Some(v) = value {
            imp.set(key, v)
                .map_err(|e| anyhow::anyhow!("--{key}: {e}"))?;
        }
    }
    Ok(imp)
}

pub async fn impair(args: ImpairArgs) -> anyhow::Result<ExitCode> {
    let imp = settings(&args)?;
    let end: Option<EndRef> = args.end.as_deref().map(str::parse).transpose()?;
    let Some(end) = end else {
        privileges::require("impair", CAPS)?;
        return list(&args.lab, args.json).await;
    };
    if args.check {
        privileges::require("impair --check", CAPS)?;
        return super::impair_check::check(&args.lab, &end).await;
    }
    if args.clear {
        privileges::require("impair --clear", CAPS)?;
        let had = impair::clear(&args.lab, &end).await?;
        if had {
            println!("lab {}: {end}: impairment removed", args.lab);
        } else {
            println!("lab {}: {end} had no impairment; nothing to do", args.lab);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if imp.is_empty() {
        anyhow::bail!(
            "lab {}: {end}: give at least one of --loss, --duplicate, --corrupt, --rate, --delay, --jitter (or --clear, --check)",
            args.lab
        );
    }
    privileges::require("impair", &[Cap::NetAdmin, Cap::SysAdmin, Cap::Bpf])?;
    let rec = impair::set(&args.lab, &end, &imp).await?;
    let mut engines = Vec::new();
    if rec.ebpf {
        engines.push("eBPF".to_string());
    }
    if let Some(q) = &rec.qdisc {
        engines.push(q.to_uppercase());
    }
    println!(
        "lab {}: {end}: {} (packets leaving {}; {})",
        args.lab,
        rec.impairment,
        end.ifname,
        engines.join(" + ")
    );
    Ok(ExitCode::SUCCESS)
}

async fn list(lab: &str, json: bool) -> anyhow::Result<ExitCode> {
    let ends = impair::status(lab).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&ends).context("encoding JSON")?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if ends.is_empty() {
        println!("lab {lab}: no impairments");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:<40} {:<12} {:>10} {:>9} {:>10} {:>9}",
        "END", "IMPAIRMENT", "ENGINES", "SEEN", "DROPPED", "DUPLICATED", "CORRUPTED"
    );
    for e in ends {
        let c = e.counters.unwrap_or_default();
        let n = |v: u64| {
            if e.counters.is_some() {
                v.to_string()
            } else {
                "-".into()
            }
        };
        println!(
            "{:<24} {:<40} {:<12} {:>10} {:>9} {:>10} {:>9}",
            format!("{}/{}", e.netns, e.ifname),
            e.impairment.to_string(),
            e.engines.join("+"),
            n(c.seen),
            n(c.dropped),
            n(c.duplicated),
            n(c.corrupted)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn duration(flag: &str, text: &str) -> anyhow::Result<std::time::Duration> {
    let ns = spec::parse_duration(flag, text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?;
    if ns.0 == 0 {
        anyhow::bail!("--{flag}: must be longer than 0 (fix: e.g. --{flag} 1s)");
    }
    Ok(std::time::Duration::from_nanos(ns.0))
}

pub async fn link(args: LinkArgs) -> anyhow::Result<ExitCode> {
    let end: EndRef = args.end.parse()?;
    let down = duration("down", &args.down)?;
    let up = duration("up", &args.up)?;
    if !(1..=1000).contains(&args.count) {
        anyhow::bail!("--count {} is out of range (fix: use 1..=1000)", args.count);
    }
    privileges::require("link", CAPS)?;
    match args.action {
        LinkAction::Down | LinkAction::Up => {
            let up = matches!(args.action, LinkAction::Up);
            let ends = link_state::set(&args.lab, &end, up).await?;
            println!(
                "lab {}: {} {}",
                args.lab,
                ends.join(" and "),
                if up { "up" } else { "down" }
            );
        }
        LinkAction::Flap => {
            println!(
                "lab {}: flapping {end}: {} × (down {:?}, up {:?})",
                args.lab, args.count, down, up
            );
            link_state::flap(&args.lab, &end, down, up, args.count, |s| {
                println!(
                    "{:>9.3}s  round {}  {}",
                    s.at.as_secs_f64(),
                    s.round,
                    if s.up { "up" } else { "down" }
                );
            })
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
