//! The lab description: YAML file or built-in scenario → validated [`Topology`].
//!
//! Everything here is pure: no kernel object is touched until `wire` applies a
//! topology that passed [`validate`]. Every object remembers where it was written
//! ([`Pos`]) so later errors can point at the file, line and column.

mod cidr;
mod error;
pub mod names;
mod parse;
mod prefix;
pub mod scenarios;
pub mod sysctl_keys;
mod validate;
mod yaml;

use std::path::Path;

pub use cidr::Cidr;
pub use error::{Location, TopologyError};
pub use parse::parse_mac;
pub use validate::{check_prefix, validate, validate_environment};
pub use yaml::FILE_MAX;

/// The reserved namespace name for the root namespace.
pub const HOST: &str = "host";
/// Linux limit for interface names (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = names::IFNAME_MAX;

/// Line and column (1-based) of an object in its source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Topology {
    pub name: String,
    /// File name (or `builtin:NAME`) for error messages.
    pub source: String,
    pub namespaces: Vec<Namespace>,
    pub bridges: Vec<Bridge>,
    pub links: Vec<Link>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Namespace {
    pub name: String,
    /// Full sysctl keys (`net.ipv4.conf.all.rp_filter`) applied inside the namespace.
    pub sysctls: Vec<Sysctl>,
    pub routes: Vec<Route>,
    /// Shell command lines run in order inside the namespace after `up` made the lab.
    #[serde(default)]
    pub exec: Vec<ExecLine>,
    pub pos: Pos,
}

/// One `exec:` line of a namespace (run as `/bin/sh -c LINE`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExecLine {
    pub command: String,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sysctl {
    pub key: String,
    pub value: String,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Route {
    /// `None` = default route.
    pub to: Option<Cidr>,
    pub via: Option<std::net::IpAddr>,
    pub dev: Option<String>,
    pub pos: Pos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BridgeKind {
    Linux,
    Ovs,
}

impl BridgeKind {
    /// As written in a topology file and shown (`linux`, `ovs`).
    pub fn as_str(self) -> &'static str {
        match self {
            BridgeKind::Linux => "linux",
            BridgeKind::Ovs => "ovs",
        }
    }
}

impl std::fmt::Display for BridgeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bridge {
    pub name: String,
    pub kind: BridgeKind,
    pub mtu: Option<u32>,
    /// The lab namespace the bridge lives in (`ns: r1`); `None`: the root namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    pub pos: Pos,
}

impl Bridge {
    /// The namespace the bridge (and so each of its ports) lives in.
    pub fn netns(&self) -> &str {
        self.netns.as_deref().unwrap_or(HOST)
    }
}

/// Where one end of a link sits.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Place {
    /// In a lab namespace (or the root namespace when the name is [`HOST`]).
    Netns(String),
    /// A port of a bridge (the interface lives in the bridge's namespace).
    Bridge(String),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct End {
    pub place: Place,
    pub name: String,
    pub addresses: Vec<Cidr>,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    /// Interface-scoped keys (`accept_local`, `ipv6.disable_ipv6`).
    pub sysctls: Vec<Sysctl>,
    /// Impairment of packets leaving this end (`impair: {loss: 1%, rate: 100mbit}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impair: Option<crate::impair::Impairment>,
    /// For a bridge port: the namespace of its bridge when that is not the root
    /// namespace (copied from the bridge's `ns:` when the file is read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge_netns: Option<String>,
    pub pos: Pos,
}

impl End {
    /// The MAC the interface is made with: the file's `mac:`, else, for an end that is
    /// not a bridge port, one derived from the lab, namespace and name
    /// ([`derived_mac`]), so that the same end made again (a change that removes and
    /// re-adds it, or `down` and `up`) keeps its MAC and neighbours that cached it still
    /// reach it (with a random MAC, 9 of 10 pings sent right after such a change were
    /// lost: ARP entries keep the old MAC for seconds). Bridge ports keep the kernel's
    /// random MAC: they carry no address, and a bridge takes its own from its ports.
    pub fn mac_to_set(&self, lab: &str) -> Option<[u8; 6]> {
        match (self.mac, &self.place) {
            (Some(mac), _) => Some(mac),
            (None, Place::Netns(ns)) => Some(derived_mac(lab, ns, &self.name)),
            (None, Place::Bridge(_)) => None,
        }
    }

    /// The namespace the interface ends up in (a bridge port: its bridge's).
    pub fn netns(&self) -> &str {
        match &self.place {
            Place::Netns(ns) => ns,
            Place::Bridge(_) => self.bridge_netns.as_deref().unwrap_or(HOST),
        }
    }

    pub fn bridge(&self) -> Option<&str> {
        match &self.place {
            Place::Bridge(b) => Some(b),
            Place::Netns(_) => None,
        }
    }
}

/// A locally administered unicast MAC from FNV-1a over `lab`, `netns` and `name`
/// (NUL-separated: no name holds a NUL): the same on every run and every build, unlike
/// std's hasher, whose output may change between Rust versions. 46 bits of hash: two
/// ends of one lab share a MAC with a chance of about n²/2⁴⁷ (7 × 10⁻⁷ for 10,000 ends).
pub fn derived_mac(lab: &str, netns: &str, name: &str) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = lab
        .bytes()
        .chain([0])
        .chain(netns.bytes())
        .chain([0])
        .chain(name.bytes());
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

// A veth holds two ends, an OVS internal port one: the size difference is that, and
// boxing the ends would only add an allocation per link to every topology.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Link {
    Veth {
        ends: [End; 2],
        pos: Pos,
    },
    /// An OVS internal port created on `bridge`, then moved to the end's namespace.
    OvsInternal {
        bridge: String,
        end: End,
        pos: Pos,
    },
}

