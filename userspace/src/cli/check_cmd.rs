//! Handler of `check`, and the loading path `up` shares with it: file → prefix check →
//! prefixed topology → every rule, so `check` says exactly what `up` would refuse.

use std::process::ExitCode;

use crate::topology::{self, Topology};

/// Loads a topology as `up` builds it: every error of the file at once.
pub fn load_checked(spec: &str, prefix: &str) -> Result<Topology, topology::TopologyError> {
    let topo = Topology::load(spec)?;
    if prefix.is_empty() {
        topology::validate(&topo)?;
        return Ok(topo);
    }
    // Names that only become too long with the prefix: say to shorten the prefix.
    topology::check_prefix(&topo, prefix)?;
    let prefixed = topo.with_prefix(prefix);
    topology::validate(&prefixed)?;
    Ok(prefixed)
}

pub fn check(spec: &str, prefix: &str) -> anyhow::Result<ExitCode> {
    let topo = load_checked(spec, prefix)?;
    // Sysctl keys against the kernel's list (a fresh namespace's, when we may make one).
    topology::validate_environment(&topo)?;
    println!(
        "{}: lab {} is valid: {} namespaces, {} bridges, {} links",
        topo.source,
        topo.name,
        topo.namespaces.len(),
        topo.bridges.len(),
        topo.links.len()
    );
    Ok(ExitCode::SUCCESS)
}
