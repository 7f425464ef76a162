//! A link as the kernel reports it, reduced to what vethscope shows and decides on.

use rtnetlink::packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo as NlInfo, LinkMessage, State,
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
}

impl LinkInfo {
    pub fn from_message(m: &LinkMessage) -> Self {
        let admin_up = m.header.flags.contains(LinkFlags::Up);
        let mut info = LinkInfo {
            index: m.header.index,
            name: String::new(),
            kind: None,
            mac: None,
            mtu: 0,
            admin_up,
            state: LinkState::Unknown,
            alias: None,
            master: None,
            peer_index: None,
            peer_netnsid: None,
        };
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
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let NlInfo::Kind(k) = i {
                            info.kind = Some(kind_name(k));
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
