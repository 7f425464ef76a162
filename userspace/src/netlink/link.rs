//! A link as the kernel reports it, reduced to what vethscope shows and decides on.

use rtnetlink::packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, BridgePortState, InfoBridgePort, InfoKind, InfoPortData,
    LinkAttribute, LinkFlags, LinkInfo as NlInfo, LinkMessage, State,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    Up,
    Down,
    /// Administratively up but no carrier (e.g. the veth peer is down).
    NoCarrier,
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// "veth", "bridge", "tun", "openvswitch", … ; `None` for devices without a kind (lo).
    pub kind: Option<String>,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    pub admin_up: bool,
    pub state: LinkState,
    pub alias: Option<String>,
    /// Index of the master (bridge) device, in the same namespace.
    pub master: Option<u32>,
    /// veth: the peer's ifindex (in the peer's namespace).
    pub peer_index: Option<u32>,
    /// veth: the peer namespace's id as seen from here; `None` = same namespace.
    pub peer_netnsid: Option<i32>,
    /// The interface's forwarding-related IP settings, as `ipv4.KEY` / `ipv6.KEY` →
    /// value: the same values as `/proc/sys/net/ipv{4,6}/conf/IF/KEY`, which the kernel
    /// sends with every link (IFLA_AF_SPEC). Reading them here instead of from files
    /// saves eight file reads per interface (a thousand-port bridge: 8,000). A family
    /// the interface has no configuration for is left out, as its files would be.
    pub ip_conf: Vec<(&'static str, i32)>,
    /// A Linux bridge port: whether the bridge forwards through it (the kernel's
    /// IFLA_BRPORT_STATE is forwarding). `None` for anything not a bridge port.
    pub port_forwarding: Option<bool>,
}

impl LinkInfo {
    /// A link known by its index and admin state only: what both decoders (this typed
    /// one and `batch.rs`'s lean one) start from before reading the attributes.
    pub(super) fn bare(index: u32, admin_up: bool, state: LinkState) -> Self {
        LinkInfo {
            index,
            name: String::new(),
            kind: None,
            mac: None,
            mtu: 0,
            admin_up,
            state,
            alias: None,
            master: None,
            peer_index: None,
            peer_netnsid: None,
            ip_conf: Vec::new(),
            port_forwarding: None,
        }
    }

    pub fn from_message(m: &LinkMessage) -> Self {
        let admin_up = m.header.flags.contains(LinkFlags::Up);
        let mut info = LinkInfo::bare(m.header.index, admin_up, LinkState::Unknown);
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => info.name = n.clone(),
                LinkAttribute::Address(mac) if mac.len() == 6 => {
                    let mut b = [0u8; 6];
                    b.copy_from_slice(mac);
                    info.mac = Some(b);
                }
                LinkAttribute::Mtu(mtu) => info.mtu = *mtu,
                LinkAttribute::IfAlias(alias) => info.alias = Some(alias.clone()),
                LinkAttribute::Controller(i) => info.master = Some(*i),
                LinkAttribute::Link(i) => info.peer_index = Some(*i),
                LinkAttribute::LinkNetNsId(id) => info.peer_netnsid = Some(*id),
                LinkAttribute::OperState(s) => {
                    info.state = match s {
                        State::Up => LinkState::Up,
                        State::Down if admin_up => LinkState::NoCarrier,
                        State::LowerLayerDown => LinkState::NoCarrier,
                        State::Down => LinkState::Down,
                        _ if admin_up => LinkState::Up,
                        _ => LinkState::Unknown,
                    }
                }
                LinkAttribute::AfSpecUnspec(families) => info.ip_conf = ip_conf(families),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        match i {
                            NlInfo::Kind(k) => info.kind = Some(kind_name(k)),
                            NlInfo::PortData(InfoPortData::BridgePort(attrs)) => {
                                info.port_forwarding = attrs.iter().find_map(|a| match a {
                                    InfoBridgePort::State(s) => {
                                        Some(*s == BridgePortState::Forwarding)
                                    }
                                    _ => None,
                                });
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if info.state == LinkState::Unknown && !admin_up {
            info.state = LinkState::Down;
        }
        info
    }

    pub fn is_veth(&self) -> bool {
        self.kind.as_deref() == Some("veth")
    }

    pub fn mac_string(&self) -> Option<String> {
        self.mac.map(|m| format_mac(&m))
    }
}

/// The keys `show` reports (`inspect::sysctls::INTERFACE_KEYS`) from a link's IFLA_AF_SPEC.
fn ip_conf(families: &[AfSpecUnspec]) -> Vec<(&'static str, i32)> {
    let mut out = Vec::new();
    for f in families {
        match f {
            AfSpecUnspec::Inet(attrs) => {
                for a in attrs {
                    if let AfSpecInet::DevConf(c) = a {
                        out.extend([
                            ("ipv4.forwarding", c.forwarding),
                            ("ipv4.rp_filter", c.rp_filter),
                            ("ipv4.accept_local", c.accept_local),
                            ("ipv4.arp_ignore", c.arp_ignore),
                            ("ipv4.arp_filter", c.arpfilter),
                            ("ipv4.arp_announce", c.arp_announce),
                        ]);
                    }
                }
            }
            AfSpecUnspec::Inet6(attrs) => {
                for a in attrs {
                    if let AfSpecInet6::DevConf(c) = a {
                        out.extend([
                            ("ipv6.forwarding", c.forwarding),
                            ("ipv6.disable_ipv6", c.disable_ipv6),
                        ]);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

pub fn format_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::Veth => "veth".into(),
        InfoKind::Bridge => "bridge".into(),
        InfoKind::Tun => "tun".into(),
        InfoKind::Other(s) => s.clone(),
        other => format!("{other:?}").to_lowercase(),
    }
}