impl Link {
    pub fn ends(&self) -> &[End] {
        match self {
            Link::Veth { ends, .. } => ends,
            Link::OvsInternal { end, .. } => std::slice::from_ref(end),
        }
    }

    pub fn pos(&self) -> Pos {
        match self {
            Link::Veth { pos, .. } | Link::OvsInternal { pos, .. } => *pos,
        }
    }
}

impl Topology {
    /// Gives every bridge port the namespace of its bridge (after reading or renaming).
    pub(crate) fn place_bridge_ports(&mut self) {
        let of: std::collections::HashMap<String, Option<String>> = self
            .bridges
            .iter()
            .map(|b| (b.name.clone(), b.netns.clone()))
            .collect();
        for link in &mut self.links {
            let ends: &mut [End] = match link {
                Link::Veth { ends, .. } => ends,
                Link::OvsInternal { end, .. } => std::slice::from_mut(end),
            };
            for e in ends {
                e.bridge_netns = match &e.place {
                    Place::Bridge(b) => of.get(b).cloned().flatten(),
                    Place::Netns(_) => None,
                };
            }
        }
    }

    /// Parses YAML text; `source` names the file in error messages.
    pub fn from_yaml(text: &str, source: &str) -> Result<Self, TopologyError> {
        parse::parse(text, source)
    }

