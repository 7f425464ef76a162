//! Bridges and ports in the Open_vSwitch database, as `ovs-vsctl` would write
//! them, but with structured errors and without forking a process per change.
//!
//! Writes use `wait` operations with `timeout: 0` as atomic preconditions
//! ("no bridge named X", "bridge Y exists"): the whole transaction then fails
//! together, and we know which precondition broke, so the error can name it.

use std::collections::{BTreeMap, HashMap};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::{debug, info, warn};

use super::jsonrpc::{JsonRpc, error_text};
use super::value::{
    absent, atom_text, first_row, next_cfg, opt_atom, ovs_map, ovs_map_entries, ovs_map_get,
    present, rows, rows_by_uuid, select_all, uuid, uuids,
};
use super::{OvsEndpoint, OvsError};

const DB: &str = "Open_vSwitch";
/// Bound on waiting for ovs-vswitchd to act on a change (ofport, cur_cfg).
const APPLY_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);
/// After ofport -1 shows up, how long to wait for the matching `error` text,
/// which vswitchd may write a moment later.
const ERROR_TEXT_GRACE: Duration = Duration::from_millis(500);
/// Linux interface names hold at most IFNAMSIZ - 1 bytes; OVS bridges and
/// internal ports become kernel (TAP) devices with the same name.
const IFNAME_MAX: usize = 15;

/// Objects carrying one ownership mark in external_ids.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Owned {
    pub bridges: Vec<String>,
    /// (bridge, port)
    pub ports: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BridgeInfo {
    pub name: String,
    pub datapath_type: String,
    pub external_ids: BTreeMap<String, String>,
    pub ports: Vec<PortInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PortInfo {
    pub name: String,
    pub external_ids: BTreeMap<String, String>,
    /// Usually one; bonds have several.
    pub interfaces: Vec<InterfaceInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InterfaceInfo {
    pub name: String,
    /// "" for a system device (e.g. a veth end), "internal", ...
    pub iface_type: String,
    /// None until ovs-vswitchd has looked at it; -1 when it failed.
    pub ofport: Option<i64>,
    /// OVS's reason when the interface could not be added.
    pub error: Option<String>,
}

/// A port's VLAN columns (`tag`, `trunks`, `vlan_mode`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PortVlan {
    pub tag: Option<i64>,
    pub trunks: Vec<i64>,
    pub vlan_mode: Option<String>,
}

/// A connection to ovsdb-server's Open_vSwitch database.
pub struct Ovsdb {
    rpc: JsonRpc,
}

/// Operations plus, per operation, the error to report when that operation is
/// a precondition `wait` that did not hold.
struct Txn {
    context: String,
    ops: Vec<Value>,
    guards: Vec<Option<OvsError>>,
}

impl Txn {
    fn new(context: String) -> Self {
        Self {
            context,
            ops: Vec::new(),
            guards: Vec::new(),
        }
    }

    fn op(&mut self, op: Value) -> usize {
        self.ops.push(op);
        self.guards.push(None);
        self.ops.len() - 1
    }

    fn guard(&mut self, op: Value, broken: OvsError) {
        self.ops.push(op);
        self.guards.push(Some(broken));
    }

    /// Ask vswitchd to report when it has applied this transaction (it copies
    /// next_cfg to cur_cfg); returns the index of the select reading next_cfg.
    fn bump_cfg(&mut self) -> usize {
        self.op(json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                       "mutations": [["next_cfg", "+=", 1]]}));
        self.op(json!({"op": "select", "table": "Open_vSwitch", "where": [],
                       "columns": ["next_cfg"]}))
    }
}

impl Ovsdb {
    pub fn connect(ep: &OvsEndpoint) -> Result<Self, OvsError> {
        Ok(Self {
            rpc: JsonRpc::connect(&ep.socket)?,
        })
    }

