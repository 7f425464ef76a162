//! An address with prefix length (`10.1.1.2/24`, `fd00::1/64`).

use std::{fmt, net::IpAddr, str::FromStr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' has no prefix length (write e.g. {s}/24)"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{addr}' is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("prefix length '/{prefix}' must be 0..={max}"))?;
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!("10.1.1.2/24".parse::<Cidr>().map(|c| c.prefix), Ok(24));
        assert!("fd00::1/64".parse::<Cidr>().is_ok());
        assert!("10.1.1.2".parse::<Cidr>().is_err());
        assert!("10.1.1.2/33".parse::<Cidr>().is_err());
        assert!("10.1.1.256/24".parse::<Cidr>().is_err());
    }
}
