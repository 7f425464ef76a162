//! OpenFlow rules through `ovs-ofctl`. OpenFlow is a binary protocol spoken
//! to vswitchd's per-bridge management socket; ovs-ofctl already parses the
//! human flow syntax, so we drive it instead of reimplementing that syntax.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use tracing::{debug, info};

use super::{OvsEndpoint, OvsError};

/// Passed as `--timeout`: a vswitchd that does not answer must not hang us.
const OFCTL_TIMEOUT_SECS: u32 = 5;

/// Add `flows` (ovs-ofctl flow syntax, one rule per string; put
/// `cookie=0x...` in each so [`ofctl_del_flows_cookie`] can remove them).
pub fn ofctl_add_flows(ep: &OvsEndpoint, bridge: &str, flows: &[String]) -> Result<(), OvsError> {
    if flows.is_empty() {
        return Ok(());
    }
    // Flows go through a file, one per line: a newline inside one would
    // silently turn it into two rules.
    if let Some(bad) = flows.iter().find(|f| f.contains(['\n', '\r'])) {
        return Err(OvsError::Command {
            command: format!("ovs-ofctl add-flows {bridge}"),
            status: "not run".into(),
            stderr: format!("flow contains a line break: {bad:?}"),
        });
    }
    let mut input = flows.join("\n");
    input.push('\n');
    // Through a file, not stdin: vethscope restores the default SIGPIPE action (so
    // `| head` ends it quietly), and an ovs-ofctl that exits before reading its stdin
    // would then kill us. The file lives in vethscope's private run directory (0700,
    // ours, walked without following symlinks), never in a shared $TMPDIR where its
    // predictable name could be planted first.
    let not_run = |source| OvsError::NotRun {
        command: format!("ovs-ofctl add-flows {bridge}"),
        source,
    };
    let dir = crate::safefs::Dir::run(true)
        .and_then(|run| match run {
            Some(run) => run.subdir("tmp", true),
            None => Ok(None),
        })
        .map_err(|e| not_run(Some(e)))?
        .ok_or_else(|| not_run(None))?;
    let name = format!(
        "flows-{}-{}",
        std::process::id(),
        crate::safefs::bpf_name(bridge)
    );
    dir.write_atomic(&name, input.as_bytes())
        .map_err(|e| not_run(Some(e)))?;
    let file_arg = dir.path().join(&name).display().to_string();
    let result = run_ofctl(ep, bridge, &["add-flows"], &[file_arg.as_str()]);
    let _ = dir.remove_file(&name);
    result?;
    info!(bridge, count = flows.len(), "added OpenFlow rules");
    Ok(())
}

/// Delete every flow on `bridge` whose cookie is exactly `cookie`.
pub fn ofctl_del_flows_cookie(ep: &OvsEndpoint, bridge: &str, cookie: u64) -> Result<(), OvsError> {
    let spec = format!("cookie={cookie:#x}/-1");
    run_ofctl(ep, bridge, &["del-flows"], &[spec.as_str()])?;
    info!(
        bridge,
        cookie = format_args!("{cookie:#x}"),
        "deleted OpenFlow rules"
    );
    Ok(())
}

/// The bridge's management socket lives in vswitchd's run directory: our
/// `run_dir` when we started the daemons, else the directory of db.sock
/// (/var/run/openvswitch for the distribution's daemons).
fn mgmt_target(ep: &OvsEndpoint, bridge: &str) -> String {
    let dir = ep
        .run_dir
        .clone()
        .or_else(|| ep.socket.parent().map(PathBuf::from));
    match dir.map(|d| d.join(format!("{bridge}.mgmt"))) {
        Some(sock) if sock.exists() => format!("unix:{}", sock.display()),
        // Let ovs-ofctl resolve the name itself; its error names the bridge.
        _ => bridge.to_string(),
    }
}

fn run_ofctl(ep: &OvsEndpoint, bridge: &str, verb: &[&str], rest: &[&str]) -> Result<(), OvsError> {
    let target = mgmt_target(ep, bridge);
    let mut cmd = Command::new("ovs-ofctl");
    cmd.arg(format!("--timeout={OFCTL_TIMEOUT_SECS}"))
        .args(verb)
        .arg(&target)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = &ep.run_dir {
        cmd.env("OVS_RUNDIR", dir);
    }
    let shown = format!("ovs-ofctl {} {target} {}", verb.join(" "), rest.join(" "));
    debug!(command = %shown, "running");
    let output = cmd.output().map_err(|source| OvsError::Spawn {
        program: "ovs-ofctl".into(),
        source,
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(OvsError::Command {
            command: shown,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}