    /// Reads and parses a file (at most [`FILE_MAX`] bytes: a lab file is small, and a
    /// huge or endless one, like /dev/zero, must not exhaust memory).
    pub fn from_file(path: &Path) -> Result<Self, TopologyError> {
        use std::io::Read;
        let read_err = |e| TopologyError::Read {
            path: path.display().to_string(),
            source: e,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(FILE_MAX as u64 + 1).read_to_end(&mut bytes))
            .map_err(read_err)?;
        let file = path.display().to_string();
        if bytes.len() > FILE_MAX {
            return Err(TopologyError::Syntax {
                file,
                line: 1,
                col: 1,
                message: format!(
                    "the file is larger than {} MiB; a lab file is far smaller",
                    FILE_MAX >> 20
                ),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let before = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let col = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            TopologyError::Syntax {
                file: file.clone(),
                line,
                col,
                message: "the file is not UTF-8 text".into(),
            }
        })?;
        Self::from_yaml(&text, &file)
    }

    /// A built-in scenario by name, or a file path.
    pub fn load(spec: &str) -> Result<Self, TopologyError> {
        let path = Path::new(spec);
        if path.exists() {
            return Self::from_file(path);
        }
        match scenarios::get(spec) {
            Some(text) => Self::from_yaml(text, &format!("builtin:{spec}")),
            None => Err(TopologyError::UnknownSpec {
                spec: spec.to_string(),
                builtins: scenarios::NAMES.join(", "),
            }),
        }
    }

    /// Prefixes the lab name, namespace names and every root-namespace object, so
    /// several copies of a scenario can run side by side (tests do this).
    pub fn with_prefix(&self, prefix: &str) -> Self {
        prefix::apply(self, prefix)
    }

    pub fn uses_ovs(&self) -> bool {
        self.bridges.iter().any(|b| b.kind == BridgeKind::Ovs)
    }

    pub fn bridge(&self, name: &str) -> Option<&Bridge> {
        self.bridges.iter().find(|b| b.name == name)
    }

    /// All ends of all links, in file order.
    pub fn ends(&self) -> impl Iterator<Item = &End> {
        self.links.iter().flat_map(|l| l.ends().iter())
    }

    /// Lab namespace names (never `host`), in file order.
    pub fn netns_names(&self) -> impl Iterator<Item = &str> {
        self.namespaces.iter().map(|n| n.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_macs_are_stable_local_unicast_and_differ_by_lab_namespace_and_name() {
        let m = derived_mac("lab", "ns1", "eth0");
        assert_eq!(
            m,
            derived_mac("lab", "ns1", "eth0"),
            "the same on every call"
        );
        assert_eq!(m[0] & 0x03, 0x02, "locally administered, unicast: {m:02x?}");
        for other in [
            derived_mac("lab2", "ns1", "eth0"),
            derived_mac("lab", "ns2", "eth0"),
            derived_mac("lab", "ns1", "eth1"),
            // The separator keeps ("ab", "c") apart from ("a", "bc").
            derived_mac("la", "bns1", "eth0"),
        ] {
            assert_ne!(m, other);
        }
        // Pinned (worked out apart, in Python): a change of the function would change
        // the MAC of every lab's interfaces.
        assert_eq!(m, [0x1e, 0x0d, 0xc5, 0x41, 0x27, 0xbf]);
    }

    #[test]
    fn an_end_gets_the_files_mac_else_a_derived_one_unless_it_is_a_bridge_port() {
        let t = Topology::from_yaml(
            "name: m\nnamespaces:\n  - name: ns1\n  - name: ns2\nbridges:\n  - {name: br0, kind: linux}\nlinks:\n  - kind: veth\n    ends:\n      - {ns: ns1, name: eth0, mac: \"02:00:00:00:00:09\"}\n      - {ns: ns2, name: eth0}\n  - kind: veth\n    ends:\n      - {ns: ns1, name: eth1}\n      - {bridge: br0, name: p1}\n",
            "m.yaml",
        )
        .expect("a valid lab");
        let ends: Vec<&End> = t.ends().collect();
        assert_eq!(ends[0].mac_to_set("m"), Some([2, 0, 0, 0, 0, 9]));
        assert_eq!(
            ends[1].mac_to_set("m"),
            Some(derived_mac("m", "ns2", "eth0"))
        );
        assert_eq!(
            ends[2].mac_to_set("m"),
            Some(derived_mac("m", "ns1", "eth1"))
        );
        assert_eq!(ends[3].mac_to_set("m"), None, "a bridge port");
    }
}
