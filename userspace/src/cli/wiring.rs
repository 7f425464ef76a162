//! Handlers of up / down / show / graph / list.

use std::process::ExitCode;

use anyhow::Context;

use crate::{
    inspect::{self, graph::Format},
    privileges::{self, Cap},
    wire::{self, UpOptions, UpOutcome},
};

const WIRING_CAPS: &[Cap] = &[Cap::NetAdmin, Cap::SysAdmin];

pub async fn up(
    spec: &str,
    prefix: &str,
    fast_path: bool,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    // Validate the file before asking for privileges: file errors come first.
    let topo = super::check_cmd::load_checked(spec, prefix)?;
    privileges::require("up", WIRING_CAPS)?;
    let opts = UpOptions {
        progress: !dry_run,
        dry_run,
    };
    // An impairment the kernel cannot do (delay without sch_netem) fails here, before
    // anything is made.
    crate::impair::preflight_topology(&topo)?;
    let outcome = wire::up(&topo, &opts).await?;
    let created = matches!(outcome, UpOutcome::Created { .. });
    match outcome {
        UpOutcome::Planned { actions } => {
            if actions.is_empty() {
                println!("lab {}: nothing to do", topo.name);
            }
            for a in actions {
                println!("would: {a}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        UpOutcome::Changed {
            actions,
            new_namespaces,
            elapsed,
        } => {
            for a in &actions {
                println!("{a}");
            }
            println!(
                "lab {} updated: {} changes in {:.1} ms",
                topo.name,
                actions.len(),
                elapsed.as_secs_f64() * 1000.0
            );
            // Startup commands of the namespaces this change added (the others ran
            // when they were made).
            let mut added = topo.clone();
            added
                .namespaces
                .retain(|n| new_namespaces.contains(&n.name));
            run_startup(&added)?;
        }
        UpOutcome::Created { objects, elapsed } => {
            println!(
                "lab {} is up: {} namespaces, {} bridges, {} links ({objects} objects) in {:.0} ms",
                topo.name,
                topo.namespaces.len(),
                topo.bridges.len(),
                topo.links.len(),
                elapsed.as_secs_f64() * 1000.0
            );
            run_startup(&topo)?;
        }
        UpOutcome::AlreadyUp => println!(
            "lab {} is already up with this definition; nothing to do",
            topo.name
        ),
    }
    // A lab that was already running had its impairments changed by the plan.
    if created && let Err(e) = apply_impairments(&topo).await {
        // Nothing half-made: a lab this command created goes away again when its declared
        // impairments fail.
        let _ = wire::down(&topo.name).await;
        return Err(e.context(format!("lab {} was removed again", topo.name)));
    }
    if fast_path {
        super::fastpath_cmd::enable(&topo.name).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the `exec:` commands of a topology's namespaces, printing each with its output.
fn run_startup(topo: &crate::topology::Topology) -> anyhow::Result<()> {
    crate::exec::run_startup_commands(topo, |r| {
        println!("{}$ {}", r.netns, r.command);
        for line in r.output.lines() {
            println!("  {line}");
        }
        println!("  (exit {})", r.exit_code);
    })?;
    Ok(())
}

async fn apply_impairments(topo: &crate::topology::Topology) -> anyhow::Result<()> {
    let declared = crate::impair::declared(topo);
    if declared.is_empty() {
        return Ok(());
    }
    privileges::require(
        "up (impairments)",
        &[Cap::NetAdmin, Cap::SysAdmin, Cap::Bpf],
    )?;
    crate::impair::apply_topology(topo).await?;
    for (end, imp) in declared {
        println!("  {end}: {imp}");
    }
    Ok(())
}

pub async fn down(labs: &[String], all: bool) -> anyhow::Result<ExitCode> {
    privileges::require("down", WIRING_CAPS)?;
    let reports = if all {
        wire::down_all().await?
    } else {
        let mut reports = Vec::new();
        for lab in labs {
            reports.push(wire::down(lab).await?);
        }
        reports
    };
    if reports.is_empty() {
        println!("no labs to remove");
    }
    for r in reports {
        if r.was_absent {
            println!("lab {} is not up; nothing to remove", r.lab);
        } else {
            println!(
                "lab {} removed: {} namespaces, {} root-namespace interfaces, {} OVS objects",
                r.lab, r.namespaces, r.interfaces, r.ovs_objects
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn labs_or_one(lab: Option<&str>) -> Vec<String> {
    match lab {
        Some(l) => vec![l.to_string()],
        None => wire::known_labs().await.into_iter().collect(),
    }
}

pub async fn show(lab: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    privileges::require("show", WIRING_CAPS)?;
    let mut views = Vec::new();
    for l in labs_or_one(lab).await {
        views.push(inspect::lab_view(&l).await?);
    }
    if json {
        let out = match (lab, views.len()) {
            (Some(_), 1) => serde_json::to_string_pretty(&views[0]),
            _ => serde_json::to_string_pretty(&views),
        }
        .context("encoding JSON")?;
        println!("{out}");
    } else if views.is_empty() {
        println!("no labs are up");
    } else {
        for v in &views {
            print!("{}", inspect::render::text(v));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn graph(lab: Option<&str>, format: Format) -> anyhow::Result<ExitCode> {
    privileges::require("graph", WIRING_CAPS)?;
    for l in labs_or_one(lab).await {
        // A graph draws links only: no routes, neighbours, sysctls or FDB to read.
        let view = inspect::lab_links(&l).await?;
        print!("{}", inspect::graph::render(&view, format));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list() -> anyhow::Result<ExitCode> {
    privileges::require("list", WIRING_CAPS)?;
    let labs = wire::known_labs().await;
    if labs.is_empty() {
        println!("no labs are up");
    }
    for lab in labs {
        let status = wire::state::read(&lab)
            .map(|s| format!("{:?}", s.status).to_lowercase())
            .unwrap_or_else(|| "unrecorded (marks only; `vethscope down` removes it)".into());
        println!("{lab:<24} {status}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn exec(lab: &str, ns: &str, command: &[String]) -> anyhow::Result<ExitCode> {
    privileges::require("exec", WIRING_CAPS)?;
    let ns = crate::exec::lab_namespace(lab, ns).await?;
    let (program, args) = match command.split_first() {
        Some((p, rest)) => (p.clone(), rest.to_vec()),
        None => (login_shell(), Vec::new()),
    };
    let code = crate::exec::run_interactive(&ns, &program, &args)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// `$SHELL` when it names an existing absolute path, else /bin/sh.
fn login_shell() -> String {
    std::env::var("SHELL")
        .ok()
        .filter(|s| s.starts_with('/') && std::path::Path::new(s).is_file())
        .unwrap_or_else(|| "/bin/sh".to_string())
}

pub async fn save(lab: &str) -> anyhow::Result<ExitCode> {
    privileges::require("save", WIRING_CAPS)?;
    print!("{}", crate::save::save(lab).await?);
    Ok(ExitCode::SUCCESS)
}

pub async fn drift(lab: &str, json: bool) -> anyhow::Result<ExitCode> {
    privileges::require("show", WIRING_CAPS)?;
    let found = crate::drift::drift(lab).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "lab": lab, "drift": found }))
                .context("encoding JSON")?
        );
    } else if found.is_empty() {
        println!("lab {lab}: no drift (live state matches its file)");
    } else {
        println!(
            "lab {lab}: {} differences from its file (`vethscope up FILE` repairs them):",
            found.len()
        );
        for d in &found {
            println!("  {d}");
        }
    }
    Ok(if found.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
