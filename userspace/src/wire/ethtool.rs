//! TX checksum offload, through the SIOCETHTOOL ioctl (what `ethtool -K IF tx off` does).
//!
//! With OVS's userspace datapath, frames a namespace sends through a veth carry
//! CHECKSUM_PARTIAL (the checksum is left to "hardware"); ovs-vswitchd reads them
//! through AF_PACKET and forwards them without ever completing the checksum, so the
//! receiver drops every TCP segment. Computing checksums in software on the namespace
//! end fixes it.

use std::os::fd::AsRawFd;

const ETHTOOL_STXCSUM: u32 = 0x0000_0017;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    _pad: [u8; 16],
}

/// Turns TX checksum offload on or off for `ifname` in the calling thread's namespace.
pub fn set_tx_checksum(ifname: &str, on: bool) -> std::io::Result<()> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0")
        .map(std::os::fd::OwnedFd::from)
        .or_else(|_| std::os::unix::net::UnixDatagram::unbound().map(std::os::fd::OwnedFd::from))?;
    let mut value = EthtoolValue {
        cmd: ETHTOOL_STXCSUM,
        data: u32::from(on),
    };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: &mut value,
        _pad: [0; 16],
    };
    let bytes = ifname.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    req.name[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: SIOCETHTOOL reads the ifreq and the ethtool_value it points to, both alive here.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut req) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Turns TX checksum offload off on a lab end, inside its namespace (both `up` and a
/// change of a running lab do this for the end facing an OVS userspace datapath).
pub(super) fn tx_checksum_off(
    lab: &str,
    end: &crate::topology::End,
) -> Result<(), super::WireError> {
    let name = end.name.clone();
    crate::netns::run_in(end.netns(), || set_tx_checksum(&name, false))
        .map_err(|source| super::bulk::ns_err(lab, source))?
        .map_err(|source| super::WireError::Io {
            lab: lab.to_string(),
            what: format!(
                "turn off TX checksum offload on {} in namespace {}",
                end.name,
                end.netns()
            ),
            source,
        })
}
