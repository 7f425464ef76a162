//! An OVS bridge's MAC learning table (`ovs-appctl fdb/show BRIDGE`), asked of
//! ovs-vswitchd over its unixctl socket (JSON-RPC, as `exit --cleanup` in daemon.rs),
//! so `show` needs no ovs-appctl process per bridge.

use std::path::PathBuf;

use serde_json::json;

use super::jsonrpc::JsonRpc;
use super::{OvsEndpoint, OvsError};

/// One learned (or static) MAC of an OVS bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OvsFdbEntry {
    /// The OpenFlow port number, or `LOCAL` for the bridge's own port.
    pub port: String,
    pub vlan: u16,
    pub mac: String,
    /// Seconds since last seen, or `static`.
    pub age: String,
}

/// The unixctl socket of the ovs-vswitchd serving `ep`: ours is `ovs-vswitchd.ctl` in
/// our run directory; the distribution's is `ovs-vswitchd.PID.ctl` next to db.sock.
fn vswitchd_ctl(ep: &OvsEndpoint) -> Option<PathBuf> {
    if let Some(dir) = &ep.run_dir {
        return Some(dir.join("ovs-vswitchd.ctl"));
    }
    let dir = ep.socket.parent()?;
    let pid = std::fs::read_to_string(dir.join("ovs-vswitchd.pid")).ok()?;
    let pid: u32 = pid.trim().parse().ok()?;
    Some(dir.join(format!("ovs-vswitchd.{pid}.ctl")))
}

/// The MAC table of `bridge`. `bridge` must be a validated bridge name (it is sent
/// as a JSON string argument, never through a shell).
pub fn fdb_show(ep: &OvsEndpoint, bridge: &str) -> Result<Vec<OvsFdbEntry>, OvsError> {
    let ctl = vswitchd_ctl(ep).ok_or_else(|| OvsError::Command {
        command: format!("fdb/show {bridge}"),
        status: "not run".into(),
        stderr: "cannot find the control socket of ovs-vswitchd".into(),
    })?;
    let mut rpc = JsonRpc::connect(&ctl)?;
    let reply = rpc.call("fdb/show", json!([bridge]))?;
    let text = reply.as_str().unwrap_or_default();
    Ok(parse_fdb_show(text))
}

/// Parses the table ovs-appctl prints:
/// ```text
///  port  VLAN  MAC                Age
///     1     0  02:00:00:00:00:01    3
/// ```
pub fn parse_fdb_show(text: &str) -> Vec<OvsFdbEntry> {
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let port = cols.next()?.to_string();
            let vlan: u16 = cols.next()?.parse().ok()?;
            let mac = cols.next()?.to_string();
            let age = cols.next()?.to_string();
            (mac.len() == 17 && mac.matches(':').count() == 5).then_some(OvsFdbEntry {
                port,
                vlan,
                mac,
                age,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_appctl_table_and_skips_the_header() {
        let text = " port  VLAN  MAC                Age\n    1     0  02:00:00:00:00:01    3\nLOCAL     0  aa:bb:cc:dd:ee:ff  static\n";
        let got = parse_fdb_show(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].port, "1");
        assert_eq!(got[0].mac, "02:00:00:00:00:01");
        assert_eq!(got[1].port, "LOCAL");
        assert_eq!(got[1].age, "static");
    }
}
