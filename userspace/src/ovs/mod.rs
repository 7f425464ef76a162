//! Open vSwitch: bridges and ports through OVSDB (RFC 7047 JSON-RPC on a unix
//! socket), OpenFlow rules through ovs-ofctl, and the daemons themselves.
//!
//! We speak OVSDB directly instead of forking ovs-vsctl so that failures come
//! back as structured errors naming the object, and so that a lab with many
//! ports costs one connection, not one process per port.
//!
//! Daemons: [`ensure_running`] prefers a running Open vSwitch (the
//! distribution's socket under /var/run/openvswitch or /run/openvswitch, or
//! the one we started earlier in `run_dir`). Only when none runs does it start
//! ovsdb-server and ovs-vswitchd under `run_dir`, and it never starts a
//! second ovs-vswitchd on a host that has one. [`stop_ours`] stops only
//! daemons whose pidfiles live in `run_dir`.
//!
//! Without the openvswitch kernel module ([`kernel_datapath_available`] is
//! false) bridges must use `datapath_type = "netdev"`, the userspace datapath.

mod daemon;
mod datapath;
mod error;
mod fdb;
mod jsonrpc;
mod ofctl;
mod ovsdb;
mod value;

use std::path::PathBuf;

pub use daemon::{ensure_running, find_running, stop_ours};
pub use datapath::{genl_family_id, kernel_datapath_available};
pub use error::OvsError;
pub use fdb::{OvsFdbEntry, fdb_show};
pub use ofctl::{ofctl_add_flows, ofctl_del_flows_cookie};
pub use ovsdb::{BridgeInfo, InterfaceInfo, Ovsdb, Owned, PortInfo};

/// Datapath type of the kernel datapath (needs the openvswitch module).
pub const DATAPATH_SYSTEM: &str = "system";
/// Datapath type of the userspace datapath (works everywhere with /dev/net/tun).
pub const DATAPATH_NETDEV: &str = "netdev";

/// How to reach ovsdb-server; `socket` is the db.sock path.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OvsEndpoint {
    pub socket: PathBuf,
    /// True when the daemons run from our `run_dir` (this run or an earlier
    /// one started them), so [`stop_ours`] may stop them.
    pub started_by_us: bool,
    /// Our run directory, when the daemons are ours. ovs-vswitchd puts the
    /// bridges' OpenFlow management sockets (`<bridge>.mgmt`) there.
    pub run_dir: Option<PathBuf>,
}

/// The datapath type bridges should use on this host: the kernel datapath
/// when the openvswitch module is there, else the userspace one.
pub fn preferred_datapath_type() -> &'static str {
    if kernel_datapath_available() {
        DATAPATH_SYSTEM
    } else {
        DATAPATH_NETDEV
    }
}
