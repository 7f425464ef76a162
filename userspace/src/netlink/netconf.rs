//! `RTM_GETNETCONF`: a namespace's forwarding settings (`all`, `default` and per
//! interface) in one dump, the same values as `/proc/sys/net/ipv{4,6}/conf/*/forwarding`
//! and `rp_filter`, without a path lookup under `/proc/sys/net` (which compares with
//! the same-named entry of every namespace on the host).

use super::{NetlinkError, batch::BatchSocket};

const RTM_GETNETCONF: u16 = 82;
const RTM_NEWNETCONF: u16 = 80;
const NETCONFA_IFINDEX: u16 = 1;
const NETCONFA_FORWARDING: u16 = 2;
const NETCONFA_RP_FILTER: u16 = 3;

/// One entry of the dump: an interface, or `all` / `default`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Netconf {
    /// An interface index, or [`Netconf::ALL`] / [`Netconf::DEFAULT`].
    pub ifindex: i32,
    pub forwarding: Option<i32>,
    pub rp_filter: Option<i32>,
}

impl Netconf {
    /// `NETCONFA_IFINDEX_ALL`: the `conf/all` set.
    pub const ALL: i32 = -1;
    /// `NETCONFA_IFINDEX_DEFAULT`: the `conf/default` set.
    pub const DEFAULT: i32 = -2;

    /// Parses one `RTM_NEWNETCONF` payload (a 4-byte family header, then attributes).
    fn parse(payload: &[u8]) -> Option<Self> {
        let mut c = Netconf::default();
        let mut seen_index = false;
        let mut rest = payload.get(4..)?;
        while rest.len() >= 4 {
            let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
            let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
            if len < 4 || len > rest.len() {
                break;
            }
            let value = rest
                .get(4..8)
                .filter(|_| len >= 8)
                .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            match kind {
                NETCONFA_IFINDEX => {
                    c.ifindex = value?;
                    seen_index = true;
                }
                NETCONFA_FORWARDING => c.forwarding = value,
                NETCONFA_RP_FILTER => c.rp_filter = value,
                _ => {}
            }
            rest = rest.get(((len + 3) & !3).min(rest.len())..)?;
        }
        seen_index.then_some(c)
    }
}

impl BatchSocket {
    /// Every netconf entry of one family (`libc::AF_INET` or `libc::AF_INET6`) in the
    /// socket's namespace, from one dump.
    pub fn netconf(&mut self, family: libc::c_int) -> Result<Vec<Netconf>, NetlinkError> {
        let body = [family as u8, 0, 0, 0];
        let payloads = self.dump_raw(RTM_GETNETCONF, &body, "list forwarding settings")?;
        Ok(payloads
            .iter()
            .filter(|(t, _)| *t == RTM_NEWNETCONF)
            .filter_map(|(_, p)| Netconf::parse(p))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, v: i32) -> Vec<u8> {
        let mut a = 8u16.to_ne_bytes().to_vec();
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(&v.to_ne_bytes());
        a
    }

    #[test]
    fn parses_an_entry_and_refuses_one_without_index() {
        let mut p = vec![10, 0, 0, 0];
        p.extend(attr(NETCONFA_IFINDEX, Netconf::ALL));
        p.extend(attr(NETCONFA_FORWARDING, 1));
        p.extend(attr(5, 0)); // proxy_neigh: not kept
        assert_eq!(
            Netconf::parse(&p),
            Some(Netconf {
                ifindex: -1,
                forwarding: Some(1),
                rp_filter: None
            })
        );
        let mut q = vec![2, 0, 0, 0];
        q.extend(attr(NETCONFA_RP_FILTER, 2));
        assert_eq!(Netconf::parse(&q), None);
        assert_eq!(Netconf::parse(&[2, 0]), None);
    }
}
