//! Handler of `fastpath`.

use std::process::ExitCode;

use anyhow::Context;

use super::FastpathAction;
use crate::{
    fastpath,
    privileges::{self, Cap},
};

const CAPS: &[Cap] = &[Cap::Bpf, Cap::NetAdmin, Cap::SysAdmin];

pub async fn fastpath(action: FastpathAction) -> anyhow::Result<ExitCode> {
    privileges::require("fastpath", CAPS)?;
    match action {
        FastpathAction::Enable { lab } => enable(&lab).await?,
        FastpathAction::Disable { lab } => {
            if fastpath::disable(&lab).await? {
                println!(
                    "fast path of lab {lab} disabled: programs detached, pins and flows removed"
                );
            } else {
                println!("fast path of lab {lab} is not enabled; nothing to do");
            }
        }
        FastpathAction::Status { lab, json } => {
            let st = fastpath::status(&lab).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&st).context("encoding JSON")?
                );
            } else {
                print_status(&st);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn enable(lab: &str) -> anyhow::Result<()> {
    privileges::require("fastpath", CAPS)?;
    let e = fastpath::enable(lab).await?;
    let what = if e.refreshed { "refreshed" } else { "enabled" };
    println!(
        "fast path of lab {lab} {what}: {} ports ({} attached now), {} destinations{}",
        e.ports,
        e.attached,
        e.entries,
        if e.ovs_bridges.is_empty() {
            String::new()
        } else {
            format!(" (OVS drop flows on {})", e.ovs_bridges.join(", "))
        }
    );
    Ok(())
}

fn print_status(st: &fastpath::Status) {
    println!(
        "lab {}: fast path {}",
        st.lab,
        if st.enabled { "enabled" } else { "disabled" }
    );
    println!(
        "  {:<12} {:<16} {:<22} {:>5} {:<9} {:>12} {:>12}",
        "bridge", "port", "peer", "vlan", "attached", "redirected", "passed"
    );
    for p in &st.ports {
        println!(
            "  {:<12} {:<16} {:<22} {:>5} {:<9} {:>12} {:>12}",
            p.bridge,
            p.ifname,
            p.peer,
            p.vlan,
            if p.attached { "yes" } else { "no" },
            p.redirected,
            p.passed
        );
    }
    for n in &st.not_applicable {
        println!("  not applicable: {n}");
    }
}