    /// Create bridge `name` with `datapath_type` ("system" or "netdev") and
    /// `external_ids`; fails with [`OvsError::BridgeExists`] if it exists.
    pub fn add_bridge(
        &mut self,
        name: &str,
        datapath_type: &str,
        external_ids: &[(&str, &str)],
    ) -> Result<(), OvsError> {
        check_name("bridge", name)?;
        let mut txn = Txn::new(format!("add bridge {name}"));
        self.require_root(&mut txn);
        txn.guard(absent("Bridge", name), OvsError::BridgeExists(name.into()));
        // A bridge comes with a local port and internal interface of the same
        // name, so those names must be free too.
        txn.guard(absent("Port", name), OvsError::PortExists(name.into()));
        txn.guard(
            absent("Interface", name),
            OvsError::InterfaceExists(name.into()),
        );
        txn.op(
            json!({"op": "insert", "table": "Interface", "uuid-name": "iface",
                      "row": {"name": name, "type": "internal"}}),
        );
        txn.op(json!({"op": "insert", "table": "Port", "uuid-name": "port",
                      "row": {"name": name, "interfaces": ["named-uuid", "iface"]}}));
        txn.op(json!({"op": "insert", "table": "Bridge", "uuid-name": "br",
                      "row": {"name": name, "datapath_type": datapath_type,
                              "ports": ["named-uuid", "port"],
                              "external_ids": ovs_map(external_ids)}}));
        txn.op(json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                      "mutations": [["bridges", "insert", ["set", [["named-uuid", "br"]]]]]}));
        txn.bump_cfg();
        self.run(txn)?;
        info!(bridge = name, datapath_type, "added OVS bridge");
        Ok(())
    }

    /// Add port `port` with one interface of the same name to `bridge`.
    /// `iface_type` is "" for an existing system device (e.g. a veth end) or
    /// "internal" for a device vswitchd creates.
    pub fn add_port(
        &mut self,
        bridge: &str,
        port: &str,
        iface_type: &str,
        external_ids: &[(&str, &str)],
    ) -> Result<(), OvsError> {
        check_name("bridge", bridge)?;
        check_name("port", port)?;
        let mut txn = Txn::new(format!("add port {port} to bridge {bridge}"));
        self.require_root(&mut txn);
        txn.guard(
            present("Bridge", bridge),
            OvsError::NoSuchBridge(bridge.into()),
        );
        txn.guard(absent("Port", port), OvsError::PortExists(port.into()));
        txn.guard(
            absent("Interface", port),
            OvsError::InterfaceExists(port.into()),
        );
        // The marks go on the interface too, so `ovs-vsctl list interface`
        // shows who made it.
        txn.op(
            json!({"op": "insert", "table": "Interface", "uuid-name": "iface",
                      "row": {"name": port, "type": iface_type,
                              "external_ids": ovs_map(external_ids)}}),
        );
        txn.op(json!({"op": "insert", "table": "Port", "uuid-name": "port",
                      "row": {"name": port, "interfaces": ["named-uuid", "iface"],
                              "external_ids": ovs_map(external_ids)}}));
        txn.op(
            json!({"op": "mutate", "table": "Bridge", "where": [["name", "==", bridge]],
                      "mutations": [["ports", "insert", ["set", [["named-uuid", "port"]]]]]}),
        );
        txn.bump_cfg();
        self.run(txn)?;
        info!(bridge, port, iface_type, "added OVS port");
        Ok(())
    }

    /// Wait until ovs-vswitchd has given interface `iface` an OpenFlow port
    /// number. ofport -1 or a non-empty `error` column becomes
    /// [`OvsError::InterfaceFailed`] carrying OVS's own explanation.
    pub fn wait_ofport(&mut self, iface: &str) -> Result<i64, OvsError> {
        let start = Instant::now();
        let mut failed_since: Option<Instant> = None;
        loop {
            let results = self.read(
                format!("read interface {iface}"),
                vec![json!({"op": "select", "table": "Interface",
                            "where": [["name", "==", iface]], "columns": ["ofport", "error"]})],
            )?;
            let Some(row) = first_row(&results, 0) else {
                return Err(OvsError::NoSuchInterface(iface.into()));
            };
            let ofport = opt_atom(&row["ofport"]).and_then(Value::as_i64);
            let error = opt_atom(&row["error"]).map(atom_text);
            match (ofport, error) {
                (_, Some(error)) => {
                    return Err(OvsError::InterfaceFailed {
                        iface: iface.into(),
                        error,
                    });
                }
                (Some(-1), None) => {
                    let since = *failed_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= ERROR_TEXT_GRACE {
                        return Err(OvsError::InterfaceFailed {
                            iface: iface.into(),
                            error: "ovs-vswitchd set ofport -1 without giving a reason \
                                    (see the ovs-vswitchd log)"
                                .into(),
                        });
                    }
                }
                (Some(ofport), None) => {
                    debug!(
                        iface,
                        ofport,
                        waited_ms = start.elapsed().as_millis() as u64,
                        "ofport ready"
                    );
                    return Ok(ofport);
                }
                (None, None) => {}
            }
            if start.elapsed() >= APPLY_TIMEOUT {
                return Err(OvsError::Timeout {
                    what: format!(
                        "ovs-vswitchd to give interface {iface} an OpenFlow port \
                         (is ovs-vswitchd running, and does the bridge's datapath_type work here?)"
                    ),
                    waited: start.elapsed(),
                });
            }
            sleep(POLL);
        }
    }

    /// Remove `port` from `bridge`. A port that is absent already is fine; a
    /// port of the same name on another bridge is left alone (error).
    pub fn del_port(&mut self, bridge: &str, port: &str) -> Result<(), OvsError> {
        if port == bridge {
            return Err(OvsError::InvalidName {
                kind: "port",
                name: port.into(),
                reason: "it is the bridge's local port; delete the bridge instead",
            });
        }
        let results = self.read(
            format!("find port {port}"),
            vec![
                json!({"op": "select", "table": "Port", "where": [["name", "==", port]],
                        "columns": ["_uuid"]}),
            ],
        )?;
        let Some(port_uuid) = first_row(&results, 0).and_then(|r| uuid(&r["_uuid"])) else {
            debug!(bridge, port, "OVS port already absent");
            return Ok(());
        };
        let results = self.read(
            format!("find the bridge of port {port}"),
            vec![json!({"op": "select", "table": "Bridge",
                        "where": [["ports", "includes", ["set", [["uuid", port_uuid]]]]],
                        "columns": ["_uuid", "name"]})],
        )?;
        let Some(owner) = first_row(&results, 0) else {
            // Unreferenced ports are garbage-collected; nothing to remove.
            return Ok(());
        };
        let owner_name = atom_text(&owner["name"]);
        if owner_name != bridge {
            return Err(OvsError::PortOnOtherBridge {
                port: port.into(),
                bridge: bridge.into(),
                actual: owner_name,
            });
        }
        let Some(bridge_uuid) = uuid(&owner["_uuid"]) else {
            return Err(self.protocol("Bridge row without _uuid"));
        };
        // Port and Interface are non-root tables: dropping the reference from
        // the bridge deletes them (OVSDB garbage collection), as ovs-vsctl does.
        let mut txn = Txn::new(format!("delete port {port} from bridge {bridge}"));
        txn.op(json!({"op": "mutate", "table": "Bridge",
                      "where": [["_uuid", "==", ["uuid", bridge_uuid]]],
                      "mutations": [["ports", "delete", ["set", [["uuid", port_uuid]]]]]}));
        let cfg = txn.bump_cfg();
        let results = self.run(txn)?;
        self.settle(&results, cfg, &format!("port {port} removal"))?;
        info!(bridge, port, "deleted OVS port");
        Ok(())
    }

    /// Delete bridge `name` with all its ports. Absent already is fine.
    pub fn del_bridge(&mut self, name: &str) -> Result<(), OvsError> {
        let results = self.read(
            format!("find bridge {name}"),
            vec![
                json!({"op": "select", "table": "Bridge", "where": [["name", "==", name]],
                        "columns": ["_uuid"]}),
            ],
        )?;
        let Some(bridge_uuid) = first_row(&results, 0).and_then(|r| uuid(&r["_uuid"])) else {
            debug!(bridge = name, "OVS bridge already absent");
            return Ok(());
        };
        let mut txn = Txn::new(format!("delete bridge {name}"));
        txn.op(json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                      "mutations": [["bridges", "delete", ["set", [["uuid", bridge_uuid]]]]]}));
        let cfg = txn.bump_cfg();
        let results = self.run(txn)?;
        self.settle(&results, cfg, &format!("bridge {name} removal"))?;
        info!(bridge = name, "deleted OVS bridge");
        Ok(())
    }

    pub fn bridge_exists(&mut self, name: &str) -> Result<bool, OvsError> {
        self.row_exists("Bridge", name)
    }

    pub fn port_exists(&mut self, name: &str) -> Result<bool, OvsError> {
        self.row_exists("Port", name)
    }

    /// Bridges and ports whose external_ids map `key` to `value`, sorted.
    pub fn owned(&mut self, key: &str, value: &str) -> Result<Owned, OvsError> {
        let (bridges, ports) = self.bridges_and_ports()?;
        let marked = |ids: &Value| ovs_map_get(ids, key).is_some_and(|v| v == value);
        let mut owned = Owned::default();
        for bridge in &bridges {
            let name = atom_text(&bridge["name"]);
            if marked(&bridge["external_ids"]) {
                owned.bridges.push(name.clone());
            }
            for port_uuid in uuids(&bridge["ports"]) {
                if let Some(port) = ports.get(&port_uuid)
                    && marked(&port["external_ids"])
                {
                    owned.ports.push((name.clone(), atom_text(&port["name"])));
                }
            }
        }
        owned.bridges.sort();
        owned.ports.sort();
        Ok(owned)
    }

    /// Whether any bridge or port carries `key` in external_ids, whatever its
    /// value (OVSDB conditions cannot test a map key alone, so we filter here).
    pub fn any_owned(&mut self, key: &str) -> Result<bool, OvsError> {
        let (bridges, ports) = self.bridges_and_ports()?;
        Ok(bridges
            .iter()
            .chain(ports.values())
            .any(|row| ovs_map_get(&row["external_ids"], key).is_some()))
    }

    /// Every bridge with its ports and their interfaces, sorted by name.
    pub fn bridges(&mut self) -> Result<Vec<BridgeInfo>, OvsError> {
        let results = self.read(
            "read bridges, ports and interfaces".into(),
            vec![
                select_all(
                    "Bridge",
                    &["name", "datapath_type", "external_ids", "ports"],
                ),
                select_all("Port", &["_uuid", "name", "external_ids", "interfaces"]),
                select_all("Interface", &["_uuid", "name", "type", "ofport", "error"]),
            ],
        )?;
        let ports = rows_by_uuid(&results, 1);
        let ifaces = rows_by_uuid(&results, 2);
        let mut out: Vec<BridgeInfo> = rows(&results, 0)
            .iter()
            .map(|b| {
                let mut bridge_ports: Vec<PortInfo> = uuids(&b["ports"])
                    .iter()
                    .filter_map(|u| ports.get(u))
                    .map(|p| PortInfo {
                        name: atom_text(&p["name"]),
                        external_ids: ovs_map_entries(&p["external_ids"]),
                        interfaces: uuids(&p["interfaces"])
                            .iter()
                            .filter_map(|u| ifaces.get(u))
                            .map(|i| InterfaceInfo {
                                name: atom_text(&i["name"]),
                                iface_type: atom_text(&i["type"]),
                                ofport: opt_atom(&i["ofport"]).and_then(Value::as_i64),
                                error: opt_atom(&i["error"]).map(atom_text),
                            })
                            .collect(),
                    })
                    .collect();
                bridge_ports.sort_by(|a, b| a.name.cmp(&b.name));
                BridgeInfo {
                    name: atom_text(&b["name"]),
                    datapath_type: atom_text(&b["datapath_type"]),
                    external_ids: ovs_map_entries(&b["external_ids"]),
                    ports: bridge_ports,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// VLAN settings of every port, by port name: what the fast path must respect.
    pub fn port_vlans(&mut self) -> Result<BTreeMap<String, PortVlan>, OvsError> {
        let results = self.read(
            "read the VLAN settings of ports".into(),
            vec![select_all("Port", &["name", "tag", "trunks", "vlan_mode"])],
        )?;
        Ok(rows(&results, 0)
            .iter()
            .map(|p| {
                let trunks = match p["trunks"].as_array().map(Vec::as_slice) {
                    Some([tag, members]) if tag == "set" => members
                        .as_array()
                        .map(|m| m.iter().filter_map(Value::as_i64).collect())
                        .unwrap_or_default(),
                    _ => p["trunks"].as_i64().into_iter().collect(),
                };
                (
                    atom_text(&p["name"]),
                    PortVlan {
                        tag: opt_atom(&p["tag"]).and_then(Value::as_i64),
                        trunks,
                        vlan_mode: opt_atom(&p["vlan_mode"]).map(atom_text),
                    },
                )
            })
            .collect())
    }

    // ---- used by daemon.rs ------------------------------------------------

    pub(crate) fn connect_path(path: &std::path::Path) -> Result<Self, OvsError> {
        Ok(Self {
            rpc: JsonRpc::connect(path)?,
        })
    }

    /// Liveness of the server and presence of the Open_vSwitch database.
    pub(crate) fn probe(&mut self) -> Result<(), OvsError> {
        self.rpc.echo()?;
        if self.rpc.list_dbs()?.iter().any(|db| db == DB) {
            Ok(())
        } else {
            Err(self.protocol("the server has no Open_vSwitch database"))
        }
    }

    /// Create the Open_vSwitch row if missing, as `ovs-vsctl --no-wait init`.
    pub(crate) fn init_root(&mut self) -> Result<(), OvsError> {
        let results = self.read(
            "read the Open_vSwitch row".into(),
            vec![select_all("Open_vSwitch", &["_uuid"])],
        )?;
        if rows(&results, 0).is_empty() {
            let mut txn = Txn::new("initialize the Open_vSwitch database".into());
            // Guarded so two initializers racing cannot create two rows.
            txn.op(
                json!({"op": "wait", "table": "Open_vSwitch", "timeout": 0, "where": [],
                          "columns": ["_uuid"], "until": "==", "rows": []}),
            );
            txn.op(json!({"op": "insert", "table": "Open_vSwitch", "row": {}}));
            match self.run(txn) {
                Ok(_) => {
                    info!(socket = %self.rpc.path().display(), "initialized Open_vSwitch database")
                }
                Err(OvsError::Transaction { error, .. }) if error == "timed out" => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether an ovs-vswitchd serves this database: bump next_cfg and see
    /// cur_cfg follow within `timeout`.
    pub(crate) fn vswitchd_applies(&mut self, timeout: Duration) -> Result<bool, OvsError> {
        let mut txn = Txn::new("ask ovs-vswitchd to confirm it is running".into());
        self.require_root(&mut txn);
        let cfg = txn.bump_cfg();
        let results = self.run(txn)?;
        let target = next_cfg(&results, cfg).ok_or_else(|| self.protocol("no next_cfg"))?;
        self.wait_cur_cfg(target, timeout)
    }

    // ---- internals ------------------------------------------------------------

    fn require_root(&self, txn: &mut Txn) {
        txn.guard(
            json!({"op": "wait", "table": "Open_vSwitch", "timeout": 0, "where": [],
                   "columns": ["_uuid"], "until": "!=", "rows": []}),
            OvsError::NoRootRow {
                path: self.rpc.path().to_path_buf(),
            },
        );
    }

    /// After a removal, give vswitchd a moment to tear the devices down, so a
    /// caller that next deletes the veth or stops the daemons finds a settled
    /// state. The database is authoritative, so a slow vswitchd is only logged.
    fn settle(&mut self, results: &[Value], cfg_index: usize, what: &str) -> Result<(), OvsError> {
        let Some(target) = next_cfg(results, cfg_index) else {
            return Err(self.protocol("no next_cfg"));
        };
        if !self.wait_cur_cfg(target, APPLY_TIMEOUT)? {
            warn!(
                "ovs-vswitchd did not confirm {what} within {APPLY_TIMEOUT:?}; the database has it"
            );
        }
        Ok(())
    }

    fn wait_cur_cfg(&mut self, target: i64, timeout: Duration) -> Result<bool, OvsError> {
        let start = Instant::now();
        loop {
            let results = self.read(
                "read Open_vSwitch.cur_cfg".into(),
                vec![select_all("Open_vSwitch", &["cur_cfg"])],
            )?;
            let cur = rows(&results, 0)
                .first()
                .and_then(|r| r["cur_cfg"].as_i64())
                .unwrap_or(0);
            if cur >= target {
                debug!(
                    cur,
                    target,
                    waited_ms = start.elapsed().as_millis() as u64,
                    "ovs-vswitchd caught up"
                );
                return Ok(true);
            }
            if start.elapsed() >= timeout {
                return Ok(false);
            }
            sleep(POLL);
        }
    }

    fn row_exists(&mut self, table: &str, name: &str) -> Result<bool, OvsError> {
        let results = self.read(
            format!("look up {} {name}", table.to_lowercase()),
            vec![
                json!({"op": "select", "table": table, "where": [["name", "==", name]],
                        "columns": ["_uuid"]}),
            ],
        )?;
        Ok(!rows(&results, 0).is_empty())
    }

    /// Bridge rows, and Port rows keyed by uuid, from one snapshot.
    fn bridges_and_ports(&mut self) -> Result<(Vec<Value>, HashMap<String, Value>), OvsError> {
        let results = self.read(
            "read bridges and ports".into(),
            vec![
                select_all("Bridge", &["name", "external_ids", "ports"]),
                select_all("Port", &["_uuid", "name", "external_ids"]),
            ],
        )?;
        Ok((rows(&results, 0).to_vec(), rows_by_uuid(&results, 1)))
    }

    fn read(&mut self, context: String, ops: Vec<Value>) -> Result<Vec<Value>, OvsError> {
        let mut txn = Txn::new(context);
        for op in ops {
            txn.op(op);
        }
        self.run(txn)
    }

    /// Send the transaction; the first failed operation becomes its guard's
    /// error when it was a precondition, else a Transaction error with context.
    fn run(&mut self, txn: Txn) -> Result<Vec<Value>, OvsError> {
        let Txn {
            context,
            ops,
            guards,
        } = txn;
        let results = self.rpc.transact(DB, ops)?;
        // One result per operation, plus one more when the commit itself failed
        // (e.g. a constraint violation); failed operations carry "error".
        let failed = results.iter().enumerate().find_map(|(i, r)| {
            r.get("error")
                .filter(|e| !e.is_null())
                .map(|e| (i, error_text(e), r.get("details").and_then(Value::as_str)))
        });
        if let Some((index, error, details)) = failed {
            debug!(context, index, error, "OVSDB transaction failed");
            if error == "timed out"
                && let Some(guard) = guards.into_iter().nth(index).flatten()
            {
                return Err(guard);
            }
            return Err(OvsError::Transaction {
                context,
                error,
                details: details.unwrap_or_default().to_string(),
            });
        }
        Ok(results)
    }

    fn protocol(&self, detail: &str) -> OvsError {
        OvsError::Protocol {
            path: self.rpc.path().to_path_buf(),
            detail: detail.into(),
        }
    }
}

/// Interface-name rules: OVS would accept more, but these names become Linux
/// devices, and ovs-ofctl finds a bridge through a socket file of its name.
fn check_name(kind: &'static str, name: &str) -> Result<(), OvsError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > IFNAME_MAX {
        Some("longer than 15 bytes (Linux interface name limit)")
    } else if name == "." || name == ".." || name.contains('/') {
        Some("'/', '.' and '..' are not allowed")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("whitespace and control characters are not allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(OvsError::InvalidName {
            kind,
            name: name.into(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_names() {
        assert!(check_name("bridge", "br0").is_ok());
        assert!(check_name("bridge", "").is_err());
        assert!(check_name("bridge", "0123456789abcdef").is_err());
        assert!(check_name("port", "a/b").is_err());
        assert!(check_name("port", "a b").is_err());
        assert!(check_name("port", "..").is_err());
    }
}
