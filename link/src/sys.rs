//! The system glue only `link` needs, beyond the device runtime: sockets (rtnetlink,
//! packet, UDP), randomness and resolv.conf's replacement. Everything else is in the library.

use core::time::Duration;
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::addr::{SocketAddrArg, SocketAddrLen, SocketAddrOpaque};
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{
    AddressFamily, Protocol, RecvFlags, SendFlags, SocketAddrV4, SocketFlags, SocketType,
};

// Lease times keep counting through suspend: link's clock is CLOCK_BOOTTIME.
pub use runtime::clock::boottime_ms as now_ms;
pub use runtime::file::read_file;
pub use runtime::Text;

/// 32 random bits for transaction ids and retransmission jitter. Falls back to the clock if
/// the kernel's pool is not ready: xids need to differ, not to be secret.
pub fn random() -> u32 {
    let mut buf = [0u8; 4];
    match rustix::rand::getrandom(&mut buf, rustix::rand::GetRandomFlags::NONBLOCK) {
        Ok(4) => u32::from_ne_bytes(buf),
        _ => (now_ms() as u32).wrapping_mul(2_654_435_761),
    }
}

/// Replaces the file at `path` with `bytes` through a temporary file and a rename, so
/// readers (musl's resolver) never see it half-written.
pub fn replace_file(path: &[u8], bytes: &[u8]) -> Result<(), Errno> {
    let mut final_path: Text<160> = Text::new();
    final_path.push(path);
    let mut temp_path: Text<160> = Text::new();
    temp_path.push(path);
    temp_path.push(b".new");
    let temp = temp_path.as_cstr().ok_or(Errno::NAMETOOLONG)?;
    runtime::file::replace_file(temp, final_path.as_cstr().ok_or(Errno::NAMETOOLONG)?, bytes)
}

/// A request socket (no groups: only answers to our requests arrive) or an event socket
/// subscribed to `groups` (non-blocking: it is read until empty after each poll).
pub fn netlink(groups: u32) -> Result<OwnedFd, Errno> {
    let flags = if groups == 0 {
        SocketFlags::CLOEXEC
    } else {
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK
    };
    let fd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        flags,
        None, // NETLINK_ROUTE
    )?;
    rustix::net::bind(&fd, &SocketAddrNetlink::new(0, groups))?;
    if groups == 0 {
        // The kernel answers requests at once; a bound keeps a surprise from hanging us.
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_secs(2)),
        )?;
    }
    Ok(fd)
}

const ETH_P_IP: u16 = 0x0800;

/// struct sockaddr_ll from <linux/if_packet.h>.
#[repr(C)]
struct SockaddrLl {
    family: u16,
    protocol: u16,
    ifindex: i32,
    hatype: u16,
    pkttype: u8,
    halen: u8,
    addr: [u8; 8],
}

/// A link-layer address: interface `ifindex`, IPv4 frames, to `mac`.
pub struct LinkAddr(SockaddrLl);

impl LinkAddr {
    pub fn new(ifindex: u32, mac: [u8; 6]) -> LinkAddr {
        let mut addr = [0u8; 8];
        addr[..6].copy_from_slice(&mac);
        LinkAddr(SockaddrLl {
            family: AddressFamily::PACKET.as_raw(),
            protocol: ETH_P_IP.to_be(),
            ifindex: ifindex as i32,
            hatype: 0,
            pkttype: 0,
            halen: 6,
            addr,
        })
    }
}

// SAFETY: the pointer and length describe `self.0`, a complete `struct sockaddr_ll` in the
// kernel's layout, which lives as long as `self` (for the whole call of `f`).
unsafe impl SocketAddrArg for LinkAddr {
    unsafe fn with_sockaddr<R>(
        &self,
        f: impl FnOnce(*const SocketAddrOpaque, SocketAddrLen) -> R,
    ) -> R {
        f(
            (&self.0 as *const SockaddrLl).cast(),
            core::mem::size_of::<SockaddrLl>() as SocketAddrLen,
        )
    }
}

/// A packet socket on interface `ifindex` that sends and receives IPv4 packets (without
/// the Ethernet header).
pub fn packet_socket(ifindex: u32) -> Result<OwnedFd, Errno> {
    let protocol = core::num::NonZeroU32::new(u32::from(ETH_P_IP.to_be())).map(Protocol::from_raw);
    let fd = rustix::net::socket_with(
        AddressFamily::PACKET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        protocol,
    )?;
    rustix::net::bind(&fd, &LinkAddr::new(ifindex, [0; 6]))?;
    Ok(fd)
}

fn udp() -> Result<OwnedFd, Errno> {
    rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
}

/// A UDP socket bound to `address`:68, for unicast renewals once the address is ours.
pub fn udp_socket(address: [u8; 4]) -> Result<OwnedFd, Errno> {
    let fd = udp()?;
    rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
    rustix::net::bind(
        &fd,
        &SocketAddrV4::new(address.into(), link::udp::CLIENT_PORT),
    )?;
    Ok(fd)
}

/// A UDP socket on an ephemeral port, connected to `server`:`port`: only that peer's
/// datagrams arrive on it.
pub fn udp_connected(server: [u8; 4], port: u16) -> Result<OwnedFd, Errno> {
    let fd = udp()?;
    rustix::net::connect(&fd, &SocketAddrV4::new(server.into(), port))?;
    Ok(fd)
}

pub fn send_to_server(fd: &OwnedFd, server: [u8; 4], payload: &[u8]) -> Result<(), Errno> {
    let to = SocketAddrV4::new(server.into(), link::udp::SERVER_PORT);
    rustix::net::sendto(fd, payload, SendFlags::empty(), &to).map(drop)
}

pub fn send_link(fd: &OwnedFd, to: &LinkAddr, packet: &[u8]) -> Result<(), Errno> {
    rustix::net::sendto(fd, packet, SendFlags::empty(), to).map(drop)
}

pub fn send(fd: &OwnedFd, bytes: &[u8]) -> Result<(), Errno> {
    rustix::net::send(fd, bytes, SendFlags::empty()).map(drop)
}

/// One datagram; `Ok(None)` when none is waiting on a non-blocking socket.
pub fn recv<'a>(fd: &OwnedFd, buf: &'a mut [u8]) -> Result<Option<&'a [u8]>, Errno> {
    loop {
        return match rustix::net::recv(fd, &mut *buf, RecvFlags::empty()) {
            Ok((n, _)) => Ok(Some(&buf[..n.min(buf.len())])),
            Err(Errno::AGAIN) => Ok(None),
            Err(Errno::INTR) => continue,
            Err(e) => Err(e),
        };
    }
}
