//! Free ports, and waiting until something is bound.

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

/// The two loopback addresses the tests use (a "private" and a "public" side).
pub(crate) const LO1: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// See [`LO1`].
pub(crate) const LO2: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A UDP port free on `ip` right now (the kernel's choice).
pub(crate) fn free_udp_port_on(ip: Ipv4Addr) -> u16 {
    UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP port free on 127.0.0.1 right now.
pub(crate) fn free_udp_port() -> u16 {
    free_udp_port_on(LO1)
}

/// A TCP port free on 127.0.0.1 right now.
pub(crate) fn free_tcp_port() -> u16 {
    TcpListener::bind((LO1, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free UDP address on `ip`.
pub(crate) fn free_addr(ip: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(ip, free_udp_port_on(ip))
}

/// Whether some socket is bound on UDP `addr` (per /proc/net/udp).
pub(crate) fn udp_bound(addr: SocketAddrV4) -> bool {
    let ip = u32::from_le_bytes(addr.ip().octets());
    let needle = format!("{ip:08X}:{:04X} ", addr.port());
    fs::read_to_string("/proc/net/udp").is_ok_and(|t| t.contains(&needle))
}

/// Waits until a socket is bound on UDP `addr`.
pub(crate) fn wait_udp_bound(addr: SocketAddrV4, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if udp_bound(addr) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing bound udp {addr} within {limit:?}");
}

/// Polls `f` every 100 ms until it gives something, for at most `limit`.
pub(crate) fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
