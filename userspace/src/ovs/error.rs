//! Errors of the OVS family: one sentence each, naming the bridge, port,
//! interface, socket or program involved, and the fix when we know it.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    #[error("cannot connect to ovsdb-server at {}", path.display())]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lost the connection to ovsdb-server at {}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ovsdb-server at {} sent something that is not OVSDB JSON-RPC: {detail}", path.display())]
    Protocol { path: PathBuf, detail: String },
    #[error("ovsdb-server at {} rejected {method}: {error}", path.display())]
    Rpc {
        path: PathBuf,
        method: String,
        error: String,
    },
    #[error("OVSDB transaction to {context} failed: {error}{}", if details.is_empty() { String::new() } else { format!(" ({details})") })]
    Transaction {
        context: String,
        error: String,
        details: String,
    },
    #[error("OVS bridge {0} already exists (fix: delete it, or pick another name)")]
    BridgeExists(String),
    #[error("OVS bridge {0} does not exist")]
    NoSuchBridge(String),
    #[error("OVS port {0} already exists (fix: delete it, or pick another name)")]
    PortExists(String),
    #[error("OVS port {port} is on bridge {actual}, not on bridge {bridge}; not touching it")]
    PortOnOtherBridge {
        port: String,
        bridge: String,
        actual: String,
    },
    #[error("OVS interface {0} already exists (fix: delete its port, or pick another name)")]
    InterfaceExists(String),
    #[error("OVS interface {0} does not exist")]
    NoSuchInterface(String),
    #[error("OVS could not add interface {iface}: {error}")]
    InterfaceFailed { iface: String, error: String },
    #[error("invalid OVS {kind} name '{name}': {reason}")]
    InvalidName {
        kind: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("the OVSDB at {} has no Open_vSwitch row (fix: `ovs-vsctl --db=unix:{} --no-wait init`)", path.display(), path.display())]
    NoRootRow { path: PathBuf },
    #[error("timed out after {:.1} s waiting for {what}", waited.as_secs_f64())]
    Timeout { what: String, waited: Duration },
    #[error("cannot run {program} (fix: install openvswitch-switch)")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed (not run){}", if source.is_none() { ": no private run directory" } else { "" })]
    NotRun {
        command: String,
        source: Option<crate::safefs::SafeFsError>,
    },
    #[error("`{command}` failed ({status}){}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error(
        "cannot find the OVSDB schema vswitch.ovsschema (looked in {looked}; fix: install openvswitch-switch or set OVS_PKGDATADIR)"
    )]
    NoSchema { looked: String },
    #[error(
        "ovs-vswitchd is already running (pid {pid}) but {detail}; refusing to start a second one"
    )]
    ForeignVswitchd { pid: i32, detail: String },
    #[error("ovsdb-server answers at {} but no ovs-vswitchd serves it (fix: start it, e.g. `systemctl start openvswitch-switch`)", socket.display())]
    NoVswitchd { socket: PathBuf },
    #[error("cannot prepare OVS run directory {}", path.display())]
    RunDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot stop {daemon} (pid {pid}): {detail}")]
    Stop {
        daemon: &'static str,
        pid: i32,
        detail: String,
    },
}
