//! One ICMP echo from inside a namespace, on a raw socket: optionally bound to an
//! interface (the same-namespace pair leaves through its veth, as `ping -I`), with a
//! chosen size and Don't Fragment for the MTU probe. Blocking; runs on a thread that
//! entered the namespace.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

const ICMP_ECHO: u8 = 8;
const ICMP_ECHOREPLY: u8 = 0;
const ICMPV6_ECHO: u8 = 128;
const ICMPV6_ECHOREPLY: u8 = 129;
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const ICMP_HEADER: usize = 8;

#[derive(Debug, Clone)]
pub struct Echo {
    pub dst: IpAddr,
    pub src: Option<IpAddr>,
    pub bind_dev: Option<String>,
    /// Size of the whole IP packet.
    pub ip_len: usize,
    /// Set Don't Fragment (IPv4) / don't fragment locally (IPv6).
    pub dont_fragment: bool,
    pub id: u16,
    pub seq: u16,
    pub timeout: Duration,
}

/// The outcome: Some(rtt) when the reply came.
pub type Outcome = std::io::Result<Option<Duration>>;

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn last_err() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) -> std::io::Result<()> {
    // SAFETY: value points to a live T of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 { Err(last_err()) } else { Ok(()) }
}

fn sockaddr(ip: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match ip {
        IpAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// Sends one echo request and waits for its reply. Must run inside the namespace.
pub fn echo(e: &Echo) -> Outcome {
    let v6 = e.dst.is_ipv6();
    let (family, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    // SAFETY: plain socket(2); the fd is owned right away.
    let raw = unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if raw < 0 {
        return Err(last_err());
    }
    // SAFETY: raw is a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if let Some(dev) = &e.bind_dev {
        let mut name = dev.as_bytes().to_vec();
        name.push(0);
        // SAFETY: name is a NUL-terminated buffer of the given length.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                name.as_ptr().cast(),
                name.len() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(last_err());
        }
    }
    if let Some(src) = e.src {
        let (ss, len) = sockaddr(src);
        // SAFETY: ss holds a sockaddr of length len.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&ss as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if rc != 0 {
            return Err(last_err());
        }
    }
    if v6 {
        let v: libc::c_int = i32::from(e.dont_fragment);
        setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, &v)?;
    } else {
        let v: libc::c_int = if e.dont_fragment {
            libc::IP_PMTUDISC_PROBE
        } else {
            libc::IP_PMTUDISC_DONT
        };
        setsockopt(&fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, &v)?;
    }
    let header = if v6 { IPV6_HEADER } else { IPV4_HEADER };
    let icmp_len = e.ip_len.saturating_sub(header).max(ICMP_HEADER + 8);
    let mut pkt = vec![0u8; icmp_len];
    pkt[0] = if v6 { ICMPV6_ECHO } else { ICMP_ECHO };
    pkt[4..6].copy_from_slice(&e.id.to_be_bytes());
    pkt[6..8].copy_from_slice(&e.seq.to_be_bytes());
    for (i, b) in pkt[ICMP_HEADER..].iter_mut().enumerate() {
        *b = i as u8;
    }
    if !v6 {
        // ICMPv6 checksums are filled in by the kernel on raw ICMPv6 sockets.
        let c = checksum(&pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
    }
    let (ss, len) = sockaddr(e.dst);
    let start = Instant::now();
    // SAFETY: pkt and ss are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            pkt.as_ptr().cast(),
            pkt.len(),
            0,
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if sent < 0 {
        return Err(last_err());
    }
    let mut buf = vec![0u8; 65536];
    loop {
        let left = e.timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(None);
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, valid for the call.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as libc::c_int) };
        if n < 0 {
            let err = last_err();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            return Ok(None);
        }
        // SAFETY: buf is valid for its length.
        let got = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if got < 0 {
            continue;
        }
        let got = got as usize;
        // Raw IPv4 sockets deliver the IP header; raw ICMPv6 sockets do not.
        let (icmp, from) = if v6 {
            (&buf[..got], None)
        } else {
            if got < IPV4_HEADER {
                continue;
            }
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            let from = IpAddr::V4(std::net::Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]));
            (&buf[ihl.min(got)..got], Some(from))
        };
        if icmp.len() < ICMP_HEADER {
            continue;
        }
        let reply_type = if v6 { ICMPV6_ECHOREPLY } else { ICMP_ECHOREPLY };
        let id = u16::from_be_bytes([icmp[4], icmp[5]]);
        let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
        if icmp[0] == reply_type && id == e.id && seq == e.seq && from.is_none_or(|f| f == e.dst) {
            return Ok(Some(start.elapsed()));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn checksum_of_a_known_echo() {
        // type 8, code 0, id 1, seq 1, no payload: checksum 0xf7fd.
        let pkt = [8u8, 0, 0, 0, 0, 1, 0, 1];
        assert_eq!(super::checksum(&pkt), 0xf7fd);
    }
}
