//! Subnet arithmetic on [`Cidr`]: membership and the network prefix.

use std::net::IpAddr;

use crate::topology::Cidr;

fn bits(a: IpAddr) -> (u128, u32) {
    match a {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn mask(prefix: u8, width: u32) -> u128 {
    let p = u32::from(prefix).min(width);
    if p == 0 {
        0
    } else {
        let full = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        full & !((1u128 << (width - p)) - 1)
    }
}

/// Whether `a` is in the subnet of `c`.
pub fn contains(c: &Cidr, a: IpAddr) -> bool {
    let (x, wx) = bits(c.addr);
    let (y, wy) = bits(a);
    if wx != wy {
        return false;
    }
    let m = mask(c.prefix, wx);
    x & m == y & m
}

/// The network of `c`, as `10.1.2.0/24`.
pub fn network(c: &Cidr) -> String {
    let (x, w) = bits(c.addr);
    let n = x & mask(c.prefix, w);
    let addr = if w == 32 {
        IpAddr::V4(std::net::Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(n))
    };
    format!("{addr}/{}", c.prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn membership_and_network() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{e}"));
        assert!(contains(&c("10.1.1.2/24"), ip("10.1.1.200")));
        assert!(!contains(&c("10.1.1.2/24"), ip("10.1.2.3")));
        assert!(contains(&c("10.1.1.2/0"), ip("192.0.2.1")));
        assert!(!contains(&c("10.1.1.2/24"), ip("fd00::1")));
        assert!(contains(&c("fd00::1/64"), ip("fd00::ffff")));
        assert_eq!(network(&c("10.1.2.3/24")), "10.1.2.0/24");
        assert_eq!(network(&c("fd00:1::5/64")), "fd00:1::/64");
        assert_eq!(network(&c("10.1.2.3/32")), "10.1.2.3/32");
    }
}
